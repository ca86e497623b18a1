//! The policy and named-location forms with pickers and every error at once, and the lists of
//! apps, policies and named locations (search, sort, pages, filters in the URL).

use crate::admin::{get, mfa_browser, post};
use crate::common::*;
use crate::console_apps::{between, register};
use latchkey::store::directory::Role;
use reqwest::StatusCode;

fn form(csrf: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = [
        ("csrf", csrf),
        ("name", "Finance MFA"),
        ("state", "report_only"),
        ("apps_all", "on"),
        ("grant", "grant"),
        ("operator", "any_of"),
        ("ctl_mfa", "on"),
        ("loc_mode", "any"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        f.retain(|(fk, _)| fk != k);
        if !v.is_empty() {
            f.push((k.to_string(), v.to_string()));
        }
    }
    f
}

#[tokio::test]
async fn the_policy_form_picks_users_and_groups_by_search_and_refuses_unknown_ids() {
    let server = TestServer::spawn();
    let alice = server.add_user("alice");
    let breakglass = server.add_user("breakglass");
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let group = location(&post(&b, &server, "/admin/groups", &[("csrf", &csrf), ("name", "Finance")]).await);
    let group_id = group.rsplit('/').next().unwrap().to_string();
    // Searching keeps everything typed and ticked so far, and saves nothing.
    let user_in = format!("user_in_{alice}");
    let f = form(&csrf, &[(&user_in, "on"), ("q_user_ex", "break"), ("pick", "user_ex"), ("frequency", "4")]);
    let res = b.post(server.url("/admin/policies/new")).form(&f).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(between(&page, "id=\"user_in-picked\"", "</ul>").contains(&format!("name=\"{user_in}\" checked")), "the tick is kept");
    assert!(between(&page, "id=\"user_ex-found\"", "</ul>").contains(&format!("name=\"user_ex_{breakglass}\"")), "the match is offered");
    assert!(page.contains("value=\"Finance MFA\"") && page.contains("value=\"4\""), "typed fields kept");
    assert!(latchkey::store::policies::all(&server.admin().pool.get().unwrap()).unwrap().is_empty(), "a search saves nothing");
    // Unknown ids in any picker are refused by name; nothing is saved.
    let f = form(&csrf, &[(&user_in, "on"), ("user_ex_ghost", "on"), ("group_in_nope", "on"), ("app_in_fake", "on"), ("loc_ex_nowhere", "on")]);
    let res = b.post(server.url("/admin/policies/new")).form(&f).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = unescape(&res.text().await.unwrap());
    for message in [
        "There is no user with id \"ghost\".",
        "There is no group with id \"nope\".",
        "There is no application with id \"fake\".",
        "There is no named location with id \"nowhere\".",
    ] {
        assert!(page.contains(message), "{message}");
    }
    assert!(latchkey::store::policies::all(&server.admin().pool.get().unwrap()).unwrap().is_empty());
    // Known ids are saved as ids, and shown ticked on the policy's page.
    let f = form(&csrf, &[(&user_in, "on"), (&format!("user_ex_{breakglass}"), "on"), (&format!("group_in_{group_id}"), "on")]);
    let res = b.post(server.url("/admin/policies/new")).form(&f).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let p = latchkey::store::policies::all(&server.admin().pool.get().unwrap()).unwrap().remove(0);
    assert_eq!((p.include_users.users, p.exclude_users.users, p.include_users.groups), (vec![alice.clone()], vec![breakglass.clone()], vec![group_id]));
    let (_, page) = get(&b, &server, &location(&res)).await;
    assert!(between(&page, "id=\"user_ex-picked\"", "</ul>").contains("breakglass"));
    server.stop().await;
}

#[tokio::test]
async fn the_policy_form_reports_every_bad_field_at_once() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let f = form(&csrf, &[("name", ""), ("state", "enforce"), ("frequency", "weekly"), ("apps_all", ""), ("user_in_ghost", "on")]);
    let res = b.post(server.url("/admin/policies/new")).form(&f).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    let summary = between(&page, "id=\"form-errors\"", "</div>");
    for field in ["name", "state", "frequency", "user_in"] {
        assert!(summary.contains(&format!("href=\"#{field}\"")), "{field}: {summary}");
        assert!(page.contains(&format!("id=\"{field}\"")), "the summary's link has a target: {field}");
    }
    assert_eq!(element_attr(&page, "frequency", "aria-invalid"), "true");
    assert!(page.contains("value=\"weekly\""), "typed input kept");
    server.stop().await;
}

#[tokio::test]
async fn the_named_location_form_reports_every_bad_field_at_once_and_keeps_input() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let res = post(&b, &server, "/admin/locations", &[("csrf", &csrf), ("name", ""), ("ranges", "10.0.0.0/33"), ("trusted", "on"), ("risk", "extreme")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    let summary = between(&page, "id=\"form-errors\"", "</div>");
    for field in ["name", "ranges", "risk"] {
        assert!(summary.contains(&format!("href=\"#{field}\"")), "{field}: {summary}");
        assert_eq!(element_attr(&page, field, "aria-describedby"), format!("{field}-error"));
    }
    assert!(page.contains(">10.0.0.0/33</textarea>") && page.contains("name=\"trusted\" checked"), "typed input kept");
    assert_eq!(latchkey::store::policies::locations(&server.admin().pool.get().unwrap()).unwrap().len(), 0);
    // A name already taken is the name field's mistake, not a failure, on either engine.
    let office = [("csrf", csrf.as_str()), ("name", "Office"), ("ranges", "10.1.0.0/16"), ("risk", "none")];
    assert!(post(&b, &server, "/admin/locations", &office).await.status().is_redirection());
    let res = post(&b, &server, "/admin/locations", &office).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("already exists"));
    assert_eq!(latchkey::store::policies::locations(&server.admin().pool.get().unwrap()).unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn app_policy_and_location_lists_search_sort_and_page_with_filters_in_the_url() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    {
        let admin = server.admin();
        let conn = admin.pool.get().unwrap();
        for i in 0..60 {
            let l = latchkey::store::policies::NamedLocation {
                id: format!("loc{i:02}"),
                name: format!("Office {i:02}"),
                ranges: vec![format!("10.{i}.0.0/16")],
                trusted: i % 2 == 0,
                risk: latchkey::policy::model::Risk::None,
            };
            latchkey::store::policies::add_location(&conn, &l, 0).unwrap();
        }
        for i in 0..52 {
            latchkey::store::directory::create_group(&conn, &format!("g{i:02}"), &format!("Team {i:02}"), Some("generated"), 0).unwrap();
        }
        for i in 0..55 {
            let (_, _, mut p) = latchkey::policy::templates::all().remove(1);
            p.id = format!("p{i:02}");
            p.name = format!("Policy {i:02}");
            p.state = if i < 5 { latchkey::policy::model::State::Off } else { latchkey::policy::model::State::ReportOnly };
            latchkey::store::policies::save(&conn, &p, i).unwrap();
        }
    }
    for i in 0..3 {
        register(&b, &server, &csrf, &format!("App {i}"), &[]).await;
    }
    let disabled = register(&b, &server, &csrf, "Legacy app", &[]).await.0;
    post(&b, &server, &format!("/admin/apps/{disabled}/enabled"), &[("csrf", &csrf), ("enabled", "0")]).await;

    let (_, locations) = get(&b, &server, "/admin/locations").await;
    assert_eq!(element_text(&locations, "list-total"), "Showing 1–50 of 60");
    let (_, page2) = get(&b, &server, &unescape(&element_attr(&locations, "page-next", "href"))).await;
    assert!(page2.contains("Office 59") && !page2.contains("Office 49<"), "{page2}");
    let (_, found) = get(&b, &server, "/admin/locations?q=10.42.").await;
    assert_eq!(element_text(&found, "list-total"), "Showing 1–1 of 1");
    let (_, desc) = get(&b, &server, "/admin/locations?sort=name&dir=desc").await;
    assert!(between(&desc, "<tbody>", "</tr>").contains("Office 59"));

    let (_, policies) = get(&b, &server, "/admin/policies?state=off").await;
    assert_eq!(element_text(&policies, "list-total"), "Showing 1–5 of 5");
    let (_, policies) = get(&b, &server, "/admin/policies?q=Policy&sort=name&dir=desc").await;
    assert_eq!(element_text(&policies, "list-total"), "Showing 1–50 of 55");
    let next = unescape(&element_attr(&policies, "page-next", "href"));
    assert!(next.contains("q=Policy") && next.contains("dir=desc") && next.contains("page=2"), "{next}");
    let (_, last) = get(&b, &server, &next).await;
    assert!(last.contains(">Policy 00</a>"), "{last}");

    let (_, groups) = get(&b, &server, "/admin/groups?q=team").await;
    assert_eq!(element_text(&groups, "list-total"), "Showing 1–50 of 52");
    let (_, groups) = get(&b, &server, "/admin/groups?q=team&page=2").await;
    assert!(groups.contains(">Team 51</a>") && !groups.contains(">Team 49</a>"), "{groups}");

    let (_, apps) = get(&b, &server, "/admin/apps?status=disabled").await;
    assert_eq!(element_text(&apps, "list-total"), "Showing 1–1 of 1");
    assert!(apps.contains(">Legacy app</a>"));
    let (_, apps) = get(&b, &server, "/admin/apps?q=app+1").await;
    assert_eq!(element_text(&apps, "list-total"), "Showing 1–1 of 1");
    let (_, apps) = get(&b, &server, "/admin/apps?q=%25").await;
    assert_eq!(element_text(&apps, "list-total"), "Nothing matches.", "a wildcard is literal");
    server.stop().await;
}
