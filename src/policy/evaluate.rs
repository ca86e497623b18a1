//! The conditional-access evaluator: one pure function from (policies, sign-in context) to a
//! decision plus, for every policy, whether it applied and why (or what report-only would
//! have done). Combined like Entra: any applicable block wins; otherwise every applicable
//! policy's grant must be satisfied. Everything that runs a policy — sign-in, refresh, client
//! credentials, the password grant, What If, impact preview — calls this, nothing else.

use super::model::{ClientAppType, Control, Operator, Platform, Policy, Principals, Risk, State};
use crate::gate::Level;
use serde::{Deserialize, Serialize};

/// Everything known about one sign-in attempt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Context {
    /// None for an app acting as itself (client credentials).
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub app: String,
    pub client_app_type: ClientAppType,
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Named locations the IP falls in, and whether any of them is trusted.
    pub locations: Vec<String>,
    pub trusted_location: bool,
    pub platform: Platform,
    pub sign_in_risk: Risk,
    /// Why the sign-in risk is what it is (identity protection's detections).
    #[serde(default)]
    pub risk_reasons: Vec<String>,
    pub user_risk: Risk,
    /// Methods proven so far (RFC 8176).
    pub amr: Vec<String>,
    /// Seconds since the person last authenticated, when a person did.
    pub auth_age_secs: Option<i64>,
    /// The password was changed in this sign-in.
    #[serde(default)]
    pub password_changed: bool,
}

/// What an applied policy does to this sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    Block,
    Satisfied,
    /// Its grant is not yet met: one of (any_of) or all of (all_of) these controls.
    Requires {
        operator: Operator,
        controls: Vec<Control>,
    },
    /// Sign-in frequency: the last authentication is too old.
    Reauthenticate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyResult {
    pub policy_id: String,
    pub name: String,
    pub state: State,
    pub applied: bool,
    /// Why not applied, or a summary of what applying it means.
    pub reason: String,
    pub effect: Option<Effect>,
}

impl PolicyResult {
    pub fn blocks(&self) -> bool {
        self.applied && self.effect == Some(Effect::Block)
    }

    pub fn challenges(&self) -> bool {
        self.applied && matches!(self.effect, Some(Effect::Requires { .. } | Effect::Reauthenticate))
    }
}

/// What latchkey must do before this sign-in may get tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Needs {
    pub level: Option<Level>,
    pub password_change: bool,
    pub reauthenticate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    Allow,
    Block { policy: String },
    Require { needs: Needs, policies: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub decision: Decision,
    pub results: Vec<PolicyResult>,
}

fn matches_principals(p: &Principals, ctx: &Context, user: &str) -> bool {
    p.all || p.users.iter().any(|u| u == user) || p.groups.iter().any(|g| ctx.groups.contains(g)) || p.roles.iter().any(|r| ctx.roles.contains(r))
}

/// Whether `policy`'s assignments and conditions cover `ctx`; Err says why not.
fn applies(policy: &Policy, ctx: &Context) -> Result<(), String> {
    let c = &policy.conditions;
    match &ctx.user_id {
        Some(user) => {
            if matches_principals(&policy.exclude_users, ctx, user) {
                return Err("user is excluded".into());
            }
            if !matches_principals(&policy.include_users, ctx, user) {
                return Err("user is not included".into());
            }
        }
        // An app acting as itself has no user: only policies that name the client
        // credentials flow explicitly apply to it.
        None => {
            if !c.client_app_types.contains(&ClientAppType::ClientCredentials) {
                return Err("no user; the policy does not target client credentials".into());
            }
        }
    }
    if policy.exclude_apps.all || policy.exclude_apps.apps.contains(&ctx.app) {
        return Err("application is excluded".into());
    }
    if !policy.include_apps.all && !policy.include_apps.apps.contains(&ctx.app) {
        return Err("application is not included".into());
    }
    if !c.client_app_types.is_empty() && !c.client_app_types.contains(&ctx.client_app_type) {
        return Err(format!("client app type {:?} is not targeted", ctx.client_app_type).to_lowercase());
    }
    if !c.sign_in_risk.is_empty() && !c.sign_in_risk.contains(&ctx.sign_in_risk) {
        return Err(format!("sign-in risk {} is not targeted", ctx.sign_in_risk.as_str()));
    }
    if !c.user_risk.is_empty() && !c.user_risk.contains(&ctx.user_risk) {
        return Err(format!("user risk {} is not targeted", ctx.user_risk.as_str()));
    }
    if let Some(l) = &c.locations {
        let hit = |loc: &super::model::Locations| (loc.all_trusted && ctx.trusted_location) || loc.locations.iter().any(|id| ctx.locations.contains(id));
        if l.exclude.all || hit(&l.exclude) {
            return Err("location is excluded".into());
        }
        if !l.include.all && !hit(&l.include) {
            return Err("location is not included".into());
        }
    }
    if !c.platforms_include.is_empty() && !c.platforms_include.contains(&ctx.platform) {
        return Err(format!("platform {} is not targeted", ctx.platform.as_str()));
    }
    if c.platforms_exclude.contains(&ctx.platform) {
        return Err(format!("platform {} is excluded", ctx.platform.as_str()));
    }
    Ok(())
}

fn satisfied(control: Control, ctx: &Context) -> bool {
    match control {
        Control::Mfa => Level::of(&ctx.amr) >= Level::Mfa,
        Control::PhishingResistantMfa => Level::of(&ctx.amr) >= Level::PhishingResistant,
        Control::PasswordChange => ctx.password_changed,
    }
}

fn effect(policy: &Policy, ctx: &Context) -> Effect {
    if policy.grant.block {
        return Effect::Block;
    }
    if let (Some(h), Some(age)) = (policy.session.sign_in_frequency_hours, ctx.auth_age_secs)
        && age > i64::from(h) * 3600
    {
        return Effect::Reauthenticate;
    }
    let controls = &policy.grant.controls;
    let met = match policy.grant.operator {
        Operator::AnyOf => controls.is_empty() || controls.iter().any(|c| satisfied(*c, ctx)),
        Operator::AllOf => controls.iter().all(|c| satisfied(*c, ctx)),
    };
    if met {
        Effect::Satisfied
    } else {
        let missing = controls.iter().copied().filter(|c| !satisfied(*c, ctx)).collect();
        Effect::Requires { operator: policy.grant.operator, controls: missing }
    }
}

fn describe(e: &Effect) -> String {
    match e {
        Effect::Block => "blocks access".into(),
        Effect::Satisfied => "grant controls satisfied".into(),
        Effect::Reauthenticate => "sign-in frequency exceeded: sign in again".into(),
        Effect::Requires { operator, controls } => {
            let names: Vec<&str> = controls.iter().map(|c| c.label()).collect();
            let joiner = if *operator == Operator::AnyOf { " or " } else { " and " };
            format!("requires {}", names.join(joiner))
        }
    }
}

/// The cheapest way to satisfy one unmet grant: MFA before phishing-resistant MFA before a
/// password change, unless all are demanded.
fn add_needs(needs: &mut Needs, operator: Operator, controls: &[Control]) {
    let pick: Vec<Control> = match operator {
        Operator::AllOf => controls.to_vec(),
        Operator::AnyOf => controls.iter().min().copied().into_iter().collect(),
    };
    for c in pick {
        match c {
            Control::Mfa => needs.level = needs.level.max(Some(Level::Mfa)),
            Control::PhishingResistantMfa => needs.level = Some(Level::PhishingResistant),
            Control::PasswordChange => needs.password_change = true,
        }
    }
}

/// Evaluates every policy against `ctx`. Off policies are listed as not applied; report-only
/// policies are evaluated and recorded but never change the decision.
pub fn evaluate(policies: &[Policy], ctx: &Context) -> Evaluation {
    let mut results = Vec::with_capacity(policies.len());
    let mut block: Option<String> = None;
    let mut needs = Needs::default();
    let mut requiring = vec![];
    for p in policies {
        let base = |applied, reason, effect| PolicyResult { policy_id: p.id.clone(), name: p.name.clone(), state: p.state, applied, reason, effect };
        if p.state == State::Off {
            results.push(base(false, "policy is off".into(), None));
            continue;
        }
        match applies(p, ctx) {
            Err(reason) => results.push(base(false, reason, None)),
            Ok(()) => {
                let e = effect(p, ctx);
                if p.state == State::On {
                    match &e {
                        Effect::Block => {
                            block.get_or_insert_with(|| p.name.clone());
                        }
                        Effect::Reauthenticate => {
                            needs.reauthenticate = true;
                            requiring.push(p.name.clone());
                        }
                        Effect::Requires { operator, controls } => {
                            add_needs(&mut needs, *operator, controls);
                            requiring.push(p.name.clone());
                        }
                        Effect::Satisfied => {}
                    }
                }
                let reason = if p.state == State::ReportOnly { format!("report-only: would have {}", describe(&e)) } else { describe(&e) };
                results.push(base(true, reason, Some(e)));
            }
        }
    }
    let decision = match block {
        Some(policy) => Decision::Block { policy },
        None if requiring.is_empty() => Decision::Allow,
        None => Decision::Require { needs, policies: requiring },
    };
    Evaluation { decision, results }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::*;

    fn ctx() -> Context {
        Context {
            user_id: Some("alice".into()),
            username: Some("alice".into()),
            groups: vec!["g-staff".into()],
            roles: vec![],
            app: "wiki".into(),
            client_app_type: ClientAppType::Browser,
            ip: Some("203.0.113.5".into()),
            user_agent: None,
            locations: vec![],
            trusted_location: false,
            platform: Platform::Windows,
            sign_in_risk: Risk::None,
            risk_reasons: vec![],
            user_risk: Risk::None,
            amr: vec!["pwd".into()],
            auth_age_secs: Some(0),
            password_changed: false,
        }
    }

    fn policy(name: &str, grant: Grant) -> Policy {
        Policy {
            id: name.into(),
            name: name.into(),
            state: State::On,
            include_users: Principals { all: true, ..Default::default() },
            exclude_users: Principals::default(),
            include_apps: Apps { all: true, apps: vec![] },
            exclude_apps: Apps::default(),
            conditions: Conditions::default(),
            grant,
            session: SessionControls::default(),
        }
    }

    fn mfa() -> Grant {
        Grant { controls: vec![Control::Mfa], ..Default::default() }
    }

    fn block() -> Grant {
        Grant { block: true, ..Default::default() }
    }

    #[test]
    fn no_policies_allow() {
        assert_eq!(evaluate(&[], &ctx()).decision, Decision::Allow);
    }

    #[test]
    fn an_unmet_mfa_grant_requires_mfa_and_a_met_one_allows() {
        let p = [policy("mfa", mfa())];
        let e = evaluate(&p, &ctx());
        assert_eq!(e.decision, Decision::Require { needs: Needs { level: Some(Level::Mfa), ..Default::default() }, policies: vec!["mfa".into()] });
        let mut c = ctx();
        c.amr = vec!["pwd".into(), "otp".into(), "mfa".into()];
        assert_eq!(evaluate(&p, &c).decision, Decision::Allow);
    }

    #[test]
    fn any_applicable_block_wins_over_everything() {
        let p = [policy("mfa", mfa()), policy("block", block())];
        let mut c = ctx();
        c.amr = vec!["pwd".into(), "hwk".into(), "user".into(), "mfa".into()];
        assert_eq!(evaluate(&p, &c).decision, Decision::Block { policy: "block".into() });
    }

    #[test]
    fn exclusions_beat_inclusions_for_users_groups_roles_and_apps() {
        let mut by_user = policy("u", block());
        by_user.exclude_users.users = vec!["alice".into()];
        let mut by_group = policy("g", block());
        by_group.exclude_users.groups = vec!["g-staff".into()];
        let mut by_role = policy("r", block());
        by_role.exclude_users.roles = vec!["global_admin".into()];
        let mut by_app = policy("a", block());
        by_app.exclude_apps.apps = vec!["wiki".into()];
        let mut c = ctx();
        c.roles = vec!["global_admin".into()];
        let e = evaluate(&[by_user, by_group, by_role, by_app], &c);
        assert_eq!(e.decision, Decision::Allow);
        let reasons: Vec<&str> = e.results.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons, ["user is excluded", "user is excluded", "user is excluded", "application is excluded"]);
    }

    #[test]
    fn inclusion_by_user_group_or_role_and_by_app() {
        let mut p = policy("p", block());
        p.include_users = Principals { roles: vec!["global_admin".into()], ..Default::default() };
        assert_eq!(evaluate(std::slice::from_ref(&p), &ctx()).decision, Decision::Allow, "not an admin");
        let mut admin = ctx();
        admin.roles = vec!["global_admin".into()];
        assert!(matches!(evaluate(std::slice::from_ref(&p), &admin).decision, Decision::Block { .. }));
        p.include_users = Principals { groups: vec!["g-staff".into()], ..Default::default() };
        p.include_apps = Apps { all: false, apps: vec!["payroll".into()] };
        let e = evaluate(&[p], &ctx());
        assert_eq!(e.results[0].reason, "application is not included");
    }

    #[test]
    fn report_only_is_recorded_but_never_changes_the_outcome() {
        let mut p = policy("would block", block());
        p.state = State::ReportOnly;
        let e = evaluate(&[p], &ctx());
        assert_eq!(e.decision, Decision::Allow);
        assert!(e.results[0].applied && e.results[0].blocks());
        assert_eq!(e.results[0].reason, "report-only: would have blocks access");
        let mut off = policy("off", block());
        off.state = State::Off;
        let e = evaluate(&[off], &ctx());
        assert_eq!((e.decision, e.results[0].applied), (Decision::Allow, false));
    }

    #[test]
    fn conditions_must_all_match() {
        let mut p = policy("legacy", block());
        p.conditions.client_app_types = vec![ClientAppType::Legacy];
        assert_eq!(evaluate(std::slice::from_ref(&p), &ctx()).decision, Decision::Allow);
        let mut c = ctx();
        c.client_app_type = ClientAppType::Legacy;
        assert!(matches!(evaluate(std::slice::from_ref(&p), &c).decision, Decision::Block { .. }));
        p.conditions.platforms_include = vec![Platform::Android];
        assert_eq!(evaluate(std::slice::from_ref(&p), &c).decision, Decision::Allow, "legacy on Windows, not Android");

        let mut risky = policy("risk", mfa());
        risky.conditions.sign_in_risk = vec![Risk::Medium, Risk::High];
        assert_eq!(evaluate(std::slice::from_ref(&risky), &ctx()).decision, Decision::Allow);
        let mut c = ctx();
        c.sign_in_risk = Risk::High;
        assert!(matches!(evaluate(&[risky], &c).decision, Decision::Require { .. }));

        let mut user_risk = policy("user risk", Grant { controls: vec![Control::PasswordChange], ..Default::default() });
        user_risk.conditions.user_risk = vec![Risk::High];
        let mut c = ctx();
        c.user_risk = Risk::High;
        let e = evaluate(std::slice::from_ref(&user_risk), &c);
        assert_eq!(e.decision, Decision::Require { needs: Needs { password_change: true, ..Default::default() }, policies: vec!["user risk".into()] });
        c.password_changed = true;
        assert_eq!(evaluate(&[user_risk], &c).decision, Decision::Allow);
    }

    #[test]
    fn trusted_and_named_locations() {
        let mut p = policy("outside", mfa());
        p.conditions.locations =
            Some(LocationCondition { include: Locations { all: true, ..Default::default() }, exclude: Locations { all_trusted: true, ..Default::default() } });
        let mut office = ctx();
        office.locations = vec!["hq".into()];
        office.trusted_location = true;
        assert_eq!(evaluate(std::slice::from_ref(&p), &office).decision, Decision::Allow);
        assert!(matches!(evaluate(std::slice::from_ref(&p), &ctx()).decision, Decision::Require { .. }));
        p.conditions.locations =
            Some(LocationCondition { include: Locations { locations: vec!["hq".into()], ..Default::default() }, exclude: Locations::default() });
        assert!(matches!(evaluate(std::slice::from_ref(&p), &office).decision, Decision::Require { .. }));
        assert_eq!(evaluate(&[p], &ctx()).decision, Decision::Allow);
    }

    #[test]
    fn grants_combine_as_a_union_and_any_of_takes_the_cheapest_control() {
        let phr = policy("phr", Grant { controls: vec![Control::PhishingResistantMfa], ..Default::default() });
        let either = policy("either", Grant { controls: vec![Control::Mfa, Control::PasswordChange], ..Default::default() });
        let both = policy("both", Grant { operator: Operator::AllOf, controls: vec![Control::Mfa, Control::PasswordChange], ..Default::default() });
        let e = evaluate(&[phr.clone(), either.clone()], &ctx());
        assert_eq!(
            e.decision,
            Decision::Require { needs: Needs { level: Some(Level::PhishingResistant), ..Default::default() }, policies: vec!["phr".into(), "either".into()] }
        );
        let e = evaluate(&[both], &ctx());
        assert_eq!(
            e.decision,
            Decision::Require { needs: Needs { level: Some(Level::Mfa), password_change: true, ..Default::default() }, policies: vec!["both".into()] }
        );
        let mut c = ctx();
        c.amr = vec!["pwd".into(), "otp".into(), "mfa".into()];
        assert!(matches!(evaluate(&[phr], &c).decision, Decision::Require { .. }), "an authenticator code is not phishing-resistant");
        assert_eq!(evaluate(&[either], &c).decision, Decision::Allow);
    }

    #[test]
    fn sign_in_frequency_asks_for_a_fresh_sign_in() {
        let mut p = policy("8h", Grant::default());
        p.session.sign_in_frequency_hours = Some(8);
        let mut c = ctx();
        c.auth_age_secs = Some(8 * 3600);
        assert_eq!(evaluate(std::slice::from_ref(&p), &c).decision, Decision::Allow);
        c.auth_age_secs = Some(8 * 3600 + 1);
        assert_eq!(evaluate(&[p], &c).decision, Decision::Require { needs: Needs { reauthenticate: true, ..Default::default() }, policies: vec!["8h".into()] });
    }

    #[test]
    fn client_credentials_meet_only_policies_that_name_them() {
        let mut c = ctx();
        c.user_id = None;
        c.client_app_type = ClientAppType::ClientCredentials;
        c.amr = vec![];
        assert_eq!(evaluate(&[policy("all users", block())], &c).decision, Decision::Allow);
        let mut p = policy("workloads", block());
        p.conditions.client_app_types = vec![ClientAppType::ClientCredentials];
        assert!(matches!(evaluate(&[p], &c).decision, Decision::Block { .. }));
    }

    #[test]
    fn platforms_come_from_the_user_agent() {
        let cases = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36", Platform::Windows),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15", Platform::Macos),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)", Platform::Ios),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8)", Platform::Android),
            ("Mozilla/5.0 (X11; Linux x86_64)", Platform::Linux),
            ("curl/8.5.0", Platform::Other),
        ];
        for (ua, p) in cases {
            assert_eq!(Platform::from_user_agent(ua), p, "{ua}");
        }
    }
}
