//! Everything a SQL filter wants to know about a statement, as one [`StatementInfo`], and
//! the caches that make it cheap: statements repeat (the same prepared and ORM statements
//! over and over), so the verb, tables and flags are computed — sqlparser included — once
//! per distinct digest, and every later execution costs one normalize pass plus a hash
//! lookup.
//!
//! Why a digest is a sound cache key: the digest text keeps every token of the statement
//! except literal values, comments and spacing, and the lexer that makes it follows the
//! server's lexical rules; so two statements with the same digest text differ only in
//! values, and have the same verb, tables and flags. A hit compares the digest text, not
//! just its hash, so a hash collision (which an attacker could construct) is a miss, never
//! someone else's tables. Statements longer than [`MAX_DIGEST_INPUT`] are never cached:
//! their digest covers only a prefix, and two of them that differ past it must not share
//! tables.
//!
//! Two caches, one engine:
//! - [`StatementCache`]: single-owner (`&mut self`), no locking; for a connection or
//!   anything else that lives on one thread.
//! - [`SharedStatementCache`]: per listener, shared by the worker threads: shards of
//!   `Mutex<StatementCache>`, the digest hash choosing the shard, so two workers rarely
//!   want the same lock and a lock is held only for a lookup or an insert — never while
//!   sqlparser runs. One cache per listener rather than per connection keeps memory
//!   independent of the connection count and spares short-lived connections from parsing
//!   every statement again.
//!
//! Both are bounded in entries and in text bytes ([`CacheLimits`]). Eviction is CLOCK
//! (second chance): a hit sets an entry's reference bit; to make room the hand sweeps the
//! entries, clearing set bits and evicting the first entry whose bit is clear. It keeps
//! the hot working set like LRU does, at the price of one bit write per hit instead of a
//! list relink, and a burst of one-off statements (new entries start unreferenced) evicts
//! itself before it evicts the hot set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::hash::DigestKeyState;
use super::lexer::{Lexer, TokenKind};
use super::normalize::{normalize, Digest, MAX_DIGEST_INPUT};
use super::split::{is_blank, split_statements};
use super::tables::tables;
use super::verb::{verb, Verb};
use super::Dialect;

/// What one statement (or multi-statement string) is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementInfo {
    pub verb: Verb,
    /// Tables touched, in order of first appearance (see `tables`).
    pub tables: Arc<[Arc<str>]>,
    pub digest_hash: u64,
    pub digest_text: Arc<str>,
    /// The tables come from the keyword scan: sqlparser could not parse the statement.
    pub parse_fallback: bool,
    /// The statement was longer than the digest or table scan looks: the digest covers a
    /// prefix and tables past the scan limit are missing.
    pub truncated: bool,
    pub flags: StatementFlags,
}

/// Statement properties worth a rule or a counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatementFlags {
    /// An `UPDATE` or `DELETE` with no `WHERE` outside parentheses: it touches every row.
    pub delete_or_update_without_where: bool,
    /// The text holds more than one non-blank statement (`SELECT 1; SELECT 2`); verb and
    /// flags describe the first, tables cover all.
    pub multiple_statements: bool,
}

impl StatementInfo {
    /// Classifies `sql` with no cache: normalize, verb, tables (sqlparser) and flags.
    pub fn analyze(sql: &[u8], dialect: Dialect) -> StatementInfo {
        let mut digest_text = String::new();
        let digest = normalize(sql, dialect, &mut digest_text);
        StatementInfo::analyze_normalized(sql, dialect, digest, &digest_text)
    }

    /// What a cache miss runs, given the digest `normalize` already made.
    fn analyze_normalized(sql: &[u8], dialect: Dialect, digest: Digest, digest_text: &str) -> StatementInfo {
        let verb = verb(sql, dialect);
        let scan = tables(sql, dialect);
        let considered = sql.get(..MAX_DIGEST_INPUT).unwrap_or(sql);
        let flags = StatementFlags {
            delete_or_update_without_where: matches!(verb, Verb::Update | Verb::Delete)
                && !has_where(considered, dialect),
            multiple_statements: split_statements(considered, dialect)
                .filter(|piece| considered.get(piece.clone()).is_some_and(|text| !is_blank(text, dialect)))
                .nth(1)
                .is_some(),
        };
        StatementInfo {
            verb,
            tables: scan.tables.into_iter().map(Arc::from).collect(),
            digest_hash: digest.hash,
            digest_text: Arc::from(digest_text),
            parse_fallback: scan.fallback,
            truncated: digest.truncated || scan.truncated,
            flags,
        }
    }

    /// Bytes this entry holds in a cache (text, table names, the struct), for the budget.
    fn cached_bytes(&self) -> usize {
        let tables: usize = self.tables.iter().map(|t| t.len() + std::mem::size_of::<Arc<str>>()).sum();
        self.digest_text.len() + tables + std::mem::size_of::<StatementInfo>()
    }
}

/// Is there a `WHERE` outside parentheses in the first statement?
fn has_where(sql: &[u8], dialect: Dialect) -> bool {
    let mut depth = 0usize;
    for token in Lexer::new(sql, dialect) {
        match token.kind {
            TokenKind::Punct if token.is_punct(b'(') => depth += 1,
            TokenKind::Punct if token.is_punct(b')') => depth = depth.saturating_sub(1),
            TokenKind::Punct if token.is_punct(b';') && depth == 0 => return false,
            TokenKind::Word if depth == 0 && token.text.eq_ignore_ascii_case(b"WHERE") => return true,
            _ => {}
        }
    }
    false
}

/// Bounds of a statement cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    pub max_entries: usize,
    /// Digest text, table names and per-entry overhead, summed. An entry larger than a
    /// quarter of this is not cached.
    pub max_bytes: usize,
}

impl CacheLimits {
    /// For a [`SharedStatementCache`] serving one listener.
    pub const PER_LISTENER: CacheLimits = CacheLimits { max_entries: 4096, max_bytes: 4 << 20 };
    /// For a [`StatementCache`] owned by one connection.
    pub const PER_CONNECTION: CacheLimits = CacheLimits { max_entries: 64, max_bytes: 64 << 10 };
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits::PER_LISTENER
    }
}

struct Slot {
    info: Arc<StatementInfo>,
    bytes: usize,
    referenced: bool,
}

/// A single-owner statement cache (see the module doc).
pub struct StatementCache {
    dialect: Dialect,
    limits: CacheLimits,
    /// Digest hash → index in `slots`.
    index: HashMap<u64, usize, DigestKeyState>,
    slots: Vec<Slot>,
    hand: usize,
    bytes: usize,
}

impl StatementCache {
    pub fn new(dialect: Dialect, limits: CacheLimits) -> StatementCache {
        StatementCache {
            dialect,
            limits,
            index: HashMap::with_hasher(DigestKeyState::default()),
            slots: Vec::new(),
            hand: 0,
            bytes: 0,
        }
    }

    /// Classifies `sql`, from the cache when its digest was seen before. `scratch` holds
    /// the digest text while looking up; reuse it across calls so that a hit allocates
    /// nothing.
    pub fn classify(&mut self, sql: &[u8], scratch: &mut String) -> Arc<StatementInfo> {
        let digest = normalize(sql, self.dialect, scratch);
        if let Some(hit) = self.get(digest.hash, scratch) {
            return hit;
        }
        let info = Arc::new(StatementInfo::analyze_normalized(sql, self.dialect, digest, scratch));
        self.insert(&info);
        info
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The bytes the cached entries account for (see [`CacheLimits::max_bytes`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn get(&mut self, hash: u64, digest_text: &str) -> Option<Arc<StatementInfo>> {
        let slot = self.slots.get_mut(*self.index.get(&hash)?)?;
        if *slot.info.digest_text != *digest_text {
            return None;
        }
        slot.referenced = true;
        Some(Arc::clone(&slot.info))
    }

    fn insert(&mut self, info: &Arc<StatementInfo>) {
        let bytes = info.cached_bytes();
        if info.truncated || self.limits.max_entries == 0 || bytes > self.limits.max_bytes / 4 {
            return;
        }
        if let Some(slot) = self.index.get(&info.digest_hash).and_then(|&at| self.slots.get_mut(at)) {
            // Same hash, other text (a collision) or a racing insert: the newer one wins.
            self.bytes = self.bytes - slot.bytes + bytes;
            *slot = Slot { info: Arc::clone(info), bytes, referenced: false };
            return;
        }
        while self.slots.len() >= self.limits.max_entries || self.bytes + bytes > self.limits.max_bytes {
            if !self.evict_one() {
                return;
            }
        }
        self.index.insert(info.digest_hash, self.slots.len());
        self.slots.push(Slot { info: Arc::clone(info), bytes, referenced: false });
        self.bytes += bytes;
    }

    /// CLOCK: the first entry at or after the hand whose reference bit is clear goes;
    /// set bits on the way are cleared. Ends within two sweeps.
    fn evict_one(&mut self) -> bool {
        for _ in 0..=2 * self.slots.len() {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let Some(slot) = self.slots.get_mut(self.hand) else { return false };
            if slot.referenced {
                slot.referenced = false;
                self.hand += 1;
                continue;
            }
            let victim = self.slots.swap_remove(self.hand);
            self.index.remove(&victim.info.digest_hash);
            self.bytes -= victim.bytes;
            if let Some(moved) = self.slots.get(self.hand) {
                self.index.insert(moved.info.digest_hash, self.hand);
            }
            return true;
        }
        false
    }
}

/// Shards of a [`SharedStatementCache`]: enough that workers (one per core) seldom meet.
const SHARDS: usize = 16;

/// A statement cache shared by the worker threads of one listener (see the module doc).
pub struct SharedStatementCache {
    dialect: Dialect,
    shards: Box<[Mutex<StatementCache>]>,
}

impl SharedStatementCache {
    /// `limits` are for the whole cache; each shard gets an equal part.
    pub fn new(dialect: Dialect, limits: CacheLimits) -> SharedStatementCache {
        let shard_limits = CacheLimits {
            max_entries: limits.max_entries.div_ceil(SHARDS),
            max_bytes: limits.max_bytes.div_ceil(SHARDS),
        };
        let shards = (0..SHARDS).map(|_| Mutex::new(StatementCache::new(dialect, shard_limits))).collect();
        SharedStatementCache { dialect, shards }
    }

    /// As [`StatementCache::classify`]; sqlparser runs outside any lock.
    pub fn classify(&self, sql: &[u8], scratch: &mut String) -> Arc<StatementInfo> {
        let digest = normalize(sql, self.dialect, scratch);
        let shard = self.shard(digest.hash);
        if let Some(hit) = lock(shard).get(digest.hash, scratch) {
            return hit;
        }
        let info = Arc::new(StatementInfo::analyze_normalized(sql, self.dialect, digest, scratch));
        lock(shard).insert(&info);
        info
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).bytes()).sum()
    }

    fn shard(&self, hash: u64) -> &Mutex<StatementCache> {
        // High bits: the maps inside use the low ones.
        let at = (hash >> 40) as usize % self.shards.len().max(1);
        &self.shards[at]
    }
}

/// A poisoned shard (a panic while it was held) still holds a consistent cache: every
/// mutation completes before anything that could panic.
fn lock(shard: &Mutex<StatementCache>) -> std::sync::MutexGuard<'_, StatementCache> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[path = "tests/classify.rs"]
mod tests;
