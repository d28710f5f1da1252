//! Caps for one HTTP/1.x connection. RFC 9112 §2.3 and §3 leave the sizes to the
//! recipient ("a server that receives a request-line longer than it wishes to parse MUST
//! respond with 414"); the defaults follow common servers (nginx: 8 KiB lines, 64 KiB heads
//! with `large_client_header_buffers`; Envoy: 60 KiB heads, 100 fields).

/// The most header fields the parser's on-stack index holds; `max_headers` is clamped to it.
pub const HEADER_CAP: usize = 256;

/// Size caps for one decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H1Limits {
    /// The largest head (start line, fields, empty line), in bytes: larger is 431 (or 414
    /// when the request line alone does not fit).
    pub max_head: usize,
    /// The most field lines in a head or a trailer section (at most [`HEADER_CAP`]): 431.
    pub max_headers: usize,
    /// The longest request target: 414.
    pub max_target: usize,
    /// The longest chunk line (size, extensions, CRLF).
    pub max_chunk_line: usize,
    /// The largest trailer section, in bytes.
    pub max_trailers: usize,
    /// The largest body (Content-Length, or chunk data in total): 413. `u64::MAX`: no cap.
    pub max_body: u64,
    /// The most requests a response decoder remembers while their responses are due.
    pub max_pending: usize,
}

impl Default for H1Limits {
    fn default() -> Self {
        H1Limits {
            max_head: 64 * 1024,
            max_headers: 100,
            max_target: 8 * 1024,
            max_chunk_line: 4 * 1024,
            max_trailers: 16 * 1024,
            max_body: u64::MAX,
            max_pending: 1024,
        }
    }
}

impl H1Limits {
    pub(crate) fn header_slots(&self) -> usize {
        self.max_headers.min(HEADER_CAP)
    }
}
