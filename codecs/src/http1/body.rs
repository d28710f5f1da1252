//! Cutting a body into pieces without copying: Content-Length, chunked (RFC 9112 §7.1)
//! with its trailer section (§7.1.2), and close-delimited bodies.
//!
//! Every piece carries the wire bytes it consumed (`wire`, what a proxy forwards unchanged;
//! the pieces of a message concatenate to its exact bytes) and the payload inside them
//! (`data`, what a conversion to another framing needs: chunk framing removed).
//!
//! Chunk lines are strict: `1*HEXDIG [ BWS ";" chunk-ext ] CRLF` with at most 16 digits (so
//! the size fits 64 bits; no sign, no `0x`, no whitespace before the size), extensions
//! ignored but free of control characters, and chunk data must be followed by CRLF.

use bytes::{Bytes, BytesMut};

use super::error::H1Error;
use super::headers::{index, Field, Headers};
use super::limits::H1Limits;
use super::scan::{LineScan, ScanError};

/// Some body bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyPiece {
    wire: Bytes,
    data_start: usize,
}

impl BodyPiece {
    /// The bytes as received, chunk framing included.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// The payload (may be empty when the piece is only chunk framing).
    pub fn data(&self) -> Bytes {
        self.wire.slice(self.data_start.min(self.wire.len())..)
    }
}

/// The end of a message: what remained of its framing (for chunked bodies, the last chunk
/// and trailer section; empty otherwise) and the trailer fields, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyEnd {
    pub(crate) wire: Bytes,
    pub(crate) trailers: Option<Trailers>,
}

impl BodyEnd {
    pub(crate) fn empty() -> BodyEnd {
        BodyEnd { wire: Bytes::new(), trailers: None }
    }

    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    pub fn trailers(&self) -> Option<&Trailers> {
        self.trailers.as_ref()
    }
}

/// A trailer section with at least one field (RFC 9112 §7.1.2). Trailer fields never
/// change framing; a converter must drop the ones not allowed in trailers (RFC 9110 §6.5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trailers {
    raw: Bytes,
    fields: Box<[Field]>,
}

impl Trailers {
    /// The section's bytes (field lines and the final CRLF).
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn headers(&self) -> Headers<'_> {
        Headers::new(&self.raw, &self.fields)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// A chunk line comes next.
    Line,
    Data {
        remaining: u64,
    },
    /// The CRLF after chunk data comes next.
    DataEnd,
    /// The trailer section comes next (its scan starts at the front of the buffer).
    Trailers(LineScan),
}

/// Where a body stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyDecoder {
    Length { remaining: u64 },
    Chunked { state: Chunk, total: u64 },
    Close,
}

/// What one step produced.
pub(crate) enum Step {
    Piece(BodyPiece),
    End(BodyEnd),
}

impl BodyDecoder {
    pub(crate) fn length(n: u64) -> Self {
        BodyDecoder::Length { remaining: n }
    }

    pub(crate) fn chunked() -> Self {
        BodyDecoder::Chunked { state: Chunk::Line, total: 0 }
    }

    pub(crate) fn close() -> Self {
        BodyDecoder::Close
    }

    /// Cuts the next piece (or the end) off `buf`; `Ok(None)` when more bytes are needed.
    pub(crate) fn step(&mut self, buf: &mut BytesMut, limits: &H1Limits) -> Result<Option<Step>, H1Error> {
        match self {
            BodyDecoder::Length { remaining: 0 } => Ok(Some(Step::End(BodyEnd::empty()))),
            BodyDecoder::Length { remaining } => {
                let n = usize::try_from(*remaining).unwrap_or(usize::MAX).min(buf.len());
                if n == 0 {
                    return Ok(None);
                }
                *remaining -= n as u64;
                Ok(Some(Step::Piece(BodyPiece { wire: buf.split_to(n).freeze(), data_start: 0 })))
            }
            BodyDecoder::Close => {
                if buf.is_empty() {
                    return Ok(None);
                }
                Ok(Some(Step::Piece(BodyPiece { wire: buf.split().freeze(), data_start: 0 })))
            }
            BodyDecoder::Chunked { state, total } => chunked_step(state, total, buf, limits),
        }
    }

    /// Whether the body is complete when the connection closes here.
    pub(crate) fn ends_at_close(&self) -> bool {
        matches!(self, BodyDecoder::Close | BodyDecoder::Length { remaining: 0 })
    }
}

/// One pass over as much chunk framing and data as is here, cut off as one piece.
fn chunked_step(
    state: &mut Chunk,
    total: &mut u64,
    buf: &mut BytesMut,
    limits: &H1Limits,
) -> Result<Option<Step>, H1Error> {
    let mut at = 0;
    let mut data_start = None;
    loop {
        match state {
            Chunk::DataEnd => match buf.get(at..at + 2) {
                None if buf.get(at).is_none_or(|&b| b == b'\r') => break,
                Some(b"\r\n") => {
                    at += 2;
                    *state = Chunk::Line;
                }
                _ => return Err(H1Error::ChunkDataNoCrlf),
            },
            Chunk::Line => {
                let Some((len, size)) = chunk_line(&buf[at..], limits)? else { break };
                at += len;
                if size == 0 {
                    // The trailer scan keeps offsets from the front of the buffer: hand out
                    // the framing so far, unless the section is already complete.
                    *state = Chunk::Trailers(LineScan::default());
                    if let Some(end) = trailer_end(&mut LineScan::default(), &buf[at..], limits)? {
                        return finish(buf, at, end, limits).map(Some);
                    }
                    break;
                } else {
                    *total = total
                        .checked_add(size)
                        .filter(|t| *t <= limits.max_body)
                        .ok_or(H1Error::BodyTooLarge { limit: limits.max_body })?;
                    *state = Chunk::Data { remaining: size };
                }
            }
            Chunk::Data { remaining } => {
                let avail = buf.len() - at;
                let n = usize::try_from(*remaining).unwrap_or(usize::MAX).min(avail);
                if n == 0 {
                    break;
                }
                data_start = Some(at);
                at += n;
                *remaining -= n as u64;
                if *remaining == 0 {
                    *state = Chunk::DataEnd;
                }
                break;
            }
            Chunk::Trailers(scan) => {
                // Reached at the start of a call, with the section at the front of the buffer.
                return match trailer_end(scan, &buf[at..], limits)? {
                    Some(end) => finish(buf, at, end, limits).map(Some),
                    None => Ok(None),
                };
            }
        }
    }
    if at == 0 {
        return Ok(None);
    }
    let wire = buf.split_to(at).freeze();
    Ok(Some(Step::Piece(BodyPiece { data_start: data_start.unwrap_or(at), wire })))
}

fn trailer_end(scan: &mut LineScan, section: &[u8], limits: &H1Limits) -> Result<Option<usize>, H1Error> {
    scan.scan(section, limits.max_trailers, false).map_err(|e| match e {
        ScanError::BareLf => H1Error::BareLf,
        ScanError::BareCr => H1Error::BareCr,
        ScanError::ObsFold => H1Error::ObsFold,
        ScanError::TooLarge { .. } => H1Error::TrailersTooLarge { limit: limits.max_trailers },
    })
}

/// Cuts the end of a chunked body: `framing` bytes, then a trailer section of `len` bytes.
fn finish(buf: &mut BytesMut, framing: usize, len: usize, limits: &H1Limits) -> Result<Step, H1Error> {
    let section = &buf[framing..framing + len];
    let fields = if len > 2 {
        let mut slots = vec![httparse::EMPTY_HEADER; limits.header_slots()];
        match httparse::parse_headers(section, &mut slots) {
            Ok(httparse::Status::Complete((n, parsed))) if n == len => Some(index(section, parsed)),
            Ok(_) => return Err(H1Error::InvalidHeaderName),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(H1Error::TooManyHeaders { limit: limits.header_slots() })
            }
            Err(httparse::Error::HeaderValue) => return Err(H1Error::InvalidHeaderValue),
            Err(_) => return Err(H1Error::InvalidHeaderName),
        }
    } else {
        None
    };
    let wire = buf.split_to(framing + len).freeze();
    let trailers = fields.map(|fields| Trailers { raw: wire.slice(framing..), fields });
    Ok(Step::End(BodyEnd { wire, trailers }))
}

/// Parses a chunk line at the front of `buf`: (its length with CRLF, the chunk size).
fn chunk_line(buf: &[u8], limits: &H1Limits) -> Result<Option<(usize, u64)>, H1Error> {
    let max = limits.max_chunk_line;
    let window = &buf[..buf.len().min(max)];
    // The size digits are checked as soon as they are visible, before the line ends.
    let digits = window.iter().take(17).take_while(|b| b.is_ascii_hexdigit()).count();
    if digits > 16 {
        return Err(H1Error::ChunkSizeTooLong);
    }
    let Some(i) = memchr::memchr2(b'\r', b'\n', window) else {
        return if buf.len() >= max { Err(H1Error::ChunkLineTooLong { limit: max }) } else { Ok(None) };
    };
    let line = &window[..i];
    if window[i] == b'\n' {
        return Err(H1Error::BareLf);
    }
    match window.get(i + 1) {
        None if buf.len() >= max => return Err(H1Error::ChunkLineTooLong { limit: max }),
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(H1Error::BareCr),
    }
    if digits == 0 {
        return Err(H1Error::InvalidChunkSize);
    }
    let size = line[..digits].iter().fold(0u64, |n, &b| (n << 4) | u64::from(hex_value(b)));
    let rest = &line[digits..];
    let ext = rest.iter().position(|&b| b != b' ' && b != b'\t').map_or(&rest[rest.len()..], |p| &rest[p..]);
    match ext.first() {
        None if rest.is_empty() => {}
        Some(b';') => {
            if !ext.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80) {
                return Err(H1Error::InvalidChunkExtension);
            }
        }
        _ => return Err(H1Error::InvalidChunkSize),
    }
    Ok(Some((i + 2, size)))
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}
