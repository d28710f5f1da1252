//! PostgreSQL codec errors: one enum for framing, message parsing and the session.
//!
//! A framing or session error is final for the connection's decoding (the session answers
//! [`PgError::Failed`] afterwards); the proxy filter decides between "stop observing, keep
//! forwarding" and "close".

use super::frame::Direction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PgError {
    /// A length word below 4 (it counts itself), or a startup packet below 8.
    #[error("message length {len} is smaller than its own header")]
    LengthTooSmall { len: i64 },
    /// A typed message longer than the limit.
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge { len: usize, limit: usize },
    /// A startup-phase packet longer than the limit (the server allows 10000 bytes).
    #[error("startup packet of {len} bytes exceeds the limit of {limit} bytes")]
    StartupTooLarge { len: usize, limit: usize },
    /// A field runs past the end of its message.
    #[error("{what}: runs past the end of the message")]
    Truncated { what: &'static str },
    /// A field holds a value the protocol does not allow there.
    #[error("malformed {what}")]
    Malformed { what: &'static str },
    /// A StartupMessage with more parameters than allowed.
    #[error("more than {limit} startup parameters")]
    TooManyParameters { limit: usize },
    /// A startup packet with a protocol code the codec does not know.
    #[error("unsupported protocol code {0:#010x}")]
    UnsupportedProtocol(u32),
    /// A message that has no meaning in the session's current state.
    #[error("unexpected {direction} message (tag {tag:#04x}) while {state}")]
    UnexpectedMessage { direction: Direction, state: &'static str, tag: u8 },
    /// Too many messages await the server's answers, or too many statements/portals are named.
    #[error("more than {limit} {what}")]
    TooMany { what: &'static str, limit: usize },
    /// The slice handed to the session is not exactly one message.
    #[error("slice of {actual} bytes is not one message (its header says {expected})")]
    NotOneMessage { expected: usize, actual: usize },
    /// The stream is TLS or GSSAPI-encrypted from here on.
    #[error("the stream is encrypted from here on")]
    Opaque,
    /// Terminate was sent or the server closed the session with a FATAL error.
    #[error("the session is closed")]
    Closed,
    /// An earlier error ended decoding.
    #[error("decoding stopped after an earlier error")]
    Failed,
}
