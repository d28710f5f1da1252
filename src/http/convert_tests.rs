//! Table tests of the H2 ↔ H1 conversion.

use bytes::Bytes;
use http::Request;
use sluice_codecs::framing::Decode;
use sluice_codecs::http1::{request_body, BodyKind, Item, ResponseDecoder};

use super::*;

fn h2_request(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut b = Request::builder().method(method).uri(uri);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(()).unwrap().into_parts().0
}

fn h1(method: &str, uri: &str, headers: &[(&str, &str)], has_body: bool) -> Result<String, ConvertError> {
    let parts = h2_request(method, uri, headers);
    let head = request_head(&parts, has_body, &H1Limits::default())?;
    Ok(String::from_utf8(head.raw().to_vec()).unwrap().replace("\r\n", "|"))
}

/// method, URI, fields, has a body, the H1 head expected (CRLF shown as `|`).
type RequestCase<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], bool, Result<&'a str, ConvertError>);

#[test]
fn request_line_host_and_fields() {
    let cases: &[RequestCase] = &[
        ("GET", "https://example.com/a?b=1", &[], false, Ok("GET /a?b=1 HTTP/1.1|host: example.com||")),
        (
            "GET",
            "http://example.com:8080/",
            &[("accept", "*/*")],
            false,
            Ok("GET / HTTP/1.1|host: example.com:8080|accept: */*||"),
        ),
        // :authority wins; an equal Host is folded into it; a different one is malformed.
        ("GET", "https://example.com/", &[("host", "EXAMPLE.com")], false, Ok("GET / HTTP/1.1|host: example.com||")),
        ("GET", "https://example.com/", &[("host", "evil.test")], false, Err(ConvertError::HostConflict)),
        // Without :authority, a single Host is used.
        ("GET", "/x", &[("host", "h.test")], false, Ok("GET /x HTTP/1.1|host: h.test||")),
        ("GET", "/x", &[], false, Err(ConvertError::NoHost)),
        ("GET", "/x", &[("host", "a"), ("host", "b")], false, Err(ConvertError::NoHost)),
        ("GET", "https://user@example.com/", &[], false, Err(ConvertError::Userinfo)),
        ("CONNECT", "example.com:443", &[], false, Err(ConvertError::Connect)),
        // Connection-specific fields are dropped; TE only survives as "trailers".
        (
            "GET",
            "https://e.test/",
            &[
                ("connection", "close"),
                ("keep-alive", "5"),
                ("proxy-connection", "x"),
                ("upgrade", "ws"),
                ("te", "gzip"),
                ("x-a", "1"),
            ],
            false,
            Ok("GET / HTTP/1.1|host: e.test|x-a: 1||"),
        ),
        ("GET", "https://e.test/", &[("te", "trailers")], false, Ok("GET / HTTP/1.1|host: e.test|te: trailers||")),
        ("GET", "https://e.test/", &[("transfer-encoding", "chunked")], false, Ok("GET / HTTP/1.1|host: e.test||")),
        // Cookies are joined for HTTP/1.
        (
            "GET",
            "https://e.test/",
            &[("cookie", "a=1"), ("x", "y"), ("cookie", "b=2"), ("cookie", "c=3")],
            false,
            Ok("GET / HTTP/1.1|host: e.test|x: y|cookie: a=1; b=2; c=3||"),
        ),
        // Framing: length kept, chunked otherwise, an empty POST gets Content-Length: 0.
        (
            "POST",
            "https://e.test/u",
            &[("content-length", "5")],
            true,
            Ok("POST /u HTTP/1.1|host: e.test|content-length: 5||"),
        ),
        ("POST", "https://e.test/u", &[], true, Ok("POST /u HTTP/1.1|host: e.test|transfer-encoding: chunked||")),
        ("POST", "https://e.test/u", &[], false, Ok("POST /u HTTP/1.1|host: e.test|content-length: 0||")),
        (
            "POST",
            "https://e.test/u",
            &[("content-length", "7")],
            false,
            Ok("POST /u HTTP/1.1|host: e.test|content-length: 0||"),
        ),
        ("GET", "https://e.test/", &[("content-length", "0")], false, Ok("GET / HTTP/1.1|host: e.test||")),
        ("OPTIONS", "https://e.test/*", &[], false, Ok("OPTIONS /* HTTP/1.1|host: e.test||")),
    ];
    for (method, uri, headers, body, want) in cases {
        let got = h1(method, uri, headers, *body);
        assert_eq!(
            got.as_deref().map_err(|e| *e),
            want.as_ref().map(|s| *s).map_err(|e| *e),
            "{method} {uri} {headers:?}"
        );
    }
}

#[test]
fn converted_request_framing_is_what_the_h1_codec_reads() {
    let limits = H1Limits::default();
    let framing = |method, headers: &[(&str, &str)], body| {
        let head = request_head(&h2_request(method, "https://e.test/", headers), body, &limits).unwrap();
        request_body(&head, &limits).unwrap()
    };
    assert_eq!(framing("GET", &[], false), BodyKind::None);
    assert_eq!(framing("POST", &[("content-length", "9")], true), BodyKind::Length(9));
    assert_eq!(framing("POST", &[], true), BodyKind::Chunked);
    assert_eq!(framing("PUT", &[], false), BodyKind::None);
}

#[test]
fn request_trailers_end_the_chunked_body() {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from_static("0"));
    t.insert("content-length", HeaderValue::from_static("3"));
    t.insert("x-sum", HeaderValue::from_static("abc"));
    let mut out = BytesMut::new();
    request_trailers(&t, &mut out).unwrap();
    assert_eq!(&out[..], b"0\r\ngrpc-status: 0\r\nx-sum: abc\r\n\r\n");
    let mut out = BytesMut::new();
    request_trailers(&HeaderMap::new(), &mut out).unwrap();
    assert_eq!(&out[..], b"0\r\n\r\n");
}

fn h1_response(text: &str) -> ResponseHead {
    ResponseHead::parse(Bytes::from(text.replace('\n', "\r\n")), &H1Limits::default()).unwrap()
}

fn fields(r: &Response<()>) -> Vec<String> {
    r.headers().iter().map(|(n, v)| format!("{n}: {}", v.to_str().unwrap())).collect()
}

#[test]
fn response_heads() {
    let cases: &[(&str, u16, &[&str])] = &[
        ("HTTP/1.1 200 OK\nContent-Length: 3\nX-A: 1\n\n", 200, &["content-length: 3", "x-a: 1"]),
        // Hop-by-hop fields and those Connection names go.
        (
            "HTTP/1.1 200 OK\nConnection: close, x-hop\nKeep-Alive: timeout=5\nTransfer-Encoding: chunked\nX-Hop: 1\nX-B: 2\n\n",
            200,
            &["x-b: 2"],
        ),
        // Status-only responses; 204 loses a stray Content-Length.
        ("HTTP/1.1 204 No Content\nContent-Length: 0\n\n", 204, &[]),
        ("HTTP/1.1 304 Not Modified\nETag: \"x\"\n\n", 304, &["etag: \"x\""]),
        // Set-Cookie lines stay separate.
        ("HTTP/1.1 200 OK\nSet-Cookie: a=1\nSet-Cookie: b=2\n\n", 200, &["set-cookie: a=1", "set-cookie: b=2"]),
        ("HTTP/1.0 404 Not Found\nUpgrade: h2c\n\n", 404, &[]),
    ];
    for (text, status, want) in cases {
        let r = response_head(&h1_response(text), None);
        assert_eq!(r.status().as_u16(), *status, "{text}");
        assert_eq!(fields(&r), *want, "{text}");
    }
}

#[test]
fn response_trailers_from_a_chunked_body() {
    let mut dec = ResponseDecoder::new(H1Limits::default());
    let mut buf = BytesMut::from(
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\ngrpc-status: 0\r\nContent-Length: 9\r\ngrpc-message: ok\r\n\r\n"[..],
    );
    let mut end = None;
    while let Some(item) = dec.decode(&mut buf).unwrap() {
        if let Item::End(e) = item {
            end = Some(e);
        }
    }
    let end = end.expect("end of body");
    let t = response_trailers(end.trailers().expect("trailers"));
    let got: Vec<String> = t.iter().map(|(n, v)| format!("{n}: {}", v.to_str().unwrap())).collect();
    assert_eq!(got, ["grpc-status: 0", "grpc-message: ok"]);
}

#[test]
fn local_replies() {
    let (r, body) = local_response(429, "rate limited\n", true);
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(fields(&r), ["content-type: text/plain; charset=utf-8", "content-length: 13", "retry-after: 1"]);
    assert_eq!(&body[..], b"rate limited\n");
}

#[test]
fn arbitrary_fields_never_panic_and_stay_one_message() {
    // Random names, values (anything HTTP/2 can carry: no CR, LF or NUL) and paths.
    let mut rng = fastrand::Rng::with_seed(9113);
    let limits = H1Limits::default();
    for _ in 0..2000 {
        let mut b = Request::builder().method(["GET", "POST", "PATCH", "X-Y"][rng.usize(0..4)]);
        let path: String = (0..rng.usize(1..20)).map(|_| char::from(rng.u8(0x21..0x7f))).collect();
        b = b.uri(format!(
            "http://h.test/{}",
            path.replace(['#', '%', '"', '<', '>', '\\', '^', '`', '{', '|', '}'], "")
        ));
        for _ in 0..rng.usize(0..8) {
            let name: String = (0..rng.usize(1..8)).map(|_| char::from(rng.u8(b'a'..=b'z'))).collect();
            let value: Vec<u8> =
                (0..rng.usize(0..16)).map(|_| rng.u8(..)).filter(|&c| c >= 0x20 && c != 0x7f).collect();
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                b = b.header(name.as_str(), v);
            }
        }
        let Ok(request) = b.body(()) else { continue };
        let parts = request.into_parts().0;
        if let Ok(head) = request_head(&parts, rng.bool(), &limits) {
            // The head parses back as exactly one request head.
            let raw = head.raw().clone();
            assert!(raw.ends_with(b"\r\n\r\n"));
            assert_eq!(raw.windows(4).filter(|w| *w == b"\r\n\r\n").count(), 1, "{raw:?}");
            let _ = request_to_h2(&head, "http");
        }
    }
}
