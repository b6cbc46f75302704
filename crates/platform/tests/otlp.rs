//! Telemetry export over OTLP/gRPC to a small collector this test starts: the server span of a
//! call (in the caller's trace) and the request metrics arrive. Its own test binary, because
//! telemetry is process-global.

use std::{collections::HashMap, sync::Arc, time::Duration};

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
use work4life_platform::{
    config::PlatformConfig,
    stack::{AuthPolicy, ServerStack, StackConfig},
};
use work4life_proto::testing::{
    EchoRequest, EchoResponse,
    echo_service_client::EchoServiceClient,
    echo_service_server::{EchoService, EchoServiceServer},
};

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(&self, request: Request<ExportTraceServiceRequest>) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.spans.lock().await.push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(&self, request: Request<ExportMetricsServiceRequest>) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.metrics.lock().await.push(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        Ok(Response::new(EchoResponse { message: request.into_inner().message, payload: vec![] }))
    }
}

async fn serve<S>(router: tonic::transport::server::Router<S>) -> std::net::SocketAddr
where
    S: tower::Layer<tonic::service::Routes> + Send + 'static,
    S::Service: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    <S::Service as tower::Service<http::Request<tonic::body::Body>>>::Future: Send + 'static,
    <S::Service as tower::Service<http::Request<tonic::body::Body>>>::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_reach_an_otlp_collector() {
    let collector = Collector::default();
    let collector_addr = serve(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector.clone())),
    )
    .await;

    let source: HashMap<String, String> = HashMap::from([
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), format!("http://{collector_addr}")),
        ("W4L_LOG".to_string(), "warn".to_string()),
    ]);
    let config = PlatformConfig::from_source(&source).expect("config");
    let telemetry = work4life_platform::telemetry::init("otlp-test", &config).expect("telemetry");

    let stack = ServerStack::new(StackConfig {
        max_concurrent_calls: 16,
        default_deadline: Duration::from_secs(5),
        verifier: None,
        auth_policy: AuthPolicy::default(),
    });
    let echo_addr = serve(tonic::transport::Server::builder().layer(stack).add_service(EchoServiceServer::new(Echo))).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{echo_addr}")).expect("endpoint").connect_lazy();
    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let mut request = Request::new(EchoRequest { message: "hi".into(), payload: vec![] });
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-{:016x}-01", rand::random::<u64>() | 1).parse().expect("v"));
    EchoServiceClient::new(channel).echo(request).await.expect("echo");

    // Flushing runs the exporters' blocking calls; keep it off the async workers.
    let telemetry = tokio::task::spawn_blocking(move || {
        telemetry.flush();
        telemetry
    })
    .await
    .expect("flush");

    let wanted = hex::decode(&trace_id).expect("hex");
    let mut span_found = false;
    let mut metric_found = false;
    for _ in 0..100 {
        span_found = collector.spans.lock().await.iter().flat_map(|r| &r.resource_spans).any(|rs| {
            let service_named = rs
                .resource
                .as_ref()
                .is_some_and(|r| r.attributes.iter().any(|kv| kv.key == "service.name" && format!("{:?}", kv.value).contains("otlp-test")));
            service_named
                && rs
                    .scope_spans
                    .iter()
                    .flat_map(|ss| &ss.spans)
                    .any(|s| s.trace_id == wanted && s.name == "/work4life.testing.v1.EchoService/Echo")
        });
        metric_found = collector
            .metrics
            .lock()
            .await
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .any(|m| m.name == "rpc.server.calls");
        if span_found && metric_found {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(telemetry);
    assert!(span_found, "the server span, in the caller's trace, reached the collector");
    assert!(metric_found, "rpc.server.calls reached the collector");
}
