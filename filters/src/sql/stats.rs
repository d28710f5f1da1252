//! Stats every SQL protocol filter keeps the same way, whatever its wire protocol:
//!
//! - [`TableCounters`]: statements per table touched and op (`sluice_<protocol>_table_ops_total`),
//!   for the first `max_tables` distinct tables of a listener (the rest `other`), so the
//!   series count stays bounded whatever clients send; [`ConnectionTables`] keeps a
//!   connection's recent handles at hand so a repeated statement counts its tables without
//!   the listener-wide lock and hash.
//! - [`RowsHistogram`]: rows returned / affected per statement (`sluice_<protocol>_rows`),
//!   kept here with fixed buckets — one atomic add per sample, no memory growing between
//!   scrapes, as for the op latency histogram — and appended to `/metrics` by [`render`].

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use metrics::Counter;

use super::StatementInfo;
use crate::stats::{read, write};

/// The default number of distinct tables with their own series.
pub const DEFAULT_MAX_TABLES: usize = 256;

/// The bucket bounds of the rows histograms (rows per statement).
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

/// One listener's per-table op counters.
pub struct TableCounters {
    metric: &'static str,
    /// The label naming the table (`table`; `collection` for MongoDB).
    label: &'static str,
    listener: String,
    max_tables: usize,
    tables: RwLock<HashMap<(Arc<str>, &'static str), Counter>>,
}

impl TableCounters {
    pub fn new(metric: &'static str, listener: &str, max_tables: usize) -> Self {
        Self::with_label(metric, "table", listener, max_tables)
    }

    /// Counters whose table label is called `label`.
    pub fn with_label(metric: &'static str, label: &'static str, listener: &str, max_tables: usize) -> Self {
        TableCounters { metric, label, listener: listener.to_owned(), max_tables, tables: RwLock::default() }
    }

    /// The counter of statements with verb `op` touching `table` (registered on first use;
    /// past `max_tables` distinct tables, the `other` counter).
    pub fn get(&self, table: &Arc<str>, op: &'static str) -> Counter {
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
                metrics::counter!(self.metric, "listener" => self.listener.clone(), self.label => table.to_string(), "op" => *op)
            })
            .clone()
    }
}

/// Table counters a connection keeps at hand.
const TABLE_COUNTERS_KEPT: usize = 32;

/// The table counters one connection used last. Statements come from the listener's
/// statement cache, so the same `Arc<str>` table names recur and are found by pointer.
#[derive(Default)]
pub struct ConnectionTables {
    kept: Vec<(Arc<str>, &'static str, Counter)>,
}

impl ConnectionTables {
    /// Counts one statement with verb `op` against each table it touches.
    pub fn count(&mut self, shared: &TableCounters, statement: &StatementInfo, op: &'static str) {
        for table in statement.tables.iter() {
            let kept = self.kept.iter().find(|(t, o, _)| Arc::ptr_eq(t, table) && std::ptr::eq(*o, op));
            let counter = match kept {
                Some((_, _, counter)) => counter,
                None => {
                    if self.kept.len() >= TABLE_COUNTERS_KEPT {
                        let _evicted = self.kept.remove(0);
                    }
                    self.kept.push((Arc::clone(table), op, shared.get(table, op)));
                    &self.kept[self.kept.len() - 1].2
                }
            };
            counter.increment(1);
        }
    }
}

/// One rows histogram series: rows per statement for a listener and kind.
pub struct RowsHistogram {
    metric: &'static str,
    help: &'static str,
    /// The rendered label set, `listener="…",kind="…"`.
    labels: String,
    /// Samples per bucket (not cumulative); the last slot is `+Inf`.
    buckets: [AtomicU64; ROW_BUCKETS.len() + 1],
    count: AtomicU64,
    sum: AtomicU64,
}

impl RowsHistogram {
    /// The series `metric{listener, kind}`, registered on first use and rendered from then on.
    pub fn register(metric: &'static str, help: &'static str, listener: &str, kind: &str) -> Arc<Self> {
        let labels = format!(r#"listener="{}",kind="{kind}""#, listener.replace('\\', r"\\").replace('"', "\\\""));
        let mut registry = rows_registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = registry.iter().find(|h| h.metric == metric && h.labels == labels) {
            return existing.clone();
        }
        let histogram = Arc::new(RowsHistogram {
            metric,
            help,
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

/// Appends every rows histogram series in the Prometheus text format, grouped by metric.
pub fn render(out: &mut String) {
    let histograms = rows_registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut metrics: Vec<(&'static str, &'static str)> = histograms.iter().map(|h| (h.metric, h.help)).collect();
    metrics.sort_unstable();
    metrics.dedup_by_key(|(metric, _)| *metric);
    for (metric, help) in metrics {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} histogram");
        for h in histograms.iter().filter(|h| h.metric == metric) {
            let mut cumulative = 0;
            for (i, bucket) in h.buckets.iter().enumerate() {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = match ROW_BUCKETS.get(i) {
                    Some(le) => writeln!(out, "{metric}_bucket{{{},le=\"{le}\"}} {cumulative}", h.labels),
                    None => writeln!(out, "{metric}_bucket{{{},le=\"+Inf\"}} {cumulative}", h.labels),
                };
            }
            let _ = writeln!(out, "{metric}_sum{{{}}} {}", h.labels, h.sum.load(Ordering::Relaxed));
            let _ = writeln!(out, "{metric}_count{{{}}} {}", h.labels, h.count.load(Ordering::Relaxed));
        }
    }
}
