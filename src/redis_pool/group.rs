//! One cluster's servers in a worker's pools: where its keys go (a ring of servers, or a
//! Redis Cluster's slot map), and each server's pooled connections, one set per RESP
//! version the clients speak (the version is fixed per connection by HELLO, so RESP2 and
//! RESP3 clients cannot share one).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::Duration;

use sluice_codecs::resp::RespLimits;
use sluice_filters::redis::cluster_slots::slot_of;
use sluice_filters::redis::distribution::Distribution;

use super::stats::{Redirections, ServerStats};
use super::topology::SlotMap;
use super::upstream::{Login, Target, Upstream};
use crate::cluster_tls::ClusterTls;
use crate::config::ReadFrom;

/// What a group is built from.
pub(super) struct GroupSettings {
    pub listener: String,
    pub cluster: String,
    pub connections: usize,
    pub reply_timeout: Duration,
    pub connect_timeout: Duration,
    pub limits: RespLimits,
    pub login: Login,
    pub read_from: ReadFrom,
    /// TLS to the servers, when the cluster originates it.
    pub tls: Option<ClusterTls>,
}

pub(super) struct Group {
    pub placement: Placement,
    /// Servers by index; a Redis Cluster adds the nodes its slot map names.
    pub servers: RefCell<Vec<Rc<Server>>>,
    pub settings: GroupSettings,
    pub redirections: Redirections,
    /// Handed to the connections, which ask for a new slot map when they fail.
    me: Weak<Group>,
}

pub(super) enum Placement {
    /// Keys spread over the cluster's endpoints.
    Ring(Distribution),
    /// A Redis Cluster: the server of each hash slot, as last learnt.
    Slots(RefCell<SlotMap>),
}

pub(super) struct Server {
    pub name: String,
    pub address: SocketAddr,
    /// The handles for clients' own connections to it.
    own_stats: ServerStats,
    /// Pooled connections: RESP2 ones, and RESP3 ones for clients that said HELLO 3.
    connections: [Vec<Rc<Upstream>>; 2],
}

impl Group {
    pub fn new(placement: Placement, settings: GroupSettings, endpoints: &[(String, SocketAddr)]) -> Rc<Group> {
        let redirections = Redirections::new(&settings.listener, &settings.cluster);
        let group = Rc::new_cyclic(|me| Group {
            placement,
            servers: RefCell::new(Vec::new()),
            settings,
            redirections,
            me: me.clone(),
        });
        {
            // In a ring, server i is endpoint i; in front of a Redis Cluster, the endpoints
            // are the seeds asked for the slot map.
            let mut servers = group.servers.borrow_mut();
            for (name, address) in endpoints {
                servers.push(Rc::new(group.new_server(name, *address)));
            }
        }
        group
    }

    /// The server `key` belongs to; `read` commands may go to a replica.
    pub fn server_for(&self, key: &[u8], read: bool) -> Option<usize> {
        match &self.placement {
            Placement::Ring(ring) => ring.server_for(key),
            Placement::Slots(map) => {
                let map = map.borrow();
                let slot = slot_of(key);
                match self.settings.read_from {
                    ReadFrom::Primary => map.server_of(slot),
                    _ if !read => map.server_of(slot),
                    policy => map.reader_of(slot, policy, |s| self.server(s).is_up()),
                }
            }
        }
    }

    /// Whether reads may go to another server than the key's primary (replicas of a
    /// Redis Cluster, with `read_from` other than `primary`).
    pub fn reads_replicas(&self) -> bool {
        matches!(self.placement, Placement::Slots(_)) && self.settings.read_from != ReadFrom::Primary
    }

    /// Which part of a split command `key` goes in: its server, and in front of a Redis
    /// Cluster its hash slot too.
    pub fn part_for(&self, key: &[u8], read: bool) -> Option<(usize, u16)> {
        let server = self.server_for(key, read)?;
        Some(match &self.placement {
            Placement::Ring(_) => (server, 0),
            Placement::Slots(_) => (server, slot_of(key)),
        })
    }

    pub fn server(&self, index: usize) -> Rc<Server> {
        self.servers.borrow()[index].clone()
    }

    /// The index of the server at `name` (`host:port`), added if it is new; `None` when
    /// the name is no socket address.
    pub fn server_named(&self, name: &str) -> Option<usize> {
        if let Some(at) = self.servers.borrow().iter().position(|s| s.name == name) {
            return Some(at);
        }
        let address: SocketAddr = name.parse().ok()?;
        let server = Rc::new(self.new_server(name, address));
        let mut servers = self.servers.borrow_mut();
        servers.push(server);
        Some(servers.len() - 1)
    }

    fn new_server(&self, name: &str, address: SocketAddr) -> Server {
        let s = &self.settings;
        let pooled = ServerStats::new(&s.listener, &s.cluster, name, false);
        // A failed connection in front of a Redis Cluster may mean a failover: ask for
        // the slot map again.
        let on_failure = match self.placement {
            Placement::Slots(_) => Some(self.me.clone()),
            Placement::Ring(_) => None,
        };
        let pool = |resp3: bool| -> Vec<Rc<Upstream>> {
            (0..s.connections)
                .map(|_| {
                    let target = self.target(name, address, resp3);
                    Upstream::new(target, Some(s.reply_timeout), pooled.clone(), on_failure.clone())
                })
                .collect()
        };
        Server {
            name: name.to_owned(),
            address,
            own_stats: ServerStats::new(&s.listener, &s.cluster, name, true),
            connections: [pool(false), pool(true)],
        }
    }

    /// A connection to server `index` for one client alone (blocking commands,
    /// transactions): no reply timeout, closed when the client leaves.
    pub fn own_connection(&self, index: usize, resp3: bool) -> Rc<Upstream> {
        let server = self.server(index);
        let target = self.target(&server.name, server.address, resp3);
        Upstream::new(target, None, server.own_stats.clone(), None)
    }

    /// How a connection to the server `name` at `address` opens, for a client speaking
    /// RESP3 or RESP2.
    pub fn target(&self, name: &str, address: SocketAddr, resp3: bool) -> Target {
        let s = &self.settings;
        Target {
            address,
            name: name.to_owned(),
            connect_timeout: s.connect_timeout,
            limits: s.limits,
            login: s.login.for_version(resp3),
            tls: s.tls.clone(),
        }
    }
}

impl Server {
    /// The pooled connection of a client's `lane`. A client always uses the same one per
    /// server: commands on two connections could run out of order (a GET before the SET
    /// the client sent ahead of it), while one connection keeps the client's order.
    pub fn pick(&self, resp3: bool, lane: usize) -> &Rc<Upstream> {
        let connections = &self.connections[usize::from(resp3)];
        &connections[lane % connections.len()]
    }

    /// Not in the backoff after a failure.
    pub fn is_up(&self) -> bool {
        self.connections[0].first().is_none_or(|c| !c.is_down())
    }
}
