//! Sign-in logs (filterable, sortable, paged, with a detail view) and signing keys.

use super::list::{Columns, Dir, ListQuery, Pager};
use super::words::{self, Moment};
use super::{Admin, Apps, Global, Nav};
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

/// A date range typed into a filter form ("YYYY-MM-DD", both inclusive), as Unix seconds in
/// the admin's time zone: [from, to + 1 day). Sets `error` for what is not a date.
pub fn date_range(zone: &words::Zone, from: &str, to: &str, error: &mut Option<String>) -> (Option<i64>, Option<i64>) {
    let mut day = |s: &str, next: bool| -> Option<i64> {
        if s.is_empty() {
            return None;
        }
        let start = parse_date(s).and_then(|_| zone.start_of(s));
        if start.is_none() {
            *error = Some(format!("{s:?} is not a date (YYYY-MM-DD)."));
        }
        // The end of a local day is the start of the next one (23 or 25 hours on DST days).
        start.map(|t| if next { zone.start_of(&zone.day(t + 36 * 3600)).unwrap_or(t + 86_400) } else { t })
    };
    (day(from, false), day(to, true))
}

pub struct Row {
    pub id: i64,
    pub at: Moment,
    pub user: String,
    pub user_id: Option<String>,
    pub app: String,
    pub ip: String,
    pub result: String,
    pub success: bool,
    pub methods: String,
    pub reason: String,
    /// The user marked it "This wasn't me".
    pub reported: bool,
}

/// The sign-in log's sortable columns.
const SIGNIN_COLUMNS: Columns = Columns {
    sorts: &[
        ("at", "at"),
        ("user", "username COLLATE NOCASE"),
        ("app", "(SELECT c.name FROM clients c WHERE c.id = signin_log.client_id) COLLATE NOCASE"),
        ("ip", "ip"),
        ("result", "result"),
    ],
    default: ("at", Dir::Desc),
    tiebreak: "id",
};

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
    pager: Pager,
}

fn signins(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let q = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let text = |k: &str| q.get(k).unwrap_or("").trim().to_string();
    let (user, app, result, from, to) = (text("user"), text("app"), text("result"), text("from"), text("to"));
    let mut error = None;
    let (from_t, to_t) = date_range(&admin.zone, &from, &to, &mut error);
    let filter = Filter {
        user: Some(user.clone()).filter(|s| !s.is_empty()),
        client_id: Some(app.clone()).filter(|s| !s.is_empty()),
        result: Some(result.clone()).filter(|s| !s.is_empty()),
        from: from_t,
        to: to_t,
        blocked_by_policy: q.get("blocked").is_some(),
        report_only_block: q.get("report_only").is_some(),
    };
    let mut list = ListQuery::parse("/admin/signins", &q, &SIGNIN_COLUMNS);
    for (k, v) in [("user", &user), ("app", &app), ("result", &result), ("from", &from), ("to", &to)] {
        list.keep(k, v);
    }
    if filter.blocked_by_policy {
        list.keep("blocked", "on");
    }
    if filter.report_only_block {
        list.keep("report_only", "on");
    }
    let total = store::signins::count(&conn, &filter)?;
    list.clamp(total);
    let rows = store::signins::page(&conn, &filter, &list.window())?
        .into_iter()
        .map(|(s, app_name)| Row {
            id: s.id,
            at: admin.zone.at(s.at),
            user: s.username.unwrap_or_default(),
            user_id: s.user_id,
            app: app_name.or(s.client_id).unwrap_or_else(|| "latchkey".into()),
            ip: s.ip.unwrap_or_default(),
            success: s.result == "success",
            result: words::result(&s.result),
            methods: words::methods(s.methods.as_deref()),
            reason: s.reason.unwrap_or_default(),
            reported: s.reported_at.is_some(),
        })
        .collect();
    let apps: Vec<(String, String)> = store::clients::all(&conn)?.into_iter().map(|c| (c.id, c.name)).collect();
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let (blocked, report_only) = (filter.blocked_by_policy, filter.report_only_block);
    let pager = list.pager(total);
    Ok(html(status, &SignInsPage { nav: admin.nav(), rows, apps, user, app, result, from, to, error, blocked, report_only, pager }))
}

/// A policy's result on one sign-in, in words.
struct PolicyLine {
    name: String,
    state: String,
    applied: bool,
    reason: String,
}

#[derive(Template)]
#[template(path = "admin/signin.html")]
struct SignInPage {
    nav: Nav,
    at: Moment,
    row: store::signins::SignInRow,
    app: Option<String>,
    success: bool,
    result: String,
    methods: String,
    context: Option<ContextView>,
    policies: Vec<PolicyLine>,
}

/// The evaluated conditional-access context, in words.
struct ContextView {
    client_app_type: String,
    platform: String,
    sign_in_risk: String,
    risk_reasons: Vec<String>,
    user_risk: String,
    locations: Vec<String>,
    trusted_location: bool,
}

fn signin(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id: i64 = crate::web::path_param(req, "id").parse().map_err(|_| crate::web::ErrorPage::not_found())?;
    let conn = state.pool.get()?;
    let row = store::signins::by_id(&conn, id)?.ok_or_else(|| ErrorPage {
        status: StatusCode::NOT_FOUND,
        title: "No such sign-in".into(),
        message: "That log entry does not exist.".into(),
    })?;
    let context = row.context.as_deref().and_then(|c| serde_json::from_str::<crate::policy::evaluate::Context>(c).ok()).map(|c| ContextView {
        client_app_type: words::client_app_type(c.client_app_type),
        platform: words::platform(c.platform.as_str()),
        sign_in_risk: words::risk(c.sign_in_risk.as_str()),
        risk_reasons: c.risk_reasons,
        user_risk: words::risk(c.user_risk.as_str()),
        locations: c.locations,
        trusted_location: c.trusted_location,
    });
    let policies = row
        .policies
        .as_deref()
        .and_then(|p| serde_json::from_str::<Vec<crate::policy::evaluate::PolicyResult>>(p).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|r| PolicyLine { state: words::state(r.state.as_str()), name: r.name, applied: r.applied, reason: r.reason })
        .collect();
    let app = match &row.client_id {
        Some(id) => store::clients::by_id(&conn, id)?.map(|c| c.name),
        None => None,
    };
    let page = SignInPage {
        nav: admin.nav(),
        at: admin.zone.at(row.at),
        app,
        success: row.result == "success",
        result: words::result(&row.result),
        methods: words::methods(row.methods.as_deref()),
        context,
        policies,
        row,
    };
    Ok(html(StatusCode::OK, &page))
}

pub struct KeyView {
    pub kid: String,
    pub alg: String,
    pub created: Moment,
    pub status: &'static str,
}

/// The keys page's sortable columns (sorted in memory: there are a handful of keys).
const KEY_COLUMNS: Columns = Columns { sorts: &[("created", ""), ("alg", ""), ("status", "")], default: ("created", Dir::Desc), tiebreak: "" };

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    nav: Nav,
    keys: Vec<KeyView>,
    pager: Pager,
}

fn keys(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let now = state.clock.now();
    let published = state.keys.jwks(now);
    let is_published = |kid: &str| published["keys"].as_array().is_some_and(|ks| ks.iter().any(|k| k["kid"] == kid));
    let params = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let mut list = ListQuery::parse("/admin/keys", &params, &KEY_COLUMNS);
    let mut keys: Vec<(i64, KeyView)> = store::keys::all(&conn)?
        .into_iter()
        .map(|k| {
            let view = KeyView {
                status: match k.retired_at {
                    None => "Active",
                    Some(_) if is_published(&k.kid) => "Previous (still in JWKS)",
                    Some(_) => "Retired",
                },
                created: admin.zone.at(k.created_at),
                kid: k.kid,
                alg: k.alg,
            };
            (k.created_at, view)
        })
        .collect();
    // store::keys::all is newest first; a stable sort keeps that order within equal keys.
    match list.sort_key() {
        "alg" => keys.sort_by(|a, b| a.1.alg.cmp(&b.1.alg)),
        "status" => keys.sort_by(|a, b| a.1.status.cmp(b.1.status)),
        _ => keys.sort_by_key(|k| std::cmp::Reverse(k.0)),
    }
    if list.sort_key() == "created" && list.ascending() || list.sort_key() != "created" && !list.ascending() {
        keys.reverse();
    }
    let total = keys.len() as i64;
    list.clamp(total);
    let window = list.window();
    let keys = keys.into_iter().skip(window.offset as usize).take(window.limit as usize).map(|(_, k)| k).collect();
    Ok(html(StatusCode::OK, &KeysPage { nav: admin.nav(), keys, pager: list.pager(total) }))
}

fn rotate_keys(admin: Admin<Global>, _req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let now = state.clock.now();
    let kids = state.keys.rotate_all(now).map_err(|e| crate::web::InternalError::Other(e.to_string()))?;
    dir::audit_change(&conn, &admin.user.id, "keys_rotated", Some(&kids.join(", ")), None, None, now)?;
    Ok(see_other("/admin/keys"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/signins", web::get().to(crate::admin::page(signins)))
        .route("/admin/signins/{id}", web::get().to(crate::admin::page(signin)))
        .route("/admin/keys", web::get().to(crate::admin::page(keys)))
        .route("/admin/keys/rotate", web::post().to(crate::admin::page(rotate_keys)));
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

    #[test]
    fn a_date_range_is_whole_local_days() {
        let tokyo = super::words::Zone::named("Asia/Tokyo").unwrap();
        let mut error = None;
        let (from, to) = super::date_range(&tokyo, "2026-11-25", "2026-11-25", &mut error);
        assert_eq!((from, to), (Some(1_795_564_800 - 9 * 3600), Some(1_795_564_800 + 15 * 3600)));
        assert!(error.is_none());
        super::date_range(&tokyo, "last week", "", &mut error);
        assert_eq!(error.unwrap(), "\"last week\" is not a date (YYYY-MM-DD).");
    }
}
