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

pub fn risk_signals(user: Risk, locations: &[store::policies::NamedLocation], matched: &[String]) -> RiskSignals {
    let sign_in = locations.iter().filter(|l| matched.contains(&l.id)).map(|l| l.risk).max().unwrap_or(Risk::None);
    RiskSignals { sign_in, user }
}

/// Builds the evaluation context for a sign-in attempt.
#[allow(clippy::too_many_arguments)]
pub fn context(
    conn: &Connection,
    person: Option<&store::users::Profile>,
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
    let risk = risk_signals(person.map_or(Risk::None, |p| p.user_risk), &locations, &matched);
    let (username, groups, roles, password_changed) = match person {
        Some(p) => {
            let roles = p.roles.iter().map(|r| r.as_str().to_string()).collect();
            let changed = match (p.password_changed_at, auth_time) {
                (Some(changed), Some(auth)) => changed >= auth,
                _ => false,
            };
            (Some(p.user.username.clone()), p.groups.clone(), roles, changed)
        }
        None => (None, vec![], vec![], false),
    };
    Ok(Context {
        user_id: person.map(|p| p.user.id.clone()),
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
