//! Sans-I/O wire codecs for the protocols sluice understands.
//!
//! Every codec follows one contract (DESIGN.md "Codecs"), the shape of tokio-util's
//! `Decoder` without depending on tokio: [`Decode::decode`] takes the connection's read
//! buffer, returns `Ok(None)` when it needs more bytes, and otherwise cuts one frame off the
//! front with `split_to(n).freeze()` so views into it are zero-copy. Limits are explicit
//! arguments ([`Limits`]); no allocation is ever sized by a length field the codec has not
//! seen the bytes for.
//!
//! Protocol modules (RESP, MySQL, PostgreSQL, MongoDB, Kafka, HTTP/1) plug in here.
//! [`mysql`]: the MySQL/MariaDB classic protocol (packets, messages, a session state machine).
//! [`postgres`]: the PostgreSQL frontend/backend protocol 3.0/3.2 (framing, message views, a
//! session state machine).
//! [`mongodb`]: the MongoDB wire protocol (OP_MSG, OP_COMPRESSED, legacy opcodes), a lazy
//! zero-copy BSON reader and request/reply correlation.
//! [`http1`]: HTTP/1.1 and 1.0 (heads, strict body framing against request smuggling, chunked
//! bodies with trailers, 1xx and tunnels, writers for heads, chunks and error responses).
//! [`kafka`]: the Kafka protocol (size-prefixed frames, request/response headers v0-v2,
//! correlation, the bodies a proxy needs, broker address rewrite, error responses).

pub mod framing;
pub mod http1;
pub mod kafka;
pub mod mongodb;
pub mod mysql;
pub mod postgres;
pub mod resp;

pub use framing::{Decode, FrameError, Limits};
