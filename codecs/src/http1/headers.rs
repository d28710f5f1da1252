//! Header fields as an index of offsets into the frozen bytes of their head or trailer
//! section: no field is copied. Lookups are by case-insensitive name (RFC 9110 §5.1);
//! list-valued fields split on commas with optional whitespace (RFC 9110 §5.6.1).

use std::ops::Range;

/// One field line: where its name and value sit in the section's bytes, and where the line
/// (name through CRLF) ends, so a filter can drop or copy whole lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: (u32, u32),
    pub(crate) value: (u32, u32),
    pub(crate) line_end: u32,
}

/// Builds the index from httparse's parsed fields, which borrow `base`.
pub(crate) fn index(base: &[u8], parsed: &[httparse::Header<'_>]) -> Box<[Field]> {
    let start = base.as_ptr() as usize;
    // httparse hands out sub-slices of `base`, so these differences are in range; a section
    // is capped far below 4 GiB by the limits.
    let span = |s: &[u8]| {
        let from = (s.as_ptr() as usize).wrapping_sub(start).min(base.len());
        let to = from.saturating_add(s.len()).min(base.len());
        (from as u32, to as u32)
    };
    parsed
        .iter()
        .map(|h| {
            let name = span(h.name.as_bytes());
            let value = span(h.value);
            let end = value.1 as usize;
            let line_end = base.get(end..).and_then(|r| memchr::memchr(b'\n', r)).map_or(base.len(), |i| end + i + 1);
            Field { name, value, line_end: line_end as u32 }
        })
        .collect()
}

/// The header (or trailer) fields of one section, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Headers<'a> {
    raw: &'a [u8],
    fields: &'a [Field],
}

/// Field names a proxy never forwards (RFC 9110 §7.6.1), besides those Connection lists.
pub const HOP_BY_HOP: [&str; 6] =
    ["connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade"];

impl<'a> Headers<'a> {
    pub(crate) fn new(raw: &'a [u8], fields: &'a [Field]) -> Self {
        Headers { raw, fields }
    }

    fn slice(&self, (from, to): (u32, u32)) -> &'a [u8] {
        self.raw.get(from as usize..to as usize).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Every field in wire order: (name as sent, value without surrounding whitespace).
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let this = *self;
        self.fields.iter().map(move |f| (this.slice(f.name), this.slice(f.value)))
    }

    /// Every field with the byte range of its whole line (name through CRLF) in the section.
    pub fn lines(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8], Range<usize>)> + 'a {
        let this = *self;
        self.fields
            .iter()
            .map(move |f| (this.slice(f.name), this.slice(f.value), f.name.0 as usize..f.line_end as usize))
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.get_all(name).next()
    }

    /// Every value of `name` (case-insensitive), in wire order.
    pub fn get_all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        self.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }

    /// How many field lines are named `name`.
    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The elements of a list-valued field over all its lines: split on commas, optional
    /// whitespace trimmed, empty elements skipped (RFC 9110 §5.6.1).
    pub fn tokens<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        self.get_all(name).flat_map(|v| v.split(|&b| b == b',')).map(trim_ows).filter(|t| !t.is_empty())
    }

    /// Whether the list-valued field `name` has the element `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Whether a proxy must drop `name` when forwarding: a standard hop-by-hop field or one
    /// the Connection field lists (RFC 9110 §7.6.1).
    pub fn is_hop_by_hop(&self, name: &[u8]) -> bool {
        HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
            || self.tokens("connection").any(|t| t.eq_ignore_ascii_case(name))
    }
}

/// Strips optional whitespace (SP, HTAB) from both ends.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// RFC 9110 §5.6.2 tchar.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}
