//! Gathers the gate's facts from the store, evaluates conditional access, decides, and logs.

use super::Level;
use super::{Facts, MethodSet, Outcome, Person, Registration, Target, Way, decide};
use crate::policy::evaluate::{Context, Decision, Evaluation};
use crate::policy::model::{ClientAppType, Risk};
use crate::policy::{self, Request};
use crate::store::db::Connection;
use crate::store::{self, StoreError, signins::SignIn};

/// Security defaults: how long after their first sign-in a user may skip MFA registration.
pub const REGISTRATION_GRACE_SECS: i64 = 14 * 86_400;

/// One question to the gate.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    pub way: Way,
    pub target: Target,
    pub user_id: Option<&'a str>,
    pub client_app_type: ClientAppType,
    pub request: &'a Request,
    pub amr: &'a [String],
    /// When the person last authenticated (sign-in frequency).
    pub auth_time: Option<i64>,
    pub acr_asked: Level,
    /// Identity protection's findings so far in this flow or session.
    pub sign_in_risk: Option<Risk>,
    pub risk_reasons: &'a [String],
    pub password_changed: bool,
    pub registration_skipped: bool,
    /// Using an existing session rather than signing in.
    pub session_in_use: bool,
    /// For an app's sign-in: what it asks for, to check consent.
    pub consent: Option<ConsentAsk<'a>>,
    /// Whether smart lockout applies (a password is being presented now).
    pub lockout: Option<bool>,
    /// The person's profile, when the caller read it already in its own statement (a refresh
    /// reads it with the token): else the gate reads it.
    pub profile: Option<&'a store::users::Profile>,
}

impl<'a> Ask<'a> {
    /// An app acting as itself (client credentials): no person, no evidence.
    pub fn app_itself(client_id: &str, request: &'a Request) -> Self {
        Self {
            way: Way::ClientCredentials,
            user_id: None,
            client_app_type: ClientAppType::ClientCredentials,
            ..Self::interactive(Target::App(client_id.to_string()), "", request, &[])
        }
    }

    /// A person in a browser, for `target`, with what they have proven so far.
    pub fn interactive(target: Target, user_id: &'a str, request: &'a Request, amr: &'a [String]) -> Self {
        Self {
            way: Way::Interactive,
            target,
            user_id: Some(user_id),
            client_app_type: ClientAppType::Browser,
            request,
            amr,
            auth_time: None,
            acr_asked: Level::Password,
            sign_in_risk: None,
            risk_reasons: &[],
            password_changed: false,
            registration_skipped: false,
            session_in_use: false,
            consent: None,
            lockout: None,
            profile: None,
        }
    }
}

/// What an app's authorization request asks that consent is about.
#[derive(Debug, Clone, Copy)]
pub struct ConsentAsk<'a> {
    /// The scopes asked for, space-separated.
    pub scope: &'a str,
    /// `prompt=consent`: ask again even if approved before.
    pub prompt: bool,
    /// Approved in this flow already.
    pub given: bool,
}

/// Whether the person must approve what `ask` wants of app `client_id` (third-party apps only).
fn consent_needed(conn: &Connection, user_id: &str, client_id: &str, ask: &ConsentAsk<'_>) -> Result<bool, StoreError> {
    if ask.given {
        return Ok(false);
    }
    let Some(client) = store::cache::client(conn, client_id)? else { return Ok(false) };
    if !client.third_party || client.consent_for_everyone {
        return Ok(false);
    }
    if ask.prompt {
        return Ok(true);
    }
    let approved = store::consents::scopes(conn, user_id, client_id)?.unwrap_or_default();
    Ok(ask.scope.split(' ').filter(|s| !s.is_empty()).any(|s| !approved.iter().any(|a| a == s)))
}

/// The gate's answer with what it was based on, for the sign-in log.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub outcome: Outcome,
    pub ctx: Context,
    pub eval: Evaluation,
    /// The facts `decide` was given.
    pub facts: Facts,
}

/// Proof that the gate said Issue: what minting a code requires, so no path can mint one
/// without asking.
#[derive(Debug, Clone, Copy)]
pub struct Issued(());

impl Verdict {
    /// The log reason of a refusal (empty otherwise).
    pub fn outcome_reason(&self) -> String {
        match &self.outcome {
            Outcome::Refuse(r) => r.log_reason(),
            _ => String::new(),
        }
    }

    pub fn issued(&self) -> Option<Issued> {
        (self.outcome == Outcome::Issue).then_some(Issued(()))
    }
}

/// What conditional access sees of `ask` (about `profile`'s person, if any).
fn context(conn: &Connection, ask: &Ask<'_>, profile: Option<&store::users::Profile>, now: i64) -> Result<Context, StoreError> {
    let mut ctx = policy::context(conn, profile, ask.target.app_id(), ask.client_app_type, ask.request, ask.amr, ask.auth_time, now)?;
    ctx.password_changed = ask.password_changed;
    policy::add_detections(&mut ctx, ask.sign_in_risk, ask.risk_reasons);
    Ok(ctx)
}

/// What `policies` — not the ones in force: a policy about to be saved, say — would decide
/// for `ask`, seen exactly as `check` sees it.
pub fn evaluate(conn: &Connection, ask: &Ask<'_>, policies: &[crate::policy::model::Policy], now: i64) -> Result<Evaluation, StoreError> {
    let profile = match ask.user_id {
        Some(id) => store::users::profile(conn, id)?,
        None => None,
    };
    Ok(policy::evaluate::evaluate(policies, &context(conn, ask, profile.as_ref(), now)?))
}

/// Answers `ask` at `now`.
pub fn check(conn: &Connection, ask: &Ask<'_>, now: i64) -> Result<Verdict, StoreError> {
    let loaded;
    let profile = match (ask.user_id, ask.profile) {
        (Some(id), Some(read)) if read.user.id == id => Some(read),
        (Some(id), _) => {
            loaded = store::users::profile(conn, id)?.ok_or_else(|| StoreError::Corrupt("the gate was asked about a user that does not exist".into()))?;
            Some(&loaded)
        }
        (None, _) => None,
    };
    let ctx = context(conn, ask, profile, now)?;
    let policies = policy::in_force(conn)?;
    let eval = policy::evaluate::evaluate(&policies, &ctx);
    let person = match profile {
        Some(p) => Some(person(conn, p, &ask.target, ask.request, ask.lockout, now)?),
        None => None,
    };
    let registration = match &person {
        Some(p) if !p.methods.any() && ask.way == Way::Interactive && store::cache::security_defaults(conn)? => {
            let first = store::policies::first_signin(conn, ask.user_id.unwrap_or_default(), now)?;
            let left = first + REGISTRATION_GRACE_SECS - now;
            if left <= 0 { Registration::Required } else { Registration::Grace { days_left: (left + 86_399) / 86_400 } }
        }
        _ => Registration::NotRequired,
    };
    let facts = Facts {
        way: ask.way,
        target: ask.target.clone(),
        person,
        amr: ask.amr.to_vec(),
        acr_asked: ask.acr_asked,
        sign_in_risk: ctx.sign_in_risk,
        user_risk: ctx.user_risk,
        policy: eval.decision.clone(),
        registration,
        registration_skipped: ask.registration_skipped,
        password_changed: ask.password_changed,
        session_in_use: ask.session_in_use,
        factor_fresh: super::second_factor_fresh(ask.amr, ask.auth_time, now),
        consent_needed: match (&ask.consent, ask.user_id, &ask.target) {
            (Some(c), Some(user), Target::App(app)) if ask.way == Way::Interactive => consent_needed(conn, user, app, c)?,
            _ => false,
        },
    };
    Ok(Verdict { outcome: decide(&facts), ctx, eval, facts })
}

fn person(
    conn: &Connection,
    profile: &store::users::Profile,
    target: &Target,
    request: &Request,
    lockout: Option<bool>,
    now: i64,
) -> Result<Person, StoreError> {
    let (user, user_id) = (&profile.user, profile.user.id.as_str());
    let network = request.ip.as_deref().map(crate::auth::protection::network_of);
    let familiar_network = network.as_ref().is_some_and(|n| profile.networks.contains(n));
    let assigned = match target {
        Target::App(id) => match store::cache::client(conn, id)?.as_deref() {
            Some(c) if c.assignment_required => store::directory::is_assigned(conn, id, user_id)?,
            Some(_) => true,
            None => false,
        },
        Target::Portal => true,
        // The console is for administrators; others are refused by its own route guard.
        Target::Console => true,
    };
    let locked = match lockout {
        Some(familiar) => {
            let kind = if familiar { crate::auth::budget::Kind::PasswordFamiliar } else { crate::auth::budget::Kind::Password };
            crate::auth::budget::paused(conn, crate::auth::budget::Subject::User(user_id), kind, now)?.is_some()
        }
        None => false,
    };
    Ok(Person {
        disabled: user.disabled,
        must_change_password: user.must_change_password,
        mfa_required: user.mfa_required || !profile.roles.is_empty(),
        methods: MethodSet { totp: profile.totp, keys: profile.keys },
        first_sign_in: profile.networks.is_empty(),
        // The network only: the device platform comes from the User-Agent, which an attacker
        // chooses, so it cannot vouch for a registration.
        familiar: familiar_network,
        locked,
        assigned,
    })
}

/// Writes the attempt's sign-in log row with the evaluated context and each policy's result;
/// returns its id, the correlation id.
pub fn log(conn: &Connection, v: &Verdict, result: &str, reason: Option<&str>, now: i64) -> Result<i64, StoreError> {
    let blocked = matches!(v.eval.decision, Decision::Block { .. });
    let report_only_block = v.eval.results.iter().any(|r| r.state == crate::policy::model::State::ReportOnly && r.blocks());
    let ctx = &v.ctx;
    let entry = SignIn {
        user_id: ctx.user_id.as_deref(),
        username: ctx.username.as_deref(),
        client_id: Some(&ctx.app),
        ip: ctx.ip.as_deref(),
        user_agent: ctx.user_agent.as_deref(),
        result,
        reason,
        methods: (!ctx.amr.is_empty()).then_some(&ctx.amr[..]),
        failure: None,
    };
    store::signins::record_evaluated(conn, &entry, ctx, &v.eval, blocked, report_only_block, now)
}

/// A log row for an attempt that never reached a decision (unknown user, wrong password),
/// keeping what the detectors found.
pub fn log_plain(conn: &Connection, entry: &SignIn<'_>, now: i64) -> Result<i64, StoreError> {
    store::signins::record(conn, entry, now)
}

/// Whether the person behind `ask` (a session using latchkey's own pages) may register a sign-in
/// method now: the same rule as registration during sign-in — a second factor already proven,
/// or a low-risk context that is their first sign-in or a network they have used.
pub fn may_register(conn: &Connection, ask: &Ask<'_>, now: i64) -> Result<bool, StoreError> {
    let verdict = check(conn, ask, now)?;
    let Some(person) = &verdict.facts.person else { return Ok(false) };
    Ok(matches!(super::register(&verdict.facts, person, false, None), Outcome::Register { .. }))
}

/// After a sign-in: the network it came from becomes one the person "has used" — but only
/// the first network ever, a network already known, or any network after a second factor, so a
/// password alone cannot make an attacker's network familiar.
pub fn remember_network(conn: &Connection, user_id: &str, request: &Request, second_factor_fresh: bool, now: i64) -> Result<(), StoreError> {
    let Some(ip) = &request.ip else { return Ok(()) };
    let network = crate::auth::protection::network_of(ip);
    let (networks, _) = store::protection::history(conn, user_id)?;
    if second_factor_fresh || networks.is_empty() || networks.contains(&network) {
        let platform = request.user_agent.as_deref().map(crate::policy::model::Platform::from_user_agent).unwrap_or(crate::policy::model::Platform::Other);
        store::protection::record_success(conn, user_id, &network, platform.as_str(), now)?;
    }
    Ok(())
}
