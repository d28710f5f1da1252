//! Property tests over the whole SQL layer: arbitrary bytes never panic, the digest text is
//! valid UTF-8 and bounded, normalizing is idempotent, and split pieces cover the input.

use proptest::prelude::*;

use super::*;

/// Bytes drawn mostly from SQL's alphabet, so that strings, comments, dollar quotes and
/// lists actually occur, plus arbitrary bytes.
fn sql_like() -> impl Strategy<Value = Vec<u8>> {
    const PIECES: &[&[u8]] = &[
        b"SELECT ",
        b"FROM t ",
        b"IN (",
        b"VALUES (",
        b")",
        b",",
        b"'",
        b"\"",
        b"`",
        b"$$",
        b"$a$",
        b"$1",
        b"?",
        b"--",
        b"-- ",
        b"#",
        b"/*",
        b"*/",
        b"/*!",
        b"\\",
        b"E'",
        b"x'",
        b"-",
        b"+",
        b"::",
        b".",
        b"1",
        b"0x1f",
        b"1e5",
        b" ",
        b"\n",
        b";",
        b"[",
        b"]",
        b"@",
        b"NULL",
        b"a",
        b"1a",
        b"\xff",
        b"\xc3",
        "\u{e9}".as_bytes(),
        b"\x00",
        b"CREATE ",
        b"BEGIN ",
        b"END ",
        b"CASE ",
        b"WHERE ",
        b"=",
    ];
    let pieces = prop::sample::select(PIECES);
    prop_oneof![
        prop::collection::vec(pieces, 0..40).prop_map(|pieces| pieces.concat()),
        prop::collection::vec(any::<u8>(), 0..200),
    ]
}

fn dialects() -> impl Strategy<Value = Dialect> {
    prop_oneof![Just(Dialect::MySql), Just(Dialect::Postgres)]
}

proptest! {
    // PROPTEST_CASES=200000 for a longer hunt. Failures are not persisted to a file: each
    // one found becomes a named case in the unit tests instead.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn normalize_is_bounded_and_idempotent(sql in sql_like(), dialect in dialects()) {
        let mut once = String::new();
        let digest = normalize(&sql, dialect, &mut once);
        prop_assert!(once.len() <= 4 * sql.len());
        prop_assert!(!digest.truncated);
        let mut twice = String::new();
        let again = normalize(once.as_bytes(), dialect, &mut twice);
        prop_assert_eq!(&once, &twice);
        prop_assert_eq!(digest.hash, again.hash);
    }

    #[test]
    fn split_pieces_cover_the_input(sql in sql_like(), dialect in dialects()) {
        let pieces: Vec<_> = split_statements(&sql, dialect).collect();
        prop_assert_eq!(pieces.first().map(|p| p.start), Some(0));
        prop_assert_eq!(pieces.last().map(|p| p.end), Some(sql.len()));
        for pair in pieces.windows(2) {
            prop_assert_eq!(pair[0].end + 1, pair[1].start);
            prop_assert_eq!(sql.get(pair[0].end), Some(&b';'));
        }
    }

    #[test]
    fn classify_never_panics(sql in sql_like(), dialect in dialects()) {
        let info = StatementInfo::analyze(&sql, dialect);
        prop_assert!(info.tables.len() <= tables::MAX_TABLES);
        prop_assert_eq!(info.verb, verb(&sql, dialect));
    }
}
