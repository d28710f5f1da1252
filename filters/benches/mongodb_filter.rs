//! What the `mongodb` filter costs per command, without sockets: one request goes through
//! `on_downstream` and its reply through `on_upstream` per iteration, as a driver waiting
//! for each answer does: `find_one` (a find with `lsid` and `$db`, answered by a cursor with
//! one document), `insert` (a 100-document `documents` sequence, answered `{n: 100, ok: 1}`)
//! and `ping`. Observe-only (stats on, no rules) and with rules evaluated on every command.
//!
//! `cargo bench -p sluice-filters --bench mongodb_filter`; the time is per command.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_codecs::mongodb::{default_limits, op_msg, DocumentWriter};
use sluice_filters::mongodb::stats::MongodbStats;
use sluice_filters::mongodb::{ErrorCode, MongodbFilter, MongodbListener, DEFAULT_MAX_IN_FLIGHT};
use sluice_filters::policy::{Action, FaultSet, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use sluice_filters::{StreamFilter, StreamIo, WriteQueue};

fn listener(rules: Vec<Rule>) -> Arc<MongodbListener> {
    Arc::new(MongodbListener {
        name: "bench".into(),
        rules: Arc::new(RuleSet::new(rules)),
        faults: FaultSet::default(),
        stats: MongodbStats::new("bench", 256),
        limits: default_limits(),
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        deny_error: ErrorCode::unauthorized(),
        limit_error: ErrorCode::rate_limit_exceeded(),
    })
}

fn rules() -> Vec<Rule> {
    let many = NonZeroU32::new(u32::MAX).unwrap();
    vec![
        Rule {
            matcher: Matcher { ops: vec!["dropDatabase".into(), "drop".into()], ..Default::default() },
            action: Action::Deny,
        },
        Rule {
            matcher: Matcher { target_prefixes: vec![b"app.".to_vec()], ..Default::default() },
            action: Action::RateLimit(RateLimit::new(
                many,
                Duration::from_secs(1),
                many,
                LimitKind::Target,
                OnLimit::Reject,
            )),
        },
    ]
}

/// A document with an embedded `lsid: {id: <16 bytes>}`, as drivers send it.
fn with_lsid(doc: DocumentWriter) -> Vec<u8> {
    let mut lsid = BytesMut::new();
    lsid.put_i32_le(0);
    lsid.put_u8(0x05);
    lsid.put_slice(b"id\0");
    lsid.put_i32_le(16);
    lsid.put_u8(4);
    lsid.put_slice(&[7; 16]);
    lsid.put_u8(0);
    let len = lsid.len() as i32;
    lsid[..4].copy_from_slice(&len.to_le_bytes());
    let mut body = doc.finish().to_vec();
    body.pop();
    body.push(0x03);
    body.extend_from_slice(b"lsid\0");
    body.extend_from_slice(&lsid);
    body.push(0);
    let len = body.len() as i32;
    body[..4].copy_from_slice(&len.to_le_bytes());
    body
}

fn request(command: &str) -> Vec<u8> {
    match command {
        "find_one" => {
            let body = with_lsid(DocumentWriter::new().string("find", "users").int32("limit", 1).string("$db", "app"));
            op_msg(1, 0, 0, &body).to_vec()
        }
        "insert" => {
            let body = with_lsid(
                DocumentWriter::new().string("insert", "users").boolean("ordered", true).string("$db", "app"),
            );
            let mut msg = op_msg(1, 0, 0, &body).to_vec();
            let mut seq = vec![1u8, 0, 0, 0, 0];
            seq.extend_from_slice(b"documents\0");
            for i in 0..100 {
                seq.extend_from_slice(&DocumentWriter::new().int32("_id", i).string("name", "someone").finish());
            }
            let size = (seq.len() - 1) as i32;
            seq[1..5].copy_from_slice(&size.to_le_bytes());
            msg.extend_from_slice(&seq);
            let len = msg.len() as i32;
            msg[..4].copy_from_slice(&len.to_le_bytes());
            msg
        }
        _ => op_msg(1, 0, 0, &with_lsid(DocumentWriter::new().int32("ping", 1).string("$db", "admin"))).to_vec(),
    }
}

fn reply(command: &str) -> Vec<u8> {
    let body = match command {
        "find_one" => {
            // {cursor: {firstBatch: [{_id: 1, name: "someone"}], id: 0, ns: "app.users"}, ok: 1}
            let doc = DocumentWriter::new().int32("_id", 1).string("name", "someone").finish();
            let mut batch = vec![0u8; 4];
            batch.push(0x03);
            batch.extend_from_slice(b"0\0");
            batch.extend_from_slice(&doc);
            batch.push(0);
            let len = batch.len() as i32;
            batch[..4].copy_from_slice(&len.to_le_bytes());
            let mut cursor = DocumentWriter::new().int64("id", 0).string("ns", "app.users").finish().to_vec();
            cursor.pop();
            cursor.push(0x04);
            cursor.extend_from_slice(b"firstBatch\0");
            cursor.extend_from_slice(&batch);
            cursor.push(0);
            let len = cursor.len() as i32;
            cursor[..4].copy_from_slice(&len.to_le_bytes());
            let mut body = vec![0u8; 4];
            body.push(0x03);
            body.extend_from_slice(b"cursor\0");
            body.extend_from_slice(&cursor);
            body.extend_from_slice(&DocumentWriter::new().double("ok", 1.0).finish()[4..]);
            let len = body.len() as i32;
            body[..4].copy_from_slice(&len.to_le_bytes());
            body
        }
        "insert" => DocumentWriter::new().int32("n", 100).double("ok", 1.0).finish().to_vec(),
        _ => DocumentWriter::new().double("ok", 1.0).finish().to_vec(),
    };
    op_msg(2, 1, 0, &body).to_vec()
}

fn commands(c: &mut Criterion) {
    let mut group = c.benchmark_group("mongodb_filter");
    group.throughput(Throughput::Elements(1));
    for rules_mode in ["observe", "rules"] {
        for command in ["find_one", "insert", "ping"] {
            let rules = if rules_mode == "rules" { rules() } else { Vec::new() };
            let mut filter = MongodbFilter::new(listener(rules), "127.0.0.1".parse().unwrap());
            let (mut from_client, mut from_server) =
                (BytesMut::with_capacity(64 * 1024), BytesMut::with_capacity(64 * 1024));
            let (mut to_server, mut to_client) = (WriteQueue::default(), WriteQueue::default());
            let (request, response) = (request(command), reply(command));
            group.bench_function(format!("{rules_mode}/{command}"), |b| {
                b.iter(|| {
                    let mut io =
                        StreamIo { now: Instant::now(), to_upstream: &mut to_server, to_downstream: &mut to_client };
                    from_client.extend_from_slice(&request);
                    filter.on_downstream(&mut from_client, false, &mut io);
                    from_server.extend_from_slice(&response);
                    filter.on_upstream(&mut from_server, false, &mut io);
                    assert_eq!(to_client.len(), response.len(), "the answer passes");
                    to_server.advance(to_server.len());
                    to_client.advance(to_client.len());
                })
            });
            assert_eq!(filter.in_flight(), 0, "every command answered");
        }
    }
    group.finish();
}

criterion_group!(benches, commands);
criterion_main!(benches);
