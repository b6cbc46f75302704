//! Platform tests against real PostgreSQL, real Redis and real gRPC over loopback sockets.
//! One binary (faster to link); each test gets its own schema and its own Redis keys.

mod audit;
mod auth;
mod common;
mod events;
mod idempotency;
mod pagination;
mod server;
mod stack;
