//! The gate's decision table: each way in × policy result × risk × acr asked × forced change ×
//! lockout.

use super::*;
use crate::policy::evaluate::Needs;

fn amr(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

fn person() -> Person {
    Person { assigned: true, familiar: true, ..Person::default() }
}

fn facts(way: Way, p: Person) -> Facts {
    Facts {
        way,
        target: Target::App("app".into()),
        person: Some(p),
        amr: amr(&["pwd"]),
        acr_asked: Level::Password,
        sign_in_risk: Risk::None,
        user_risk: Risk::None,
        policy: Decision::Allow,
        registration: Registration::NotRequired,
        registration_skipped: false,
        password_changed: false,
        session_in_use: false,
        factor_fresh: false,
        consent_needed: false,
    }
}

fn require(level: Option<Level>, password_change: bool, reauthenticate: bool) -> Decision {
    Decision::Require { needs: Needs { level, password_change, reauthenticate }, policies: vec!["p".into()] }
}

const TOTP: MethodSet = MethodSet { totp: true, keys: false };
const KEY: MethodSet = MethodSet { totp: false, keys: true };
const WAYS: [Way; 3] = [Way::Interactive, Way::Refresh, Way::PasswordGrant];

#[test]
fn a_plain_password_sign_in_with_nothing_in_force_is_issued() {
    for way in WAYS {
        assert_eq!(decide(&facts(way, person())), Outcome::Issue, "{way:?}");
    }
}

#[test]
fn disabled_locked_blocked_and_unassigned_are_refused_on_every_way_in_that_order() {
    for way in WAYS {
        let mut f = facts(way, Person { disabled: true, locked: true, assigned: false, ..person() });
        f.policy = Decision::Block { policy: "b".into() };
        assert_eq!(decide(&f), Outcome::Refuse(Refusal::Disabled));
        f.person.as_mut().unwrap().disabled = false;
        assert_eq!(decide(&f), Outcome::Refuse(Refusal::Locked));
        f.person.as_mut().unwrap().locked = false;
        assert_eq!(decide(&f), Outcome::Refuse(Refusal::Blocked { policy: "b".into() }));
        f.policy = Decision::Allow;
        assert_eq!(decide(&f), Outcome::Refuse(Refusal::NotAssigned));
    }
}

#[test]
fn a_block_applies_to_the_portal_and_console_too() {
    for target in [Target::Portal, Target::Console] {
        let mut f = facts(Way::Interactive, person());
        f.target = target;
        f.amr = amr(&["pwd", "otp", "mfa"]);
        f.policy = Decision::Block { policy: "b".into() };
        assert_eq!(decide(&f), Outcome::Refuse(Refusal::Blocked { policy: "b".into() }));
    }
}

#[test]
fn an_unassigned_user_is_refused_before_being_asked_to_register() {
    let mut f = facts(Way::Interactive, Person { assigned: false, ..person() });
    f.registration = Registration::Required;
    f.policy = require(Some(Level::Mfa), false, false);
    assert_eq!(decide(&f), Outcome::Refuse(Refusal::NotAssigned));
}

#[test]
fn the_level_needed_is_the_highest_of_acr_policy_methods_and_role() {
    // The app's acr.
    let mut f = facts(Way::Interactive, Person { methods: KEY, ..person() });
    f.acr_asked = Level::PhishingResistant;
    assert_eq!(decide(&f), Outcome::StepUp(Level::PhishingResistant));
    // Policy.
    let mut f = facts(Way::Interactive, Person { methods: TOTP, ..person() });
    f.policy = require(Some(Level::Mfa), false, false);
    assert_eq!(decide(&f), Outcome::StepUp(Level::Mfa));
    // A registered method is always used.
    assert_eq!(decide(&facts(Way::Interactive, Person { methods: TOTP, ..person() })), Outcome::StepUp(Level::Mfa));
    // Admins and flagged users.
    let f = facts(Way::Interactive, Person { mfa_required: true, first_sign_in: true, ..person() });
    assert_eq!(decide(&f), Outcome::Register { keys_only: false, skippable_days: None });
    // The console, for anyone.
    let mut f = facts(Way::Interactive, Person { methods: TOTP, ..person() });
    f.target = Target::Console;
    f.amr = amr(&["pwd"]);
    assert_eq!(decide(&f), Outcome::StepUp(Level::Mfa));
    // Met.
    let mut f = facts(Way::Interactive, Person { methods: TOTP, ..person() });
    f.amr = amr(&["pwd", "otp", "mfa"]);
    f.acr_asked = Level::Mfa;
    assert_eq!(decide(&f), Outcome::Issue);
}

#[test]
fn phishing_resistant_for_an_authenticator_app_user_verifies_the_code_then_registers_a_key() {
    let mut f = facts(Way::Interactive, Person { methods: TOTP, ..person() });
    f.acr_asked = Level::PhishingResistant;
    assert_eq!(decide(&f), Outcome::StepUp(Level::Mfa));
    f.amr = amr(&["pwd", "otp", "mfa"]);
    // A session's code from an older sign-in (a copied cookie carries it too) is not enough
    // to add a key: the code again, now.
    assert_eq!(decide(&f), Outcome::StepUp(Level::Mfa));
    f.factor_fresh = true;
    assert_eq!(decide(&f), Outcome::Register { keys_only: true, skippable_days: None });
    // Even from an unfamiliar network at medium risk: the existing factor was proven.
    f.person.as_mut().unwrap().familiar = false;
    f.sign_in_risk = Risk::Medium;
    assert_eq!(decide(&f), Outcome::Register { keys_only: true, skippable_days: None });
    // But not with an inherited one.
    f.factor_fresh = false;
    assert_eq!(decide(&f), Outcome::StepUp(Level::Mfa));
}

#[test]
fn registration_at_sign_in_needs_low_risk_and_a_familiar_context_or_a_first_sign_in() {
    let mut f = facts(Way::Interactive, person());
    f.policy = require(Some(Level::Mfa), false, false);
    assert_eq!(decide(&f), Outcome::Register { keys_only: false, skippable_days: None });
    for risk in [Risk::Medium, Risk::High] {
        let mut g = f.clone();
        g.sign_in_risk = risk;
        assert_eq!(decide(&g), Outcome::Refuse(Refusal::RegistrationNotAllowed), "sign-in risk {risk:?}");
        let mut g = f.clone();
        g.user_risk = risk;
        assert_eq!(decide(&g), Outcome::Refuse(Refusal::RegistrationNotAllowed), "user risk {risk:?}");
    }
    let mut g = f.clone();
    g.person.as_mut().unwrap().familiar = false;
    assert_eq!(decide(&g), Outcome::Refuse(Refusal::RegistrationNotAllowed));
    g.person.as_mut().unwrap().first_sign_in = true;
    assert_eq!(decide(&g), Outcome::Register { keys_only: false, skippable_days: None });
    let mut g = f.clone();
    g.sign_in_risk = Risk::Low;
    assert!(matches!(decide(&g), Outcome::Register { .. }));
}

#[test]
fn security_defaults_registration_is_skippable_in_the_grace_period_then_required() {
    let mut f = facts(Way::Interactive, person());
    f.registration = Registration::Grace { days_left: 3 };
    assert_eq!(decide(&f), Outcome::Register { keys_only: false, skippable_days: Some(3) });
    f.registration_skipped = true;
    assert_eq!(decide(&f), Outcome::Issue);
    f.registration = Registration::Required;
    assert_eq!(decide(&f), Outcome::Register { keys_only: false, skippable_days: None });
    // Optional registration is not offered from an unfamiliar place; the sign-in goes on.
    let mut g = facts(Way::Interactive, Person { familiar: false, ..person() });
    g.registration = Registration::Grace { days_left: 3 };
    assert_eq!(decide(&g), Outcome::Issue);
}

#[test]
fn a_forced_password_change_comes_first_unless_the_account_is_at_risk() {
    let p = Person { must_change_password: true, mfa_required: true, first_sign_in: true, ..person() };
    let mut f = facts(Way::Interactive, p);
    assert_eq!(decide(&f), Outcome::ChangePassword);
    f.password_changed = true;
    assert_eq!(decide(&f), Outcome::Register { keys_only: false, skippable_days: None });
    f.amr = amr(&["pwd", "otp", "mfa"]);
    assert_eq!(decide(&f), Outcome::Issue);
    // At risk, with a method: the second factor first, then the change.
    let mut f = facts(Way::Interactive, Person { must_change_password: true, methods: TOTP, ..person() });
    f.user_risk = Risk::High;
    assert_eq!(decide(&f), Outcome::StepUp(Level::Mfa));
    f.amr = amr(&["pwd", "otp", "mfa"]);
    assert_eq!(decide(&f), Outcome::ChangePassword);
    // At risk with nothing registered: no way to remediate with a password alone.
    let mut f = facts(Way::Interactive, Person { must_change_password: true, ..person() });
    f.user_risk = Risk::High;
    f.policy = require(Some(Level::Mfa), true, false);
    assert_eq!(decide(&f), Outcome::Refuse(Refusal::RegistrationNotAllowed));
}

#[test]
fn an_admins_forced_change_of_someone_with_a_second_factor_asks_for_it_first() {
    // The admin suspects the password leaked: whoever holds it must not choose the next one.
    let mut f = facts(Way::Interactive, Person { must_change_password: true, methods: TOTP, ..person() });
    assert_eq!(decide(&f), Outcome::StepUp(Level::Mfa));
    // Even within a session that did not need the second factor.
    f.session_in_use = true;
    assert_eq!(decide(&f), Outcome::StepUp(Level::Mfa));
    f.amr = amr(&["pwd", "otp", "mfa"]);
    assert_eq!(decide(&f), Outcome::ChangePassword);
    f.password_changed = true;
    assert_eq!(decide(&f), Outcome::Issue);
    // A policy's password change (high user risk) for someone with nothing registered: no
    // remediation with the password alone, and nothing to register from a risky sign-in.
    let mut f = facts(Way::Interactive, person());
    f.user_risk = Risk::High;
    f.policy = require(None, true, false);
    assert_eq!(decide(&f), Outcome::Refuse(Refusal::RegistrationNotAllowed));
}

#[test]
fn a_policy_password_change_comes_after_the_second_factor() {
    let mut f = facts(Way::Interactive, Person { methods: TOTP, ..person() });
    f.user_risk = Risk::High;
    f.policy = require(Some(Level::Mfa), true, false);
    assert_eq!(decide(&f), Outcome::StepUp(Level::Mfa));
    f.amr = amr(&["pwd", "otp", "mfa"]);
    assert_eq!(decide(&f), Outcome::ChangePassword);
    f.password_changed = true;
    assert_eq!(decide(&f), Outcome::Issue);
}

#[test]
fn a_session_from_before_a_method_was_registered_keeps_working_but_not_for_the_console() {
    let mut f = facts(Way::Interactive, Person { methods: TOTP, ..person() });
    f.session_in_use = true;
    assert_eq!(decide(&f), Outcome::Issue);
    f.target = Target::Console;
    assert_eq!(decide(&f), Outcome::StepUp(Level::Mfa));
    let mut f = facts(Way::Interactive, Person { methods: TOTP, mfa_required: true, ..person() });
    f.session_in_use = true;
    assert_eq!(decide(&f), Outcome::StepUp(Level::Mfa));
}

#[test]
fn sign_in_frequency_sends_a_person_back_to_the_start() {
    let mut f = facts(Way::Interactive, person());
    f.policy = require(None, false, true);
    assert_eq!(decide(&f), Outcome::Reauthenticate);
}

#[test]
fn without_a_person_anything_short_of_issue_is_a_refusal() {
    for way in [Way::Refresh, Way::PasswordGrant] {
        for policy in [require(Some(Level::Mfa), false, false), require(None, true, false), require(None, false, true)] {
            let mut f = facts(way, person());
            f.policy = policy;
            assert!(matches!(decide(&f), Outcome::Refuse(Refusal::NeedsInteraction(_))), "{way:?}");
        }
        let f = facts(way, Person { must_change_password: true, ..person() });
        assert!(matches!(decide(&f), Outcome::Refuse(Refusal::NeedsInteraction(_))));
    }
}

#[test]
fn the_password_grant_refuses_users_who_have_or_must_use_a_second_factor() {
    for p in [Person { methods: TOTP, ..person() }, Person { methods: KEY, ..person() }, Person { mfa_required: true, ..person() }] {
        assert!(matches!(decide(&facts(Way::PasswordGrant, p)), Outcome::Refuse(Refusal::NeedsInteraction(_))));
    }
    // A refresh of a grant that used MFA is fine for a user with methods.
    let mut f = facts(Way::Refresh, Person { methods: TOTP, ..person() });
    f.amr = amr(&["pwd", "otp", "mfa"]);
    assert_eq!(decide(&f), Outcome::Issue);
}

#[test]
fn client_credentials_follow_policy_alone() {
    let mut f = facts(Way::ClientCredentials, person());
    f.person = None;
    assert_eq!(decide(&f), Outcome::Issue);
    f.policy = Decision::Block { policy: "b".into() };
    assert_eq!(decide(&f), Outcome::Refuse(Refusal::Blocked { policy: "b".into() }));
    f.policy = require(Some(Level::Mfa), false, false);
    assert!(matches!(decide(&f), Outcome::Refuse(Refusal::NeedsInteraction(_))));
}

#[test]
fn consent_is_asked_last_and_never_of_an_app_acting_without_a_person() {
    let mut f = facts(Way::Interactive, Person { methods: TOTP, ..person() });
    f.consent_needed = true;
    assert_eq!(decide(&f), Outcome::StepUp(Level::Mfa), "factors first");
    f.amr = amr(&["pwd", "otp", "mfa"]);
    assert_eq!(decide(&f), Outcome::Consent);
    f.policy = Decision::Block { policy: "b".into() };
    assert!(matches!(decide(&f), Outcome::Refuse(_)), "a block wins");
    let mut f = facts(Way::Refresh, person());
    f.consent_needed = true;
    assert_eq!(decide(&f), Outcome::Issue);
}
