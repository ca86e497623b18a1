use super::Result;
use crate::store::db::{Connection, params};

/// One sign-in attempt, successful or not.
#[derive(Debug, Default)]
pub struct SignIn<'a> {
    pub user_id: Option<&'a str>,
    pub username: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub result: &'a str,
    pub reason: Option<&'a str>,
    /// RFC 8176 amr of a successful sign-in.
    pub methods: Option<&'a [String]>,
    /// Why it failed, as a stored word (`WRONG_PASSWORD`…), apart from the reason for people.
    pub failure: Option<&'a str>,
}

/// The `failure` word of a wrong password: what the brute-force detector counts.
pub const WRONG_PASSWORD: &str = "wrong_password";

/// Counts a sign-in row in the metrics: by result, methods used and app; and each policy's
/// result. The labels are only built when metrics are recorded.
fn count_in_metrics(s: &SignIn<'_>, eval: Option<&crate::policy::evaluate::Evaluation>) {
    if !crate::telemetry::metrics_on() {
        return;
    }
    let method = s.methods.filter(|m| !m.is_empty()).map_or_else(|| "none".to_string(), |m| m.join("+"));
    let labels = [("result", s.result.to_string()), ("method", method), ("app", s.client_id.unwrap_or("-").to_string())];
    metrics::counter!("latchkey_signins_total", &labels).increment(1);
    for r in eval.iter().flat_map(|e| &e.results) {
        let result = match (r.applied, &r.effect) {
            (false, _) => "not_applied",
            (true, Some(crate::policy::evaluate::Effect::Block)) => "block",
            (true, Some(crate::policy::evaluate::Effect::Satisfied) | None) => "satisfied",
            (true, Some(_)) => "requires",
        };
        let labels = [("policy", r.name.clone()), ("state", r.state.as_str().to_string()), ("result", result.to_string())];
        metrics::counter!("latchkey_policy_decisions_total", &labels).increment(1);
    }
}

/// What the gate evaluated for a row: the conditional-access context and each policy's result.
struct Evaluated<'a> {
    ctx: &'a crate::policy::evaluate::Context,
    eval: &'a crate::policy::evaluate::Evaluation,
    blocked: bool,
    report_only_block: bool,
}

/// Writes one row, with what the gate evaluated when there was an evaluation; returns its id.
/// The row keeps the id of the request being served (the correlation id shown to the person),
/// read from the request's context.
fn insert(conn: &Connection, s: &SignIn<'_>, evaluated: Option<Evaluated<'_>>, now: i64) -> Result<i64> {
    let id = conn
        .prepare_cached(
            "INSERT INTO signin_log (at, user_id, username, client_id, ip, user_agent, result, reason, methods, failure, context, policies,
             blocked_by_policy, report_only_block, request_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) RETURNING id",
        )?
        .query_row(
            params![
                now,
                s.user_id,
                s.username,
                s.client_id,
                s.ip,
                s.user_agent,
                s.result,
                s.reason,
                s.methods.map(super::to_json),
                s.failure,
                evaluated.as_ref().map(|e| serde_json::to_string(e.ctx).expect("context serialises")),
                evaluated.as_ref().map(|e| serde_json::to_string(&e.eval.results).expect("results serialise")),
                evaluated.as_ref().is_some_and(|e| e.blocked),
                evaluated.as_ref().is_some_and(|e| e.report_only_block),
                crate::web::observe::current()
            ],
            |r| r.get(0),
        )?;
    count_in_metrics(s, evaluated.map(|e| e.eval));
    Ok(id)
}

/// Writes one row for an attempt that never reached the gate's evaluation; returns its id.
pub fn record(conn: &Connection, s: &SignIn<'_>, now: i64) -> Result<i64> {
    insert(conn, s, None, now)
}

/// `record`, plus the conditional-access context and each policy's result.
pub fn record_evaluated(
    conn: &Connection,
    s: &SignIn<'_>,
    ctx: &crate::policy::evaluate::Context,
    eval: &crate::policy::evaluate::Evaluation,
    blocked: bool,
    report_only_block: bool,
    now: i64,
) -> Result<i64> {
    insert(conn, s, Some(Evaluated { ctx, eval, blocked, report_only_block }), now)
}

#[derive(Debug)]
pub struct SignInRow {
    pub id: i64,
    pub at: i64,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub result: String,
    pub reason: Option<String>,
    pub methods: Option<String>,
    pub context: Option<String>,
    pub policies: Option<String>,
    /// When the person marked it "This wasn't me".
    pub reported_at: Option<i64>,
    /// The request that wrote it: the correlation id on the person's page.
    pub request_id: Option<String>,
}

/// The columns `row` reads, in its order.
const COLUMNS: &str = "id, at, user_id, username, client_id, ip, user_agent, result, reason, methods, context, policies, reported_at, request_id";

/// The newest `limit` rows, newest first.
pub fn recent(conn: &Connection, limit: i64) -> Result<Vec<SignInRow>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM signin_log ORDER BY id DESC LIMIT ?1"))?;
    let rows = stmt.query_map([limit], row)?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

fn row(r: &crate::store::db::Row<'_>) -> crate::store::db::Result<SignInRow> {
    Ok(SignInRow {
        id: r.get(0)?,
        at: r.get(1)?,
        user_id: r.get(2)?,
        username: r.get(3)?,
        client_id: r.get(4)?,
        ip: r.get(5)?,
        user_agent: r.get(6)?,
        result: r.get(7)?,
        reason: r.get(8)?,
        methods: r.get(9)?,
        context: r.get(10)?,
        policies: r.get(11)?,
        reported_at: r.get(12)?,
        request_id: r.get(13)?,
    })
}

/// What the admin console filters sign-ins by; every field optional.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Matches the username typed, case-insensitively.
    pub user: Option<String>,
    pub client_id: Option<String>,
    pub result: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Only sign-ins a policy blocked.
    pub blocked_by_policy: bool,
    /// Only sign-ins a report-only policy would have blocked.
    pub report_only_block: bool,
}

pub fn search(conn: &Connection, f: &Filter, limit: i64) -> Result<Vec<SignInRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM signin_log
         WHERE (username = ?1 COLLATE NOCASE OR ?1 IS NULL)
           AND (client_id = ?2 OR ?2 IS NULL)
           AND (result = ?3 OR ?3 IS NULL)
           AND (at >= ?4 OR ?4 IS NULL)
           AND (at < ?5 OR ?5 IS NULL)
           AND (?7 = 0 OR blocked_by_policy = 1)
           AND (?8 = 0 OR report_only_block = 1)
         ORDER BY id DESC LIMIT ?6"
    ))?;
    let rows = stmt.query_map(params![f.user, f.client_id, f.result, f.from, f.to, limit, f.blocked_by_policy, f.report_only_block], row)?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

pub fn by_id(conn: &Connection, id: i64) -> Result<Option<SignInRow>> {
    use crate::store::db::OptionalExtension;
    Ok(conn.query_row(&format!("SELECT {COLUMNS} FROM signin_log WHERE id = ?1"), [id], row).optional()?)
}

/// The rows written while serving request `request_id` (a correlation id), oldest first.
pub fn by_request_id(conn: &Connection, request_id: &str) -> Result<Vec<SignInRow>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM signin_log WHERE request_id = ?1 ORDER BY id"))?;
    let rows = stmt.query_map([request_id], row)?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

pub fn for_user(conn: &Connection, user_id: &str, limit: i64) -> Result<Vec<SignInRow>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM signin_log WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2"))?;
    let rows = stmt.query_map(params![user_id, limit], row)?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// A person's own sign-ins since `since`, newest first, each with the name of its app (None:
/// latchkey itself).
pub fn own_since(conn: &Connection, user_id: &str, since: i64, limit: i64) -> Result<Vec<(SignInRow, Option<String>)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS}, (SELECT c.name FROM clients c WHERE c.id = signin_log.client_id) FROM signin_log
         WHERE user_id = ?1 AND at >= ?2 ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![user_id, since, limit], |r| Ok((row(r)?, r.get(14)?)))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// Marks sign-in `id` of `user_id` as reported by them ("This wasn't me"); false if it is not
/// theirs. A second report keeps the first time.
pub fn report(conn: &Connection, id: i64, user_id: &str, now: i64) -> Result<bool> {
    let n = conn.execute("UPDATE signin_log SET reported_at = coalesce(reported_at, ?3) WHERE id = ?1 AND user_id = ?2", params![id, user_id, now])?;
    Ok(n == 1)
}

/// The WHERE clause of `Filter` and its values: only the conditions set, so that SQLite can use
/// the `at` and `client_id` indexes (an `(?n IS NULL OR …)` clause makes it scan every row).
fn filtered<'a>(f: &'a Filter) -> (String, Vec<&'a dyn crate::store::db::ToSql>) {
    let mut sql = vec!["1 = 1".to_string()];
    let mut args: Vec<&'a dyn crate::store::db::ToSql> = vec![];
    let mut add = |clause: &str, value: &'a dyn crate::store::db::ToSql| {
        args.push(value);
        sql.push(clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(v) = &f.user {
        add("username = ? COLLATE NOCASE", v);
    }
    if let Some(v) = &f.client_id {
        add("client_id = ?", v);
    }
    if let Some(v) = &f.result {
        add("result = ?", v);
    }
    if let Some(v) = &f.from {
        add("at >= ?", v);
    }
    if let Some(v) = &f.to {
        add("at < ?", v);
    }
    if f.blocked_by_policy {
        sql.push("blocked_by_policy = 1".into());
    }
    if f.report_only_block {
        sql.push("report_only_block = 1".into());
    }
    (sql.join(" AND "), args)
}

/// How many rows `f` matches.
pub fn count(conn: &Connection, f: &Filter) -> Result<i64> {
    let (clause, args) = filtered(f);
    Ok(conn.prepare_cached(&format!("SELECT count(*) FROM signin_log WHERE {clause}"))?.query_row(crate::store::db::params_from_iter(args), |r| r.get(0))?)
}

/// One page of the rows `f` matches, in the window's order, each with its app's name (None:
/// latchkey itself, or an app since deleted).
pub fn page(conn: &Connection, f: &Filter, window: &crate::admin::list::Window) -> Result<Vec<(SignInRow, Option<String>)>> {
    let (clause, args) = filtered(f);
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS}, (SELECT c.name FROM clients c WHERE c.id = signin_log.client_id) AS app_name FROM signin_log WHERE {clause}{}",
        window.sql()
    ))?;
    let rows = stmt.query_map(crate::store::db::params_from_iter(args), |r| Ok((row(r)?, r.get("app_name")?)))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}
