//! Per-listener statistics per statement digest — what MySQL's
//! `performance_schema.events_statements_summary_by_digest` and PostgreSQL's
//! `pg_stat_statements` show, seen from the proxy: per digest, its text, verb and tables,
//! and how often it ran, failed, how long it took (total and max) and how many rows it
//! returned or changed.
//!
//! Bounded: at most `max_entries` digests (default [`DEFAULT_MAX_DIGESTS`]); once full,
//! new digests are counted in one `other` entry ([`DigestTable::overflow`]) instead of
//! evicting old ones, so counts never silently restart. A digest whose hash matches an
//! entry with another text (a 64-bit collision) also goes to `other`, so one entry never
//! mixes two statements.
//!
//! Shared by the worker threads, so `record` must be cheap and contention-light. The table
//! is 16 shards, each a `Mutex` around a map, and the digest hash picks the shard: a record
//! is one uncontended lock, one hash lookup and a few adds, and two workers only meet when
//! their statements land in the same shard at the same instant. Per-worker tables merged
//! on read would avoid even that, but need a worker identity this crate does not have and
//! multiply memory by the worker count; atomics per entry would still need a lock to insert.
//! The entry count is one `AtomicUsize`, touched only when a digest is new. Reads (`top`)
//! lock one shard at a time and copy (`Arc` clones), so the admin endpoint never stalls all
//! workers at once. Callers own the table (`Arc<DigestTable>`); there is no global state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::classify::StatementInfo;
use super::hash::DigestKeyState;
use super::verb::Verb;

/// Default bound on distinct digests per table.
pub const DEFAULT_MAX_DIGESTS: usize = 5000;

const SHARDS: usize = 16;

/// One digest's statistics, as [`DigestTable::top`] reports them. Plain data: the admin
/// layer serializes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestRow {
    /// The digest hash; 0 for the `other` entry.
    pub digest_hash: u64,
    /// The digest text; `other` for the `other` entry.
    pub digest_text: Arc<str>,
    pub verb: Verb,
    pub tables: Arc<[Arc<str>]>,
    /// Executions recorded.
    pub count: u64,
    /// Executions that ended in an error.
    pub errors: u64,
    pub total_latency: Duration,
    pub max_latency: Duration,
    /// Rows returned or affected, summed.
    pub rows: u64,
}

impl DigestRow {
    fn new(info: &StatementInfo) -> DigestRow {
        DigestRow {
            digest_hash: info.digest_hash,
            digest_text: Arc::clone(&info.digest_text),
            verb: info.verb,
            tables: Arc::clone(&info.tables),
            count: 0,
            errors: 0,
            total_latency: Duration::ZERO,
            max_latency: Duration::ZERO,
            rows: 0,
        }
    }

    fn other() -> DigestRow {
        DigestRow {
            digest_hash: 0,
            digest_text: Arc::from("other"),
            verb: Verb::Other,
            tables: Arc::from([]),
            count: 0,
            errors: 0,
            total_latency: Duration::ZERO,
            max_latency: Duration::ZERO,
            rows: 0,
        }
    }

    fn add(&mut self, latency: Duration, rows: u64, error: bool) {
        self.count = self.count.saturating_add(1);
        self.errors = self.errors.saturating_add(u64::from(error));
        self.total_latency = self.total_latency.saturating_add(latency);
        self.max_latency = self.max_latency.max(latency);
        self.rows = self.rows.saturating_add(rows);
    }

    fn merge(&mut self, other: &DigestRow) {
        self.count = self.count.saturating_add(other.count);
        self.errors = self.errors.saturating_add(other.errors);
        self.total_latency = self.total_latency.saturating_add(other.total_latency);
        self.max_latency = self.max_latency.max(other.max_latency);
        self.rows = self.rows.saturating_add(other.rows);
    }
}

/// What [`DigestTable::top`] sorts by (largest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestOrder {
    Count,
    TotalLatency,
}

struct Shard {
    rows: HashMap<u64, DigestRow, DigestKeyState>,
    other: DigestRow,
}

/// Bounded per-digest statistics (see the module doc).
pub struct DigestTable {
    shards: Box<[Mutex<Shard>]>,
    entries: AtomicUsize,
    max_entries: usize,
}

impl Default for DigestTable {
    fn default() -> Self {
        DigestTable::new(DEFAULT_MAX_DIGESTS)
    }
}

impl DigestTable {
    pub fn new(max_entries: usize) -> DigestTable {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard { rows: HashMap::with_hasher(DigestKeyState::default()), other: DigestRow::other() })
            })
            .collect();
        DigestTable { shards, entries: AtomicUsize::new(0), max_entries }
    }

    /// Counts one execution of `info`'s statement.
    pub fn record(&self, info: &StatementInfo, latency: Duration, rows: u64, error: bool) {
        let mut shard = self.lock(info.digest_hash);
        let shard = &mut *shard;
        if let Some(row) = shard.rows.get_mut(&info.digest_hash) {
            let same_text = Arc::ptr_eq(&row.digest_text, &info.digest_text) || row.digest_text == info.digest_text;
            let row = if same_text { row } else { &mut shard.other };
            row.add(latency, rows, error);
            return;
        }
        if self.entries.fetch_add(1, Ordering::Relaxed) >= self.max_entries {
            self.entries.fetch_sub(1, Ordering::Relaxed);
            shard.other.add(latency, rows, error);
            return;
        }
        shard.rows.entry(info.digest_hash).or_insert_with(|| DigestRow::new(info)).add(latency, rows, error);
    }

    /// The `n` digests with the largest `order` key, largest first (ties by digest hash, so
    /// the order is stable). The `other` entry is not among them: see [`overflow`](Self::overflow).
    pub fn top(&self, n: usize, order: DigestOrder) -> Vec<DigestRow> {
        let mut rows: Vec<DigestRow> = Vec::new();
        for shard in self.shards.iter() {
            rows.extend(lock(shard).rows.values().cloned());
        }
        let key = |row: &DigestRow| match order {
            DigestOrder::Count => (u128::from(row.count), row.total_latency.as_nanos()),
            DigestOrder::TotalLatency => (row.total_latency.as_nanos(), u128::from(row.count)),
        };
        rows.sort_unstable_by(|a, b| key(b).cmp(&key(a)).then(a.digest_hash.cmp(&b.digest_hash)));
        rows.truncate(n);
        rows
    }

    /// The `other` entry: executions of digests that found the table full (or collided).
    pub fn overflow(&self) -> DigestRow {
        let mut total = DigestRow::other();
        for shard in self.shards.iter() {
            total.merge(&lock(shard).other);
        }
        total
    }

    /// Distinct digests held (not counting `other`).
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed).min(self.max_entries)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every digest and the `other` counts.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let removed = shard.rows.len();
            shard.rows.clear();
            shard.other = DigestRow::other();
            self.entries.fetch_sub(removed, Ordering::Relaxed);
        }
    }

    fn lock(&self, hash: u64) -> MutexGuard<'_, Shard> {
        // High bits: the maps inside use the low ones. In range: `shards` has SHARDS entries.
        lock(&self.shards[(hash >> 40) as usize % SHARDS])
    }
}

/// Counters stay consistent through a panic elsewhere: every update completes in place.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[path = "tests/digest_table.rs"]
mod tests;
