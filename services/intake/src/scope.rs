//! Who sees which intake records. A caller's scope comes from the roles in their token:
//! - admins and auditors: everything;
//! - program managers and officers: their bindings' zones and organisations
//!   ([`work4life_platform::scope`]); records nobody's organisation opened (people registering
//!   themselves) match on zone alone;
//! - reviewers: the applications assigned to them and those applications' members;
//! - beneficiaries: their own record and the applications it is a member of.
//!
//! The same scope filters lists in SQL and guards single records, so a record out of scope is
//! NOT_FOUND everywhere, exactly as if it did not exist.

use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;
use work4life_platform::{ServiceError, auth::Principal, scope::ZoneScope};

pub use work4life_platform::scope::account_of;

/// What a caller may see or change for one kind of operation.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Staff bindings (or everything).
    pub staff: ZoneScope,
    /// The caller's own account (beneficiaries).
    pub account: Option<Uuid>,
    /// Reviews assigned to this account (reviewers).
    pub reviewer: Option<Uuid>,
}

impl Scope {
    /// Everything for `all_roles`, bindings for `zone_roles`.
    pub fn of(p: &Principal, all_roles: &[&str], zone_roles: &[&str]) -> Self {
        Self { staff: ZoneScope::of(p, all_roles, zone_roles), account: None, reviewer: None }
    }

    /// Everything (for reading back what was just written).
    pub fn everything() -> Self {
        Self { staff: ZoneScope::everything(), account: None, reviewer: None }
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
        self.staff.is_empty() && self.account.is_none() && self.reviewer.is_none()
    }

    /// Whether staff bindings (or everything) cover a record of `zone` and `org`.
    pub fn covers(&self, zone: &str, org: Option<Uuid>) -> bool {
        self.staff.covers(zone, org)
    }

    /// The organisation stamped on a record a staff member creates in `zone`.
    pub fn stamp(&self, zone: &str) -> Option<Option<Uuid>> {
        self.staff.stamp(zone)
    }

    /// Refuses with PERMISSION_DENIED when the scope reaches nothing (the role cannot do this).
    pub fn require(self, why: &'static str) -> Result<Self, ServiceError> {
        if self.is_empty() { Err(ServiceError::PermissionDenied(why)) } else { Ok(self) }
    }

    /// Appends `AND (<the scope>)` for applicants aliased `a`.
    pub fn push_applicants(&self, qb: &mut QueryBuilder<Postgres>) {
        if self.staff.all {
            return;
        }
        qb.push(" AND (FALSE");
        self.staff.push_or(qb, "a.zone", "a.organization_id");
        if let Some(account) = self.account {
            qb.push(" OR a.account_id = ").push_bind(account);
        }
        if let Some(reviewer) = self.reviewer {
            // `= ANY(ARRAY(...))` runs the subquery once, wherever the OR leaves it.
            qb.push(
                " OR a.id = ANY(ARRAY(SELECT sm.applicant_id FROM application_members sm JOIN reviews sr \
                 ON sr.application_id = sm.application_id WHERE sr.reviewer_id = ",
            )
            .push_bind(reviewer)
            .push("))");
        }
        qb.push(")");
    }

    /// Appends `AND (<the scope>)` for applications aliased `p`.
    pub fn push_applications(&self, qb: &mut QueryBuilder<Postgres>) {
        if self.staff.all {
            return;
        }
        qb.push(" AND (FALSE");
        self.staff.push_or(qb, "p.zone", "p.organization_id");
        if let Some(account) = self.account {
            qb.push(
                " OR p.id = ANY(ARRAY(SELECT sm.application_id FROM application_members sm JOIN applicants sa ON sa.id = sm.applicant_id \
                 WHERE sa.account_id = ",
            )
            .push_bind(account)
            .push("))");
        }
        if let Some(reviewer) = self.reviewer {
            qb.push(" OR p.id = ANY(ARRAY(SELECT sr.application_id FROM reviews sr WHERE sr.reviewer_id = ").push_bind(reviewer).push("))");
        }
        qb.push(")");
    }
}

#[cfg(test)]
mod tests {
    use work4life_platform::auth::RoleBinding;

    use super::*;

    fn principal(roles: &[(&str, &[&str])]) -> Principal {
        Principal {
            subject: format!("accounts/{}", Uuid::now_v7()),
            token_id: "t".into(),
            roles: roles
                .iter()
                .map(|(role, zones)| RoleBinding {
                    role: (*role).into(),
                    org: None,
                    zones: zones.iter().map(|z| (*z).to_string()).collect(),
                })
                .collect(),
            expires_at: 0,
        }
    }

    #[test]
    fn roles_outside_the_operation_reach_nothing() {
        let coach = principal(&[("coach", &["oujda"])]);
        assert!(Scope::read(&coach).is_empty());
        assert!(Scope::staff(&coach).require("no").is_err());
        let auditor = principal(&[("auditor", &[])]);
        assert!(Scope::read(&auditor).staff.all);
        assert!(Scope::staff(&auditor).is_empty(), "auditors read, they do not write");
        assert!(Scope::read(&principal(&[("beneficiary", &[])])).account.is_some());
        assert!(Scope::read(&principal(&[("reviewer", &[])])).reviewer.is_some());
    }
}
