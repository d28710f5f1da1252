//! The `kafka` filter's stats, shared by every connection of a listener (and of the
//! per-broker listeners it opens): `sluice_ops_total` / `sluice_op_duration_seconds` with
//! `protocol="kafka"` per API (label `op`: the protocol guide's API name, `Unknown` for keys
//! sluice does not name), plus
//!
//! - `sluice_kafka_topic_bytes_total{listener,topic,op}` and
//!   `sluice_kafka_topic_records_total{listener,topic,op}`: record-set bytes and records per
//!   topic, `op="Produce"` (counted from the requests forwarded) and `op="Fetch"` (from the
//!   responses), for the first `max_topics` distinct topics (the rest `other`);
//! - `sluice_kafka_client_requests_total{listener,client_id,op}`: requests per `client_id`
//!   header, for the first `max_client_ids` distinct ids (the rest `other`; none: `-`);
//! - `sluice_kafka_errors_total{listener,op,error}`: error codes in responses by name
//!   (top-level and per topic/partition/coordinator), from the fixed table of [`errors`];
//! - `sluice_kafka_throttle_time_ms{listener,kind}`: histogram of `throttle_time_ms` the
//!   brokers answer (`kind="broker"`) and of the time sluice held a request under a quota
//!   with `delay` (`kind="sluice"`);
//! - `sluice_kafka_brokers_rewritten_total{listener}`: broker addresses replaced in
//!   Metadata, FindCoordinator and DescribeCluster responses;
//! - `sluice_kafka_decode_errors_total{listener,direction}`.
//!
//! Label values come from fixed tables or capped sets. Handles are registered on first use;
//! per request the filter then does an indexed load or a per-connection cache hit.
//!
//! [`errors`]: super::errors

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use metrics::{Counter, Unit};
use sluice_codecs::kafka::ApiKey;

use super::errors;
use crate::op::Protocol;
use crate::sql::stats::{RowsHistogram, TableCounters};
use crate::stats::{read, write, OpCounters};

pub const TOPIC_BYTES_TOTAL: &str = "sluice_kafka_topic_bytes_total";
pub const TOPIC_RECORDS_TOTAL: &str = "sluice_kafka_topic_records_total";
pub const CLIENT_REQUESTS_TOTAL: &str = "sluice_kafka_client_requests_total";
pub const ERRORS_TOTAL: &str = "sluice_kafka_errors_total";
pub const THROTTLE_TIME_MS: &str = "sluice_kafka_throttle_time_ms";
const THROTTLE_HELP: &str =
    "Kafka throttle time in milliseconds: answered by brokers (kind=broker) or held by sluice's quotas (kind=sluice).";
pub const BROKERS_REWRITTEN_TOTAL: &str = "sluice_kafka_brokers_rewritten_total";
pub const DECODE_ERRORS_TOTAL: &str = "sluice_kafka_decode_errors_total";

/// Default of `max_topics` and `max_client_ids`.
pub const DEFAULT_MAX_LABELS: usize = 256;
/// Distinct (API, error) pairs with their own series; the table bounds them anyway.
const MAX_ERROR_SERIES: usize = 512;
/// API keys with their own op counters (every key the codec names, and a slot for the rest).
const OP_SLOTS: usize = 128;

/// Registers help texts; call once at start-up.
pub fn describe() {
    metrics::describe_counter!(TOPIC_BYTES_TOTAL, Unit::Bytes, "Kafka record-set bytes by topic (op=Produce|Fetch).");
    metrics::describe_counter!(TOPIC_RECORDS_TOTAL, Unit::Count, "Kafka records by topic (op=Produce|Fetch).");
    metrics::describe_counter!(CLIENT_REQUESTS_TOTAL, Unit::Count, "Kafka requests by client_id and API.");
    metrics::describe_counter!(ERRORS_TOTAL, Unit::Count, "Kafka error codes in responses, by API and error name.");
    metrics::describe_counter!(BROKERS_REWRITTEN_TOTAL, Unit::Count, "Kafka broker addresses rewritten to sluice's.");
    metrics::describe_counter!(DECODE_ERRORS_TOTAL, Unit::Count, "Kafka frames that could not be decoded.");
}

pub struct KafkaStats {
    listener: String,
    /// Indexed by api key (keys past the table share the last slot, named `Unknown`).
    ops: Box<[OnceLock<OpCounters>]>,
    pub topic_bytes: TableCounters,
    pub topic_records: TableCounters,
    pub clients: TableCounters,
    errors: RwLock<HashMap<(i16, i16), Counter>>,
    pub broker_throttle: Arc<RowsHistogram>,
    pub quota_throttle: Arc<RowsHistogram>,
    pub brokers_rewritten: Counter,
    pub client_decode_errors: Counter,
    pub server_decode_errors: Counter,
}

fn slot(api: ApiKey) -> usize {
    if api.is_known() {
        usize::try_from(api.0).unwrap_or(OP_SLOTS - 1).min(OP_SLOTS - 1)
    } else {
        OP_SLOTS - 1
    }
}

impl KafkaStats {
    pub fn new(listener: &str, max_topics: usize, max_client_ids: usize) -> Self {
        let l = || listener.to_owned();
        KafkaStats {
            ops: (0..OP_SLOTS).map(|_| OnceLock::new()).collect(),
            topic_bytes: TableCounters::with_label(TOPIC_BYTES_TOTAL, "topic", listener, max_topics),
            topic_records: TableCounters::with_label(TOPIC_RECORDS_TOTAL, "topic", listener, max_topics),
            clients: TableCounters::with_label(CLIENT_REQUESTS_TOTAL, "client_id", listener, max_client_ids),
            errors: RwLock::default(),
            broker_throttle: RowsHistogram::register(THROTTLE_TIME_MS, THROTTLE_HELP, listener, "broker"),
            quota_throttle: RowsHistogram::register(THROTTLE_TIME_MS, THROTTLE_HELP, listener, "sluice"),
            brokers_rewritten: metrics::counter!(BROKERS_REWRITTEN_TOTAL, "listener" => l()),
            client_decode_errors: metrics::counter!(DECODE_ERRORS_TOTAL, "listener" => l(), "direction" => "client"),
            server_decode_errors: metrics::counter!(DECODE_ERRORS_TOTAL, "listener" => l(), "direction" => "server"),
            listener: listener.to_owned(),
        }
    }

    /// The op counters of an API.
    pub fn op(&self, api: ApiKey) -> &OpCounters {
        let i = slot(api);
        self.ops[i].get_or_init(|| {
            let name = if i == OP_SLOTS - 1 { "Unknown" } else { api.name() };
            OpCounters::new(&self.listener, Protocol::Kafka, name)
        })
    }

    /// Counts one error code (not NONE) in a response to `api`.
    pub fn error(&self, api: ApiKey, code: i16) {
        let key = (i16::try_from(slot(api)).unwrap_or(-1), code);
        if let Some(counter) = read(&self.errors).get(&key) {
            counter.increment(1);
            return;
        }
        let mut map = write(&self.errors);
        if map.len() >= MAX_ERROR_SERIES && !map.contains_key(&key) {
            return;
        }
        let op = if slot(api) == OP_SLOTS - 1 { "Unknown" } else { api.name() };
        map.entry(key)
            .or_insert_with(|| {
                metrics::counter!(ERRORS_TOTAL, "listener" => self.listener.clone(), "op" => op, "error" => errors::name(code))
            })
            .increment(1);
    }
}

/// Topic and client-id counters a connection keeps at hand.
const KEPT: usize = 16;

/// The labelled counters one connection used last, found by name without the
/// listener-wide lock: a client names the same few topics and always the same client id.
#[derive(Default)]
pub struct ConnectionCounters {
    kept: Vec<(Box<str>, &'static str, Counter)>,
    next: usize,
}

impl ConnectionCounters {
    /// Adds `n` to the counter of `name` and `op` in `shared`.
    pub fn add(&mut self, shared: &TableCounters, name: &str, op: &'static str, n: u64) {
        if let Some((_, _, counter)) = self.kept.iter().find(|(k, o, _)| *o == op && &**k == name) {
            counter.increment(n);
            return;
        }
        let counter = shared.get(&Arc::from(name), op);
        counter.increment(n);
        let entry = (name.into(), op, counter);
        if self.kept.len() < KEPT {
            self.kept.push(entry);
        } else {
            self.kept[self.next] = entry;
            self.next = (self.next + 1) % KEPT;
        }
    }
}
