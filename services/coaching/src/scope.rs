//! Who sees which coaching records: admins and auditors everything; program managers and
//! officers the engagements of their zones; coaches the engagements assigned to them and the
//! sessions they lead; beneficiaries their own engagements and sessions. Out of scope is
//! NOT_FOUND.

use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;
use work4life_platform::{
    auth::Principal,
    scope::{ZoneScope, account_of},
};

/// A caller's reach for one kind of operation.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Staff bindings (or everything).
    pub staff: ZoneScope,
    /// The coach's own engagements and sessions.
    pub coach: Option<Uuid>,
    /// The beneficiary's own.
    pub account: Option<Uuid>,
}

impl Scope {
    /// What a caller may read.
    pub fn read(p: &Principal) -> Self {
        Self {
            staff: ZoneScope::of(p, &["admin", "auditor"], &["program_manager", "officer"]),
            coach: if p.has_role("coach") { account_of(p) } else { None },
            account: if p.has_role("beneficiary") { account_of(p) } else { None },
        }
    }

    /// Everything (for reading back what was just written).
    pub fn everything() -> Self {
        Self { staff: ZoneScope::everything(), coach: None, account: None }
    }

    /// Desk work: engagements, coaches, sessions of others (officers, program managers, admins).
    pub fn staff(p: &Principal) -> ZoneScope {
        ZoneScope::of(p, &["admin"], &["program_manager", "officer"])
    }

    /// Office hours and coach profiles: program managers and admins.
    pub fn managers(p: &Principal) -> ZoneScope {
        ZoneScope::of(p, &["admin"], &["program_manager"])
    }

    /// Appends `AND (<the scope>)` for engagements aliased `e`.
    pub fn push_engagements(&self, qb: &mut QueryBuilder<Postgres>) {
        if self.staff.all {
            return;
        }
        qb.push(" AND (FALSE");
        self.staff.push_or(qb, "e.zone", "NULL::uuid");
        if let Some(coach) = self.coach {
            qb.push(" OR e.coach_id = ").push_bind(coach);
        }
        if let Some(account) = self.account {
            qb.push(" OR ").push_bind(account).push(" = ANY(e.beneficiary_accounts)");
        }
        qb.push(")");
    }

    /// Appends `AND (<the scope>)` for sessions aliased `s`: led by the coach, or of an
    /// engagement in scope.
    pub fn push_sessions(&self, qb: &mut QueryBuilder<Postgres>) {
        if self.staff.all {
            return;
        }
        qb.push(" AND (FALSE");
        if let Some(coach) = self.coach {
            qb.push(" OR s.coach_id = ").push_bind(coach);
        }
        qb.push(" OR s.id = ANY(ARRAY(SELECT se.session_id FROM session_engagements se JOIN engagements e ON e.id = se.engagement_id WHERE TRUE");
        self.push_engagements(qb);
        qb.push(")))");
    }
}
