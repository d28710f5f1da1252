//! What the PostgreSQL codec costs per round trip, without sockets: `peek` in the session's
//! phase and `Session::feed_frontend`/`feed_backend` on every message, as the filter calls
//! them. The rounds are the captured ones (fixtures/postgres): pgbench's extended protocol
//! (Parse/Bind/Describe/Execute/Sync, answered by ParseComplete, BindComplete,
//! RowDescription, DataRow, CommandComplete, ReadyForQuery), its prepared variant
//! (Bind/Describe/Execute/Sync of a statement parsed once), psql's simple Query, and a
//! synthetic Query answered by 100 rows of 3 columns (the per-row cost).
//!
//! `cargo bench -p sluice-codecs --bench postgres_session`; the time is per round. That no
//! round allocates is checked by codecs/tests/postgres_alloc.rs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_codecs::postgres::{peek, Direction, PgLimits, Phase, Session};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/postgres");

/// The typed messages of one direction of a capture (after the client's startup packet).
fn messages(name: &str, client: bool) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(format!("{FIXTURES}/{name}.{}", if client { "client" } else { "server" })).unwrap();
    let limits = PgLimits::default();
    let mut at = if client { peek(&bytes, Phase::Startup, &limits).unwrap().unwrap() } else { 0 };
    let mut out = vec![];
    while let Some(n) = peek(&bytes[at..], Phase::Typed, &limits).unwrap() {
        out.push(bytes[at..at + n].to_vec());
        at += n;
    }
    out
}

/// The client's messages from the first with tag `first` through the first Sync or Query
/// after it; the server's from the first with tag `answer` through the next ReadyForQuery
/// after the login's.
fn round(name: &str, first: u8, answer: u8) -> (Vec<u8>, Vec<u8>) {
    let client = messages(name, true);
    let start = client.iter().position(|m| m[0] == first).unwrap();
    let end = start + client[start..].iter().position(|m| m[0] == b'S' || m[0] == b'Q').unwrap();
    let server = messages(name, false);
    let ready = server.iter().position(|m| m[0] == b'Z').unwrap() + 1;
    let from = ready + server[ready..].iter().position(|m| m[0] == answer).unwrap();
    let to = from + server[from..].iter().position(|m| m[0] == b'Z').unwrap();
    (client[start..=end].concat(), server[from..=to].concat())
}

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn running() -> Session {
    let mut s = Session::new(PgLimits::default());
    let mut startup = 16u32.to_be_bytes().to_vec();
    startup.extend_from_slice(b"\0\x03\0\0user\0u\0\0");
    s.feed_frontend(&startup).unwrap();
    s.feed_backend(&msg(b'R', b"\0\0\0\0")).unwrap();
    s.feed_backend(&msg(b'Z', b"I")).unwrap();
    s
}

/// Frames and feeds one round: the client's bytes, then the server's.
fn feed_round(s: &mut Session, limits: &PgLimits, client: &[u8], server: &[u8]) {
    let mut at = 0;
    while let Some(n) = peek(&client[at..], Phase::Typed, limits).unwrap() {
        s.feed_frontend(&client[at..at + n]).unwrap();
        at += n;
    }
    let mut at = 0;
    while let Some(n) = peek(&server[at..], s.phase(Direction::Backend), limits).unwrap() {
        s.feed_backend(&server[at..at + n]).unwrap();
        at += n;
    }
}

fn rounds(c: &mut Criterion) {
    let limits = PgLimits::default();
    // RowDescription of (a int4, b text, c int4), then rows (i, 'hello', NULL).
    let mut fields = 3u16.to_be_bytes().to_vec();
    for (name, type_oid) in [(&b"a"[..], 23u32), (b"b", 25), (b"c", 23)] {
        fields.extend([name, b"\0", &[0; 6], &type_oid.to_be_bytes(), &[0xff; 6], &[0, 0]].concat());
    }
    let mut many_rows = msg(b'T', &fields);
    for i in 0..100u32 {
        let a = i.to_string();
        let row = [
            &3u16.to_be_bytes()[..],
            &(a.len() as u32).to_be_bytes(),
            a.as_bytes(),
            &5u32.to_be_bytes(),
            b"hello",
            &[0xff; 4],
        ];
        many_rows.extend(msg(b'D', &row.concat()));
    }
    many_rows.extend(msg(b'C', b"SELECT 100\0"));
    many_rows.extend(msg(b'Z', b"I"));

    let mut prepared = running();
    let (parse, parsed) = round("pgbench_prepared", b'P', b'1');
    feed_round(&mut prepared, &limits, &parse, &parsed);
    let cases = [
        ("pgbench_extended", running(), round("pgbench_extended", b'P', b'1')),
        ("pgbench_prepared", prepared, round("pgbench_prepared", b'B', b'2')),
        ("psql_simple_query", running(), round("psql_simple", b'Q', b'T')),
        ("query_100_rows", running(), (msg(b'Q', b"SELECT a, b, c FROM t\0"), many_rows)),
    ];
    let mut group = c.benchmark_group("postgres_session");
    group.throughput(Throughput::Elements(1));
    for (name, mut session, (client, server)) in cases {
        feed_round(&mut session, &limits, &client, &server);
        assert!(!session.waiting_for_server(), "{name}: the round is answered");
        group.bench_function(name, |b| b.iter(|| feed_round(&mut session, &limits, &client, &server)));
    }
    group.finish();
}

criterion_group!(benches, rounds);
criterion_main!(benches);
