//! Sluice: a protocol-aware L4/L7 proxy.
//!
//! The runtime lives here (DESIGN.md "Runtime"): configuration, workers with their own
//! SO_REUSEPORT listeners, the TCP, protocol-stream and UDP connection drivers, clusters, the admin server
//! and telemetry. Protocols are parsed in `sluice-codecs` and turned into operations and
//! verdicts in `sluice-filters`; the runtime never parses a protocol itself.
//!
//! Tests start a whole proxy in-process with [`Server::start`].

pub mod access_log;
pub mod admin;
pub mod cluster;
pub mod cluster_tls;
pub mod config;
pub mod http;
mod kafka_brokers;
pub mod listener;
mod redis_pool;
pub mod server;
mod socket_io;
pub mod stream_proxy;
pub mod tcp_proxy;
pub mod telemetry;
pub mod tls;
mod tls_stream;
pub mod udp_proxy;
mod worker;

pub use config::Config;
pub use server::{Server, ServerHandle};
