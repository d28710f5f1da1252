//! The configuration file as written: plain serde types with `deny_unknown_fields`, so a
//! misspelt key is an error that names its path. Everything that needs judgement (units,
//! addresses, references between sections) stays a string here and is checked in
//! `validate`, which reports every problem at once.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub admin: Option<RawAdmin>,
    pub drain_timeout: Option<String>,
    #[serde(default)]
    pub clusters: Vec<RawCluster>,
    #[serde(default)]
    pub listeners: Vec<RawListener>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub address: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: String,
    pub endpoints: Vec<RawEndpoint>,
    pub connect_timeout: Option<String>,
    pub tls: Option<RawClusterTls>,
    /// Speak HTTP/2 to the endpoints (http listeners).
    pub http2: Option<bool>,
}

/// One entry of a cluster's `endpoints`: `"host:port"`, or `{ address, weight }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawEndpoint {
    Address(String),
    Weighted { address: String, weight: u32 },
}

/// A cluster's `tls`: how sluice originates TLS to its endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClusterTls {
    pub server_name: Option<String>,
    pub ca: Option<String>,
    #[serde(default)]
    pub insecure: bool,
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub name: String,
    pub address: String,
    pub protocol: String,
    pub cluster: String,
    pub idle_timeout: Option<String>,
    pub max_connections: Option<u64>,
    pub max_sessions: Option<u64>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub faults: Vec<RawFault>,
    pub redis: Option<RawRedis>,
    pub mysql: Option<RawMysql>,
    pub postgres: Option<RawPostgres>,
    pub mongodb: Option<RawMongodb>,
    pub kafka: Option<super::kafka::RawKafka>,
    pub http: Option<super::http::RawHttp>,
    pub tls: Option<RawTls>,
    pub access_log: Option<RawAccessLog>,
}

/// A listener's `tls`: PEM file paths and handshake settings (see `crate::tls`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: String,
    pub key: String,
    #[serde(default)]
    pub certificates: Vec<RawNamedCertificate>,
    #[serde(default)]
    pub alpn: Vec<String>,
    pub min_version: Option<String>,
    pub client_ca: Option<String>,
}

/// One entry of `tls.certificates`: served to clients asking for one of `server_names`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNamedCertificate {
    pub server_names: Vec<String>,
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    pub max_bulk_length: Option<RawSize>,
    pub max_array_length: Option<u64>,
    pub max_depth: Option<u64>,
    #[serde(default)]
    pub key_prefixes: Vec<String>,
    pub mode: Option<String>,
    pub pool: Option<RawRedisPool>,
}

/// `redis.pool`: the upstream side of `mode: pool`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedisPool {
    pub connections: Option<u64>,
    pub backend: Option<String>,
    pub distribution: Option<String>,
    pub hash: Option<String>,
    pub timeout: Option<String>,
    #[serde(default)]
    pub users: Vec<RawRedisUser>,
    pub upstream_auth: Option<RawRedisUser>,
    pub read_from: Option<String>,
    #[serde(default)]
    pub routes: Vec<RawRedisRoute>,
    pub mirror: Option<RawRedisMirror>,
}

/// `redis.pool.routes[]`: keys starting with `prefix` go to another cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedisRoute {
    pub prefix: String,
    pub cluster: String,
    #[serde(default)]
    pub remove_prefix: bool,
}

/// `redis.pool.mirror`: commands copied to a second cluster, replies dropped.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedisMirror {
    pub cluster: String,
    pub fraction: Option<f64>,
    #[serde(default)]
    pub exclude_reads: bool,
}

/// A user and password: one clients may AUTH as, or the one sluice logs in to servers with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedisUser {
    pub user: Option<String>,
    pub password: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMysql {
    pub max_packet_size: Option<RawSize>,
    pub max_digests: Option<u64>,
    pub max_tables: Option<u64>,
    pub query_log: Option<RawQueryLog>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    pub max_message_size: Option<RawSize>,
    pub max_digests: Option<u64>,
    pub max_tables: Option<u64>,
    pub query_log: Option<RawQueryLog>,
    pub encryption: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMongodb {
    pub max_message_size: Option<RawSize>,
    pub max_collections: Option<u64>,
    pub max_in_flight: Option<u64>,
    pub deny_error: Option<RawErrorCode>,
    pub limit_error: Option<RawErrorCode>,
}

/// The `{code, code_name}` of an error reply sluice writes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawErrorCode {
    pub code: i64,
    pub code_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueryLog {
    pub path: String,
    pub sample_rate: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    #[serde(rename = "match", default)]
    pub matcher: RawMatch,
    pub percentage: f64,
    pub delay: Option<String>,
    pub error: Option<String>,
}

/// A byte size: a number of bytes, or a string with a unit (`64KiB`, `512MiB`).
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a number of bytes or a size like \"512MiB\"")]
pub enum RawSize {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    pub path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(rename = "match", default)]
    pub matcher: RawMatch,
    pub action: Option<String>,
    pub rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    pub op: Option<OneOrMany>,
    pub target: Option<OneOrMany>,
    pub target_prefix: Option<OneOrMany>,
    pub client_cidr: Option<OneOrMany>,
    pub user: Option<OneOrMany>,
    pub client_id: Option<OneOrMany>,
    pub listener: Option<OneOrMany>,
    pub database: Option<OneOrMany>,
    pub digest: Option<OneOrMany>,
    pub without_where: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub rate: String,
    pub burst: Option<u32>,
    pub per: Option<String>,
    pub max_delay: Option<String>,
    /// `ops` (default) or `bytes`.
    pub cost: Option<String>,
}

/// A field that takes one value or a list (`op: connect` or `op: [connect]`).
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}
