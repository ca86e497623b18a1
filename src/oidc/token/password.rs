//! RFC 6749 §4.3, the resource owner password grant: legacy authentication. Off unless an
//! admin allows it for a client; always a single factor (`amr` ["pwd"]), so conditional
//! access (or security defaults, which block it) decides with client app type "legacy".

use crate::AppState;
use crate::crypto::secret_hash;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::jwt::at_hash;
use crate::oidc::tokens::{self, IdClaims, TokenResponse, has_scope};
use crate::policy::{self, evaluate::Decision, model::ClientAppType};
use crate::store::{self, clients::Client, signins::SignIn, tokens::Grant};
use crate::web::params::Params;
use rusqlite::Connection;

pub async fn exchange(
    state: &AppState,
    conn: &mut Connection,
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
    let user = store::users::by_username(conn, &username)?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verified = state
        .passwords
        .offload(move |h, mem| h.verify_with(&password, stored.as_deref(), mem))
        .await
        .map_err(OAuthError::server)?;
    let Some(user) = user.filter(|u| verified && !u.disabled) else {
        let entry = SignIn {
            username: Some(&username),
            client_id: Some(&client.id),
            ip: request.ip.as_deref(),
            user_agent: request.user_agent.as_deref(),
            result: "failure",
            reason: Some("legacy password grant: wrong username or password"),
            ..Default::default()
        };
        store::signins::record(conn, &entry, now)?;
        return Err(OAuthError::invalid_grant("wrong username or password"));
    };
    let amr = vec!["pwd".to_string()];
    let ctx = policy::context(conn, Some(&user.id), &client.id, ClientAppType::Legacy, request, &amr, Some(now), now)?;
    let eval = policy::decide(conn, &ctx)?;
    let refused = match &eval.decision {
        Decision::Allow if client.assignment_required && !store::directory::is_assigned(conn, &client.id, &user.id)? => {
            Some("user is not assigned to the application".to_string())
        }
        Decision::Allow if user.must_change_password => Some("the user must change their password".to_string()),
        Decision::Allow => None,
        Decision::Block { policy: name } => Some(policy::blocked_reason(name)),
        Decision::Require { policies, .. } => Some(format!("conditional access requires more than a password ({})", policies.join(", "))),
    };
    if let Some(reason) = refused {
        policy::log(conn, &ctx, &eval, "failure", Some(&reason), now)?;
        return Err(OAuthError::invalid_grant(reason));
    }
    policy::log(conn, &ctx, &eval, "success", None, now)?;
    let grant = Grant {
        id: crate::crypto::new_uuid(),
        client_id: client.id.clone(),
        user_id: Some(user.id.clone()),
        session_id: None,
        scope: scope.clone(),
        auth_time: Some(now),
        amr: amr.clone(),
        revoked_at: None,
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
