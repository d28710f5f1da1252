//! Upstream clusters: endpoints, round-robin selection, connecting with a timeout and
//! falling over to the next endpoint, and per-endpoint connection counts for `/clusters`.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use metrics::{Counter, Gauge};
use serde::Serialize;
use tokio::net::TcpStream;

use crate::config::ClusterConfig;
use crate::telemetry::{UPSTREAM_CONNECTIONS_ACTIVE, UPSTREAM_CONNECTIONS_TOTAL, UPSTREAM_CONNECT_ERRORS_TOTAL};

/// Why connecting to an endpoint failed; the `reason` label of
/// `sluice_upstream_connect_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectFailure {
    Refused,
    Timeout,
    Unreachable,
    Other,
}

impl ConnectFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectFailure::Refused => "refused",
            ConnectFailure::Timeout => "timeout",
            ConnectFailure::Unreachable => "unreachable",
            ConnectFailure::Other => "other",
        }
    }

    fn of(e: &io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
            io::ErrorKind::TimedOut => ConnectFailure::Timeout,
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable | io::ErrorKind::AddrNotAvailable => {
                ConnectFailure::Unreachable
            }
            _ => ConnectFailure::Other,
        }
    }

    const ALL: [ConnectFailure; 4] =
        [ConnectFailure::Refused, ConnectFailure::Timeout, ConnectFailure::Unreachable, ConnectFailure::Other];
}

/// Live state of one endpoint.
#[derive(Default)]
struct EndpointState {
    active: AtomicUsize,
    total: AtomicU64,
    connect_errors: AtomicU64,
}

pub struct Cluster {
    pub config: Arc<ClusterConfig>,
    next: AtomicUsize,
    endpoints: Vec<EndpointState>,
    active: Gauge,
    total: Counter,
    errors: [Counter; 4],
}

/// An open upstream connection's claim on its endpoint; releases the count when dropped.
pub struct UpstreamLease {
    cluster: Arc<Cluster>,
    index: usize,
}

impl UpstreamLease {
    /// The endpoint's position in the cluster's list.
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn address(&self) -> SocketAddr {
        self.cluster.config.endpoints[self.index].address
    }
}

impl Drop for UpstreamLease {
    fn drop(&mut self) {
        self.cluster.endpoints[self.index].active.fetch_sub(1, Ordering::Relaxed);
        self.cluster.active.decrement(1);
    }
}

impl Cluster {
    pub fn new(config: Arc<ClusterConfig>) -> Self {
        let name = config.name.clone();
        let error = |r: ConnectFailure| metrics::counter!(UPSTREAM_CONNECT_ERRORS_TOTAL, "cluster" => name.clone(), "reason" => r.as_str());
        Cluster {
            endpoints: config.endpoints.iter().map(|_| EndpointState::default()).collect(),
            next: AtomicUsize::new(0),
            active: metrics::gauge!(UPSTREAM_CONNECTIONS_ACTIVE, "cluster" => name.clone()),
            total: metrics::counter!(UPSTREAM_CONNECTIONS_TOTAL, "cluster" => name.clone()),
            errors: ConnectFailure::ALL.map(error),
            config,
        }
    }

    /// The next endpoint in round-robin order.
    pub fn pick(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.endpoints.len()
    }

    /// Counts an upstream connection (or UDP session) on `index` until the lease drops.
    pub fn lease(self: &Arc<Self>, index: usize) -> UpstreamLease {
        let ep = &self.endpoints[index];
        ep.active.fetch_add(1, Ordering::Relaxed);
        ep.total.fetch_add(1, Ordering::Relaxed);
        self.active.increment(1);
        self.total.increment(1);
        UpstreamLease { cluster: self.clone(), index }
    }

    pub fn record_connect_error(&self, index: usize, failure: ConnectFailure) {
        self.endpoints[index].connect_errors.fetch_add(1, Ordering::Relaxed);
        let slot = ConnectFailure::ALL.iter().position(|f| *f == failure).unwrap_or(3);
        self.errors[slot].increment(1);
    }

    /// Connects to the next endpoint in round-robin order; when it refuses, times out or
    /// is unreachable, tries the following ones, each endpoint at most once.
    pub async fn connect(self: &Arc<Self>) -> Result<(TcpStream, UpstreamLease), ConnectFailure> {
        self.connect_from(self.pick()).await
    }

    /// Like [`Cluster::connect`], starting at endpoint `first` (a caller that picked the
    /// endpoint already, e.g. to look in its connection pool first).
    pub async fn connect_from(self: &Arc<Self>, first: usize) -> Result<(TcpStream, UpstreamLease), ConnectFailure> {
        let mut last = ConnectFailure::Other;
        for attempt in 0..self.endpoints.len() {
            let index = (first + attempt) % self.endpoints.len();
            let addr = self.config.endpoints[index].address;
            let result = tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(addr)).await;
            let failure = match result {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok((stream, self.lease(index)));
                }
                Ok(Err(e)) => {
                    tracing::debug!(cluster = %self.config.name, upstream = %addr, error = %e, "upstream connect failed");
                    ConnectFailure::of(&e)
                }
                Err(_) => ConnectFailure::Timeout,
            };
            self.record_connect_error(index, failure);
            last = failure;
        }
        Err(last)
    }

    pub fn snapshot(&self) -> ClusterSnapshot {
        ClusterSnapshot {
            name: self.config.name.clone(),
            connect_timeout_ms: u64::try_from(self.config.connect_timeout.as_millis()).unwrap_or(u64::MAX),
            endpoints: self
                .config
                .endpoints
                .iter()
                .zip(&self.endpoints)
                .map(|(e, s)| EndpointSnapshot {
                    endpoint: e.name.clone(),
                    address: e.address,
                    active_connections: s.active.load(Ordering::Relaxed),
                    total_connections: s.total.load(Ordering::Relaxed),
                    connect_errors: s.connect_errors.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
pub struct ClusterSnapshot {
    pub name: String,
    pub connect_timeout_ms: u64,
    pub endpoints: Vec<EndpointSnapshot>,
}

#[derive(Serialize)]
pub struct EndpointSnapshot {
    pub endpoint: String,
    pub address: SocketAddr,
    pub active_connections: usize,
    pub total_connections: u64,
    pub connect_errors: u64,
}
