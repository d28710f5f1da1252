//! MySQL codec errors: one enum for framing, message parsing and the session state machine.
//!
//! A framing or session error is final for the connection's decoding: after one, the byte
//! stream can no longer be trusted to be split into the packets the session expects (the
//! session refuses further input with [`MysqlError::Failed`]). The proxy filter decides
//! whether that means "stop observing, keep forwarding" or "close".

use super::event::Opaque;
use super::packet::Direction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MysqlError {
    /// One wire packet announces more payload than the framer may buffer.
    #[error("packet payload of {len} bytes exceeds the limit of {limit} bytes")]
    PacketTooLarge { len: usize, limit: usize },
    /// A 0xFFFFFF continuation chain has grown past the logical payload limit.
    #[error("logical payload of at least {len} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge { len: usize, limit: usize },
    /// A handshake-phase packet (greeting, login, auth data) larger than allowed.
    #[error("handshake packet of {len} bytes exceeds the limit of {limit} bytes")]
    HandshakeTooLarge { len: usize, limit: usize },
    /// A field runs past the end of its packet.
    #[error("{what}: runs past the end of the packet")]
    Truncated { what: &'static str },
    /// A field holds a value the protocol does not allow there.
    #[error("malformed {what}")]
    Malformed { what: &'static str },
    /// A packet's sequence id is not the next one of its exchange.
    #[error("{direction} packet has sequence id {got}, expected {expected}")]
    SequenceMismatch { direction: Direction, expected: u8, got: u8 },
    /// A packet that has no meaning in the session's current state.
    #[error("unexpected {direction} packet (first byte {first:#04x}) while {state}")]
    UnexpectedPacket { direction: Direction, state: &'static str, first: u8 },
    /// An empty packet where the protocol requires content (a command, a row, a column).
    #[error("empty {direction} packet while {state}")]
    EmptyPacket { direction: Direction, state: &'static str },
    /// The greeting is not protocol version 10 (nor an ERR packet).
    #[error("unsupported protocol version {0}")]
    UnsupportedProtocol(u8),
    /// A result set announces more columns than allowed.
    #[error("{count} columns exceed the limit of {limit}")]
    TooManyColumns { count: u64, limit: u64 },
    /// Too many pipelined commands are waiting for their responses.
    #[error("more than {limit} pipelined commands awaiting responses")]
    TooManyPipelined { limit: usize },
    /// The slice handed to the session is not exactly one packet.
    #[error("slice of {actual} bytes is not one packet (its header says {expected})")]
    NotOnePacket { expected: usize, actual: usize },
    /// Reassembly was asked for more bytes than its limit.
    #[error("reassembling {len} bytes exceeds the limit of {limit} bytes")]
    ReassemblyTooLarge { len: usize, limit: usize },
    /// The stream stopped being plain MySQL packets (TLS, compression).
    #[error("the stream is opaque from here on ({0:?})")]
    Opaque(Opaque),
    /// The server ended the session (an ERR during the handshake or an unsolicited one).
    #[error("the session is closed")]
    Closed,
    /// An earlier error ended decoding.
    #[error("decoding stopped after an earlier error")]
    Failed,
}
