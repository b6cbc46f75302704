//! Who sees which records. A caller's scope comes from the roles in their token:
//! - admins and auditors: everything;
//! - program managers and officers: records in a binding's zones (every zone when the binding
//!   names none) and, when the binding names an organisation, of that organisation; records
//!   nobody's organisation opened (people registering themselves) match on zone alone;
//! - reviewers: the applications assigned to them and those applications' members;
//! - beneficiaries: their own record and the applications it is a member of.
//!
//! The same scope filters lists in SQL and guards single records, so a record out of scope is
//! NOT_FOUND everywhere, exactly as if it did not exist.

use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;
use work4life_platform::{ServiceError, auth::Principal};

/// One zone-and-organisation binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The organisation records must belong to (or have none), when the binding names one.
    pub org: Option<Uuid>,
    /// Zones covered; empty: all.
    pub zones: Vec<String>,
}

impl Grant {
    fn covers(&self, zone: &str, org: Option<Uuid>) -> bool {
        (self.zones.is_empty() || self.zones.iter().any(|z| z == zone)) && (self.org.is_none() || org.is_none() || self.org == org)
    }
}

/// What a caller may see or change for one kind of operation.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Everything.
    pub all: bool,
    /// Zone and organisation bindings.
    pub grants: Vec<Grant>,
    /// The caller's own account (beneficiaries).
    pub account: Option<Uuid>,
    /// Reviews assigned to this account (reviewers).
    pub reviewer: Option<Uuid>,
}

/// The account id in a principal's subject (`accounts/{uuid}`).
pub fn account_of(p: &Principal) -> Option<Uuid> {
    p.subject.strip_prefix("accounts/").and_then(|id| Uuid::parse_str(id).ok())
}

fn org_id(name: &str) -> Option<Uuid> {
    name.strip_prefix("organizations/").and_then(|id| Uuid::parse_str(id).ok())
}

impl Scope {
    /// Everything for `all_roles`, bindings for `zone_roles`.
    pub fn of(p: &Principal, all_roles: &[&str], zone_roles: &[&str]) -> Self {
        let all = p.roles.iter().any(|b| all_roles.contains(&b.role.as_str()));
        let grants = p
            .roles
            .iter()
            .filter(|b| zone_roles.contains(&b.role.as_str()))
            .map(|b| Grant { org: b.org.as_deref().and_then(org_id), zones: b.zones.clone() })
            .collect();
        Self { all, grants, account: None, reviewer: None }
    }

    /// What a caller may read: staff in scope, assigned reviewers, the person themselves.
    pub fn read(p: &Principal) -> Self {
        let mut scope = Self::of(p, &["admin", "auditor"], &["program_manager", "officer"]);
        if p.has_role("reviewer") {
            scope.reviewer = account_of(p);
        }
        scope.with_self(p)
    }

    /// Desk work (registering, drafting, screening): officers, program managers, admins.
    pub fn staff(p: &Principal) -> Self {
        Self::of(p, &["admin"], &["program_manager", "officer"])
    }

    /// Selection (calls, reviewers, decisions, erasure): program managers and admins.
    pub fn managers(p: &Principal) -> Self {
        Self::of(p, &["admin"], &["program_manager"])
    }

    /// Adds the caller's own records when they are a beneficiary.
    pub fn with_self(mut self, p: &Principal) -> Self {
        if p.has_role("beneficiary") {
            self.account = account_of(p);
        }
        self
    }

    /// Whether the scope reaches nothing at all.
    pub fn is_empty(&self) -> bool {
        !self.all && self.grants.is_empty() && self.account.is_none() && self.reviewer.is_none()
    }

    /// Whether staff bindings (or `all`) cover a record of `zone` and `org`.
    pub fn covers(&self, zone: &str, org: Option<Uuid>) -> bool {
        self.all || self.grants.iter().any(|g| g.covers(zone, org))
    }

    /// The organisation stamped on a record a staff member creates in `zone`: that of the first
    /// binding covering the zone (none for admins). `None` when no binding covers it.
    pub fn stamp(&self, zone: &str) -> Option<Option<Uuid>> {
        if let Some(grant) = self.grants.iter().find(|g| g.zones.is_empty() || g.zones.iter().any(|z| z == zone)) {
            return Some(grant.org);
        }
        self.all.then_some(None)
    }

    /// Refuses with PERMISSION_DENIED when the scope reaches nothing (the role cannot do this).
    pub fn require(self, why: &'static str) -> Result<Self, ServiceError> {
        if self.is_empty() { Err(ServiceError::PermissionDenied(why)) } else { Ok(self) }
    }

    fn push_grants(&self, qb: &mut QueryBuilder<Postgres>, zone: &str, org: &str) {
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

    /// Appends `AND (<the scope>)` for applicants aliased `a`.
    pub fn push_applicants(&self, qb: &mut QueryBuilder<Postgres>) {
        if self.all {
            return;
        }
        qb.push(" AND (FALSE");
        self.push_grants(qb, "a.zone", "a.organization_id");
        if let Some(account) = self.account {
            qb.push(" OR a.account_id = ").push_bind(account);
        }
        if let Some(reviewer) = self.reviewer {
            qb.push(
                " OR EXISTS (SELECT 1 FROM application_members sm JOIN reviews sr ON sr.application_id = sm.application_id \
                 WHERE sm.applicant_id = a.id AND sr.reviewer_id = ",
            )
            .push_bind(reviewer)
            .push(")");
        }
        qb.push(")");
    }

    /// Appends `AND (<the scope>)` for applications aliased `p`.
    pub fn push_applications(&self, qb: &mut QueryBuilder<Postgres>) {
        if self.all {
            return;
        }
        qb.push(" AND (FALSE");
        self.push_grants(qb, "p.zone", "p.organization_id");
        if let Some(account) = self.account {
            qb.push(
                " OR EXISTS (SELECT 1 FROM application_members sm JOIN applicants sa ON sa.id = sm.applicant_id \
                 WHERE sm.application_id = p.id AND sa.account_id = ",
            )
            .push_bind(account)
            .push(")");
        }
        if let Some(reviewer) = self.reviewer {
            qb.push(" OR EXISTS (SELECT 1 FROM reviews sr WHERE sr.application_id = p.id AND sr.reviewer_id = ")
                .push_bind(reviewer)
                .push(")");
        }
        qb.push(")");
    }
}

#[cfg(test)]
mod tests {
    use work4life_platform::auth::RoleBinding;

    use super::*;

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
    fn officers_cover_their_zones_and_organisation() {
        let org = Uuid::now_v7();
        let scope = Scope::staff(&principal(&[("officer", Some(org), &["oujda"])]));
        assert!(scope.covers("oujda", Some(org)));
        assert!(scope.covers("oujda", None), "self-registered people match on zone");
        assert!(!scope.covers("oujda", Some(Uuid::now_v7())), "another organisation's record");
        assert!(!scope.covers("rabat_sale", Some(org)));
        assert_eq!(scope.stamp("oujda"), Some(Some(org)));
        assert_eq!(scope.stamp("tanger"), None);
    }

    #[test]
    fn roles_outside_the_operation_reach_nothing() {
        let coach = principal(&[("coach", None, &["oujda"])]);
        assert!(Scope::read(&coach).is_empty());
        assert!(Scope::staff(&coach).require("no").is_err());
        let auditor = principal(&[("auditor", None, &[])]);
        assert!(Scope::read(&auditor).all);
        assert!(Scope::staff(&auditor).is_empty(), "auditors read, they do not write");
        let beneficiary = principal(&[("beneficiary", None, &[])]);
        assert!(Scope::read(&beneficiary).account.is_some());
        assert_eq!(Scope::staff(&principal(&[("admin", None, &[])])).stamp("tanger"), Some(None));
    }
}
