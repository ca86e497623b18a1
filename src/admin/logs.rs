//! Sign-in logs (filterable, with a detail view), the audit log, and signing keys.

use super::{Admin, Apps, Global, Nav, when};
use crate::AppState;
use crate::i18n::filters;
use crate::store::{self, directory as dir, signins::Filter};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, html, see_other};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

/// "YYYY-MM-DD" → Unix seconds at 00:00 UTC (Howard Hinnant's days-from-civil).
pub fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let (y, m, d): (i64, i64, i64) = (it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400)
}

pub struct Row {
    pub id: i64,
    pub at: String,
    pub user: String,
    pub app: String,
    pub ip: String,
    pub result: String,
    pub reason: String,
    /// The user marked it "This wasn't me".
    pub reported: bool,
}

#[derive(Template)]
#[template(path = "admin/signins.html")]
struct SignInsPage {
    nav: Nav,
    rows: Vec<Row>,
    apps: Vec<(String, String)>,
    user: String,
    app: String,
    result: String,
    from: String,
    to: String,
    error: Option<String>,
    blocked: bool,
    report_only: bool,
}

async fn signins(admin: Admin<Apps>, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let q = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let text = |k: &str| q.get(k).unwrap_or("").trim().to_string();
    let (user, app, result, from, to) = (text("user"), text("app"), text("result"), text("from"), text("to"));
    let mut error = None;
    let date = |s: &str, error: &mut Option<String>| -> Option<i64> {
        if s.is_empty() {
            return None;
        }
        let d = parse_date(s);
        if d.is_none() {
            *error = Some(format!("{s:?} is not a date (YYYY-MM-DD)."));
        }
        d
    };
    let filter = Filter {
        user: Some(user.clone()).filter(|s| !s.is_empty()),
        client_id: Some(app.clone()).filter(|s| !s.is_empty()),
        result: Some(result.clone()).filter(|s| !s.is_empty()),
        from: date(&from, &mut error),
        // "to" is inclusive of that whole day.
        to: date(&to, &mut error).map(|t| t + 86_400),
        blocked_by_policy: q.get("blocked").is_some(),
        report_only_block: q.get("report_only").is_some(),
    };
    let apps: Vec<(String, String)> = store::clients::all(&conn)?.into_iter().map(|c| (c.id, c.name)).collect();
    let name_of = |id: &Option<String>| match id {
        Some(id) => apps.iter().find(|(i, _)| i == id).map(|(_, n)| n.clone()).unwrap_or_else(|| id.clone()),
        None => "latchkey".into(),
    };
    let rows = store::signins::search(&conn, &filter, 500)?
        .into_iter()
        .map(|s| Row {
            id: s.id,
            at: when(s.at),
            user: s.username.unwrap_or_default(),
            app: name_of(&s.client_id),
            ip: s.ip.unwrap_or_default(),
            result: s.result,
            reason: s.reason.unwrap_or_default(),
            reported: s.reported_at.is_some(),
        })
        .collect();
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let (blocked, report_only) = (filter.blocked_by_policy, filter.report_only_block);
    Ok(html(status, &SignInsPage { nav: admin.nav(), rows, apps, user, app, result, from, to, error, blocked, report_only }))
}

#[derive(Template)]
#[template(path = "admin/signin.html")]
struct SignInPage {
    nav: Nav,
    at: String,
    row: store::signins::SignInRow,
    context: Option<crate::policy::evaluate::Context>,
    policies: Vec<crate::policy::evaluate::PolicyResult>,
}

async fn signin(admin: Admin<Apps>, state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let row = store::signins::by_id(&conn, *id)?.ok_or_else(|| ErrorPage {
        status: StatusCode::NOT_FOUND,
        title: "No such sign-in".into(),
        message: "That log entry does not exist.".into(),
    })?;
    let context = row.context.as_deref().and_then(|c| serde_json::from_str(c).ok());
    let policies = row.policies.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    Ok(html(StatusCode::OK, &SignInPage { nav: admin.nav(), at: when(row.at), row, context, policies }))
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    nav: Nav,
    entries: Vec<(String, dir::AuditEntry)>,
}

async fn audit(admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let entries = dir::audit_log(&conn, 500)?.into_iter().map(|e| (when(e.at), e)).collect();
    Ok(html(StatusCode::OK, &AuditPage { nav: admin.nav(), entries }))
}

pub struct KeyView {
    pub kid: String,
    pub alg: String,
    pub created: String,
    pub status: &'static str,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    nav: Nav,
    keys: Vec<KeyView>,
}

async fn keys(admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let now = state.clock.now();
    let published = state.keys.jwks(now);
    let is_published = |kid: &str| published["keys"].as_array().is_some_and(|ks| ks.iter().any(|k| k["kid"] == kid));
    let keys = store::keys::all(&conn)?
        .into_iter()
        .map(|k| KeyView {
            status: match k.retired_at {
                None => "Active",
                Some(_) if is_published(&k.kid) => "Previous (still in JWKS)",
                Some(_) => "Retired",
            },
            created: when(k.created_at),
            kid: k.kid,
            alg: k.alg,
        })
        .collect();
    Ok(html(StatusCode::OK, &KeysPage { nav: admin.nav(), keys }))
}

async fn rotate_keys(admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let now = state.clock.now();
    let kids = state.keys.rotate_all(now).map_err(|e| crate::web::InternalError::Other(e.to_string()))?;
    dir::audit_change(&conn, &admin.user.id, "keys_rotated", Some(&kids.join(", ")), None, None, now)?;
    Ok(see_other("/admin/keys"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/signins", web::get().to(signins))
        .route("/admin/signins/{id}", web::get().to(signin))
        .route("/admin/audit", web::get().to(audit))
        .route("/admin/keys", web::get().to(keys))
        .route("/admin/keys/rotate", web::post().to(rotate_keys));
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_round_trip() {
        for t in [0, 86_400 * 365, 1_795_564_800] {
            let d = crate::portal::security::date(Some(t));
            assert_eq!(super::parse_date(&d), Some(t), "{d}");
        }
        assert_eq!(super::parse_date("2026-13-01"), None);
        assert_eq!(super::parse_date("yesterday"), None);
    }
}
