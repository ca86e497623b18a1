//! Conditional access: policies (model), the pure evaluator, security defaults, templates,
//! risk signals, and `decide`, which gathers a sign-in's context from the store, evaluates
//! whatever is in force and logs the result.

pub mod evaluate;
pub mod locations;
pub mod model;
pub mod templates;

use crate::store::db::Connection;
use crate::store::{self, StoreError};
use evaluate::{Context, Evaluation};
use model::{ClientAppType, Platform, Policy, Risk};

/// What is known about the request, apart from who and which app.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Request {
    pub fn of(req: &actix_web::HttpRequest) -> Self {
        Self { ip: crate::web::client_ip(req), user_agent: crate::web::user_agent(req) }
    }
}

/// Risk inputs, kept small so identity protection can add detectors: today an admin marks IP
/// ranges risky (named locations with a risk level) and sets a user's risk.
pub struct RiskSignals {
    pub sign_in: Risk,
    pub user: Risk,
}

pub fn risk_signals(
    conn: &Connection,
    user_id: Option<&str>,
    locations: &[store::policies::NamedLocation],
    matched: &[String],
) -> Result<RiskSignals, StoreError> {
    let sign_in = locations.iter().filter(|l| matched.contains(&l.id)).map(|l| l.risk).max().unwrap_or(Risk::None);
    let user = match user_id {
        Some(u) => store::policies::user_risk(conn, u)?,
        None => Risk::None,
    };
    Ok(RiskSignals { sign_in, user })
}

/// Builds the evaluation context for a sign-in attempt.
#[allow(clippy::too_many_arguments)]
pub fn context(
    conn: &Connection,
    user_id: Option<&str>,
    app: &str,
    client_app_type: ClientAppType,
    request: &Request,
    amr: &[String],
    auth_time: Option<i64>,
    now: i64,
) -> Result<Context, StoreError> {
    let locations = store::cache::locations(conn)?;
    let ip: Option<std::net::IpAddr> = request.ip.as_deref().and_then(|i| i.parse().ok());
    let matched: Vec<String> = match ip {
        Some(ip) => locations
            .iter()
            .filter(|l| l.ranges.iter().filter_map(|r| locations::IpRange::parse(r).ok()).any(|r| r.contains(ip)))
            .map(|l| l.id.clone())
            .collect(),
        None => vec![],
    };
    let trusted = locations.iter().any(|l| l.trusted && matched.contains(&l.id));
    let risk = risk_signals(conn, user_id, &locations, &matched)?;
    let (username, groups, roles, password_changed) = match user_id {
        Some(u) => {
            let user = store::users::by_id(conn, u)?;
            let groups = group_ids(conn, u)?;
            let roles = store::directory::roles(conn, u)?.iter().map(|r| r.as_str().to_string()).collect();
            let changed = match (store::policies::password_changed_at(conn, u)?, auth_time) {
                (Some(changed), Some(auth)) => changed >= auth,
                _ => false,
            };
            (user.map(|u| u.username), groups, roles, changed)
        }
        None => (None, vec![], vec![], false),
    };
    Ok(Context {
        user_id: user_id.map(str::to_string),
        username,
        groups,
        roles,
        app: app.to_string(),
        client_app_type,
        ip: request.ip.clone(),
        user_agent: request.user_agent.clone(),
        locations: matched,
        trusted_location: trusted,
        platform: request.user_agent.as_deref().map(Platform::from_user_agent).unwrap_or(Platform::Other),
        sign_in_risk: risk.sign_in,
        risk_reasons: if risk.sign_in > Risk::None { vec!["sign-in from an IP range an administrator marked risky".into()] } else { vec![] },
        user_risk: risk.user,
        amr: amr.to_vec(),
        auth_age_secs: auth_time.map(|t| now - t),
        password_changed,
    })
}

fn group_ids(conn: &Connection, user_id: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT group_id FROM group_members WHERE user_id = ?1")?;
    let rows = stmt.query_map([user_id], |r| r.get(0))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// The policies in force: security defaults' built-in ones while defaults are on (custom
/// policies are then not evaluated — the two are mutually exclusive), else the custom ones.
pub fn in_force(conn: &Connection) -> Result<std::sync::Arc<Vec<Policy>>, StoreError> {
    match store::cache::security_defaults(conn)? {
        true => Ok(std::sync::Arc::new(templates::security_defaults())),
        false => store::cache::policies(conn),
    }
}

/// Evaluates what is in force for `ctx`.
pub fn decide(conn: &Connection, ctx: &Context) -> Result<Evaluation, StoreError> {
    Ok(evaluate::evaluate(&in_force(conn)?, ctx))
}

/// A short sentence for a person about why policy stopped them.
pub fn blocked_reason(policy: &str) -> String {
    format!("blocked by conditional access policy \"{policy}\"")
}

/// Adds what identity protection detected to a context.
pub fn add_detections(ctx: &mut Context, risk: Option<Risk>, reasons: &[String]) {
    if let Some(r) = risk {
        ctx.sign_in_risk = ctx.sign_in_risk.max(r);
    }
    ctx.risk_reasons.extend(reasons.iter().cloned());
}
