//! `mode: pool`'s protocol logic on hostile input: every command cut from arbitrary client
//! bytes is routed (`routing::route`), its keys hashed by ketama, maglev and Redis Cluster
//! slots, and split commands merged from arbitrary server replies (`merge::merge`); any
//! arbitrary reply is also read as a Redis Cluster redirection and a `CLUSTER SLOTS` map.
//!
//! Must hold: no panic (overflow checks are on); a split's merge of well-formed parts
//! gives one frame the scanner accepts whole (a DEL's: a count or a part's error, RESP3
//! bulk errors included); a redirection's slot is below 16384; slot
//! ranges from CLUSTER SLOTS are ordered and within the slot space.
//!
//! Input: the first byte splits the rest into client bytes and server bytes. Seeds:
//! `fuzz/seeds/redis_pool_routing` (commands of every route kind and matching replies).

#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_codecs::resp::{Command, FrameScanner, Reply, RespLimits};
use sluice_filters::redis::cluster_slots::{parse_cluster_slots, redirect, slot_of, Redirect, SLOTS};
use sluice_filters::redis::command_table::lookup;
use sluice_filters::redis::distribution::{Distribution, DistributionKind};
use sluice_filters::redis::ketama::KeyHash;
use sluice_filters::redis::merge::{encode_command, merge};
use sluice_filters::redis::routing::{route, Merge, Route};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let at = usize::from(cut) * rest.len() / 256;
    let (client, server) = rest.split_at(at);
    let limits = RespLimits { max_bulk_len: 4096, max_aggregate_len: 64, max_depth: 4, ..RespLimits::requests() };
    let (ketama, maglev) = rings();
    let replies = frames(server, RespLimits::replies());

    let mut buf = client;
    let mut scanner = FrameScanner::new(limits);
    while let Ok(Some(n)) = scanner.scan(buf) {
        let (frame, next) = buf.split_at(n);
        buf = next;
        let Ok(command) = Command::parse(frame) else { continue };
        let keys: Vec<&[u8]> = match route(&command, lookup(command.args())) {
            Route::Key(key) => vec![key],
            Route::SameServer(keys) | Route::Blocking(keys) => keys,
            Route::Subscribe(channel) | Route::Publish(channel) => vec![channel],
            Route::Split { name, group, merge: how } => {
                let args: Vec<&[u8]> = command.args().skip(1).collect();
                assert!(!args.is_empty() && args.len() % group == 0);
                let keys: Vec<&[u8]> = args.iter().step_by(group).copied().collect();
                let _ = encode_command(name, args.iter().copied());
                // Each key its own part, answered by the server bytes' frames in turn.
                let parts: Vec<(Bytes, Vec<usize>)> =
                    (0..keys.len()).zip(replies.iter().cycle()).map(|(k, reply)| (reply.clone(), vec![k])).collect();
                if parts.len() == keys.len() {
                    let merged = merge(how, &parts, keys.len(), &RespLimits::replies());
                    let whole = FrameScanner::new(RespLimits::replies()).scan(&merged);
                    assert_eq!(whole, Ok(Some(merged.len())), "{how:?} merged into a partial frame");
                    // A count, or a part's error (`-` or a RESP3 bulk error `!`) as it came.
                    if how == Merge::Sum {
                        assert!(merged.starts_with(b":") || Reply::parse(&merged).is_error());
                    }
                }
                keys
            }
            _ => Vec::new(),
        };
        for key in keys {
            let _ = (ketama.server_for(key), maglev.server_for(key));
            assert!(usize::from(slot_of(key)) < SLOTS);
        }
    }
    for reply in &replies {
        match redirect(reply) {
            Some(Redirect::Moved { slot, .. } | Redirect::Ask { slot, .. }) => assert!(usize::from(slot) < SLOTS),
            None => {}
        }
        if let Some(ranges) = parse_cluster_slots(reply) {
            assert!(ranges.iter().all(|r| r.start <= r.end && usize::from(r.end) < SLOTS));
        }
    }
});

/// Built once: a maglev table is 65537 slots.
fn rings() -> &'static (Distribution, Distribution) {
    static RINGS: OnceLock<(Distribution, Distribution)> = OnceLock::new();
    RINGS.get_or_init(|| {
        let servers: Vec<(String, u32)> = (0..3).map(|i| (format!("127.0.0.1:{}", 7000 + i), 1 + i)).collect();
        (
            Distribution::new(DistributionKind::Ketama, &servers, KeyHash::Fnv1a64),
            Distribution::new(DistributionKind::Maglev, &servers, KeyHash::Murmur),
        )
    })
}

/// The complete reply frames at the front of `bytes`.
fn frames(mut bytes: &[u8], limits: RespLimits) -> Vec<Bytes> {
    let mut scanner = FrameScanner::new(limits);
    let mut out = Vec::new();
    while let Ok(Some(n)) = scanner.scan(bytes) {
        out.push(Bytes::copy_from_slice(&bytes[..n]));
        bytes = &bytes[n..];
    }
    out
}
