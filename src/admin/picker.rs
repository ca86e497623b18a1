//! Pickers: wherever a form takes users, groups, apps or named locations, a list of checkboxes
//! (`{field}_{id}`) with a search field (`q_{field}`). Without JavaScript the search button
//! posts the whole form back, which is shown again with the matches and nothing saved; with
//! JavaScript static/picker.js asks GET /admin/picker/{kind} as one types. Only ids that exist
//! are ever saved: `resolve` says which submitted ids are unknown.

use super::{Admin, Apps};
use crate::AppState;
use crate::store::db::Connection;
use crate::store::{self, directory as dir, directory::Pickable, policies as pol};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// How many matches a picker lists at once.
pub const SHOWN: i64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
    App,
    Location,
}

impl Kind {
    pub fn slug(self) -> &'static str {
        match self {
            Kind::User => "users",
            Kind::Group => "groups",
            Kind::App => "apps",
            Kind::Location => "locations",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Kind::User, Kind::Group, Kind::App, Kind::Location].into_iter().find(|k| k.slug() == s)
    }

    /// The sentence for an id that does not exist (the form is refused with it).
    fn unknown(self, id: &str) -> String {
        match self {
            Kind::User => format!("There is no user with id {id:?}."),
            Kind::Group => format!("There is no group with id {id:?}."),
            Kind::App => format!("There is no application with id {id:?}."),
            Kind::Location => format!("There is no named location with id {id:?}."),
        }
    }
}

/// One picker as a page shows it.
pub struct Picker {
    /// Checkbox names are `{field}_{id}`; the search field is `q_{field}`.
    pub field: String,
    pub kind: Kind,
    /// The message key of its legend.
    pub legend: &'static str,
    pub q: String,
    pub selected: Vec<Pickable>,
    /// Matches of `q` not already selected.
    pub found: Vec<Pickable>,
    /// Matches beyond those listed.
    pub more: i64,
    pub error: Option<String>,
}

/// The ids ticked for `field` among a form's ticked checkbox names.
pub fn ticked<'a>(names: impl IntoIterator<Item = &'a String>, field: &str) -> Vec<String> {
    let prefix = format!("{field}_");
    names.into_iter().filter_map(|k| k.strip_prefix(&prefix)).filter(|id| !id.is_empty()).map(String::from).collect()
}

/// The ticked ids for `field` in a submitted form.
pub fn ticked_in(p: &Params, field: &str) -> Vec<String> {
    let map = p.clone().into_map();
    let names: Vec<String> = map.into_iter().filter(|(_, v)| v == "on").map(|(k, _)| k).collect();
    ticked(&names, field)
}

/// Everything an app or location picker can offer (they are few, so all are listed).
fn everything(conn: &Connection, kind: Kind) -> Result<Vec<Pickable>, store::StoreError> {
    Ok(match kind {
        Kind::App => {
            let built_in =
                crate::gate::BUILT_IN_TARGETS.iter().map(|(id, name)| Pickable { id: id.to_string(), label: name.to_string(), detail: String::new() });
            built_in.chain(store::clients::all(conn)?.into_iter().map(|c| Pickable { id: c.id.clone(), label: c.name, detail: c.id })).collect()
        }
        Kind::Location => pol::locations(conn)?.into_iter().map(|l| Pickable { id: l.id, label: l.name, detail: l.ranges.join(", ") }).collect(),
        Kind::User | Kind::Group => vec![],
    })
}

/// The matches of `q`: at most SHOWN (users and groups), and how many more there are. Users
/// and groups are listed only once something is typed (there may be thousands); apps and
/// locations are few and all listed. Users' e-mail addresses are searched and shown to global
/// administrators only (`global`).
pub fn search(conn: &Connection, kind: Kind, q: &str, global: bool) -> Result<(Vec<Pickable>, i64), store::StoreError> {
    if matches!(kind, Kind::User | Kind::Group) && q.trim().is_empty() {
        return Ok((vec![], 0));
    }
    let (list, total) = match kind {
        Kind::User => dir::pick_users(conn, q, SHOWN, global)?,
        Kind::Group => dir::pick_groups(conn, q, SHOWN)?,
        Kind::App | Kind::Location => {
            let needle = q.trim().to_lowercase();
            let all: Vec<Pickable> =
                everything(conn, kind)?.into_iter().filter(|p| p.label.to_lowercase().contains(&needle) || p.id.to_lowercase() == needle).collect();
            let total = all.len() as i64;
            (all, total)
        }
    };
    let more = total - list.len() as i64;
    Ok((list, more))
}

/// The submitted ids that exist (as pickers show them), and a sentence for each that does not.
pub fn resolve(conn: &Connection, kind: Kind, ids: &[String]) -> Result<(Vec<Pickable>, Vec<String>), store::StoreError> {
    let all = match kind {
        Kind::App | Kind::Location => everything(conn, kind)?,
        Kind::User | Kind::Group => vec![],
    };
    let (mut known, mut unknown) = (vec![], vec![]);
    for id in ids {
        let found = match kind {
            Kind::User => dir::pickable_user(conn, id)?,
            Kind::Group => dir::pickable_group(conn, id)?,
            Kind::App | Kind::Location => all.iter().find(|p| &p.id == id).cloned(),
        };
        match found {
            Some(p) => known.push(p),
            None => unknown.push(kind.unknown(id)),
        }
    }
    known.sort_by_key(|p| p.label.to_lowercase());
    Ok((known, unknown))
}

/// A picker showing `selected` and the matches of the form's search term for it.
pub fn build(
    conn: &Connection,
    kind: Kind,
    field: &str,
    legend: &'static str,
    selected: &[String],
    q: &str,
    global: bool,
) -> Result<Picker, store::StoreError> {
    let (selected, _) = resolve(conn, kind, selected)?;
    let (found, more) = search(conn, kind, q, global)?;
    let found = found.into_iter().filter(|f| !selected.iter().any(|s| s.id == f.id)).collect();
    Ok(Picker { field: field.to_string(), kind, legend, q: q.to_string(), selected, found, more, error: None })
}

#[derive(serde::Serialize)]
struct Item<'a> {
    id: &'a str,
    label: &'a str,
    detail: &'a str,
}

/// GET /admin/picker/{kind}?q=…: the matches as JSON, for static/picker.js. Named locations are
/// for global administrators only; users and groups are offered to application administrators
/// too, who assign them to apps.
fn lookup(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let kind = crate::web::path_param(req, "kind");
    let kind =
        Kind::parse(&kind).ok_or_else(|| ErrorPage { status: StatusCode::NOT_FOUND, title: "No such list".into(), message: "Nothing to pick here.".into() })?;
    if kind == Kind::Location && !admin.nav().global {
        return Err(ErrorPage {
            status: StatusCode::FORBIDDEN,
            title: "Not allowed".into(),
            message: "This part of the console is for global administrators.".into(),
        }
        .into());
    }
    let q = Params::parse(req.query_string().as_bytes()).unwrap_or_default().get("q").unwrap_or("").chars().take(100).collect::<String>();
    let conn = state.pool.get()?;
    let (found, more) = search(&conn, kind, &q, admin.nav().global)?;
    let items: Vec<Item<'_>> = found.iter().take(SHOWN as usize * 5).map(|p| Item { id: &p.id, label: &p.label, detail: &p.detail }).collect();
    Ok(HttpResponse::Ok().insert_header((actix_web::http::header::CACHE_CONTROL, "no-store")).json(serde_json::json!({ "items": items, "more": more })))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/picker/{kind}", web::get().to(crate::admin::page(lookup)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticked_ids_are_the_names_under_the_fields_prefix_only() {
        let names: Vec<String> = ["user_in_a1", "user_in_b-2_x", "user_ex_c", "user_in_", "q_user_in", "users_all"].iter().map(|s| s.to_string()).collect();
        assert_eq!(ticked(&names, "user_in"), ["a1", "b-2_x"]);
        assert_eq!(ticked(&names, "user_ex"), ["c"]);
        assert!(Kind::parse("users").is_some() && Kind::parse("sessions").is_none());
    }
}
