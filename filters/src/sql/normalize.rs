//! Statement text → digest text: the statement's shape with its values taken out, so that
//! `SELECT c FROM sbtest1 WHERE id=42` and `select c from sbtest1 where id = 7 -- x` are
//! one digest, `SELECT c FROM sbtest1 WHERE id = ?`.
//!
//! Hand-written on top of [`Lexer`](super::lexer) rather than built from sqlparser's AST:
//! it runs on every statement on the data path, must not allocate per statement (it
//! writes into a `String` the caller reuses), and must work on any bytes, including text
//! sqlparser cannot parse. sqlparser runs only on a statement-cache miss (`tables`).
//!
//! The rules, modelled on MySQL's statement digests (Performance Schema, MySQL 8.0 manual
//! §29.10 "Performance Schema Statement Digests and Sampling"):
//! - literals become `?`: numbers (integer, decimal, exponent, `0x`/`0b`), a sign directly
//!   before a number where it cannot be binary minus (`= -1`, `(-1`, `LIMIT -1`, but not
//!   `a - 1`), every kind of string (`'…'`, `E'…'`, `X'…'`, MySQL `"…"`, `$tag$…$tag$`;
//!   adjacent strings, which both servers concatenate, become one `?`); parameters `?` and
//!   `$1` become `?` too, so a prepared statement and its text form share a digest;
//!   `TRUE`, `FALSE` and `NULL` stay keywords;
//! - a parenthesised list of only literals after `IN`, and any number of such rows after
//!   `VALUES`, collapse to `(...)`: ORMs vary list lengths per call;
//! - comments are dropped, except MySQL `/*! … */`, whose content is kept as SQL (the
//!   markers and version are dropped) because the server executes it;
//! - keywords (see `keywords`) are upper-cased; identifiers, quoted or not, keep their
//!   spelling;
//! - tokens are separated by one space, except none after `(`/`[`, before `)`/`]`/`,`/`;`,
//!   around `.` and `::`, and between a name and its `(` or `[` (`count(*)`, `t.id`,
//!   `$1::int` → `?::int`). Canonical spacing, not collapsed input spacing, so `id=?` and
//!   `id = ?` are one digest.
//!
//! Bytes that are not UTF-8 become U+FFFD; the digest text is always valid UTF-8. Only the
//! first [`MAX_DIGEST_INPUT`] bytes are looked at ([`Digest::truncated`] says so), which
//! bounds the cost of hostile input. The digest text is never longer than 4 bytes per
//! input byte looked at (one U+FFFD plus a space for a lone invalid byte), and
//! normalizing a digest text gives it back unchanged (tested by a property test).

use super::hash::digest_hash;
use super::keywords::keyword;
use super::lexer::{Lexer, Token, TokenKind};
use super::Dialect;

/// How much statement text the digest looks at. Longer statements are digested on this
/// prefix, and their [`Digest::truncated`] is set.
pub const MAX_DIGEST_INPUT: usize = 64 * 1024;

/// What `normalize` returns besides the digest text it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    /// The digest hash of the digest text (stable across processes).
    pub hash: u64,
    /// The statement was longer than [`MAX_DIGEST_INPUT`]: the digest covers its prefix.
    pub truncated: bool,
}

/// Writes the digest text of `sql` into `out` (cleared first; reuse it across statements
/// to avoid allocating) and returns its hash.
pub fn normalize(sql: &[u8], dialect: Dialect, out: &mut String) -> Digest {
    out.clear();
    let considered = sql.get(..MAX_DIGEST_INPUT).unwrap_or(sql);
    let mut writer = DigestWriter { out, prev: Prev::Start, prev_was_string: false, collapse: Collapse::Idle };
    let mut tokens = Lexer::new(considered, dialect).peekable();
    while let Some(token) = tokens.next() {
        match token.kind {
            TokenKind::Number | TokenKind::Placeholder => writer.literal(false),
            // Adjacent strings are one string to both servers.
            TokenKind::String if writer.prev_was_string => {}
            TokenKind::String => writer.literal(true),
            TokenKind::Operator if is_sign(&token) && !writer.prev.is_value() => {
                if tokens.next_if(|next| next.kind == TokenKind::Number).is_some() {
                    writer.literal(false);
                } else {
                    writer.operator(token.text);
                }
            }
            TokenKind::Operator => writer.operator(token.text),
            TokenKind::Punct => writer.punct(token.text.first().copied().unwrap_or(b'.')),
            TokenKind::Word => match keyword(token.text) {
                Some(keyword) => writer.keyword(keyword),
                None => writer.name(token.text),
            },
            TokenKind::QuotedIdent => writer.name(token.text),
            TokenKind::Other => writer.other(token.text),
        }
    }
    // A statement ends the same with or without its `;` (psql and the mysql CLI send one,
    // drivers do not): one digest for both.
    while out.ends_with(';') || out.ends_with(' ') {
        out.pop();
    }
    Digest { hash: digest_hash(out.as_bytes()), truncated: sql.len() > MAX_DIGEST_INPUT }
}

fn is_sign(token: &Token<'_>) -> bool {
    token.text == b"-" || token.text == b"+"
}

/// What was written last, as far as spacing and sign handling care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prev {
    Start,
    /// `(` or `[`.
    Open,
    Dot,
    /// `::` (PostgreSQL cast).
    Cast,
    Operator,
    /// A keyword that is not a value.
    Keyword,
    /// A name (identifier, quoted identifier, variable): a following `(` or `[` is glued.
    Name,
    /// A literal `?`, `TRUE`/`FALSE`/`NULL`, `END`, `)` or `]`.
    Value,
    /// `,`, `;`, or an unknown byte.
    Separator,
}

impl Prev {
    fn is_value(self) -> bool {
        matches!(self, Prev::Name | Prev::Value)
    }

    /// Two operators are never glued: they would read back as one.
    fn is_operator(self) -> bool {
        matches!(self, Prev::Operator | Prev::Cast)
    }
}

/// Collapsing `IN (?, ?)` and `VALUES (?, ?), (?, ?)` to `(...)`. The list is written as
/// usual while it is scanned; when a list of only literals closes, the output is cut back
/// to where it opened and `(...)` written instead. Any other token abandons the collapse
/// and leaves what was written, so a list with an expression stays as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Collapse {
    Idle,
    /// After `IN` (`rows: false`) or `VALUES` (`rows: true`).
    ExpectOpen {
        rows: bool,
    },
    /// Inside a list opened at output offset `start` (for later VALUES rows: the first
    /// row's offset, so that every further row is cut away too).
    InList {
        start: usize,
        rows: bool,
    },
    /// After a collapsed VALUES row: `,` may bring another.
    AfterRow {
        start: usize,
    },
    /// After `VALUES (...),`: `(` opens another row.
    ExpectRow {
        start: usize,
    },
}

struct DigestWriter<'o> {
    out: &'o mut String,
    prev: Prev,
    prev_was_string: bool,
    collapse: Collapse,
}

impl DigestWriter<'_> {
    /// Writes the separator a token of class `next` needs after what was written.
    fn separate(&mut self, next: Prev, glue_left: bool) {
        let glue = self.out.is_empty()
            || glue_left
            || matches!(self.prev, Prev::Open | Prev::Dot)
            || (next == Prev::Cast && !self.prev.is_operator())
            || (self.prev == Prev::Cast && !next.is_operator());
        if !glue {
            self.out.push(' ');
        }
    }

    fn wrote(&mut self, class: Prev) {
        self.prev = class;
        self.prev_was_string = false;
    }

    /// A token that is not part of a literal list ends any collapse in progress.
    fn abandon_list(&mut self) {
        self.collapse = Collapse::Idle;
    }

    fn literal(&mut self, string: bool) {
        if !matches!(self.collapse, Collapse::InList { .. }) {
            self.abandon_list();
        }
        self.separate(Prev::Value, false);
        self.out.push('?');
        self.wrote(Prev::Value);
        self.prev_was_string = string;
    }

    fn keyword(&mut self, keyword: &'static str) {
        let literal = matches!(keyword, "NULL" | "TRUE" | "FALSE");
        self.collapse = match (self.collapse, keyword) {
            (_, "IN") => Collapse::ExpectOpen { rows: false },
            (_, "VALUES") => Collapse::ExpectOpen { rows: true },
            (Collapse::InList { rows, .. }, "DEFAULT") if rows => self.collapse,
            (Collapse::InList { .. }, _) if literal => self.collapse,
            _ => Collapse::Idle,
        };
        // `CASE … END - 1`: a sign after END is binary minus.
        let class = if literal || keyword == "END" { Prev::Value } else { Prev::Keyword };
        self.separate(class, false);
        self.out.push_str(keyword);
        self.wrote(class);
    }

    /// An identifier as written. One that starts with a digit (MySQL `1st_col`) is not
    /// glued after `.`: `.1` would read back as a number; a MySQL `@var` is not glued
    /// after `::`: `::@` would read back as one operator.
    fn name(&mut self, text: &[u8]) {
        self.abandon_list();
        let first = text.first().copied().unwrap_or(b' ');
        if (self.prev == Prev::Dot && first.is_ascii_digit()) || (self.prev == Prev::Cast && first == b'@') {
            self.out.push(' ');
        } else {
            self.separate(Prev::Name, false);
        }
        push_lossy(self.out, text);
        self.wrote(Prev::Name);
    }

    fn operator(&mut self, text: &[u8]) {
        self.abandon_list();
        let class = if text == b"::" { Prev::Cast } else { Prev::Operator };
        self.separate(class, false);
        push_lossy(self.out, text);
        self.wrote(class);
    }

    fn other(&mut self, text: &[u8]) {
        // Control bytes would make the digest text unreadable in logs: they become U+FFFD,
        // written as a name because that is what U+FFFD reads back as.
        if !text.iter().all(u8::is_ascii_graphic) {
            return self.name("\u{fffd}".as_bytes());
        }
        self.abandon_list();
        self.separate(Prev::Separator, false);
        push_lossy(self.out, text);
        self.wrote(Prev::Separator);
    }

    fn punct(&mut self, byte: u8) {
        match byte {
            b'(' | b'[' => {
                let glue = byte == b'[' || self.prev == Prev::Name;
                self.separate(Prev::Open, glue && self.prev.is_value());
                let start = self.out.len();
                self.collapse = match self.collapse {
                    Collapse::ExpectOpen { rows } if byte == b'(' => Collapse::InList { start, rows },
                    Collapse::ExpectRow { start } if byte == b'(' => Collapse::InList { start, rows: true },
                    _ => Collapse::Idle,
                };
                self.out.push(char::from(byte));
                self.wrote(Prev::Open);
            }
            b')' | b']' => {
                if let Collapse::InList { start, rows } = self.collapse {
                    if byte == b')' && self.prev != Prev::Open {
                        self.out.truncate(start);
                        self.out.push_str("(...)");
                        self.wrote(Prev::Value);
                        self.collapse = if rows { Collapse::AfterRow { start } } else { Collapse::Idle };
                        return;
                    }
                }
                self.abandon_list();
                self.separate(Prev::Value, true);
                self.out.push(char::from(byte));
                self.wrote(Prev::Value);
            }
            b',' | b';' => {
                self.collapse = match self.collapse {
                    Collapse::InList { .. } if byte == b',' => self.collapse,
                    Collapse::AfterRow { start } if byte == b',' => Collapse::ExpectRow { start },
                    _ => Collapse::Idle,
                };
                self.separate(Prev::Separator, true);
                self.out.push(char::from(byte));
                self.wrote(Prev::Separator);
            }
            _ => {
                // `.`: inside a list only as part of a collapsed `(...)` read back.
                if !matches!(self.collapse, Collapse::InList { .. }) {
                    self.abandon_list();
                }
                self.separate(Prev::Dot, true);
                self.out.push('.');
                self.wrote(Prev::Dot);
            }
        }
    }
}

/// Appends `bytes`, with U+FFFD for each invalid UTF-8 sequence (as
/// `String::from_utf8_lossy` does, without allocating).
fn push_lossy(out: &mut String, bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        out.push_str(text);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

#[cfg(test)]
#[path = "tests/normalize.rs"]
mod tests;
