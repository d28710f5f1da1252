//! Tests for `verb`: every verb, synonyms, leading noise, WITH.

use super::*;

#[test]
fn verbs_of_real_statements() {
    let cases: &[(Dialect, &str, Verb)] = &[
        (Dialect::MySql, "SELECT c FROM sbtest1 WHERE id=?", Verb::Select),
        (Dialect::MySql, "  /* app */ ((select 1)) union (select 2)", Verb::Select),
        (Dialect::MySql, "INSERT INTO t VALUES (1)", Verb::Insert),
        (Dialect::MySql, "update t set a = 1", Verb::Update),
        (Dialect::MySql, "DELETE FROM t", Verb::Delete),
        (Dialect::MySql, "REPLACE INTO t VALUES (1)", Verb::Replace),
        (Dialect::MySql, "START TRANSACTION READ ONLY", Verb::Begin),
        (Dialect::MySql, "START SLAVE", Verb::Other),
        (Dialect::Postgres, "BEGIN ISOLATION LEVEL SERIALIZABLE", Verb::Begin),
        (Dialect::Postgres, "begin", Verb::Begin),
        (Dialect::Postgres, "COMMIT", Verb::Commit),
        (Dialect::Postgres, "END", Verb::Commit),
        (Dialect::Postgres, "ROLLBACK TO SAVEPOINT a", Verb::Rollback),
        (Dialect::Postgres, "ABORT", Verb::Rollback),
        (Dialect::Postgres, "SAVEPOINT a", Verb::Savepoint),
        (Dialect::Postgres, "CREATE TABLE t (a int)", Verb::Create),
        (Dialect::Postgres, "ALTER TABLE t ADD b int", Verb::Alter),
        (Dialect::Postgres, "DROP TABLE t", Verb::Drop),
        (Dialect::Postgres, "TRUNCATE t", Verb::Truncate),
        (Dialect::MySql, "/*!40101 SET NAMES utf8 */", Verb::Set),
        (Dialect::MySql, "SHOW TABLES", Verb::Show),
        (Dialect::MySql, "CALL p(1)", Verb::Call),
        (Dialect::MySql, "USE db", Verb::Use),
        (Dialect::MySql, "EXPLAIN SELECT 1", Verb::Explain),
        (Dialect::MySql, "DESCRIBE t", Verb::Explain),
        (Dialect::MySql, "desc t", Verb::Explain),
        (Dialect::MySql, "PREPARE s FROM 'SELECT 1'", Verb::Prepare),
        (Dialect::MySql, "EXECUTE s USING @a", Verb::Execute),
        (Dialect::MySql, "DEALLOCATE PREPARE s", Verb::Deallocate),
        (Dialect::MySql, "GRANT SELECT ON t TO u", Verb::Grant),
        (Dialect::MySql, "REVOKE SELECT ON t FROM u", Verb::Revoke),
        (Dialect::MySql, "LOCK TABLES t READ", Verb::Lock),
        (Dialect::MySql, "UNLOCK TABLES", Verb::Unlock),
        (Dialect::Postgres, "COPY t FROM STDIN", Verb::Copy),
        (Dialect::Postgres, "VACUUM ANALYZE t", Verb::Vacuum),
        (Dialect::Postgres, "ANALYZE t", Verb::Analyze),
        (Dialect::Postgres, "ANALYSE t", Verb::Analyze),
        (Dialect::Postgres, "LISTEN ch", Verb::Listen),
        (Dialect::Postgres, "NOTIFY ch, 'x'", Verb::Notify),
        (Dialect::Postgres, "DO $$ BEGIN END $$", Verb::Do),
        (Dialect::MySql, "LOAD DATA INFILE 'f' INTO TABLE t", Verb::Load),
        (Dialect::Postgres, "TABLE t", Verb::Select),
        (Dialect::Postgres, "VALUES (1), (2)", Verb::Select),
        (Dialect::MySql, "FLUSH TABLES", Verb::Other),
        (Dialect::MySql, "", Verb::Other),
        (Dialect::MySql, "-- only a comment", Verb::Other),
        (Dialect::MySql, "'not a verb'", Verb::Other),
        (Dialect::MySql, "\u{fffd} garbage", Verb::Other),
    ];
    for (dialect, sql, expected) in cases {
        assert_eq!(verb(sql.as_bytes(), *dialect), *expected, "{sql:?}");
    }
}

#[test]
fn with_takes_the_main_statements_verb() {
    let cases: &[(&str, Verb)] = &[
        ("WITH a AS (SELECT 1) SELECT * FROM a", Verb::Select),
        ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r", Verb::Select),
        ("WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM moved", Verb::Insert),
        ("WITH x AS MATERIALIZED (SELECT 1), y AS (SELECT 2) UPDATE t SET a = 1", Verb::Update),
        ("WITH x AS (SELECT 1) DELETE FROM t", Verb::Delete),
        ("WITH x AS (SELECT 1", Verb::With),
    ];
    for (sql, expected) in cases {
        assert_eq!(verb(sql.as_bytes(), Dialect::Postgres), *expected, "{sql:?}");
    }
    // Beyond the scan limit, WITH stays WITH.
    let long = format!("WITH {} SELECT 1", "x, ".repeat(WITH_SCAN_TOKENS));
    assert_eq!(verb(long.as_bytes(), Dialect::Postgres), Verb::With);
}

#[test]
fn as_str_is_upper_case_and_display_matches() {
    assert_eq!(Verb::Select.as_str(), "SELECT");
    assert_eq!(Verb::Other.as_str(), "OTHER");
    assert_eq!(Verb::Begin.to_string(), "BEGIN");
}

#[test]
fn hostile_input() {
    let parens = vec![b'('; 1 << 20];
    assert_eq!(verb(&parens, Dialect::MySql), Verb::Other);
    let mut deep = vec![b'('; 100_000];
    deep.extend_from_slice(b"SELECT 1");
    // The verb is past the first MAX_DIGEST_INPUT bytes: not looked for.
    assert_eq!(verb(&deep, Dialect::MySql), Verb::Other);
    assert_eq!(verb(b"\xff\xfe\x00", Dialect::Postgres), Verb::Other);
}
