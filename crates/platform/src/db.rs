//! PostgreSQL access: one pool per service, pinned to the service's own schema (`search_path`),
//! so that a service's SQL names only its own tables and no service reads another's. Migrations
//! are the platform's tables (outbox, inbox, idempotency, audit) followed by the service's own,
//! tracked in `<schema>._sqlx_migrations`. Transactions started with [`begin`] inherit the
//! current call's deadline as a `statement_timeout`, so an abandoned call stops its queries.

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool, Postgres, Transaction,
    migrate::{Migration, Migrator},
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::error::ServiceError;

/// The platform's own tables, applied first in every service schema.
pub static PLATFORM_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Connects a pool whose connections see only `schema` (plus `pg_catalog`).
pub async fn connect(url: &str, schema: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    check_schema_name(schema)?;
    let options = PgConnectOptions::from_str(url)?.options([("search_path", schema)]).application_name(&format!("work4life-{schema}"));
    let pool = PgPoolOptions::new().max_connections(max_connections).acquire_timeout(Duration::from_secs(5)).connect_with(options).await?;
    Ok(pool)
}

fn check_schema_name(schema: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !schema.is_empty() && schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()),
        "schema name {schema:?} must be lower-case letters, digits and underscores"
    );
    Ok(())
}

/// The platform migrations followed by `service`'s, recorded in `<schema>._sqlx_migrations`.
/// Platform versions are small integers (1, 2, ...); services number theirs by date
/// (`20261129000001`), so the two sequences never collide.
pub fn migrator(schema: &str, service: &Migrator) -> anyhow::Result<Migrator> {
    check_schema_name(schema)?;
    let migrations: Vec<Migration> = PLATFORM_MIGRATIONS.iter().chain(service.iter()).cloned().collect();
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.create_schema(schema.to_string());
    migrator.dangerous_set_table_name(format!("{schema}._sqlx_migrations"));
    Ok(migrator)
}

/// Creates the database named in `url` if it does not exist (first local run).
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    use sqlx::{ConnectOptions, Connection};
    let options = PgConnectOptions::from_str(url)?;
    let Some(name) = options.get_database().map(str::to_string) else { return Ok(()) };
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)").bind(&name).fetch_one(&mut admin).await?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        // A concurrent creator wins the race: duplicate_database (42P04) is success too.
        if let Err(err) = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}"))).execute(&mut admin).await {
            let duplicate = err.as_database_error().and_then(|e| e.code()).is_some_and(|c| c == "42P04" || c == "23505");
            if !duplicate {
                return Err(err.into());
            }
        }
    }
    admin.close().await?;
    Ok(())
}

/// Begins a transaction bounded by the current call's deadline: PostgreSQL itself cancels a
/// statement still running when the caller has given up (SQLSTATE 57014, mapped to
/// DEADLINE_EXCEEDED).
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, ServiceError> {
    bounded(pool.begin().await?).await
}

/// [`begin`] for a consistent read: one REPEATABLE READ, READ ONLY snapshot for every statement
/// (a report whose figures must agree with each other).
pub async fn begin_snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, ServiceError> {
    bounded(pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?).await
}

async fn bounded(mut tx: Transaction<'static, Postgres>) -> Result<Transaction<'static, Postgres>, ServiceError> {
    if let Some(deadline) = crate::stack::current_deadline() {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        if remaining.is_zero() {
            return Err(ServiceError::DeadlineExceeded);
        }
        let millis = remaining.as_millis().max(1).to_string();
        sqlx::query("SELECT set_config('statement_timeout', $1, true)").bind(millis).execute(&mut *tx).await?;
    }
    Ok(tx)
}
