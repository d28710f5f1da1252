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

    /// Opens a listener on `local` that proxies to `host:port` on every worker.
    fn open(&self, node_id: i32, local: u16, host: &str, port: i32) -> Result<(), String> {
        let wiring = self.wiring.get().ok_or("the listener is not running yet")?;
        let parent = wiring.parent.upgrade().ok_or("the listener has stopped")?;
        let port = u16::try_from(port).map_err(|_| format!("invalid port {port}"))?;
        // Resolved once, when the broker first appears (brokers are few; their listeners
        // live as long as sluice). IPv4 first: a broker advertised as `localhost` usually
        // listens on 127.0.0.1 only.
        let resolved: Vec<SocketAddr> =
            (host, port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?.collect();
        let upstream = resolved
            .iter()
            .find(|a| a.is_ipv4())
            .or(resolved.first())
            .copied()
            .ok_or_else(|| format!("{host} resolves to no address"))?;
        let address = SocketAddr::new(self.bind_ip, local);
        let sockets = bind_reuseport(address, Protocol::Kafka, wiring.workers.len().max(1))
            .map_err(|e| format!("cannot bind {address}: {e}"))?;
        let runtime = Arc::new(parent.for_kafka_broker(node_id, address, &format!("{host}:{port}"), upstream));
        for (socket, worker) in sockets.into_iter().zip(&wiring.workers) {
            worker.send((runtime.clone(), socket)).map_err(|_| "the workers have stopped".to_string())?;
        }
        tracing::info!(listener = %parent.name, node_id, %address, upstream = %format!("{host}:{port}"), "kafka broker listener opened");
        Ok(())
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
            Some(self.own_port())
        } else {
            self.ports.as_ref().and_then(|range| {
                // Ports the range still has, in order; one that cannot be bound is skipped.
                while let Some(local) = range.clone().nth(table.taken) {
                    table.taken += 1;
                    match self.open(node_id, local, host, port) {
                        Ok(()) => return Some(i32::from(local)),
                        Err(e) => {
                            tracing::warn!(node_id, port = local, error = %e, "kafka broker listener not opened");
                            if e.starts_with("cannot resolve")
                                || e.contains("resolves to no")
                                || e.contains("not running")
                                || e.contains("stopped")
                            {
                                return None;
                            }
                        }
                    }
                }
                None
            })
        };
        let Some(local) = local.and_then(|l| u16::try_from(l).ok()) else {
            if !table.by_node.contains_key(&node_id) {
                tracing::warn!(node_id, broker = %format!("{host}:{port}"), "kafka broker told as the listener's own address (no broker port for it)");
            }
            table
                .by_node
                .insert(node_id, Assigned { host: host.into(), port, local: u16::try_from(fallback.1).unwrap_or(0) });
            return fallback;
        };
        table.by_node.insert(node_id, Assigned { host: host.into(), port, local });
        (self.advertised_host.clone(), i32::from(local))
    }
}
