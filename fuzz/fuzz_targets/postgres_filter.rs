//! The `postgres` stream filter with arbitrary traffic in both directions, cut into arbitrary
//! reads: it never panics, and when it only observes (no rules) it forwards every byte
//! unchanged and in order, whatever it makes of them: what it queued for each side plus
//! what it still buffers is exactly what that side sent, and after both ends send FIN
//! nothing is left behind. With a deny rule and a rate limit it may refuse, answer
//! encryption requests itself and close, but still never panics.
//!
//! Input: as `sluice_fuzz::stream` reads it (a mode byte, then two-way records).

#![no_main]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sluice_codecs::postgres::PgLimits;
use sluice_filters::policy::{Action, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use sluice_filters::postgres::stats::PostgresStats;
use sluice_filters::postgres::{PostgresFilter, PostgresListener};
use sluice_filters::sql::{CacheLimits, Dialect, DigestTable, SharedStatementCache};
use sluice_fuzz::stream::{enforces, replay_both_ways};

fn listener(enforce: bool) -> Arc<PostgresListener> {
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
    Arc::new(PostgresListener {
        name: "fuzz".into(),
        rules: Arc::new(RuleSet::new(rules)),
        stats: PostgresStats::new("fuzz", 8),
        digests: Arc::new(DigestTable::new(64)),
        statements: SharedStatementCache::new(Dialect::Postgres, CacheLimits { max_entries: 64, max_bytes: 1 << 16 }),
        limits: PgLimits {
            max_message: 1 << 20,
            max_startup: 4096,
            max_parameters: 16,
            max_pending: 16,
            max_named: 16,
        },
        query_log: None,
        terminates_tls: false,
        refuse_encryption: false,
        originates_tls: enforce,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((enforce, records)) = enforces(data) else { return };
    let mut filter = PostgresFilter::new(listener(enforce), "127.0.0.1".parse().unwrap());
    replay_both_ways(&mut filter, records, enforce);
});
