//! RESP decoding errors. Each is final for the connection: after one, the byte stream can
//! no longer be split into frames.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    #[error("invalid type byte 0x{0:02x}")]
    InvalidType(u8),
    #[error("line not terminated by CRLF")]
    MissingCrlf,
    #[error("line longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("invalid length")]
    InvalidLength,
    #[error("invalid integer")]
    InvalidInteger,
    #[error("invalid boolean")]
    InvalidBoolean,
    #[error("bulk length {len} exceeds the limit of {limit}")]
    BulkTooLarge { len: u64, limit: usize },
    #[error("aggregate of {len} elements exceeds the limit of {limit}")]
    AggregateTooLarge { len: u64, limit: usize },
    #[error("nesting deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("unbalanced quotes in inline command")]
    UnbalancedQuotes,
    #[error("not a command (expected an array of bulk strings or an inline command)")]
    NotACommand,
}
