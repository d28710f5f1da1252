//! Cutting a multi-statement string (PostgreSQL simple Query, protocol §55.2.2 "Simple
//! Query"; MySQL `COM_QUERY` with `CLIENT_MULTI_STATEMENTS`) into its statements, on the
//! `;` that end them — not those inside strings, quoted identifiers, comments or dollar
//! quotes, which the shared lexer already steps over.
//!
//! Routine bodies are the one place where a `;` inside a statement is not quoted: `CREATE
//! PROCEDURE p() BEGIN …; …; END` (MySQL) and `CREATE FUNCTION f() … BEGIN ATOMIC …; END`
//! (PostgreSQL 14+). In a statement that starts with `CREATE`, `BEGIN … END` and
//! `CASE … END` nest and a `;` inside them does not split; `END IF`, `END LOOP`,
//! `END WHILE` and `END REPEAT` close blocks that were never counted open. A MariaDB
//! anonymous `BEGIN NOT ATOMIC … END` block is not recognised and is split.
//!
//! Pieces are byte ranges of the input. Every piece is reported, blank ones included
//! (`SELECT 1;` is `SELECT 1` and an empty piece): consecutive pieces are separated by
//! exactly one `;`, the first starts at 0 and the last ends at the input's end, so the
//! pieces and separators cover the input. Use [`is_blank`] to skip pieces with no tokens.

use std::ops::Range;

use super::keywords::is_word;
use super::lexer::{Lexer, Token, TokenKind};
use super::Dialect;

/// The statements of `sql`, as byte ranges (see the module doc for the exact contract).
pub fn split_statements(sql: &[u8], dialect: Dialect) -> SplitStatements<'_> {
    SplitStatements { lexer: Lexer::new(sql, dialect), len: sql.len(), start: 0, done: false, block: Block::default() }
}

/// Does `sql` hold no token at all (only whitespace and comments)?
pub fn is_blank(sql: &[u8], dialect: Dialect) -> bool {
    Lexer::new(sql, dialect).next().is_none()
}

/// Iterator returned by [`split_statements`].
#[derive(Clone, Debug)]
pub struct SplitStatements<'a> {
    lexer: Lexer<'a>,
    len: usize,
    start: usize,
    done: bool,
    block: Block,
}

impl Iterator for SplitStatements<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        if self.done {
            return None;
        }
        for token in self.lexer.by_ref() {
            self.block.observe(&token);
            if token.is_punct(b';') && self.block.depth == 0 {
                let piece = self.start..token.start;
                self.start = token.start + 1;
                self.block = Block::default();
                return Some(piece);
            }
        }
        self.done = true;
        Some(self.start..self.len)
    }
}

/// Routine-body nesting within one statement.
#[derive(Clone, Debug, Default)]
struct Block {
    /// Tokens seen in this statement, saturating at 2: the verb is the first.
    seen: u8,
    /// The statement starts with CREATE: count BEGIN/CASE … END.
    routine: bool,
    depth: u32,
    /// The previous word was END: this token says what it closed.
    after_end: bool,
}

impl Block {
    fn observe(&mut self, token: &Token<'_>) {
        let word = (token.kind == TokenKind::Word).then_some(token.text);
        if self.seen == 0 {
            self.routine = word.is_some_and(|w| is_word(w, "CREATE"));
        }
        self.seen = self.seen.saturating_add(1);
        if !self.routine {
            return;
        }
        if std::mem::take(&mut self.after_end) {
            // END IF / END LOOP / … closed a block that was never counted; END CASE closed
            // a counted CASE; END followed by anything else closed a BEGIN or a CASE.
            let uncounted = word.is_some_and(|w| ["IF", "LOOP", "WHILE", "REPEAT"].iter().any(|k| is_word(w, k)));
            if !uncounted {
                self.depth = self.depth.saturating_sub(1);
            }
            if word.is_some_and(|w| is_word(w, "CASE")) {
                return;
            }
        }
        match word {
            Some(w) if is_word(w, "BEGIN") || is_word(w, "CASE") => self.depth = self.depth.saturating_add(1),
            Some(w) if is_word(w, "END") => self.after_end = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(sql: &str, dialect: Dialect) -> Vec<&str> {
        split_statements(sql.as_bytes(), dialect).map(|range| &sql[range]).collect()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let cases: &[(Dialect, &str, &[&str])] = &[
            (Dialect::Postgres, "SELECT 1; SELECT 2", &["SELECT 1", " SELECT 2"]),
            (Dialect::Postgres, "SELECT 1;", &["SELECT 1", ""]),
            (Dialect::Postgres, "", &[""]),
            (Dialect::Postgres, ";;", &["", "", ""]),
            (Dialect::Postgres, "SELECT ';'; SELECT \"a;b\"", &["SELECT ';'", " SELECT \"a;b\""]),
            (
                Dialect::Postgres,
                "SELECT 1 -- ;\n; SELECT /* ; /* ; */ ; */ 2",
                &["SELECT 1 -- ;\n", " SELECT /* ; /* ; */ ; */ 2"],
            ),
            (
                Dialect::Postgres,
                "DO $$ BEGIN PERFORM 1; END $$; SELECT 2",
                &["DO $$ BEGIN PERFORM 1; END $$", " SELECT 2"],
            ),
            (Dialect::Postgres, "SELECT E'\\';'; SELECT 2", &["SELECT E'\\';'", " SELECT 2"]),
            (Dialect::MySql, "SELECT 'it\\'s;'; SELECT `a;b`", &["SELECT 'it\\'s;'", " SELECT `a;b`"]),
            (Dialect::MySql, "SELECT 1 # ;\n; SELECT \"x;\"", &["SELECT 1 # ;\n", " SELECT \"x;\""]),
            (Dialect::MySql, "SELECT 'unterminated; SELECT 2", &["SELECT 'unterminated; SELECT 2"]),
        ];
        for (dialect, sql, expected) in cases {
            assert_eq!(pieces(sql, *dialect), *expected, "{sql:?}");
        }
    }

    #[test]
    fn routine_bodies_are_not_split() {
        let procedure = "CREATE PROCEDURE p() BEGIN DECLARE x INT; IF x THEN SELECT 1; END IF; \
                         CASE x WHEN 1 THEN SELECT 2; END CASE; SELECT CASE WHEN x THEN 1 END; END";
        assert_eq!(pieces(&format!("{procedure}; SELECT 3"), Dialect::MySql), [procedure, " SELECT 3"]);
        let function = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END";
        assert_eq!(pieces(&format!("{function};SELECT 3"), Dialect::Postgres), [function, "SELECT 3"]);
        let trigger = "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; END";
        assert_eq!(pieces(&format!("{trigger}; DROP TABLE y"), Dialect::MySql), [trigger, " DROP TABLE y"]);
        // Outside CREATE, BEGIN is a transaction start and `;` splits as usual.
        assert_eq!(pieces("BEGIN; SELECT 1; COMMIT", Dialect::Postgres), ["BEGIN", " SELECT 1", " COMMIT"]);
    }

    #[test]
    fn pieces_and_separators_cover_the_input() {
        let sql = b"SELECT 1; /* c */ ; INSERT INTO t VALUES (';'); \xff\xfe;";
        let ranges: Vec<_> = split_statements(sql, Dialect::MySql).collect();
        assert_eq!(ranges.first().map(|r| r.start), Some(0));
        assert_eq!(ranges.last().map(|r| r.end), Some(sql.len()));
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].end + 1, pair[1].start);
            assert_eq!(sql[pair[0].end], b';');
        }
        let blank: Vec<bool> = ranges.iter().map(|r| is_blank(&sql[r.clone()], Dialect::MySql)).collect();
        assert_eq!(blank, [false, true, false, false, true]);
    }

    #[test]
    fn is_blank_sees_through_comments() {
        assert!(is_blank(b"  -- x\n /* y */ ", Dialect::Postgres));
        assert!(is_blank(b"# x", Dialect::MySql));
        assert!(!is_blank(b"# x", Dialect::Postgres));
        assert!(!is_blank(b"/*!40101 SET x = 1 */", Dialect::MySql));
    }
}
