//! request_id replay, mismatch and concurrent duplicates, against PostgreSQL.

use std::time::Duration;

use work4life_platform::{
    ServiceError,
    idempotency::{Begun, begin, request_hash},
};
use work4life_proto::testing::{EchoRequest, EchoResponse};

use crate::common::fresh_schema;

/// The effect under test: one row in `effects` per fresh request.
async fn create(pool: &sqlx::PgPool, request_id: &str, request: &EchoRequest, hold: Duration) -> Result<EchoResponse, ServiceError> {
    match begin::<EchoResponse>(pool, "test.Create", request_id, &request_hash(request)).await? {
        Begun::Replay(response) => Ok(response),
        Begun::Fresh(mut fresh) => {
            let n: i64 = sqlx::query_scalar("INSERT INTO effects (payload) VALUES ($1) RETURNING id")
                .bind(&request.message)
                .fetch_one(&mut *fresh.tx)
                .await?;
            tokio::time::sleep(hold).await;
            let response = EchoResponse { message: format!("created {n}"), payload: vec![] };
            fresh.commit(&response).await?;
            Ok(response)
        }
    }
}

async fn setup() -> sqlx::PgPool {
    let (pool, _) = fresh_schema().await;
    sqlx::query("CREATE TABLE effects (id bigserial PRIMARY KEY, payload text)").execute(&pool).await.expect("table");
    pool
}

async fn effects(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM effects").fetch_one(pool).await.expect("count")
}

#[tokio::test]
async fn replay_returns_the_first_response_and_has_no_second_effect() {
    let pool = setup().await;
    let id = uuid::Uuid::new_v4().to_string();
    let request = EchoRequest { message: "grant 1".into(), payload: vec![] };
    let first = create(&pool, &id, &request, Duration::ZERO).await.expect("first");
    let again = create(&pool, &id, &request, Duration::ZERO).await.expect("replay");
    assert_eq!(first, again);
    assert_eq!(effects(&pool).await, 1);
}

#[tokio::test]
async fn same_id_with_another_request_is_refused() {
    let pool = setup().await;
    let id = uuid::Uuid::new_v4().to_string();
    create(&pool, &id, &EchoRequest { message: "a".into(), payload: vec![] }, Duration::ZERO).await.expect("first");
    let err = create(&pool, &id, &EchoRequest { message: "b".into(), payload: vec![] }, Duration::ZERO).await.expect_err("mismatch");
    assert!(matches!(err, ServiceError::InvalidArgument(ref v) if v[0].field == "request_id"), "{err:?}");
    assert_eq!(effects(&pool).await, 1);
    let bad = create(&pool, "not-a-uuid", &EchoRequest::default(), Duration::ZERO).await.expect_err("bad id");
    assert!(matches!(bad, ServiceError::InvalidArgument(_)));
}

#[tokio::test]
async fn concurrent_duplicates_wait_and_get_the_same_answer() {
    let pool = setup().await;
    let id = uuid::Uuid::new_v4().to_string();
    let request = EchoRequest { message: "pay".into(), payload: vec![] };
    let calls = (0..6).map(|_| {
        let (pool, id, request) = (pool.clone(), id.clone(), request.clone());
        tokio::spawn(async move { create(&pool, &id, &request, Duration::from_millis(300)).await })
    });
    let results: Vec<_> = futures::future::join_all(calls).await.into_iter().map(|r| r.expect("join").expect("ok")).collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
    assert_eq!(effects(&pool).await, 1, "one effect for six concurrent duplicates");
}

#[tokio::test]
async fn a_rolled_back_first_attempt_leaves_the_id_free() {
    let pool = setup().await;
    let id = uuid::Uuid::new_v4().to_string();
    let request = EchoRequest { message: "x".into(), payload: vec![] };
    match begin::<EchoResponse>(&pool, "test.Create", &id, &request_hash(&request)).await.expect("begin") {
        Begun::Fresh(fresh) => fresh.tx.rollback().await.expect("rollback"),
        Begun::Replay(_) => panic!("fresh expected"),
    }
    create(&pool, &id, &request, Duration::ZERO).await.expect("retry runs");
    assert_eq!(effects(&pool).await, 1);
}

#[tokio::test]
async fn expired_request_ids_are_pruned_and_fresh_ones_kept() {
    let pool = setup().await;
    let old = uuid::Uuid::new_v4().to_string();
    let recent = uuid::Uuid::new_v4().to_string();
    let request = EchoRequest { message: "m".into(), payload: vec![] };
    create(&pool, &old, &request, Duration::ZERO).await.expect("old");
    create(&pool, &recent, &request, Duration::ZERO).await.expect("recent");
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '8 days' WHERE request_id = $1")
        .bind(&old)
        .execute(&pool)
        .await
        .expect("age");
    let removed = work4life_platform::idempotency::prune(&pool, work4life_platform::idempotency::RETENTION).await.expect("prune");
    assert_eq!(removed, 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT request_id FROM idempotency_keys").fetch_all(&pool).await.expect("left");
    assert_eq!(left, vec![recent]);
}
