use super::{Result, StoreError, json_list, to_json};
use rusqlite::{Connection, OptionalExtension, Row, params};

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub is_public: bool,
    pub enabled: bool,
}

impl Client {
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

pub struct NewClient<'a> {
    pub name: &'a str,
    pub secret_hash: Option<&'a str>,
    pub redirect_uris: &'a [String],
    pub post_logout_redirect_uris: &'a [String],
    pub grant_types: &'a [String],
    pub is_public: bool,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<(Client, [String; 3])> {
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
        },
        [r.get(3)?, r.get(4)?, r.get(5)?],
    ))
}

#[tracing::instrument(skip(conn, new), fields(name = new.name))]
pub fn insert(conn: &Connection, id: &str, new: &NewClient<'_>, now: i64) -> Result<()> {
    let inserted = conn.execute(
        "INSERT INTO clients (id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, is_public, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id,
            new.name,
            new.secret_hash,
            to_json(new.redirect_uris),
            to_json(new.post_logout_redirect_uris),
            to_json(new.grant_types),
            new.is_public,
            now
        ],
    );
    match inserted {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(StoreError::Conflict(format!("an application named {:?} already exists", new.name)))
        }
        other => other.map(|_| ()).map_err(Into::into),
    }
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<Client>> {
    let found = conn
        .prepare_cached(
            "SELECT id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, is_public, enabled
             FROM clients WHERE id = ?1",
        )?
        .query_row([id], from_row)
        .optional()?;
    let Some((mut client, [redirects, post_logout, grants])) = found else { return Ok(None) };
    client.redirect_uris = json_list(&redirects)?;
    client.post_logout_redirect_uris = json_list(&post_logout)?;
    client.grant_types = json_list(&grants)?;
    Ok(Some(client))
}
