use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use super::*;
use crate::op::Protocol;

fn op<'a>(name: &'a str, target: &'a str, client: &str) -> Op<'a> {
    Op {
        protocol: Protocol::Tcp,
        listener: "edge",
        op: name,
        target: Some(target.as_bytes()),
        user: None,
        database: None,
        statement: None,
        client_id: None,
        client: client.parse::<IpAddr>().unwrap(),
    }
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

#[test]
fn first_matching_rule_wins() {
    let rules = RuleSet::new(vec![
        Rule {
            matcher: Matcher { client_cidrs: vec!["10.0.0.0/8".parse().unwrap()], ..Matcher::default() },
            action: Action::Allow,
        },
        Rule { matcher: Matcher { ops: vec!["connect".into()], ..Matcher::default() }, action: Action::Deny },
    ]);
    assert_eq!(rules.evaluate(&op("connect", "c", "10.1.2.3")), Verdict::Allow);
    assert_eq!(rules.evaluate(&op("CONNECT", "c", "192.168.1.1")), Verdict::Deny { rule: 1 });
    assert_eq!(rules.evaluate(&op("close", "c", "192.168.1.1")), Verdict::Allow);
}

#[test]
fn ipv4_mapped_clients_match_ipv4_cidrs() {
    let m = Matcher { client_cidrs: vec!["127.0.0.0/8".parse().unwrap()], ..Matcher::default() };
    assert!(m.matches(&op("connect", "c", "::ffff:127.0.0.1")));
    assert!(!m.matches(&op("connect", "c", "::1")));
}

#[test]
fn target_prefix_and_exact() {
    let m = Matcher {
        targets: vec![b"orders".to_vec()],
        target_prefixes: vec![b"session:".to_vec()],
        ..Matcher::default()
    };
    assert!(m.matches(&op("get", "session:42", "1.1.1.1")));
    assert!(m.matches(&op("get", "orders", "1.1.1.1")));
    assert!(!m.matches(&op("get", "orders2", "1.1.1.1")));
    let mut no_target = op("get", "x", "1.1.1.1");
    no_target.target = None;
    assert!(!m.matches(&no_target));
}

#[test]
fn rate_limit_rejects_excess_per_client() {
    let limit = RateLimit::new(nz(1), Duration::from_secs(3600), nz(2), LimitKind::ClientIp, OnLimit::Reject);
    let rules = RuleSet::new(vec![Rule { matcher: Matcher::default(), action: Action::RateLimit(limit) }]);
    let a = op("connect", "c", "1.1.1.1");
    let b = op("connect", "c", "2.2.2.2");
    assert_eq!(rules.evaluate(&a), Verdict::Allow);
    assert_eq!(rules.evaluate(&a), Verdict::Allow);
    assert_eq!(rules.evaluate(&a), Verdict::Limited { rule: 0 });
    // Another client has its own bucket.
    assert_eq!(rules.evaluate(&b), Verdict::Allow);
}

#[test]
fn rate_limit_delay_reports_wait_and_rejects_beyond_max_delay() {
    let delay = OnLimit::Delay { max_delay: Duration::from_secs(1) };
    let limit = RateLimit::new(nz(10), Duration::from_secs(1), nz(1), LimitKind::Listener, delay);
    let rules = RuleSet::new(vec![Rule { matcher: Matcher::default(), action: Action::RateLimit(limit) }]);
    let a = op("connect", "c", "1.1.1.1");
    assert_eq!(rules.evaluate(&a), Verdict::Allow);
    match rules.evaluate(&a) {
        Verdict::Delay { rule: 0, wait } => assert!(wait <= Duration::from_millis(100), "{wait:?}"),
        other => panic!("expected a delay, got {other:?}"),
    }

    let slow = OnLimit::Delay { max_delay: Duration::from_millis(10) };
    let limit = RateLimit::new(nz(1), Duration::from_secs(60), nz(1), LimitKind::Listener, slow);
    let rules = RuleSet::new(vec![Rule { matcher: Matcher::default(), action: Action::RateLimit(limit) }]);
    assert_eq!(rules.evaluate(&a), Verdict::Allow);
    assert_eq!(rules.evaluate(&a), Verdict::Limited { rule: 0 });
}

#[test]
fn rate_limit_per_op_is_case_insensitive() {
    let limit = RateLimit::new(nz(1), Duration::from_secs(3600), nz(1), LimitKind::Op, OnLimit::Reject);
    let rules = RuleSet::new(vec![Rule { matcher: Matcher::default(), action: Action::RateLimit(limit) }]);
    assert_eq!(rules.evaluate(&op("get", "a", "1.1.1.1")), Verdict::Allow);
    assert_eq!(rules.evaluate(&op("GET", "b", "2.2.2.2")), Verdict::Limited { rule: 0 });
    assert_eq!(rules.evaluate(&op("SET", "b", "2.2.2.2")), Verdict::Allow);
}

#[test]
fn bursts_too_deep_for_governor_are_clamped_not_a_panic() {
    // Found by fuzzing (rule_eval): 87/h with a burst of 2,829,625,512 overflowed
    // governor's u64 nanosecond bucket depth.
    let max = max_burst(nz(87), Duration::from_secs(3600));
    assert!(max.get() < 2_829_625_512);
    let limit = RateLimit::new(nz(87), Duration::from_secs(3600), nz(2_829_625_512), LimitKind::Op, OnLimit::Reject);
    let rules = RuleSet::new(vec![Rule { matcher: Matcher::default(), action: Action::RateLimit(limit) }]);
    for _ in 0..3 {
        assert_eq!(rules.evaluate(&op("connect", "c", "1.1.1.1")), Verdict::Allow);
    }
    assert_eq!(max_burst(nz(1), Duration::from_secs(1)).get(), u32::MAX);
}

#[test]
fn limits_in_bytes_take_the_op_size_and_client_ids_key_them() {
    let limit = RateLimit::new(nz(1000), Duration::from_secs(1), nz(1000), LimitKind::ClientId, OnLimit::Reject)
        .counting_bytes();
    let rules = RuleSet::new(vec![Rule {
        matcher: Matcher { client_ids: vec!["ingest".into(), "other".into()], ..Matcher::default() },
        action: Action::RateLimit(limit),
    }]);
    let mut a = op("Produce", "clicks", "127.0.0.1");
    a.client_id = Some("ingest");
    let mut b = a;
    b.client_id = Some("other");
    let mut unmatched = a;
    unmatched.client_id = Some("nobody");
    assert_eq!(rules.evaluate_sized(&a, 600), Verdict::Allow);
    assert_eq!(rules.evaluate_sized(&a, 600), Verdict::Limited { rule: 0 }, "1200 bytes over a 1000-byte bucket");
    assert_eq!(rules.evaluate_sized(&b, 600), Verdict::Allow, "each client id has its own bucket");
    assert_eq!(rules.evaluate_sized(&unmatched, 1 << 30), Verdict::Allow);
    let mut c = a;
    c.client_id = None;
    assert_eq!(rules.evaluate_sized(&c, 1), Verdict::Allow, "no client id: the matcher does not match");
}
