//! The MySQL / MariaDB client/server protocol ("classic protocol").
//!
//! Spec: <https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html> and MariaDB's
//! <https://mariadb.com/kb/en/clientserver-protocol/>; each module cites its section.
//!
//! Frame first: every message travels in packets of a 4-byte header (3-byte payload length,
//! sequence id) and at most 0xFFFFFF payload bytes. [`PacketFramer`] cuts one wire packet at
//! a time off a read buffer (`split_to(n).freeze()`, so forwarding is byte-exact) and
//! [`peek`] says how far the next one reaches without consuming; [`MessageFramer`] joins a
//! continuation chain into one frame when that is wanted. Inside a packet, the message
//! types ([`Handshake`], [`Login`], [`Command`], [`OkPacket`], [`ServerError`], ...) are
//! views that borrow the payload. The protocol is stateful — the meaning of a server
//! packet depends on the command it answers and on negotiated capabilities — so
//! [`Session`] is fed every packet of both directions in wire order and reports
//! [`Event`]s: greeting, login, TLS upgrade, auth result, command started / finished with
//! outcome, rows and result sets. [`encode_err`] writes the ERR packet sluice answers with.
//!
//! Sans-I/O, no `unsafe`, no panics on any input; limits are arguments ([`MysqlLimits`]) and
//! no allocation is sized by a length field.

mod command;
mod encode;
mod error;
mod event;
mod flags;
mod handshake;
mod message;
mod packet;
mod response;
mod rewrite;
mod session;
mod wire;

pub use command::{Command, CommandKind, CURSOR_FLAGS};
pub use encode::{encode_err, encode_ok, encode_packet, put_lenenc_int, MAX_ERROR_MESSAGE};
pub use error::MysqlError;
pub use event::{Event, Events, OkSummary, Opaque, Outcome};
pub use flags::{Capabilities, StatusFlags};
pub use handshake::{AuthMoreData, AuthSwitch, Handshake, HandshakeResponse, Login};
pub use message::{peek_message, Message, MessageFramer, MessageSpan};
pub use packet::{peek, Direction, MysqlLimits, Packet, PacketFramer, PacketHeader, HEADER_LEN, MAX_PACKET_PAYLOAD};
pub use response::{
    is_eof, is_progress, is_terminator, ColumnCount, Completion, EofPacket, OkPacket, PrepareOk, ServerError,
};
pub use rewrite::{edit_greeting_capabilities, edit_login_capabilities, ssl_request_for};
pub use session::{Session, State};
pub use wire::{lenenc_int_len, read_lenenc_int, read_lenenc_str, Reader};

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
