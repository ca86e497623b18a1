use super::{Result, StoreError, json_list, to_json};
use crate::store::db::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub is_public: bool,
    pub enabled: bool,
    pub logo_url: Option<String>,
    pub launch_url: Option<String>,
    pub id_token_alg: String,
    pub assignment_required: bool,
    /// OIDC Back-Channel Logout: where logout tokens go, and whether they must carry `sid`.
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    /// Not the organisation's own: people approve what it may see (unless an admin did for all).
    pub third_party: bool,
    pub consent_for_everyone: bool,
    /// OIDC Core §4: My Apps starts the app's own sign-in here.
    pub initiate_login_uri: Option<String>,
    pub visible_in_my_apps: bool,
    /// OIDC Front-Channel Logout: a page the browser loads (in an iframe) at sign-out.
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: bool,
    #[serde(skip)]
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    /// When the current secret stops working (None: never).
    pub secret_expires_at: Option<i64>,
    pub created_at: i64,
}

impl Client {
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// Everything an admin sets about an app (the secret is the server's to make).
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub is_public: bool,
    pub logo_url: Option<String>,
    pub launch_url: Option<String>,
    pub id_token_alg: String,
    pub assignment_required: bool,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub third_party: bool,
    pub consent_for_everyone: bool,
    pub initiate_login_uri: Option<String>,
    pub visible_in_my_apps: bool,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: bool,
}

const COLUMNS: &str = "id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, is_public, enabled,
     logo_url, launch_url, id_token_alg, assignment_required, previous_secret_hash, previous_secret_expires_at, created_at,
     backchannel_logout_uri, backchannel_logout_session_required, third_party, consent_for_everyone, initiate_login_uri,
     visible_in_my_apps, frontchannel_logout_uri, frontchannel_logout_session_required, secret_expires_at";

fn from_row(r: &Row<'_>) -> crate::store::db::Result<(Client, [String; 3])> {
    Ok((
        Client {
            id: r.get(0)?,
            name: r.get(1)?,
            secret_hash: r.get(2)?,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            is_public: r.get(6)?,
            enabled: r.get(7)?,
            logo_url: r.get(8)?,
            launch_url: r.get(9)?,
            id_token_alg: r.get(10)?,
            assignment_required: r.get(11)?,
            previous_secret_hash: r.get(12)?,
            previous_secret_expires_at: r.get(13)?,
            created_at: r.get(14)?,
            backchannel_logout_uri: r.get(15)?,
            backchannel_logout_session_required: r.get(16)?,
            third_party: r.get(17)?,
            consent_for_everyone: r.get(18)?,
            initiate_login_uri: r.get(19)?,
            visible_in_my_apps: r.get(20)?,
            frontchannel_logout_uri: r.get(21)?,
            frontchannel_logout_session_required: r.get(22)?,
            secret_expires_at: r.get(23)?,
        },
        [r.get(3)?, r.get(4)?, r.get(5)?],
    ))
}

fn finish(found: (Client, [String; 3])) -> Result<Client> {
    let (mut client, [redirects, post_logout, grants]) = found;
    client.redirect_uris = json_list(&redirects)?;
    client.post_logout_redirect_uris = json_list(&post_logout)?;
    client.grant_types = json_list(&grants)?;
    Ok(client)
}

fn conflict(e: crate::store::db::Error, name: &str) -> StoreError {
    super::conflict_on_duplicate(e, || format!("an application named {name:?} already exists"))
}

#[tracing::instrument(skip(conn, s, secret_hash), fields(name = s.name))]
pub fn insert(conn: &Connection, id: &str, s: &ClientSettings, secret_hash: Option<&str>, now: i64) -> Result<()> {
    conn.execute_unique(
        "INSERT INTO clients (id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, is_public,
             logo_url, launch_url, id_token_alg, assignment_required, created_at, backchannel_logout_uri,
             backchannel_logout_session_required, third_party, consent_for_everyone, initiate_login_uri, visible_in_my_apps,
             frontchannel_logout_uri, frontchannel_logout_session_required)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
        params![
            id,
            s.name,
            secret_hash,
            to_json(&s.redirect_uris),
            to_json(&s.post_logout_redirect_uris),
            to_json(&s.grant_types),
            s.is_public,
            s.logo_url,
            s.launch_url,
            s.id_token_alg,
            s.assignment_required,
            now,
            s.backchannel_logout_uri,
            s.backchannel_logout_session_required,
            s.third_party,
            s.consent_for_everyone,
            s.initiate_login_uri,
            s.visible_in_my_apps,
            s.frontchannel_logout_uri,
            s.frontchannel_logout_session_required
        ],
    )
    .map_err(|e| conflict(e, &s.name))?;
    Ok(())
}

/// Changes an app's settings. Its type (public or confidential) is fixed at registration.
pub fn update(conn: &Connection, id: &str, s: &ClientSettings) -> Result<()> {
    conn.execute_unique(
        "UPDATE clients SET name = ?2, redirect_uris = ?3, post_logout_redirect_uris = ?4, grant_types = ?5,
             logo_url = ?6, launch_url = ?7, id_token_alg = ?8, assignment_required = ?9, backchannel_logout_uri = ?10,
             backchannel_logout_session_required = ?11, third_party = ?12, consent_for_everyone = ?13, initiate_login_uri = ?14,
             visible_in_my_apps = ?15, frontchannel_logout_uri = ?16, frontchannel_logout_session_required = ?17 WHERE id = ?1",
        params![
            id,
            s.name,
            to_json(&s.redirect_uris),
            to_json(&s.post_logout_redirect_uris),
            to_json(&s.grant_types),
            s.logo_url,
            s.launch_url,
            s.id_token_alg,
            s.assignment_required,
            s.backchannel_logout_uri,
            s.backchannel_logout_session_required,
            s.third_party,
            s.consent_for_everyone,
            s.initiate_login_uri,
            s.visible_in_my_apps,
            s.frontchannel_logout_uri,
            s.frontchannel_logout_session_required
        ],
    )
    .map_err(|e| conflict(e, &s.name))?;
    Ok(())
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<Client>> {
    let sql = format!("SELECT {COLUMNS} FROM clients WHERE id = ?1");
    conn.prepare_cached(&sql)?.query_row([id], from_row).optional()?.map(finish).transpose()
}

pub fn all(conn: &Connection) -> Result<Vec<Client>> {
    let sql = format!("SELECT {COLUMNS} FROM clients ORDER BY name COLLATE NOCASE");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], from_row)?.collect::<crate::store::db::Result<Vec<_>>>()?;
    rows.into_iter().map(finish).collect()
}

/// A new secret, working until `expires_at` (None: never); the old one keeps working until
/// `old_valid_until` (None: stops now), and never past its own expiry.
pub fn rotate_secret(conn: &Connection, id: &str, new_hash: &str, old_valid_until: Option<i64>, expires_at: Option<i64>) -> Result<()> {
    conn.execute(
        "UPDATE clients SET previous_secret_hash = CASE WHEN CAST(?3 AS BIGINT) IS NULL THEN NULL ELSE secret_hash END,
             previous_secret_expires_at = CASE WHEN CAST(?3 AS BIGINT) IS NULL THEN NULL WHEN secret_expires_at IS NOT NULL AND secret_expires_at < ?3 THEN secret_expires_at ELSE ?3 END,
             secret_hash = ?2, secret_expires_at = ?4 WHERE id = ?1",
        params![id, new_hash, old_valid_until, expires_at],
    )?;
    Ok(())
}

/// Sets when the current secret stops working (None: never).
pub fn set_secret_expiry(conn: &Connection, id: &str, expires_at: Option<i64>) -> Result<()> {
    conn.execute("UPDATE clients SET secret_expires_at = ?2 WHERE id = ?1", params![id, expires_at])?;
    Ok(())
}

pub fn set_enabled(conn: &Connection, id: &str, enabled: bool) -> Result<()> {
    conn.execute("UPDATE clients SET enabled = ?2 WHERE id = ?1", params![id, enabled])?;
    Ok(())
}

/// Deletes an app; its codes, grants and refresh tokens go with it (foreign keys cascade),
/// which revokes every access token issued under those grants.
pub fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM clients WHERE id = ?1", [id])? == 1)
}

/// An app's logo: (content type, bytes).
pub fn logo(conn: &Connection, client_id: &str) -> Result<Option<(String, Vec<u8>)>> {
    Ok(conn
        .prepare_cached("SELECT content_type, data FROM client_logos WHERE client_id = ?1")?
        .query_row([client_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub fn set_logo(conn: &Connection, client_id: &str, content_type: &str, data: &[u8], now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO client_logos (client_id, content_type, data, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(client_id) DO UPDATE SET content_type = excluded.content_type, data = excluded.data, updated_at = excluded.updated_at",
        params![client_id, content_type, data, now],
    )?;
    Ok(())
}

pub fn has_logo(conn: &Connection, client_id: &str) -> Result<bool> {
    Ok(conn.prepare_cached("SELECT 1 FROM client_logos WHERE client_id = ?1")?.query_row([client_id], |_| Ok(())).optional()?.is_some())
}

/// The apps `user_id` may open from My Apps: enabled, visible, launchable, and open to everyone
/// or assigned to them (directly or through a group); the most recently used first.
pub fn my_apps(conn: &Connection, user_id: &str) -> Result<Vec<(Client, Option<i64>)>> {
    let sql = format!(
        "SELECT * FROM (SELECT {COLUMNS}, (SELECT max(g.created_at) FROM grants g WHERE g.client_id = clients.id AND g.user_id = ?1) AS used
         FROM clients
         WHERE enabled = 1 AND visible_in_my_apps = 1 AND (launch_url IS NOT NULL OR initiate_login_uri IS NOT NULL)
           AND (assignment_required = 0 OR EXISTS (SELECT 1 FROM app_assignments a WHERE a.client_id = clients.id AND (
                 (a.principal_type = 'user' AND a.principal_id = ?1) OR
                 (a.principal_type = 'group' AND a.principal_id IN (SELECT group_id FROM group_members WHERE user_id = ?1)))))) AS mine
         ORDER BY used IS NULL, used DESC, name COLLATE NOCASE"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([user_id], |r| Ok((from_row(r)?, r.get::<_, Option<i64>>(24)?)))?.collect::<crate::store::db::Result<Vec<_>>>()?;
    rows.into_iter().map(|(c, used)| Ok((finish(c)?, used))).collect()
}

const LIST_FILTER: &str = "(name LIKE ?1 ESCAPE '\\' OR id LIKE ?1 ESCAPE '\\' OR ?1 IS NULL) AND (enabled = ?2 OR ?2 IS NULL)";

/// Apps whose name or client id contains `search` (and enabled or not, if given): how many.
pub fn count(conn: &Connection, search: Option<&str>, enabled: Option<bool>) -> Result<i64> {
    let pattern = search.map(crate::admin::list::like);
    Ok(conn.query_row(&format!("SELECT count(*) FROM clients WHERE {LIST_FILTER}"), params![pattern, enabled], |r| r.get(0))?)
}

/// One page of those apps; `window` is the list's ORDER BY / LIMIT (built from its allow-list).
pub fn page(conn: &Connection, search: Option<&str>, enabled: Option<bool>, window: &crate::admin::list::Window) -> Result<Vec<Client>> {
    let pattern = search.map(crate::admin::list::like);
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM clients WHERE {LIST_FILTER}{}", window.sql()))?;
    let rows = stmt.query_map(params![pattern, enabled], from_row)?.collect::<crate::store::db::Result<Vec<_>>>()?;
    rows.into_iter().map(finish).collect()
}
