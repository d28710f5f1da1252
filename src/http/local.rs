//! Responses sluice answers itself (RFC 9110 §15): the codec's refusals (400, 413, 414,
//! 431, 501, always with `Connection: close`), no route (404), rules (403, and 429 with
//! `Retry-After`, RFC 6585 §4), and upstream trouble (502, 503, 504). A short plain-text
//! body says why; a response to HEAD has none (RFC 9110 §9.3.2).

use bytes::{BufMut, Bytes, BytesMut};
use sluice_codecs::http1::{encode_response_head, reason_phrase, Version};

/// Why sluice answered, for the access log and the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalReason {
    BadRequest(u16),
    NoRoute,
    Denied,
    RateLimited,
    ConnectFailed,
    BadGateway,
    Timeout,
}

impl LocalReason {
    pub fn status(self) -> u16 {
        match self {
            LocalReason::BadRequest(s) => s,
            LocalReason::NoRoute => 404,
            LocalReason::Denied => 403,
            LocalReason::RateLimited => 429,
            LocalReason::ConnectFailed => 503,
            LocalReason::BadGateway => 502,
            LocalReason::Timeout => 504,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LocalReason::BadRequest(_) => "bad_request",
            LocalReason::NoRoute => "no_route",
            LocalReason::Denied => "denied",
            LocalReason::RateLimited => "rate_limited",
            LocalReason::ConnectFailed => "upstream_connect_failed",
            LocalReason::BadGateway => "bad_gateway",
            LocalReason::Timeout => "upstream_timeout",
        }
    }

    pub fn body(self) -> &'static str {
        match self {
            LocalReason::BadRequest(_) => "bad request\n",
            LocalReason::NoRoute => "no route for this host and path\n",
            LocalReason::Denied => "denied by policy\n",
            LocalReason::RateLimited => "rate limited\n",
            LocalReason::ConnectFailed => "upstream unavailable\n",
            LocalReason::BadGateway => "bad response from upstream\n",
            LocalReason::Timeout => "upstream timed out\n",
        }
    }
}

/// The whole response: head and (unless `head_only`) body.
pub fn response(reason: LocalReason, version: Version, keep_alive: bool, head_only: bool) -> Bytes {
    let status = reason.status();
    let body = reason.body().as_bytes();
    let len = body.len().to_string();
    let mut fields: Vec<(&[u8], &[u8])> =
        vec![(b"Content-Length", len.as_bytes()), (b"Content-Type", b"text/plain; charset=utf-8")];
    if reason == LocalReason::RateLimited {
        fields.push((b"Retry-After", b"1"));
    }
    match (keep_alive, version) {
        (false, _) => fields.push((b"Connection", b"close")),
        (true, Version::Http10) => fields.push((b"Connection", b"keep-alive")),
        (true, Version::Http11) => {}
    }
    let mut out = BytesMut::with_capacity(160 + body.len());
    // Parts are constants or digits: this cannot fail.
    let _ = encode_response_head(&mut out, Version::Http11, status, reason_phrase(status).as_bytes(), fields);
    if !head_only {
        out.put_slice(body);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_responses() {
        let r = response(LocalReason::RateLimited, Version::Http11, true, false);
        let text = std::str::from_utf8(&r).unwrap();
        assert!(text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"), "{text}");
        assert!(text.contains("Retry-After: 1\r\n") && !text.contains("Connection"), "{text}");
        assert!(text.ends_with("\r\n\r\nrate limited\n"));
        let r = response(LocalReason::NoRoute, Version::Http10, false, true);
        let text = std::str::from_utf8(&r).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 404 Not Found\r\n") && text.ends_with("Connection: close\r\n\r\n"),
            "{text}"
        );
    }
}
