//! The MongoDB wire protocol.
//!
//! Spec: MongoDB Wire Protocol (<https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/>),
//! the OP_MSG and OP_COMPRESSED specifications (<https://github.com/mongodb/specifications>,
//! `source/message/OP_MSG.md`, `source/compression/OP_COMPRESSED.md`) and BSON 1.1
//! (<https://bsonspec.org/spec.html>); each module cites its section.
//!
//! Frame first: every message starts with a 16-byte [`Header`] whose messageLength counts
//! the whole message. [`MessageDecoder`] ([`crate::Decode`]) and [`peek`] check that length
//! against [`crate::Limits::max_frame`] (default [`MAX_MESSAGE_SIZE`], mongod's
//! maxMessageSizeBytes) before waiting for the bytes, and cut one whole [`Message`] off the
//! read buffer (`split_to(n).freeze()`, so forwarding is byte-exact). Opcodes are open
//! ([`OpCode::Other`]). Inside a message, [`Op`] picks the view: [`OpMsg`] (flag bits,
//! checksum, one body and any document sequences), [`OpCompressed`] (decompressed within
//! a cap into an inner [`Message`]), [`OpQuery`] / [`OpReply`] and the other legacy
//! opcodes ([`LegacyOp`]). Documents are read by a zero-copy lazy BSON reader
//! ([`Document`]); [`CommandInfo`] and [`ReplyInfo`] pull out in one pass what a filter
//! needs (command name and collection, `$db`, `lsid`, `txnNumber`, `comment`; `ok`,
//! `errmsg`, `code`, `codeName`, `n`, `nModified`, the cursor, `writeErrors`,
//! `writeConcernError`). [`Correlator`] matches replies to requests, honouring moreToCome
//! on requests and exhaust streams. [`op_msg_error_reply`] writes the `{ok: 0, errmsg,
//! code, codeName}` reply a rule answers with.
//!
//! Sans-I/O, no `unsafe`, no panics on any input; no allocation is sized by a length field
//! beyond the limits.

mod command;
mod compressed;
mod document;
mod encode;
mod error;
mod header;
mod legacy;
mod op;
mod op_msg;
mod session;

pub use command::{CommandInfo, CursorInfo, ReplyInfo};
pub use compressed::{Compressor, OpCompressed};
pub use document::{Document, Element, Elements, Value, MIN_DOCUMENT_LEN};
pub use encode::{error_document, op_msg, op_msg_error_reply, op_reply_error, DocumentWriter, MAX_ERROR_MESSAGE};
pub use error::{BsonError, MongoError};
pub use header::{
    default_limits, peek, Header, Message, MessageDecoder, OpCode, HEADER_LEN, MAX_BSON_DEPTH, MAX_MESSAGE_SIZE,
};
pub use legacy::{namespace_collection, namespace_database, LegacyOp, OpQuery, OpReply};
pub use op::Op;
pub use op_msg::{DocumentSequence, MsgFlags, OpMsg, SequenceDocuments, Sequences, MAX_SEQUENCES};
pub use session::{Correlator, Expect, Matched, State};

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
