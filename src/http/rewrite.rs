//! The heads sluice forwards: field lines copied byte for byte from the received head,
//! minus what a proxy must or is told to drop, plus what it adds.
//!
//! - Hop-by-hop fields are removed (RFC 9110 §7.6.1): Connection, Proxy-Connection,
//!   Keep-Alive, TE, Upgrade and every field Connection names. Transfer-Encoding is the
//!   exception while the body is forwarded in its received framing: dropping it would
//!   change how the next hop reads the body. Connection can never name away the fields
//!   that frame or address the message (Content-Length, Transfer-Encoding, Host), which
//!   would otherwise let a client make the hops disagree about the body.
//! - An Upgrade request keeps `Upgrade` and gets `Connection: upgrade` (RFC 9110 §7.8);
//!   so does a 101 response.
//! - Requests get `X-Forwarded-For` (the client appended to any received list) and
//!   `X-Forwarded-Proto`; the route's `request_headers_to_remove/add` apply; a
//!   `prefix_rewrite` replaces the matched prefix; the target is sent in origin form
//!   (RFC 9112 §3.2.1) with Host kept as received.
//! - Responses get the route's `response_headers_to_remove/add` and sluice's own
//!   connection semantics: `Connection: close` when sluice will close the client
//!   connection after the response, `Connection: keep-alive` to an HTTP/1.0 client it keeps.

use std::net::IpAddr;

use bytes::{BufMut, BytesMut};
use sluice_codecs::http1::{Headers, Method, RequestHead, ResponseHead, Version};

use crate::config::http::{PathMatch, RouteConfig};

/// Fields Connection cannot remove.
const FRAMING: [&str; 3] = ["content-length", "transfer-encoding", "host"];

fn dropped_hop_by_hop(headers: &Headers<'_>, name: &[u8], keep_upgrade: bool) -> bool {
    if name.eq_ignore_ascii_case(b"transfer-encoding") {
        return false;
    }
    if keep_upgrade && name.eq_ignore_ascii_case(b"upgrade") {
        return false;
    }
    if FRAMING.iter().any(|f| name.eq_ignore_ascii_case(f.as_bytes())) {
        return false;
    }
    headers.is_hop_by_hop(name)
}

fn listed(names: &[String], name: &[u8]) -> bool {
    names.iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// The target to send upstream: origin form, with the route's prefix rewritten.
pub fn upstream_target(head: &RequestHead, route: &RouteConfig) -> String {
    let method = head.method_kind();
    let target = head.target();
    if method == Method::Connect || target == "*" {
        return target.to_string();
    }
    let path = head.path();
    let rewritten = match (&route.prefix_rewrite, &route.matcher.path) {
        (Some(new), PathMatch::Prefix(old)) if path.starts_with(old.as_str()) => {
            let rest = &path[old.len()..];
            // "/api" → "/" on "/api/x" gives "/x", not "//x".
            if new.ends_with('/') && rest.starts_with('/') {
                format!("{new}{}", &rest[1..])
            } else {
                format!("{new}{rest}")
            }
        }
        _ => path.to_string(),
    };
    match head.query() {
        Some(q) => format!("{rewritten}?{q}"),
        None => rewritten,
    }
}

/// What the request head sluice sends depends on besides the route.
pub struct RequestContext {
    pub client: IpAddr,
    /// The client connection is TLS.
    pub https: bool,
}

/// The request head to send upstream.
pub fn request_head(head: &RequestHead, route: &RouteConfig, cx: &RequestContext) -> BytesMut {
    let raw = head.raw();
    let headers = head.headers();
    let upgrade = head.upgrade().is_some();
    let mut out = BytesMut::with_capacity(raw.len() + 128);
    out.put_slice(head.method().as_bytes());
    out.put_u8(b' ');
    out.put_slice(upstream_target(head, route).as_bytes());
    out.put_u8(b' ');
    out.put_slice(head.version().as_bytes());
    out.put_slice(b"\r\n");
    let mut forwarded_for: Option<&[u8]> = None;
    for (name, value, line) in headers.lines() {
        if dropped_hop_by_hop(&headers, name, upgrade)
            || listed(&route.request_headers_to_remove, name)
            || name.eq_ignore_ascii_case(b"x-forwarded-proto")
        {
            continue;
        }
        if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            // Several lines are one list (RFC 9110 §5.3); the first carries it all here.
            forwarded_for.get_or_insert(value);
            continue;
        }
        out.put_slice(&raw[line]);
    }
    let client = cx.client.to_canonical().to_string();
    match forwarded_for {
        Some(list) if !list.is_empty() => {
            let mut value = list.to_vec();
            for extra in headers.get_all("x-forwarded-for").skip(1) {
                value.extend_from_slice(b", ");
                value.extend_from_slice(extra);
            }
            value.extend_from_slice(b", ");
            value.extend_from_slice(client.as_bytes());
            put_field(&mut out, b"X-Forwarded-For", &value);
        }
        _ => put_field(&mut out, b"X-Forwarded-For", client.as_bytes()),
    }
    put_field(&mut out, b"X-Forwarded-Proto", if cx.https { b"https" } else { b"http" });
    for (name, value) in &route.request_headers_to_add {
        put_field(&mut out, name.as_bytes(), value.as_bytes());
    }
    if upgrade {
        put_field(&mut out, b"Connection", b"upgrade");
    } else if head.version() == Version::Http10 {
        // Ask an HTTP/1.0 exchange to keep the pooled connection open (RFC 9112 §9.3, C.2.2).
        put_field(&mut out, b"Connection", b"keep-alive");
    }
    out.put_slice(b"\r\n");
    out
}

/// How sluice treats the client connection after a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientConnection {
    KeepAlive,
    Close,
    /// 101: the connection becomes a tunnel.
    Upgrade,
}

/// The response head to send the client.
pub fn response_head(
    head: &ResponseHead,
    route: Option<&RouteConfig>,
    client_version: Version,
    connection: ClientConnection,
) -> BytesMut {
    let raw = head.raw();
    let headers = head.headers();
    let upgrade = connection == ClientConnection::Upgrade;
    let mut out = BytesMut::with_capacity(raw.len() + 64);
    // The status line as received (through its CRLF).
    let status_end = memchr_crlf(raw).unwrap_or(raw.len());
    out.put_slice(&raw[..status_end]);
    let removes: &[String] = route.map_or(&[], |r| &r.response_headers_to_remove);
    for (name, _, line) in headers.lines() {
        if dropped_hop_by_hop(&headers, name, upgrade) || listed(removes, name) {
            continue;
        }
        out.put_slice(&raw[line]);
    }
    if let Some(route) = route {
        for (name, value) in &route.response_headers_to_add {
            put_field(&mut out, name.as_bytes(), value.as_bytes());
        }
    }
    if !head.is_interim() || upgrade {
        match connection {
            ClientConnection::Upgrade => put_field(&mut out, b"Connection", b"upgrade"),
            ClientConnection::Close => put_field(&mut out, b"Connection", b"close"),
            ClientConnection::KeepAlive if client_version == Version::Http10 => {
                put_field(&mut out, b"Connection", b"keep-alive")
            }
            ClientConnection::KeepAlive => {}
        }
    }
    out.put_slice(b"\r\n");
    out
}

/// The end of the first line, CRLF included.
fn memchr_crlf(raw: &[u8]) -> Option<usize> {
    raw.windows(2).position(|w| w == b"\r\n").map(|i| i + 2)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sluice_codecs::http1::H1Limits;

    use super::*;
    use crate::config::http::{RetryConfig, RouteMatch, WeightedCluster};

    fn req(text: &str) -> RequestHead {
        RequestHead::parse(Bytes::from(text.replace('\n', "\r\n")), &H1Limits::default()).unwrap()
    }

    fn resp(text: &str) -> ResponseHead {
        ResponseHead::parse(Bytes::from(text.replace('\n', "\r\n")), &H1Limits::default()).unwrap()
    }

    fn route(prefix: &str, rewrite: Option<&str>) -> RouteConfig {
        RouteConfig {
            name: "r".into(),
            matcher: RouteMatch { path: PathMatch::Prefix(prefix.into()), headers: vec![] },
            clusters: vec![WeightedCluster { cluster: "a".into(), index: 0, weight: 1 }],
            prefix_rewrite: rewrite.map(Into::into),
            request_headers_to_add: vec![("X-Env".into(), "test".into())],
            request_headers_to_remove: vec!["x-secret".into()],
            response_headers_to_add: vec![("X-Served-By".into(), "sluice".into())],
            response_headers_to_remove: vec!["server".into()],
            timeout: std::time::Duration::from_secs(1),
            retries: RetryConfig::default(),
        }
    }

    fn cx() -> RequestContext {
        RequestContext { client: "10.0.0.7".parse().unwrap(), https: false }
    }

    fn text(b: &BytesMut) -> String {
        String::from_utf8(b.to_vec()).unwrap().replace("\r\n", "\n")
    }

    #[test]
    fn hop_by_hop_and_connection_named_fields_are_dropped() {
        let h = req("GET /a HTTP/1.1\nHost: h\nConnection: keep-alive, X-Hop\nKeep-Alive: 5\nX-Hop: 1\nTE: trailers\nProxy-Connection: x\nUpgrade: h2c\nAccept: */*\nX-Secret: s\n\n");
        let out = text(&request_head(&h, &route("/", None), &cx()));
        assert_eq!(
            out,
            "GET /a HTTP/1.1\nHost: h\nAccept: */*\nX-Forwarded-For: 10.0.0.7\nX-Forwarded-Proto: http\nX-Env: test\n\n"
        );
    }

    #[test]
    fn connection_cannot_name_away_framing_or_host() {
        let h = req(
            "POST /a HTTP/1.1\nHost: h\nConnection: content-length, host, transfer-encoding\nContent-Length: 3\n\n",
        );
        let out = text(&request_head(&h, &route("/", None), &cx()));
        assert!(out.contains("Host: h\n") && out.contains("Content-Length: 3\n"), "{out}");
        let h = req("POST /a HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n");
        assert!(text(&request_head(&h, &route("/", None), &cx())).contains("Transfer-Encoding: chunked\n"));
    }

    #[test]
    fn forwarded_for_appends_and_proto_is_replaced() {
        let h = req(
            "GET / HTTP/1.1\nHost: h\nX-Forwarded-For: 1.1.1.1\nX-Forwarded-For: 2.2.2.2\nX-Forwarded-Proto: https\n\n",
        );
        let out = text(&request_head(&h, &route("/", None), &RequestContext { https: true, ..cx() }));
        assert!(out.contains("X-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.0.0.7\n"), "{out}");
        assert!(out.contains("X-Forwarded-Proto: https\n") && out.matches("X-Forwarded-Proto").count() == 1, "{out}");
    }

    #[test]
    fn prefix_rewrite_and_origin_form() {
        let r = route("/api", Some("/"));
        assert_eq!(upstream_target(&req("GET /api/items?x=1 HTTP/1.1\nHost: h\n\n"), &r), "/items?x=1");
        assert_eq!(upstream_target(&req("GET /api HTTP/1.1\nHost: h\n\n"), &r), "/");
        let r = route("/api", Some("/v2"));
        assert_eq!(upstream_target(&req("GET /api/items HTTP/1.1\nHost: h\n\n"), &r), "/v2/items");
        let r = route("/", None);
        assert_eq!(upstream_target(&req("GET http://h:8/p?q HTTP/1.1\nHost: h\n\n"), &r), "/p?q");
        assert_eq!(upstream_target(&req("OPTIONS * HTTP/1.1\nHost: h\n\n"), &r), "*");
    }

    #[test]
    fn upgrade_keeps_upgrade_and_http10_asks_keep_alive() {
        let h = req("GET /ws HTTP/1.1\nHost: h\nConnection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Key: k\n\n");
        let out = text(&request_head(&h, &route("/", None), &cx()));
        assert!(out.contains("Upgrade: websocket\n") && out.ends_with("Connection: upgrade\n\n"), "{out}");
        let h = req("GET / HTTP/1.0\n\n");
        assert!(text(&request_head(&h, &route("/", None), &cx())).ends_with("Connection: keep-alive\n\n"));
    }

    #[test]
    fn response_fields_and_connection_semantics() {
        let r = route("/", None);
        let h = resp("HTTP/1.1 200 OK\nServer: nginx\nConnection: keep-alive\nKeep-Alive: timeout=5\nTransfer-Encoding: chunked\n\n");
        let out = text(&response_head(&h, Some(&r), Version::Http11, ClientConnection::KeepAlive));
        assert_eq!(out, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nX-Served-By: sluice\n\n");
        let out = text(&response_head(&h, Some(&r), Version::Http11, ClientConnection::Close));
        assert!(out.ends_with("Connection: close\n\n"));
        let out = text(&response_head(&h, Some(&r), Version::Http10, ClientConnection::KeepAlive));
        assert!(out.ends_with("Connection: keep-alive\n\n"));
        let h = resp("HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n\n");
        let out = text(&response_head(&h, None, Version::Http11, ClientConnection::Upgrade));
        assert_eq!(out, "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: upgrade\n\n");
        let h = resp("HTTP/1.1 100 Continue\n\n");
        assert_eq!(
            text(&response_head(&h, None, Version::Http11, ClientConnection::Close)),
            "HTTP/1.1 100 Continue\n\n"
        );
    }
}
