//! Configuration: YAML in, a validated [`Config`] out.
//!
//! Two layers (DESIGN.md "Runtime"): `raw` mirrors the file with serde and rejects unknown
//! keys; `validate` turns it into typed values and reports every problem at once, each
//! prefixed with its path (`listeners[1].cluster: unknown cluster "cach"`). A config that
//! fails never half-starts anything.

pub mod http;
pub mod kafka;
pub(crate) mod raw;
pub mod units;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Serialize, Serializer};
use sluice_codecs::mysql::MysqlLimits;
use sluice_codecs::postgres::PgLimits;
use sluice_codecs::resp::RespLimits;
use sluice_filters::policy::{self, Fault, FaultAction, LimitKind, Matcher, OnLimit, RateLimit, Rule};
use sluice_filters::redis::distribution::DistributionKind;
use sluice_filters::redis::ketama::KeyHash;
use sluice_filters::Protocol;

use crate::cluster_tls::ClusterTls;
use crate::tls::TlsConfig;

/// One problem in a configuration, named by its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub admin: AdminConfig,
    #[serde(serialize_with = "ser_duration")]
    pub drain_timeout: Duration,
    pub clusters: Vec<Arc<ClusterConfig>>,
    pub listeners: Vec<ListenerConfig>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdminConfig {
    pub address: SocketAddr,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterConfig {
    pub name: String,
    pub endpoints: Vec<Endpoint>,
    #[serde(serialize_with = "ser_duration")]
    pub connect_timeout: Duration,
    /// Originate TLS to the endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClusterTls>,
    /// `http` listeners send requests to this cluster over HTTP/2 (prior knowledge on
    /// plain TCP, ALPN `h2` with `tls`), one multiplexed connection per worker and endpoint.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub http2: bool,
}

/// An upstream address as written and as resolved when the config was loaded.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub name: String,
    pub address: SocketAddr,
    /// Its share of the cluster's connections (tcp listeners) and keys (`redis` pool
    /// placement), relative to the others; 0 takes it out. 1 unless written.
    pub weight: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    #[serde(serialize_with = "ser_protocol")]
    pub protocol: Protocol,
    /// Index into [`Config::clusters`].
    #[serde(skip)]
    pub cluster_index: usize,
    pub cluster: String,
    #[serde(serialize_with = "ser_duration")]
    pub idle_timeout: Duration,
    /// TCP: concurrent connections; UDP: concurrent sessions.
    pub max_connections: usize,
    pub rules: Vec<RuleConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultConfig>,
    /// Settings of a `redis` listener (defaults filled in); `None` for other protocols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisConfig>,
    /// Settings of a `mysql` listener (defaults filled in); `None` for other protocols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mysql: Option<MysqlConfig>,
    /// Settings of a `postgres` listener (defaults filled in); `None` for other protocols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresConfig>,
    /// Settings of a `mongodb` listener (defaults filled in); `None` for other protocols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mongodb: Option<MongodbConfig>,
    /// Settings of a `kafka` listener (defaults filled in); `None` for other protocols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<kafka::KafkaConfig>,
    /// Settings of an `http` listener (routes; defaults filled in); `None` for other protocols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<http::HttpConfig>,
    /// TLS terminated by sluice on the client's side (`mysql` and `postgres` listeners: the
    /// protocol's own TLS request is answered by sluice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    pub access_log: Option<AccessLogTarget>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MysqlConfig {
    /// Largest command or response payload (a continuation chain summed), like the
    /// server's `max_allowed_packet`.
    pub max_packet_size: usize,
    /// Distinct statement digests with their own row in `/queries` (the rest: `other`).
    pub max_digests: usize,
    /// Distinct tables with their own `sluice_mysql_table_ops_total` series.
    pub max_tables: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_log: Option<QueryLogConfig>,
}

impl MysqlConfig {
    pub fn limits(&self) -> MysqlLimits {
        MysqlLimits { max_payload: self.max_packet_size, ..MysqlLimits::default() }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PostgresConfig {
    /// Largest message, tag and length word included. The server's own cap is 1 GiB; a
    /// message must be whole before the filter can read it, so this is also the most one
    /// connection buffers.
    pub max_message_size: usize,
    /// Distinct statement digests with their own row in `/queries` (the rest: `other`).
    pub max_digests: usize,
    /// Distinct tables with their own `sluice_postgres_table_ops_total` series.
    pub max_tables: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_log: Option<QueryLogConfig>,
    /// What happens to a client's SSLRequest or GSSENCRequest on a listener without `tls`.
    pub encryption: EncryptionRequests,
}

impl PostgresConfig {
    pub fn limits(&self) -> PgLimits {
        PgLimits { max_message: self.max_message_size, ..PgLimits::default() }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MongodbConfig {
    /// Largest message, compressed or once decompressed (mongod's maxMessageSizeBytes,
    /// 48,000,000, by default). A message must be whole before the filter can read it, so
    /// this is also the most one connection buffers.
    pub max_message_size: usize,
    /// Distinct `db.collection` namespaces with their own `sluice_mongodb_collection_ops_total` series.
    pub max_collections: usize,
    /// Requests awaiting replies on one connection before sluice stops reading its client.
    pub max_in_flight: usize,
    /// The error a `deny` rule answers with (default 13 Unauthorized).
    pub deny_error: ErrorCodeConfig,
    /// The error a rate limit with `reject` answers with (default 449 RateLimitExceeded).
    pub limit_error: ErrorCodeConfig,
}

impl MongodbConfig {
    pub fn limits(&self) -> sluice_codecs::Limits {
        sluice_codecs::Limits { max_frame: self.max_message_size, ..sluice_codecs::mongodb::default_limits() }
    }
}

/// A MongoDB error reply's `code` and `codeName`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorCodeConfig {
    pub code: i32,
    pub code_name: String,
}

impl ErrorCodeConfig {
    pub fn build(&self) -> sluice_filters::mongodb::ErrorCode {
        sluice_filters::mongodb::ErrorCode { code: self.code, code_name: self.code_name.as_str().into() }
    }
}

/// How a `postgres` listener without `tls` treats a client's request for encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionRequests {
    /// The server answers it; a session it accepts is counted and forwarded opaque. A
    /// listener with rules refuses instead, since it could not enforce them.
    Forward,
    /// Sluice answers `N`: the client continues in the clear or gives up.
    Refuse,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryLogConfig {
    pub path: AccessLogTarget,
    /// The fraction of statements logged, in `[0, 1]`.
    pub sample_rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RedisConfig {
    /// Largest bulk string accepted in a command or reply (Redis's proto-max-bulk-len).
    pub max_bulk_length: usize,
    /// Most elements in one array (or map, set, push) frame.
    pub max_array_length: usize,
    /// Deepest nesting of aggregates in a frame.
    pub max_depth: usize,
    /// Key prefixes counted separately in `sluice_redis_key_ops_total`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_prefixes: Vec<String>,
    /// `mode: pool`: commands from every client go over a few shared connections per
    /// server, keys spread over the cluster's endpoints; `None` is `mode: observe`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<RedisPoolConfig>,
}

/// The upstream side of a `redis` listener in `mode: pool`.
#[derive(Debug, Clone, Serialize)]
pub struct RedisPoolConfig {
    /// Connections per server, per worker.
    pub connections: usize,
    /// `backend: cluster`: the endpoints are seeds of a Redis Cluster, whose slot map
    /// places keys (and whose MOVED / ASK replies sluice follows).
    pub cluster_backend: bool,
    /// How keys are spread over the servers (`ketama`, `maglev`).
    #[serde(serialize_with = "ser_distribution")]
    pub distribution: DistributionKind,
    /// The key hash (`fnv1a_64`, `murmur`).
    #[serde(serialize_with = "ser_key_hash")]
    pub hash: KeyHash,
    /// How long a command may wait for its reply before the client gets an error.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// Who clients may AUTH as; empty: no AUTH needed. Passwords are never dumped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<RedisUser>,
    /// What sluice logs in to the servers with, on every connection it opens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_auth: Option<RedisUser>,
    /// Where reads go in front of a Redis Cluster: `primary`, `prefer_replica`, `any`.
    #[serde(serialize_with = "ser_read_from")]
    pub read_from: ReadFrom,
    /// Keys by prefix to other clusters (the longest prefix wins; the listener's cluster
    /// takes the rest).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RedisPrefixRoute>,
    /// Commands copied to a second cluster, whose replies are dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<RedisMirror>,
}

/// Which nodes of a Redis Cluster serve reads (commands Redis flags `readonly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    Primary,
    /// A replica of the slot's primary, in turn; the primary when none is up.
    PreferReplica,
    /// The primary and its replicas, in turn.
    Any,
}

impl ReadFrom {
    pub fn parse(name: &str) -> Option<ReadFrom> {
        match name {
            "primary" => Some(ReadFrom::Primary),
            "prefer_replica" => Some(ReadFrom::PreferReplica),
            "any" => Some(ReadFrom::Any),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReadFrom::Primary => "primary",
            ReadFrom::PreferReplica => "prefer_replica",
            ReadFrom::Any => "any",
        }
    }
}

fn ser_read_from<S: serde::Serializer>(read_from: &ReadFrom, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(read_from.as_str())
}

/// One of `redis.pool.routes`.
#[derive(Debug, Clone, Serialize)]
pub struct RedisPrefixRoute {
    pub prefix: String,
    pub cluster: String,
    /// The cluster's position in the config's `clusters`.
    #[serde(skip)]
    pub cluster_index: usize,
    /// The prefix is cut off the keys before they are sent (and hashed).
    pub remove_prefix: bool,
}

/// `redis.pool.mirror`.
#[derive(Debug, Clone, Serialize)]
pub struct RedisMirror {
    pub cluster: String,
    #[serde(skip)]
    pub cluster_index: usize,
    /// The share of commands copied, in (0, 1].
    pub fraction: f64,
    /// Only commands that write are copied.
    pub exclude_reads: bool,
}

/// A Redis user and its password (`default` when written without a user).
#[derive(Clone, Serialize)]
pub struct RedisUser {
    pub user: String,
    #[serde(skip)]
    pub password: String,
}

impl fmt::Debug for RedisUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUser").field("user", &self.user).finish_non_exhaustive()
    }
}

fn ser_distribution<S: serde::Serializer>(kind: &DistributionKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

fn ser_key_hash<S: serde::Serializer>(hash: &KeyHash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(hash.as_str())
}

impl RedisConfig {
    /// The codec limits for requests (`true`, inline commands allowed) or replies.
    pub fn limits(&self, requests: bool) -> RespLimits {
        let base = if requests { RespLimits::requests() } else { RespLimits::replies() };
        RespLimits {
            max_bulk_len: self.max_bulk_length,
            max_aggregate_len: self.max_array_length,
            max_depth: self.max_depth,
            ..base
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultConfig {
    #[serde(rename = "match")]
    pub matcher: MatchConfig,
    pub percentage: f64,
    #[serde(flatten)]
    pub action: FaultActionConfig,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultActionConfig {
    #[serde(serialize_with = "ser_duration")]
    Delay(Duration),
    Error(String),
}

impl FaultConfig {
    pub fn build(&self) -> Fault {
        Fault {
            matcher: self.matcher.build(),
            percentage: self.percentage,
            action: match &self.action {
                FaultActionConfig::Delay(d) => FaultAction::Delay(*d),
                FaultActionConfig::Error(message) => FaultAction::Error(message.clone()),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogTarget {
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleConfig {
    #[serde(rename = "match")]
    pub matcher: MatchConfig,
    pub action: ActionConfig,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MatchConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub op: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_prefix: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_cidr: Vec<IpNet>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<String>,
    /// Kafka `client_id`s, compared exactly.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_id: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listener: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub database: Vec<String>,
    /// Statement texts, normalized like the digests the listener reports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub digest: Vec<String>,
    /// The hashes of `digest`, computed with the listener's SQL dialect.
    #[serde(skip)]
    pub digest_hashes: Vec<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub without_where: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionConfig {
    Allow,
    Deny,
    RateLimit(RateLimitConfig),
}

#[derive(Debug, Clone, Serialize)]
pub struct RateLimitConfig {
    pub count: NonZeroU32,
    #[serde(serialize_with = "ser_duration")]
    pub period: Duration,
    pub burst: NonZeroU32,
    #[serde(serialize_with = "ser_limit_kind")]
    pub per: LimitKind,
    #[serde(rename = "action", serialize_with = "ser_on_limit")]
    pub on_limit: OnLimit,
    /// `cost: bytes`: each op takes as many cells as its size (Kafka produce quotas).
    #[serde(rename = "cost", serialize_with = "ser_cost")]
    pub counts_bytes: bool,
}

impl MatchConfig {
    pub fn build(&self) -> Matcher {
        Matcher {
            ops: self.op.clone(),
            targets: self.target.iter().map(|t| t.as_bytes().to_vec()).collect(),
            target_prefixes: self.target_prefix.iter().map(|t| t.as_bytes().to_vec()).collect(),
            client_cidrs: self.client_cidr.clone(),
            users: self.user.clone(),
            client_ids: self.client_id.clone(),
            listeners: self.listener.clone(),
            databases: self.database.clone(),
            digests: self.digest_hashes.clone(),
            without_where: self.without_where,
        }
    }
}

impl RuleConfig {
    /// Builds the live rule, with fresh rate-limit state.
    pub fn build(&self) -> Rule {
        let matcher = self.matcher.build();
        let action = match &self.action {
            ActionConfig::Allow => policy::Action::Allow,
            ActionConfig::Deny => policy::Action::Deny,
            ActionConfig::RateLimit(r) => {
                let limit = RateLimit::new(r.count, r.period, r.burst, r.per, r.on_limit);
                policy::Action::RateLimit(if r.counts_bytes { limit.counting_bytes() } else { limit })
            }
        };
        Rule { matcher, action }
    }
}

impl Config {
    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigErrors> {
        validate::load(text)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                path: String::new(),
                message: format!("cannot read {}: {e}", path.display()),
            }])
        })?;
        Self::from_yaml(&text)
    }

    pub fn cluster(&self, listener: &ListenerConfig) -> &Arc<ClusterConfig> {
        &self.clusters[listener.cluster_index]
    }
}

pub(crate) fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&units::format_duration(*d))
}

fn ser_protocol<S: Serializer>(p: &Protocol, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.as_str())
}

fn ser_limit_kind<S: Serializer>(k: &LimitKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

fn ser_cost<S: Serializer>(bytes: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if *bytes { "bytes" } else { "ops" })
}

fn ser_on_limit<S: Serializer>(o: &OnLimit, s: S) -> Result<S::Ok, S::Error> {
    match o {
        OnLimit::Reject => s.serialize_str("reject"),
        OnLimit::Delay { max_delay } => {
            s.collect_str(&format_args!("delay (max_delay {})", units::format_duration(*max_delay)))
        }
    }
}

#[cfg(test)]
mod tests;
