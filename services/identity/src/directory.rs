//! The directory: organisations, staff accounts and their role bindings. Validation that
//! normalises what it accepts (email to lower case, phone to E.164), who may read and change
//! what, and every write with its audit record and event in one transaction.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;
use work4life_platform::{FieldViolation, ServiceError, audit, outbox};

/// Every role a binding may carry.
pub const ROLES: [&str; 10] = [
    "admin",
    "program_manager",
    "officer",
    "reviewer",
    "coach",
    "finance_officer",
    "finance_checker",
    "auditor",
    "beneficiary",
    "partner_system",
];
/// Account kinds as stored.
pub const ACCOUNT_KINDS: [&str; 3] = ["staff", "beneficiary", "service"];
/// Organisation kinds as stored.
pub const KINDS: [&str; 5] = ["partner_ngo", "incubator", "employer", "donor", "payment_provider"];
const MAX_NAME_LEN: usize = 200;

pub use work4life_platform::contact::{normalize_email, normalize_phone};

fn display_name(field: &str, raw: &str) -> Result<String, FieldViolation> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(FieldViolation::new(field, format!("is longer than {MAX_NAME_LEN} characters")));
    }
    Ok(name.to_string())
}

fn zones(field: &str, raw: &[String]) -> Result<Vec<String>, FieldViolation> {
    let mut out = Vec::with_capacity(raw.len());
    for zone in raw {
        let ok = !zone.is_empty()
            && zone.len() <= 40
            && zone.starts_with(|c: char| c.is_ascii_lowercase())
            && zone.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(FieldViolation::new(field, format!("{zone:?} is not a zone code (lower case letters, digits, _)")));
        }
        if !out.contains(zone) {
            out.push(zone.clone());
        }
    }
    out.sort();
    Ok(out)
}

pub use work4life_platform::wire::parse_name;

/// An organisation as stored.
#[derive(Debug, Clone)]
pub struct OrganizationRow {
    /// Id.
    pub id: Uuid,
    /// Unique name.
    pub display_name: String,
    /// Kind, as in [`KINDS`].
    pub kind: String,
    /// Zones.
    pub zones: Vec<String>,
    /// Created.
    pub created_at: OffsetDateTime,
}

/// A role binding as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Role.
    pub role: String,
    /// Organisation scope.
    pub organization_id: Option<Uuid>,
    /// Zone scope.
    pub zones: Vec<String>,
}

/// An account as stored, with its bindings.
#[derive(Debug, Clone)]
pub struct AccountRow {
    /// Id.
    pub id: Uuid,
    /// Lower-case email.
    pub email: Option<String>,
    /// E.164 phone.
    pub phone: Option<String>,
    /// Shown name.
    pub display_name: String,
    /// Organisation.
    pub organization_id: Option<Uuid>,
    /// `active` or `disabled`.
    pub status: String,
    /// As in [`ACCOUNT_KINDS`].
    pub kind: String,
    /// Optimistic-concurrency version (the etag).
    pub version: i64,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Role bindings.
    pub bindings: Vec<Binding>,
}

impl AccountRow {
    /// The etag of this version.
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }
}

/// Input of a new account, validated.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// As in [`ACCOUNT_KINDS`].
    pub kind: String,
    /// Email (required for staff).
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Name.
    pub display_name: String,
    /// Organisation.
    pub organization_id: Option<Uuid>,
}

impl NewAccount {
    /// Validates every field, reporting all violations at once. Staff need an email (their
    /// login), beneficiaries a phone (their one-time codes).
    pub fn parse(kind: &str, email: &str, phone: &str, name: &str, organization: &str) -> Result<Self, ServiceError> {
        let mut violations = Vec::new();
        let email = if email.trim().is_empty() && kind != "staff" {
            Some(None)
        } else {
            normalize_email("account.email", email).map(Some).map_err(|v| violations.push(v)).ok()
        };
        let phone = normalize_phone("account.phone", phone).map_err(|v| violations.push(v)).ok().flatten();
        if kind == "beneficiary" && phone.is_none() && !violations.iter().any(|v| v.field == "account.phone") {
            violations.push(FieldViolation::new("account.phone", "is required for a beneficiary (codes are sent to it)"));
        }
        let display_name = display_name("account.display_name", name).map_err(|v| violations.push(v)).ok();
        let organization_id = if organization.is_empty() {
            None
        } else {
            match parse_name("account.organization", "organizations", organization) {
                Ok(id) => Some(id),
                Err(ServiceError::InvalidArgument(v)) => {
                    violations.extend(v);
                    None
                }
                Err(other) => return Err(other),
            }
        };
        match (email, display_name) {
            (Some(email), Some(display_name)) if violations.is_empty() => {
                Ok(Self { kind: kind.to_string(), email, phone, display_name, organization_id })
            }
            _ => Err(ServiceError::InvalidArgument(violations)),
        }
    }
}

/// Validates an organisation.
pub fn parse_organization(name: &str, kind: &str, raw_zones: &[String]) -> Result<(String, Vec<String>), ServiceError> {
    let mut violations = Vec::new();
    let name = display_name("organization.display_name", name).map_err(|v| violations.push(v)).ok();
    if !KINDS.contains(&kind) {
        violations
            .push(FieldViolation::new("organization.kind", "is required (partner NGO, incubator, employer, donor or payment provider)"));
    }
    let zones = zones("organization.zones", raw_zones).map_err(|v| violations.push(v)).ok();
    match (name, zones) {
        (Some(name), Some(zones)) if violations.is_empty() => Ok((name, zones)),
        _ => Err(ServiceError::InvalidArgument(violations)),
    }
}

/// Validates a role binding.
pub fn parse_binding(role: &str, organization: &str, raw_zones: &[String]) -> Result<Binding, ServiceError> {
    let mut violations = Vec::new();
    if !ROLES.contains(&role) {
        violations.push(FieldViolation::new("role_binding.role", format!("must be one of {}", ROLES.join(", "))));
    }
    let organization_id = if organization.is_empty() {
        None
    } else {
        parse_name("role_binding.organization", "organizations", organization)
            .map_err(|e| {
                if let ServiceError::InvalidArgument(v) = e {
                    violations.extend(v);
                }
            })
            .ok()
    };
    let zones = zones("role_binding.zones", raw_zones).map_err(|v| violations.push(v)).ok();
    if role == "admin" && (organization_id.is_some() || zones.as_ref().is_some_and(|z| !z.is_empty())) {
        violations.push(FieldViolation::new("role_binding.role", "admin is global: no organisation, no zones"));
    }
    if role != "admin" && organization_id.is_none() && zones.as_ref().is_some_and(Vec::is_empty) {
        violations.push(FieldViolation::new("role_binding.organization", "only admin may be global: give an organisation or zones"));
    }
    match zones {
        Some(zones) if violations.is_empty() => Ok(Binding { role: role.to_string(), organization_id, zones }),
        _ => Err(ServiceError::InvalidArgument(violations)),
    }
}

/// Who may do what in the directory.
pub mod policy {
    use uuid::Uuid;
    use work4life_platform::{ServiceError, auth::Principal};

    fn org_name(id: Uuid) -> String {
        format!("organizations/{id}")
    }

    /// Organisations a principal manages as program manager.
    pub fn managed_orgs(p: &Principal) -> Vec<String> {
        p.roles.iter().filter(|b| b.role == "program_manager").filter_map(|b| b.org.clone()).collect()
    }

    /// Admins anywhere; program managers for accounts of their organisation.
    pub fn can_manage(p: &Principal, organization: Option<Uuid>) -> bool {
        p.has_role("admin") || organization.is_some_and(|o| managed_orgs(p).contains(&org_name(o)))
    }

    /// Yourself, admins, auditors, and managers of the account's organisation.
    pub fn can_read(p: &Principal, account: Uuid, organization: Option<Uuid>) -> bool {
        p.subject == format!("accounts/{account}") || p.has_role("auditor") || can_manage(p, organization)
    }

    /// Refuses unless `allowed`.
    pub fn require(allowed: bool, why: &'static str) -> Result<(), ServiceError> {
        if allowed { Ok(()) } else { Err(ServiceError::PermissionDenied(why)) }
    }
}

fn unique_violation(err: sqlx::Error) -> ServiceError {
    if let Some(constraint) = work4life_platform::error::unique_violated(&err) {
        let (field, resource) = match constraint {
            c if c.contains("phone") => ("phone", "an account with this phone"),
            c if c.contains("email") => ("email", "an account with this email"),
            c if c.contains("name") => ("display_name", "an organisation with this name"),
            _ => ("", "a resource with these values"),
        };
        return ServiceError::AlreadyExists {
            resource: resource.to_string(),
            reason: "DUPLICATE",
            metadata: std::collections::HashMap::from([("field".to_string(), field.to_string())]),
        };
    }
    err.into()
}

/// The store.
#[derive(Clone)]
pub struct Directory {
    pool: PgPool,
}

pub use work4life_platform::audit::Actor;

impl Directory {
    /// The directory over identity's pool.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool (for idempotent requests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Inserts an organisation in `tx`.
    pub async fn create_organization(
        &self,
        tx: &mut PgConnection,
        actor: &Actor<'_>,
        name: &str,
        kind: &str,
        zones: &[String],
    ) -> Result<OrganizationRow, ServiceError> {
        let id = Uuid::now_v7();
        let row = sqlx::query_as!(
            OrganizationRow,
            "INSERT INTO organizations (id, name, kind, zones) VALUES ($1, $2, $3, $4) RETURNING id, name AS display_name, kind, zones, created_at",
            id,
            name,
            kind,
            zones
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(unique_violation)?;
        audit::append(tx, &actor.entry("identity.CreateOrganization", format!("organizations/{id}"), serde_json::json!({ "kind": kind })))
            .await?;
        Ok(row)
    }

    /// One organisation.
    pub async fn organization(&self, id: Uuid) -> Result<OrganizationRow, ServiceError> {
        sqlx::query_as!(OrganizationRow, "SELECT id, name AS display_name, kind, zones, created_at FROM organizations WHERE id = $1", id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("organizations/{id}")))
    }

    /// Organisations after `after` (display name, id), by name.
    pub async fn organizations(&self, after: Option<(String, Uuid)>, limit: i64) -> Result<Vec<OrganizationRow>, ServiceError> {
        let (after_name, after_id) = after.unwrap_or_default();
        Ok(sqlx::query_as!(
            OrganizationRow,
            "SELECT id, name AS display_name, kind, zones, created_at FROM organizations WHERE (name, id) > ($1, $2) ORDER BY name, id LIMIT $3",
            after_name,
            after_id,
            limit
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Inserts an account in `tx`, with its audit record and event.
    pub async fn create_account(&self, tx: &mut PgConnection, actor: &Actor<'_>, new: &NewAccount) -> Result<AccountRow, ServiceError> {
        if let Some(org) = new.organization_id {
            let exists = sqlx::query_scalar!("SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1)", org)
                .fetch_one(&mut *tx)
                .await?
                .unwrap_or(false);
            if !exists {
                return Err(ServiceError::invalid("account.organization", "no such organisation"));
            }
        }
        let id = Uuid::now_v7();
        sqlx::query!(
            "INSERT INTO accounts (id, kind, email, phone, display_name, organization_id) VALUES ($1, $2, $3, $4, $5, $6)",
            id,
            new.kind,
            new.email,
            new.phone,
            new.display_name,
            new.organization_id
        )
        .execute(&mut *tx)
        .await
        .map_err(unique_violation)?;
        audit::append(tx, &actor.entry("identity.CreateAccount", format!("accounts/{id}"), serde_json::json!({}))).await?;
        let account = load_account(tx, id).await?;
        Ok(account)
    }

    /// One account with its bindings.
    pub async fn account(&self, id: Uuid) -> Result<AccountRow, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        load_account(&mut conn, id).await
    }

    /// Accounts matching the filters, after `after` (email, id), by email.
    pub async fn accounts(
        &self,
        filter: &AccountFilter,
        after: Option<(String, Uuid)>,
        limit: i64,
    ) -> Result<Vec<AccountRow>, ServiceError> {
        let (after_email, after_id) = after.unwrap_or_default();
        let ids = sqlx::query_scalar!(
            "SELECT a.id FROM accounts a \
             WHERE ($1::uuid[] IS NULL OR a.organization_id = ANY($1)) \
               AND ($2::text IS NULL OR a.status = $2) \
               AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM role_bindings b WHERE b.account_id = a.id AND b.role = $3)) \
               AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM role_bindings b WHERE b.account_id = a.id AND (b.zones = '{}' OR $4 = ANY(b.zones)))) \
               AND (coalesce(a.email, ''), a.id) > ($5, $6) \
             ORDER BY coalesce(a.email, ''), a.id LIMIT $7",
            filter.organizations.as_deref(),
            filter.status.as_deref(),
            filter.role.as_deref(),
            filter.zone.as_deref(),
            after_email,
            after_id,
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            rows.push(load_account(&mut conn, id).await?);
        }
        Ok(rows)
    }

    /// Applies `change` to the account if `etag` (when given) matches; audits it.
    pub async fn update_account(&self, actor: &Actor<'_>, id: Uuid, etag: &str, change: AccountChange) -> Result<AccountRow, ServiceError> {
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let current = lock_account(&mut tx, id, etag).await?;
        let email = change.email.or(current.email.clone());
        let phone = match change.phone {
            Some(phone) => phone,
            None => current.phone.clone(),
        };
        let display_name = change.display_name.unwrap_or(current.display_name.clone());
        let status = change.status.unwrap_or(current.status.clone());
        sqlx::query!(
            "UPDATE accounts SET email = $2, phone = $3, display_name = $4, status = $5, version = version + 1, updated_at = now() WHERE id = $1",
            id,
            email,
            phone,
            display_name,
            status
        )
        .execute(&mut *tx)
        .await
        .map_err(unique_violation)?;
        if status == "disabled" && current.status != "disabled" {
            sqlx::query!("UPDATE refresh_tokens SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL", id)
                .execute(&mut *tx)
                .await?;
            outbox::enqueue(&mut tx, "identity", "identity.account.disabled", &format!("accounts/{id}"), prost_types::Any::default())
                .await?;
        }
        let action = if status != current.status {
            if status == "disabled" { "identity.DisableAccount" } else { "identity.EnableAccount" }
        } else {
            "identity.UpdateAccount"
        };
        audit::append(&mut tx, &actor.entry(action, format!("accounts/{id}"), serde_json::json!({ "from_version": current.version })))
            .await?;
        let updated = load_account(&mut tx, id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Adds a binding (idempotent: an identical binding is not duplicated); audits and emits.
    pub async fn grant(&self, actor: &Actor<'_>, id: Uuid, binding: &Binding) -> Result<AccountRow, ServiceError> {
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let current = lock_account(&mut tx, id, "").await?;
        if let Some(org) = binding.organization_id {
            let exists = sqlx::query_scalar!("SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1)", org)
                .fetch_one(&mut *tx)
                .await?
                .unwrap_or(false);
            if !exists {
                return Err(ServiceError::invalid("role_binding.organization", "no such organisation"));
            }
        }
        if !current.bindings.contains(binding) {
            sqlx::query!(
                "INSERT INTO role_bindings (id, account_id, role, organization_id, zones) VALUES ($1, $2, $3, $4, $5)",
                Uuid::now_v7(),
                id,
                binding.role,
                binding.organization_id,
                &binding.zones
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!("UPDATE accounts SET version = version + 1, updated_at = now() WHERE id = $1", id).execute(&mut *tx).await?;
            outbox::enqueue(&mut tx, "identity", "identity.role.granted", &format!("accounts/{id}"), prost_types::Any::default()).await?;
            let details = serde_json::json!({ "role": binding.role, "organization": binding.organization_id, "zones": binding.zones });
            audit::append(&mut tx, &actor.entry("identity.GrantRole", format!("accounts/{id}"), details)).await?;
        }
        let updated = load_account(&mut tx, id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Removes a binding; NOT_FOUND when the account has no such binding.
    pub async fn revoke(&self, actor: &Actor<'_>, id: Uuid, binding: &Binding) -> Result<AccountRow, ServiceError> {
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        lock_account(&mut tx, id, "").await?;
        let removed = sqlx::query!(
            "DELETE FROM role_bindings WHERE account_id = $1 AND role = $2 AND organization_id IS NOT DISTINCT FROM $3 AND zones = $4",
            id,
            binding.role,
            binding.organization_id,
            &binding.zones
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if removed == 0 {
            return Err(ServiceError::NotFound(format!("that role binding of accounts/{id}")));
        }
        sqlx::query!("UPDATE accounts SET version = version + 1, updated_at = now() WHERE id = $1", id).execute(&mut *tx).await?;
        outbox::enqueue(&mut tx, "identity", "identity.role.revoked", &format!("accounts/{id}"), prost_types::Any::default()).await?;
        let details = serde_json::json!({ "role": binding.role, "organization": binding.organization_id, "zones": binding.zones });
        audit::append(&mut tx, &actor.entry("identity.RevokeRole", format!("accounts/{id}"), details)).await?;
        let updated = load_account(&mut tx, id).await?;
        tx.commit().await?;
        Ok(updated)
    }
}

/// Filters of ListAccounts, after the caller's scope is applied.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    /// Only these organisations (`None`: any).
    pub organizations: Option<Vec<Uuid>>,
    /// Only this status.
    pub status: Option<String>,
    /// Only holders of this role.
    pub role: Option<String>,
    /// Only bindings covering this zone.
    pub zone: Option<String>,
}

/// A change to an account; `None` leaves a field as it is (`phone: Some(None)` clears it).
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    /// New email.
    pub email: Option<String>,
    /// New phone.
    pub phone: Option<Option<String>>,
    /// New name.
    pub display_name: Option<String>,
    /// New status.
    pub status: Option<String>,
}

impl AccountChange {
    /// Validates the masked fields of an update.
    pub fn parse(mask: &[String], email: &str, phone: &str, name: &str) -> Result<Self, ServiceError> {
        if mask.is_empty() {
            return Err(ServiceError::invalid("update_mask", "name the fields to change: display_name, email, phone"));
        }
        let mut change = Self::default();
        let mut violations = Vec::new();
        for path in mask {
            match path.as_str() {
                "email" => change.email = normalize_email("account.email", email).map_err(|v| violations.push(v)).ok(),
                "phone" => change.phone = normalize_phone("account.phone", phone).map_err(|v| violations.push(v)).ok(),
                "display_name" => change.display_name = display_name("account.display_name", name).map_err(|v| violations.push(v)).ok(),
                other => {
                    violations.push(FieldViolation::new("update_mask", format!("{other:?} cannot be updated (display_name, email, phone)")))
                }
            }
        }
        if violations.is_empty() { Ok(change) } else { Err(ServiceError::InvalidArgument(violations)) }
    }
}

async fn lock_account(tx: &mut PgConnection, id: Uuid, etag: &str) -> Result<AccountRow, ServiceError> {
    let version = sqlx::query_scalar!("SELECT version FROM accounts WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("accounts/{id}")))?;
    if !etag.is_empty() && etag != format!("v{version}") {
        return Err(ServiceError::Aborted {
            reason: "ETAG_MISMATCH",
            message: format!("accounts/{id} changed since etag {etag}; get it again"),
        });
    }
    load_account(tx, id).await
}

async fn load_account(conn: &mut PgConnection, id: Uuid) -> Result<AccountRow, ServiceError> {
    let row = sqlx::query!(
        "SELECT id, email, phone, display_name, organization_id, status, kind, version, created_at FROM accounts WHERE id = $1",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ServiceError::NotFound(format!("accounts/{id}")))?;
    let bindings =
        sqlx::query_as!(Binding, "SELECT role, organization_id, zones FROM role_bindings WHERE account_id = $1 ORDER BY role, id", id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(AccountRow {
        id: row.id,
        email: row.email,
        phone: row.phone,
        display_name: row.display_name,
        organization_id: row.organization_id,
        status: row.status,
        kind: row.kind,
        version: row.version,
        created_at: row.created_at,
        bindings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_admin_is_global_others_are_scoped() {
        assert!(parse_binding("admin", "", &[]).is_ok());
        assert!(parse_binding("admin", "", &["oujda".into()]).is_err());
        assert!(parse_binding("officer", "", &[]).is_err(), "an officer must be scoped");
        assert!(parse_binding("officer", "", &["oujda".into()]).is_ok());
        assert!(parse_binding("wizard", "", &["oujda".into()]).is_err());
        assert!(parse_binding("officer", "", &["Oujda".into()]).is_err());
    }
}
