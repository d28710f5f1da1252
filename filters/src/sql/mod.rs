//! SQL statement understanding shared by the MySQL and PostgreSQL protocol filters: one
//! implementation, two dialects ([`Dialect`]).
//!
//! What a protocol filter gets for each statement text (COM_QUERY / COM_STMT_PREPARE payload,
//! PostgreSQL Query / Parse string), cheapest first:
//!
//! - [`normalize`](normalize::normalize): the *digest text* — literals replaced by `?`,
//!   IN-lists and VALUES rows collapsed, comments dropped, keywords upper-cased, canonical
//!   spacing — and its 64-bit hash. One pass over the bytes, no allocation per statement.
//! - [`verb`](verb::verb): the statement verb (`SELECT`, `INSERT`, `BEGIN`, …) as a `Copy` enum.
//! - [`tables`](tables::tables): the tables a statement touches, from sqlparser's AST, with a
//!   keyword-scan fallback when sqlparser cannot parse the text.
//! - [`StatementCache`] / [`SharedStatementCache`]: all of the above as one
//!   [`StatementInfo`], computed once per distinct digest: repeated statements (the normal
//!   case) cost one normalize pass and a hash lookup.
//! - [`split_statements`](split::split_statements): a multi-statement string (PostgreSQL
//!   simple Query, MySQL multi-statements) cut on top-level `;`.
//! - [`DigestTable`]: per-listener statistics per digest (count, errors, latency, rows).
//! - [`stats`]: bounded per-table op counters and rows histograms, per listener.
//!
//! Every function here takes arbitrary bytes (statement text need not be UTF-8), never
//! panics, and costs time bounded by a cap on the bytes it looks at. The lexical rules
//! follow the MySQL 8.0 reference manual, chapter 11 "Language Structure"
//! (<https://dev.mysql.com/doc/refman/8.0/en/language-structure.html>) and the PostgreSQL
//! manual, section 4.1 "Lexical Structure"
//! (<https://www.postgresql.org/docs/current/sql-syntax-lexical.html>).

pub mod classify;
pub mod digest_table;
mod hash;
mod keywords;
mod lexer;
pub mod normalize;
pub mod split;
pub mod stats;
pub mod tables;
pub mod verb;

pub use classify::{CacheLimits, SharedStatementCache, StatementCache, StatementFlags, StatementInfo};
pub use digest_table::{DigestOrder, DigestRow, DigestTable};
pub use normalize::{normalize, Digest, MAX_DIGEST_INPUT};
pub use split::{is_blank, split_statements};
pub use tables::{tables, TableScan};
pub use verb::{verb, Verb};

/// Which server's lexical rules apply. The differences that matter here: MySQL strings may
/// be double-quoted and use backslash escapes, identifiers are back-quoted, `#` starts a
/// comment and `/*! … */` is executed; PostgreSQL double-quotes identifiers, has `E'…'`
/// and `$tag$…$tag$` strings, `$1` parameters and nested block comments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// MySQL and MariaDB, with the default `sql_mode` (no `ANSI_QUOTES`, no
    /// `NO_BACKSLASH_ESCAPES`): what nearly every deployment runs.
    MySql,
    /// PostgreSQL with `standard_conforming_strings = on` (the default since 9.1).
    Postgres,
}

#[cfg(test)]
#[path = "tests/properties.rs"]
mod properties;

/// Names from the wire (users, databases), owned for the life of a session; bytes that are
/// not UTF-8 become U+FFFD.
pub(crate) fn lossy(text: &[u8]) -> Box<str> {
    String::from_utf8_lossy(text).into()
}
