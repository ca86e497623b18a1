use super::{Result, json_list, to_json};
use crate::store::db::{Connection, OptionalExtension, params};

/// A single sign-on session. The browser holds a random token; only its hash is stored.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub csrf_token: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    /// When the session was last used for something that tracks activity (the admin console).
    pub last_seen_at: i64,
    /// When it ends, whatever happens in it.
    pub expires_at: i64,
}

/// How long a new session lives, and when it was last active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lifetime {
    pub expires_at: i64,
    pub last_seen_at: i64,
}

impl Lifetime {
    /// A session started by a sign-in now.
    pub fn fresh(now: i64, ttl: i64) -> Self {
        Lifetime { expires_at: now + ttl, last_seen_at: now }
    }

    /// What a session that carries on `old` keeps of it when nothing was proven meanwhile (a
    /// consent, a password change): its end and its last activity. A copy of the cookie cannot
    /// renew itself, nor wake a console session gone idle, by passing through such a flow.
    pub fn of(old: &Session) -> Self {
        Lifetime { expires_at: old.expires_at, last_seen_at: old.last_seen_at }
    }
}

/// Where a session was started: shown to the person on My sessions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Starts a session whose person last proved a factor at `auth_time` and returns it with the
/// cookie value the browser must hold.
#[tracing::instrument(skip(conn, amr, origin))]
pub fn create(conn: &Connection, user_id: &str, amr: &[String], origin: Origin<'_>, auth_time: i64, now: i64, life: Lifetime) -> Result<(Session, String)> {
    let token = crate::crypto::random_token();
    let session = Session {
        id: crate::crypto::new_uuid(),
        user_id: user_id.to_string(),
        csrf_token: crate::crypto::random_token(),
        auth_time,
        amr: amr.to_vec(),
        last_seen_at: life.last_seen_at,
        expires_at: life.expires_at,
    };
    conn.execute(
        "INSERT INTO sessions (id, token_hash, user_id, csrf_token, auth_time, amr, created_at, expires_at, ip, user_agent, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?10, ?7, ?8, ?9, ?11)",
        params![
            session.id,
            crate::crypto::secret_hash(&token),
            session.user_id,
            session.csrf_token,
            auth_time,
            to_json(&session.amr),
            life.expires_at,
            origin.ip,
            origin.user_agent,
            now,
            life.last_seen_at
        ],
    )?;
    Ok((session, token))
}

/// Gives a live session a new cookie value and CSRF token, so copies of the old ones stop
/// working (a password change that keeps the person's own session); returns the cookie value.
pub fn new_token(conn: &Connection, id: &str) -> Result<String> {
    let token = crate::crypto::random_token();
    conn.execute(
        "UPDATE sessions SET token_hash = ?2, csrf_token = ?3 WHERE id = ?1 AND ended_at IS NULL",
        params![id, crate::crypto::secret_hash(&token), crate::crypto::random_token()],
    )?;
    Ok(token)
}

/// The live session behind a cookie value: not ended, not expired, and its user not disabled.
pub fn by_token(conn: &Connection, token: &str, now: i64) -> Result<Option<Session>> {
    let row = conn
        .prepare_cached(
            "SELECT s.id, s.user_id, s.csrf_token, s.auth_time, s.amr, coalesce(s.last_seen_at, s.auth_time), s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2 AND u.disabled = 0",
        )?
        .query_row(params![crate::crypto::secret_hash(token), now], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, String>(4)?, r.get(5)?, r.get(6)?))
        })
        .optional()?;
    let Some((id, user_id, csrf_token, auth_time, amr, last_seen_at, expires_at)) = row else { return Ok(None) };
    Ok(Some(Session { id, user_id, csrf_token, auth_time, amr: json_list(&amr)?, last_seen_at, expires_at }))
}

/// Ends session `old` because `new` (the same person's, stronger or fresher) takes its place:
/// the apps it gave tokens to belong to the new one now, and none is signed out.
pub fn replace(conn: &Connection, old: &str, new: &str, now: i64) -> Result<()> {
    conn.execute("INSERT OR IGNORE INTO session_apps (session_id, client_id) SELECT ?2, client_id FROM session_apps WHERE session_id = ?1", params![old, new])?;
    conn.execute("UPDATE sessions SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL", params![old, now])?;
    Ok(())
}

/// Ends a session; the apps it gave tokens to are queued a back-channel logout.
pub fn end(conn: &Connection, id: &str, now: i64) -> Result<()> {
    super::logout::session_ending(conn, id, now)?;
    conn.execute("UPDATE sessions SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL", params![id, now])?;
    Ok(())
}

pub fn touch(conn: &Connection, id: &str, now: i64) -> Result<()> {
    conn.prepare_cached("UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1")?.execute(params![id, now])?;
    Ok(())
}

/// One of a person's live sessions, as My sessions lists it.
#[derive(Debug, Clone)]
pub struct Active {
    pub id: String,
    pub created_at: i64,
    /// Its latest use: a page that tracks activity, or an app it signed in to.
    pub last_used_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The names of the apps that received tokens in it.
    pub apps: Vec<String>,
}

/// The live sessions of `user_id`, most recently used first.
pub fn active_for_user(conn: &Connection, user_id: &str, now: i64) -> Result<Vec<Active>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT s.id, s.created_at,
                {}(coalesce(s.last_seen_at, s.created_at), coalesce((SELECT max(g.created_at) FROM grants g WHERE g.session_id = s.id), 0)),
                s.ip, s.user_agent
         FROM sessions s WHERE s.user_id = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2
         ORDER BY 3 DESC, s.created_at DESC",
        conn.greatest()
    ))?;
    let mut sessions = stmt
        .query_map(params![user_id, now], |r| {
            Ok(Active { id: r.get(0)?, created_at: r.get(1)?, last_used_at: r.get(2)?, ip: r.get(3)?, user_agent: r.get(4)?, apps: vec![] })
        })?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    let mut apps =
        conn.prepare_cached("SELECT c.name FROM session_apps a JOIN clients c ON c.id = a.client_id WHERE a.session_id = ?1 ORDER BY c.name COLLATE NOCASE")?;
    for s in &mut sessions {
        s.apps = apps.query_map([&s.id], |r| r.get(0))?.collect::<crate::store::db::Result<_>>()?;
    }
    Ok(sessions)
}

/// Whether `id` is a live session of `user_id`: a person acts only on their own.
pub fn is_live_session_of(conn: &Connection, id: &str, user_id: &str, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM sessions WHERE id = ?1 AND user_id = ?2 AND ended_at IS NULL AND expires_at > ?3)")?
        .query_row(params![id, user_id, now], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(conn: &Connection, id: &str) {
        conn.execute("INSERT INTO users (id, username, password_hash, created_at, updated_at) VALUES (?1, ?1, 'x', 0, 0)", [id]).unwrap();
    }

    #[test]
    fn a_person_sees_only_their_live_sessions_with_where_they_started() {
        let pool = crate::store::open_in_memory();
        let conn = pool.get().unwrap();
        user(&conn, "alice");
        user(&conn, "mallory");
        let origin = Origin { ip: Some("203.0.113.7"), user_agent: Some("Firefox") };
        let (a1, _) = create(&conn, "alice", &["pwd".into()], origin, 100, 100, Lifetime::fresh(100, 1000)).unwrap();
        let (a2, _) = create(&conn, "alice", &["pwd".into()], Origin::default(), 200, 200, Lifetime::fresh(200, 1000)).unwrap();
        let (m, _) = create(&conn, "mallory", &["pwd".into()], Origin::default(), 300, 300, Lifetime::fresh(300, 1000)).unwrap();
        end(&conn, &a2.id, 250).unwrap();
        let live = active_for_user(&conn, "alice", 400).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].id.as_str(), live[0].ip.as_deref(), live[0].user_agent.as_deref()), (a1.id.as_str(), Some("203.0.113.7"), Some("Firefox")));
        assert!(is_live_session_of(&conn, &a1.id, "alice", 400).unwrap());
        assert!(!is_live_session_of(&conn, &a2.id, "alice", 400).unwrap(), "ended");
        assert!(!is_live_session_of(&conn, &m.id, "alice", 400).unwrap(), "someone else's");
        assert!(!is_live_session_of(&conn, &a1.id, "alice", 1100).unwrap(), "expired");
        // A session carried on from an older one, nothing proven since, keeps its sign-in time,
        // its end and its last activity.
        let a1_read = Session { last_seen_at: 300, ..a1.clone() };
        let (carried, token) = create(&conn, "alice", &["pwd".into()], Origin::default(), 100, 900, Lifetime::of(&a1_read)).unwrap();
        assert_eq!((carried.auth_time, carried.last_seen_at, carried.expires_at), (100, 300, 1100));
        let read = by_token(&conn, &token, 950).unwrap().unwrap();
        assert_eq!((read.auth_time, read.last_seen_at, read.expires_at), (100, 300, 1100), "not renewed by being carried on");
        assert!(by_token(&conn, &token, 1100).unwrap().is_none(), "ends when the session it carries on would have");
    }
}
