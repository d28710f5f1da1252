//! The connection-level policy filter, first in every chain: evaluates the `connect` op
//! against the listener's rules before the upstream is contacted (deny, rate limit with
//! reject or delay) and records the `connect` and `close` ops.
//!
//! Fails closed: a refused connection is closed before any byte reaches the upstream.

use std::sync::Arc;

use crate::filter::{CloseReason, ConnectionEvent, ConnectionInfo, Filter, FilterStatus};
use crate::op::{names, Op, Outcome, Protocol};
use crate::policy::{RuleSet, Verdict};
use crate::stats::OpCounters;

/// The `connect` and `close` op counters of one listener, shared by its connections.
pub struct ConnectionOps {
    pub connect: OpCounters,
    pub close: OpCounters,
}

impl ConnectionOps {
    pub fn new(listener: &str, protocol: Protocol) -> Self {
        ConnectionOps {
            connect: OpCounters::new(listener, protocol, names::CONNECT),
            close: OpCounters::new(listener, protocol, names::CLOSE),
        }
    }
}

pub struct ConnectionPolicy {
    rules: Arc<RuleSet>,
    ops: Arc<ConnectionOps>,
}

impl ConnectionPolicy {
    pub fn new(rules: Arc<RuleSet>, ops: Arc<ConnectionOps>) -> Self {
        ConnectionPolicy { rules, ops }
    }

    fn op<'a>(info: &'a ConnectionInfo, name: &'a str) -> Op<'a> {
        Op::connection(info.protocol, &info.listener, name, &info.cluster, info.client.ip())
    }
}

impl Filter for ConnectionPolicy {
    fn on_event(&mut self, event: &ConnectionEvent<'_>, info: &ConnectionInfo) -> FilterStatus {
        match event {
            ConnectionEvent::Accepted => match self.rules.evaluate(&Self::op(info, names::CONNECT)) {
                Verdict::Allow => FilterStatus::Continue,
                Verdict::Deny { .. } => {
                    self.ops.connect.record(Outcome::Denied, None);
                    FilterStatus::Close(CloseReason::Denied)
                }
                Verdict::Limited { .. } => {
                    self.ops.connect.record(Outcome::Limited, None);
                    FilterStatus::Close(CloseReason::Limited)
                }
                Verdict::Delay { wait, .. } => FilterStatus::Retry(wait),
            },
            ConnectionEvent::UpstreamConnected { elapsed, .. } => {
                self.ops.connect.record(Outcome::Ok, Some(*elapsed));
                FilterStatus::Continue
            }
            ConnectionEvent::UpstreamConnectFailed { elapsed } => {
                self.ops.connect.record(Outcome::Error, Some(*elapsed));
                FilterStatus::Continue
            }
            ConnectionEvent::Closed(summary) => {
                // A refused connection was already counted as a refused `connect`.
                if !matches!(summary.reason, CloseReason::Denied | CloseReason::Limited) {
                    let outcome = if summary.reason.is_error() { Outcome::Error } else { Outcome::Ok };
                    self.ops.close.record(outcome, Some(summary.duration));
                }
                FilterStatus::Continue
            }
        }
    }
}
