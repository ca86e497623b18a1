//! The audit log, readable: who did what to which object, each change as a property-by-property
//! before/after table, filters (actor, action, object, dates) kept in the URL, and exports of
//! what the filters match as CSV or JSON.

use super::list::{Columns, Dir, ListQuery, Pager};
use super::words::{self, Moment};
use super::{Admin, Global, Nav};
use crate::AppState;
use crate::i18n::filters;
use crate::store::directory::{self as dir, AuditFilter, AuditRow};
use crate::web::params::Params;
use crate::web::{PageError, html};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::Value;

const COLUMNS: Columns =
    Columns { sorts: &[("at", "a.at"), ("actor", "u.username COLLATE NOCASE"), ("action", "a.action")], default: ("at", Dir::Desc), tiebreak: "a.id" };

/// One property of a changed object.
pub struct Change {
    pub field: String,
    pub before: String,
    pub after: String,
    pub changed: bool,
}

pub struct Entry {
    pub id: i64,
    pub at: Moment,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub changes: Vec<Change>,
}

/// Who did it, for people: a username, the command line, or latchkey itself.
fn who(row: &AuditRow) -> String {
    match (&row.actor, row.actor_id.as_deref()) {
        (Some(name), _) => name.clone(),
        (None, Some("cli")) => crate::i18n::t("admin.audit.cli").into_owned(),
        (None, Some(id)) => id.to_string(),
        (None, None) => "latchkey".into(),
    }
}

/// What it was done to: the recorded object, and the user it concerned.
fn object_of(row: &AuditRow) -> String {
    match (&row.detail, &row.subject) {
        (Some(d), Some(s)) if d != s => format!("{s}: {d}"),
        (Some(d), _) => d.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => String::new(),
    }
}

fn parse(text: Option<&str>) -> Option<Value> {
    text.map(|t| serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_string())))
}

/// A JSON value for people: text as it is, lists joined, yes/no, "—" for nothing.
fn shown(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => crate::i18n::t(if *b { "admin.yes" } else { "admin.no" }).into_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Array(a)) if a.is_empty() => "—".into(),
        Some(Value::Array(a)) => a.iter().map(|v| shown(Some(v))).collect::<Vec<_>>().join(", "),
        Some(o @ Value::Object(_)) => o.to_string(),
    }
}

/// A property name for people: the catalogue's (`disabled` → "Disabled", 無効), else the
/// name with spaces (`some_flag` → "Some flag").
fn field(name: &str) -> String {
    match words::word("field", name) {
        w if w == name => super::capitalise(&name.replace('_', " ")),
        w => w,
    }
}

/// The before/after of an entry, property by property (objects), or as one row (anything else).
pub fn changes(before: Option<&str>, after: Option<&str>) -> Vec<Change> {
    let (before, after) = (parse(before), parse(after));
    match (&before, &after) {
        (None, None) => vec![],
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let mut keys: Vec<&String> = a.keys().collect();
            keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
            keys.into_iter().map(|k| Change { field: field(k), before: shown(b.get(k)), after: shown(a.get(k)), changed: b.get(k) != a.get(k) }).collect()
        }
        (Some(Value::Object(o)), None) => o.iter().map(|(k, v)| Change { field: field(k), before: shown(Some(v)), after: "—".into(), changed: true }).collect(),
        (None, Some(Value::Object(o))) => o.iter().map(|(k, v)| Change { field: field(k), before: "—".into(), after: shown(Some(v)), changed: true }).collect(),
        (b, a) => vec![Change { field: String::new(), before: shown(b.as_ref()), after: shown(a.as_ref()), changed: b != a }],
    }
}

/// The filters of a request, and the list query that keeps them.
struct Query {
    filter: AuditFilter,
    list: ListQuery,
    actor: String,
    action: String,
    object: String,
    from: String,
    to: String,
    error: Option<String>,
}

fn query(admin: &Admin<Global>, req: &HttpRequest) -> Query {
    let q = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let text = |k: &str| q.get(k).unwrap_or("").trim().chars().take(200).collect::<String>();
    let (actor, action, object, from, to) = (text("actor"), text("action"), text("object"), text("from"), text("to"));
    let mut error = None;
    let (from_t, to_t) = super::logs::date_range(&admin.zone, &from, &to, &mut error);
    let some = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
    let filter = AuditFilter { actor: some(&actor), action: some(&action), object: some(&object), from: from_t, to: to_t };
    let mut list = ListQuery::parse("/admin/audit", &q, &COLUMNS);
    for (k, v) in [("actor", &actor), ("action", &action), ("object", &object), ("from", &from), ("to", &to)] {
        list.keep(k, v);
    }
    Query { filter, list, actor, action, object, from, to, error }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    nav: Nav,
    entries: Vec<Entry>,
    actions: Vec<(String, String)>,
    actor: String,
    action: String,
    object: String,
    from: String,
    to: String,
    error: Option<String>,
    pager: Pager,
    csv: String,
    json: String,
}

fn audit(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let Query { filter, mut list, actor, action, object, from, to, error } = query(&admin, req);
    let total = dir::audit_count(&conn, &filter)?;
    list.clamp(total);
    let entries = dir::audit_page(&conn, &filter, &list.window())?
        .into_iter()
        .map(|r| Entry {
            id: r.id,
            at: admin.zone.at(r.at),
            actor: who(&r),
            action: words::action(&r.action),
            object: object_of(&r),
            changes: changes(r.before.as_deref(), r.after.as_deref()),
        })
        .collect();
    let mut codes = dir::audit_actions(&conn)?;
    codes.extend(words::ACTIONS.iter().map(|a| a.to_string()));
    codes.sort();
    codes.dedup();
    let mut actions: Vec<(String, String)> = codes.into_iter().map(|c| (words::action(&c), c)).map(|(l, c)| (c, l)).collect();
    actions.sort_by(|a, b| a.1.cmp(&b.1));
    let pager = list.pager(total);
    let (csv, json) = (pager.with("/admin/audit/export.csv", &[]), pager.with("/admin/audit/export.json", &[]));
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(html(status, &AuditPage { nav: admin.nav(), entries, actions, actor, action, object, from, to, error, pager, csv, json }))
}

/// A CSV cell: quoted, and a cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`,
/// tab, carriage return first) starts with `'` instead (OWASP "CSV injection").
pub fn csv_cell(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_string() };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

fn attachment(name: &str, mime: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, mime))
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// Every entry the filters match (not only one page), in the list's order.
fn everything(conn: &crate::store::db::Connection, q: &Query) -> Result<Vec<AuditRow>, PageError> {
    Ok(dir::audit_page(conn, &q.filter, &q.list.everything())?)
}

fn utc(t: i64) -> String {
    jiff::Timestamp::from_second(t).map(|ts| ts.to_string()).unwrap_or_else(|_| t.to_string())
}

fn export_csv(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let q = query(&admin, req);
    let mut out = String::from("id,at_utc,actor,action,action_label,object,before,after\r\n");
    for r in everything(&conn, &q)? {
        let cells = [
            r.id.to_string(),
            utc(r.at),
            who(&r),
            r.action.clone(),
            words::action(&r.action),
            object_of(&r),
            r.before.clone().unwrap_or_default(),
            r.after.clone().unwrap_or_default(),
        ];
        out.push_str(&cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    Ok(attachment("audit-log.csv", "text/csv; charset=utf-8", out))
}

fn export_json(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let q = query(&admin, req);
    let entries: Vec<Value> = everything(&conn, &q)?
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "at": utc(r.at),
                "actor": who(&r),
                "actor_id": r.actor_id,
                "action": r.action,
                "action_label": words::action(&r.action),
                "object": object_of(&r),
                "before": parse(r.before.as_deref()),
                "after": parse(r.after.as_deref()),
            })
        })
        .collect();
    Ok(attachment("audit-log.json", "application/json", serde_json::to_string_pretty(&entries).expect("JSON values serialise")))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/audit", web::get().to(crate::admin::page(audit)))
        .route("/admin/audit/export.csv", web::get().to(crate::admin::page(export_csv)))
        .route("/admin/audit/export.json", web::get().to(crate::admin::page(export_json)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_quotes_doubled() {
        assert_eq!(csv_cell("=cmd|' /C calc'!A0"), "\"'=cmd|' /C calc'!A0\"");
        assert_eq!(csv_cell("+1"), "\"'+1\"");
        assert_eq!(csv_cell("-1"), "\"'-1\"");
        assert_eq!(csv_cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("Wiki"), "\"Wiki\"");
    }

    #[test]
    fn a_change_is_shown_property_by_property() {
        let c = changes(Some(r#"{"name":"Wiki","disabled":false,"uris":["a","b"]}"#), Some(r#"{"name":"Wiki","disabled":true,"uris":[]}"#));
        let by = |f: &str| c.iter().find(|c| c.field == f).unwrap();
        assert!(!by("Name").changed);
        assert!(by("Disabled").changed && by("Disabled").before == "no" && by("Disabled").after == "yes");
        assert_eq!((by("Uris").before.as_str(), by("Uris").after.as_str()), ("a, b", "—"));
        let text = changes(None, Some("uploaded"));
        assert_eq!((text.len(), text[0].after.as_str()), (1, "uploaded"));
        assert!(changes(None, None).is_empty());
    }
}
