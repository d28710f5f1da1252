//! Framing: how far the next message reaches.
//!
//! Spec: <https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS>
//! and <https://www.postgresql.org/docs/current/protocol-message-formats.html>. The first
//! client packets (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) are untyped:
//! an Int32 length counting itself, then the body. Every other message is a 1-byte tag and
//! an Int32 length counting itself but not the tag. The server answers SSLRequest and
//! GSSENCRequest with a single unframed byte, 'S' or 'N'.

use bytes::{Bytes, BytesMut};

use super::error::PgError;
use super::reader::be_u32;

/// Which side sent a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Frontend,
    Backend,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Frontend => "frontend",
            Direction::Backend => "backend",
        })
    }
}

/// How the next message of one direction is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Untyped: Int32 length (counting itself) and body. The client's first packets.
    Startup,
    /// Tag byte and Int32 length (counting itself, not the tag).
    Typed,
    /// One byte, 'S' or 'N': the server's answer to SSLRequest or GSSENCRequest.
    EncryptionAnswer,
}

/// Caps for one connection's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PgLimits {
    /// The largest typed message, tag and length included.
    pub max_message: usize,
    /// The largest startup-phase packet (the server refuses more than 10000 bytes).
    pub max_startup: usize,
    /// The most StartupMessage parameters the session will read.
    pub max_parameters: usize,
    /// The most messages awaiting the server's answers (pipelined extended protocol).
    pub max_pending: usize,
    /// The most named prepared statements and portals remembered at once.
    pub max_named: usize,
}

impl Default for PgLimits {
    fn default() -> Self {
        PgLimits {
            max_message: 64 * 1024 * 1024,
            max_startup: 10_000,
            max_parameters: 64,
            max_pending: 4096,
            max_named: 10_000,
        }
    }
}

/// Says how many bytes the next message occupies (`Ok(None)`: not enough bytes yet to
/// know, or to hold it all). The length is checked against the limits as soon as it is
/// visible, before waiting for the bytes it announces.
pub fn peek(buf: &[u8], phase: Phase, limits: &PgLimits) -> Result<Option<usize>, PgError> {
    match phase {
        Phase::EncryptionAnswer => Ok((!buf.is_empty()).then_some(1)),
        Phase::Startup => {
            let Some(len) = be_u32(buf) else { return Ok(None) };
            let len = len as usize;
            // Signed on the wire: anything past i32::MAX is a negative length.
            if len > i32::MAX as usize {
                return Err(PgError::LengthTooSmall { len: i64::from(len as u32 as i32) });
            }
            if len < 8 {
                return Err(PgError::LengthTooSmall { len: len as i64 });
            }
            if len > limits.max_startup {
                return Err(PgError::StartupTooLarge { len, limit: limits.max_startup });
            }
            Ok((buf.len() >= len).then_some(len))
        }
        Phase::Typed => {
            let Some(len) = buf.get(1..).and_then(be_u32) else { return Ok(None) };
            if len > i32::MAX as u32 {
                return Err(PgError::LengthTooSmall { len: i64::from(len as i32) });
            }
            if len < 4 {
                return Err(PgError::LengthTooSmall { len: i64::from(len) });
            }
            let total = len as usize + 1;
            if total > limits.max_message {
                return Err(PgError::MessageTooLarge { len: total, limit: limits.max_message });
            }
            Ok((buf.len() >= total).then_some(total))
        }
    }
}

/// Cuts the next whole message off `buf` (zero-copy), or returns `Ok(None)` leaving `buf`
/// untouched.
pub fn split_message(buf: &mut BytesMut, phase: Phase, limits: &PgLimits) -> Result<Option<Bytes>, PgError> {
    Ok(peek(buf, phase, limits)?.map(|n| buf.split_to(n).freeze()))
}

/// A typed message's tag and body (after the length word). `msg` must be one whole message.
pub fn typed_body(msg: &[u8]) -> Result<(u8, &[u8]), PgError> {
    let len = msg.get(1..).and_then(be_u32).ok_or(PgError::Truncated { what: "message header" })? as usize;
    if len.checked_add(1) != Some(msg.len()) {
        return Err(PgError::NotOneMessage { expected: len.saturating_add(1), actual: msg.len() });
    }
    Ok((msg[0], &msg[5..]))
}
