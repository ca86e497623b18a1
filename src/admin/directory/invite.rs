//! The invitation link: an invited person chooses their password (the link works once).

use crate::AppState;
use crate::crypto::secret_hash;
use crate::i18n::filters;
use crate::store::{self, directory as dir};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, html, see_other};
use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage<'a> {
    token: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

/// GET /invite/{token}: an invited person chooses their password (the link works once).
pub fn show_invite(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let token = crate::web::path_param(req, "token");
    let conn = state.pool.get()?;
    let user = dir::invite(&conn, &secret_hash(&token), state.clock.now())?.ok_or_else(invite_gone)?;
    Ok(html(StatusCode::OK, &InvitePage { token: &token, username: &user.username, error: None }))
}

fn invite_gone() -> PageError {
    ErrorPage::bad_request("This invitation link no longer works", "It has been used or has expired. Ask your administrator for a new one.").into()
}

pub fn accept_invite(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let token = crate::web::path_param(req, "token");
    // A lease: the connection goes back to the pool while the hash waits its turn.
    let mut conn = store::Lease::get(&state.pool)?;
    let now = state.clock.now();
    let p = Params::form(&body)?;
    let hash = secret_hash(&token);
    let user = dir::invite(&conn, &hash, now)?.ok_or_else(invite_gone)?;
    let new = p.get("new_password").unwrap_or("").to_string();
    let error = match state.protection.check_new(&new) {
        Err(e) => Some(e.to_string()),
        Ok(()) if p.get("confirm_password") != Some(new.as_str()) => Some("The two passwords do not match.".to_string()),
        Ok(()) => None,
    };
    if let Some(e) = error {
        return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &InvitePage { token: &token, username: &user.username, error: Some(&e) }));
    }
    let phc = crate::auth::login::hash_new(&state, &mut conn, &new)?;
    let accepted = store::transaction(&mut conn, |tx| -> Result<bool, store::StoreError> {
        if !dir::use_invite(tx, &hash, now)? {
            return Ok(false);
        }
        store::users::set_password(tx, &user.id, &phc, now, false)?;
        // A new password: whatever was signed in with the old one (if any) ends.
        store::protection::end_everything_except(tx, &user.id, None, now)?;
        store::mfa::audit(tx, Some(&user.id), Some(&user.id), "invite_accepted", None, now)?;
        Ok(true)
    })?;
    if !accepted {
        return Err(invite_gone());
    }
    Ok(see_other("/login"))
}
