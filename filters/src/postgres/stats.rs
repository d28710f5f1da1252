//! The `postgres` filter's stats, shared by every connection of a listener:
//! `sluice_ops_total` / `sluice_op_duration_seconds` per statement (label `op`: the SQL
//! verb; `FUNCTION_CALL` for the fast-path FunctionCall message), plus
//!
//! - `sluice_postgres_table_ops_total{listener,table,op}`: statements per table touched, for
//!   the first `max_tables` distinct tables (the rest `other`; the shared [`TableCounters`]);
//! - `sluice_postgres_errors_total{listener,class}`: ErrorResponses by SQLSTATE class (the
//!   code's first two characters, e.g. `42` syntax or access rule violation, `23`
//!   integrity constraint violation; a code that is not five digits or capitals: `other`);
//! - `sluice_postgres_rows{listener,kind}`: histogram of rows returned / affected per
//!   statement (the shared [`RowsHistogram`]);
//! - `sluice_postgres_sessions_total{listener,outcome}`: logins `ok` and `failed`, sessions
//!   that went `tls` or `gss` (encrypted end to end, opaque to the filter), `tls_terminated`
//!   ones (TLS answered by sluice itself, so the filter still sees every message), and
//!   `cancel` requests;
//! - `sluice_postgres_transactions_total{listener,end}`: explicit transactions that ended in
//!   `commit` or `rollback` (from ReadyForQuery's status and the ending statement's tag);
//! - `sluice_postgres_sql_parse_fallbacks_total{listener}`: statements sqlparser could not
//!   parse (their tables came from the keyword scan);
//! - `sluice_postgres_decode_errors_total{listener,direction}`.
//!
//! Label values come from fixed lists or capped sets, so the series count stays bounded
//! whatever clients send. Handles are registered on first use, then cost an atomic add.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use metrics::{Counter, Unit};

use crate::op::Protocol;
use crate::sql::stats::{RowsHistogram, TableCounters};
use crate::sql::Verb;
use crate::stats::{read, write, OpCounters};

pub const TABLE_OPS_TOTAL: &str = "sluice_postgres_table_ops_total";
pub const ERRORS_TOTAL: &str = "sluice_postgres_errors_total";
pub const ROWS: &str = "sluice_postgres_rows";
const ROWS_HELP: &str = "Rows returned (kind=returned) or affected per PostgreSQL statement.";
pub const SESSIONS_TOTAL: &str = "sluice_postgres_sessions_total";
pub const TRANSACTIONS_TOTAL: &str = "sluice_postgres_transactions_total";
pub const PARSE_FALLBACKS_TOTAL: &str = "sluice_postgres_sql_parse_fallbacks_total";
pub const DECODE_ERRORS_TOTAL: &str = "sluice_postgres_decode_errors_total";

/// Registers help texts; call once at start-up.
pub fn describe() {
    metrics::describe_counter!(TABLE_OPS_TOTAL, Unit::Count, "PostgreSQL statements by table touched and op.");
    metrics::describe_counter!(ERRORS_TOTAL, Unit::Count, "PostgreSQL ErrorResponses by SQLSTATE class.");
    metrics::describe_counter!(SESSIONS_TOTAL, Unit::Count, "PostgreSQL sessions by login outcome or encryption.");
    metrics::describe_counter!(TRANSACTIONS_TOTAL, Unit::Count, "PostgreSQL explicit transactions by how they ended.");
    metrics::describe_counter!(PARSE_FALLBACKS_TOTAL, Unit::Count, "SQL statements sqlparser could not parse.");
    metrics::describe_counter!(DECODE_ERRORS_TOTAL, Unit::Count, "PostgreSQL messages that could not be decoded.");
}

/// The op name of a FunctionCall message (the fast-path interface, protocol §55.2.8).
pub const FUNCTION_CALL: &str = "FUNCTION_CALL";

/// Every op name a `postgres` listener reports.
pub fn op_names() -> impl Iterator<Item = &'static str> {
    Verb::ALL.iter().map(|v| v.as_str()).chain([FUNCTION_CALL])
}

/// What a statement is counted as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpName {
    Verb(Verb),
    FunctionCall,
}

impl OpName {
    pub fn as_str(self) -> &'static str {
        match self {
            OpName::Verb(v) => v.as_str(),
            OpName::FunctionCall => FUNCTION_CALL,
        }
    }

    fn index(self) -> usize {
        match self {
            OpName::Verb(v) => Verb::ALL.iter().position(|x| *x == v).unwrap_or(0),
            OpName::FunctionCall => Verb::ALL.len(),
        }
    }
}

pub struct PostgresStats {
    listener: String,
    /// Indexed by [`OpName::index`].
    ops: Box<[OnceLock<OpCounters>]>,
    pub tables: TableCounters,
    errors: RwLock<HashMap<[u8; 2], Counter>>,
    pub rows_returned: Arc<RowsHistogram>,
    pub rows_affected: Arc<RowsHistogram>,
    pub logins_ok: Counter,
    pub logins_failed: Counter,
    pub tls_sessions: Counter,
    pub gss_sessions: Counter,
    pub tls_terminated_sessions: Counter,
    pub cancel_requests: Counter,
    pub commits: Counter,
    pub rollbacks: Counter,
    pub parse_fallbacks: Counter,
    pub client_decode_errors: Counter,
    pub server_decode_errors: Counter,
}

impl PostgresStats {
    pub fn new(listener: &str, max_tables: usize) -> Self {
        let l = || listener.to_owned();
        let sessions =
            |outcome: &'static str| metrics::counter!(SESSIONS_TOTAL, "listener" => l(), "outcome" => outcome);
        let transactions = |end: &'static str| metrics::counter!(TRANSACTIONS_TOTAL, "listener" => l(), "end" => end);
        PostgresStats {
            ops: (0..=Verb::ALL.len()).map(|_| OnceLock::new()).collect(),
            tables: TableCounters::new(TABLE_OPS_TOTAL, listener, max_tables),
            errors: RwLock::default(),
            rows_returned: RowsHistogram::register(ROWS, ROWS_HELP, listener, "returned"),
            rows_affected: RowsHistogram::register(ROWS, ROWS_HELP, listener, "affected"),
            logins_ok: sessions("ok"),
            logins_failed: sessions("failed"),
            tls_sessions: sessions("tls"),
            gss_sessions: sessions("gss"),
            tls_terminated_sessions: sessions("tls_terminated"),
            cancel_requests: sessions("cancel"),
            commits: transactions("commit"),
            rollbacks: transactions("rollback"),
            parse_fallbacks: metrics::counter!(PARSE_FALLBACKS_TOTAL, "listener" => l()),
            client_decode_errors: metrics::counter!(DECODE_ERRORS_TOTAL, "listener" => l(), "direction" => "client"),
            server_decode_errors: metrics::counter!(DECODE_ERRORS_TOTAL, "listener" => l(), "direction" => "server"),
            listener: listener.to_owned(),
        }
    }

    /// The op counters of an op name.
    pub fn op(&self, name: OpName) -> &OpCounters {
        self.ops[name.index()].get_or_init(|| OpCounters::new(&self.listener, Protocol::Postgres, name.as_str()))
    }

    /// Counts an ErrorResponse by its SQLSTATE's class.
    pub fn error(&self, sqlstate: &[u8]) {
        let class = match sqlstate {
            [a, b, rest @ ..]
                if rest.len() == 3 && sqlstate.iter().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) =>
            {
                [*a, *b]
            }
            // Two bytes that are no class: `other`.
            _ => *b"??",
        };
        if let Some(counter) = read(&self.errors).get(&class) {
            counter.increment(1);
            return;
        }
        // At most 36 × 36 classes plus `other`: bounded without a cap.
        write(&self.errors)
            .entry(class)
            .or_insert_with(|| {
                let label = match &class {
                    b"??" => "other".to_owned(),
                    _ => String::from_utf8_lossy(&class).into_owned(),
                };
                metrics::counter!(ERRORS_TOTAL, "listener" => self.listener.clone(), "class" => label)
            })
            .increment(1);
    }
}
