//! Broker addresses on sluice for a `kafka` listener: the runtime side of the filter's
//! [`BrokerDirectory`].
//!
//! A Kafka client bootstraps from one address, then connects to every broker the Metadata
//! (and FindCoordinator, DescribeCluster) responses name. For none of those connections to
//! bypass sluice, each broker is told to the client as `advertised_host:<port>` where that
//! port is on sluice and proxies to that broker, with the same filter (the same rules,
//! quotas and stats):
//!
//! - the broker of a one-endpoint cluster whose address is that endpoint is the listener
//!   itself (the bootstrap connection already goes there);
//! - any other broker gets a port of `broker_ports`, taken in order the first time its id
//!   appears, where a listener is opened on every worker (SO_REUSEPORT sockets handed to the
//!   workers, which accept on them like on any listener) whose cluster is the broker's
//!   advertised address; a broker id that comes back with a new address gets a new port;
//! - without `broker_ports`, with the range used up, or when the port cannot be bound or
//!   the broker's host cannot be resolved, the broker is told the listener's own address:
//!   requests may then reach a broker that does not lead their partition (the client
//!   retries on NOT_LEADER_OR_FOLLOWER), but nothing bypasses sluice. Each such case is
//!   logged once per broker id.
//!
//! The table is consulted only on the responses that name brokers, never per produced or
//! fetched frame, so its lock is off the data path.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use sluice_filters::kafka::BrokerDirectory;
use sluice_filters::Protocol;
use socket2::Socket;
use tokio::sync::mpsc::UnboundedSender;

use crate::config::ClusterConfig;
use crate::listener::{bind_reuseport, ListenerRuntime};

/// A listener socket handed to a worker to accept on.
pub type NewListener = (Arc<ListenerRuntime>, Socket);

/// What the directory needs from the running server, set once the listener is bound.
pub struct Wiring {
    pub parent: Weak<ListenerRuntime>,
    /// The listener's bound address (its port when the config said 0).
    pub bound: SocketAddr,
    /// One sender per worker.
    pub workers: Vec<UnboundedSender<NewListener>>,
}

struct Assigned {
    host: String,
    port: i32,
    /// The port clients are told.
    local: u16,
}

#[derive(Default)]
struct Table {
    by_node: HashMap<i32, Assigned>,
    /// Ports of the range taken so far.
    taken: usize,
}

pub struct KafkaBrokers {
    advertised_host: Arc<str>,
    bind_ip: IpAddr,
    ports: Option<RangeInclusive<u16>>,
    cluster: Arc<ClusterConfig>,
    wiring: OnceLock<Wiring>,
    table: Mutex<Table>,
}

impl KafkaBrokers {
    pub fn new(
        advertised_host: &str,
        bind_ip: IpAddr,
        ports: Option<RangeInclusive<u16>>,
        cluster: Arc<ClusterConfig>,
    ) -> Self {
        KafkaBrokers {
            advertised_host: advertised_host.into(),
            bind_ip,
            ports,
            cluster,
            wiring: OnceLock::new(),
            table: Mutex::new(Table::default()),
        }
    }

    /// Connects the directory to its listener once it is bound and the workers exist.
    pub fn wire(&self, wiring: Wiring) {
        let _ = self.wiring.set(wiring);
    }

    /// The listener's own address, as clients are told it.
    fn own_port(&self) -> i32 {
        self.wiring.get().map_or(0, |w| i32::from(w.bound.port()))
    }

    /// Whether `host:port` is the cluster's one endpoint (as written, or as resolved).
    fn is_bootstrap(&self, host: &str, port: i32) -> bool {
        let [endpoint] = self.cluster.endpoints.as_slice() else { return false };
        let Ok(port) = u16::try_from(port) else { return false };
        if endpoint.address.port() != port {
            return false;
        }
        let written = endpoint.name.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']']));
        written == Some(host) || host.parse::<IpAddr>().is_ok_and(|ip| ip == endpoint.address.ip())
    }

    /// The address sluice connects to for a broker advertised as `host:port`: resolved once,
    /// when the broker first appears (brokers are few; their listeners live as long as
    /// sluice). IPv4 first: a broker advertised as `localhost` usually listens on 127.0.0.1
    /// only.
    fn resolve(host: &str, port: i32) -> Result<SocketAddr, String> {
        let port = u16::try_from(port).map_err(|_| format!("invalid port {port}"))?;
        let resolved: Vec<SocketAddr> =
            (host, port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?.collect();
        resolved
            .iter()
            .find(|a| a.is_ipv4())
            .or(resolved.first())
            .copied()
            .ok_or(format!("{host} resolves to no address"))
    }

    /// Opens a listener for broker `node_id` on the next port of the range that binds, on
    /// every worker, proxying to `upstream`; returns its port. Ports that do not bind (taken
    /// by another process) are skipped for good.
    fn open(&self, table: &mut Table, node_id: i32, advertised: &str, upstream: SocketAddr) -> Result<u16, String> {
        let wiring = self.wiring.get().ok_or("the listener is not running yet")?;
        let parent = wiring.parent.upgrade().ok_or("the listener has stopped")?;
        let range = self.ports.clone().ok_or("no broker_ports")?;
        loop {
            let local = range.clone().nth(table.taken).ok_or("every port of broker_ports is taken")?;
            table.taken += 1;
            let address = SocketAddr::new(self.bind_ip, local);
            let sockets = match bind_reuseport(address, Protocol::Kafka, wiring.workers.len().max(1)) {
                Ok(sockets) => sockets,
                Err(e) => {
                    tracing::warn!(node_id, %address, error = %e, "kafka broker port skipped: cannot bind");
                    continue;
                }
            };
            let runtime = Arc::new(parent.for_kafka_broker(node_id, address, advertised, upstream));
            for (socket, worker) in sockets.into_iter().zip(&wiring.workers) {
                worker.send((runtime.clone(), socket)).map_err(|_| "the workers have stopped")?;
            }
            tracing::info!(listener = %parent.name, node_id, %address, upstream = %advertised, "kafka broker listener opened");
            return Ok(local);
        }
    }
}

impl BrokerDirectory for KafkaBrokers {
    fn advertise(&self, node_id: i32, host: &str, port: i32) -> (Arc<str>, i32) {
        let fallback = (self.advertised_host.clone(), self.own_port());
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = table.by_node.get(&node_id) {
            if a.host == host && a.port == port {
                return (self.advertised_host.clone(), i32::from(a.local));
            }
        }
        let local = if self.is_bootstrap(host, port) {
            u16::try_from(self.own_port()).ok()
        } else {
            let advertised = format!("{host}:{port}");
            let opened =
                Self::resolve(host, port).and_then(|upstream| self.open(&mut table, node_id, &advertised, upstream));
            match opened {
                Ok(local) => Some(local),
                Err(e) => {
                    if !table.by_node.contains_key(&node_id) {
                        tracing::warn!(node_id, broker = %advertised, reason = %e, "kafka broker told as the listener's own address");
                    }
                    None
                }
            }
        };
        let Some(local) = local else {
            table
                .by_node
                .insert(node_id, Assigned { host: host.into(), port, local: u16::try_from(fallback.1).unwrap_or(0) });
            return fallback;
        };
        table.by_node.insert(node_id, Assigned { host: host.into(), port, local });
        (self.advertised_host.clone(), i32::from(local))
    }
}
