//! The messages sluice writes itself: the error replies of deny and rate-limit rules.
//!
//! Spec: OP_MSG (<https://github.com/mongodb/specifications/blob/master/source/message/OP_MSG.md>),
//! OP_REPLY (<https://www.mongodb.com/docs/manual/legacy-opcodes/#op_reply>) and BSON
//! (<https://bsonspec.org/spec.html>). A command error is `{ok: 0.0, errmsg, code, codeName}`
//! as mongod writes it, in an OP_MSG answering the request's requestID (or, for a legacy
//! OP_QUERY, an OP_REPLY with the QueryFailure flag).
//!
//! The documents are encoded by hand with [`DocumentWriter`] rather than the `bson` crate: they
//! have four or five fixed fields, and the crate would bring serde, chrono, indexmap, rand
//! and uuid into the codec for them. (The tests build documents with the `bson` crate.)

use bytes::{BufMut, Bytes, BytesMut};

use super::header::{Header, OpCode, HEADER_LEN};

/// The longest errmsg written (longer ones are cut at a character boundary).
pub const MAX_ERROR_MESSAGE: usize = 4096;

/// A minimal BSON document writer for small documents built in code.
#[derive(Debug)]
pub struct DocumentWriter {
    buf: BytesMut,
}

impl Default for DocumentWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl DocumentWriter {
    pub fn new() -> Self {
        let mut buf = BytesMut::with_capacity(128);
        buf.put_i32_le(0); // patched in finish()
        DocumentWriter { buf }
    }

    /// Keys are cstrings: a NUL inside one ends it early, so it is dropped from the key.
    fn key(&mut self, ty: u8, key: &str) {
        self.buf.put_u8(ty);
        self.buf.extend(key.bytes().filter(|&b| b != 0));
        self.buf.put_u8(0);
    }

    pub fn double(mut self, key: &str, v: f64) -> Self {
        self.key(0x01, key);
        self.buf.put_f64_le(v);
        self
    }

    pub fn string(mut self, key: &str, v: &str) -> Self {
        self.key(0x02, key);
        self.buf.put_i32_le(i32::try_from(v.len() + 1).unwrap_or(i32::MAX));
        self.buf.put_slice(v.as_bytes());
        self.buf.put_u8(0);
        self
    }

    pub fn int32(mut self, key: &str, v: i32) -> Self {
        self.key(0x10, key);
        self.buf.put_i32_le(v);
        self
    }

    pub fn int64(mut self, key: &str, v: i64) -> Self {
        self.key(0x12, key);
        self.buf.put_i64_le(v);
        self
    }

    pub fn boolean(mut self, key: &str, v: bool) -> Self {
        self.key(0x08, key);
        self.buf.put_u8(v.into());
        self
    }

    /// The finished document.
    pub fn finish(mut self) -> BytesMut {
        self.buf.put_u8(0);
        let len = i32::try_from(self.buf.len()).unwrap_or(i32::MAX).to_le_bytes();
        self.buf[..4].copy_from_slice(&len);
        self.buf
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `{ok: 0.0, errmsg, code, codeName}`.
pub fn error_document(code: i32, code_name: &str, errmsg: &str) -> BytesMut {
    DocumentWriter::new()
        .double("ok", 0.0)
        .string("errmsg", truncate(errmsg, MAX_ERROR_MESSAGE))
        .int32("code", code)
        .string("codeName", truncate(code_name, 256))
        .finish()
}

fn message(request_id: i32, response_to: i32, op_code: OpCode, body_len: usize) -> BytesMut {
    let total = HEADER_LEN + body_len;
    let header = Header { message_length: i32::try_from(total).unwrap_or(i32::MAX), request_id, response_to, op_code };
    let mut out = BytesMut::with_capacity(total);
    out.put_slice(&header.encode());
    out
}

/// An OP_MSG with one body section (`body` must be one BSON document) and `flags`.
pub fn op_msg(request_id: i32, response_to: i32, flags: u32, body: &[u8]) -> Bytes {
    let mut out = message(request_id, response_to, OpCode::Msg, 5 + body.len());
    out.put_u32_le(flags);
    out.put_u8(0);
    out.put_slice(body);
    out.freeze()
}

/// The OP_MSG error reply a rule answers a request with: `{ok: 0.0, errmsg, code,
/// codeName}`, responseTo = the request's requestID.
pub fn op_msg_error_reply(response_to: i32, request_id: i32, code: i32, code_name: &str, errmsg: &str) -> Bytes {
    op_msg(request_id, response_to, 0, &error_document(code, code_name, errmsg))
}

/// The OP_REPLY error answering a legacy OP_QUERY: QueryFailure set, no cursor, one
/// document `{$err, code, ok: 0.0, errmsg, codeName}`.
pub fn op_reply_error(response_to: i32, request_id: i32, code: i32, code_name: &str, errmsg: &str) -> Bytes {
    let errmsg = truncate(errmsg, MAX_ERROR_MESSAGE);
    let doc = DocumentWriter::new()
        .string("$err", errmsg)
        .int32("code", code)
        .double("ok", 0.0)
        .string("errmsg", errmsg)
        .string("codeName", truncate(code_name, 256))
        .finish();
    let mut out = message(request_id, response_to, OpCode::Reply, 20 + doc.len());
    out.put_i32_le(super::legacy::OpReply::QUERY_FAILURE);
    out.put_i64_le(0);
    out.put_i32_le(0);
    out.put_i32_le(1);
    out.put_slice(&doc);
    out.freeze()
}
