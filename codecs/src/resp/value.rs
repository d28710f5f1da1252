//! An owned RESP value tree, for the frames sluice builds itself and for tests that check
//! decode → encode round trips. Payloads are `Bytes` slices of the frame they came from,
//! and numbers keep their text, so re-encoding reproduces the original bytes exactly.
//! Parsing recurses, but only into frames the scanner accepted, whose depth is capped.

use bytes::Bytes;

use super::error::RespError;
use super::scanner::{parse_len, MAX_DEPTH_CAP};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    SimpleString(Bytes),
    Error(Bytes),
    /// The integer's text as sent.
    Integer(Bytes),
    BulkString(Bytes),
    /// RESP2 `$-1`.
    NullBulk,
    Array(Vec<Value>),
    /// RESP2 `*-1`.
    NullArray,
    /// RESP3 `_`.
    Null,
    Boolean(bool),
    Double(Bytes),
    BigNumber(Bytes),
    BulkError(Bytes),
    /// Including its three-letter format and colon (`txt:…`).
    Verbatim(Bytes),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Push(Vec<Value>),
    /// RESP3 attributes and the value they decorate.
    Attributed(Vec<(Value, Value)>, Box<Value>),
}

/// Parses a complete (scanner-accepted) non-inline frame.
pub fn parse_value(frame: &Bytes) -> Result<Value, RespError> {
    let (value, end) = parse_at(frame, 0, 0)?;
    if end != frame.len() {
        return Err(RespError::InvalidLength);
    }
    Ok(value)
}

fn parse_at(frame: &Bytes, pos: usize, depth: usize) -> Result<(Value, usize), RespError> {
    if depth > MAX_DEPTH_CAP {
        return Err(RespError::TooDeep { limit: MAX_DEPTH_CAP });
    }
    let ty = *frame.get(pos).ok_or(RespError::InvalidLength)?;
    let lf = pos + memchr::memchr(b'\n', &frame[pos..]).ok_or(RespError::MissingCrlf)?;
    if lf < pos + 2 || frame[lf - 1] != b'\r' {
        return Err(RespError::MissingCrlf);
    }
    let line = frame.slice(pos + 1..lf - 1);
    let next = lf + 1;
    let bulk = |len: u64| -> Result<(Bytes, usize), RespError> {
        let end = next.checked_add(len as usize).ok_or(RespError::InvalidLength)?;
        if frame.len() < end + 2 || &frame[end..end + 2] != b"\r\n" {
            return Err(RespError::MissingCrlf);
        }
        Ok((frame.slice(next..end), end + 2))
    };
    let elements = |count: u64, mut at: usize| -> Result<(Vec<Value>, usize), RespError> {
        // Capacity is bounded by the bytes present: every element takes at least 3.
        let mut items = Vec::with_capacity((count as usize).min((frame.len() - at) / 3));
        for _ in 0..count {
            let (v, n) = parse_at(frame, at, depth + 1)?;
            items.push(v);
            at = n;
        }
        Ok((items, at))
    };
    let pairs = |count: u64, at: usize| -> Result<(Vec<(Value, Value)>, usize), RespError> {
        let (flat, end) = elements(count.checked_mul(2).ok_or(RespError::InvalidLength)?, at)?;
        let mut it = flat.into_iter();
        let mut out = Vec::with_capacity(count as usize);
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.push((k, v));
        }
        Ok((out, end))
    };
    Ok(match ty {
        b'+' => (Value::SimpleString(line), next),
        b'-' => (Value::Error(line), next),
        b':' => (Value::Integer(line), next),
        b'_' => (Value::Null, next),
        b'#' => (Value::Boolean(&line[..] == b"t"), next),
        b',' => (Value::Double(line), next),
        b'(' => (Value::BigNumber(line), next),
        b'$' => match parse_len(&line, true)? {
            None => (Value::NullBulk, next),
            Some(len) => {
                let (b, end) = bulk(len)?;
                (Value::BulkString(b), end)
            }
        },
        b'!' | b'=' => {
            let len = parse_len(&line, false)?.ok_or(RespError::InvalidLength)?;
            let (b, end) = bulk(len)?;
            (if ty == b'!' { Value::BulkError(b) } else { Value::Verbatim(b) }, end)
        }
        b'*' => match parse_len(&line, true)? {
            None => (Value::NullArray, next),
            Some(n) => {
                let (items, end) = elements(n, next)?;
                (Value::Array(items), end)
            }
        },
        b'~' | b'>' => {
            let (items, end) = elements(parse_len(&line, false)?.ok_or(RespError::InvalidLength)?, next)?;
            (if ty == b'~' { Value::Set(items) } else { Value::Push(items) }, end)
        }
        b'%' => {
            let (items, end) = pairs(parse_len(&line, false)?.ok_or(RespError::InvalidLength)?, next)?;
            (Value::Map(items), end)
        }
        b'|' => {
            let (attrs, end) = pairs(parse_len(&line, false)?.ok_or(RespError::InvalidLength)?, next)?;
            let (value, end) = parse_at(frame, end, depth + 1)?;
            (Value::Attributed(attrs, Box::new(value)), end)
        }
        other => return Err(RespError::InvalidType(other)),
    })
}
