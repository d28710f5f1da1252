//! Finding where a RESP frame ends without decoding it.
//!
//! The scanner walks element headers iteratively with a fixed-size stack of "elements
//! left" per open aggregate (no recursion, no allocation), jumps over bulk payloads by
//! their declared length once those bytes are present, and keeps its position between
//! calls so that a frame arriving in many reads is scanned once. RESP3 attributes (`|`)
//! are folded into the value that follows them, as the spec says they decorate it.

use super::error::RespError;

/// The deepest nesting any configuration may allow; the stack is this big.
pub const MAX_DEPTH_CAP: usize = 64;

/// Size and depth limits; exceeding one is a [`RespError`], never an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RespLimits {
    /// Largest bulk string payload (Redis's `proto-max-bulk-len` default: 512 MiB).
    pub max_bulk_len: usize,
    /// Most elements in one aggregate (maps and attributes count keys and values).
    pub max_aggregate_len: usize,
    /// Deepest nesting of aggregates, at most [`MAX_DEPTH_CAP`].
    pub max_depth: usize,
    /// Longest header, simple-string, error or inline-command line (Redis's inline limit:
    /// 64 KiB).
    pub max_line_len: usize,
    /// Whether a frame may be an inline command (requests only).
    pub allow_inline: bool,
}

impl RespLimits {
    /// Limits for the client → server direction.
    pub fn requests() -> Self {
        RespLimits { allow_inline: true, ..Self::replies() }
    }

    /// Limits for the server → client direction.
    pub fn replies() -> Self {
        RespLimits {
            max_bulk_len: 512 * 1024 * 1024,
            max_aggregate_len: 1 << 24,
            max_depth: 32,
            max_line_len: 64 * 1024,
            allow_inline: false,
        }
    }
}

/// A resumable frame-boundary finder for the frame at the start of a buffer.
#[derive(Clone, Debug)]
pub struct FrameScanner {
    limits: RespLimits,
    /// Where scanning resumes, relative to the frame's first byte.
    pos: usize,
    depth: usize,
    /// Elements still expected by each open aggregate.
    remaining: [u64; MAX_DEPTH_CAP],
    /// Bit `i` set: the aggregate at depth `i` is an attribute.
    attributes: u64,
}

impl FrameScanner {
    pub fn new(mut limits: RespLimits) -> Self {
        limits.max_depth = limits.max_depth.min(MAX_DEPTH_CAP);
        FrameScanner { limits, pos: 0, depth: 0, remaining: [0; MAX_DEPTH_CAP], attributes: 0 }
    }

    pub fn limits(&self) -> &RespLimits {
        &self.limits
    }

    /// Whether a frame has been partly scanned (the next `scan` resumes inside it).
    pub fn in_progress(&self) -> bool {
        self.pos != 0 || self.depth != 0
    }

    /// Forgets the frame in progress (after the caller consumed or dropped it).
    pub fn reset(&mut self) {
        self.pos = 0;
        self.depth = 0;
        self.attributes = 0;
    }

    /// The length of the complete frame at the start of `buf`, or `None` if more bytes
    /// are needed. Between calls `buf` may only grow at the end; after `Some` the scanner
    /// starts over for the next frame.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, RespError> {
        loop {
            let start = self.pos;
            let Some(&ty) = buf.get(start) else { return Ok(None) };
            let Some(lf) = self.find_line_end(buf, start)? else { return Ok(None) };
            // Like Redis (processInputBuffer), a request that does not start with `*` is an
            // inline command, whatever its first byte.
            let inline = self.depth == 0 && start == 0 && self.limits.allow_inline && ty != b'*';
            if inline {
                // An inline command: the whole line, CRLF or bare LF.
                self.reset();
                return Ok(Some(lf + 1));
            }
            if lf <= start + 1 || buf[lf - 1] != b'\r' {
                return Err(if is_type_byte(ty) { RespError::MissingCrlf } else { RespError::InvalidType(ty) });
            }
            let line = &buf[start + 1..lf - 1];
            let next = lf + 1;
            match ty {
                b'+' | b'-' => {}
                b':' => {
                    parse_integer(line)?;
                }
                b'_' if line.is_empty() => {}
                b'_' => return Err(RespError::InvalidLength),
                b'#' if line == b"t" || line == b"f" => {}
                b'#' => return Err(RespError::InvalidBoolean),
                b',' | b'(' if !line.is_empty() => {}
                b',' | b'(' => return Err(RespError::InvalidInteger),
                b'$' | b'!' | b'=' => {
                    let Some(len) = parse_len(line, ty == b'$')? else {
                        if let Some(len) = self.element_done(next) {
                            return Ok(Some(len));
                        }
                        continue;
                    };
                    if len > self.limits.max_bulk_len as u64 {
                        return Err(RespError::BulkTooLarge { len, limit: self.limits.max_bulk_len });
                    }
                    let end = next + len as usize;
                    if buf.len() < end + 2 {
                        // Resume at this header: re-reading it later is cheap, and the
                        // payload is never looked at.
                        return Ok(None);
                    }
                    if &buf[end..end + 2] != b"\r\n" {
                        return Err(RespError::MissingCrlf);
                    }
                    if ty == b'=' && (len < 4 || buf[next + 3] != b':') {
                        return Err(RespError::InvalidLength);
                    }
                    if let Some(len) = self.element_done(end + 2) {
                        return Ok(Some(len));
                    }
                    continue;
                }
                b'*' | b'~' | b'>' | b'%' | b'|' => {
                    let Some(count) = parse_len(line, ty == b'*')? else {
                        if let Some(len) = self.element_done(next) {
                            return Ok(Some(len));
                        }
                        continue;
                    };
                    let elements = if matches!(ty, b'%' | b'|') { count.saturating_mul(2) } else { count };
                    if elements > self.limits.max_aggregate_len as u64 {
                        return Err(RespError::AggregateTooLarge {
                            len: elements,
                            limit: self.limits.max_aggregate_len,
                        });
                    }
                    if elements == 0 {
                        if ty == b'|' {
                            // An empty attribute decorates the next value; nothing ends.
                            self.pos = next;
                            continue;
                        }
                        if let Some(len) = self.element_done(next) {
                            return Ok(Some(len));
                        }
                        continue;
                    }
                    if self.depth >= self.limits.max_depth {
                        return Err(RespError::TooDeep { limit: self.limits.max_depth });
                    }
                    self.remaining[self.depth] = elements;
                    if ty == b'|' {
                        self.attributes |= 1 << self.depth;
                    }
                    self.depth += 1;
                    self.pos = next;
                    continue;
                }
                other => return Err(RespError::InvalidType(other)),
            }
            if let Some(len) = self.element_done(next) {
                return Ok(Some(len));
            }
        }
    }

    /// The index of the `\n` ending the line that starts at `start`.
    fn find_line_end(&self, buf: &[u8], start: usize) -> Result<Option<usize>, RespError> {
        let limit = self.limits.max_line_len + 2;
        let window = &buf[start..buf.len().min(start + 1 + limit)];
        match find_lf(window) {
            Some(i) => Ok(Some(start + i)),
            None if window.len() > limit => Err(RespError::LineTooLong { limit: self.limits.max_line_len }),
            None => Ok(None),
        }
    }

    /// Records that an element ended just before `next`; returns the frame length when
    /// that completed the top-level frame.
    fn element_done(&mut self, next: usize) -> Option<usize> {
        self.pos = next;
        loop {
            if self.depth == 0 {
                self.reset();
                return Some(next);
            }
            let top = self.depth - 1;
            self.remaining[top] -= 1;
            if self.remaining[top] > 0 {
                return None;
            }
            self.depth -= 1;
            if self.attributes & (1 << top) != 0 {
                // A finished attribute is not an element: the value it decorates follows.
                self.attributes &= !(1 << top);
                return None;
            }
        }
    }
}

pub(super) fn is_type_byte(b: u8) -> bool {
    matches!(b, b'+' | b'-' | b':' | b'$' | b'*' | b'_' | b'#' | b',' | b'(' | b'!' | b'=' | b'%' | b'~' | b'|' | b'>')
}

/// A non-negative length, or `None` for `-1` where a null is allowed. Canonical decimal
/// only, as Redis's `string2ll` requires: no sign, no leading zeros.
/// The offset of the first LF in `bytes`. Header lines are short (`$3\r\n`): a plain loop
/// over the first bytes finds their end faster than memchr's vector setup, and longer
/// lines (simple strings, inline commands) go on to memchr.
#[inline]
pub(super) fn find_lf(bytes: &[u8]) -> Option<usize> {
    const SHORT: usize = 24;
    let head = &bytes[..bytes.len().min(SHORT)];
    match head.iter().position(|&b| b == b'\n') {
        Some(i) => Some(i),
        None if bytes.len() > SHORT => memchr::memchr(b'\n', &bytes[SHORT..]).map(|i| i + SHORT),
        None => None,
    }
}

pub(super) fn parse_len(line: &[u8], allow_null: bool) -> Result<Option<u64>, RespError> {
    if allow_null && line == b"-1" {
        return Ok(None);
    }
    let leading_zero = line.len() > 1 && line[0] == b'0';
    if line.is_empty() || line.len() > 19 || leading_zero || !line.iter().all(u8::is_ascii_digit) {
        return Err(RespError::InvalidLength);
    }
    Ok(Some(line.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))))
}

pub(super) fn parse_integer(line: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(line).ok().and_then(|s| s.parse().ok()).ok_or(RespError::InvalidInteger)
}
