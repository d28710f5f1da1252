//! Generic server response packets: OK, ERR, EOF, the column count that opens a result set,
//! and COM_STMT_PREPARE_OK.
//!
//! Spec: "Generic Response Packets"
//! (<https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_response_packets.html>),
//! "Text Resultset" (column count, `metadata_follows` with
//! `CLIENT_OPTIONAL_RESULTSET_METADATA`), "COM_STMT_PREPARE Response", and MariaDB's
//! result-set packets (<https://mariadb.com/kb/en/result-set-packets/>: the column count's
//! "metadata follows" byte with `MARIADB_CLIENT_CACHE_METADATA`) and progress reports
//! (<https://mariadb.com/kb/en/progress-reporting/>: an ERR packet with code 0xFFFF that is
//! not an error).
//!
//! Telling a terminator from a row: 0xFE starts an EOF packet when the payload is shorter
//! than 9 bytes, and an OK-as-EOF (`CLIENT_DEPRECATE_EOF`) when it is shorter than 0xFFFFFF;
//! a text row may start with 0xFE only when its first value is at least 2^24 bytes long.

use super::error::MysqlError;
use super::flags::{Capabilities, StatusFlags};
use super::packet::MAX_PACKET_PAYLOAD;
use super::wire::Reader;

pub const OK_HEADER: u8 = 0x00;
pub const EOF_HEADER: u8 = 0xFE;
pub const ERR_HEADER: u8 = 0xFF;
pub const LOCAL_INFILE_HEADER: u8 = 0xFB;
/// The error code MariaDB uses for progress reports.
pub const PROGRESS_CODE: u16 = 0xFFFF;

/// OK_Packet (header 0x00, or 0xFE when it stands in for an EOF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OkPacket<'a> {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: StatusFlags,
    pub warnings: u16,
    /// Human-readable info and session-state changes, unparsed.
    pub info: &'a [u8],
}

impl<'a> OkPacket<'a> {
    pub fn parse(payload: &'a [u8], caps: Capabilities) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        let header = r.u8("OK header")?;
        if header != OK_HEADER && header != EOF_HEADER {
            return Err(MysqlError::Malformed { what: "OK header" });
        }
        let affected_rows = r.lenenc_int("affected rows")?;
        let last_insert_id = r.lenenc_int("last insert id")?;
        let (status, warnings) = if caps.contains(Capabilities::CLIENT_PROTOCOL_41) {
            (r.u16("status flags")?, r.u16("warnings")?)
        } else if caps.contains(Capabilities::CLIENT_TRANSACTIONS) {
            (r.u16("status flags")?, 0)
        } else {
            (0, 0)
        };
        Ok(OkPacket { affected_rows, last_insert_id, status: StatusFlags(status), warnings, info: r.rest() })
    }
}

/// EOF_Packet: 0xFE, then (protocol 4.1) warnings and status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EofPacket {
    pub warnings: u16,
    pub status: StatusFlags,
}

impl EofPacket {
    pub fn parse(payload: &[u8], caps: Capabilities) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        if r.u8("EOF header")? != EOF_HEADER {
            return Err(MysqlError::Malformed { what: "EOF header" });
        }
        if !caps.contains(Capabilities::CLIENT_PROTOCOL_41) {
            return Ok(EofPacket { warnings: 0, status: StatusFlags(0) });
        }
        Ok(EofPacket { warnings: r.u16("EOF warnings")?, status: StatusFlags(r.u16("EOF status flags")?) })
    }
}

/// Whether a payload starting with 0xFE and `payload_len` long is an EOF packet.
pub fn is_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&EOF_HEADER) && payload.len() < 9
}

/// Whether a payload ends a result set's rows (or a field list): an EOF packet, or with
/// `CLIENT_DEPRECATE_EOF` the OK packet with a 0xFE header that replaces it.
pub fn is_terminator(payload: &[u8], deprecate_eof: bool) -> bool {
    payload.first() == Some(&EOF_HEADER) && payload.len() < if deprecate_eof { MAX_PACKET_PAYLOAD } else { 9 }
}

/// Status and counters of a packet that ends something: an EOF, or an OK in any guise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: StatusFlags,
    pub warnings: u16,
}

impl Completion {
    /// Reads an OK (0x00 / 0xFE) or EOF (0xFE, under 9 bytes) packet. With
    /// `CLIENT_DEPRECATE_EOF` in `caps` a 0xFE packet is always an OK: its affected-rows and
    /// insert-id fields sit where an EOF's warnings would.
    pub fn parse(payload: &[u8], caps: Capabilities) -> Result<Self, MysqlError> {
        if is_eof(payload) && !caps.contains(Capabilities::CLIENT_DEPRECATE_EOF) {
            let eof = EofPacket::parse(payload, caps)?;
            return Ok(Completion { status: eof.status, warnings: eof.warnings, ..Completion::default() });
        }
        let ok = OkPacket::parse(payload, caps)?;
        Ok(Completion {
            affected_rows: ok.affected_rows,
            last_insert_id: ok.last_insert_id,
            status: ok.status,
            warnings: ok.warnings,
        })
    }
}

/// ERR_Packet: an error code, the SQLSTATE (protocol 4.1, after a `#`), and a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerError<'a> {
    pub code: u16,
    pub sqlstate: Option<[u8; 5]>,
    pub message: &'a [u8],
}

impl<'a> ServerError<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        if r.u8("ERR header")? != ERR_HEADER {
            return Err(MysqlError::Malformed { what: "ERR header" });
        }
        let code = r.u16("error code")?;
        // The marker is there whenever the server speaks 4.1, except in errors sent before
        // the greeting settled that (and in progress reports); look rather than assume.
        let mut sqlstate = None;
        if code != PROGRESS_CODE && r.remaining() >= 6 && payload[3] == b'#' {
            r.skip(1, "SQLSTATE marker")?;
            let s = r.bytes(5, "SQLSTATE")?;
            sqlstate = Some([s[0], s[1], s[2], s[3], s[4]]);
        }
        Ok(ServerError { code, sqlstate, message: r.rest() })
    }

    /// A MariaDB progress report: informational, the command is still running.
    pub fn is_progress(&self) -> bool {
        self.code == PROGRESS_CODE
    }

    pub fn sqlstate_str(&self) -> Option<&str> {
        self.sqlstate.as_ref().and_then(|s| std::str::from_utf8(s).ok())
    }
}

/// Whether an ERR-looking payload is a MariaDB progress report (cheap: no parsing).
pub fn is_progress(payload: &[u8]) -> bool {
    matches!(payload, [ERR_HEADER, 0xFF, 0xFF, ..])
}

/// The packet opening a result set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnCount {
    pub columns: u64,
    /// Whether column definitions follow (false when MariaDB's metadata cache or MySQL's
    /// optional metadata lets the server skip them).
    pub metadata_follows: bool,
}

impl ColumnCount {
    pub fn parse(payload: &[u8], caps: Capabilities, max_columns: u64) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        let columns = r.lenenc_int("column count")?;
        if columns == 0 {
            return Err(MysqlError::Malformed { what: "column count of zero" });
        }
        if columns > max_columns {
            return Err(MysqlError::TooManyColumns { count: columns, limit: max_columns });
        }
        // Both flags put one byte after the count: 0 = no metadata, 1 = full metadata.
        // A server that left it out is taken to send the metadata.
        let flagged = caps.contains(Capabilities::CLIENT_OPTIONAL_RESULTSET_METADATA)
            || caps.contains(Capabilities::MARIADB_CLIENT_CACHE_METADATA);
        let metadata_follows = if flagged && !r.is_empty() { r.u8("metadata follows")? != 0 } else { true };
        Ok(ColumnCount { columns, metadata_follows })
    }
}

/// COM_STMT_PREPARE_OK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrepareOk {
    pub statement_id: u32,
    pub num_columns: u16,
    pub num_params: u16,
    pub warnings: u16,
    /// `CLIENT_OPTIONAL_RESULTSET_METADATA`: whether parameter and column definitions follow.
    pub metadata_follows: bool,
}

impl PrepareOk {
    pub fn parse(payload: &[u8], caps: Capabilities) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        if r.u8("prepare OK header")? != OK_HEADER {
            return Err(MysqlError::Malformed { what: "prepare OK header" });
        }
        let statement_id = r.u32("statement id")?;
        let num_columns = r.u16("number of columns")?;
        let num_params = r.u16("number of parameters")?;
        r.skip(1, "reserved")?;
        // "if packet_length > 12": the warning count is optional in old servers.
        let warnings = if r.remaining() >= 2 { r.u16("warning count")? } else { 0 };
        let metadata_follows = if caps.contains(Capabilities::CLIENT_OPTIONAL_RESULTSET_METADATA) && !r.is_empty() {
            r.u8("metadata follows")? != 0
        } else {
            true
        };
        Ok(PrepareOk { statement_id, num_columns, num_params, warnings, metadata_follows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS41: Capabilities = Capabilities(Capabilities::CLIENT_PROTOCOL_41.0 | Capabilities::CLIENT_TRANSACTIONS.0);

    #[test]
    fn ok_eof_and_their_overlap() {
        let ok = OkPacket::parse(b"\x00\xfc\x00\x01\x05\x02\x00\x01\x00info", CAPS41).unwrap();
        assert_eq!((ok.affected_rows, ok.last_insert_id, ok.status.0, ok.warnings), (256, 5, 2, 1));
        assert_eq!(ok.info, b"info");
        assert!(is_eof(b"\xfe\x00\x00\x02\x00") && is_terminator(b"\xfe\x00\x00\x02\x00", false));
        // OK-as-EOF: short enough to look like an EOF, read as an OK under CLIENT_DEPRECATE_EOF.
        let deprecate = CAPS41.union(Capabilities::CLIENT_DEPRECATE_EOF);
        let ok_as_eof = b"\xfe\x05\x00\x22\x00\x01\x00";
        assert!(is_terminator(ok_as_eof, true) && is_eof(ok_as_eof));
        let done = Completion::parse(ok_as_eof, deprecate).unwrap();
        assert_eq!((done.affected_rows, done.status, done.warnings), (5, StatusFlags(0x22), 1));
        assert_eq!(Completion::parse(ok_as_eof, CAPS41).unwrap().warnings, 5, "read as an EOF");
        let long_ok = [&b"\xfe\x00\x00\x22\x00\x00\x00"[..], &[b'i'; 20]].concat();
        assert!(is_terminator(&long_ok, true) && !is_terminator(&long_ok, false));
        assert_eq!(Completion::parse(&long_ok, deprecate).unwrap().status, StatusFlags(0x22));
        assert_eq!(OkPacket::parse(b"\x00\x01", CAPS41), Err(MysqlError::Truncated { what: "last insert id" }));
    }

    #[test]
    fn errors_with_and_without_sqlstate() {
        let e = ServerError::parse(b"\xff\x7a\x04#42S02Table 'x' doesn't exist").unwrap();
        assert_eq!((e.code, e.sqlstate_str(), e.message), (1146, Some("42S02"), &b"Table 'x' doesn't exist"[..]));
        let e = ServerError::parse(b"\xff\x10\x04Too many connections").unwrap();
        assert_eq!((e.code, e.sqlstate, e.message), (1040, None, &b"Too many connections"[..]));
        let p = ServerError::parse(b"\xff\xff\xff\x01\x02\x02\x00\x00\x00\x0fEnd bulk insert").unwrap();
        assert!(p.is_progress() && p.sqlstate.is_none());
        assert_eq!(ServerError::parse(b"\xff\x01"), Err(MysqlError::Truncated { what: "error code" }));
    }

    #[test]
    fn column_counts() {
        let cache = Capabilities::MARIADB_CLIENT_CACHE_METADATA;
        assert_eq!(ColumnCount::parse(b"\x04\x01", cache, 10), Ok(ColumnCount { columns: 4, metadata_follows: true }));
        assert_eq!(ColumnCount::parse(b"\x01\x00", cache, 10), Ok(ColumnCount { columns: 1, metadata_follows: false }));
        assert_eq!(ColumnCount::parse(b"\x04", cache, 10), Ok(ColumnCount { columns: 4, metadata_follows: true }));
        assert_eq!(ColumnCount::parse(b"\x0b", CAPS41, 10), Err(MysqlError::TooManyColumns { count: 11, limit: 10 }));
        let huge = b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff";
        assert_eq!(
            ColumnCount::parse(huge, CAPS41, 10),
            Err(MysqlError::TooManyColumns { count: u64::MAX, limit: 10 })
        );
    }

    #[test]
    fn prepare_ok() {
        let p = PrepareOk::parse(b"\x00\x04\x00\x00\x00\x02\x00\x01\x00\x00\x03\x00", CAPS41).unwrap();
        assert_eq!((p.statement_id, p.num_columns, p.num_params, p.warnings, p.metadata_follows), (4, 2, 1, 3, true));
        assert_eq!(PrepareOk::parse(b"\x00\x01\x00", CAPS41), Err(MysqlError::Truncated { what: "statement id" }));
    }
}
