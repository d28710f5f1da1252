//! The protocol's basic data types, read from inside one packet's payload.
//!
//! Spec: "Basic Data Types" of the client/server protocol
//! (<https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_data_types.html>,
//! <https://mariadb.com/kb/en/protocol-data-types/>): little-endian fixed-length integers,
//! length-encoded integers (`0xFC` + 2 bytes, `0xFD` + 3, `0xFE` + 8, `0xFB` = NULL in rows),
//! NUL-terminated, length-encoded and rest-of-packet strings.
//!
//! Every read is checked against the bytes actually present and names the field it was
//! reading, so a lying length becomes [`MysqlError::Truncated`] instead of a panic or an
//! allocation. Hand-written rather than nom: each field is one bounds check, and the
//! typed error falls out directly.

use super::error::MysqlError;

/// A cursor over one payload. Strings come back as slices of the payload (zero-copy).
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread rest of the payload (`string<EOF>`); the reader ends up empty.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        self.pos = self.buf.len();
        rest
    }

    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], MysqlError> {
        if n > self.remaining() {
            return Err(MysqlError::Truncated { what });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), MysqlError> {
        self.bytes(n, what).map(|_| ())
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, MysqlError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, MysqlError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u24(&mut self, what: &'static str) -> Result<u32, MysqlError> {
        let b = self.bytes(3, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, MysqlError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, MysqlError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A length-encoded integer. `0xFB` (NULL, only meaningful in text rows) and `0xFF`
    /// (undefined; the ERR marker) are malformed here.
    pub fn lenenc_int(&mut self, what: &'static str) -> Result<u64, MysqlError> {
        match self.u8(what)? {
            n @ 0..=0xFA => Ok(u64::from(n)),
            0xFC => self.u16(what).map(u64::from),
            0xFD => self.u24(what).map(u64::from),
            0xFE => self.u64(what),
            _ => Err(MysqlError::Malformed { what }),
        }
    }

    /// A length-encoded string: its length may claim anything; only present bytes count.
    pub fn lenenc_bytes(&mut self, what: &'static str) -> Result<&'a [u8], MysqlError> {
        let len = self.lenenc_int(what)?;
        let len = usize::try_from(len).map_err(|_| MysqlError::Truncated { what })?;
        self.bytes(len, what)
    }

    /// A NUL-terminated string (the NUL is consumed, not returned).
    pub fn nul_str(&mut self, what: &'static str) -> Result<&'a [u8], MysqlError> {
        let rest = &self.buf[self.pos..];
        let end = memchr::memchr(0, rest).ok_or(MysqlError::Truncated { what })?;
        self.pos += end + 1;
        Ok(&rest[..end])
    }

    /// A NUL-terminated string whose NUL some peers leave out at the end of the packet
    /// (MySQL 5.5.7-5.5.9 omitted it after the auth plugin name).
    pub fn nul_str_or_rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        match memchr::memchr(0, rest) {
            Some(end) => {
                self.pos += end + 1;
                &rest[..end]
            }
            None => {
                self.pos = self.buf.len();
                rest
            }
        }
    }
}

/// Reads a length-encoded integer at the start of `buf`: its value and encoded size.
pub fn read_lenenc_int(buf: &[u8]) -> Result<(u64, usize), MysqlError> {
    let mut r = Reader::new(buf);
    let v = r.lenenc_int("length-encoded integer")?;
    Ok((v, r.position()))
}

/// Reads a length-encoded string at the start of `buf`: the string and the bytes used.
pub fn read_lenenc_str(buf: &[u8]) -> Result<(&[u8], usize), MysqlError> {
    let mut r = Reader::new(buf);
    let s = r.lenenc_bytes("length-encoded string")?;
    Ok((s, r.position()))
}

/// The encoded size of `v` as a length-encoded integer.
pub fn lenenc_int_len(v: u64) -> usize {
    match v {
        0..=0xFA => 1,
        0xFB..=0xFFFF => 3,
        0x1_0000..=0xFF_FFFF => 4,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_integers_in_all_widths() {
        assert_eq!(read_lenenc_int(&[0xFA]), Ok((250, 1)));
        assert_eq!(read_lenenc_int(&[0xFC, 0xFB, 0x00]), Ok((251, 3)));
        assert_eq!(read_lenenc_int(&[0xFD, 1, 2, 3]), Ok((0x030201, 4)));
        assert_eq!(read_lenenc_int(&[0xFE, 1, 0, 0, 0, 0, 0, 0, 0x80]), Ok((0x8000_0000_0000_0001, 9)));
        assert_eq!(read_lenenc_int(&[0xFB]), Err(MysqlError::Malformed { what: "length-encoded integer" }));
        assert_eq!(read_lenenc_int(&[0xFF]), Err(MysqlError::Malformed { what: "length-encoded integer" }));
        assert_eq!(read_lenenc_int(&[0xFE, 1, 2]), Err(MysqlError::Truncated { what: "length-encoded integer" }));
        assert_eq!(read_lenenc_int(&[]), Err(MysqlError::Truncated { what: "length-encoded integer" }));
        let widths = [(0, 1), (250, 1), (251, 3), (0xFFFF, 3), (0x1_0000, 4), (0xFF_FFFF, 4), (0x100_0000, 9)];
        for (v, n) in widths {
            assert_eq!(lenenc_int_len(v), n, "{v}");
        }
    }

    #[test]
    fn lenenc_strings_never_trust_their_length() {
        assert_eq!(read_lenenc_str(&[3, b'a', b'b', b'c', b'x']), Ok((&b"abc"[..], 4)));
        let huge = [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, b'a'];
        assert_eq!(read_lenenc_str(&huge), Err(MysqlError::Truncated { what: "length-encoded string" }));
    }

    #[test]
    fn nul_strings() {
        let mut r = Reader::new(b"abc\0def");
        assert_eq!(r.nul_str("x"), Ok(&b"abc"[..]));
        assert_eq!(r.nul_str("y"), Err(MysqlError::Truncated { what: "y" }));
        assert_eq!(r.nul_str_or_rest(), b"def");
        assert!(r.is_empty());
    }
}
