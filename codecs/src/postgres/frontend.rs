//! Frontend (client → server) typed messages as views over one message.
//!
//! Spec: <https://www.postgresql.org/docs/current/protocol-message-formats.html>. Only the
//! fields sluice needs are decoded (names, SQL text, counts); parameter values, formats and
//! COPY payloads stay opaque. The counted parts it skips (Parse's parameter types, Bind's
//! formats and values, FunctionCall's arguments) are still walked, so a count or length
//! that runs past the end of the message is an error here, as it is on the server.
//!
//! The 'p' tag is shared by PasswordMessage, GSSResponse, SASLInitialResponse and
//! SASLResponse: which one it is depends on the authentication request it answers, so it
//! is returned as [`Frontend::AuthData`] and [`SaslInitialResponse::parse`] reads the first
//! SASL message when the session knows.

use super::error::PgError;
use super::reader::Reader;

/// One frontend message after the startup phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frontend<'a> {
    Query {
        sql: &'a [u8],
    },
    Parse {
        statement: &'a [u8],
        sql: &'a [u8],
        param_types: u16,
    },
    Bind {
        portal: &'a [u8],
        statement: &'a [u8],
    },
    /// `kind` is b'S' (statement) or b'P' (portal).
    Describe {
        kind: u8,
        name: &'a [u8],
    },
    Execute {
        portal: &'a [u8],
        max_rows: u32,
    },
    Sync,
    Flush,
    Close {
        kind: u8,
        name: &'a [u8],
    },
    CopyData(&'a [u8]),
    CopyDone,
    CopyFail {
        message: &'a [u8],
    },
    FunctionCall {
        function_oid: u32,
    },
    Terminate,
    /// PasswordMessage, GSSResponse, SASLInitialResponse or SASLResponse (opaque).
    AuthData(&'a [u8]),
    /// A tag this codec does not know: passed through.
    Unknown {
        tag: u8,
        body: &'a [u8],
    },
}

impl<'a> Frontend<'a> {
    /// Parses the tag and body of one typed message (see [`super::typed_body`]).
    pub fn parse(tag: u8, body: &'a [u8]) -> Result<Self, PgError> {
        let mut r = Reader::new(body);
        let msg = match tag {
            b'Q' => Frontend::Query { sql: r.cstr("Query string")? },
            b'P' => {
                let statement = r.cstr("Parse statement name")?;
                let sql = r.cstr("Parse query")?;
                let param_types = r.u16("Parse parameter count")?;
                r.bytes(4 * usize::from(param_types), "Parse parameter types")?;
                Frontend::Parse { statement, sql, param_types }
            }
            b'B' => {
                let (portal, statement) = (r.cstr("Bind portal")?, r.cstr("Bind statement")?);
                skip_formats(&mut r, "Bind parameter format count", "Bind parameter formats")?;
                skip_values(&mut r, "Bind parameter count", "Bind parameter value")?;
                skip_formats(&mut r, "Bind result format count", "Bind result formats")?;
                Frontend::Bind { portal, statement }
            }
            b'D' | b'C' => {
                let kind = r.u8("Describe/Close kind")?;
                if kind != b'S' && kind != b'P' {
                    return Err(PgError::Malformed { what: "Describe/Close kind" });
                }
                let name = r.cstr("Describe/Close name")?;
                if tag == b'D' {
                    Frontend::Describe { kind, name }
                } else {
                    Frontend::Close { kind, name }
                }
            }
            b'E' => Frontend::Execute { portal: r.cstr("Execute portal")?, max_rows: r.u32("Execute max rows")? },
            b'S' => Frontend::Sync,
            b'H' => Frontend::Flush,
            b'd' => Frontend::CopyData(body),
            b'c' => Frontend::CopyDone,
            b'f' => Frontend::CopyFail { message: r.cstr("CopyFail message")? },
            b'F' => {
                let function_oid = r.u32("FunctionCall oid")?;
                skip_formats(&mut r, "FunctionCall argument format count", "FunctionCall argument formats")?;
                skip_values(&mut r, "FunctionCall argument count", "FunctionCall argument value")?;
                r.u16("FunctionCall result format")?;
                Frontend::FunctionCall { function_oid }
            }
            b'X' => Frontend::Terminate,
            b'p' => Frontend::AuthData(body),
            _ => Frontend::Unknown { tag, body },
        };
        Ok(msg)
    }
}

/// Skips an Int16 count of Int16 format codes.
fn skip_formats(r: &mut Reader<'_>, count: &'static str, formats: &'static str) -> Result<(), PgError> {
    let n = r.u16(count)?;
    r.bytes(2 * usize::from(n), formats)?;
    Ok(())
}

/// Skips an Int16 count of values, each an Int32 length (-1: NULL) and that many bytes.
fn skip_values(r: &mut Reader<'_>, count: &'static str, value: &'static str) -> Result<(), PgError> {
    for _ in 0..r.u16(count)? {
        r.value(value)?;
    }
    Ok(())
}

/// The first SASL message: the chosen mechanism and the client-first data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaslInitialResponse<'a> {
    pub mechanism: &'a [u8],
    /// `None` when the length is -1 (no initial response).
    pub data: Option<&'a [u8]>,
}

impl<'a> SaslInitialResponse<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, PgError> {
        let mut r = Reader::new(body);
        let mechanism = r.cstr("SASL mechanism")?;
        let len = r.u32("SASL data length")?;
        let data = if len == u32::MAX { None } else { Some(r.bytes(len as usize, "SASL data")?) };
        Ok(SaslInitialResponse { mechanism, data })
    }
}
