//! The `latchkey` command: serve, and the admin commands of shared/DESIGN.md (the directory
//! commands beside the console live in `cli`).

mod cli;

use clap::{Args, Parser, Subcommand};
use latchkey::auth::users::{self, NewAccount};
use latchkey::clock::Clock;
use latchkey::config::Config;
use latchkey::oidc::clients::{self, Registration};
use latchkey::{AppState, build_app};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "latchkey", version, about = "An OpenID Connect identity provider for SaaS single sign-on")]
struct Cli {
    /// TOML configuration file (defaults are built in; see config/latchkey.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Directory holding the SQLite database (overrides server.data_dir).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Print results as JSON for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the identity provider.
    Serve {
        /// Address to listen on (overrides server.bind).
        #[arg(long)]
        bind: Option<String>,
        /// Public issuer URL (overrides server.issuer).
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage applications (OIDC clients).
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Manage groups and their members.
    Group {
        #[command(subcommand)]
        command: cli::GroupCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Conditional access.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Validate the configuration; print every effective value (secrets redacted) and where it came from.
    CheckConfig,
    /// A consistent copy of the database while the server runs (SQLite's online backup API).
    Backup {
        /// The file to write (must not exist).
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Replace the database with a backup (refused while a server uses the data directory).
    Restore {
        /// The backup file to restore.
        #[arg(long)]
        from: std::path::PathBuf,
    },
    /// Move the installation between engines.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Benchmark helper: argon2id hashes per second with the configured parameters, on this thread.
    #[command(hide = true)]
    BenchArgon2 {
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy every table of a SQLite installation into an empty PostgreSQL database, in one
    /// transaction, checking row counts (stop the server first).
    Copy {
        /// sqlite:PATH of the database file, e.g. sqlite:./data/latchkey.db
        #[arg(long)]
        from: String,
        /// postgres://user@host/database (new or empty; its schema is created); default:
        /// database.url (from the configuration or LATCHKEY_DATABASE__URL, which keeps a password
        /// off the command line)
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user.
    Add(UserAdd),
    /// Print a new one-time password (valid 24 h, must be changed at sign-in); ends every session.
    ResetPassword {
        #[arg(long)]
        username: String,
    },
    #[command(flatten)]
    More(cli::UserMore),
}

#[derive(Args)]
struct UserAdd {
    #[arg(long)]
    username: String,
    /// The password. Other users of the machine can read a command line, and shells keep it in
    /// their history: prefer --password-stdin.
    #[arg(long, required_unless_present = "password_stdin", conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from standard input (its first line, without the line break).
    #[arg(long)]
    password_stdin: bool,
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// Make the user an administrator.
    #[arg(long)]
    admin: bool,
    /// Require a second factor; without one registered, the user registers one at next sign-in.
    #[arg(long)]
    require_mfa: bool,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register an application; prints its client_id and (confidential clients) its secret, once.
    Add(ClientAdd),
    #[command(flatten)]
    More(cli::ClientMore),
}

#[derive(Args)]
struct ClientAdd {
    #[arg(long)]
    name: String,
    /// An exact redirect URI; repeat for several.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// An exact post-logout redirect URI; repeat for several.
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// A public client (single-page or native app): no secret, PKCE required.
    #[arg(long)]
    public: bool,
    /// Allowed grant: authorization_code, refresh_token, client_credentials, or the legacy password grant; repeat for several.
    /// Default: authorization_code and refresh_token.
    #[arg(long = "grant-type")]
    grant_types: Vec<String>,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Turn security defaults on or off (mutually exclusive with policies that are on).
    SecurityDefaults {
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Print every conditional-access policy as JSON (the console's export format).
    Export,
    #[command(flatten)]
    More(cli::PolicyMore),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate new signing keys (RS256, ES256, EdDSA) and make them active; the old ones stay published until their tokens expire.
    Rotate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The first line of standard input, without its line break (`--password-stdin`).
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| anyhow::anyhow!("cannot read the password from standard input: {e}"))?;
    let password = line.strip_suffix('\n').map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
    if password.is_empty() {
        anyhow::bail!("no password on standard input (--password-stdin reads its first line)");
    }
    Ok(password.to_string())
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        config.server.data_dir = dir.clone();
    }
    Ok(config)
}

fn print(json_mode: bool, value: serde_json::Value, human: String) {
    if json_mode {
        println!("{value}");
    } else {
        println!("{human}");
    }
}

/// `latchkey check-config`: defaults, then the file, then the environment, then --data-dir.
fn check_config(cli: &Cli) -> anyhow::Result<()> {
    let (config, mut settings) = Config::explain(cli.config.as_deref(), std::env::vars())?;
    let warnings = config.warnings();
    if let Some(dir) = &cli.data_dir {
        let entry = settings.iter_mut().find(|s| s.name == "server.data_dir").expect("server.data_dir is a setting");
        entry.value = json!(dir);
        entry.source = "command line --data-dir".into();
    }
    let human = settings.iter().map(|s| format!("{} = {}    # {}", s.name, s.value, s.source)).collect::<Vec<_>>().join("\n");
    let warned: String = warnings.iter().map(|w| format!("\nwarning: {w}")).collect();
    print(cli.json, json!({ "valid": true, "settings": settings, "warnings": warnings }), format!("{human}{warned}\nconfiguration is valid"));
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::CheckConfig = cli.command {
        return check_config(&cli);
    }
    let mut config = load_config(&cli)?;
    let clock = Clock::system();
    // Commands other than `serve` on a SQLite data directory that holds no database: a typo in
    // --data-dir, or a configuration that does not say where the installation is. A backup of
    // it would be an empty database; anything else goes on (provisioning before the first start
    // is allowed) but says so, on stderr.
    let sqlite = config.database.url.expose().is_none();
    let installed = config.server.data_dir.join("latchkey.db").exists();
    if sqlite && !installed && !matches!(cli.command, Command::Serve { .. } | Command::Restore { .. } | Command::BenchArgon2 { .. } | Command::Store { .. }) {
        let dir = config.server.data_dir.display();
        if let Command::Backup { .. } = cli.command {
            anyhow::bail!("nothing to back up: there is no latchkey.db in {dir} (pass --data-dir, or set server.data_dir, to the installation's directory)");
        }
        eprintln!("latchkey: note: there is no installation in {dir}; creating a new one (pass --data-dir, or set server.data_dir, to use an existing one)");
    }
    match cli.command {
        // Answered before any configuration is loaded (an invalid one is what it reports).
        Command::CheckConfig => Ok(()),
        Command::Serve { bind, issuer } => {
            if let Some(b) = bind {
                config.server.bind = b;
            }
            if let Some(i) = issuer {
                config.server.issuer = i;
            }
            serve(config, clock, cli.json)
        }
        Command::User { command: UserCommand::Add(a) } => {
            let password = match a.password {
                Some(password) => password,
                None => password_from_stdin()?,
            };
            let state = AppState::open(config, clock)?;
            state.protection.check_new(&password).map_err(|e| anyhow::anyhow!("the password is not acceptable: {e}"))?;
            let account = NewAccount {
                username: &a.username,
                password: &password,
                email: a.email.as_deref(),
                name: a.name.as_deref(),
                is_admin: a.admin,
                must_change_password: false,
            };
            let conn = state.pool.get()?;
            let user = users::create(&conn, &state.passwords, &account, state.clock.now())?;
            if a.require_mfa {
                latchkey::store::mfa::set_mfa_required(&conn, &user.id, true)?;
            }
            print(
                cli.json,
                json!({ "id": user.id, "username": user.username, "admin": user.is_admin, "mfa_required": a.require_mfa }),
                format!("created user {} (sub {})", user.username, user.id),
            );
            Ok(())
        }
        Command::Backup { to } => {
            let state = AppState::open(config, clock)?;
            latchkey::store::backup(&state.pool, &to)?;
            print(cli.json, json!({ "backup": to.display().to_string() }), format!("backed up to {}", to.display()));
            Ok(())
        }
        Command::Store { command: StoreCommand::Copy { from, to } } => {
            let path = from.strip_prefix("sqlite:").ok_or_else(|| anyhow::anyhow!("--from must be sqlite:PATH (the SQLite database file)"))?;
            if !std::path::Path::new(path).is_file() {
                anyhow::bail!("--from: no database file at {path}");
            }
            let to = to
                .or_else(|| config.database.url.expose().map(str::to_string))
                .ok_or_else(|| anyhow::anyhow!("--to postgres://… or database.url names the target"))?;
            let target = latchkey::store::open_postgres(&to, 2, std::time::Duration::from_secs(30))?;
            let copied = latchkey::store::copy::copy(std::path::Path::new(path), &target)?;
            let rows: i64 = copied.iter().map(|(_, n)| n).sum();
            let human: Vec<String> = copied.iter().filter(|(_, n)| *n > 0).map(|(t, n)| format!("  {t}: {n}")).collect();
            print(
                cli.json,
                json!({ "copied": copied.iter().map(|(t, n)| (t.clone(), json!(n))).collect::<serde_json::Map<_, _>>() }),
                format!(
                    "copied {rows} rows in {} tables, counts verified:\n{}\nServe from PostgreSQL with database.url set and keys.encryption_secret set to this \
                     installation's secret (its keys.encryption_secret, or the contents of master.key in its data directory).",
                    copied.len(),
                    human.join("\n")
                ),
            );
            Ok(())
        }
        Command::Restore { from } => {
            if config.database.url.expose().is_some() {
                anyhow::bail!("latchkey restore replaces a SQLite database file; restore PostgreSQL with pg_restore (see the README)");
            }
            let dir = config.server.data_dir.clone();
            let passphrase = || {
                let configured = config.keys.encryption_secret.expose();
                if configured.is_none() && !dir.join("master.key").exists() {
                    return Err(format!(
                        "there is no master.key in {}: copy there the master.key of the installation the backup came from (a backup does not hold it; the keys in it are sealed with it)",
                        dir.display()
                    ));
                }
                latchkey::crypto::Sealer::load(configured, &dir).map(|s| s.passphrase().to_string()).map_err(|e| format!("cannot read master.key: {e}"))
            };
            latchkey::store::restore(&config.server.data_dir, &from, passphrase)?;
            print(cli.json, json!({ "restored": from.display().to_string() }), format!("restored {} (start the server again)", from.display()));
            Ok(())
        }
        Command::User { command: UserCommand::ResetPassword { username } } => {
            let state = AppState::open(config, clock)?;
            let conn = state.pool.get()?;
            let password = users::reset_password(&conn, &state.passwords, &username, state.clock.now())?;
            print(
                cli.json,
                json!({ "username": username, "one_time_password": password, "expires_in": users::ONE_TIME_PASSWORD_SECS }),
                format!("one-time password for {username}: {password}\n(valid 24 hours; it must be changed at sign-in)"),
            );
            Ok(())
        }
        Command::Client { command: ClientCommand::Add(c) } => {
            let state = AppState::open(config, clock)?;
            let reg = Registration {
                name: &c.name,
                redirect_uris: &c.redirect_uris,
                post_logout_redirect_uris: &c.post_logout_redirect_uris,
                grant_types: &c.grant_types,
                public: c.public,
            };
            let out = clients::register(&*state.pool.get()?, &reg, state.clock.now())?;
            // What the running server serves (`serve --issuer` included), else the configuration's.
            let issuer = latchkey::store::settings::served_issuer(&*state.pool.get()?)?.unwrap_or_else(|| state.config.issuer().to_string());
            let mut human = format!("registered {}\nclient_id:     {}\n", c.name.trim(), out.client_id);
            if let Some(s) = &out.client_secret {
                human.push_str(&format!("client_secret: {s}\n(shown once: store it now)\n"));
            }
            human.push_str(&format!("issuer:        {issuer}\ndiscovery:     {issuer}/.well-known/openid-configuration"));
            print(cli.json, json!({ "client_id": out.client_id, "client_secret": out.client_secret, "issuer": issuer }), human);
            Ok(())
        }
        Command::User { command: UserCommand::More(c) } => {
            let out = cli::user_command(&AppState::open(config, clock)?, c)?;
            print(cli.json, out.json, out.human);
            Ok(())
        }
        Command::Client { command: ClientCommand::More(c) } => {
            let out = cli::client_command(&AppState::open(config, clock)?, c)?;
            print(cli.json, out.json, out.human);
            Ok(())
        }
        Command::Group { command } => {
            let out = cli::group_command(&AppState::open(config, clock)?, command)?;
            print(cli.json, out.json, out.human);
            Ok(())
        }
        Command::Policy { command: PolicyCommand::More(c) } => {
            let out = cli::policy_command(&AppState::open(config, clock)?, c)?;
            print(cli.json, out.json, out.human);
            Ok(())
        }
        Command::BenchArgon2 { seconds } => {
            let hasher = latchkey::auth::password::PasswordHasher::new(&config.password).map_err(anyhow::Error::msg)?;
            // Memory reused across hashes, as the server's hashing pool does: the machine's true limit.
            let mut mem = latchkey::auth::password::Memory::default();
            let start = std::time::Instant::now();
            let mut n = 0u64;
            while start.elapsed().as_secs_f64() < seconds {
                std::hint::black_box(hasher.hash_with("benchmark password", &mut mem));
                n += 1;
            }
            let rate = n as f64 / start.elapsed().as_secs_f64();
            print(cli.json, json!({ "argon2id_hashes_per_sec": rate }), format!("{rate:.1} argon2id hashes/s"));
            Ok(())
        }
        Command::Policy { command: PolicyCommand::SecurityDefaults { state } } => {
            let state_db = AppState::open(config, clock)?;
            let conn = state_db.pool.get()?;
            let on = state == "on";
            if on && latchkey::store::policies::all(&conn)?.iter().any(|p| p.state == latchkey::policy::model::State::On) {
                anyhow::bail!(
                    "a conditional-access policy is on: security defaults and policies are mutually exclusive; turn the policies off (or to report-only) first"
                );
            }
            latchkey::store::policies::set_security_defaults(&conn, on)?;
            latchkey::store::directory::audit_change(
                &conn,
                "cli",
                "security_defaults_changed",
                None,
                None,
                Some(&format!("{{\"security_defaults\":{on}}}")),
                state_db.clock.now(),
            )?;
            print(cli.json, json!({ "security_defaults": on }), format!("security defaults are {state}"));
            Ok(())
        }
        Command::Policy { command: PolicyCommand::Export } => {
            let state_db = AppState::open(config, clock)?;
            let policies = latchkey::store::policies::all(&*state_db.pool.get()?)?;
            println!("{}", serde_json::to_string_pretty(&policies)?);
            Ok(())
        }
        Command::Keys { command: KeysCommand::Rotate } => {
            let state = AppState::open(config, clock)?;
            let kids = latchkey::oidc::keys::rotate(&state.pool, Some(state.sealer.passphrase()), state.clock.now())?;
            let human = latchkey::oidc::keys::ALGORITHMS.iter().zip(&kids).map(|(a, k)| format!("new active {a} key: {k}")).collect::<Vec<_>>().join("\n");
            print(cli.json, json!({ "kids": kids }), human);
            Ok(())
        }
    }
}

fn serve(config: Config, clock: Clock, json_mode: bool) -> anyhow::Result<()> {
    // Logs go to stderr: stdout carries only what the command prints (and --json output).
    latchkey::telemetry::init_logging(&config.log).map_err(|e| anyhow::anyhow!(e))?;
    let metrics = match config.server.metrics_bind.as_str() {
        "" => None,
        bind => {
            let listener = std::net::TcpListener::bind(bind).map_err(|e| anyhow::anyhow!("cannot listen on server.metrics_bind {bind}: {e}"))?;
            Some((listener, latchkey::telemetry::install_metrics().map_err(|e| anyhow::anyhow!(e))?))
        }
    };
    let data_dir = config.server.data_dir.clone();
    // A read-only volume or database file is found now, in well under 2 s, before the port is taken.
    latchkey::store::check_writable(&data_dir).map_err(|e| anyhow::anyhow!(e))?;
    // One server per data directory; a restore waits for it to stop.
    let _lock = latchkey::store::lock_data_dir(&data_dir)
        .map_err(|e| anyhow::anyhow!("cannot lock data directory {}: {e}", data_dir.display()))?
        .ok_or_else(|| anyhow::anyhow!("another latchkey server is using data directory {}", data_dir.display()))?;
    let state = AppState::open(config, clock)?;
    // The port first: the first administrator's one-time password is made and printed only by
    // a start that goes on serving (a failed start would print it, and the next would not).
    let bind = &state.config.server.bind;
    let listener = std::net::TcpListener::bind(bind).map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
    // Said once the start cannot fail for a reason of its own (that one is a single line).
    for warning in state.config.warnings() {
        tracing::warn!("{warning}");
    }
    if let Some(password) = users::bootstrap_admin(&*state.pool.get()?, &state.passwords, state.clock.now())? {
        print(
            json_mode,
            json!({ "first_admin": { "username": "admin", "one_time_password": password } }),
            format!(
                "\n  First administrator created.\n    username: admin\n    password: {password}\n  \
                 This password works once: you will be asked to choose a new one at first sign-in.\n"
            ),
        );
    }
    let issuer = state.config.issuer().to_string();
    // Commands run beside the server (`client add`) print the issuer it really serves.
    latchkey::store::settings::set_served_issuer(&*state.pool.get()?, &issuer)?;
    let local = listener.local_addr()?;
    let data = state.config.server.data_dir.display().to_string();
    let tls = !state.config.server.tls_cert.as_os_str().is_empty();
    let pool = state.pool.clone();
    let events_file = state.config.log.events_file.clone();
    let server = build_app(state, listener)?;
    let metrics = match metrics {
        Some((listener, handle)) => {
            let addr = listener.local_addr()?;
            tracing::info!(%addr, "metrics at /metrics");
            Some(latchkey::telemetry::metrics_server(listener, handle)?)
        }
        None => None,
    };
    tracing::info!(bind = %local, %issuer, data_dir = %data, tls, "latchkey is serving");
    // SIGTERM or SIGINT: stop accepting, let requests in flight finish (server.shutdown_timeout_secs).
    actix_web::rt::System::new().block_on(async move {
        let metrics_handle = metrics.as_ref().map(|m| m.handle());
        if let Some(m) = metrics {
            actix_web::rt::spawn(m);
        }
        let served = server.await;
        if let Some(h) = metrics_handle {
            h.stop(false).await;
        }
        served
    })?;
    // The last events for the SIEM, then fold the write-ahead log into the database file, so a
    // stopped server leaves one file.
    if !events_file.as_os_str().is_empty()
        && let Err(e) = latchkey::telemetry::export_events(&pool, &events_file)
    {
        tracing::warn!(error = %e, "the last sign-in and audit events were not exported");
    }
    if let Err(e) = latchkey::store::checkpoint(&pool) {
        tracing::warn!(error = %e, "could not checkpoint the database at shutdown");
    }
    tracing::info!("latchkey stopped");
    Ok(())
}
