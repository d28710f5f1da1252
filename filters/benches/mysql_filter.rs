//! What the `mysql` filter costs per command, without sockets: the captured sysbench
//! `oltp_point_select` session (fixtures/mysql) is replayed up to its first
//! COM_STMT_EXECUTE, then one execute and its binary result set (one row) go through
//! `on_downstream` and `on_upstream` per iteration, as a client waiting for each answer
//! does. Observe-only (stats and digests on, no rules) and with rules evaluated on every
//! command.
//!
//! `cargo bench -p sluice-filters --bench mysql_filter`; the time is per command.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_codecs::mysql::{peek, Direction, MysqlLimits, Session};
use sluice_filters::mysql::stats::MysqlStats;
use sluice_filters::mysql::{MysqlFilter, MysqlListener};
use sluice_filters::policy::{Action, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use sluice_filters::sql::{CacheLimits, Dialect, DigestTable, SharedStatementCache};
use sluice_filters::{StreamFilter, StreamIo, WriteQueue};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/mysql/sysbench_point_select");
const COM_STMT_EXECUTE: u8 = 0x17;

fn listener(rules: Vec<Rule>) -> Arc<MysqlListener> {
    Arc::new(MysqlListener {
        name: "bench".into(),
        rules: Arc::new(RuleSet::new(rules)),
        stats: MysqlStats::new("bench", 256),
        digests: Arc::new(DigestTable::new(5000)),
        statements: SharedStatementCache::new(Dialect::MySql, CacheLimits::PER_LISTENER),
        limits: MysqlLimits::default(),
        terminates_tls: false,
        originates_tls: false,
        query_log: None,
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
                target_prefixes: vec![b"sbtest".to_vec()],
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

fn packets(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Ok(Some(n)) = peek(&bytes[at..], &MysqlLimits::default()) {
        out.push(&bytes[at..at + n]);
        at += n;
    }
    out
}

/// The session's packets in wire order: whichever side the protocol waits for goes next.
fn wire_order<'a>(client: &'a [u8], server: &'a [u8]) -> Vec<(Direction, &'a [u8])> {
    let (mut c, mut s) = (packets(client).into_iter(), packets(server).into_iter());
    let mut session = Session::new(MysqlLimits::default());
    let mut order = Vec::new();
    loop {
        let next = match session.waiting_for().unwrap_or(Direction::Server) {
            Direction::Server => {
                s.next().map(|p| (Direction::Server, p)).or_else(|| c.next().map(|p| (Direction::Client, p)))
            }
            Direction::Client => {
                c.next().map(|p| (Direction::Client, p)).or_else(|| s.next().map(|p| (Direction::Server, p)))
            }
        };
        let Some((dir, packet)) = next else { return order };
        session.feed(dir, packet).expect("the fixture replays");
        order.push((dir, packet));
    }
}

fn feed(filter: &mut MysqlFilter, dir: Direction, bytes: &[u8], input: &mut BytesMut, io: &mut StreamIo<'_>) {
    input.extend_from_slice(bytes);
    match dir {
        Direction::Client => filter.on_downstream(input, false, io),
        Direction::Server => filter.on_upstream(input, false, io),
    };
}

fn executes(c: &mut Criterion) {
    let client = std::fs::read(format!("{FIXTURE}.client")).expect("fixture");
    let server = std::fs::read(format!("{FIXTURE}.server")).expect("fixture");
    let order = wire_order(&client, &server);
    let execute_at: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(_, (dir, p))| *dir == Direction::Client && p.get(4) == Some(&COM_STMT_EXECUTE))
        .map(|(i, _)| i)
        .collect();
    let (first, second) = (execute_at[0], execute_at[1]);
    // One execute and its response, as the two reads they arrive in.
    let request: Vec<u8> =
        order[first..second].iter().filter(|(d, _)| *d == Direction::Client).flat_map(|(_, p)| p.to_vec()).collect();
    let response: Vec<u8> =
        order[first..second].iter().filter(|(d, _)| *d == Direction::Server).flat_map(|(_, p)| p.to_vec()).collect();

    let mut group = c.benchmark_group("mysql_filter");
    group.throughput(Throughput::Elements(1));
    for (mode, rules) in [("observe", vec![]), ("rules", rules())] {
        let mut filter = MysqlFilter::new(listener(rules), "127.0.0.1".parse().unwrap());
        let (mut from_client, mut from_server) =
            (BytesMut::with_capacity(64 * 1024), BytesMut::with_capacity(64 * 1024));
        let (mut to_server, mut to_client) = (WriteQueue::default(), WriteQueue::default());
        {
            let mut io = StreamIo { now: Instant::now(), to_upstream: &mut to_server, to_downstream: &mut to_client };
            for (dir, packet) in &order[..first] {
                let input = if *dir == Direction::Client { &mut from_client } else { &mut from_server };
                feed(&mut filter, *dir, packet, input, &mut io);
            }
        }
        to_server.advance(to_server.len());
        to_client.advance(to_client.len());
        group.bench_function(format!("{mode}/point_select_execute"), |b| {
            b.iter(|| {
                let mut io =
                    StreamIo { now: Instant::now(), to_upstream: &mut to_server, to_downstream: &mut to_client };
                feed(&mut filter, Direction::Client, &request, &mut from_client, &mut io);
                feed(&mut filter, Direction::Server, &response, &mut from_server, &mut io);
                to_server.advance(to_server.len());
                to_client.advance(to_client.len());
            })
        });
        assert_eq!(filter.responses_owed(), 0, "every execute was answered");
    }
    group.finish();
}

criterion_group!(benches, executes);
criterion_main!(benches);
