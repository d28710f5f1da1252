//! The legacy opcodes: OP_QUERY and OP_REPLY decoded, the others recognized.
//!
//! Spec: MongoDB Wire Protocol, "Legacy Opcodes"
//! (<https://www.mongodb.com/docs/manual/legacy-opcodes/>). OP_QUERY survives as the first
//! `hello`/`isMaster` of drivers that have not declared an API version (answered by
//! OP_REPLY); servers since 5.1 refuse it for anything else, and 6.0 removed OP_INSERT,
//! OP_UPDATE, OP_DELETE, OP_GET_MORE and OP_KILL_CURSORS. Those are recognized by opcode,
//! with their collection name where it is a cheap cstring at a fixed place.
//!
//! ```text
//! OP_QUERY        int32 flags, cstring fullCollectionName, int32 numberToSkip,
//!                 int32 numberToReturn, document query, [document returnFieldsSelector]
//! OP_REPLY        int32 responseFlags, int64 cursorID, int32 startingFrom,
//!                 int32 numberReturned, document*
//! OP_INSERT       int32 flags, cstring fullCollectionName, document*
//! OP_UPDATE       int32 ZERO, cstring fullCollectionName, int32 flags, document selector, document update
//! OP_DELETE       int32 ZERO, cstring fullCollectionName, int32 flags, document selector
//! OP_GET_MORE     int32 ZERO, cstring fullCollectionName, int32 numberToReturn, int64 cursorID
//! OP_KILL_CURSORS int32 ZERO, int32 numberOfCursorIDs, int64* cursorIDs
//! ```

use super::document::Document;
use super::error::MongoError;
use super::header::{le_i32, le_i64, Message, OpCode};

/// A cstring at `at` in `body`, as UTF-8, and the offset after its NUL.
fn cstring_at<'a>(body: &'a [u8], at: usize, what: &'static str) -> Result<(&'a str, usize), MongoError> {
    let rest = body.get(at..).ok_or(MongoError::Truncated { what })?;
    let end = memchr::memchr(0, rest).ok_or(MongoError::Truncated { what })?;
    let s = std::str::from_utf8(&rest[..end]).map_err(|_| MongoError::Malformed { what })?;
    Ok((s, at + end + 1))
}

fn expect(msg: &Message, op: OpCode) -> Result<&[u8], MongoError> {
    if msg.op_code() != op {
        return Err(MongoError::WrongOpCode { expected: op, actual: msg.op_code() });
    }
    Ok(msg.body())
}

/// `db` of a `db.collection` namespace (everything before the first dot).
pub fn namespace_database(ns: &str) -> &str {
    ns.split_once('.').map_or(ns, |(db, _)| db)
}

/// `collection` of a `db.collection` namespace (everything after the first dot), if any.
pub fn namespace_collection(ns: &str) -> Option<&str> {
    ns.split_once('.').map(|(_, c)| c)
}

/// OP_QUERY (2004).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpQuery<'a> {
    pub flags: i32,
    /// `db.collection`; `db.$cmd` for a command.
    pub full_collection_name: &'a str,
    pub number_to_skip: i32,
    pub number_to_return: i32,
    pub query: Document<'a>,
    pub projection: Option<Document<'a>>,
}

impl<'a> OpQuery<'a> {
    pub fn parse(msg: &'a Message) -> Result<OpQuery<'a>, MongoError> {
        let body = expect(msg, OpCode::Query)?;
        let flags = le_i32(body, 0).ok_or(MongoError::Truncated { what: "OP_QUERY flags" })?;
        let (full_collection_name, at) = cstring_at(body, 4, "OP_QUERY fullCollectionName")?;
        let number_to_skip = le_i32(body, at).ok_or(MongoError::Truncated { what: "OP_QUERY numberToSkip" })?;
        let number_to_return = le_i32(body, at + 4).ok_or(MongoError::Truncated { what: "OP_QUERY numberToReturn" })?;
        let rest = &body[at + 8..];
        let (query, rest) = Document::parse_prefix(rest).map_err(MongoError::bson("OP_QUERY query"))?;
        let projection = if rest.is_empty() {
            None
        } else {
            Some(Document::parse(rest).map_err(MongoError::bson("OP_QUERY returnFieldsSelector"))?)
        };
        Ok(OpQuery { flags, full_collection_name, number_to_skip, number_to_return, query, projection })
    }

    /// A command sent as a query on `db.$cmd` (the legacy hello is one).
    pub fn is_command(&self) -> bool {
        namespace_collection(self.full_collection_name) == Some("$cmd")
    }

    pub fn database(&self) -> &'a str {
        namespace_database(self.full_collection_name)
    }
}

/// OP_REPLY (1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpReply<'a> {
    pub response_flags: i32,
    pub cursor_id: i64,
    pub starting_from: i32,
    pub number_returned: i32,
    documents: &'a [u8],
}

impl<'a> OpReply<'a> {
    pub const CURSOR_NOT_FOUND: i32 = 1;
    pub const QUERY_FAILURE: i32 = 2;
    pub const AWAIT_CAPABLE: i32 = 8;

    /// Parses an OP_REPLY; its documents must be well framed and as many as numberReturned.
    pub fn parse(msg: &'a Message) -> Result<OpReply<'a>, MongoError> {
        let body = expect(msg, OpCode::Reply)?;
        let truncated = MongoError::Truncated { what: "OP_REPLY prefix" };
        let response_flags = le_i32(body, 0).ok_or(truncated)?;
        let cursor_id = le_i64(body, 4).ok_or(truncated)?;
        let starting_from = le_i32(body, 12).ok_or(truncated)?;
        let number_returned = le_i32(body, 16).ok_or(truncated)?;
        let documents = &body[20..];
        let mut rest = documents;
        let mut count = 0i64;
        while !rest.is_empty() {
            rest = Document::parse_prefix(rest).map_err(MongoError::bson("OP_REPLY document"))?.1;
            count += 1;
        }
        if count != i64::from(number_returned) {
            return Err(MongoError::Malformed { what: "OP_REPLY numberReturned" });
        }
        Ok(OpReply { response_flags, cursor_id, starting_from, number_returned, documents })
    }

    pub fn documents(&self) -> impl Iterator<Item = Document<'a>> + 'a {
        let mut rest = self.documents;
        std::iter::from_fn(move || {
            let (doc, next) = Document::parse_prefix(rest).ok()?;
            rest = next;
            Some(doc)
        })
    }

    /// The first document: a command's reply.
    pub fn first(&self) -> Option<Document<'a>> {
        self.documents().next()
    }
}

/// A legacy write or cursor message, recognized by opcode (removed from servers in 6.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegacyOp<'a> {
    pub op: OpCode,
    /// `db.collection`, for OP_INSERT / OP_UPDATE / OP_DELETE / OP_GET_MORE.
    pub full_collection_name: Option<&'a str>,
}

impl<'a> LegacyOp<'a> {
    pub fn parse(msg: &'a Message) -> Result<LegacyOp<'a>, MongoError> {
        let op = msg.op_code();
        let body = msg.body();
        let full_collection_name = match op {
            // OP_INSERT has flags first, the others a reserved ZERO: the name is at 4 either way.
            OpCode::Insert | OpCode::Update | OpCode::Delete | OpCode::GetMore => {
                Some(cstring_at(body, 4, "fullCollectionName")?.0)
            }
            OpCode::KillCursors => {
                let n = le_i32(body, 4).ok_or(MongoError::Truncated { what: "OP_KILL_CURSORS count" })?;
                let n = usize::try_from(n).map_err(|_| MongoError::Malformed { what: "OP_KILL_CURSORS count" })?;
                if n.checked_mul(8).and_then(|b| b.checked_add(8)) != Some(body.len()) {
                    return Err(MongoError::Malformed { what: "OP_KILL_CURSORS count" });
                }
                None
            }
            _ => None,
        };
        Ok(LegacyOp { op, full_collection_name })
    }

    /// Whether the server answers it (OP_GET_MORE only; the writes and OP_KILL_CURSORS are
    /// fire and forget).
    pub fn expects_reply(&self) -> bool {
        self.op == OpCode::GetMore
    }
}
