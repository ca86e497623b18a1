//! Human words for what the store keeps as codes: "Password, Authenticator app" for
//! `["pwd","otp","mfa"]`, "Report-only" for `report_only`, "Linux" for `linux`, an audit
//! action's label, and dates in the admin's time zone with UTC beside them.
//!
//! Every word comes from the catalogues (`words.*` keys), so it is shown in the request's
//! language; a code latchkey does not know is shown as it is rather than hidden.
//!
//! The time zone is the browser's: `static/tz.js` (loaded by the console's layout; no inline
//! script) stores its IANA name in the `lk_tz` cookie, and `Zone::of` reads it back. Without
//! the cookie (first page, no JavaScript) or with a name that is not a time zone, dates are UTC.

use actix_web::HttpRequest;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The cookie `static/tz.js` sets.
pub const TZ_COOKIE: &str = "lk_tz";

/// The admin's time zone.
#[derive(Debug, Clone)]
pub struct Zone(TimeZone);

impl Default for Zone {
    fn default() -> Self {
        Zone(TimeZone::UTC)
    }
}

impl Zone {
    /// The zone the browser reported, else UTC.
    pub fn of(req: &HttpRequest) -> Zone {
        req.cookie(TZ_COOKIE).and_then(|c| Zone::named(c.value())).unwrap_or_default()
    }

    /// An IANA time zone name (`Asia/Tokyo`); None if it is not one.
    pub fn named(name: &str) -> Option<Zone> {
        // Names are short ASCII; refuse anything else before asking the database.
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b)) {
            return None;
        }
        TimeZone::get(name).ok().map(Zone)
    }

    /// The IANA name ("UTC" by default).
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }

    /// Unix seconds, for people: local time, and UTC for the `title`.
    pub fn at(&self, t: i64) -> Moment {
        let Ok(ts) = Timestamp::from_second(t) else {
            return Moment { local: t.to_string(), utc: t.to_string(), iso: String::new() };
        };
        let local = ts.to_zoned(self.0.clone());
        Moment {
            local: local.strftime("%Y-%m-%d %H:%M %Z").to_string(),
            utc: ts.to_zoned(TimeZone::UTC).strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
            iso: ts.to_string(),
        }
    }

    /// The zone's offset from UTC at `t`, in seconds (east positive).
    pub fn offset_at(&self, t: i64) -> i64 {
        Timestamp::from_second(t).map(|ts| self.0.to_offset(ts).seconds() as i64).unwrap_or(0)
    }

    /// Unix seconds → the local calendar day, "YYYY-MM-DD".
    pub fn day(&self, t: i64) -> String {
        Timestamp::from_second(t).map(|ts| ts.to_zoned(self.0.clone()).strftime("%Y-%m-%d").to_string()).unwrap_or_default()
    }

    /// The Unix second at which local day `day` ("YYYY-MM-DD") starts; None if not a date.
    pub fn start_of(&self, day: &str) -> Option<i64> {
        let date: jiff::civil::Date = day.parse().ok()?;
        date.to_zoned(self.0.clone()).ok().map(|z| z.timestamp().as_second())
    }
}

/// A moment shown to an admin: `<time datetime="{{ m.iso }}" title="{{ m.utc }}">{{ m.local }}</time>`.
#[derive(Debug, Clone, Default)]
pub struct Moment {
    /// "2026-12-02 16:05 JST".
    pub local: String,
    /// "2026-12-02 07:05:00 UTC".
    pub utc: String,
    /// RFC 3339, for `datetime`.
    pub iso: String,
}

impl std::fmt::Display for Moment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.local)
    }
}

/// The catalogue's word for `code` under `prefix` (`state`, `platform`, `result`, `risk`,
/// `amr`, `action`…), or `code` itself when there is none. Templates write
/// `{{ p.state.as_str()|human("state") }}` (filter in `i18n::filters`).
pub fn word(prefix: &str, code: &str) -> String {
    let key = format!("words.{prefix}.{code}");
    let text = crate::i18n::t(&key);
    if text.starts_with('⟦') { code.to_string() } else { text.into_owned() }
}

/// RFC 8176 `amr` values (a JSON list as stored) → "Password, Authenticator app". The
/// markers `mfa` and `user` say how, not what, and are left out.
pub fn methods(amr_json: Option<&str>) -> String {
    let list: Vec<String> = amr_json.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
    list.iter().filter(|m| !matches!(m.as_str(), "mfa" | "user")).map(|m| word("amr", m)).collect::<Vec<_>>().join(", ")
}

/// A policy state: "On", "Off", "Report-only".
pub fn state(code: &str) -> String {
    word("state", code)
}

/// A device platform: "Windows", "macOS", "Linux"…
pub fn platform(code: &str) -> String {
    word("platform", code)
}

/// A sign-in's result: "Success", "Failure".
pub fn result(code: &str) -> String {
    word("result", code)
}

/// A risk level: "None", "Low", "Medium", "High".
pub fn risk(code: &str) -> String {
    word("risk", code)
}

/// A client app type (`Browser`, `ClientCredentials`…): "Browser", "Client credentials"…
pub fn client_app_type(t: crate::policy::model::ClientAppType) -> String {
    use crate::policy::model::ClientAppType as C;
    word(
        "client_app_type",
        match t {
            C::Browser => "browser",
            C::Refresh => "refresh",
            C::ClientCredentials => "client_credentials",
            C::Legacy => "legacy",
        },
    )
}

/// An audit action (`user_updated`) → "User changed"; an action latchkey has no label for is
/// shown with spaces.
pub fn action(code: &str) -> String {
    let w = word("action", code);
    if w == code { code.replace('_', " ") } else { w }
}

/// The audit actions with labels, for the filter's choices.
pub const ACTIONS: &[&str] = &[
    "app_registered",
    "app_updated",
    "app_deleted",
    "app_secret_rotated",
    "app_assigned",
    "app_unassigned",
    "app_logo_changed",
    "user_created",
    "user_updated",
    "user_disabled",
    "user_enabled",
    "user_deleted",
    "user_locked",
    "user_unlocked",
    "user_risk_raised",
    "group_created",
    "group_deleted",
    "group_member_added",
    "group_member_removed",
    "policy_created",
    "policy_updated",
    "policy_deleted",
    "policy_imported",
    "location_created",
    "location_deleted",
    "security_defaults_changed",
    "keys_rotated",
    "password_changed",
    "password_reset",
    "one_time_password_set",
    "mfa_registered",
    "mfa_removed",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_become_words_and_unknown_ones_stay_visible() {
        assert_eq!(methods(Some(r#"["pwd","otp","mfa"]"#)), "Password, Authenticator app");
        assert_eq!(methods(Some(r#"["swk","user","mfa"]"#)), "Passkey");
        assert_eq!(methods(None), "");
        assert_eq!(state("report_only"), "Report-only");
        assert_eq!(platform("linux"), "Linux");
        assert_eq!(platform("beos"), "beos");
        assert_eq!(action("user_updated"), "User changed");
        assert_eq!(action("something_new"), "something new");
        for a in ACTIONS {
            assert_ne!(action(a), a.replace('_', " "), "{a} has a label");
        }
    }

    #[test]
    fn dates_are_local_with_utc_beside_them() {
        let tokyo = Zone::named("Asia/Tokyo").unwrap();
        let m = tokyo.at(1_795_564_800);
        assert_eq!(m.utc, "2026-11-25 00:00:00 UTC");
        assert_eq!(m.local, "2026-11-25 09:00 JST");
        assert_eq!(Zone::default().at(1_795_564_800).local, "2026-11-25 00:00 UTC");
        assert!(Zone::named("../../etc/passwd").is_none());
        assert!(Zone::named("Mars/Olympus").is_none());
        assert_eq!(tokyo.start_of("2026-11-25"), Some(1_795_564_800 - 9 * 3600));
        assert_eq!(tokyo.day(1_795_564_800 - 9 * 3600), "2026-11-25");
    }
}
