//! The `mysql` listener against a real MariaDB with real clients: the `mariadb` CLI,
//! sysbench (server-side prepared statements and the text protocol) and PyMySQL; per-op
//! and per-table counters, digests on `/queries`, the query log, a deny rule and a rate
//! limit answered with ERR packets on a session that stays usable, and hostile input.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

/// Debian's Python, where `python3-pymysql` installs.
const PYTHON: &str = "/usr/bin/python3";

fn mysql_listener(name: &str, db: &Mariadb, extra: &str) -> Proxy {
    Proxy::start(&one_listener(name, "mysql", &[db.addr()], extra))
}

fn ops(m: &Metrics, listener: &str, op: &str, outcome: &str) -> f64 {
    m.get("sluice_ops_total", &[("listener", listener), ("protocol", "mysql"), ("op", op), ("outcome", outcome)])
}

/// Runs statements through sluice with the CLI reading them from stdin (`--force`: later
/// statements run after an error, in the same session), returning stdout and stderr.
fn cli_force(addr: SocketAddr, sql: &str) -> (String, String) {
    let mut child = Command::new("mariadb")
        .args(["--no-defaults", "--protocol=TCP", "-ubench", "--batch", "--skip-column-names", "--force"])
        .arg(format!("--host={}", addr.ip()))
        .arg(format!("--port={}", addr.port()))
        .arg(format!("--password={MARIADB_PASSWORD}"))
        .arg("sbtest")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mariadb");
    child.stdin.take().unwrap().write_all(sql.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn cli_statements_are_counted_per_op_and_table_and_digested() {
    let db = Mariadb::start();
    let log = Scratch::new("querylog");
    let log_path = log.path("queries.jsonl");
    let extra = format!("    mysql: {{ query_log: {{ path: \"{}\", sample_rate: 1 }} }}\n", log_path.display());
    let proxy = mysql_listener("my_cli", &db, &extra);
    let addr = proxy.addr("my_cli");
    let sql = "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20)); \
               INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c'); \
               SELECT name FROM items WHERE id IN (1, 2); \
               SELECT name FROM items WHERE id IN (3); \
               UPDATE items SET name = 'z' WHERE id = 3; \
               SELECT * FROM no_such_table;";
    let (out, err) = cli_force(addr, sql);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert!(err.contains("ERROR 1146 (42S02)"), "{err}");

    let m = proxy.metrics();
    assert_eq!(ops(&m, "my_cli", "CREATE", "ok"), 1.0);
    assert_eq!(ops(&m, "my_cli", "INSERT", "ok"), 1.0);
    assert_eq!(ops(&m, "my_cli", "SELECT", "ok"), 2.0);
    assert_eq!(ops(&m, "my_cli", "SELECT", "error"), 1.0);
    assert_eq!(ops(&m, "my_cli", "UPDATE", "ok"), 1.0);
    let table =
        |t: &str, op: &str| m.get("sluice_mysql_table_ops_total", &[("listener", "my_cli"), ("table", t), ("op", op)]);
    assert_eq!(table("items", "SELECT"), 2.0);
    assert_eq!(table("no_such_table", "SELECT"), 1.0);
    assert_eq!(m.get("sluice_mysql_errors_total", &[("listener", "my_cli"), ("code", "1146")]), 1.0);
    assert_eq!(m.get("sluice_mysql_sessions_total", &[("listener", "my_cli"), ("outcome", "ok")]), 1.0);

    // Both SELECTs by id share one digest: the IN-list is collapsed.
    let (status, body) = proxy.admin("/queries?listener=my_cli&top=50");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let queries = v["listeners"][0]["queries"].as_array().unwrap();
    let select = queries
        .iter()
        .find(|q| q["digest"] == "SELECT name FROM items WHERE id IN (...)")
        .unwrap_or_else(|| panic!("no IN-list digest in {body}"));
    assert_eq!(select["count"], 2);
    assert_eq!(select["rows"], 3);
    assert_eq!(select["tables"], serde_json::json!(["items"]));
    let insert = queries.iter().find(|q| q["op"] == "INSERT").unwrap();
    assert_eq!(insert["rows"], 3, "rows affected by the INSERT");
    let missing = queries.iter().find(|q| q["digest"] == "SELECT * FROM no_such_table").unwrap();
    assert_eq!(missing["errors"], 1);

    proxy.drain_and_wait();
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&log_path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 6, "one line per statement");
    let error = lines.iter().find(|l| l["outcome"] == "error").unwrap();
    assert_eq!(error["error_code"], 1146);
    assert_eq!(error["sqlstate"], "42S02");
    assert_eq!(error["user"], "bench");
    assert_eq!(error["database"], "sbtest");
}

#[test]
fn a_deny_rule_refuses_drop_and_the_table_survives() {
    let db = Mariadb::start();
    let rules = "    rules:\n      - { match: { op: [DROP, TRUNCATE] }, action: deny }\n      \
                 - { match: { without_where: true }, action: deny }\n";
    let proxy = mysql_listener("my_deny", &db, rules);
    let addr = proxy.addr("my_deny");
    let (_, err) = cli_force(
        addr,
        "CREATE TABLE keep (id INT); INSERT INTO keep VALUES (1), (2); DROP TABLE keep; \
         DELETE FROM keep; DELETE FROM keep WHERE id = 2; SELECT COUNT(*) FROM keep;",
    );
    assert_eq!(err.matches("ERROR 1227 (42000)").count(), 2, "{err}");
    assert!(err.contains("sluice: DROP denied by policy"), "{err}");
    // The same session went on: the later DELETE ran.
    assert_eq!(db.root(&["-e", "SELECT COUNT(*) FROM sbtest.keep"]).as_deref(), Some("1"));
    let m = proxy.metrics();
    assert_eq!(ops(&m, "my_deny", "DROP", "denied"), 1.0);
    assert_eq!(ops(&m, "my_deny", "DELETE", "denied"), 1.0);
    assert_eq!(ops(&m, "my_deny", "DELETE", "ok"), 1.0);
}

#[test]
fn a_rate_limit_rejects_the_excess_with_err_and_the_session_continues() {
    let db = Mariadb::start();
    let rules = "    rules:\n      - match: { op: SELECT, target: limited }\n        \
                 action: reject\n        rate_limit: { rate: 1/m, burst: 3 }\n";
    let proxy = mysql_listener("my_limit", &db, rules);
    let addr = proxy.addr("my_limit");
    let mut sql = String::from("CREATE TABLE limited (id INT); CREATE TABLE free (id INT); ");
    for _ in 0..8 {
        sql.push_str("SELECT COUNT(*) FROM limited; SELECT COUNT(*) FROM free; ");
    }
    let (out, err) = cli_force(addr, &sql);
    assert_eq!(err.matches("ERROR 1226 (42000)").count(), 5, "{err}");
    // Every SELECT on the other table answered, before and after the refusals.
    assert_eq!(out.lines().count(), 8 + 3, "{out}");
    let m = proxy.metrics();
    assert_eq!(ops(&m, "my_limit", "SELECT", "limited"), 5.0);
    assert_eq!(ops(&m, "my_limit", "SELECT", "ok"), 11.0);
}

/// sysbench's own query counts against sluice's per-op counters.
fn sysbench_counts_match(name: &str, ps_mode: &str) {
    require("sysbench", "sysbench");
    let db = Mariadb::start();
    let proxy = mysql_listener(name, &db, "");
    let addr = proxy.addr(name);
    let sysbench = |command: &str| {
        let out = Command::new("sysbench")
            .args(["oltp_read_write", "--db-driver=mysql", "--mysql-ssl=off", "--mysql-user=bench"])
            .arg(format!("--mysql-password={}", MARIADB_PASSWORD))
            .args(["--mysql-db=sbtest", "--tables=2", "--table-size=200", "--threads=1", "--events=200"])
            .arg(format!("--db-ps-mode={ps_mode}"))
            .arg(format!("--mysql-host={}", addr.ip()))
            .arg(format!("--mysql-port={}", addr.port()))
            .arg(command)
            .output()
            .expect("run sysbench");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "sysbench {command}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    sysbench("prepare");
    let before = proxy.metrics();
    let report = sysbench("run");
    let after = proxy.metrics();
    let reported = |field: &str| -> f64 {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(field)?.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {report}"))
    };
    let counted = |list: &[&str]| -> f64 {
        list.iter().map(|op| ops(&after, name, op, "ok") - ops(&before, name, op, "ok")).sum()
    };
    assert_eq!(counted(&["SELECT"]), reported("read:"));
    assert_eq!(counted(&["INSERT", "UPDATE", "DELETE"]), reported("write:"));
    assert_eq!(counted(&["BEGIN", "COMMIT"]), reported("other:"));
    let prepares = ops(&after, name, "COM_STMT_PREPARE", "ok") - ops(&before, name, "COM_STMT_PREPARE", "ok");
    assert_eq!(prepares > 0.0, ps_mode == "auto", "prepared statements: {prepares}");
}

#[test]
fn sysbench_with_prepared_statements_is_counted_exactly() {
    sysbench_counts_match("my_sb_ps", "auto");
}

#[test]
fn sysbench_with_the_text_protocol_is_counted_exactly() {
    sysbench_counts_match("my_sb_text", "disable");
}

#[test]
fn pymysql_works_through_the_filter() {
    let db = Mariadb::start();
    let proxy = mysql_listener("my_py", &db, "");
    let addr = proxy.addr("my_py");
    let script = format!(
        r#"
import pymysql
c = pymysql.connect(host="{ip}", port={port}, user="bench", password="{pw}", database="sbtest")
cur = c.cursor()
cur.execute("CREATE TABLE py (id INT PRIMARY KEY, v TEXT)")
cur.executemany("INSERT INTO py VALUES (%s, %s)", [(i, "v%d" % i) for i in range(50)])
c.commit()
cur.execute("SELECT COUNT(*), MAX(id) FROM py WHERE id >= %s", (10,))
print(cur.fetchone())
try:
    cur.execute("SELECT * FROM nope")
except pymysql.err.ProgrammingError as e:
    print("error", e.args[0])
c.ping()
c.select_db("mysql")
cur.execute("SELECT DATABASE()")
print(cur.fetchone()[0])
c.close()
"#,
        ip = addr.ip(),
        port = addr.port(),
        pw = MARIADB_PASSWORD
    );
    let out = Command::new(PYTHON).args(["-c", &script]).output().expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["(40, 49)", "error 1146", "mysql"]);
    let m = proxy.metrics();
    assert_eq!(ops(&m, "my_py", "INSERT", "ok"), 1.0, "executemany is one multi-row INSERT");
    assert_eq!(ops(&m, "my_py", "COM_PING", "ok"), 1.0);
    assert_eq!(ops(&m, "my_py", "COM_INIT_DB", "ok"), 1.0);
    assert_eq!(ops(&m, "my_py", "SELECT", "error"), 1.0);
}

/// The server's greeting, read raw.
fn greeting(s: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 4];
    s.read_exact(&mut header).unwrap();
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).unwrap();
    payload
}

#[test]
fn hostile_packets_close_an_enforcing_session_and_nothing_else() {
    let db = Mariadb::start();
    let rules = "    rules:\n      - { match: { op: DROP }, action: deny }\n";
    let proxy = mysql_listener("my_hostile", &db, rules);
    let addr = proxy.addr("my_hostile");
    let attacks: [&[u8]; 3] = [
        // A login packet that ends inside its capability flags.
        b"\x02\x00\x00\x01\x85\xa6",
        // A packet announcing more than the listener's max_packet_size in continuations.
        &[0xff, 0xff, 0xff, 0x01],
        // Garbage.
        b"\x10\x00\x00\x01GET / HTTP/1.1\r\n\r\n",
    ];
    for attack in attacks {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let hello = greeting(&mut s);
        assert_eq!(hello[0], 10, "protocol version 10");
        s.write_all(attack).unwrap();
        if attack.len() == 4 {
            // Keep sending continuation parts until sluice gives up on the chain.
            let part = vec![0u8; 0xff_ffff];
            let mut seq = 2u8;
            while s.write_all(&[&[0xff, 0xff, 0xff, seq][..], &part].concat()).is_ok() && seq < 10 {
                seq += 1;
            }
        }
        let (_, closed) = read_to_eof(&mut s, Duration::from_secs(10));
        assert!(closed, "the connection was closed");
    }
    // The listener still serves a well-behaved client.
    assert_eq!(mariadb_cli(addr, &["-e", "SELECT 6 * 7"]).unwrap(), "42");
    let m = proxy.metrics();
    assert!(m.get("sluice_mysql_decode_errors_total", &[("listener", "my_hostile"), ("direction", "client")]) >= 2.0);
}

#[test]
fn an_enforcing_listener_hides_tls_and_compression_from_the_greeting() {
    let db = Mariadb::start();
    let enforcing = mysql_listener("my_caps", &db, "    rules:\n      - { match: { op: DROP }, action: deny }\n");
    let mut s = TcpStream::connect(enforcing.addr("my_caps")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hello = greeting(&mut s);
    let version_end = hello.iter().position(|&b| b == 0).unwrap();
    let low = version_end + 1 + 4 + 8 + 1;
    let caps = u16::from_le_bytes([hello[low], hello[low + 1]]);
    assert_eq!(caps & 0x0820, 0, "CLIENT_SSL and CLIENT_COMPRESS are hidden: {caps:#x}");
    // A client asking for compression gets a plain session, and works.
    let out = Command::new("mariadb")
        .args(["--no-defaults", "--protocol=TCP", "-ubench", "--batch", "--skip-column-names", "--compress"])
        .arg(format!("--port={}", enforcing.addr("my_caps").port()))
        .arg("--host=127.0.0.1")
        .arg(format!("--password={}", MARIADB_PASSWORD))
        .args(["-e", "DROP DATABASE sbtest"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 1227"), "{out:?}");
    assert!(db.root(&["-e", "SHOW DATABASES LIKE 'sbtest'"]).unwrap().contains("sbtest"));
}

#[test]
fn sluice_terminates_tls_and_still_sees_and_filters_every_statement() {
    let db = Mariadb::start();
    let dir = Scratch::new("mysql-tls");
    let (cert, key) = self_signed(&dir);
    let access_log = dir.path("access.jsonl");
    let extra = format!(
        "    tls: {{ cert: \"{}\", key: \"{}\" }}\n    access_log: {{ path: \"{}\" }}\n    rules:\n      \
         - {{ match: {{ op: DROP }}, action: deny }}\n",
        cert.display(),
        key.display(),
        access_log.display()
    );
    let proxy = mysql_listener("my_tls", &db, &extra);
    let addr = proxy.addr("my_tls");
    let tls = |sql: &str| mariadb_cli(addr, &["--ssl", "--skip-ssl-verify-server-cert", "-e", sql]);

    // The client's connection is TLS (the CLI says which cipher), sluice's to the server
    // is plain, and the statements are answered.
    let status = tls("status").unwrap();
    assert!(status.contains("Cipher in use"), "{status}");
    assert_eq!(tls("SELECT 6 * 7").unwrap(), "42");
    assert_eq!(tls("SHOW SESSION STATUS LIKE 'Ssl_cipher'").unwrap().trim(), "Ssl_cipher");
    // A reply far larger than what rustls holds unsent (64 KiB) goes out whole.
    let big = tls("SELECT REPEAT('x', 4000000)").unwrap();
    assert_eq!(big.len(), 4_000_000);
    // Policy still applies inside the TLS session.
    let refused = tls("DROP DATABASE sbtest").unwrap_err();
    assert!(refused.contains("ERROR 1227 (42000)") && refused.contains("DROP denied by policy"), "{refused}");
    assert!(db.root(&["-e", "SHOW DATABASES LIKE 'sbtest'"]).unwrap().contains("sbtest"));
    // A plain client on the same listener still works.
    let plain = mariadb_cli(addr, &["--skip-ssl", "-e", "status"]).unwrap();
    assert!(plain.contains("Not in use"), "{plain}");
    assert_eq!(mariadb_cli(addr, &["--skip-ssl", "-e", "SELECT 1 + 1"]).unwrap(), "2");

    // A client that asks for TLS and then sends no TLS is closed.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hello = greeting(&mut s);
    let version_end = hello.iter().position(|&b| b == 0).unwrap();
    let low = version_end + 1 + 4 + 8 + 1;
    assert_ne!(u16::from_le_bytes([hello[low], hello[low + 1]]) & 0x0800, 0, "CLIENT_SSL is offered");
    let mut ssl_request = vec![32, 0, 0, 1, 0x00, 0x8a, 0, 0, 0, 0, 0, 1, 33];
    ssl_request.resize(36, 0);
    s.write_all(&ssl_request).unwrap();
    s.write_all(b"\x10\x00\x00\x02GET / HTTP/1.1\r\n\r\n").unwrap();
    let (_, closed) = read_to_eof(&mut s, Duration::from_secs(10));
    assert!(closed, "the connection was closed");

    let m = proxy.metrics();
    let sessions =
        |outcome: &str| m.get("sluice_mysql_sessions_total", &[("listener", "my_tls"), ("outcome", outcome)]);
    assert_eq!(sessions("tls_terminated"), 5.0);
    assert_eq!(sessions("ok"), 7.0);
    assert_eq!(sessions("tls"), 0.0, "no session went opaque");
    // The CLI's own SELECTs (@@version_comment, and those of `status`) count too.
    assert!(ops(&m, "my_tls", "SELECT", "ok") >= 2.0);
    assert_eq!(ops(&m, "my_tls", "DROP", "denied"), 1.0);
    proxy.drain_and_wait();
    let log = std::fs::read_to_string(&access_log).unwrap();
    assert_eq!(log.matches(r#""close_reason":"tls_error""#).count(), 1, "{log}");
}

#[test]
fn sluice_originates_tls_to_the_server_and_still_sees_every_statement() {
    // `bench` must log in over TLS; the server's certificate names 127.0.0.1.
    let db = Mariadb::start_tls_only();
    let plain_db = Mariadb::start();
    let dir = Scratch::new("mysql-origin");
    let (cert, key) = self_signed(&dir);
    let other = Scratch::new("mysql-other-ca");
    let (other_ca, _) = self_signed(&other);
    let access_log = dir.path("access.jsonl");
    let proxy = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n\
         \x20 - {{ name: verified, endpoints: [\"{db}\"], tls: {{ ca: \"{ca}\" }} }}\n\
         \x20 - {{ name: wrong_ca, endpoints: [\"{db}\"], tls: {{ ca: \"{other_ca}\" }} }}\n\
         \x20 - {{ name: no_tls, endpoints: [\"{plain}\"], tls: {{ insecure: true }} }}\n\
         listeners:\n\
         \x20 - {{ name: my_up, address: 127.0.0.1:0, protocol: mysql, cluster: verified, \
                   rules: [ {{ match: {{ op: DROP }}, action: deny }} ] }}\n\
         \x20 - {{ name: my_both, address: 127.0.0.1:0, protocol: mysql, cluster: verified, \
                   tls: {{ cert: \"{cert}\", key: \"{key}\" }} }}\n\
         \x20 - {{ name: my_wrong_ca, address: 127.0.0.1:0, protocol: mysql, cluster: wrong_ca, \
                   access_log: {{ path: \"{log}\" }} }}\n\
         \x20 - {{ name: my_no_tls, address: 127.0.0.1:0, protocol: mysql, cluster: no_tls }}\n",
        db = db.addr(),
        plain = plain_db.addr(),
        ca = db.certificate().display(),
        other_ca = other_ca.display(),
        cert = cert.display(),
        key = key.display(),
        log = access_log.display(),
    ));
    let cipher = "SHOW SESSION STATUS LIKE 'Ssl_cipher'";

    // A plain client: the server sees TLS (a cipher in its session status), the client not.
    let up = proxy.addr("my_up");
    let plain = |sql: &str| mariadb_cli(up, &["--skip-ssl", "-e", sql]);
    assert!(plain("status").unwrap().contains("Not in use"));
    let server_side = plain(cipher).unwrap();
    assert!(server_side.starts_with("Ssl_cipher\t") && server_side.len() > "Ssl_cipher\t".len(), "{server_side}");
    assert_eq!(plain("SELECT 6 * 7").unwrap(), "42");
    assert_eq!(plain("SELECT REPEAT('x', 4000000)").unwrap().len(), 4_000_000);
    let refused = plain("DROP DATABASE sbtest").unwrap_err();
    assert!(refused.contains("ERROR 1227 (42000)"), "{refused}");
    assert!(db.root(&["-e", "SHOW DATABASES LIKE 'sbtest'"]).unwrap().contains("sbtest"));
    // Server-side prepared statements through it, counted exactly.
    let out = Command::new(PYTHON)
        .args(["-c", PREPARED_OVER_PYMYSQL, &up.port().to_string(), MARIADB_PASSWORD])
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // TLS on both hops.
    let both = proxy.addr("my_both");
    let tls = |sql: &str| mariadb_cli(both, &["--ssl", "--skip-ssl-verify-server-cert", "-e", sql]);
    assert!(tls("status").unwrap().contains("Cipher in use"));
    assert!(tls(cipher).unwrap().len() > "Ssl_cipher\t".len());

    // A certificate that does not verify closes the connection; a server without TLS
    // gets no login, and the client is told why.
    let wrong = mariadb_cli(proxy.addr("my_wrong_ca"), &["--skip-ssl", "-e", "SELECT 1"]).unwrap_err();
    assert!(wrong.contains("ERROR 2013") || wrong.contains("ERROR 2026"), "{wrong}");
    let no_tls = mariadb_cli(proxy.addr("my_no_tls"), &["--skip-ssl", "-e", "SELECT 1"]).unwrap_err();
    assert!(no_tls.contains("ERROR 1043") && no_tls.contains("the server does not offer TLS"), "{no_tls}");
    assert!(wait_until(Duration::from_secs(5), || {
        let log = std::fs::read_to_string(&access_log).unwrap_or_default();
        log.contains(r#""close_reason":"upstream_tls_error""#)
    }));

    let m = proxy.metrics();
    let sessions = |listener: &str, outcome: &str| {
        m.get("sluice_mysql_sessions_total", &[("listener", listener), ("outcome", outcome)])
    };
    assert_eq!(sessions("my_up", "ok"), 6.0);
    assert_eq!(sessions("my_up", "tls"), 0.0, "no session went opaque");
    assert_eq!(sessions("my_both", "tls_terminated"), 2.0);
    assert_eq!(ops(&m, "my_up", "DROP", "denied"), 1.0);
    assert_eq!(ops(&m, "my_up", "COM_STMT_PREPARE", "ok"), 1.0);
    assert_eq!(ops(&m, "my_up", "INSERT", "ok"), 10.0, "each EXECUTE counted as its statement");
    assert_eq!(db.root(&["-e", "SELECT COUNT(*) FROM sbtest.origin"]).as_deref(), Some("10"));
}

/// PyMySQL has no server-side prepared statements; this drives COM_STMT_PREPARE and ten
/// COM_STMT_EXECUTE by hand over its connection's packet layer.
const PREPARED_OVER_PYMYSQL: &str = r#"
import sys, struct, pymysql
port, password = int(sys.argv[1]), sys.argv[2]
c = pymysql.connect(host="127.0.0.1", port=port, user="bench", password=password, database="sbtest", autocommit=True)
with c.cursor() as cur:
    cur.execute("CREATE TABLE origin (id INT)")
c._execute_command(0x16, "INSERT INTO origin VALUES (?)")
prepare_ok = c._read_packet()
stmt_id = struct.unpack("<I", prepare_ok.get_all_data()[1:5])[0]
params = struct.unpack("<H", prepare_ok.get_all_data()[7:9])[0]
for _ in range(params):
    c._read_packet()
if params and not c.client_flag & (1 << 24):
    c._read_packet()
for i in range(10):
    payload = struct.pack("<IBI", stmt_id, 0, 1) + b"\x00" + b"\x01" + struct.pack("<HI", 3, i)
    c._execute_command(0x17, payload)
    ok = c._read_packet()
    assert ok.is_ok_packet(), ok.get_all_data()
c.close()
"#;
