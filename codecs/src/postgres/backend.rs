//! Backend (server → client) typed messages as views over one message.
//!
//! Spec: <https://www.postgresql.org/docs/current/protocol-message-formats.html> and, for
//! ErrorResponse/NoticeResponse fields,
//! <https://www.postgresql.org/docs/current/protocol-error-fields.html>. Rows are counted,
//! never decoded; unknown tags and authentication codes are open values. The counts a view
//! reports (fields, columns, parameters) are checked against the message: what they count
//! is walked, so a count or a column length running past the end is an error, never a
//! number the bytes do not hold.

use super::error::PgError;
use super::reader::Reader;

/// An Authentication* request ('R').
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth<'a> {
    Ok,
    KerberosV5,
    CleartextPassword,
    Md5Password {
        salt: [u8; 4],
    },
    Gss,
    GssContinue(&'a [u8]),
    Sspi,
    /// The mechanism list (see [`Auth::mechanisms`]).
    Sasl {
        mechanisms: &'a [u8],
    },
    SaslContinue(&'a [u8]),
    SaslFinal(&'a [u8]),
    Other {
        code: u32,
        data: &'a [u8],
    },
}

impl<'a> Auth<'a> {
    /// The SASL mechanism names (empty for other requests).
    pub fn mechanisms(&self) -> impl Iterator<Item = &'a [u8]> {
        let list: &'a [u8] = match self {
            Auth::Sasl { mechanisms } => mechanisms,
            _ => &[],
        };
        list.split(|&b| b == 0).filter(|m| !m.is_empty())
    }
}

/// ReadyForQuery's transaction status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxStatus {
    Idle,
    InTransaction,
    Failed,
}

/// A CommandComplete tag, e.g. `INSERT 0 5`, `SELECT 3`, `CREATE TABLE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandTag<'a>(pub &'a [u8]);

impl<'a> CommandTag<'a> {
    /// The command words and the row count, in one pass: see [`verb`](Self::verb) and
    /// [`rows`](Self::rows).
    pub fn split(&self) -> (&'a [u8], Option<u64>) {
        let tag = self.0;
        let mut verb_end = tag.len();
        let mut rows = None;
        // Trailing all-digit words are counts (INSERT has the oid 0 before the rows); the
        // last one is the row count. Read back to front, without a string round trip.
        loop {
            let word_start = tag[..verb_end].iter().rposition(|b| !b.is_ascii_digit()).map_or(0, |i| i + 1);
            if word_start == verb_end || word_start == 0 || tag[word_start - 1] != b' ' {
                break;
            }
            if rows.is_none() {
                // More digits than a u64 holds: no count, as `str::parse` would say.
                rows = tag[word_start..verb_end]
                    .iter()
                    .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')));
            }
            verb_end = word_start - 1;
        }
        (&tag[..verb_end], rows)
    }

    /// The command words: `INSERT`, `SELECT`, `CREATE TABLE`.
    pub fn verb(&self) -> &'a [u8] {
        self.split().0
    }

    /// The row count, for the commands that report one.
    pub fn rows(&self) -> Option<u64> {
        self.split().1
    }
}

/// ErrorResponse / NoticeResponse fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerNotice<'a> {
    /// `S`: localized severity (`ERROR`, `FATAL`, ...); `V` when present wins (never localized).
    pub severity: &'a [u8],
    /// `C`: the SQLSTATE code.
    pub code: &'a [u8],
    /// `M`: the primary message.
    pub message: &'a [u8],
    /// Every field, for the ones not lifted out above.
    pub fields: &'a [u8],
}

impl<'a> ServerNotice<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, PgError> {
        let mut r = Reader::new(body);
        let mut n = ServerNotice { severity: b"", code: b"", message: b"", fields: body };
        loop {
            let kind = r.u8("error field type")?;
            if kind == 0 {
                break;
            }
            let value = r.cstr("error field value")?;
            match kind {
                b'S' if n.severity.is_empty() => n.severity = value,
                b'V' => n.severity = value,
                b'C' => n.code = value,
                b'M' => n.message = value,
                _ => {}
            }
        }
        Ok(n)
    }

    /// FATAL and PANIC end the session.
    pub fn is_fatal(&self) -> bool {
        self.severity == b"FATAL" || self.severity == b"PANIC"
    }
}

/// One backend message after the encryption answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend<'a> {
    Authentication(Auth<'a>),
    ParameterStatus {
        name: &'a [u8],
        value: &'a [u8],
    },
    /// `key` is 4 bytes in protocol 3.0, up to 256 in 3.2.
    BackendKeyData {
        pid: u32,
        key: &'a [u8],
    },
    ReadyForQuery(TxStatus),
    RowDescription {
        fields: u16,
    },
    /// Counted, not decoded.
    DataRow {
        columns: u16,
    },
    CommandComplete(CommandTag<'a>),
    EmptyQueryResponse,
    ErrorResponse(ServerNotice<'a>),
    NoticeResponse(ServerNotice<'a>),
    ParseComplete,
    BindComplete,
    CloseComplete,
    NoData,
    ParameterDescription {
        params: u16,
    },
    PortalSuspended,
    /// Overall format (0 text, 1 binary) and column count.
    CopyInResponse {
        format: u8,
        columns: u16,
    },
    CopyOutResponse {
        format: u8,
        columns: u16,
    },
    CopyBothResponse {
        format: u8,
        columns: u16,
    },
    CopyData(&'a [u8]),
    CopyDone,
    NotificationResponse {
        pid: u32,
        channel: &'a [u8],
        payload: &'a [u8],
    },
    NegotiateProtocolVersion {
        newest_minor: u32,
        unrecognized: u32,
    },
    FunctionCallResponse,
    Unknown {
        tag: u8,
        body: &'a [u8],
    },
}

impl<'a> Backend<'a> {
    /// Parses the tag and body of one typed message (see [`super::typed_body`]).
    pub fn parse(tag: u8, body: &'a [u8]) -> Result<Self, PgError> {
        let mut r = Reader::new(body);
        let msg = match tag {
            b'R' => Backend::Authentication(match r.u32("authentication code")? {
                0 => Auth::Ok,
                2 => Auth::KerberosV5,
                3 => Auth::CleartextPassword,
                5 => {
                    let s = r.bytes(4, "MD5 salt")?;
                    Auth::Md5Password { salt: [s[0], s[1], s[2], s[3]] }
                }
                7 => Auth::Gss,
                8 => Auth::GssContinue(r.remaining()),
                9 => Auth::Sspi,
                10 => Auth::Sasl { mechanisms: r.remaining() },
                11 => Auth::SaslContinue(r.remaining()),
                12 => Auth::SaslFinal(r.remaining()),
                code => Auth::Other { code, data: r.remaining() },
            }),
            b'S' => Backend::ParameterStatus { name: r.cstr("parameter name")?, value: r.cstr("parameter value")? },
            b'K' => {
                let pid = r.u32("backend pid")?;
                let key = r.remaining();
                if key.len() < 4 || key.len() > 256 {
                    return Err(PgError::Malformed { what: "BackendKeyData key" });
                }
                Backend::BackendKeyData { pid, key }
            }
            b'Z' => Backend::ReadyForQuery(match r.u8("transaction status")? {
                b'I' => TxStatus::Idle,
                b'T' => TxStatus::InTransaction,
                b'E' => TxStatus::Failed,
                _ => return Err(PgError::Malformed { what: "transaction status" }),
            }),
            b'T' => {
                let fields = r.u16("RowDescription field count")?;
                for _ in 0..fields {
                    r.cstr("RowDescription field name")?;
                    // Table oid, column number, type oid, type size, type modifier, format.
                    r.bytes(18, "RowDescription field")?;
                }
                Backend::RowDescription { fields }
            }
            b'D' => {
                let columns = r.u16("DataRow column count")?;
                for _ in 0..columns {
                    r.value("DataRow column value")?;
                }
                Backend::DataRow { columns }
            }
            b'C' => Backend::CommandComplete(CommandTag(r.cstr("command tag")?)),
            b'I' => Backend::EmptyQueryResponse,
            b'E' => Backend::ErrorResponse(ServerNotice::parse(body)?),
            b'N' => Backend::NoticeResponse(ServerNotice::parse(body)?),
            b'1' => Backend::ParseComplete,
            b'2' => Backend::BindComplete,
            b'3' => Backend::CloseComplete,
            b'n' => Backend::NoData,
            b't' => {
                let params = r.u16("ParameterDescription parameter count")?;
                r.bytes(4 * usize::from(params), "ParameterDescription parameter types")?;
                Backend::ParameterDescription { params }
            }
            b's' => Backend::PortalSuspended,
            b'G' | b'H' | b'W' => {
                let format = r.u8("copy format")?;
                let columns = r.u16("copy column count")?;
                r.bytes(2 * usize::from(columns), "copy column formats")?;
                match tag {
                    b'G' => Backend::CopyInResponse { format, columns },
                    b'H' => Backend::CopyOutResponse { format, columns },
                    _ => Backend::CopyBothResponse { format, columns },
                }
            }
            b'd' => Backend::CopyData(body),
            b'c' => Backend::CopyDone,
            b'A' => Backend::NotificationResponse {
                pid: r.u32("notification pid")?,
                channel: r.cstr("notification channel")?,
                payload: r.cstr("notification payload")?,
            },
            b'v' => {
                let newest_minor = r.u32("newest minor version")?;
                let unrecognized = r.u32("unrecognized option count")?;
                for _ in 0..unrecognized {
                    // Each name takes at least its NUL, so this ends with the message.
                    r.cstr("unrecognized option name")?;
                }
                Backend::NegotiateProtocolVersion { newest_minor, unrecognized }
            }
            b'V' => {
                r.value("FunctionCallResponse value")?;
                Backend::FunctionCallResponse
            }
            _ => Backend::Unknown { tag, body },
        };
        Ok(msg)
    }
}
