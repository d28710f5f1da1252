//! HTTP/1 request decoder: arbitrary client bytes through the whole state machine (heads,
//! Content-Length and chunked bodies with trailers, the wait after CONNECT/Upgrade, tunnel
//! bytes). It never panics or overflows; the items' wire bytes are exactly the bytes
//! consumed, in order; feeding the bytes whole and in small pieces gives the same verdict
//! and, without an error, the same bytes; every accepted head re-parses from its own bytes
//! to the same head and re-encodes from its parts (`encode_request_head`) into a head that
//! decodes to the same parts; chunk data re-encoded with `encode_chunk` decodes back.
//!
//! The checks on items run on the whole feeding; the piece-wise one only compares.
//!
//! Input: the first byte picks the limits (bit 0: small ones, so size checks are reached),
//! what the server answers a CONNECT or Upgrade (bit 1: a tunnel, else HTTP goes on), and
//! the piece size for the second feeding (bits 2..: 1 + value); the rest is the client's
//! byte stream.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_codecs::framing::Decode;
use sluice_codecs::http1::{
    encode_chunk, encode_last_chunk, encode_request_head, H1Error, H1Limits, Item, RequestDecoder, RequestHead,
};

fn limits(small: bool) -> H1Limits {
    if small {
        H1Limits {
            max_head: 200,
            max_headers: 6,
            max_target: 40,
            max_chunk_line: 24,
            max_trailers: 48,
            max_body: 300,
            max_pending: 4,
        }
    } else {
        H1Limits::default()
    }
}

/// Decodes `input` fed in pieces of `chunk` bytes; returns the items' wire bytes in order
/// and the error, if any.
fn run(
    input: &[u8],
    limits: H1Limits,
    tunnel: bool,
    chunk: usize,
    checks: bool,
) -> (Vec<u8>, Vec<u8>, Option<H1Error>) {
    let mut d = RequestDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut wire = Vec::new();
    let mut data = Vec::new();
    let pieces: Vec<&[u8]> = input.chunks(chunk.max(1)).collect();
    let last = pieces.len();
    for (i, piece) in pieces.into_iter().enumerate().chain(std::iter::once((last, &[][..]))) {
        buf.extend_from_slice(piece);
        loop {
            let item = if i == last { d.decode_eof(&mut buf) } else { d.decode(&mut buf) };
            match item {
                Ok(Some(item)) => {
                    wire.extend_from_slice(item.wire());
                    if checks {
                        check(&item, &limits);
                    }
                    if let Item::Body(p) = &item {
                        data.extend_from_slice(&p.data());
                    }
                }
                Ok(None) if d.awaiting_response() && !d.is_tunnel() => d.resume(tunnel),
                Ok(None) => break,
                Err(e) => {
                    assert!(d.is_failed());
                    assert_eq!(d.decode(&mut buf), Err(H1Error::Failed));
                    return (wire, data, Some(e));
                }
            }
        }
    }
    (wire, data, None)
}

fn check(item: &Item<RequestHead>, limits: &H1Limits) {
    match item {
        Item::Head { head, .. } => {
            assert!(head.raw().len() <= limits.max_head);
            let again = RequestHead::parse(head.raw().clone(), limits).expect("a head re-parses");
            assert_eq!(&again, head);
            // Re-encode from the parts: it must be accepted and give the same parts.
            let fields: Vec<(&[u8], &[u8])> = head.headers().iter().collect();
            let mut out = BytesMut::new();
            encode_request_head(&mut out, head.method().as_bytes(), head.target().as_bytes(), head.version(), fields)
                .expect("parts of a parsed head encode");
            let mut generous = *limits;
            generous.max_head = usize::MAX;
            let rebuilt = RequestHead::parse(out.freeze(), &generous).expect("an encoded head parses");
            assert_eq!(
                (rebuilt.method(), rebuilt.target(), rebuilt.version()),
                (head.method(), head.target(), head.version())
            );
            assert!(rebuilt.headers().iter().eq(head.headers().iter()));
        }
        Item::Body(p) => {
            assert!(p.wire().ends_with(&p.data()));
            let mut out = BytesMut::new();
            encode_chunk(&mut out, &p.data());
            encode_last_chunk(&mut out, []).unwrap();
            let mut d = sluice_codecs::http1::RequestDecoder::new(H1Limits::default());
            let mut framed = BytesMut::from(&b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"[..]);
            framed.extend_from_slice(&out);
            let mut back = Vec::new();
            while let Some(i) = d.decode(&mut framed).expect("an encoded chunk decodes") {
                if let Item::Body(q) = i {
                    back.extend_from_slice(&q.data());
                }
            }
            assert_eq!(back, p.data());
        }
        Item::End(_) | Item::Tunnel(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let limits = limits(mode & 1 == 1);
    let tunnel = mode & 2 == 2;
    let (wire, body, err) = run(input, limits, tunnel, input.len(), true);
    assert!(input.starts_with(&wire), "items are the consumed prefix, in order");
    let (wire2, body2, err2) = run(input, limits, tunnel, 1 + usize::from(mode >> 2), false);
    assert_eq!(err, err2, "same verdict fed in pieces");
    if err.is_none() {
        assert_eq!(wire, wire2);
        assert_eq!(body, body2);
    }
});
