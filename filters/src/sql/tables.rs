//! The tables a statement touches: what the `target` field of a SQL operation says and what
//! `table = orders` rules match.
//!
//! sqlparser (<https://docs.rs/sqlparser>, `MySqlDialect` / `PostgreSqlDialect`) parses the
//! text and `Visit` walks the AST for relation names: `FROM`/`JOIN` tables, `INSERT INTO`,
//! `UPDATE`, `DELETE FROM`, DDL targets. References to a CTE of the same statement are not
//! tables and are left out, with SQL's scoping: a CTE name is visible in the query that
//! defines it, after its own body (in all of them with `WITH RECURSIVE`), so
//! `WITH t AS (SELECT * FROM t) …` still reports the real table `t`. Names are the
//! identifiers' values joined with `.`, schema-qualified as written, quotes removed
//! (`public."Users"` → `public.Users`), deduplicated, at most [`MAX_TABLES`]. A
//! table-valued function in `FROM` (`generate_series(…)`) is reported like a table.
//!
//! When sqlparser cannot help — a parse error, or text over [`MAX_PARSE_INPUT`] — a keyword
//! scan over the shared lexer's tokens takes the names after `FROM`, `JOIN`, `INTO`,
//! `UPDATE`, `TABLE`, `TABLES`, `TRUNCATE` and `USING` (with comma lists and aliases) and
//! [`TableScan::fallback`] says so. It is cheaper and coarser (it can mistake
//! `EXTRACT(YEAR FROM col)` for a table) but never fails, and it covers the first
//! [`MAX_SCAN_INPUT`] bytes.
//!
//! Bounding sqlparser. Time: it parses at roughly 0.3–0.5 µs per byte of dense SQL
//! (measured in release: 14 KB of `1,1,…` takes ~6 ms), so only text up to
//! [`MAX_PARSE_INPUT`] is parsed, which keeps one miss under ~3 ms; since it runs once per
//! distinct digest, that is paid once per statement shape. Stack: its recursion limit
//! (set explicitly to [`PARSE_RECURSION_LIMIT`], its default) bounds nested parsing, and
//! its `recursive-protection` feature grows the stack on demand in the parser and in the
//! AST walk, because a flat chain like `1+1+…+1` parses iteratively into an AST as deep
//! as the chain (tested: 8 192 levels on a 2 MiB stack in a debug build). A panic inside
//! sqlparser (a bug in a dependency, on hostile input) is caught and means the keyword
//! scan.

use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};

use sqlparser::ast::{CopySource, ObjectName, ObjectType, Query, Statement, Visit, Visitor};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

use super::keywords::{is_word, keyword};
use super::lexer::{Lexer, Token, TokenKind};
use super::Dialect;

/// At most this many table names are reported per statement.
pub const MAX_TABLES: usize = 16;
/// Longer statement text is not given to sqlparser.
pub const MAX_PARSE_INPUT: usize = 8 * 1024;
/// The keyword scan looks at no more than this much text.
pub const MAX_SCAN_INPUT: usize = 1024 * 1024;
/// sqlparser's recursion limit (its own default, pinned here).
pub const PARSE_RECURSION_LIMIT: usize = 50;

/// The tables of one statement (or of a multi-statement string).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableScan {
    /// Table names in order of first appearance.
    pub tables: Vec<String>,
    /// The names come from the keyword scan, not from sqlparser (the filter counts this
    /// as `parse_error`).
    pub fallback: bool,
    /// Some names may be missing: there were more than [`MAX_TABLES`], or the text was
    /// longer than [`MAX_SCAN_INPUT`].
    pub truncated: bool,
}

impl TableScan {
    fn add(&mut self, name: String, dialect: Dialect) -> ControlFlow<()> {
        // MySQL's `FROM DUAL` names no table.
        if name.is_empty() || (dialect == Dialect::MySql && name.eq_ignore_ascii_case("dual")) {
            return ControlFlow::Continue(());
        }
        if self.tables.contains(&name) {
            return ControlFlow::Continue(());
        }
        if self.tables.len() >= MAX_TABLES {
            self.truncated = true;
            return ControlFlow::Break(());
        }
        self.tables.push(name);
        ControlFlow::Continue(())
    }
}

/// The tables `sql` touches. Never fails: see the module doc for how it is bounded.
pub fn tables(sql: &[u8], dialect: Dialect) -> TableScan {
    if sql.len() <= MAX_PARSE_INPUT {
        if let Some(scan) = parse_tables(sql, dialect) {
            return scan;
        }
    }
    keyword_scan(sql, dialect)
}

fn parse_tables(sql: &[u8], dialect: Dialect) -> Option<TableScan> {
    let text = String::from_utf8_lossy(sql);
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        let parser_dialect: &dyn sqlparser::dialect::Dialect = match dialect {
            Dialect::MySql => &MySqlDialect {},
            Dialect::Postgres => &PostgreSqlDialect {},
        };
        let statements = Parser::new(parser_dialect)
            .with_recursion_limit(PARSE_RECURSION_LIMIT)
            .try_with_sql(&text)
            .and_then(|mut parser| parser.parse_statements())
            .ok()?;
        let mut collector = RelationCollector { scan: TableScan::default(), scopes: Vec::new(), dialect };
        // A Break only means MAX_TABLES was reached.
        let _ = statements.visit(&mut collector);
        Some(collector.scan)
    }));
    parsed.ok().flatten()
}

/// CTE names defined by one query, and how many of them its later parts can see.
struct CteScope {
    names: Vec<String>,
    visible: usize,
}

struct RelationCollector {
    scan: TableScan,
    /// One scope per query being visited, innermost last.
    scopes: Vec<CteScope>,
    dialect: Dialect,
}

impl RelationCollector {
    fn is_cte_reference(&self, relation: &ObjectName) -> bool {
        let [part] = relation.0.as_slice() else { return false };
        let Some(ident) = part.as_ident() else { return false };
        self.scopes
            .iter()
            .any(|scope| scope.names.iter().take(scope.visible).any(|name| name.eq_ignore_ascii_case(&ident.value)))
    }
}

impl Visitor for RelationCollector {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let (names, recursive) = match &query.with {
            Some(with) => (with.cte_tables.iter().map(|cte| cte.alias.name.value.clone()).collect(), with.recursive),
            None => (Vec::new(), false),
        };
        let visible = if recursive { names.len() } else { 0 };
        self.scopes.push(CteScope { names, visible });
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.scopes.pop();
        // The CTE bodies are the first queries nested in their WITH's query: each one that
        // ends makes its own name visible to what follows.
        if let Some(parent) = self.scopes.last_mut() {
            parent.visible = (parent.visible + 1).min(parent.names.len());
        }
        ControlFlow::Continue(())
    }

    /// `DROP TABLE a, b` (and views) and PostgreSQL's `COPY t …`: sqlparser does not mark
    /// these names as relations.
    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        if let Statement::Copy { source: CopySource::Table { table_name, .. }, .. } = statement {
            self.add_relation(table_name)?;
        }
        if let Statement::Drop { object_type, names, table, .. } = statement {
            let tables = matches!(
                object_type,
                ObjectType::Table | ObjectType::View | ObjectType::MaterializedView | ObjectType::ForeignTable
            );
            // MySQL `DROP INDEX i ON t` names its table separately.
            for name in names.iter().filter(|_| tables).chain(table) {
                self.add_relation(name)?;
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        if self.is_cte_reference(relation) {
            return ControlFlow::Continue(());
        }
        self.add_relation(relation)
    }
}

impl RelationCollector {
    fn add_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        let mut name = String::new();
        for ident in relation.0.iter().filter_map(|part| part.as_ident()) {
            if !name.is_empty() {
                name.push('.');
            }
            name.push_str(&ident.value);
        }
        self.scan.add(name, self.dialect)
    }
}

/// The fallback: names after the keywords that introduce tables.
fn keyword_scan(sql: &[u8], dialect: Dialect) -> TableScan {
    let considered = sql.get(..MAX_SCAN_INPUT).unwrap_or(sql);
    let mut scan = TableScan { fallback: true, truncated: sql.len() > MAX_SCAN_INPUT, ..TableScan::default() };
    let mut tokens = Lexer::new(considered, dialect).peekable();
    let mut previous_word: &[u8] = b"";
    while let Some(token) = tokens.next() {
        if token.kind != TokenKind::Word {
            previous_word = b"";
            continue;
        }
        let introduces = |k: &str| is_word(token.text, k);
        // FOR UPDATE, ON DUPLICATE KEY UPDATE and ON CONFLICT DO UPDATE name no table.
        let update = introduces("UPDATE") && !["FOR", "KEY", "DO"].iter().any(|k| is_word(previous_word, k));
        let list = introduces("FROM") || introduces("USING") || introduces("TABLE") || introduces("TABLES") || update;
        let single = introduces("JOIN") || introduces("INTO") || introduces("TRUNCATE");
        previous_word = token.text;
        if (list || single) && read_names(&mut tokens, list, &mut scan, dialect).is_break() {
            break;
        }
    }
    scan
}

type Tokens<'a> = std::iter::Peekable<Lexer<'a>>;

/// Words between a table keyword and the table name.
const MODIFIERS: &[&str] = &["ONLY", "IF", "NOT", "EXISTS", "TABLE", "LOW_PRIORITY", "IGNORE", "QUICK", "LATERAL"];

fn read_names(tokens: &mut Tokens<'_>, list: bool, scan: &mut TableScan, dialect: Dialect) -> ControlFlow<()> {
    loop {
        while tokens.next_if(|t| t.kind == TokenKind::Word && MODIFIERS.iter().any(|m| is_word(t.text, m))).is_some() {}
        let name = read_qualified_name(tokens, dialect);
        if name.is_empty() {
            return ControlFlow::Continue(());
        }
        scan.add(name, dialect)?;
        if !list {
            return ControlFlow::Continue(());
        }
        // An alias, then `,` and another table.
        tokens.next_if(|t| is_word(t.text, "AS"));
        tokens.next_if(is_name);
        if tokens.next_if(|t| t.is_punct(b',')).is_none() {
            return ControlFlow::Continue(());
        }
    }
}

fn is_name(token: &Token<'_>) -> bool {
    match token.kind {
        TokenKind::QuotedIdent => true,
        TokenKind::Word => keyword(token.text).is_none() && token.text.first() != Some(&b'@'),
        _ => false,
    }
}

/// `name` or `schema.name` (any number of parts), unquoted; empty if none is next.
fn read_qualified_name(tokens: &mut Tokens<'_>, dialect: Dialect) -> String {
    let mut name = String::new();
    while let Some(part) = tokens.next_if(is_name) {
        // COPY … FROM STDIN names no table.
        if dialect == Dialect::Postgres && (is_word(part.text, "STDIN") || is_word(part.text, "STDOUT")) {
            break;
        }
        if !name.is_empty() {
            name.push('.');
        }
        push_unquoted(&mut name, &part);
        if tokens.next_if(|t| t.is_punct(b'.')).is_none() {
            break;
        }
    }
    name
}

/// An identifier's value: quotes removed and doubled quotes undoubled.
fn push_unquoted(out: &mut String, token: &Token<'_>) {
    if token.kind != TokenKind::QuotedIdent {
        out.push_str(&String::from_utf8_lossy(token.text));
        return;
    }
    let Some((&quote, inner)) = token.text.split_first() else { return };
    let inner = inner.strip_suffix(&[quote]).unwrap_or(inner);
    let value = String::from_utf8_lossy(inner);
    let quote = char::from(quote);
    out.push_str(&value.replace(&format!("{quote}{quote}"), &quote.to_string()));
}

#[cfg(test)]
#[path = "tests/tables.rs"]
mod tests;
