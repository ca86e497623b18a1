//! One connection type for both engines, so the code above `store/` does not know which it runs
//! on: SQLite (rusqlite, the embedded default) or PostgreSQL (`database.url`, several instances
//! on one database). Its surface is the part of rusqlite's that latchkey uses — `execute`,
//! `query_row`, `prepare_cached`, `query_map`, `Row::get`, transactions — and values cross it as
//! rusqlite's `ToSql`/`FromSql`, which PostgreSQL's values are converted to and from (`pg.rs`).
//! SQL is written once, in SQLite's dialect; the few statements that must differ ask
//! [`Connection::engine`].

mod pg;

pub use pg::{PgConfig, SCHEMA_VERSION_SQL as PG_SCHEMA_VERSION_SQL};
pub use rusqlite::ToSql;
pub use rusqlite::types::{FromSql, Value, ValueRef};

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("query returned no rows")]
    NoRows,
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    #[error("PostgreSQL: {}", pg::describe(.0))]
    Postgres(#[from] postgres::Error),
    #[error("column {0}: {1}")]
    Column(String, String),
    #[error("the PostgreSQL connection is gone")]
    Gone,
    #[error("a statement of the transaction failed, so nothing of it was committed")]
    Aborted,
    /// Asked of a connection that answers only from the in-memory copies ([`Connection::memory`]).
    #[error("this needs the database, and the connection answers from memory only")]
    NotInMemory,
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Self::NoRows,
            other => Self::Sqlite(other),
        }
    }
}

impl Error {
    /// A fault of the storage rather than of the request: the disk is full or read-only, the
    /// server cannot be reached, or no lock came in time.
    pub fn unavailable(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
                matches!(f.code, DiskFull | ReadOnly | CannotOpen | SystemIoFailure | DatabaseBusy | DatabaseLocked | OutOfMemory)
            }
            Self::Postgres(e) => pg::unavailable(e),
            Self::Gone => true,
            _ => false,
        }
    }

    /// A UNIQUE, foreign-key or CHECK constraint refused the write.
    pub fn constraint(&self) -> bool {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => f.code == rusqlite::ErrorCode::ConstraintViolation,
            Self::Postgres(e) => e.code().is_some_and(|c| c.code().starts_with("23")),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `.optional()`: no row becomes `None`, as rusqlite's trait of the same name.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A statement's parameters: `params![…]`, an array of values, `[]`, or [`params_from_iter`].
pub trait Params {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R;
}

impl Params for [&(dyn ToSql + Send + Sync); 0] {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(&[])
    }
}

impl Params for &[&dyn ToSql] {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(self)
    }
}

impl Params for () {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(&[])
    }
}

macro_rules! array_params {
    ($($n:literal)+) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
                let refs: Vec<&dyn ToSql> = self.iter().map(|v| v as &dyn ToSql).collect();
                f(&refs)
            }
        }
    )+};
}
array_params!(1 2 3 4 5 6 7 8);

macro_rules! tuple_params {
    ($(($($t:ident $i:tt),+))+) => {$(
        impl<$($t: ToSql),+> Params for ($($t,)+) {
            fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
                f(&[$(&self.$i as &dyn ToSql),+])
            }
        }
    )+};
}
tuple_params!((A 0) (A 0, B 1) (A 0, B 1, C 2) (A 0, B 1, C 2, D 3) (A 0, B 1, C 2, D 3, E 4) (A 0, B 1, C 2, D 3, E 4, F 5));

/// An owned copy of a value.
pub fn owned(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

pub struct ParamsFromIter<I>(I);

/// Parameters from an iterator, as rusqlite's function of the same name.
pub fn params_from_iter<I: IntoIterator>(iter: I) -> ParamsFromIter<I>
where
    I::Item: ToSql,
{
    ParamsFromIter(iter)
}

impl<I: IntoIterator> Params for ParamsFromIter<I>
where
    I::Item: ToSql,
{
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        let items: Vec<I::Item> = self.0.into_iter().collect();
        let refs: Vec<&dyn ToSql> = items.iter().map(|v| v as &dyn ToSql).collect();
        f(&refs)
    }
}

/// `params![a, b]`: a list of parameters of different types.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::store::db::ToSql] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::db::ToSql),+] as &[&dyn $crate::store::db::ToSql] };
}
pub use crate::params;

/// A connection to either engine. PostgreSQL's runs on a thread of its own (see `pg.rs`).
pub struct Connection {
    inner: Inner,
    /// Where this SQLite connection's transactions wait for the file's one writer.
    gate: Option<Arc<WriteGate>>,
    /// Whether a [`Transaction`] is open (PostgreSQL; SQLite knows it itself).
    in_transaction: std::cell::Cell<bool>,
    /// A write to a table the in-memory copies hold, not yet reported.
    config_written: std::cell::Cell<bool>,
    /// The `config_version` token this checkout already read (SQLite), with the process's and
    /// this connection's change counts then: one request reads it once, not once per app,
    /// policy and location lookup, and sees one version throughout (a change committed through
    /// another connection meanwhile is seen by the next request). Forgotten at every checkout
    /// (`is_valid`), so the next request reads it again, and after any write through this
    /// connection.
    config_seen: std::cell::RefCell<Option<(u64, u64, String)>>,
}

enum Inner {
    Sqlite(rusqlite::Connection),
    Postgres(pg::PgConn),
    /// No database: [`Connection::memory`].
    Memory(Memory, std::cell::Cell<bool>),
}

/// Which database a [`Connection::memory`] answers for: the copies of `store::cache` are kept
/// per database.
#[derive(Debug, Clone)]
pub struct Memory {
    identity: String,
    engine: Engine,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Connection({:?})", self.engine())
    }
}

impl Connection {
    /// A connection that holds no database: it answers what `store::cache` holds, current
    /// (read from the database within `cache::PG_CHECK_MS`, with no change by this process
    /// since), and refuses everything else with [`Error::NotInMemory`], remembering that it did
    /// ([`needed_database`](Self::needed_database)). Work that runs on it blocks on nothing, so
    /// an HTTP worker may run it; work that needed more is done again on a real connection.
    pub fn memory(of: &Memory) -> Self {
        Self::with(Inner::Memory(of.clone(), std::cell::Cell::new(false)), None)
    }

    /// What a [`memory`](Self::memory) connection for this connection's database needs; None
    /// for an in-memory database (never copied).
    pub fn memory_of(&self) -> Option<Memory> {
        Some(Memory { identity: self.identity()?, engine: self.engine() })
    }

    /// Whether this is a [`memory`](Self::memory) connection.
    pub fn in_memory(&self) -> bool {
        matches!(self.inner, Inner::Memory(..))
    }

    /// Whether this [`memory`](Self::memory) connection refused something: the work that ran
    /// on it must be done again on a real connection.
    pub fn needed_database(&self) -> bool {
        matches!(&self.inner, Inner::Memory(_, refused) if refused.get())
    }

    /// The refusal of a [`memory`](Self::memory) connection, remembered.
    pub(crate) fn not_in_memory(&self) -> Error {
        if let Inner::Memory(_, refused) = &self.inner {
            refused.set(true);
        }
        Error::NotInMemory
    }

    fn with(inner: Inner, gate: Option<Arc<WriteGate>>) -> Self {
        Connection { inner, gate, in_transaction: std::cell::Cell::new(false), config_written: std::cell::Cell::new(false), config_seen: Default::default() }
    }

    pub fn engine(&self) -> Engine {
        match &self.inner {
            Inner::Sqlite(_) => Engine::Sqlite,
            Inner::Postgres(_) => Engine::Postgres,
            Inner::Memory(m, _) => m.engine,
        }
    }

    /// The name of the function that gives the greatest of its arguments.
    pub fn greatest(&self) -> &'static str {
        match self.engine() {
            Engine::Sqlite => "max",
            Engine::Postgres => "greatest",
        }
    }

    /// SQL for the text of field `field` of the JSON object in `column` (a dotted path).
    pub fn json_text(&self, column: &str, field: &str) -> String {
        match self.engine() {
            Engine::Sqlite => format!("json_extract({column}, '$.{field}')"),
            Engine::Postgres => {
                let path: Vec<String> = field.split('.').map(|p| format!("'{p}'")).collect();
                format!("({column}::jsonb #>> ARRAY[{}])", path.join(", "))
            }
        }
    }

    /// The SQLite connection underneath, for what only SQLite has (PRAGMAs, online backup).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) | Inner::Memory(..) => None,
        }
    }

    pub fn sqlite_mut(&mut self) -> Option<&mut rusqlite::Connection> {
        match &mut self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) | Inner::Memory(..) => None,
        }
    }

    /// Applies PostgreSQL's migrations (see `pg.rs`); Ok(Err) says why the schema cannot be
    /// used (newer than this latchkey). Nothing to do on SQLite.
    pub fn migrate_postgres(&self, migrations: &'static [&'static str]) -> Result<std::result::Result<usize, String>> {
        match &self.inner {
            Inner::Sqlite(_) => Ok(Ok(0)),
            Inner::Postgres(p) => p.migrate(migrations),
            Inner::Memory(..) => Err(self.not_in_memory()),
        }
    }

    /// Names the database this connection is to (a SQLite file's path, a PostgreSQL URL
    /// without its password); None for an in-memory database.
    pub fn identity(&self) -> Option<String> {
        match &self.inner {
            Inner::Sqlite(c) => c.path().filter(|p| !p.is_empty()).map(str::to_string),
            Inner::Postgres(p) => Some(p.identity().to_string()),
            Inner::Memory(m, _) => Some(m.identity.clone()),
        }
    }

    /// The `config_version` token read earlier in this checkout, outside any transaction, with
    /// no write through this connection since (nor a change this process reported through
    /// `cache::changed`).
    pub(crate) fn config_seen(&self, generation: u64) -> Option<String> {
        let Inner::Sqlite(c) = &self.inner else { return None };
        let seen = self.config_seen.borrow();
        seen.as_ref().filter(|(g, writes, _)| *g == generation && *writes == c.total_changes() && c.is_autocommit()).map(|(_, _, v)| v.clone())
    }

    pub(crate) fn saw_config(&self, generation: u64, version: &str) {
        if let Inner::Sqlite(c) = &self.inner {
            *self.config_seen.borrow_mut() = Some((generation, c.total_changes(), version.to_string()));
        }
    }

    /// Whether this connection's open transaction has written to what the in-memory copies hold:
    /// reads in it must see its own writes, not the copies (`store::cache`).
    pub(crate) fn wrote_config_in_transaction(&self) -> bool {
        self.config_written.get() && !self.is_autocommit()
    }

    /// Whether no transaction is open.
    pub fn is_autocommit(&self) -> bool {
        match &self.inner {
            Inner::Sqlite(c) => c.is_autocommit(),
            Inner::Postgres(_) | Inner::Memory(..) => !self.in_transaction.get(),
        }
    }

    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// Outside a transaction, a write to what the in-memory copies hold is reported at once;
    /// inside one, when it commits.
    fn report_config_change(&self) {
        if self.config_written.get() && !self.in_transaction.get() {
            self.config_written.set(false);
            if let Some(identity) = self.identity() {
                crate::store::cache::changed(&identity);
            }
        }
    }

    /// [`execute`](Self::execute) for a write that a UNIQUE constraint may refuse, where the
    /// caller goes on after the refusal (reports it on the form) inside a transaction: on
    /// PostgreSQL the statement runs in a savepoint, so its failure does not abort the rest of
    /// the transaction (SQLite's never does).
    pub fn execute_unique<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        let Inner::Postgres(p) = &self.inner else { return self.execute(sql, params) };
        if !self.in_transaction.get() {
            return self.execute(sql, params);
        }
        p.batch("SAVEPOINT lk_unique")?;
        match self.execute(sql, params) {
            Ok(n) => p.batch("RELEASE SAVEPOINT lk_unique").map(|()| n),
            Err(e) => {
                p.batch("ROLLBACK TO SAVEPOINT lk_unique")?;
                p.clear_failure();
                Err(e)
            }
        }
    }

    /// Several statements without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(p) => p.batch(sql),
            Inner::Memory(..) => Err(self.not_in_memory()),
        }
    }

    pub fn query_row<T, P: Params, F: FnOnce(&Row<'_>) -> Result<T>>(&self, sql: &str, params: P, f: F) -> Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(Statement { inner: Stmt::Sqlite(c.prepare(sql)?), config: self.reports(sql) }),
            Inner::Postgres(_) => Ok(Statement { inner: Stmt::Postgres(self, sql.to_string()), config: self.reports(sql) }),
            Inner::Memory(..) => Err(self.not_in_memory()),
        }
    }

    /// As [`prepare`](Self::prepare), keeping the prepared statement for the next call with
    /// the same SQL (both engines).
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(Statement { inner: Stmt::SqliteCached(c.prepare_cached(sql)?), config: self.reports(sql) }),
            Inner::Postgres(_) => Ok(Statement { inner: Stmt::Postgres(self, sql.to_string()), config: self.reports(sql) }),
            Inner::Memory(..) => Err(self.not_in_memory()),
        }
    }

    fn pg(&self) -> &pg::PgConn {
        match &self.inner {
            Inner::Postgres(p) => p,
            Inner::Sqlite(_) | Inner::Memory(..) => unreachable!("a PostgreSQL statement on another connection"),
        }
    }

    /// This connection, when `sql` writes to a table the in-memory copies hold: executing it
    /// reports the write to them (store::cache).
    fn reports(&self, sql: &str) -> Option<&Self> {
        changes_config(sql).then_some(self)
    }

    /// An IMMEDIATE transaction (see [`Transaction::new_unchecked`]).
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        Transaction::new_unchecked(self, TransactionBehavior::Immediate)
    }

    pub fn transaction_with_behavior(&mut self, behavior: TransactionBehavior) -> Result<Transaction<'_>> {
        Transaction::new_unchecked(self, behavior)
    }
}

#[derive(Debug, Clone, Copy)]
pub enum TransactionBehavior {
    Immediate,
    /// For bodies whose every read-then-write is one conditional statement (`UPDATE … WHERE
    /// rotated_at IS NULL`) or needs no turn at all: SQLite still takes its write lock, but
    /// PostgreSQL takes no advisory lock, so such transactions on different rows run side by
    /// side (its row locks order the conditional writes).
    RowLocked,
}

/// A transaction, rolled back when dropped without `commit`. Writers take turns on both
/// engines: SQLite's IMMEDIATE takes its write lock at once, and PostgreSQL's transactions take
/// one transaction-scoped advisory lock, so a read-then-write inside a transaction sees no
/// concurrent writer on either engine, whichever instance it runs on.
pub struct Transaction<'c> {
    conn: &'c Connection,
    done: bool,
    /// SQLite: this transaction's turn at the file's write lock (declared after `done`, so
    /// the turn passes on only after `Drop` has ended the transaction).
    _turn: Option<Turn<'c>>,
}

impl<'c> Transaction<'c> {
    pub fn new_unchecked(conn: &'c Connection, behavior: TransactionBehavior) -> Result<Self> {
        let mut turn = None;
        match &conn.inner {
            // SQLite has one writer: both kinds take its write lock at once, after waiting
            // their turn at the gate.
            Inner::Sqlite(c) => {
                // Inside a transaction already, BEGIN fails at once; it must not first wait for
                // the turn this thread holds.
                if let Some(gate) = conn.gate.as_ref().filter(|_| c.is_autocommit()) {
                    turn = Some(gate.enter()?);
                }
                c.execute_batch("BEGIN IMMEDIATE")?
            }
            Inner::Postgres(p) => p.begin(!matches!(behavior, TransactionBehavior::RowLocked))?,
            Inner::Memory(..) => return Err(conn.not_in_memory()),
        }
        conn.in_transaction.set(true);
        Ok(Self { conn, done: false, _turn: turn })
    }

    pub fn commit(mut self) -> Result<()> {
        self.end("COMMIT")
    }

    pub fn rollback(mut self) -> Result<()> {
        self.end("ROLLBACK")
    }

    fn end(&mut self, how: &str) -> Result<()> {
        self.done = true;
        self.conn.in_transaction.set(false);
        // PostgreSQL ends a transaction in which a statement failed with a silent rollback,
        // even when asked to commit: say so instead of reporting success.
        if let Inner::Postgres(p) = &self.conn.inner
            && how == "COMMIT"
            && p.failed_in_transaction()
        {
            self.conn.config_written.set(false);
            self.conn.execute_batch("ROLLBACK")?;
            return Err(Error::Aborted);
        }
        self.conn.execute_batch(how)?;
        if how == "COMMIT" {
            self.conn.report_config_change();
        } else {
            self.conn.config_written.set(false);
        }
        Ok(())
    }
}

/// The writers of one SQLite file take turns here before `BEGIN IMMEDIATE`. SQLite's own wait
/// for its write lock sleeps and polls (1, 2, 5, 10… ms), so with several writers the lock often
/// sits free while they all sleep; here a finished writer wakes the next at once. The wait is
/// bounded by the busy timeout, and then fails as SQLite's would (a 503).
#[derive(Debug)]
pub struct WriteGate {
    busy: Mutex<bool>,
    free: Condvar,
    timeout: Duration,
}

pub struct Turn<'g>(&'g WriteGate);

impl WriteGate {
    fn enter(&self) -> Result<Turn<'_>> {
        let deadline = std::time::Instant::now() + self.timeout;
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        while *busy {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                let busy = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY);
                return Err(rusqlite::Error::SqliteFailure(busy, Some("another writer held the database for too long".into())).into());
            }
            busy = self.free.wait_timeout(busy, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        *busy = true;
        Ok(Turn(self))
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *self.0.busy.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.0.free.notify_one();
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.end("ROLLBACK");
        }
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

pub struct Statement<'c> {
    inner: Stmt<'c>,
    /// Its connection, when it writes to what the in-memory copies hold.
    config: Option<&'c Connection>,
}

enum Stmt<'c> {
    Sqlite(rusqlite::Statement<'c>),
    SqliteCached(rusqlite::CachedStatement<'c>),
    Postgres(&'c Connection, String),
}

impl<'c> Statement<'c> {
    fn sqlite(&mut self) -> Option<&mut rusqlite::Statement<'c>> {
        match &mut self.inner {
            Stmt::Sqlite(s) => Some(s),
            Stmt::SqliteCached(s) => Some(s),
            Stmt::Postgres(..) => None,
        }
    }

    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        let n = match self.sqlite() {
            Some(s) => params.with(|p| Ok::<_, Error>(s.execute(p)?))?,
            None => {
                let Stmt::Postgres(conn, sql) = &self.inner else { unreachable!() };
                params.with(|p| conn.pg().execute(sql, p))?
            }
        };
        // A write to what the in-memory copies hold is reported to them (store::cache).
        if let Some(conn) = self.config {
            conn.config_written.set(true);
            conn.report_config_change();
        }
        Ok(n)
    }

    /// Every row `f` maps, read at once (the engines differ in how long a cursor may live).
    pub fn query_map<T, P: Params, F: FnMut(&Row<'_>) -> Result<T>>(&mut self, params: P, mut f: F) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut out = Vec::new();
        if let Some(s) = self.sqlite() {
            params.with(|p| -> Result<()> {
                let mut rows = s.query(p)?;
                while let Some(r) = rows.next()? {
                    out.push(f(&Row { inner: RowRef::Sqlite(r) }));
                }
                Ok(())
            })?;
            return Ok(out.into_iter());
        }
        let Stmt::Postgres(conn, sql) = &self.inner else { unreachable!() };
        for r in params.with(|p| conn.pg().query(sql, p))? {
            out.push(f(&Row { inner: RowRef::Postgres(&r) }));
        }
        Ok(out.into_iter())
    }

    pub fn query_row<T, P: Params, F: FnOnce(&Row<'_>) -> Result<T>>(&mut self, params: P, f: F) -> Result<T> {
        if let Some(s) = self.sqlite() {
            return params.with(|p| {
                let mut rows = s.query(p)?;
                let r = rows.next()?.ok_or(Error::NoRows)?;
                f(&Row { inner: RowRef::Sqlite(r) })
            });
        }
        let Stmt::Postgres(conn, sql) = &self.inner else { unreachable!() };
        let rows = params.with(|p| conn.pg().query(sql, p))?;
        f(&Row { inner: RowRef::Postgres(rows.first().ok_or(Error::NoRows)?) })
    }

    pub fn exists<P: Params>(&mut self, params: P) -> Result<bool> {
        self.query_row(params, |_| Ok(())).optional().map(|o| o.is_some())
    }
}

/// One result row of either engine.
pub struct Row<'a> {
    inner: RowRef<'a>,
}

enum RowRef<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

/// A column by position or by name.
pub trait RowIndex: rusqlite::RowIndex + Copy {
    fn position(self, names: &[postgres::Column]) -> Option<usize>;
}

impl RowIndex for usize {
    fn position(self, names: &[postgres::Column]) -> Option<usize> {
        (self < names.len()).then_some(self)
    }
}

impl RowIndex for &str {
    fn position(self, names: &[postgres::Column]) -> Option<usize> {
        names.iter().position(|c| c.name() == self)
    }
}

impl Row<'_> {
    pub fn get<I: RowIndex, T: FromSql>(&self, idx: I) -> Result<T> {
        match &self.inner {
            RowRef::Sqlite(r) => Ok(r.get(idx)?),
            RowRef::Postgres(r) => {
                let i = idx.position(r.columns()).ok_or_else(|| Error::Column(format!("{:?}", self.column_names()), "no such column".into()))?;
                let value = pg::value(r, i)?;
                T::column_result(value).map_err(|e| Error::Column(r.columns()[i].name().to_string(), e.to_string()))
            }
        }
    }

    pub fn column_names(&self) -> Vec<String> {
        match &self.inner {
            RowRef::Sqlite(r) => r.as_ref().column_names().into_iter().map(String::from).collect(),
            RowRef::Postgres(r) => r.columns().iter().map(|c| c.name().to_string()).collect(),
        }
    }

    /// Column `i` as a value of SQLite's kinds (PostgreSQL's converted to them).
    pub fn value(&self, i: usize) -> Result<Value> {
        match &self.inner {
            RowRef::Sqlite(r) => Ok(owned(r.get_ref(i)?)),
            RowRef::Postgres(r) => Ok(owned(pg::value(r, i)?)),
        }
    }
}

/// Whether the statement `sql` writes to a table the in-memory copies hold (store::cache).
pub fn changes_config(sql: &str) -> bool {
    let head = sql.trim_start();
    let starts = |word: &str| head.get(..word.len()).is_some_and(|h| h.eq_ignore_ascii_case(word));
    // A WITH clause may hold the write (UPDATE … RETURNING feeding an INSERT).
    ["INSERT", "UPDATE", "DELETE", "WITH"].into_iter().any(starts) && ["clients", "ca_policies", "named_locations", "settings"].iter().any(|t| sql.contains(t))
}

/// Opens connections of either engine for the pool.
#[derive(Debug)]
pub enum Manager {
    Sqlite(r2d2_sqlite::SqliteConnectionManager, Arc<WriteGate>),
    Postgres(PgConfig),
}

impl Manager {
    /// SQLite connections to one file, whose writers wait for each other at `gate`.
    pub fn sqlite(manager: r2d2_sqlite::SqliteConnectionManager, timeout: Duration) -> Self {
        Self::Sqlite(manager, Arc::new(WriteGate { busy: Mutex::new(false), free: Condvar::new(), timeout }))
    }

    pub fn postgres(url: &str, timeout: Duration) -> std::result::Result<Self, String> {
        PgConfig::parse(url, timeout).map(Self::Postgres)
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = Error;

    fn connect(&self) -> Result<Connection> {
        let inner = match self {
            Self::Sqlite(m, _) => Inner::Sqlite(m.connect()?),
            Self::Postgres(config) => Inner::Postgres(pg::PgConn::connect(config)?),
        };
        let gate = match self {
            Self::Sqlite(_, gate) => Some(gate.clone()),
            Self::Postgres(_) => None,
        };
        Ok(Connection::with(inner, gate))
    }

    /// Runs at every checkout (the pools are built with `test_on_check_out`).
    fn is_valid(&self, conn: &mut Connection) -> Result<()> {
        *conn.config_seen.get_mut() = None;
        match &conn.inner {
            Inner::Postgres(p) if p.answered_lately() => Ok(()),
            _ => conn.execute_batch(""),
        }
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        match &conn.inner {
            Inner::Sqlite(_) | Inner::Memory(..) => false,
            Inner::Postgres(p) => p.broken(),
        }
    }
}
