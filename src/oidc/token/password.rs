//! RFC 6749 §4.3, the resource owner password grant: legacy authentication. Off unless an
//! admin allows it for a client; always a single factor (`amr` ["pwd"]), so conditional
//! access (or security defaults, which block it) decides with client app type "legacy". The
//! password goes through the same step as the browser's (lockout, detectors, failure count,
//! sign-in log) and the gate decides; users who have or must use a second factor are refused,
//! since this grant cannot perform one.

use crate::AppState;
use crate::auth::password_step;
use crate::crypto::secret_hash;
use crate::gate::{self, Outcome, Refusal, Target, Way};
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::jwt::at_hash;
use crate::oidc::tokens::{self, IdClaims, TokenResponse, has_scope};
use crate::policy::{self, model::ClientAppType};
use crate::store::db::Connection;
use crate::store::{self, Lease, clients::Client, signins::SignIn, tokens::Grant};
use crate::web::params::Params;

pub fn exchange(
    state: &AppState,
    conn: &mut Lease,
    client: &Client,
    params: &Params,
    request: &policy::Request,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let username = params.get("username").ok_or_else(|| OAuthError::invalid_request("username is missing"))?.to_string();
    let password = params.get("password").ok_or_else(|| OAuthError::invalid_request("password is missing"))?.to_string();
    let mut scope: Vec<&str> = vec![];
    for s in params.get("scope").unwrap_or("openid").split(' ').filter(|s| !s.is_empty()) {
        if !crate::oidc::discovery::SCOPES.contains(&s) {
            return Err(OAuthError::new(ErrorCode::InvalidScope, format!("scope {s:?} is not supported")));
        }
        if !scope.contains(&s) {
            scope.push(s);
        }
    }
    let scope = scope.join(" ");
    // Conditional access first, with what is known before the password is checked, so that a
    // blocked sign-in gets the same answer whether the password was right or wrong (RFC 6749
    // §4.3 is legacy authentication: it must not become a password oracle).
    let account = match username.len() {
        1..=password_step::MAX_USERNAME => store::users::by_username(conn, &username)?,
        _ => None,
    };
    let amr = vec!["pwd".to_string()];
    fn ask<'a>(client: &Client, user_id: &'a str, request: &'a policy::Request, amr: &'a [String], now: i64) -> gate::Ask<'a> {
        gate::Ask {
            way: Way::PasswordGrant,
            client_app_type: ClientAppType::Legacy,
            auth_time: Some(now),
            ..gate::Ask::interactive(Target::App(client.id.clone()), user_id, request, amr)
        }
    }
    // One answer for every failure — unknown user, wrong password, lockout, policy — so the
    // grant reveals neither accounts nor passwords.
    // The correlation id is the request's id, which the attempt's sign-in log row keeps.
    let failed = |_logged: i64| {
        OAuthError::invalid_grant(format!("wrong username or password, or the sign-in is not allowed (correlation id {})", crate::web::observe::correlation()))
    };
    let refuse = |conn: &Connection, verdict: &gate::Verdict, reason: &str| -> Result<OAuthError, OAuthError> {
        Ok(failed(gate::log(conn, verdict, "failure", Some(&format!("legacy password grant: {reason}")), now)?))
    };
    if let Some(u) = &account {
        let before = gate::check(conn, &ask(client, &u.id, request, &amr, now), now)?;
        if let Outcome::Refuse(Refusal::Blocked { .. }) = &before.outcome {
            // The same work as a checked password, so time does not tell either.
            let attempt = password.clone();
            conn.without(|| state.passwords.run(move |h, mem| h.verify_with(&attempt, None, mem)))?.map_err(OAuthError::server)?;
            return Err(refuse(conn, &before, &before.outcome_reason())?);
        }
    }
    let step = password_step::check(state, conn, &username, &password, request, now)?;
    let Some(user) = step.user else {
        let failure = step.failure.unwrap_or(password_step::Failure::WrongPassword);
        let reason = match step.reasons.is_empty() {
            true => format!("legacy password grant: {}", failure.reason()),
            false => format!("legacy password grant: {}; risk: {}", failure.reason(), step.reasons.join("; ")),
        };
        let entry = SignIn {
            user_id: step.user_id.as_deref(),
            username: username.get(..username.len().min(password_step::MAX_USERNAME)),
            client_id: Some(&client.id),
            ip: request.ip.as_deref(),
            user_agent: request.user_agent.as_deref(),
            result: "failure",
            reason: Some(&reason),
            failure: failure.word(),
            ..Default::default()
        };
        return Err(failed(gate::log_plain(conn, &entry, now)?));
    };
    let mut after = ask(client, &user.id, request, &amr, now);
    after.sign_in_risk = step.risk;
    after.risk_reasons = &step.reasons;
    let verdict = gate::check(conn, &after, now)?;
    if let Outcome::Refuse(r) = &verdict.outcome {
        return Err(refuse(conn, &verdict, &r.log_reason())?);
    }
    if verdict.issued().is_none() {
        return Err(refuse(conn, &verdict, "more than a password is required")?);
    }
    gate::log(conn, &verdict, "success", None, now)?;
    let grant = Grant {
        id: crate::crypto::new_uuid(),
        client_id: client.id.clone(),
        user_id: Some(user.id.clone()),
        session_id: None,
        scope: scope.clone(),
        auth_time: Some(now),
        amr: amr.clone(),
        revoked_at: None,
        legacy: true,
    };
    let refresh = (has_scope(&scope, "offline_access") && client.allows_grant("refresh_token")).then(crate::crypto::random_token);
    store::transaction(conn, |tx| -> Result<(), store::StoreError> {
        store::tokens::insert_grant(tx, &grant, now)?;
        if let Some(r) = &refresh {
            store::tokens::insert_refresh(tx, &secret_hash(r), &grant.id, now, now + state.config.tokens.refresh_token_ttl_secs)?;
        }
        Ok(())
    })?;
    let (access_token, expires_in) = super::user_access_token(state, &grant, &user.id, &scope, now);
    let mut response = super::bearer(access_token.clone(), expires_in, scope.clone());
    if has_scope(&scope, "openid") {
        let claims = IdClaims {
            iss: state.config.issuer().to_string(),
            sub: user.id.clone(),
            aud: client.id.clone(),
            exp: now + state.config.tokens.id_token_ttl_secs,
            iat: now,
            auth_time: now,
            nonce: None,
            at_hash: at_hash(&access_token),
            sid: String::new(),
            amr,
            acr: crate::auth::flow::Level::Password.acr().to_string(),
            groups: None,
        };
        response.id_token = Some(tokens::id_token(&state.keys.active_for(&client.id_token_alg, now), &claims));
    }
    response.refresh_token = refresh;
    Ok(response)
}
