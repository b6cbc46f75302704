//! Keyset pagination over a real table with signed, filter-bound page tokens.

use work4life_platform::{
    ServiceError,
    pagination::{PageTokens, next_page, page_size},
};

use crate::common::fresh_schema;

async fn list(
    pool: &sqlx::PgPool,
    tokens: &PageTokens,
    zone: &str,
    size: i32,
    token: &str,
) -> Result<(Vec<(String, i64)>, String), ServiceError> {
    let filter = format!("test.ListPeople;zone={zone};order=name,id");
    let size = page_size(size)?;
    let after: Option<(String, i64)> = tokens.decode(token, &filter)?;
    let (after_name, after_id) = after.unwrap_or_default();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, id FROM people WHERE zone = $1 AND (name, id) > ($2, $3) ORDER BY name, id LIMIT $4")
            .bind(zone)
            .bind(after_name)
            .bind(after_id)
            .bind(i64::from(size) + 1)
            .fetch_all(pool)
            .await?;
    Ok(next_page(rows, size, tokens, &filter, |r| r.clone()))
}

#[tokio::test]
async fn pages_cover_everything_once_and_tokens_are_bound_to_the_filter() {
    let (pool, _) = fresh_schema().await;
    sqlx::query("CREATE TABLE people (id bigint PRIMARY KEY, name text NOT NULL, zone text NOT NULL)").execute(&pool).await.expect("table");
    for i in 0..53i64 {
        let zone = if i % 2 == 0 { "tanger" } else { "oujda" };
        // Duplicate names: the id breaks ties so the keyset stays total.
        sqlx::query("INSERT INTO people VALUES ($1, $2, $3)")
            .bind(i)
            .bind(format!("name-{}", i % 7))
            .bind(zone)
            .execute(&pool)
            .await
            .expect("row");
    }
    let tokens = PageTokens::new(vec![7u8; 32]);
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let (rows, next) = list(&pool, &tokens, "tanger", 5, &token).await.expect("page");
        assert!(rows.len() <= 5);
        seen.extend(rows.into_iter().map(|r| r.1));
        pages += 1;
        if next.is_empty() {
            break;
        }
        token = next;
    }
    assert_eq!(pages, 6, "27 rows in pages of 5");
    let mut expected: Vec<i64> = (0..53).filter(|i| i % 2 == 0).collect();
    let mut got = seen.clone();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected, "every row exactly once");

    let (_, first_token) = list(&pool, &tokens, "tanger", 5, "").await.expect("first");
    let err = list(&pool, &tokens, "oujda", 5, &first_token).await.expect_err("other filter");
    assert!(matches!(err, ServiceError::InvalidArgument(ref v) if v[0].field == "page_token"));
    let mut tampered = first_token.clone();
    tampered.replace_range(2..3, if &tampered[2..3] == "A" { "B" } else { "A" });
    assert!(list(&pool, &tokens, "tanger", 5, &tampered).await.is_err());
    assert!(list(&pool, &tokens, "tanger", -1, "").await.is_err(), "negative page size");
}
