//! The `postgres` listener against a real PostgreSQL 15 with real clients: psql (simple
//! Query, multi-statement strings, COPY in and out), pgbench in its three query modes,
//! psycopg 3 (extended protocol with parameters, named prepared statements, pipelined
//! executemany, LISTEN/NOTIFY); per-op and per-table counters, errors by SQLSTATE class,
//! sessions and transactions, digests on `/queries`, the query log; SCRAM and MD5 logins;
//! TLS terminated by sluice or forwarded opaque; a deny rule and a rate limit answered
//! with ErrorResponses on a session that stays usable; and hostile input.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use support::*;

/// Debian's Python, where `python3-psycopg` installs.
const PYTHON: &str = "/usr/bin/python3";

fn pg_listener(name: &str, db: &Postgres, extra: &str) -> Proxy {
    Proxy::start(&one_listener(name, "postgres", &[db.addr()], extra))
}

fn ops(m: &Metrics, listener: &str, op: &str, outcome: &str) -> f64 {
    m.get("sluice_ops_total", &[("listener", listener), ("protocol", "postgres"), ("op", op), ("outcome", outcome)])
}

fn table_ops(m: &Metrics, listener: &str, table: &str, op: &str) -> f64 {
    m.get("sluice_postgres_table_ops_total", &[("listener", listener), ("table", table), ("op", op)])
}

fn sessions(m: &Metrics, listener: &str, outcome: &str) -> f64 {
    m.get("sluice_postgres_sessions_total", &[("listener", listener), ("outcome", outcome)])
}

fn errors(m: &Metrics, listener: &str, class: &str) -> f64 {
    m.get("sluice_postgres_errors_total", &[("listener", listener), ("class", class)])
}

fn transactions(m: &Metrics, listener: &str, end: &str) -> f64 {
    m.get("sluice_postgres_transactions_total", &[("listener", listener), ("end", end)])
}

/// Statements counted on a listener (every op but the connection's own `connect` and
/// `close`), with `outcome` or any.
fn statements(m: &Metrics, listener: &str, outcome: Option<&str>) -> f64 {
    let mut labels = vec![("listener", listener), ("protocol", "postgres")];
    labels.extend(outcome.map(|o| ("outcome", o)));
    let connection: f64 = ["connect", "close"]
        .iter()
        .map(|op| m.get("sluice_ops_total", &[labels.as_slice(), &[("op", op)]].concat()))
        .sum();
    m.get("sluice_ops_total", &labels) - connection
}

/// Runs a psql script through `addr` as `bench`: psql sends each statement of it as its
/// own Query, in one session, and goes on after errors.
fn psql_script(addr: SocketAddr, sql: &str) -> PsqlOutput {
    psql_login(addr, Login::BENCH, &[], Some(sql))
}

/// The `/queries` rows of a listener.
fn digests(proxy: &Proxy, listener: &str) -> Vec<serde_json::Value> {
    let (status, body) = proxy.admin(&format!("/queries?listener={listener}&top=50"));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["listeners"][0]["queries"].as_array().unwrap_or_else(|| panic!("no queries in {body}")).clone()
}

/// The one digest row whose text starts with `prefix`.
fn digest<'a>(rows: &'a [serde_json::Value], prefix: &str) -> &'a serde_json::Value {
    let found: Vec<&serde_json::Value> =
        rows.iter().filter(|q| q["digest"].as_str().is_some_and(|d| d.starts_with(prefix))).collect();
    assert_eq!(found.len(), 1, "one digest starting {prefix:?} in {rows:#?}");
    found[0]
}

/// libpq connection string for psycopg: `bench` through `addr`, without TLS.
fn conninfo(addr: SocketAddr) -> String {
    format!(
        "host={} port={} user=bench password={POSTGRES_PASSWORD} dbname=bench sslmode=disable connect_timeout=10",
        addr.ip(),
        addr.port()
    )
}

/// Runs a Python script (with `CONNINFO` defined first) and returns its stdout's lines.
fn python(addr: SocketAddr, script: &str) -> Vec<String> {
    let script = format!("import signal\nsignal.alarm(60)\nimport psycopg\nCONNINFO = {:?}\n{script}", conninfo(addr));
    let out = Command::new(PYTHON).args(["-c", &script]).output().expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed (psycopg 3: apt-get install python3-psycopg):\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}

#[test]
fn psql_and_pgbench_work_through_a_tcp_listener() {
    let db = Postgres::start();
    let proxy = Proxy::start(&one_listener("pg_tcp", "tcp", &[db.addr()], ""));
    let addr = proxy.addr("pg_tcp");
    let out = psql_at(addr, "bench", POSTGRES_PASSWORD, "bench", &["-c", "SELECT 6 * 7"]);
    assert!(out.ok, "{out:?}");
    assert_eq!(out.lines(), ["42"]);
    pgbench_at(db.socket_addr(), &["-i", "-s", "1", "-q"]).unwrap();
    let report = pgbench_at(addr, &["-t", "20", "-c", "2", "-M", "prepared"]).unwrap();
    assert_eq!(pgbench_field(&report, "number of transactions actually processed:"), 40);
}

#[test]
fn psql_statements_are_counted_per_op_and_table_and_digested() {
    let db = Postgres::start();
    let log = Scratch::new("pg-querylog");
    let log_path = log.path("queries.jsonl");
    let extra = format!("    postgres: {{ query_log: {{ path: \"{}\", sample_rate: 1 }} }}\n", log_path.display());
    let proxy = pg_listener("pg_cli", &db, &extra);
    let addr = proxy.addr("pg_cli");
    let out = psql_script(
        addr,
        "CREATE TABLE items (id int PRIMARY KEY, name text);\n\
         INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c');\n\
         SELECT name FROM items WHERE id IN (1, 2);\n\
         SELECT name FROM items WHERE id IN (3);\n\
         UPDATE items SET name = 'z' WHERE id = 3;\n\
         SELECT * FROM no_such_table;\n\
         SELECT 1 / 0;\n",
    );
    assert_eq!(out.lines(), ["a", "b", "c"], "{out:?}");
    assert!(out.stderr.contains(r#"ERROR:  relation "no_such_table" does not exist"#), "{}", out.stderr);
    assert!(out.stderr.contains("ERROR:  division by zero"), "{}", out.stderr);
    // One Query string with three statements counts three.
    let multi = psql_at(
        addr,
        "bench",
        POSTGRES_PASSWORD,
        "bench",
        &[
            "-c",
            "INSERT INTO items (id, name) VALUES (4, 'd'); DELETE FROM items WHERE id = 4; SELECT count(*) FROM items",
        ],
    );
    assert!(multi.ok, "{multi:?}");
    assert_eq!(multi.lines(), ["3"]);

    let m = proxy.metrics();
    assert_eq!(ops(&m, "pg_cli", "CREATE", "ok"), 1.0);
    assert_eq!(ops(&m, "pg_cli", "INSERT", "ok"), 2.0);
    assert_eq!(ops(&m, "pg_cli", "SELECT", "ok"), 3.0);
    assert_eq!(ops(&m, "pg_cli", "SELECT", "error"), 2.0);
    assert_eq!(ops(&m, "pg_cli", "UPDATE", "ok"), 1.0);
    assert_eq!(ops(&m, "pg_cli", "DELETE", "ok"), 1.0);
    assert_eq!(table_ops(&m, "pg_cli", "items", "SELECT"), 3.0);
    assert_eq!(table_ops(&m, "pg_cli", "items", "INSERT"), 2.0);
    assert_eq!(table_ops(&m, "pg_cli", "no_such_table", "SELECT"), 1.0);
    // 42P01 undefined_table and 22012 division_by_zero.
    assert_eq!(errors(&m, "pg_cli", "42"), 1.0);
    assert_eq!(errors(&m, "pg_cli", "22"), 1.0);
    assert_eq!(sessions(&m, "pg_cli", "ok"), 2.0);
    assert_eq!(sessions(&m, "pg_cli", "failed"), 0.0);

    // Both SELECTs by id share one digest: the IN-list is collapsed.
    let rows = digests(&proxy, "pg_cli");
    let select = digest(&rows, "SELECT name FROM items WHERE id IN (...)");
    assert_eq!(select["op"], "SELECT");
    assert_eq!(select["count"], 2);
    assert_eq!(select["rows"], 3);
    assert_eq!(select["tables"], serde_json::json!(["items"]));
    let insert = digest(&rows, "INSERT INTO items VALUES (...)");
    assert_eq!(insert["count"], 1);
    assert_eq!(insert["rows"], 3, "rows inserted, from the command tag");
    assert_eq!(digest(&rows, "INSERT INTO items(id, name) VALUES (...)")["rows"], 1);
    let update = digest(&rows, "UPDATE items SET name = ? WHERE id = ?");
    assert_eq!(update["rows"], 1);
    assert_eq!(digest(&rows, "SELECT * FROM no_such_table")["errors"], 1);
    assert_eq!(digest(&rows, "SELECT ? / ?")["errors"], 1);

    proxy.drain_and_wait();
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&log_path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 10, "one line per statement: {lines:#?}");
    let error = lines.iter().find(|l| l["sqlstate"] == "42P01").unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(error["outcome"], "error");
    assert_eq!(error["protocol"], "postgres");
    assert_eq!(error["op"], "SELECT");
    assert_eq!(error["user"], "bench");
    assert_eq!(error["database"], "bench");
    assert_eq!(error["tables"], serde_json::json!(["no_such_table"]));
    assert!(error.get("error_code").is_none(), "PostgreSQL has no numeric error code: {error}");
    assert_eq!(lines.iter().filter(|l| l["sqlstate"] == "22012").count(), 1);
    let update = lines.iter().find(|l| l["op"] == "UPDATE").unwrap();
    assert_eq!(update["outcome"], "ok");
    assert_eq!(update["rows"], 1);
    assert_eq!(update["digest"], "UPDATE items SET name = ? WHERE id = ?");
}

/// pgbench's default TPC-B script through sluice in `mode`: sluice's counts against the
/// transactions pgbench reports. Each transaction is BEGIN; UPDATE accounts; SELECT
/// accounts; UPDATE tellers; UPDATE branches; INSERT history; END (which is COMMIT).
fn pgbench_counts_match(name: &str, mode: &str) {
    let db = Postgres::start();
    pgbench_at(db.socket_addr(), &["-i", "-s", "1", "-q"]).unwrap();
    let proxy = pg_listener(name, &db, "");
    let addr = proxy.addr(name);
    let report = pgbench_at(addr, &["-t", "25", "-c", "2", "-M", mode]).unwrap();
    let tx = pgbench_field(&report, "number of transactions actually processed:") as f64;
    assert_eq!(tx, 50.0, "{report}");
    assert_eq!(pgbench_field(&report, "number of failed transactions:"), 0, "{report}");

    let m = proxy.metrics();
    assert_eq!(ops(&m, name, "BEGIN", "ok"), tx);
    assert_eq!(ops(&m, name, "UPDATE", "ok"), 3.0 * tx);
    assert_eq!(ops(&m, name, "INSERT", "ok"), tx);
    assert_eq!(ops(&m, name, "COMMIT", "ok"), tx, "END is COMMIT");
    assert_eq!(ops(&m, name, "OTHER", "ok"), 0.0);
    assert_eq!(table_ops(&m, name, "pgbench_accounts", "UPDATE"), tx);
    assert_eq!(table_ops(&m, name, "pgbench_accounts", "SELECT"), tx);
    assert_eq!(table_ops(&m, name, "pgbench_tellers", "UPDATE"), tx);
    assert_eq!(table_ops(&m, name, "pgbench_branches", "UPDATE"), tx);
    assert_eq!(table_ops(&m, name, "pgbench_history", "INSERT"), tx);
    // Before the run pgbench reads the scale and looks for partitions (2 SELECTs), then
    // vacuums two tables and truncates the history, on a connection of its own.
    assert_eq!(ops(&m, name, "SELECT", "ok"), tx + 2.0);
    assert_eq!(ops(&m, name, "VACUUM", "ok"), 2.0);
    assert_eq!(ops(&m, name, "TRUNCATE", "ok"), 1.0);
    assert_eq!(table_ops(&m, name, "pgbench_history", "TRUNCATE"), 1.0);
    for outcome in ["error", "denied", "limited"] {
        assert_eq!(statements(&m, name, Some(outcome)), 0.0, "no statement {outcome}");
    }
    assert_eq!(transactions(&m, name, "commit"), tx);
    assert_eq!(transactions(&m, name, "rollback"), 0.0);
    // The setup connection and the two clients.
    assert_eq!(sessions(&m, name, "ok"), 3.0);

    // Literals (simple) and $n parameters (extended, prepared) alike leave one digest per
    // statement of the script.
    let rows = digests(&proxy, name);
    let update = digest(&rows, "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?");
    assert_eq!(update["count"], tx);
    assert_eq!(update["rows"], tx, "one row updated each");
    assert_eq!(update["tables"], serde_json::json!(["pgbench_accounts"]));
    let select = digest(&rows, "SELECT abalance FROM pgbench_accounts WHERE aid = ?");
    assert_eq!(select["count"], tx);
    assert_eq!(select["rows"], tx, "one row returned each");
    assert_eq!(digest(&rows, "INSERT INTO pgbench_history")["count"], tx);
    assert_eq!(digest(&rows, "END")["op"], "COMMIT");
}

#[test]
fn pgbench_simple_is_counted_exactly() {
    pgbench_counts_match("pg_bench_simple", "simple");
}

#[test]
fn pgbench_extended_is_counted_exactly() {
    pgbench_counts_match("pg_bench_extended", "extended");
}

#[test]
fn pgbench_prepared_is_counted_exactly() {
    pgbench_counts_match("pg_bench_prepared", "prepared");
}

#[test]
fn copy_in_and_out_pass_through_and_count() {
    let db = Postgres::start();
    let proxy = pg_listener("pg_copy", &db, "");
    let addr = proxy.addr("pg_copy");
    // Enough rows that the CopyData spans many reads.
    let rows = 20_000;
    let mut script = String::from("CREATE TABLE c (id int, v text);\nCOPY c FROM STDIN;\n");
    for i in 0..rows {
        script.push_str(&format!("{i}\tvalue number {i}\n"));
    }
    script.push_str("\\.\n");
    // A COPY the server refuses half way; the session goes on.
    script.push_str("COPY c FROM STDIN;\n1\tfine\nnot-a-number\tbad\n\\.\n");
    script.push_str("SELECT count(*), sum(id) FROM c;\nCOPY (SELECT v FROM c WHERE id < 3 ORDER BY id) TO STDOUT;\n");
    let out = psql_script(addr, &script);
    assert_eq!(
        out.lines(),
        [format!("{rows}|{}", rows * (rows - 1) / 2).as_str(), "value number 0", "value number 1", "value number 2"],
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(r#"invalid input syntax for type integer: "not-a-number""#), "{}", out.stderr);

    // The whole table back out through sluice with psql's \copy.
    let dump = psql_at(addr, "bench", POSTGRES_PASSWORD, "bench", &["-c", "\\copy c TO STDOUT"]);
    assert!(dump.ok, "{}", dump.stderr);
    assert_eq!(dump.stdout.lines().count(), rows);
    assert_eq!(dump.stdout.lines().last(), Some(format!("{}\tvalue number {}", rows - 1, rows - 1).as_str()));
    assert_eq!(db.query("SELECT count(*) FROM c"), rows.to_string());

    let m = proxy.metrics();
    assert_eq!(ops(&m, "pg_copy", "COPY", "ok"), 3.0);
    assert_eq!(ops(&m, "pg_copy", "COPY", "error"), 1.0);
    assert_eq!(errors(&m, "pg_copy", "22"), 1.0);
    assert_eq!(table_ops(&m, "pg_copy", "c", "COPY"), 4.0, "COPY (SELECT …) reads c through its query");
    let digests = digests(&proxy, "pg_copy");
    let copy_in = digest(&digests, "COPY c FROM STDIN");
    assert_eq!(copy_in["count"], 2);
    assert_eq!(copy_in["errors"], 1);
    assert_eq!(copy_in["rows"], rows, "rows copied in, from the command tag");
    assert_eq!(digest(&digests, "COPY c TO STDOUT")["rows"], rows);
}

#[test]
fn listen_and_notify_deliver_through_sluice() {
    let db = Postgres::start();
    let proxy = pg_listener("pg_notify", &db, "");
    let addr = proxy.addr("pg_notify");
    let lines = python(
        addr,
        r#"
import time
listener = psycopg.connect(CONNINFO, autocommit=True)
got = []
listener.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
listener.execute("LISTEN jobs")
notifier = psycopg.connect(CONNINFO, autocommit=True)
notifier.execute("NOTIFY jobs, 'first'")
notifier.execute("SELECT pg_notify(%s, %s)", ("jobs", "second"))
# Notifications arrive between statements; any statement lets psycopg read them.
deadline = time.time() + 20
while len(got) < 2 and time.time() < deadline:
    listener.execute("SELECT 1")
    time.sleep(0.05)
for channel, payload in got:
    print(channel, payload)
listener.execute("UNLISTEN *")
"#,
    );
    assert_eq!(lines, ["jobs first", "jobs second"]);
    let m = proxy.metrics();
    assert_eq!(ops(&m, "pg_notify", "LISTEN", "ok"), 1.0);
    assert_eq!(ops(&m, "pg_notify", "NOTIFY", "ok"), 1.0);
    assert!(ops(&m, "pg_notify", "SELECT", "ok") >= 2.0);
    assert_eq!(statements(&m, "pg_notify", Some("error")), 0.0);
}

#[test]
fn scram_and_md5_logins_pass_and_wrong_passwords_fail_cleanly() {
    let db = Postgres::start();
    let proxy = pg_listener("pg_auth", &db, "");
    let addr = proxy.addr("pg_auth");
    for (user, password) in [SCRAM_USER, MD5_USER] {
        let out = psql_at(addr, user, password, "bench", &["-c", "SELECT current_user"]);
        assert!(out.ok, "{user}: {out:?}");
        assert_eq!(out.lines(), [user]);
        let wrong = psql_at(addr, user, "wrong", "bench", &["-c", "SELECT current_user"]);
        assert!(!wrong.ok, "{user} with a wrong password: {wrong:?}");
        assert!(
            wrong.stderr.contains(&format!(r#"password authentication failed for user "{user}""#)),
            "{user}: {}",
            wrong.stderr
        );
        assert!(wrong.stdout.is_empty());
    }
    // The methods really were SCRAM and MD5.
    assert_eq!(db.query("SELECT left(rolpassword, 13) FROM pg_authid WHERE rolname = 'scram_user'"), "SCRAM-SHA-256");
    assert_eq!(db.query("SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'md5_user'"), "md5");
    let m = proxy.metrics();
    assert_eq!(sessions(&m, "pg_auth", "ok"), 2.0);
    assert_eq!(sessions(&m, "pg_auth", "failed"), 2.0);
    // 28P01 invalid_password.
    assert_eq!(errors(&m, "pg_auth", "28"), 2.0);
    assert_eq!(ops(&m, "pg_auth", "SELECT", "ok"), 2.0);
    // The listener still serves after the refusals.
    let again = psql_at(addr, "bench", POSTGRES_PASSWORD, "bench", &["-c", "SELECT 1"]);
    assert_eq!(again.lines(), ["1"], "{again:?}");
}

#[test]
fn psycopg_parameterized_queries_are_counted_and_attributed() {
    let db = Postgres::start();
    let proxy = pg_listener("pg_py", &db, "");
    let addr = proxy.addr("pg_py");
    let lines = python(
        addr,
        r#"
c = psycopg.connect(CONNINFO)
c.execute("CREATE TABLE py (id int PRIMARY KEY, v text)")
with c.cursor() as cur:
    cur.executemany("INSERT INTO py VALUES (%s, %s)", [(i, "v%d" % i) for i in range(50)])
c.commit()
print(c.execute("SELECT count(*), max(id) FROM py WHERE id >= %s", (10,)).fetchone())
try:
    c.execute("SELECT * FROM nope WHERE id = %s", (1,))
except psycopg.errors.UndefinedTable as e:
    print("error", e.sqlstate)
c.rollback()
c.execute("UPDATE py SET v = %s WHERE id = %s", ("x", 1))
c.commit()
# Named server-side prepared statements: one Parse, then Bind/Execute each time.
for i in range(5):
    print(c.execute("SELECT v FROM py WHERE id = %s", (i,), prepare=True).fetchone()[0])
c.commit()
c.close()
"#,
    );
    assert_eq!(lines, ["(40, 49)", "error 42P01", "v0", "x", "v2", "v3", "v4"]);
    let m = proxy.metrics();
    assert_eq!(ops(&m, "pg_py", "CREATE", "ok"), 1.0);
    assert_eq!(ops(&m, "pg_py", "INSERT", "ok"), 50.0, "executemany executes once per row");
    assert_eq!(ops(&m, "pg_py", "UPDATE", "ok"), 1.0);
    assert_eq!(ops(&m, "pg_py", "SELECT", "ok"), 6.0);
    assert_eq!(table_ops(&m, "pg_py", "py", "INSERT"), 50.0);
    assert_eq!(table_ops(&m, "pg_py", "py", "SELECT"), 6.0);
    assert_eq!(table_ops(&m, "pg_py", "py", "UPDATE"), 1.0);
    // The failed SELECT is counted by an_extended_statement_refused_at_parse_is_a_failed_statement.
    assert_eq!(errors(&m, "pg_py", "42"), 1.0);
    // psycopg opens each transaction with BEGIN; the failed one ends in ROLLBACK.
    assert_eq!(ops(&m, "pg_py", "BEGIN", "ok"), 4.0);
    assert_eq!(ops(&m, "pg_py", "COMMIT", "ok"), 3.0);
    assert_eq!(ops(&m, "pg_py", "ROLLBACK", "ok"), 1.0);
    assert_eq!(transactions(&m, "pg_py", "commit"), 3.0);
    assert_eq!(transactions(&m, "pg_py", "rollback"), 1.0);

    let rows = digests(&proxy, "pg_py");
    assert!(rows.iter().all(|q| !q["digest"].as_str().unwrap_or("").contains('$')), "{rows:#?}");
    let insert = digest(&rows, "INSERT INTO py VALUES (");
    assert_eq!(insert["count"], 50);
    assert_eq!(insert["rows"], 50);
    let range = digest(&rows, "SELECT count(*), max(id) FROM py WHERE id >= ?");
    assert_eq!(range["count"], 1);
    let prepared = digest(&rows, "SELECT v FROM py WHERE id = ?");
    assert_eq!(prepared["count"], 5);
    assert_eq!(prepared["rows"], 5);
    assert_eq!(prepared["tables"], serde_json::json!(["py"]));
}

/// Extended-protocol clients learn of most SQL errors (syntax, undefined table or column)
/// at Parse: the server answers the Parse with an ErrorResponse and skips the batch's
/// Bind and Execute up to the Sync. The statement the client executed still failed, and
/// is counted like a failing simple Query: an op with outcome `error`, its tables, its
/// digest's errors and a query log line with the SQLSTATE.
#[test]
fn an_extended_statement_refused_at_parse_is_a_failed_statement() {
    let db = Postgres::start();
    db.query("CREATE TABLE py (id int)");
    db.query("ALTER TABLE py OWNER TO bench");
    let log = Scratch::new("pg-parse-errors");
    let log_path = log.path("queries.jsonl");
    let extra = format!("    postgres: {{ query_log: {{ path: \"{}\", sample_rate: 1 }} }}\n", log_path.display());
    let proxy = pg_listener("pg_parse_err", &db, &extra);
    let addr = proxy.addr("pg_parse_err");
    let lines = python(
        addr,
        r#"
c = psycopg.connect(CONNINFO, autocommit=True)
for sql in ["SELECT * FROM nope WHERE id = %s", "SELECT nocol FROM py WHERE id = %s"]:
    try:
        c.execute(sql, (1,))
    except psycopg.Error as e:
        print(e.sqlstate)
print(c.execute("SELECT count(*) FROM py WHERE id > %s", (0,)).fetchone()[0])
"#,
    );
    assert_eq!(lines, ["42P01", "42703", "0"]);
    let m = proxy.metrics();
    assert_eq!(errors(&m, "pg_parse_err", "42"), 2.0);
    assert_eq!(ops(&m, "pg_parse_err", "SELECT", "ok"), 1.0);
    assert_eq!(ops(&m, "pg_parse_err", "SELECT", "error"), 2.0);
    assert_eq!(table_ops(&m, "pg_parse_err", "nope", "SELECT"), 1.0);
    assert_eq!(table_ops(&m, "pg_parse_err", "py", "SELECT"), 2.0);
    let rows = digests(&proxy, "pg_parse_err");
    assert_eq!(digest(&rows, "SELECT * FROM nope WHERE id = ?")["errors"], 1);
    assert_eq!(digest(&rows, "SELECT nocol FROM py WHERE id = ?")["errors"], 1);
    proxy.drain_and_wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let states: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|l| Some(l["sqlstate"].as_str()?.to_owned()))
        .collect();
    assert_eq!(states, ["42P01", "42703"], "{log}");
}

#[test]
fn sluice_terminates_tls_and_still_sees_every_statement() {
    let db = Postgres::start();
    let dir = Scratch::new("pg-tls");
    let (cert, key) = self_signed(&dir);
    let extra = format!(
        "    tls: {{ cert: \"{}\", key: \"{}\" }}\n    rules:\n      - {{ match: {{ op: DROP }}, action: deny }}\n",
        cert.display(),
        key.display()
    );
    let proxy = pg_listener("pg_tls", &db, &extra);
    let addr = proxy.addr("pg_tls");
    let tls = Login { sslmode: "require", ..Login::BENCH };

    // The client's connection is TLS (psql says so), sluice's to the server is plain.
    let info = psql_login(addr, tls, &["-c", "\\conninfo"], None);
    assert!(info.ok, "{info:?}");
    assert!(info.stdout.contains("SSL connection (protocol: TLS"), "{}", info.stdout);
    let server_side = psql_login(addr, tls, &["-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"], None);
    assert_eq!(server_side.lines(), ["f"], "{server_side:?}");
    // A reply far larger than what rustls holds unsent goes out whole.
    let big = psql_login(addr, tls, &["-c", "SELECT repeat('x', 4000000)"], None);
    assert_eq!(big.stdout.trim_end().len(), 4_000_000, "{}", big.stderr);
    // Policy still applies inside the TLS session, and the session goes on.
    let refused =
        psql_login(addr, tls, &[], Some("CREATE TABLE t (id int);\nDROP TABLE t;\nSELECT count(*) FROM t;\n"));
    assert!(refused.stderr.contains("ERROR:  sluice: DROP denied by policy (rule 0)"), "{refused:?}");
    assert_eq!(refused.lines(), ["0"]);
    // psql's default (sslmode=prefer) gets TLS too; a plain client still works.
    let prefer = psql_login(addr, Login { sslmode: "prefer", ..Login::BENCH }, &["-c", "\\conninfo"], None);
    assert!(prefer.stdout.contains("SSL connection"), "{prefer:?}");
    let plain = psql_at(addr, "bench", POSTGRES_PASSWORD, "bench", &["-c", "\\conninfo", "-c", "SELECT 1 + 1"]);
    assert!(!plain.stdout.contains("SSL"), "{plain:?}");
    assert_eq!(plain.lines().last(), Some(&"2"));
    // A client that asks for TLS and then sends no TLS is closed.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&ssl_request()).unwrap();
    let mut answer = [0u8; 1];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"S");
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let (_, closed) = read_to_eof(&mut s, Duration::from_secs(10));
    assert!(closed, "the connection was closed");

    let m = proxy.metrics();
    assert_eq!(sessions(&m, "pg_tls", "tls_terminated"), 6.0);
    assert_eq!(sessions(&m, "pg_tls", "ok"), 6.0);
    assert_eq!(sessions(&m, "pg_tls", "tls"), 0.0, "no session went opaque");
    assert_eq!(ops(&m, "pg_tls", "DROP", "denied"), 1.0);
    assert_eq!(ops(&m, "pg_tls", "SELECT", "ok"), 4.0);
    assert_eq!(db.query("SELECT count(*) FROM pg_tables WHERE tablename = 't'"), "1");
}

#[test]
fn tls_to_a_tls_server_is_forwarded_opaque_by_an_observing_listener_only() {
    let db = Postgres::start_with_tls();
    let proxy = Proxy::start(&format!(
        "{}{}",
        one_listener("pg_opaque", "postgres", &[db.addr()], ""),
        "  - { name: pg_enforcing, address: 127.0.0.1:0, protocol: postgres, cluster: pg_opaque_cluster, \
         rules: [ { match: { op: DROP }, action: deny } ] }\n"
    ));
    // Without rules, the server's TLS is the client's: sluice sees an opaque stream.
    let observing = proxy.addr("pg_opaque");
    let tls = Login { sslmode: "require", ..Login::BENCH };
    let out = psql_login(observing, tls, &["-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"], None);
    assert_eq!(out.lines(), ["t"], "{out:?}");
    // With rules, sluice refuses encryption so that no session can hide from them.
    let enforcing = proxy.addr("pg_enforcing");
    let refused = psql_login(enforcing, tls, &["-c", "SELECT 1"], None);
    assert!(!refused.ok, "{refused:?}");
    assert!(refused.stderr.contains("server does not support SSL"), "{}", refused.stderr);
    let prefer = Login { sslmode: "prefer", ..Login::BENCH };
    let out = psql_login(enforcing, prefer, &["-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"], None);
    assert_eq!(out.lines(), ["f"], "{out:?}");

    let m = proxy.metrics();
    assert_eq!(sessions(&m, "pg_opaque", "tls"), 1.0);
    assert_eq!(sessions(&m, "pg_opaque", "ok"), 0.0, "the login was inside TLS");
    assert_eq!(statements(&m, "pg_opaque", None), 0.0);
    assert_eq!(sessions(&m, "pg_enforcing", "tls"), 0.0);
    assert_eq!(sessions(&m, "pg_enforcing", "ok"), 1.0);
    assert_eq!(ops(&m, "pg_enforcing", "SELECT", "ok"), 1.0);
}

#[test]
fn sluice_originates_tls_to_the_server_and_still_sees_every_statement() {
    // The server takes TCP logins only over TLS; its certificate names 127.0.0.1.
    let db = Postgres::start_with(PgOptions { tls_only: true, ..PgOptions::default() });
    let plain_db = Postgres::start();
    let dir = Scratch::new("pg-origin");
    let (cert, key) = self_signed(&dir);
    let other = Scratch::new("pg-other-ca");
    let (other_ca, _) = self_signed(&other);
    let access_log = dir.path("access.jsonl");
    let proxy = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n\
         \x20 - {{ name: verified, endpoints: [\"{db}\"], tls: {{ ca: \"{ca}\" }} }}\n\
         \x20 - {{ name: renamed, endpoints: [\"{db}\"], tls: {{ insecure: true, server_name: db.example }} }}\n\
         \x20 - {{ name: wrong_ca, endpoints: [\"{db}\"], tls: {{ ca: \"{other_ca}\" }} }}\n\
         \x20 - {{ name: no_tls, endpoints: [\"{plain}\"], tls: {{ insecure: true }} }}\n\
         listeners:\n\
         \x20 - {{ name: pg_up, address: 127.0.0.1:0, protocol: postgres, cluster: verified, \
                    rules: [ {{ match: {{ op: DROP }}, action: deny }} ] }}\n\
         \x20 - {{ name: pg_both, address: 127.0.0.1:0, protocol: postgres, cluster: verified, \
                    tls: {{ cert: \"{cert}\", key: \"{key}\" }} }}\n\
         \x20 - {{ name: pg_renamed, address: 127.0.0.1:0, protocol: postgres, cluster: renamed }}\n\
         \x20 - {{ name: pg_wrong_ca, address: 127.0.0.1:0, protocol: postgres, cluster: wrong_ca, \
                    access_log: {{ path: \"{log}\" }} }}\n\
         \x20 - {{ name: pg_no_tls, address: 127.0.0.1:0, protocol: postgres, cluster: no_tls, \
                    access_log: {{ path: \"{log}\" }} }}\n",
        db = db.addr(),
        plain = plain_db.addr(),
        ca = db.certificate().display(),
        other_ca = other_ca.display(),
        cert = cert.display(),
        key = key.display(),
        log = access_log.display(),
    ));
    let on_server = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

    // A plain client; sluice's hop to the server is TLS, verified against its CA.
    let up = proxy.addr("pg_up");
    let out = psql_login(up, Login::BENCH, &["-c", "\\conninfo", "-c", on_server], None);
    assert!(out.ok, "{out:?}\n{}", db.log());
    assert!(!out.stdout.contains("SSL connection"), "{out:?}");
    assert_eq!(out.lines().last(), Some(&"t"), "{out:?}");
    // The filter reads the session: a large reply, policy, statements counted.
    let big = psql_login(up, Login::BENCH, &["-c", "SELECT repeat('x', 4000000)"], None);
    assert_eq!(big.stdout.trim_end().len(), 4_000_000, "{}", big.stderr);
    let refused =
        psql_login(up, Login::BENCH, &[], Some("CREATE TABLE t (id int);\nDROP TABLE t;\nSELECT count(*) FROM t;\n"));
    assert!(refused.stderr.contains("ERROR:  sluice: DROP denied by policy (rule 0)"), "{refused:?}");
    assert_eq!(refused.lines(), ["0"]);
    // The extended protocol through it too: pgbench's counts are exact.
    // (pgbench -i drops tables first: initialised through a listener without rules.)
    pgbench_at(proxy.addr("pg_renamed"), &["-i", "-s", "1", "-q"]).unwrap();
    let report = pgbench_at(up, &["-M", "prepared", "-S", "-c", "2", "-t", "50"]).unwrap();
    assert_eq!(pgbench_field(&report, "number of transactions actually processed:"), 100, "{report}");
    // A client's own TLS cannot ride inside sluice's: it is refused, and `prefer` goes plain.
    let tls = Login { sslmode: "require", ..Login::BENCH };
    let own = psql_login(up, tls, &["-c", "SELECT 1"], None);
    assert!(own.stderr.contains("server does not support SSL"), "{own:?}");

    // TLS on both hops: terminated from the client, originated to the server. SCRAM's
    // channel binding cannot span the two sessions, so the client turns it off.
    let no_binding = Login { sslmode: "require channel_binding=disable", ..Login::BENCH };
    let both = psql_login(proxy.addr("pg_both"), no_binding, &["-c", "\\conninfo", "-c", on_server], None);
    assert!(both.stdout.contains("SSL connection (protocol: TLS"), "{both:?}");
    assert_eq!(both.lines().last(), Some(&"t"), "{both:?}");
    // `server_name` replaces the endpoint's host in SNI (verification is off there).
    let renamed = psql_login(proxy.addr("pg_renamed"), Login::BENCH, &["-c", on_server], None);
    assert_eq!(renamed.lines(), ["t"], "{renamed:?}");

    // A certificate that does not verify, and a server without TLS: no session, and the
    // connection's record says why.
    for listener in ["pg_wrong_ca", "pg_no_tls"] {
        let out = psql_login(proxy.addr(listener), Login::BENCH, &["-c", "SELECT 1"], None);
        assert!(!out.ok, "{listener}: {out:?}");
    }
    assert!(wait_until(Duration::from_secs(5), || {
        let log = std::fs::read_to_string(&access_log).unwrap_or_default();
        log.matches(r#""close_reason":"upstream_tls_error""#).count() == 2
    }));

    let m = proxy.metrics();
    assert_eq!(ops(&m, "pg_up", "DROP", "denied"), 1.0);
    assert_eq!(sessions(&m, "pg_up", "tls"), 0.0, "no session went opaque");
    // 2 clients × 50 transactions of one SELECT, all read through the TLS hop.
    assert!(ops(&m, "pg_up", "SELECT", "ok") >= 100.0 + 4.0);
    assert_eq!(table_ops(&m, "pg_up", "pgbench_accounts", "SELECT"), 100.0);
    assert_eq!(sessions(&m, "pg_both", "tls_terminated"), 1.0);
    assert_eq!(db.query("SELECT count(*) FROM pg_tables WHERE tablename = 't'"), "1");
}

#[test]
fn a_deny_rule_refuses_drop_and_the_table_survives() {
    let db = Postgres::start();
    let rules = "    rules:\n      - { match: { op: [DROP, TRUNCATE] }, action: deny }\n      \
                 - { match: { without_where: true }, action: deny }\n";
    let proxy = pg_listener("pg_deny", &db, rules);
    let addr = proxy.addr("pg_deny");
    let out = psql_login(
        addr,
        Login::BENCH,
        &["-v", "VERBOSITY=verbose"],
        Some(
            "CREATE TABLE keep (id int);\n\
             INSERT INTO keep VALUES (1), (2), (3);\n\
             DROP TABLE keep;\n\
             DELETE FROM keep;\n\
             DELETE FROM keep WHERE id = 3;\n\
             BEGIN;\n\
             TRUNCATE keep;\n\
             SELECT count(*) FROM keep;\n\
             COMMIT;\n",
        ),
    );
    assert!(out.stderr.contains("ERROR:  42501: sluice: DROP denied by policy (rule 0)"), "{}", out.stderr);
    assert!(out.stderr.contains("ERROR:  42501: sluice: DELETE denied by policy (rule 1)"), "{}", out.stderr);
    assert!(out.stderr.contains("ERROR:  42501: sluice: TRUNCATE denied by policy (rule 0)"), "{}", out.stderr);
    assert_eq!(out.stderr.matches("ERROR:").count(), 3, "{}", out.stderr);
    // The same session went on, and a refusal inside a transaction did not abort it: the
    // server never saw the statement.
    assert_eq!(out.lines(), ["2"], "{out:?}");
    assert_eq!(db.query("SELECT count(*) FROM keep"), "2");

    // The extended protocol: a refused Execute fails its batch, and the connection goes on.
    let lines = python(
        addr,
        r#"
c = psycopg.connect(CONNINFO, autocommit=True)
try:
    c.execute("DROP TABLE keep")
except psycopg.errors.InsufficientPrivilege as e:
    print(e.sqlstate, e.diag.message_primary)
print(c.execute("SELECT count(*) FROM keep WHERE id > %s", (0,)).fetchone()[0])
"#,
    );
    assert_eq!(lines, ["42501 sluice: DROP denied by policy (rule 0)", "2"]);
    assert_eq!(db.query("SELECT count(*) FROM keep"), "2");

    let m = proxy.metrics();
    assert_eq!(ops(&m, "pg_deny", "DROP", "denied"), 2.0);
    assert_eq!(ops(&m, "pg_deny", "DELETE", "denied"), 1.0);
    assert_eq!(ops(&m, "pg_deny", "TRUNCATE", "denied"), 1.0);
    assert_eq!(ops(&m, "pg_deny", "DELETE", "ok"), 1.0);
    assert_eq!(ops(&m, "pg_deny", "SELECT", "ok"), 2.0);
    assert_eq!(transactions(&m, "pg_deny", "commit"), 1.0);
}

#[test]
fn a_rate_limit_rejects_the_excess_with_53400_and_the_session_continues() {
    let db = Postgres::start();
    let rules = "    rules:\n      - match: { op: SELECT, target: limited }\n        \
                 action: reject\n        rate_limit: { rate: 1/m, burst: 3 }\n";
    let proxy = pg_listener("pg_limit", &db, rules);
    let addr = proxy.addr("pg_limit");
    let mut sql = String::from("CREATE TABLE limited (id int);\nCREATE TABLE free (id int);\n");
    for _ in 0..8 {
        sql.push_str("SELECT count(*) FROM limited;\nSELECT count(*) FROM free;\n");
    }
    let out = psql_login(addr, Login::BENCH, &["-v", "VERBOSITY=verbose"], Some(&sql));
    assert_eq!(
        out.stderr.matches("ERROR:  53400: sluice: SELECT rate limited by policy (rule 0)").count(),
        5,
        "{}",
        out.stderr
    );
    // Every SELECT on the other table answered, before and after the refusals.
    assert_eq!(out.lines().len(), 8 + 3, "{out:?}");
    let m = proxy.metrics();
    assert_eq!(ops(&m, "pg_limit", "SELECT", "limited"), 5.0);
    assert_eq!(ops(&m, "pg_limit", "SELECT", "ok"), 11.0);
}

/// An SSLRequest: length 8, code 80877103.
fn ssl_request() -> Vec<u8> {
    [8u32.to_be_bytes(), 80877103u32.to_be_bytes()].concat()
}

/// A StartupMessage (protocol 3.0) for `user` on database `bench`.
fn startup(user: &str) -> Vec<u8> {
    let mut body = 196608u32.to_be_bytes().to_vec();
    for part in ["user", user, "database", "bench", ""] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    [((body.len() + 4) as u32).to_be_bytes().to_vec(), body].concat()
}

/// Logs in over a raw connection as a trusted user and reads up to the first ReadyForQuery.
fn raw_login(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&startup("postgres")).unwrap();
    loop {
        let mut header = [0u8; 5];
        s.read_exact(&mut header).unwrap();
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0; len - 4];
        s.read_exact(&mut body).unwrap();
        assert_ne!(header[0], b'E', "login refused: {}", String::from_utf8_lossy(&body));
        if header[0] == b'Z' {
            return s;
        }
    }
}

#[test]
fn hostile_input_gets_a_clean_close_and_the_listener_goes_on() {
    let db = Postgres::start();
    let proxy = Proxy::start(&format!(
        "{}{}",
        one_listener(
            "pg_hostile",
            "postgres",
            &[db.addr()],
            "    rules:\n      - { match: { op: DROP }, action: deny }\n"
        ),
        "  - { name: pg_observe, address: 127.0.0.1:0, protocol: postgres, cluster: pg_hostile_cluster }\n"
    ));
    for listener in ["pg_hostile", "pg_observe"] {
        let addr = proxy.addr(listener);
        let attacks: [&[u8]; 4] = [
            // Not PostgreSQL at all: the "length" is 0x47455420.
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            // A startup packet announcing 2 GiB.
            &[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0],
            // A startup packet shorter than its own header.
            &[0, 0, 0, 2],
            // A startup packet that ends before its length says, then the client's EOF.
            &[0, 0, 0, 100, 0, 3, 0, 0, b'u'],
        ];
        for attack in attacks {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(attack).unwrap();
            let _ = s.shutdown(std::net::Shutdown::Write);
            let (_, closed) = read_to_eof(&mut s, Duration::from_secs(10));
            assert!(closed, "{listener}: the connection to sluice was closed after {attack:?}");
        }
        // After a good login: a Query announcing almost 2 GiB, and an unknown message type.
        let attacks: [&[u8]; 2] = [&[b'Q', 0x7f, 0xff, 0xff, 0xf0, b'S', b'E'], &[b'\x01', 0, 0, 0, 4]];
        for attack in attacks {
            let mut s = raw_login(addr);
            s.write_all(attack).unwrap();
            let (reply, closed) = read_to_eof(&mut s, Duration::from_secs(10));
            assert!(closed, "{listener}: the connection was closed after {attack:?}");
            if listener == "pg_hostile" {
                // An enforcing listener says why before it closes.
                let text = String::from_utf8_lossy(&reply);
                assert!(reply.first() == Some(&b'E') && text.contains("08P01"), "{listener}: {text:?}");
            }
        }
        // The listener still serves a well-behaved client.
        let out = psql_at(addr, "bench", POSTGRES_PASSWORD, "bench", &["-c", "SELECT 6 * 7"]);
        assert_eq!(out.lines(), ["42"], "{listener}: {out:?}");
    }
    let m = proxy.metrics();
    for listener in ["pg_hostile", "pg_observe"] {
        let decode = m.get("sluice_postgres_decode_errors_total", &[("listener", listener), ("direction", "client")]);
        assert!(decode >= 3.0, "{listener}: {decode} client decode errors");
        assert_eq!(ops(&m, listener, "SELECT", "ok"), 1.0);
    }
    // The server is fine too.
    assert_eq!(db.query("SELECT 1"), "1");
}
