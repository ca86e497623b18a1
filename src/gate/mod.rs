//! The sign-in gate: the one place that decides whether this person (or app), with this
//! evidence, asking for this target, gets a session, a code or a token — or what must happen
//! first. Every way in calls it and only renders its outcome:
//!
//! | way in | target | person present |
//! |---|---|---|
//! | `/authorize` (app sign-in, SSO, step-up) | the app | yes |
//! | `/login` without an app, passkey-only sign-in | the portal | yes |
//! | portal pages (`/`, `/security`, `/password/change`) | the portal | yes (on every request) |
//! | `/admin` | the console | yes (on every request) |
//! | refresh, password grant, client credentials | the app | no |
//!
//! `decide` is a pure function over plain values (unit-tested below over its decision table);
//! `check` gathers those values from the store, runs the conditional-access evaluator and
//! calls `decide`; `log` writes the attempt's sign-in log row, whose id is the correlation id
//! shown to the person and the app.

mod check;
pub mod level;

pub use check::{Ask, ConsentAsk, Issued, REGISTRATION_GRACE_SECS, Verdict, check, evaluate, log, log_plain, may_register, remember_network};

use crate::policy::evaluate::Decision;
use crate::policy::model::Risk;
pub use level::Level;

/// latchkey's own pages, selectable by name in conditional-access policies (as Entra's
/// "Microsoft Admin Portals"). "All apps" covers them too.
pub const PORTAL: &str = "latchkey:portal";
pub const CONSOLE: &str = "latchkey:console";

/// Built-in targets as (id, name), for policy forms and What If.
pub const BUILT_IN_TARGETS: [(&str, &str); 2] = [(PORTAL, "latchkey My Apps and Security info"), (CONSOLE, "latchkey admin console")];

/// What is being asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    App(String),
    Portal,
    Console,
}

impl Target {
    /// The id policies name this target by.
    pub fn app_id(&self) -> &str {
        match self {
            Target::App(id) => id,
            Target::Portal => PORTAL,
            Target::Console => CONSOLE,
        }
    }
}

/// How the request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// A person in a browser: sign-in, SSO, step-up, registration, password change, or a page
    /// of the portal or console used with a session.
    Interactive,
    /// A refresh-token grant: no person to step up.
    Refresh,
    /// The resource owner password grant (legacy authentication): a password and nothing else.
    PasswordGrant,
    /// An app acting as itself.
    ClientCredentials,
}

impl Way {
    fn person_present(self) -> bool {
        self == Way::Interactive
    }
}

/// The registered methods that matter to the decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MethodSet {
    pub totp: bool,
    pub keys: bool,
}

impl MethodSet {
    pub fn any(self) -> bool {
        self.totp || self.keys
    }

    fn can_reach(self, level: Level) -> bool {
        match level {
            Level::Password => true,
            Level::Mfa => self.any(),
            Level::PhishingResistant => self.keys,
        }
    }
}

/// What is known about the person.
#[derive(Debug, Clone, Default)]
pub struct Person {
    pub disabled: bool,
    pub must_change_password: bool,
    /// Flagged by an admin, or an administrator: always a second factor.
    pub mfa_required: bool,
    pub methods: MethodSet,
    /// Has never signed in successfully: may register a first method (as under security defaults).
    pub first_sign_in: bool,
    /// This network is one they have signed in from before.
    pub familiar: bool,
    pub locked: bool,
    pub assigned: bool,
}

/// Security defaults' MFA registration, when defaults are on and the person has no method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    NotRequired,
    /// May skip for this many more days (unless already skipped in this flow).
    Grace {
        days_left: i64,
    },
    Required,
}

/// Everything `decide` looks at, as plain values.
#[derive(Debug, Clone)]
pub struct Facts {
    pub way: Way,
    pub target: Target,
    /// None: an app acting as itself.
    pub person: Option<Person>,
    /// Methods proven in this flow or session (RFC 8176).
    pub amr: Vec<String>,
    /// The strength the app asked for with `acr_values`.
    pub acr_asked: Level,
    /// The highest sign-in risk seen in this flow and the session it continues.
    pub sign_in_risk: Risk,
    pub user_risk: Risk,
    /// Conditional access (or security defaults), already evaluated.
    pub policy: Decision,
    pub registration: Registration,
    pub registration_skipped: bool,
    /// The password was changed in this flow.
    pub password_changed: bool,
    /// An existing session is being used (SSO, the portal): the evidence is what it was
    /// signed in with, and a method registered since does not by itself demand a step-up.
    pub session_in_use: bool,
    /// A second factor proven in the last `FRESH_SECS` (in this flow, or at the sign-in of the
    /// session it continues): what adding a method needs, not a method inherited from an
    /// older sign-in, which a copied cookie carries too.
    pub factor_fresh: bool,
    /// A third-party app asks for data the person has not approved (or `prompt=consent`).
    pub consent_needed: bool,
}

/// How recent a second factor must be to add or change sign-in methods.
pub const FRESH_SECS: i64 = 600;

/// Whether `amr` includes a second factor proven at `auth_time`, within `FRESH_SECS` of `now`.
pub fn second_factor_fresh(amr: &[String], auth_time: Option<i64>, now: i64) -> bool {
    Level::of(amr) >= Level::Mfa && auth_time.is_some_and(|t| now - t <= FRESH_SECS)
}

/// Why a request is refused. Shown to people and apps only as a generic sentence with the
/// correlation id; the sign-in log has the detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Disabled,
    Locked,
    Blocked {
        policy: String,
    },
    NotAssigned,
    /// Registration during sign-in needs a low-risk, familiar context.
    RegistrationNotAllowed,
    /// More is needed, and there is nobody present to provide it (refresh, password grant).
    NeedsInteraction(&'static str),
}

impl Refusal {
    /// The reason for the sign-in log (admins only).
    pub fn log_reason(&self) -> String {
        match self {
            Refusal::Disabled => "account disabled".into(),
            Refusal::Locked => "account locked (smart lockout)".into(),
            Refusal::Blocked { policy } => crate::policy::blocked_reason(policy),
            Refusal::NotAssigned => "user is not assigned to the application".into(),
            Refusal::RegistrationNotAllowed => {
                "registration of a sign-in method refused: risky or unfamiliar context for a user who has signed in before".into()
            }
            Refusal::NeedsInteraction(why) => (*why).into(),
        }
    }
}

/// What the gate decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Create or use the session, mint the code or token.
    Issue,
    /// Prove a registered second factor reaching this level.
    StepUp(Level),
    /// Register a method now: any second factor, or a security key / passkey only.
    Register {
        keys_only: bool,
        skippable_days: Option<i64>,
    },
    ChangePassword,
    /// A third-party app: the person approves what it asks for first.
    Consent,
    /// Sign-in frequency: sign in again from the start.
    Reauthenticate,
    Refuse(Refusal),
}

/// The decision table. Order matters and is the policy of the product:
/// disabled → lockout → policy block → assignment (before anything is asked of the person) →
/// (no person: anything more is a refusal) → sign-in frequency → a temporary password of a
/// low-risk account with no second factor → the level needed (app's acr, policy, registered
/// methods, admin, MFA for any password change) by step-up or registration → a password change
/// demanded by policy or an admin →
/// security defaults' registration → consent for a third-party app → issue.
pub fn decide(f: &Facts) -> Outcome {
    use Outcome::*;
    let Some(p) = &f.person else {
        // An app acting as itself: only policy decides.
        return match &f.policy {
            Decision::Block { policy } => Refuse(Refusal::Blocked { policy: policy.clone() }),
            Decision::Require { .. } => Refuse(Refusal::NeedsInteraction("conditional access requires more than client credentials")),
            Decision::Allow => Issue,
        };
    };
    if p.disabled {
        return Refuse(Refusal::Disabled);
    }
    if p.locked {
        return Refuse(Refusal::Locked);
    }
    if let Decision::Block { policy } = &f.policy {
        return Refuse(Refusal::Blocked { policy: policy.clone() });
    }
    if !p.assigned {
        return Refuse(Refusal::NotAssigned);
    }
    if !f.way.person_present() {
        if f.way == Way::PasswordGrant && (p.methods.any() || p.mfa_required) {
            return Refuse(Refusal::NeedsInteraction("the user has or must use a second factor, which the password grant cannot perform"));
        }
        if p.must_change_password {
            return Refuse(Refusal::NeedsInteraction("the user must change their password"));
        }
        return match &f.policy {
            Decision::Require { .. } => Refuse(Refusal::NeedsInteraction("conditional access requires the user to sign in interactively")),
            _ => Issue,
        };
    }
    let (needs_level, policy_password, reauth) = match &f.policy {
        Decision::Require { needs, .. } => (needs.level.unwrap_or_default(), needs.password_change, needs.reauthenticate),
        _ => (Level::Password, false, false),
    };
    let mut required = f.acr_asked.max(needs_level);
    if p.mfa_required || (p.methods.any() && !f.session_in_use) || f.target == Target::Console {
        required = required.max(Level::Mfa);
    }
    // A password is changed only with the second factor too (Entra's "require password change"
    // comes with MFA): else whoever holds a leaked password — the reason an admin demands a
    // change — would choose the next one.
    let changing = (p.must_change_password || policy_password) && !f.password_changed;
    if changing {
        required = required.max(Level::Mfa);
    }
    let have = Level::of(&f.amr);
    if reauth {
        return Reauthenticate;
    }
    let low_risk = f.sign_in_risk <= Risk::Low && f.user_risk <= Risk::Low;
    // A temporary password of someone with no second factor yet (a new account, the first
    // admin) is replaced first, from a low-risk sign-in only: there is nothing else to ask.
    if p.must_change_password && !f.password_changed && low_risk && !p.methods.any() {
        return ChangePassword;
    }
    if have < required {
        if p.methods.can_reach(required) {
            return StepUp(required);
        }
        // Phishing-resistant asked of someone with only an authenticator app: verify with it
        // now (a session's older proof is not enough to add a key), then register a key in the
        // same flow.
        if required == Level::PhishingResistant && p.methods.any() && !f.factor_fresh {
            return StepUp(Level::Mfa);
        }
        return register(f, p, required == Level::PhishingResistant, None);
    }
    if changing {
        return ChangePassword;
    }
    if !p.methods.any() {
        match f.registration {
            Registration::Required => return register(f, p, false, None),
            // Optional registration from a risky or unfamiliar context is simply not offered.
            // Offered at sign-in only: a session that exists has been offered it already.
            Registration::Grace { days_left } if !f.registration_skipped && !f.session_in_use => {
                if let r @ Register { .. } = register(f, p, false, Some(days_left)) {
                    return r;
                }
            }
            _ => {}
        }
    }
    // Consent last: the person is asked only once everything else about them is settled.
    if f.consent_needed {
        return Consent;
    }
    Issue
}

/// Registration during sign-in: a person who has proven a second factor in this flow may add
/// another; otherwise only from a low-risk context, and — for someone who has signed in
/// before — from a network they have used (not merely a platform: the User-Agent that names
/// it is the attacker's to choose).
pub(crate) fn register(f: &Facts, p: &Person, keys_only: bool, skippable_days: Option<i64>) -> Outcome {
    let proven = f.factor_fresh;
    let low_risk = f.sign_in_risk <= Risk::Low && f.user_risk <= Risk::Low;
    if proven || (low_risk && (p.first_sign_in || p.familiar)) {
        Outcome::Register { keys_only, skippable_days }
    } else {
        Outcome::Refuse(Refusal::RegistrationNotAllowed)
    }
}

#[cfg(test)]
mod tests;
