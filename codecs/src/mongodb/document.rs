//! A bounded, zero-copy, lazy BSON reader.
//!
//! Spec: BSON 1.1, <https://bsonspec.org/spec.html>. A document is an int32 length
//! (counting itself and the trailing 0x00), a list of elements (type byte, cstring key,
//! value) and 0x00.
//!
//! Why not the `bson` crate: it decodes a whole document into an owned tree (a `String`
//! per key, a `Vec`/map per container) for every message, which is too much allocation on
//! a proxy's hot path, where a filter wants the first key and a few top-level fields.
//! This reader never allocates: [`Document`] borrows the message, iterating it yields
//! [`Element`]s whose values are views ([`Value`]), and nested documents and arrays are
//! skipped by their length without being walked (checked only for their length and
//! terminator). Every length is checked against the bytes actually present, keys and
//! regexes must be NUL-terminated inside their document, and strings returned as `&str`
//! must be UTF-8. [`Document::validate`] walks everything (depth-bounded) for callers
//! that want the whole document checked, such as the fuzz targets.

use super::error::BsonError;
use super::header::{le_i32, le_i64, le_u32};

/// Smallest document: length word and terminator.
pub const MIN_DOCUMENT_LEN: usize = 5;

/// A framed BSON document: its length word matches its slice and it ends in 0x00. The
/// elements are read lazily.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Document<'a> {
    bytes: &'a [u8],
}

impl std::fmt::Debug for Document<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for e in self.iter() {
            match e {
                Ok(e) => m.entry(&e.key, &e.value),
                Err(err) => m.entry(&"<error>", &err),
            };
        }
        m.finish()
    }
}

impl<'a> Document<'a> {
    /// `bytes` must be exactly one document.
    pub fn parse(bytes: &'a [u8]) -> Result<Document<'a>, BsonError> {
        let (doc, rest) = Document::parse_prefix(bytes)?;
        if !rest.is_empty() {
            return Err(BsonError::BadDocumentLength { len: doc.bytes.len() as i64 });
        }
        Ok(doc)
    }

    /// The document at the front of `bytes`, and what follows it.
    pub fn parse_prefix(bytes: &'a [u8]) -> Result<(Document<'a>, &'a [u8]), BsonError> {
        let len = le_i32(bytes, 0).ok_or(BsonError::Truncated { what: "document length" })?;
        let ulen = usize::try_from(len).map_err(|_| BsonError::BadDocumentLength { len: len.into() })?;
        if ulen < MIN_DOCUMENT_LEN {
            return Err(BsonError::BadDocumentLength { len: len.into() });
        }
        if ulen > bytes.len() {
            return Err(BsonError::Truncated { what: "document" });
        }
        let (doc, rest) = bytes.split_at(ulen);
        if doc.last() != Some(&0) {
            return Err(BsonError::MissingTerminator);
        }
        Ok((Document { bytes: doc }, rest))
    }

    /// The document's bytes, length word and terminator included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The element list, without the length word and the terminator.
    fn elements(&self) -> &'a [u8] {
        self.bytes.get(4..self.bytes.len().saturating_sub(1)).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.elements().is_empty()
    }

    /// The top-level elements in order. After the first error the iterator ends.
    pub fn iter(&self) -> Elements<'a> {
        Elements { rest: self.elements(), done: false }
    }

    /// The first element: for a command, its name and argument.
    pub fn first(&self) -> Result<Option<Element<'a>>, BsonError> {
        self.iter().next().transpose()
    }

    /// The first top-level element named `key`. Elements before it must be well formed.
    pub fn get(&self, key: &str) -> Result<Option<Value<'a>>, BsonError> {
        for e in self.iter() {
            let e = e?;
            if e.key == key {
                return Ok(Some(e.value));
            }
        }
        Ok(None)
    }

    /// Number of top-level elements (an array's length).
    pub fn count(&self) -> Result<usize, BsonError> {
        self.iter().try_fold(0usize, |n, e| e.map(|_| n + 1))
    }

    /// Walks the whole document, nested ones included, checking every element; nesting
    /// deeper than `max_depth` documents (this one counts as 1) is an error.
    pub fn validate(&self, max_depth: usize) -> Result<(), BsonError> {
        validate(*self, 1, max_depth)
    }
}

fn validate(doc: Document<'_>, depth: usize, max_depth: usize) -> Result<(), BsonError> {
    if depth > max_depth {
        return Err(BsonError::TooDeep { limit: max_depth });
    }
    for e in doc.iter() {
        match e?.value {
            Value::Document(d) | Value::Array(d) => validate(d, depth + 1, max_depth)?,
            Value::JavaScriptWithScope { scope, .. } => validate(scope, depth + 1, max_depth)?,
            _ => {}
        }
    }
    Ok(())
}

/// One element: key and value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Element<'a> {
    pub key: &'a str,
    pub value: Value<'a>,
}

/// A value view. Containers are framed [`Document`]s, read when asked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Double(f64),
    String(&'a str),
    Document(Document<'a>),
    Array(Document<'a>),
    Binary {
        subtype: u8,
        bytes: &'a [u8],
    },
    Undefined,
    ObjectId(&'a [u8; 12]),
    Boolean(bool),
    /// Milliseconds since the Unix epoch.
    DateTime(i64),
    Null,
    Regex {
        pattern: &'a str,
        options: &'a str,
    },
    DbPointer {
        namespace: &'a str,
        id: &'a [u8; 12],
    },
    JavaScript(&'a str),
    Symbol(&'a str),
    JavaScriptWithScope {
        code: &'a str,
        scope: Document<'a>,
    },
    Int32(i32),
    /// (increment, seconds): the low and high halves of the uint64.
    Timestamp {
        increment: u32,
        time: u32,
    },
    Int64(i64),
    Decimal128(&'a [u8; 16]),
    MinKey,
    MaxKey,
}

impl<'a> Value<'a> {
    /// The BSON type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            Value::Double(_) => 0x01,
            Value::String(_) => 0x02,
            Value::Document(_) => 0x03,
            Value::Array(_) => 0x04,
            Value::Binary { .. } => 0x05,
            Value::Undefined => 0x06,
            Value::ObjectId(_) => 0x07,
            Value::Boolean(_) => 0x08,
            Value::DateTime(_) => 0x09,
            Value::Null => 0x0A,
            Value::Regex { .. } => 0x0B,
            Value::DbPointer { .. } => 0x0C,
            Value::JavaScript(_) => 0x0D,
            Value::Symbol(_) => 0x0E,
            Value::JavaScriptWithScope { .. } => 0x0F,
            Value::Int32(_) => 0x10,
            Value::Timestamp { .. } => 0x11,
            Value::Int64(_) => 0x12,
            Value::Decimal128(_) => 0x13,
            Value::MinKey => 0xFF,
            Value::MaxKey => 0x7F,
        }
    }

    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_document(&self) -> Option<Document<'a>> {
        match *self {
            Value::Document(d) => Some(d),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<Document<'a>> {
        match *self {
            Value::Array(d) => Some(d),
            _ => None,
        }
    }

    /// An integer value: int32, int64, or a double holding an integer (drivers and shells
    /// send `code`, `n`, limits as any of the three).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int32(v) => Some(v.into()),
            Value::Int64(v) => Some(v),
            Value::Double(v) if v.fract() == 0.0 && (-9.0e15..=9.0e15).contains(&v) => Some(v as i64),
            _ => None,
        }
    }

    /// A number as f64 (int32, int64, double).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int32(v) => Some(v.into()),
            Value::Int64(v) => Some(v as f64),
            Value::Double(v) => Some(v),
            _ => None,
        }
    }

    /// The server's truthiness for `ok`-like fields: a non-zero number or `true`.
    pub fn is_truthy(&self) -> bool {
        match *self {
            Value::Boolean(b) => b,
            Value::Null | Value::Undefined => false,
            _ => self.as_f64().is_some_and(|v| v != 0.0),
        }
    }
}

/// Iterator over a document's elements; see [`Document::iter`].
#[derive(Clone, Debug)]
pub struct Elements<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Element<'a>, BsonError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let r = read_element(self.rest);
        match r {
            Ok((e, rest)) => {
                self.rest = rest;
                Some(Ok(e))
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

/// A cstring at the front of `buf` (without its NUL) and what follows the NUL.
fn cstring(buf: &[u8]) -> Result<(&[u8], &[u8]), BsonError> {
    let end = memchr::memchr(0, buf).ok_or(BsonError::UnterminatedCString)?;
    Ok((&buf[..end], &buf[end + 1..]))
}

fn utf8<'a>(b: &'a [u8], what: &'static str) -> Result<&'a str, BsonError> {
    std::str::from_utf8(b).map_err(|_| BsonError::InvalidUtf8 { what })
}

fn take<'a>(buf: &'a [u8], n: usize, what: &'static str) -> Result<(&'a [u8], &'a [u8]), BsonError> {
    if buf.len() < n {
        return Err(BsonError::Truncated { what });
    }
    Ok(buf.split_at(n))
}

fn fixed<'a, const N: usize>(buf: &'a [u8], what: &'static str) -> Result<(&'a [u8; N], &'a [u8]), BsonError> {
    let (head, rest) = take(buf, N, what)?;
    let head = head.try_into().map_err(|_| BsonError::Truncated { what })?;
    Ok((head, rest))
}

/// A BSON string (int32 length counting the NUL, bytes, NUL).
fn string<'a>(buf: &'a [u8], what: &'static str) -> Result<(&'a str, &'a [u8]), BsonError> {
    let len = le_i32(buf, 0).ok_or(BsonError::Truncated { what })?;
    let len = usize::try_from(len).map_err(|_| BsonError::BadString)?;
    if len < 1 {
        return Err(BsonError::BadString);
    }
    let (s, rest) = take(&buf[4..], len, what)?;
    let (&nul, s) = s.split_last().ok_or(BsonError::BadString)?;
    if nul != 0 {
        return Err(BsonError::BadString);
    }
    Ok((utf8(s, what)?, rest))
}

fn read_element(buf: &[u8]) -> Result<(Element<'_>, &[u8]), BsonError> {
    let (&ty, rest) = buf.split_first().ok_or(BsonError::Truncated { what: "element type" })?;
    if ty == 0 {
        return Err(BsonError::EarlyTerminator);
    }
    let (key, rest) = cstring(rest)?;
    let key = utf8(key, "key")?;
    let (value, rest) = read_value(ty, rest)?;
    Ok((Element { key, value }, rest))
}

fn read_value(ty: u8, buf: &[u8]) -> Result<(Value<'_>, &[u8]), BsonError> {
    Ok(match ty {
        0x01 => {
            let (b, rest) = fixed::<8>(buf, "double")?;
            (Value::Double(f64::from_le_bytes(*b)), rest)
        }
        0x02 => {
            let (s, rest) = string(buf, "string")?;
            (Value::String(s), rest)
        }
        0x03 | 0x04 => {
            let (d, rest) = Document::parse_prefix(buf)?;
            (if ty == 0x03 { Value::Document(d) } else { Value::Array(d) }, rest)
        }
        0x05 => {
            let len = le_i32(buf, 0).ok_or(BsonError::Truncated { what: "binary length" })?;
            let len = usize::try_from(len).map_err(|_| BsonError::BadLength { what: "binary" })?;
            let (&subtype, rest) = buf[4..].split_first().ok_or(BsonError::Truncated { what: "binary subtype" })?;
            let (bytes, rest) = take(rest, len, "binary")?;
            (Value::Binary { subtype, bytes }, rest)
        }
        0x06 => (Value::Undefined, buf),
        0x07 => {
            let (id, rest) = fixed::<12>(buf, "ObjectId")?;
            (Value::ObjectId(id), rest)
        }
        0x08 => {
            let (&b, rest) = buf.split_first().ok_or(BsonError::Truncated { what: "boolean" })?;
            match b {
                0 => (Value::Boolean(false), rest),
                1 => (Value::Boolean(true), rest),
                other => return Err(BsonError::BadBool(other)),
            }
        }
        0x09 => {
            let v = le_i64(buf, 0).ok_or(BsonError::Truncated { what: "datetime" })?;
            (Value::DateTime(v), &buf[8..])
        }
        0x0A => (Value::Null, buf),
        0x0B => {
            let (pattern, rest) = cstring(buf)?;
            let (options, rest) = cstring(rest)?;
            (Value::Regex { pattern: utf8(pattern, "regex")?, options: utf8(options, "regex options")? }, rest)
        }
        0x0C => {
            let (namespace, rest) = string(buf, "DBPointer namespace")?;
            let (id, rest) = fixed::<12>(rest, "DBPointer id")?;
            (Value::DbPointer { namespace, id }, rest)
        }
        0x0D => {
            let (s, rest) = string(buf, "JavaScript code")?;
            (Value::JavaScript(s), rest)
        }
        0x0E => {
            let (s, rest) = string(buf, "symbol")?;
            (Value::Symbol(s), rest)
        }
        0x0F => {
            let total = le_i32(buf, 0).ok_or(BsonError::Truncated { what: "code with scope" })?;
            let total = usize::try_from(total).map_err(|_| BsonError::BadLength { what: "code with scope" })?;
            let (all, rest) = take(buf, total, "code with scope")?;
            let inner = all.get(4..).ok_or(BsonError::BadLength { what: "code with scope" })?;
            let (code, after) = string(inner, "code with scope")?;
            let scope = Document::parse(after).map_err(|e| match e {
                BsonError::BadDocumentLength { .. } | BsonError::Truncated { .. } => {
                    BsonError::BadLength { what: "code with scope" }
                }
                other => other,
            })?;
            (Value::JavaScriptWithScope { code, scope }, rest)
        }
        0x10 => {
            let v = le_i32(buf, 0).ok_or(BsonError::Truncated { what: "int32" })?;
            (Value::Int32(v), &buf[4..])
        }
        0x11 => {
            let increment = le_u32(buf, 0).ok_or(BsonError::Truncated { what: "timestamp" })?;
            let time = le_u32(buf, 4).ok_or(BsonError::Truncated { what: "timestamp" })?;
            (Value::Timestamp { increment, time }, &buf[8..])
        }
        0x12 => {
            let v = le_i64(buf, 0).ok_or(BsonError::Truncated { what: "int64" })?;
            (Value::Int64(v), &buf[8..])
        }
        0x13 => {
            let (d, rest) = fixed::<16>(buf, "decimal128")?;
            (Value::Decimal128(d), rest)
        }
        0xFF => (Value::MinKey, buf),
        0x7F => (Value::MaxKey, buf),
        other => return Err(BsonError::UnknownType(other)),
    })
}
