//! Zero-copy views over complete frames: a request as a [`Command`] (name and argument
//! slices), a reply as a [`Reply`] (its kind, error prefix, first element).

use super::error::RespError;
use super::scanner::{find_lf, parse_integer, parse_len, RespLimits};

/// How many leading arguments a [`Command`] remembers the place of: the name, the
/// subcommand and the usual key positions, so looking at them does not walk the frame again.
const CACHED: usize = 4;

/// A client command: an array of bulk strings, or an inline command line.
#[derive(Clone, Copy, Debug)]
pub struct Command<'a> {
    frame: &'a [u8],
    argc: usize,
    /// Offset of the first argument (its `$` header, or its first byte when inline).
    first: usize,
    inline: bool,
    /// (payload offset, length) of the first arguments of an array command.
    heads: [(usize, usize); CACHED],
    /// Offset of the header of argument `CACHED`.
    rest: usize,
}

impl<'a> Command<'a> {
    /// Views a complete request frame.
    pub fn parse(frame: &'a [u8]) -> Result<Self, RespError> {
        if frame.first() == Some(&b'*') {
            let lf = find_lf(frame).ok_or(RespError::MissingCrlf)?;
            let argc = parse_len(&frame[1..lf.saturating_sub(1)], true)?.unwrap_or(0);
            // Every element must be a bulk string (what Redis itself requires).
            return Self::array(frame, argc as usize, lf + 1, usize::MAX).ok_or(RespError::NotACommand);
        }
        let command = Command { frame, argc: 0, first: 0, inline: true, heads: [(0, 0); CACHED], rest: 0 };
        let mut argc = 0;
        let mut rest = command.line();
        while let Some((_, tail)) = next_inline_arg(rest)? {
            argc += 1;
            rest = tail;
        }
        Ok(Command { argc, ..command })
    }

    /// Finds and views, in one pass, a complete command in the form clients send: an array
    /// of bulk strings at the start of `buf`. Returns the frame's length and its view, or
    /// `None` when the bytes are anything else (inline, incomplete, malformed or over a
    /// limit): the caller then takes the [`FrameScanner`](super::FrameScanner) path, which
    /// resumes across reads and reports errors. Accepts only what the scanner accepts.
    pub fn scan(buf: &'a [u8], limits: &RespLimits) -> Option<(usize, Command<'a>)> {
        if buf.first() != Some(&b'*') {
            return None;
        }
        let lf = find_lf(&buf[..buf.len().min(22)])?;
        let argc = parse_len(buf.get(1..lf.checked_sub(1)?)?, false).ok()?? as usize;
        if argc > limits.max_aggregate_len || buf[lf - 1] != b'\r' {
            return None;
        }
        let command = Self::array(buf, argc, lf + 1, limits.max_bulk_len)?;
        Some((command.frame.len(), command))
    }

    /// Views the `argc` bulk strings starting at `first` as a command, remembering where
    /// the first ones are; `None` when one is not a complete bulk string of at most
    /// `max_bulk` bytes. The view's frame ends after the last argument.
    fn array(buf: &'a [u8], argc: usize, first: usize, max_bulk: usize) -> Option<Self> {
        let mut command = Command { frame: buf, argc, first, inline: false, heads: [(0, 0); CACHED], rest: first };
        let mut pos = first;
        for i in 0..argc {
            let (start, len) = bulk_span(buf, pos)?;
            if len > max_bulk {
                return None;
            }
            pos = start + len + 2;
            if i < CACHED {
                command.heads[i] = (start, len);
                command.rest = pos;
            }
        }
        command.frame = &buf[..pos];
        Some(command)
    }

    pub fn argc(&self) -> usize {
        self.argc
    }

    pub fn is_inline(&self) -> bool {
        self.inline
    }

    /// The command name as sent (any case).
    pub fn name(&self) -> Option<&'a [u8]> {
        self.args().next()
    }

    pub fn arg(&self, index: usize) -> Option<&'a [u8]> {
        self.args().nth(index)
    }

    pub fn args(&self) -> Args<'a> {
        let (pos, cached) = if self.inline { (self.first, 0) } else { (self.rest, self.argc.min(CACHED)) };
        Args { frame: self.frame, pos, left: self.argc, inline: self.inline, heads: self.heads, next_cached: 0, cached }
    }

    /// The inline line without its line ending.
    fn line(&self) -> &'a [u8] {
        inline_line(self.frame)
    }
}

fn inline_line(frame: &[u8]) -> &[u8] {
    let line = frame.strip_suffix(b"\n").unwrap_or(frame);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The arguments of a [`Command`], as slices of its frame.
#[derive(Clone)]
pub struct Args<'a> {
    frame: &'a [u8],
    /// Where the next uncached argument starts.
    pos: usize,
    left: usize,
    inline: bool,
    heads: [(usize, usize); CACHED],
    next_cached: usize,
    cached: usize,
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.next_cached < self.cached {
            let (start, len) = self.heads[self.next_cached];
            self.next_cached += 1;
            return self.frame.get(start..start + len);
        }
        if self.inline {
            let line = inline_line(self.frame);
            let (arg, rest) = next_inline_arg(&line[self.pos.min(line.len())..]).ok()??;
            self.pos = line.len() - rest.len();
            return Some(arg);
        }
        let (arg, next) = bulk_at(self.frame, self.pos)?;
        self.pos = next;
        Some(arg)
    }
}

/// The payload (offset, length) of the bulk string whose header starts at `pos`: the
/// command fast path, one pass over `$<digits>\r\n` with no separate line search.
fn bulk_span(frame: &[u8], pos: usize) -> Option<(usize, usize)> {
    if frame.get(pos) != Some(&b'$') {
        return None;
    }
    let mut len: usize = 0;
    let mut i = pos + 1;
    loop {
        match *frame.get(i)? {
            d @ b'0'..=b'9' if i - pos <= 19 => {
                if d == b'0' && i == pos + 1 && frame.get(i + 1) != Some(&b'\r') {
                    return None; // not canonical: `$03`
                }
                len = len * 10 + usize::from(d - b'0');
            }
            b'\r' if i > pos + 1 && frame.get(i + 1) == Some(&b'\n') => break,
            _ => return None,
        }
        i += 1;
    }
    let start = i + 2;
    let end = start.checked_add(len)?;
    (frame.get(end..end + 2)? == b"\r\n").then_some((start, len))
}

/// The bulk string whose header starts at `pos`: its payload and the offset after it.
fn bulk_at(frame: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    if frame.get(pos) != Some(&b'$') {
        return None;
    }
    let lf = pos + find_lf(&frame[pos..])?;
    let len = parse_len(&frame[pos + 1..lf.checked_sub(1)?], false).ok()?? as usize;
    let start = lf + 1;
    let payload = frame.get(start..start.checked_add(len)?)?;
    Some((payload, start + len + 2))
}

/// An inline argument and the rest of the line after it.
type InlineSplit<'a> = (&'a [u8], &'a [u8]);

/// Splits the next inline argument off `line`: whitespace-separated, or quoted with `"`
/// or `'`. A quoted argument is the text between the quotes as sent (escapes are not
/// interpreted: the view never copies).
fn next_inline_arg(line: &[u8]) -> Result<Option<InlineSplit<'_>>, RespError> {
    let start = match line.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) => i,
        None => return Ok(None),
    };
    let line = &line[start..];
    match line[0] {
        quote @ (b'"' | b'\'') => {
            let mut i = 1;
            while i < line.len() {
                match line[i] {
                    b'\\' if quote == b'"' => i += 2,
                    b if b == quote => {
                        let after = &line[i + 1..];
                        if after.first().is_some_and(|b| !b.is_ascii_whitespace()) {
                            return Err(RespError::UnbalancedQuotes);
                        }
                        return Ok(Some((&line[1..i], after)));
                    }
                    _ => i += 1,
                }
            }
            Err(RespError::UnbalancedQuotes)
        }
        _ => {
            let end = line.iter().position(u8::is_ascii_whitespace).unwrap_or(line.len());
            Ok(Some((&line[..end], &line[end..])))
        }
    }
}

/// What kind of value a reply is (after any attributes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    SimpleString,
    Error,
    Integer,
    BulkString,
    /// `$-1`, `*-1` or `_`.
    Null,
    Array,
    Map,
    Set,
    Push,
    Boolean,
    Double,
    BigNumber,
    BulkError,
    Verbatim,
}

/// A complete reply frame.
#[derive(Clone, Copy, Debug)]
pub struct Reply<'a> {
    frame: &'a [u8],
    /// Offset of the value, past any attributes.
    value: usize,
}

impl<'a> Reply<'a> {
    /// The length of a complete simple reply at the start of `buf` (`+OK`, `-ERR …`, a
    /// bulk string), found in one pass; `None` for anything else, incomplete or over a
    /// limit, which the caller leaves to the [`FrameScanner`](super::FrameScanner). Accepts
    /// only what the scanner accepts.
    pub fn scan_simple(buf: &[u8], limits: &RespLimits) -> Option<usize> {
        match buf.first()? {
            b'+' | b'-' => {
                let lf = find_lf(&buf[..buf.len().min(limits.max_line_len + 3)])?;
                (lf > 1 && buf[lf - 1] == b'\r').then_some(lf + 1)
            }
            b'$' => {
                let (start, len) = bulk_span(buf, 0)?;
                (len <= limits.max_bulk_len).then_some(start + len + 2)
            }
            _ => None,
        }
    }

    pub fn parse(frame: &'a [u8]) -> Self {
        let mut value = 0;
        while frame.get(value) == Some(&b'|') {
            match skip_attribute(frame, value) {
                Some(next) => value = next,
                None => break,
            }
        }
        Reply { frame, value }
    }

    pub fn kind(&self) -> ReplyKind {
        let line = self.header_line();
        match self.frame.get(self.value) {
            Some(b'+') => ReplyKind::SimpleString,
            Some(b'-') => ReplyKind::Error,
            Some(b':') => ReplyKind::Integer,
            Some(b'$') if line == b"-1" => ReplyKind::Null,
            Some(b'$') => ReplyKind::BulkString,
            Some(b'*') if line == b"-1" => ReplyKind::Null,
            Some(b'*') => ReplyKind::Array,
            Some(b'%') => ReplyKind::Map,
            Some(b'~') => ReplyKind::Set,
            Some(b'>') => ReplyKind::Push,
            Some(b'#') => ReplyKind::Boolean,
            Some(b',') => ReplyKind::Double,
            Some(b'(') => ReplyKind::BigNumber,
            Some(b'!') => ReplyKind::BulkError,
            Some(b'=') => ReplyKind::Verbatim,
            _ => ReplyKind::Null,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self.kind(), ReplyKind::Error | ReplyKind::BulkError)
    }

    /// For an error, its first word (`ERR`, `WRONGTYPE`, `MOVED`, `NOAUTH`, …).
    pub fn error_prefix(&self) -> Option<&'a [u8]> {
        let text = match self.kind() {
            ReplyKind::Error => self.header_line(),
            ReplyKind::BulkError => bulk_payload(self.frame, self.value)?,
            _ => return None,
        };
        Some(&text[..text.iter().position(|b| *b == b' ').unwrap_or(text.len())])
    }

    /// The simple string's text (`OK`, `QUEUED`, `PONG`).
    pub fn simple_string(&self) -> Option<&'a [u8]> {
        (self.kind() == ReplyKind::SimpleString).then(|| self.header_line())
    }

    pub fn integer(&self) -> Option<i64> {
        (self.kind() == ReplyKind::Integer).then(|| parse_integer(self.header_line()).ok()).flatten()
    }

    /// Elements of an array, set or push (`None` otherwise).
    pub fn element_count(&self) -> Option<u64> {
        match self.kind() {
            ReplyKind::Array | ReplyKind::Set | ReplyKind::Push => parse_len(self.header_line(), false).ok().flatten(),
            _ => None,
        }
    }

    /// The first element of an aggregate when it is a bulk or simple string (`message`,
    /// `subscribe`, `pmessage`, …), lower- or upper-case as sent.
    pub fn first_element(&self) -> Option<&'a [u8]> {
        if !matches!(self.kind(), ReplyKind::Array | ReplyKind::Set | ReplyKind::Push) || self.element_count()? == 0 {
            return None;
        }
        let first = self.value + find_lf(&self.frame[self.value..])? + 1;
        match self.frame.get(first)? {
            b'$' => bulk_payload(self.frame, first),
            b'+' => Some(line_at(self.frame, first)?),
            _ => None,
        }
    }

    fn header_line(&self) -> &'a [u8] {
        line_at(self.frame, self.value).unwrap_or_default()
    }
}

/// The text of the header line at `pos`, without type byte and CRLF.
fn line_at(frame: &[u8], pos: usize) -> Option<&[u8]> {
    let lf = pos + find_lf(frame.get(pos..)?)?;
    frame.get(pos + 1..lf.checked_sub(1)?)
}

fn bulk_payload(frame: &[u8], pos: usize) -> Option<&[u8]> {
    let line = line_at(frame, pos)?;
    let len = parse_len(line, false).ok()?? as usize;
    let start = pos + 1 + line.len() + 2;
    frame.get(start..start.checked_add(len)?)
}

/// The offset just past the attribute map starting at `pos` (not the value it decorates).
fn skip_attribute(frame: &[u8], pos: usize) -> Option<usize> {
    let line = line_at(frame, pos)?;
    let pairs = parse_len(line, false).ok()??;
    let mut at = pos + 1 + line.len() + 2;
    for _ in 0..pairs.checked_mul(2)? {
        at = skip_element(frame, at)?;
    }
    Some(at)
}

/// The offset just past the element starting at `pos` in a frame the scanner accepted.
/// Iterative: a count of elements still to skip.
fn skip_element(frame: &[u8], mut pos: usize) -> Option<usize> {
    let mut left: u64 = 1;
    while left > 0 {
        let ty = *frame.get(pos)?;
        let line = line_at(frame, pos)?;
        let next = pos + 1 + line.len() + 2;
        left -= 1;
        pos = match ty {
            b'$' | b'!' | b'=' => match parse_len(line, true).ok()? {
                Some(len) => next.checked_add(len as usize)? + 2,
                None => next,
            },
            b'*' | b'~' | b'>' => {
                left += parse_len(line, true).ok()?.unwrap_or(0);
                next
            }
            b'%' => {
                left += parse_len(line, false).ok()??.checked_mul(2)?;
                next
            }
            b'|' => {
                // Attribute pairs plus the value they decorate.
                left += parse_len(line, false).ok()??.checked_mul(2)? + 1;
                next
            }
            _ => next,
        };
    }
    (pos <= frame.len()).then_some(pos)
}
