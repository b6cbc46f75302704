//! Who may see and do what with the program's money. Admins and auditors read everything;
//! program managers, finance officers and finance checkers reach the awards of their zones and
//! organisation (a line's partner); beneficiaries their own awards and payments. Out of scope is
//! NOT_FOUND; a role that cannot do something at all is PERMISSION_DENIED.

use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;
use work4life_platform::{
    ServiceError,
    auth::Principal,
    scope::{ZoneScope, account_of},
};

/// Staff roles that read the program's money within their zones.
const MONEY_STAFF: [&str; 3] = ["program_manager", "finance_officer", "finance_checker"];

/// A caller's reach over awards and disbursements.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Staff bindings (or everything).
    pub staff: ZoneScope,
    /// The beneficiary's own.
    pub account: Option<Uuid>,
}

impl Scope {
    /// What a caller may read.
    pub fn read(p: &Principal) -> Self {
        Self {
            staff: ZoneScope::of(p, &["admin", "auditor"], &MONEY_STAFF),
            account: if p.has_role("beneficiary") { account_of(p) } else { None },
        }
    }

    /// Everything (reading back what was just written).
    pub fn everything() -> Self {
        Self { staff: ZoneScope::everything(), account: None }
    }

    /// Whether it reaches an award of `zone` on a line of `partner`, or the beneficiary's own.
    pub fn covers(&self, zone: &str, partner: Option<Uuid>, accounts: &[Uuid]) -> bool {
        self.staff.covers(zone, partner) || self.account.is_some_and(|a| accounts.contains(&a))
    }

    /// Appends `AND (<the scope>)` for a table aliased `a` with `zone`, `partner` and `award_id`
    /// (or `id` for awards themselves: `award_column`).
    pub fn push(&self, qb: &mut QueryBuilder<Postgres>, award_column: &str) {
        if self.staff.all {
            return;
        }
        qb.push(" AND (FALSE");
        self.staff.push_or(qb, "a.zone", "a.partner");
        if let Some(account) = self.account {
            qb.push(format_args!(
                " OR EXISTS (SELECT 1 FROM award_beneficiaries b WHERE b.award_id = a.{award_column} AND b.account_id = "
            ))
            .push_bind(account)
            .push(")");
        }
        qb.push(")");
    }
}

/// Program managers and finance officers of the zone (and admins) create, amend and cancel awards.
pub fn award_managers(p: &Principal) -> ZoneScope {
    ZoneScope::of(p, &["admin"], &["program_manager", "finance_officer"])
}

/// Makers: finance officers request disbursements and make payment batches.
pub fn makers(p: &Principal) -> ZoneScope {
    ZoneScope::of(p, &[], &["finance_officer"])
}

/// Checkers: finance checkers approve or refuse disbursements.
pub fn checkers(p: &Principal) -> ZoneScope {
    ZoneScope::of(p, &[], &["finance_checker"])
}

/// Budgets, lines and the ledger: admins, auditors, program managers and finance staff.
pub fn require_budget_reader(p: &Principal) -> Result<(), ServiceError> {
    if ["admin", "auditor"].iter().chain(MONEY_STAFF.iter()).any(|r| p.has_role(r)) {
        Ok(())
    } else {
        Err(ServiceError::PermissionDenied("budgets and the ledger are read by admins, auditors, program managers and finance staff"))
    }
}

/// Budgets and lines are made by admins and program managers bound to no zone.
pub fn require_budget_owner(p: &Principal) -> Result<(), ServiceError> {
    if p.has_role("admin") || p.roles.iter().any(|b| b.role == "program_manager" && b.zones.is_empty()) {
        Ok(())
    } else {
        Err(ServiceError::PermissionDenied("budgets and lines are made by admins and program managers of the whole program"))
    }
}

/// The donor's report: admins, auditors and program managers.
pub fn require_reporter(p: &Principal) -> Result<(), ServiceError> {
    if ["admin", "auditor", "program_manager"].iter().any(|r| p.has_role(r)) {
        Ok(())
    } else {
        Err(ServiceError::PermissionDenied("the donor's report is read by admins, auditors and program managers"))
    }
}
