//! The request and response decoders: heads, then bodies, message after message, as a
//! [`Decode`] state machine over a connection's read buffer.
//!
//! Each call cuts one [`Item`] off the front of the buffer (zero-copy): a head with the
//! framing of its body, body pieces, the end of the message (always reported, also for
//! messages without a body), and after a switch of protocols, opaque tunnel bytes. The
//! wire bytes of the items concatenate to exactly the bytes received, so a proxy forwards
//! them unchanged.
//!
//! Responses need to know what they answer (RFC 9112 §6.3: HEAD and CONNECT change the
//! framing), so the [`ResponseDecoder`] keeps a FIFO of [`PendingRequest`]s, pushed by the
//! proxy as requests go up (pipelining keeps them in order, RFC 9112 §9.3.2). Interim 1xx
//! responses (100 Continue, 103 Early Hints) leave their request pending; the final
//! response takes it off. A request asking for CONNECT or Upgrade leaves the
//! [`RequestDecoder`] waiting, after its end, for the proxy to say (via
//! [`RequestDecoder::resume`]) whether the server switched (then the rest is a tunnel) or
//! not (then HTTP continues) — bytes a client sends meanwhile are not parsed as requests.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::body::{BodyDecoder, BodyEnd, BodyPiece, Step};
use super::error::H1Error;
use super::framing::{request_body, response_body, BodyKind};
use super::head::{scan_error, Method, PendingRequest, RequestHead, ResponseHead};
use super::limits::H1Limits;
use super::scan::LineScan;
use crate::framing::Decode;

/// One piece of an HTTP/1.x byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item<H> {
    /// A message head, and how its body is framed.
    Head { head: H, body: BodyKind },
    /// Body bytes.
    Body(BodyPiece),
    /// The message is complete (with its trailers, for a chunked body that has some).
    End(BodyEnd),
    /// Opaque bytes after a switch of protocols or a successful CONNECT.
    Tunnel(Bytes),
}

pub type RequestItem = Item<RequestHead>;
pub type ResponseItem = Item<ResponseHead>;

/// The bytes of a head as received.
pub trait MessageHead {
    fn raw(&self) -> &Bytes;
}

impl MessageHead for RequestHead {
    fn raw(&self) -> &Bytes {
        RequestHead::raw(self)
    }
}

impl MessageHead for ResponseHead {
    fn raw(&self) -> &Bytes {
        ResponseHead::raw(self)
    }
}

impl<H: MessageHead> Item<H> {
    /// The bytes this item consumed from the stream.
    pub fn wire(&self) -> &Bytes {
        match self {
            Item::Head { head, .. } => head.raw(),
            Item::Body(p) => p.wire(),
            Item::End(e) => e.wire(),
            Item::Tunnel(b) => b,
        }
    }
}

/// What follows the end of the current message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    Head,
    AwaitResponse,
    Tunnel,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Head(LineScan),
    /// A message without body: its end is reported next.
    EndNow,
    Body(BodyDecoder),
    AwaitResponse,
    Tunnel,
    Closed,
    Failed,
}

impl After {
    fn phase(self) -> Phase {
        match self {
            After::Head => Phase::Head(LineScan::default()),
            After::AwaitResponse => Phase::AwaitResponse,
            After::Tunnel => Phase::Tunnel,
            After::Closed => Phase::Closed,
        }
    }
}

/// The state both decoders share.
#[derive(Clone, Debug)]
struct Core {
    limits: H1Limits,
    phase: Phase,
    then: After,
}

impl Core {
    fn new(limits: H1Limits) -> Self {
        Core { limits, phase: Phase::Head(LineScan::default()), then: After::Head }
    }

    /// One step; `parse` turns a complete head into the head, its body framing and what
    /// follows the message. Any error fails the decoder for good.
    fn decode<H>(
        &mut self,
        buf: &mut BytesMut,
        request: bool,
        parse: impl FnOnce(Bytes, &H1Limits) -> Result<(H, BodyKind, After), H1Error>,
    ) -> Result<Option<Item<H>>, H1Error> {
        let result = self.step(buf, request, parse);
        if result.is_err() {
            self.phase = Phase::Failed;
        }
        result
    }

    fn step<H>(
        &mut self,
        buf: &mut BytesMut,
        request: bool,
        parse: impl FnOnce(Bytes, &H1Limits) -> Result<(H, BodyKind, After), H1Error>,
    ) -> Result<Option<Item<H>>, H1Error> {
        let limits = self.limits;
        match &mut self.phase {
            Phase::Failed => Err(H1Error::Failed),
            Phase::Closed | Phase::AwaitResponse => Ok(None),
            Phase::Tunnel => Ok((!buf.is_empty()).then(|| Item::Tunnel(buf.split().freeze()))),
            Phase::EndNow => {
                self.phase = self.then.phase();
                Ok(Some(Item::End(BodyEnd::empty())))
            }
            Phase::Body(body) => match body.step(buf, &limits)? {
                None => Ok(None),
                Some(Step::Piece(p)) => Ok(Some(Item::Body(p))),
                Some(Step::End(e)) => {
                    self.phase = self.then.phase();
                    Ok(Some(Item::End(e)))
                }
            },
            Phase::Head(scan) => {
                let end = scan.scan(buf, limits.max_head, true).map_err(|e| scan_error(e, &limits, request))?;
                let Some(end) = end else { return Ok(None) };
                // On error the head is gone from the buffer, but the decoder is failed anyway.
                let (head, body, then) = parse(buf.split_to(end).freeze(), &limits)?;
                self.then = then;
                self.phase = match body {
                    BodyKind::None | BodyKind::Tunnel | BodyKind::Length(0) => Phase::EndNow,
                    BodyKind::Length(n) => Phase::Body(BodyDecoder::length(n)),
                    BodyKind::Chunked => Phase::Body(BodyDecoder::chunked()),
                    BodyKind::CloseDelimited => Phase::Body(BodyDecoder::close()),
                };
                Ok(Some(Item::Head { head, body }))
            }
        }
    }

    /// The connection closed: the next item if one completes now, `Ok(None)` after a
    /// clean end, an error when a message was cut short.
    fn decode_eof<H>(
        &mut self,
        buf: &mut BytesMut,
        request: bool,
        parse: impl FnOnce(Bytes, &H1Limits) -> Result<(H, BodyKind, After), H1Error>,
    ) -> Result<Option<Item<H>>, H1Error> {
        if let Some(item) = self.decode(buf, request, parse)? {
            return Ok(Some(item));
        }
        let result = match &self.phase {
            Phase::Head(_) if buf.is_empty() => Ok(None),
            Phase::Head(_) => Err(H1Error::UnexpectedEof { what: "head" }),
            Phase::Body(b) if b.ends_at_close() => {
                self.phase = Phase::Closed;
                Ok(Some(Item::End(BodyEnd::empty())))
            }
            Phase::Body(_) => Err(H1Error::UnexpectedEof { what: "body" }),
            _ => Ok(None),
        };
        if result.is_err() {
            self.phase = Phase::Failed;
        }
        result
    }
}

/// Decodes the requests a client sends: [`Decode::decode`] yields [`RequestItem`]s.
#[derive(Clone, Debug)]
pub struct RequestDecoder {
    core: Core,
}

fn parse_request(raw: Bytes, limits: &H1Limits) -> Result<(RequestHead, BodyKind, After), H1Error> {
    let head = RequestHead::parse(raw, limits)?;
    let body = request_body(&head, limits)?;
    let switching = head.method_kind() == Method::Connect || head.upgrade().is_some();
    Ok((head, body, if switching { After::AwaitResponse } else { After::Head }))
}

impl RequestDecoder {
    pub fn new(limits: H1Limits) -> Self {
        RequestDecoder { core: Core::new(limits) }
    }

    /// The connection's read side ended: the next item if one completes now (`Ok(None)`
    /// when the stream ended cleanly between requests), or [`H1Error::UnexpectedEof`].
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<RequestItem>, H1Error> {
        self.core.decode_eof(buf, true, parse_request)
    }

    /// After a CONNECT or Upgrade request: no more requests are parsed until [`resume`].
    ///
    /// [`resume`]: RequestDecoder::resume
    pub fn awaiting_response(&self) -> bool {
        self.core.phase == Phase::AwaitResponse || self.core.then == After::AwaitResponse
    }

    /// Says how the server answered a CONNECT or Upgrade request: `tunnel` (101, or 2xx to
    /// CONNECT) makes every later byte opaque; otherwise the next request is parsed. Takes
    /// effect at the end of the request if its body is still arriving; does nothing when
    /// no such request is outstanding.
    pub fn resume(&mut self, tunnel: bool) {
        let next = if tunnel { After::Tunnel } else { After::Head };
        if self.core.phase == Phase::AwaitResponse {
            self.core.phase = next.phase();
        } else if self.core.then == After::AwaitResponse {
            self.core.then = next;
        }
    }

    /// Whether the stream is opaque from here on.
    pub fn is_tunnel(&self) -> bool {
        self.core.phase == Phase::Tunnel
    }

    /// Whether an error ended decoding.
    pub fn is_failed(&self) -> bool {
        self.core.phase == Phase::Failed
    }

    /// Whether the decoder sits between messages (nothing of a next head buffered yet).
    pub fn is_idle(&self) -> bool {
        matches!(self.core.phase, Phase::Head(s) if s.pristine())
    }
}

impl Decode for RequestDecoder {
    type Frame = RequestItem;
    type Error = H1Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<RequestItem>, H1Error> {
        self.core.decode(buf, true, parse_request)
    }
}

/// Decodes the responses a server sends, given the requests they answer: [`Decode::decode`]
/// yields [`ResponseItem`]s.
#[derive(Clone, Debug)]
pub struct ResponseDecoder {
    core: Core,
    pending: VecDeque<PendingRequest>,
}

impl ResponseDecoder {
    pub fn new(limits: H1Limits) -> Self {
        ResponseDecoder { core: Core::new(limits), pending: VecDeque::new() }
    }

    /// Remembers a request sent to the server; responses answer them in order.
    pub fn push_request(&mut self, request: PendingRequest) -> Result<(), H1Error> {
        if self.pending.len() >= self.core.limits.max_pending {
            return Err(H1Error::TooManyPending { limit: self.core.limits.max_pending });
        }
        self.pending.push_back(request);
        Ok(())
    }

    /// Requests still waiting for their (final) responses.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn parse(
        pending: &mut VecDeque<PendingRequest>,
    ) -> impl FnOnce(Bytes, &H1Limits) -> Result<(ResponseHead, BodyKind, After), H1Error> + '_ {
        move |raw, limits| {
            let head = ResponseHead::parse(raw, limits)?;
            let body = response_body(&head, pending.front().copied(), limits)?;
            if !head.is_interim() {
                pending.pop_front();
            }
            let then = match body {
                BodyKind::Tunnel => After::Tunnel,
                BodyKind::CloseDelimited => After::Closed,
                _ => After::Head,
            };
            Ok((head, body, then))
        }
    }

    /// The connection's read side ended: the next item if one completes now (the end of a
    /// close-delimited body), `Ok(None)` after a clean end, or [`H1Error::UnexpectedEof`].
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<ResponseItem>, H1Error> {
        self.core.decode_eof(buf, false, Self::parse(&mut self.pending))
    }

    /// Whether the stream is opaque from here on.
    pub fn is_tunnel(&self) -> bool {
        self.core.phase == Phase::Tunnel
    }

    /// Whether an error ended decoding.
    pub fn is_failed(&self) -> bool {
        self.core.phase == Phase::Failed
    }

    /// Whether the decoder sits between messages (nothing of a next head buffered yet).
    pub fn is_idle(&self) -> bool {
        matches!(self.core.phase, Phase::Head(s) if s.pristine())
    }
}

impl Decode for ResponseDecoder {
    type Frame = ResponseItem;
    type Error = H1Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ResponseItem>, H1Error> {
        self.core.decode(buf, false, Self::parse(&mut self.pending))
    }
}
