//! Operation stats shared by every filter: `sluice_ops_total{listener,protocol,op,outcome}`
//! and `sluice_op_duration_seconds{listener,protocol,op}`.
//!
//! Handles are registered once (per listener and op) and then updated with a single atomic
//! operation, so recording on the data path takes no registry lookup and no lock.

use std::time::Duration;

use metrics::{Counter, Histogram, Unit};

use crate::op::{Outcome, Protocol};

pub const OPS_TOTAL: &str = "sluice_ops_total";
pub const OP_DURATION_SECONDS: &str = "sluice_op_duration_seconds";

/// Registers help texts for the op metrics; call once at start-up.
pub fn describe() {
    metrics::describe_counter!(
        OPS_TOTAL,
        Unit::Count,
        "Operations seen, by op and outcome (ok, error, denied, limited)."
    );
    metrics::describe_histogram!(
        OP_DURATION_SECONDS,
        Unit::Seconds,
        "Operation latency; for connect the upstream connect time, for close the connection lifetime."
    );
}

/// The counters and latency histogram of one op name on one listener.
#[derive(Clone)]
pub struct OpCounters {
    ok: Counter,
    error: Counter,
    denied: Counter,
    limited: Counter,
    duration: Histogram,
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
            duration: metrics::histogram!(
                OP_DURATION_SECONDS,
                "listener" => listener.to_owned(),
                "protocol" => protocol.as_str(),
                "op" => op.to_owned()
            ),
        }
    }

    /// Counts one op with its outcome; `elapsed` feeds the latency histogram when the op
    /// actually ran (refused ops have none).
    pub fn record(&self, outcome: Outcome, elapsed: Option<Duration>) {
        match outcome {
            Outcome::Ok => &self.ok,
            Outcome::Error => &self.error,
            Outcome::Denied => &self.denied,
            Outcome::Limited => &self.limited,
        }
        .increment(1);
        if let Some(elapsed) = elapsed {
            self.duration.record(elapsed.as_secs_f64());
        }
    }
}
