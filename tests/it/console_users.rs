//! The console's users and groups: invitations by e-mail, deleting with a confirmation page,
//! a password set by an admin, bulk actions, the CSV import, and lists of 10,000 users.

use crate::admin::{get, mfa_browser, post};
use crate::common::*;
use crate::console_apps::between;
use latchkey::store::directory::Role;
use reqwest::StatusCode;

fn user_id(server: &TestServer, username: &str) -> Option<String> {
    latchkey::store::users::by_username(&server.admin().pool.get().unwrap(), username).unwrap().map(|u| u.id)
}

fn user_count(server: &TestServer) -> i64 {
    latchkey::store::users::count(&server.admin().pool.get().unwrap()).unwrap()
}

#[tokio::test]
async fn an_invitation_has_no_password_field_and_is_e_mailed_with_a_link_shown_once() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let (status, form) = get(&b, &server, "/admin/users/new?mode=invite").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!form.contains("type=\"password\"") && !form.contains("name=\"password\""), "{form}");
    let (_, with_password) = get(&b, &server, "/admin/users/new?mode=password").await;
    assert!(with_password.contains("name=\"password\" type=\"password\""), "the other mode has it");
    // No address: nothing to send it to.
    let res = post(&b, &server, "/admin/users/new", &[("csrf", &csrf), ("username", "newbie"), ("invite", "on")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(element_text(&res.text().await.unwrap(), "email-error").contains("enter the person's e-mail address"));
    assert!(user_id(&server, "newbie").is_none());

    let res = post(&b, &server, "/admin/users/new", &[("csrf", &csrf), ("username", "newbie"), ("email", "newbie@example.com"), ("invite", "on")]).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let page = res.text().await.unwrap();
    let link = element_text(&page, "invite-link");
    assert!(element_text(&page, "invite-mailed").contains("newbie@example.com"));
    let mail = outbox_message(&server, "newbie@example.com");
    assert!(mail.contains("To: newbie@example.com") && mail.contains("Subject: You are invited to latchkey"), "{mail}");
    let token = link.rsplit('/').next().unwrap();
    assert!(mail.replace("=\r\n", "").replace("=3D", "=").contains(token), "the mail carries the link: {mail}");
    // The user's page never shows the link again.
    let id = user_id(&server, "newbie").unwrap();
    let (_, user_page) = get(&b, &server, &format!("/admin/users/{id}")).await;
    assert!(!user_page.contains(token));
    // The link works: the person chooses a password and signs in with it.
    let (status, invite) = get(&browser(), &server, &format!("/invite/{token}")).await;
    assert_eq!(status, StatusCode::OK, "{invite}");
    let audit = latchkey::store::directory::audit_log(&server.admin().pool.get().unwrap(), 20).unwrap();
    assert!(audit.iter().any(|a| a.action == "user_invited" && a.after.as_deref().is_some_and(|s| s.contains("newbie@example.com"))));
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_user_names_what_goes_then_removes_it_and_their_tokens() {
    let f = Fixture::new().await;
    let server = &f.server;
    let t = f.tokens().await;
    let (b, csrf) = mfa_browser(server, "root", &[Role::GlobalAdmin]).await;
    let alice = user_id(server, "alice").unwrap();
    let group = location(&post(&b, server, "/admin/groups", &[("csrf", &csrf), ("name", "Finance")]).await);
    post(&b, server, &format!("{group}/members"), &[("csrf", &csrf), ("username", "alice")]).await;
    post(&b, server, &format!("/admin/apps/{}/assignments", f.client_id), &[("csrf", &csrf), ("kind", "user"), ("name", "alice")]).await;
    let policy = put_template(server, "all-mfa", latchkey::policy::model::State::ReportOnly, |p| {
        p.include_users.all = false;
        p.include_users.users = vec![alice.clone()];
    });

    let (status, confirm) = get(&b, server, &format!("/admin/users/{alice}/delete")).await;
    assert_eq!(status, StatusCode::OK);
    let removed = between(&confirm, "id=\"removed\"", "</ul>");
    for expected in [
        "alice",
        "1 active sessions",
        "held by 1 applications: App",
        "1 group memberships: Finance",
        "1 direct application assignments: App",
        "1 conditional-access policies",
    ] {
        assert!(removed.contains(expected), "{expected:?} in {removed}");
    }
    assert!(user_id(server, "alice").is_some(), "the confirmation page deletes nothing");
    // Without the confirmation's field, back to it.
    let res = post(&b, server, &format!("/admin/users/{alice}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(location(&res), format!("/admin/users/{alice}/delete"));
    assert!(user_id(server, "alice").is_some());

    let res = post(&b, server, &format!("/admin/users/{alice}/delete"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(location(&res), "/admin/users");
    assert!(user_id(server, "alice").is_none());
    let (status, body) = refresh(server, f.client(), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let res = rp_http().get(server.url("/userinfo")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let conn = server.admin().pool.get().unwrap();
    let p = latchkey::store::policies::by_id(&conn, &policy.id).unwrap().unwrap();
    assert!(p.include_users.users.is_empty(), "no policy names a deleted user");
    assert!(latchkey::store::directory::assignments(&conn, &f.client_id).unwrap().is_empty());
    let audit = latchkey::store::directory::audit_log(&conn, 20).unwrap();
    let deleted = audit.iter().find(|a| a.action == "user_deleted").expect("audited");
    assert!(deleted.before.as_deref().unwrap().contains("Finance") && deleted.after.is_none());
    // An admin cannot delete themselves.
    let root = user_id(server, "root").unwrap();
    let res = post(&b, server, &format!("/admin/users/{root}/delete"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(user_id(server, "root").is_some());
    f.server.stop().await;
}

#[tokio::test]
async fn a_password_set_by_an_admin_ends_the_users_sessions_and_refresh_tokens() {
    let f = Fixture::new().await;
    let server = &f.server;
    let t = f.tokens().await;
    let (b, csrf) = mfa_browser(server, "root", &[Role::GlobalAdmin]).await;
    let alice = user_id(server, "alice").unwrap();
    let path = format!("/admin/users/{alice}/password");
    // A weak one and a mismatch are both refused, next to their fields, changing nothing.
    let res = post(&b, server, &path, &[("csrf", &csrf), ("new_password", "password"), ("confirm_password", "password")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("id=\"new_password-error\""));
    let res = post(&b, server, &path, &[("csrf", &csrf), ("new_password", "a brand new secret"), ("confirm_password", "a different one")]).await;
    assert!(element_text(&res.text().await.unwrap(), "confirm_password-error").contains("do not match"));
    let (status, body) = refresh(server, f.client(), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "nothing changed yet");
    let t = body;

    let res = post(&b, server, &path, &[("csrf", &csrf), ("new_password", "a brand new secret"), ("confirm_password", "a brand new secret")]).await;
    assert_eq!(location(&res), format!("/admin/users/{alice}"));
    let (status, body) = refresh(server, f.client(), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    // Her browser's SSO session ended: the app's next sign-in asks for a password again.
    let (_, challenge) = pkce();
    let res = authorize(server, &f.browser, &good_auth_url(server, &f.client_id, &challenge, &[])).await;
    assert!(location(&res).starts_with("/login"), "{}", location(&res));
    let page = login_page(server, &f.browser, &location(&res)).await;
    let old = submit_login(server, &f.browser, &page, "alice", PASSWORD).await.text().await.unwrap();
    assert!(old.contains("Wrong username or password."));
    let user = latchkey::store::users::by_id(&server.admin().pool.get().unwrap(), &alice).unwrap().unwrap();
    assert!(!user.must_change_password, "not ticked");
    let audit = latchkey::store::directory::audit_log(&server.admin().pool.get().unwrap(), 20).unwrap();
    let set = audit.iter().find(|a| a.action == "user_password_set").expect("audited");
    assert!(!set.after.as_deref().unwrap().contains("brand new"), "never the password");
    // Ending sessions on its own works the same way.
    let t = {
        let b2 = browser();
        let (code, verifier) = {
            let (verifier, challenge) = pkce();
            let res = authorize(server, &b2, &good_auth_url(server, &f.client_id, &challenge, &[])).await;
            let page = login_page(server, &b2, &location(&res)).await;
            let back = location(&submit_login(server, &b2, &page, "alice", "a brand new secret").await);
            (query_param(&back, "code").unwrap(), verifier)
        };
        redeem(server, f.client(), &code, &verifier).await.1
    };
    let res = post(&b, server, &format!("/admin/users/{alice}/revoke-sessions"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, _) = refresh(server, f.client(), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    f.server.stop().await;
}

#[tokio::test]
async fn the_new_user_form_reports_every_bad_field_at_once_and_keeps_what_was_typed() {
    let server = TestServer::spawn();
    server.add_user("taken");
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let before = user_count(&server);
    let form = [("csrf", csrf.as_str()), ("username", "taken"), ("name", "Ms Typed"), ("email", "not an address"), ("password", "short")];
    let res = post(&b, &server, "/admin/users/new", &form).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    let summary = between(&page, "id=\"form-errors\"", "</div>");
    for field in ["username", "email", "password"] {
        assert!(summary.contains(&format!("href=\"#{field}\"")), "{field}: {summary}");
        assert_eq!(element_attr(&page, field, "aria-invalid"), "true");
        assert_eq!(element_attr(&page, field, "aria-describedby"), format!("{field}-error"));
    }
    assert!(element_text(&page, "username-error").contains("already exists"));
    assert!(page.contains("value=\"Ms Typed\"") && page.contains("value=\"not an address\""), "typed input kept");
    assert!(!page.contains("value=\"short\""), "never a password");
    assert_eq!(user_count(&server), before);
    server.stop().await;
}

#[tokio::test]
async fn bulk_actions_disable_ticked_users_and_add_them_to_a_group() {
    let server = TestServer::spawn();
    let (ann, ben, cat) = (server.add_user("ann"), server.add_user("ben"), server.add_user("cat"));
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let group = location(&post(&b, &server, "/admin/groups", &[("csrf", &csrf), ("name", "Sales")]).await);
    let group_id = group.rsplit('/').next().unwrap().to_string();
    let (_, list) = get(&b, &server, "/admin/users").await;
    assert!(list.contains(&format!("name=\"user_{ann}\"")), "a checkbox per user");
    let form = |action: &str, ids: &[&String]| {
        let mut f = vec![("csrf".to_string(), csrf.clone()), ("action".to_string(), action.to_string()), ("group".to_string(), group_id.clone())];
        f.extend(ids.iter().map(|id| (format!("user_{id}"), "on".to_string())));
        f
    };
    let res = b.post(server.url("/admin/users/bulk")).form(&form("add_to_group", &[&ann, &ben])).send().await.unwrap();
    assert_eq!(location(&res), "/admin/users?done=2");
    let members: Vec<String> =
        latchkey::store::directory::members(&server.admin().pool.get().unwrap(), &group_id).unwrap().into_iter().map(|m| m.username).collect();
    assert_eq!(members, ["ann", "ben"]);
    let res = b.post(server.url("/admin/users/bulk")).form(&form("disable", &[&ben, &cat])).send().await.unwrap();
    assert_eq!(location(&res), "/admin/users?done=2");
    let conn = server.admin().pool.get().unwrap();
    let disabled = |id: &str| latchkey::store::users::by_id(&conn, id).unwrap().unwrap().disabled;
    assert_eq!((disabled(&ann), disabled(&ben), disabled(&cat)), (false, true, true));
    // Nothing ticked, an unknown id, or oneself: refused, nothing done.
    let root = user_id(&server, "root").unwrap();
    for (ids, message) in [(vec![], "Tick at least one user."), (vec![&root], "You cannot disable your own account.")] {
        let res = b.post(server.url("/admin/users/bulk")).form(&form("disable", &ids)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.text().await.unwrap().contains(message));
    }
    let mut f = form("disable", &[&ann]);
    f.push(("user_nobody".into(), "on".into()));
    let res = b.post(server.url("/admin/users/bulk")).form(&f).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("There is no user with id &#34;nobody&#34;."));
    assert!(!disabled(&ann), "all or nothing");
    server.stop().await;
}

#[tokio::test]
async fn a_csv_import_is_checked_in_a_dry_run_then_written_all_or_nothing() {
    let server = TestServer::spawn();
    server.add_user("existing");
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    post(&b, &server, "/admin/groups", &[("csrf", &csrf), ("name", "Sales")]).await;
    post(&b, &server, "/admin/groups", &[("csrf", &csrf), ("name", "Support")]).await;
    let before = user_count(&server);
    let good = "username,email,name,groups\r\nnew.one,one@example.com,\"One, New\",Sales;Support\r\nexisting,,,Sales\r\nnew.two,two@example.com,Two,\r\n";
    let import = |csv: &str, confirm: bool| {
        let mut form = vec![("csrf".to_string(), csrf.clone()), ("csv".to_string(), csv.to_string())];
        if confirm {
            form.push(("confirm".into(), "yes".into()));
        }
        b.post(server.url("/admin/users/import")).form(&form).send()
    };
    // The dry run shows what would happen and writes nothing.
    let res = import(good, false).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(element_text(&page, "import-preview-ok").contains("2 new users and 3 group memberships"), "{page}");
    assert!(between(&page, "id=\"line-3\"", "</tr>").contains("Exists"));
    assert!(page.contains("id=\"confirm-import\""));
    assert_eq!(user_count(&server), before, "a dry run changes nothing");

    // One bad row: every problem reported by its line, and a confirmed import writes nothing.
    let bad = format!("{good}new.three,three@example.com,Three,Nope\n=cmd|' /C calc'!A0,x@example.com,,\nnew.one,dup@example.com,,\n");
    for confirm in [false, true] {
        let res = import(&bad, confirm).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = res.text().await.unwrap();
        let problems = between(&page, "id=\"import-problems\"", "</ul>");
        assert!(problems.contains("Line 5: No group named &#34;Nope&#34;."), "{problems}");
        assert!(problems.contains("Line 6: The username cell starts with a character spreadsheets run as a formula"), "{problems}");
        assert!(problems.contains("Line 7: &#34;new.one&#34; is already on an earlier line."), "{problems}");
        assert!(!page.contains("id=\"confirm-import\""));
        assert_eq!(user_count(&server), before, "all or nothing");
    }

    // The checked file, confirmed: users, memberships and invitations, in one go.
    let res = import(good, true).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(element_text(&res.text().await.unwrap(), "import-done").contains("2 new users invited by e-mail, 3 group memberships"));
    assert_eq!(user_count(&server), before + 2);
    let conn = server.admin().pool.get().unwrap();
    let one = latchkey::store::users::by_username(&conn, "new.one").unwrap().unwrap();
    assert_eq!(one.name.as_deref(), Some("One, New"));
    assert_eq!(latchkey::store::directory::group_names_of(&conn, &one.id).unwrap(), ["Sales", "Support"]);
    let existing = user_id(&server, "existing").unwrap();
    assert_eq!(latchkey::store::directory::group_names_of(&conn, &existing).unwrap(), ["Sales"]);
    assert!(outbox_message(&server, "two@example.com").contains("/invite/"));
    server.stop().await;
}

#[tokio::test]
async fn a_hostile_csv_is_refused_whole_huge_long_or_not_utf8() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let before = user_count(&server);
    let check = |csv: String| {
        let form = vec![("csrf".to_string(), csrf.clone()), ("csv".to_string(), csv), ("confirm".to_string(), "yes".to_string())];
        b.post(server.url("/admin/users/import")).form(&form).send()
    };
    // Many rows (a million would not even fit the request): refused before any is looked at.
    let many = format!("username,email\n{}", (0..3000).map(|i| format!("u{i},u{i}@example.com\n")).collect::<String>());
    let page = check(many).await.unwrap().text().await.unwrap();
    assert!(page.contains("The file has more than 2000 rows: split it."), "{page}");
    // A body past the limit never reaches the handler.
    let huge = format!("username,email\n{}", "a".repeat(400 * 1024));
    assert_eq!(check(huge).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown columns, an unclosed quote.
    let page = check("username,password\nx,y\n".into()).await.unwrap().text().await.unwrap();
    assert!(page.contains("Line 1: Unknown column &#34;password&#34;"), "{page}");
    let page = check("username,email\n\"x,x@example.com\n".into()).await.unwrap().text().await.unwrap();
    assert!(page.contains("Line 2: A quoted cell is not closed."), "{page}");
    // In Japanese, line and problem are both translated.
    let form = [("csrf", csrf.as_str()), ("csv", "username,email\n\"x,x@example.com\n")];
    let page = b.post(server.url("/admin/users/import")).header("accept-language", "ja").form(&form).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("2 行目: 引用符で囲まれたセルが閉じられていません。"), "{page}");
    // An uploaded file that is not UTF-8 (Latin-1 here).
    let body = [
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"u.csv\"\r\nContent-Type: text/csv\r\n\r\nusername,email\nj\xfcrgen,j@example.com\n".as_slice(),
        b"\r\n--XyZ--\r\n",
    ]
    .concat();
    let res = b
        .post(server.url(&format!("/admin/users/import?csrf={csrf}")))
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("The file is not UTF-8 text."));
    // A UTF-8 upload is checked like pasted text (a dry run).
    let body = [
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"u.csv\"\r\nContent-Type: text/csv\r\n\r\n\xef\xbb\xbfusername,email\nj\xc3\xbcrgen,j@example.com\n".as_slice(),
        b"\r\n--XyZ--\r\n",
    ]
    .concat();
    let res = b
        .post(server.url(&format!("/admin/users/import?csrf={csrf}")))
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .unwrap();
    let page = res.text().await.unwrap();
    assert!(page.contains("<td>jürgen</td>") && page.contains("id=\"confirm-import\""), "{page}");
    assert_eq!(user_count(&server), before, "nothing imported by any of these");
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_group_names_its_members_and_apps_first() {
    let f = Fixture::new().await;
    let server = &f.server;
    let (b, csrf) = mfa_browser(server, "root", &[Role::GlobalAdmin]).await;
    let group = location(&post(&b, server, "/admin/groups", &[("csrf", &csrf), ("name", "Finance")]).await);
    let group_id = group.rsplit('/').next().unwrap().to_string();
    post(&b, server, &format!("{group}/members"), &[("csrf", &csrf), ("username", "alice")]).await;
    post(&b, server, &format!("/admin/apps/{}/assignments", f.client_id), &[("csrf", &csrf), ("kind", "group"), ("name", "Finance")]).await;
    let (_, _, mut policy) = latchkey::policy::templates::all().remove(1);
    policy.id = "finance-mfa".into();
    policy.name = "Finance MFA".into();
    policy.state = latchkey::policy::model::State::ReportOnly;
    policy.exclude_users.groups = vec![group_id.clone()];
    latchkey::store::policies::save(&server.admin().pool.get().unwrap(), &policy, 1).unwrap();
    let (_, confirm) = get(&b, server, &format!("{group}/delete")).await;
    let removed = between(&confirm, "id=\"removed\"", "</ul>");
    assert!(removed.contains("1 memberships: alice") && removed.contains("1 application assignments: App"), "{removed}");
    assert!(removed.contains("Finance MFA"), "{removed}");
    assert!(latchkey::store::directory::group(&server.admin().pool.get().unwrap(), &group_id).unwrap().is_some());
    let res = post(&b, server, &format!("{group}/delete"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(location(&res), "/admin/groups");
    let conn = server.admin().pool.get().unwrap();
    assert!(latchkey::store::directory::group(&conn, &group_id).unwrap().is_none());
    assert!(latchkey::store::directory::assignments(&conn, &f.client_id).unwrap().is_empty());
    assert!(user_id(server, "alice").is_some(), "members stay");
    let policy = latchkey::store::policies::by_id(&conn, "finance-mfa").unwrap().unwrap();
    assert!(policy.exclude_users.groups.is_empty(), "the policy no longer names the group");
    f.server.stop().await;
}

#[tokio::test]
async fn lists_of_ten_thousand_users_page_search_and_sort_with_a_visible_total() {
    let server = TestServer::spawn();
    {
        let admin = server.admin();
        let mut conn = admin.pool.get().unwrap();
        let tx = conn.transaction().unwrap();
        for i in 0..10_000 {
            let name = format!("user{i:05}");
            let new = latchkey::store::users::NewUser {
                username: &name,
                email: None,
                name: Some("Generated"),
                password_hash: "x",
                is_admin: false,
                must_change_password: false,
            };
            latchkey::store::users::insert(&tx, &new, 1).unwrap();
        }
        tx.commit().unwrap();
    }
    let (b, _) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let (_, first) = get(&b, &server, "/admin/users").await;
    assert_eq!(element_text(&first, "list-total"), "Showing 1–50 of 10,001");
    assert_eq!(first.matches("name=\"user_").count(), 50);
    assert!(first.contains(">root</a>") && first.contains(">user00048</a>") && !first.contains(">user00049</a>"));
    let next = unescape(&element_attr(&first, "page-next", "href"));
    let (_, second) = get(&b, &server, &next).await;
    assert_eq!(element_text(&second, "list-total"), "Showing 51–100 of 10,001");
    assert!(second.contains(">user00049</a>") && !second.contains(">user00048</a>"), "{next}");
    // Search and filters stay in the URL, across pages and sorts.
    let (_, found) = get(&b, &server, "/admin/users?q=user0999&sort=username&dir=desc").await;
    assert_eq!(element_text(&found, "list-total"), "Showing 1–10 of 10");
    let first_row = between(&found, "<tbody>", "</tr>");
    assert!(first_row.contains(">user09999</a>"), "{first_row}");
    let (_, disabled) = get(&b, &server, "/admin/users?status=disabled&q=user").await;
    assert!(disabled.contains("Nothing matches."), "{disabled}");
    let last = unescape(&element_attr(&first, "page-last", "href"));
    assert!(last.contains("page=201"), "{last}");
    let (status, _) = get(&b, &server, "/admin/users?page=999999&sort=password_hash").await;
    assert_eq!(status, StatusCode::OK, "an unknown sort and a page past the end are harmless");
    server.stop().await;
}
