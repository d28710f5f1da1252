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
    /// Endpoint indexes in weighted round-robin order (see [`schedule`]).
    schedule: Vec<usize>,
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
            schedule: schedule(&config.endpoints.iter().map(|e| e.weight).collect::<Vec<_>>()),
            active: metrics::gauge!(UPSTREAM_CONNECTIONS_ACTIVE, "cluster" => name.clone()),
            total: metrics::counter!(UPSTREAM_CONNECTIONS_TOTAL, "cluster" => name.clone()),
            errors: ConnectFailure::ALL.map(error),
            config,
        }
    }

    /// The next endpoint in weighted round-robin order.
    pub fn pick(&self) -> usize {
        self.schedule[self.next.fetch_add(1, Ordering::Relaxed) % self.schedule.len()]
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
            if self.config.endpoints[index].weight == 0 {
                continue;
            }
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
                    weight: e.weight,
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
    pub weight: u32,
    pub active_connections: usize,
    pub total_connections: u64,
    pub connect_errors: u64,
}

/// Endpoint indexes in smooth weighted round-robin order (nginx's: each turn every
/// endpoint gains its weight, the one with the most credit is picked and pays the total),
/// one cycle long, so a weight-3 endpoint is picked three times per cycle, spread out
/// rather than in a row. Weights are divided by their common divisor first; weight 0
/// never appears. Equal weights give plain round robin.
fn schedule(weights: &[u32]) -> Vec<usize> {
    let divisor = weights.iter().copied().filter(|&w| w > 0).reduce(gcd).unwrap_or(1);
    let weights: Vec<i64> = weights.iter().map(|&w| i64::from(w / divisor)).collect();
    let total: i64 = weights.iter().sum();
    if total == 0 {
        return (0..weights.len().max(1)).collect();
    }
    let mut credit = vec![0i64; weights.len()];
    (0..total)
        .map(|_| {
            for (c, w) in credit.iter_mut().zip(&weights) {
                *c += w;
            }
            let best = (0..weights.len()).filter(|&i| weights[i] > 0).max_by_key(|&i| (credit[i], -(i as i64)));
            let best = best.unwrap_or(0);
            credit[best] -= total;
            best
        })
        .collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::schedule;

    #[test]
    fn weights_share_the_schedule_spread_out() {
        assert_eq!(schedule(&[1, 1, 1]), vec![0, 1, 2]);
        assert_eq!(schedule(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(schedule(&[2, 0, 4]), vec![2, 0, 2]);
        assert_eq!(schedule(&[300, 100]), vec![0, 0, 1, 0]);
    }
}
