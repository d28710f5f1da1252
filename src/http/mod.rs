//! The `http` listener: an HTTP reverse proxy (RFC 9110 semantics, RFC 9112 and RFC 9113
//! message syntax). Clients speak HTTP/1.1 or 1.0, or HTTP/2 (prior knowledge on a plain
//! listener, ALPN `h2` over TLS), in plain text or over TLS terminated from the first
//! byte; each request is routed by host, path and fields to a cluster, and sent over a
//! pooled keep-alive HTTP/1.1 connection (plain, or TLS the cluster originates).
//!
//! - `route`: virtual hosts, route matches, weighted clusters.
//! - `rewrite`: the heads forwarded (hop-by-hop fields, X-Forwarded-*, add/remove,
//!   prefix rewrite, connection semantics).
//! - `pool`: the per-worker keep-alive pools of upstream connections.
//! - `retry`: retry conditions and the retry budget.
//! - `proxy`: the HTTP/1 connection driver: one task per client connection, one request
//!   at a time; rules, routing and local replies.
//! - `forward`: one request upstream (pool, tries, retries) until the response head.
//! - `relay`: the response streamed back, tunnels after 101 / CONNECT.
//! - `io`: the client and upstream byte streams, TLS termination.
//! - `h2_server`, `h2_stream`: the HTTP/2 connection driver and one stream's exchange.
//! - `h2_client`, `h2_upstream`: HTTP/2 clusters: the per-worker multiplexed connections
//!   and an HTTP/2 stream relayed over one (gRPC end to end).
//! - `convert`: HTTP/2 ↔ HTTP/1.1 message conversion.
//! - `local`: the responses sluice answers itself (404, 403, 429, 502, 503, 504, codec errors).
//! - `stats`, `log`: metrics, the per-request access log and bookkeeping.
//!
//! The request/response model the next stage (HTTP/2 downstream, H2→H1 conversion) feeds:
//! a routed request is a head (`RequestHead`) plus a body stream, answered by a response
//! head plus a body stream; `route`, `rewrite`, `pool`, `retry` and `stats` take those and
//! know nothing of the client's framing.

mod convert;
mod forward;
mod h1_to_h2;
mod h2_client;
mod h2_server;
mod h2_stream;
mod h2_upstream;
mod io;
mod local;
mod log;
pub mod pool;
mod proxy;
mod relay;
pub mod retry;
pub mod rewrite;
pub mod route;
pub mod stats;

use std::sync::Arc;
use std::time::Duration;

use sluice_codecs::http1::H1Limits;
use sluice_filters::RuleSet;

pub use proxy::serve;

use crate::access_log::AccessLog;
use crate::cluster::Cluster;
use crate::config::http::Http2Config;
use crate::config::ListenerConfig;
use pool::{PoolSettings, PoolStats};
use retry::RetryBudget;
use route::Router;
use stats::HttpStats;

/// What the connections of one `http` listener share.
pub struct HttpListener {
    pub name: Arc<str>,
    pub router: Router,
    /// Every cluster of the config, by index (routes name them by index).
    pub clusters: Vec<Arc<Cluster>>,
    pub pool_stats: Vec<Arc<PoolStats>>,
    pub pool: PoolSettings,
    pub stats: HttpStats,
    pub budget: RetryBudget,
    pub limits: H1Limits,
    pub rules: Arc<RuleSet>,
    pub access_log: Option<AccessLog>,
    pub idle_timeout: Duration,
    pub http2: Http2Config,
    /// The request header whose value is each op's `client_id`.
    pub client_id_header: Option<String>,
    /// The listener's TLS server config, offering `h2` and `http/1.1` by ALPN when its
    /// `tls` names no `alpn` list.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl HttpListener {
    /// The `client_id` of a request: its `client_id_header` value, if it is text.
    pub fn client_id<'h>(&self, head: &'h sluice_codecs::http1::RequestHead) -> Option<&'h str> {
        let name = self.client_id_header.as_deref()?;
        std::str::from_utf8(head.headers().get(name)?).ok()
    }

    pub fn new(
        config: &ListenerConfig,
        rules: Arc<RuleSet>,
        access_log: Option<AccessLog>,
        clusters: &[Arc<Cluster>],
    ) -> Option<Self> {
        let http = config.http.as_ref()?;
        let router = Router::new(http);
        Some(HttpListener {
            name: config.name.as_str().into(),
            stats: HttpStats::new(&config.name, &router),
            router,
            clusters: clusters.to_vec(),
            pool_stats: clusters.iter().map(|c| Arc::new(PoolStats::new(&c.config.name))).collect(),
            pool: PoolSettings { max_idle: http.upstream_max_idle, idle_timeout: http.upstream_idle_timeout },
            budget: RetryBudget::default(),
            limits: H1Limits { max_head: http.max_request_head, ..H1Limits::default() },
            rules,
            access_log,
            idle_timeout: config.idle_timeout,
            http2: http.http2,
            client_id_header: http.client_id_header.clone(),
            tls: config.tls.as_ref().map(|tls| {
                if tls.alpn.is_empty() {
                    let mut server = (*tls.server).clone();
                    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                    Arc::new(server)
                } else {
                    tls.server.clone()
                }
            }),
        })
    }
}
