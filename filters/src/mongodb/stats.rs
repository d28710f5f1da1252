//! The `mongodb` filter's stats, shared by every connection of a listener:
//! `sluice_ops_total` / `sluice_op_duration_seconds` per command (label `op`: the command
//! name, a legacy opcode such as `OP_INSERT`, or `other` for commands sluice does not know),
//! plus
//!
//! - `sluice_mongodb_collection_ops_total{listener,collection,op}`: commands per `db.collection`
//!   they name, for the first `max_collections` distinct namespaces (the rest `other`; the
//!   shared [`TableCounters`]);
//! - `sluice_mongodb_documents{listener,kind}`: histogram of documents per reply
//!   (`returned`: a cursor's firstBatch / nextBatch, the documents of an OP_REPLY to a legacy
//!   query) and per write command (`written`: the documents of an insert, the statements of
//!   an update or delete, from their document sequences or arrays);
//! - `sluice_mongodb_reply_bytes{listener,kind="reply"}`: histogram of reply sizes in bytes
//!   (each reply message of an exhaust cursor counts), on the same fixed buckets;
//! - `sluice_mongodb_cursors_total{listener,event}`: cursors `opened` (a firstBatch with a
//!   cursor id), `exhausted` (a nextBatch with id 0) and `killed` (ids in a killCursors
//!   that succeeded);
//! - `sluice_mongodb_errors_total{listener,code_name}`: replies with `ok: 0` by codeName, for
//!   the first [`MAX_CODE_NAMES`] distinct names (the rest, and replies without a
//!   well-formed codeName, `other`);
//! - `sluice_mongodb_write_errors_total{listener}`: entries of `writeErrors` (a write that
//!   partly failed still answers `ok: 1`);
//! - `sluice_mongodb_compressed_total{listener,compressor}`: OP_COMPRESSED messages, both ways;
//! - `sluice_mongodb_faults_total{listener,fault}`: injected delays and errors;
//! - `sluice_mongodb_unexpected_replies_total{listener}`: replies no request was waiting for;
//! - `sluice_mongodb_decode_errors_total{listener,direction}`.
//!
//! Label values come from fixed lists or capped sets. Handles are registered on first use;
//! per command the filter then does an indexed load and atomic adds.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use metrics::{Counter, Unit};
use sluice_codecs::mongodb::Compressor;

use super::commands::CommandId;
use crate::op::Protocol;
use crate::sql::stats::{RowsHistogram, TableCounters};
use crate::stats::{read, write, OpCounters};

pub const COLLECTION_OPS_TOTAL: &str = "sluice_mongodb_collection_ops_total";
pub const DOCUMENTS: &str = "sluice_mongodb_documents";
const DOCUMENTS_HELP: &str =
    "Documents per MongoDB reply (kind=returned) or per write command (kind=written: documents, updates, deletes).";
pub const REPLY_BYTES: &str = "sluice_mongodb_reply_bytes";
const REPLY_BYTES_HELP: &str = "Bytes per MongoDB reply message (as on the wire, compressed or not).";
pub const CURSORS_TOTAL: &str = "sluice_mongodb_cursors_total";
pub const ERRORS_TOTAL: &str = "sluice_mongodb_errors_total";
pub const WRITE_ERRORS_TOTAL: &str = "sluice_mongodb_write_errors_total";
pub const COMPRESSED_TOTAL: &str = "sluice_mongodb_compressed_total";
pub const FAULTS_TOTAL: &str = "sluice_mongodb_faults_total";
pub const UNEXPECTED_REPLIES_TOTAL: &str = "sluice_mongodb_unexpected_replies_total";
pub const DECODE_ERRORS_TOTAL: &str = "sluice_mongodb_decode_errors_total";

/// Distinct codeNames with their own `sluice_mongodb_errors_total` series per listener.
pub const MAX_CODE_NAMES: usize = 64;
/// The longest codeName kept as a label (mongod's are under 50 characters).
const MAX_CODE_NAME_LEN: usize = 64;

/// Registers help texts; call once at start-up.
pub fn describe() {
    metrics::describe_counter!(COLLECTION_OPS_TOTAL, Unit::Count, "MongoDB commands by db.collection and op.");
    metrics::describe_counter!(CURSORS_TOTAL, Unit::Count, "MongoDB cursors opened, exhausted and killed.");
    metrics::describe_counter!(ERRORS_TOTAL, Unit::Count, "MongoDB replies with ok: 0, by codeName.");
    metrics::describe_counter!(WRITE_ERRORS_TOTAL, Unit::Count, "MongoDB writeErrors entries in replies.");
    metrics::describe_counter!(COMPRESSED_TOTAL, Unit::Count, "MongoDB OP_COMPRESSED messages by compressor.");
    metrics::describe_counter!(FAULTS_TOTAL, Unit::Count, "Faults injected into MongoDB commands.");
    metrics::describe_counter!(UNEXPECTED_REPLIES_TOTAL, Unit::Count, "MongoDB replies no request was waiting for.");
    metrics::describe_counter!(DECODE_ERRORS_TOTAL, Unit::Count, "MongoDB messages that could not be decoded.");
}

pub struct MongodbStats {
    listener: String,
    /// Indexed by [`CommandId::index`].
    ops: Box<[OnceLock<OpCounters>]>,
    pub collections: TableCounters,
    errors: RwLock<HashMap<Box<str>, Counter>>,
    errors_other: Counter,
    pub documents_returned: Arc<RowsHistogram>,
    pub documents_written: Arc<RowsHistogram>,
    /// Bytes per reply message.
    pub reply_bytes: Arc<RowsHistogram>,
    pub cursors_opened: Counter,
    pub cursors_exhausted: Counter,
    pub cursors_killed: Counter,
    pub write_errors: Counter,
    /// Indexed by [`Compressor::id`].
    compressed: [Counter; 4],
    pub fault_delays: Counter,
    pub fault_errors: Counter,
    pub unexpected_replies: Counter,
    pub client_decode_errors: Counter,
    pub server_decode_errors: Counter,
}

impl MongodbStats {
    pub fn new(listener: &str, max_collections: usize) -> Self {
        let l = || listener.to_owned();
        let cursors = |event: &'static str| metrics::counter!(CURSORS_TOTAL, "listener" => l(), "event" => event);
        let compressed =
            |c: Compressor| metrics::counter!(COMPRESSED_TOTAL, "listener" => l(), "compressor" => c.name());
        MongodbStats {
            ops: (0..CommandId::COUNT).map(|_| OnceLock::new()).collect(),
            collections: TableCounters::with_label(COLLECTION_OPS_TOTAL, "collection", listener, max_collections),
            errors: RwLock::default(),
            errors_other: metrics::counter!(ERRORS_TOTAL, "listener" => l(), "code_name" => "other"),
            documents_returned: RowsHistogram::register(DOCUMENTS, DOCUMENTS_HELP, listener, "returned"),
            documents_written: RowsHistogram::register(DOCUMENTS, DOCUMENTS_HELP, listener, "written"),
            reply_bytes: RowsHistogram::register(REPLY_BYTES, REPLY_BYTES_HELP, listener, "reply"),
            cursors_opened: cursors("opened"),
            cursors_exhausted: cursors("exhausted"),
            cursors_killed: cursors("killed"),
            write_errors: metrics::counter!(WRITE_ERRORS_TOTAL, "listener" => l()),
            compressed: [Compressor::Noop, Compressor::Snappy, Compressor::Zlib, Compressor::Zstd].map(compressed),
            fault_delays: metrics::counter!(FAULTS_TOTAL, "listener" => l(), "fault" => "delay"),
            fault_errors: metrics::counter!(FAULTS_TOTAL, "listener" => l(), "fault" => "error"),
            unexpected_replies: metrics::counter!(UNEXPECTED_REPLIES_TOTAL, "listener" => l()),
            client_decode_errors: metrics::counter!(DECODE_ERRORS_TOTAL, "listener" => l(), "direction" => "client"),
            server_decode_errors: metrics::counter!(DECODE_ERRORS_TOTAL, "listener" => l(), "direction" => "server"),
            listener: listener.to_owned(),
        }
    }

    /// The op counters of a command.
    pub fn op(&self, id: CommandId) -> &OpCounters {
        self.ops[id.index()].get_or_init(|| OpCounters::new(&self.listener, Protocol::Mongodb, id.name()))
    }

    pub fn compressed(&self, compressor: Compressor) -> &Counter {
        &self.compressed[usize::from(compressor.id()).min(3)]
    }

    /// Counts a failed reply by its codeName.
    pub fn error(&self, code_name: Option<&str>) {
        let name = code_name.filter(|n| {
            !n.is_empty() && n.len() <= MAX_CODE_NAME_LEN && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        let Some(name) = name else {
            self.errors_other.increment(1);
            return;
        };
        if let Some(counter) = read(&self.errors).get(name) {
            counter.increment(1);
            return;
        }
        let mut errors = write(&self.errors);
        if !errors.contains_key(name) && errors.len() >= MAX_CODE_NAMES {
            drop(errors);
            self.errors_other.increment(1);
            return;
        }
        errors
            .entry(name.into())
            .or_insert_with(
                || metrics::counter!(ERRORS_TOTAL, "listener" => self.listener.clone(), "code_name" => name.to_owned()),
            )
            .increment(1);
    }
}

/// Collection counters a connection keeps at hand.
const COLLECTIONS_KEPT: usize = 16;

/// The collection counters one connection used last, found by namespace and op without
/// the listener-wide lock: an application repeats the same few commands on the same few
/// collections.
#[derive(Default)]
pub struct ConnectionCollections {
    kept: Vec<(Box<str>, CommandId, Counter)>,
    /// The slot the next new namespace takes once all are used.
    next: usize,
}

impl ConnectionCollections {
    pub fn count(&mut self, shared: &TableCounters, namespace: &str, op: CommandId) {
        if let Some((_, _, counter)) = self.kept.iter().find(|(ns, o, _)| *o == op && &**ns == namespace) {
            counter.increment(1);
            return;
        }
        let counter = shared.get(&Arc::from(namespace), op.name());
        counter.increment(1);
        let entry = (namespace.into(), op, counter);
        if self.kept.len() < COLLECTIONS_KEPT {
            self.kept.push(entry);
        } else {
            self.kept[self.next] = entry;
            self.next = (self.next + 1) % COLLECTIONS_KEPT;
        }
    }
}
