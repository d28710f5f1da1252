//! The `mysql` filter's stats, shared by every connection of a listener:
//! `sluice_ops_total` / `sluice_op_duration_seconds` per op (label `op`: the SQL verb of a
//! statement, or the `COM_` name of any other command), plus
//!
//! - `sluice_mysql_table_ops_total{listener,table,op}`: statements per table touched, for
//!   the first `max_tables` distinct tables (the rest `other`);
//! - `sluice_mysql_errors_total{listener,code}`: ERR packets by error code (the first
//!   [`MAX_ERROR_CODES`] distinct codes, the rest `other`);
//! - `sluice_mysql_rows{listener,kind}`: histogram of rows returned / affected per command,
//!   kept here with fixed buckets (one atomic add per sample, no memory growing between
//!   scrapes, as for the op latency histogram) and appended to `/metrics` by [`render`];
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
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use metrics::{Counter, Unit};
use sluice_codecs::mysql::CommandKind;

use crate::op::Protocol;
use crate::sql::Verb;
use crate::stats::OpCounters;

pub const TABLE_OPS_TOTAL: &str = "sluice_mysql_table_ops_total";
pub const ERRORS_TOTAL: &str = "sluice_mysql_errors_total";
pub const ROWS: &str = "sluice_mysql_rows";
pub const SESSIONS_TOTAL: &str = "sluice_mysql_sessions_total";
pub const PARSE_FALLBACKS_TOTAL: &str = "sluice_mysql_sql_parse_fallbacks_total";
pub const DECODE_ERRORS_TOTAL: &str = "sluice_mysql_decode_errors_total";

/// Distinct error codes with their own series.
pub const MAX_ERROR_CODES: usize = 256;
/// The default number of distinct tables with their own series.
pub const DEFAULT_MAX_TABLES: usize = 256;

/// The bucket bounds of [`ROWS`] (rows per command).
pub const ROW_BUCKETS: [f64; 10] = [0.0, 1.0, 5.0, 10.0, 50.0, 100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0];

/// The same bounds as integers, for comparing without floating point.
const ROW_BOUNDS: [u64; ROW_BUCKETS.len()] = {
    let mut out = [0; ROW_BUCKETS.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = ROW_BUCKETS[i] as u64;
        i += 1;
    }
    out
};

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
    max_tables: usize,
    tables: RwLock<HashMap<(Arc<str>, &'static str), Counter>>,
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
            max_tables,
            tables: RwLock::default(),
            errors: RwLock::default(),
            rows_returned: RowsHistogram::register(listener, "returned"),
            rows_affected: RowsHistogram::register(listener, "affected"),
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

    /// The counter of statements with verb `op` touching `table` (registered on first use;
    /// past `max_tables` distinct tables, the `other` counter).
    pub fn table(&self, table: &Arc<str>, op: &'static str) -> Counter {
        let key = (Arc::clone(table), op);
        if let Some(counter) = read(&self.tables).get(&key) {
            return counter.clone();
        }
        let mut tables = write(&self.tables);
        let distinct = tables.keys().filter(|(t, o)| *o == op && &**t != "other").count();
        let key = if tables.contains_key(&key) || distinct < self.max_tables { key } else { ("other".into(), op) };
        tables
            .entry(key)
            .or_insert_with_key(|(table, op)| {
                metrics::counter!(TABLE_OPS_TOTAL, "listener" => self.listener.clone(), "table" => table.to_string(), "op" => *op)
            })
            .clone()
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

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One `sluice_mysql_rows` series: rows per command for a listener and kind.
pub struct RowsHistogram {
    /// The rendered label set, `listener="…",kind="…"`.
    labels: String,
    /// Samples per bucket (not cumulative); the last slot is `+Inf`.
    buckets: [AtomicU64; ROW_BUCKETS.len() + 1],
    count: AtomicU64,
    sum: AtomicU64,
}

impl RowsHistogram {
    /// The series for these labels, registered on first use and rendered from then on.
    pub fn register(listener: &str, kind: &str) -> Arc<Self> {
        let labels = format!(r#"listener="{}",kind="{kind}""#, listener.replace('\\', r"\\").replace('"', "\\\""));
        let mut registry = rows_registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = registry.iter().find(|h| h.labels == labels) {
            return existing.clone();
        }
        let histogram = Arc::new(RowsHistogram {
            labels,
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        });
        registry.push(histogram.clone());
        histogram
    }

    pub fn record(&self, rows: u64) {
        let bucket = ROW_BOUNDS.iter().position(|&b| rows <= b).unwrap_or(ROW_BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(rows, Ordering::Relaxed);
    }
}

fn rows_registry() -> &'static Mutex<Vec<Arc<RowsHistogram>>> {
    static REGISTRY: Mutex<Vec<Arc<RowsHistogram>>> = Mutex::new(Vec::new());
    &REGISTRY
}

/// Appends every `sluice_mysql_rows` series in the Prometheus text format.
pub fn render(out: &mut String) {
    let histograms = rows_registry().lock().unwrap_or_else(|e| e.into_inner());
    if histograms.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP {ROWS} Rows returned (kind=returned) or affected per MySQL command.\n# TYPE {ROWS} histogram"
    );
    for h in histograms.iter() {
        let mut cumulative = 0;
        for (i, bucket) in h.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = match ROW_BUCKETS.get(i) {
                Some(le) => writeln!(out, "{ROWS}_bucket{{{},le=\"{le}\"}} {cumulative}", h.labels),
                None => writeln!(out, "{ROWS}_bucket{{{},le=\"+Inf\"}} {cumulative}", h.labels),
            };
        }
        let _ = writeln!(out, "{ROWS}_sum{{{}}} {}", h.labels, h.sum.load(Ordering::Relaxed));
        let _ = writeln!(out, "{ROWS}_count{{{}}} {}", h.labels, h.count.load(Ordering::Relaxed));
    }
}
