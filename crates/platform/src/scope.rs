//! Zone and organisation scope from a caller's role bindings, the part every service shares:
//! a binding covers records of its zones (all zones when it names none) and, when it names an
//! organisation, that organisation's records (records of no organisation match on zone alone).
//! Services add their own ways in (a reviewer's assignments, a coach's engagements, a
//! beneficiary's own records) around it.

use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::{auth::Principal, error::ServiceError};

/// One zone-and-organisation binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The organisation records must belong to (or have none), when the binding names one.
    pub org: Option<Uuid>,
    /// Zones covered; empty: all.
    pub zones: Vec<String>,
}

impl Grant {
    /// Whether this binding covers a record of `zone` and `org`.
    pub fn covers(&self, zone: &str, org: Option<Uuid>) -> bool {
        (self.zones.is_empty() || self.zones.iter().any(|z| z == zone)) && (self.org.is_none() || org.is_none() || self.org == org)
    }
}

/// What staff bindings of some roles reach.
#[derive(Clone, Debug, Default)]
pub struct ZoneScope {
    /// Everything.
    pub all: bool,
    /// Zone and organisation bindings.
    pub grants: Vec<Grant>,
}

/// The account id in a principal's subject (`accounts/{uuid}`).
pub fn account_of(p: &Principal) -> Option<Uuid> {
    p.subject.strip_prefix("accounts/").and_then(|id| Uuid::parse_str(id).ok())
}

fn org_id(name: &str) -> Option<Uuid> {
    name.strip_prefix("organizations/").and_then(|id| Uuid::parse_str(id).ok())
}

impl ZoneScope {
    /// Everything for `all_roles`, the bindings of `zone_roles`.
    pub fn of(p: &Principal, all_roles: &[&str], zone_roles: &[&str]) -> Self {
        let all = p.roles.iter().any(|b| all_roles.contains(&b.role.as_str()));
        // A binding naming an organisation that is not `organizations/<uuid>` is skipped, never widened.
        let grants = p
            .roles
            .iter()
            .filter(|b| zone_roles.contains(&b.role.as_str()))
            .filter_map(|b| match b.org.as_deref() {
                None => Some(Grant { org: None, zones: b.zones.clone() }),
                Some(name) => org_id(name).map(|org| Grant { org: Some(org), zones: b.zones.clone() }),
            })
            .collect();
        Self { all, grants }
    }

    /// A scope that covers everything (reading back what the caller just wrote).
    pub fn everything() -> Self {
        Self { all: true, grants: Vec::new() }
    }

    /// Everything for nobody: a scope that covers nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether it reaches nothing.
    pub fn is_empty(&self) -> bool {
        !self.all && self.grants.is_empty()
    }

    /// Whether it covers a record of `zone` and `org`.
    pub fn covers(&self, zone: &str, org: Option<Uuid>) -> bool {
        self.all || self.grants.iter().any(|g| g.covers(zone, org))
    }

    /// The organisation stamped on a record created in `zone`: that of the first binding covering
    /// the zone (none for `all`). `None` when nothing covers it.
    pub fn stamp(&self, zone: &str) -> Option<Option<Uuid>> {
        if let Some(grant) = self.grants.iter().find(|g| g.zones.is_empty() || g.zones.iter().any(|z| z == zone)) {
            return Some(grant.org);
        }
        self.all.then_some(None)
    }

    /// Refuses with PERMISSION_DENIED when it reaches nothing (the role cannot do this).
    pub fn require(self, why: &'static str) -> Result<Self, ServiceError> {
        if self.is_empty() { Err(ServiceError::PermissionDenied(why)) } else { Ok(self) }
    }

    /// Appends ` OR (<binding>)` per binding, over the given zone and organisation columns
    /// (`org` may be `NULL` for tables without one); ` OR TRUE` for `all`.
    pub fn push_or(&self, qb: &mut QueryBuilder<Postgres>, zone: &str, org: &str) {
        if self.all {
            qb.push(" OR TRUE");
            return;
        }
        for grant in &self.grants {
            qb.push(" OR (TRUE");
            if !grant.zones.is_empty() {
                qb.push(format_args!(" AND {zone} = ANY(")).push_bind(grant.zones.clone()).push(")");
            }
            if let Some(o) = grant.org {
                qb.push(format_args!(" AND ({org} IS NULL OR {org} = ")).push_bind(o).push(")");
            }
            qb.push(")");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::RoleBinding;

    fn principal(roles: &[(&str, Option<Uuid>, &[&str])]) -> Principal {
        Principal {
            subject: format!("accounts/{}", Uuid::now_v7()),
            token_id: "t".into(),
            roles: roles
                .iter()
                .map(|(role, org, zones)| RoleBinding {
                    role: (*role).into(),
                    org: org.map(|o| format!("organizations/{o}")),
                    zones: zones.iter().map(|z| (*z).to_string()).collect(),
                })
                .collect(),
            expires_at: 0,
        }
    }

    #[test]
    fn bindings_cover_their_zones_and_organisation() {
        let org = Uuid::now_v7();
        let scope = ZoneScope::of(&principal(&[("officer", Some(org), &["oujda"])]), &["admin"], &["officer"]);
        assert!(scope.covers("oujda", Some(org)));
        assert!(scope.covers("oujda", None), "records of no organisation match on zone");
        assert!(!scope.covers("oujda", Some(Uuid::now_v7())));
        assert!(!scope.covers("rabat_sale", Some(org)));
        assert_eq!(scope.stamp("oujda"), Some(Some(org)));
        assert_eq!(scope.stamp("tanger"), None);
        let coach = ZoneScope::of(&principal(&[("coach", None, &["oujda"])]), &["admin"], &["officer"]);
        assert!(coach.is_empty() && coach.require("no").is_err());
        assert_eq!(ZoneScope::of(&principal(&[("admin", None, &[])]), &["admin"], &["officer"]).stamp("tanger"), Some(None));
    }
}
