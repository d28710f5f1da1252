//! The `mysql` stream filter with arbitrary traffic in both directions, cut into arbitrary
//! reads: it never panics, and when it only observes (no rules) it forwards every byte
//! unchanged and in order, whatever it makes of them: what it queued for each side plus
//! what it still buffers is exactly what that side sent, and after both ends send FIN
//! nothing is left behind. With a deny rule and a rate limit it may refuse and close (and
//! rewrites the greeting's capabilities), but still never panics.
//!
//! Input: as `sluice_fuzz::stream` reads it (a mode byte, then two-way records).

#![no_main]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sluice_codecs::mysql::MysqlLimits;
use sluice_filters::mysql::stats::MysqlStats;
use sluice_filters::mysql::{MysqlFilter, MysqlListener};
use sluice_filters::policy::{Action, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use sluice_filters::sql::{CacheLimits, Dialect, DigestTable, SharedStatementCache};
use sluice_fuzz::stream::{enforces, replay_both_ways};

fn listener(enforce: bool) -> Arc<MysqlListener> {
    let rules = if enforce {
        let ten = NonZeroU32::new(10).unwrap();
        vec![
            Rule { matcher: Matcher { ops: vec!["DROP".into()], ..Default::default() }, action: Action::Deny },
            Rule { matcher: Matcher { without_where: true, ..Default::default() }, action: Action::Deny },
            Rule {
                matcher: Matcher { ops: vec!["SELECT".into()], ..Default::default() },
                action: Action::RateLimit(RateLimit::new(
                    ten,
                    Duration::from_secs(1),
                    ten,
                    LimitKind::Digest,
                    OnLimit::Reject,
                )),
            },
        ]
    } else {
        vec![]
    };
    Arc::new(MysqlListener {
        name: "fuzz".into(),
        rules: Arc::new(RuleSet::new(rules)),
        stats: MysqlStats::new("fuzz", 8),
        digests: Arc::new(DigestTable::new(64)),
        statements: SharedStatementCache::new(Dialect::MySql, CacheLimits { max_entries: 64, max_bytes: 1 << 16 }),
        limits: MysqlLimits {
            max_payload: 1 << 20,
            max_handshake: 4096,
            max_columns: 64,
            max_pipelined: 16,
            ..Default::default()
        },
        query_log: None,
        terminates_tls: false,
        originates_tls: false,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((enforce, records)) = enforces(data) else { return };
    let mut filter = MysqlFilter::new(listener(enforce), "127.0.0.1".parse().unwrap());
    replay_both_ways(&mut filter, records, enforce);
});
