//! Finding where a head (or a trailer section) ends, strictly, looking at each byte once.
//!
//! RFC 9112 §2.2: lines end with CRLF. A recipient MAY accept a bare LF; we do not — a
//! proxy that reads a bare LF as a line end while the server behind it does not (or the
//! other way round) is a request-smuggling gap (RFC 9112 §11.2) — and a bare CR is an
//! error by the RFC. A field line starting with whitespace is obsolete line folding
//! (§5.2), or whitespace between the start line and the first field (§2.2): both are
//! rejected. Empty lines before a request line are skipped (§2.2: "SHOULD ignore at least
//! one empty line"), and count towards the head limit.
//!
//! The scan keeps its position between calls, so a head arriving byte by byte costs one
//! pass, not one pass per byte.

use memchr::memchr2;

/// Why a scan stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanError {
    BareLf,
    BareCr,
    ObsFold,
    /// No end within the limit; `first_line`: not even the first line ended.
    TooLarge {
        first_line: bool,
    },
}

/// A scan in progress over the bytes of one head or trailer section, from its first byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LineScan {
    /// Everything before `pos` has been looked at.
    pos: usize,
    /// Where the current line starts.
    line_start: usize,
    /// Non-empty lines seen.
    lines: usize,
}

impl LineScan {
    /// Where the section ends (just past its empty line), `Ok(None)` when more bytes are
    /// needed. `head`: a start line comes first and empty lines before it are skipped;
    /// otherwise (a trailer section) an empty first line ends the section at once.
    pub(crate) fn scan(&mut self, buf: &[u8], max: usize, head: bool) -> Result<Option<usize>, ScanError> {
        let window = &buf[..buf.len().min(max)];
        loop {
            // A line that starts with whitespace after the start line (or in a trailer section).
            if self.pos == self.line_start && (self.lines > 0 || !head) {
                if let Some(b' ' | b'\t') = window.get(self.pos) {
                    return Err(ScanError::ObsFold);
                }
            }
            let Some(off) = window.get(self.pos..).and_then(|rest| memchr2(b'\r', b'\n', rest)) else {
                self.pos = window.len();
                break;
            };
            let i = self.pos + off;
            if window[i] == b'\n' {
                return Err(ScanError::BareLf);
            }
            match window.get(i + 1) {
                None => {
                    // A CR at the end of what we have: look again when the next byte is here.
                    self.pos = i;
                    break;
                }
                Some(b'\n') => {}
                Some(_) => return Err(ScanError::BareCr),
            }
            let empty = i == self.line_start;
            self.pos = i + 2;
            self.line_start = i + 2;
            if empty {
                if self.lines > 0 || !head {
                    return Ok(Some(i + 2));
                }
            } else {
                self.lines += 1;
            }
        }
        if buf.len() >= max {
            return Err(ScanError::TooLarge { first_line: self.lines == 0 });
        }
        Ok(None)
    }

    /// Whether the scan has seen no byte of a start line yet (only empty lines, or nothing).
    pub(crate) fn pristine(&self) -> bool {
        self.lines == 0 && self.pos == self.line_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(input: &[u8], head: bool) -> Result<Option<usize>, ScanError> {
        LineScan::default().scan(input, 1 << 20, head)
    }

    #[test]
    fn ends_heads_and_trailer_sections() {
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\n\r\nrest", true), Ok(Some(18)));
        assert_eq!(scan_all(b"\r\n\r\nGET / HTTP/1.1\r\nA: b\r\n\r\n", true), Ok(Some(28)));
        assert_eq!(scan_all(b"\r\n", false), Ok(Some(2)));
        assert_eq!(scan_all(b"A: b\r\n\r\n", false), Ok(Some(8)));
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\nA: b\r\n\r", true), Ok(None));
    }

    #[test]
    fn byte_by_byte_finds_the_same_end() {
        let input = b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut s = LineScan::default();
        for n in 0..input.len() {
            assert_eq!(s.scan(&input[..n], 1 << 20, true), Ok(None), "{n}");
        }
        assert_eq!(s.scan(input, 1 << 20, true), Ok(Some(input.len())));
    }

    #[test]
    fn bare_line_ends_folding_and_size_are_errors() {
        assert_eq!(scan_all(b"GET / HTTP/1.1\nHost: a\n\n", true), Err(ScanError::BareLf));
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", true), Err(ScanError::BareCr));
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", true), Err(ScanError::ObsFold));
        assert_eq!(scan_all(b"GET / HTTP/1.1\r\n\tA: b\r\n\r\n", true), Err(ScanError::ObsFold));
        assert_eq!(scan_all(b" A: b\r\n\r\n", false), Err(ScanError::ObsFold));
        let mut s = LineScan::default();
        assert_eq!(s.scan(b"GET /aaaaaaaa", 8, true), Err(ScanError::TooLarge { first_line: true }));
        let mut s = LineScan::default();
        assert_eq!(s.scan(b"GET / HTTP/1.1\r\nA: b\r\n\r\n", 23, true), Err(ScanError::TooLarge { first_line: false }));
        let mut s = LineScan::default();
        assert_eq!(s.scan(b"GET / HTTP/1.1\r\nA: b\r\n\r\n", 24, true), Ok(Some(24)));
    }
}
