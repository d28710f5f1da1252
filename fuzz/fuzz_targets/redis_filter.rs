//! The `redis` stream filter with arbitrary traffic in both directions, cut into arbitrary
//! reads: it never panics, and when it only observes (no rules, no faults) it forwards
//! every byte unchanged and in order, whatever it makes of them: what it queued for each
//! side plus what it still buffers is exactly what that side sent, and after both ends
//! send FIN nothing is left behind. With a deny rule and a rate limit it may refuse and
//! close, but still never panics.
//!
//! Input: as `sluice_fuzz::stream` reads it (a mode byte, then two-way records).

#![no_main]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sluice_codecs::resp::RespLimits;
use sluice_filters::policy::{Action, FaultSet, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use sluice_filters::redis::stats::RedisStats;
use sluice_filters::redis::{RedisFilter, RedisListener};
use sluice_fuzz::stream::{enforces, replay_both_ways};

fn listener(enforce: bool) -> Arc<RedisListener> {
    let rules = if enforce {
        let ten = NonZeroU32::new(10).unwrap();
        vec![
            Rule { matcher: Matcher { ops: vec!["FLUSHALL".into()], ..Default::default() }, action: Action::Deny },
            Rule {
                matcher: Matcher { ops: vec!["GET".into()], ..Default::default() },
                action: Action::RateLimit(RateLimit::new(
                    ten,
                    Duration::from_secs(1),
                    ten,
                    LimitKind::Op,
                    OnLimit::Reject,
                )),
            },
        ]
    } else {
        vec![]
    };
    let limits = |base: RespLimits| RespLimits {
        max_bulk_len: 4096,
        max_aggregate_len: 64,
        max_depth: 8,
        max_line_len: 256,
        ..base
    };
    Arc::new(RedisListener {
        name: "fuzz".into(),
        rules: Arc::new(RuleSet::new(rules)),
        faults: FaultSet::default(),
        stats: RedisStats::new("fuzz", &["user:".into()]),
        request_limits: limits(RespLimits::requests()),
        reply_limits: limits(RespLimits::replies()),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((enforce, records)) = enforces(data) else { return };
    let mut filter = RedisFilter::new(listener(enforce), "127.0.0.1".parse().unwrap());
    replay_both_ways(&mut filter, records, enforce);
});
