//! Request and response heads: the start line and header fields of one message, parsed by
//! httparse into offsets over the head's frozen bytes, checked beyond what httparse checks,
//! and the facts a proxy derives from them.
//!
//! Spec: RFC 9112 §3 (request line, request target forms §3.2, Host §3.2), §4 (status
//! line), §5 (field lines), §9.3 (persistence); RFC 9110 §7.2 (Host), §7.6.1 (Connection),
//! §7.8 (Upgrade), §10.1.1 (Expect).

use std::mem::MaybeUninit;

use bytes::Bytes;

use super::error::H1Error;
use super::headers::{index, Field, Headers};
use super::limits::{H1Limits, HEADER_CAP};
use super::scan::{LineScan, ScanError};

/// The HTTP/2 connection preface's first line (RFC 9113 §3.4), which parses as a head.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// The protocol version of a message (RFC 9112 §2.3). Other versions are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Version::Http10 => b"HTTP/1.0",
            Version::Http11 => b"HTTP/1.1",
        }
    }
}

/// The request methods whose framing or semantics a proxy must know (RFC 9110 §9);
/// everything else is [`Method::Other`] and passes through (methods are case-sensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    Other,
}

impl Method {
    pub fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"CONNECT" => Method::Connect,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }
}

/// What a response decoder must know about the request a response answers (RFC 9112 §6.3
/// rules 1 and 2, RFC 9110 §15.2.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PendingRequest {
    /// HEAD: the response has no body whatever its fields say.
    pub head: bool,
    /// CONNECT: a 2xx response turns the connection into a tunnel.
    pub connect: bool,
    /// The request asked for an Upgrade: a 101 response turns the connection into a tunnel.
    pub upgrade: bool,
}

type Span = (u32, u32);

/// httparse's defaults are its strict settings: no whitespace before a colon or around the
/// start line's single spaces, no obsolete line folding, no invalid field skipped.
fn strict() -> httparse::ParserConfig {
    httparse::ParserConfig::default()
}

fn span_of(base: &[u8], s: &[u8]) -> Span {
    let from = (s.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize).min(base.len());
    (from as u32, from.saturating_add(s.len()).min(base.len()) as u32)
}

fn slice(raw: &Bytes, (from, to): Span) -> &[u8] {
    raw.get(from as usize..to as usize).unwrap_or_default()
}

fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

fn scratch<'b>() -> [MaybeUninit<httparse::Header<'b>>; HEADER_CAP] {
    [const { MaybeUninit::uninit() }; HEADER_CAP]
}

fn field_error(e: httparse::Error, limits: &H1Limits, request: bool) -> H1Error {
    let start_line = if request { H1Error::MalformedRequestLine } else { H1Error::MalformedStatusLine };
    match e {
        httparse::Error::HeaderName => H1Error::InvalidHeaderName,
        httparse::Error::HeaderValue => H1Error::InvalidHeaderValue,
        // Bare LFs never get here (the scan refuses them): a bad byte where a line ends.
        httparse::Error::NewLine => start_line,
        httparse::Error::TooManyHeaders => H1Error::TooManyHeaders { limit: limits.header_slots() },
        httparse::Error::Version => H1Error::InvalidVersion,
        httparse::Error::Status => H1Error::MalformedStatusLine,
        httparse::Error::Token => start_line,
    }
}

/// The line structure httparse is lenient about (bare LF, bare CR, folding), and the size:
/// `raw` must be exactly one head. The decoders have checked this already while finding
/// the head's end; a head handed to `parse` directly is checked here.
fn check_lines(raw: &[u8], limits: &H1Limits, request: bool) -> Result<(), H1Error> {
    match LineScan::default().scan(raw, limits.max_head, true) {
        Ok(Some(end)) if end == raw.len() => Ok(()),
        Ok(_) if request => Err(H1Error::MalformedRequestLine),
        Ok(_) => Err(H1Error::MalformedStatusLine),
        Err(e) => Err(scan_error(e, limits, request)),
    }
}

/// The error a failed head scan means.
pub(crate) fn scan_error(e: ScanError, limits: &H1Limits, request: bool) -> H1Error {
    match e {
        ScanError::BareLf => H1Error::BareLf,
        ScanError::BareCr => H1Error::BareCr,
        ScanError::ObsFold => H1Error::ObsFold,
        ScanError::TooLarge { first_line: true } if request => H1Error::RequestLineTooLong { limit: limits.max_head },
        ScanError::TooLarge { .. } => H1Error::HeadTooLarge { limit: limits.max_head },
    }
}

fn version(v: Option<u8>) -> Result<Version, H1Error> {
    match v {
        Some(0) => Ok(Version::Http10),
        Some(1) => Ok(Version::Http11),
        _ => Err(H1Error::InvalidVersion),
    }
}

/// Persistence (RFC 9112 §9.3): `close` ends it; HTTP/1.1 persists by default, HTTP/1.0
/// only with `keep-alive`.
fn keep_alive(version: Version, h: &Headers<'_>) -> bool {
    if h.has_token("connection", "close") {
        false
    } else {
        version == Version::Http11 || h.has_token("connection", "keep-alive")
    }
}

/// The protocols asked for, when Upgrade is present and Connection lists it (RFC 9110 §7.8).
fn upgrade<'a>(h: &Headers<'a>) -> Option<&'a [u8]> {
    h.get("upgrade").filter(|_| h.has_token("connection", "upgrade"))
}

/// A request head: method, target, version and fields, as offsets into its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    raw: Bytes,
    method: Span,
    target: Span,
    version: Version,
    fields: Box<[Field]>,
}

impl RequestHead {
    /// Parses exactly one head (it must end with its empty line and fit `limits`).
    pub fn parse(raw: Bytes, limits: &H1Limits) -> Result<RequestHead, H1Error> {
        check_lines(&raw, limits, true)?;
        let trimmed = raw.iter().position(|&b| b != b'\r' && b != b'\n').map_or(&raw[..], |i| &raw[i..]);
        if trimmed.starts_with(H2_PREFACE) {
            return Err(H1Error::Http2Preface);
        }
        let mut slots = scratch();
        let mut req = httparse::Request::new(&mut []);
        let end = match strict().parse_request_with_uninit_headers(&mut req, &raw, &mut slots[..limits.header_slots()])
        {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Err(H1Error::MalformedRequestLine),
            Err(e) => return Err(field_error(e, limits, true)),
        };
        if end != raw.len() {
            return Err(H1Error::MalformedRequestLine);
        }
        let (Some(method), Some(target)) = (req.method, req.path) else { return Err(H1Error::MalformedRequestLine) };
        let version = version(req.version)?;
        check_target(method.as_bytes(), target.as_bytes(), limits)?;
        let head = RequestHead {
            method: span_of(&raw, method.as_bytes()),
            target: span_of(&raw, target.as_bytes()),
            version,
            fields: index(&raw, req.headers),
            raw,
        };
        head.check_host()?;
        Ok(head)
    }

    /// RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host; RFC 9110 §7.2: its value
    /// is `uri-host [ ":" port ]` (empty when the target has no authority).
    fn check_host(&self) -> Result<(), H1Error> {
        let h = self.headers();
        let mut hosts = h.get_all("host");
        match (hosts.next(), hosts.next()) {
            (_, Some(_)) => Err(H1Error::DuplicateHost),
            (None, None) if self.version == Version::Http11 => Err(H1Error::MissingHost),
            (Some(v), None) if !v.iter().all(|&b| is_authority_byte(b)) => Err(H1Error::InvalidHost),
            _ => Ok(()),
        }
    }

    /// The head's bytes as received (what a proxy forwards unchanged).
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn method(&self) -> &str {
        ascii(slice(&self.raw, self.method))
    }

    pub fn method_kind(&self) -> Method {
        Method::from_bytes(slice(&self.raw, self.method))
    }

    /// The request target as sent (origin, absolute, authority or asterisk form).
    pub fn target(&self) -> &str {
        ascii(slice(&self.raw, self.target))
    }

    /// The path of the target without its query: the target itself in origin form, the
    /// path after the authority in absolute form (`/` if none), the whole target otherwise.
    pub fn path(&self) -> &str {
        let t = self.target();
        let no_query = t.split_once('?').map_or(t, |(p, _)| p);
        if t.starts_with('/') {
            return no_query;
        }
        match no_query.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => no_query,
        }
    }

    /// The query after `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, q)| q)
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn headers(&self) -> Headers<'_> {
        Headers::new(&self.raw, &self.fields)
    }

    pub fn host(&self) -> Option<&[u8]> {
        self.headers().get("host")
    }

    /// Whether the connection may carry another request after this one (RFC 9112 §9.3).
    pub fn keep_alive(&self) -> bool {
        keep_alive(self.version, &self.headers())
    }

    /// The Upgrade protocols asked for (RFC 9110 §7.8; ignored in HTTP/1.0 requests).
    pub fn upgrade(&self) -> Option<&[u8]> {
        if self.version == Version::Http10 {
            return None;
        }
        upgrade(&self.headers())
    }

    /// `Expect: 100-continue` in an HTTP/1.1 request (RFC 9110 §10.1.1).
    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11
            && self.headers().get("expect").is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"))
    }

    /// What the response decoder needs to know about this request.
    pub fn pending(&self) -> PendingRequest {
        let m = self.method_kind();
        PendingRequest { head: m == Method::Head, connect: m == Method::Connect, upgrade: self.upgrade().is_some() }
    }
}

/// RFC 3986 authority characters (reg-name, IP literal, port); no userinfo in Host.
fn is_authority_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%:[]".contains(&b)
}

/// RFC 9112 §3.2: origin-form (`/path?q`), absolute-form (`scheme:...`), authority-form
/// (`host:port`, CONNECT only), asterisk-form (`*`, OPTIONS only). Bytes are visible ASCII;
/// a fragment is never part of a target.
fn check_target(method: &[u8], target: &[u8], limits: &H1Limits) -> Result<(), H1Error> {
    if target.len() > limits.max_target {
        return Err(H1Error::TargetTooLong { len: target.len(), limit: limits.max_target });
    }
    if !target.iter().all(|&b| b.is_ascii_graphic() && b != b'#') {
        return Err(H1Error::InvalidTarget);
    }
    let ok = if method == b"CONNECT" {
        // uri-host ":" port, with a port (RFC 9110 §9.3.6).
        match target.iter().rposition(|&b| b == b':') {
            Some(i) => {
                let (host, port) = (&target[..i], &target[i + 1..]);
                !host.is_empty()
                    && host.iter().all(|&b| is_authority_byte(b))
                    && !port.is_empty()
                    && port.iter().all(u8::is_ascii_digit)
            }
            None => false,
        }
    } else if target == b"*" {
        method == b"OPTIONS"
    } else if target.starts_with(b"/") {
        true
    } else {
        // absolute-URI: scheme ":" hier-part; scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
        match target.iter().position(|&b| b == b':') {
            Some(i) => {
                let scheme = &target[..i];
                scheme.first().is_some_and(u8::is_ascii_alphabetic)
                    && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            }
            None => false,
        }
    };
    if ok {
        Ok(())
    } else {
        Err(H1Error::InvalidTarget)
    }
}

/// A response head: version, status, reason and fields, as offsets into its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    raw: Bytes,
    version: Version,
    status: u16,
    reason: Span,
    fields: Box<[Field]>,
}

impl ResponseHead {
    /// Parses exactly one head (it must end with its empty line); see [`RequestHead::parse`].
    pub fn parse(raw: Bytes, limits: &H1Limits) -> Result<ResponseHead, H1Error> {
        check_lines(&raw, limits, false)?;
        let mut slots = scratch();
        let mut res = httparse::Response::new(&mut []);
        let end = match strict().parse_response_with_uninit_headers(&mut res, &raw, &mut slots[..limits.header_slots()])
        {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Err(H1Error::MalformedStatusLine),
            Err(e) => return Err(field_error(e, limits, false)),
        };
        if end != raw.len() {
            return Err(H1Error::MalformedStatusLine);
        }
        let version = version(res.version)?;
        let status = res.code.filter(|&c| c >= 100).ok_or(H1Error::MalformedStatusLine)?;
        let reason = span_of(&raw, res.reason.unwrap_or_default().as_bytes());
        let fields = index(&raw, res.headers);
        Ok(ResponseHead { raw, version, status, reason, fields })
    }

    /// The head's bytes as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase (may be empty; obs-text is allowed, so not necessarily UTF-8).
    pub fn reason(&self) -> &[u8] {
        slice(&self.raw, self.reason)
    }

    pub fn headers(&self) -> Headers<'_> {
        Headers::new(&self.raw, &self.fields)
    }

    /// A 1xx response other than 101: the final response to the same request follows
    /// (RFC 9110 §15.2).
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// Whether the connection may carry another exchange after this response (RFC 9112
    /// §9.3; a close-delimited body ends the connection whatever this says).
    pub fn keep_alive(&self) -> bool {
        keep_alive(self.version, &self.headers())
    }

    /// The protocol switched to, for a 101 (RFC 9110 §7.8).
    pub fn upgrade(&self) -> Option<&[u8]> {
        upgrade(&self.headers())
    }
}
