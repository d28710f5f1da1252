//! Encoding the frames sluice writes itself: error replies for refused commands and whole
//! values (tests, pushes).

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use super::value::Value;

/// Appends `-<message>\r\n`. Line breaks in `message` would end the frame early, so
/// they become spaces.
pub fn encode_error(out: &mut BytesMut, message: &str) {
    out.reserve(message.len() + 3);
    out.put_u8(b'-');
    out.extend(message.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    out.put_slice(b"\r\n");
}

pub fn encode_value(value: &Value, out: &mut BytesMut) {
    match value {
        Value::SimpleString(s) => line(out, b'+', s),
        Value::Error(s) => line(out, b'-', s),
        Value::Integer(s) => line(out, b':', s),
        Value::Double(s) => line(out, b',', s),
        Value::BigNumber(s) => line(out, b'(', s),
        Value::Null => out.put_slice(b"_\r\n"),
        Value::NullBulk => out.put_slice(b"$-1\r\n"),
        Value::NullArray => out.put_slice(b"*-1\r\n"),
        Value::Boolean(b) => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Value::BulkString(b) => bulk(out, b'$', b),
        Value::BulkError(b) => bulk(out, b'!', b),
        Value::Verbatim(b) => bulk(out, b'=', b),
        Value::Array(items) => aggregate(out, b'*', items),
        Value::Set(items) => aggregate(out, b'~', items),
        Value::Push(items) => aggregate(out, b'>', items),
        Value::Map(pairs) => map(out, b'%', pairs),
        Value::Attributed(attrs, value) => {
            map(out, b'|', attrs);
            encode_value(value, out);
        }
    }
}

fn line(out: &mut BytesMut, ty: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(ty);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

fn header(out: &mut BytesMut, ty: u8, n: usize) {
    out.put_u8(ty);
    // Writing into a BytesMut cannot fail.
    let _ = write!(out, "{n}\r\n");
}

fn bulk(out: &mut BytesMut, ty: u8, payload: &[u8]) {
    header(out, ty, payload.len());
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, ty: u8, items: &[Value]) {
    header(out, ty, items.len());
    for item in items {
        encode_value(item, out);
    }
}

fn map(out: &mut BytesMut, ty: u8, pairs: &[(Value, Value)]) {
    header(out, ty, pairs.len());
    for (k, v) in pairs {
        encode_value(k, out);
        encode_value(v, out);
    }
}
