//! Kafka codec errors: one enum for framing, headers, bodies and correlation.
//!
//! Every variant is `Copy` and comparable so tests can assert the exact error. A framing
//! error ([`KafkaError::NegativeSize`], [`KafkaError::FrameTooLarge`]) is final for a
//! connection's decoding: the stream has lost its frame boundaries. A header or body error
//! concerns one frame, which a filter may still forward unchanged; a correlation error
//! means requests and responses no longer line up, and a filter stops decoding (or closes).

use super::api::ApiKey;

/// Errors from framing, parsing, encoding and correlating Kafka messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KafkaError {
    /// A size prefix below zero.
    #[error("frame size {size} is negative")]
    NegativeSize { size: i32 },
    /// A size prefix above the limit (the broker's `socket.request.max.bytes`).
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { size: usize, limit: usize },
    /// The slice handed to a frame constructor is not exactly one frame.
    #[error("slice of {actual} bytes is not one frame (its size prefix says {expected})")]
    NotOneFrame { expected: usize, actual: usize },
    /// A field runs past the end of its frame (or of the slice it must fit in).
    #[error("{what}: runs past the end of the frame")]
    Truncated { what: &'static str },
    /// A field holds a value the protocol does not allow there.
    #[error("malformed {what}")]
    Malformed { what: &'static str },
    /// A string that is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    /// A varint longer than its type allows.
    #[error("{what}: varint is too long")]
    VarintTooLong { what: &'static str },
    /// An array count that the bytes left cannot hold (checked before anything is kept).
    #[error("{what}: {count} elements cannot fit in the {left} bytes left")]
    ArrayTooLong { what: &'static str, count: usize, left: usize },
    /// Bytes left over after a body was read to its end.
    #[error("{left} bytes left over after the {what}")]
    TrailingBytes { what: &'static str, left: usize },
    /// A body version this codec does not decode (the frame still passes by its header).
    #[error("{} v{version} is not decoded by this codec", api.name())]
    UnsupportedVersion { api: ApiKey, version: i16 },
    /// A body decoder for one API was handed another.
    #[error("expected a {} body, got {}", expected.name(), actual.name())]
    WrongApi { expected: ApiKey, actual: ApiKey },
    /// More requests await responses than the correlator keeps.
    #[error("more than {limit} requests in flight")]
    TooManyInFlight { limit: usize },
    /// A response whose correlation id is not that of the oldest request in flight.
    #[error("response correlation id {got}, expected {expected}")]
    CorrelationMismatch { expected: i32, got: i32 },
    /// A response while no request awaits one.
    #[error("response with correlation id {got} while no request is in flight")]
    UnsolicitedResponse { got: i32 },
    /// A value too large to encode in its field (a host name over 32767 bytes, say).
    #[error("{what} is too large to encode")]
    TooLargeToEncode { what: &'static str },
}
