//! `redis` listeners in `mode: pool`: sluice terminates each client connection and sends
//! its commands over a small pool of pipelined connections per server, shared by all the
//! clients of a worker (twemproxy's and Envoy redis_proxy's model), so thousands of
//! clients cost each server a handful of connections. Keys are spread over the cluster's
//! endpoints by ketama (`sluice_filters::redis::ketama`, twemproxy-compatible) or maglev; multi-key
//! commands are split and merged or refused (`sluice_filters::redis::routing`).
//!
//! In front of a Redis Cluster (`pool.backend: cluster`) the cluster's endpoints are seeds:
//! the slot map comes from `CLUSTER SLOTS` (`topology`), servers join as the map names
//! them, and MOVED / ASK replies are followed before the client sees them.
//!
//! Each worker builds its own pools on first use (`thread_local`): a client connection
//! and the pooled connections it uses live on the same worker, so nothing here is shared
//! across threads or locked. `client` runs one client connection; `upstream` one pooled
//! server connection.

mod client;
pub mod stats;
mod topology;
mod upstream;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_codecs::resp::RespLimits;
use sluice_filters::redis::cluster_slots::{slot_of, SLOTS};
use sluice_filters::redis::distribution::Distribution;
use sluice_filters::redis::merge::encode_command;

use crate::listener::ListenerRuntime;
pub use client::serve;
use stats::ServerStats;
use upstream::Upstream;

/// One worker's pools for one listener: where keys go, and each server's connections.
struct Pools {
    placement: Placement,
    /// Servers by index; a Redis Cluster adds the nodes its slot map names.
    servers: RefCell<Vec<Rc<Server>>>,
    listener: Arc<str>,
    connections: usize,
    reply_timeout: Duration,
    connect_timeout: Duration,
    limits: RespLimits,
    /// The AUTH command every connection starts with, when the pool logs in to servers.
    auth: Option<Bytes>,
    redirections: stats::Redirections,
}

enum Placement {
    /// Keys spread over the cluster's endpoints.
    Ring(Distribution),
    /// A Redis Cluster: the server of each hash slot, as last learnt.
    Slots(RefCell<topology::SlotMap>),
}

struct Server {
    name: String,
    address: SocketAddr,
    /// The handles for clients' own connections to it.
    own_stats: ServerStats,
    connections: Vec<Rc<Upstream>>,
    next: Cell<usize>,
}

impl Pools {
    /// The server `key` belongs to.
    fn server_for(&self, key: &[u8]) -> Option<usize> {
        match &self.placement {
            Placement::Ring(ring) => ring.server_for(key),
            Placement::Slots(map) => map.borrow().server_of(slot_of(key)),
        }
    }

    /// Which part of a split command `key` goes in: its server, and in front of a Redis
    /// Cluster its hash slot too.
    fn part_for(&self, key: &[u8]) -> Option<(usize, u16)> {
        let server = self.server_for(key)?;
        Some(match &self.placement {
            Placement::Ring(_) => (server, 0),
            Placement::Slots(_) => (server, slot_of(key)),
        })
    }

    fn server(&self, index: usize) -> Rc<Server> {
        self.servers.borrow()[index].clone()
    }

    /// The index of the server at `name` (`host:port`), added if it is new; `None` when
    /// the name is no socket address.
    fn server_named(&self, name: &str) -> Option<usize> {
        if let Some(at) = self.servers.borrow().iter().position(|s| s.name == name) {
            return Some(at);
        }
        let address: SocketAddr = name.parse().ok()?;
        let mut servers = self.servers.borrow_mut();
        servers.push(Rc::new(self.new_server(name, address)));
        Some(servers.len() - 1)
    }

    fn new_server(&self, name: &str, address: SocketAddr) -> Server {
        let pooled = ServerStats::new(&self.listener, name, false);
        Server {
            name: name.to_owned(),
            address,
            own_stats: ServerStats::new(&self.listener, name, true),
            connections: (0..self.connections)
                .map(|_| {
                    let (timeout, auth) = (Some(self.reply_timeout), self.auth.clone());
                    Upstream::new(address, self.connect_timeout, timeout, self.limits, auth, pooled.clone())
                })
                .collect(),
            next: Cell::new(0),
        }
    }

    /// A connection to server `index` for one client alone (blocking commands,
    /// transactions): no reply timeout, closed when the client leaves.
    fn own_connection(&self, index: usize) -> Rc<Upstream> {
        let server = self.server(index);
        let stats = server.own_stats.clone();
        Upstream::new(server.address, self.connect_timeout, None, self.limits, self.auth.clone(), stats)
    }
}

impl Server {
    /// The connection with the fewest commands in flight, round robin among equals.
    fn pick(&self) -> &Rc<Upstream> {
        let start = self.next.get();
        self.next.set(start.wrapping_add(1));
        let n = self.connections.len();
        (0..n).map(|i| &self.connections[(start + i) % n]).min_by_key(|c| c.in_flight()).unwrap_or(&self.connections[0])
    }
}

thread_local! {
    /// Per listener (by the address of its runtime, which lives as long as the server).
    static POOLS: RefCell<Vec<(usize, Rc<Pools>)>> = const { RefCell::new(Vec::new()) };
}

/// This worker's pools for `runtime`'s listener, built on first use.
fn pools(runtime: &Arc<ListenerRuntime>) -> Option<Rc<Pools>> {
    let pool = runtime.config.redis.as_ref()?.pool.as_ref()?;
    let id = Arc::as_ptr(runtime) as usize;
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        if let Some((_, found)) = pools.iter().find(|(key, _)| *key == id) {
            return Some(found.clone());
        }
        let cluster = &runtime.cluster.config;
        let names: Vec<String> = cluster.endpoints.iter().map(|e| e.name.clone()).collect();
        let auth = pool.upstream_auth.as_ref().map(|login| {
            let args: [&[u8]; 2] = [login.user.as_bytes(), login.password.as_bytes()];
            encode_command(b"AUTH", args.into_iter())
        });
        let placement = if pool.cluster_backend {
            Placement::Slots(RefCell::new(topology::SlotMap::new(SLOTS)))
        } else {
            Placement::Ring(Distribution::new(pool.distribution, &names, pool.hash))
        };
        let built = Rc::new(Pools {
            placement,
            servers: RefCell::new(Vec::new()),
            listener: runtime.name.clone(),
            connections: pool.connections,
            reply_timeout: pool.timeout,
            connect_timeout: cluster.connect_timeout,
            limits: runtime.config.redis.as_ref()?.limits(false),
            auth,
            redirections: stats::Redirections::new(&runtime.name),
        });
        {
            // In a ring, server i is endpoint i; in front of a Redis Cluster, the endpoints
            // are the seeds asked for the slot map.
            let mut servers = built.servers.borrow_mut();
            for endpoint in &cluster.endpoints {
                servers.push(Rc::new(built.new_server(&endpoint.name, endpoint.address)));
            }
        }
        pools.push((id, built.clone()));
        Some(built)
    })
}
