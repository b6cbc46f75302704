//! The one tower stack in front of every work4life gRPC server. It is a single tower layer whose
//! service runs these stages in this order, each placed where it is for a reason:
//!
//! 1. **request id**: taken from `x-request-id` or made, first, so every later log line, span,
//!    error and audit record carries it; echoed in the response.
//! 2. **trace span**: opened next with the W3C parent from the metadata, so that even calls
//!    refused below are traced, and everything below runs inside the caller's trace.
//! 3. **admission** (concurrency limit and load shedding): before authentication, because an
//!    overloaded server must refuse with the least work possible; a call beyond the limit gets
//!    RESOURCE_EXHAUSTED at once instead of queueing (queues turn overload into timeouts for
//!    everyone). Health and reflection bypass it so probes keep answering under load.
//!    Authentication also runs before routing: a caller without a token learns nothing about
//!    which methods exist (an unknown method gets UNAUTHENTICATED, not UNIMPLEMENTED).
//! 4. **authentication**: verifies the bearer token against the cached key set and puts the
//!    [`Principal`] in the request extensions; public methods (health, reflection, login) pass.
//! 5. **deadline**: the caller's `grpc-timeout` (or the default) bounds the handler; when it
//!    passes, the handler future is dropped (cancelling its database work, which also carries a
//!    `statement_timeout` from [`crate::db::begin`]) and DEADLINE_EXCEEDED is returned.
//! 6. **metrics**: rate, errors and latency per method, recorded as the call completes.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram},
};
use tokio::sync::Semaphore;
use tonic::{Code, Status};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    auth::{Principal, TokenError, TokenVerifier},
    error::ServiceError,
};

/// Metadata key of the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest request id accepted from a caller; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// What a handler can learn about the call it serves, without threading it through every function.
#[derive(Clone)]
struct CallContext {
    request_id: Arc<str>,
    deadline: Instant,
}

tokio::task_local! {
    static CALL: CallContext;
}

/// The id of the request being handled, when called inside a handler.
pub fn current_request_id() -> Option<Arc<str>> {
    CALL.try_with(|c| Arc::clone(&c.request_id)).ok()
}

/// The instant the current call must be answered by, when called inside a handler.
pub fn current_deadline() -> Option<Instant> {
    CALL.try_with(|c| c.deadline).ok()
}

/// Which methods need no token. Health and reflection never do.
#[derive(Clone, Debug)]
pub struct AuthPolicy {
    public_prefixes: Vec<&'static str>,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        Self { public_prefixes: vec!["/grpc.health.v1.Health/", "/grpc.reflection."] }
    }
}

impl AuthPolicy {
    /// Adds a public method or service prefix (`/work4life.identity.v1.IdentityService/Login`).
    pub fn allow_anonymous(mut self, path_prefix: &'static str) -> Self {
        self.public_prefixes.push(path_prefix);
        self
    }

    fn is_public(&self, path: &str) -> bool {
        self.public_prefixes.iter().any(|p| path.starts_with(p))
    }

    /// Health and reflection: never shed, so probes answer under load. Other public methods
    /// (a login, say) are admitted like any call: they cost work too.
    fn is_probe(path: &str) -> bool {
        path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
    }
}

/// Settings of the stack.
#[derive(Clone)]
pub struct StackConfig {
    /// Calls in flight before shedding.
    pub max_concurrent_calls: usize,
    /// Deadline of calls without `grpc-timeout`.
    pub default_deadline: Duration,
    /// Token verification; `None` disables authentication (only the bare benchmark baseline does).
    pub verifier: Option<Arc<TokenVerifier>>,
    /// Methods that need no token.
    pub auth_policy: AuthPolicy,
}

#[derive(Clone)]
struct Instruments {
    calls: Counter<u64>,
    duration: Histogram<f64>,
    shed: Counter<u64>,
}

impl Instruments {
    fn new() -> Self {
        let meter = opentelemetry::global::meter("work4life");
        Self {
            calls: meter.u64_counter("rpc.server.calls").with_description("gRPC calls completed, by method and status code").build(),
            duration: meter
                .f64_histogram("rpc.server.duration")
                .with_unit("ms")
                .with_description("gRPC call latency, by method and status code")
                .build(),
            shed: meter.u64_counter("rpc.server.shed").with_description("calls refused by load shedding").build(),
        }
    }
}

/// The stack as a tower layer: `Server::builder().layer(ServerStack::new(config))`.
#[derive(Clone)]
pub struct ServerStack {
    inner: Arc<Shared>,
}

struct Shared {
    config: StackConfig,
    permits: Arc<Semaphore>,
    instruments: Instruments,
}

impl ServerStack {
    /// Builds the stack; the concurrency limit is shared by every connection of the server.
    pub fn new(config: StackConfig) -> Self {
        let permits = Arc::new(Semaphore::new(config.max_concurrent_calls));
        Self { inner: Arc::new(Shared { config, permits, instruments: Instruments::new() }) }
    }
}

impl<S> Layer<S> for ServerStack {
    type Service = StackService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StackService { inner, shared: Arc::clone(&self.inner) }
    }
}

/// The service the layer produces.
#[derive(Clone)]
pub struct StackService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, B> Service<Request<B>> for StackService<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The ready service goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        let started = Instant::now();
        let method: Arc<str> = Arc::from(req.uri().path());

        // 1. request id
        let chosen: Option<Arc<str>> = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(Arc::from);
        let caller_chose_id = chosen.is_some();
        // A v4 id from the thread-local generator: no system call per request.
        let request_id = chosen.unwrap_or_else(|| Arc::from(uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string()));

        // 2. trace span, child of the caller's context. Its target is excluded from log output
        //    (see telemetry): formatting its fields as JSON on every call costs more than the
        //    rest of the stack; log lines name the request id explicitly instead.
        let span = tracing::info_span!(
            target: crate::telemetry::TRACE_ONLY_TARGET,
            "grpc.server",
            otel.name = %method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = %method,
            request_id = %request_id,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        // Most external calls carry no trace context: skip the propagator then.
        if req.headers().contains_key("traceparent") {
            let _ = span.set_parent(crate::telemetry::extract_context(req.headers()));
        }

        let fut = async move {
            let public = shared.config.auth_policy.is_public(&method);

            // 3. admission
            let _permit = if AuthPolicy::is_probe(&method) {
                None
            } else {
                match Arc::clone(&shared.permits).try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        shared
                            .instruments
                            .shed
                            .add(1, &[KeyValue::new("rpc.method", opentelemetry::StringValue::from(Arc::clone(&method)))]);
                        let status: Status = ServiceError::ResourceExhausted("server overloaded, retry with backoff").into();
                        return Ok(finish(&shared, &method, started, &request_id, caller_chose_id, status.into_http()));
                    }
                }
            };

            // 4. authentication
            if !public && let Some(verifier) = &shared.config.verifier {
                match authenticate(verifier, req.headers()).await {
                    Ok(principal) => {
                        req.extensions_mut().insert(principal);
                    }
                    Err(err) => {
                        tracing::info!(reason = %err, %request_id, %method, "call refused: unauthenticated");
                        let status: Status = ServiceError::from(err).into();
                        return Ok(finish(&shared, &method, started, &request_id, caller_chose_id, status.into_http()));
                    }
                }
            }

            // 5. deadline
            let budget = grpc_timeout(req.headers()).unwrap_or(shared.config.default_deadline);
            // Answer a little before the caller's own clock (and tonic's own timer, which answers
            // CANCELLED) runs out, so it learns why; 20 ms was lost to a busy machine's scheduling.
            let budget = budget.saturating_sub((budget / 10).min(Duration::from_millis(50)));
            let deadline = started + budget;
            let handler = CALL.scope(CallContext { request_id: Arc::clone(&request_id), deadline }, inner.call(req));
            // A panicking handler answers INTERNAL like any bug, instead of tearing the stream down.
            let handler = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(handler));
            let response = match tokio::time::timeout_at(deadline.into(), handler).await {
                Ok(Ok(result)) => result?,
                Ok(Err(panic)) => {
                    let what = panic.downcast_ref::<&str>().map(|s| (*s).to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
                    tracing::error!(request_id = %request_id, method = %method, panic = what.as_deref().unwrap_or("?"), "handler panicked");
                    let status: Status = ServiceError::Internal(anyhow::anyhow!("handler panicked")).into();
                    status.into_http()
                }
                Err(_) => {
                    tracing::info!(budget_ms = budget.as_millis() as u64, request_id = %request_id, method = %method, "call cancelled: deadline exceeded");
                    let status: Status = ServiceError::DeadlineExceeded.into();
                    status.into_http()
                }
            };
            Ok(finish(&shared, &method, started, &request_id, caller_chose_id, undecodable_is_invalid(response)))
        };
        Box::pin(fut.instrument(span))
    }
}

/// What tonic says, with INTERNAL, of a request it could not read: a malformed gRPC frame
/// (missing, cut short, a compression flag it was not told about) or bytes that are not the
/// method's message.
const UNREADABLE_REQUEST: &[&str] = &["Missing request message", "Unexpected EOF decoding stream", "protocol error: received message with"];

/// tonic answers a request it cannot decode (bytes that are not the method's message, a string
/// that is not UTF-8, a broken frame) with INTERNAL: the caller's fault, not ours. It becomes
/// INVALID_ARGUMENT naming the field prost names (`applicant.phone`), or `request` when the bytes
/// are not a message at all.
fn undecodable_is_invalid(response: Response<tonic::body::Body>) -> Response<tonic::body::Body> {
    if response.headers().get("grpc-status").is_none_or(|v| v.as_bytes() != b"13") {
        return response;
    }
    let Some(status) = Status::from_header_map(response.headers()) else { return response };
    if UNREADABLE_REQUEST.iter().any(|p| status.message().starts_with(p)) {
        let status: Status = ServiceError::invalid("request", format!("is not a readable gRPC request: {}", status.message())).into();
        return status.into_http();
    }
    let Some(detail) = status.message().strip_prefix("failed to decode Protobuf message") else { return response };
    let detail = detail.trim_start_matches(':').trim();
    // prost writes the path as `Outer.field: Inner.field: what went wrong`.
    let parts: Vec<&str> = detail.split(": ").collect();
    let path: Vec<&str> = parts
        .iter()
        .map_while(|part| part.split_once('.').filter(|(message, _)| !message.is_empty() && !part.contains(' ')).map(|(_, field)| field))
        .collect();
    let what = parts[path.len()..].join(": ");
    let field = if path.is_empty() { "request".to_string() } else { path.join(".") };
    let status: Status = ServiceError::invalid(field, format!("cannot be decoded: {what}")).into();
    status.into_http()
}

/// Stage 6: metrics, and the request id returned to the caller: always with an error (that is
/// when a caller needs it, to report a problem), and on success when the caller chose the id.
/// A fresh id on every success would be a never-indexable header both ends must Huffman-code.
fn finish(
    shared: &Shared,
    method: &Arc<str>,
    started: Instant,
    request_id: &str,
    caller_chose_id: bool,
    mut response: Response<tonic::body::Body>,
) -> Response<tonic::body::Body> {
    // Errors travel as trailers-only responses, so their code is in the headers; a successful
    // unary call's OK is in the trailers, hence the default.
    let code =
        response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok()).unwrap_or(Code::Ok as i32);
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.record("rpc.grpc.status_code", code);
    }
    let attributes = [
        KeyValue::new("rpc.method", opentelemetry::StringValue::from(Arc::clone(method))),
        KeyValue::new("rpc.grpc.status_code", i64::from(code)),
    ];
    shared.instruments.calls.add(1, &attributes);
    shared.instruments.duration.record(started.elapsed().as_secs_f64() * 1000.0, &attributes);
    if (code != Code::Ok as i32 || caller_chose_id)
        && let Ok(value) = HeaderValue::from_str(request_id)
    {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

async fn authenticate(verifier: &TokenVerifier, headers: &http::HeaderMap) -> Result<Arc<Principal>, TokenError> {
    let value = headers.get(http::header::AUTHORIZATION).ok_or(TokenError::Missing)?;
    let value = value.to_str().map_err(|_| TokenError::Malformed)?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).ok_or(TokenError::Malformed)?;
    verifier.verify(token.trim()).await
}

/// Parses `grpc-timeout` (`<digits><unit>`, units H M S m u n; at most 8 digits).
pub fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undecodable_request_is_invalid_argument_naming_the_field() {
        let decoded = |message: &str| {
            let response = undecodable_is_invalid(Status::internal(message).into_http());
            let status = Status::from_header_map(response.headers()).expect("a status");
            let details = tonic_types::StatusExt::get_error_details(&status);
            let fields: Vec<String> =
                details.bad_request().map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect()).unwrap_or_default();
            (status.code(), fields, status)
        };
        let (code, fields, status) = decoded(
            "failed to decode Protobuf message: CreateApplicantRequest.applicant: Applicant.phone: invalid string value: data is not UTF-8 encoded",
        );
        assert_eq!((code, fields), (Code::InvalidArgument, vec!["applicant.phone".to_string()]));
        let details = tonic_types::StatusExt::get_error_details(&status);
        let description = &details.bad_request().expect("bad request").field_violations[0].description;
        assert!(description.contains("invalid string value: data is not UTF-8 encoded"), "{description}");
        assert_eq!(decoded("failed to decode Protobuf message: invalid wire type value: 6").1, ["request"]);
        assert_eq!(decoded("Unexpected EOF decoding stream.").0, Code::InvalidArgument);
        let (code, fields, _) = decoded("the database went away");
        assert_eq!((code, fields.len()), (Code::Internal, 0), "other INTERNALs stay what they are");
    }

    #[test]
    fn grpc_timeout_units() {
        let mut h = http::HeaderMap::new();
        for (raw, expected) in [
            ("2S", Duration::from_secs(2)),
            ("150m", Duration::from_millis(150)),
            ("1H", Duration::from_secs(3600)),
            ("7u", Duration::from_micros(7)),
        ] {
            h.insert("grpc-timeout", raw.parse().expect("header"));
            assert_eq!(grpc_timeout(&h), Some(expected), "{raw}");
        }
        for bad in ["", "S", "123456789S", "10x", "-1S"] {
            h.insert("grpc-timeout", bad.parse().expect("header"));
            assert_eq!(grpc_timeout(&h), None, "{bad}");
        }
    }

    #[test]
    fn health_and_reflection_are_public() {
        let policy = AuthPolicy::default().allow_anonymous("/work4life.identity.v1.IdentityService/Login");
        assert!(policy.is_public("/grpc.health.v1.Health/Check"));
        assert!(policy.is_public("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
        assert!(policy.is_public("/work4life.identity.v1.IdentityService/Login"));
        assert!(!policy.is_public("/work4life.testing.v1.EchoService/Echo"));
        assert!(AuthPolicy::is_probe("/grpc.health.v1.Health/Watch"));
        assert!(!AuthPolicy::is_probe("/work4life.identity.v1.IdentityService/Login"));
    }
}
