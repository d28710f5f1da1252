//! The per-worker keep-alive pool of upstream HTTP/1.1 connections (RFC 9112 §9.3
//! persistence), keyed by cluster and endpoint.
//!
//! A connection never leaves the worker that opened it, so the pool is a thread-local
//! `RefCell` and taking or returning a connection costs no lock. Idle connections are
//! capped per endpoint (`upstream_max_idle`, the oldest go first), expire after
//! `upstream_idle_timeout` (a sweep once a second closes them), and are checked before
//! reuse: one that has anything to read (a FIN, a reset, stray bytes) is closed instead.
//! The caller returns a connection only after a complete exchange whose response allowed
//! it (not close-delimited, no `Connection: close`, no error, nothing left unread).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::io::Conn;
use crate::cluster::{Cluster, ConnectFailure, UpstreamLease};

pub const UPSTREAM_CONNECTIONS_ACTIVE: &str = "sluice_http_upstream_connections_active";
pub const UPSTREAM_CONNECTIONS_IDLE: &str = "sluice_http_upstream_connections_idle";
pub const UPSTREAM_REQUESTS_TOTAL: &str = "sluice_http_upstream_requests_total";

const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The pool metrics of one cluster.
pub struct PoolStats {
    active: Gauge,
    idle: Gauge,
    new: Counter,
    reused: Counter,
}

impl PoolStats {
    pub fn new(cluster: &str) -> Self {
        let c = || cluster.to_owned();
        PoolStats {
            active: metrics::gauge!(UPSTREAM_CONNECTIONS_ACTIVE, "cluster" => c()),
            idle: metrics::gauge!(UPSTREAM_CONNECTIONS_IDLE, "cluster" => c()),
            new: metrics::counter!(UPSTREAM_REQUESTS_TOTAL, "cluster" => c(), "connection" => "new"),
            reused: metrics::counter!(UPSTREAM_REQUESTS_TOTAL, "cluster" => c(), "connection" => "reused"),
        }
    }
}

impl PoolStats {
    /// A request sent on an existing (HTTP/2, multiplexed) connection.
    pub fn count_reused(&self) {
        self.reused.increment(1);
    }
}

/// How a listener uses the pool.
#[derive(Clone, Copy)]
pub struct PoolSettings {
    pub max_idle: usize,
    pub idle_timeout: Duration,
}

/// Counts a connection in use until dropped.
pub(super) struct ActiveGuard(Arc<PoolStats>);

impl ActiveGuard {
    fn new(stats: &Arc<PoolStats>) -> Self {
        stats.active.increment(1);
        ActiveGuard(stats.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.decrement(1);
    }
}

/// Counts a pooled idle connection until dropped.
struct IdleGuard(Arc<PoolStats>);

impl Drop for IdleGuard {
    fn drop(&mut self) {
        self.0.idle.decrement(1);
    }
}

/// An upstream connection in use by one exchange.
pub struct Upstream {
    pub io: Conn,
    pub lease: UpstreamLease,
    /// It came from the pool (the server may have closed it meanwhile).
    pub reused: bool,
    key: (usize, usize),
    pub(super) guard: ActiveGuard,
}

struct Idle {
    io: Conn,
    lease: UpstreamLease,
    expires: Instant,
    guard: IdleGuard,
}

thread_local! {
    static POOL: RefCell<HashMap<(usize, usize), VecDeque<Idle>>> = RefCell::new(HashMap::new());
    static SWEEPING: Cell<bool> = const { Cell::new(false) };
}

/// Why no upstream connection could be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckoutError {
    Connect(ConnectFailure),
    Tls,
    /// The HTTP/2 handshake with the upstream failed.
    Handshake,
}

fn key(cluster: &Arc<Cluster>, endpoint: usize) -> (usize, usize) {
    (Arc::as_ptr(cluster) as usize, endpoint)
}

/// A usable idle connection to `endpoint`, if one is pooled.
fn take_idle(cluster: &Arc<Cluster>, endpoint: usize) -> Option<Idle> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.get_mut(&key(cluster, endpoint))?;
        let now = Instant::now();
        // Most recently used first: it is the likeliest to be still open.
        while let Some(mut conn) = idle.pop_back() {
            if conn.expires > now && conn.io.is_reusable() {
                return Some(conn);
            }
        }
        None
    })
}

/// An upstream connection for `cluster`: a pooled one to the next endpoint in round-robin
/// order, or a new one (with the cluster's TLS when it has `tls`).
pub async fn checkout(cluster: &Arc<Cluster>, stats: &Arc<PoolStats>) -> Result<Upstream, CheckoutError> {
    let first = cluster.pick();
    if let Some(idle) = take_idle(cluster, first) {
        stats.reused.increment(1);
        let Idle { io, lease, guard, .. } = idle;
        drop(guard);
        return Ok(Upstream { io, lease, reused: true, key: key(cluster, first), guard: ActiveGuard::new(stats) });
    }
    fresh(cluster, first, stats).await
}

/// A new connection, starting at endpoint `first` (failing over like `Cluster::connect`).
pub async fn fresh(cluster: &Arc<Cluster>, first: usize, stats: &Arc<PoolStats>) -> Result<Upstream, CheckoutError> {
    fresh_with_alpn(cluster, first, stats, None).await
}

/// A new connection; with the cluster's `tls`, offering `alpn` (only) and requiring the
/// server to pick it when given (HTTP/2 over TLS, RFC 9113 §3.2).
pub async fn fresh_with_alpn(
    cluster: &Arc<Cluster>,
    first: usize,
    stats: &Arc<PoolStats>,
    alpn: Option<&[u8]>,
) -> Result<Upstream, CheckoutError> {
    let (tcp, lease) = cluster.connect_from(first).await.map_err(CheckoutError::Connect)?;
    let io = match &cluster.config.tls {
        None => Conn::Plain(tcp),
        Some(tls) => {
            let (mut config, name) = tls.client_config(lease.index());
            if let Some(protocol) = alpn {
                let mut with_alpn = (*config).clone();
                with_alpn.alpn_protocols = vec![protocol.to_vec()];
                config = Arc::new(with_alpn);
            }
            let handshake = TlsConnector::from(config).connect(name, tcp);
            match tokio::time::timeout(cluster.config.connect_timeout, handshake).await {
                Ok(Ok(stream)) if alpn.is_some_and(|p| stream.get_ref().1.alpn_protocol() != Some(p)) => {
                    tracing::debug!(cluster = %cluster.config.name, "upstream TLS without the ALPN protocol asked for");
                    return Err(CheckoutError::Handshake);
                }
                Ok(Ok(stream)) => Conn::ClientTls(Box::new(stream)),
                Ok(Err(e)) => {
                    tracing::debug!(cluster = %cluster.config.name, error = %e, "upstream TLS handshake failed");
                    return Err(CheckoutError::Tls);
                }
                Err(_) => return Err(CheckoutError::Tls),
            }
        }
    };
    stats.new.increment(1);
    let endpoint = lease.index();
    Ok(Upstream { io, lease, reused: false, key: key(cluster, endpoint), guard: ActiveGuard::new(stats) })
}

/// Returns a connection whose exchange ended cleanly and allows reuse.
pub fn checkin(up: Upstream, settings: PoolSettings) {
    if settings.max_idle == 0 {
        return;
    }
    let Upstream { io, lease, key, guard, .. } = up;
    let stats = guard.0.clone();
    drop(guard);
    stats.idle.increment(1);
    let idle = Idle { io, lease, expires: Instant::now() + settings.idle_timeout, guard: IdleGuard(stats) };
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let list = pool.entry(key).or_default();
        list.push_back(idle);
        while list.len() > settings.max_idle {
            list.pop_front();
        }
    });
    start_sweeper();
}

/// Closes expired idle connections once a second, on this worker.
fn start_sweeper() {
    if SWEEPING.with(|s| s.replace(true)) {
        return;
    }
    tokio::task::spawn_local(async {
        loop {
            tokio::time::sleep(SWEEP_INTERVAL).await;
            let now = Instant::now();
            let expired: Vec<Idle> = POOL.with(|pool| {
                let mut pool = pool.borrow_mut();
                let mut out = Vec::new();
                for list in pool.values_mut() {
                    while list.front().is_some_and(|c| c.expires <= now) {
                        out.extend(list.pop_front());
                    }
                }
                pool.retain(|_, l| !l.is_empty());
                out
            });
            // Closed outside the borrow.
            drop(expired);
        }
    });
}
