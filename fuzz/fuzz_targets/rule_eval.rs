//! The policy engine on its own: a `sluice_filters::RuleSet` built from fuzzed matchers
//! (op names, exact targets, target prefixes, client CIDRs, users, listeners) and actions
//! (allow, deny, GCRA rate limits that reject or delay), then a fuzzed sequence of `Op`s
//! evaluated against it, with `housekeep` in between.
//!
//! Rate limits take the values a config can produce: any non-zero count and burst, and a
//! period of 1 s, 1 min or 1 h (what `rate: <n>/s|m|h` gives), plus short millisecond
//! periods; `max_delay` is any duration up to ~49 days.
//!
//! Checks, besides "never panics": the verdict agrees with a plain reading of the rules,
//! i.e. the first rule whose `Matcher::matches` is true decides: `Allow` rules allow,
//! `Deny` rules deny with their own index, a rate limit allows or answers with its own
//! index (`Delay` only when it delays, with `0 < wait <= max_delay`), and no match allows.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use arbitrary::Arbitrary;
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use sluice_filters::policy::{Action, LimitKind, Matcher, OnLimit, RateLimit, Rule};
use sluice_filters::{Op, Protocol, RuleSet, Verdict};

const OPS: &[&str] = &["connect", "CONNECT", "close", "get", "GET", "Set"];
const LISTENERS: &[&str] = &["edge", "cache_in", ""];
const USERS: &[&str] = &["alice", "bob", ""];

#[derive(Arbitrary, Debug)]
enum Word {
    Pick(u8),
    Free(String),
}

impl Word {
    fn get<'a>(&'a self, pool: &[&'static str]) -> &'a str {
        match self {
            Word::Pick(i) => pool[usize::from(*i) % pool.len()],
            Word::Free(s) => s,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Ip {
    V4([u8; 4]),
    V6([u8; 16]),
    /// An IPv4 client seen on a dual-stack socket (`::ffff:a.b.c.d`).
    Mapped([u8; 4]),
}

impl Ip {
    fn addr(self) -> IpAddr {
        match self {
            Ip::V4(o) => IpAddr::V4(Ipv4Addr::from(o)),
            Ip::V6(o) => IpAddr::V6(Ipv6Addr::from(o)),
            Ip::Mapped(o) => IpAddr::V6(Ipv4Addr::from(o).to_ipv6_mapped()),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct FuzzMatcher {
    ops: Vec<Word>,
    targets: Vec<Vec<u8>>,
    target_prefixes: Vec<Vec<u8>>,
    /// (address, prefix length, truncate as the config loader does)
    client_cidrs: Vec<(Ip, u8, bool)>,
    users: Vec<Word>,
    listeners: Vec<Word>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Period {
    Second,
    Minute,
    Hour,
    Millis(u16),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    ClientIp,
    Listener,
    Target,
    User,
    Op,
}

#[derive(Arbitrary, Debug)]
enum FuzzAction {
    Allow,
    Deny,
    RateLimit { count: NonZeroU32, period: Period, burst: NonZeroU32, per: Kind, delay_ms: Option<u32> },
}

#[derive(Arbitrary, Debug)]
struct FuzzOp {
    udp: bool,
    listener: Word,
    op: Word,
    target: Option<Vec<u8>>,
    user: Option<Word>,
    client: Ip,
    housekeep_after: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    rules: Vec<(FuzzMatcher, FuzzAction)>,
    ops: Vec<FuzzOp>,
}

fn matcher(m: &FuzzMatcher) -> Matcher {
    Matcher {
        ops: m.ops.iter().map(|w| w.get(OPS).to_string()).collect(),
        targets: m.targets.clone(),
        target_prefixes: m.target_prefixes.clone(),
        client_cidrs: m
            .client_cidrs
            .iter()
            .filter_map(|&(ip, prefix, trunc)| {
                let net = IpNet::new(ip.addr(), prefix).ok()?;
                Some(if trunc { net.trunc() } else { net })
            })
            .collect(),
        users: m.users.iter().map(|w| w.get(USERS).to_string()).collect(),
        listeners: m.listeners.iter().map(|w| w.get(LISTENERS).to_string()).collect(),
        ..Default::default()
    }
}

/// The action, and for a rate limit its `on_limit`; `None` for a known, reported crash.
fn action(a: &FuzzAction) -> Option<(Action, Option<OnLimit>)> {
    Some(match *a {
        FuzzAction::Allow => (Action::Allow, None),
        FuzzAction::Deny => (Action::Deny, None),
        FuzzAction::RateLimit { count, period, burst, per, delay_ms } => {
            let period = match period {
                Period::Second => Duration::from_secs(1),
                Period::Minute => Duration::from_secs(60),
                Period::Hour => Duration::from_secs(3600),
                Period::Millis(ms) => Duration::from_millis(u64::from(ms.max(1))),
            };
            let per = match per {
                Kind::ClientIp => LimitKind::ClientIp,
                Kind::Listener => LimitKind::Listener,
                Kind::Target => LimitKind::Target,
                Kind::User => LimitKind::User,
                Kind::Op => LimitKind::Op,
            };
            let on_limit = match delay_ms {
                None => OnLimit::Reject,
                Some(ms) => OnLimit::Delay { max_delay: Duration::from_millis(u64::from(ms)) },
            };
            (Action::RateLimit(RateLimit::new(count, period, burst, per, on_limit)), Some(on_limit))
        }
    })
}

fuzz_target!(|input: Input| {
    if sluice_fuzz::print_inputs() {
        eprintln!("{input:#?}");
    }
    let mut rules = Vec::with_capacity(input.rules.len());
    let mut limits = Vec::with_capacity(input.rules.len());
    for (m, a) in input.rules.iter().take(32) {
        let Some((action, on_limit)) = action(a) else { return };
        rules.push(Rule { matcher: matcher(m), action });
        limits.push(on_limit);
    }
    // Matchers are `Clone`; keep copies to check verdicts against, since `RuleSet` owns
    // its rules and does not expose them.
    let expected: Vec<(Matcher, bool, bool, Option<OnLimit>)> = rules
        .iter()
        .zip(&limits)
        .map(|(r, l)| (r.matcher.clone(), matches!(r.action, Action::Allow), matches!(r.action, Action::Deny), *l))
        .collect();
    let set = RuleSet::new(rules);
    assert_eq!(set.is_empty(), expected.is_empty());

    for f in input.ops.iter().take(256) {
        let op = Op {
            protocol: if f.udp { Protocol::Udp } else { Protocol::Tcp },
            listener: f.listener.get(LISTENERS),
            op: f.op.get(OPS),
            target: f.target.as_deref(),
            user: f.user.as_ref().map(|u| u.get(USERS)),
            database: None,
            statement: None,
            client_id: None,
            client: f.client.addr(),
        };
        let verdict = set.evaluate(&op);
        let first = expected.iter().position(|(m, ..)| m.matches(&op));
        match (first, verdict) {
            (None, v) => assert_eq!(v, Verdict::Allow, "no rule matches {op:?}"),
            (Some(i), v) => {
                let (_, allow, deny, on_limit) = &expected[i];
                match v {
                    Verdict::Allow => assert!(!deny, "deny rule {i} matched {op:?} but it was allowed"),
                    Verdict::Deny { rule } => assert!(*deny && rule == i, "{v:?} but rule {i} decides {op:?}"),
                    Verdict::Limited { rule } => {
                        assert!(on_limit.is_some() && rule == i, "{v:?} but rule {i} decides {op:?}")
                    }
                    Verdict::Delay { rule, wait } => {
                        let Some(OnLimit::Delay { max_delay }) = on_limit else {
                            panic!("{v:?} but rule {i} decides {op:?} and does not delay")
                        };
                        assert_eq!(rule, i);
                        assert!(wait > Duration::ZERO && wait <= (*max_delay).max(Duration::from_micros(1)), "{v:?}");
                    }
                }
                if *allow {
                    assert_eq!(v, Verdict::Allow);
                }
            }
        }
        if f.housekeep_after {
            set.housekeep();
        }
    }
});
