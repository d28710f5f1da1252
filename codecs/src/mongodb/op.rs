//! One message, classified by opcode into the view that reads it.
//!
//! Spec: MongoDB Wire Protocol, "Opcodes"
//! (<https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/#opcodes>).

use super::compressed::OpCompressed;
use super::error::MongoError;
use super::header::{Message, OpCode};
use super::legacy::{LegacyOp, OpQuery, OpReply};
use super::op_msg::OpMsg;
use super::session::Expect;

/// A message's parsed view.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op<'a> {
    Msg(OpMsg<'a>),
    Compressed(OpCompressed<'a>),
    Query(OpQuery<'a>),
    Reply(OpReply<'a>),
    /// OP_INSERT, OP_UPDATE, OP_DELETE, OP_GET_MORE, OP_KILL_CURSORS.
    Legacy(LegacyOp<'a>),
    /// An opcode the codec does not read (passes through).
    Unknown(i32),
}

impl<'a> Op<'a> {
    pub fn parse(msg: &'a Message) -> Result<Op<'a>, MongoError> {
        Ok(match msg.op_code() {
            OpCode::Msg => Op::Msg(OpMsg::parse(msg)?),
            OpCode::Compressed => Op::Compressed(OpCompressed::parse(msg)?),
            OpCode::Query => Op::Query(OpQuery::parse(msg)?),
            OpCode::Reply => Op::Reply(OpReply::parse(msg)?),
            OpCode::Insert | OpCode::Update | OpCode::Delete | OpCode::GetMore | OpCode::KillCursors => {
                Op::Legacy(LegacyOp::parse(msg)?)
            }
            OpCode::Other(v) => Op::Unknown(v),
        })
    }

    /// What a client request with this view expects back, for [`super::Correlator`].
    /// `None` for OP_COMPRESSED: ask the decompressed message (its flags are inside).
    pub fn expect(&self) -> Option<Expect> {
        Some(match self {
            Op::Msg(m) if m.flags().more_to_come() => Expect::Nothing,
            Op::Msg(m) if m.flags().exhaust_allowed() => Expect::Stream,
            Op::Msg(_) | Op::Query(_) => Expect::Reply,
            Op::Legacy(l) if l.expects_reply() => Expect::Reply,
            Op::Legacy(_) => Expect::Nothing,
            // Replies and unknown opcodes sent by a client: nothing is known to follow.
            Op::Reply(_) | Op::Unknown(_) => Expect::Nothing,
            Op::Compressed(_) => return None,
        })
    }

    /// Whether a server reply with this view says more replies follow (OP_MSG moreToCome).
    /// `None` for OP_COMPRESSED, as for [`Op::expect`].
    pub fn more_to_come(&self) -> Option<bool> {
        match self {
            Op::Msg(m) => Some(m.flags().more_to_come()),
            Op::Compressed(_) => None,
            _ => Some(false),
        }
    }
}

impl Message {
    /// Parses this message's view.
    pub fn op(&self) -> Result<Op<'_>, MongoError> {
        Op::parse(self)
    }
}
