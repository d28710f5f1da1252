//! MySQL / MariaDB: the `mysql` protocol filter. The filter (`filter`) follows each
//! connection with the codec's session state machine (`sluice_codecs::mysql`), turns every
//! command into an op (the SQL verb and tables from the shared `sql` layer, or the `COM_`
//! name), applies the listener's rules, and times each command to its last response packet;
//! `prepared` remembers which statement each prepared-statement id stands for; `stats`
//! holds the per-listener counters.

mod filter;
mod prepared;
pub mod stats;

use std::sync::Arc;

use sluice_codecs::mysql::MysqlLimits;

pub use filter::MysqlFilter;

use crate::policy::RuleSet;
use crate::query_log::QueryLog;
use crate::sql::{DigestTable, SharedStatementCache};

/// What every connection of one `mysql` listener shares.
pub struct MysqlListener {
    pub name: Arc<str>,
    pub rules: Arc<RuleSet>,
    pub stats: stats::MysqlStats,
    /// Statistics per statement digest (served by the admin API's `/queries`).
    pub digests: Arc<DigestTable>,
    /// Verb, tables and digest per distinct statement text.
    pub statements: SharedStatementCache,
    pub limits: MysqlLimits,
    pub query_log: Option<QueryLog>,
    /// The listener terminates TLS (it has `tls` configured): the greeting offers
    /// CLIENT_SSL and an SSLRequest is answered by sluice instead of the server.
    pub terminates_tls: bool,
    /// The cluster originates TLS: before the client's login goes to the server, the
    /// filter asks the server for TLS with its own SSLRequest, and the greeting the
    /// client sees offers CLIENT_SSL only if the listener terminates TLS itself.
    pub originates_tls: bool,
}

impl MysqlListener {
    /// Whether the filter acts on commands (and so must fail closed).
    fn enforces(&self) -> bool {
        !self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
