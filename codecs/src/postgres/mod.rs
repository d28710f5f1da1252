//! The PostgreSQL frontend/backend protocol, version 3.0 and 3.2.
//!
//! Spec: <https://www.postgresql.org/docs/current/protocol.html>, in particular
//! protocol-flow.html and protocol-message-formats.html; each module cites its section.
//!
//! Frame first: [`peek`] says how far the next message reaches in a [`Phase`] (untyped
//! startup packets, typed tag+length messages, or the server's one-byte answer to an
//! encryption request), checking the announced length against [`PgLimits`] before waiting
//! for the bytes; [`split_message`] cuts it off (`split_to(n).freeze()`, zero-copy, so
//! forwarding is byte-exact). Inside a message, [`StartupPacket`], [`Frontend`] and
//! [`Backend`] are views that borrow it. The protocol is stateful, so [`Session`] is fed
//! every message of both directions in wire order, tells which [`Phase`] comes next and
//! reports [`Event`]s: startup, encryption requests, authentication, queries, the extended
//! protocol's Parse/Bind/Execute (attributed to remembered statements), statement results
//! with command tags or SQLSTATEs, COPY, ReadyForQuery.
//!
//! [`encode_error`] and [`encode_ready_for_query`] write the replies a proxy makes itself.
//!
//! Sans-I/O, no `unsafe`, no panics on any input; no allocation is sized by a length field.

mod backend;
mod encode;
mod error;
mod event;
mod frame;
mod frontend;
mod names;
mod reader;
mod session;
mod startup;

pub use backend::{Auth, Backend, CommandTag, ServerNotice, TxStatus};
pub use encode::{
    encode_error, encode_ready_for_query, encryption_answer, sasl_without_channel_binding, ssl_request, Severity,
    MAX_ERROR_MESSAGE,
};
pub use error::PgError;
pub use event::{CopyDirection, Event, Outcome};
pub use frame::{peek, split_message, typed_body, Direction, PgLimits, Phase};
pub use frontend::{Frontend, SaslInitialResponse};
pub use reader::Reader;
pub use session::{Session, State};
pub use startup::{Params, StartupMessage, StartupPacket, CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE};

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
