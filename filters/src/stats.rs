//! Operation stats shared by every filter: `sluice_ops_total{listener,protocol,op,outcome}`
//! and `sluice_op_duration_seconds{listener,protocol,op}`.
//!
//! Handles are registered once (per listener and op) and then updated with atomic adds,
//! so recording on the data path takes no registry lookup and no lock. The histogram is
//! sluice's own (see `latency`); the counters go through `metrics`.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use metrics::{Counter, Unit};

use crate::latency::LatencyHistogram;
pub use crate::latency::OP_DURATION_SECONDS;
use crate::op::{Outcome, Protocol};

pub const OPS_TOTAL: &str = "sluice_ops_total";

/// Registers help texts for the op metrics; call once at start-up.
pub fn describe() {
    metrics::describe_counter!(
        OPS_TOTAL,
        Unit::Count,
        "Operations seen, by op and outcome (ok, error, denied, limited)."
    );
}

/// The counters and latency histogram of one op name on one listener.
#[derive(Clone)]
pub struct OpCounters {
    ok: Counter,
    error: Counter,
    denied: Counter,
    limited: Counter,
    duration: Arc<LatencyHistogram>,
}

impl OpCounters {
    pub fn new(listener: &str, protocol: Protocol, op: &str) -> Self {
        let counter = |outcome: Outcome| {
            metrics::counter!(
                OPS_TOTAL,
                "listener" => listener.to_owned(),
                "protocol" => protocol.as_str(),
                "op" => op.to_owned(),
                "outcome" => outcome.as_str()
            )
        };
        OpCounters {
            ok: counter(Outcome::Ok),
            error: counter(Outcome::Error),
            denied: counter(Outcome::Denied),
            limited: counter(Outcome::Limited),
            duration: LatencyHistogram::register(listener, protocol.as_str(), op),
        }
    }

    /// Counts one op with its outcome; `elapsed` feeds the latency histogram when the op
    /// actually ran (refused ops have none).
    pub fn record(&self, outcome: Outcome, elapsed: Option<Duration>) {
        self.record_many(outcome, elapsed, 1);
    }

    /// Counts `n` ops with the same outcome and latency (the commands of one pipelined
    /// read): one atomic add per counter instead of `n`.
    pub fn record_many(&self, outcome: Outcome, elapsed: Option<Duration>, n: u64) {
        match outcome {
            Outcome::Ok => &self.ok,
            Outcome::Error => &self.error,
            Outcome::Denied => &self.denied,
            Outcome::Limited => &self.limited,
        }
        .increment(n);
        if let Some(elapsed) = elapsed {
            self.duration.record_many(elapsed, n);
        }
    }
}

/// Reads a registry of stat handles; a panic elsewhere while it was held leaves handles
/// that are still good, so poisoning is ignored.
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes a registry of stat handles (see [`read`]).
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}
