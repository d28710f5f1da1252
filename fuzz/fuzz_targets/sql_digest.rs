//! The shared SQL layer (`sluice_filters::sql`) on arbitrary bytes, in both dialects:
//! `normalize`, `verb`, `tables`, `split_statements` and the statement cache never panic
//! (nor overflow the stack); the digest text is valid UTF-8, at most 4 bytes per input byte
//! looked at, and normalizing it again gives it back (for input short enough that the
//! digest is not truncated the second time); split pieces plus one `;` between each cover
//! the input exactly; at most `MAX_TABLES` tables; the cache answers a repeated statement
//! with the same entry and never with another digest's.
//!
//! The input is statement text as a client would send it (COM_QUERY / Query payload).

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sluice_filters::sql::tables::MAX_TABLES;
use sluice_filters::sql::{
    normalize, split_statements, tables, verb, CacheLimits, Dialect, StatementCache, MAX_DIGEST_INPUT,
};

fn check(input: &[u8], dialect: Dialect) {
    let mut digest_text = String::new();
    let digest = normalize(input, dialect, &mut digest_text);
    let considered = input.len().min(MAX_DIGEST_INPUT);
    assert_eq!(digest.truncated, input.len() > MAX_DIGEST_INPUT);
    assert!(std::str::from_utf8(digest_text.as_bytes()).is_ok());
    assert!(digest_text.len() <= 4 * considered, "{} bytes of digest for {considered} of input", digest_text.len());
    if digest_text.len() <= MAX_DIGEST_INPUT {
        let mut again = String::new();
        let second = normalize(digest_text.as_bytes(), dialect, &mut again);
        assert_eq!(digest_text, again, "normalize is not idempotent");
        assert_eq!(digest.hash, second.hash);
    }

    let _ = verb(input, dialect);

    let scan = tables(input, dialect);
    assert!(scan.tables.len() <= MAX_TABLES);

    let mut expected_start = 0;
    let mut last_end = None;
    for piece in split_statements(input, dialect) {
        assert_eq!(piece.start, expected_start, "pieces must be contiguous");
        assert!(piece.start <= piece.end && piece.end <= input.len());
        if piece.end < input.len() {
            assert_eq!(input[piece.end], b';', "pieces are separated by one `;`");
        }
        expected_start = piece.end + 1;
        last_end = Some(piece.end);
    }
    assert_eq!(last_end, Some(input.len()), "the last piece ends at the input's end");

    let mut cache = StatementCache::new(dialect, CacheLimits::PER_CONNECTION);
    let mut scratch = String::new();
    let first = cache.classify(input, &mut scratch);
    assert_eq!(*first.digest_text, *digest_text);
    assert_eq!(first.digest_hash, digest.hash);
    let second = cache.classify(input, &mut scratch);
    if !first.truncated && !cache.is_empty() {
        assert!(Arc::ptr_eq(&first, &second), "a repeated statement must hit the cache");
    }
    assert_eq!(*second, *first);
}

fuzz_target!(|input: &[u8]| {
    check(input, Dialect::MySql);
    check(input, Dialect::Postgres);
});
