//! Pages in English and Japanese: the language comes from the app's `ui_locales`, then the
//! person's choice (the switch on every page), then `Accept-Language`; no page shows a missing
//! message (`⟦key⟧`).

use crate::common::*;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_LANGUAGE, HeaderMap, HeaderValue, SET_COOKIE};

/// A browser whose person reads Japanese first.
fn japanese_browser() -> reqwest::Client {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("ja-JP,ja;q=0.9,en;q=0.5"));
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).default_headers(headers).build().unwrap()
}

fn html_lang(page: &str) -> &str {
    let start = page.find("<html lang=\"").expect("an html element with lang") + 12;
    &page[start..start + page[start..].find('"').unwrap()]
}

fn h1(page: &str) -> String {
    let start = page.find("<h1").and_then(|i| page[i..].find('>').map(|j| i + j + 1)).unwrap_or(0);
    unescape(&page[start..start + page[start..].find("</h1>").unwrap_or(0)])
}

/// Every page a test visits: none may show a missing message, and a Japanese page's heading
/// must be Japanese (an English title built in Rust that the catalogue lacks shows up here).
#[derive(Default)]
pub struct Tour(Vec<(String, String, bool)>);

impl Tour {
    pub fn visit(&mut self, name: &str, page: &str) {
        self.0.push((name.to_string(), page.to_string(), true));
    }

    /// A page whose heading is a name (an app's, a user's): only its messages are checked.
    pub fn visit_named(&mut self, name: &str, page: &str) {
        self.0.push((name.to_string(), page.to_string(), false));
    }

    pub fn check(&self) {
        // LK_TOUR_DUMP=dir keeps every page for a reader checking the Japanese.
        if let Ok(dir) = std::env::var("LK_TOUR_DUMP") {
            std::fs::create_dir_all(&dir).unwrap();
            for (name, page, _) in &self.0 {
                let file: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
                std::fs::write(format!("{dir}/{file}.html"), page).unwrap();
            }
        }
        for (name, page, heading_is_text) in &self.0 {
            assert!(!page.contains('⟦'), "{name} shows a missing message:\n{page}");
            if *heading_is_text && html_lang(page) == "ja" {
                let heading = h1(page);
                assert!(!heading.is_ascii() || heading.is_empty(), "{name}'s heading is not in Japanese: {heading:?}");
            }
        }
    }
}

async fn get(b: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let res = b.get(url).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

#[tokio::test]
async fn discovery_lists_english_and_japanese() {
    let server = TestServer::spawn();
    let meta: serde_json::Value = reqwest::get(server.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(meta["ui_locales_supported"], serde_json::json!(["en", "ja"]));
    server.stop().await;
}

#[tokio::test]
async fn a_sign_in_with_ui_locales_ja_is_in_japanese_from_the_first_page_to_the_app() {
    let server = TestServer::spawn();
    server.add_user("alice");
    let (id, _) = server.add_client("Wiki", &[], false);
    let (_, challenge) = pkce();
    let b = browser();
    let mut tour = Tour::default();
    let res = authorize(&server, &b, &good_auth_url(&server, &id, &challenge, &[("ui_locales", "fr ja en")])).await;
    let page = login_page(&server, &b, &location(&res)).await;
    tour.visit("sign-in (ui_locales=ja)", &page);
    assert_eq!(html_lang(&page), "ja");
    assert!(page.contains("<h1>サインイン</h1>") && page.contains("パスワード"), "{page}");
    assert!(page.contains("<strong>Wiki</strong> に進む"), "{page}");
    // The wrong password, in Japanese too; ids and field names stay as they are.
    let res = submit_login(&server, &b, &page, "alice", "wrong").await;
    let again = res.text().await.unwrap();
    tour.visit("sign-in error (ui_locales=ja)", &again);
    assert_eq!(element_text(&again, "login-error"), "ユーザー名またはパスワードが正しくありません。");
    let res = submit_login(&server, &b, &again, "alice", PASSWORD).await;
    assert!(location(&res).starts_with(REDIRECT), "signed in, back to the app");
    // The app's wish holds for its own sign-in only: this browser has chosen nothing.
    let (_, start) = get(&b, &server.url("/login")).await;
    assert_eq!(start, "", "a redirect to a new sign-in page");
    let b = browser();
    let res = authorize(&server, &b, &good_auth_url(&server, &id, &challenge, &[])).await;
    let page = login_page(&server, &b, &location(&res)).await;
    assert_eq!(html_lang(&page), "en");
    assert!(page.contains("<h1>Sign in</h1>") && page.contains("to continue to <strong>Wiki</strong>"), "{page}");
    tour.visit("sign-in (English)", &page);
    tour.check();
    server.stop().await;
}

#[tokio::test]
async fn a_browser_that_accepts_japanese_gets_the_sign_in_page_in_japanese() {
    let server = TestServer::spawn();
    let (id, _) = server.add_client("Wiki", &[], false);
    let (_, challenge) = pkce();
    let b = japanese_browser();
    let res = authorize(&server, &b, &good_auth_url(&server, &id, &challenge, &[])).await;
    let page = login_page(&server, &b, &location(&res)).await;
    assert_eq!(html_lang(&page), "ja");
    assert!(page.contains("<h1>サインイン</h1>") && page.contains("ユーザー名"), "{page}");
    // An app that asks for English wins over the browser.
    let res = authorize(&server, &b, &good_auth_url(&server, &id, &challenge, &[("ui_locales", "en-US")])).await;
    let page = login_page(&server, &b, &location(&res)).await;
    assert_eq!(html_lang(&page), "en");
    // Error pages before any sign-in exists follow the browser too.
    let (status, page) = get(&b, &good_auth_url(&server, "no-such-app", &challenge, &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(html_lang(&page), "ja");
    let mut tour = Tour::default();
    tour.visit("unknown application (Accept-Language: ja)", &page);
    let (_, page) = get(&b, &server.url("/login?request=gone")).await;
    tour.visit("expired sign-in (Accept-Language: ja)", &page);
    tour.check();
    server.stop().await;
}

/// The switch on the page (`lang` and `return_to` of the form every page has).
async fn switch(server: &TestServer, b: &reqwest::Client, page: &str, lang: &str) -> reqwest::Response {
    let form = [("lang", lang.to_string()), ("return_to", unescape(&field(page, "return_to")))];
    b.post(server.url("/lang")).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn the_language_switch_sets_a_cookie_and_the_next_page_is_in_the_chosen_language() {
    let server = TestServer::spawn();
    server.add_user("alice");
    let (id, _) = server.add_client("Wiki", &[], false);
    let (_, challenge) = pkce();
    let b = browser();
    let res = authorize(&server, &b, &good_auth_url(&server, &id, &challenge, &[])).await;
    let login = location(&res);
    let page = login_page(&server, &b, &login).await;
    assert!(page.contains(r#"id="lang-ja""#), "every page has the switch: {page}");
    let res = switch(&server, &b, &page, "ja").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), login, "back to the same sign-in page");
    let cookie = res.headers().get(SET_COOKIE).unwrap().to_str().unwrap().to_string();
    assert!(cookie.starts_with("lk_lang=ja;") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let page = login_page(&server, &b, &login).await;
    assert_eq!(html_lang(&page), "ja");
    assert!(page.contains("<h1>サインイン</h1>"), "{page}");
    // After a POST (a failed password) the switch returns to the sign-in, not to the form's URL.
    let again = submit_login(&server, &b, &page, "alice", "wrong").await.text().await.unwrap();
    assert_eq!(unescape(&field(&again, "return_to")), login);
    let res = switch(&server, &b, &again, "en").await;
    assert_eq!(location(&res), login);
    let page = login_page(&server, &b, &login).await;
    assert!(page.contains("<h1>Sign in</h1>"), "{page}");
    // A choice on a sign-in whose app asked for Japanese wins over the app's wish.
    let res = authorize(&server, &b, &good_auth_url(&server, &id, &challenge, &[("ui_locales", "ja")])).await;
    let login = location(&res);
    let page = login_page(&server, &b, &login).await;
    assert_eq!(html_lang(&page), "ja");
    switch(&server, &b, &page, "en").await;
    let page = login_page(&server, &b, &login).await;
    assert_eq!(html_lang(&page), "en");
    // Only a path on this server is returned to.
    let res = b.post(server.url("/lang")).form(&[("lang", "ja"), ("return_to", "//evil.example/x")]).send().await.unwrap();
    assert_eq!(location(&res), "/");
    let res = b.post(server.url("/lang")).form(&[("lang", "xx"), ("return_to", "/")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // The form has no CSRF token: another site's form, as the browser says, changes nothing.
    let same_site = b.post(server.url("/lang")).header("origin", server.url("").trim_end_matches('/')).header("sec-fetch-site", "same-origin");
    assert_eq!(same_site.form(&[("lang", "ja"), ("return_to", "/")]).send().await.unwrap().status(), StatusCode::SEE_OTHER);
    for (name, value) in [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site"), ("origin", "null")] {
        let res = b.post(server.url("/lang")).header(name, value).form(&[("lang", "en"), ("return_to", "/")]).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{name}: {value}");
        assert!(res.headers().get(SET_COOKIE).is_none());
    }
    server.stop().await;
}

#[tokio::test]
async fn a_signed_in_persons_choice_is_saved_and_followed_in_another_browser() {
    let server = TestServer::spawn();
    server.add_user("alice");
    let (id, _) = server.add_client("Wiki", &[], false);
    let (_, challenge) = pkce();
    let first = browser();
    sign_in(&server, &first, &good_auth_url(&server, &id, &challenge, &[]), "alice").await;
    let (_, home) = get(&first, &server.url("/")).await;
    switch(&server, &first, &home, "ja").await;
    // Another browser, English by default, signs in: from then on the account's choice holds.
    let second = browser();
    sign_in(&server, &second, &good_auth_url(&server, &id, &challenge, &[]), "alice").await;
    let res = second.get(server.url("/")).send().await.unwrap();
    let kept = res.headers().get_all(SET_COOKIE).iter().any(|c| c.to_str().unwrap().starts_with("lk_lang=ja"));
    assert!(kept, "the saved choice is kept in this browser");
    let page = res.text().await.unwrap();
    assert_eq!(html_lang(&page), "ja");
    server.stop().await;
}

fn sql(server: &TestServer, statement: &str, param: &str) {
    server.admin().pool.get().unwrap().execute(statement, [param]).unwrap();
}

async fn page_at(server: &TestServer, b: &reqwest::Client, to: &str) -> String {
    let res = b.get(server.url(to)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{to}");
    res.text().await.unwrap()
}

async fn post_page(server: &TestServer, b: &reqwest::Client, path: &str, form: &[(&str, String)]) -> reqwest::Response {
    b.post(server.url(path)).form(form).send().await.unwrap()
}

#[tokio::test]
async fn every_page_of_a_sign_in_after_the_password_is_in_japanese_too() {
    let server = TestServer::spawn();
    let alice = server.add_user("alice");
    sql(&server, "UPDATE users SET mfa_required = 1 WHERE id = ?1", &alice);
    let (app, _) = server.add_client("Wiki", &[], false);
    sql(&server, "UPDATE clients SET third_party = 1 WHERE id = ?1", &app);
    let (_, challenge) = pkce();
    let mut tour = Tour::default();
    let b = japanese_browser();
    let password = |b: &reqwest::Client| {
        let (server, url) = (&server, good_auth_url(&server, &app, &challenge, &[]));
        let b = b.clone();
        async move {
            let res = authorize(server, &b, &url).await;
            let page = login_page(server, &b, &location(&res)).await;
            location(&submit_login(server, &b, &page, "alice", PASSWORD).await)
        }
    };
    // Registration of a second factor, its error, the recovery codes, the consent.
    let to = password(&b).await;
    let setup = page_at(&server, &b, &to).await;
    tour.visit("registration", &setup);
    assert!(setup.contains("認証アプリ"), "{setup}");
    let form = |page: &str, code: &str| vec![("request", field(page, "request")), ("csrf", field(page, "csrf")), ("code", code.to_string())];
    let wrong = post_page(&server, &b, "/mfa/setup", &form(&setup, "999999")).await.text().await.unwrap();
    tour.visit("registration, wrong code", &wrong);
    assert_eq!(element_text(&wrong, "setup-error"), "コードが正しくありません。デバイスの時刻を確認してから、もう一度お試しください。");
    let secret = element_text(&setup, "totp-secret");
    let res = post_page(&server, &b, "/mfa/setup", &form(&setup, &totp_code(&server, &secret))).await;
    let codes = page_at(&server, &b, &location(&res)).await;
    tour.visit("recovery codes", &codes);
    assert!(codes.contains("回復コード") && codes.contains(r#"data-copied="コピーしました""#), "{codes}");
    let res = post_page(&server, &b, "/mfa/recovery", &[("request", field(&codes, "request")), ("csrf", field(&codes, "csrf"))]).await;
    let consent = page_at(&server, &b, &location(&res)).await;
    tour.visit("consent", &consent);
    assert!(consent.contains("メール アドレス") || consent.contains("latchkey アカウントでのサインイン"), "{consent}");
    let decision = [("request", field(&consent, "request")), ("csrf", field(&consent, "csrf")), ("decision", "approve".to_string())];
    assert!(location(&post_page(&server, &b, "/consent", &decision).await).starts_with(REDIRECT));
    // The second factor at the next sign-in, and its error.
    server.advance(30);
    let b = japanese_browser();
    let to = password(&b).await;
    let mfa = page_at(&server, &b, &to).await;
    tour.visit("second factor", &mfa);
    assert!(mfa.contains("<h1>本人確認</h1>") && mfa.contains("data-cancelled=\"要求が取り消されたか"), "{mfa}");
    let form = |code: &str| vec![("request", field(&mfa, "request")), ("csrf", field(&mfa, "csrf")), ("method", "totp".into()), ("code", code.to_string())];
    let wrong = post_page(&server, &b, "/login/mfa", &form("000000")).await.text().await.unwrap();
    tour.visit("second factor, wrong code", &wrong);
    assert_eq!(element_text(&wrong, "mfa-error"), "コードが正しくありません。もう一度お試しください。");
    assert!(location(&post_page(&server, &b, "/login/mfa", &form(&totp_code(&server, &secret))).await).starts_with(REDIRECT));
    // Sign-out, asked and done.
    let signout = page_at(&server, &b, "/logout").await;
    tour.visit("sign out", &signout);
    let res = post_page(&server, &b, "/logout", &[("csrf", field(&signout, "csrf"))]).await;
    let done = match res.status() {
        StatusCode::OK => res.text().await.unwrap(),
        _ => page_at(&server, &b, &location(&res)).await,
    };
    tour.visit("signed out", &done);
    // A forced password change, with its error; a refusal; an expired page.
    let bob = server.add_user("bob");
    sql(&server, "UPDATE users SET must_change_password = 1 WHERE id = ?1", &bob);
    let (plain, _) = server.add_client("Payroll", &[], false);
    sql(&server, "UPDATE clients SET assignment_required = 1 WHERE id = ?1", &plain);
    let b = japanese_browser();
    let res = authorize(&server, &b, &good_auth_url(&server, &app, &challenge, &[])).await;
    let page = login_page(&server, &b, &location(&res)).await;
    let res = submit_login(&server, &b, &page, "bob", PASSWORD).await;
    let change = page_at(&server, &b, &location(&res)).await;
    tour.visit("forced password change", &change);
    assert!(change.contains("<h1>パスワードの変更</h1>"), "{change}");
    let mut form = vec![("request", field(&change, "request")), ("csrf", field(&change, "csrf"))];
    form.extend([("new_password", "a brand new passphrase".to_string()), ("confirm_password", "another one entirely".to_string())]);
    let wrong = post_page(&server, &b, "/password/change", &form).await.text().await.unwrap();
    tour.visit("password change, mismatch", &wrong);
    assert_eq!(element_text(&wrong, "password-error"), "2 つの新しいパスワードが一致しません。");
    let b = japanese_browser();
    let res = authorize(&server, &b, &good_auth_url(&server, &plain, &challenge, &[])).await;
    let page = login_page(&server, &b, &location(&res)).await;
    let mut res = submit_login(&server, &b, &page, "alice", PASSWORD).await;
    if res.status() == StatusCode::SEE_OTHER {
        let mfa = page_at(&server, &b, &location(&res)).await;
        server.advance(30);
        let form = [("request", field(&mfa, "request")), ("csrf", field(&mfa, "csrf")), ("method", "totp".into()), ("code", totp_code(&server, &secret))];
        res = post_page(&server, &b, "/login/mfa", &form).await;
    }
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let blocked = res.text().await.unwrap();
    tour.visit("not assigned", &blocked);
    assert!(blocked.contains("このアプリケーションへのアクセス権がありません") && blocked.contains("相関 ID"), "{blocked}");
    let (_, expired) = get(&b, &server.url("/consent?request=gone")).await;
    tour.visit("expired consent", &expired);
    tour.check();
    server.stop().await;
}

/// Every message in the outbox, oldest first, with its body and the encoded words of its
/// subject decoded.
fn mails(server: &TestServer) -> Vec<String> {
    use base64::Engine;
    let b64 = |s: &str| String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s.replace(['\r', '\n'], "")).unwrap()).unwrap();
    let mut found: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(server.data_dir.join("outbox"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| (e.metadata().unwrap().modified().unwrap(), std::fs::read_to_string(e.path()).unwrap()))
        .collect();
    found.sort_by_key(|(t, _)| *t);
    found
        .into_iter()
        .map(|(_, raw)| {
            let (headers, body) = raw.split_once("\r\n\r\n").unwrap();
            let body = if headers.contains("Content-Transfer-Encoding: base64") { b64(body) } else { body.to_string() };
            let mut subject = String::new();
            for word in headers.split("=?utf-8?b?").skip(1) {
                subject.push_str(&b64(word.split("?=").next().unwrap()));
            }
            format!("{headers}\nSubject (decoded): {subject}\n\n{body}")
        })
        .collect()
}

#[tokio::test]
async fn a_password_reset_and_its_e_mails_are_in_japanese_unless_the_account_chose_english() {
    let server = TestServer::spawn();
    let alice = server.add_user("alice");
    let b = japanese_browser();
    let mut tour = Tour::default();
    let start = page_at(&server, &b, "/reset").await;
    tour.visit("reset start", &start);
    assert!(start.contains("<h1>パスワードのリセット</h1>"), "{start}");
    let empty = post_page(&server, &b, "/reset", &[("csrf", field(&start, "csrf")), ("username", String::new())]).await.text().await.unwrap();
    tour.visit("reset start, no username", &empty);
    assert_eq!(element_text(&empty, "reset-error"), "ユーザー名を入力してください。");
    let res = post_page(&server, &b, "/reset", &[("csrf", field(&start, "csrf")), ("username", "alice".into())]).await;
    let verify = page_at(&server, &b, &location(&res)).await;
    tour.visit("reset verification", &verify);
    let ids = [("id", field(&verify, "id")), ("csrf", field(&verify, "csrf"))];
    let sent = post_page(&server, &b, "/reset/email", &ids).await.text().await.unwrap();
    tour.visit("reset, code sent", &sent);
    assert!(element_text(&sent, "reset-message").starts_with("アカウントにメール アドレスが登録されている場合"), "{sent}");
    let mail = mails(&server).pop().unwrap();
    assert!(mail.contains("Subject (decoded): のパスワード リセット コード") && mail.contains("コード: "), "{mail}");
    let code: String = mail.split("コード: ").nth(1).unwrap().chars().take(6).collect();
    let wrong = post_page(&server, &b, "/reset/email/verify", &[ids[0].clone(), ids[1].clone(), ("code", "000000".into())]).await.text().await.unwrap();
    tour.visit("reset, wrong code", &wrong);
    assert_eq!(element_text(&wrong, "reset-error"), "コードが正しくありません。");
    let res = post_page(&server, &b, "/reset/email/verify", &[ids[0].clone(), ids[1].clone(), ("code", code)]).await;
    let choose = page_at(&server, &b, &location(&res)).await;
    tour.visit("reset, new password", &choose);
    let mut form = vec![("id", field(&choose, "id")), ("csrf", field(&choose, "csrf")), ("new_password", "a long new passphrase".to_string())];
    form.push(("confirm_password", "something else".into()));
    let mismatch = post_page(&server, &b, "/reset/password", &form).await.text().await.unwrap();
    tour.visit("reset, mismatch", &mismatch);
    assert_eq!(element_text(&mismatch, "password-error"), "2 つのパスワードが一致しません。");
    form.pop();
    form.push(("confirm_password", "a long new passphrase".into()));
    let done = post_page(&server, &b, "/reset/password", &form).await.text().await.unwrap();
    tour.visit("reset done", &done);
    assert_eq!(element_text(&done, "reset-done"), "パスワードが変更されました");
    assert!(mails(&server).pop().unwrap().contains("セルフサービス パスワード リセット"));
    tour.check();
    // The account's own choice decides the language of what is sent to it.
    server.admin().pool.get().unwrap().execute("UPDATE users SET locale = 'en' WHERE id = ?1", [&alice]).unwrap();
    server.advance(120);
    let b = japanese_browser();
    let verify = match post_page(&server, &b, "/reset", &[("csrf", field(&page_at(&server, &b, "/reset").await, "csrf")), ("username", "alice".into())]).await {
        res if res.status() == StatusCode::SEE_OTHER => page_at(&server, &b, &location(&res)).await,
        res => panic!("{}", res.text().await.unwrap()),
    };
    post_page(&server, &b, "/reset/email", &[("id", field(&verify, "id")), ("csrf", field(&verify, "csrf"))]).await;
    let mail = mails(&server).pop().unwrap();
    assert!(mail.contains("Subject: Your latchkey password reset code") && mail.contains("Your code: "), "{mail}");
    server.stop().await;
}

#[tokio::test]
async fn my_apps_security_info_and_my_sessions_are_in_japanese() {
    let server = TestServer::spawn();
    server.add_user("alice");
    let (app, _) = server.add_client("Wiki", &[], false);
    sql(&server, "UPDATE clients SET third_party = 1 WHERE id = ?1", &app);
    let (_, challenge) = pkce();
    let b = japanese_browser();
    let mut tour = Tour::default();
    let (_, welcome) = get(&b, &server.url("/")).await;
    tour.visit("welcome", &welcome);
    // Signed in to the app through its consent page, then the person's own pages.
    let res = authorize(&server, &b, &good_auth_url(&server, &app, &challenge, &[])).await;
    let page = login_page(&server, &b, &location(&res)).await;
    let consent = page_at(&server, &b, &location(&submit_login(&server, &b, &page, "alice", PASSWORD).await)).await;
    let decision = [("request", field(&consent, "request")), ("csrf", field(&consent, "csrf")), ("decision", "approve".to_string())];
    post_page(&server, &b, "/consent", &decision).await;
    let home = page_at(&server, &b, "/").await;
    tour.visit("My Apps", &home);
    assert!(home.contains("<h1>マイ アプリ</h1>") && home.contains("パスワードでサインインしました。"), "{home}");
    assert!(home.contains("latchkey アカウントでのサインイン (ユーザー ID)"), "the consent's scopes: {home}");
    let (_, search) = get(&b, &server.url("/?q=nothing")).await;
    tour.visit("My Apps, no match", &search);
    assert!(element_text(&search, "no-apps").contains("に一致するアプリはありません"), "{search}");
    let (status, missing) = get(&b, &server.url("/apps/no-such-app/launch")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    tour.visit("not one of your apps", &missing);
    let security = page_at(&server, &b, "/security").await;
    tour.visit("Security info", &security);
    assert!(security.contains("<h1>セキュリティ情報</h1>") && security.contains("未使用の回復コード: 0 個"), "{security}");
    let sessions = page_at(&server, &b, "/sessions").await;
    tour.visit("My sessions", &sessions);
    assert!(sessions.contains("<h1>マイ セッションとサインイン</h1>") && sessions.contains("成功") && sessions.contains("自分ではない"), "{sessions}");
    let res = post_page(&server, &b, "/sessions/no-such-session/end", &[("csrf", field(&sessions, "csrf"))]).await;
    tour.visit("not one of your sessions", &res.text().await.unwrap());
    tour.check();
    server.stop().await;
}

/// The first link to `prefix…` in a table cell of `page` (or anywhere, for a button link).
fn first_link(page: &str, prefix: &str) -> String {
    let at = |marker: &str| page.find(&format!("{marker}{prefix}")).map(|i| i + marker.len());
    let start = at("<td><a href=\"").or_else(|| at("button\" href=\"")).unwrap_or_else(|| panic!("no link to {prefix} in:\n{page}"));
    page[start..start + page[start..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn the_admin_console_is_in_japanese_for_an_administrator_who_chose_it() {
    let server = TestServer::spawn();
    let (b, csrf) = crate::admin::mfa_browser(&server, "root", &[latchkey::store::directory::Role::GlobalAdmin]).await;
    let overview = page_at(&server, &b, "/admin").await;
    assert_eq!(html_lang(&overview), "en");
    switch(&server, &b, &overview, "ja").await;
    let mut tour = Tour::default();
    let form = |pairs: &[(&str, &str)]| -> Vec<(&'static str, String)> {
        let mut f = vec![("csrf", csrf.clone())];
        f.extend(pairs.iter().map(|(k, v)| (Box::leak(k.to_string().into_boxed_str()) as &'static str, v.to_string())));
        f
    };
    for path in [
        "/admin",
        "/admin/apps",
        "/admin/apps/new",
        "/admin/users",
        "/admin/users/new",
        "/admin/groups",
        "/admin/policies",
        "/admin/policies/new",
        "/admin/policies/new?template=all-mfa",
        "/admin/locations",
        "/admin/signins",
        "/admin/audit",
        "/admin/keys",
        "/admin/whatif",
    ] {
        tour.visit(path, &page_at(&server, &b, path).await);
    }
    let overview = page_at(&server, &b, "/admin").await;
    assert!(overview.contains("<h1>管理コンソール</h1>") && overview.contains("条件付きアクセス") && overview.contains("サインイン ログ"), "{overview}");
    // A form with mistakes, a registered app with its secret, its page, a group, a user, a sign-in.
    let invalid = post_page(&server, &b, "/admin/apps/new", &form(&[("name", ""), ("app_type", "web")])).await.text().await.unwrap();
    tour.visit("app form with errors", &invalid);
    assert!(invalid.contains("以下のマークされたフィールドを修正してください。"), "{invalid}");
    let uris = "http://localhost:9/cb";
    let res = post_page(
        &server,
        &b,
        "/admin/apps/new",
        &form(&[("name", "Wiki"), ("app_type", "web"), ("redirect_uris", uris), ("grant_authorization_code", "on"), ("id_token_alg", "RS256")]),
    )
    .await;
    let secret = res.text().await.unwrap();
    tour.visit("app secret", &secret);
    assert!(secret.contains("Wiki を登録しました"), "{secret}");
    let app = page_at(&server, &b, &first_link(&secret, "/admin/apps/")).await;
    tour.visit_named("app", &app);
    assert!(app.contains("リダイレクト URI") && app.contains("クライアント シークレット"), "{app}");
    post_page(&server, &b, "/admin/groups", &form(&[("name", "Sales")])).await;
    let groups = page_at(&server, &b, "/admin/groups").await;
    tour.visit_named("group", &page_at(&server, &b, &first_link(&groups, "/admin/groups/")).await);
    let users = page_at(&server, &b, "/admin/users").await;
    let user = page_at(&server, &b, &first_link(&users, "/admin/users/")).await;
    tour.visit_named("user", &user);
    assert!(user.contains("ユーザー リスク:") && user.contains("サインイン方法"), "{user}");
    let signins = page_at(&server, &b, "/admin/signins").await;
    tour.visit("sign-in", &page_at(&server, &b, &first_link(&signins, "/admin/signins/")).await);
    let (_, policies) = get(&b, &server.url("/admin/policies")).await;
    assert!(policies.contains("セキュリティの既定値群:") || policies.contains("ポリシー"), "{policies}");
    // Refusals are in Japanese too.
    let (status, missing) = get(&b, &server.url("/admin/apps/no-such-app")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    tour.visit("no such application", &missing);
    tour.check();
    server.stop().await;
}
