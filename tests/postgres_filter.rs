//! The `postgres` listener against a real PostgreSQL 15 with real clients.

mod support;

use support::*;

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
