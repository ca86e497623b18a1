//! PostgreSQL under the engine-neutral connection: the one file that knows how latchkey's SQL
//! (written in SQLite's dialect) and its values map onto PostgreSQL.
//!
//! - Each pooled connection is a `postgres::Client` on a thread of its own. The synchronous
//!   client runs a runtime of its own, which may not be started from inside actix's; callers
//!   hand it work over a channel and wait at most the configured timeout (plus a second), so an
//!   unreachable server is a 503, never a hung worker.
//! - SQL: `?N` and `?` placeholders become `$N`, `LIKE` becomes `ILIKE` (SQLite's LIKE ignores
//!   ASCII case), `ifnull(` becomes `coalesce(`, `group_concat(x, sep)` becomes `string_agg`,
//!   SQLite's `INDEXED BY` hints go, and `INSERT OR IGNORE` becomes `ON CONFLICT DO NOTHING`. Columns SQLite declares `COLLATE NOCASE` are `citext`, and the `nocase`
//!   collation (ICU, case-insensitive) serves queries that say `COLLATE NOCASE` (migration 0001).
//! - Values: integers (`bigint`, and flags, which stay 0/1 `bigint` as in SQLite), text,
//!   `bytea`, `jsonb` (sent and read as text) and `numeric` (sums) are converted from and to
//!   SQLite's kinds, following the type PostgreSQL infers for each parameter.
//! - Writers take turns: a transaction takes one transaction-scoped advisory lock, as SQLite's
//!   IMMEDIATE transactions take its write lock.
//! - Session settings: `statement_timeout` and `lock_timeout` are the configured timeout.

use super::{Error, Result, ToSql, Value, ValueRef};
use bytes::{BufMut, BytesMut};
use postgres::types::{IsNull, Type};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// The advisory lock every writing transaction takes ("lk" + 1).
const WRITE_LOCK: i64 = 0x6c6b_0001;
/// The advisory lock migrations run under, so instances starting together take turns.
const MIGRATION_LOCK: i64 = 0x6c6b_0002;
/// Prepared statements one connection keeps (list pages build their SQL from their filters).
const MAX_STATEMENTS: usize = 512;

/// Where and how to connect, parsed from `database.url`.
#[derive(Clone)]
pub struct PgConfig {
    config: postgres::Config,
    identity: Arc<str>,
    timeout: Duration,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.identity)
    }
}

impl PgConfig {
    /// `url` is `postgres://user[:password]@host[:port]/database[?…]` (or libpq's key=value
    /// form). Err says what is wrong, without the password.
    pub fn parse(url: &str, timeout: Duration) -> std::result::Result<Self, String> {
        let mut config: postgres::Config = url.parse().map_err(|e| format!("database.url is not a PostgreSQL URL: {e}"))?;
        if config.get_dbname().is_none() {
            return Err("database.url names no database (postgres://user@host/database)".into());
        }
        config.connect_timeout(timeout).keepalives(true).keepalives_idle(Duration::from_secs(30)).tcp_user_timeout(timeout.max(Duration::from_secs(1)) * 5);
        if config.get_application_name().is_none() {
            config.application_name("latchkey");
        }
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let identity = format!("postgres://{}@{}:{port}/{}", config.get_user().unwrap_or(""), hosts.join(","), config.get_dbname().unwrap_or(""));
        Ok(Self { config, identity: identity.into(), timeout })
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }
}

/// What every connection's session is set to: the configured timeout bounds statements and lock
/// waits; a transaction left idle is ended by the server after 30 times it.
fn session_settings(timeout: Duration) -> String {
    format!(
        "SET statement_timeout = {ms}; SET lock_timeout = {ms}; SET idle_in_transaction_session_timeout = {idle}; SET TIME ZONE 'UTC'",
        ms = timeout.as_millis(),
        idle = (timeout * 30).as_millis()
    )
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// What lives on a connection's thread.
struct Session {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

impl Session {
    fn statement(&mut self, sql: &str) -> std::result::Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let statement = self.client.prepare(&translate(sql))?;
        if self.statements.len() >= MAX_STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

pub struct PgConn {
    timeout: Duration,
    /// A statement failed since the transaction began (PostgreSQL has then aborted it).
    failed: std::cell::Cell<bool>,
    jobs: mpsc::Sender<Job>,
    broken: Arc<AtomicBool>,
    identity: Arc<str>,
    /// When the server last answered on this connection.
    answered: std::cell::Cell<Option<std::time::Instant>>,
}

/// How long a caller waits for an answer before giving the connection up: the server's own
/// timeouts, and a second for the answer to travel.
fn patience(timeout: Duration) -> Duration {
    timeout + Duration::from_secs(1)
}

impl PgConn {
    pub fn connect(config: &PgConfig) -> Result<Self> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let settings = session_settings(config.timeout);
        let pg = config.config.clone();
        std::thread::Builder::new()
            .name("latchkey-pg".into())
            .spawn(move || {
                let client = pg.connect(postgres::NoTls).and_then(|mut c| c.batch_execute(&settings).map(|()| c));
                let mut session = match client {
                    Ok(client) => {
                        let _ = ready_tx.send(Ok(()));
                        Session { client, statements: HashMap::new() }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = inbox.recv() {
                    job(&mut session);
                }
            })
            .map_err(|_| Error::Gone)?;
        match ready_rx.recv_timeout(patience(config.timeout)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(Error::Gone),
        }
        Ok(Self {
            timeout: config.timeout,
            failed: std::cell::Cell::new(false),
            jobs,
            broken: Arc::new(AtomicBool::new(false)),
            identity: config.identity.clone(),
            answered: std::cell::Cell::new(None),
        })
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Whether the server answered on this connection within the last second: then the pool
    /// hands it out without first asking the server whether it is there (a round trip per
    /// request). A connection the server dropped in that second fails one request with a 503.
    pub fn answered_lately(&self) -> bool {
        self.answered.get().is_some_and(|at| at.elapsed() < Duration::from_secs(1))
    }

    /// Runs `f` on the connection's thread and waits for its answer.
    fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut Session) -> std::result::Result<R, postgres::Error> + Send + 'static) -> Result<R> {
        self.call_within(patience(self.timeout), f)
    }

    fn call_within<R: Send + 'static>(
        &self,
        patience: Duration,
        f: impl FnOnce(&mut Session) -> std::result::Result<R, postgres::Error> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |s| {
            let _ = tx.send(f(s));
        });
        if self.jobs.send(job).is_err() {
            self.broken.store(true, Ordering::Relaxed);
            return Err(Error::Gone);
        }
        let answer = rx.recv_timeout(patience);
        if !matches!(answer, Ok(Ok(_))) {
            self.failed.set(true);
        }
        match answer {
            Ok(Ok(v)) => {
                self.answered.set(Some(std::time::Instant::now()));
                Ok(v)
            }
            Ok(Err(e)) => {
                if e.is_closed() {
                    self.broken.store(true, Ordering::Relaxed);
                }
                Err(e.into())
            }
            Err(_) => {
                // No answer in time: the server is unreachable or stuck. The thread ends when
                // its socket gives up; the pool opens a new connection.
                self.broken.store(true, Ordering::Relaxed);
                Err(Error::Gone)
            }
        }
    }

    pub fn batch(&self, sql: &str) -> Result<()> {
        let sql = sql.to_string();
        self.call(move |s| s.client.batch_execute(&sql))
    }

    /// BEGIN; with `take_turns`, the writers' advisory lock too.
    pub fn begin(&self, take_turns: bool) -> Result<()> {
        self.failed.set(false);
        let begun = match take_turns {
            true => self.call(|s| s.client.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"))),
            false => self.call(|s| s.client.batch_execute("BEGIN")),
        };
        // BEGIN ran even when the lock was not granted in time: end that transaction, or the
        // pooled connection would refuse every statement until the server gives up on it.
        if begun.is_err() && self.batch("ROLLBACK").is_err() {
            self.broken.store(true, Ordering::Relaxed);
        }
        begun
    }

    pub fn failed_in_transaction(&self) -> bool {
        self.failed.get()
    }

    /// The failed statement was rolled back to a savepoint: the transaction goes on.
    pub fn clear_failure(&self) {
        self.failed.set(false);
    }

    pub fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize> {
        let (sql, values) = (sql.to_string(), owned(params)?);
        self.call(move |s| {
            let r = s.statement(&sql).and_then(|statement| s.client.execute(&statement, &refs(&values)));
            failed(&r, &sql);
            Ok(r? as usize)
        })
    }

    pub fn query(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<postgres::Row>> {
        let (sql, values) = (sql.to_string(), owned(params)?);
        self.call(move |s| {
            let r = s.statement(&sql).and_then(|statement| s.client.query(&statement, &refs(&values)));
            failed(&r, &sql);
            r
        })
    }

    /// Applies the migrations this database has not had, in order, each in its own transaction,
    /// under an advisory lock so instances starting together take turns. Returns the version.
    pub fn migrate(&self, migrations: &'static [&'static str]) -> Result<std::result::Result<usize, String>> {
        let settings = session_settings(self.timeout);
        self.call_within(Duration::from_secs(600), move |s| {
            s.client.batch_execute(&format!("SET statement_timeout = 0; SET lock_timeout = 0; SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
            let outcome = apply(&mut s.client, migrations);
            let restore = s.client.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK}); {settings}"));
            s.statements.clear();
            let outcome = outcome?;
            restore?;
            Ok(outcome)
        })
    }
}

fn apply(client: &mut postgres::Client, migrations: &[&str]) -> std::result::Result<std::result::Result<usize, String>, postgres::Error> {
    client.batch_execute("CREATE TABLE IF NOT EXISTS latchkey_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")?;
    let current: i64 = client.query_one(SCHEMA_VERSION_SQL, &[])?.get(0);
    if current as usize > migrations.len() {
        return Ok(Err(format!("the database's schema is version {current}, newer than this latchkey knows ({}): upgrade latchkey", migrations.len())));
    }
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        let mut tx = client.transaction()?;
        tx.batch_execute(sql)?;
        tx.execute("INSERT INTO latchkey_schema (version, applied_at) VALUES ($1, extract(epoch FROM now())::bigint)", &[&(i as i64 + 1)])?;
        tx.commit()?;
    }
    Ok(Ok(migrations.len()))
}

/// Says at debug level which statement failed (its SQL, never its parameters' values).
fn failed<T>(r: &std::result::Result<T, postgres::Error>, sql: &str) {
    if let Err(e) = r {
        tracing::debug!(error = %describe(e), sql, "PostgreSQL statement failed");
    }
}

/// The schema version of a PostgreSQL database (0 before the first migration).
pub const SCHEMA_VERSION_SQL: &str = "SELECT coalesce(max(version), 0)::bigint FROM latchkey_schema";

/// What went wrong, for logs and messages: the server's code and message, never its DETAIL
/// (which can quote a row's values).
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// Whether `e` is the storage's fault (unreachable, shutting down, out of space, read-only, a
/// timeout or a lock not granted in time) rather than the statement's.
pub fn unavailable(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    let Some(code) = e.code() else { return true };
    let code = code.code();
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (disk full, out of memory, too many connections)
        || code.starts_with("57") // operator intervention: query_canceled (statement timeout), admin shutdown
        || code.starts_with("40") // serialization failure, deadlock: try again
        || code == "55P03" // lock_not_available (lock timeout)
        || code == "25006" // read_only_sql_transaction (a standby)
        || code == "58030" // io_error
}

/// SQLite's dialect as PostgreSQL's (see the module comment).
pub(super) fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    let (mut quoted, mut next) = (false, 0);
    while let Some(c) = chars.next() {
        if quoted {
            quoted = c != '\'';
            out.push(c);
            continue;
        }
        match c {
            '\'' => {
                quoted = true;
                out.push(c);
            }
            '?' => {
                out.push('$');
                let mut digits = false;
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    out.push(d);
                    digits = true;
                }
                if !digits {
                    next += 1;
                    out.push_str(&next.to_string());
                }
            }
            _ => out.push(c),
        }
    }
    let mut out = out.replace(" LIKE ", " ILIKE ").replace("ifnull(", "coalesce(").replace("IFNULL(", "coalesce(").replace("group_concat(", "string_agg(");
    // SQLite's index hints: PostgreSQL's planner chooses for itself.
    while let Some(at) = out.find(" INDEXED BY ") {
        let rest = &out[at + " INDEXED BY ".len()..];
        let name = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        out.replace_range(at..at + " INDEXED BY ".len() + name, "");
    }
    if let Some(rest) = out.trim_start().strip_prefix("INSERT OR IGNORE INTO") {
        out = format!("INSERT INTO{rest} ON CONFLICT DO NOTHING");
    }
    out
}

fn owned(params: &[&dyn ToSql]) -> Result<Vec<PgValue>> {
    params
        .iter()
        .map(|p| match p.to_sql()? {
            rusqlite::types::ToSqlOutput::Borrowed(v) => Ok(PgValue(super::owned(v))),
            rusqlite::types::ToSqlOutput::Owned(v) => Ok(PgValue(v)),
            _ => Err(Error::Column("parameter".into(), "this kind of value cannot be sent to PostgreSQL".into())),
        })
        .collect()
}

fn refs(values: &[PgValue]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn postgres::types::ToSql + Sync)).collect()
}

fn textual(ty: &Type) -> bool {
    matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON) || ty.name() == "citext"
}

/// A parameter, encoded as the type PostgreSQL inferred for its place.
#[derive(Debug)]
struct PgValue(Value);

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl postgres::types::ToSql for PgValue {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        let mismatch = || -> BoxError { format!("a {} value cannot be sent as {ty}", kind(&self.0)).into() };
        match &self.0 {
            Value::Null => return Ok(IsNull::Yes),
            Value::Integer(i) => match *ty {
                Type::INT8 => out.put_i64(*i),
                Type::INT4 => out.put_i32(i32::try_from(*i)?),
                Type::INT2 => out.put_i16(i16::try_from(*i)?),
                Type::BOOL => out.put_u8(u8::from(*i != 0)),
                Type::FLOAT8 => out.put_f64(*i as f64),
                Type::FLOAT4 => out.put_f32(*i as f32),
                _ if textual(ty) => out.put_slice(i.to_string().as_bytes()),
                _ => return Err(mismatch()),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => out.put_f64(*f),
                Type::FLOAT4 => out.put_f32(*f as f32),
                _ if textual(ty) => out.put_slice(f.to_string().as_bytes()),
                _ => return Err(mismatch()),
            },
            Value::Text(s) => match *ty {
                Type::JSONB => {
                    out.put_u8(1);
                    out.put_slice(s.as_bytes());
                }
                Type::INT8 => out.put_i64(s.parse().map_err(|_| mismatch())?),
                Type::INT4 => out.put_i32(s.parse().map_err(|_| mismatch())?),
                Type::BYTEA => out.put_slice(s.as_bytes()),
                _ if textual(ty) => out.put_slice(s.as_bytes()),
                _ => return Err(mismatch()),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => out.put_slice(b),
                _ => return Err(mismatch()),
            },
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Integer(_) => "integer",
        Value::Real(_) => "real",
        Value::Text(_) => "text",
        Value::Blob(_) => "blob",
    }
}

/// A column's raw bytes, whatever its type.
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> postgres::types::FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        Ok(Self(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, BoxError> {
        Ok(Self(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Column `i` of `row` as one of SQLite's kinds of value.
pub(super) fn value(row: &postgres::Row, i: usize) -> Result<ValueRef<'_>> {
    let Raw(raw) = row.try_get(i)?;
    let Some(b) = raw else { return Ok(ValueRef::Null) };
    let column = &row.columns()[i];
    let bad = || Error::Column(column.name().to_string(), format!("malformed {} value", column.type_()));
    let int = |n: usize| -> Result<i64> {
        let bytes = b.get(..n).filter(|_| b.len() == n).ok_or_else(bad)?;
        Ok(match n {
            8 => i64::from_be_bytes(bytes.try_into().expect("8 bytes")),
            4 => i32::from_be_bytes(bytes.try_into().expect("4 bytes")).into(),
            _ => i16::from_be_bytes(bytes.try_into().expect("2 bytes")).into(),
        })
    };
    Ok(match *column.type_() {
        Type::INT8 => ValueRef::Integer(int(8)?),
        Type::INT4 => ValueRef::Integer(int(4)?),
        Type::INT2 => ValueRef::Integer(int(2)?),
        Type::BOOL => ValueRef::Integer(i64::from(*b.first().ok_or_else(bad)? != 0)),
        Type::FLOAT8 => ValueRef::Real(f64::from_be_bytes(b.try_into().map_err(|_| bad())?)),
        Type::FLOAT4 => ValueRef::Real(f32::from_be_bytes(b.try_into().map_err(|_| bad())?).into()),
        Type::BYTEA => ValueRef::Blob(b),
        Type::JSONB => ValueRef::Text(b.get(1..).ok_or_else(bad)?),
        Type::NUMERIC => numeric(b).ok_or_else(bad)?,
        _ => ValueRef::Text(b),
    })
}

/// A `numeric` (what `sum` of a bigint gives) as an integer when it has no fraction, else a
/// real. Binary format: digit count, weight, sign, display scale, then base-10000 digits.
fn numeric(b: &[u8]) -> Option<ValueRef<'static>> {
    let word = |i: usize| b.get(i * 2..i * 2 + 2).map(|w| u16::from_be_bytes([w[0], w[1]]));
    let (count, weight, sign, scale) = (word(0)? as usize, word(1)? as i16, word(2)?, word(3)?);
    if sign == 0xC000 {
        return Some(ValueRef::Real(f64::NAN));
    }
    let mut value = 0f64;
    for k in 0..count {
        value += f64::from(word(4 + k)?) * 10000f64.powi(i32::from(weight) - k as i32);
    }
    if sign == 0x4000 {
        value = -value;
    }
    Some(if scale == 0 && value.abs() < 9.0e15 { ValueRef::Integer(value as i64) } else { ValueRef::Real(value) })
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn placeholders_and_dialect_are_translated_outside_quotes() {
        assert_eq!(
            translate("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d LIKE ?2 ESCAPE '\\'"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d ILIKE $2 ESCAPE '\\'"
        );
        assert_eq!(translate("UPDATE t SET a = ? WHERE b = ?"), "UPDATE t SET a = $1 WHERE b = $2");
        assert_eq!(translate("SELECT count(*) FROM t INDEXED BY t_at WHERE at > ?1"), "SELECT count(*) FROM t WHERE at > $1");
        assert_eq!(translate("INSERT OR IGNORE INTO t (a) VALUES (?1)"), "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING");
        assert_eq!(translate("SELECT ifnull(name, '') FROM t WHERE x = 'it''s ?'"), "SELECT coalesce(name, '') FROM t WHERE x = 'it''s ?'");
    }
}
