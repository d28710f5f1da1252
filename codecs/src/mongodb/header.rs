//! The standard message header and framing: how far the next message reaches.
//!
//! Spec: MongoDB Wire Protocol, "Standard Message Header"
//! (<https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/#standard-message-header>):
//! four little-endian int32s, messageLength (counting the whole message, header included),
//! requestID, responseTo and opCode. Opcodes are open: one the codec does not know is an
//! [`OpCode::Other`] value that passes through, not an error.

use bytes::{Bytes, BytesMut};

use super::error::MongoError;
use crate::framing::{check_frame_len, reserve_for_frame, Decode, Limits};

/// Bytes in the standard header.
pub const HEADER_LEN: usize = 16;

/// mongod's default maxMessageSizeBytes, the default message cap.
pub const MAX_MESSAGE_SIZE: usize = 48_000_000;

/// mongod's nesting limit for BSON it accepts (`BSONDepth::kDefaultMaxAllowableDepth`).
pub const MAX_BSON_DEPTH: usize = 200;

/// The limits a MongoDB connection decodes with by default: mongod's own caps.
pub fn default_limits() -> Limits {
    Limits { max_frame: MAX_MESSAGE_SIZE, max_depth: MAX_BSON_DEPTH }
}

/// A message opcode. Known ones are named; any other value is kept as [`OpCode::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// OP_REPLY (1): legacy reply to OP_QUERY / OP_GET_MORE.
    Reply,
    /// OP_UPDATE (2001), removed in 6.0.
    Update,
    /// OP_INSERT (2002), removed in 6.0.
    Insert,
    /// OP_QUERY (2004): still used for the first hello of drivers without an API version.
    Query,
    /// OP_GET_MORE (2005), removed in 6.0.
    GetMore,
    /// OP_DELETE (2006), removed in 6.0.
    Delete,
    /// OP_KILL_CURSORS (2007), removed in 6.0.
    KillCursors,
    /// OP_COMPRESSED (2012).
    Compressed,
    /// OP_MSG (2013).
    Msg,
    /// Anything else (OP_COMMAND 2010 / OP_COMMANDREPLY 2011 of 3.2-era servers, future ones).
    Other(i32),
}

impl OpCode {
    pub fn from_i32(v: i32) -> OpCode {
        match v {
            1 => OpCode::Reply,
            2001 => OpCode::Update,
            2002 => OpCode::Insert,
            2004 => OpCode::Query,
            2005 => OpCode::GetMore,
            2006 => OpCode::Delete,
            2007 => OpCode::KillCursors,
            2012 => OpCode::Compressed,
            2013 => OpCode::Msg,
            other => OpCode::Other(other),
        }
    }

    pub fn as_i32(self) -> i32 {
        match self {
            OpCode::Reply => 1,
            OpCode::Update => 2001,
            OpCode::Insert => 2002,
            OpCode::Query => 2004,
            OpCode::GetMore => 2005,
            OpCode::Delete => 2006,
            OpCode::KillCursors => 2007,
            OpCode::Compressed => 2012,
            OpCode::Msg => 2013,
            OpCode::Other(v) => v,
        }
    }

    /// The spec's name (`OP_MSG`), or `OP_UNKNOWN` for an open value.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Reply => "OP_REPLY",
            OpCode::Update => "OP_UPDATE",
            OpCode::Insert => "OP_INSERT",
            OpCode::Query => "OP_QUERY",
            OpCode::GetMore => "OP_GET_MORE",
            OpCode::Delete => "OP_DELETE",
            OpCode::KillCursors => "OP_KILL_CURSORS",
            OpCode::Compressed => "OP_COMPRESSED",
            OpCode::Msg => "OP_MSG",
            OpCode::Other(_) => "OP_UNKNOWN",
        }
    }
}

/// The standard message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The whole message's length, header included (checked to be at least 16 when framed).
    pub message_length: i32,
    pub request_id: i32,
    pub response_to: i32,
    pub op_code: OpCode,
}

impl Header {
    /// Reads the header at the front of `buf`, or `None` if fewer than 16 bytes are there.
    /// No field is checked.
    pub fn parse(buf: &[u8]) -> Option<Header> {
        Some(Header {
            message_length: le_i32(buf, 0)?,
            request_id: le_i32(buf, 4)?,
            response_to: le_i32(buf, 8)?,
            op_code: OpCode::from_i32(le_i32(buf, 12)?),
        })
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        out[0..4].copy_from_slice(&self.message_length.to_le_bytes());
        out[4..8].copy_from_slice(&self.request_id.to_le_bytes());
        out[8..12].copy_from_slice(&self.response_to.to_le_bytes());
        out[12..16].copy_from_slice(&self.op_code.as_i32().to_le_bytes());
        out
    }
}

/// Says how many bytes the next message occupies (`Ok(None)`: not enough bytes yet to know,
/// or to hold it all). The length is checked (at least 16, at most `limits.max_frame`) as
/// soon as its 4 bytes are visible, before waiting for the bytes it announces.
pub fn peek(buf: &[u8], limits: &Limits) -> Result<Option<usize>, MongoError> {
    let Some(len) = le_i32(buf, 0) else { return Ok(None) };
    let len = checked_len(len, limits)?;
    Ok((buf.len() >= len).then_some(len))
}

fn checked_len(len: i32, limits: &Limits) -> Result<usize, MongoError> {
    let ulen = usize::try_from(len).map_err(|_| MongoError::LengthTooSmall { len: len.into() })?;
    if ulen < HEADER_LEN {
        return Err(MongoError::LengthTooSmall { len: len.into() });
    }
    check_frame_len(ulen, limits).map_err(|_| MongoError::MessageTooLarge { len: ulen, limit: limits.max_frame })?;
    Ok(ulen)
}

/// One whole message: its header and its bytes (header included), cut from the read
/// buffer without copying. Forwarding `bytes()` is byte-exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    header: Header,
    bytes: Bytes,
}

impl Message {
    /// Takes `bytes` as one message: its header's length must be exactly `bytes.len()`
    /// (and within `limits`).
    pub fn new(bytes: Bytes, limits: &Limits) -> Result<Message, MongoError> {
        let header = Header::parse(&bytes).ok_or(MongoError::Truncated { what: "message header" })?;
        let len = checked_len(header.message_length, limits)?;
        if len != bytes.len() {
            return Err(MongoError::NotOneMessage { expected: len, actual: bytes.len() });
        }
        Ok(Message { header, bytes })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn op_code(&self) -> OpCode {
        self.header.op_code
    }

    /// The whole message, header included: what to forward.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Everything after the header.
    pub fn body(&self) -> &[u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or_default()
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

/// Cuts whole messages off a connection's read buffer ([`Decode`]).
#[derive(Clone, Debug)]
pub struct MessageDecoder {
    limits: Limits,
}

impl MessageDecoder {
    pub fn new(limits: Limits) -> Self {
        MessageDecoder { limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl Default for MessageDecoder {
    fn default() -> Self {
        MessageDecoder::new(default_limits())
    }
}

impl Decode for MessageDecoder {
    type Frame = Message;
    type Error = MongoError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, MongoError> {
        let Some(len) = le_i32(buf, 0) else { return Ok(None) };
        let len = checked_len(len, &self.limits)?;
        if buf.len() < len {
            reserve_for_frame(buf, len, &self.limits);
            return Ok(None);
        }
        let bytes = buf.split_to(len).freeze();
        // The length was checked above; the header is the first 16 of `len >= 16` bytes.
        let header = Header::parse(&bytes).ok_or(MongoError::Truncated { what: "message header" })?;
        Ok(Some(Message { header, bytes }))
    }
}

pub(crate) fn le_i32(buf: &[u8], at: usize) -> Option<i32> {
    let end = at.checked_add(4)?;
    Some(i32::from_le_bytes(buf.get(at..end)?.try_into().ok()?))
}

pub(crate) fn le_u32(buf: &[u8], at: usize) -> Option<u32> {
    le_i32(buf, at).map(|v| v as u32)
}

pub(crate) fn le_i64(buf: &[u8], at: usize) -> Option<i64> {
    let end = at.checked_add(8)?;
    Some(i64::from_le_bytes(buf.get(at..end)?.try_into().ok()?))
}
