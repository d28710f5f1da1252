//! `redis` listeners in `mode: pool`: sluice terminates each client connection and sends
//! its commands over a small pool of pipelined connections per server, shared by all the
//! clients of a worker (twemproxy's and Envoy redis_proxy's model), so thousands of
//! clients cost each server a handful of connections. Keys are spread over the cluster's
//! endpoints by ketama (`sluice_filters::redis::ketama`, twemproxy-compatible) or maglev; multi-key
//! commands are split and merged or refused (`sluice_filters::redis::routing`).
//!
//! Each worker builds its own pools on first use (`thread_local`): a client connection
//! and the pooled connections it uses live on the same worker, so nothing here is shared
//! across threads or locked. `client` runs one client connection; `upstream` one pooled
//! server connection.

mod client;
pub mod stats;
mod upstream;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_codecs::resp::RespLimits;
use sluice_filters::redis::distribution::Distribution;
use sluice_filters::redis::merge::encode_command;

use crate::listener::ListenerRuntime;
pub use client::serve;
use stats::ServerStats;
use upstream::Upstream;

/// One worker's pools for one listener: a ring over the servers and each server's
/// connections.
struct Pools {
    ring: Distribution,
    servers: Vec<Server>,
    connect_timeout: Duration,
    limits: RespLimits,
    /// The AUTH command every connection starts with, when the pool logs in to servers.
    auth: Option<Bytes>,
}

struct Server {
    address: SocketAddr,
    /// The handles for clients' own connections to it.
    own_stats: ServerStats,
    connections: Vec<Rc<Upstream>>,
    next: Cell<usize>,
}

impl Pools {
    /// A connection to server `index` for one client alone (blocking commands,
    /// transactions): no reply timeout, closed when the client leaves.
    fn own_connection(&self, index: usize) -> Rc<Upstream> {
        let server = &self.servers[index];
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
        let limits = runtime.config.redis.as_ref()?.limits(false);
        let auth = pool.upstream_auth.as_ref().map(|login| {
            let args: [&[u8]; 2] = [login.user.as_bytes(), login.password.as_bytes()];
            encode_command(b"AUTH", args.into_iter())
        });
        let servers = cluster
            .endpoints
            .iter()
            .map(|endpoint| {
                let pooled = ServerStats::new(&runtime.name, &endpoint.name, false);
                Server {
                    address: endpoint.address,
                    own_stats: ServerStats::new(&runtime.name, &endpoint.name, true),
                    connections: (0..pool.connections)
                        .map(|_| {
                            let (timeout, auth) = (Some(pool.timeout), auth.clone());
                            Upstream::new(
                                endpoint.address,
                                cluster.connect_timeout,
                                timeout,
                                limits,
                                auth,
                                pooled.clone(),
                            )
                        })
                        .collect(),
                    next: Cell::new(0),
                }
            })
            .collect();
        let built = Rc::new(Pools {
            ring: Distribution::new(pool.distribution, &names, pool.hash),
            servers,
            connect_timeout: cluster.connect_timeout,
            limits,
            auth,
        });
        pools.push((id, built.clone()));
        Some(built)
    })
}
