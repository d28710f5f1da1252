//! The `mysql` filter's stats, shared by every connection of a listener:
//! `sluice_ops_total` / `sluice_op_duration_seconds` per op (label `op`: the SQL verb of a
//! statement, or the `COM_` name of any other command), plus
//!
//! - `sluice_mysql_table_ops_total{listener,table,op}`: statements per table touched, for
//!   the first `max_tables` distinct tables (the rest `other`; the shared [`TableCounters`]);
//! - `sluice_mysql_errors_total{listener,code}`: ERR packets by error code (the first
//!   [`MAX_ERROR_CODES`] distinct codes, the rest `other`);
//! - `sluice_mysql_rows{listener,kind}`: histogram of rows returned / affected per command
//!   (the shared [`RowsHistogram`]);
//! - `sluice_mysql_sessions_total{listener,outcome}`: logins `ok`, `failed`, sessions
//!   that went `tls` or `compressed` (opaque to the filter), and `tls_terminated` ones
//!   (TLS answered by sluice itself, so the filter still sees every packet);
//! - `sluice_mysql_sql_parse_fallbacks_total{listener}`: statements sqlparser could not
//!   parse (their tables came from the keyword scan);
//! - `sluice_mysql_decode_errors_total{listener,direction}`.
//!
//! Label values come from fixed lists or capped sets, so the series count stays bounded
//! whatever clients send. Handles are registered on first use, then cost an atomic add.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use metrics::{Counter, Unit};
use sluice_codecs::mysql::CommandKind;

use crate::op::Protocol;
use crate::sql::stats::{RowsHistogram, TableCounters};
use crate::sql::Verb;
use crate::stats::{read, write, OpCounters};

pub const TABLE_OPS_TOTAL: &str = "sluice_mysql_table_ops_total";
pub const ERRORS_TOTAL: &str = "sluice_mysql_errors_total";
pub const ROWS: &str = "sluice_mysql_rows";
const ROWS_HELP: &str = "Rows returned (kind=returned) or affected per MySQL command.";
pub const SESSIONS_TOTAL: &str = "sluice_mysql_sessions_total";
pub const PARSE_FALLBACKS_TOTAL: &str = "sluice_mysql_sql_parse_fallbacks_total";
pub const DECODE_ERRORS_TOTAL: &str = "sluice_mysql_decode_errors_total";

/// Distinct error codes with their own series.
pub const MAX_ERROR_CODES: usize = 256;
pub use crate::sql::stats::DEFAULT_MAX_TABLES;

/// Registers help texts; call once at start-up.
pub fn describe() {
    metrics::describe_counter!(TABLE_OPS_TOTAL, Unit::Count, "MySQL statements by table touched and op.");
    metrics::describe_counter!(ERRORS_TOTAL, Unit::Count, "MySQL ERR packets by error code.");
    metrics::describe_counter!(SESSIONS_TOTAL, Unit::Count, "MySQL sessions by login outcome or opaque mode.");
    metrics::describe_counter!(PARSE_FALLBACKS_TOTAL, Unit::Count, "SQL statements sqlparser could not parse.");
    metrics::describe_counter!(DECODE_ERRORS_TOTAL, Unit::Count, "MySQL packets that could not be decoded.");
}

/// Every op name a `mysql` listener reports: the SQL verbs and the command names.
pub fn op_names() -> impl Iterator<Item = &'static str> {
    Verb::ALL.iter().map(|v| v.as_str()).chain(COMMAND_KINDS.iter().map(|k| k.name()))
}

const COMMAND_KINDS: [CommandKind; 18] = [
    CommandKind::Quit,
    CommandKind::InitDb,
    CommandKind::Query,
    CommandKind::FieldList,
    CommandKind::Statistics,
    CommandKind::ProcessKill,
    CommandKind::Ping,
    CommandKind::ChangeUser,
    CommandKind::StmtPrepare,
    CommandKind::StmtExecute,
    CommandKind::StmtSendLongData,
    CommandKind::StmtClose,
    CommandKind::StmtReset,
    CommandKind::SetOption,
    CommandKind::StmtFetch,
    CommandKind::ResetConnection,
    CommandKind::StmtBulkExecute,
    CommandKind::Other(0),
];

pub struct MysqlStats {
    listener: String,
    /// Indexed by [`op_index`].
    ops: Box<[OnceLock<OpCounters>]>,
    pub tables: TableCounters,
    errors: RwLock<HashMap<u16, Counter>>,
    pub rows_returned: Arc<RowsHistogram>,
    pub rows_affected: Arc<RowsHistogram>,
    pub logins_ok: Counter,
    pub logins_failed: Counter,
    pub tls_sessions: Counter,
    pub tls_terminated_sessions: Counter,
    pub compressed_sessions: Counter,
    pub parse_fallbacks: Counter,
    pub client_decode_errors: Counter,
    pub server_decode_errors: Counter,
}

/// Where an op's counters sit: the verbs first, then the command kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpName {
    Verb(Verb),
    Command(CommandKind),
}

impl OpName {
    pub fn as_str(self) -> &'static str {
        match self {
            OpName::Verb(v) => v.as_str(),
            OpName::Command(k) => k.name(),
        }
    }

    fn index(self) -> usize {
        match self {
            OpName::Verb(v) => Verb::ALL.iter().position(|x| *x == v).unwrap_or(0),
            OpName::Command(k) => {
                let k = if let CommandKind::Other(_) = k { CommandKind::Other(0) } else { k };
                Verb::ALL.len() + COMMAND_KINDS.iter().position(|x| *x == k).unwrap_or(COMMAND_KINDS.len() - 1)
            }
        }
    }
}

impl MysqlStats {
    pub fn new(listener: &str, max_tables: usize) -> Self {
        let l = || listener.to_owned();
        let sessions =
            |outcome: &'static str| metrics::counter!(SESSIONS_TOTAL, "listener" => l(), "outcome" => outcome);
        MysqlStats {
            ops: (0..Verb::ALL.len() + COMMAND_KINDS.len()).map(|_| OnceLock::new()).collect(),
            tables: TableCounters::new(TABLE_OPS_TOTAL, listener, max_tables),
            errors: RwLock::default(),
            rows_returned: RowsHistogram::register(ROWS, ROWS_HELP, listener, "returned"),
            rows_affected: RowsHistogram::register(ROWS, ROWS_HELP, listener, "affected"),
            logins_ok: sessions("ok"),
            logins_failed: sessions("failed"),
            tls_sessions: sessions("tls"),
            tls_terminated_sessions: sessions("tls_terminated"),
            compressed_sessions: sessions("compressed"),
            parse_fallbacks: metrics::counter!(PARSE_FALLBACKS_TOTAL, "listener" => l()),
            client_decode_errors: metrics::counter!(DECODE_ERRORS_TOTAL, "listener" => l(), "direction" => "client"),
            server_decode_errors: metrics::counter!(DECODE_ERRORS_TOTAL, "listener" => l(), "direction" => "server"),
            listener: listener.to_owned(),
        }
    }

    /// The op counters of an op name.
    pub fn op(&self, name: OpName) -> &OpCounters {
        self.ops[name.index()].get_or_init(|| OpCounters::new(&self.listener, Protocol::Mysql, name.as_str()))
    }

    /// Counts an ERR packet by its code.
    pub fn error(&self, code: u16) {
        if let Some(counter) = read(&self.errors).get(&code) {
            counter.increment(1);
            return;
        }
        let mut errors = write(&self.errors);
        // Code 0 stands for `other` once the cap is reached.
        let key = if errors.contains_key(&code) || errors.len() < MAX_ERROR_CODES { code } else { 0 };
        errors
            .entry(key)
            .or_insert_with(|| {
                let label = if key == 0 { "other".to_owned() } else { key.to_string() };
                metrics::counter!(ERRORS_TOTAL, "listener" => self.listener.clone(), "code" => label)
            })
            .increment(1);
    }
}
