//! What a proxy filter reads from a command and from its reply, in one pass over the top
//! level of the body document (nested documents are skipped by their length unless the
//! field is one of these).
//!
//! Spec: the command body conventions of the OP_MSG specification ("Global Command
//! Arguments": `$db`, `$readPreference`;
//! <https://github.com/mongodb/specifications/blob/master/source/message/OP_MSG.md>), the
//! sessions and transactions specifications (`lsid`, `txnNumber`), the command reference
//! (<https://www.mongodb.com/docs/manual/reference/command/>) for the reply fields `ok`,
//! `errmsg`, `code`, `codeName`, `n`, `nModified`, `writeErrors`, `writeConcernError` and
//! the cursor shape `{cursor: {id, ns, firstBatch | nextBatch}}` of find, aggregate,
//! getMore and the list commands.

use super::document::{Document, Value};
use super::error::BsonError;

/// A command: the first key of the body is its name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CommandInfo<'a> {
    /// The command name (`find`, `insert`, `hello`, ...), as the client spelled it.
    pub name: &'a str,
    /// The name's value: the collection for collection commands, `1` for others.
    pub value: Value<'a>,
    /// `$db`.
    pub database: Option<&'a str>,
    /// `lsid` (`{id: UUID}`), the logical session.
    pub lsid: Option<Document<'a>>,
    pub txn_number: Option<i64>,
    /// `comment`, any BSON value.
    pub comment: Option<Value<'a>>,
    /// `startTransaction: true`.
    pub start_transaction: bool,
}

impl<'a> CommandInfo<'a> {
    /// Reads a command body. An empty body is `Ok(None)`; a malformed top level is an error.
    pub fn scan(body: Document<'a>) -> Result<Option<CommandInfo<'a>>, BsonError> {
        let mut elements = body.iter();
        let Some(first) = elements.next().transpose()? else { return Ok(None) };
        let mut info = CommandInfo {
            name: first.key,
            value: first.value,
            database: None,
            lsid: None,
            txn_number: None,
            comment: None,
            start_transaction: false,
        };
        for e in elements {
            let e = e?;
            match e.key {
                "$db" => info.database = info.database.or(e.value.as_str()),
                "lsid" => info.lsid = info.lsid.or(e.value.as_document()),
                "txnNumber" => info.txn_number = info.txn_number.or(e.value.as_i64()),
                "comment" => info.comment = info.comment.or(Some(e.value)),
                "startTransaction" => info.start_transaction |= e.value.is_truthy(),
                _ => {}
            }
        }
        Ok(Some(info))
    }

    /// The collection a collection-level command names (`{find: "users"}`).
    pub fn collection(&self) -> Option<&'a str> {
        self.value.as_str()
    }

    /// The session id's bytes (`lsid.id`, a UUID binary).
    pub fn lsid_id(&self) -> Option<&'a [u8]> {
        match self.lsid?.get("id").ok()?? {
            Value::Binary { bytes, .. } => Some(bytes),
            _ => None,
        }
    }
}

/// A cursor in a reply: `{id, ns, firstBatch | nextBatch}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CursorInfo<'a> {
    /// 0 when the cursor is exhausted.
    pub id: i64,
    pub ns: Option<&'a str>,
    /// Documents in `firstBatch` or `nextBatch`.
    pub batch_len: usize,
    /// `firstBatch` (a find/aggregate reply) rather than `nextBatch` (a getMore reply).
    pub first_batch: bool,
}

/// A command reply's outcome fields.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReplyInfo<'a> {
    /// `ok` as a number (a bool counts as 1 / 0); `None` when absent or not a number.
    pub ok: Option<f64>,
    pub errmsg: Option<&'a str>,
    pub code: Option<i64>,
    pub code_name: Option<&'a str>,
    pub n: Option<i64>,
    pub n_modified: Option<i64>,
    pub cursor: Option<CursorInfo<'a>>,
    /// Entries of `writeErrors`.
    pub write_errors: usize,
    pub write_concern_error: Option<Document<'a>>,
}

impl<'a> ReplyInfo<'a> {
    pub fn scan(body: Document<'a>) -> Result<ReplyInfo<'a>, BsonError> {
        let mut info = ReplyInfo::default();
        for e in body.iter() {
            let e = e?;
            match e.key {
                "ok" => {
                    info.ok = match e.value {
                        Value::Boolean(b) => Some(if b { 1.0 } else { 0.0 }),
                        v => v.as_f64(),
                    }
                }
                "errmsg" => info.errmsg = e.value.as_str(),
                "code" => info.code = e.value.as_i64(),
                "codeName" => info.code_name = e.value.as_str(),
                "n" => info.n = e.value.as_i64(),
                "nModified" => info.n_modified = e.value.as_i64(),
                "cursor" => {
                    if let Some(c) = e.value.as_document() {
                        info.cursor = Some(cursor(c)?);
                    }
                }
                "writeErrors" => {
                    if let Some(a) = e.value.as_array() {
                        info.write_errors = a.count()?;
                    }
                }
                "writeConcernError" => info.write_concern_error = e.value.as_document(),
                _ => {}
            }
        }
        Ok(info)
    }

    /// `ok: 1` (the server's success); `false` when `ok` is 0 or missing.
    pub fn is_ok(&self) -> bool {
        self.ok.is_some_and(|v| v != 0.0)
    }

    /// The write concern error's code, if there was one.
    pub fn write_concern_code(&self) -> Option<i64> {
        self.write_concern_error?.get("code").ok()??.as_i64()
    }
}

fn cursor(doc: Document<'_>) -> Result<CursorInfo<'_>, BsonError> {
    let mut c = CursorInfo { id: 0, ns: None, batch_len: 0, first_batch: false };
    for e in doc.iter() {
        let e = e?;
        match e.key {
            "id" => c.id = e.value.as_i64().unwrap_or(0),
            "ns" => c.ns = e.value.as_str(),
            "firstBatch" | "nextBatch" => {
                if let Some(a) = e.value.as_array() {
                    c.batch_len = a.count()?;
                    c.first_batch = e.key == "firstBatch";
                }
            }
            _ => {}
        }
    }
    Ok(c)
}
