//! PostgreSQL: the `postgres` protocol filter. The filter (`filter`) follows each
//! connection with the codec's session state machine (`sluice_codecs::postgres`), turns
//! every statement into an op (the SQL verb and tables from the shared `sql` layer; each
//! statement of a multi-statement simple Query, and each Execute of the extended protocol
//! attributed to the SQL its portal was bound from), applies the listener's rules, and
//! times each statement to the message that ends it; `stats` holds the per-listener
//! counters.

mod filter;
pub mod stats;

use std::sync::Arc;

use sluice_codecs::postgres::PgLimits;

pub use filter::PostgresFilter;

use crate::policy::RuleSet;
use crate::query_log::QueryLog;
use crate::sql::{DigestTable, SharedStatementCache};

/// What every connection of one `postgres` listener shares.
pub struct PostgresListener {
    pub name: Arc<str>,
    pub rules: Arc<RuleSet>,
    pub stats: stats::PostgresStats,
    /// Statistics per statement digest (served by the admin API's `/queries`).
    pub digests: Arc<DigestTable>,
    /// Verb, tables and digest per distinct statement text.
    pub statements: SharedStatementCache,
    pub limits: PgLimits,
    pub query_log: Option<QueryLog>,
    /// The listener terminates TLS (it has `tls` configured): a client's SSLRequest is
    /// answered `S` by sluice, which then decrypts the session itself.
    pub terminates_tls: bool,
    /// Encryption requests (SSLRequest, GSSENCRequest) are answered `N` by sluice instead
    /// of going to the server, so every session stays readable. Always so for a listener
    /// with rules (see the filter's failure mode).
    pub refuse_encryption: bool,
    /// The cluster originates TLS to the server: the server's SASL offer loses its
    /// channel-binding mechanisms on the way to a plain client (see
    /// `sasl_without_channel_binding`), and the client's own encryption requests are
    /// refused, as with `refuse_encryption`.
    pub originates_tls: bool,
}

impl PostgresListener {
    /// Whether the filter acts on statements (and so must fail closed).
    fn enforces(&self) -> bool {
        !self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests;
