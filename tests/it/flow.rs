//! A relying party built on the `openidconnect` crate runs the whole flow.

use crate::common::*;
use openidconnect::core::{CoreAuthenticationFlow, CoreUserInfoClaims};
use openidconnect::{AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, Scope, TokenResponse};
use reqwest::StatusCode;

#[tokio::test]
async fn a_relying_party_signs_a_user_in_with_code_and_pkce_then_refreshes_and_a_second_app_needs_no_password() {
    let server = TestServer::spawn();
    let sub = server.add_user("alice");
    let (id, secret) = server.add_client("Wiki", &["authorization_code", "refresh_token"], false);
    let rp = relying_party(&server, &id, secret.as_deref()).await;
    let http = rp_http();

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = rp
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = browser();
    let back = sign_in(&server, &browser, auth_url.as_str(), "alice").await;
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some(csrf.secret().as_str()));
    assert_eq!(query_param(&back, "iss").as_deref(), Some(server.base.as_str()));
    let code = query_param(&back, "code").unwrap();

    let tokens = rp.exchange_code(AuthorizationCode::new(code)).unwrap().set_pkce_verifier(verifier).request_async(&http).await.unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = rp.id_token_verifier();
    let claims = id_token.claims(&id_verifier, &nonce).expect("signature, issuer, audience and nonce verify");
    assert_eq!(claims.subject().as_str(), sub);
    assert!(claims.auth_time().is_some());
    let amr: Vec<String> = claims.auth_method_refs().unwrap().iter().map(|a| a.to_string()).collect();
    assert_eq!(amr, ["pwd"]);
    let expected_hash =
        AccessTokenHash::from_token(tokens.access_token(), id_token.signing_alg().unwrap(), id_token.signing_key(&id_verifier).unwrap()).unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));

    let info: CoreUserInfoClaims = rp.user_info(tokens.access_token().clone(), None).unwrap().request_async(&http).await.unwrap();
    assert_eq!(info.subject().as_str(), sub);
    assert_eq!(info.preferred_username().unwrap().as_str(), "alice");
    assert_eq!(info.email().unwrap().as_str(), "someone@example.com");

    let refresh = tokens.refresh_token().expect("offline_access gives a refresh token");
    let refreshed = rp.exchange_refresh_token(refresh).unwrap().request_async(&http).await.unwrap();
    assert_ne!(refreshed.refresh_token().unwrap().secret(), refresh.secret(), "refresh tokens rotate");
    let info: CoreUserInfoClaims = rp.user_info(refreshed.access_token().clone(), None).unwrap().request_async(&http).await.unwrap();
    assert_eq!(info.subject().as_str(), sub);

    // A second app: the SSO session signs the same person in without a password prompt.
    let (id2, secret2) = server.add_client("Chat", &["authorization_code"], false);
    let rp2 = relying_party(&server, &id2, secret2.as_deref()).await;
    let (challenge2, verifier2) = PkceCodeChallenge::new_random_sha256();
    let (url2, _, nonce2) =
        rp2.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).set_pkce_challenge(challenge2).url();
    let res = authorize(&server, &browser, url2.as_str()).await;
    let back2 = location(&res);
    assert!(back2.starts_with(REDIRECT), "SSO should go straight back to the app, went to {back2}");
    let tokens2 = rp2
        .exchange_code(AuthorizationCode::new(query_param(&back2, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(verifier2)
        .request_async(&http)
        .await
        .unwrap();
    let claims2 = tokens2.id_token().unwrap().claims(&rp2.id_token_verifier(), &nonce2).unwrap();
    assert_eq!(claims2.subject().as_str(), sub);
    assert_eq!(claims2.auth_time(), claims.auth_time(), "the same sign-in event");
    assert!(tokens2.refresh_token().is_none(), "no offline_access, no refresh token");
    server.stop().await;
}

#[tokio::test]
async fn a_public_client_signs_in_with_pkce_and_no_secret() {
    let server = TestServer::spawn();
    server.add_user("pat");
    let (id, secret) = server.add_client("SPA", &[], true);
    assert!(secret.is_none());
    let rp = relying_party(&server, &id, None).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) =
        rp.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).set_pkce_challenge(challenge).url();
    let back = sign_in(&server, &browser(), url.as_str(), "pat").await;
    let tokens = rp
        .exchange_code(AuthorizationCode::new(query_param(&back, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp_http())
        .await
        .unwrap();
    tokens.id_token().unwrap().claims(&rp.id_token_verifier(), &nonce).unwrap();
    server.stop().await;
}

/// Eight people signing in at once, while an app refreshes alongside: every read-then-write
/// transaction starts IMMEDIATE, so SQLite makes them wait instead of failing with "database is
/// locked" (33 of 1000 sign-ins got a 500 before).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_sign_in_loops_with_refreshes_alongside_get_no_server_errors() {
    let f = Fixture::new().await;
    for i in 0..8 {
        f.server.add_user(&format!("user{i}"));
    }
    let sign_ins = |i: usize| {
        let f = &f;
        async move {
            for _ in 0..6 {
                let b = browser();
                let (code, verifier) = code_for(&f.server, &b, &f.client_id, &format!("user{i}")).await;
                let (status, body) = redeem(&f.server, f.client(), &code, &verifier).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }
    };
    let refreshes = async {
        let mut token = f.tokens().await["refresh_token"].as_str().unwrap().to_string();
        for _ in 0..30 {
            let (status, body) = refresh(&f.server, f.client(), &token).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            token = body["refresh_token"].as_str().unwrap().to_string();
        }
    };
    tokio::join!(sign_ins(0), sign_ins(1), sign_ins(2), sign_ins(3), sign_ins(4), sign_ins(5), sign_ins(6), sign_ins(7), refreshes);
    let conn = f.server.admin().pool.get().unwrap();
    let successes: i64 = conn.query_row("SELECT count(*) FROM signin_log WHERE result = 'success'", [], |r| r.get(0)).unwrap();
    assert!(successes >= 49, "every sign-in logged: {successes}");
    f.server.stop().await;
}

/// OIDC Core §3.1.2.1: an id_token_hint names the person the app expects. Another person's
/// session gives no code for it, and whoever signs in instead is not that person's stand-in.
#[tokio::test]
async fn an_id_token_hint_for_another_person_gets_no_code_from_this_session() {
    let f = Fixture::new().await;
    f.server.add_user("bob");
    let bobs = browser();
    let (code, verifier) = code_for(&f.server, &bobs, &f.client_id, "bob").await;
    let (_, tokens) = redeem(&f.server, f.client(), &code, &verifier).await;
    let bobs_hint = tokens["id_token"].as_str().unwrap().to_string();
    let alices_hint = f.tokens().await["id_token"].as_str().unwrap().to_string();
    let (_, challenge) = pkce();
    let url = |extra: &[(&str, &str)]| good_auth_url(&f.server, &f.client_id, &challenge, extra);

    // Alice's browser, bob's hint: silently, an error; interactively, a new sign-in.
    let res = authorize(&f.server, &f.browser, &url(&[("prompt", "none"), ("id_token_hint", &bobs_hint)])).await;
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("login_required"), "{}", location(&res));
    let res = authorize(&f.server, &f.browser, &url(&[("id_token_hint", &bobs_hint)])).await;
    let to = location(&res);
    assert!(to.starts_with("/login?request="), "{to}");
    let page = login_page(&f.server, &f.browser, &to).await;
    assert!(!page.contains(r#"value="bob""#), "the hint does not tell the page whom it names");
    // Alice signs in there instead: still no code, as the hint named bob.
    let res = submit_login(&f.server, &f.browser, &page, "alice", PASSWORD).await;
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("login_required"), "{}", location(&res));
    let (result, reason): (String, String) = f
        .server
        .admin()
        .pool
        .get()
        .unwrap()
        .query_row("SELECT result, reason FROM signin_log ORDER BY id DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(result, "failure", "the sign-in log says the app got no code: {reason}");

    // Her own hint: single sign-on as usual. A hint this provider did not sign: refused.
    let res = authorize(&f.server, &f.browser, &url(&[("prompt", "none"), ("id_token_hint", &alices_hint)])).await;
    assert!(query_param(&location(&res), "code").is_some(), "{}", location(&res));
    let mut forged = alices_hint.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let res = authorize(&f.server, &f.browser, &url(&[("prompt", "none"), ("id_token_hint", &forged)])).await;
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("invalid_request"), "{}", location(&res));
    f.server.stop().await;
}
