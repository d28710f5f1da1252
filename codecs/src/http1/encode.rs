//! Writing HTTP/1.1 messages: heads from parts, chunks, and the minimal error response a
//! proxy answers with. Everything is written into the caller's buffer (reserved once per
//! call); nothing else is allocated.
//!
//! The parts are checked first (RFC 9112 §3, §4, §5; RFC 9110 §5.5): a method or field
//! name must be a token, a target visible ASCII, a reason or field value free of CR, LF and
//! NUL — a converter that copied a CR or LF from elsewhere would otherwise split a message
//! in two (response splitting, RFC 9112 §11.1). On an error nothing is written.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::H1Error;
use super::head::Version;
use super::headers::is_token;

fn check_fields<'a>(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Result<usize, H1Error> {
    let mut len = 0usize;
    for (name, value) in fields {
        if !is_token(name) {
            return Err(H1Error::InvalidHeaderName);
        }
        if !is_field_value(value) {
            return Err(H1Error::InvalidHeaderValue);
        }
        len = len.saturating_add(name.len() + value.len() + 4);
    }
    Ok(len)
}

/// RFC 9110 §5.5: field-vchar / SP / HTAB, no leading or trailing whitespace.
fn is_field_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || b >= b' ')
        && !v.contains(&0x7f)
        && !matches!(v.first(), Some(b' ' | b'\t'))
        && !matches!(v.last(), Some(b' ' | b'\t'))
}

fn put_fields<'a>(out: &mut BytesMut, fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) {
    for (name, value) in fields {
        out.put_slice(name);
        out.put_slice(b": ");
        out.put_slice(value);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
}

/// Writes `method SP target SP version CRLF`, the fields and the empty line.
pub fn encode_request_head<'a, I>(
    out: &mut BytesMut,
    method: &[u8],
    target: &[u8],
    version: Version,
    fields: I,
) -> Result<(), H1Error>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    I::IntoIter: Clone,
{
    let fields = fields.into_iter();
    if !is_token(method) {
        return Err(H1Error::MalformedRequestLine);
    }
    if target.is_empty() || !target.iter().all(u8::is_ascii_graphic) {
        return Err(H1Error::InvalidTarget);
    }
    let len = check_fields(fields.clone())?;
    out.reserve(len.saturating_add(method.len() + target.len() + 14));
    out.put_slice(method);
    out.put_u8(b' ');
    out.put_slice(target);
    out.put_u8(b' ');
    out.put_slice(version.as_bytes());
    out.put_slice(b"\r\n");
    put_fields(out, fields);
    Ok(())
}

/// Writes `version SP status SP reason CRLF`, the fields and the empty line.
pub fn encode_response_head<'a, I>(
    out: &mut BytesMut,
    version: Version,
    status: u16,
    reason: &[u8],
    fields: I,
) -> Result<(), H1Error>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    I::IntoIter: Clone,
{
    let fields = fields.into_iter();
    if !(100..=999).contains(&status) || !reason.iter().all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f)) {
        return Err(H1Error::MalformedStatusLine);
    }
    let len = check_fields(fields.clone())?;
    out.reserve(len.saturating_add(reason.len() + 16));
    out.put_slice(version.as_bytes());
    out.put_u8(b' ');
    out.put_slice(&[b'0' + (status / 100) as u8, b'0' + (status / 10 % 10) as u8, b'0' + (status % 10) as u8]);
    out.put_u8(b' ');
    out.put_slice(reason);
    out.put_slice(b"\r\n");
    put_fields(out, fields);
    Ok(())
}

/// Writes one chunk: hex size line, data, CRLF. Empty data writes nothing (a zero-size
/// chunk would end the body).
pub fn encode_chunk(out: &mut BytesMut, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let mut digits = [0u8; 16];
    let mut n = data.len() as u64;
    let mut i = digits.len();
    while n > 0 || i == digits.len() {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
    }
    out.reserve(digits.len() - i + data.len() + 4);
    out.put_slice(&digits[i..]);
    out.put_slice(b"\r\n");
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Writes the last chunk and the trailer section (`0 CRLF`, fields, CRLF).
pub fn encode_last_chunk<'a, I>(out: &mut BytesMut, trailers: I) -> Result<(), H1Error>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    I::IntoIter: Clone,
{
    let trailers = trailers.into_iter();
    let len = check_fields(trailers.clone())?;
    out.reserve(len.saturating_add(5));
    out.put_slice(b"0\r\n");
    put_fields(out, trailers);
    Ok(())
}

/// The reason phrase of the statuses sluice answers with itself, and a generic one else.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// The longest body [`error_response`] keeps.
pub const MAX_ERROR_BODY: usize = 1024;

/// A complete response a proxy sends before closing: `HTTP/1.1 <status> <reason>`,
/// `Content-Length`, `Connection: close` and, if `body` is not empty, `Content-Type:
/// text/plain` and the body (cut to [`MAX_ERROR_BODY`] bytes). A status outside 100..=999
/// becomes 500.
pub fn error_response(status: u16, body: &[u8]) -> Bytes {
    let status = if (100..=999).contains(&status) { status } else { 500 };
    let body = &body[..body.len().min(MAX_ERROR_BODY)];
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = body.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = &digits[i..];
    let mut out = BytesMut::with_capacity(128 + body.len());
    let fields: [(&[u8], &[u8]); 3] =
        [(b"Content-Length", len), (b"Connection", b"close"), (b"Content-Type", b"text/plain; charset=utf-8")];
    let shown = if body.is_empty() { 2 } else { 3 };
    // Parts are constant or digits: this cannot fail.
    let _ = encode_response_head(
        &mut out,
        Version::Http11,
        status,
        reason_phrase(status).as_bytes(),
        fields[..shown].iter().copied(),
    );
    out.put_slice(body);
    out.freeze()
}
