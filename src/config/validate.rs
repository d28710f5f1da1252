//! From the raw file to a [`Config`]: parse the YAML, deserialize with paths, then check
//! every value and every reference, collecting all errors before giving up.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use sluice_codecs::kafka::ApiKey;
use sluice_codecs::resp::{RespLimits, MAX_DEPTH_CAP};
use sluice_filters::mongodb::commands as mongodb_commands;
use sluice_filters::mysql::stats as mysql_stats;
use sluice_filters::op::names;
use sluice_filters::policy::{max_burst, LimitKind, OnLimit};
use sluice_filters::postgres::stats as postgres_stats;
use sluice_filters::redis::command_table;
use sluice_filters::sql::{self, Dialect};
use sluice_filters::Protocol;

use super::raw::{
    OneOrMany, RawCluster, RawClusterTls, RawConfig, RawEndpoint, RawErrorCode, RawFault, RawListener, RawMatch,
    RawMongodb, RawMysql, RawPostgres, RawQueryLog, RawRedis, RawRedisMirror, RawRedisPool, RawRedisRoute,
    RawRedisUser, RawRule, RawSize, RawTls,
};
use super::units::{parse_duration, parse_rate, parse_size};
use super::*;
use crate::cluster_tls::ClusterTls;
use crate::tls::TlsConfigError;

const DEFAULT_ADMIN: &str = "127.0.0.1:9901";
const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Endpoint weights are relative shares; this keeps the round-robin schedule short.
const MAX_WEIGHT: u32 = 1000;
/// Envoy's tcp_proxy default.
const DEFAULT_TCP_IDLE: Duration = Duration::from_secs(3600);
/// Envoy's udp_proxy default.
const DEFAULT_UDP_IDLE: Duration = Duration::from_secs(60);
const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(5);
const SUPPORTED_PROTOCOLS: &str = "tcp, udp, redis, mysql, postgres, mongodb, kafka or http";
/// mongod's maxMessageSizeBytes, the default and the cap of a `mongodb` listener's messages.
const MONGODB_MAX_MESSAGE: u64 = 48_000_000;
const MAX_COLLECTIONS_CAP: u64 = 10_000;
const MAX_IN_FLIGHT_CAP: u64 = 1 << 20;
/// MariaDB's default `max_allowed_packet`... and MySQL 8's, the larger of the two.
const DEFAULT_MYSQL_MAX_PACKET: usize = 64 * 1024 * 1024;
/// The most a MySQL server accepts as `max_allowed_packet`.
const MYSQL_MAX_PACKET_CAP: u64 = 1024 * 1024 * 1024;
/// A message sluice holds whole to read it: large enough for big rows and COPY lines.
const DEFAULT_POSTGRES_MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// PostgreSQL's own cap on a message (PQ_LARGE_MESSAGE_LIMIT, 1 GiB).
const POSTGRES_MAX_MESSAGE_CAP: u64 = 1024 * 1024 * 1024;
/// Each digest row and table series costs memory or a metric series per listener.
const MAX_DIGESTS_CAP: u64 = 100_000;
const MAX_TABLES_CAP: u64 = 10_000;

/// Each configured key prefix is a metric series per listener.
const MAX_KEY_PREFIXES: usize = 64;

/// Why `name` cannot be matched as an op on a `protocol` listener, if it cannot.
fn op_problem(name: &str, protocol: Protocol) -> Option<String> {
    // `close` is recorded, not evaluated, so of the connection ops only `connect` matches.
    if name.eq_ignore_ascii_case(names::CONNECT) {
        return None;
    }
    match protocol {
        Protocol::Tcp | Protocol::Udp => {
            Some(format!(r#"{protocol} listeners evaluate only the "connect" op, not "{name}""#))
        }
        Protocol::Redis => {
            let known = command_table::lookup(name.split(' ').map(str::as_bytes))
                .is_some_and(|spec| spec.name.eq_ignore_ascii_case(name));
            // Module commands (JSON.SET, FT.SEARCH) are not in the table.
            (!known && !name.contains('.'))
                .then(|| format!(r#"unknown Redis command "{name}" (write subcommands as "CONFIG SET")"#))
        }
        Protocol::Mysql => (!mysql_stats::op_names().any(|op| op.eq_ignore_ascii_case(name))).then(|| {
            format!(r#"unknown MySQL op "{name}" (a SQL verb such as SELECT or DROP, or a command such as COM_PING)"#)
        }),
        Protocol::Postgres => (!postgres_stats::op_names().any(|op| op.eq_ignore_ascii_case(name))).then(|| {
            format!(r#"unknown PostgreSQL op "{name}" (a SQL verb such as SELECT or DROP, or FUNCTION_CALL)"#)
        }),
        Protocol::Http => (!name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') || name.is_empty())
            .then(|| format!(r#"an http op is a request method such as GET or POST, not "{name}""#)),
        Protocol::Mongodb => (!mongodb_commands::op_names().any(|op| op.eq_ignore_ascii_case(name))).then(|| {
            format!(r#"unknown MongoDB command "{name}" (a command such as find, insert or drop, or a legacy opcode such as OP_INSERT)"#)
        }),
        Protocol::Kafka => (!ApiKey::KNOWN.iter().any(|k| k.name().eq_ignore_ascii_case(name))).then(|| {
            format!(r#"unknown Kafka API "{name}" (an API name from the protocol guide such as Produce, Fetch or DeleteTopics)"#)
        }),
    }
}

/// The SQL dialect of a protocol's statements, for SQL protocols.
fn sql_dialect(protocol: Protocol) -> Option<Dialect> {
    match protocol {
        Protocol::Mysql => Some(Dialect::MySql),
        Protocol::Postgres => Some(Dialect::Postgres),
        Protocol::Tcp | Protocol::Udp | Protocol::Redis | Protocol::Mongodb | Protocol::Kafka | Protocol::Http => None,
    }
}

pub fn load(text: &str) -> Result<Config, ConfigErrors> {
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| one("", format!("invalid YAML: {e}")))?;
    // An empty file is an empty config (admin server only).
    let value = if value.is_null() { serde_json::json!({}) } else { value };
    let raw: RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        one(&path, e.into_inner().to_string())
    })?;
    let mut v = Validator::default();
    let config = v.config(raw);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(v.errors))
    }
}

fn one(path: &str, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError { path: path.to_string(), message }])
}

#[derive(Default)]
pub(super) struct Validator {
    errors: Vec<ConfigError>,
    /// The listener being checked keys a limit or a match on `client_id`; for an `http`
    /// listener, with the header a `per: header:<name>` named (and where).
    client_id_use: Option<(String, Option<String>)>,
}

impl Validator {
    pub(super) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError { path: path.into(), message: message.into() });
    }

    pub(super) fn duration(&mut self, path: &str, raw: Option<&str>, default: Duration) -> Duration {
        match raw.map(parse_duration) {
            None => default,
            Some(Ok(d)) if d.is_zero() => {
                self.error(path, "must be greater than zero");
                default
            }
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.error(path, e);
                default
            }
        }
    }

    fn socket_addr(&mut self, path: &str, text: &str) -> SocketAddr {
        text.parse().unwrap_or_else(|_| {
            self.error(path, format!(r#"invalid address "{text}": expected "<ip>:<port>""#));
            SocketAddr::from(([127, 0, 0, 1], 0))
        })
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let admin = AdminConfig {
            address: match &raw.admin {
                Some(a) => self.socket_addr("admin.address", &a.address),
                None => DEFAULT_ADMIN.parse().expect("valid default"),
            },
        };
        let drain_timeout = self.duration("drain_timeout", raw.drain_timeout.as_deref(), DEFAULT_DRAIN_TIMEOUT);
        let clusters: Vec<Arc<ClusterConfig>> =
            raw.clusters.into_iter().enumerate().map(|(i, c)| Arc::new(self.cluster(i, c))).collect();
        let mut seen = HashSet::new();
        for (i, c) in clusters.iter().enumerate() {
            if !seen.insert(c.name.clone()) {
                self.error(format!("clusters[{i}].name"), format!(r#"duplicate cluster "{}""#, c.name));
            }
        }
        let mut listeners = Vec::new();
        for (i, l) in raw.listeners.into_iter().enumerate() {
            if let Some(l) = self.listener(i, l, &clusters) {
                listeners.push(l);
            }
        }
        let mut names = HashSet::new();
        let mut addresses = HashSet::new();
        for (i, l) in listeners.iter().enumerate() {
            if !names.insert(l.name.clone()) {
                self.error(format!("listeners[{i}].name"), format!(r#"duplicate listener "{}""#, l.name));
            }
            if l.address.port() != 0 && !addresses.insert((l.address, l.protocol)) {
                self.error(
                    format!("listeners[{i}].address"),
                    format!("{} is already used by another listener", l.address),
                );
            }
        }
        for (i, l) in listeners.iter().enumerate() {
            let Some(range) = l.kafka.as_ref().and_then(|k| k.broker_ports.clone()) else { continue };
            for other in &listeners {
                if other.name != l.name && other.protocol != Protocol::Udp && range.contains(&other.address.port()) {
                    self.error(
                        format!("listeners[{i}].kafka.broker_ports"),
                        format!("includes port {} of listener {:?}", other.address.port(), other.name),
                    );
                }
            }
        }
        Config { admin, drain_timeout, clusters, listeners }
    }

    fn cluster(&mut self, i: usize, raw: RawCluster) -> ClusterConfig {
        let path = format!("clusters[{i}]");
        if raw.name.is_empty() {
            self.error(format!("{path}.name"), "must not be empty");
        }
        if raw.endpoints.is_empty() {
            self.error(format!("{path}.endpoints"), "needs at least one endpoint");
        }
        let mut endpoints = Vec::new();
        for (j, endpoint) in raw.endpoints.into_iter().enumerate() {
            let (name, weight) = match endpoint {
                RawEndpoint::Address(name) => (name, 1),
                RawEndpoint::Weighted { address, weight } => (address, weight),
            };
            if weight > MAX_WEIGHT {
                self.error(format!("{path}.endpoints[{j}].weight"), format!("at most {MAX_WEIGHT}"));
            }
            match name.to_socket_addrs().map(|mut a| a.next()) {
                Ok(Some(address)) => endpoints.push(Endpoint { name, address, weight }),
                Ok(None) => self.error(format!("{path}.endpoints[{j}]"), format!(r#""{name}" resolves to no address"#)),
                Err(e) => self.error(
                    format!("{path}.endpoints[{j}]"),
                    format!(r#"invalid endpoint "{name}": {e} (expected "<host>:<port>")"#),
                ),
            }
        }
        if !endpoints.is_empty() && endpoints.iter().all(|e| e.weight == 0) {
            self.error(format!("{path}.endpoints"), "needs an endpoint with a weight above zero");
        }
        let connect_timeout =
            self.duration(&format!("{path}.connect_timeout"), raw.connect_timeout.as_deref(), DEFAULT_CONNECT_TIMEOUT);
        let tls = raw.tls.and_then(|t| self.cluster_tls(&format!("{path}.tls"), t, &endpoints));
        ClusterConfig { name: raw.name, endpoints, connect_timeout, tls, http2: raw.http2.unwrap_or(false) }
    }

    /// Loads a cluster's TLS origination settings (see `crate::cluster_tls`).
    fn cluster_tls(&mut self, path: &str, raw: RawClusterTls, endpoints: &[Endpoint]) -> Option<ClusterTls> {
        match ClusterTls::load(&raw, endpoints) {
            Ok(tls) => Some(tls),
            Err(e) => {
                let at = if e.field.is_empty() { path.to_string() } else { format!("{path}.{}", e.field) };
                self.error(at, e.message);
                None
            }
        }
    }

    fn listener(&mut self, i: usize, raw: RawListener, clusters: &[Arc<ClusterConfig>]) -> Option<ListenerConfig> {
        let path = format!("listeners[{i}]");
        if raw.name.is_empty() {
            self.error(format!("{path}.name"), "must not be empty");
        }
        let address = self.socket_addr(&format!("{path}.address"), &raw.address);
        let protocol = match raw.protocol.as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "redis" => Some(Protocol::Redis),
            "mysql" => Some(Protocol::Mysql),
            "postgres" => Some(Protocol::Postgres),
            "mongodb" => Some(Protocol::Mongodb),
            "http" => Some(Protocol::Http),
            "kafka" => Some(Protocol::Kafka),
            p => {
                self.error(
                    format!("{path}.protocol"),
                    format!(r#"unknown protocol "{p}" (expected {SUPPORTED_PROTOCOLS})"#),
                );
                None
            }
        };
        let cluster_index = clusters.iter().position(|c| c.name == raw.cluster);
        if cluster_index.is_none() {
            self.error(format!("{path}.cluster"), format!(r#"unknown cluster "{}""#, raw.cluster));
        }
        let protocol = protocol?;
        if let Some(i) = cluster_index {
            if clusters[i].tls.is_some() && protocol == Protocol::Udp {
                self.error(
                    format!("{path}.cluster"),
                    format!(
                        r#"cluster "{}" originates TLS, which udp listeners cannot use (TLS runs over TCP)"#,
                        raw.cluster
                    ),
                );
            }
        }
        let default_idle = match protocol {
            Protocol::Udp => DEFAULT_UDP_IDLE,
            Protocol::Http => super::http::DEFAULT_HTTP_IDLE,
            _ => DEFAULT_TCP_IDLE,
        };
        let idle_timeout = self.duration(&format!("{path}.idle_timeout"), raw.idle_timeout.as_deref(), default_idle);
        let limit = match (protocol, raw.max_connections, raw.max_sessions) {
            (Protocol::Udp, Some(_), _) => {
                self.error(format!("{path}.max_connections"), "udp listeners limit sessions: use max_sessions");
                None
            }
            (Protocol::Udp, _, n) => n.map(|n| (n, "max_sessions")),
            (_, _, Some(_)) => {
                self.error(
                    format!("{path}.max_sessions"),
                    format!("{protocol} listeners limit connections: use max_connections"),
                );
                None
            }
            (_, n, _) => n.map(|n| (n, "max_connections")),
        };
        let max_connections = match limit {
            Some((0, key)) => {
                self.error(format!("{path}.{key}"), "must be greater than zero");
                DEFAULT_MAX_CONNECTIONS
            }
            Some((n, _)) => usize::try_from(n).unwrap_or(usize::MAX),
            None => DEFAULT_MAX_CONNECTIONS,
        };
        let rules = raw
            .rules
            .into_iter()
            .enumerate()
            .filter_map(|(j, r)| self.rule(&format!("{path}.rules[{j}]"), r, protocol))
            .collect();
        let faults: Vec<FaultConfig> = raw
            .faults
            .into_iter()
            .enumerate()
            .filter_map(|(j, f)| self.fault(&format!("{path}.faults[{j}]"), f, protocol))
            .collect();
        let redis = match (protocol, raw.redis) {
            (Protocol::Redis, raw) => Some(self.redis(&format!("{path}.redis"), raw, clusters)),
            (_, Some(_)) => {
                self.error(format!("{path}.redis"), format!("applies only to protocol redis, not {protocol}"));
                None
            }
            (_, None) => None,
        };
        let mysql = match (protocol, raw.mysql) {
            (Protocol::Mysql, raw) => Some(self.mysql(&format!("{path}.mysql"), raw)),
            (_, Some(_)) => {
                self.error(format!("{path}.mysql"), format!("applies only to protocol mysql, not {protocol}"));
                None
            }
            (_, None) => None,
        };
        let postgres = match (protocol, raw.postgres) {
            (Protocol::Postgres, raw) => Some(self.postgres(&format!("{path}.postgres"), raw)),
            (_, Some(_)) => {
                self.error(format!("{path}.postgres"), format!("applies only to protocol postgres, not {protocol}"));
                None
            }
            (_, None) => None,
        };
        let mongodb = match (protocol, raw.mongodb) {
            (Protocol::Mongodb, raw) => Some(self.mongodb(&format!("{path}.mongodb"), raw)),
            (_, Some(_)) => {
                self.error(format!("{path}.mongodb"), format!("applies only to protocol mongodb, not {protocol}"));
                None
            }
            (_, None) => None,
        };
        let kafka = match (protocol, raw.kafka) {
            (Protocol::Kafka, raw) => Some(self.kafka(&format!("{path}.kafka"), raw, address)),
            (_, Some(_)) => {
                self.error(format!("{path}.kafka"), format!("applies only to protocol kafka, not {protocol}"));
                None
            }
            (_, None) => None,
        };
        let client_id_use = self.client_id_use.take();
        let http = match (protocol, raw.http) {
            (Protocol::Http, raw) => {
                let mut http = self.http(&format!("{path}.http"), raw, clusters, cluster_index);
                match (client_id_use, &http.client_id_header) {
                    (None, _) | (Some((_, None)), Some(_)) => {}
                    (Some((_, Some(named))), None) => http.client_id_header = Some(named),
                    (Some((_, Some(named))), Some(header)) if named == *header => {}
                    (Some((at, Some(named))), Some(header)) => self.error(
                        at,
                        format!(
                            r#"header:{named} differs from http.client_id_header "{header}" (one header per listener)"#
                        ),
                    ),
                    (Some((at, None)), None) => self
                        .error(at, "client_id on an http listener needs http.client_id_header (or per: header:<name>)"),
                }
                Some(http)
            }
            (_, Some(_)) => {
                self.error(format!("{path}.http"), format!("applies only to protocol http, not {protocol}"));
                None
            }
            (_, None) => None,
        };
        let tls = raw.tls.and_then(|t| self.tls(&format!("{path}.tls"), t, protocol));
        let access_log = raw.access_log.map(|a| self.log_target(&format!("{path}.access_log.path"), &a.path));
        Some(ListenerConfig {
            name: raw.name,
            address,
            protocol,
            cluster_index: cluster_index?,
            cluster: raw.cluster,
            idle_timeout,
            max_connections,
            rules,
            faults,
            redis,
            mysql,
            postgres,
            mongodb,
            kafka,
            http,
            tls,
            access_log,
        })
    }

    /// Loads the certificate and key (see `crate::tls`); every TCP listener terminates TLS.
    fn tls(&mut self, path: &str, raw: RawTls, protocol: Protocol) -> Option<TlsConfig> {
        if protocol == Protocol::Udp {
            self.error(path, "udp listeners cannot terminate TLS (TLS runs over TCP)");
            return None;
        }
        let mut missing = false;
        let named = raw.certificates.iter().enumerate().flat_map(|(i, c)| {
            [(format!("certificates[{i}].cert"), &c.cert), (format!("certificates[{i}].key"), &c.key)]
        });
        for (key, value) in [("cert".to_string(), &raw.cert), ("key".to_string(), &raw.key)].into_iter().chain(named) {
            if value.trim().is_empty() {
                self.error(format!("{path}.{key}"), "must be the path of a PEM file");
                missing = true;
            }
        }
        if missing {
            return None;
        }
        match TlsConfig::load(&raw) {
            Ok(tls) => Some(tls),
            Err(TlsConfigError { field, message }) => {
                self.error(format!("{path}{field}"), message);
                None
            }
        }
    }

    fn log_target(&mut self, path: &str, text: &str) -> AccessLogTarget {
        match text {
            "stdout" | "-" => AccessLogTarget::Stdout,
            "" => {
                self.error(path.to_string(), r#"must be "stdout" or a file path"#);
                AccessLogTarget::Stdout
            }
            p => AccessLogTarget::File(PathBuf::from(p)),
        }
    }

    fn mysql(&mut self, path: &str, raw: Option<RawMysql>) -> MysqlConfig {
        let raw = raw.unwrap_or_default();
        let max_packet_size = self.size_within(
            &format!("{path}.max_packet_size"),
            raw.max_packet_size,
            (1024, MYSQL_MAX_PACKET_CAP, "(MySQL's own limit)"),
            DEFAULT_MYSQL_MAX_PACKET,
        );
        let sql = self.sql_listener(path, raw.max_digests, raw.max_tables, raw.query_log);
        MysqlConfig {
            max_packet_size,
            max_digests: sql.max_digests,
            max_tables: sql.max_tables,
            query_log: sql.query_log,
        }
    }

    fn postgres(&mut self, path: &str, raw: Option<RawPostgres>) -> PostgresConfig {
        let raw = raw.unwrap_or_default();
        let max_message_size = self.size_within(
            &format!("{path}.max_message_size"),
            raw.max_message_size,
            (1024, POSTGRES_MAX_MESSAGE_CAP, "(PostgreSQL's own limit)"),
            DEFAULT_POSTGRES_MAX_MESSAGE,
        );
        let encryption = match raw.encryption.as_deref() {
            None | Some("forward") => EncryptionRequests::Forward,
            Some("refuse") => EncryptionRequests::Refuse,
            Some(other) => {
                self.error(format!("{path}.encryption"), format!(r#"must be "forward" or "refuse", not "{other}""#));
                EncryptionRequests::Forward
            }
        };
        let sql = self.sql_listener(path, raw.max_digests, raw.max_tables, raw.query_log);
        PostgresConfig {
            max_message_size,
            max_digests: sql.max_digests,
            max_tables: sql.max_tables,
            query_log: sql.query_log,
            encryption,
        }
    }

    fn mongodb(&mut self, path: &str, raw: Option<RawMongodb>) -> MongodbConfig {
        let raw = raw.unwrap_or_default();
        let max_message_size = self.size_within(
            &format!("{path}.max_message_size"),
            raw.max_message_size,
            (1024, MONGODB_MAX_MESSAGE, "(mongod's maxMessageSizeBytes)"),
            MONGODB_MAX_MESSAGE as usize,
        );
        let mut count = |field: &str, value: Option<u64>, default: usize, cap: u64| match value {
            None => default,
            Some(n) if (1..=cap).contains(&n) => n as usize,
            Some(_) => {
                self.error(format!("{path}.{field}"), format!("must be between 1 and {cap}"));
                default
            }
        };
        let max_collections = count(
            "max_collections",
            raw.max_collections,
            sluice_filters::sql::stats::DEFAULT_MAX_TABLES,
            MAX_COLLECTIONS_CAP,
        );
        let max_in_flight = count(
            "max_in_flight",
            raw.max_in_flight,
            sluice_filters::mongodb::DEFAULT_MAX_IN_FLIGHT,
            MAX_IN_FLIGHT_CAP,
        );
        let mut error_code = |field: &str, raw: Option<RawErrorCode>, default: sluice_filters::mongodb::ErrorCode| {
            let default = ErrorCodeConfig { code: default.code, code_name: default.code_name.into() };
            let Some(raw) = raw else { return default };
            let code = i32::try_from(raw.code).ok().filter(|c| *c > 0);
            if code.is_none() {
                self.error(format!("{path}.{field}.code"), "must be a positive 32-bit integer");
            }
            let name_ok = !raw.code_name.is_empty()
                && raw.code_name.len() <= 64
                && raw.code_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !name_ok {
                self.error(
                    format!("{path}.{field}.code_name"),
                    "must be 1 to 64 letters, digits or _ (like Unauthorized)",
                );
            }
            match code {
                Some(code) if name_ok => ErrorCodeConfig { code, code_name: raw.code_name },
                _ => default,
            }
        };
        let deny_error = error_code("deny_error", raw.deny_error, sluice_filters::mongodb::ErrorCode::unauthorized());
        let limit_error =
            error_code("limit_error", raw.limit_error, sluice_filters::mongodb::ErrorCode::rate_limit_exceeded());
        MongodbConfig { max_message_size, max_collections, max_in_flight, deny_error, limit_error }
    }

    /// A byte size in `[min, max]` (`why` says whose limit `max` is), or `default`.
    fn size_within(
        &mut self,
        path: &str,
        raw: Option<RawSize>,
        (min, max, why): (u64, u64, &str),
        default: usize,
    ) -> usize {
        let Some(size) = raw else { return default };
        let parsed = match size {
            RawSize::Bytes(n) => Ok(n),
            RawSize::Text(text) => parse_size(&text),
        };
        match parsed {
            Ok(n) if (min..=max).contains(&n) => n as usize,
            Ok(_) => {
                self.error(path, format!("must be between {} and {} {why}", show_size(min), show_size(max)));
                default
            }
            Err(e) => {
                self.error(path, e);
                default
            }
        }
    }

    /// The settings every SQL listener has: digest and table caps, the query log.
    fn sql_listener(
        &mut self,
        path: &str,
        max_digests: Option<u64>,
        max_tables: Option<u64>,
        query_log: Option<RawQueryLog>,
    ) -> SqlListenerSettings {
        let mut count = |field: &str, value: Option<u64>, default: usize, cap: u64| match value {
            None => default,
            Some(n) if n <= cap => n as usize,
            Some(_) => {
                self.error(format!("{path}.{field}"), format!("at most {cap}"));
                default
            }
        };
        let max_digests =
            count("max_digests", max_digests, sluice_filters::sql::digest_table::DEFAULT_MAX_DIGESTS, MAX_DIGESTS_CAP);
        let max_tables =
            count("max_tables", max_tables, sluice_filters::sql::stats::DEFAULT_MAX_TABLES, MAX_TABLES_CAP);
        let query_log = query_log.map(|q| {
            let sample_rate = q.sample_rate.unwrap_or(1.0);
            if !(0.0..=1.0).contains(&sample_rate) {
                self.error(format!("{path}.query_log.sample_rate"), "must be between 0 and 1");
            }
            QueryLogConfig { path: self.log_target(&format!("{path}.query_log.path"), &q.path), sample_rate }
        });
        SqlListenerSettings { max_digests, max_tables, query_log }
    }

    fn redis(&mut self, path: &str, raw: Option<RawRedis>, clusters: &[Arc<ClusterConfig>]) -> RedisConfig {
        let defaults = RespLimits::requests();
        let raw = raw.unwrap_or_default();
        let max_bulk_length = match raw.max_bulk_length {
            None => defaults.max_bulk_len,
            Some(size) => {
                let parsed = match size {
                    RawSize::Bytes(n) => Ok(n),
                    RawSize::Text(text) => parse_size(&text),
                };
                match parsed {
                    Ok(n) if (1..=defaults.max_bulk_len as u64).contains(&n) => n as usize,
                    Ok(_) => {
                        self.error(
                            format!("{path}.max_bulk_length"),
                            "must be between 1 byte and 512MiB (Redis's own limit)",
                        );
                        defaults.max_bulk_len
                    }
                    Err(e) => {
                        self.error(format!("{path}.max_bulk_length"), e);
                        defaults.max_bulk_len
                    }
                }
            }
        };
        let mut bounded = |key: &str, value: Option<u64>, max: usize, default: usize| match value {
            None => default,
            Some(n) if n >= 1 && n <= max as u64 => n as usize,
            Some(_) => {
                self.error(format!("{path}.{key}"), format!("must be between 1 and {max}"));
                default
            }
        };
        let max_array_length =
            bounded("max_array_length", raw.max_array_length, defaults.max_aggregate_len, defaults.max_aggregate_len);
        let max_depth = bounded("max_depth", raw.max_depth, MAX_DEPTH_CAP, defaults.max_depth);
        for (k, prefix) in raw.key_prefixes.iter().enumerate() {
            if prefix.is_empty() {
                self.error(format!("{path}.key_prefixes[{k}]"), "must not be empty");
            }
        }
        if raw.key_prefixes.len() > MAX_KEY_PREFIXES {
            self.error(
                format!("{path}.key_prefixes"),
                format!("at most {MAX_KEY_PREFIXES} prefixes (each is a metric series)"),
            );
        }
        let pool = match raw.mode.as_deref() {
            None | Some("observe") => {
                if raw.pool.is_some() {
                    self.error(format!("{path}.pool"), "only with mode: pool");
                }
                None
            }
            Some("pool") => Some(self.redis_pool(&format!("{path}.pool"), raw.pool.unwrap_or_default(), clusters)),
            Some(other) => {
                self.error(format!("{path}.mode"), format!(r#"unknown mode "{other}" (expected observe or pool)"#));
                None
            }
        };
        RedisConfig { max_bulk_length, max_array_length, max_depth, key_prefixes: raw.key_prefixes, pool }
    }

    fn redis_pool(&mut self, path: &str, raw: RawRedisPool, clusters: &[Arc<ClusterConfig>]) -> RedisPoolConfig {
        let connections = match raw.connections {
            None => 1,
            Some(n @ 1..=64) => n as usize,
            Some(_) => {
                self.error(format!("{path}.connections"), "must be between 1 and 64 (per server, per worker)");
                1
            }
        };
        let cluster_backend = match raw.backend.as_deref() {
            None | Some("servers") => false,
            Some("cluster") => true,
            Some(other) => {
                let message = format!(r#"unknown backend "{other}" (expected servers or cluster)"#);
                self.error(format!("{path}.backend"), message);
                false
            }
        };
        let distribution = match raw.distribution.as_deref() {
            None => DistributionKind::Ketama,
            Some(name) => DistributionKind::parse(name).unwrap_or_else(|| {
                let message = format!(r#"unknown distribution "{name}" (expected ketama or maglev)"#);
                self.error(format!("{path}.distribution"), message);
                DistributionKind::Ketama
            }),
        };
        let hash = match raw.hash.as_deref() {
            None => KeyHash::Fnv1a64,
            Some(name) => KeyHash::parse(name).unwrap_or_else(|| {
                self.error(format!("{path}.hash"), format!(r#"unknown hash "{name}" (expected fnv1a_64 or murmur)"#));
                KeyHash::Fnv1a64
            }),
        };
        let timeout = self.duration(&format!("{path}.timeout"), raw.timeout.as_deref(), Duration::from_secs(5));
        let mut user = |field: String, raw: RawRedisUser| {
            if raw.password.is_empty() {
                self.error(format!("{field}.password"), "must not be empty");
            }
            RedisUser { user: raw.user.unwrap_or_else(|| "default".into()), password: raw.password }
        };
        let users = raw.users.into_iter().enumerate().map(|(i, u)| user(format!("{path}.users[{i}]"), u)).collect();
        let upstream_auth = raw.upstream_auth.map(|u| user(format!("{path}.upstream_auth"), u));
        let read_from = match raw.read_from.as_deref() {
            None => ReadFrom::Primary,
            Some(name) => ReadFrom::parse(name).unwrap_or_else(|| {
                let message = format!(r#"unknown read_from "{name}" (expected primary, prefer_replica or any)"#);
                self.error(format!("{path}.read_from"), message);
                ReadFrom::Primary
            }),
        };
        if read_from != ReadFrom::Primary && !cluster_backend {
            self.error(format!("{path}.read_from"), "needs backend: cluster (a ring of servers has no replicas)");
        }
        let routes = self.redis_routes(path, raw.routes, clusters);
        let mirror = raw.mirror.and_then(|m| self.redis_mirror(&format!("{path}.mirror"), m, clusters));
        RedisPoolConfig {
            connections,
            cluster_backend,
            distribution,
            hash,
            timeout,
            users,
            upstream_auth,
            read_from,
            routes,
            mirror,
        }
    }

    /// A cluster a pool sends keys to.
    fn pool_cluster(&mut self, path: String, name: &str, clusters: &[Arc<ClusterConfig>]) -> Option<usize> {
        let found = clusters.iter().position(|c| c.name == name);
        if found.is_none() {
            self.error(path, format!(r#"unknown cluster "{name}""#));
        }
        found
    }

    fn redis_routes(
        &mut self,
        path: &str,
        raw: Vec<RawRedisRoute>,
        clusters: &[Arc<ClusterConfig>],
    ) -> Vec<RedisPrefixRoute> {
        let mut routes: Vec<RedisPrefixRoute> = Vec::new();
        for (i, route) in raw.into_iter().enumerate() {
            let path = format!("{path}.routes[{i}]");
            if route.prefix.is_empty() {
                self.error(
                    format!("{path}.prefix"),
                    "must not be empty (the listener's cluster takes every other key)",
                );
            } else if routes.iter().any(|r| r.prefix == route.prefix) {
                self.error(format!("{path}.prefix"), format!(r#""{}" is routed already"#, route.prefix));
            }
            if let Some(cluster_index) = self.pool_cluster(format!("{path}.cluster"), &route.cluster, clusters) {
                let RawRedisRoute { prefix, cluster, remove_prefix } = route;
                routes.push(RedisPrefixRoute { prefix, cluster, cluster_index, remove_prefix });
            }
        }
        routes
    }

    fn redis_mirror(
        &mut self,
        path: &str,
        raw: RawRedisMirror,
        clusters: &[Arc<ClusterConfig>],
    ) -> Option<RedisMirror> {
        let fraction = raw.fraction.unwrap_or(1.0);
        if !(fraction > 0.0 && fraction <= 1.0) {
            self.error(format!("{path}.fraction"), "must be above 0 and at most 1");
        }
        let cluster_index = self.pool_cluster(format!("{path}.cluster"), &raw.cluster, clusters)?;
        Some(RedisMirror { cluster: raw.cluster, cluster_index, fraction, exclude_reads: raw.exclude_reads })
    }

    fn fault(&mut self, path: &str, raw: RawFault, protocol: Protocol) -> Option<FaultConfig> {
        let errors_before = self.errors.len();
        if !matches!(protocol, Protocol::Redis | Protocol::Mongodb) {
            self.error(path, format!("faults apply to protocol listeners (redis, mongodb), not {protocol}"));
            return None;
        }
        let matcher = self.matcher(path, raw.matcher, protocol);
        if !(raw.percentage > 0.0 && raw.percentage <= 100.0) {
            self.error(format!("{path}.percentage"), "must be greater than 0 and at most 100");
        }
        let action = match (raw.delay, raw.error) {
            (Some(d), None) => {
                Some(FaultActionConfig::Delay(self.duration(&format!("{path}.delay"), Some(&d), Duration::ZERO)))
            }
            (None, Some(message)) if message.trim().is_empty() => {
                self.error(format!("{path}.error"), "must not be empty");
                None
            }
            (None, Some(message)) => Some(FaultActionConfig::Error(message)),
            _ => {
                self.error(path.to_string(), "needs exactly one of delay or error");
                None
            }
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(FaultConfig { matcher, percentage: raw.percentage, action: action? })
    }

    /// Checks a rule's or fault's match block.
    fn matcher(&mut self, path: &str, m: RawMatch, protocol: Protocol) -> MatchConfig {
        let list = |v: Option<OneOrMany>| v.map(OneOrMany::into_vec).unwrap_or_default();
        let op = list(m.op);
        for (k, name) in op.iter().enumerate() {
            if let Some(problem) = op_problem(name, protocol) {
                self.error(format!("{path}.match.op[{k}]"), problem);
            }
        }
        let mut client_cidr = Vec::new();
        for (k, text) in list(m.client_cidr).into_iter().enumerate() {
            match text.parse::<IpNet>().or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from)) {
                Ok(net) => client_cidr.push(net.trunc()),
                Err(_) => self.error(format!("{path}.match.client_cidr[{k}]"), format!(r#"invalid CIDR "{text}""#)),
            }
        }
        let client_id = list(m.client_id);
        if !client_id.is_empty() {
            self.client_id_use(format!("{path}.match.client_id"), protocol);
        }
        let database = list(m.database);
        let digest = list(m.digest);
        let without_where = m.without_where.unwrap_or(false);
        let dialect = sql_dialect(protocol);
        if dialect.is_none() {
            // MongoDB commands name their database (`$db`); only SQL statements have digests.
            let database_used = !database.is_empty() && protocol != Protocol::Mongodb;
            for (field, used) in
                [("database", database_used), ("digest", !digest.is_empty()), ("without_where", without_where)]
            {
                if used {
                    self.error(
                        format!("{path}.match.{field}"),
                        if field == "database" {
                            format!("applies to SQL and mongodb listeners, not {protocol}")
                        } else {
                            format!("applies to SQL listeners (mysql, postgres), not {protocol}")
                        },
                    );
                }
            }
        }
        let digest_hashes = match dialect {
            Some(dialect) => {
                digest.iter().map(|text| sql::normalize(text.as_bytes(), dialect, &mut String::new()).hash).collect()
            }
            None => Vec::new(),
        };
        MatchConfig {
            op,
            target: list(m.target),
            target_prefix: list(m.target_prefix),
            client_cidr,
            user: list(m.user),
            client_id,
            listener: list(m.listener),
            database,
            digest,
            digest_hashes,
            without_where,
        }
    }

    /// Notes a use of `client_id`: Kafka sends one; an `http` listener takes it from its
    /// `client_id_header` (checked once its `http` block is read).
    fn client_id_use(&mut self, path: String, protocol: Protocol) {
        match protocol {
            Protocol::Kafka => {}
            Protocol::Http => {
                if self.client_id_use.is_none() {
                    self.client_id_use = Some((path, None));
                }
            }
            _ => self.error(path, format!("client_id applies to kafka and http listeners, not {protocol}")),
        }
    }

    fn rule(&mut self, path: &str, raw: RawRule, protocol: Protocol) -> Option<RuleConfig> {
        let errors_before = self.errors.len();
        let matcher = self.matcher(path, raw.matcher, protocol);
        let action = match (raw.action.as_deref(), raw.rate_limit) {
            (None, _) => {
                self.error(format!("{path}.action"), "missing: expected allow, deny, reject or delay");
                None
            }
            (Some(a @ ("allow" | "deny")), Some(_)) => {
                self.error(
                    format!("{path}.rate_limit"),
                    format!("action {a} takes no rate_limit (use reject or delay)"),
                );
                None
            }
            (Some("allow"), None) => Some(ActionConfig::Allow),
            (Some("deny"), None) => Some(ActionConfig::Deny),
            (Some(a @ ("reject" | "delay")), None) => {
                self.error(format!("{path}.rate_limit"), format!("action {a} needs a rate_limit"));
                None
            }
            (Some(a @ ("reject" | "delay")), Some(rl)) => {
                let rl_path = format!("{path}.rate_limit");
                let rate = parse_rate(&rl.rate).map_err(|e| self.error(format!("{rl_path}.rate"), e)).ok();
                let header = rl.per.as_deref().and_then(|p| p.strip_prefix("header:"));
                let per = match (rl.per.as_deref(), header) {
                    (None, _) => Some(LimitKind::ClientIp),
                    // An HTTP header's value: the listener's client_id header.
                    (_, Some(name)) if protocol == Protocol::Http => {
                        let name = name.to_ascii_lowercase();
                        match &self.client_id_use {
                            Some((_, Some(other))) if *other != name => self.error(
                                format!("{rl_path}.per"),
                                format!("header:{name} after header:{other} (one header per listener)"),
                            ),
                            _ => self.client_id_use = Some((format!("{rl_path}.per"), Some(name))),
                        }
                        Some(LimitKind::ClientId)
                    }
                    (_, Some(_)) => {
                        self.error(format!("{rl_path}.per"), format!("header:<name> applies to http listeners, not {protocol}"));
                        None
                    }
                    (Some(p), None) => LimitKind::from_name(p).or_else(|| {
                        self.error(
                            format!("{rl_path}.per"),
                            format!(r#"unknown key "{p}" (expected client_ip, listener, target, user, op, database, digest, client_id or header:<name>)"#),
                        );
                        None
                    }),
                };
                if per == Some(LimitKind::ClientId) && header.is_none() {
                    self.client_id_use(format!("{rl_path}.per"), protocol);
                }
                let counts_bytes = match rl.cost.as_deref() {
                    None | Some("ops") => false,
                    Some("bytes") if protocol == Protocol::Kafka => true,
                    Some("bytes") => {
                        self.error(
                            format!("{rl_path}.cost"),
                            format!("bytes applies to kafka listeners, not {protocol}"),
                        );
                        false
                    }
                    Some(other) => {
                        self.error(
                            format!("{rl_path}.cost"),
                            format!(r#"unknown cost "{other}" (expected ops or bytes)"#),
                        );
                        false
                    }
                };
                let on_limit = if a == "delay" {
                    let max_delay =
                        self.duration(&format!("{rl_path}.max_delay"), rl.max_delay.as_deref(), DEFAULT_MAX_DELAY);
                    OnLimit::Delay { max_delay }
                } else {
                    if rl.max_delay.is_some() {
                        self.error(format!("{rl_path}.max_delay"), "applies only to action: delay");
                    }
                    OnLimit::Reject
                };
                let burst = match (rl.burst, rate) {
                    (Some(0), _) => {
                        self.error(format!("{rl_path}.burst"), "must be greater than zero");
                        None
                    }
                    (Some(b), Some((count, period))) if b > max_burst(count, period).get() => {
                        self.error(
                            format!("{rl_path}.burst"),
                            format!(
                                "at most {} at rate {:?}: a deeper bucket would take centuries to refill",
                                max_burst(count, period),
                                rl.rate
                            ),
                        );
                        None
                    }
                    (Some(b), _) => NonZeroU32::new(b),
                    (None, rate) => rate.map(|(count, _)| count),
                };
                match (rate, per, burst) {
                    (Some((count, period)), Some(per), Some(burst)) => Some(ActionConfig::RateLimit(RateLimitConfig {
                        count,
                        period,
                        burst,
                        per,
                        on_limit,
                        counts_bytes,
                    })),
                    _ => None,
                }
            }
            (Some(other), _) => {
                self.error(
                    format!("{path}.action"),
                    format!(r#"unknown action "{other}" (expected allow, deny, reject or delay)"#),
                );
                None
            }
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(RuleConfig { matcher, action: action? })
    }
}

/// What [`Validator::sql_listener`] reads.
struct SqlListenerSettings {
    max_digests: usize,
    max_tables: usize,
    query_log: Option<QueryLogConfig>,
}

/// `1KiB`, `1GiB`: a size in the largest binary unit that divides it.
fn show_size(n: u64) -> String {
    for (unit, scale) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= scale && n % scale == 0 {
            return format!("{}{unit}", n / scale);
        }
    }
    format!("{n} bytes")
}
