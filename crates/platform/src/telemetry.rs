//! Logs, traces and metrics. Structured JSON logs on stdout always; OpenTelemetry traces and
//! metrics exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter reads
//! the other standard `OTEL_*` variables itself). The W3C trace context is read from incoming gRPC
//! metadata by the server stack and written into outgoing calls by [`ClientTracing`], so one
//! trace follows a request across services and into the events it causes.

use std::sync::OnceLock;

use opentelemetry::{
    global,
    propagation::{Extractor, Injector},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{metrics::SdkMeterProvider, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer as _, filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::PlatformConfig;

/// Keeps the providers alive; dropping it flushes and shuts the exporters down.
pub struct TelemetryGuard {
    tracer_provider: SdkTracerProvider,
    meter_provider: Option<SdkMeterProvider>,
    registry: Option<prometheus::Registry>,
}

impl TelemetryGuard {
    /// The Prometheus registry, when `W4L_METRICS_ADDR` is set.
    pub fn prometheus_registry(&self) -> Option<prometheus::Registry> {
        self.registry.clone()
    }

    /// Flushes pending spans and metrics (call before exit, or in a test before asserting).
    pub fn flush(&self) {
        let _ = self.tracer_provider.force_flush();
        if let Some(meters) = &self.meter_provider {
            let _ = meters.force_flush();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.tracer_provider.shutdown();
        if let Some(meters) = &self.meter_provider {
            let _ = meters.shutdown();
        }
    }
}

static INSTALLED: OnceLock<()> = OnceLock::new();

/// Target of spans that feed traces but not log lines (one per gRPC call).
pub const TRACE_ONLY_TARGET: &str = "work4life::trace";

/// Installs logging, tracing and metrics for the process. Call once, first thing in `main`.
/// A tracer provider is installed even without an exporter, so that trace ids exist and are
/// propagated to peers and events.
pub fn init(service_name: &str, config: &PlatformConfig) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name.to_string()).build();
    let mut tracer_builder = SdkTracerProvider::builder().with_resource(resource.clone());
    // Metrics go to whichever readers are configured: OTLP push, Prometheus pull, or both.
    let mut meters = SdkMeterProvider::builder().with_resource(resource);
    let mut metrics_on = false;
    if let Some(endpoint) = &config.otlp_endpoint {
        let spans = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build()?;
        tracer_builder = tracer_builder.with_batch_exporter(spans);
        let metrics = opentelemetry_otlp::MetricExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build()?;
        meters = meters.with_periodic_exporter(metrics);
        metrics_on = true;
    }
    let mut registry = None;
    if config.metrics_addr.is_some() {
        let prometheus_registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter().with_registry(prometheus_registry.clone()).build()?;
        meters = meters.with_reader(exporter);
        registry = Some(prometheus_registry);
        metrics_on = true;
    }
    let mut meter_provider = None;
    if metrics_on {
        let provider = meters.build();
        global::set_meter_provider(provider.clone());
        meter_provider = Some(provider);
    }
    let tracer_provider = tracer_builder.build();
    global::set_tracer_provider(tracer_provider.clone());
    let tracer = tracer_provider.tracer("work4life");

    if INSTALLED.set(()).is_ok() {
        // The log filter applies to log output only: spans for traces are always recorded at
        // info, so that W4L_LOG=warn does not break trace propagation between services.
        let filter = EnvFilter::try_new(&config.log_filter)
            .map_err(|e| anyhow::anyhow!("W4L_LOG: {e}"))?
            .add_directive(format!("{TRACE_ONLY_TARGET}=off").parse()?);
        // Per-call cost matters (docs/benchmarks.md): no busy/idle timings (two clock reads per
        // poll), no source location, thread or target attributes, and no OpenTelemetry context
        // activation on every poll; context flows through the tracing spans instead
        // (`Span::context()` in `current_trace_context` and `ClientTracing`).
        let otel = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_level(false)
            .with_context_activation(false)
            .with_filter(LevelFilter::INFO);
        let registry = tracing_subscriber::registry().with(otel);
        if config.log_json {
            let logs = tracing_subscriber::fmt::layer().json().flatten_event(true).with_current_span(true).with_span_list(false);
            registry.with(logs.with_filter(filter)).try_init()?;
        } else {
            registry.with(tracing_subscriber::fmt::layer().with_filter(filter)).try_init()?;
        }
    }
    Ok(TelemetryGuard { tracer_provider, meter_provider, registry })
}

/// Reads trace context from HTTP/2 headers (gRPC metadata).
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes trace context into tonic metadata.
pub struct MetadataInjector<'a>(pub &'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (tonic::metadata::MetadataKey::from_bytes(key.as_bytes()), value.parse()) {
            self.0.insert(key, value);
        }
    }
}

/// The OpenTelemetry context of incoming headers (empty when they carry none).
pub fn extract_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// The `traceparent`/`tracestate` of the current span, for events written to the outbox.
pub fn current_trace_context() -> work4life_proto::events::TraceContext {
    let mut carrier = std::collections::HashMap::new();
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    work4life_proto::events::TraceContext {
        traceparent: carrier.remove("traceparent").unwrap_or_default(),
        tracestate: carrier.remove("tracestate").unwrap_or_default(),
    }
}

/// The trace id of the current span, hex, or empty when there is none.
pub fn current_trace_id() -> String {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    if sc.is_valid() { sc.trace_id().to_string() } else { String::new() }
}

/// A tonic client interceptor that puts the current trace context and request id on every
/// outgoing call, so that the callee's spans join the caller's trace.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientTracing;

impl tonic::service::Interceptor for ClientTracing {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let cx = tracing::Span::current().context();
        global::get_text_map_propagator(|p| p.inject_context(&cx, &mut MetadataInjector(request.metadata_mut())));
        if let Some(id) = crate::stack::current_request_id()
            && let Ok(value) = id.parse()
        {
            request.metadata_mut().insert(crate::stack::REQUEST_ID_HEADER, value);
        }
        Ok(request)
    }
}

/// Serves `GET /metrics` in the Prometheus text format on `listener` until `shutdown`. A plain
/// HTTP/1.1 responder: one request per connection, nothing else is served.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    registry: prometheus::Registry,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let registry = registry.clone();
        tokio::spawn(async move {
            if let Err(err) = answer_scrape(stream, &registry).await {
                tracing::debug!(error = %err, "metrics scrape failed");
            }
        });
    }
}

async fn answer_scrape(mut stream: tokio::net::TcpStream, registry: &prometheus::Registry) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut request = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    // Read the request head (bounded: a scrape request is small).
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await.map_err(std::io::Error::other)??;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let (status, content_type, body) = if request.starts_with(b"GET /metrics ") || request.starts_with(b"GET /metrics?") {
        let mut body = String::new();
        prometheus::TextEncoder::new().encode_utf8(&registry.gather(), &mut body).map_err(std::io::Error::other)?;
        ("200 OK", prometheus::TEXT_FORMAT, body)
    } else {
        ("404 Not Found", "text/plain", "not found: the only path is /metrics\n".to_string())
    };
    let head = format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
