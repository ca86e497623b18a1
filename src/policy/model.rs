//! Conditional-access policies as data: what they target, when they apply, what they demand.
//! Stored as JSON in SQLite and exported/imported in the same form.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    On,
    Off,
    ReportOnly,
}

impl State {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "on" => Some(State::On),
            "off" => Some(State::Off),
            "report_only" => Some(State::ReportOnly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::On => "on",
            State::Off => "off",
            State::ReportOnly => "report_only",
        }
    }
}

/// Who a policy is for. Exclusions always beat inclusions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Principals {
    pub all: bool,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    /// Admin roles: "global_admin", "app_admin".
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Apps {
    pub all: bool,
    pub apps: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Locations {
    pub all: bool,
    pub all_trusted: bool,
    pub locations: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAppType {
    /// A person signing in through a browser (authorization endpoint).
    Browser,
    /// A refresh-token grant: no person present.
    Refresh,
    /// An app acting as itself.
    ClientCredentials,
    /// The OAuth password grant and other basic-auth style sign-ins.
    Legacy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    None,
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Risk::None),
            "low" => Some(Risk::Low),
            "medium" => Some(Risk::Medium),
            "high" => Some(Risk::High),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::None => "none",
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Windows,
    Macos,
    Linux,
    Ios,
    Android,
    Other,
}

impl Platform {
    /// The device platform a user agent names (iOS and Android first: they claim Mac and Linux).
    pub fn from_user_agent(ua: &str) -> Self {
        let ua = ua.to_ascii_lowercase();
        if ua.contains("iphone") || ua.contains("ipad") || ua.contains("ipod") {
            Platform::Ios
        } else if ua.contains("android") {
            Platform::Android
        } else if ua.contains("windows") {
            Platform::Windows
        } else if ua.contains("mac os x") || ua.contains("macintosh") {
            Platform::Macos
        } else if ua.contains("linux") || ua.contains("x11") || ua.contains("cros") {
            Platform::Linux
        } else {
            Platform::Other
        }
    }

    pub const ALL: [Platform; 6] = [Platform::Windows, Platform::Macos, Platform::Linux, Platform::Ios, Platform::Android, Platform::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Windows => "windows",
            Platform::Macos => "macos",
            Platform::Linux => "linux",
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Other => "other",
        }
    }
}

/// All optional; every one given must match for the policy to apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conditions {
    /// Empty: any client app type.
    pub client_app_types: Vec<ClientAppType>,
    /// Empty: any sign-in risk.
    pub sign_in_risk: Vec<Risk>,
    /// Empty: any user risk.
    pub user_risk: Vec<Risk>,
    /// None: any location.
    pub locations: Option<LocationCondition>,
    /// Empty include: any platform.
    pub platforms_include: Vec<Platform>,
    pub platforms_exclude: Vec<Platform>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocationCondition {
    pub include: Locations,
    pub exclude: Locations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    Mfa,
    PhishingResistantMfa,
    PasswordChange,
}

impl Control {
    pub fn label(self) -> &'static str {
        match self {
            Control::Mfa => "multi-factor authentication",
            Control::PhishingResistantMfa => "phishing-resistant MFA",
            Control::PasswordChange => "password change",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// Any one of the controls satisfies the policy.
    #[default]
    AnyOf,
    /// Every control must be satisfied.
    AllOf,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grant {
    pub block: bool,
    pub operator: Operator,
    pub controls: Vec<Control>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionControls {
    /// Sign in again when the last authentication is older than this.
    pub sign_in_frequency_hours: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub id: String,
    pub name: String,
    pub state: State,
    #[serde(default)]
    pub include_users: Principals,
    #[serde(default)]
    pub exclude_users: Principals,
    #[serde(default)]
    pub include_apps: Apps,
    #[serde(default)]
    pub exclude_apps: Apps,
    #[serde(default)]
    pub conditions: Conditions,
    #[serde(default)]
    pub grant: Grant,
    #[serde(default)]
    pub session: SessionControls,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PolicyError {
    #[error("the policy name must be 1 to 100 characters")]
    Name,
    #[error("a policy must include some users (or all users)")]
    NoUsers,
    #[error("a policy must include some applications (or all applications)")]
    NoApps,
    #[error("a policy must block, require something, or set a sign-in frequency")]
    NoEffect,
    #[error("a blocking policy cannot also require controls")]
    BlockAndControls,
    #[error("sign-in frequency must be between 1 and 8760 hours")]
    Frequency,
    #[error(
        "a password change can be required only of users at risk: add a user-risk condition without \"none\" (the change clears the risk, and with it the demand)"
    )]
    PasswordChangeWithoutUserRisk,
}

impl Policy {
    /// The rules every policy must meet, whoever writes it (form, import, template).
    pub fn check(&mut self) -> Result<(), PolicyError> {
        self.name = self.name.trim().to_string();
        if self.name.is_empty() || self.name.chars().count() > 100 {
            return Err(PolicyError::Name);
        }
        let u = &self.include_users;
        if !u.all && u.users.is_empty() && u.groups.is_empty() && u.roles.is_empty() {
            return Err(PolicyError::NoUsers);
        }
        if !self.include_apps.all && self.include_apps.apps.is_empty() {
            return Err(PolicyError::NoApps);
        }
        if self.grant.block && !self.grant.controls.is_empty() {
            return Err(PolicyError::BlockAndControls);
        }
        if let Some(h) = self.session.sign_in_frequency_hours
            && !(1..=8760).contains(&h)
        {
            return Err(PolicyError::Frequency);
        }
        if !self.grant.block && self.grant.controls.is_empty() && self.session.sign_in_frequency_hours.is_none() {
            return Err(PolicyError::NoEffect);
        }
        // As Entra: without user risk, a change would be demanded again after every change (a
        // change sets the risk to none, so a condition that includes none does not end either).
        let r = &self.conditions.user_risk;
        if self.grant.controls.contains(&Control::PasswordChange) && (r.is_empty() || r.contains(&Risk::None)) {
            return Err(PolicyError::PasswordChangeWithoutUserRisk);
        }
        self.grant.controls.sort();
        self.grant.controls.dedup();
        Ok(())
    }
}
