//! The one SQL tokenizer behind `normalize`, `verb`, `split` and the fallback table scan:
//! a single forward pass over bytes that cuts statement text into tokens (words, quoted
//! identifiers, string and number literals, parameters, punctuation, operator runs) and
//! skips whitespace and comments. It never allocates, never fails and never looks back:
//! every byte is examined a bounded number of times (closing quotes and comment ends are
//! found with `memchr`/`memmem`), so cost is linear in the input.
//!
//! Lexical rules, per dialect:
//! - MySQL 8.0 manual §11.1 "Literal Values", §11.2 "Schema Object Names", §11.7
//!   "Comments": `'…'` and `"…"` strings with `''` and backslash escapes (default
//!   `sql_mode`, no `ANSI_QUOTES`/`NO_BACKSLASH_ESCAPES`), back-quoted identifiers, `#` and
//!   `-- ` (dash dash *space*) line comments, non-nesting `/* */`, and `/*! … */` /
//!   MariaDB `/*M! … */` executable comments whose content is lexed as SQL (the server runs
//!   it), `@var` / `@@var` variables.
//! - PostgreSQL manual §4.1 "Lexical Structure": `'…'` with only `''` escapes
//!   (`standard_conforming_strings = on`), `E'…'` with backslash escapes, `$tag$…$tag$`
//!   dollar quoting, `"…"` identifiers, `$1` parameters, `--` line comments and *nesting*
//!   `/* */` comments, and §4.1.3's rule that a multi-character operator cannot end in `+`
//!   or `-` unless it contains one of `~ ! @ # % ^ & | \` ?` (so `=-1` is `=` then `-1`).
//!   That rule is applied to MySQL too: MySQL has no such operators, and it makes `a=-1`
//!   lex the same in both.
//!
//! Unterminated strings, identifiers and comments run to the end of the input.

use memchr::{memchr, memchr2, memmem};

use super::Dialect;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// An unquoted identifier or keyword; also MySQL `@var` and MySQL identifiers that
    /// start with digits (`1st_col`).
    Word,
    /// A quoted identifier, quotes included: MySQL `` `x` ``, PostgreSQL `"x"`.
    QuotedIdent,
    /// Any string literal, prefix and quotes included: `'…'`, `E'…'`, `X'…'`, `B'…'`,
    /// `N'…'`, MySQL `"…"`, PostgreSQL `$tag$…$tag$`.
    String,
    /// A numeric literal without sign: `1`, `1.5`, `.5`, `1e-3`, `0x1F`, `0b101`.
    Number,
    /// A bind parameter: `?`, or PostgreSQL `$1`.
    Placeholder,
    /// One of `( ) [ ] , ; .`
    Punct,
    /// A run of operator characters (`=`, `<>`, `::`, `->>`, `@>`, `*`).
    Operator,
    /// Any other single byte.
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub kind: TokenKind,
    /// The token's bytes as written.
    pub text: &'a [u8],
    /// Offset of the first byte in the lexer's input.
    pub start: usize,
}

impl Token<'_> {
    pub fn is_punct(&self, byte: u8) -> bool {
        self.kind == TokenKind::Punct && self.text.first() == Some(&byte)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Lexer<'a> {
    input: &'a [u8],
    pos: usize,
    dialect: Dialect,
    /// Inside MySQL `/*! … */`: the next `*/` closes it instead of being an operator.
    in_executable_comment: bool,
}

pub(crate) fn is_word_start(byte: u8, dialect: Dialect) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80 || (byte == b'$' && dialect == Dialect::MySql)
}

pub(crate) fn is_word_continue(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80
}

fn is_operator_char(byte: u8, dialect: Dialect) -> bool {
    match byte {
        b'+' | b'-' | b'*' | b'/' | b'<' | b'>' | b'=' | b'~' | b'!' | b'@' | b'%' | b'^' | b'&' | b'|' | b':' => true,
        // MySQL: `#` starts a comment and `` ` `` an identifier.
        b'#' | b'`' => dialect == Dialect::Postgres,
        _ => false,
    }
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a [u8], dialect: Dialect) -> Self {
        Lexer { input, pos: 0, dialect, in_executable_comment: false }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.input.get(at).copied()
    }

    fn rest(&self, from: usize) -> &'a [u8] {
        self.input.get(from..).unwrap_or(&[])
    }

    /// Does a comment (or, inside `/*! */`, its end) start at `at`?
    fn comment_starts_at(&self, at: usize) -> bool {
        match (self.byte(at), self.byte(at + 1)) {
            (Some(b'-'), Some(b'-')) => match self.dialect {
                Dialect::Postgres => true,
                // MySQL §11.7: "--" must be followed by whitespace or a control character.
                Dialect::MySql => self.byte(at + 2).is_none_or(|b| b <= b' '),
            },
            (Some(b'/'), Some(b'*')) => true,
            (Some(b'*'), Some(b'/')) => self.in_executable_comment,
            (Some(b'#'), _) => self.dialect == Dialect::MySql,
            _ => false,
        }
    }

    /// MySQL `--` without the space is two minus signs, not a comment; an operator still
    /// ends before it, so that no operator ends in `--` (the digest puts a space after an
    /// operator, and `@-- ` would read back as a comment).
    fn mysql_double_dash_at(&self, at: usize) -> bool {
        self.dialect == Dialect::MySql && self.byte(at) == Some(b'-') && self.byte(at + 1) == Some(b'-')
    }

    fn skip_trivia(&mut self) {
        while let Some(byte) = self.byte(self.pos) {
            if is_space(byte) {
                self.pos += 1;
            } else if !self.comment_starts_at(self.pos) {
                return;
            } else if byte == b'-' || byte == b'#' {
                self.pos = memchr(b'\n', self.rest(self.pos)).map_or(self.input.len(), |at| self.pos + at + 1);
            } else if byte == b'*' {
                // `*/` closing a MySQL executable comment.
                self.pos += 2;
                self.in_executable_comment = false;
            } else {
                self.skip_block_comment();
            }
        }
    }

    /// At `/*`: skip the comment, or enter a MySQL executable comment (skipping `/*!`,
    /// `/*M!` and the optional version number) so that its content is lexed as SQL.
    fn skip_block_comment(&mut self) {
        let body = self.pos + 2;
        if self.dialect == Dialect::MySql {
            let marker = match (self.byte(body), self.byte(body + 1)) {
                (Some(b'!'), _) => Some(1),
                (Some(b'M'), Some(b'!')) => Some(2),
                _ => None,
            };
            if let Some(marker_len) = marker {
                let digits = self.rest(body + marker_len).iter().take(6).take_while(|b| b.is_ascii_digit()).count();
                self.pos = body + marker_len + digits;
                self.in_executable_comment = true;
                return;
            }
            self.pos = memmem::find(self.rest(body), b"*/").map_or(self.input.len(), |at| body + at + 2);
            return;
        }
        // PostgreSQL block comments nest (§4.1.5).
        let mut depth = 1usize;
        let mut at = body;
        while let Some(offset) = memchr2(b'/', b'*', self.rest(at)) {
            at += offset;
            match (self.byte(at), self.byte(at + 1)) {
                (Some(b'/'), Some(b'*')) => {
                    depth += 1;
                    at += 2;
                }
                (Some(b'*'), Some(b'/')) => {
                    depth -= 1;
                    at += 2;
                    if depth == 0 {
                        self.pos = at;
                        return;
                    }
                }
                _ => at += 1,
            }
        }
        self.pos = self.input.len();
    }

    /// The end of a quoted run whose opening quote is just before `from`: after the closing
    /// quote (a doubled quote is an escaped one), or the end of input.
    fn quoted_end(&self, from: usize, quote: u8, backslash_escapes: bool) -> usize {
        let mut at = from;
        loop {
            let rest = self.rest(at);
            let found = if backslash_escapes { memchr2(quote, b'\\', rest) } else { memchr(quote, rest) };
            let Some(offset) = found else { return self.input.len() };
            at += offset;
            // A backslash escapes the next byte; a doubled quote is one quote.
            if self.byte(at) == Some(b'\\') || self.byte(at + 1) == Some(quote) {
                at += 2;
            } else {
                return at + 1;
            }
            if at >= self.input.len() {
                return self.input.len();
            }
        }
    }

    fn word_end(&self, from: usize) -> usize {
        from + self.rest(from).iter().take_while(|&&b| is_word_continue(b)).count()
    }

    fn digits_end(&self, from: usize, is_digit: fn(&u8) -> bool) -> usize {
        from + self.rest(from).iter().take_while(|b| is_digit(b)).count()
    }

    /// At a digit, or `.` followed by a digit.
    fn number(&mut self, start: usize) -> TokenKind {
        let radix_digit: Option<fn(&u8) -> bool> = match (self.byte(start), self.byte(start + 1)) {
            (Some(b'0'), Some(b'x' | b'X')) => Some(u8::is_ascii_hexdigit),
            (Some(b'0'), Some(b'b' | b'B')) => Some(|b: &u8| matches!(b, b'0' | b'1')),
            _ => None,
        };
        if let Some(is_digit) = radix_digit {
            let end = self.digits_end(start + 2, is_digit);
            if end > start + 2 {
                return self.number_or_word(end);
            }
        }
        let mut end = self.digits_end(start, u8::is_ascii_digit);
        let integer = end > start;
        if self.byte(end) == Some(b'.') {
            end = self.digits_end(end + 1, u8::is_ascii_digit);
        }
        if matches!(self.byte(end), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.byte(end + 1), Some(b'+' | b'-')));
            if self.byte(end + 1 + sign).is_some_and(|b| b.is_ascii_digit()) {
                end = self.digits_end(end + 1 + sign, u8::is_ascii_digit);
            }
        }
        if integer && end == self.digits_end(start, u8::is_ascii_digit) {
            return self.number_or_word(end);
        }
        self.pos = end;
        TokenKind::Number
    }

    /// After the digits of an integer: MySQL lets identifiers start with digits (`1st`,
    /// `0xZZ`), so word characters straight after make the whole run a word.
    fn number_or_word(&mut self, end: usize) -> TokenKind {
        if self.byte(end).is_some_and(is_word_continue) {
            self.pos = self.word_end(end);
            TokenKind::Word
        } else {
            self.pos = end;
            TokenKind::Number
        }
    }

    /// PostgreSQL at `$`: `$1`, `$tag$…$tag$`, or a lone `$`.
    fn dollar(&mut self, start: usize) -> TokenKind {
        if self.byte(start + 1).is_some_and(|b| b.is_ascii_digit()) {
            self.pos = self.digits_end(start + 1, u8::is_ascii_digit);
            return TokenKind::Placeholder;
        }
        let tag_end = match self.byte(start + 1) {
            Some(b'$') => start + 1,
            Some(b) if is_word_start(b, Dialect::Postgres) => {
                start + 1 + self.rest(start + 1).iter().take_while(|&&b| is_word_continue(b) && b != b'$').count()
            }
            _ => start,
        };
        if tag_end == start || self.byte(tag_end) != Some(b'$') {
            self.pos = start + 1;
            return TokenKind::Other;
        }
        let delimiter = self.input.get(start..=tag_end).unwrap_or(&[]);
        let body = tag_end + 1;
        self.pos = memmem::find(self.rest(body), delimiter).map_or(self.input.len(), |at| body + at + delimiter.len());
        TokenKind::String
    }

    /// MySQL at `@` followed by a word character, `@` or a quote: a user (`@x`, `@'x'`) or
    /// system (`@@session.x`) variable.
    fn variable(&mut self, start: usize) -> TokenKind {
        let name = if self.byte(start + 1) == Some(b'@') { start + 2 } else { start + 1 };
        self.pos = match self.byte(name) {
            Some(quote @ (b'\'' | b'"' | b'`')) => self.quoted_end(name + 1, quote, quote != b'`'),
            _ => self.word_end(name),
        };
        TokenKind::Word
    }

    fn operator(&mut self, start: usize) -> TokenKind {
        let mut end = start + 1;
        while self.byte(end).is_some_and(|b| is_operator_char(b, self.dialect))
            && !self.comment_starts_at(end)
            && !self.mysql_double_dash_at(end)
        {
            end += 1;
        }
        let run = self.input.get(start..end).unwrap_or(&[]);
        if run.len() > 1 && matches!(run.last(), Some(b'+' | b'-')) && !run.iter().any(|b| b"~!@#%^&|`?".contains(b)) {
            let kept = run.iter().rposition(|b| !matches!(b, b'+' | b'-')).map_or(1, |at| at + 1);
            end = start + kept;
        }
        self.pos = end;
        TokenKind::Operator
    }

    fn word(&mut self, start: usize, first: u8) -> TokenKind {
        let end = self.word_end(start + 1);
        // One-letter prefixes glued to a quote make a string: X'ff', B'01', N'x', E'\n'.
        if end == start + 1 && self.byte(end) == Some(b'\'') && b"xXbBnNeE".contains(&first) {
            let backslash = self.dialect == Dialect::MySql || matches!(first, b'e' | b'E');
            self.pos = self.quoted_end(end + 1, b'\'', backslash);
            return TokenKind::String;
        }
        self.pos = end;
        TokenKind::Word
    }

    fn next_token(&mut self) -> Option<Token<'a>> {
        self.skip_trivia();
        let start = self.pos;
        let first = self.byte(start)?;
        let mysql = self.dialect == Dialect::MySql;
        let kind = match first {
            b'\'' => {
                self.pos = self.quoted_end(start + 1, b'\'', mysql);
                TokenKind::String
            }
            b'"' => {
                self.pos = self.quoted_end(start + 1, b'"', mysql);
                if mysql {
                    TokenKind::String
                } else {
                    TokenKind::QuotedIdent
                }
            }
            b'`' if mysql => {
                self.pos = self.quoted_end(start + 1, b'`', false);
                TokenKind::QuotedIdent
            }
            b'0'..=b'9' => self.number(start),
            b'.' if self.byte(start + 1).is_some_and(|b| b.is_ascii_digit()) => self.number(start),
            b'?' => {
                self.pos = start + 1;
                TokenKind::Placeholder
            }
            b'$' if !mysql => self.dollar(start),
            b'@' if mysql && self.byte(start + 1).is_some_and(|b| is_word_continue(b) || b"@'\"`".contains(&b)) => {
                self.variable(start)
            }
            b'(' | b')' | b'[' | b']' | b',' | b';' | b'.' => {
                self.pos = start + 1;
                TokenKind::Punct
            }
            _ if is_word_start(first, self.dialect) => self.word(start, first),
            _ if is_operator_char(first, self.dialect) => self.operator(start),
            _ => {
                self.pos = start + 1;
                TokenKind::Other
            }
        };
        // Every branch moves forward; clamp so a slice never reaches past the input.
        self.pos = self.pos.clamp(start + 1, self.input.len());
        let text = self.input.get(start..self.pos).unwrap_or(&[]);
        Some(Token { kind, text, start })
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        self.next_token()
    }
}

#[cfg(test)]
#[path = "tests/lexer.rs"]
mod tests;
