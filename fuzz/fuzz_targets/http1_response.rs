//! HTTP/1 response decoder: arbitrary server bytes through the whole state machine, given
//! the requests they answer (HEAD, CONNECT, Upgrade change the framing). It never panics
//! or overflows; the items' wire bytes are exactly the bytes consumed, in order; feeding
//! whole and in small pieces gives the same verdict and, without an error, the same bytes;
//! every accepted head re-parses from its own bytes to the same head and re-encodes from
//! its parts (`encode_response_head`) into a head that decodes to the same parts.
//!
//! The checks on items run on the whole feeding; the piece-wise one only compares.
//!
//! Input: the first byte picks the limits (bit 0: small ones) and the piece size for the
//! second feeding (bits 1..: 1 + value); then one byte per pending request (bit 0: HEAD,
//! bit 1: CONNECT, bit 2: it asked for an Upgrade), up to a 0xff byte (at most 32); the rest
//! is the server's byte stream.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_codecs::framing::Decode;
use sluice_codecs::http1::{
    encode_response_head, H1Error, H1Limits, Item, PendingRequest, ResponseDecoder, ResponseHead,
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
            max_pending: 40,
        }
    } else {
        H1Limits::default()
    }
}

fn run(
    asked: &[PendingRequest],
    input: &[u8],
    limits: H1Limits,
    chunk: usize,
    checks: bool,
) -> (Vec<u8>, Vec<u8>, Option<H1Error>) {
    let mut d = ResponseDecoder::new(limits);
    for p in asked {
        d.push_request(*p).unwrap();
    }
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
                    match &item {
                        Item::Head { head, .. } if checks => check(head, &limits),
                        Item::Body(p) => data.extend_from_slice(&p.data()),
                        _ => {}
                    }
                }
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

fn check(head: &ResponseHead, limits: &H1Limits) {
    assert!(head.raw().len() <= limits.max_head);
    let again = ResponseHead::parse(head.raw().clone(), limits).expect("a head re-parses");
    assert_eq!(&again, head);
    let fields: Vec<(&[u8], &[u8])> = head.headers().iter().collect();
    let mut out = BytesMut::new();
    encode_response_head(&mut out, head.version(), head.status(), head.reason(), fields)
        .expect("parts of a parsed head encode");
    let mut generous = *limits;
    generous.max_head = usize::MAX;
    let rebuilt = ResponseHead::parse(out.freeze(), &generous).expect("an encoded head parses");
    assert_eq!((rebuilt.version(), rebuilt.status(), rebuilt.reason()), (head.version(), head.status(), head.reason()));
    assert!(rebuilt.headers().iter().eq(head.headers().iter()));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let limits = limits(mode & 1 == 1);
    let split = rest.iter().take(33).position(|&b| b == 0xff).unwrap_or(0);
    let asked: Vec<PendingRequest> = rest[..split]
        .iter()
        .map(|&b| PendingRequest { head: b & 1 == 1, connect: b & 2 == 2, upgrade: b & 4 == 4 })
        .collect();
    let input = rest.get(split + 1..).unwrap_or_default();
    let (wire, body, err) = run(&asked, input, limits, input.len(), true);
    assert!(input.starts_with(&wire), "items are the consumed prefix, in order");
    let (wire2, body2, err2) = run(&asked, input, limits, 1 + usize::from(mode >> 1), false);
    assert_eq!(err, err2, "same verdict fed in pieces");
    if err.is_none() {
        assert_eq!(wire, wire2);
        assert_eq!(body, body2);
    }
});
