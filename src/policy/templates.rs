//! Built-in policies: security defaults, and templates for the common custom policies.

use super::model::*;

fn base(id: &str, name: &str) -> Policy {
    Policy {
        id: id.into(),
        name: name.into(),
        state: State::ReportOnly,
        include_users: Principals { all: true, ..Default::default() },
        exclude_users: Principals::default(),
        include_apps: Apps { all: true, apps: vec![] },
        exclude_apps: Apps::default(),
        conditions: Conditions::default(),
        grant: Grant::default(),
        session: SessionControls::default(),
    }
}

fn admins() -> Principals {
    Principals { roles: vec!["global_admin".into(), "app_admin".into()], ..Default::default() }
}

fn mfa() -> Grant {
    Grant { controls: vec![Control::Mfa], ..Default::default() }
}

/// What security defaults enforce through the evaluator: admins always use MFA; legacy
/// authentication is blocked. (Every user's MFA registration, with its 14-day grace, is
/// enforced by the sign-in gate, `gate::decide`.)
pub fn security_defaults() -> Vec<Policy> {
    let mut admins_mfa = base("security-defaults-admins", "Security defaults: administrators use MFA");
    admins_mfa.state = State::On;
    admins_mfa.include_users = admins();
    admins_mfa.conditions.client_app_types = vec![ClientAppType::Browser, ClientAppType::Refresh, ClientAppType::Legacy];
    admins_mfa.grant = mfa();
    let mut legacy = base("security-defaults-legacy", "Security defaults: block legacy authentication");
    legacy.state = State::On;
    legacy.conditions.client_app_types = vec![ClientAppType::Legacy];
    legacy.grant = Grant { block: true, ..Default::default() };
    vec![admins_mfa, legacy]
}

/// (key, description, policy) for each template; created report-only so it can be watched
/// before it is switched on.
pub fn all() -> Vec<(&'static str, &'static str, Policy)> {
    let mut admins_mfa = base("", "Require MFA for administrators");
    admins_mfa.include_users = admins();
    admins_mfa.grant = mfa();

    let mut all_mfa = base("", "Require MFA for all users");
    all_mfa.grant = mfa();

    let mut legacy = base("", "Block legacy authentication");
    legacy.conditions.client_app_types = vec![ClientAppType::Legacy];
    legacy.grant = Grant { block: true, ..Default::default() };

    let mut risky_signins = base("", "Require MFA for medium and high sign-in risk");
    risky_signins.conditions.sign_in_risk = vec![Risk::Medium, Risk::High];
    risky_signins.grant = mfa();

    let mut risky_users = base("", "Require password change for high user risk");
    risky_users.conditions.user_risk = vec![Risk::High];
    risky_users.grant = Grant { operator: Operator::AllOf, controls: vec![Control::Mfa, Control::PasswordChange], ..Default::default() };

    let mut phr_admins = base("", "Require phishing-resistant MFA for administrators");
    phr_admins.include_users = admins();
    phr_admins.grant = Grant { controls: vec![Control::PhishingResistantMfa], ..Default::default() };

    let mut console_trusted = base("", "Block the admin console outside trusted locations");
    console_trusted.include_apps = Apps { all: false, apps: vec![crate::gate::CONSOLE.into()] };
    console_trusted.conditions.locations =
        Some(LocationCondition { include: Locations { all: true, ..Default::default() }, exclude: Locations { all_trusted: true, ..Default::default() } });
    console_trusted.grant = Grant { block: true, ..Default::default() };

    vec![
        ("admins-mfa", "Administrators always use a second factor.", admins_mfa),
        ("all-mfa", "Everyone uses a second factor for every app.", all_mfa),
        ("block-legacy", "The password grant and other basic-auth sign-ins are refused.", legacy),
        ("risky-signins-mfa", "Sign-ins from medium or high risk need a second factor.", risky_signins),
        ("risky-users-password", "Users at high risk must use MFA and change their password.", risky_users),
        ("admins-phishing-resistant", "Administrators must use a security key or passkey.", phr_admins),
        (
            "console-trusted-locations",
            "The admin console opens only from named locations marked trusted (break-glass accounts can be excluded).",
            console_trusted,
        ),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_and_default_is_a_valid_policy() {
        for (_, _, mut p) in super::all() {
            p.check().unwrap_or_else(|e| panic!("{}: {e}", p.name));
        }
        for mut p in super::security_defaults() {
            p.check().unwrap();
        }
    }
}
