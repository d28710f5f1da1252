//! Size-prefixed framing: how far the next request or response reaches.
//!
//! Spec: "Protocol" / "Common Request and Response Structure"
//! (<https://kafka.apache.org/protocol#protocol_common>): every request and response is
//! `Size => int32` followed by that many bytes. The size is checked (non-negative, at most
//! [`crate::Limits::max_frame`]; default [`MAX_FRAME_SIZE`], the broker's
//! `socket.request.max.bytes`) as soon as its four bytes are visible, before waiting for the
//! bytes it announces. A frame is cut off the read buffer with `split_to(n).freeze()`, so
//! forwarding it is byte-exact and views into it are zero-copy.
//!
//! The frame does not say whether it is a request or a response; the connection side does.
//! An empty frame (size 0) is legal at this layer: raw SASL tokens after a SaslHandshake v0
//! ride in the same envelope, and an empty token is a PLAIN success.

use bytes::{Bytes, BytesMut};

use super::error::KafkaError;
use crate::framing::{check_frame_len, reserve_for_frame, Decode, Limits};

/// Bytes in the size prefix.
pub const SIZE_LEN: usize = 4;

/// The broker's default `socket.request.max.bytes` (100 MiB), the default frame cap.
pub const MAX_FRAME_SIZE: usize = 104_857_600;

/// The limits a Kafka connection decodes with by default. Kafka bodies do not nest beyond
/// a fixed schema, so `max_depth` is unused.
pub fn default_limits() -> Limits {
    Limits { max_frame: MAX_FRAME_SIZE, max_depth: 8 }
}

/// Checks a size prefix: the number of bytes after it.
fn checked_size(size: i32, limits: &Limits) -> Result<usize, KafkaError> {
    let n = usize::try_from(size).map_err(|_| KafkaError::NegativeSize { size })?;
    check_frame_len(n, limits).map_err(|_| KafkaError::FrameTooLarge { size: n, limit: limits.max_frame })?;
    Ok(n)
}

fn size_prefix(buf: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(buf.get(..SIZE_LEN)?.try_into().ok()?))
}

/// Says how many bytes the next frame occupies, prefix included (`Ok(None)`: not enough
/// bytes yet to know, or to hold it all). The size is checked before anything else.
pub fn peek(buf: &[u8], limits: &Limits) -> Result<Option<usize>, KafkaError> {
    let Some(size) = size_prefix(buf) else { return Ok(None) };
    let total = checked_size(size, limits)? + SIZE_LEN;
    Ok((buf.len() >= total).then_some(total))
}

/// One whole frame, size prefix included, cut from the read buffer without copying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
}

impl Frame {
    /// Takes `bytes` as one frame: its size prefix must count exactly the rest (and be
    /// within `limits`).
    pub fn new(bytes: Bytes, limits: &Limits) -> Result<Frame, KafkaError> {
        let size = size_prefix(&bytes).ok_or(KafkaError::Truncated { what: "frame size" })?;
        let total = checked_size(size, limits)? + SIZE_LEN;
        if total != bytes.len() {
            return Err(KafkaError::NotOneFrame { expected: total, actual: bytes.len() });
        }
        Ok(Frame { bytes })
    }

    /// A frame around `payload` (what an encoder builds).
    pub fn from_payload(payload: &[u8]) -> Result<Frame, KafkaError> {
        let size = i32::try_from(payload.len()).map_err(|_| KafkaError::TooLargeToEncode { what: "frame" })?;
        let mut out = BytesMut::with_capacity(SIZE_LEN + payload.len());
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(payload);
        Ok(Frame { bytes: out.freeze() })
    }

    /// The whole frame, prefix included: what to forward.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Everything after the size prefix: a request or response header and its body.
    pub fn payload(&self) -> &[u8] {
        self.bytes.get(SIZE_LEN..).unwrap_or_default()
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

/// Cuts whole frames off a connection's read buffer ([`Decode`]).
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    limits: Limits,
}

impl FrameDecoder {
    pub fn new(limits: Limits) -> Self {
        FrameDecoder { limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(default_limits())
    }
}

impl Decode for FrameDecoder {
    type Frame = Frame;
    type Error = KafkaError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, KafkaError> {
        let Some(size) = size_prefix(buf) else { return Ok(None) };
        let total = checked_size(size, &self.limits)? + SIZE_LEN;
        if buf.len() < total {
            reserve_for_frame(buf, total, &self.limits);
            return Ok(None);
        }
        Ok(Some(Frame { bytes: buf.split_to(total).freeze() }))
    }
}
