//! Structured configs into `sluice::Config::from_yaml`: the fuzz input is decoded with
//! `arbitrary` into a description of a config (admin, clusters, listeners, rules, rate
//! limits), whose values are drawn from the words the loader knows (`tcp`, `deny`,
//! `client_ip`, `5m`, `500/s`, cluster names that other sections refer to) or are free
//! strings and numbers, and rendered as block YAML. Raw-byte fuzzing (`config_yaml`)
//! rarely gets past the YAML syntax and the `deny_unknown_fields` checks to the validation
//! of rates, bursts, durations, CIDRs and cross references; this target starts there.
//!
//! Checks: no panic; the rendered text is valid YAML (any error is a validation error,
//! never "invalid YAML"); on `Ok`, the config holds every cluster and listener written, and
//! survives what the runtime does with it (`sluice_fuzz::exercise_config`).
//!
//! DNS: cluster endpoints are IP literals or free strings; an input whose free-string
//! endpoint would be resolved by getaddrinfo (`host:port` with a non-IP host) is skipped,
//! since there is no network here and lookups are slow.

#![no_main]

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

// Pools start with valid values: `arbitrary` picks the first variant / index 0 when the
// input runs out, and a config loads only when every one of its values is valid.
const NAMES: &[&str] = &["a", "b", "cache", "dns", ""];
const PROTOCOLS: &[&str] = &["tcp", "udp", "redis", "http", "TCP"];
const OPS: &[&str] = &["connect", "CONNECT", "close", "get"];
const ACTIONS: &[&str] = &["allow", "deny", "reject", "delay", "log"];
const PERS: &[&str] = &["client_ip", "listener", "target", "user", "op", "key"];
const LOGS: &[&str] = &["stdout", "-", "", "/tmp/sluice-fuzz-access.log"];
const DURATION_UNITS: &[&str] = &["s", "ms", "m", "h"];
const ODD_DURATION_UNITS: &[&str] = &["", "d", " s", "S", "µs"];
const RATE_UNITS: &[&str] = &["s", "m", "h"];
const EDGE_RATES: &[&str] = &["1/h", "1/m", "1/s", "4294967295/s", "4294967295/h"];
const ODD_RATE_UNITS: &[&str] = &["d", " s", "", "s/s"];

/// A word from the loader's vocabulary (the pool is chosen where it is used), or any text.
#[derive(Arbitrary, Debug)]
enum Word {
    Pick(u8),
    Free(String),
}

impl Word {
    fn render(&self, pool: &[&str]) -> String {
        match self {
            Word::Pick(i) => pool[usize::from(*i) % pool.len()].to_string(),
            Word::Free(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Ip {
    V4([u8; 4]),
    V6([u16; 8]),
}

impl Ip {
    fn render(&self) -> String {
        match self {
            Ip::V4(o) => Ipv4Addr::from(*o).to_string(),
            Ip::V6(s) => Ipv6Addr::from(*s).to_string(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Addr {
    Ip(Ip, u16),
    Text(String),
}

impl Addr {
    fn render(&self) -> String {
        match self {
            Addr::Ip(Ip::V4(o), port) => SocketAddr::from((Ipv4Addr::from(*o), *port)).to_string(),
            Addr::Ip(Ip::V6(s), port) => SocketAddr::from((Ipv6Addr::from(*s), *port)).to_string(),
            Addr::Text(s) => s.clone(),
        }
    }
}

fn unit(pool: &[&'static str], i: u8) -> &'static str {
    pool[usize::from(i) % pool.len()]
}

#[derive(Arbitrary, Debug)]
enum Dur {
    /// `1 + n` in a valid unit.
    Valid(u16, u8),
    /// Any number, including 0 and ones that overflow when scaled to milliseconds.
    Unit(u64, u8),
    Odd(u64, u8),
    Text(String),
}

impl Dur {
    fn render(&self) -> String {
        match self {
            Dur::Valid(n, u) => format!("{}{}", u32::from(*n) + 1, unit(DURATION_UNITS, *u)),
            Dur::Unit(n, u) => format!("{n}{}", unit(DURATION_UNITS, *u)),
            Dur::Odd(n, u) => format!("{n}{}", unit(ODD_DURATION_UNITS, *u)),
            Dur::Text(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Rate {
    /// Counts people write (`500/s`); large bursts over small counts stress the limiter.
    Small(u16, u8),
    Edge(u8),
    Unit(u32, u8),
    Odd(u32, u8),
    Text(String),
}

impl Rate {
    fn render(&self) -> String {
        match self {
            Rate::Small(n, u) => format!("{n}/{}", unit(RATE_UNITS, *u)),
            Rate::Edge(i) => unit(EDGE_RATES, *i).to_string(),
            Rate::Unit(n, u) => format!("{n}/{}", unit(RATE_UNITS, *u)),
            Rate::Odd(n, u) => format!("{n}/{}", unit(ODD_RATE_UNITS, *u)),
            Rate::Text(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Cidr {
    Net(Ip, u8),
    Bare(Ip),
    Text(String),
}

impl Cidr {
    fn render(&self) -> String {
        match self {
            Cidr::Net(ip, prefix) => format!("{}/{}", ip.render(), prefix % 140),
            Cidr::Bare(ip) => ip.render(),
            Cidr::Text(s) => s.clone(),
        }
    }
}

/// One or more: a config loads only with at least one endpoint per cluster, and the
/// interesting paths need a cluster, a listener and a rule. `arbitrary` ends a `Vec` when
/// the input runs out, so with plain `Vec`s most inputs would be empty configs; with this,
/// an all-zero input is already a valid config (cluster "a" at 0.0.0.0:0, listener "a" on
/// tcp 0.0.0.0:0 with one `allow` rule). Empty lists are covered by `config_yaml`'s seeds.
#[derive(Arbitrary, Debug)]
struct NonEmpty<T> {
    first: T,
    rest: Vec<T>,
}

impl<T> NonEmpty<T> {
    fn iter(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.first).chain(&self.rest)
    }

    fn len(&self) -> usize {
        1 + self.rest.len()
    }
}

/// `op: connect` or `op: [connect, close]`: the loader takes both.
#[derive(Arbitrary, Debug)]
enum List<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> List<T> {
    fn render(&self, f: impl Fn(&T) -> String) -> String {
        match self {
            List::One(v) => quote(&f(v)),
            List::Many(vs) => flow(vs.iter().map(f)),
        }
    }
}

/// Boundary values: numeric overflows have no coverage signal to lead the fuzzer there.
const EDGE_BURSTS: &[u64] = &[u32::MAX as u64, 1 << 31, 1 << 24, 10_000_000, 1, 0, 1 << 32];

#[derive(Arbitrary, Debug)]
enum Burst {
    Small(u16),
    Any(u32),
    Edge(u8),
}

impl Burst {
    fn render(&self) -> u64 {
        match self {
            Burst::Small(n) => u64::from(*n),
            Burst::Any(n) => u64::from(*n),
            Burst::Edge(i) => EDGE_BURSTS[usize::from(*i) % EDGE_BURSTS.len()],
        }
    }
}

#[derive(Arbitrary, Debug)]
struct RateLimit {
    rate: Rate,
    burst: Option<Burst>,
    per: Option<Word>,
    max_delay: Option<Dur>,
}

#[derive(Arbitrary, Debug)]
struct Rule {
    op: Option<List<Word>>,
    target: Option<List<String>>,
    target_prefix: Option<List<String>>,
    client_cidr: Option<List<Cidr>>,
    user: Option<List<String>>,
    listener: Option<List<Word>>,
    /// Always written: a missing `action` is left to `config_yaml`.
    action: Word,
    rate_limit: Option<RateLimit>,
}

#[derive(Arbitrary, Debug)]
struct Cluster {
    name: Word,
    endpoints: NonEmpty<Addr>,
    connect_timeout: Option<Dur>,
}

#[derive(Arbitrary, Debug)]
struct Listener {
    name: Word,
    address: Addr,
    protocol: Word,
    cluster: Word,
    idle_timeout: Option<Dur>,
    max_connections: Option<u64>,
    max_sessions: Option<u64>,
    rules: NonEmpty<Rule>,
    access_log: Option<Word>,
}

#[derive(Arbitrary, Debug)]
struct Doc {
    admin: Option<Addr>,
    drain_timeout: Option<Dur>,
    clusters: NonEmpty<Cluster>,
    listeners: NonEmpty<Listener>,
}

/// A YAML double-quoted scalar. Escapes everything outside YAML's printable set (C0, DEL,
/// C1, BOM, U+FFFE/U+FFFF) so the text is valid YAML whatever the string holds.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fefe}' | '\u{ff00}'..='\u{fffd}' | '\u{10000}'.. => out.push(c),
            _ => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

fn flow(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.map(|s| quote(&s)).collect();
    format!("[{}]", items.join(", "))
}

fn render(doc: &Doc) -> Option<String> {
    let mut y = String::new();
    if let Some(a) = &doc.admin {
        let _ = writeln!(y, "admin:\n  address: {}", quote(&a.render()));
    }
    if let Some(d) = &doc.drain_timeout {
        let _ = writeln!(y, "drain_timeout: {}", quote(&d.render()));
    }
    let _ = writeln!(y, "clusters:");
    for c in doc.clusters.iter() {
        let endpoints: Vec<String> = c.endpoints.iter().map(Addr::render).collect();
        if endpoints.iter().any(|e| sluice_fuzz::endpoint_needs_dns(e)) {
            return None;
        }
        let _ = writeln!(y, "  - name: {}", quote(&c.name.render(NAMES)));
        let _ = writeln!(y, "    endpoints: {}", flow(endpoints.into_iter()));
        if let Some(d) = &c.connect_timeout {
            let _ = writeln!(y, "    connect_timeout: {}", quote(&d.render()));
        }
    }
    let _ = writeln!(y, "listeners:");
    for l in doc.listeners.iter() {
        let _ = writeln!(y, "  - name: {}", quote(&l.name.render(NAMES)));
        let _ = writeln!(y, "    address: {}", quote(&l.address.render()));
        let _ = writeln!(y, "    protocol: {}", quote(&l.protocol.render(PROTOCOLS)));
        let _ = writeln!(y, "    cluster: {}", quote(&l.cluster.render(NAMES)));
        if let Some(d) = &l.idle_timeout {
            let _ = writeln!(y, "    idle_timeout: {}", quote(&d.render()));
        }
        if let Some(n) = l.max_connections {
            let _ = writeln!(y, "    max_connections: {n}");
        }
        if let Some(n) = l.max_sessions {
            let _ = writeln!(y, "    max_sessions: {n}");
        }
        if let Some(p) = &l.access_log {
            let _ = writeln!(y, "    access_log: {{ path: {} }}", quote(&p.render(LOGS)));
        }
        let _ = writeln!(y, "    rules:");
        for r in l.rules.iter() {
            let _ = writeln!(y, "      - match:");
            let mut empty = true;
            let mut field = |key: &str, value: Option<String>| {
                if let Some(v) = value {
                    let _ = writeln!(y, "          {key}: {v}");
                    empty = false;
                }
            };
            field("op", r.op.as_ref().map(|l| l.render(|w| w.render(OPS))));
            field("target", r.target.as_ref().map(|l| l.render(String::clone)));
            field("target_prefix", r.target_prefix.as_ref().map(|l| l.render(String::clone)));
            field("client_cidr", r.client_cidr.as_ref().map(|l| l.render(Cidr::render)));
            field("user", r.user.as_ref().map(|l| l.render(String::clone)));
            field("listener", r.listener.as_ref().map(|l| l.render(|w| w.render(NAMES))));
            if empty {
                // `match:` with nothing under it is null, which the loader rejects; an
                // empty mapping matches everything.
                y.truncate(y.len() - "match:\n".len());
                y.push_str("match: {}\n");
            }
            let _ = writeln!(y, "        action: {}", quote(&r.action.render(ACTIONS)));
            if let Some(rl) = &r.rate_limit {
                let _ = writeln!(y, "        rate_limit:");
                let _ = writeln!(y, "          rate: {}", quote(&rl.rate.render()));
                if let Some(b) = &rl.burst {
                    let _ = writeln!(y, "          burst: {}", b.render());
                }
                if let Some(p) = &rl.per {
                    let _ = writeln!(y, "          per: {}", quote(&p.render(PERS)));
                }
                if let Some(d) = &rl.max_delay {
                    let _ = writeln!(y, "          max_delay: {}", quote(&d.render()));
                }
            }
        }
    }
    Some(y)
}

fuzz_target!(|doc: Doc| {
    let Some(yaml) = render(&doc) else { return };
    let result = sluice::Config::from_yaml(&yaml);
    if sluice_fuzz::print_inputs() {
        match &result {
            Ok(_) => eprintln!("---\n{yaml}# => Ok"),
            Err(e) => eprintln!("---\n{yaml}# => Err:\n#   {}", e.to_string().replace('\n', "\n#   ")),
        }
    }
    match result {
        Ok(config) => {
            assert_eq!(config.clusters.len(), doc.clusters.len(), "{yaml}");
            assert_eq!(config.listeners.len(), doc.listeners.len(), "{yaml}");
            sluice_fuzz::exercise_config(&config);
        }
        Err(errors) => {
            assert!(!errors.0.is_empty());
            for e in &errors.0 {
                assert!(!e.message.starts_with("invalid YAML"), "rendered YAML did not parse: {e}\n{yaml}");
            }
        }
    }
});
