//! `redis` listeners in `mode: pool`: sluice terminates each client connection and sends
//! its commands over a small pool of pipelined connections per server, shared by all the
//! clients of a worker (twemproxy's and Envoy redis_proxy's model), so thousands of
//! clients cost each server a handful of connections. Keys are spread over the cluster's
//! endpoints by ketama (`sluice_filters::redis::ketama`, twemproxy-compatible) or maglev; multi-key
//! commands are split and merged or refused (`sluice_filters::redis::routing`).
//!
//! `pool.routes` send keys by prefix to other clusters (longest prefix first, the prefix
//! optionally cut off the key), each a group of servers with its own placement; the
//! listener's cluster takes every other key. `pool.mirror` copies commands to one more
//! cluster, whose replies are dropped.
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
mod group;
pub mod stats;
mod topology;
mod upstream;
mod wire;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use metrics::Counter;
use sluice_filters::redis::cluster_slots::SLOTS;
use sluice_filters::redis::distribution::Distribution;
use tokio::sync::Notify;

use crate::cluster::Cluster;
use crate::config::{ReadFrom, RedisPoolConfig};
use crate::listener::ListenerRuntime;
pub use client::serve;
use group::{Group, GroupSettings, Placement, Server};
use upstream::{Login, Slot};

/// A server of one of the pool's groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ServerId {
    group: usize,
    index: usize,
}

/// One worker's pools for one listener: a group of servers per cluster it sends keys to
/// (group 0 is the listener's cluster, which takes every key no route claims).
struct Pools {
    groups: Vec<Rc<Group>>,
    /// Longest prefix first.
    routes: Vec<KeyRoute>,
    /// Some route cuts its prefix off the keys, so commands may need rewriting.
    strips: bool,
    mirror: Option<Mirror>,
    /// The lane the next client gets (see `Server::pick`).
    lanes: Cell<usize>,
}

struct KeyRoute {
    prefix: Box<[u8]>,
    group: usize,
    remove_prefix: bool,
}

/// Where commands are copied, and how many of them.
struct Mirror {
    group: usize,
    fraction: f64,
    exclude_reads: bool,
    /// Commands owed a copy: grows by `fraction` per command, a copy spends 1 (an even
    /// spread, no randomness).
    credit: Cell<f64>,
    /// What the copies' replies wake: nobody waits on it.
    sink: Rc<Notify>,
    mirrored: Counter,
}

impl Pools {
    /// The group `key` goes to, and how many bytes are cut off its front there.
    fn route(&self, key: &[u8]) -> (usize, usize) {
        for route in &self.routes {
            if key.starts_with(&route.prefix) {
                return (route.group, if route.remove_prefix { route.prefix.len() } else { 0 });
            }
        }
        (0, 0)
    }

    /// The server `key` belongs to; `read` commands may go to a replica.
    fn server_for(&self, key: &[u8], read: bool) -> Option<ServerId> {
        let (group, cut) = self.route(key);
        let index = self.groups[group].server_for(&key[cut..], read)?;
        Some(ServerId { group, index })
    }

    /// Which part of a split command `key` goes in: its server, and in front of a Redis
    /// Cluster its hash slot too.
    fn part_for(&self, key: &[u8], read: bool) -> Option<(ServerId, u16)> {
        let (group, cut) = self.route(key);
        let (index, slot) = self.groups[group].part_for(&key[cut..], read)?;
        Some((ServerId { group, index }, slot))
    }

    /// The server of a pub/sub channel: placed like a key, never cut by its route.
    fn channel_server(&self, channel: &[u8]) -> Option<ServerId> {
        let (group, _) = self.route(channel);
        let index = self.groups[group].server_for(channel, false)?;
        Some(ServerId { group, index })
    }

    fn server(&self, id: ServerId) -> Rc<Server> {
        self.groups[id.group].server(id.index)
    }

    fn group(&self, id: ServerId) -> &Rc<Group> {
        &self.groups[id.group]
    }

    /// Whether every group's placement is known (a Redis Cluster's slot map learnt).
    fn placement_known(&self) -> bool {
        self.groups.iter().all(|g| g.placement_known())
    }

    /// Learns the slot maps not known yet; whether all are known afterwards.
    async fn refresh(&self) -> bool {
        let mut known = true;
        for group in &self.groups {
            if !group.placement_known() {
                known &= group.refresh().await;
            }
        }
        known
    }

    /// A lane for a new client: clients take the pooled connections in turn.
    fn next_lane(&self) -> usize {
        let lane = self.lanes.get();
        self.lanes.set(lane.wrapping_add(1));
        lane
    }

    /// Whether this command is copied to the mirror (spends the credit when it is).
    fn mirrors(&self, writes: bool) -> Option<&Mirror> {
        let mirror = self.mirror.as_ref()?;
        if mirror.exclude_reads && !writes {
            return None;
        }
        let credit = mirror.credit.get() + mirror.fraction;
        if credit < 1.0 {
            mirror.credit.set(credit);
            return None;
        }
        mirror.credit.set(credit - 1.0);
        mirror.mirrored.increment(1);
        Some(mirror)
    }
}

thread_local! {
    /// Per listener (by the address of its runtime, which lives as long as the server).
    static POOLS: RefCell<Vec<(usize, Rc<Pools>)>> = const { RefCell::new(Vec::new()) };
}

/// This worker's pools for `runtime`'s listener, built on first use.
fn pools(runtime: &Arc<ListenerRuntime>) -> Option<Rc<Pools>> {
    let redis = runtime.config.redis.as_ref()?;
    let pool = redis.pool.as_ref()?;
    let id = Arc::as_ptr(runtime) as usize;
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        if let Some((_, found)) = pools.iter().find(|(key, _)| *key == id) {
            return Some(found.clone());
        }
        // One group per cluster, the listener's first.
        let mut clusters: Vec<Arc<Cluster>> = vec![runtime.cluster.clone()];
        let mut group_of = |index: usize| -> usize {
            let cluster = runtime.clusters.get(index).cloned().unwrap_or_else(|| runtime.cluster.clone());
            match clusters.iter().position(|c| Arc::ptr_eq(c, &cluster)) {
                Some(at) => at,
                None => {
                    clusters.push(cluster);
                    clusters.len() - 1
                }
            }
        };
        let mut routes: Vec<KeyRoute> = pool
            .routes
            .iter()
            .map(|r| KeyRoute {
                prefix: r.prefix.as_bytes().into(),
                group: group_of(r.cluster_index),
                remove_prefix: r.remove_prefix,
            })
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        let mirror = pool.mirror.as_ref().map(|m| Mirror {
            group: group_of(m.cluster_index),
            fraction: m.fraction,
            exclude_reads: m.exclude_reads,
            credit: Cell::new(0.0),
            sink: Rc::new(Notify::new()),
            mirrored: metrics::counter!(stats::MIRRORED_TOTAL, "listener" => runtime.name.to_string(), "cluster" => m.cluster.clone()),
        });
        let limits = redis.limits(false);
        let groups: Vec<Rc<Group>> = clusters.iter().map(|cluster| build_group(runtime, pool, cluster, limits)).collect();
        for group in &groups {
            group.refresh_periodically();
        }
        let strips = routes.iter().any(|r| r.remove_prefix);
        let built = Rc::new(Pools { groups, strips, routes, mirror, lanes: Cell::new(0) });
        pools.push((id, built.clone()));
        Some(built)
    })
}

fn build_group(
    runtime: &ListenerRuntime,
    pool: &RedisPoolConfig,
    cluster: &Cluster,
    limits: sluice_codecs::resp::RespLimits,
) -> Rc<Group> {
    let config = &cluster.config;
    let weighted: Vec<(String, u32)> = config.endpoints.iter().map(|e| (e.name.clone(), e.weight)).collect();
    let placement = if pool.cluster_backend {
        Placement::Slots(RefCell::new(topology::SlotMap::new(SLOTS)))
    } else {
        Placement::Ring(Distribution::new(pool.distribution, &weighted, pool.hash))
    };
    let auth = pool.upstream_auth.as_ref().map(|login| (login.user.as_str(), login.password.as_str()));
    let settings = GroupSettings {
        listener: runtime.name.to_string(),
        cluster: config.name.clone(),
        connections: pool.connections,
        reply_timeout: pool.timeout,
        connect_timeout: config.connect_timeout,
        limits,
        login: Login::new(auth, pool.cluster_backend && pool.read_from != ReadFrom::Primary),
        read_from: pool.read_from,
        tls: config.tls.clone(),
    };
    let endpoints: Vec<(String, std::net::SocketAddr)> =
        config.endpoints.iter().map(|e| (e.name.clone(), e.address)).collect();
    Group::new(placement, settings, &endpoints)
}

/// A slot for a command whose reply nobody reads (mirrored copies).
fn sink_slot(mirror: &Mirror) -> Rc<Slot> {
    Slot::new(mirror.sink.clone())
}
