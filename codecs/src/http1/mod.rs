//! HTTP/1.1 (and 1.0) message syntax: heads, body framing, and the writers a proxy needs.
//!
//! Spec: RFC 9112 (HTTP/1.1) <https://www.rfc-editor.org/rfc/rfc9112> and RFC 9110 (HTTP
//! semantics) <https://www.rfc-editor.org/rfc/rfc9110>; each module cites its sections.
//!
//! Frame first: the [`RequestDecoder`] and [`ResponseDecoder`] find where a head ends
//! (strict CRLF lines, bounded by [`H1Limits`]), parse it with httparse into a
//! [`RequestHead`] / [`ResponseHead`] (offsets over the head's frozen bytes; [`Headers`]
//! looks fields up by name), decide the body's [`BodyKind`] (RFC 9112 §6.3, strictly:
//! see [`framing`](self::framing) for every request-smuggling case refused), and then cut
//! the body into [`BodyPiece`]s and an [`Item::End`] with any trailers, zero-copy. The
//! response decoder is told which requests are pending ([`PendingRequest`]: HEAD, CONNECT,
//! Upgrade), follows 1xx interim responses to the final one, and switches to opaque tunnel
//! bytes after 101 or a 2xx to CONNECT.
//!
//! Every error is an [`H1Error`] with the status to answer ([`H1Error::status`]);
//! [`error_response`] writes that answer. [`encode_request_head`],
//! [`encode_response_head`], [`encode_chunk`] and [`encode_last_chunk`] build messages
//! from parts (H2 → H1 conversion).
//!
//! Sans-I/O, no `unsafe` of our own, no panics on any input, no arithmetic overflow.

mod body;
mod decoder;
mod encode;
mod error;
pub mod framing;
mod head;
mod headers;
mod limits;
mod scan;

pub use body::{BodyEnd, BodyPiece, Trailers};
pub use decoder::{Item, MessageHead, RequestDecoder, RequestItem, ResponseDecoder, ResponseItem};
pub use encode::{
    encode_chunk, encode_last_chunk, encode_request_head, encode_response_head, error_response, reason_phrase,
    MAX_ERROR_BODY,
};
pub use error::H1Error;
pub use framing::{content_length, request_body, response_body, BodyKind};
pub use head::{Method, PendingRequest, RequestHead, ResponseHead, Version};
pub use headers::{Headers, HOP_BY_HOP};
pub use limits::{H1Limits, HEADER_CAP};

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
