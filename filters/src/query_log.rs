//! The query log: one record per finished SQL statement, sampled, for listeners that
//! configure it. The filter decides which statements are logged and fills a
//! [`QueryRecord`]; the runtime's [`QueryLogSink`] formats and writes it off the data path
//! (a writer thread), so this crate needs neither files nor a serializer.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::op::{Outcome, Protocol};

/// One finished statement, as logged.
#[derive(Debug)]
pub struct QueryRecord<'a> {
    pub listener: &'a str,
    pub protocol: Protocol,
    pub client: IpAddr,
    pub user: Option<&'a str>,
    pub database: Option<&'a str>,
    pub op: &'a str,
    /// The normalized statement text and its hash, for statements.
    pub digest: Option<(&'a str, u64)>,
    pub tables: &'a [Arc<str>],
    pub duration: Duration,
    pub rows: u64,
    pub outcome: Outcome,
    /// For errors: the server's error code (MySQL's number; PostgreSQL has none) and the
    /// SQLSTATE.
    pub error: Option<(Option<u16>, &'a str)>,
}

/// Where query records go.
pub trait QueryLogSink: Send + Sync {
    fn write(&self, record: &QueryRecord<'_>);
}

/// A listener's query log: a sink and the fraction of statements that reach it.
#[derive(Clone)]
pub struct QueryLog {
    pub sink: Arc<dyn QueryLogSink>,
    /// In `[0, 1]`: 1 logs every statement.
    pub sample_rate: f64,
}

impl QueryLog {
    /// Whether to log the next statement, given a uniform draw in `[0, 1)`.
    pub fn sampled(&self, draw: f64) -> bool {
        draw < self.sample_rate
    }
}

impl std::fmt::Debug for QueryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QueryLog {{ sample_rate: {} }}", self.sample_rate)
    }
}
