//! A group's members and an app's assignments are lists like the others: 10,000 of them page,
//! search and sort through the real server, with a visible total.

use crate::admin::{get, mfa_browser, post};
use crate::common::*;
use crate::console_apps::between;
use latchkey::store::directory::Role;

/// 10,000 users, `user00000`…`user09999`, all in group `g-big` and all assigned to `app`, plus
/// one group assigned too; in one transaction, as generated data.
fn generate(server: &TestServer, app: &str) {
    let admin = server.admin();
    let mut conn = admin.pool.get().unwrap();
    let tx = conn.transaction().unwrap();
    latchkey::store::directory::create_group(&tx, "g-big", "Everyone", None, 1).unwrap();
    latchkey::store::directory::create_group(&tx, "g-small", "Zeta team", None, 1).unwrap();
    latchkey::store::directory::assign(&tx, app, "group", "g-small").unwrap();
    for i in 0..10_000 {
        let name = format!("user{i:05}");
        let email = format!("{name}@example.com");
        let new = latchkey::store::users::NewUser {
            username: &name,
            email: Some(&email),
            name: Some("Generated"),
            password_hash: "x",
            is_admin: false,
            must_change_password: false,
        };
        let id = latchkey::store::users::insert(&tx, &new, 1).unwrap().id;
        latchkey::store::directory::add_member(&tx, "g-big", &id).unwrap();
        latchkey::store::directory::assign(&tx, app, "user", &id).unwrap();
    }
    tx.commit().unwrap();
}

#[tokio::test]
async fn a_group_of_ten_thousand_members_pages_searches_and_sorts_with_a_visible_total() {
    let server = TestServer::spawn();
    let (app, _) = server.add_client("Payroll", &["authorization_code"], false);
    generate(&server, &app);
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;

    let (_, first) = get(&b, &server, "/admin/groups/g-big").await;
    assert!(first.contains("(10000)") || first.contains("(10,000)"), "the heading counts every member");
    assert_eq!(element_text(&first, "list-total"), "Showing 1–50 of 10,000");
    assert_eq!(first.matches("class=\"member-row\"").count(), 50);
    assert!(first.contains(">user00049</a>") && !first.contains(">user00050</a>"));
    let next = unescape(&element_attr(&first, "page-next", "href"));
    assert_eq!(next, "/admin/groups/g-big?page=2");
    let (_, second) = get(&b, &server, &next).await;
    assert_eq!(element_text(&second, "list-total"), "Showing 51–100 of 10,000");
    assert!(second.contains(">user00050</a>") && !second.contains(">user00049</a>"));
    assert!(unescape(&element_attr(&first, "page-last", "href")).ends_with("page=200"));

    // Search (by username or e-mail) and sort stay in the URL across pages.
    let (_, found) = get(&b, &server, "/admin/groups/g-big?q=user0999&sort=username&dir=desc").await;
    assert_eq!(element_text(&found, "list-total"), "Showing 1–10 of 10");
    assert!(between(&found, "<tbody>", "</tr>").contains(">user09999</a>"));
    let (_, by_mail) = get(&b, &server, "/admin/groups/g-big?q=user04321%40example").await;
    assert_eq!(element_text(&by_mail, "list-total"), "Showing 1–1 of 1");
    let (_, none) = get(&b, &server, "/admin/groups/g-big?q=nobody").await;
    assert_eq!(element_text(&none, "list-total"), "Nothing matches.");
    let (_, past) = get(&b, &server, "/admin/groups/g-big?page=999999&sort=password_hash").await;
    assert_eq!(element_text(&past, "list-total"), "Showing 9,951–10,000 of 10,000", "a page past the end shows the last");

    // Removing a member returns to the page it was on.
    let (_, third) = get(&b, &server, "/admin/groups/g-big?page=3").await;
    let user = third.split("name=\"user_id\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let res = post(&b, &server, "/admin/groups/g-big/members/remove", &[("csrf", &csrf), ("user_id", &user), ("back", "/admin/groups/g-big?page=3")]).await;
    assert_eq!(location(&res), "/admin/groups/g-big?page=3");
    let (_, after) = get(&b, &server, "/admin/groups/g-big?page=3").await;
    assert_eq!(element_text(&after, "list-total"), "Showing 101–150 of 9,999");
    // … and nowhere else.
    let res = post(&b, &server, "/admin/groups/g-big/members/remove", &[("csrf", &csrf), ("user_id", "x"), ("back", "https://evil.example/")]).await;
    assert_eq!(location(&res), "/admin/groups/g-big");
    let res = post(&b, &server, "/admin/groups/g-big/members/remove", &[("csrf", &csrf), ("user_id", "x"), ("back", "/admin/groups/g-big.evil")]).await;
    assert_eq!(location(&res), "/admin/groups/g-big");
    server.stop().await;
}

#[tokio::test]
async fn an_apps_ten_thousand_assignments_page_search_filter_by_kind_and_sort() {
    let server = TestServer::spawn();
    let (app, _) = server.add_client("Payroll", &["authorization_code"], false);
    generate(&server, &app);
    let (b, _) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let section = format!("/admin/apps/{app}/assignments");

    let (_, first) = get(&b, &server, &section).await;
    assert_eq!(element_text(&first, "list-total"), "Showing 1–50 of 10,001");
    assert_eq!(first.matches("class=\"assigned-row\"").count(), 50);
    assert!(first.contains("<td>user00049</td>") && !first.contains("<td>user00050</td>"), "by name");
    let next = unescape(&element_attr(&first, "page-next", "href"));
    assert_eq!(next, format!("{section}?page=2"));
    let (_, second) = get(&b, &server, &next).await;
    assert_eq!(element_text(&second, "list-total"), "Showing 51–100 of 10,001");
    let (_, last) = get(&b, &server, &unescape(&element_attr(&first, "page-last", "href"))).await;
    assert!(last.contains("<td>Zeta team</td>"), "the group sorts last by name");

    // Filtered by kind and searched; the filters stay in the pager's links.
    let (_, groups) = get(&b, &server, &format!("{section}?kind=group")).await;
    assert_eq!(element_text(&groups, "list-total"), "Showing 1–1 of 1");
    assert!(groups.contains("<td>Zeta team</td>"));
    let (_, users) = get(&b, &server, &format!("{section}?kind=user&q=user09")).await;
    assert_eq!(element_text(&users, "list-total"), "Showing 1–50 of 1,000");
    let next = unescape(&element_attr(&users, "page-next", "href"));
    assert_eq!(next, format!("{section}?q=user09&kind=user&page=2"));
    // Sorted by kind, groups first.
    let (_, by_kind) = get(&b, &server, &format!("{section}?sort=kind&dir=asc")).await;
    assert!(between(&by_kind, "<tbody>", "</tr>").contains("Zeta team"), "group before user");
    let (_, nothing) = get(&b, &server, &format!("{section}?q=%25")).await;
    assert_eq!(element_text(&nothing, "list-total"), "Nothing matches.", "a % is searched for literally");
    server.stop().await;
}
