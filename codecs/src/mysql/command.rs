//! Client commands: the first byte of a command-phase packet and what follows it.
//!
//! Spec: "Command Phase" (<https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_command_phase.html>):
//! text protocol (COM_QUERY, COM_INIT_DB, COM_FIELD_LIST, ...), utility commands
//! (COM_PING, COM_CHANGE_USER, COM_RESET_CONNECTION, ...) and prepared statements
//! (COM_STMT_PREPARE / EXECUTE / SEND_LONG_DATA / CLOSE / RESET / FETCH), plus MariaDB's
//! COM_STMT_BULK_EXECUTE (<https://mariadb.com/kb/en/com_stmt_bulk_execute/>). COM_QUERY's
//! query attributes (`CLIENT_QUERY_ATTRIBUTES`, MySQL 8.0.23+) are walked only to find
//! where the SQL text starts; statement parameters are not decoded. Any other command byte
//! is an open value ([`CommandKind::Other`]) that passes through.

use super::error::MysqlError;
use super::flags::Capabilities;
use super::wire::Reader;

/// A command's kind: the first payload byte, named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Quit,
    InitDb,
    Query,
    FieldList,
    Statistics,
    ProcessKill,
    Ping,
    ChangeUser,
    StmtPrepare,
    StmtExecute,
    StmtSendLongData,
    StmtClose,
    StmtReset,
    SetOption,
    StmtFetch,
    ResetConnection,
    StmtBulkExecute,
    Other(u8),
}

impl CommandKind {
    pub fn from_byte(b: u8) -> CommandKind {
        match b {
            0x01 => CommandKind::Quit,
            0x02 => CommandKind::InitDb,
            0x03 => CommandKind::Query,
            0x04 => CommandKind::FieldList,
            0x09 => CommandKind::Statistics,
            0x0C => CommandKind::ProcessKill,
            0x0E => CommandKind::Ping,
            0x11 => CommandKind::ChangeUser,
            0x16 => CommandKind::StmtPrepare,
            0x17 => CommandKind::StmtExecute,
            0x18 => CommandKind::StmtSendLongData,
            0x19 => CommandKind::StmtClose,
            0x1A => CommandKind::StmtReset,
            0x1B => CommandKind::SetOption,
            0x1C => CommandKind::StmtFetch,
            0x1F => CommandKind::ResetConnection,
            0xFA => CommandKind::StmtBulkExecute,
            other => CommandKind::Other(other),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            CommandKind::Quit => 0x01,
            CommandKind::InitDb => 0x02,
            CommandKind::Query => 0x03,
            CommandKind::FieldList => 0x04,
            CommandKind::Statistics => 0x09,
            CommandKind::ProcessKill => 0x0C,
            CommandKind::Ping => 0x0E,
            CommandKind::ChangeUser => 0x11,
            CommandKind::StmtPrepare => 0x16,
            CommandKind::StmtExecute => 0x17,
            CommandKind::StmtSendLongData => 0x18,
            CommandKind::StmtClose => 0x19,
            CommandKind::StmtReset => 0x1A,
            CommandKind::SetOption => 0x1B,
            CommandKind::StmtFetch => 0x1C,
            CommandKind::ResetConnection => 0x1F,
            CommandKind::StmtBulkExecute => 0xFA,
            CommandKind::Other(b) => b,
        }
    }

    /// The protocol's name (`COM_QUERY`); `COM_OTHER` for unknown bytes (see [`Self::code`]).
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Quit => "COM_QUIT",
            CommandKind::InitDb => "COM_INIT_DB",
            CommandKind::Query => "COM_QUERY",
            CommandKind::FieldList => "COM_FIELD_LIST",
            CommandKind::Statistics => "COM_STATISTICS",
            CommandKind::ProcessKill => "COM_PROCESS_KILL",
            CommandKind::Ping => "COM_PING",
            CommandKind::ChangeUser => "COM_CHANGE_USER",
            CommandKind::StmtPrepare => "COM_STMT_PREPARE",
            CommandKind::StmtExecute => "COM_STMT_EXECUTE",
            CommandKind::StmtSendLongData => "COM_STMT_SEND_LONG_DATA",
            CommandKind::StmtClose => "COM_STMT_CLOSE",
            CommandKind::StmtReset => "COM_STMT_RESET",
            CommandKind::SetOption => "COM_SET_OPTION",
            CommandKind::StmtFetch => "COM_STMT_FETCH",
            CommandKind::ResetConnection => "COM_RESET_CONNECTION",
            CommandKind::StmtBulkExecute => "COM_STMT_BULK_EXECUTE",
            CommandKind::Other(_) => "COM_OTHER",
        }
    }

    /// Whether the server answers at all (COM_QUIT, COM_STMT_CLOSE and
    /// COM_STMT_SEND_LONG_DATA get no response).
    pub fn has_response(self) -> bool {
        !matches!(self, CommandKind::Quit | CommandKind::StmtClose | CommandKind::StmtSendLongData)
    }
}

/// COM_STMT_EXECUTE flags asking for a cursor (read-only, for update, scrollable).
pub const CURSOR_FLAGS: u8 = 0x07;

/// A parsed command. Strings are slices of the packet's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    Quit,
    InitDb {
        schema: &'a [u8],
    },
    /// `sql` is the statement text; `attributes` counts MySQL query attributes before it.
    Query {
        sql: &'a [u8],
        attributes: u64,
    },
    FieldList {
        table: &'a [u8],
        wildcard: &'a [u8],
    },
    Statistics,
    ProcessKill {
        connection_id: u32,
    },
    Ping,
    ChangeUser {
        user: &'a [u8],
        database: Option<&'a [u8]>,
        auth_plugin: Option<&'a [u8]>,
    },
    StmtPrepare {
        sql: &'a [u8],
    },
    /// `statement_id` 0xFFFFFFFF means MariaDB's "the statement just prepared" (pipelining).
    StmtExecute {
        statement_id: u32,
        flags: u8,
        iterations: u32,
    },
    StmtSendLongData {
        statement_id: u32,
        param: u16,
    },
    StmtClose {
        statement_id: u32,
    },
    StmtReset {
        statement_id: u32,
    },
    SetOption {
        option: u16,
    },
    StmtFetch {
        statement_id: u32,
        rows: u32,
    },
    ResetConnection,
    StmtBulkExecute {
        statement_id: u32,
        flags: u16,
    },
    Other {
        code: u8,
        body: &'a [u8],
    },
}

impl<'a> Command<'a> {
    /// Parses a command packet's payload. `caps` are the negotiated capabilities (they
    /// decide query attributes and COM_CHANGE_USER's layout).
    pub fn parse(payload: &'a [u8], caps: Capabilities) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        let kind = CommandKind::from_byte(r.u8("command")?);
        Ok(match kind {
            CommandKind::Quit => Command::Quit,
            CommandKind::InitDb => Command::InitDb { schema: r.rest() },
            CommandKind::Query => {
                let attributes = if caps.contains(Capabilities::CLIENT_QUERY_ATTRIBUTES) {
                    skip_query_attributes(&mut r)?
                } else {
                    0
                };
                Command::Query { sql: r.rest(), attributes }
            }
            CommandKind::FieldList => Command::FieldList { table: r.nul_str_or_rest(), wildcard: r.rest() },
            CommandKind::Statistics => Command::Statistics,
            CommandKind::ProcessKill => Command::ProcessKill { connection_id: r.u32("connection id")? },
            CommandKind::Ping => Command::Ping,
            CommandKind::ChangeUser => parse_change_user(&mut r, caps)?,
            CommandKind::StmtPrepare => Command::StmtPrepare { sql: r.rest() },
            CommandKind::StmtExecute => Command::StmtExecute {
                statement_id: r.u32("statement id")?,
                flags: r.u8("execute flags")?,
                iterations: r.u32("iteration count")?,
            },
            CommandKind::StmtSendLongData => {
                Command::StmtSendLongData { statement_id: r.u32("statement id")?, param: r.u16("parameter id")? }
            }
            CommandKind::StmtClose => Command::StmtClose { statement_id: r.u32("statement id")? },
            CommandKind::StmtReset => Command::StmtReset { statement_id: r.u32("statement id")? },
            CommandKind::SetOption => Command::SetOption { option: r.u16("option")? },
            CommandKind::StmtFetch => {
                Command::StmtFetch { statement_id: r.u32("statement id")?, rows: r.u32("number of rows")? }
            }
            CommandKind::ResetConnection => Command::ResetConnection,
            CommandKind::StmtBulkExecute => {
                Command::StmtBulkExecute { statement_id: r.u32("statement id")?, flags: r.u16("bulk flags")? }
            }
            CommandKind::Other(code) => Command::Other { code, body: r.rest() },
        })
    }

    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Quit => CommandKind::Quit,
            Command::InitDb { .. } => CommandKind::InitDb,
            Command::Query { .. } => CommandKind::Query,
            Command::FieldList { .. } => CommandKind::FieldList,
            Command::Statistics => CommandKind::Statistics,
            Command::ProcessKill { .. } => CommandKind::ProcessKill,
            Command::Ping => CommandKind::Ping,
            Command::ChangeUser { .. } => CommandKind::ChangeUser,
            Command::StmtPrepare { .. } => CommandKind::StmtPrepare,
            Command::StmtExecute { .. } => CommandKind::StmtExecute,
            Command::StmtSendLongData { .. } => CommandKind::StmtSendLongData,
            Command::StmtClose { .. } => CommandKind::StmtClose,
            Command::StmtReset { .. } => CommandKind::StmtReset,
            Command::SetOption { .. } => CommandKind::SetOption,
            Command::StmtFetch { .. } => CommandKind::StmtFetch,
            Command::ResetConnection => CommandKind::ResetConnection,
            Command::StmtBulkExecute { .. } => CommandKind::StmtBulkExecute,
            Command::Other { code, .. } => CommandKind::Other(*code),
        }
    }

    /// The SQL text of COM_QUERY and COM_STMT_PREPARE.
    pub fn sql(&self) -> Option<&'a [u8]> {
        match self {
            Command::Query { sql, .. } | Command::StmtPrepare { sql } => Some(sql),
            _ => None,
        }
    }

    /// The statement a COM_STMT_* command acts on.
    pub fn statement_id(&self) -> Option<u32> {
        match *self {
            Command::StmtExecute { statement_id, .. }
            | Command::StmtSendLongData { statement_id, .. }
            | Command::StmtClose { statement_id }
            | Command::StmtReset { statement_id }
            | Command::StmtFetch { statement_id, .. }
            | Command::StmtBulkExecute { statement_id, .. } => Some(statement_id),
            _ => None,
        }
    }

    /// COM_STMT_EXECUTE asking for a cursor: its result set ends after the column
    /// definitions and the rows come in COM_STMT_FETCH responses.
    pub fn opens_cursor(&self) -> bool {
        matches!(self, Command::StmtExecute { flags, .. } if flags & CURSOR_FLAGS != 0)
    }
}

/// COM_CHANGE_USER: user, auth data, schema, then optional charset, plugin and attributes.
fn parse_change_user<'a>(r: &mut Reader<'a>, caps: Capabilities) -> Result<Command<'a>, MysqlError> {
    let user = r.nul_str("user name")?;
    if caps.contains(Capabilities::CLIENT_SECURE_CONNECTION) {
        let len = r.u8("auth response length")?;
        r.skip(usize::from(len), "auth response")?;
    } else {
        r.nul_str("auth response")?;
    }
    let database = r.nul_str_or_rest();
    let mut auth_plugin = None;
    if r.remaining() >= 2 {
        r.skip(2, "character set")?;
        if caps.contains(Capabilities::CLIENT_PLUGIN_AUTH) && !r.is_empty() {
            auth_plugin = Some(r.nul_str_or_rest());
        }
    }
    Ok(Command::ChangeUser { user, database: (!database.is_empty()).then_some(database), auth_plugin })
}

/// Walks COM_QUERY's query attributes (parameter count, set count, NULL bitmap, types and
/// names, binary values) and returns how many there were; the reader is left at the SQL.
fn skip_query_attributes(r: &mut Reader<'_>) -> Result<u64, MysqlError> {
    let count = r.lenenc_int("query attribute count")?;
    r.lenenc_int("query attribute set count")?;
    if count == 0 {
        return Ok(0);
    }
    // The bitmap must be present, which bounds `count` by the packet's size before any loop.
    let bitmap_len = usize::try_from(count.div_ceil(8)).map_err(|_| MysqlError::Truncated { what: "NULL bitmap" })?;
    let bitmap = r.bytes(bitmap_len, "NULL bitmap")?;
    if r.u8("new params bind flag")? != 1 {
        return Err(MysqlError::Malformed { what: "query attributes without types" });
    }
    let types_at = r.clone();
    for _ in 0..count {
        r.skip(2, "query attribute type")?;
        r.lenenc_bytes("query attribute name")?;
    }
    let mut types = types_at;
    for i in 0..count {
        let ty = types.u16("query attribute type")?;
        types.lenenc_bytes("query attribute name")?;
        let null = bitmap[(i / 8) as usize] & (1 << (i % 8)) != 0;
        if !null {
            skip_binary_value(r, ty as u8)?;
        }
    }
    Ok(count)
}

/// Skips one binary-protocol value of column type `ty`.
fn skip_binary_value(r: &mut Reader<'_>, ty: u8) -> Result<(), MysqlError> {
    const WHAT: &str = "query attribute value";
    match ty {
        0x06 => Ok(()),                        // NULL
        0x01 => r.skip(1, WHAT),               // TINY
        0x02 | 0x0D => r.skip(2, WHAT),        // SHORT, YEAR
        0x03 | 0x04 | 0x09 => r.skip(4, WHAT), // LONG, FLOAT, INT24
        0x05 | 0x08 => r.skip(8, WHAT),        // DOUBLE, LONGLONG
        0x07 | 0x0A | 0x0B | 0x0C => {
            // TIMESTAMP, DATE, TIME, DATETIME: a length byte, then that many bytes.
            let len = r.u8(WHAT)?;
            r.skip(usize::from(len), WHAT)
        }
        _ => r.lenenc_bytes(WHAT).map(|_| ()), // strings, decimals, blobs, JSON, ...
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_byte_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(CommandKind::from_byte(b).code(), b);
        }
        assert_eq!(CommandKind::from_byte(0x03).name(), "COM_QUERY");
        assert!(!CommandKind::StmtClose.has_response() && CommandKind::Other(0x12).has_response());
    }

    #[test]
    fn statement_commands() {
        let caps = Capabilities::default();
        let exec = Command::parse(b"\x17\x02\x00\x00\x00\x01\x01\x00\x00\x00", caps).unwrap();
        assert_eq!(exec, Command::StmtExecute { statement_id: 2, flags: 1, iterations: 1 });
        assert!(exec.opens_cursor() && exec.statement_id() == Some(2));
        assert_eq!(Command::parse(b"\x1c\x02\x00\x00\x00\x02\x00\x00\x00", caps).unwrap().statement_id(), Some(2));
        assert_eq!(Command::parse(b"\x17\x02\x00", caps), Err(MysqlError::Truncated { what: "statement id" }));
        assert_eq!(Command::parse(b"", caps), Err(MysqlError::Truncated { what: "command" }));
        assert_eq!(Command::parse(b"\x12xyz", caps), Ok(Command::Other { code: 0x12, body: b"xyz" }));
    }

    #[test]
    fn query_attributes_are_skipped_to_the_sql() {
        let caps = Capabilities::CLIENT_QUERY_ATTRIBUTES;
        assert_eq!(
            Command::parse(b"\x03\x00\x01SELECT 1", caps),
            Ok(Command::Query { sql: b"SELECT 1", attributes: 0 })
        );
        // Two attributes: a string "v" named "a" and a NULL long named "bb", then a LONGLONG "c".
        let mut p = b"\x03\x03\x01".to_vec();
        p.push(0b010); // bitmap: the second is NULL
        p.push(1);
        p.extend_from_slice(b"\xfe\x00\x01a\x03\x00\x02bb\x08\x80\x01c");
        p.extend_from_slice(b"\x01v");
        p.extend_from_slice(&7u64.to_le_bytes());
        p.extend_from_slice(b"SELECT 2");
        assert_eq!(Command::parse(&p, caps), Ok(Command::Query { sql: b"SELECT 2", attributes: 3 }));
        // A count the bitmap cannot back is refused before any loop.
        let lying = b"\x03\xfe\xff\xff\xff\xff\xff\xff\xff\x7f\x01";
        assert_eq!(Command::parse(lying, caps), Err(MysqlError::Truncated { what: "NULL bitmap" }));
    }

    #[test]
    fn change_user() {
        let caps = Capabilities(Capabilities::CLIENT_SECURE_CONNECTION.0 | Capabilities::CLIENT_PLUGIN_AUTH.0);
        let p = b"\x11other\0\x02xysluice\0\x2d\x00mysql_native_password\0attrs";
        let c = Command::parse(p, caps).unwrap();
        assert_eq!(
            c,
            Command::ChangeUser {
                user: b"other",
                database: Some(b"sluice"),
                auth_plugin: Some(b"mysql_native_password")
            }
        );
    }
}
