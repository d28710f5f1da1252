//! What the `postgres` filter costs per statement, without sockets: after a trust login,
//! one pgbench select-only transaction goes through `on_downstream` and `on_upstream` per
//! iteration, as a client waiting for each answer does, in each of pgbench's protocols:
//! `simple` (a Query), `extended` (Parse/Bind/Describe/Execute/Sync of the unnamed
//! statement) and `prepared` (Bind/Describe/Execute/Sync of a statement parsed once).
//! Observe-only (stats and digests on, no rules) and with rules evaluated on every
//! statement.
//!
//! `cargo bench -p sluice-filters --bench postgres_filter`; the time is per statement.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_codecs::postgres::PgLimits;
use sluice_filters::policy::{Action, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use sluice_filters::postgres::stats::PostgresStats;
use sluice_filters::postgres::{PostgresFilter, PostgresListener};
use sluice_filters::sql::{CacheLimits, Dialect, DigestTable, SharedStatementCache};
use sluice_filters::{StreamFilter, StreamIo, WriteQueue};

const SELECT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";

fn listener(rules: Vec<Rule>) -> Arc<PostgresListener> {
    Arc::new(PostgresListener {
        name: "bench".into(),
        rules: Arc::new(RuleSet::new(rules)),
        stats: PostgresStats::new("bench", 256),
        digests: Arc::new(DigestTable::new(5000)),
        statements: SharedStatementCache::new(Dialect::Postgres, CacheLimits::PER_LISTENER),
        limits: PgLimits::default(),
        query_log: None,
        terminates_tls: false,
        refuse_encryption: false,
        originates_tls: false,
    })
}

fn rules() -> Vec<Rule> {
    let many = NonZeroU32::new(u32::MAX).unwrap();
    vec![
        Rule {
            matcher: Matcher { ops: vec!["DROP".into(), "TRUNCATE".into()], ..Default::default() },
            action: Action::Deny,
        },
        Rule { matcher: Matcher { without_where: true, ..Default::default() }, action: Action::Deny },
        Rule {
            matcher: Matcher {
                ops: vec!["SELECT".into()],
                target_prefixes: vec![b"pgbench".to_vec()],
                ..Default::default()
            },
            action: Action::RateLimit(RateLimit::new(
                many,
                Duration::from_secs(1),
                many,
                LimitKind::User,
                OnLimit::Reject,
            )),
        },
    ]
}

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn cstr(s: &str) -> Vec<u8> {
    [s.as_bytes(), b"\0"].concat()
}

fn parse(name: &str, sql: &str) -> Vec<u8> {
    msg(b'P', &[cstr(name), cstr(sql), vec![0, 0]].concat())
}

/// Bind of one text parameter, `4242`.
fn bind(statement: &str) -> Vec<u8> {
    msg(b'B', &[cstr(""), cstr(statement), vec![0, 0, 0, 1, 0, 0, 0, 4], b"4242".to_vec(), vec![0, 0]].concat())
}

fn client_round(mode: &str) -> Vec<u8> {
    let describe = msg(b'D', b"P\0");
    let execute = msg(b'E', b"\0\0\0\0\0");
    let sync = msg(b'S', b"");
    match mode {
        "simple" => msg(b'Q', &cstr(&SELECT.replace("$1", "4242"))),
        "extended" => [parse("", SELECT), bind(""), describe, execute, sync].concat(),
        _ => [bind("P_0"), describe, execute, sync].concat(),
    }
}

fn server_round(mode: &str) -> Vec<u8> {
    let row_description = msg(
        b'T',
        &[vec![0, 1], cstr("abalance"), vec![0, 0, 0x40, 0, 0, 3, 0, 0, 0, 0x17, 0, 4, 0xff, 0xff, 0xff, 0xff, 0, 0]]
            .concat(),
    );
    let data_row = msg(b'D', &[vec![0, 1, 0, 0, 0, 1], b"0".to_vec()].concat());
    let complete = msg(b'C', &cstr("SELECT 1"));
    let ready = msg(b'Z', b"I");
    let (parse_complete, bind_complete) = (msg(b'1', b""), msg(b'2', b""));
    match mode {
        "simple" => [row_description, data_row, complete, ready].concat(),
        "extended" => [parse_complete, bind_complete, row_description, data_row, complete, ready].concat(),
        _ => [bind_complete, row_description, data_row, complete, ready].concat(),
    }
}

fn feed(filter: &mut PostgresFilter, client: bool, bytes: &[u8], input: &mut BytesMut, io: &mut StreamIo<'_>) {
    input.extend_from_slice(bytes);
    match client {
        true => filter.on_downstream(input, false, io),
        false => filter.on_upstream(input, false, io),
    };
}

fn statements(c: &mut Criterion) {
    let body = b"\0\x03\0\0user\0bench\0database\0bench\0\0";
    let startup = [((body.len() + 4) as u32).to_be_bytes().to_vec(), body.to_vec()].concat();
    let login = [msg(b'R', &[0, 0, 0, 0]), msg(b'Z', b"I")].concat();
    let mut group = c.benchmark_group("postgres_filter");
    group.throughput(Throughput::Elements(1));
    for rules_mode in ["observe", "rules"] {
        for mode in ["simple", "extended", "prepared"] {
            let rules = if rules_mode == "rules" { rules() } else { Vec::new() };
            let mut filter = PostgresFilter::new(listener(rules), "127.0.0.1".parse().unwrap());
            let (mut from_client, mut from_server) =
                (BytesMut::with_capacity(64 * 1024), BytesMut::with_capacity(64 * 1024));
            let (mut to_server, mut to_client) = (WriteQueue::default(), WriteQueue::default());
            {
                let mut io =
                    StreamIo { now: Instant::now(), to_upstream: &mut to_server, to_downstream: &mut to_client };
                feed(&mut filter, true, &startup, &mut from_client, &mut io);
                feed(&mut filter, false, &login, &mut from_server, &mut io);
                if mode == "prepared" {
                    let prepare = [parse("P_0", SELECT), msg(b'S', b"")].concat();
                    feed(&mut filter, true, &prepare, &mut from_client, &mut io);
                    feed(&mut filter, false, &[msg(b'1', b""), msg(b'Z', b"I")].concat(), &mut from_server, &mut io);
                }
            }
            to_server.advance(to_server.len());
            to_client.advance(to_client.len());
            let (request, response) = (client_round(mode), server_round(mode));
            group.bench_function(format!("{rules_mode}/{mode}"), |b| {
                b.iter(|| {
                    let mut io =
                        StreamIo { now: Instant::now(), to_upstream: &mut to_server, to_downstream: &mut to_client };
                    feed(&mut filter, true, &request, &mut from_client, &mut io);
                    feed(&mut filter, false, &response, &mut from_server, &mut io);
                    assert_eq!(to_client.len(), response.len(), "the answer passes");
                    to_server.advance(to_server.len());
                    to_client.advance(to_client.len());
                })
            });
            assert_eq!(filter.statements_in_flight(), 0, "every statement finished");
        }
    }
    group.finish();
}

criterion_group!(benches, statements);
criterion_main!(benches);
