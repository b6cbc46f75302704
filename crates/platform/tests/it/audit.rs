//! The audit chain: append, database-enforced immutability, tamper detection.

use work4life_platform::audit::{AuditEntry, Verification, append, verify};

use crate::common::fresh_schema;

async fn append_n(pool: &sqlx::PgPool, n: usize) {
    for i in 0..n {
        let mut tx = pool.begin().await.expect("tx");
        let entry = AuditEntry {
            actor: format!("accounts/{i}"),
            action: "intake.GetApplicant".into(),
            resource: format!("applicants/{i}"),
            source_addr: "127.0.0.1:5555".into(),
            request_id: format!("req-{i}"),
            details: serde_json::json!({"fields": ["document_number"], "i": i}),
        };
        append(&mut tx, &entry).await.expect("append");
        tx.commit().await.expect("commit");
    }
}

#[tokio::test]
async fn an_intact_chain_verifies_and_concurrent_appends_do_not_fork_it() {
    let (pool, _) = fresh_schema().await;
    append_n(&pool, 3).await;
    let tasks = (0..5).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move { append_n(&pool, 4).await })
    });
    for t in futures::future::join_all(tasks).await {
        t.expect("join");
    }
    assert_eq!(verify(&pool).await.expect("verify"), Verification::Intact { records: 23 });
}

#[tokio::test]
async fn the_database_refuses_update_delete_and_truncate() {
    let (pool, _) = fresh_schema().await;
    append_n(&pool, 2).await;
    for sql in ["UPDATE audit_log SET actor = 'someone else' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 2", "TRUNCATE audit_log"] {
        let err = sqlx::query(sql).execute(&pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(verify(&pool).await.expect("verify"), Verification::Intact { records: 2 });
}

#[tokio::test]
async fn the_verifier_finds_the_first_altered_or_missing_record() {
    let (pool, _) = fresh_schema().await;
    append_n(&pool, 6).await;
    // A superuser bypasses the trigger (replica mode) to forge history; the hashes betray it.
    let mut conn = pool.acquire().await.expect("conn");
    sqlx::query("SET session_replication_role = replica").execute(&mut *conn).await.expect("replica");
    sqlx::query("UPDATE audit_log SET resource = 'applicants/forged' WHERE seq = 4").execute(&mut *conn).await.expect("forge");
    assert_eq!(verify(&pool).await.expect("verify"), Verification::Broken { seq: 4, reason: "record altered" });
    sqlx::query("DELETE FROM audit_log WHERE seq = 2").execute(&mut *conn).await.expect("delete");
    sqlx::query("SET session_replication_role = origin").execute(&mut *conn).await.expect("origin");
    assert_eq!(verify(&pool).await.expect("verify"), Verification::Broken { seq: 2, reason: "record missing" });
}
