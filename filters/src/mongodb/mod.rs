//! MongoDB: the `mongodb` protocol filter. The filter (`filter`) frames each direction with
//! the codec (`sluice_codecs::mongodb`), reads every request (`inspect`: OP_MSG, OP_COMPRESSED
//! decompressed to look inside, the legacy opcodes) into an op — `op` the command name
//! (`commands`), `target` the `db.collection` it names, `database` its `$db`, `user` from the
//! SCRAM conversation — applies the listener's rules and faults, matches replies to requests
//! with the codec's `Correlator` (moreToCome requests expect none, exhaust cursors get many)
//! and counts and times each op to its last reply; `stats` holds the per-listener counters.
//!
//! Spec: the MongoDB Wire Protocol (<https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/>)
//! and the OP_MSG specification (<https://github.com/mongodb/specifications/blob/master/source/message/OP_MSG.md>).

pub mod commands;
mod filter;
mod inspect;
pub mod stats;

use std::sync::Arc;

use sluice_codecs::Limits;

pub use filter::MongodbFilter;

use crate::policy::{FaultSet, RuleSet};

/// Requests awaiting replies on one connection before its client is no longer read
/// (drivers send one at a time per connection; a pipelining client is held back).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// The `{code, codeName}` of an error reply sluice writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorCode {
    pub code: i32,
    pub code_name: Box<str>,
}

impl ErrorCode {
    /// What a `deny` rule answers: mongod's own answer to a command the user may not run.
    pub fn unauthorized() -> Self {
        ErrorCode { code: 13, code_name: "Unauthorized".into() }
    }

    /// What a rate limit with `reject` answers by default: mongod's RateLimitExceeded (449,
    /// in its SystemOverloaded category). Drivers raise it as a command error and do not
    /// retry it on their own (the reply carries no RetryableError label).
    pub fn rate_limit_exceeded() -> Self {
        ErrorCode { code: 449, code_name: "RateLimitExceeded".into() }
    }

    /// What an injected error fault answers.
    pub fn internal_error() -> Self {
        ErrorCode { code: 1, code_name: "InternalError".into() }
    }
}

/// What every connection of one `mongodb` listener shares.
pub struct MongodbListener {
    pub name: Arc<str>,
    pub rules: Arc<RuleSet>,
    pub faults: FaultSet,
    pub stats: stats::MongodbStats,
    /// `max_frame`: the largest message, compressed or not (mongod's maxMessageSizeBytes by
    /// default); `max_depth`: BSON nesting.
    pub limits: Limits,
    pub max_in_flight: usize,
    pub deny_error: ErrorCode,
    pub limit_error: ErrorCode,
}

impl MongodbListener {
    /// Whether the filter acts on commands (and so must fail closed).
    pub fn enforces(&self) -> bool {
        !self.rules.is_empty() || !self.faults.is_empty()
    }
}

#[cfg(test)]
mod tests;
