//! The binary exports its traces and metrics over OTLP in the background, as in production, to a
//! small collector this test starts.

use std::{sync::Arc, time::Duration};

use opentelemetry_proto::tonic::collector::{
    metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
        metrics_service_server::{MetricsService, MetricsServiceServer},
    },
    trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Exported spans as (name, trace id).
type Spans = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[derive(Clone, Default)]
struct Collector {
    span_names: Spans,
    metric_names: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(&self, request: Request<ExportTraceServiceRequest>) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans = request.into_inner().resource_spans.into_iter().flat_map(|rs| rs.scope_spans).flat_map(|ss| ss.spans);
        self.span_names.lock().await.extend(spans.map(|s| (s.name, s.trace_id)));
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(&self, request: Request<ExportMetricsServiceRequest>) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let metrics = request.into_inner().resource_metrics.into_iter().flat_map(|rm| rm.scope_metrics).flat_map(|sm| sm.metrics);
        self.metric_names.lock().await.extend(metrics.map(|m| m.name));
        Ok(Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

#[tokio::test]
async fn the_binary_exports_spans_and_metrics_over_otlp() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let collector_addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let database_url = format!("{}/w4l_suite_{}", work4life_tests::server_url(), uuid::Uuid::new_v4().simple());
    let env = work4life_tests::base_env(&database_url);
    let extra = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector_addr}")),
        ("OTEL_SERVICE_NAME", "suite-otlp".to_string()),
        // Export often, so the test waits for the background exporters rather than a flush.
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_string()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500".to_string()),
    ];
    let process = work4life_tests::start_with("all", "127.0.0.1:0", &env, &extra).await.expect("start");

    let trace_id = format!("{:032x}", u128::from(std::process::id()) << 64 | 0x5eed);
    let channel = tonic::transport::Channel::from_shared(process.url.clone()).expect("url").connect().await.expect("connect");
    let mut request = Request::new(HealthCheckRequest { service: "grants".into() });
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01").parse().expect("v"));
    HealthClient::new(channel).check(request).await.expect("health");

    let wanted = (0..16).map(|i| u8::from_str_radix(&trace_id[i * 2..i * 2 + 2], 16).expect("hex")).collect::<Vec<u8>>();
    let mut ok = (false, false);
    for _ in 0..150 {
        ok.0 = collector.span_names.lock().await.iter().any(|(name, id)| name == "/grpc.health.v1.Health/Check" && *id == wanted);
        ok.1 = collector.metric_names.lock().await.iter().any(|n| n == "rpc.server.calls");
        if ok.0 && ok.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    process.stop().await.expect("stop");
    assert!(ok.0, "the health call's server span, in the caller's trace, was exported");
    assert!(ok.1, "request metrics were exported");
}

#[tokio::test]
async fn the_binary_serves_prometheus_metrics() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let database_url = format!("{}/w4l_suite_{}", work4life_tests::server_url(), uuid::Uuid::new_v4().simple());
    let env = work4life_tests::base_env(&database_url);
    let process =
        work4life_tests::start_with("all", "127.0.0.1:0", &env, &[("W4L_METRICS_ADDR", format!("127.0.0.1:{port}"))]).await.expect("start");
    let channel = tonic::transport::Channel::from_shared(process.url.clone()).expect("url").connect().await.expect("connect");
    HealthClient::new(channel.clone()).check(HealthCheckRequest { service: "intake".into() }).await.expect("health");
    // An unauthenticated call to a method that needs a token: counted with its code (16).
    let refused = tonic::client::Grpc::new(channel.clone());
    let mut refused = refused;
    refused.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/work4life.testing.v1.EchoService/Echo");
    let err =
        refused.unary::<_, (), _>(Request::new(()), path, tonic_prost::ProstCodec::<(), ()>::default()).await.expect_err("unauthenticated");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    let scrape = || async {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect metrics");
        stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n").await.expect("write");
        let mut body = String::new();
        stream.read_to_string(&mut body).await.expect("read");
        body
    };
    let mut body = String::new();
    for _ in 0..50 {
        body = scrape().await;
        if body.contains("rpc_method=\"/grpc.health.v1.Health/Check\"") && body.contains("rpc_grpc_status_code=\"16\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    process.stop().await.expect("stop");
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(body.contains("rpc_server_calls"), "{body}");
    assert!(body.contains("rpc_method=\"/grpc.health.v1.Health/Check\""), "{body}");
    assert!(body.contains("rpc_grpc_status_code=\"16\""), "the refused call is counted with its code: {body}");
    assert!(body.contains("rpc_server_duration"), "{body}");
}
