//! The token, introspection, revocation and userinfo endpoints' refusals, per RFC 6749 §5.2,
//! RFC 7009, RFC 7662 and RFC 6750.

use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn a_wrong_pkce_verifier_is_invalid_grant() {
    let f = Fixture::new().await;
    let (code, _) = code_for(&f.server, &f.browser, &f.client_id, "alice").await;
    let (other_verifier, _) = pkce();
    let (status, body) = redeem(&f.server, f.client(), &code, &other_verifier).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    let (status, body) = redeem(&f.server, f.client(), &code, "short").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "{body}");
    f.server.stop().await;
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_the_tokens_issued_from_it() {
    let f = Fixture::new().await;
    let (code, verifier) = code_for(&f.server, &f.browser, &f.client_id, "alice").await;
    let (status, first) = redeem(&f.server, f.client(), &code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let access = first["access_token"].as_str().unwrap();
    let refresh_token = first["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&f.server, f.client(), access).await["active"], true);

    let (status, body) = redeem(&f.server, f.client(), &code, &verifier).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    assert_eq!(introspect(&f.server, f.client(), access).await["active"], false);
    assert_eq!(introspect(&f.server, f.client(), refresh_token).await["active"], false);
    let (status, body) = refresh(&f.server, f.client(), refresh_token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let res = rp_http().get(f.server.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    f.server.stop().await;
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let f = Fixture::new().await;
    let (code, verifier) = code_for(&f.server, &f.browser, &f.client_id, "alice").await;
    f.server.advance(61);
    let (status, body) = redeem(&f.server, f.client(), &code, &verifier).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert!(body["error_description"].as_str().unwrap().contains("expired"), "{body}");
    f.server.stop().await;
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri() {
    let f = Fixture::new().await;
    let (other_id, other_secret) = f.server.add_client("Other", &[], false);
    let (code, verifier) = code_for(&f.server, &f.browser, &f.client_id, "alice").await;
    let (status, body) = redeem(&f.server, (&other_id, other_secret.as_deref().unwrap()), &code, &verifier).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let form =
        [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", "http://127.0.0.1:9/other"), ("code_verifier", verifier.as_str())];
    let (status, _, body) = post_form(&f.server, "/token", Some(f.client()), &form).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    f.server.stop().await;
}

#[tokio::test]
async fn a_wrong_client_secret_is_401_invalid_client_with_www_authenticate() {
    let f = Fixture::new().await;
    let (code, verifier) = code_for(&f.server, &f.browser, &f.client_id, "alice").await;
    let (status, body) = redeem(&f.server, (&f.client_id, "not-the-secret"), &code, &verifier).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
        ("client_id", f.client_id.as_str()),
        ("client_secret", "wrong"),
    ];
    let (status, headers, body) = post_form(&f.server, "/token", None, &form).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    assert_eq!(headers.get("www-authenticate").unwrap(), r#"Basic realm="latchkey""#);
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
    // The code survived the failed attempts: client_secret_post with the right secret works.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
        ("client_id", f.client_id.as_str()),
        ("client_secret", f.secret.as_str()),
    ];
    let (status, _, body) = post_form(&f.server, "/token", None, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    f.server.stop().await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let f = Fixture::new().await;
    let first = f.tokens().await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let (status, second) = refresh(&f.server, f.client(), r1).await;
    assert_eq!(status, StatusCode::OK);
    let r2 = second["refresh_token"].as_str().unwrap();
    let a2 = second["access_token"].as_str().unwrap();
    assert_eq!(introspect(&f.server, f.client(), a2).await["active"], true);

    let (status, body) = refresh(&f.server, f.client(), r1).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let (status, _) = refresh(&f.server, f.client(), r2).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the newest token of the family is dead too");
    assert_eq!(introspect(&f.server, f.client(), a2).await["active"], false);
    f.server.stop().await;
}

#[tokio::test]
async fn refresh_may_narrow_the_scope_but_never_widen_it() {
    let f = Fixture::new().await;
    let first = f.tokens().await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let (status, _, body) =
        post_form(&f.server, "/token", Some(f.client()), &[("grant_type", "refresh_token"), ("refresh_token", r1), ("scope", "openid email")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")));
    // The refused request did not spend the token.
    let (status, _, body) =
        post_form(&f.server, "/token", Some(f.client()), &[("grant_type", "refresh_token"), ("refresh_token", r1), ("scope", "openid")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "openid");
    f.server.stop().await;
}

#[tokio::test]
async fn client_credentials_needs_a_client_allowed_it() {
    let f = Fixture::new().await;
    let (status, _, body) = post_form(&f.server, "/token", Some(f.client()), &[("grant_type", "client_credentials")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unauthorized_client")));

    let (svc, svc_secret) = f.server.add_client("Batch job", &["client_credentials"], false);
    let svc = (svc.as_str(), svc_secret.as_deref().unwrap());
    let (status, _, body) = post_form(&f.server, "/token", Some(svc), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let info = introspect(&f.server, svc, body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], svc.0, "RFC 9068: sub is the client itself");
    let res = rp_http().get(f.server.url("/userinfo")).bearer_auth(body["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "no user behind a client_credentials token");

    let (status, _, body) = post_form(&f.server, "/token", Some(svc), &[("grant_type", "client_credentials"), ("scope", "openid")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")));
    f.server.stop().await;
}

#[tokio::test]
async fn malformed_token_requests_get_the_specific_error() {
    let f = Fixture::new().await;
    let (status, _, body) =
        post_form(&f.server, "/token", Some(f.client()), &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", "x")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unsupported_grant_type")));
    let (status, _, body) = post_form(&f.server, "/token", Some(f.client()), &[]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    let (status, _, body) = post_form(&f.server, "/token", Some(f.client()), &[("grant_type", "refresh_token"), ("grant_type", "refresh_token")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "repeated parameters");
    let (status, _, body) = post_form(&f.server, "/token", Some(f.client()), &[("grant_type", "client_credentials"), ("client_secret", "x")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "two auth methods");
    let res = rp_http()
        .post(f.server.url("/token"))
        .basic_auth(&f.client_id, Some(&f.secret))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "JSON bodies are not OAuth");
    let (status, _, body) = post_form(&f.server, "/token", None, &[("grant_type", "client_credentials")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    f.server.stop().await;
}

#[tokio::test]
async fn revoked_tokens_introspect_as_inactive() {
    let f = Fixture::new().await;
    let t = f.tokens().await;
    let access = t["access_token"].as_str().unwrap();
    let refresh_token = t["refresh_token"].as_str().unwrap();
    let info = introspect(&f.server, f.client(), access).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], f.client_id);
    assert_eq!(info["scope"], "openid offline_access");

    let (status, _, _) = post_form(&f.server, "/revoke", Some(f.client()), &[("token", access), ("token_type_hint", "access_token")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(introspect(&f.server, f.client(), access).await, serde_json::json!({"active": false}));
    let res = rp_http().get(f.server.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get("www-authenticate").unwrap().to_str().unwrap().contains(r#"error="invalid_token""#));

    assert_eq!(introspect(&f.server, f.client(), refresh_token).await["active"], true);
    let (status, _, _) = post_form(&f.server, "/revoke", Some(f.client()), &[("token", refresh_token)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(introspect(&f.server, f.client(), refresh_token).await["active"], false);
    let (status, body) = refresh(&f.server, f.client(), refresh_token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));

    // Unknown tokens: still 200 (RFC 7009 §2.2).
    let (status, _, _) = post_form(&f.server, "/revoke", Some(f.client()), &[("token", "nonsense")]).await;
    assert_eq!(status, StatusCode::OK);
    f.server.stop().await;
}

#[tokio::test]
async fn another_client_cannot_introspect_or_revoke_my_tokens() {
    let f = Fixture::new().await;
    let t = f.tokens().await;
    let access = t["access_token"].as_str().unwrap();
    let (other, other_secret) = f.server.add_client("Other", &[], false);
    let other = (other.as_str(), other_secret.as_deref().unwrap());
    assert_eq!(introspect(&f.server, other, access).await["active"], false);
    post_form(&f.server, "/revoke", Some(other), &[("token", access)]).await;
    assert_eq!(introspect(&f.server, f.client(), access).await["active"], true);
    let (status, _, body) = post_form(&f.server, "/introspect", None, &[("token", access)]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    f.server.stop().await;
}

#[tokio::test]
async fn userinfo_needs_a_bearer_token_and_answers_post_too() {
    let f = Fixture::new().await;
    let res = rp_http().get(f.server.url("/userinfo")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get("www-authenticate").unwrap().to_str().unwrap().starts_with("Bearer"));
    let t = f.tokens().await;
    let access = t["access_token"].as_str().unwrap();
    let res = rp_http().post(f.server.url("/userinfo")).form(&[("access_token", access)]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["sub"].is_string());
    assert!(body.get("email").is_none(), "no email scope, no email claim");
    let res = rp_http().get(f.server.url("/userinfo")).bearer_auth("eyJhbGciOiJub25lIn0.e30.").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    f.server.stop().await;
}
