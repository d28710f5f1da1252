//! Encoding the messages sluice writes itself: the ErrorResponse that refuses a statement
//! or ends a session, the ReadyForQuery that follows a refused simple Query, the
//! one-byte answer to an encryption request, the SSLRequest sluice sends a server it
//! originates TLS to, and the AuthenticationSASL offer with channel binding taken out.
//!
//! Spec: "ErrorResponse", "ReadyForQuery" in
//! <https://www.postgresql.org/docs/current/protocol-message-formats.html>, the field types
//! in protocol-error-fields.html, and SSLRequest's single-byte answer in
//! protocol-flow.html#PROTOCOL-FLOW-SSL. An ErrorResponse carries `S` (localized severity),
//! `V` (the same, never localized, for clients that parse it), `C` (SQLSTATE) and `M`
//! (message); every client (libpq, psycopg, JDBC, asyncpg) shows `M` and exposes `C`.

use bytes::{BufMut, BytesMut};

use super::backend::TxStatus;
use super::startup::SSL_REQUEST_CODE;

/// The longest message written: enough for any policy text, small enough that a client's
/// log line stays readable. Longer text is cut at a UTF-8 boundary.
pub const MAX_ERROR_MESSAGE: usize = 1024;

/// An error's severity as the server spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The statement failed; the session goes on.
    Error,
    /// The session ends after this message.
    Fatal,
}

impl Severity {
    fn as_bytes(self) -> &'static [u8] {
        match self {
            Severity::Error => b"ERROR",
            Severity::Fatal => b"FATAL",
        }
    }
}

/// Appends an ErrorResponse (`E`) with severity, SQLSTATE and message.
pub fn encode_error(out: &mut BytesMut, severity: Severity, sqlstate: &[u8; 5], message: &str) {
    let message = truncate_utf8(message, MAX_ERROR_MESSAGE);
    let severity = severity.as_bytes();
    let body = 2 * (severity.len() + 2) + (sqlstate.len() + 2) + (message.len() + 2) + 1;
    out.reserve(1 + 4 + body);
    out.put_u8(b'E');
    out.put_u32((4 + body) as u32);
    for (kind, value) in [(b'S', severity), (b'V', severity), (b'C', &sqlstate[..]), (b'M', message.as_bytes())] {
        out.put_u8(kind);
        out.put_slice(value);
        out.put_u8(0);
    }
    out.put_u8(0);
}

/// Appends ReadyForQuery (`Z`) with the transaction status.
pub fn encode_ready_for_query(out: &mut BytesMut, status: TxStatus) {
    out.put_u8(b'Z');
    out.put_u32(5);
    out.put_u8(match status {
        TxStatus::Idle => b'I',
        TxStatus::InTransaction => b'T',
        TxStatus::Failed => b'E',
    });
}

/// SSLRequest ("SSL Session Encryption" in protocol-flow.html): what a client sends before
/// its StartupMessage to ask for TLS; the server answers one byte (`S` or `N`) and
/// nothing else, and the TLS handshake follows on the same socket.
pub const fn ssl_request() -> [u8; 8] {
    let code = SSL_REQUEST_CODE.to_be_bytes();
    [0, 0, 0, 8, code[0], code[1], code[2], code[3]]
}

/// AuthenticationSASL without the channel-binding mechanisms (`SCRAM-SHA-256-PLUS`), or
/// `None` when `message` is not an AuthenticationSASL or offers none. Channel binding
/// (RFC 5802 §6, RFC 5929 `tls-server-end-point`) ties the login to the TLS session the
/// server sees; when sluice originates that session, the client's own hop is another
/// session (or none), so a client that chose `-PLUS` would fail the login, and libpq
/// refuses a `-PLUS` offer on a plain connection outright. `message` is a whole message
/// the codec has read (type byte, length, body).
pub fn sasl_without_channel_binding(message: &[u8]) -> Option<BytesMut> {
    const SASL: [u8; 4] = 10u32.to_be_bytes();
    let body = message.strip_prefix(b"R")?.get(4..)?;
    let list = body.strip_prefix(&SASL)?;
    let plus = |m: &[u8]| m.ends_with(b"-PLUS");
    let mechanisms = list.split(|&b| b == 0).filter(|m| !m.is_empty());
    if !mechanisms.clone().any(plus) {
        return None;
    }
    let kept: Vec<&[u8]> = mechanisms.filter(|m| !plus(m)).collect();
    let body_len = SASL.len() + kept.iter().map(|m| m.len() + 1).sum::<usize>() + 1;
    let mut out = BytesMut::with_capacity(1 + 4 + body_len);
    out.put_u8(b'R');
    out.put_u32((4 + body_len) as u32);
    out.put_slice(&SASL);
    for m in kept {
        out.put_slice(m);
        out.put_u8(0);
    }
    out.put_u8(0);
    Some(out)
}

/// The server's answer to SSLRequest or GSSENCRequest: `S` to go ahead, `N` to refuse
/// (the client then sends its StartupMessage in the clear, or gives up).
pub fn encryption_answer(accept: bool) -> &'static [u8] {
    if accept {
        b"S"
    } else {
        b"N"
    }
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::{typed_body, Backend};

    #[test]
    fn an_error_response_parses_back_with_its_fields() {
        let mut out = BytesMut::new();
        encode_error(&mut out, Severity::Error, b"42501", "sluice: DROP denied by policy (rule 0)");
        let (tag, body) = typed_body(&out).unwrap();
        let Backend::ErrorResponse(notice) = Backend::parse(tag, body).unwrap() else { panic!("not an error") };
        assert_eq!(notice.severity, b"ERROR");
        assert_eq!(notice.code, b"42501");
        assert_eq!(notice.message, b"sluice: DROP denied by policy (rule 0)");
        assert!(!notice.is_fatal());
        assert_eq!(body.len() + 5, out.len(), "the length word covers the whole message");
    }

    #[test]
    fn a_fatal_error_is_fatal_and_long_messages_are_cut_on_a_char_boundary() {
        let mut out = BytesMut::new();
        let long = "é".repeat(MAX_ERROR_MESSAGE);
        encode_error(&mut out, Severity::Fatal, b"08P01", &long);
        let (tag, body) = typed_body(&out).unwrap();
        let Backend::ErrorResponse(notice) = Backend::parse(tag, body).unwrap() else { panic!("not an error") };
        assert!(notice.is_fatal());
        assert_eq!(notice.message.len(), MAX_ERROR_MESSAGE);
        assert!(std::str::from_utf8(notice.message).is_ok());
    }

    #[test]
    fn ready_for_query_carries_each_status() {
        for (status, byte) in [(TxStatus::Idle, b'I'), (TxStatus::InTransaction, b'T'), (TxStatus::Failed, b'E')] {
            let mut out = BytesMut::new();
            encode_ready_for_query(&mut out, status);
            assert_eq!(&out[..], &[b'Z', 0, 0, 0, 5, byte]);
            let (tag, body) = typed_body(&out).unwrap();
            assert_eq!(Backend::parse(tag, body).unwrap(), Backend::ReadyForQuery(status));
        }
    }
}
