//! Bounded reads inside one message body: Int16/Int32 big-endian, NUL-terminated strings
//! and byte runs, as the spec's "Message Data Types" section defines them
//! (<https://www.postgresql.org/docs/current/protocol-message-types.html>).

use super::error::PgError;

/// A cursor over one message body; every read checks the bounds and never panics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], PgError> {
        if self.buf.len() < n {
            return Err(PgError::Truncated { what });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, PgError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, PgError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, PgError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An Int32 length and that many bytes; `None` for -1 (SQL NULL). Any other negative
    /// length is malformed.
    pub fn value(&mut self, what: &'static str) -> Result<Option<&'a [u8]>, PgError> {
        match self.u32(what)? as i32 {
            -1 => Ok(None),
            len if len < 0 => Err(PgError::Malformed { what }),
            len => self.bytes(len as usize, what).map(Some),
        }
    }

    /// A NUL-terminated string, without its NUL.
    pub fn cstr(&mut self, what: &'static str) -> Result<&'a [u8], PgError> {
        // Names and command tags are a few bytes: a plain scan finds their NUL before
        // memchr's set-up would pay off; long strings (SQL text) go to memchr.
        let short = &self.buf[..self.buf.len().min(SHORT_CSTR)];
        let end = match short.iter().position(|&b| b == 0) {
            Some(end) => end,
            None if self.buf.len() <= SHORT_CSTR => return Err(PgError::Truncated { what }),
            None => memchr::memchr(0, &self.buf[SHORT_CSTR..]).ok_or(PgError::Truncated { what })? + SHORT_CSTR,
        };
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }
}

/// How far [`Reader::cstr`] scans byte by byte before it hands over to memchr.
const SHORT_CSTR: usize = 16;

pub(crate) fn be_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}
