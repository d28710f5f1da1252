//! Hostile input: the request-smuggling classics (CL.TE, TE.CL, TE.TE obfuscations),
//! malformed heads and chunk lines, oversized heads and trailers, responses that lie about
//! their framing. Each must be a typed error (the exact variant is asserted) with the right
//! status, after which the decoder answers `Failed`, never a panic; and arbitrary bytes
//! never panic a decoder and decode the same at every split.

use bytes::BytesMut;
use proptest::prelude::*;

use super::tests::{requests, responses, GET};
use super::*;
use crate::framing::Decode;

fn req(head_fields: &str, rest: &str) -> Vec<u8> {
    format!("POST /x HTTP/1.1\r\nHost: example.com\r\n{head_fields}\r\n{rest}").into_bytes()
}

/// Decoding `input` as requests fails with `expected` (answered with `status`), and the
/// decoder answers `Failed` from then on.
fn refused(input: &[u8], expected: H1Error, status: u16) {
    let shown = String::from_utf8_lossy(input);
    assert_eq!(requests(input).map(|_| ()), Err(expected), "{shown}");
    assert_eq!(expected.status(), status, "{shown}");
    let mut d = RequestDecoder::new(H1Limits::default());
    let mut buf = BytesMut::from(input);
    let err = loop {
        match d.decode(&mut buf) {
            Ok(Some(_)) => continue,
            Ok(None) => break d.decode_eof(&mut buf).unwrap_err(),
            Err(e) => break e,
        }
    };
    assert_eq!(err, expected);
    assert!(d.is_failed());
    assert_eq!(d.decode(&mut BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..])), Err(H1Error::Failed));
}

#[test]
fn request_smuggling_framing_is_refused() {
    use H1Error::*;
    let cases: &[(&str, &str, H1Error, u16)] = &[
        // CL.TE and TE.CL: both fields, in either order.
        ("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nG", ContentLengthAndTransferEncoding, 400),
        (
            "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
            "8\r\nSMUGGLED\r\n0\r\n\r\n",
            ContentLengthAndTransferEncoding,
            400,
        ),
        // TE.TE obfuscations.
        ("Transfer-Encoding: xchunked\r\n", "", UnknownTransferCoding, 501),
        ("Transfer-Encoding: chunked, identity\r\n", "", UnknownTransferCoding, 501),
        ("Transfer-Encoding: gzip\r\n", "", ChunkedNotFinal, 400),
        ("Transfer-Encoding: chunked, gzip\r\n", "", ChunkedNotFinal, 400),
        ("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", "", ChunkedNotFinal, 400),
        ("Transfer-Encoding: chunked, chunked\r\n", "", InvalidTransferEncoding, 400),
        ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "", InvalidTransferEncoding, 400),
        ("Transfer-Encoding:\r\n", "", InvalidTransferEncoding, 400),
        ("Transfer-Encoding: ,chunked\r\n", "", InvalidTransferEncoding, 400),
        ("Transfer-Encoding: \"chunked\"\r\n", "", InvalidTransferEncoding, 400),
        ("Transfer-Encoding: chunked\x0b\r\n", "", InvalidHeaderValue, 400),
        ("Transfer-Encoding : chunked\r\n", "", InvalidHeaderName, 400),
        ("Transfer-Encoding\t: chunked\r\n", "", InvalidHeaderName, 400),
        (" Transfer-Encoding: chunked\r\n", "", ObsFold, 400),
        ("X: y\r\n Transfer-Encoding: chunked\r\n", "", ObsFold, 400),
        ("Transfer-Encoding:\r\n chunked\r\n", "", ObsFold, 400),
        ("Transfer-Encoding: chunked\n", "", BareLf, 400),
        ("Transfer-Encoding: chunked\rX: y\r\n", "", BareCr, 400),
        // Content-Length games.
        ("Content-Length: +5\r\n", "hello", InvalidContentLength, 400),
        ("Content-Length: -1\r\n", "", InvalidContentLength, 400),
        ("Content-Length: 0x5\r\n", "", InvalidContentLength, 400),
        ("Content-Length: 5 5\r\n", "", InvalidContentLength, 400),
        ("Content-Length: 5.0\r\n", "", InvalidContentLength, 400),
        ("Content-Length:\r\n", "", InvalidContentLength, 400),
        ("Content-Length: 5,\r\n", "", InvalidContentLength, 400),
        ("Content-Length: 18446744073709551616\r\n", "", InvalidContentLength, 400),
        ("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!", ConflictingContentLength, 400),
        ("Content-Length: 5, 6\r\n", "hello!", ConflictingContentLength, 400),
        ("Content-Length : 5\r\n", "hello", InvalidHeaderName, 400),
    ];
    for (fields, rest, expected, status) in cases {
        refused(&req(fields, rest), *expected, *status);
    }
}

#[test]
fn identical_content_lengths_are_one_length() {
    // RFC 9110 §8.6 lets a recipient accept a list of identical values; every reader that
    // accepts them agrees on the length.
    for fields in ["Content-Length: 5\r\nContent-Length: 5\r\n", "Content-Length: 5, 5\r\n", "Content-Length: 005\r\n"]
    {
        let items = requests(&req(fields, "hello")).unwrap();
        assert!(matches!(items[0], Item::Head { body: BodyKind::Length(5), .. }), "{fields}");
        assert_eq!(items.len(), 3);
    }
}

#[test]
fn transfer_encoding_in_http10_is_faulty_framing() {
    refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", H1Error::TransferEncodingInHttp10, 400);
    refused(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
        H1Error::TransferEncodingInHttp10,
        400,
    );
}

#[test]
fn known_codings_before_chunked_are_accepted() {
    for te in ["chunked", "CHUNKED", "gzip, chunked", "x-gzip,deflate , chunked", "chunked;foo=bar"] {
        let items = requests(&req(&format!("Transfer-Encoding: {te}\r\n"), "0\r\n\r\n")).unwrap();
        assert!(matches!(items[0], Item::Head { body: BodyKind::Chunked, .. }), "{te}");
    }
}

#[test]
fn invalid_chunk_lines_are_refused() {
    use H1Error::*;
    let te = "Transfer-Encoding: chunked\r\n";
    let cases: &[(&str, H1Error)] = &[
        ("x\r\n", InvalidChunkSize),
        ("\r\n", InvalidChunkSize),
        ("-1\r\n", InvalidChunkSize),
        ("+1\r\na\r\n", InvalidChunkSize),
        ("0x5\r\nhello\r\n", InvalidChunkSize),
        (" 5\r\nhello\r\n", InvalidChunkSize),
        ("5 \r\nhello\r\n", InvalidChunkSize),
        ("5 5\r\nhello\r\n", InvalidChunkSize),
        ("5\x00\r\nhello\r\n", InvalidChunkSize),
        ("5;a\x00b\r\nhello\r\n", InvalidChunkExtension),
        ("5;a\x7f\r\nhello\r\n", InvalidChunkExtension),
        ("10000000000000000\r\n", ChunkSizeTooLong),
        ("00000000000000001\r\n", ChunkSizeTooLong),
        ("ffffffffffffffffff", ChunkSizeTooLong),
        ("5\nhello\r\n", BareLf),
        ("5\rhello\r\n", BareCr),
        ("5\r\nhelloX\r\n", ChunkDataNoCrlf),
        ("5\r\nhello\n0\r\n\r\n", ChunkDataNoCrlf),
        ("5\r\nhello\r\r\n", ChunkDataNoCrlf),
        ("3\r\nabcde\r\n0\r\n\r\n", ChunkDataNoCrlf),
        ("0\r\nX: y\n\r\n", BareLf),
        ("0\r\n X: y\r\n\r\n", ObsFold),
        ("0\r\nX : y\r\n\r\n", InvalidHeaderName),
        ("0\r\nX: \x01\r\n\r\n", InvalidHeaderValue),
    ];
    for (body, expected) in cases {
        refused(&req(te, body), *expected, 400);
    }
    // A chunk line longer than the limit, and one that never ends.
    let long = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(5000));
    refused(&req(te, &long), ChunkLineTooLong { limit: 4096 }, 400);
    // The largest size 16 digits hold is a size, not an error (it is just never finished).
    let huge = req(te, "ffffffffffffffff\r\nabc");
    assert_eq!(requests(&huge), Err(UnexpectedEof { what: "body" }));
}

#[test]
fn body_limits_are_413() {
    let limits = H1Limits { max_body: 10, ..H1Limits::default() };
    let decode = |input: &[u8]| {
        let mut d = RequestDecoder::new(limits);
        let mut buf = BytesMut::from(input);
        loop {
            match d.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    assert_eq!(decode(&req("Content-Length: 11\r\n", "")), Err(H1Error::BodyTooLarge { limit: 10 }));
    assert_eq!(decode(&req("Content-Length: 10\r\n", "0123456789")), Ok(()));
    let chunks = req("Transfer-Encoding: chunked\r\n", "6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n");
    assert_eq!(decode(&chunks), Err(H1Error::BodyTooLarge { limit: 10 }));
    assert_eq!(H1Error::BodyTooLarge { limit: 10 }.status(), 413);
    // The size is checked from the chunk line, before its data arrives.
    assert_eq!(
        decode(&req("Transfer-Encoding: chunked\r\n", "ffffffffffffffff\r\n")),
        Err(H1Error::BodyTooLarge { limit: 10 })
    );
}

#[test]
fn malformed_request_heads_are_refused() {
    use H1Error::*;
    let cases: &[(&[u8], H1Error, u16)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", MissingHost, 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", DuplicateHost, 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", DuplicateHost, 400),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", InvalidHost, 400),
        (b"GET / HTTP/1.1\r\nHost: user@evil\r\n\r\n", InvalidHost, 400),
        (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", InvalidHost, 400),
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", MalformedRequestLine, 400),
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", MalformedRequestLine, 400),
        (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", MalformedRequestLine, 400),
        (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", InvalidVersion, 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", InvalidVersion, 400),
        (b"GET /\r\n\r\n", MalformedRequestLine, 400),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Http2Preface, 400),
        (b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", MalformedRequestLine, 400),
        (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        (b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        (b"GET example.com HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        (b"GET 1http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        (b"CONNECT /path HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        (b"CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        (b"CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX\x00: y\r\n\r\n", InvalidHeaderName, 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\n: y\r\n\r\n", InvalidHeaderName, 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", InvalidHeaderValue, 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", InvalidHeaderName, 400),
        (b"GET / HTTP/1.1\nHost: a\n\n", BareLf, 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\n", BareLf, 400),
        (b"GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", BareCr, 400),
        (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", ObsFold, 400),
        (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", BareLf, 400),
    ];
    for (input, expected, status) in cases {
        refused(input, *expected, *status);
    }
    // Valid forms of each kind pass.
    for ok in [
        &b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
        b"GET https://a.example:8443/p?q=1 HTTP/1.1\r\nHost: a.example:8443\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"PURGE /x HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
    ] {
        requests(ok).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(ok)));
    }
}

#[test]
fn heads_parsed_directly_get_the_same_line_checks() {
    let l = H1Limits::default();
    let parse = |b: &'static [u8]| RequestHead::parse(bytes::Bytes::from_static(b), &l).map(|_| ());
    assert_eq!(parse(b"GET / HTTP/1.1\nHost: a\n\n"), Err(H1Error::BareLf));
    assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n"), Err(H1Error::ObsFold));
    assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nextra"), Err(H1Error::MalformedRequestLine));
    assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n"), Err(H1Error::MalformedRequestLine));
    assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Ok(()));
    let r = ResponseHead::parse(bytes::Bytes::from_static(b"HTTP/1.1 200 OK\nX: y\n\n"), &l);
    assert_eq!(r.map(|_| ()), Err(H1Error::BareLf));
}

#[test]
fn oversized_heads_are_431_or_414() {
    let limits = H1Limits { max_head: 128, max_target: 64, max_headers: 4, ..H1Limits::default() };
    let decode = |input: &[u8]| {
        let mut d = RequestDecoder::new(limits);
        d.decode(&mut BytesMut::from(input)).map(|o| o.is_some())
    };
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(200));
    assert_eq!(decode(long_line.as_bytes()), Err(H1Error::RequestLineTooLong { limit: 128 }));
    assert_eq!(decode(&long_line.as_bytes()[..130]), Err(H1Error::RequestLineTooLong { limit: 128 }), "before it ends");
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(70));
    assert_eq!(decode(long_target.as_bytes()), Err(H1Error::TargetTooLong { len: 71, limit: 64 }));
    let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    assert_eq!(decode(many.as_bytes()), Err(H1Error::TooManyHeaders { limit: 4 }));
    let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "v".repeat(100));
    assert_eq!(decode(big.as_bytes()), Err(H1Error::HeadTooLarge { limit: 128 }));
    assert_eq!(decode(&[b'\r', b'\n'].repeat(64)), Err(H1Error::RequestLineTooLong { limit: 128 }));
    assert_eq!(H1Error::HeadTooLarge { limit: 1 }.status(), 431);
    assert_eq!(H1Error::TooManyHeaders { limit: 1 }.status(), 431);
    assert_eq!(H1Error::RequestLineTooLong { limit: 1 }.status(), 414);
    assert_eq!(H1Error::TargetTooLong { len: 2, limit: 1 }.status(), 414);
    // Exactly at the limit is fine.
    let exact = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "v".repeat(128 - 32));
    assert_eq!(exact.len(), 128);
    assert_eq!(decode(exact.as_bytes()), Ok(true));
}

#[test]
fn oversized_trailers_are_refused() {
    let limits = H1Limits { max_trailers: 32, ..H1Limits::default() };
    let input = req("Transfer-Encoding: chunked\r\n", &format!("0\r\nX: {}\r\n\r\n", "t".repeat(40)));
    let mut d = RequestDecoder::new(limits);
    let mut buf = BytesMut::from(&input[..]);
    let err = loop {
        match d.decode(&mut buf) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("needs no more bytes"),
            Err(e) => break e,
        }
    };
    assert_eq!(err, H1Error::TrailersTooLarge { limit: 32 });
    assert_eq!(err.status(), 431);
}

#[test]
fn lying_responses_are_refused() {
    use H1Error::*;
    let cases: &[(&[u8], H1Error)] = &[
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            ContentLengthAndTransferEncoding,
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", ConflictingContentLength),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n", InvalidContentLength),
        (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncodingInHttp10),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", InvalidTransferEncoding),
        (b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", ObsFold),
        (b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n", InvalidHeaderName),
        (b"HTTP/1.1 200 OK\nX: a\n\n", BareLf),
        (b"HTTP/1.1 099 Low\r\n\r\n", MalformedStatusLine),
        (b"HTTP/1.1 2000 OK\r\n\r\n", MalformedStatusLine),
        (b"HTTP/1.1 20 OK\r\n\r\n", MalformedStatusLine),
        (b"HTTP/3.0 200 OK\r\n\r\n", InvalidVersion),
        (b"ICY 200 OK\r\n\r\n", InvalidVersion),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", InvalidChunkSize),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab", UnexpectedSwitch),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", UnexpectedEof { what: "body" }),
        (b"HTTP/1.1 200 OK\r\nContent-Le", UnexpectedEof { what: "head" }),
    ];
    for (input, expected) in cases {
        let asked: &[PendingRequest] = if *expected == UnexpectedSwitch { &[] } else { &[GET] };
        let input: Vec<u8> = if *expected == UnexpectedSwitch {
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n".to_vec()
        } else {
            input.to_vec()
        };
        assert_eq!(responses(asked, &input).map(|_| ()), Err(*expected), "{}", String::from_utf8_lossy(&input));
    }
}

#[test]
fn the_pending_queue_is_bounded() {
    let mut d = ResponseDecoder::new(H1Limits { max_pending: 2, ..H1Limits::default() });
    d.push_request(GET).unwrap();
    d.push_request(GET).unwrap();
    assert_eq!(d.push_request(GET), Err(H1Error::TooManyPending { limit: 2 }));
}

#[test]
fn an_unsolicited_response_is_framed_as_for_a_get() {
    let items =
        responses(&[], b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    assert!(matches!(items[0], Item::Head { body: BodyKind::None, .. }));
}

/// Feeds `input` whole and at split `k`, requests or responses to GETs; both must agree.
fn decode_split(input: &[u8], k: usize, request: bool) -> (Vec<Vec<u8>>, Option<H1Error>) {
    let limits = H1Limits { max_head: 256, max_trailers: 64, max_chunk_line: 32, ..H1Limits::default() };
    let mut items = vec![];
    let mut buf = BytesMut::new();
    let mut req = RequestDecoder::new(limits);
    let mut resp = ResponseDecoder::new(limits);
    for _ in 0..64 {
        resp.push_request(GET).unwrap();
    }
    let (a, b) = input.split_at(k.min(input.len()));
    let mut step = |buf: &mut BytesMut, eof: bool| -> Result<Option<Vec<u8>>, H1Error> {
        let wire = |w: &bytes::Bytes| w.to_vec();
        Ok(if request {
            let r = if eof { req.decode_eof(buf)? } else { req.decode(buf)? };
            r.map(|i| wire(i.wire()))
        } else {
            let r = if eof { resp.decode_eof(buf)? } else { resp.decode(buf)? };
            r.map(|i| wire(i.wire()))
        })
    };
    for (part, eof) in [(a, false), (b, true)] {
        buf.extend_from_slice(part);
        loop {
            match step(&mut buf, false) {
                Ok(Some(w)) => items.push(w),
                Ok(None) => break,
                Err(e) => return (items, Some(e)),
            }
        }
        if eof {
            loop {
                match step(&mut buf, true) {
                    Ok(Some(w)) => items.push(w),
                    Ok(None) => break,
                    Err(e) => return (items, Some(e)),
                }
            }
        }
    }
    (items, None)
}

/// The concatenated wire bytes and the error: item boundaries depend on the split, the
/// bytes and the verdict must not.
fn verdict(input: &[u8], k: usize, request: bool) -> (Vec<u8>, Option<H1Error>) {
    // On an error, pieces consumed by the failing call are not handed out, so only the
    // verdict is compared.
    let (items, err) = decode_split(input, k, request);
    (if err.is_some() { vec![] } else { items.concat() }, err)
}

fn http_ish() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        &b"GET / HTTP/1.1\r\n"[..],
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"Host: a\r\n",
        b"Content-Length: 3\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"\r\n",
        b"3\r\nabc\r\n",
        b"0\r\n",
        b"X: y\r\n",
        b"abc",
        b"\n",
        b"\r",
        b" ",
        b";",
    ]);
    prop::collection::vec(prop_oneof![pieces.prop_map(|p| p.to_vec()), prop::collection::vec(any::<u8>(), 0..4)], 0..24)
        .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_decode_the_same_at_every_split(input in http_ish(), request in any::<bool>()) {
        let whole = verdict(&input, input.len(), request);
        for k in 0..input.len() {
            prop_assert_eq!(&verdict(&input, k, request), &whole, "split at {}", k);
        }
        // What was consumed is a prefix of the input.
        prop_assert!(input.starts_with(&whole.0));
    }
}
