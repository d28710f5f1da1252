//! Tests for `tables`: sqlparser path, CTE scoping, the keyword-scan fallback, bounds.

use super::*;

fn names(sql: &str, dialect: Dialect) -> (Vec<String>, bool) {
    let scan = tables(sql.as_bytes(), dialect);
    (scan.tables, scan.fallback)
}

fn check(dialect: Dialect, cases: &[(&str, &[&str], bool)]) {
    for (sql, expected, fallback) in cases {
        let (tables, used_fallback) = names(sql, dialect);
        assert_eq!(tables, *expected, "{sql:?}");
        assert_eq!(used_fallback, *fallback, "fallback for {sql:?}");
    }
}

#[test]
fn mysql_statements() {
    check(
        Dialect::MySql,
        &[
            ("SELECT c FROM sbtest1 WHERE id=?", &["sbtest1"], false),
            (
                "SELECT * FROM `db`.`Order Items` o JOIN users u ON u.id = o.user_id",
                &["db.Order Items", "users"],
                false,
            ),
            ("INSERT INTO t (a) SELECT a FROM u WHERE a IN (SELECT a FROM v)", &["t", "u", "v"], false),
            // sqlparser does not parse multi-table UPDATE; the keyword scan finds both.
            ("UPDATE t1, t2 SET t1.a = t2.a WHERE t1.id = t2.id", &["t1", "t2"], true),
            ("DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id", &["t1", "t2"], false),
            ("REPLACE INTO t VALUES (1)", &["t"], false),
            ("SELECT 1 FROM DUAL", &[], false),
            ("SELECT 1", &[], false),
            ("SELECT * FROM a; SELECT * FROM b, a", &["a", "b"], false),
            ("CREATE TABLE IF NOT EXISTS s.t (a INT)", &["s.t"], false),
            ("DROP TABLE a, b", &["a", "b"], false),
            ("DROP INDEX i ON t", &["t"], false),
            ("ALTER TABLE t ADD COLUMN b INT", &["t"], false),
            ("TRUNCATE TABLE t", &["t"], false),
        ],
    );
}

#[test]
fn postgres_statements() {
    check(
        Dialect::Postgres,
        &[
            ("UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2", &["pgbench_accounts"], false),
            (r#"SELECT "users"."id" FROM public."Users" AS "users" WHERE id = $1::int"#, &["public.Users"], false),
            ("SELECT * FROM a LEFT JOIN b USING (id) WHERE b.x = ANY($1)", &["a", "b"], false),
            ("INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO UPDATE SET a = excluded.a RETURNING id", &["t"], false),
            ("TRUNCATE a, b", &["a", "b"], false),
            ("SELECT * FROM generate_series(1, 3)", &["generate_series"], false),
            ("COPY c FROM STDIN", &["c"], false),
            ("COPY public.items (id, name) TO STDOUT WITH (FORMAT csv)", &["public.items"], false),
            ("COPY (SELECT g FROM t) TO STDOUT", &["t"], false),
        ],
    );
}

#[test]
fn cte_names_are_not_tables_within_their_scope() {
    check(
        Dialect::Postgres,
        &[
            ("WITH a AS (SELECT * FROM t) SELECT * FROM a JOIN u ON true", &["t", "u"], false),
            // A non-recursive CTE body sees the real table of the same name.
            ("WITH t AS (SELECT * FROM t) SELECT * FROM t", &["t"], false),
            ("WITH x AS (SELECT 1) SELECT * FROM secrets", &["secrets"], false),
            // Outside the WITH's query the name is a table again.
            ("SELECT * FROM secrets UNION ALL (WITH secrets AS (SELECT 1) SELECT * FROM secrets)", &["secrets"], false),
            ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r", &[], false),
            ("WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b", &[], false),
            ("WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM moved", &["a", "b"], false),
        ],
    );
}

#[test]
fn fallback_on_parse_errors() {
    check(
        Dialect::MySql,
        &[
            ("SELECT FROM WHERE", &[], true),
            ("SELECT * FROM a, `b` AS x, c y JOIN d WHERE ((", &["a", "b", "c", "d"], true),
            ("INSERT IGNORE INTO t1 (a) SELEKT FROM t2", &["t1", "t2"], true),
            ("UPDATE LOW_PRIORITY t SET a = = 1", &["t"], true),
            ("SELECT * FROM t FOR UPDATE SKIP LOCKED ((", &["t"], true),
            ("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a) ((", &["t"], true),
            ("SELECT a INTO @v FROM t ((", &["t"], true),
            ("LOCK TABLES a READ, b WRITE ((", &["a", "b"], true),
            ("TRUNCATE TABLE s.t ((", &["s.t"], true),
            ("SELECT * FROM DUAL ((", &[], true),
        ],
    );
    check(
        Dialect::Postgres,
        &[
            (r#"SELECT * FROM ONLY "A""B".c WHERE (("#, &[r#"A"B.c"#], true),
            ("COPY t (a, b) FROM STDIN WITH ((", &[], true),
            ("DELETE FROM t USING u, v WHERE ((", &["t", "u", "v"], true),
        ],
    );
}

#[test]
fn names_are_capped_and_deduplicated() {
    let many: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
    let sql = format!("SELECT * FROM {}, t0", many.join(", "));
    let scan = tables(sql.as_bytes(), Dialect::MySql);
    assert_eq!(scan.tables.len(), MAX_TABLES);
    assert!(scan.truncated);
    let scan = tables(b"SELECT * FROM a JOIN a JOIN a", Dialect::MySql);
    assert_eq!(scan.tables, ["a"]);
    assert!(!scan.truncated);
}

/// Runs `f` on a thread with a 2 MiB stack — tokio's worker default, and the test
/// harness's — so that a stack overflow in sqlparser's parse, walk or drop fails the test.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    let handle = std::thread::Builder::new().stack_size(2 << 20).spawn(f);
    assert!(handle.is_ok_and(|h| h.join().is_ok()));
}

#[test]
fn deep_and_long_input_stays_within_the_stack() {
    on_small_stack(|| {
        // Long enough to fill MAX_PARSE_INPUT, so sqlparser sees each of them.
        let n = MAX_PARSE_INPUT / 8;
        let inputs: Vec<String> = vec![
            "(".repeat(1 << 20),
            "(".repeat(MAX_PARSE_INPUT),
            format!("SELECT {}1{}", "(".repeat(n), ")".repeat(n)),
            format!("SELECT {}1{}", "(SELECT ".repeat(n / 4), ")".repeat(n / 4)),
            format!("SELECT * FROM {}t{}", "(".repeat(n), ")".repeat(n)),
            format!("SELECT 1{}", "+1".repeat(n)),
            format!("SELECT 1 FROM t WHERE {}", vec!["a = 1"; n / 8].join(" AND ")),
            format!("SELECT {}1", "NOT ".repeat(n / 2)),
            format!("SELECT {}1", "- ".repeat(n)),
            format!("SELECT a{}", "[1]".repeat(n)),
            format!("SELECT {}1", "CASE WHEN 1 THEN ".repeat(n / 8)),
            format!("SELECT x{}", "::int[]".repeat(n / 4)),
            format!("SELECT a{}", "->a".repeat(n / 2)),
            format!("SELECT a{}", " COLLATE x".repeat(n / 4)),
            format!("SELECT a{}", " IS NULL".repeat(n / 4)),
            format!("SELECT 1 FROM a{}", " JOIN a ON 1".repeat(n / 4)),
            format!("SELECT 1 {}", "UNION SELECT 1 ".repeat(n / 4)),
            format!("SELECT {}", "ARRAY[".repeat(n)),
        ];
        for input in &inputs {
            for dialect in [Dialect::MySql, Dialect::Postgres] {
                let _ = tables(input.as_bytes(), dialect);
            }
        }
    });
}

#[test]
fn long_text_uses_the_fallback() {
    let long = format!("SELECT * FROM t WHERE a = '{}'", "x".repeat(MAX_PARSE_INPUT));
    assert_eq!(names(&long, Dialect::MySql), (vec!["t".to_string()], true));
    let scan = tables(format!("SELECT * FROM t WHERE {}", " ".repeat(MAX_SCAN_INPUT)).as_bytes(), Dialect::MySql);
    assert_eq!(scan.tables, ["t"]);
    assert!(scan.truncated && scan.fallback);
}

#[test]
fn non_utf8_and_garbage() {
    let scan = tables(b"SELECT * FROM t\xff WHERE a = '\xfe'", Dialect::MySql);
    assert_eq!(scan.tables, ["t\u{fffd}"]);
    for dialect in [Dialect::MySql, Dialect::Postgres] {
        for input in [&b""[..], b"\x00\x01\x02", b"FROM", b"FROM .", b"FROM a.", b"FROM `", b"FROM \"", b"INTO ,,,"] {
            let _ = tables(input, dialect);
        }
    }
}
