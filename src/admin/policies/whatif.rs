//! What If: the same evaluator a real sign-in uses, for inputs an admin picks.

use super::targets;
use crate::AppState;
use crate::admin::{Admin, Global, Nav};
use crate::i18n::filters;
use crate::policy;
use crate::policy::evaluate::{self, PolicyResult};
use crate::policy::model::*;
use crate::store::{self, policies as pol};
use crate::web::params::Params;
use crate::web::{PageError, html};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use std::collections::BTreeMap;

/// The What If form's query, as typed.
pub struct Query(BTreeMap<String, String>);

impl Query {
    pub fn v(&self, k: &str) -> &str {
        self.0.get(k).map(|s| s.trim()).unwrap_or("")
    }
}

#[derive(Template)]
#[template(path = "admin/whatif.html")]
struct WhatIfPage {
    nav: Nav,
    q: Query,
    apps: Vec<(String, String)>,
    platforms: Vec<&'static str>,
    result: Option<(String, Vec<PolicyResult>, bool)>,
    error: Option<String>,
}

/// GET /admin/whatif: the same evaluator a real sign-in uses, for inputs an admin picks.
pub fn what_if(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let now = state.clock.now();
    let q = Query(Params::parse(req.query_string().as_bytes()).unwrap_or_default().into_map().into_iter().collect());
    let get = |k: &str| q.v(k);
    let apps = targets(&conn)?;
    let mut error = None;
    let mut result = None;
    if !get("user").is_empty() || !get("app").is_empty() {
        let client_app_type: ClientAppType = serde_json::from_value(serde_json::json!(get("client_app_type"))).unwrap_or(ClientAppType::Browser);
        let user = if client_app_type == ClientAppType::ClientCredentials { None } else { store::users::by_username(&conn, get("user"))? };
        if user.is_none() && client_app_type != ClientAppType::ClientCredentials {
            error = Some(format!("No user named {:?}.", get("user")));
        } else if !apps.iter().any(|(id, _)| id == get("app")) {
            error = Some("Choose an application.".into());
        } else if !get("ip").is_empty() && get("ip").parse::<std::net::IpAddr>().is_err() {
            error = Some(format!("{:?} is not an IP address.", get("ip")));
        } else {
            let amr: Vec<String> = match get("methods") {
                "mfa" => vec!["pwd".into(), "otp".into(), "mfa".into()],
                "phishing_resistant" => vec!["pwd".into(), "hwk".into(), "user".into(), "mfa".into()],
                _ if client_app_type == ClientAppType::ClientCredentials => vec![],
                _ => vec!["pwd".into()],
            };
            let platform_ua = match get("platform") {
                "windows" => "Windows NT 10.0",
                "macos" => "Macintosh; Intel Mac OS X 14_5",
                "linux" => "X11; Linux x86_64",
                "ios" => "iPhone; CPU iPhone OS 17_5",
                "android" => "Linux; Android 14",
                _ => "unknown",
            };
            let request = policy::Request { ip: Some(get("ip").to_string()).filter(|s| !s.is_empty()), user_agent: Some(platform_ua.into()) };
            let profile = match &user {
                Some(u) => store::users::profile(&conn, &u.id)?,
                None => None,
            };
            let mut ctx = policy::context(&conn, profile.as_ref(), get("app"), client_app_type, &request, &amr, Some(now), now)?;
            // Risk levels picked here override the computed ones (that is the question asked).
            if let Some(r) = Risk::parse(get("sign_in_risk")) {
                ctx.sign_in_risk = r;
            }
            if let Some(r) = Risk::parse(get("user_risk")) {
                ctx.user_risk = r;
            }
            let eval = policy::decide(&conn, &ctx)?;
            let decision = match &eval.decision {
                evaluate::Decision::Allow => "Allowed".to_string(),
                evaluate::Decision::Block { policy } => format!("Blocked by \"{policy}\""),
                evaluate::Decision::Require { needs, .. } => {
                    let mut parts = vec![];
                    if let Some(l) = needs.level {
                        parts.push(match l {
                            crate::auth::flow::Level::PhishingResistant => "phishing-resistant MFA",
                            _ => "multi-factor authentication",
                        });
                    }
                    if needs.password_change {
                        parts.push("a password change");
                    }
                    if needs.reauthenticate {
                        parts.push("signing in again");
                    }
                    format!("Requires {}", parts.join(" and "))
                }
            };
            result = Some((decision, eval.results, pol::security_defaults(&conn)?));
        }
    }
    let page = WhatIfPage { nav: admin.nav(), q, apps, platforms: Platform::ALL.iter().map(|p| p.as_str()).collect(), result, error };
    Ok(html(StatusCode::OK, &page))
}
