//! Network filters for sluice: the filter contract every protocol filter implements, the
//! operation (Op) model that protocol filters reduce traffic to, the policy engine that
//! turns operations into verdicts (deny, rate limit with reject or delay), and the stats
//! every filter records.
//!
//! Dependencies point one way (`codecs` ← `filters` ← runtime): nothing here owns a socket
//! or knows about tokio. The runtime feeds bytes and connection events in and carries out
//! the [`FilterStatus`] that comes back.

pub mod connection;
pub mod filter;
pub mod kafka;
pub mod latency;
pub mod mongodb;
pub mod mysql;
pub mod op;
pub mod policy;
pub mod postgres;
pub mod query_log;
pub mod redis;
pub mod sql;
pub mod stats;
pub mod stream;

pub use filter::{CloseReason, ConnectionInfo, Filter, FilterChain, FilterStatus};
pub use op::{Op, Outcome, Protocol};
pub use policy::{RuleSet, Verdict};
pub use stream::{StreamFilter, StreamIo, WriteQueue};
