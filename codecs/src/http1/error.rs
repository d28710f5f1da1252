//! HTTP/1.1 codec errors: one enum for heads, framing and bodies, and the status code a
//! server answers each with.
//!
//! Every error is final for the connection's decoding (a decoder answers
//! [`H1Error::Failed`] afterwards): RFC 9112 §11.2 leaves no safe way to resynchronise a
//! byte stream whose framing is in doubt, so the proxy answers with [`H1Error::status`]
//! (for a request; an invalid *response* is a 502 to the client) and closes.

/// What went wrong decoding an HTTP/1.x message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum H1Error {
    /// The head did not end within `limit` bytes (RFC 9112 §2.3 leaves the limit to us).
    #[error("message head larger than {limit} bytes")]
    HeadTooLarge { limit: usize },
    /// The request line alone did not end within the head limit.
    #[error("request line longer than {limit} bytes")]
    RequestLineTooLong { limit: usize },
    /// The request target is longer than allowed (RFC 9112 §3: 414).
    #[error("request target of {len} bytes exceeds the limit of {limit} bytes")]
    TargetTooLong { len: usize, limit: usize },
    /// More header (or trailer) fields than allowed.
    #[error("more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    /// A line feed not preceded by a carriage return (RFC 9112 §2.2: we do not accept bare LF).
    #[error("bare LF in a message head or chunk line")]
    BareLf,
    /// A carriage return not followed by a line feed (RFC 9112 §2.2).
    #[error("bare CR in a message head or chunk line")]
    BareCr,
    /// A field line starting with whitespace: obsolete line folding, or whitespace between the
    /// start line and the first field (RFC 9112 §5.2, §2.2).
    #[error("obsolete line folding or whitespace at the start of a field line")]
    ObsFold,
    /// The first bytes are the HTTP/2 connection preface (RFC 9113 §3.4).
    #[error("HTTP/2 connection preface on an HTTP/1 connection")]
    Http2Preface,
    /// A request line that is not `method SP request-target SP HTTP-version` (RFC 9112 §3).
    #[error("malformed request line")]
    MalformedRequestLine,
    /// A request target that is not one of the four forms, or not allowed with its method
    /// (RFC 9112 §3.2).
    #[error("invalid request target")]
    InvalidTarget,
    /// A status line that is not `HTTP-version SP 3DIGIT SP reason` or a code below 100
    /// (RFC 9112 §4).
    #[error("malformed status line")]
    MalformedStatusLine,
    /// A version other than HTTP/1.0 or HTTP/1.1 (RFC 9112 §2.3).
    #[error("unsupported HTTP version")]
    InvalidVersion,
    /// A field name that is not a token, e.g. whitespace before the colon (RFC 9112 §5.1).
    #[error("invalid header field name")]
    InvalidHeaderName,
    /// A field value with a control character (RFC 9110 §5.5).
    #[error("invalid header field value")]
    InvalidHeaderValue,
    /// An HTTP/1.1 request without Host (RFC 9112 §3.2).
    #[error("HTTP/1.1 request without Host")]
    MissingHost,
    /// More than one Host field line (RFC 9112 §3.2).
    #[error("more than one Host header field")]
    DuplicateHost,
    /// A Host value that is not `uri-host [ ":" port ]` (RFC 9110 §7.2).
    #[error("invalid Host header field")]
    InvalidHost,
    /// Both Content-Length and Transfer-Encoding (RFC 9112 §6.3 rule 3: handled as an error).
    #[error("both Content-Length and Transfer-Encoding")]
    ContentLengthAndTransferEncoding,
    /// A Content-Length that is not 1*DIGIT or does not fit 64 bits (RFC 9110 §8.6).
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Content-Length values that differ (RFC 9112 §6.3 rule 5).
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// A Transfer-Encoding list that is empty, not tokens, or applies chunked twice
    /// (RFC 9112 §6.1, §7).
    #[error("invalid Transfer-Encoding")]
    InvalidTransferEncoding,
    /// A request whose Transfer-Encoding does not end with chunked (RFC 9112 §6.3 rule 4: 400).
    #[error("chunked is not the final transfer coding of a request")]
    ChunkedNotFinal,
    /// A request transfer coding sluice does not know (RFC 9112 §6.1: 501).
    #[error("unknown transfer coding")]
    UnknownTransferCoding,
    /// Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1: the framing is faulty).
    #[error("Transfer-Encoding in an HTTP/1.0 message")]
    TransferEncodingInHttp10,
    /// A chunk size that is not 1*HEXDIG (RFC 9112 §7.1).
    #[error("invalid chunk size")]
    InvalidChunkSize,
    /// A chunk size of more than 16 hex digits (it would not fit 64 bits).
    #[error("chunk size with too many digits")]
    ChunkSizeTooLong,
    /// A chunk line (size and extensions) longer than allowed.
    #[error("chunk line longer than {limit} bytes")]
    ChunkLineTooLong { limit: usize },
    /// A chunk extension with a control character (RFC 9112 §7.1.1).
    #[error("invalid chunk extension")]
    InvalidChunkExtension,
    /// Chunk data not followed by CRLF (RFC 9112 §7.1).
    #[error("chunk data not followed by CRLF")]
    ChunkDataNoCrlf,
    /// The trailer section did not end within the limit.
    #[error("trailer section larger than {limit} bytes")]
    TrailersTooLarge { limit: usize },
    /// A body longer than allowed (413).
    #[error("body larger than {limit} bytes")]
    BodyTooLarge { limit: u64 },
    /// A 101 response to a request that did not ask for an upgrade (RFC 9110 §15.2.2).
    #[error("101 Switching Protocols to a request without Upgrade")]
    UnexpectedSwitch,
    /// Too many requests await their responses.
    #[error("more than {limit} requests await responses")]
    TooManyPending { limit: usize },
    /// The connection closed inside a message.
    #[error("connection closed inside a message ({what})")]
    UnexpectedEof { what: &'static str },
    /// An earlier error ended decoding.
    #[error("decoding stopped after an earlier error")]
    Failed,
}

impl H1Error {
    /// The status a server answers a request that failed this way with (RFC 9110 §15.5,
    /// §15.6); a proxy answers a client whose *response* failed with 502 instead.
    pub fn status(&self) -> u16 {
        use H1Error::*;
        match self {
            HeadTooLarge { .. } | TooManyHeaders { .. } | TrailersTooLarge { .. } => 431,
            RequestLineTooLong { .. } | TargetTooLong { .. } => 414,
            BodyTooLarge { .. } => 413,
            UnknownTransferCoding => 501,
            _ => 400,
        }
    }
}
