//! HTTP/1 codec tests on captured sessions (fixtures/http1, see capture.py and README.md
//! there) and on synthetic flows the captures do not show; smuggling and other hostile
//! input is in `hostile_tests`.
//!
//! The captures keep each direction in its own file; the replay decodes the client's
//! requests, tells the response decoder about each one as a proxy would, decodes the
//! server's responses, and lets the request decoder go on (tunnel or HTTP) once the answer
//! to an Upgrade or CONNECT is known. Every fixture gives the same messages whole, in small
//! chunks and split in two at every byte boundary, and its items' wire bytes add up to
//! exactly the captured bytes.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::framing::Decode;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/http1");

pub(super) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub(super) fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().unwrap().strip_suffix(".client").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 13, "{names:?}");
    names
}

/// One direction's bytes arriving in pieces.
pub(super) struct Stream<'a> {
    data: &'a [u8],
    cuts: Vec<usize>,
    given: usize,
    pub(super) buf: BytesMut,
}

impl<'a> Stream<'a> {
    pub(super) fn new(data: &'a [u8], mut cuts: Vec<usize>) -> Self {
        cuts.retain(|&c| c > 0 && c < data.len());
        cuts.push(data.len());
        cuts.sort_unstable();
        cuts.dedup();
        Stream { data, cuts, given: 0, buf: BytesMut::new() }
    }

    pub(super) fn chunked(data: &'a [u8], chunk: usize) -> Self {
        Self::new(data, (chunk..data.len()).step_by(chunk).collect())
    }

    /// Appends the next piece; false once everything was given.
    fn feed(&mut self) -> bool {
        let Some(&cut) = self.cuts.iter().find(|&&c| c > self.given) else { return false };
        self.buf.extend_from_slice(&self.data[self.given..cut]);
        self.given = cut;
        true
    }
}

/// Decodes the next item, feeding the stream as needed and signalling the end of input
/// once everything was given.
pub(super) fn next<D, H>(
    d: &mut D,
    s: &mut Stream<'_>,
    eof: impl Fn(&mut D, &mut BytesMut) -> Result<Option<Item<H>>, H1Error>,
) -> Result<Option<Item<H>>, H1Error>
where
    D: Decode<Frame = Item<H>, Error = H1Error>,
{
    loop {
        if let Some(item) = d.decode(&mut s.buf)? {
            return Ok(Some(item));
        }
        if !s.feed() {
            return eof(d, &mut s.buf);
        }
    }
}

/// One message as the replay saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Message {
    /// "GET /path" or "200".
    pub(super) start: String,
    pub(super) body: Option<BodyKind>,
    pub(super) data: Vec<u8>,
    pub(super) trailers: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) complete: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Replay {
    pub(super) requests: Vec<Message>,
    pub(super) responses: Vec<Message>,
    pub(super) client_tunnel: Vec<u8>,
    pub(super) server_tunnel: Vec<u8>,
    /// Every item's wire bytes, per direction, in order.
    client_wire: Vec<u8>,
    server_wire: Vec<u8>,
}

fn record<H>(messages: &mut Vec<Message>, tunnel: &mut Vec<u8>, wire: &mut Vec<u8>, item: &Item<H>, start: String)
where
    H: MessageHead,
{
    wire.extend_from_slice(item.wire());
    match item {
        Item::Head { body, .. } => messages.push(Message { start, body: Some(*body), ..Message::default() }),
        Item::Body(p) => messages.last_mut().expect("body after a head").data.extend_from_slice(&p.data()),
        Item::End(e) => {
            let m = messages.last_mut().expect("end after a head");
            assert!(!m.complete, "two ends");
            m.complete = true;
            if let Some(t) = e.trailers() {
                m.trailers = t.headers().iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
            }
        }
        Item::Tunnel(b) => tunnel.extend_from_slice(b),
    }
}

pub(super) fn replay_streams(mut client: Stream<'_>, mut server: Stream<'_>) -> Replay {
    let limits = H1Limits::default();
    let mut req = RequestDecoder::new(limits);
    let mut resp = ResponseDecoder::new(limits);
    let mut asked: std::collections::VecDeque<PendingRequest> = Default::default();
    let mut out = Replay::default();
    loop {
        let mut progress = false;
        while let Some(item) =
            next(&mut req, &mut client, RequestDecoder::decode_eof).unwrap_or_else(|e| panic!("request: {e}"))
        {
            progress = true;
            let start = match &item {
                Item::Head { head, .. } => {
                    resp.push_request(head.pending()).unwrap();
                    asked.push_back(head.pending());
                    format!("{} {}", head.method(), head.target())
                }
                _ => String::new(),
            };
            record(&mut out.requests, &mut out.client_tunnel, &mut out.client_wire, &item, start);
        }
        while let Some(item) =
            next(&mut resp, &mut server, ResponseDecoder::decode_eof).unwrap_or_else(|e| panic!("response: {e}"))
        {
            progress = true;
            let start = match &item {
                Item::Head { head, body } => {
                    if !head.is_interim() {
                        let answered = asked.pop_front().unwrap_or_default();
                        if answered.connect || answered.upgrade {
                            req.resume(*body == BodyKind::Tunnel);
                        }
                    }
                    head.status().to_string()
                }
                _ => String::new(),
            };
            record(&mut out.responses, &mut out.server_tunnel, &mut out.server_wire, &item, start);
        }
        if !progress {
            break;
        }
    }
    assert!(client.buf.is_empty() && server.buf.is_empty(), "bytes left over");
    assert_eq!(out.client_wire, client.data, "client items add up to the stream");
    assert_eq!(out.server_wire, server.data, "server items add up to the stream");
    out
}

pub(super) fn replay(name: &str) -> Replay {
    let (c, s) = (fixture(&format!("{name}.client")), fixture(&format!("{name}.server")));
    replay_streams(Stream::new(&c, vec![]), Stream::new(&s, vec![]))
}

#[test]
fn every_fixture_replays_the_same_whole_chunked_and_split_anywhere() {
    for name in fixture_names() {
        let (c, s) = (fixture(&format!("{name}.client")), fixture(&format!("{name}.server")));
        let whole = replay_streams(Stream::new(&c, vec![]), Stream::new(&s, vec![]));
        assert!(!whole.requests.is_empty(), "{name}");
        assert!(whole.requests.iter().chain(&whole.responses).all(|m| m.complete), "{name}");
        for chunk in [1, 3, 7, 64] {
            let r = replay_streams(Stream::chunked(&c, chunk), Stream::chunked(&s, chunk));
            assert_eq!(r, whole, "{name} in chunks of {chunk}");
        }
        for k in 0..c.len().max(s.len()) {
            let r = replay_streams(Stream::new(&c, vec![k]), Stream::new(&s, vec![k]));
            assert_eq!(r, whole, "{name} split at {k}");
        }
    }
}

fn starts(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.start.as_str()).collect()
}

fn bodies(messages: &[Message]) -> Vec<BodyKind> {
    messages.iter().map(|m| m.body.unwrap()).collect()
}

#[test]
fn curl_keeps_the_connection_alive_over_three_requests() {
    let r = replay("curl_keepalive");
    assert_eq!(starts(&r.requests), ["GET /index.html", "GET /echo?x=1", "GET /missing"]);
    assert_eq!(starts(&r.responses), ["200", "200", "404"]);
    assert_eq!(bodies(&r.responses), [BodyKind::Length(69), BodyKind::Length(25), BodyKind::Length(153)]);
    assert_eq!(r.responses[1].data, b"method=GET uri=/echo?x=1\n");
}

#[test]
fn a_post_body_is_framed_by_content_length() {
    let r = replay("curl_post");
    assert_eq!(bodies(&r.requests), [BodyKind::Length(22)]);
    assert_eq!(r.requests[0].data, b"name=sluice&kind=proxy");
    assert_eq!(r.responses[0].data, b"method=POST uri=/echo\n");
}

#[test]
fn chunked_uploads_decode_to_the_file_and_keep_their_trailers() {
    let r = replay("curl_chunked_upload");
    assert_eq!(bodies(&r.requests), [BodyKind::Chunked]);
    let file: Vec<u8> = (0..12).flat_map(|_| 0..=255u8).collect();
    assert_eq!(r.requests[0].data, file);

    let r = replay("chunked_upload_trailers");
    assert_eq!(starts(&r.requests), ["PUT /dav/chunked.txt"]);
    assert_eq!(r.requests[0].data, b"hello, chunked world with exts!");
    assert_eq!(r.requests[0].trailers, [(b"X-Upload-Checksum".to_vec(), b"1234".to_vec())]);
    assert_eq!(starts(&r.responses), ["201"]);
}

#[test]
fn nginx_gzip_responses_are_chunked_and_carry_added_trailers() {
    let r = replay("gzip_chunked_response");
    assert_eq!(bodies(&r.responses), [BodyKind::Chunked]);
    assert!(r.responses[0].data.starts_with(&[0x1f, 0x8b]), "a gzip stream");
    assert!(r.responses[0].trailers.is_empty());

    let r = replay("chunked_trailers");
    assert_eq!(bodies(&r.responses), [BodyKind::Chunked]);
    assert_eq!(
        r.responses[0].trailers,
        [(b"X-Checksum".to_vec(), b"sha1-of-nothing".to_vec()), (b"X-Served-By".to_vec(), b"sluice-fixture".to_vec())]
    );
}

#[test]
fn head_304_and_1xx_responses_have_no_body() {
    let r = replay("curl_head");
    assert_eq!(starts(&r.requests), ["HEAD /index.html", "HEAD /big.txt"]);
    assert_eq!(bodies(&r.responses), [BodyKind::None, BodyKind::None]);

    let r = replay("conditional_304");
    assert_eq!(starts(&r.responses), ["304", "304", "200"]);
    assert_eq!(bodies(&r.responses), [BodyKind::None, BodyKind::None, BodyKind::Length(69)]);

    let r = replay("expect_continue");
    assert_eq!(starts(&r.requests), ["PUT /dav/upload.bin"]);
    assert_eq!(starts(&r.responses), ["100", "201"], "interim, then final to the same request");
    assert_eq!(bodies(&r.responses), [BodyKind::None, BodyKind::None]);
    assert_eq!(r.requests[0].data.len(), 3072);
}

#[test]
fn expect_continue_is_seen_on_the_head() {
    let c = fixture("expect_continue.client");
    let mut d = RequestDecoder::new(H1Limits::default());
    let Some(Item::Head { head, body }) = d.decode(&mut BytesMut::from(&c[..])).unwrap() else { panic!() };
    assert!(head.expects_continue());
    assert_eq!(body, BodyKind::Length(3072));
    assert!(head.keep_alive());
}

#[test]
fn pipelined_requests_are_answered_in_order_with_head_framing() {
    let r = replay("pipelined");
    assert_eq!(starts(&r.requests), ["GET /index.html", "HEAD /big.txt", "GET /echo?pipelined=3"]);
    assert_eq!(starts(&r.responses), ["200", "200", "200"]);
    assert_eq!(bodies(&r.responses), [BodyKind::Length(69), BodyKind::None, BodyKind::Length(33)]);
}

#[test]
fn http10_keep_alive_then_a_close_delimited_body() {
    let r = replay("http10_keepalive");
    assert_eq!(starts(&r.requests), ["GET /index.html", "GET /big.txt"]);
    assert_eq!(bodies(&r.responses), [BodyKind::Length(69), BodyKind::CloseDelimited]);
    assert!(r.responses[1].data.starts_with(&[0x1f, 0x8b]));
    let c = fixture("http10_keepalive.client");
    let mut d = RequestDecoder::new(H1Limits::default());
    let mut buf = BytesMut::from(&c[..]);
    let Some(Item::Head { head, .. }) = d.decode(&mut buf).unwrap() else { panic!() };
    assert_eq!(head.version(), Version::Http10);
    assert!(head.keep_alive(), "1.0 with Connection: keep-alive");
    assert!(matches!(d.decode(&mut buf).unwrap(), Some(Item::End(_))));
    let Some(Item::Head { head, .. }) = d.decode(&mut buf).unwrap() else { panic!() };
    assert!(!head.keep_alive(), "plain 1.0");
}

#[test]
fn wrk_sends_twenty_keep_alive_requests() {
    let r = replay("wrk");
    assert_eq!(r.requests.len(), 20);
    assert_eq!(r.responses.len(), 20);
    assert!(r.responses.iter().all(|m| m.start == "200" && m.body == Some(BodyKind::Length(69))));
}

#[test]
fn a_websocket_upgrade_turns_both_directions_into_a_tunnel() {
    let r = replay("websocket");
    assert_eq!(starts(&r.requests), ["GET /chat"]);
    assert_eq!(starts(&r.responses), ["101"]);
    assert_eq!(bodies(&r.responses), [BodyKind::Tunnel]);
    // Masked client frames and unmasked server frames, untouched.
    assert!(!r.client_tunnel.is_empty() && !r.server_tunnel.is_empty());
    assert_eq!(r.server_tunnel[0] & 0x0f, 0x1, "a text frame first");
    let c = fixture("websocket.client");
    let mut d = RequestDecoder::new(H1Limits::default());
    let mut buf = BytesMut::from(&c[..]);
    let Some(Item::Head { head, .. }) = d.decode(&mut buf).unwrap() else { panic!() };
    assert_eq!(head.upgrade(), Some(&b"websocket"[..]));
    assert!(head.headers().is_hop_by_hop(b"upgrade"));
    assert!(matches!(d.decode(&mut buf).unwrap(), Some(Item::End(_))));
    assert!(d.awaiting_response());
    assert_eq!(d.decode(&mut buf).unwrap(), None, "frames are not parsed as requests");
    d.resume(true);
    assert!(matches!(d.decode(&mut buf).unwrap(), Some(Item::Tunnel(_))));
}

#[test]
fn head_accessors_on_a_captured_request() {
    let c = fixture("curl_keepalive.client");
    let mut d = RequestDecoder::new(H1Limits::default());
    let mut buf = BytesMut::from(&c[..]);
    d.decode(&mut buf).unwrap();
    d.decode(&mut buf).unwrap();
    let Some(Item::Head { head, .. }) = d.decode(&mut buf).unwrap() else { panic!() };
    assert_eq!(head.method(), "GET");
    assert_eq!(head.method_kind(), Method::Get);
    assert_eq!(head.path(), "/echo");
    assert_eq!(head.query(), Some("x=1"));
    assert!(head.host().unwrap().starts_with(b"127.0.0.1:"));
    assert_eq!(head.headers().get("USER-AGENT"), Some(&b"curl/7.88.1"[..]));
    let names: Vec<&[u8]> = head.headers().iter().map(|(n, _)| n).collect();
    assert_eq!(names, [&b"Host"[..], b"User-Agent", b"Accept"]);
    for (name, _, line) in head.headers().lines() {
        assert!(head.raw()[line.clone()].starts_with(name));
        assert!(head.raw()[line].ends_with(b"\r\n"));
    }
}

/// Decodes `input` as requests, whole; returns the items or the first error.
pub(super) fn requests(input: &[u8]) -> Result<Vec<RequestItem>, H1Error> {
    let mut d = RequestDecoder::new(H1Limits::default());
    let mut buf = BytesMut::from(input);
    let mut out = vec![];
    while let Some(item) = d.decode(&mut buf)? {
        out.push(item);
    }
    if let Some(item) = d.decode_eof(&mut buf)? {
        out.push(item);
    }
    Ok(out)
}

/// Decodes `input` as the responses to `asked`, whole, with end of input after it.
pub(super) fn responses(asked: &[PendingRequest], input: &[u8]) -> Result<Vec<ResponseItem>, H1Error> {
    let mut d = ResponseDecoder::new(H1Limits::default());
    for p in asked {
        d.push_request(*p)?;
    }
    let mut buf = BytesMut::from(input);
    let mut out = vec![];
    loop {
        match d.decode(&mut buf)? {
            Some(item) => out.push(item),
            None => match d.decode_eof(&mut buf)? {
                Some(item) => out.push(item),
                None => break,
            },
        }
    }
    Ok(out)
}

pub(super) const GET: PendingRequest = PendingRequest { head: false, connect: false, upgrade: false };
const HEAD: PendingRequest = PendingRequest { head: true, connect: false, upgrade: false };
const CONNECT: PendingRequest = PendingRequest { head: false, connect: true, upgrade: false };
const UPGRADE: PendingRequest = PendingRequest { head: false, connect: false, upgrade: true };

fn kinds(items: &[ResponseItem]) -> Vec<String> {
    items
        .iter()
        .map(|i| match i {
            Item::Head { head, body } => format!("{} {body:?}", head.status()),
            Item::Body(p) => format!("data {}", p.data().escape_ascii()),
            Item::End(_) => "end".into(),
            Item::Tunnel(b) => format!("tunnel {}", b.escape_ascii()),
        })
        .collect()
}

#[test]
fn response_framing_depends_on_status_and_request_method() {
    let input = |status: &str, body: bool| {
        format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n{}", if body { "hello" } else { "" })
    };
    for (asked, status, body, expect) in [
        (GET, "200 OK", true, vec!["200 Length(5)", "data hello", "end"]),
        (HEAD, "200 OK", false, vec!["200 None", "end"]),
        (GET, "204 No Content", false, vec!["204 None", "end"]),
        (GET, "304 Not Modified", false, vec!["304 None", "end"]),
        (CONNECT, "200 Connection Established", true, vec!["200 Tunnel", "end", "tunnel hello"]),
        (CONNECT, "407 Proxy Authentication Required", true, vec!["407 Length(5)", "data hello", "end"]),
    ] {
        let items = responses(&[asked], input(status, body).as_bytes()).unwrap();
        assert_eq!(kinds(&items), expect, "{asked:?} {status}");
    }
    // 204 and 304 end at their head: what follows is the next response.
    let two = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    assert_eq!(kinds(&responses(&[GET, GET], two).unwrap()), ["204 None", "end", "200 Length(2)", "data ok", "end"]);
    // No length: the body runs to the close.
    let close = b"HTTP/1.1 200 OK\r\n\r\nall of it";
    assert_eq!(kinds(&responses(&[GET], close).unwrap()), ["200 CloseDelimited", "data all of it", "end"]);
    // Chunked not last in a response: close-delimited too (RFC 9112 §6.3 rule 4).
    let gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz";
    assert_eq!(kinds(&responses(&[GET], gzip).unwrap()), ["200 CloseDelimited", "data zzz", "end"]);
}

#[test]
fn interim_responses_precede_the_final_one_of_the_same_request() {
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA\
HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB";
    let mut d = ResponseDecoder::new(H1Limits::default());
    d.push_request(GET).unwrap();
    d.push_request(HEAD).unwrap();
    let mut buf = BytesMut::from(&input[..]);
    let mut seen = vec![];
    while let Some(item) = d.decode(&mut buf).unwrap() {
        if let Item::Head { head, .. } = &item {
            seen.push((head.status(), head.is_interim(), d.pending()));
        }
    }
    // The HEAD's response has no body, so its "B" would be the start of a bad head.
    assert_eq!(seen, [(100, true, 2), (103, true, 2), (200, false, 1), (200, false, 0)]);
    assert_eq!(&buf[..], b"B");
}

#[test]
fn switching_protocols_needs_an_upgrade_request_and_makes_a_tunnel() {
    let input = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi";
    let items = responses(&[UPGRADE], input).unwrap();
    assert_eq!(kinds(&items), ["101 Tunnel", "end", "tunnel \\x81\\x02hi"]);
    let Item::Head { head, .. } = &items[0] else { panic!() };
    assert_eq!(head.upgrade(), Some(&b"websocket"[..]));
    assert_eq!(responses(&[GET], input).unwrap_err(), H1Error::UnexpectedSwitch);
}

#[test]
fn a_declined_upgrade_resumes_http_on_the_request_side() {
    let input = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut d = RequestDecoder::new(H1Limits::default());
    let mut buf = BytesMut::from(&input[..]);
    assert!(matches!(d.decode(&mut buf).unwrap(), Some(Item::Head { .. })));
    assert!(matches!(d.decode(&mut buf).unwrap(), Some(Item::End(_))));
    assert_eq!(d.decode(&mut buf).unwrap(), None);
    d.resume(false);
    let Some(Item::Head { head, .. }) = d.decode(&mut buf).unwrap() else { panic!() };
    assert_eq!(head.target(), "/2");
    // CONNECT waits the same way.
    let input = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01";
    let mut d = RequestDecoder::new(H1Limits::default());
    let mut buf = BytesMut::from(&input[..]);
    let Some(Item::Head { head, body }) = d.decode(&mut buf).unwrap() else { panic!() };
    assert_eq!((head.method_kind(), body, head.pending()), (Method::Connect, BodyKind::None, CONNECT));
    assert!(matches!(d.decode(&mut buf).unwrap(), Some(Item::End(_))));
    assert_eq!(d.decode(&mut buf).unwrap(), None);
    d.resume(true);
    assert_eq!(d.decode(&mut buf).unwrap(), Some(Item::Tunnel(Bytes::from_static(b"\x16\x03\x01"))));
    assert!(d.is_tunnel());
}

#[test]
fn an_upgrade_request_with_a_body_switches_after_the_body() {
    let input = b"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: upgrade\r\nContent-Length: 3\r\n\r\nab";
    let mut d = RequestDecoder::new(H1Limits::default());
    let mut buf = BytesMut::from(&input[..]);
    assert!(matches!(d.decode(&mut buf).unwrap(), Some(Item::Head { .. })));
    assert!(matches!(d.decode(&mut buf).unwrap(), Some(Item::Body(_))));
    d.resume(true); // the 101 came before the body's last byte
    buf.extend_from_slice(b"cRAW");
    assert!(matches!(d.decode(&mut buf).unwrap(), Some(Item::Body(_))));
    assert!(matches!(d.decode(&mut buf).unwrap(), Some(Item::End(_))));
    assert_eq!(d.decode(&mut buf).unwrap(), Some(Item::Tunnel(Bytes::from_static(b"RAW"))));
}

#[test]
fn chunked_bodies_with_extensions_and_trailers() {
    let input = b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
4;a=b;c=\"d e\"\r\nWiki\r\n5 ; x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n\
GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    let items = requests(input).unwrap();
    let data: Vec<u8> = items
        .iter()
        .filter_map(|i| if let Item::Body(p) = i { Some(p.data().to_vec()) } else { None })
        .flatten()
        .collect();
    assert_eq!(data, b"Wikipedia in\r\n\r\nchunks.");
    let Some(Item::End(end)) = items.iter().find(|i| matches!(i, Item::End(e) if e.trailers().is_some())) else {
        panic!()
    };
    let t = end.trailers().unwrap();
    assert_eq!(t.headers().get("expires"), Some(&b"never"[..]));
    assert_eq!(t.headers().len(), 2);
    assert!(matches!(items.last(), Some(Item::End(_))));
    assert_eq!(items.iter().filter(|i| matches!(i, Item::Head { .. })).count(), 2);
    let total: Vec<u8> = items.iter().flat_map(|i| i.wire().to_vec()).collect();
    assert_eq!(total, input);
}

#[test]
fn the_end_of_input_inside_a_message_is_an_error() {
    assert_eq!(requests(b"GET / HTTP/1.1\r\nHost: a\r\n"), Err(H1Error::UnexpectedEof { what: "head" }));
    assert_eq!(
        requests(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab"),
        Err(H1Error::UnexpectedEof { what: "body" })
    );
    assert_eq!(
        requests(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
        Err(H1Error::UnexpectedEof { what: "body" })
    );
    assert_eq!(requests(b"").unwrap(), []);
    assert_eq!(requests(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap().len(), 2);
}

#[test]
fn keep_alive_follows_version_and_connection() {
    for (input, keep) in [
        (&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..], true),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
    ] {
        let items = requests(input).unwrap();
        let Item::Head { head, .. } = &items[0] else { panic!() };
        assert_eq!(head.keep_alive(), keep, "{}", String::from_utf8_lossy(input));
    }
}

#[test]
fn connection_lists_hop_by_hop_fields() {
    let input = b"GET http://example.com/a/b?q HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nX-Public: 2\r\nTE: trailers\r\n\r\n";
    let items = requests(input).unwrap();
    let Item::Head { head, .. } = &items[0] else { panic!() };
    assert_eq!(head.path(), "/a/b");
    let h = head.headers();
    let hop: Vec<&[u8]> = h.iter().map(|(n, _)| n).filter(|n| h.is_hop_by_hop(n)).collect();
    assert_eq!(hop, [&b"Connection"[..], b"X-Secret", b"TE"]);
    assert_eq!(h.tokens("connection").collect::<Vec<_>>(), [&b"keep-alive"[..], b"X-Secret"]);
}

#[test]
fn leading_empty_lines_before_a_request_are_skipped() {
    let items = requests(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let Item::Head { head, .. } = &items[0] else { panic!() };
    assert_eq!(head.target(), "/");
    assert_eq!(head.raw().len(), 31);
}

#[test]
fn encoded_messages_decode_back_at_every_split() {
    let mut out = BytesMut::new();
    let fields: [(&[u8], &[u8]); 3] =
        [(b"Host", b"example.com"), (b"Transfer-Encoding", b"chunked"), (b"X-Empty", b"")];
    encode_request_head(&mut out, b"PUT", b"/items/7?x=1", Version::Http11, fields).unwrap();
    encode_chunk(&mut out, b"first piece, ");
    encode_chunk(&mut out, b"");
    encode_chunk(&mut out, &[b'z'; 300]);
    encode_last_chunk(&mut out, [(&b"X-Digest"[..], &b"abc"[..])]).unwrap();
    encode_request_head(&mut out, b"GET", b"/", Version::Http10, []).unwrap();
    let input = out.freeze();
    let whole = requests(&input).unwrap();
    assert_eq!(whole.len(), 6, "{whole:?}");
    let Item::Head { head, body } = &whole[0] else { panic!() };
    assert_eq!((head.method(), head.target(), *body), ("PUT", "/items/7?x=1", BodyKind::Chunked));
    assert_eq!(head.headers().get("x-empty"), Some(&b""[..]));
    let data: Vec<u8> = whole
        .iter()
        .filter_map(|i| if let Item::Body(p) = i { Some(p.data().to_vec()) } else { None })
        .flatten()
        .collect();
    let mut expected = b"first piece, ".to_vec();
    expected.extend([b'z'; 300]);
    assert_eq!(data, expected);
    for k in 0..input.len() {
        let mut s = Stream::new(&input, vec![k]);
        let mut d = RequestDecoder::new(H1Limits::default());
        let mut data = vec![];
        let mut heads = 0;
        while let Some(item) = next(&mut d, &mut s, RequestDecoder::decode_eof).unwrap() {
            match item {
                Item::Head { .. } => heads += 1,
                Item::Body(p) => data.extend_from_slice(&p.data()),
                _ => {}
            }
        }
        assert_eq!((heads, &data), (2, &expected), "split at {k}");
    }

    let mut out = BytesMut::new();
    encode_response_head(&mut out, Version::Http11, 204, b"No Content", [(&b"Server"[..], &b"sluice"[..])]).unwrap();
    let items = responses(&[GET], &out).unwrap();
    let Item::Head { head, body } = &items[0] else { panic!() };
    assert_eq!((head.status(), head.reason(), *body), (204, &b"No Content"[..], BodyKind::None));
}

#[test]
fn encoders_refuse_parts_that_would_split_a_message() {
    let mut out = BytesMut::from(&b"keep"[..]);
    let bad_value: [(&[u8], &[u8]); 1] = [(b"X", b"a\r\nInjected: 1")];
    assert_eq!(
        encode_request_head(&mut out, b"GET", b"/", Version::Http11, bad_value),
        Err(H1Error::InvalidHeaderValue)
    );
    let bad_name: [(&[u8], &[u8]); 1] = [(b"X Y", b"1")];
    assert_eq!(encode_response_head(&mut out, Version::Http11, 200, b"OK", bad_name), Err(H1Error::InvalidHeaderName));
    assert_eq!(encode_request_head(&mut out, b"GET", b"/a b", Version::Http11, []), Err(H1Error::InvalidTarget));
    assert_eq!(encode_request_head(&mut out, b"G T", b"/", Version::Http11, []), Err(H1Error::MalformedRequestLine));
    assert_eq!(encode_response_head(&mut out, Version::Http11, 200, b"O\nK", []), Err(H1Error::MalformedStatusLine));
    assert_eq!(encode_response_head(&mut out, Version::Http11, 99, b"", []), Err(H1Error::MalformedStatusLine));
    assert_eq!(encode_last_chunk(&mut out, bad_value), Err(H1Error::InvalidHeaderValue));
    assert_eq!(&out[..], b"keep", "nothing written on error");
}

#[test]
fn error_responses_are_complete_and_close() {
    let r = error_response(400, b"");
    assert_eq!(&r[..], b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let r = error_response(429, b"slow down\n");
    let items = responses(&[GET], &r).unwrap();
    assert_eq!(kinds(&items), ["429 Length(10)", "data slow down\\n", "end"]);
    let Item::Head { head, .. } = &items[0] else { panic!() };
    assert!(!head.keep_alive());
    assert_eq!(head.reason(), b"Too Many Requests");
    let long = error_response(431, &[b'x'; 5000]);
    assert_eq!(long.len(), error_response(431, &[b'x'; MAX_ERROR_BODY]).len());
    assert!(error_response(0, b"").starts_with(b"HTTP/1.1 500 "));
}

/// Writes the fuzz seeds for `http1_request` (client sides) and `http1_response` (the
/// requests' kinds first, then the server side), each after a mode byte. Rerun after recapturing:
/// `cargo test -p sluice-codecs write_http1_fuzz_seeds -- --ignored`.
#[test]
#[ignore]
fn write_http1_fuzz_seeds() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds");
    for name in fixture_names() {
        let c = fixture(&format!("{name}.client"));
        let s = fixture(&format!("{name}.server"));
        let r = replay(&name);
        let dir = format!("{root}/http1_request");
        std::fs::create_dir_all(&dir).unwrap();
        // A mode byte (default limits, whole and 1-byte feeding), then the client's bytes;
        // websocket's opening answers its Upgrade with a tunnel.
        let mode = if name == "websocket" { 2 } else { 0 };
        std::fs::write(format!("{dir}/{name}"), [&[mode][..], &c].concat()).unwrap();
        // http1_response: a mode byte, one byte of request kinds per request (see that
        // target), a 0xff separator, then the server's bytes.
        let mut seed = vec![0u8];
        seed.extend(r.requests.iter().map(|m| match m.start.split(' ').next() {
            Some("HEAD") => 1,
            Some("CONNECT") => 2,
            _ if name == "websocket" => 4,
            _ => 0,
        }));
        seed.push(0xff);
        seed.extend_from_slice(&s);
        let dir = format!("{root}/http1_response");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}"), &seed).unwrap();
    }
}
