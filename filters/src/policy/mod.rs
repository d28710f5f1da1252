//! The policy engine: an ordered list of rules evaluated per operation, first match wins.
//!
//! A rule is a [`Matcher`] (op names, target prefixes, client CIDRs, users, listeners) and
//! an [`Action`] (allow, deny, or a GCRA rate limit that rejects or delays the excess).
//! Evaluation borrows the [`Op`] and allocates nothing; rate-limit keys are hashed.

mod fault;
mod limiter;
mod matcher;

pub use fault::{Fault, FaultAction, FaultSet};
pub use limiter::{max_burst, LimitKind, OnLimit, RateLimit, RateLimitError};
pub use matcher::Matcher;

use std::time::Duration;

use crate::op::Op;

/// What a matching rule does.
#[derive(Debug)]
pub enum Action {
    /// Let the operation through and stop evaluating.
    Allow,
    /// Refuse the operation.
    Deny,
    /// Let it through while under the limit; otherwise reject it or hold it.
    RateLimit(RateLimit),
}

/// One rule: when `matcher` matches, `action` decides.
#[derive(Debug)]
pub struct Rule {
    pub matcher: Matcher,
    pub action: Action,
}

/// The decision for one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it (no rule matched, an allow rule matched, or a limit had room).
    Allow,
    /// A deny rule matched; `rule` is its index.
    Deny { rule: usize },
    /// A rate limit with `reject` had no room, or a `delay` limit would wait past its
    /// `max_delay`.
    Limited { rule: usize },
    /// A rate limit with `delay` has room after `wait`: hold the operation that long, then
    /// evaluate it again.
    Delay { rule: usize, wait: Duration },
}

/// The ordered rules of one listener.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>) -> Self {
        RuleSet { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Evaluates `op` against the rules in order; the first rule whose matcher matches
    /// decides. Rate limits consume a cell only when the verdict is `Allow`.
    pub fn evaluate(&self, op: &Op<'_>) -> Verdict {
        self.evaluate_sized(op, 1)
    }

    /// As [`RuleSet::evaluate`], for an op of `bytes` bytes: rate limits counted in bytes
    /// ([`RateLimit::counts_bytes`]) take that many cells, the others one.
    pub fn evaluate_sized(&self, op: &Op<'_>, bytes: u64) -> Verdict {
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.matcher.matches(op) {
                continue;
            }
            return match &rule.action {
                Action::Allow => Verdict::Allow,
                Action::Deny => Verdict::Deny { rule: index },
                Action::RateLimit(limit) => match limit.check_n(op, limit.cost(bytes)) {
                    Ok(()) => Verdict::Allow,
                    Err(RateLimitError::Reject) => Verdict::Limited { rule: index },
                    Err(RateLimitError::RetryAfter(wait)) => Verdict::Delay { rule: index, wait },
                },
            };
        }
        Verdict::Allow
    }

    /// Forgets rate-limit state for keys that have been quiet long enough to be full
    /// again, so per-client state does not grow without bound. Call it periodically.
    pub fn housekeep(&self) {
        for rule in &self.rules {
            if let Action::RateLimit(limit) = &rule.action {
                limit.housekeep();
            }
        }
    }
}

#[cfg(test)]
mod tests;
