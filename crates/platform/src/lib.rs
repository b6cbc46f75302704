//! The work4life service platform: everything a service needs that is not its domain.
//! Each module owns one concern; services use them and never re-implement them.
//!
//! - [`config`]: typed `W4L_*` configuration, validated before any port binds
//! - [`telemetry`]: JSON logs, OpenTelemetry traces and metrics, W3C context propagation
//! - [`stack`]: the tower stack in front of every server (request id, trace, admission, auth,
//!   deadline, metrics)
//! - [`contact`]: email and phone normalisation shared by every registry
//! - [`auth`]: access-token verification against the published key set
//! - [`error`]: the error type and its one mapping to gRPC status with `google.rpc` details
//! - [`fault`]: crash points for fault-injection tests
//! - [`pagination`]: page sizes and signed keyset page tokens
//! - [`idempotency`]: `request_id` replay protection
//! - [`outbox`], [`consumer`]: events, exactly once in effect, through Redis Streams
//! - [`audit`]: the append-only hash-chained audit log
//! - [`db`]: pools per schema, migrations, deadline-bounded transactions
//! - [`host`]: running a set of services in one process (the `--target` of the binary)
//! - [`wire`]: resource names, timestamps, dates and etags at the gRPC edge
//! - [`scope`]: zone and organisation scope from role bindings
//! - [`vault`]: personal identifiers sealed at rest and found by keyed hashes
//! - [`server`]: hosting services with health, reflection and graceful shutdown

#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod config;
pub mod consumer;
pub mod contact;
pub mod db;
pub mod error;
pub mod fault;
pub mod host;
pub mod idempotency;
pub mod outbox;
pub mod pagination;
pub mod peer_auth;
pub mod scope;
pub mod server;
pub mod stack;
pub mod telemetry;
pub mod vault;
pub mod wire;

pub use error::{FieldViolation, ServiceError, ServiceResult};
