//! The policy form as submitted, turned into a policy (every picked id checked to exist) and
//! back.

use super::Errors;
use crate::admin::capitalise;
use crate::admin::picker::{self, Kind};
use crate::policy::model::*;
use crate::store;
use crate::store::db::Connection;
use crate::web::params::Params;
use std::collections::{BTreeMap, BTreeSet};

/// The form as submitted: checkbox names that were ticked, and the text fields.
#[derive(Debug, Default, Clone)]
pub struct PolicyForm {
    pub checked: BTreeSet<String>,
    pub text: BTreeMap<String, String>,
}

impl PolicyForm {
    pub fn on(&self, key: &str) -> bool {
        self.checked.contains(key)
    }

    pub fn get(&self, key: &str) -> &str {
        self.text.get(key).map(String::as_str).unwrap_or("")
    }

    pub(super) fn from_params(p: Params) -> Self {
        // Text fields and selects keep their value even when it is the word "on" (the State
        // select's "On" is not a ticked checkbox).
        const TEXT: [&str; 12] =
            ["state", "name", "loc_mode", "frequency", "grant", "operator", "q_user_in", "q_user_ex", "q_group_in", "q_group_ex", "q_app_in", "q_app_ex"];
        let mut f = PolicyForm::default();
        for (k, v) in p.into_map() {
            if v == "on" && !TEXT.contains(&k.as_str()) {
                f.checked.insert(k);
            } else {
                f.text.insert(k, v);
            }
        }
        f
    }

    /// The form showing `p` (ids turned back into the names an admin types).
    pub(super) fn from_policy(p: &Policy) -> Self {
        let mut f = PolicyForm::default();
        let mut tick = |k: String, on: bool| {
            if on {
                f.checked.insert(k);
            }
        };
        tick("users_all".into(), p.include_users.all);
        tick("apps_all".into(), p.include_apps.all);
        for r in &p.include_users.roles {
            tick(format!("role_in_{r}"), true);
        }
        for r in &p.exclude_users.roles {
            tick(format!("role_ex_{r}"), true);
        }
        for a in &p.include_apps.apps {
            tick(format!("app_in_{a}"), true);
        }
        for a in &p.exclude_apps.apps {
            tick(format!("app_ex_{a}"), true);
        }
        for t in &p.conditions.client_app_types {
            tick(format!("cat_{}", snake(t)), true);
        }
        for r in &p.conditions.sign_in_risk {
            tick(format!("sir_{}", r.as_str()), true);
        }
        for r in &p.conditions.user_risk {
            tick(format!("ur_{}", r.as_str()), true);
        }
        for pl in &p.conditions.platforms_include {
            tick(format!("plat_in_{}", pl.as_str()), true);
        }
        for pl in &p.conditions.platforms_exclude {
            tick(format!("plat_ex_{}", pl.as_str()), true);
        }
        if let Some(l) = &p.conditions.locations {
            tick("loc_ex_trusted".into(), l.exclude.all_trusted);
            for id in &l.include.locations {
                tick(format!("loc_in_{id}"), true);
            }
            for id in &l.exclude.locations {
                tick(format!("loc_ex_{id}"), true);
            }
            f.text.insert(
                "loc_mode".into(),
                if l.include.all_trusted {
                    "trusted"
                } else if l.include.all {
                    "any"
                } else {
                    "selected"
                }
                .into(),
            );
        }
        for c in &p.grant.controls {
            f.checked.insert(format!("ctl_{}", snake(c)));
        }
        for (field, ids) in [
            ("user_in", &p.include_users.users),
            ("user_ex", &p.exclude_users.users),
            ("group_in", &p.include_users.groups),
            ("group_ex", &p.exclude_users.groups),
        ] {
            f.checked.extend(ids.iter().map(|id| format!("{field}_{id}")));
        }
        f.text.insert("name".into(), p.name.clone());
        f.text.insert("state".into(), p.state.as_str().into());
        f.text.insert("grant".into(), if p.grant.block { "block" } else { "grant" }.into());
        f.text.insert("operator".into(), if p.grant.operator == Operator::AllOf { "all_of" } else { "any_of" }.into());
        f.text.insert("frequency".into(), p.session.sign_in_frequency_hours.map(|h| h.to_string()).unwrap_or_default());
        f
    }

    /// The ids ticked in picker `field` (`loc_ex_trusted` is its own box, not a location).
    pub(super) fn picked_ids(&self, field: &str) -> Vec<String> {
        picker::ticked(&self.checked, field).into_iter().filter(|id| !(field == "loc_ex" && id == "trusted")).collect()
    }

    /// The policy these fields describe, or errors keyed by field.
    pub(super) fn to_policy(&self, conn: &Connection, id: String) -> Result<Result<Policy, Errors>, store::StoreError> {
        let mut errors = Errors::new();
        // Every id ticked in a picker must exist: one that does not is refused by name.
        let picked = |kind: Kind, field: &'static str, errors: &mut Errors| -> Result<Vec<String>, store::StoreError> {
            let ids = self.picked_ids(field);
            let (known, unknown) = picker::resolve(conn, kind, &ids)?;
            if !unknown.is_empty() {
                errors.insert(field, unknown.join(" "));
            }
            Ok(known.into_iter().map(|p| p.id).collect())
        };
        let users_in = picked(Kind::User, "user_in", &mut errors)?;
        let users_ex = picked(Kind::User, "user_ex", &mut errors)?;
        let groups_in = picked(Kind::Group, "group_in", &mut errors)?;
        let groups_ex = picked(Kind::Group, "group_ex", &mut errors)?;
        let apps_in = picked(Kind::App, "app_in", &mut errors)?;
        let apps_ex = picked(Kind::App, "app_ex", &mut errors)?;
        let locs_in = picked(Kind::Location, "loc_in", &mut errors)?;
        let locs_ex = picked(Kind::Location, "loc_ex", &mut errors)?;
        let ticked = |prefix: &str| self.checked.iter().filter_map(|k| k.strip_prefix(prefix)).map(String::from).collect::<Vec<_>>();
        let roles_in = ticked("role_in_");
        let roles_ex = ticked("role_ex_");
        let state = State::parse(self.get("state")).unwrap_or_else(|| {
            errors.insert("state", "Choose a state: report-only, on or off.".into());
            State::ReportOnly
        });
        let client_app_types = ticked("cat_").iter().filter_map(|t| serde_json::from_value(serde_json::json!(t)).ok()).collect();
        let risks = |prefix: &str| ticked(prefix).iter().filter_map(|r| Risk::parse(r)).collect::<Vec<_>>();
        let platforms = |prefix: &str| ticked(prefix).iter().filter_map(|p| Platform::ALL.iter().find(|x| x.as_str() == p).copied()).collect::<Vec<_>>();
        let locations = match self.get("loc_mode") {
            "trusted" | "selected" | "any"
                if !ticked("loc_in_").is_empty() || self.get("loc_mode") != "selected" || self.on("loc_ex_trusted") || !ticked("loc_ex_").is_empty() =>
            {
                let mode = self.get("loc_mode");
                let include =
                    Locations { all: mode == "any", all_trusted: mode == "trusted", locations: if mode == "selected" { locs_in.clone() } else { vec![] } };
                let exclude = Locations { all: false, all_trusted: self.on("loc_ex_trusted"), locations: locs_ex.clone() };
                let any_everywhere = include.all && !exclude.all_trusted && exclude.locations.is_empty();
                (!any_everywhere).then_some(LocationCondition { include, exclude })
            }
            _ => None,
        };
        let controls: Vec<Control> = ticked("ctl_").iter().filter_map(|c| serde_json::from_value(serde_json::json!(c)).ok()).collect();
        let frequency = match self.get("frequency").trim() {
            "" => None,
            h => match h.parse::<u32>() {
                Ok(h) => Some(h),
                Err(_) => {
                    errors.insert("frequency", "Sign-in frequency must be a whole number of hours.".into());
                    None
                }
            },
        };
        let block = self.get("grant") == "block";
        let mut p = Policy {
            id,
            name: self.get("name").to_string(),
            state,
            include_users: Principals { all: self.on("users_all"), users: users_in, groups: groups_in, roles: roles_in },
            exclude_users: Principals { all: false, users: users_ex, groups: groups_ex, roles: roles_ex },
            include_apps: Apps { all: self.on("apps_all"), apps: apps_in },
            exclude_apps: Apps { all: false, apps: apps_ex },
            conditions: Conditions {
                client_app_types,
                sign_in_risk: risks("sir_"),
                user_risk: risks("ur_"),
                locations,
                platforms_include: platforms("plat_in_"),
                platforms_exclude: platforms("plat_ex_"),
            },
            grant: Grant {
                block,
                operator: if self.get("operator") == "all_of" { Operator::AllOf } else { Operator::AnyOf },
                controls: if block { vec![] } else { controls },
            },
            session: SessionControls { sign_in_frequency_hours: frequency },
        };
        // The model's rules stop at the first one broken; the fields already found wrong are
        // reported anyway, so every mistake shows at once.
        if let Err(e) = p.check() {
            let field = match e {
                PolicyError::Name => "name",
                PolicyError::NoUsers => "users",
                PolicyError::NoApps => "apps",
                PolicyError::Frequency => "frequency",
                PolicyError::NoEffect | PolicyError::BlockAndControls | PolicyError::PasswordChangeWithoutUserRisk => "grant",
            };
            errors.entry(field).or_insert_with(|| capitalise(&e.to_string()));
        }
        if self.get("name").trim().is_empty() || self.get("name").chars().count() > 100 {
            errors.entry("name").or_insert_with(|| capitalise(&PolicyError::Name.to_string()));
        }
        Ok(if errors.is_empty() { Ok(p) } else { Err(errors) })
    }
}

pub(super) fn snake<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}
