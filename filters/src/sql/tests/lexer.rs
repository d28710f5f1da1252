//! Tests for the shared lexer: token kinds and boundaries per dialect.

use super::*;

fn kinds(sql: &str, dialect: Dialect) -> Vec<(TokenKind, &str)> {
    Lexer::new(sql.as_bytes(), dialect).map(|t| (t.kind, std::str::from_utf8(t.text).unwrap_or("<non-utf8>"))).collect()
}

use TokenKind::*;

#[test]
fn mysql_tokens() {
    let cases: &[(&str, &[(TokenKind, &str)])] = &[
        (
            "SELECT `a``b`, \"s\\\"x\", 'it''s'",
            &[
                (Word, "SELECT"),
                (QuotedIdent, "`a``b`"),
                (Punct, ","),
                (String, "\"s\\\"x\""),
                (Punct, ","),
                (String, "'it''s'"),
            ],
        ),
        ("a -- c\nb #x\nc /* d */ e", &[(Word, "a"), (Word, "b"), (Word, "c"), (Word, "e")]),
        // `--` not followed by a space is two minus signs.
        ("1--1", &[(Number, "1"), (Operator, "-"), (Operator, "-"), (Number, "1")]),
        ("/*!40101 SET x=1*/ y", &[(Word, "SET"), (Word, "x"), (Operator, "="), (Number, "1"), (Word, "y")]),
        ("/*M!100101 SET x */", &[(Word, "SET"), (Word, "x")]),
        (
            "@a := @@session.sql_mode",
            &[(Word, "@a"), (Operator, ":="), (Word, "@@session"), (Punct, "."), (Word, "sql_mode")],
        ),
        (
            "x'0F' 0x0F 0b01 1e-3 .5 1. 1st",
            &[
                (String, "x'0F'"),
                (Number, "0x0F"),
                (Number, "0b01"),
                (Number, "1e-3"),
                (Number, ".5"),
                (Number, "1."),
                (Word, "1st"),
            ],
        ),
        ("$x a$b", &[(Word, "$x"), (Word, "a$b")]),
        ("a<=>b", &[(Word, "a"), (Operator, "<=>"), (Word, "b")]),
        ("a=-1", &[(Word, "a"), (Operator, "="), (Operator, "-"), (Number, "1")]),
    ];
    for (sql, expected) in cases {
        assert_eq!(kinds(sql, Dialect::MySql), *expected, "{sql:?}");
    }
}

#[test]
fn postgres_tokens() {
    let cases: &[(&str, &[(TokenKind, &str)])] = &[
        (
            "SELECT \"a\"\"b\", 'it''s', E'\\'x'",
            &[
                (Word, "SELECT"),
                (QuotedIdent, "\"a\"\"b\""),
                (Punct, ","),
                (String, "'it''s'"),
                (Punct, ","),
                (String, "E'\\'x'"),
            ],
        ),
        // Standard strings: a backslash is a plain character.
        ("'a\\' b", &[(String, "'a\\'"), (Word, "b")]),
        (
            "$1::int $$a$b$$ $tag$ $$ $tag$ $",
            &[
                (Placeholder, "$1"),
                (Operator, "::"),
                (Word, "int"),
                (String, "$$a$b$$"),
                (String, "$tag$ $$ $tag$"),
                (Other, "$"),
            ],
        ),
        ("a /* x /* y */ z */ b -- c", &[(Word, "a"), (Word, "b")]),
        ("a--c", &[(Word, "a")]),
        (
            "a @> b ?| c #- d",
            &[
                (Word, "a"),
                (Operator, "@>"),
                (Word, "b"),
                (Placeholder, "?"),
                (Operator, "|"),
                (Word, "c"),
                (Operator, "#-"),
                (Word, "d"),
            ],
        ),
        ("arr[1]", &[(Word, "arr"), (Punct, "["), (Number, "1"), (Punct, "]")]),
        (
            "a=-1 b*-2 c+-d",
            &[
                (Word, "a"),
                (Operator, "="),
                (Operator, "-"),
                (Number, "1"),
                (Word, "b"),
                (Operator, "*"),
                (Operator, "-"),
                (Number, "2"),
                (Word, "c"),
                (Operator, "+"),
                (Operator, "-"),
                (Word, "d"),
            ],
        ),
        ("a/*c*/=1", &[(Word, "a"), (Operator, "="), (Number, "1")]),
    ];
    for (sql, expected) in cases {
        assert_eq!(kinds(sql, Dialect::Postgres), *expected, "{sql:?}");
    }
}

#[test]
fn unterminated_runs_to_the_end() {
    for dialect in [Dialect::MySql, Dialect::Postgres] {
        for sql in ["'abc", "\"abc", "/* abc", "E'abc\\", "$q$ abc", "`abc", "x'ab"] {
            let tokens: Vec<_> = Lexer::new(sql.as_bytes(), dialect).collect();
            let covered: usize = tokens.iter().map(|t| t.text.len()).sum();
            assert!(covered <= sql.len());
            if let Some(last) = tokens.last() {
                assert_eq!(last.start + last.text.len(), sql.len(), "{sql:?} {dialect:?}");
            }
        }
    }
}

#[test]
fn tokens_are_in_order_and_within_the_input() {
    let input: &[u8] = b"\xff\xfe SELECT \x00 'a\xff' `x\xc3` $1 /*! 1 */ */ \x80";
    for dialect in [Dialect::MySql, Dialect::Postgres] {
        let mut end = 0;
        for token in Lexer::new(input, dialect) {
            assert!(token.start >= end);
            assert!(!token.text.is_empty());
            end = token.start + token.text.len();
            assert!(end <= input.len());
        }
    }
}
