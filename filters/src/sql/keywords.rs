//! The keywords the digest upper-cases and the table scan refuses as names.
//!
//! Deliberately not every keyword either server knows: a word that is also a common column
//! name (`name`, `value`, `type`, `status`, `key`, `user`, `data`, `count`) is left as
//! written, so `SELECT name FROM t` keeps `name` and a column called `value` does not
//! start a VALUES-row collapse. What is here is the reserved words of MySQL 8.0 (manual
//! §11.3 "Keywords and Reserved Words") and PostgreSQL (manual Appendix C, "reserved"
//! columns) that appear in ordinary statements, plus the statement verbs, which are only
//! ever used as verbs in practice. Function names (`count`, `now`, `coalesce`) are not
//! keywords and keep their case.

/// Upper case, sorted (for the reader, and so that a test can prove there is no duplicate).
const KEYWORDS: &[&str] = &[
    "ABORT",
    "ADD",
    "ALL",
    "ALTER",
    "ANALYSE",
    "ANALYZE",
    "AND",
    "ANY",
    "ARRAY",
    "AS",
    "ASC",
    "BEGIN",
    "BETWEEN",
    "BOTH",
    "BY",
    "CALL",
    "CASCADE",
    "CASE",
    "CAST",
    "CHECK",
    "COLLATE",
    "COLUMN",
    "COMMIT",
    "CONFLICT",
    "CONSTRAINT",
    "COPY",
    "CREATE",
    "CROSS",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "DATABASE",
    "DEALLOCATE",
    "DEFAULT",
    "DELAYED",
    "DELETE",
    "DESC",
    "DESCRIBE",
    "DISTINCT",
    "DISTINCTROW",
    "DO",
    "DROP",
    "DUAL",
    "DUPLICATE",
    "ELSE",
    "END",
    "ESCAPE",
    "EXCEPT",
    "EXECUTE",
    "EXISTS",
    "EXPLAIN",
    "FALSE",
    "FETCH",
    "FOR",
    "FORCE",
    "FOREIGN",
    "FROM",
    "FULL",
    "GRANT",
    "GROUP",
    "HAVING",
    "HIGH_PRIORITY",
    "IF",
    "IGNORE",
    "ILIKE",
    "IN",
    "INDEX",
    "INNER",
    "INSERT",
    "INTERSECT",
    "INTERVAL",
    "INTO",
    "IS",
    "ISNULL",
    "JOIN",
    "LATERAL",
    "LEADING",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LISTEN",
    "LOAD",
    "LOCK",
    "LOW_PRIORITY",
    "NATURAL",
    "NOT",
    "NOTIFY",
    "NOTNULL",
    "NOWAIT",
    "NULL",
    "OFFSET",
    "ON",
    "ONLY",
    "OR",
    "ORDER",
    "OUTER",
    "OUTFILE",
    "OVER",
    "PARTITION",
    "PREPARE",
    "PRIMARY",
    "PROCEDURE",
    "RECURSIVE",
    "REFERENCES",
    "REGEXP",
    "RELEASE",
    "RENAME",
    "REPLACE",
    "RETURNING",
    "REVOKE",
    "RIGHT",
    "RLIKE",
    "ROLLBACK",
    "SAVEPOINT",
    "SCHEMA",
    "SELECT",
    "SET",
    "SHOW",
    "SIMILAR",
    "SOME",
    "SQL_CALC_FOUND_ROWS",
    "STRAIGHT_JOIN",
    "TABLE",
    "THEN",
    "TO",
    "TRAILING",
    "TRIGGER",
    "TRUE",
    "TRUNCATE",
    "UNION",
    "UNIQUE",
    "UNLISTEN",
    "UNLOCK",
    "UPDATE",
    "USE",
    "USING",
    "VACUUM",
    "VALUES",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    "XOR",
];

/// Room for the longest keyword, for the stack buffer the upper-casing uses.
pub(crate) const MAX_KEYWORD_LEN: usize = 24;

/// The word upper-cased into `buf`, if it is ASCII and short enough to be a keyword.
pub(crate) fn ascii_upper<'b>(word: &[u8], buf: &'b mut [u8; MAX_KEYWORD_LEN]) -> Option<&'b [u8]> {
    let upper = buf.get_mut(..word.len())?;
    for (to, &from) in upper.iter_mut().zip(word) {
        if !from.is_ascii() {
            return None;
        }
        *to = from.to_ascii_uppercase();
    }
    Some(upper)
}

/// Slots of the keyword hash table: a power of two, over three times the keyword count, so
/// that probe runs stay short.
const TABLE_SLOTS: usize = 512;

/// FNV-1a of the upper-cased word, reduced to a slot.
const fn slot_of(word: &[u8]) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    let mut at = 0;
    while at < word.len() {
        hash ^= word[at].to_ascii_uppercase() as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        at += 1;
    }
    hash as usize & (TABLE_SLOTS - 1)
}

/// Open-addressing table built at compile time: slot → 1 + index in [`KEYWORDS`], 0 for
/// empty. The digest looks up every word of every statement, and a hash plus one or two
/// probes beats a binary search of string comparisons by several times.
const TABLE: [u8; TABLE_SLOTS] = {
    assert!(KEYWORDS.len() < 255 && KEYWORDS.len() * 3 < TABLE_SLOTS);
    let mut table = [0u8; TABLE_SLOTS];
    let mut index = 0;
    while index < KEYWORDS.len() {
        let mut slot = slot_of(KEYWORDS[index].as_bytes());
        while table[slot] != 0 {
            slot = (slot + 1) & (TABLE_SLOTS - 1);
        }
        table[slot] = index as u8 + 1;
        index += 1;
    }
    table
};

/// The keyword, upper case, if `word` (any case) is one.
pub(crate) fn keyword(word: &[u8]) -> Option<&'static str> {
    if word.len() > MAX_KEYWORD_LEN || !word.first().is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let mut slot = slot_of(word);
    // Ends at an empty slot: the table is at most a third full.
    loop {
        let entry = usize::from(*TABLE.get(slot)?);
        let candidate = KEYWORDS.get(entry.checked_sub(1)?)?;
        if candidate.as_bytes().eq_ignore_ascii_case(word) {
            return Some(candidate);
        }
        slot = (slot + 1) & (TABLE_SLOTS - 1);
    }
}

/// Is `word` (any case) equal to `upper` (upper case)?
pub(crate) fn is_word(word: &[u8], upper: &str) -> bool {
    word.eq_ignore_ascii_case(upper.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_upper_case_and_fits_the_buffer() {
        assert!(KEYWORDS.windows(2).all(|pair| pair[0] < pair[1]), "KEYWORDS must be sorted and unique");
        for keyword in KEYWORDS {
            assert!(keyword.len() <= MAX_KEYWORD_LEN);
            assert!(keyword.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "{keyword}");
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_ascii_only() {
        assert_eq!(keyword(b"select"), Some("SELECT"));
        assert_eq!(keyword(b"SeLeCt"), Some("SELECT"));
        assert_eq!(keyword(b"values"), Some("VALUES"));
        assert_eq!(keyword(b"name"), None);
        assert_eq!(keyword(b"selectx"), None);
        assert_eq!(keyword("sélect".as_bytes()), None);
        assert_eq!(keyword(b"a_very_long_identifier_that_is_no_keyword"), None);
        assert_eq!(keyword(b""), None);
        assert_eq!(keyword(b"sql_calc_found_rows"), Some("SQL_CALC_FOUND_ROWS"));
        assert_eq!(keyword(b"current_timestamp"), Some("CURRENT_TIMESTAMP"));
        assert_eq!(keyword(b"AS\0"), None);
        for keyword_text in KEYWORDS {
            assert_eq!(keyword(keyword_text.to_lowercase().as_bytes()), Some(*keyword_text));
        }
    }
}
