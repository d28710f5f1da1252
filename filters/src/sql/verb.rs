//! The statement verb: what the `op` field of a SQL operation says (`SELECT`, `INSERT`,
//! `BEGIN`, …), from the first keyword after leading whitespace, comments and `(`.
//!
//! Synonyms map to one verb so that rules and stats need not list both: `START
//! TRANSACTION` is `BEGIN`; PostgreSQL `END` is `COMMIT` and `ABORT` is `ROLLBACK`
//! (manual, SQL Commands); MySQL `DESCRIBE`/`DESC` are `EXPLAIN` (MySQL 8.0 manual §15.8.2,
//! "they are synonyms"); `ANALYSE` is `ANALYZE`; `TABLE t` and `VALUES (…)` are queries
//! that return rows like `SELECT` and are `SELECT`. `WITH … SELECT` takes the verb of its
//! main statement (the first `SELECT`, `INSERT`, `UPDATE` or `DELETE` outside the CTEs'
//! parentheses) when that is found within the first [`WITH_SCAN_TOKENS`] tokens, else it
//! stays `WITH`. Anything unknown is `OTHER`.

use super::keywords::{ascii_upper, is_word, MAX_KEYWORD_LEN};
use super::lexer::{Lexer, TokenKind};
use super::normalize::MAX_DIGEST_INPUT;
use super::Dialect;

/// How far `WITH` looks for its main statement.
pub const WITH_SCAN_TOKENS: usize = 4096;

/// A statement verb. `Copy`, and [`as_str`](Verb::as_str) is a static string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    Select,
    Insert,
    Update,
    Delete,
    Replace,
    Begin,
    Commit,
    Rollback,
    Savepoint,
    Create,
    Alter,
    Drop,
    Truncate,
    Set,
    Show,
    Call,
    Use,
    With,
    Explain,
    Prepare,
    Execute,
    Deallocate,
    Grant,
    Revoke,
    Lock,
    Unlock,
    Copy,
    Vacuum,
    Analyze,
    Listen,
    Notify,
    Do,
    Load,
    Other,
}

impl Verb {
    /// The verb as rules and stats spell it: upper case, `OTHER` for unknown statements.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verb::Select => "SELECT",
            Verb::Insert => "INSERT",
            Verb::Update => "UPDATE",
            Verb::Delete => "DELETE",
            Verb::Replace => "REPLACE",
            Verb::Begin => "BEGIN",
            Verb::Commit => "COMMIT",
            Verb::Rollback => "ROLLBACK",
            Verb::Savepoint => "SAVEPOINT",
            Verb::Create => "CREATE",
            Verb::Alter => "ALTER",
            Verb::Drop => "DROP",
            Verb::Truncate => "TRUNCATE",
            Verb::Set => "SET",
            Verb::Show => "SHOW",
            Verb::Call => "CALL",
            Verb::Use => "USE",
            Verb::With => "WITH",
            Verb::Explain => "EXPLAIN",
            Verb::Prepare => "PREPARE",
            Verb::Execute => "EXECUTE",
            Verb::Deallocate => "DEALLOCATE",
            Verb::Grant => "GRANT",
            Verb::Revoke => "REVOKE",
            Verb::Lock => "LOCK",
            Verb::Unlock => "UNLOCK",
            Verb::Copy => "COPY",
            Verb::Vacuum => "VACUUM",
            Verb::Analyze => "ANALYZE",
            Verb::Listen => "LISTEN",
            Verb::Notify => "NOTIFY",
            Verb::Do => "DO",
            Verb::Load => "LOAD",
            Verb::Other => "OTHER",
        }
    }

    /// The verb a leading keyword (any case) names, if it names one by itself.
    fn from_keyword(word: &[u8]) -> Option<Verb> {
        let mut buf = [0u8; MAX_KEYWORD_LEN];
        let verb = match ascii_upper(word, &mut buf)? {
            b"SELECT" | b"TABLE" | b"VALUES" => Verb::Select,
            b"INSERT" => Verb::Insert,
            b"UPDATE" => Verb::Update,
            b"DELETE" => Verb::Delete,
            b"REPLACE" => Verb::Replace,
            b"BEGIN" => Verb::Begin,
            b"COMMIT" | b"END" => Verb::Commit,
            b"ROLLBACK" | b"ABORT" => Verb::Rollback,
            b"SAVEPOINT" => Verb::Savepoint,
            b"CREATE" => Verb::Create,
            b"ALTER" => Verb::Alter,
            b"DROP" => Verb::Drop,
            b"TRUNCATE" => Verb::Truncate,
            b"SET" => Verb::Set,
            b"SHOW" => Verb::Show,
            b"CALL" => Verb::Call,
            b"USE" => Verb::Use,
            b"WITH" => Verb::With,
            b"EXPLAIN" | b"DESCRIBE" | b"DESC" => Verb::Explain,
            b"PREPARE" => Verb::Prepare,
            b"EXECUTE" => Verb::Execute,
            b"DEALLOCATE" => Verb::Deallocate,
            b"GRANT" => Verb::Grant,
            b"REVOKE" => Verb::Revoke,
            b"LOCK" => Verb::Lock,
            b"UNLOCK" => Verb::Unlock,
            b"COPY" => Verb::Copy,
            b"VACUUM" => Verb::Vacuum,
            b"ANALYZE" | b"ANALYSE" => Verb::Analyze,
            b"LISTEN" => Verb::Listen,
            b"NOTIFY" => Verb::Notify,
            b"DO" => Verb::Do,
            b"LOAD" => Verb::Load,
            _ => return None,
        };
        Some(verb)
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verb of the (first) statement in `sql`. Looks at no more than the first
/// [`MAX_DIGEST_INPUT`] bytes.
pub fn verb(sql: &[u8], dialect: Dialect) -> Verb {
    let considered = sql.get(..MAX_DIGEST_INPUT).unwrap_or(sql);
    let mut tokens = Lexer::new(considered, dialect).skip_while(|token| token.is_punct(b'('));
    let Some(first) = tokens.next().filter(|token| token.kind == TokenKind::Word) else {
        return Verb::Other;
    };
    match Verb::from_keyword(first.text) {
        Some(Verb::With) => main_verb_of_with(tokens),
        Some(verb) => verb,
        // START TRANSACTION; not START SLAVE / START REPLICA / START GROUP_REPLICATION.
        None if is_word(first.text, "START") => match tokens.next() {
            Some(next) if is_word(next.text, "TRANSACTION") => Verb::Begin,
            _ => Verb::Other,
        },
        None => Verb::Other,
    }
}

/// After `WITH`: the first data-modifying or query verb outside parentheses (the CTE
/// bodies and column lists are inside them).
fn main_verb_of_with<'a>(tokens: impl Iterator<Item = super::lexer::Token<'a>>) -> Verb {
    let mut depth = 0usize;
    for token in tokens.take(WITH_SCAN_TOKENS) {
        match token.kind {
            TokenKind::Punct if token.is_punct(b'(') => depth += 1,
            TokenKind::Punct if token.is_punct(b')') => depth = depth.saturating_sub(1),
            TokenKind::Word if depth == 0 => {
                if let Some(verb @ (Verb::Select | Verb::Insert | Verb::Update | Verb::Delete)) =
                    Verb::from_keyword(token.text)
                {
                    return verb;
                }
            }
            _ => {}
        }
    }
    Verb::With
}

#[cfg(test)]
#[path = "tests/verb.rs"]
mod tests;

impl Verb {
    /// Every verb, in declaration order (stats register a series per verb).
    pub const ALL: [Verb; 34] = [
        Verb::Select,
        Verb::Insert,
        Verb::Update,
        Verb::Delete,
        Verb::Replace,
        Verb::Begin,
        Verb::Commit,
        Verb::Rollback,
        Verb::Savepoint,
        Verb::Create,
        Verb::Alter,
        Verb::Drop,
        Verb::Truncate,
        Verb::Set,
        Verb::Show,
        Verb::Call,
        Verb::Use,
        Verb::With,
        Verb::Explain,
        Verb::Prepare,
        Verb::Execute,
        Verb::Deallocate,
        Verb::Grant,
        Verb::Revoke,
        Verb::Lock,
        Verb::Unlock,
        Verb::Copy,
        Verb::Vacuum,
        Verb::Analyze,
        Verb::Listen,
        Verb::Notify,
        Verb::Do,
        Verb::Load,
        Verb::Other,
    ];
}
