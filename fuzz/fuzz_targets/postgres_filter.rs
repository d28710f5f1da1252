//! The `postgres` stream filter with arbitrary traffic in both directions, cut into arbitrary
//! reads: it never panics, and when it only observes (no rules) it forwards every byte
//! unchanged and in order, whatever it makes of them: what it queued for each side plus
//! what it still buffers is exactly what that side sent, and after both ends send FIN
//! nothing is left behind. With a deny rule and a rate limit it may refuse, answer
//! encryption requests itself and close, but still never panics.
//!
//! Input: the first byte picks observe or enforce mode; then records of one header byte
//! (top bit: from the server; low 7 bits: length) followed by that many bytes.

#![no_main]

use std::io::IoSlice;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_codecs::postgres::PgLimits;
use sluice_filters::postgres::stats::PostgresStats;
use sluice_filters::postgres::{PostgresFilter, PostgresListener};
use sluice_filters::policy::{Action, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use sluice_filters::sql::{CacheLimits, Dialect, DigestTable, SharedStatementCache};
use sluice_filters::{FilterStatus, StreamFilter, StreamIo, WriteQueue};

fn drain(queue: &mut WriteQueue, out: &mut Vec<u8>) {
    while !queue.is_empty() {
        let mut slices = [IoSlice::new(&[]); 16];
        let n = queue.io_slices(&mut slices);
        let len: usize = slices[..n].iter().map(|s| s.len()).sum();
        slices[..n].iter().for_each(|s| out.extend_from_slice(s));
        queue.advance(len);
    }
}

fn listener(enforce: bool) -> Arc<PostgresListener> {
    let rules = if enforce {
        let ten = NonZeroU32::new(10).unwrap();
        vec![
            Rule { matcher: Matcher { ops: vec!["DROP".into()], ..Default::default() }, action: Action::Deny },
            Rule { matcher: Matcher { without_where: true, ..Default::default() }, action: Action::Deny },
            Rule {
                matcher: Matcher { ops: vec!["SELECT".into()], ..Default::default() },
                action: Action::RateLimit(RateLimit::new(ten, Duration::from_secs(1), ten, LimitKind::Digest, OnLimit::Reject)),
            },
        ]
    } else {
        vec![]
    };
    Arc::new(PostgresListener {
        name: "fuzz".into(),
        rules: Arc::new(RuleSet::new(rules)),
        stats: PostgresStats::new("fuzz", 8),
        digests: Arc::new(DigestTable::new(64)),
        statements: SharedStatementCache::new(Dialect::Postgres, CacheLimits { max_entries: 64, max_bytes: 1 << 16 }),
        limits: PgLimits { max_message: 1 << 20, max_startup: 4096, max_parameters: 16, max_pending: 16, max_named: 16 },
        query_log: None,
        terminates_tls: false,
        refuse_encryption: false,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else { return };
    let enforce = mode & 1 == 1;
    let mut filter = PostgresFilter::new(listener(enforce), "127.0.0.1".parse().unwrap());
    let (mut from_client, mut from_server) = (BytesMut::new(), BytesMut::new());
    let (mut to_server, mut to_client) = (WriteQueue::default(), WriteQueue::default());
    let (mut client_sent, mut server_sent) = (Vec::new(), Vec::new());
    let (mut got_server, mut got_client) = (Vec::new(), Vec::new());
    let now = Instant::now();
    while let Some((&header, tail)) = rest.split_first() {
        let len = usize::from(header & 0x7f).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        let mut io = StreamIo { now, to_upstream: &mut to_server, to_downstream: &mut to_client };
        let status = if header & 0x80 == 0 {
            client_sent.extend_from_slice(chunk);
            from_client.extend_from_slice(chunk);
            filter.on_downstream(&mut from_client, false, &mut io)
        } else {
            server_sent.extend_from_slice(chunk);
            from_server.extend_from_slice(chunk);
            filter.on_upstream(&mut from_server, false, &mut io)
        };
        drain(&mut to_server, &mut got_server);
        drain(&mut to_client, &mut got_client);
        if let FilterStatus::Close(_) = status {
            assert!(enforce, "an observing filter never closes");
            return;
        }
    }
    if enforce {
        return;
    }
    let mut io = StreamIo { now, to_upstream: &mut to_server, to_downstream: &mut to_client };
    filter.on_downstream(&mut from_client, true, &mut io);
    filter.on_upstream(&mut from_server, true, &mut io);
    drain(&mut to_server, &mut got_server);
    drain(&mut to_client, &mut got_client);
    assert!(from_client.is_empty() && from_server.is_empty(), "nothing is kept after FIN");
    assert_eq!(got_server, client_sent, "the server gets exactly what the client sent");
    assert_eq!(got_client, server_sent, "the client gets exactly what the server sent");
});
