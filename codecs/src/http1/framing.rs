//! How long a message body is: RFC 9112 §6.3, applied strictly.
//!
//! Request smuggling (RFC 9112 §11.2) lives in the gaps between two parsers' answers to
//! this question, so every case where the RFC allows a choice takes the one that leaves no
//! gap, and the rest is an error:
//!
//! - Content-Length *and* Transfer-Encoding: an error in both directions (§6.3 rule 3 says
//!   it "ought to be handled as an error"; forwarding it would need the CL removed).
//! - Content-Length must be 1*DIGIT fitting 64 bits: no sign, no spaces inside, no hex.
//!   Repeated values (several lines, or a comma list) are accepted when all are identical
//!   and refused when they differ (§6.3 rule 5, RFC 9110 §8.6): a recipient that takes any
//!   one of identical values agrees with us.
//! - Transfer-Encoding: a comma list of tokens over all its lines; chunked at most once.
//!   In a request chunked must be last (else 400, rule 4) and every other coding must be
//!   one we know (gzip, deflate, compress and their x- aliases; else 501, §6.1). In a
//!   response, chunked last means chunked, anything else means the body runs to close
//!   (rule 4).
//! - Transfer-Encoding in an HTTP/1.0 message: faulty framing (§6.1), an error.
//! - No body, whatever the fields say: responses to HEAD, 1xx, 204, 304 (rule 1); 2xx to
//!   CONNECT and 101 switch the connection to a tunnel (rule 2).
//! - Otherwise a request without Content-Length or Transfer-Encoding has no body (rule 7)
//!   and such a response is delimited by the close (rule 8).

use super::error::H1Error;
use super::head::{PendingRequest, RequestHead, ResponseHead, Version};
use super::headers::{is_token, trim_ows, Headers};
use super::limits::H1Limits;

/// How the body after a head is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// No body: the message ends with its head.
    None,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// The chunked transfer coding, ending with the last chunk and trailer section.
    Chunked,
    /// Every byte until the server closes the connection (responses only).
    CloseDelimited,
    /// No body; after the head the connection carries opaque bytes both ways (a 101
    /// response, or a 2xx response to CONNECT).
    Tunnel,
}

/// The Content-Length of a message, if it has one.
pub fn content_length(h: &Headers<'_>) -> Result<Option<u64>, H1Error> {
    let mut found = None;
    for value in h.get_all("content-length") {
        for element in value.split(|&b| b == b',') {
            let n = parse_decimal(trim_ows(element)).ok_or(H1Error::InvalidContentLength)?;
            match found {
                Some(m) if m != n => return Err(H1Error::ConflictingContentLength),
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// What Transfer-Encoding says about framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    Absent,
    ChunkedLast,
    /// Present, but chunked is not the final coding (or absent from the list).
    NotChunkedLast,
}

const KNOWN_CODINGS: [&str; 6] = ["gzip", "x-gzip", "deflate", "compress", "x-compress", "chunked"];

fn transfer_coding(h: &Headers<'_>, request: bool) -> Result<Coding, H1Error> {
    if !h.contains("transfer-encoding") {
        return Ok(Coding::Absent);
    }
    let mut chunked_seen = false;
    let mut last_chunked = false;
    let mut any = false;
    for value in h.get_all("transfer-encoding") {
        for element in value.split(|&b| b == b',') {
            // transfer-coding = token *( OWS ";" OWS transfer-parameter ); parameters ignored.
            let name = trim_ows(element.split(|&b| b == b';').next().unwrap_or_default());
            if !is_token(name) {
                return Err(H1Error::InvalidTransferEncoding);
            }
            any = true;
            let chunked = name.eq_ignore_ascii_case(b"chunked");
            if chunked && chunked_seen {
                return Err(H1Error::InvalidTransferEncoding);
            }
            if request && !KNOWN_CODINGS.iter().any(|k| name.eq_ignore_ascii_case(k.as_bytes())) {
                return Err(H1Error::UnknownTransferCoding);
            }
            chunked_seen |= chunked;
            last_chunked = chunked;
        }
    }
    if !any {
        return Err(H1Error::InvalidTransferEncoding);
    }
    Ok(if last_chunked { Coding::ChunkedLast } else { Coding::NotChunkedLast })
}

/// The framing of a message that is not exempt from having a body.
fn framed(version: Version, h: &Headers<'_>, request: bool, limits: &H1Limits) -> Result<BodyKind, H1Error> {
    let coding = transfer_coding(h, request)?;
    let length = content_length(h)?;
    if coding != Coding::Absent {
        if version == Version::Http10 {
            return Err(H1Error::TransferEncodingInHttp10);
        }
        if length.is_some() {
            return Err(H1Error::ContentLengthAndTransferEncoding);
        }
    }
    match (coding, length) {
        (Coding::ChunkedLast, _) => Ok(BodyKind::Chunked),
        (Coding::NotChunkedLast, _) if request => Err(H1Error::ChunkedNotFinal),
        (Coding::NotChunkedLast, _) => Ok(BodyKind::CloseDelimited),
        (Coding::Absent, Some(n)) if n > limits.max_body => Err(H1Error::BodyTooLarge { limit: limits.max_body }),
        (Coding::Absent, Some(0)) => Ok(BodyKind::None),
        (Coding::Absent, Some(n)) => Ok(BodyKind::Length(n)),
        (Coding::Absent, None) if request => Ok(BodyKind::None),
        (Coding::Absent, None) => Ok(BodyKind::CloseDelimited),
    }
}

/// The body framing of a request (RFC 9112 §6.3 rules 3-7).
pub fn request_body(head: &RequestHead, limits: &H1Limits) -> Result<BodyKind, H1Error> {
    framed(head.version(), &head.headers(), true, limits)
}

/// The body framing of a response to `request` (RFC 9112 §6.3 rules 1-8). `None`: a
/// response nobody asked for (a server's 408 before it closes), framed as for a GET.
pub fn response_body(
    head: &ResponseHead,
    request: Option<PendingRequest>,
    limits: &H1Limits,
) -> Result<BodyKind, H1Error> {
    let req = request.unwrap_or_default();
    let status = head.status();
    if status == 101 {
        return if req.upgrade { Ok(BodyKind::Tunnel) } else { Err(H1Error::UnexpectedSwitch) };
    }
    if req.connect && (200..300).contains(&status) {
        return Ok(BodyKind::Tunnel);
    }
    if req.head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(BodyKind::None);
    }
    framed(head.version(), &head.headers(), false, limits)
}
