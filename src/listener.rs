//! What all workers share about one listener: its config, cluster, rules, counters and the
//! connection count that `max_connections` is enforced against; and the binding of one
//! SO_REUSEPORT socket per worker.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_filters::connection::{ConnectionOps, ConnectionPolicy};
use sluice_filters::filter::{CloseSummary, ConnectionEvent, ConnectionInfo};
use sluice_filters::kafka::stats::KafkaStats;
use sluice_filters::kafka::{KafkaFilter, KafkaListener, TopicNames};
use sluice_filters::mongodb::stats::MongodbStats;
use sluice_filters::mongodb::{MongodbFilter, MongodbListener};
use sluice_filters::mysql::stats::MysqlStats;
use sluice_filters::mysql::{MysqlFilter, MysqlListener};
use sluice_filters::policy::FaultSet;
use sluice_filters::postgres::stats::PostgresStats;
use sluice_filters::postgres::{PostgresFilter, PostgresListener};
use sluice_filters::query_log::QueryLog;
use sluice_filters::redis::stats::RedisStats;
use sluice_filters::redis::{RedisFilter, RedisListener};
use sluice_filters::sql::{CacheLimits, Dialect, DigestTable, SharedStatementCache};
use sluice_filters::{CloseReason, FilterChain, Protocol, RuleSet, StreamFilter};
use socket2::{Domain, Socket, Type};

use crate::access_log::{now_rfc3339, AccessLog, AccessRecord, QueryLogWriter};
use crate::cluster::Cluster;
use crate::config::{ClusterConfig, EncryptionRequests, Endpoint, ListenerConfig};
use crate::kafka_brokers::KafkaBrokers;
use crate::telemetry::ListenerStats;

pub struct ListenerRuntime {
    pub config: ListenerConfig,
    pub name: Arc<str>,
    pub cluster: Arc<Cluster>,
    cluster_name: Arc<str>,
    rules: Arc<RuleSet>,
    ops: Arc<ConnectionOps>,
    pub stats: ListenerStats,
    active: AtomicUsize,
    access_log: Option<AccessLog>,
    /// What the connections of a `redis` listener share.
    redis: Option<Arc<RedisListener>>,
    /// What the connections of a `mysql` listener share.
    pub mysql: Option<Arc<MysqlListener>>,
    /// What the connections of a `postgres` listener share.
    pub postgres: Option<Arc<PostgresListener>>,
    /// What the connections of a `mongodb` listener share.
    pub mongodb: Option<Arc<MongodbListener>>,
    /// What the connections of a `kafka` listener (and of the per-broker listeners it
    /// opens) share.
    pub kafka: Option<Arc<KafkaListener>>,
    /// Where a `kafka` listener's brokers are on sluice (wired by the server once bound).
    pub kafka_brokers: Option<Arc<KafkaBrokers>>,
    /// What the connections of an `http` listener share (set by [`ListenerRuntime::with_http`]).
    pub http: Option<Arc<crate::http::HttpListener>>,
    /// Every cluster of the server, in config order, for listeners that reach beyond their
    /// own (`redis` pool routes and mirror; set by [`ListenerRuntime::with_clusters`]).
    pub clusters: Vec<Arc<Cluster>>,
}

/// A slot under `max_connections`, released when dropped.
pub struct ConnectionSlot {
    listener: Arc<ListenerRuntime>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.listener.active.fetch_sub(1, Ordering::AcqRel);
        self.listener.stats.connections_active.decrement(1);
    }
}

impl ListenerRuntime {
    /// `query_log` is the writer of the listener's query log, when it has one.
    pub fn new(
        config: ListenerConfig,
        cluster: Arc<Cluster>,
        access_log: Option<AccessLog>,
        query_log: Option<AccessLog>,
    ) -> Self {
        let rules = Arc::new(RuleSet::new(config.rules.iter().map(|r| r.build()).collect()));
        let redis = config.redis.as_ref().map(|redis| {
            Arc::new(RedisListener {
                name: config.name.as_str().into(),
                rules: rules.clone(),
                faults: FaultSet::new(config.faults.iter().map(|f| f.build()).collect()),
                stats: RedisStats::new(&config.name, &redis.key_prefixes),
                request_limits: redis.limits(true),
                reply_limits: redis.limits(false),
            })
        });
        let mysql = config.mysql.as_ref().map(|mysql| {
            Arc::new(MysqlListener {
                name: config.name.as_str().into(),
                rules: rules.clone(),
                stats: MysqlStats::new(&config.name, mysql.max_tables),
                digests: Arc::new(DigestTable::new(mysql.max_digests)),
                statements: SharedStatementCache::new(Dialect::MySql, CacheLimits::PER_LISTENER),
                limits: mysql.limits(),
                query_log: mysql
                    .query_log
                    .as_ref()
                    .zip(query_log.clone())
                    .map(|(q, log)| QueryLog { sink: Arc::new(QueryLogWriter(log)), sample_rate: q.sample_rate }),
                terminates_tls: config.tls.is_some(),
                originates_tls: cluster.config.tls.is_some(),
            })
        });
        let postgres = config.postgres.as_ref().map(|postgres| {
            Arc::new(PostgresListener {
                name: config.name.as_str().into(),
                rules: rules.clone(),
                stats: PostgresStats::new(&config.name, postgres.max_tables),
                digests: Arc::new(DigestTable::new(postgres.max_digests)),
                statements: SharedStatementCache::new(Dialect::Postgres, CacheLimits::PER_LISTENER),
                limits: postgres.limits(),
                query_log: postgres
                    .query_log
                    .as_ref()
                    .zip(query_log.clone())
                    .map(|(q, log)| QueryLog { sink: Arc::new(QueryLogWriter(log)), sample_rate: q.sample_rate }),
                terminates_tls: config.tls.is_some(),
                refuse_encryption: postgres.encryption == EncryptionRequests::Refuse,
                originates_tls: cluster.config.tls.is_some(),
            })
        });
        let mongodb = config.mongodb.as_ref().map(|mongodb| {
            Arc::new(MongodbListener {
                name: config.name.as_str().into(),
                rules: rules.clone(),
                faults: FaultSet::new(config.faults.iter().map(|f| f.build()).collect()),
                stats: MongodbStats::new(&config.name, mongodb.max_collections),
                limits: mongodb.limits(),
                max_in_flight: mongodb.max_in_flight,
                deny_error: mongodb.deny_error.build(),
                limit_error: mongodb.limit_error.build(),
            })
        });
        let kafka_brokers = config.kafka.as_ref().map(|kafka| {
            Arc::new(KafkaBrokers::new(
                &kafka.advertised_host,
                config.address.ip(),
                kafka.broker_ports.clone(),
                cluster.config.clone(),
            ))
        });
        let kafka = config.kafka.as_ref().zip(kafka_brokers.as_ref()).map(|(kafka, brokers)| {
            Arc::new(KafkaListener {
                name: config.name.as_str().into(),
                rules: rules.clone(),
                stats: KafkaStats::new(&config.name, kafka.max_topics, kafka.max_client_ids),
                limits: kafka.limits(),
                max_in_flight: kafka.max_in_flight,
                brokers: brokers.clone(),
                topic_names: TopicNames::default(),
            })
        });
        ListenerRuntime {
            http: None,
            clusters: Vec::new(),
            kafka,
            kafka_brokers,
            redis,
            mysql,
            postgres,
            mongodb,
            name: config.name.as_str().into(),
            cluster_name: cluster.config.name.as_str().into(),
            ops: Arc::new(ConnectionOps::new(&config.name, config.protocol)),
            stats: ListenerStats::new(&config.name, config.protocol),
            active: AtomicUsize::new(0),
            rules,
            cluster,
            config,
            access_log,
        }
    }

    /// Builds the shared state of an `http` listener, whose routes may name any of
    /// `clusters` (the server's, in config order). Other listeners are returned as they are.
    pub fn with_http(mut self, clusters: &[Arc<Cluster>]) -> Self {
        self.http = crate::http::HttpListener::new(&self.config, self.rules.clone(), self.access_log.clone(), clusters)
            .map(Arc::new);
        self
    }

    /// Lets the listener reach every cluster of the server (`clusters`, in config order).
    pub fn with_clusters(mut self, clusters: &[Arc<Cluster>]) -> Self {
        self.clusters = clusters.to_vec();
        self
    }

    /// The statement digests of a SQL listener (served by the admin API's `/queries`).
    pub fn digests(&self) -> Option<&Arc<DigestTable>> {
        match (&self.mysql, &self.postgres) {
            (Some(mysql), _) => Some(&mysql.digests),
            (_, Some(postgres)) => Some(&postgres.digests),
            _ => None,
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.config.protocol
    }

    pub fn connection_info(&self, client: SocketAddr) -> ConnectionInfo {
        ConnectionInfo {
            listener: self.name.clone(),
            protocol: self.config.protocol,
            cluster: self.cluster_name.clone(),
            client,
        }
    }

    /// The filters of a new connection.
    pub fn new_chain(&self) -> FilterChain {
        FilterChain::new(vec![Box::new(ConnectionPolicy::new(self.rules.clone(), self.ops.clone()))])
    }

    /// The protocol filter of a new connection, for protocol listeners.
    pub fn new_stream_filter(&self, client: SocketAddr) -> Option<Box<dyn StreamFilter>> {
        if let Some(mysql) = &self.mysql {
            return Some(Box::new(MysqlFilter::new(mysql.clone(), client.ip())));
        }
        if let Some(postgres) = &self.postgres {
            return Some(Box::new(PostgresFilter::new(postgres.clone(), client.ip())));
        }
        if let Some(mongodb) = &self.mongodb {
            return Some(Box::new(MongodbFilter::new(mongodb.clone(), client.ip())));
        }
        if let Some(kafka) = &self.kafka {
            return Some(Box::new(KafkaFilter::new(kafka.clone(), client.ip())));
        }
        let redis = self.redis.as_ref()?;
        Some(Box::new(RedisFilter::new(redis.clone(), client.ip())))
    }

    /// The listener sluice opens for Kafka broker `node_id` of this `kafka` listener, on
    /// `address`, proxying to the broker at `upstream` (as the broker advertised itself:
    /// `advertised`), with this listener's filter state (rules, quotas, stats), settings,
    /// and upstream TLS.
    pub fn for_kafka_broker(
        &self,
        node_id: i32,
        address: SocketAddr,
        advertised: &str,
        upstream: SocketAddr,
    ) -> ListenerRuntime {
        let name = format!("{}-broker-{node_id}", self.name);
        let cluster = ClusterConfig {
            name: format!("{}-broker-{node_id}", self.cluster.config.name),
            endpoints: vec![Endpoint { name: advertised.to_string(), address: upstream, weight: 1 }],
            connect_timeout: self.cluster.config.connect_timeout,
            tls: self.cluster.config.tls.clone(),
            http2: false,
        };
        let config = ListenerConfig { name: name.clone(), address, ..self.config.clone() };
        ListenerRuntime {
            http: None,
            clusters: Vec::new(),
            redis: None,
            mysql: None,
            postgres: None,
            mongodb: None,
            kafka: self.kafka.clone(),
            kafka_brokers: self.kafka_brokers.clone(),
            name: name.as_str().into(),
            cluster_name: cluster.name.as_str().into(),
            ops: Arc::new(ConnectionOps::new(&name, config.protocol)),
            stats: ListenerStats::new(&name, config.protocol),
            active: AtomicUsize::new(0),
            rules: self.rules.clone(),
            cluster: Arc::new(Cluster::new(Arc::new(cluster))),
            config,
            access_log: self.access_log.clone(),
        }
    }

    /// What the connections of a `redis` listener share.
    pub fn redis(&self) -> Option<&Arc<RedisListener>> {
        self.redis.as_ref()
    }

    /// Takes a connection slot, or `None` when the listener is at `max_connections`.
    pub fn try_admit(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let before = self.active.fetch_add(1, Ordering::AcqRel);
        if before >= self.config.max_connections {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        self.stats.connections_total.increment(1);
        self.stats.connections_active.increment(1);
        Some(ConnectionSlot { listener: self.clone() })
    }

    /// The `connect` / `close` op counters, for refusals made before the chain runs.
    pub fn connect_ops(&self) -> &ConnectionOps {
        &self.ops
    }

    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub fn housekeep(&self) {
        self.rules.housekeep();
    }

    /// Loads the listener's certificates again if their files changed; new handshakes get
    /// them, and a file that does not load leaves the old ones in use.
    pub fn reload_tls(&self) {
        let Some(tls) = &self.config.tls else { return };
        match tls.certs.reload_if_changed() {
            None => {}
            Some(Ok(())) => {
                tracing::info!(listener = %self.name, "TLS certificates reloaded");
                self.stats.tls.reload(true);
            }
            Some(Err(e)) => {
                tracing::warn!(listener = %self.name, field = %e.field, error = %e.message, "TLS certificates not reloaded; the old ones stay in use");
                self.stats.tls.reload(false);
            }
        }
    }

    /// Writes the access-log line of a finished connection.
    fn log_close(&self, client: SocketAddr, summary: &CloseSummary) {
        let Some(log) = &self.access_log else { return };
        if self.config.protocol == Protocol::Http {
            // One line per request instead (`crate::http`).
            return;
        }
        log.write(&AccessRecord {
            time: now_rfc3339(),
            listener: &self.name,
            protocol: self.config.protocol.as_str(),
            client,
            cluster: &self.cluster_name,
            upstream: summary.upstream,
            bytes_received: summary.bytes_from_downstream,
            bytes_sent: summary.bytes_from_upstream,
            duration_ms: (summary.duration.as_secs_f64() * 1e6).round() / 1e3,
            close_reason: summary.reason.as_str(),
        });
    }
}

/// The accounting of one connection or UDP session. However it ends (its own close, an
/// error, or its worker dropping it when the drain timeout runs out), its `close` op and
/// access-log line are written exactly once, when the record drops. Until the driver
/// says otherwise the reason is `drain`.
pub struct ConnectionRecord {
    pub runtime: Arc<ListenerRuntime>,
    pub info: ConnectionInfo,
    pub chain: FilterChain,
    pub summary: CloseSummary,
    started: Instant,
    /// Refused UDP datagrams leave no trace beyond their counters: a flood of them must
    /// not become a flood of log lines.
    silent: bool,
}

impl ConnectionRecord {
    pub fn new(runtime: Arc<ListenerRuntime>, client: SocketAddr) -> Self {
        ConnectionRecord {
            info: runtime.connection_info(client),
            chain: runtime.new_chain(),
            summary: CloseSummary {
                reason: CloseReason::Drain,
                upstream: None,
                bytes_from_downstream: 0,
                bytes_from_upstream: 0,
                duration: Duration::ZERO,
            },
            started: Instant::now(),
            silent: false,
            runtime,
        }
    }

    /// Drops the record without a `close` op or an access-log line.
    pub fn discard(mut self) {
        self.silent = true;
    }
}

impl Drop for ConnectionRecord {
    fn drop(&mut self) {
        if self.silent {
            return;
        }
        self.summary.duration = self.started.elapsed();
        self.chain.on_event(&ConnectionEvent::Closed(&self.summary), &self.info);
        self.runtime.log_close(self.info.client, &self.summary);
    }
}

/// Binds `count` sockets to `addr` with SO_REUSEPORT so each worker accepts on its own
/// and the kernel spreads connections (and UDP clients) across them. When `addr` has port
/// 0 the first socket picks the port and the others join it.
pub fn bind_reuseport(addr: SocketAddr, protocol: Protocol, count: usize) -> io::Result<Vec<Socket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let ty = if protocol == Protocol::Udp { Type::DGRAM } else { Type::STREAM };
        let socket = Socket::new(Domain::for_address(addr), ty, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(false)?;
        }
        socket.bind(&addr.into())?;
        if protocol != Protocol::Udp {
            socket.listen(4096)?;
        }
        if addr.port() == 0 {
            addr = socket.local_addr()?.as_socket().unwrap_or(addr);
        }
        sockets.push(socket);
    }
    Ok(sockets)
}
