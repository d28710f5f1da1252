//! Pool stats of a `redis` listener in `mode: pool`, per cluster and server (`server` = the
//! endpoint as written in the cluster, or as a Redis Cluster names its node):
//!
//! - `sluice_redis_pool_connections{listener,server,kind}`: connections open now, `pooled`
//!   (shared by the worker's clients) or `own` (a client's, for blocking commands and
//!   transactions);
//! - `sluice_redis_pool_commands_total{listener,server}` and
//!   `sluice_redis_pool_writes_total{listener,server}`: commands sent on pooled connections
//!   and the writes that carried them (their ratio is the batch size: commands of many
//!   clients per write);
//! - `sluice_redis_pool_in_flight{listener,cluster,server}`: commands sent on pooled
//!   connections and not answered yet;
//! - `sluice_redis_pool_ejections_total{listener,server}`: connections that failed (refused,
//!   lost, timed out, AUTH refused), each followed by the backoff during which the server's
//!   keys fail at once.
//!
//! - `sluice_redis_pool_redirections_total{listener,cluster,kind}`: Redis Cluster `moved` /
//!   `ask` replies sluice followed for its clients, and slot-map `refresh`es;
//! - `sluice_redis_pool_mirrored_total{listener,cluster}`: commands copied to the mirror
//!   cluster (its replies are dropped).
//!
//! The handles are registered once per worker and server and shared by its connections.

use metrics::{Counter, Gauge, Unit};

pub const CONNECTIONS: &str = "sluice_redis_pool_connections";
pub const COMMANDS_TOTAL: &str = "sluice_redis_pool_commands_total";
pub const WRITES_TOTAL: &str = "sluice_redis_pool_writes_total";
pub const IN_FLIGHT: &str = "sluice_redis_pool_in_flight";
pub const EJECTIONS_TOTAL: &str = "sluice_redis_pool_ejections_total";
pub const REDIRECTIONS_TOTAL: &str = "sluice_redis_pool_redirections_total";
pub const MIRRORED_TOTAL: &str = "sluice_redis_pool_mirrored_total";

pub fn describe() {
    metrics::describe_gauge!(CONNECTIONS, Unit::Count, "Redis pool connections open now, by server and kind.");
    metrics::describe_counter!(COMMANDS_TOTAL, Unit::Count, "Commands sent on pooled Redis connections.");
    metrics::describe_counter!(
        WRITES_TOTAL,
        Unit::Count,
        "Writes on pooled Redis connections (commands per write: batching)."
    );
    metrics::describe_gauge!(IN_FLIGHT, Unit::Count, "Commands on pooled Redis connections awaiting replies.");
    metrics::describe_counter!(EJECTIONS_TOTAL, Unit::Count, "Redis pool connections that failed, by server.");
    metrics::describe_counter!(REDIRECTIONS_TOTAL, Unit::Count, "Redis Cluster MOVED / ASK replies followed.");
    metrics::describe_counter!(MIRRORED_TOTAL, Unit::Count, "Commands copied to a Redis pool's mirror cluster.");
}

/// One server's handles, for pooled connections (`own` false) or clients' own ones.
#[derive(Clone)]
pub struct ServerStats {
    pub connections: Gauge,
    pub commands: Counter,
    pub writes: Counter,
    pub in_flight: Gauge,
    pub ejections: Counter,
    /// Commands and writes are counted for pooled connections only.
    pub pooled: bool,
}

impl ServerStats {
    pub fn new(listener: &str, cluster: &str, server: &str, own: bool) -> Self {
        let (l, c, s) = (|| listener.to_owned(), || cluster.to_owned(), || server.to_owned());
        let kind = if own { "own" } else { "pooled" };
        ServerStats {
            connections: metrics::gauge!(CONNECTIONS, "listener" => l(), "cluster" => c(), "server" => s(), "kind" => kind),
            commands: metrics::counter!(COMMANDS_TOTAL, "listener" => l(), "cluster" => c(), "server" => s()),
            writes: metrics::counter!(WRITES_TOTAL, "listener" => l(), "cluster" => c(), "server" => s()),
            in_flight: metrics::gauge!(IN_FLIGHT, "listener" => l(), "cluster" => c(), "server" => s()),
            ejections: metrics::counter!(EJECTIONS_TOTAL, "listener" => l(), "cluster" => c(), "server" => s()),
            pooled: !own,
        }
    }
}

/// A listener's Redis Cluster redirection counters.
pub struct Redirections {
    pub moved: Counter,
    pub ask: Counter,
    pub refresh: Counter,
}

impl Redirections {
    pub fn new(listener: &str, cluster: &str) -> Self {
        let counter = |kind: &'static str| metrics::counter!(REDIRECTIONS_TOTAL, "listener" => listener.to_owned(), "cluster" => cluster.to_owned(), "kind" => kind);
        Redirections { moved: counter("moved"), ask: counter("ask"), refresh: counter("refresh") }
    }
}
