//! The `redis` filter's stats, shared by every connection of a listener:
//! `sluice_ops_total` / `sluice_op_duration_seconds` per command (label `op`, the
//! command table's name, unknown commands as `other`), plus
//!
//! - `sluice_redis_errors_total{listener,prefix}`: error replies by their first word
//!   (`WRONGTYPE`, `MOVED`, …; prefixes outside Redis's own set count as `other`);
//! - `sluice_redis_key_ops_total{listener,prefix}`: commands by key prefix, for the
//!   configured prefixes (longest match), the rest `other`;
//! - `sluice_redis_decode_errors_total{listener,direction}`;
//! - `sluice_redis_push_messages_total{listener}`: pub/sub messages and RESP3 pushes;
//! - `sluice_redis_faults_total{listener,fault}`: injected delays and errors;
//! - `sluice_redis_unexpected_replies_total{listener}`: replies no command was waiting
//!   for (forwarded all the same; non-zero means the filter lost track of the stream).
//!
//! Every label value comes from a fixed list, so the series count is bounded whatever
//! clients send. Handles are registered on first use and then cost one atomic add.

use std::sync::OnceLock;

use metrics::{Counter, Unit};

use super::command_table::{self, CommandId};
use crate::op::Protocol;
use crate::stats::OpCounters;

pub const ERRORS_TOTAL: &str = "sluice_redis_errors_total";
pub const KEY_OPS_TOTAL: &str = "sluice_redis_key_ops_total";
pub const DECODE_ERRORS_TOTAL: &str = "sluice_redis_decode_errors_total";
pub const PUSH_MESSAGES_TOTAL: &str = "sluice_redis_push_messages_total";
pub const FAULTS_TOTAL: &str = "sluice_redis_faults_total";
pub const UNEXPECTED_REPLIES_TOTAL: &str = "sluice_redis_unexpected_replies_total";

/// The error prefixes Redis itself sends; anything else counts as `other`.
const ERROR_PREFIXES: [&str; 26] = [
    "ERR",
    "WRONGTYPE",
    "NOAUTH",
    "WRONGPASS",
    "NOPERM",
    "MOVED",
    "ASK",
    "TRYAGAIN",
    "CROSSSLOT",
    "CLUSTERDOWN",
    "READONLY",
    "LOADING",
    "BUSY",
    "BUSYKEY",
    "BUSYGROUP",
    "NOGROUP",
    "NOSCRIPT",
    "NOTBUSY",
    "UNKILLABLE",
    "EXECABORT",
    "OOM",
    "MISCONF",
    "MASTERDOWN",
    "NOREPLICAS",
    "NOPROTO",
    "UNBLOCKED",
];

/// Registers help texts; call once at start-up.
pub fn describe() {
    metrics::describe_counter!(ERRORS_TOTAL, Unit::Count, "Redis error replies by error prefix.");
    metrics::describe_counter!(KEY_OPS_TOTAL, Unit::Count, "Redis commands by configured key prefix.");
    metrics::describe_counter!(DECODE_ERRORS_TOTAL, Unit::Count, "RESP frames that could not be decoded.");
    metrics::describe_counter!(PUSH_MESSAGES_TOTAL, Unit::Count, "Pub/sub messages and RESP3 pushes.");
    metrics::describe_counter!(FAULTS_TOTAL, Unit::Count, "Faults injected into Redis commands.");
    metrics::describe_counter!(UNEXPECTED_REPLIES_TOTAL, Unit::Count, "Redis replies no command was waiting for.");
}

pub struct RedisStats {
    listener: String,
    commands: Box<[OnceLock<OpCounters>]>,
    errors: Box<[OnceLock<Counter>]>,
    /// Configured prefixes, longest first, and the `other` counter last.
    key_prefixes: Vec<(Box<[u8]>, Counter)>,
    key_other: Option<Counter>,
    pub request_decode_errors: Counter,
    pub reply_decode_errors: Counter,
    pub push_messages: Counter,
    pub fault_delays: Counter,
    pub fault_errors: Counter,
    pub unexpected_replies: Counter,
}

impl RedisStats {
    pub fn new(listener: &str, key_prefixes: &[String]) -> Self {
        let l = || listener.to_owned();
        let mut prefixes: Vec<&String> = key_prefixes.iter().collect();
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let key_counter =
            |prefix: &str| metrics::counter!(KEY_OPS_TOTAL, "listener" => l(), "prefix" => prefix.to_owned());
        RedisStats {
            commands: (0..=command_table::count()).map(|_| OnceLock::new()).collect(),
            errors: (0..=ERROR_PREFIXES.len()).map(|_| OnceLock::new()).collect(),
            key_prefixes: prefixes.iter().map(|p| (p.as_bytes().into(), key_counter(p))).collect(),
            key_other: (!key_prefixes.is_empty()).then(|| key_counter("other")),
            request_decode_errors: metrics::counter!(DECODE_ERRORS_TOTAL, "listener" => l(), "direction" => "request"),
            reply_decode_errors: metrics::counter!(DECODE_ERRORS_TOTAL, "listener" => l(), "direction" => "reply"),
            push_messages: metrics::counter!(PUSH_MESSAGES_TOTAL, "listener" => l()),
            fault_delays: metrics::counter!(FAULTS_TOTAL, "listener" => l(), "fault" => "delay"),
            fault_errors: metrics::counter!(FAULTS_TOTAL, "listener" => l(), "fault" => "error"),
            unexpected_replies: metrics::counter!(UNEXPECTED_REPLIES_TOTAL, "listener" => l()),
            listener: listener.to_owned(),
        }
    }

    /// The op counters of a command.
    pub fn command(&self, id: CommandId) -> &OpCounters {
        self.commands[id.index()]
            .get_or_init(|| OpCounters::new(&self.listener, Protocol::Redis, command_table::stats_name(id)))
    }

    /// Counts an error reply by its prefix.
    pub fn error(&self, prefix: &[u8]) {
        let index = ERROR_PREFIXES.iter().position(|p| p.as_bytes() == prefix).unwrap_or(ERROR_PREFIXES.len());
        self.errors[index]
            .get_or_init(|| {
                let prefix = ERROR_PREFIXES.get(index).copied().unwrap_or("other");
                metrics::counter!(ERRORS_TOTAL, "listener" => self.listener.clone(), "prefix" => prefix)
            })
            .increment(1);
    }

    /// Whether key prefixes are configured (and so keys are counted).
    pub fn counts_keys(&self) -> bool {
        self.key_other.is_some()
    }

    /// Counts a command's key under its prefix, when prefixes are configured.
    pub fn key(&self, key: &[u8]) {
        let Some(other) = &self.key_other else { return };
        match self.key_prefixes.iter().find(|(p, _)| key.starts_with(p)) {
            Some((_, counter)) => counter.increment(1),
            None => other.increment(1),
        }
    }
}
