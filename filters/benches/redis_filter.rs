//! What the `redis` filter costs per command, without sockets: a pipeline of 16 SETs (or
//! GETs) through `on_downstream`, then their 16 replies through `on_upstream`, as one
//! read each — what a redis-benchmark `-P 16` connection does per round trip. Observe-only
//! (stats on, no rules) and with a rule set evaluated on every command.
//!
//! `cargo bench -p sluice-filters --bench redis_filter`; the time is per pipeline of 16.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_codecs::resp::RespLimits;
use sluice_filters::policy::{Action, FaultSet, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use sluice_filters::redis::stats::RedisStats;
use sluice_filters::redis::{RedisFilter, RedisListener};
use sluice_filters::{StreamFilter, StreamIo, WriteQueue};

const DEPTH: usize = 16;

fn listener(rules: Vec<Rule>) -> Arc<RedisListener> {
    Arc::new(RedisListener {
        name: "bench".into(),
        rules: Arc::new(RuleSet::new(rules)),
        faults: FaultSet::default(),
        stats: RedisStats::new("bench", &[]),
        request_limits: RespLimits::requests(),
        reply_limits: RespLimits::replies(),
    })
}

fn rules() -> Vec<Rule> {
    let many = NonZeroU32::new(u32::MAX).unwrap();
    vec![
        Rule {
            matcher: Matcher { ops: vec!["FLUSHALL".into(), "FLUSHDB".into()], ..Default::default() },
            action: Action::Deny,
        },
        Rule {
            matcher: Matcher { target_prefixes: vec![b"key:".to_vec()], ..Default::default() },
            action: Action::RateLimit(RateLimit::new(
                many,
                Duration::from_secs(1),
                many,
                LimitKind::ClientIp,
                OnLimit::Reject,
            )),
        },
    ]
}

fn pipeline(command: &str) -> (Vec<u8>, Vec<u8>) {
    let (request, reply): (String, &str) = match command {
        "SET" => ("*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n".into(), "+OK\r\n"),
        _ => ("*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n".into(), "$3\r\nxxx\r\n"),
    };
    (request.repeat(DEPTH).into_bytes(), reply.repeat(DEPTH).into_bytes())
}

fn round_trips(c: &mut Criterion) {
    let mut group = c.benchmark_group("redis_filter");
    group.throughput(Throughput::Elements(DEPTH as u64));
    for (mode, rules) in [("observe", vec![]), ("rules", rules())] {
        let listener = listener(rules);
        for command in ["SET", "GET"] {
            let (requests, replies) = pipeline(command);
            let mut filter = RedisFilter::new(listener.clone(), "127.0.0.1".parse().unwrap());
            let (mut from_client, mut from_server) =
                (BytesMut::with_capacity(64 * 1024), BytesMut::with_capacity(64 * 1024));
            let (mut to_server, mut to_client) = (WriteQueue::default(), WriteQueue::default());
            group.bench_function(format!("{mode}/{command}/P{DEPTH}"), |b| {
                b.iter(|| {
                    let now = Instant::now();
                    from_client.extend_from_slice(&requests);
                    let mut io = StreamIo { now, to_upstream: &mut to_server, to_downstream: &mut to_client };
                    filter.on_downstream(&mut from_client, false, &mut io);
                    from_server.extend_from_slice(&replies);
                    filter.on_upstream(&mut from_server, false, &mut io);
                    to_server.advance(to_server.len());
                    to_client.advance(to_client.len());
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
