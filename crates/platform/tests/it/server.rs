//! Health tied to dependencies, graceful shutdown, reflection.

use std::time::Duration;

use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::common::{ServerOptions, echo, fresh_schema, start_echo, with_token};

async fn wait_for(health: &mut HealthClient<tonic::transport::Channel>, service: &str, want: ServingStatus) {
    let mut stream = health.watch(HealthCheckRequest { service: service.into() }).await.expect("watch").into_inner();
    let wait = async {
        while let Some(update) = stream.message().await.expect("stream") {
            if update.status == want as i32 {
                return;
            }
        }
        panic!("health stream ended before {want:?}");
    };
    tokio::time::timeout(Duration::from_secs(15), wait).await.expect("health status in time");
}

#[tokio::test]
async fn shutdown_turns_not_serving_at_once_and_drains_in_flight_calls() {
    let (pool, _) = fresh_schema().await;
    let mut server = start_echo(pool, ServerOptions::default()).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr)).expect("e").connect_lazy();
    let mut health = HealthClient::new(channel);
    wait_for(&mut health, "echo", ServingStatus::Serving).await;

    let token = server.token("accounts/1");
    let mut client = server.client();
    let in_flight = tokio::spawn(async move { client.echo(with_token(echo("block"), &token)).await });
    tokio::time::timeout(Duration::from_secs(10), server.entered.recv()).await.expect("entered").expect("open");

    let mut watch = health.watch(HealthCheckRequest { service: String::new() }).await.expect("watch").into_inner();
    assert_eq!(watch.message().await.expect("first").expect("some").status, ServingStatus::Serving as i32);
    server.shutdown.cancel();
    // The probe may repeat SERVING once more (it republishes on every check): skip repeats, but
    // NOT_SERVING must come within the bound.
    let turned = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(update) = watch.message().await.expect("ok") {
            if update.status != ServingStatus::Serving as i32 {
                return update.status;
            }
        }
        panic!("health stream ended");
    })
    .await
    .expect("in time");
    assert_eq!(turned, ServingStatus::NotServing as i32);
    drop(watch);

    server.release.notify_waiters();
    let reply = in_flight.await.expect("join").expect("the in-flight call completes during the drain");
    assert_eq!(reply.into_inner().message, "released");
    tokio::time::timeout(Duration::from_secs(15), server.done).await.expect("drained").expect("join").expect("serve ok");
}

#[tokio::test]
async fn health_is_not_serving_while_the_database_is_down() {
    let (pool, _) = fresh_schema().await;
    let probe_pool = work4life_platform::db::connect(&crate::common::database_url(), "public", 1).await.expect("pool");
    let server = start_echo(pool, ServerOptions { probe_pool: Some(probe_pool.clone()), ..Default::default() }).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr)).expect("e").connect_lazy();
    let mut health = HealthClient::new(channel);
    wait_for(&mut health, "echo", ServingStatus::Serving).await;
    // Kill the probe's database connection from the server side and forbid new ones.
    probe_pool.close().await;
    wait_for(&mut health, "echo", ServingStatus::NotServing).await;
    wait_for(&mut health, "", ServingStatus::NotServing).await;
    // Liveness asks for the process only: still alive, so Kubernetes does not restart it.
    let process = health.check(HealthCheckRequest { service: work4life_platform::server::LIVENESS_SERVICE.into() }).await.expect("check");
    assert_eq!(process.into_inner().status, ServingStatus::Serving as i32);
}

/// A private Redis server on its own port, stopped when dropped.
fn private_redis(port: u16) -> std::process::Child {
    std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server)")
}

async fn wait_redis(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis on {port} did not start");
}

#[tokio::test]
async fn health_follows_redis_down_and_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut redis = private_redis(port);
    wait_redis(port).await;
    let (pool, _) = fresh_schema().await;
    let server = start_echo(pool, ServerOptions { redis_url: Some(format!("redis://127.0.0.1:{port}/0")), ..Default::default() }).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr)).expect("e").connect_lazy();
    let mut health = HealthClient::new(channel);
    wait_for(&mut health, "echo", ServingStatus::Serving).await;
    redis.kill().expect("kill redis");
    redis.wait().expect("reap");
    wait_for(&mut health, "echo", ServingStatus::NotServing).await;
    wait_for(&mut health, "", ServingStatus::NotServing).await;
    let mut redis = private_redis(port);
    wait_redis(port).await;
    wait_for(&mut health, "echo", ServingStatus::Serving).await;
    redis.kill().expect("kill redis");
    let _ = redis.wait();
}

#[tokio::test]
async fn reflection_lists_the_mounted_services() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse,
    };
    let (pool, _) = fresh_schema().await;
    let server = start_echo(pool, ServerOptions::default()).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr)).expect("e").connect_lazy();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
    let mut stream = client.server_reflection_info(futures::stream::iter(vec![request])).await.expect("reflection").into_inner();
    let response = stream.message().await.expect("ok").expect("one");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else { panic!("list") };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"work4life.testing.v1.EchoService".to_string()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");
}
