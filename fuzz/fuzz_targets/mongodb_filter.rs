//! The `mongodb` stream filter with arbitrary traffic in both directions, cut into arbitrary
//! reads: it never panics, and when it only observes (no rules) it forwards every byte
//! unchanged and in order, whatever it makes of them: what it queued for each side plus
//! what it still buffers is exactly what that side sent, and after both ends send FIN
//! nothing is left behind. With deny rules and a rate limit it may refuse (answering with
//! error replies of its own) and close, but still never panics.
//!
//! Input: as `sluice_fuzz::stream` reads it (a mode byte, then two-way records).

#![no_main]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sluice_codecs::Limits;
use sluice_filters::mongodb::stats::MongodbStats;
use sluice_filters::mongodb::{ErrorCode, MongodbFilter, MongodbListener};
use sluice_filters::policy::{Action, FaultSet, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use sluice_fuzz::stream::{enforces, replay_both_ways};

fn listener(enforce: bool) -> Arc<MongodbListener> {
    let rules = if enforce {
        let two = NonZeroU32::new(2).unwrap();
        vec![
            Rule {
                matcher: Matcher { ops: vec!["drop".into(), "OP_DELETE".into()], ..Default::default() },
                action: Action::Deny,
            },
            Rule {
                matcher: Matcher { target_prefixes: vec![b"app.sc".to_vec()], ..Default::default() },
                action: Action::Deny,
            },
            Rule {
                matcher: Matcher { ops: vec!["find".into(), "getMore".into()], ..Default::default() },
                action: Action::RateLimit(RateLimit::new(
                    two,
                    Duration::from_secs(3600),
                    two,
                    LimitKind::Target,
                    OnLimit::Reject,
                )),
            },
        ]
    } else {
        vec![]
    };
    Arc::new(MongodbListener {
        name: "fuzz".into(),
        rules: Arc::new(RuleSet::new(rules)),
        faults: FaultSet::default(),
        stats: MongodbStats::new("fuzz", 8),
        limits: Limits { max_frame: 1 << 20, max_depth: 32 },
        max_in_flight: 16,
        deny_error: ErrorCode::unauthorized(),
        limit_error: ErrorCode::rate_limit_exceeded(),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((enforce, records)) = enforces(data) else { return };
    let mut filter = MongodbFilter::new(listener(enforce), "127.0.0.1".parse().unwrap());
    replay_both_ways(&mut filter, records, enforce);
});
