//! The console's application pages in sections, client-secret expiry, pickers for assignment,
//! and what a stolen cookie, a missing CSRF token or a hostile app name can do there.

use crate::admin::{get, mfa_browser, post};
use crate::common::*;
use latchkey::policy::model::State;
use latchkey::store::directory::Role;
use reqwest::StatusCode;

/// The part of `page` from `start` to the next `end`.
pub fn between<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    let from = page.find(start).unwrap_or_else(|| panic!("no {start} in page:\n{page}"));
    let rest = &page[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// Registers an app through the console form with `extra` fields; returns (client_id, secret).
pub async fn register(b: &reqwest::Client, server: &TestServer, csrf: &str, name: &str, extra: &[(&str, &str)]) -> (String, Option<String>) {
    let mut form: Vec<(&str, &str)> = vec![
        ("csrf", csrf),
        ("name", name),
        ("app_type", "web"),
        ("redirect_uris", REDIRECT),
        ("grant_authorization_code", "on"),
        ("grant_refresh_token", "on"),
        ("id_token_alg", "RS256"),
        ("lifetime", "365"),
    ];
    for (k, v) in extra {
        form.retain(|(fk, _)| fk != k);
        form.push((k, v));
    }
    let res = post(b, server, "/admin/apps/new", &form).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let page = res.text().await.unwrap();
    let secret = page.contains("id=\"client-secret\"").then(|| element_text(&page, "client-secret"));
    (element_text(&page, "client-id"), secret)
}

#[tokio::test]
async fn each_section_of_an_app_shows_its_own_data() {
    let server = TestServer::spawn();
    server.add_user("alice");
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let (id, _) = register(&b, &server, &csrf, "Payroll", &[]).await;
    let (other, _) = register(&b, &server, &csrf, "Wiki", &[]).await;
    // A policy for all apps applies; one for the other app only does not; one excluding it neither.
    let all = put_template(&server, "all-mfa", State::ReportOnly, |_| {});
    put_template(&server, "block-legacy", State::Off, |p| {
        p.include_apps.all = false;
        p.include_apps.apps = vec![other.clone()];
    });
    put_template(&server, "admins-mfa", State::ReportOnly, |p| {
        p.include_apps.all = true;
        p.exclude_apps.apps = vec![id.clone()];
    });
    // A sign-in to each app.
    code_for(&server, &browser(), &id, "alice").await;
    code_for(&server, &browser(), &other, "alice").await;

    let (status, overview) = get(&b, &server, &format!("/admin/apps/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(element_text(&overview, "client-id"), id);
    assert_eq!(element_text(&overview, "issuer"), server.base);
    assert_eq!(element_text(&overview, "discovery"), format!("{}/.well-known/openid-configuration", server.base));
    assert_eq!(element_attr(&overview, "tab-overview", "aria-current"), "page");
    for stack in ["node", "python", "go", "rust", "spring"] {
        let code = element_text(&overview, &format!("snippet-{stack}"));
        assert!(code.contains(&id) && code.contains(&server.base), "{stack}: {code}");
    }
    assert!(element_text(&overview, "snippet-node").contains("openid-client"));
    assert!(overview.contains("Works until"), "the secret's expiry: {overview}");
    assert!(!overview.contains("id=\"app-policies\""), "sections are separate pages");

    let (_, auth) = get(&b, &server, &format!("/admin/apps/{id}/authentication")).await;
    assert!(auth.contains(&format!(">{REDIRECT}</textarea>")), "{auth}");
    assert_eq!(element_attr(&auth, "tab-authentication", "aria-current"), "page");

    let (_, creds) = get(&b, &server, &format!("/admin/apps/{id}/credentials")).await;
    assert!(between(&creds, "id=\"secret-state\"", "</dd>").contains("Works until"), "{creds}");
    assert!(creds.contains("id=\"rotate-secret\""));

    let (_, tokens) = get(&b, &server, &format!("/admin/apps/{id}/tokens")).await;
    assert!(tokens.contains("<option value=\"RS256\" selected>"), "{tokens}");
    assert!(tokens.contains("600 s"), "server-wide lifetimes shown: {tokens}");

    let (_, access) = get(&b, &server, &format!("/admin/apps/{id}/access")).await;
    let table = &access[access.find("id=\"app-policies\"").expect("a table of policies")..];
    assert_eq!(table.matches("<tr><td>").count(), 1, "only the policy covering all apps applies: {table}");
    assert!(table.contains(&format!("href=\"/admin/policies/{}\"", all.id)), "{table}");

    let (_, signins) = get(&b, &server, &format!("/admin/apps/{id}/signins")).await;
    let table = &signins[signins.find("id=\"app-signins\"").expect("a table of sign-ins")..];
    assert_eq!(table.matches("<tr><td>").count(), 1, "alice's sign-in to this app only: {table}");
    assert!(table.contains("<td>alice</td>"));

    let (status, _) = get(&b, &server, &format!("/admin/apps/{id}/nonsense")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A section's form changes only its own fields.
    let res = post(&b, &server, &format!("/admin/apps/{id}"), &[("csrf", &csrf), ("section", "tokens"), ("id_token_alg", "ES256")]).await;
    assert_eq!(location(&res), format!("/admin/apps/{id}/tokens"));
    let app = latchkey::store::clients::by_id(&server.admin().pool.get().unwrap(), &id).unwrap().unwrap();
    assert_eq!((app.id_token_alg.as_str(), app.redirect_uris.clone(), app.grant_types.len()), ("ES256", vec![REDIRECT.to_string()], 2));
    server.stop().await;
}

#[tokio::test]
async fn an_expired_client_secret_is_refused_at_the_token_endpoint() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let (id, secret) = register(&b, &server, &csrf, "Batch", &[("grant_client_credentials", "on"), ("lifetime", "90")]).await;
    let secret = secret.unwrap();
    let cc = |secret: String| {
        let (server, id) = (&server, id.clone());
        async move { post_form(server, "/token", Some((&id, &secret)), &[("grant_type", "client_credentials")]).await }
    };
    assert_eq!(cc(secret.clone()).await.0, StatusCode::OK);
    server.advance(89 * 86_400);
    assert_eq!(cc(secret.clone()).await.0, StatusCode::OK, "still inside its 90 days");
    server.advance(2 * 86_400);
    let (status, headers, body) = cc(secret.clone()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    assert!(headers.contains_key("www-authenticate"));
    // The console says so, and a rotation (without grace) gives a working secret again.
    let (b, csrf) = mfa_browser(&server, "root2", &[Role::AppAdmin]).await;
    let (_, creds) = get(&b, &server, &format!("/admin/apps/{id}/credentials")).await;
    assert!(between(&creds, "id=\"secret-state\"", "</dd>").contains("Expired"), "{creds}");
    let page = post(&b, &server, &format!("/admin/apps/{id}/secret"), &[("csrf", &csrf), ("grace", "3600"), ("lifetime", "0")]).await.text().await.unwrap();
    let new = element_text(&page, "client-secret");
    assert_eq!(cc(new).await.0, StatusCode::OK);
    assert_eq!(cc(secret).await.0, StatusCode::UNAUTHORIZED, "a grace period never revives an expired secret");
    // A lifetime that is not offered is refused next to its field.
    let res = post(&b, &server, &format!("/admin/apps/{id}/secret"), &[("csrf", &csrf), ("grace", "0"), ("lifetime", "36500")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(element_text(&res.text().await.unwrap(), "lifetime-error").contains("offered secret lifetimes"));
    server.stop().await;
}

#[tokio::test]
async fn the_app_form_reports_every_bad_field_at_once_and_keeps_what_was_typed() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "Expenses"),
        ("app_type", "web"),
        ("redirect_uris", "http://app.example.com/cb"),
        ("grant_authorization_code", "on"),
        ("id_token_alg", "HS256"),
        ("initiate_login_uri", "not a url"),
        ("backchannel_logout_uri", "https://10.0.0.1/bc"),
        ("lifetime", "365"),
    ];
    let res = post(&b, &server, "/admin/apps/new", &form).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    let summary = &page[page.find("id=\"form-errors\"").unwrap()..];
    let summary = &summary[..summary.find("</div>").unwrap()];
    assert!(page[..page.find("id=\"form-errors\"").unwrap()].contains("role=\"alert\""));
    for field in ["redirect_uris", "id_token_alg", "initiate_login_uri", "backchannel_logout_uri"] {
        assert!(summary.contains(&format!("href=\"#{field}\"")), "{field} in the summary: {summary}");
        assert_eq!(element_attr(&page, field, "aria-invalid"), "true", "{field}");
        assert_eq!(element_attr(&page, field, "aria-describedby"), format!("{field}-error"));
    }
    assert!(page.contains(">http://app.example.com/cb</textarea>") && page.contains("value=\"not a url\""), "typed input kept");
    assert!(latchkey::store::clients::all(&server.admin().pool.get().unwrap()).unwrap().is_empty(), "nothing saved");
    server.stop().await;
}

#[tokio::test]
async fn an_app_named_like_markup_is_shown_as_text_everywhere() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let name = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    let (id, _) = register(&b, &server, &csrf, name, &[("redirect_uris", "https://app.example.com/cb?x=\");alert(1);//'")]).await;
    // The quick-start code quotes the redirect URI: it cannot close the string it sits in.
    let (_, overview) = get(&b, &server, &format!("/admin/apps/{id}")).await;
    for stack in ["node", "python", "go", "rust", "spring"] {
        let code = element_text(&overview, &format!("snippet-{stack}"));
        assert!(code.contains("https://app.example.com/cb?x=%22);alert(1);//%27") && !code.contains("\");alert"), "{stack}: {code}");
    }
    for path in ["/admin/apps".to_string(), format!("/admin/apps/{id}"), format!("/admin/apps/{id}/assignments"), format!("/admin/apps/{id}/signins")] {
        let (_, page) = get(&b, &server, &path).await;
        assert!(!page.contains("<script>alert") && !page.contains("<img src=x"), "{path}: {page}");
        assert!(page.contains("&#60;script&#62;alert(1)") || page.contains("&lt;script&gt;alert(1)"), "{path} shows the name as text");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_assignment_picker_searches_without_saving_and_refuses_unknown_ids() {
    let server = TestServer::spawn();
    let alice = server.add_user("alice");
    server.add_user("alfred");
    server.add_user("bob");
    let (b, csrf) = mfa_browser(&server, "amy", &[Role::AppAdmin]).await;
    let (id, _) = register(&b, &server, &csrf, "Payroll", &[]).await;
    let path = format!("/admin/apps/{id}/assignments");
    // Nothing typed yet: no list of every user, a hint instead.
    let (_, page) = get(&b, &server, &path).await;
    assert!(!between(&page, "id=\"user-found\"", "</ul>").contains("<li>"), "{page}");
    assert!(element_text(&page, "user-hint").contains("Type part of a name"));
    // Searching (the button without JavaScript) lists matches and keeps ticks; nothing saved.
    let form =
        vec![("csrf".to_string(), csrf.clone()), ("q_user".into(), "alf".into()), (format!("user_{alice}"), "on".into()), ("pick".into(), "user".into())];
    let res = b.post(server.url(&path)).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    let picked = &page[page.find("id=\"user-picked\"").unwrap()..];
    let picked = &picked[..picked.find("</ul>").unwrap()];
    assert!(picked.contains(&format!("name=\"user_{alice}\" checked")), "the tick is kept: {picked}");
    let found = &page[page.find("id=\"user-found\"").unwrap()..];
    let found = &found[..found.find("</ul>").unwrap()];
    assert!(found.contains("alfred") && !found.contains("bob"), "{found}");
    assert!(latchkey::store::directory::assignments(&server.admin().pool.get().unwrap(), &id).unwrap().is_empty(), "a search saves nothing");
    // An id that does not exist cannot be submitted, and nothing else in the form is saved.
    let form = vec![("csrf".to_string(), csrf.clone()), (format!("user_{alice}"), "on".into()), ("user_made-up-id".into(), "on".into())];
    let res = b.post(server.url(&path)).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    assert!(element_text(&page, "user-error").contains("There is no user with id \"made-up-id\"."), "{page}");
    assert!(latchkey::store::directory::assignments(&server.admin().pool.get().unwrap(), &id).unwrap().is_empty());
    // Known ids are assigned.
    let form = vec![("csrf".to_string(), csrf.clone()), (format!("user_{alice}"), "on".into())];
    let res = b.post(server.url(&path)).form(&form).send().await.unwrap();
    assert_eq!(location(&res), path);
    let assigned = latchkey::store::directory::assignments(&server.admin().pool.get().unwrap(), &id).unwrap();
    assert_eq!(assigned.iter().map(|a| a.label.as_str()).collect::<Vec<_>>(), ["alice"]);
    // The script's lookup answers application admins for users, not for named locations.
    let res = b.get(server.url("/admin/picker/users?q=AL")).send().await.unwrap();
    let json: serde_json::Value = res.json().await.unwrap();
    let labels: Vec<&str> = json["items"].as_array().unwrap().iter().map(|i| i["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["alfred", "alice"]);
    assert_eq!(b.get(server.url("/admin/picker/locations?q=")).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    // Application administrators neither search nor see users' e-mail addresses; global ones do.
    let json: serde_json::Value = b.get(server.url("/admin/picker/users?q=someone%40")).send().await.unwrap().json().await.unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 0);
    assert!(!b.get(server.url("/admin/picker/users?q=al")).send().await.unwrap().text().await.unwrap().contains("@"));
    let (root, _) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let json: serde_json::Value = root.get(server.url("/admin/picker/users?q=someone%40")).send().await.unwrap().json().await.unwrap();
    assert_eq!(json["more"].as_i64().unwrap() + json["items"].as_array().unwrap().len() as i64, 5, "alice, alfred, bob, amy and root");
    // A LIKE wildcard is searched for literally.
    let json: serde_json::Value = b.get(server.url("/admin/picker/users?q=%25")).send().await.unwrap().json().await.unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 0);
    server.stop().await;
}

#[tokio::test]
async fn console_pages_refuse_a_stolen_cookie_of_a_non_admin_and_posts_without_csrf() {
    let server = TestServer::spawn();
    let victim = server.add_user("victim");
    let (admin, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let (id, _) = register(&admin, &server, &csrf, "Payroll", &[]).await;
    let group = location(&post(&admin, &server, "/admin/groups", &[("csrf", &csrf), ("name", "Staff")]).await);
    // A signed-in non-admin (a stolen ordinary cookie) reaches none of it.
    let (user, user_csrf) = mfa_browser(&server, "ursula", &[]).await;
    for path in
        [format!("/admin/apps/{id}/credentials"), "/admin/picker/users?q=v".into(), "/admin/users/import".into(), format!("/admin/users/{victim}/delete")]
    {
        assert_eq!(get(&user, &server, &path).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    // An application administrator reaches apps, but no users or groups pages.
    let (apps_admin, apps_csrf) = mfa_browser(&server, "amy", &[Role::AppAdmin]).await;
    assert_eq!(get(&apps_admin, &server, &format!("/admin/apps/{id}/assignments")).await.0, StatusCode::OK);
    for path in [
        "/admin/users".to_string(),
        "/admin/users/import".into(),
        format!("/admin/users/{victim}"),
        format!("/admin/users/{victim}/delete"),
        format!("{group}/delete"),
    ] {
        assert_eq!(get(&apps_admin, &server, &path).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    for (path, form) in [
        (format!("/admin/users/{victim}/password"), vec![("new_password", "another long password")]),
        (format!("/admin/users/{victim}/delete"), vec![("confirm", "yes")]),
        ("/admin/users/bulk".into(), vec![("action", "disable")]),
        ("/admin/users/import".into(), vec![("csv", "username,email\nx,x@example.com\n"), ("confirm", "yes")]),
        (format!("{group}/delete"), vec![("confirm", "yes")]),
    ] {
        let mut with_csrf = form.clone();
        with_csrf.push(("csrf", &apps_csrf));
        assert_eq!(post(&apps_admin, &server, &path, &with_csrf).await.status(), StatusCode::FORBIDDEN, "{path}");
        let mut with_csrf = form.clone();
        with_csrf.push(("csrf", &user_csrf));
        assert_eq!(post(&user, &server, &path, &with_csrf).await.status(), StatusCode::FORBIDDEN, "{path}");
        // The global admin's own browser without the token (a cross-site form) is refused.
        let res = post(&admin, &server, &path, &form).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        let res = post(&admin, &server, &path, &[form.as_slice(), &[("csrf", "forged")]].concat()).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    for path in [format!("/admin/apps/{id}/assignments"), format!("/admin/apps/{id}/secret"), format!("/admin/apps/{id}")] {
        assert_eq!(post(&admin, &server, &path, &[("section", "tokens"), ("grace", "0")]).await.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    let conn = server.admin().pool.get().unwrap();
    assert!(latchkey::store::users::by_id(&conn, &victim).unwrap().is_some_and(|u| !u.disabled), "the victim is untouched");
    assert!(latchkey::store::users::by_username(&conn, "x").unwrap().is_none());
    assert!(latchkey::store::directory::group_by_name(&conn, "Staff").unwrap().is_some());
    server.stop().await;
}

#[tokio::test]
async fn the_new_console_pages_are_in_japanese() {
    let server = TestServer::spawn();
    let victim = server.add_user("victim");
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let (id, _) = register(&b, &server, &csrf, "Payroll", &[]).await;
    let group = location(&post(&b, &server, "/admin/groups", &[("csrf", &csrf), ("name", "Finance")]).await);
    let ja = |path: String| {
        let b = b.clone();
        let url = server.url(&path);
        async move { b.get(url).header("accept-language", "ja").send().await.unwrap().text().await.unwrap() }
    };
    let mut tour = crate::i18n::Tour::default();
    for section in ["", "/authentication", "/credentials", "/assignments", "/tokens", "/access", "/signins"] {
        let page = ja(format!("/admin/apps/{id}{section}")).await;
        assert!(page.contains("<html lang=\"ja\""), "{page}");
        tour.visit_named(&format!("app{section}"), &page);
    }
    let overview = ja(format!("/admin/apps/{id}")).await;
    assert!(overview.contains("クイック スタート") && overview.contains("資格情報"), "{overview}");
    for path in ["/admin/users/new?mode=invite".to_string(), "/admin/users/import".into(), format!("/admin/users/{victim}/delete"), format!("{group}/delete")] {
        let page = ja(path.clone()).await;
        tour.visit(&path, &page);
    }
    tour.visit_named("group", &ja(group.clone()).await);
    tour.visit_named("user", &ja(format!("/admin/users/{victim}")).await);
    tour.check();
    server.stop().await;
}
