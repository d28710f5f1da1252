//! MongoDB codec errors: one enum for framing, message parsing, decompression and request
//! correlation ([`MongoError`]), and one for the BSON reader ([`BsonError`]).
//!
//! Every variant is `Copy` and comparable so tests can assert the exact error. A framing
//! error is final for a connection's decoding (the byte stream has lost its message
//! boundaries); a parse error concerns one message, which the proxy filter may still
//! forward unchanged. The filter decides between "stop observing, keep forwarding" and
//! "close".

use super::header::OpCode;

/// Errors from the BSON reader (<https://bsonspec.org/spec.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BsonError {
    /// A field runs past the end of the bytes it must fit in.
    #[error("BSON {what}: runs past the end of its container")]
    Truncated { what: &'static str },
    /// A document length below 5, or one that is not the length of the slice it frames.
    #[error("BSON document length {len} is invalid here")]
    BadDocumentLength { len: i64 },
    /// A document whose last byte is not the 0x00 terminator.
    #[error("BSON document is not terminated by 0x00")]
    MissingTerminator,
    /// A 0x00 type byte before the end of a document's element list.
    #[error("BSON document ends before its declared length")]
    EarlyTerminator,
    /// A key or regex without its NUL terminator inside its document.
    #[error("BSON cstring is not terminated")]
    UnterminatedCString,
    /// A string length below 1 (it counts its NUL) or a string not ending in NUL.
    #[error("BSON string is malformed")]
    BadString,
    /// A key or string that is not UTF-8.
    #[error("BSON {what} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    /// A negative binary length, or a code-with-scope whose parts do not add up.
    #[error("BSON {what} has an invalid length")]
    BadLength { what: &'static str },
    /// A boolean byte other than 0 or 1.
    #[error("BSON boolean byte {0:#04x} is neither 0 nor 1")]
    BadBool(u8),
    /// An element type the spec does not define.
    #[error("unknown BSON element type {0:#04x}")]
    UnknownType(u8),
    /// Documents nested deeper than the limit.
    #[error("BSON nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
}

/// Errors from framing, parsing, decompressing and correlating MongoDB messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MongoError {
    /// A messageLength below the 16-byte header (or negative).
    #[error("message length {len} is smaller than the 16-byte header")]
    LengthTooSmall { len: i64 },
    /// A messageLength above the limit (mongod's maxMessageSizeBytes is 48,000,000).
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge { len: usize, limit: usize },
    /// The slice handed to a parser is not exactly the message its header describes.
    #[error("slice of {actual} bytes is not one message (its header says {expected})")]
    NotOneMessage { expected: usize, actual: usize },
    /// A parser for one opcode was handed another.
    #[error("expected an {expected:?} message, got {actual:?}")]
    WrongOpCode { expected: OpCode, actual: OpCode },
    /// A field runs past the end of its message or section.
    #[error("{what}: runs past the end of the message")]
    Truncated { what: &'static str },
    /// A field holds a value the protocol does not allow there.
    #[error("malformed {what}")]
    Malformed { what: &'static str },
    /// An OP_MSG with a required flag bit (0-15) the spec does not define.
    #[error("OP_MSG sets undefined required flag bits {bits:#06x}")]
    UnknownRequiredFlags { bits: u32 },
    /// An OP_MSG whose CRC-32C does not match its checksum field.
    #[error("OP_MSG checksum {stored:#010x} does not match the computed {computed:#010x}")]
    ChecksumMismatch { stored: u32, computed: u32 },
    /// An OP_MSG section kind other than 0 and 1 (the spec says: error, close).
    #[error("unknown OP_MSG section kind {0}")]
    UnknownSectionKind(u8),
    /// An OP_MSG without exactly one body (kind 0) section.
    #[error("OP_MSG has {count} body sections, expected exactly one")]
    BodySections { count: usize },
    /// Two document sequences with the same identifier in one OP_MSG.
    #[error("OP_MSG repeats a document sequence identifier")]
    DuplicateSequence,
    /// More document sequences than the codec reads (real commands send one or two).
    #[error("OP_MSG has more than {limit} document sequences")]
    TooManySequences { limit: usize },
    /// A BSON document inside a message is malformed.
    #[error("{what}: {source}")]
    Bson { what: &'static str, source: BsonError },
    /// An OP_COMPRESSED compressor id the spec does not define.
    #[error("unknown OP_COMPRESSED compressor id {0}")]
    UnknownCompressor(u8),
    /// An OP_COMPRESSED whose uncompressedSize is negative or above the cap.
    #[error("uncompressed size {size} is outside 0..={limit}")]
    UncompressedTooLarge { size: i64, limit: usize },
    /// The decompressed bytes are not exactly uncompressedSize long (or a bomb was cut off).
    #[error("decompressed to {actual}{} bytes, the header says {declared}", if *.cut_off { "+" } else { "" })]
    UncompressedSizeMismatch { declared: usize, actual: usize, cut_off: bool },
    /// The compressed payload does not decode.
    #[error("{compressor} payload does not decompress: {reason}")]
    Decompress { compressor: &'static str, reason: &'static str },
    /// An OP_COMPRESSED wrapping another OP_COMPRESSED.
    #[error("OP_COMPRESSED wraps another OP_COMPRESSED")]
    NestedCompression,
    /// More requests await replies than the correlator keeps.
    #[error("more than {limit} requests in flight")]
    TooManyInFlight { limit: usize },
    /// A request reusing the requestID of one still in flight.
    #[error("requestID {0} is already in flight")]
    DuplicateRequestId(i32),
    /// A reply whose responseTo matches no request in flight.
    #[error("reply to unknown requestID {response_to}")]
    UnmatchedReply { response_to: i32 },
    /// A request sent while the server streams moreToCome replies (the spec forbids it).
    #[error("request sent while an exhaust reply stream is open")]
    RequestDuringExhaust,
}

impl MongoError {
    pub(crate) fn bson(what: &'static str) -> impl FnOnce(BsonError) -> MongoError {
        move |source| MongoError::Bson { what, source }
    }
}
