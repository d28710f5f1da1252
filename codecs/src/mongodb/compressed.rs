//! OP_COMPRESSED (opcode 2012) and bounded decompression.
//!
//! Spec: the OP_COMPRESSED specification
//! (<https://github.com/mongodb/specifications/blob/master/source/compression/OP_COMPRESSED.md>)
//! and the wire protocol page (<https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/#op_compressed>):
//!
//! ```text
//! header (opCode 2012), int32 originalOpcode, int32 uncompressedSize (the original message
//! without its header), uint8 compressorId (0 noop, 1 snappy, 2 zlib, 3 zstd), compressed bytes
//! ```
//!
//! The proxy forwards the original bytes; [`OpCompressed::decompress`] rebuilds the inner
//! message (same requestID and responseTo, the original opcode) so it can be inspected.
//! Decompression is bounded: uncompressedSize must be within the caller's cap, the output
//! is produced into a buffer that never grows past uncompressedSize + 1 bytes (a payload
//! that would go on, a decompression bomb, is cut off there), and it must come out exactly
//! uncompressedSize long.
//!
//! Libraries, all pure Rust: `snap` (raw Snappy blocks, as the drivers use; the block's own
//! length varint must equal uncompressedSize before anything is allocated), `flate2` with its
//! `miniz_oxide` backend (zlib streams), and `ruzstd` for zstd. ruzstd rather than the
//! `zstd` crate: it is a decoder only, in safe Rust with no C library to build, and it has
//! been fuzzed; the C library's speed matters less here because a proxy decompresses only
//! to look at a message it forwards as is. ruzstd reserves the frame's window size up front
//! (it refuses windows over 100 MiB), so the frame header is read first and a window
//! larger than both twice uncompressedSize and 8 MiB is refused before the decoder sees
//! it: one-shot encoders (what drivers and mongod use) write the content size as the
//! window, streaming encoders a window of their own that RFC 8878 recommends decoders
//! accept up to 8 MiB. So a tiny message can make the decoder reserve 8 MiB at most.

use std::io::Read;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::MongoError;
use super::header::{le_i32, Header, Message, OpCode, HEADER_LEN};
use crate::framing::Limits;

/// The compressor of an OP_COMPRESSED message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compressor {
    Noop,
    Snappy,
    Zlib,
    Zstd,
}

impl Compressor {
    pub fn from_id(id: u8) -> Option<Compressor> {
        Some(match id {
            0 => Compressor::Noop,
            1 => Compressor::Snappy,
            2 => Compressor::Zlib,
            3 => Compressor::Zstd,
            _ => return None,
        })
    }

    pub fn id(self) -> u8 {
        match self {
            Compressor::Noop => 0,
            Compressor::Snappy => 1,
            Compressor::Zlib => 2,
            Compressor::Zstd => 3,
        }
    }

    /// The name drivers negotiate in hello's `compression` list.
    pub fn name(self) -> &'static str {
        match self {
            Compressor::Noop => "noop",
            Compressor::Snappy => "snappy",
            Compressor::Zlib => "zlib",
            Compressor::Zstd => "zstd",
        }
    }
}

/// Bytes before the compressed payload: header, originalOpcode, uncompressedSize, compressorId.
const PREFIX_LEN: usize = HEADER_LEN + 9;

/// A parsed OP_COMPRESSED, borrowing its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpCompressed<'a> {
    header: Header,
    pub original_op: OpCode,
    /// As sent; checked against the cap by [`OpCompressed::decompress`].
    pub uncompressed_size: i32,
    pub compressor: Compressor,
    pub payload: &'a [u8],
}

impl<'a> OpCompressed<'a> {
    pub fn parse(msg: &'a Message) -> Result<OpCompressed<'a>, MongoError> {
        if msg.op_code() != OpCode::Compressed {
            return Err(MongoError::WrongOpCode { expected: OpCode::Compressed, actual: msg.op_code() });
        }
        let bytes = msg.bytes();
        let original = le_i32(bytes, HEADER_LEN).ok_or(MongoError::Truncated { what: "OP_COMPRESSED prefix" })?;
        let size = le_i32(bytes, HEADER_LEN + 4).ok_or(MongoError::Truncated { what: "OP_COMPRESSED prefix" })?;
        let &id = bytes.get(HEADER_LEN + 8).ok_or(MongoError::Truncated { what: "OP_COMPRESSED prefix" })?;
        let compressor = Compressor::from_id(id).ok_or(MongoError::UnknownCompressor(id))?;
        let original_op = OpCode::from_i32(original);
        if original_op == OpCode::Compressed {
            return Err(MongoError::NestedCompression);
        }
        Ok(OpCompressed {
            header: *msg.header(),
            original_op,
            uncompressed_size: size,
            compressor,
            payload: &bytes[PREFIX_LEN..],
        })
    }

    /// The inner message, decompressed within `limits.max_frame` (header included), with
    /// this message's requestID and responseTo and the original opcode.
    pub fn decompress(&self, limits: &Limits) -> Result<Message, MongoError> {
        let cap = limits.max_frame.saturating_sub(HEADER_LEN);
        let too_large = MongoError::UncompressedTooLarge { size: self.uncompressed_size.into(), limit: cap };
        let size = usize::try_from(self.uncompressed_size).map_err(|_| too_large)?;
        if size > cap {
            return Err(too_large);
        }
        let total = size + HEADER_LEN;
        let header = Header {
            message_length: i32::try_from(total).map_err(|_| too_large)?,
            request_id: self.header.request_id,
            response_to: self.header.response_to,
            op_code: self.original_op,
        };
        let mut out = BytesMut::new();
        out.put_slice(&header.encode());
        match self.compressor {
            Compressor::Noop => {
                check_size(size, self.payload.len(), false)?;
                out.put_slice(self.payload);
            }
            Compressor::Snappy => snappy(self.payload, size, &mut out)?,
            Compressor::Zlib => {
                let decoder = flate2::read::ZlibDecoder::new(self.payload);
                read_bounded(decoder, size, &mut out, "zlib")?;
            }
            Compressor::Zstd => {
                check_zstd_window(self.payload, size)?;
                let decoder = ruzstd::decoding::StreamingDecoder::new(self.payload)
                    .map_err(|_| MongoError::Decompress { compressor: "zstd", reason: "bad frame header" })?;
                read_bounded(decoder, size, &mut out, "zstd")?;
            }
        }
        let bytes: Bytes = out.freeze();
        Message::new(bytes, limits)
    }
}

fn check_size(declared: usize, actual: usize, cut_off: bool) -> Result<(), MongoError> {
    if declared != actual || cut_off {
        return Err(MongoError::UncompressedSizeMismatch { declared, actual, cut_off });
    }
    Ok(())
}

fn snappy(payload: &[u8], size: usize, out: &mut BytesMut) -> Result<(), MongoError> {
    let bad = |reason| MongoError::Decompress { compressor: "snappy", reason };
    let len = snap::raw::decompress_len(payload).map_err(|_| bad("bad length header"))?;
    // The block says how long it decompresses to; it must be what the message declared,
    // which is within the cap, before a byte is allocated for it.
    check_size(size, len, false)?;
    // No Snappy element expands more than 64 bytes out of 3 (a 2-byte-offset copy), so a
    // block claiming more than that ratio is corrupt: refuse it before zeroing the output.
    if size > payload.len().saturating_mul(22) {
        return Err(bad("claims more than the block can expand to"));
    }
    let start = out.len();
    out.resize(start + size, 0);
    let n = snap::raw::Decoder::new().decompress(payload, &mut out[start..]).map_err(|_| bad("corrupt block"))?;
    check_size(size, n, false)
}

/// Reads at most `size + 1` bytes from `reader` into `out`, growing it only as bytes come.
fn read_bounded(
    reader: impl Read,
    size: usize,
    out: &mut BytesMut,
    compressor: &'static str,
) -> Result<(), MongoError> {
    let start = out.len();
    let limit = u64::try_from(size).unwrap_or(u64::MAX).saturating_add(1);
    let mut writer = <&mut BytesMut as BufMut>::writer(out);
    std::io::copy(&mut reader.take(limit), &mut writer)
        .map_err(|_| MongoError::Decompress { compressor, reason: "corrupt stream" })?;
    let out = writer.into_inner();
    let produced = out.len() - start;
    check_size(size, produced.min(size), produced > size)
}

/// The largest zstd window accepted beyond twice the content (RFC 8878 section 3.1.1.1.2
/// recommends decoders support at least 8 MiB).
const MAX_ZSTD_WINDOW: u64 = 8 << 20;

/// Refuses a zstd frame whose window (which ruzstd reserves before decoding) is larger
/// than the content needs and than 8 MiB. Frame header:
/// <https://www.rfc-editor.org/rfc/rfc8878#section-3.1.1.1>.
fn check_zstd_window(payload: &[u8], size: usize) -> Result<(), MongoError> {
    let bad = |reason| MongoError::Decompress { compressor: "zstd", reason };
    if payload.get(..4) != Some(&[0x28, 0xB5, 0x2F, 0xFD][..]) {
        return Err(bad("bad magic number"));
    }
    let &descriptor = payload.get(4).ok_or(bad("truncated frame header"))?;
    let single_segment = descriptor & 0x20 != 0;
    let window = if single_segment {
        // The window is the content size, which follows (after an optional dictionary id).
        let dict_len = [0usize, 1, 2, 4][usize::from(descriptor & 3)];
        let fcs_len = [1usize, 2, 4, 8][usize::from(descriptor >> 6)];
        let at = 5 + dict_len;
        let field = payload.get(at..at + fcs_len).ok_or(bad("truncated frame header"))?;
        let mut v = [0u8; 8];
        v[..fcs_len].copy_from_slice(field);
        let fcs = u64::from_le_bytes(v);
        if fcs_len == 2 {
            fcs + 256
        } else {
            fcs
        }
    } else {
        let &wd = payload.get(5).ok_or(bad("truncated frame header"))?;
        let exponent = u32::from(wd >> 3);
        let base = 1u64 << (10 + exponent);
        base + (base / 8) * u64::from(wd & 7)
    };
    let allowed = (size as u64).saturating_mul(2).max(MAX_ZSTD_WINDOW);
    if window > allowed {
        return Err(bad("window larger than allowed"));
    }
    Ok(())
}
