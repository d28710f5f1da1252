//! HTTP/2 ↔ HTTP/1.1 message conversion, in one place (RFC 9113 §8, RFC 9112, RFC 9110).
//!
//! Requests (H2 → H1):
//! - `:method` and `:path` become the request line (origin form, `HTTP/1.1`); CONNECT is
//!   not converted (a tunnel over a stream is not offered: 501).
//! - `:authority` becomes `Host`. A `Host` field may accompany it only when it names the
//!   same authority: a different one makes the request malformed (RFC 9113 §8.3.1, a
//!   server "SHOULD treat a request as malformed"), answered 400, so the router and the
//!   upstream can never disagree about the host. Without `:authority`, exactly one `Host`
//!   is required (RFC 9112 §3.2). An authority with userinfo is refused (RFC 9113 §8.3.1).
//! - Connection-specific fields are dropped (RFC 9113 §8.2.2): Connection, Keep-Alive,
//!   Proxy-Connection, Transfer-Encoding, Upgrade, and TE unless it is `trailers`.
//! - Several `cookie` fields are joined with "; " into one (RFC 9113 §8.2.3).
//! - Framing on the H1 side: a request that ends with its headers has no body (with
//!   `Content-Length: 0` for methods that define one, so a server does not wait); a body
//!   with a `content-length` (which the h2 crate checks against the DATA it receives) is
//!   sent with it, any other body chunked (RFC 9112 §7.1) so trailers can follow.
//!
//! Responses (H1 → H2): the status (reason phrase dropped), the fields minus the
//! hop-by-hop ones and those Connection names (RFC 9110 §7.6.1), minus `content-length` on
//! 1xx/204 (RFC 9110 §8.6), with the route's header removals and additions. Field names
//! are lower-cased (RFC 9113 §8.2); a field whose name or value HTTP/2 cannot carry is
//! dropped. HEAD/204/304 responses end with the headers (the H1 decoder already framed
//! them without a body).
//!
//! Trailers either way drop the fields a trailer section must not carry (RFC 9110 §6.5.1:
//! framing, routing, hop-by-hop).

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, COOKIE, HOST};
use http::{HeaderMap, Method as H2Method, Response, StatusCode};
use sluice_codecs::http1::{
    encode_last_chunk, encode_request_head, H1Error, H1Limits, Headers, RequestHead, ResponseHead, Trailers, Version,
};

use crate::config::http::RouteConfig;

/// Why an H2 request cannot be converted; each is answered with `status()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("CONNECT over HTTP/2 is not supported")]
    Connect,
    #[error("no :authority and no single Host field")]
    NoHost,
    #[error("Host field differs from :authority")]
    HostConflict,
    #[error("authority with userinfo")]
    Userinfo,
    #[error("no :path")]
    NoPath,
    #[error("request head: {0}")]
    Head(#[from] H1Error),
}

impl ConvertError {
    pub fn status(self) -> u16 {
        match self {
            ConvertError::Connect => 501,
            ConvertError::Head(e) => e.status(),
            _ => 400,
        }
    }
}

/// Connection-specific fields HTTP/2 does not carry (RFC 9113 §8.2.2); TE is handled apart.
const CONNECTION_SPECIFIC: [&str; 5] = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"];

fn connection_specific(name: &[u8]) -> bool {
    CONNECTION_SPECIFIC.iter().any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
}

/// Fields a trailer section must not carry (RFC 9110 §6.5.1), besides hop-by-hop ones.
fn forbidden_in_trailers(name: &[u8]) -> bool {
    connection_specific(name)
        || ["te", "trailer", "content-length", "content-encoding", "content-type", "content-range", "host"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
}

/// Whether the method defines a request body, so an empty one is sent as `Content-Length: 0`.
fn method_has_body(method: &H2Method) -> bool {
    matches!(*method, H2Method::POST | H2Method::PUT | H2Method::PATCH)
}

/// The HTTP/1.1 request head for an HTTP/2 request; `has_body`: the HEADERS frame did not
/// end the stream.
pub fn request_head(
    parts: &http::request::Parts,
    has_body: bool,
    limits: &H1Limits,
) -> Result<RequestHead, ConvertError> {
    if parts.method == H2Method::CONNECT {
        return Err(ConvertError::Connect);
    }
    let target =
        parts.uri.path_and_query().map(|p| p.as_str()).filter(|p| !p.is_empty()).ok_or(ConvertError::NoPath)?;
    let headers = &parts.headers;
    let host: &[u8] = match parts.uri.authority() {
        Some(authority) => {
            let authority = authority.as_str();
            if authority.contains('@') {
                return Err(ConvertError::Userinfo);
            }
            if headers.get_all(HOST).iter().any(|h| !h.as_bytes().eq_ignore_ascii_case(authority.as_bytes())) {
                return Err(ConvertError::HostConflict);
            }
            authority.as_bytes()
        }
        None => {
            let mut hosts = headers.get_all(HOST).iter();
            match (hosts.next(), hosts.next()) {
                (Some(h), None) if !h.is_empty() => h.as_bytes(),
                _ => return Err(ConvertError::NoHost),
            }
        }
    };
    let mut cookie: Option<Vec<u8>> = None;
    for value in headers.get_all(COOKIE) {
        match &mut cookie {
            None => cookie = Some(value.as_bytes().to_vec()),
            Some(c) => {
                c.extend_from_slice(b"; ");
                c.extend_from_slice(value.as_bytes());
            }
        }
    }
    let has_length = headers.contains_key(http::header::CONTENT_LENGTH);
    let mut fields: Vec<(&[u8], &[u8])> = Vec::with_capacity(headers.len() + 2);
    fields.push((b"host", host));
    for (name, value) in headers {
        let n = name.as_str().as_bytes();
        // A body-less request is sent with its own length, whatever the field said.
        let stale_length = !has_body && name == http::header::CONTENT_LENGTH;
        if connection_specific(n) || name == HOST || name == COOKIE || stale_length {
            continue;
        }
        if n == b"te" && !value.as_bytes().eq_ignore_ascii_case(b"trailers") {
            continue;
        }
        fields.push((n, value.as_bytes()));
    }
    if let Some(c) = &cookie {
        fields.push((b"cookie", c));
    }
    if has_body && !has_length {
        fields.push((b"transfer-encoding", b"chunked"));
    } else if !has_body && method_has_body(&parts.method) {
        fields.push((b"content-length", b"0"));
    }
    let mut out = BytesMut::new();
    encode_request_head(&mut out, parts.method.as_str().as_bytes(), target.as_bytes(), Version::Http11, fields)?;
    Ok(RequestHead::parse(out.freeze(), limits)?)
}

/// The last chunk of a chunked H1 request body carrying the H2 request's trailers.
pub fn request_trailers(trailers: &HeaderMap, out: &mut BytesMut) -> Result<(), H1Error> {
    let fields: Vec<(&[u8], &[u8])> = trailers
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
        .filter(|(n, _)| !forbidden_in_trailers(n))
        .collect();
    encode_last_chunk(out, fields)
}

fn h2_field(name: &[u8], value: &[u8]) -> Option<(HeaderName, HeaderValue)> {
    let name = HeaderName::from_bytes(name).ok()?;
    let value = HeaderValue::from_bytes(value).ok()?;
    Some((name, value))
}

/// The HTTP/2 response for an HTTP/1 response head.
pub fn response_head(head: &ResponseHead, route: Option<&RouteConfig>) -> Response<()> {
    let headers = head.headers();
    let status = head.status();
    let removes: &[String] = route.map_or(&[], |r| &r.response_headers_to_remove);
    let mut map = HeaderMap::with_capacity(headers.len() + route.map_or(0, |r| r.response_headers_to_add.len()));
    let no_length = status == 204 || (100..200).contains(&status);
    for (name, value) in headers.iter() {
        if hop_by_hop(&headers, name)
            || (no_length && name.eq_ignore_ascii_case(b"content-length"))
            || removes.iter().any(|r| name.eq_ignore_ascii_case(r.as_bytes()))
        {
            continue;
        }
        if let Some((n, v)) = h2_field(name, value) {
            map.append(n, v);
        }
    }
    if let Some(route) = route {
        for (name, value) in &route.response_headers_to_add {
            if let Some((n, v)) = h2_field(name.as_bytes(), value.as_bytes()) {
                map.append(n, v);
            }
        }
    }
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    *response.headers_mut() = map;
    response
}

fn hop_by_hop(headers: &Headers<'_>, name: &[u8]) -> bool {
    connection_specific(name) || name.eq_ignore_ascii_case(b"te") || headers.is_hop_by_hop(name)
}

/// The HTTP/2 trailers for an HTTP/1 trailer section (possibly empty after filtering).
pub fn response_trailers(trailers: &Trailers) -> HeaderMap {
    let headers = trailers.headers();
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers.iter() {
        if forbidden_in_trailers(name) || headers.is_hop_by_hop(name) {
            continue;
        }
        if let Some((n, v)) = h2_field(name, value) {
            map.append(n, v);
        }
    }
    map
}

/// The HTTP/2 request for an HTTP/1.1 head (H1 → H2: the head sluice would send an HTTP/1.1
/// upstream, rewritten by the route, sent to an HTTP/2 cluster instead): the request line
/// and `Host` become the pseudo-headers, hop-by-hop fields are dropped (TE too: the caller
/// adds `te: trailers` when the client asked for trailers).
pub fn request_to_h2(head: &RequestHead, scheme: &str) -> Result<http::Request<()>, ConvertError> {
    let headers = head.headers();
    let host = head.host().filter(|h| !h.is_empty()).ok_or(ConvertError::NoHost)?;
    let uri = http::Uri::builder()
        .scheme(scheme)
        .authority(host)
        .path_and_query(head.target())
        .build()
        .map_err(|_| ConvertError::NoPath)?;
    let method = H2Method::from_bytes(head.method().as_bytes())
        .map_err(|_| ConvertError::Head(H1Error::MalformedRequestLine))?;
    let mut request = http::Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let map = request.headers_mut();
    for (name, value) in headers.iter() {
        if name.eq_ignore_ascii_case(b"host") || hop_by_hop(&headers, name) {
            continue;
        }
        if let Some((n, v)) = h2_field(name, value) {
            map.append(n, v);
        }
    }
    Ok(request)
}

/// The response head for an HTTP/2 client from an HTTP/2 upstream (H2 → H2): the route's
/// removals and additions, and no connection-specific field (a peer must not send them,
/// RFC 9113 §8.2.2).
pub fn relay_response_head(parts: &http::response::Parts, route: Option<&RouteConfig>) -> Response<()> {
    let removes: &[String] = route.map_or(&[], |r| &r.response_headers_to_remove);
    let mut response = Response::new(());
    *response.status_mut() = parts.status;
    let map = response.headers_mut();
    for (name, value) in &parts.headers {
        let n = name.as_str().as_bytes();
        if connection_specific(n) || removes.iter().any(|r| n.eq_ignore_ascii_case(r.as_bytes())) {
            continue;
        }
        map.append(name.clone(), value.clone());
    }
    if let Some(route) = route {
        for (name, value) in &route.response_headers_to_add {
            if let Some((n, v)) = h2_field(name.as_bytes(), value.as_bytes()) {
                map.append(n, v);
            }
        }
    }
    response
}

/// HTTP/2 trailers passed from one side to the other, minus connection-specific fields.
pub fn relay_trailers(mut trailers: HeaderMap) -> HeaderMap {
    for name in CONNECTION_SPECIFIC {
        trailers.remove(name);
    }
    trailers.remove("te");
    trailers
}

/// A response sluice answers itself, as HTTP/2: head and body.
pub fn local_response(status: u16, body: &'static str, retry_after: bool) -> (Response<()>, Bytes) {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = response.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if retry_after {
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    (response, Bytes::from_static(body.as_bytes()))
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
