//! What the filter reads from one request or reply, whatever its opcode, as plain facts
//! (the codec's views borrow the message; these outlive it, in buffers the connection
//! reuses, so reading a command allocates nothing once they have grown).
//!
//! Spec: OP_MSG (<https://github.com/mongodb/specifications/blob/master/source/message/OP_MSG.md>:
//! flag bits, the body, document sequences `documents` / `updates` / `deletes` / `ops`),
//! OP_COMPRESSED (<https://github.com/mongodb/specifications/blob/master/source/compression/OP_COMPRESSED.md>:
//! the inner message is read, the original forwarded), the legacy opcodes
//! (<https://www.mongodb.com/docs/manual/legacy-opcodes/>: a command is an OP_QUERY on
//! `db.$cmd`, possibly wrapped as `{$query: {...}}`), and SCRAM (RFC 5802 §5.1: the
//! client-first message `n,,n=<user>,r=<nonce>` travels in the clear in saslStart's
//! `payload`, or in hello's `speculativeAuthenticate`).
//!
//! OP_MSG, the only opcode of current drivers, is read in place. OP_QUERY, OP_REPLY and the
//! legacy writes are copied into a message first (the codec's views for them take one);
//! OP_COMPRESSED is decompressed within the listener's message cap, which allocates anyway.

use bytes::Bytes;
use sluice_codecs::mongodb::{
    namespace_database, BsonError, CommandInfo, Compressor, Document, Expect, Header, LegacyOp, Message, MongoError,
    OpCode, OpCompressed, OpMsg, OpQuery, OpReply, ReplyInfo, Value,
};
use sluice_codecs::Limits;

use super::commands::{self, CommandId, Subject};

/// The longest unknown command name kept for rule matching.
const MAX_NAME: usize = 64;
/// The longest user name kept.
const MAX_USER: usize = 256;

/// Buffers a connection reuses for the text of the message at hand.
#[derive(Default)]
pub struct Scratch {
    /// An unknown command's name as sent (known ones use the table's spelling).
    pub name: String,
    /// `db.collection`, when the command names one.
    pub target: String,
    pub database: String,
    /// A failed reply's codeName.
    pub code_name: String,
}

/// How the request is answered, so a refusal answers in kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyForm {
    /// OP_MSG.
    Msg,
    /// OP_REPLY (to OP_QUERY and OP_GET_MORE).
    Reply,
}

/// One client request.
#[derive(Debug)]
pub struct Request {
    pub id: CommandId,
    /// The op name is `Scratch::name` (an unknown command, as sent) rather than `id`'s.
    pub unknown_name: bool,
    pub expect: Expect,
    pub form: ReplyForm,
    /// `Scratch::target` holds `db.collection`.
    pub has_target: bool,
    /// `Scratch::database` holds the database.
    pub has_database: bool,
    /// Documents an insert, update, delete or bulkWrite carries.
    pub written: Option<u64>,
    /// Cursor ids a killCursors names.
    pub kill: u64,
    /// The compressor, when it came as OP_COMPRESSED.
    pub compressor: Option<Compressor>,
    /// The SCRAM user, when this is a saslStart (or a hello that starts one).
    pub user: Option<Box<str>>,
}

impl Request {
    fn new(id: CommandId, expect: Expect, form: ReplyForm) -> Self {
        Request {
            id,
            unknown_name: false,
            expect,
            form,
            has_target: false,
            has_database: false,
            written: None,
            kill: 0,
            compressor: None,
            user: None,
        }
    }

    /// The op name rules match: the command as sent, or the legacy opcode.
    pub fn name<'a>(&self, scratch: &'a Scratch) -> &'a str {
        if self.unknown_name {
            &scratch.name
        } else {
            self.id.name()
        }
    }
}

/// One server reply.
#[derive(Debug, Default)]
pub struct Reply {
    pub more_to_come: bool,
    pub ok: bool,
    /// `Scratch::code_name` holds the failed reply's codeName.
    pub has_code_name: bool,
    pub write_errors: usize,
    /// Documents in a cursor batch (or a legacy query's OP_REPLY).
    pub returned: Option<u64>,
    /// (firstBatch, cursor id) of a reply with a cursor.
    pub cursor: Option<(bool, i64)>,
    pub compressor: Option<Compressor>,
}

fn bson(what: &'static str) -> impl FnOnce(BsonError) -> MongoError {
    move |source| MongoError::Bson { what, source }
}

/// Copies a message whose codec view needs a [`Message`] (legacy and compressed opcodes).
fn owned(msg: &[u8], limits: &Limits) -> Result<Message, MongoError> {
    Message::new(Bytes::copy_from_slice(msg), limits)
}

/// Reads a client request (one whole message).
pub fn request(msg: &[u8], limits: &Limits, s: &mut Scratch) -> Result<Request, MongoError> {
    let header = Header::parse(msg).ok_or(MongoError::Truncated { what: "message header" })?;
    match header.op_code {
        OpCode::Msg => {
            let m = OpMsg::parse_bytes(msg)?;
            let flags = m.flags();
            let expect = if flags.more_to_come() {
                Expect::Nothing
            } else if flags.exhaust_allowed() {
                Expect::Stream
            } else {
                Expect::Reply
            };
            let body = m.body();
            match CommandInfo::scan(body).map_err(bson("OP_MSG body"))? {
                Some(info) => command(&info, body, Some(&m), info.database, expect, ReplyForm::Msg, s),
                None => Ok(Request::new(CommandId::OTHER, expect, ReplyForm::Msg)),
            }
        }
        OpCode::Compressed => {
            let message = owned(msg, limits)?;
            let compressed = OpCompressed::parse(&message)?;
            let inner = compressed.decompress(limits)?;
            // The codec refuses an OP_COMPRESSED inside another, so this recurses once.
            let mut r = request(inner.bytes(), limits, s)?;
            r.compressor = Some(compressed.compressor);
            Ok(r)
        }
        OpCode::Query => {
            let message = owned(msg, limits)?;
            let q = OpQuery::parse(&message)?;
            let db = q.database();
            if q.is_command() {
                // Drivers that send a read preference wrap the command: {$query: {...}, $readPreference}.
                let wrapped = q.query.get("$query").ok().flatten().and_then(|v| v.as_document());
                let body = wrapped.unwrap_or(q.query);
                return match CommandInfo::scan(body).map_err(bson("OP_QUERY query"))? {
                    Some(info) => command(&info, body, None, Some(db), Expect::Reply, ReplyForm::Reply, s),
                    None => Ok(Request::new(CommandId::OTHER, Expect::Reply, ReplyForm::Reply)),
                };
            }
            let mut r = Request::new(CommandId::legacy(commands::OP_QUERY), Expect::Reply, ReplyForm::Reply);
            set_namespace(&mut r, s, q.full_collection_name);
            Ok(r)
        }
        OpCode::Insert | OpCode::Update | OpCode::Delete | OpCode::GetMore | OpCode::KillCursors => {
            let message = owned(msg, limits)?;
            let l = LegacyOp::parse(&message)?;
            let name = match l.op {
                OpCode::Insert => commands::OP_INSERT,
                OpCode::Update => commands::OP_UPDATE,
                OpCode::Delete => commands::OP_DELETE,
                OpCode::GetMore => commands::OP_GET_MORE,
                _ => commands::OP_KILL_CURSORS,
            };
            let expect = if l.expects_reply() { Expect::Reply } else { Expect::Nothing };
            let mut r = Request::new(CommandId::legacy(name), expect, ReplyForm::Reply);
            if let Some(ns) = l.full_collection_name {
                set_namespace(&mut r, s, ns);
            }
            Ok(r)
        }
        // A reply or an opcode the codec does not read, sent by a client: nothing follows.
        other => {
            let mut r = Request::new(CommandId::OTHER, Expect::Nothing, ReplyForm::Msg);
            r.unknown_name = true;
            s.name.clear();
            s.name.push_str(other.name());
            Ok(r)
        }
    }
}

/// `db.collection` as the target and `db` as the database.
fn set_namespace(r: &mut Request, s: &mut Scratch, ns: &str) {
    s.target.clear();
    s.target.push_str(ns);
    r.has_target = true;
    s.database.clear();
    s.database.push_str(namespace_database(ns));
    r.has_database = true;
}

/// A command document (an OP_MSG body, or the query of an OP_QUERY on `db.$cmd`).
fn command(
    info: &CommandInfo<'_>,
    body: Document<'_>,
    msg: Option<&OpMsg<'_>>,
    database: Option<&str>,
    expect: Expect,
    form: ReplyForm,
    s: &mut Scratch,
) -> Result<Request, MongoError> {
    let id = CommandId::of(info.name);
    let mut r = Request::new(id, expect, form);
    if id == CommandId::OTHER {
        r.unknown_name = true;
        s.name.clear();
        let mut end = info.name.len().min(MAX_NAME);
        while !info.name.is_char_boundary(end) {
            end -= 1;
        }
        s.name.push_str(&info.name[..end]);
    }
    if let Some(db) = database {
        s.database.clear();
        s.database.push_str(db);
        r.has_database = true;
    }
    let field = |key: &str| body.get(key).map_err(bson("command body"));
    let collection = match id.subject() {
        Subject::Collection => info.collection(),
        Subject::Namespace => {
            if let Some(ns) = info.collection() {
                set_namespace(&mut r, s, ns);
            }
            None
        }
        // getMore names its collection in a field of its own.
        Subject::None if id.is("getMore") => field("collection")?.and_then(|v| v.as_str()),
        Subject::None => None,
    };
    if let (Some(collection), Some(db)) = (collection, database) {
        s.target.clear();
        s.target.push_str(db);
        s.target.push('.');
        s.target.push_str(collection);
        r.has_target = true;
    }
    let written = match id.name() {
        "insert" => Some("documents"),
        "update" => Some("updates"),
        "delete" => Some("deletes"),
        "bulkWrite" => Some("ops"),
        _ => None,
    };
    if let Some(key) = written {
        // Drivers send the batch as a document sequence; a shell may inline it as an array.
        let in_sequence = msg.and_then(|m| m.sequence(key)).map(|seq| seq.len());
        let inline = match in_sequence {
            Some(n) => Some(n),
            None => field(key)?.and_then(|v| v.as_array()).map(|a| a.count()).transpose().map_err(bson(key))?,
        };
        r.written = Some(inline.unwrap_or(0) as u64);
    }
    match id.name() {
        "killCursors" => {
            let cursors = field("cursors")?.and_then(|v| v.as_array());
            r.kill = cursors.map(|a| a.count()).transpose().map_err(bson("cursors"))?.unwrap_or(0) as u64;
        }
        "saslStart" => r.user = field("payload")?.and_then(scram_user),
        "hello" | "isMaster" | "ismaster" => {
            let speculative = field("speculativeAuthenticate")?.and_then(|v| v.as_document());
            if let Some(doc) = speculative {
                r.user = doc.get("payload").ok().flatten().and_then(scram_user);
            }
        }
        _ => {}
    }
    Ok(r)
}

/// The user of a SCRAM client-first message (`n,,n=user,r=nonce`, RFC 5802 §5.1, with
/// `=2C` for `,` and `=3D` for `=` in the name).
fn scram_user(payload: Value<'_>) -> Option<Box<str>> {
    let bytes = match payload {
        Value::Binary { bytes, .. } => bytes,
        Value::String(s) => s.as_bytes(),
        _ => return None,
    };
    let text = std::str::from_utf8(bytes).ok()?;
    // The GS2 header: a channel-binding flag, an optional authzid, then the bare message.
    let mut parts = text.splitn(3, ',');
    let (_flag, _authzid, bare) = (parts.next()?, parts.next()?, parts.next()?);
    let name = bare.strip_prefix("n=")?.split(',').next()?;
    if name.is_empty() || name.len() > MAX_USER {
        return None;
    }
    Some(name.replace("=2C", ",").replace("=3D", "=").into())
}

/// Reads a server reply (one whole message).
pub fn reply(msg: &[u8], limits: &Limits, s: &mut Scratch) -> Result<Reply, MongoError> {
    let header = Header::parse(msg).ok_or(MongoError::Truncated { what: "message header" })?;
    match header.op_code {
        OpCode::Msg => {
            let m = OpMsg::parse_bytes(msg)?;
            let info = ReplyInfo::scan(m.body()).map_err(bson("OP_MSG reply body"))?;
            let mut r = outcome(&info, s);
            r.ok = info.is_ok();
            r.more_to_come = m.flags().more_to_come();
            Ok(r)
        }
        OpCode::Compressed => {
            let message = owned(msg, limits)?;
            let compressed = OpCompressed::parse(&message)?;
            let inner = compressed.decompress(limits)?;
            let mut r = reply(inner.bytes(), limits, s)?;
            r.compressor = Some(compressed.compressor);
            Ok(r)
        }
        OpCode::Reply => {
            let message = owned(msg, limits)?;
            let legacy = OpReply::parse(&message)?;
            let failed = legacy.response_flags & (OpReply::QUERY_FAILURE | OpReply::CURSOR_NOT_FOUND) != 0;
            let info = match legacy.first() {
                Some(doc) => ReplyInfo::scan(doc).map_err(bson("OP_REPLY document"))?,
                None => ReplyInfo::default(),
            };
            let mut r = outcome(&info, s);
            // A legacy query's documents carry no `ok`; a command's reply does.
            r.ok = !failed && info.ok.is_none_or(|ok| ok != 0.0);
            if r.cursor.is_none() && legacy.number_returned != 1 {
                r.returned = Some(u64::try_from(legacy.number_returned).unwrap_or(0));
            }
            Ok(r)
        }
        // Anything else from a server passes through; it answers nothing the filter tracks.
        _ => Ok(Reply { ok: true, ..Reply::default() }),
    }
}

/// The outcome fields of a reply document.
fn outcome(info: &ReplyInfo<'_>, s: &mut Scratch) -> Reply {
    let mut r = Reply { write_errors: info.write_errors, ..Reply::default() };
    if let Some(name) = info.code_name {
        s.code_name.clear();
        s.code_name.push_str(name);
        r.has_code_name = true;
    }
    if let Some(cursor) = info.cursor {
        r.returned = Some(cursor.batch_len as u64);
        r.cursor = Some((cursor.first_batch, cursor.id));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_user_from_client_first_message() {
        let user = |p: &str| scram_user(Value::Binary { subtype: 0, bytes: p.as_bytes() });
        assert_eq!(user("n,,n=app,r=abc").as_deref(), Some("app"));
        assert_eq!(user("n,a=admin,n=a=2Cb=3Dc,r=abc").as_deref(), Some("a,b=c"));
        assert_eq!(user("p=tls-unique,,n=x,r=1").as_deref(), Some("x"));
        assert_eq!(user("c=biws,r=abc,p=proof"), None, "a client-final message names no user");
        assert_eq!(user("\0user\0password"), None, "PLAIN is not SCRAM");
    }
}
