//! The application form as typed, and its checks: every wrong field reported at once.

use super::Errors;
use crate::admin::capitalise;
use crate::oidc::clients::{self, RegistrationError, check_redirect_uri};
use crate::store::clients::{Client, ClientSettings};
use crate::web::params::Params;

/// The form as typed: kept as text so a page with errors shows exactly what was entered.
#[derive(Debug, Clone, Default)]
pub struct AppForm {
    pub name: String,
    pub logo_url: String,
    pub launch_url: String,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub public: bool,
    pub grant_code: bool,
    pub grant_refresh: bool,
    pub grant_client_credentials: bool,
    pub grant_password: bool,
    pub id_token_alg: String,
    pub assignment_required: bool,
    pub backchannel_logout_uri: String,
    pub backchannel_logout_session_required: bool,
    pub third_party: bool,
    pub consent_for_everyone: bool,
    pub initiate_login_uri: String,
    pub visible_in_my_apps: bool,
    pub frontchannel_logout_uri: String,
    pub frontchannel_logout_session_required: bool,
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

impl AppForm {
    pub(super) fn blank() -> Self {
        Self { grant_code: true, grant_refresh: true, id_token_alg: "RS256".into(), visible_in_my_apps: true, ..Self::default() }
    }

    pub(super) fn from_params(p: &Params, public: Option<bool>) -> Self {
        let on = |k: &str| p.get(k).is_some();
        Self {
            name: p.get("name").unwrap_or("").to_string(),
            // Logos are uploaded (served by latchkey); an external logo URL is no longer set.
            logo_url: String::new(),
            launch_url: p.get("launch_url").unwrap_or("").to_string(),
            redirect_uris: p.get("redirect_uris").unwrap_or("").to_string(),
            post_logout_redirect_uris: p.get("post_logout_redirect_uris").unwrap_or("").to_string(),
            public: public.unwrap_or(p.get("app_type") == Some("public")),
            grant_code: on("grant_authorization_code"),
            grant_refresh: on("grant_refresh_token"),
            grant_client_credentials: on("grant_client_credentials"),
            grant_password: on("grant_password"),
            id_token_alg: p.get("id_token_alg").unwrap_or("RS256").to_string(),
            assignment_required: on("assignment_required"),
            backchannel_logout_uri: p.get("backchannel_logout_uri").unwrap_or("").to_string(),
            backchannel_logout_session_required: on("backchannel_logout_session_required"),
            third_party: on("third_party"),
            consent_for_everyone: on("consent_for_everyone"),
            initiate_login_uri: p.get("initiate_login_uri").unwrap_or("").to_string(),
            visible_in_my_apps: on("visible_in_my_apps"),
            frontchannel_logout_uri: p.get("frontchannel_logout_uri").unwrap_or("").to_string(),
            frontchannel_logout_session_required: on("frontchannel_logout_session_required"),
        }
    }

    pub(super) fn from_client(c: &Client) -> Self {
        Self {
            name: c.name.clone(),
            logo_url: c.logo_url.clone().unwrap_or_default(),
            launch_url: c.launch_url.clone().unwrap_or_default(),
            redirect_uris: c.redirect_uris.join("\n"),
            post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
            public: c.is_public,
            grant_code: c.allows_grant("authorization_code"),
            grant_refresh: c.allows_grant("refresh_token"),
            grant_client_credentials: c.allows_grant("client_credentials"),
            grant_password: c.allows_grant("password"),
            id_token_alg: c.id_token_alg.clone(),
            assignment_required: c.assignment_required,
            backchannel_logout_uri: c.backchannel_logout_uri.clone().unwrap_or_default(),
            backchannel_logout_session_required: c.backchannel_logout_session_required,
            third_party: c.third_party,
            consent_for_everyone: c.consent_for_everyone,
            initiate_login_uri: c.initiate_login_uri.clone().unwrap_or_default(),
            visible_in_my_apps: c.visible_in_my_apps,
            frontchannel_logout_uri: c.frontchannel_logout_uri.clone().unwrap_or_default(),
            frontchannel_logout_session_required: c.frontchannel_logout_session_required,
        }
    }

    /// Keeps `base` (the app as saved) except the fields of `section`, taken from `typed`:
    /// each section's form sends only its own fields.
    pub(super) fn merge(base: &Self, typed: Self, section: &str) -> Self {
        let mut f = base.clone();
        match section {
            "overview" => {
                f.name = typed.name;
                f.launch_url = typed.launch_url;
                f.initiate_login_uri = typed.initiate_login_uri;
                f.visible_in_my_apps = typed.visible_in_my_apps;
                f.third_party = typed.third_party;
                f.consent_for_everyone = typed.consent_for_everyone;
            }
            "authentication" => {
                f.redirect_uris = typed.redirect_uris;
                f.post_logout_redirect_uris = typed.post_logout_redirect_uris;
                f.grant_code = typed.grant_code;
                f.grant_refresh = typed.grant_refresh;
                f.grant_client_credentials = typed.grant_client_credentials;
                f.grant_password = typed.grant_password;
                f.backchannel_logout_uri = typed.backchannel_logout_uri;
                f.backchannel_logout_session_required = typed.backchannel_logout_session_required;
                f.frontchannel_logout_uri = typed.frontchannel_logout_uri;
                f.frontchannel_logout_session_required = typed.frontchannel_logout_session_required;
            }
            "assignments" => f.assignment_required = typed.assignment_required,
            "tokens" => f.id_token_alg = typed.id_token_alg,
            _ => return typed,
        }
        f
    }

    /// The settings these fields describe, or every field that is wrong with why.
    pub(super) fn validate(&self) -> Result<ClientSettings, Errors> {
        let mut errors = Errors::new();
        let redirects = lines(&self.redirect_uris);
        let post_logout = lines(&self.post_logout_redirect_uris);
        for (field, list) in [("redirect_uris", &redirects), ("post_logout_redirect_uris", &post_logout)] {
            if let Some(Err(e)) = list.iter().map(|u| check_redirect_uri(u, self.public)).find(Result::is_err) {
                errors.insert(field, e.to_string());
            }
        }
        let grants: Vec<String> = [
            (self.grant_code, "authorization_code"),
            (self.grant_refresh, "refresh_token"),
            (self.grant_client_credentials, "client_credentials"),
            (self.grant_password, "password"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, g)| g.to_string())
        .collect();
        if grants.is_empty() {
            errors.insert("grants", "Choose at least one grant.".into());
        }
        let mut settings = ClientSettings {
            name: self.name.clone(),
            redirect_uris: redirects,
            post_logout_redirect_uris: post_logout,
            grant_types: grants,
            is_public: self.public,
            logo_url: optional(&self.logo_url),
            launch_url: optional(&self.launch_url),
            id_token_alg: self.id_token_alg.clone(),
            assignment_required: self.assignment_required,
            backchannel_logout_uri: optional(&self.backchannel_logout_uri),
            backchannel_logout_session_required: self.backchannel_logout_session_required,
            third_party: self.third_party,
            consent_for_everyone: self.consent_for_everyone,
            initiate_login_uri: optional(&self.initiate_login_uri),
            visible_in_my_apps: self.visible_in_my_apps,
            frontchannel_logout_uri: optional(&self.frontchannel_logout_uri),
            frontchannel_logout_session_required: self.frontchannel_logout_session_required,
        };
        // `clients::check` stops at the first rule broken; to report every field at once, each
        // field found wrong is replaced by a harmless value and the rules run again.
        let mut probe = settings.clone();
        for _ in 0..12 {
            let Err(e) = clients::check(&mut probe.clone()) else { break };
            let field = match &e {
                RegistrationError::Name | RegistrationError::Conflict(_) => "name",
                RegistrationError::RedirectUri(..) => "redirect_uris",
                RegistrationError::GrantType(_) | RegistrationError::Combination(_) => "grants",
                RegistrationError::Algorithm(_) => "id_token_alg",
                RegistrationError::Url("logo URL", _) => "logo_url",
                RegistrationError::Url("login-initiation URI", _) => "initiate_login_uri",
                RegistrationError::Url("front-channel logout URI", _) => "frontchannel_logout_uri",
                RegistrationError::BackchannelLogoutUri(_) => "backchannel_logout_uri",
                RegistrationError::Url(..) => "launch_url",
            };
            errors.entry(field).or_insert_with(|| capitalise(&e.to_string()));
            const PLACEHOLDER: &str = "https://placeholder.invalid/cb";
            match e {
                RegistrationError::Name => probe.name = "placeholder".into(),
                RegistrationError::Conflict(_) => break,
                RegistrationError::RedirectUri(bad, _) => {
                    for u in probe.redirect_uris.iter_mut().chain(probe.post_logout_redirect_uris.iter_mut()).filter(|u| **u == bad) {
                        *u = PLACEHOLDER.into();
                    }
                }
                RegistrationError::GrantType(_) | RegistrationError::Combination(_) => {
                    probe.grant_types = vec!["authorization_code".into()];
                    probe.redirect_uris.push(PLACEHOLDER.into());
                }
                RegistrationError::Algorithm(_) => probe.id_token_alg = "RS256".into(),
                RegistrationError::Url("logo URL", _) => probe.logo_url = None,
                RegistrationError::Url("login-initiation URI", _) => probe.initiate_login_uri = None,
                RegistrationError::Url("front-channel logout URI", _) => probe.frontchannel_logout_uri = None,
                RegistrationError::BackchannelLogoutUri(_) => probe.backchannel_logout_uri = None,
                RegistrationError::Url(..) => probe.launch_url = None,
            }
        }
        if errors.is_empty()
            && let Err(e) = clients::check(&mut settings)
        {
            errors.insert("name", capitalise(&e.to_string()));
        }
        if errors.is_empty() { Ok(settings) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed() -> AppForm {
        AppForm { name: "Payroll".into(), redirect_uris: "https://payroll.example.com/cb".into(), ..AppForm::blank() }
    }

    #[test]
    fn every_wrong_field_is_reported_at_once() {
        assert!(typed().validate().is_ok());
        let form = AppForm {
            name: " ".into(),
            redirect_uris: "http://payroll.example.com/cb".into(),
            id_token_alg: "HS256".into(),
            initiate_login_uri: "not a url".into(),
            backchannel_logout_uri: "https://10.0.0.1/bc".into(),
            ..typed()
        };
        let errors = form.validate().unwrap_err();
        let fields: Vec<&str> = errors.keys().copied().collect();
        assert_eq!(fields, ["backchannel_logout_uri", "id_token_alg", "initiate_login_uri", "name", "redirect_uris"]);
    }

    #[test]
    fn a_section_changes_only_its_own_fields() {
        let saved = typed();
        let sent = AppForm { id_token_alg: "ES256".into(), redirect_uris: String::new(), ..AppForm::default() };
        let merged = AppForm::merge(&saved, sent.clone(), "tokens");
        assert_eq!((merged.id_token_alg.as_str(), merged.redirect_uris.as_str(), merged.grant_code), ("ES256", "https://payroll.example.com/cb", true));
        let whole = AppForm::merge(&saved, sent, "");
        assert!(whole.redirect_uris.is_empty(), "without a section the form is the whole app");
    }
}
