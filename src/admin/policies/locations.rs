//! Named locations: IP ranges, trusted or not, with a sign-in risk; a paged list and the form.

use super::Errors;
use crate::AppState;
use crate::admin::list::{Columns, Dir, ListQuery, Pager};
use crate::admin::{Admin, Global, Nav, Need, capitalise};
use crate::auth::mfa::new_id;
use crate::i18n::filters;
use crate::policy::locations::IpRange;
use crate::policy::model::Risk;
use crate::store::db::Connection;
use crate::store::{self, directory as dir, policies as pol};
use crate::web::params::Params;
use crate::web::{PageError, html, see_other};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

const COLUMNS: Columns =
    Columns { sorts: &[("name", "name COLLATE NOCASE"), ("trusted", "trusted"), ("risk", "risk")], default: ("name", Dir::Asc), tiebreak: "id" };

/// The add form as typed.
#[derive(Default)]
pub struct LocationForm {
    pub name: String,
    pub ranges: String,
    pub trusted: bool,
    pub risk: String,
}

#[derive(Template)]
#[template(path = "admin/locations.html")]
struct LocationsPage {
    nav: Nav,
    locations: Vec<pol::NamedLocation>,
    pager: Pager,
    q: String,
    errors: Errors,
    form: LocationForm,
}

fn page(conn: &Connection, admin: &Admin<impl Need>, params: &Params, form: LocationForm, errors: Errors) -> Result<HttpResponse, PageError> {
    let mut query = ListQuery::parse("/admin/locations", params, &COLUMNS);
    let total = pol::count_locations(conn, query.search())?;
    query.clamp(total);
    let locations = pol::locations_page(conn, query.search(), &query.window())?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(html(status, &LocationsPage { nav: admin.nav(), locations, pager: query.pager(total), q: query.q().to_string(), errors, form }))
}

pub fn locations(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let params = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    page(&conn, &admin, &params, LocationForm { risk: "none".into(), ..LocationForm::default() }, Errors::new())
}

/// POST /admin/locations: every field's mistake at once, what was typed kept.
pub fn add_location(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let form = LocationForm {
        name: p.get("name").unwrap_or("").trim().to_string(),
        ranges: p.get("ranges").unwrap_or("").to_string(),
        trusted: p.get("trusted").is_some(),
        risk: p.get("risk").unwrap_or("none").to_string(),
    };
    let ranges: Vec<String> = form.ranges.split([',', '\n']).map(str::trim).filter(|r| !r.is_empty()).map(String::from).collect();
    let mut errors = Errors::new();
    if form.name.is_empty() || form.name.chars().count() > 100 {
        errors.insert("name", "The location name must be 1 to 100 characters.".into());
    }
    if ranges.is_empty() {
        errors.insert("ranges", "List at least one IP range (CIDR), one per line.".into());
    } else if let Some(Err(e)) = ranges.iter().map(|r| IpRange::parse(r)).find(Result::is_err) {
        errors.insert("ranges", capitalise(&e));
    }
    let risk = Risk::parse(&form.risk).unwrap_or_else(|| {
        errors.insert("risk", "Choose a risk level: none, low, medium or high.".into());
        Risk::None
    });
    if errors.is_empty() {
        let loc = pol::NamedLocation { id: new_id(), name: form.name.clone(), ranges, trusted: form.trusted, risk };
        let added = store::transaction(&mut conn, |tx| -> Result<_, PageError> {
            match pol::add_location(tx, &loc, now) {
                Ok(()) => {
                    let after = serde_json::to_string(&loc).expect("serialises");
                    dir::audit_change(tx, &admin.user.id, "location_created", Some(&loc.name), None, Some(&after), now)?;
                    // A risk level given to the admin's own network can meet a blocking policy.
                    crate::admin::refuse_lockout(tx, req, &admin, now)?;
                    Ok(None)
                }
                Err(store::StoreError::Conflict(m)) => Ok(Some(capitalise(&m))),
                Err(e) => Err(e.into()),
            }
        })?;
        match added {
            None => return Ok(see_other("/admin/locations")),
            Some(conflict) => {
                errors.insert("name", conflict);
            }
        }
    }
    page(&conn, &admin, &Params::default(), form, errors)
}

pub fn delete_location(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let conn = state.pool.get()?;
    // As Entra: a location a policy names is not deleted from under it (a policy excluding the
    // office would start blocking the office, the administrator's own console included).
    let users: Vec<String> = pol::all(&conn)?
        .into_iter()
        .filter(|p| p.conditions.locations.as_ref().is_some_and(|l| l.include.locations.contains(&id) || l.exclude.locations.contains(&id)))
        .map(|p| p.name)
        .collect();
    if !users.is_empty() {
        return Err(crate::web::ErrorPage::bad_request("This location is in use", format!("Remove it from these policies first: {}.", users.join(", "))).into());
    }
    let before = pol::locations(&conn)?.into_iter().find(|l| l.id == *id);
    if pol::delete_location(&conn, &id)? {
        let name = before.as_ref().map(|l| l.name.clone()).unwrap_or_else(|| id.to_string());
        let before = before.map(|l| serde_json::to_string(&l).expect("serialises"));
        dir::audit_change(&conn, &admin.user.id, "location_deleted", Some(&name), before.as_deref(), None, state.clock.now())?;
    }
    Ok(see_other("/admin/locations"))
}
