//! The server stack over real gRPC: authentication, deadlines, load shedding, request ids and
//! W3C trace propagation into outbound calls.

use std::time::{Duration, Instant};

use tonic::Code;
use tonic_types::StatusExt;

use crate::common::{ServerOptions, echo, fresh_schema, start_echo, with_token};

#[tokio::test]
async fn calls_need_a_valid_token_and_health_does_not() {
    let (pool, _) = fresh_schema().await;
    let server = start_echo(pool, ServerOptions::default()).await;
    let mut client = server.client();

    let missing = client.echo(echo("whoami")).await.expect_err("no token");
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(missing.get_error_details().error_info().expect("info").reason, "UNAUTHENTICATED");

    let token = server.token("accounts/officer-1");
    let who = client.echo(with_token(echo("whoami"), &token)).await.expect("valid token").into_inner();
    assert_eq!(who.message, "accounts/officer-1");

    let mut tampered = token.clone();
    tampered.insert(tampered.len() / 2, 'x');
    let refused = client.echo(with_token(echo("whoami"), &tampered)).await.expect_err("tampered");
    assert_eq!(refused.code(), Code::Unauthenticated);

    let expired = server.signing.sign(&crate::common::claims("accounts/x", -3600)).expect("sign");
    let refused = client.echo(with_token(echo("whoami"), &expired)).await.expect_err("expired");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(refused.message(), "token expired");

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr)).expect("e").connect_lazy();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.expect("health needs no token");
    assert_eq!(status.into_inner().status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_and_the_server_keeps_serving() {
    let (pool, _) = fresh_schema().await;
    let server = start_echo(pool, ServerOptions::default()).await;
    let mut client = server.client();
    let token = server.token("accounts/1");
    let err = client.echo(with_token(echo("panic"), &token)).await.expect_err("a panic is an error");
    assert_eq!(err.code(), Code::Internal, "{err:?}");
    assert_eq!(err.get_error_details().error_info().expect("info").reason, "INTERNAL");
    assert!(!err.message().contains("told to panic"), "the panic's text stays in the logs: {}", err.message());
    let after = client.echo(with_token(echo("still here"), &token)).await.expect("same connection still serves").into_inner();
    assert_eq!(after.message, "still here");
}

#[tokio::test]
async fn expired_deadline_cancels_the_database_work() {
    let (pool, _) = fresh_schema().await;
    let server = start_echo(pool.clone(), ServerOptions::default()).await;
    let mut client = server.client();
    let token = server.token("accounts/1");
    let marker = format!("sleep:{}", 5000 + rand::random::<u16>() as u32); // unique, to find our query
    let mut request = with_token(echo(&marker), &token);
    // The header alone (no client-side timer), so the answer observed is the server's.
    request.metadata_mut().insert("grpc-timeout", "400m".parse().expect("v"));
    let started = Instant::now();
    let err = client.echo(request).await.expect_err("deadline");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "answered near the deadline, not after the sleep");
    // PostgreSQL must not still be sleeping for a caller who left: poll, bounded.
    let seconds = marker.trim_start_matches("sleep:").parse::<f64>().expect("ms") / 1000.0;
    let pattern = "SELECT pg_sleep($1)".to_string();
    let mut still_running = true;
    for _ in 0..200 {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'")
            .bind(&pattern)
            .fetch_one(&pool)
            .await
            .expect("activity");
        if n == 0 {
            still_running = false;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!still_running, "pg_sleep({seconds}) still running after the deadline");
    // A call with enough time succeeds.
    let mut request = with_token(echo("sleep:10"), &token);
    request.set_timeout(Duration::from_secs(5));
    assert_eq!(client.echo(request).await.expect("in time").into_inner().message, "slept");
}

#[tokio::test]
async fn overload_is_shed_fast_with_resource_exhausted() {
    let (pool, _) = fresh_schema().await;
    let mut server = start_echo(pool, ServerOptions { max_concurrent_calls: 2, ..Default::default() }).await;
    let token = server.token("accounts/1");
    let mut blocked = Vec::new();
    for _ in 0..2 {
        let mut client = server.client();
        let request = with_token(echo("block"), &token);
        blocked.push(tokio::spawn(async move { client.echo(request).await }));
    }
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(10), server.entered.recv()).await.expect("entered").expect("open");
    }
    let started = Instant::now();
    let shed = server.client().echo(with_token(echo("hello"), &token)).await.expect_err("shed");
    assert_eq!(shed.code(), Code::ResourceExhausted);
    assert!(started.elapsed() < Duration::from_secs(1), "shedding must not queue");
    // Probes still answer under overload.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr)).expect("e").connect_lazy();
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("health bypasses admission");
    server.release.notify_waiters();
    for call in blocked {
        assert_eq!(call.await.expect("join").expect("released").into_inner().message, "released");
    }
    // Capacity is back.
    assert_eq!(server.client().echo(with_token(echo("hello"), &token)).await.expect("ok").into_inner().message, "hello");
}

#[tokio::test]
async fn request_id_is_kept_or_made_and_echoed() {
    let (pool, _) = fresh_schema().await;
    let server = start_echo(pool, ServerOptions::default()).await;
    let token = server.token("accounts/1");
    let mut request = with_token(echo("hi"), &token);
    request.metadata_mut().insert("x-request-id", "req-12345".parse().expect("v"));
    let response = server.client().echo(request).await.expect("ok");
    assert_eq!(response.metadata().get("x-request-id").expect("echoed").to_str().expect("s"), "req-12345");
    // Errors always carry one, made by the server when the caller sent none.
    let err = server.client().echo(echo("no token")).await.expect_err("unauthenticated");
    let made = err.metadata().get("x-request-id").expect("made").to_str().expect("s").to_string();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    let other = server.client().echo(echo("no token")).await.expect_err("unauthenticated");
    assert_ne!(other.metadata().get("x-request-id").expect("made").to_str().expect("s"), made, "a fresh id per call");
}

#[tokio::test]
async fn trace_context_flows_from_client_through_server_into_outbound_calls() {
    let (pool, _) = fresh_schema().await;
    // Both hops without authentication: this test is about trace context only.
    let upstream = start_echo(pool.clone(), ServerOptions { auth: false, ..Default::default() }).await;
    let hop = start_echo(pool, ServerOptions { auth: false, ..Default::default() }).await;
    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let client_span = format!("{:016x}", rand::random::<u64>() | 1);
    let mut request = tonic::Request::new(echo(&format!("call:{}", hop.addr)));
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-{client_span}-01").parse().expect("v"));
    let reply = upstream.client().echo(request).await.expect("call").into_inner().message;
    let (upstream_trace, downstream) = reply.split_once('#').expect("two parts");
    let (downstream_trace, downstream_traceparent) = downstream.split_once('|').expect("two parts");
    assert_eq!(upstream_trace, trace_id, "the server span continues the client's trace");
    assert_eq!(downstream_trace, trace_id, "the outbound call's server joins the same trace");
    let parts: Vec<&str> = downstream_traceparent.split('-').collect();
    assert_eq!(parts.get(1), Some(&trace_id.as_str()), "traceparent injected into the outbound call");
    assert_ne!(parts.get(2), Some(&client_span.as_str()), "the outbound parent is the server's span, not the client's");
}
