//! The untyped startup-phase packets a client sends first: StartupMessage (protocol 3.0
//! and 3.2), SSLRequest, GSSENCRequest and CancelRequest.
//!
//! Spec: <https://www.postgresql.org/docs/current/protocol-message-formats.html>
//! (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) and
//! <https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP>.

use super::error::PgError;
use super::frame::PgLimits;
use super::reader::{be_u32, Reader};

pub const SSL_REQUEST_CODE: u32 = 80_877_103;
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// One startup-phase packet, borrowing its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartupPacket<'a> {
    Startup(StartupMessage<'a>),
    SslRequest,
    GssEncRequest,
    /// `key` is 4 bytes in protocol 3.0, up to 256 in 3.2.
    Cancel {
        pid: u32,
        key: &'a [u8],
    },
}

/// A StartupMessage: protocol version and `name\0value\0` pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartupMessage<'a> {
    pub major: u16,
    pub minor: u16,
    /// The raw parameter area (pairs, then the terminating NUL), already validated.
    params: &'a [u8],
}

impl<'a> StartupMessage<'a> {
    /// The parameters in wire order.
    pub fn params(&self) -> Params<'a> {
        Params { reader: Reader::new(self.params) }
    }

    pub fn param(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.params().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn user(&self) -> Option<&'a [u8]> {
        self.param(b"user")
    }

    /// The database, defaulting to the user name as the server does.
    pub fn database(&self) -> Option<&'a [u8]> {
        self.param(b"database").or_else(|| self.user())
    }
}

/// Iterator over validated startup parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let name = self.reader.cstr("parameter name").ok()?;
        if name.is_empty() {
            return None;
        }
        let value = self.reader.cstr("parameter value").ok()?;
        Some((name, value))
    }
}

impl<'a> StartupPacket<'a> {
    /// Parses one whole startup-phase packet (length word included).
    pub fn parse(packet: &'a [u8], limits: &PgLimits) -> Result<Self, PgError> {
        let len = be_u32(packet).ok_or(PgError::Truncated { what: "startup length" })? as usize;
        if len != packet.len() {
            return Err(PgError::NotOneMessage { expected: len, actual: packet.len() });
        }
        let mut r = Reader::new(&packet[4..]);
        let code = r.u32("protocol code")?;
        match code {
            SSL_REQUEST_CODE | GSSENC_REQUEST_CODE if !r.is_empty() => {
                Err(PgError::Malformed { what: "encryption request" })
            }
            SSL_REQUEST_CODE => Ok(StartupPacket::SslRequest),
            GSSENC_REQUEST_CODE => Ok(StartupPacket::GssEncRequest),
            CANCEL_REQUEST_CODE => {
                let pid = r.u32("cancel pid")?;
                let key = r.remaining();
                if key.len() < 4 || key.len() > 256 {
                    return Err(PgError::Malformed { what: "cancel key" });
                }
                Ok(StartupPacket::Cancel { pid, key })
            }
            _ if code >> 16 == 3 => {
                let params = r.remaining();
                // Validate now so the iterator can stay infallible: pairs, then one NUL.
                let mut check = Reader::new(params);
                let mut count = 0;
                loop {
                    let name = check.cstr("parameter name")?;
                    if name.is_empty() {
                        break;
                    }
                    check.cstr("parameter value")?;
                    count += 1;
                    if count > limits.max_parameters {
                        return Err(PgError::TooManyParameters { limit: limits.max_parameters });
                    }
                }
                if !check.is_empty() {
                    return Err(PgError::Malformed { what: "bytes after the startup parameters" });
                }
                Ok(StartupPacket::Startup(StartupMessage { major: 3, minor: code as u16, params }))
            }
            _ => Err(PgError::UnsupportedProtocol(code)),
        }
    }
}
