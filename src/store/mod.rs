//! The only code that writes SQL, for two engines behind one connection type (`db`): SQLite in
//! WAL mode (the embedded default) or PostgreSQL (`database.url`), behind a small r2d2 pool.
//! Schema changes only through the numbered migrations, one set per engine with the same
//! numbers: `migrations/` (SQLite) and `migrations/pg/`.

pub mod cache;
pub mod clients;
pub mod codes;
pub mod consents;
pub mod copy;
pub mod db;
pub mod directory;
pub mod events;
pub mod keys;
pub mod logout;
pub mod mfa;
pub mod overview;
pub mod policies;
pub mod protection;
pub mod retention;
pub mod sessions;
pub mod settings;
pub mod signins;
pub mod tokens;
pub mod users;

use db::{Connection, Engine, Manager};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite_migration::{M, Migrations};
use std::path::Path;

pub type Pool = r2d2::Pool<Manager>;
pub type Conn = r2d2::PooledConnection<Manager>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] db::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("cannot create data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Postgres(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A client already holds as many pending sign-ins as it may.
    #[error("too many sign-ins in progress from this client")]
    TooManyPending,
    /// Database work handed to a blocking thread did not finish (it panicked, or the server is
    /// shutting down).
    #[error("the database work was interrupted")]
    Interrupted,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A pool connection a request can hand back while it waits for something else, a password
/// hash above all: a queue of sign-ins waiting for the argon2id threads must not hold the
/// pool's connections, or every other request (refreshes, userinfo, pages) would wait behind
/// them. Used as a `Connection` otherwise.
pub struct Lease<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
}

impl<'p> Lease<'p> {
    pub fn get(pool: &'p Pool) -> Result<Self> {
        Ok(Lease { pool, conn: Some(pool.get()?) })
    }

    /// Runs `wait` with the connection back in the pool, then takes one again. Never inside a
    /// transaction (it would be rolled back); whatever was read before may have changed after.
    pub fn without<T>(&mut self, wait: impl FnOnce() -> T) -> Result<T> {
        debug_assert!(self.conn.as_ref().is_none_or(|c| c.is_autocommit()), "a lease is handed back only between transactions");
        self.conn = None;
        let out = wait();
        self.conn = Some(self.pool.get()?);
        Ok(out)
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Only `without` empties it, and it either fills it again or returns the error that
        // ends the request.
        self.conn.as_ref().expect("a lease holds a connection outside `without`")
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("a lease holds a connection outside `without`")
    }
}

/// What a 503 tells clients to wait before trying again.
pub const RETRY_AFTER_SECS: u64 = 5;

impl StoreError {
    /// Refused by a memory connection (`db::Connection::memory`): the work needs the database.
    pub fn not_in_memory(&self) -> bool {
        matches!(self, Self::Db(db::Error::NotInMemory))
    }

    /// A fault of the storage rather than of latchkey or the request: the disk is full or
    /// read-only, the file cannot be opened, or no connection or lock came in time. Answered
    /// 503 with Retry-After (OAuth: `temporarily_unavailable`), never a dropped connection.
    pub fn unavailable(&self) -> bool {
        match self {
            Self::Pool(_) | Self::Interrupted => true,
            Self::Db(e) => e.unavailable(),
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e.into())
    }
}

/// How many migrations there are: the schema version of an up-to-date database.
const MIGRATION_COUNT: usize = MIGRATIONS.len();

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_mfa.sql"),
    include_str!("migrations/0003_admin.sql"),
    include_str!("migrations/0004_conditional_access.sql"),
    include_str!("migrations/0005_protection.sql"),
    include_str!("migrations/0006_email_confirmations.sql"),
    include_str!("migrations/0007_gate.sql"),
    include_str!("migrations/0008_recovery.sql"),
    include_str!("migrations/0009_backchannel_logout.sql"),
    include_str!("migrations/0010_consent.sql"),
    include_str!("migrations/0011_my_apps.sql"),
    include_str!("migrations/0012_pending_ip.sql"),
    include_str!("migrations/0013_my_sessions.sql"),
    include_str!("migrations/0014_frontchannel_logout.sql"),
    include_str!("migrations/0015_locale.sql"),
    include_str!("migrations/0016_client_secret_expiry.sql"),
    include_str!("migrations/0017_overview.sql"),
    include_str!("migrations/0018_operations.sql"),
    include_str!("migrations/0019_shared_protection.sql"),
    include_str!("migrations/0020_failure_index.sql"),
];

/// PostgreSQL's migrations: the same numbers, the same changes.
const PG_MIGRATIONS: &[&str] = &[
    include_str!("migrations/pg/0001_init.sql"),
    include_str!("migrations/pg/0002_mfa.sql"),
    include_str!("migrations/pg/0003_admin.sql"),
    include_str!("migrations/pg/0004_conditional_access.sql"),
    include_str!("migrations/pg/0005_protection.sql"),
    include_str!("migrations/pg/0006_email_confirmations.sql"),
    include_str!("migrations/pg/0007_gate.sql"),
    include_str!("migrations/pg/0008_recovery.sql"),
    include_str!("migrations/pg/0009_backchannel_logout.sql"),
    include_str!("migrations/pg/0010_consent.sql"),
    include_str!("migrations/pg/0011_my_apps.sql"),
    include_str!("migrations/pg/0012_pending_ip.sql"),
    include_str!("migrations/pg/0013_my_sessions.sql"),
    include_str!("migrations/pg/0014_frontchannel_logout.sql"),
    include_str!("migrations/pg/0015_locale.sql"),
    include_str!("migrations/pg/0016_client_secret_expiry.sql"),
    include_str!("migrations/pg/0017_overview.sql"),
    include_str!("migrations/pg/0018_operations.sql"),
    include_str!("migrations/pg/0019_shared_protection.sql"),
    include_str!("migrations/pg/0020_failure_index.sql"),
];

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// A consistent copy of the live database at `to`, private to the service user, made with
/// SQLite's online backup API while the server keeps serving: every page in one step, inside
/// one read transaction — in WAL mode writers go on meanwhile, and the copy is one moment's
/// database (a copy in small steps would start over at each write of a busy server). Refuses
/// to overwrite a file.
pub fn backup(pool: &Pool, to: &Path) -> Result<()> {
    let conn = pool.get()?;
    let Some(source) = conn.sqlite() else {
        return Err(StoreError::Postgres("latchkey backup copies a SQLite database; back up PostgreSQL with pg_dump (see the README)".into()));
    };
    // A new file, private to the service user. Never an existing path, a symbolic link included
    // (even a dangling one: in a shared backup directory it could point anywhere).
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(to).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => StoreError::Conflict(format!("{} already exists; choose a new file", to.display())),
        _ => StoreError::Conflict(format!("cannot create the backup file {}: {e}", to.display())),
    })?;
    tighten(to, 0o600).map_err(|e| StoreError::Conflict(format!("cannot make {} private: {e}", to.display())))?;
    let copied = (|| -> rusqlite::Result<()> {
        use rusqlite::OpenFlags as F;
        let mut target = rusqlite::Connection::open_with_flags(to, F::SQLITE_OPEN_READ_WRITE | F::SQLITE_OPEN_NOFOLLOW | F::SQLITE_OPEN_NO_MUTEX)?;
        let backup = rusqlite::backup::Backup::new(source, &mut target)?;
        // A step can find the target busy or locked: try again shortly, for at most 30 s.
        for _ in 0..6000 {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => {
                    drop(backup);
                    // A self-contained file: no write-ahead log, so it can be checked and restored
                    // from a read-only place (a snapshot, a mount) without -wal and -shm files.
                    let _: String = target.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
                    return Ok(());
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        Err(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), Some("the backup did not finish within 30 s".into())))
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(to);
        return Err(e.into());
    }
    Ok(())
}

/// The lock a serving process holds on its data directory, so that a restore cannot replace the
/// database under it. Dropped (released) when the process ends.
pub fn lock_data_dir(data_dir: &Path) -> std::io::Result<Option<std::fs::File>> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("latchkey.lock");
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path)?;
    // Like every file in the data directory, private to the service user.
    private_file(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Replaces the installation's database with the backup `from`, after checking it (SQLite's
/// integrity check, and a latchkey schema no newer than this version). Refuses while a server
/// holds the data directory.
/// `passphrase` says what seals this installation's keys (asked once the file has passed its
/// checks): a backup whose signing keys it cannot open is refused, since the server could not
/// start on it.
pub fn restore(data_dir: &Path, from: &Path, passphrase: impl FnOnce() -> Result<String, String>) -> Result<()> {
    let io = |e: std::io::Error| StoreError::DataDir(data_dir.display().to_string(), e);
    let _lock = lock_data_dir(data_dir)
        .map_err(io)?
        .ok_or_else(|| StoreError::Conflict("a latchkey server is using this data directory; stop it before restoring".into()))?;
    {
        let src = rusqlite::Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let check: String = src.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Corrupt(format!("{} fails its integrity check: {check}", from.display())));
        }
        let version: i64 = src.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let users: rusqlite::Result<i64> = src.query_row("SELECT count(*) FROM users", [], |r| r.get(0));
        if version == 0 || version > MIGRATION_COUNT as i64 || users.is_err() {
            return Err(StoreError::Corrupt(format!("{} is not a latchkey database this version can use", from.display())));
        }
        let sealed: Option<String> =
            src.query_row("SELECT private_pem FROM signing_keys WHERE encrypted = 1 LIMIT 1", [], |r| r.get(0)).map(Some).or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        if let Some(pem) = sealed {
            let passphrase = passphrase().map_err(StoreError::Conflict)?;
            if openssl::pkey::PKey::private_key_from_pem_passphrase(pem.as_bytes(), passphrase.as_bytes()).is_err() {
                return Err(StoreError::Conflict(format!(
                    "the signing keys in {} are sealed with another master key than this installation's (master.key in {}, or keys.encryption_secret): put the one of the installation the backup came from in place, then restore again",
                    from.display(),
                    data_dir.display()
                )));
            }
        }
    }
    let db = data_dir.join("latchkey.db");
    let staged = data_dir.join("latchkey.db.restoring");
    std::fs::copy(from, &staged).map_err(io)?;
    private_file(&staged).map_err(io)?;
    // Owned as the data directory is: a restore run as root for a service user leaves a
    // database the service can open.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let dir = std::fs::metadata(data_dir).map_err(io)?;
        let file = std::fs::metadata(&staged).map_err(io)?;
        if (file.uid(), file.gid()) != (dir.uid(), dir.gid()) {
            std::os::unix::fs::chown(&staged, Some(dir.uid()), Some(dir.gid())).map_err(io)?;
        }
    }
    for stale in ["latchkey.db-wal", "latchkey.db-shm"] {
        match std::fs::remove_file(data_dir.join(stale)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    std::fs::rename(&staged, &db).map_err(io)?;
    Ok(())
}

/// Whether the database answers, its schema is the latest, and (`write`) it accepts writes (a
/// heartbeat row is written and committed, so a full disk shows too): what `/readyz` reports.
/// Err says what is wrong.
pub fn ready(conn: &Connection, now: i64, write: bool) -> std::result::Result<(), String> {
    let version: i64 = schema_version(conn).map_err(|e| format!("database: {e}"))?;
    let latest = MIGRATION_COUNT as i64;
    // A newer schema is a newer instance's, mid rolling upgrade: migrations only add, so this
    // one keeps serving until it is replaced (it would not start on it).
    if version < latest {
        return Err(format!("schema version {version}, expected {latest}"));
    }
    if !write {
        return Ok(());
    }
    conn.execute("INSERT INTO settings (key, value) VALUES ('ready_probe', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [now.to_string()])
        .map_err(|e| format!("database not writable: {e}"))?;
    Ok(())
}

/// Checks, before a server binds its port, that the data directory and the database file can
/// be written: a read-only volume or file is a one-line reason at start, not a server that
/// answers 500 to every sign-in. Err is that reason.
pub fn check_writable(data_dir: &Path) -> std::result::Result<(), String> {
    let dir = data_dir.display();
    private_dir(data_dir).map_err(|e| format!("data directory {dir} cannot be created or used: {e}"))?;
    let probe = data_dir.join(".latchkey-write-test");
    std::fs::write(&probe, b"").and_then(|()| std::fs::remove_file(&probe)).map_err(|e| format!("data directory {dir} is not writable: {e}"))?;
    let db = data_dir.join("latchkey.db");
    if !db.exists() {
        return Ok(());
    }
    let file = db.display();
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| format!("database file {file} cannot be opened for writing: {e}"))?;
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
        return Err(format!("database file {file} is read-only"));
    }
    conn.busy_timeout(std::time::Duration::from_secs(1)).map_err(|e| format!("database file {file}: {e}"))?;
    conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").map_err(|e| format!("database file {file} cannot be written: {e}"))
}

/// The schema version of the database: how many migrations it has had.
pub fn schema_version(conn: &Connection) -> db::Result<i64> {
    match conn.engine() {
        Engine::Sqlite => conn.query_row("PRAGMA user_version", [], |r| r.get(0)),
        Engine::Postgres => conn.query_row(db::PG_SCHEMA_VERSION_SQL, [], |r| r.get(0)),
    }
}

/// Folds the write-ahead log into the database file: at a clean shutdown, so the file alone is
/// the whole database. Nothing to do on PostgreSQL.
pub fn checkpoint(pool: &Pool) -> Result<()> {
    let conn = pool.get()?;
    let Some(sqlite) = conn.sqlite() else { return Ok(()) };
    let busy: i64 = sqlite.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    if busy != 0 {
        return Err(StoreError::Conflict("the write-ahead log is still in use (another process has the database open)".into()));
    }
    Ok(())
}

/// Counts connection waits and timeouts for the metrics.
#[derive(Debug)]
struct PoolMetrics;

impl r2d2::HandleEvent for PoolMetrics {
    fn handle_checkout(&self, event: r2d2::event::CheckoutEvent) {
        metrics::histogram!("latchkey_db_pool_wait_seconds").record(event.duration().as_secs_f64());
    }

    fn handle_timeout(&self, _event: r2d2::event::TimeoutEvent) {
        metrics::counter!("latchkey_db_pool_timeouts_total").increment(1);
    }
}

/// Opens the SQLite database in `data_dir` with the default pool; see [`open_with`].
pub fn open(data_dir: &Path) -> Result<Pool> {
    open_with(data_dir, 8, std::time::Duration::from_secs(2))
}

/// Where the data lives: `database.url` when set (PostgreSQL), else `<data_dir>/latchkey.db`.
pub fn open_configured(data_dir: &Path, url: &str, pool_size: u32, timeout: std::time::Duration) -> Result<Pool> {
    // The data directory holds the master key, the outbox and the events file whichever engine
    // holds the data.
    private_dir(data_dir).map_err(|e| StoreError::DataDir(data_dir.display().to_string(), e))?;
    match url.trim() {
        "" => open_with(data_dir, pool_size, timeout),
        url => open_postgres(url, pool_size, timeout),
    }
}

/// Connects to the PostgreSQL database `url` and brings its schema up to date (under an
/// advisory lock: instances starting together take turns).
pub fn open_postgres(url: &str, pool_size: u32, timeout: std::time::Duration) -> Result<Pool> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::Postgres("database.url must start with postgres:// (SQLite needs no URL: leave it empty)".into()));
    }
    let manager = Manager::postgres(url, timeout).map_err(StoreError::Postgres)?;
    let pool = pool_builder(pool_size, timeout).build(manager)?;
    let conn = pool.get()?;
    conn.migrate_postgres(PG_MIGRATIONS)?.map_err(StoreError::Postgres)?;
    Ok(pool)
}

/// Either engine's pool: `pool_size` connections at most, one open from the start, a checkout
/// waiting at most `timeout`, each connection checked (and its per-request state reset) at
/// checkout (`Manager::is_valid`).
fn pool_builder(pool_size: u32, timeout: std::time::Duration) -> r2d2::Builder<Manager> {
    r2d2::Pool::builder().test_on_check_out(true).max_size(pool_size).min_idle(Some(1)).connection_timeout(timeout).event_handler(Box::new(PoolMetrics))
}

/// Prepared statements one SQLite connection keeps.
const KEPT_STATEMENTS: usize = 128;

/// Opens (creating if needed) `<data_dir>/latchkey.db` and brings its schema up to date, with
/// `pool_size` connections, each wait for a connection or a lock bounded by `timeout`. The
/// data directory is 0700 and the database files 0600, whatever the umask, and an existing
/// installation's are tightened: they hold password hashes, keys and tokens' hashes.
pub fn open_with(data_dir: &Path, pool_size: u32, timeout: std::time::Duration) -> Result<Pool> {
    let fault = |e| StoreError::DataDir(data_dir.display().to_string(), e);
    private_dir(data_dir).map_err(fault)?;
    let db = data_dir.join("latchkey.db");
    // SQLite creates the WAL and SHM files with the database file's mode, so the file is made
    // 0600 before SQLite first opens it; those of an existing installation are tightened too.
    private_file(&db).map_err(fault)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let companion = data_dir.join(format!("latchkey.db{suffix}"));
        if companion.exists() {
            tighten(&companion, 0o600).map_err(fault)?;
        }
    }
    let busy_ms = timeout.as_millis();
    let manager = SqliteConnectionManager::file(db).with_init(move |c| {
        c.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = {busy_ms};"
        ))?;
        // rusqlite keeps 16 prepared statements per connection; a sign-in alone runs more
        // distinct ones, so each was parsed again every time (1.5% of a sign-in's CPU). A few
        // KiB each, only those used.
        c.set_prepared_statement_cache_capacity(KEPT_STATEMENTS);
        Ok(())
    });
    // One connection is opened now (the migrations need it); the rest as load asks for them, so
    // a start on a busy machine is not bounded by `timeout` times the pool's size.
    let pool = pool_builder(pool_size, timeout).build(Manager::sqlite(manager, timeout))?;
    migrate_sqlite(&pool)?;
    Ok(pool)
}

fn migrate_sqlite(pool: &Pool) -> Result<()> {
    let mut conn = pool.get()?;
    migrations().to_latest(conn.sqlite_mut().expect("a SQLite pool"))?;
    Ok(())
}

/// Creates `dir` (and its parents) if needed and makes it 0700: readable only by latchkey's user.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    tighten(dir, 0o700)
}

/// Creates `file` if needed, 0600 from the first byte, and makes an existing one 0600.
pub fn private_file(file: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(file)?;
    tighten(file, 0o600)
}

/// Sets `path`'s permission bits to `mode` (set explicitly, so the umask does not matter), and
/// says so in the log when an existing installation's were wider.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let was = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if was != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        if was & !mode != 0 {
            tracing::warn!(path = %path.display(), "permissions tightened from {was:o} to {mode:o}");
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// An in-memory database with the full schema, for unit tests of store and domain code.
#[cfg(test)]
pub fn open_in_memory() -> Pool {
    let manager = SqliteConnectionManager::memory().with_init(|c| {
        c.execute_batch("PRAGMA foreign_keys = ON;")?;
        migrations().to_latest(c).map_err(|e| rusqlite::Error::InvalidParameterName(e.to_string()))
    });
    r2d2::Pool::builder().max_size(1).build(Manager::sqlite(manager, std::time::Duration::from_secs(5))).unwrap()
}

/// Runs `f` inside one IMMEDIATE transaction: everything it writes lands together or not at all.
pub fn transaction<T, E: From<StoreError>>(
    conn: &mut Connection,
    f: impl FnOnce(&db::Transaction<'_>) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let tx = conn.transaction().map_err(StoreError::from)?;
    let out = f(&tx)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(out)
}

/// The outcome of a transaction's body says whether its writes land: a refusal rolls back, a
/// success or a detected replay (whose revocation must stand) commits.
pub trait Outcome {
    fn commits(&self) -> bool;
}

/// Runs `f` inside one IMMEDIATE transaction and commits or rolls back as its outcome says.
pub fn decide<O: Outcome, E: From<StoreError>>(
    conn: &mut Connection,
    f: impl FnOnce(&db::Transaction<'_>) -> std::result::Result<O, E>,
) -> std::result::Result<O, E> {
    decide_as(conn, db::TransactionBehavior::Immediate, f)
}

/// [`decide`] in a row-locked transaction (see `db::TransactionBehavior::RowLocked`).
pub fn decide_row_locked<O: Outcome, E: From<StoreError>>(
    conn: &mut Connection,
    f: impl FnOnce(&db::Transaction<'_>) -> std::result::Result<O, E>,
) -> std::result::Result<O, E> {
    decide_as(conn, db::TransactionBehavior::RowLocked, f)
}

fn decide_as<O: Outcome, E: From<StoreError>>(
    conn: &mut Connection,
    behavior: db::TransactionBehavior,
    f: impl FnOnce(&db::Transaction<'_>) -> std::result::Result<O, E>,
) -> std::result::Result<O, E> {
    let tx = conn.transaction_with_behavior(behavior).map_err(StoreError::from)?;
    let out = f(&tx)?;
    if out.commits() {
        tx.commit().map_err(StoreError::from)?;
    } else {
        tx.rollback().map_err(StoreError::from)?;
    }
    Ok(out)
}

/// A UNIQUE constraint failing becomes a `Conflict` saying `message`; other errors pass through.
pub(crate) fn conflict_on_duplicate(e: db::Error, message: impl FnOnce() -> String) -> StoreError {
    match e {
        e if e.constraint() => StoreError::Conflict(message()),
        other => other.into(),
    }
}

pub(crate) fn json_list(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("bad JSON list: {e}")))
}

pub(crate) fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serialises")
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid_and_a_fresh_database_reaches_the_latest_version() {
        super::migrations().validate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pool = super::open(dir.path()).unwrap();
        let conn = pool.get().unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 20);
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    #[cfg(unix)]
    #[test]
    fn the_data_directory_is_0700_and_the_database_files_0600_even_when_they_existed_wider() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(data.join("latchkey.db"), b"").unwrap();
        std::fs::set_permissions(data.join("latchkey.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let pool = super::open(&data).unwrap();
        pool.get().unwrap().execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
        assert_eq!(mode(&data), 0o700);
        for f in ["latchkey.db", "latchkey.db-wal", "latchkey.db-shm"] {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
    }
}
