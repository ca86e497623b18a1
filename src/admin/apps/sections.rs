//! An application's page, in sections (each its own address, so they work without
//! JavaScript): Overview, Authentication, Credentials, Users and groups, Token settings,
//! Conditional access and Sign-ins.

use super::{AppForm, Errors, load_app};
use crate::AppState;
use crate::admin::list::{Columns, Dir, ListQuery, Pager};
use crate::admin::picker::{self, Picker};
use crate::admin::words::{self, Moment};
use crate::admin::{Admin, Apps, Nav, Need};
use crate::i18n::filters;
use crate::oidc::clients::ID_TOKEN_ALGS;
use crate::store::db::Connection;
use crate::store::{self, clients::Client, directory};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, html};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Authentication,
    Credentials,
    Assignments,
    Tokens,
    Access,
    Signins,
}

pub const ALL: [Section; 7] =
    [Section::Overview, Section::Authentication, Section::Credentials, Section::Assignments, Section::Tokens, Section::Access, Section::Signins];

impl Section {
    pub fn slug(self) -> &'static str {
        match self {
            Section::Overview => "overview",
            Section::Authentication => "authentication",
            Section::Credentials => "credentials",
            Section::Assignments => "assignments",
            Section::Tokens => "tokens",
            Section::Access => "access",
            Section::Signins => "signins",
        }
    }

    /// Where it is, after /admin/apps/{id}.
    pub fn path(self) -> String {
        match self {
            Section::Overview => String::new(),
            s => format!("/{}", s.slug()),
        }
    }

    /// The message key of its name.
    pub fn label(self) -> &'static str {
        match self {
            Section::Overview => "admin.app.s.overview",
            Section::Authentication => "admin.app.s.authentication",
            Section::Credentials => "admin.app.s.credentials",
            Section::Assignments => "admin.app.s.assignments",
            Section::Tokens => "admin.app.s.tokens",
            Section::Access => "admin.app.s.access",
            Section::Signins => "admin.app.s.signins",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ALL.into_iter().find(|x| x.slug() == s)
    }
}

/// A quick-start snippet: how one stack's OIDC library is set up for this app.
pub struct Snippet {
    pub id: &'static str,
    pub stack: &'static str,
    pub code: String,
}

fn snippets(issuer: &str, app: &Client) -> Vec<Snippet> {
    let id = &app.id;
    // As the URL parser writes it: quotes and spaces percent-encoded, so a redirect URI cannot
    // break out of the string literal it is pasted into.
    let redirect =
        app.redirect_uris.first().and_then(|u| url::Url::parse(u).ok()).map(|u| u.to_string()).unwrap_or_else(|| "https://app.example.com/callback".into());
    let secret = if app.is_public { None } else { Some("<client secret>") };
    let node = match secret {
        Some(s) => format!(
            "import * as client from \"openid-client\";\n\nconst config = await client.discovery(\n  new URL(\"{issuer}\"),\n  \"{id}\",\n  \"{s}\",\n);\n// redirect_uri: {redirect}\n// then client.buildAuthorizationUrl(config, {{ redirect_uri, scope: \"openid profile email\", code_challenge, code_challenge_method: \"S256\" }})"
        ),
        None => format!(
            "import * as client from \"openid-client\";\n\nconst config = await client.discovery(\n  new URL(\"{issuer}\"),\n  \"{id}\",\n  undefined,\n  client.None(),\n);\n// redirect_uri: {redirect}; PKCE (S256) is required"
        ),
    };
    let python = format!(
        "from authlib.integrations.flask_client import OAuth\n\noauth = OAuth(app)\noauth.register(\n    name=\"latchkey\",\n    client_id=\"{id}\",\n{}    server_metadata_url=\"{issuer}/.well-known/openid-configuration\",\n    client_kwargs={{\"scope\": \"openid profile email\", \"code_challenge_method\": \"S256\"}},\n)\n# redirect_uri: {redirect}",
        secret.map(|s| format!("    client_secret=\"{s}\",\n")).unwrap_or_default()
    );
    let go = format!(
        "provider, err := oidc.NewProvider(ctx, \"{issuer}\")\nif err != nil {{\n\treturn err\n}}\nconfig := oauth2.Config{{\n\tClientID:     \"{id}\",\n\tClientSecret: \"{}\",\n\tEndpoint:     provider.Endpoint(),\n\tRedirectURL:  \"{redirect}\",\n\tScopes:       []string{{oidc.ScopeOpenID, \"profile\", \"email\"}},\n}}\nverifier := provider.Verifier(&oidc.Config{{ClientID: \"{id}\"}})",
        secret.unwrap_or("")
    );
    let rust = format!(
        "let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(\"{issuer}\".into())?, &http_client).await?;\nlet client = CoreClient::from_provider_metadata(\n    metadata,\n    ClientId::new(\"{id}\".into()),\n    {},\n)\n.set_redirect_uri(RedirectUrl::new(\"{redirect}\".into())?);",
        secret.map(|s| format!("Some(ClientSecret::new(\"{s}\".into()))")).unwrap_or_else(|| "None".into())
    );
    let spring = format!(
        "spring:\n  security:\n    oauth2:\n      client:\n        registration:\n          latchkey:\n            client-id: {id}\n{}            authorization-grant-type: authorization_code\n            redirect-uri: \"{redirect}\"\n            scope: openid,profile,email\n        provider:\n          latchkey:\n            issuer-uri: {issuer}",
        match secret {
            Some(s) => format!("            client-secret: \"{s}\"\n"),
            None => "            client-authentication-method: none\n".into(),
        }
    );
    vec![
        Snippet { id: "node", stack: "Node.js (openid-client)", code: node },
        Snippet { id: "python", stack: "Python (Authlib, Flask)", code: python },
        Snippet { id: "go", stack: "Go (go-oidc + x/oauth2)", code: go },
        Snippet { id: "rust", stack: "Rust (openidconnect)", code: rust },
        Snippet { id: "spring", stack: "Java (Spring Boot application.yml)", code: spring },
    ]
}

/// A policy as the Conditional access section lists it.
pub struct PolicyLine {
    pub id: String,
    pub name: String,
    /// In words: "Report-only".
    pub state: String,
    /// Whether the app is named (true) or covered by "all apps".
    pub named: bool,
}

pub struct SignInLine {
    pub id: i64,
    pub at: Moment,
    pub user: String,
    pub ip: String,
    pub result: String,
    pub success: bool,
    pub methods: String,
    pub reason: String,
}

/// What the Users and groups section's pickers show: the searches typed and the ticks.
#[derive(Default)]
pub struct Searches {
    pub user_q: String,
    pub group_q: String,
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/app.html")]
pub struct AppPage {
    nav: Nav,
    app: Client,
    section: Section,
    sections: [Section; 7],
    form: AppForm,
    errors: Errors,
    issuer: String,
    discovery: String,
    algs: &'static [&'static str],
    has_logo: bool,
    secret_expires: Option<Moment>,
    secret_expired: bool,
    previous_until: Option<Moment>,
    snippets: Vec<Snippet>,
    assignments: Vec<directory::Assignment>,
    /// The assignments list's paging, search (`q`) and kind filter (Users and groups only).
    pager: Option<Pager>,
    q: String,
    kind: &'static str,
    /// How many assignments the app has, whatever the search.
    assigned: i64,
    pickers: Vec<Picker>,
    policies: Vec<PolicyLine>,
    defaults_on: bool,
    signins: Vec<SignInLine>,
    lifetimes: Vec<(&'static str, i64)>,
}

/// An app's assignments: searched, filtered by kind and sorted like the other lists, a page at
/// a time.
const ASSIGNMENT_COLUMNS: Columns = Columns {
    sorts: &[("name", "coalesce(u.username, g.name, a.principal_id) COLLATE NOCASE"), ("kind", "a.principal_type")],
    default: ("name", Dir::Asc),
    tiebreak: "a.principal_id",
};

/// Renders `section` of `app`; `form` is what was typed (None: as saved), `errors` what was wrong.
#[allow(clippy::too_many_arguments)]
pub fn page(
    state: &AppState,
    conn: &Connection,
    admin: &Admin<impl Need>,
    app: Client,
    section: Section,
    form: Option<AppForm>,
    errors: Errors,
    searches: Option<Searches>,
) -> Result<HttpResponse, PageError> {
    page_with(state, conn, admin, app, section, form, errors, searches, &Params::default())
}

/// `page`, with the query of the section's list (the assignments' search, kind, sort and page).
#[allow(clippy::too_many_arguments)]
fn page_with(
    state: &AppState,
    conn: &Connection,
    admin: &Admin<impl Need>,
    app: Client,
    section: Section,
    form: Option<AppForm>,
    errors: Errors,
    searches: Option<Searches>,
    list: &Params,
) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let issuer = state.config.issuer().to_string();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let mut page = AppPage {
        nav: admin.nav(),
        form: form.unwrap_or_else(|| AppForm::from_client(&app)),
        section,
        sections: ALL,
        errors,
        discovery: format!("{issuer}/.well-known/openid-configuration"),
        algs: ID_TOKEN_ALGS,
        has_logo: false,
        secret_expires: app.secret_expires_at.map(|t| admin.zone.at(t)),
        secret_expired: app.secret_expires_at.is_some_and(|t| t <= now),
        previous_until: app.previous_secret_expires_at.filter(|t| *t > now && app.previous_secret_hash.is_some()).map(|t| admin.zone.at(t)),
        snippets: vec![],
        assignments: vec![],
        pager: None,
        q: String::new(),
        kind: "",
        assigned: 0,
        pickers: vec![],
        policies: vec![],
        defaults_on: false,
        signins: vec![],
        lifetimes: vec![],
        issuer,
        app,
    };
    match section {
        Section::Overview => {
            page.has_logo = store::clients::has_logo(conn, &page.app.id)?;
            page.snippets = snippets(&page.issuer, &page.app);
        }
        Section::Assignments => {
            let mut query = ListQuery::parse(format!("/admin/apps/{}/assignments", page.app.id), list, &ASSIGNMENT_COLUMNS);
            page.kind = match list.get("kind") {
                Some("user") => "user",
                Some("group") => "group",
                _ => "",
            };
            query.keep("kind", page.kind);
            let kind = Some(page.kind).filter(|k| !k.is_empty());
            page.assigned = crate::store::directory::count_assignments(conn, &page.app.id, None, None)?;
            let total = if query.search().is_none() && kind.is_none() {
                page.assigned
            } else {
                crate::store::directory::count_assignments(conn, &page.app.id, query.search(), kind)?
            };
            query.clamp(total);
            page.assignments = crate::store::directory::assignments_page(conn, &page.app.id, query.search(), kind, &query.window())?;
            page.q = query.q().to_string();
            page.pager = Some(query.pager(total));
            let s = searches.unwrap_or_default();
            page.pickers = vec![
                picker::build(conn, picker::Kind::User, "user", "admin.app.pick_users", &s.users, &s.user_q, page.nav.global)?,
                picker::build(conn, picker::Kind::Group, "group", "admin.app.pick_groups", &s.groups, &s.group_q, page.nav.global)?,
            ];
            for p in &mut page.pickers {
                p.error = page.errors.get(p.field.as_str()).cloned();
            }
        }
        Section::Tokens => {
            let t = &state.config.tokens;
            page.lifetimes = vec![
                ("admin.app.ttl_code", t.code_ttl_secs),
                ("admin.app.ttl_access", t.access_token_ttl_secs),
                ("admin.app.ttl_id", t.id_token_ttl_secs),
                ("admin.app.ttl_refresh", t.refresh_token_ttl_secs),
            ];
        }
        Section::Access => {
            page.defaults_on = store::policies::security_defaults(conn)?;
            page.policies = store::policies::all(conn)?
                .into_iter()
                .filter(|p| (p.include_apps.all || p.include_apps.apps.contains(&page.app.id)) && !p.exclude_apps.apps.contains(&page.app.id))
                .map(|p| PolicyLine { named: p.include_apps.apps.contains(&page.app.id), id: p.id, name: p.name, state: words::state(p.state.as_str()) })
                .collect();
        }
        Section::Signins => {
            let filter = store::signins::Filter { client_id: Some(page.app.id.clone()), ..Default::default() };
            page.signins = store::signins::search(conn, &filter, 50)?
                .into_iter()
                .map(|s| SignInLine {
                    id: s.id,
                    at: admin.zone.at(s.at),
                    user: s.username.unwrap_or_default(),
                    ip: s.ip.unwrap_or_default(),
                    success: s.result == "success",
                    result: words::result(&s.result),
                    methods: words::methods(s.methods.as_deref()),
                    reason: s.reason.unwrap_or_default(),
                })
                .collect();
        }
        Section::Authentication | Section::Credentials => {}
    }
    Ok(html(status, &page))
}

/// GET /admin/apps/{id}: the Overview.
pub fn show(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let conn = state.pool.get()?;
    let app = load_app(&conn, &id)?;
    page(&state, &conn, &admin, app, Section::Overview, None, Errors::new(), None)
}

/// GET /admin/apps/{id}/{section}; the Users and groups section's list takes `q`, `kind`,
/// `sort`, `dir` and `page`.
pub fn show_section(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let path = (crate::web::path_param(req, "id"), crate::web::path_param(req, "section"));
    let (id, section) = path;
    let section = Section::parse(&section).filter(|s| *s != Section::Overview).ok_or_else(|| ErrorPage {
        status: StatusCode::NOT_FOUND,
        title: "No such page".into(),
        message: "This application has no such section.".into(),
    })?;
    let conn = state.pool.get()?;
    let app = load_app(&conn, &id)?;
    let list = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    page_with(&state, &conn, &admin, app, section, None, Errors::new(), None, &list)
}
