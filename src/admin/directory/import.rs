//! Bulk import of users and group memberships from CSV: a dry run first (every row checked and
//! shown with what would happen, nothing written), then the same text confirmed and written in
//! one transaction — all of it or, if any row is wrong, none. New users are invited by e-mail.
//!
//! The file is attacker-shaped input: its size is capped (and the request body by actix), the
//! rows are capped, it must be UTF-8, and cells starting like a spreadsheet formula are refused
//! so nothing imported can later run in someone's spreadsheet.

use super::{Errors, INVITE_SECS, user_snapshot};
use crate::AppState;
use crate::admin::{Admin, Global, Nav};
use crate::auth::users::{self, NewAccount, UserError};
use crate::crypto::{random_token, secret_hash};
use crate::i18n::filters;
use crate::store::db::Connection;
use crate::store::{self, directory as dir};
use crate::web::{PageError, html};
use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use std::collections::{BTreeSet, HashMap};

/// Largest CSV accepted (the request body is capped below that anyway).
pub const MAX_BYTES: usize = 200 * 1024;
/// Most rows one import takes.
pub const MAX_ROWS: usize = 2000;
/// Longest cell.
const MAX_CELL: usize = 320;
const COLUMNS: [&str; 4] = ["username", "email", "name", "groups"];

/// One row of the file, checked.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: usize,
    pub username: String,
    pub email: String,
    pub name: String,
    pub groups: Vec<String>,
    /// The account exists: only its memberships are added.
    pub exists: bool,
    pub errors: Vec<String>,
}

/// The whole file, checked: rows, and errors about the file itself.
#[derive(Debug, Default)]
pub struct Plan {
    pub rows: Vec<Row>,
    /// (the line it is about, if one; the sentence).
    pub file_errors: Vec<Problem>,
}

impl Plan {
    pub fn ok(&self) -> bool {
        self.file_errors.is_empty() && self.rows.iter().all(|r| r.errors.is_empty()) && !self.rows.is_empty()
    }

    pub fn new_users(&self) -> usize {
        self.rows.iter().filter(|r| !r.exists).count()
    }

    pub fn memberships(&self) -> usize {
        self.rows.iter().map(|r| r.groups.len()).sum()
    }

    /// Every problem with its line, if it has one: what the summary at the top lists.
    pub fn problems(&self) -> Vec<Problem> {
        let rows = self.rows.iter().flat_map(|r| r.errors.iter().map(move |e| (Some(r.line), e.clone())));
        self.file_errors.iter().cloned().chain(rows).collect()
    }
}

/// A record: the line it starts on, and its cells.
type Record = (usize, Vec<String>);
/// A problem: the line it is about, if one, and the sentence.
pub type Problem = (Option<usize>, String);

/// RFC 4180 records (quoted fields, doubled quotes, CRLF or LF), each with the line it starts
/// on; blank lines are skipped. Stops after `max` records (the caller refuses the file).
fn records(text: &str, max: usize) -> Result<Vec<Record>, Problem> {
    let mut out = vec![];
    let (mut field, mut record) = (String::new(), Vec::new());
    let (mut line, mut start) = (1, 1);
    let (mut quoted, mut fresh) = (false, true);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if fresh => quoted = true,
            ',' => {
                record.push(std::mem::take(&mut field));
                fresh = true;
                continue;
            }
            '\r' if chars.peek() == Some(&'\n') => continue,
            '\n' => {
                record.push(std::mem::take(&mut field));
                if record.iter().any(|f| !f.is_empty()) {
                    out.push((start, std::mem::take(&mut record)));
                    if out.len() > max {
                        return Ok(out);
                    }
                }
                record.clear();
                line += 1;
                start = line;
                fresh = true;
                continue;
            }
            c => field.push(c),
        }
        fresh = false;
    }
    if quoted {
        return Err((Some(start), "A quoted cell is not closed.".into()));
    }
    record.push(field);
    if record.iter().any(|f| !f.is_empty()) {
        out.push((start, record));
    }
    Ok(out)
}

/// Checks `text` against the directory: nothing is written.
pub fn plan(conn: &Connection, text: &str) -> Result<Plan, store::StoreError> {
    let mut plan = Plan::default();
    if text.len() > MAX_BYTES {
        plan.file_errors.push((None, format!("The file is larger than {} KB.", MAX_BYTES / 1024)));
        return Ok(plan);
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.contains('\u{fffd}') || text.contains('\0') {
        plan.file_errors.push((None, "The file is not UTF-8 text.".into()));
        return Ok(plan);
    }
    let records = match records(text, MAX_ROWS + 1) {
        Ok(r) => r,
        Err(e) => {
            plan.file_errors.push(e);
            return Ok(plan);
        }
    };
    let Some(((_, header), rows)) = records.split_first() else {
        plan.file_errors.push((None, "The file is empty: the first line names the columns (username, email, name, groups).".into()));
        return Ok(plan);
    };
    if rows.len() > MAX_ROWS {
        plan.file_errors.push((None, format!("The file has more than {MAX_ROWS} rows: split it.")));
        return Ok(plan);
    }
    let header: Vec<String> = header.iter().map(|h| h.trim().to_lowercase()).collect();
    for h in &header {
        if !COLUMNS.contains(&h.as_str()) {
            plan.file_errors.push((Some(1), format!("Unknown column {h:?} (the columns are username, email, name, groups).")));
        }
    }
    if !header.iter().any(|h| h == "username") {
        plan.file_errors.push((Some(1), "The username column is missing.".into()));
    }
    if !plan.file_errors.is_empty() {
        return Ok(plan);
    }
    let column = |name: &str| header.iter().position(|h| h == name);
    let mut seen = BTreeSet::new();
    let mut group_ids: HashMap<String, Option<String>> = HashMap::new();
    for (line, cells) in rows {
        let cell = |name: &str| column(name).and_then(|i| cells.get(i)).map(|c| c.trim().to_string()).unwrap_or_default();
        let mut row = Row {
            line: *line,
            username: cell("username"),
            email: cell("email"),
            name: cell("name"),
            groups: cell("groups").split(';').map(str::trim).filter(|g| !g.is_empty()).map(String::from).collect(),
            exists: false,
            errors: vec![],
        };
        if cells.len() > header.len() {
            row.errors.push(format!("{} cells, but the first line names {} columns.", cells.len(), header.len()));
        }
        for (i, c) in cells.iter().enumerate() {
            let c = c.trim();
            let name = header.get(i).map(String::as_str).unwrap_or("?");
            if c.chars().count() > MAX_CELL {
                row.errors.push(format!("The {name} cell is longer than {MAX_CELL} characters."));
            }
            // A spreadsheet would run a cell starting with one of these as a formula (CSV
            // injection); no username, name, address or group name needs to.
            if c.starts_with(['=', '+', '-', '@', '|', '%']) || c.chars().any(|ch| ch.is_control() && ch != '\t') || c.starts_with('\t') {
                row.errors.push(format!("The {name} cell starts with a character spreadsheets run as a formula, or holds control characters."));
            }
        }
        if !row.errors.is_empty() {
            plan.rows.push(row);
            continue;
        }
        if let Err(e) = users::check_username(&row.username) {
            row.errors.push(crate::admin::capitalise(&e.to_string()));
        } else if !seen.insert(row.username.to_lowercase()) {
            row.errors.push(format!("{:?} is already on an earlier line.", row.username));
        } else {
            row.exists = store::users::by_username(conn, &row.username)?.is_some();
        }
        if !row.exists {
            if row.email.is_empty() {
                row.errors.push("A new user needs an e-mail address: the invitation is sent there.".into());
            } else if !users::valid_email(&row.email) {
                row.errors.push(format!("The e-mail address {:?} is not valid.", row.email));
            }
        }
        for g in &row.groups {
            if !group_ids.contains_key(g) {
                let id = dir::group_by_name(conn, g)?.map(|g| g.id);
                group_ids.insert(g.clone(), id);
            }
            if group_ids[g].is_none() {
                row.errors.push(format!("No group named {g:?}."));
            }
        }
        plan.rows.push(row);
    }
    if plan.rows.is_empty() {
        plan.file_errors.push((None, "The file has no rows below the first line.".into()));
    }
    Ok(plan)
}

/// Writes a checked plan in one transaction (the caller has checked `plan.ok()`); returns the
/// new users with their invitation tokens, to e-mail once committed.
fn apply(conn: &mut Connection, plan: &Plan, actor: &str, (password, hash): (&str, &str), now: i64) -> Result<Vec<(String, String, String)>, PageError> {
    let invites = store::transaction(conn, |tx| -> Result<_, PageError> {
        let mut invites = vec![];
        for row in &plan.rows {
            let user = match store::users::by_username(tx, &row.username)? {
                Some(u) => u,
                None => {
                    let account = NewAccount {
                        username: &row.username,
                        password,
                        email: Some(row.email.as_str()),
                        name: Some(row.name.as_str()).filter(|n| !n.is_empty()),
                        is_admin: false,
                        must_change_password: false,
                    };
                    let user = match users::create_hashed(tx, &account, hash, now) {
                        Ok(u) => u,
                        Err(UserError::Store(e)) => return Err(e.into()),
                        // Checked in the plan; a race with another admin rolls everything back.
                        Err(e) => return Err(crate::web::ErrorPage::bad_request("Import refused", format!("Line {}: {e}", row.line)).into()),
                    };
                    let token = random_token();
                    dir::create_invite(tx, &secret_hash(&token), &user.id, now + INVITE_SECS)?;
                    let after = user_snapshot(tx, &user)?;
                    dir::audit_change(tx, actor, "user_imported", Some(&user.username), None, Some(&after), now)?;
                    invites.push((user.id.clone(), row.email.clone(), token));
                    user
                }
            };
            for g in &row.groups {
                let group = dir::group_by_name(tx, g)?
                    .ok_or_else(|| crate::web::ErrorPage::bad_request("Import refused", format!("Line {}: no group named {g:?}.", row.line)))?;
                if dir::add_member(tx, &group.id, &user.id)? {
                    let after = serde_json::json!({ "group": group.name, "user": user.username }).to_string();
                    dir::audit_change(tx, actor, "group_member_added", Some(&format!("{}: {}", group.name, user.username)), None, Some(&after), now)?;
                }
            }
        }
        Ok(invites)
    })?;
    Ok(invites)
}

#[derive(Template)]
#[template(path = "admin/user_import.html")]
struct ImportPage {
    nav: Nav,
    csv: String,
    plan: Option<Plan>,
    errors: Errors,
    /// After a confirmed import: (new users, memberships).
    done: Option<(usize, usize)>,
}

fn page(admin: &Admin<Global>, csv: String, plan: Option<Plan>, done: Option<(usize, usize)>) -> HttpResponse {
    let mut errors = Errors::new();
    if let Some(p) = &plan
        && !p.ok()
    {
        errors.insert("csv", p.problems().into_iter().map(|(_, e)| e).collect::<Vec<_>>().join(" "));
    }
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    html(status, &ImportPage { nav: admin.nav(), csv, plan, errors, done })
}

fn form(admin: Admin<Global>, _req: &HttpRequest, _state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    Ok(page(&admin, "username,email,name,groups\n".into(), None, None))
}

/// POST /admin/users/import: the CSV as text (`csv`) or as an uploaded file (multipart `file`,
/// CSRF in the query). Without `confirm=yes` a dry run; with it, the import.
fn submit(admin: Admin<Global>, _req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    // A lease: the connection goes back to the pool while the hash waits its turn.
    let mut conn = store::Lease::get(&state.pool)?;
    let now = state.clock.now();
    let (text, confirm) = match &admin.upload {
        Some((body, boundary)) => match crate::web::multipart::field(body, boundary, "file") {
            Some(part) => match std::str::from_utf8(part.data) {
                Ok(t) => (t.to_string(), false),
                Err(_) => {
                    let plan = Plan { rows: vec![], file_errors: vec![(None, "The file is not UTF-8 text.".into())] };
                    return Ok(page(&admin, String::new(), Some(plan), None));
                }
            },
            None => (String::new(), false),
        },
        None => (admin.form.get("csv").unwrap_or("").to_string(), admin.form.get("confirm") == Some("yes")),
    };
    let plan = plan(&conn, &text)?;
    if !confirm || !plan.ok() {
        return Ok(page(&admin, text, Some(plan), None));
    }
    // Invited users hold a random password nobody knows until they choose theirs; one hash
    // serves the whole import (argon2 per row would take minutes for a large file).
    let unknown = random_token();
    let hash = crate::auth::login::hash_new(&state, &mut conn, &unknown)?;
    let invites = apply(&mut conn, &plan, &admin.user.id, (&unknown, &hash), now)?;
    for (user_id, email, token) in &invites {
        let Some(user) = store::users::by_id(&conn, user_id)? else { continue };
        let link = format!("{}/invite/{token}", state.config.issuer());
        let lang = crate::i18n::of_user(&conn, user_id);
        let args = [("username", user.username.as_str()), ("issuer", state.config.issuer()), ("link", link.as_str())];
        crate::portal::send_later(&state, email.clone(), lang.text("mail.invite.subject").into(), lang.format("mail.invite.body", &args));
    }
    let done = Some((plan.new_users(), plan.memberships()));
    Ok(page(&admin, String::new(), None, done))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/users/import", web::get().to(crate::admin::page(form))).route("/admin/users/import", web::post().to(crate::admin::page(submit)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_rfc_4180_and_say_where_each_starts() {
        let text = "username,name\r\nalice,\"Smith, Alice\"\n\nbob,\"Say \"\"hi\"\"\nthere\"\ncarol,C\n";
        let r = records(text, 10).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[1], (2, vec!["alice".to_string(), "Smith, Alice".to_string()]));
        assert_eq!(r[2], (4, vec!["bob".to_string(), "Say \"hi\"\nthere".to_string()]));
        assert_eq!(r[3].0, 6);
        assert_eq!(records("a\nb,\"open\n", 10).unwrap_err(), (Some(2), "A quoted cell is not closed.".to_string()));
        assert_eq!(records(&"x\n".repeat(100), 5).unwrap().len(), 6, "stops past the cap");
    }
}
