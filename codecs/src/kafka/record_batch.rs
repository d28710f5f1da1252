//! Record batches inside Produce requests and Fetch responses, counted without
//! decompressing.
//!
//! Spec: "Record Batch" (<https://kafka.apache.org/documentation/#recordbatch>), KIP-98 for
//! the v2 (magic 2) format, and the legacy message sets (magic 0/1,
//! <https://kafka.apache.org/documentation/#messageset>):
//!
//! ```text
//! baseOffset:int64 batchLength:int32 partitionLeaderEpoch:int32 magic:int8 (=2) crc:uint32
//! attributes:int16 lastOffsetDelta:int32 baseTimestamp:int64 maxTimestamp:int64
//! producerId:int64 producerEpoch:int16 baseSequence:int32 recordsCount:int32 records...
//! legacy: offset:int64 messageSize:int32 crc:int32 magic:int8 (0|1) attributes:int8 ...
//! ```
//!
//! `batchLength` / `messageSize` count the bytes after themselves; the magic byte is at
//! offset 16 in both formats. Attributes bits 0-2 are the compression codec (0 none, 1 gzip,
//! 2 snappy, 3 lz4, 4 zstd), bit 4 transactional, bit 5 control. The v2 CRC-32C covers
//! attributes to the end of the batch. A legacy message counts as one record (a compressed
//! wrapper's inner messages are not counted: that would need decompression).
//!
//! A Fetch response may end in a partial batch (the broker cuts at max_bytes): with
//! `allow_partial` the tail is reported in [`RecordSetSummary::partial_bytes`], not an error.

use super::error::KafkaError;
use super::reader::Reader;

/// Bytes of a v2 batch header, up to and including recordsCount.
pub const BATCH_HEADER_LEN: usize = 61;
/// The smallest legacy message: offset, size, crc, magic, attributes, key and value lengths.
const LEGACY_MIN_LEN: usize = 26;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// A batch's compression codec (attributes bits 0-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    /// 5-7: not defined.
    Unknown(u8),
}

impl Compression {
    pub fn from_attributes(attributes: i16) -> Compression {
        match attributes & 0x07 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            n => Compression::Unknown(n as u8),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
            Compression::Unknown(_) => "unknown",
        }
    }
}

/// One batch (v2) or legacy message (v0/v1), as a view over its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordBatch<'a> {
    pub base_offset: i64,
    pub magic: i8,
    /// v2: attributes; legacy: the attributes byte widened.
    pub attributes: i16,
    /// v2: recordsCount; legacy: 1.
    pub records: i32,
    /// v2 only (0 for legacy).
    pub last_offset_delta: i32,
    /// v2 only (-1 for legacy).
    pub producer_id: i64,
    /// v2 only (-1 for legacy).
    pub base_sequence: i32,
    /// The whole batch, from baseOffset to its last byte.
    pub bytes: &'a [u8],
}

impl RecordBatch<'_> {
    pub fn compression(&self) -> Compression {
        Compression::from_attributes(self.attributes)
    }

    pub fn is_transactional(&self) -> bool {
        self.magic >= 2 && self.attributes & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.magic >= 2 && self.attributes & 0x20 != 0
    }

    /// Whether a v2 batch's CRC-32C matches (legacy messages use CRC-32; not checked: `None`).
    pub fn crc_ok(&self) -> Option<bool> {
        if self.magic < 2 {
            return None;
        }
        let stored = u32::from_be_bytes(self.bytes.get(17..21)?.try_into().ok()?);
        Some(CRC32C.checksum(self.bytes.get(21..)?) == stored)
    }
}

/// Totals over one record set (a partition's `records` field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordSetSummary {
    pub batches: u32,
    pub records: u64,
    /// Bytes of the whole batches.
    pub bytes: usize,
    /// The first batch's codec (`None`: no batches).
    pub compression: Option<Compression>,
    /// Whether batches use different codecs.
    pub mixed_compression: bool,
    /// Bytes of a trailing partial batch (Fetch responses only).
    pub partial_bytes: usize,
}

impl RecordSetSummary {
    /// Adds `other` (another partition's set) to this one.
    pub fn add(&mut self, other: &RecordSetSummary) {
        self.batches = self.batches.saturating_add(other.batches);
        self.records = self.records.saturating_add(other.records);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.partial_bytes = self.partial_bytes.saturating_add(other.partial_bytes);
        match (self.compression, other.compression) {
            (None, c) => self.compression = c,
            (Some(a), Some(b)) if a != b => self.mixed_compression = true,
            _ => {}
        }
        self.mixed_compression |= other.mixed_compression;
    }
}

/// Iterates the batches of a record set; stops at the first error (or, with
/// `allow_partial`, quietly at a partial last batch).
#[derive(Clone, Debug)]
pub struct Batches<'a> {
    rest: &'a [u8],
    allow_partial: bool,
    done: bool,
}

/// The batches in `records`.
pub fn batches(records: &[u8], allow_partial: bool) -> Batches<'_> {
    Batches { rest: records, allow_partial, done: false }
}

impl<'a> Batches<'a> {
    /// Bytes not consumed as whole batches (a partial tail once iteration has ended).
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch<'a>>, KafkaError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let mut r = Reader::new(self.rest);
        let partial = |what| if self.allow_partial { Ok(None) } else { Err(KafkaError::Truncated { what }) };
        let (Ok(base_offset), Ok(length)) = (r.i64("batch baseOffset"), r.i32("batch length")) else {
            return partial("record batch header");
        };
        let length = usize::try_from(length).map_err(|_| KafkaError::Malformed { what: "record batch length" })?;
        let Some(total) = length.checked_add(12) else {
            return Err(KafkaError::Malformed { what: "record batch length" });
        };
        let Some(bytes) = self.rest.get(..total) else { return partial("record batch") };
        let Some(&magic) = bytes.get(16) else { return partial("record batch magic") };
        let batch = match magic {
            2 => {
                if total < BATCH_HEADER_LEN {
                    return Err(KafkaError::Malformed { what: "record batch length" });
                }
                let mut h = Reader::new(bytes.get(21..).unwrap_or_default());
                let attributes = h.i16("batch attributes")?;
                let last_offset_delta = h.i32("batch lastOffsetDelta")?;
                h.skip(16, "batch timestamps")?;
                let producer_id = h.i64("batch producerId")?;
                h.skip(2, "batch producerEpoch")?;
                let base_sequence = h.i32("batch baseSequence")?;
                let records = h.i32("batch recordsCount")?;
                if records < 0 {
                    return Err(KafkaError::Malformed { what: "record batch recordsCount" });
                }
                RecordBatch {
                    base_offset,
                    magic: 2,
                    attributes,
                    records,
                    last_offset_delta,
                    producer_id,
                    base_sequence,
                    bytes,
                }
            }
            0 | 1 => {
                if total < LEGACY_MIN_LEN {
                    return Err(KafkaError::Malformed { what: "legacy message size" });
                }
                let attributes = bytes.get(17).map_or(0, |&a| i16::from(a));
                RecordBatch {
                    base_offset,
                    magic: magic as i8,
                    attributes,
                    records: 1,
                    last_offset_delta: 0,
                    producer_id: -1,
                    base_sequence: -1,
                    bytes,
                }
            }
            _ => return Err(KafkaError::Malformed { what: "record batch magic" }),
        };
        self.rest = self.rest.get(total..).unwrap_or_default();
        Ok(Some(batch))
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<RecordBatch<'a>, KafkaError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Counts the batches, records and bytes of one record set.
pub fn summarize(records: &[u8], allow_partial: bool) -> Result<RecordSetSummary, KafkaError> {
    let mut it = batches(records, allow_partial);
    let mut s = RecordSetSummary::default();
    for b in it.by_ref() {
        let b = b?;
        s.batches = s.batches.saturating_add(1);
        s.records = s.records.saturating_add(u64::try_from(b.records).unwrap_or(0));
        s.bytes = s.bytes.saturating_add(b.bytes.len());
        match s.compression {
            None => s.compression = Some(b.compression()),
            Some(c) if c != b.compression() => s.mixed_compression = true,
            _ => {}
        }
    }
    s.partial_bytes = it.remaining().len();
    Ok(s)
}
