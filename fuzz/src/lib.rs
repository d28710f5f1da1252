//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! - [`endpoint_needs_dns`] / [`yaml_needs_dns`]: the config loader resolves cluster
//!   endpoints with `ToSocketAddrs`, which calls getaddrinfo for anything that is not an
//!   IP literal. There is no network here and a lookup is slow, so the config targets skip
//!   those inputs.
//! - [`exercise_config`]: what the runtime does with a validated config (dump it as JSON
//!   for `/config_dump`, look up each listener's cluster, build each listener's
//!   [`RuleSet`] and evaluate a `connect`), with the invariants validation promises.
//! - [`alloc`]: a global allocator that remembers the largest single allocation.
//! - [`postgres`]: the checked PostgreSQL session and openings of the `postgres_*` targets.
//! - [`stream`]: a stream filter driven with two-way traffic, for the `*_filter` targets.

pub mod alloc;
pub mod postgres;
pub mod stream;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use sluice::config::{ActionConfig, Config};
use sluice_filters::op::names;
use sluice_filters::policy::OnLimit;
use sluice_filters::{Op, RuleSet, Verdict};

/// Whether `ToSocketAddrs` on this endpoint string would call the system resolver.
///
/// std first tries to parse a `SocketAddr`; otherwise it splits at the last `:` and, if
/// the port parses as `u16`, hands the host to getaddrinfo. Anything else fails locally.
pub fn endpoint_needs_dns(endpoint: &str) -> bool {
    endpoint.parse::<SocketAddr>().is_err()
        && endpoint.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok())
}

/// Whether loading `text` as a config would resolve some cluster endpoint through DNS.
///
/// Parses the text exactly as the loader does (serde-saphyr into a `serde_json::Value`)
/// and looks at every string under `clusters[*].endpoints`. A text that does not parse
/// fails in the loader before any endpoint is looked at.
pub fn yaml_needs_dns(text: &str) -> bool {
    let Ok(value) = serde_saphyr::from_str::<serde_json::Value>(text) else { return false };
    let Some(clusters) = value.get("clusters").and_then(|c| c.as_array()) else { return false };
    clusters
        .iter()
        .filter_map(|c| c.get("endpoints").and_then(|e| e.as_array()))
        .flatten()
        .filter_map(|e| e.as_str())
        .any(endpoint_needs_dns)
}

/// `SLUICE_FUZZ_PRINT=1`: the structured targets print each decoded input (and
/// config_structured the YAML it rendered and whether it loaded). Run a target binary on an
/// artifact or a corpus file with it to see what the bytes mean.
pub fn print_inputs() -> bool {
    static PRINT: OnceLock<bool> = OnceLock::new();
    *PRINT.get_or_init(|| std::env::var_os("SLUICE_FUZZ_PRINT").is_some_and(|v| !v.is_empty() && v != "0"))
}

const CLIENTS: [IpAddr; 5] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
    IpAddr::V4(Ipv4Addr::new(192, 168, 7, 9)),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    // A v4 client on a dual-stack socket.
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001)),
];

/// Does with a validated config what the runtime does, and checks what validation
/// promises. Panics (a fuzz finding) when a promise is broken.
pub fn exercise_config(config: &Config) {
    let dump = serde_json::to_string(config).expect("a validated Config serializes to JSON");
    assert!(!dump.is_empty());

    assert!(!config.drain_timeout.is_zero(), "drain_timeout validated > 0");
    for cluster in &config.clusters {
        assert!(!cluster.endpoints.is_empty(), "cluster {:?} validated to have endpoints", cluster.name);
        assert!(!cluster.connect_timeout.is_zero());
    }
    for listener in &config.listeners {
        let cluster = config.cluster(listener);
        assert_eq!(cluster.name, listener.cluster, "cluster_index points at the named cluster");
        assert!(!listener.idle_timeout.is_zero());
        assert!(listener.max_connections > 0);

        // As `listener::Listener::new` does.
        let rules = RuleSet::new(listener.rules.iter().map(|r| r.build()).collect());
        for client in CLIENTS {
            let op = Op::connection(listener.protocol, &listener.name, names::CONNECT, &cluster.name, client);
            for _ in 0..2 {
                match rules.evaluate(&op) {
                    Verdict::Allow => {}
                    Verdict::Deny { rule } | Verdict::Limited { rule } => assert!(rule < listener.rules.len()),
                    Verdict::Delay { rule, wait } => {
                        assert!(rule < listener.rules.len());
                        let ActionConfig::RateLimit(limit) = &listener.rules[rule].action else {
                            panic!("Delay from rule {rule}, which is not a rate limit")
                        };
                        let OnLimit::Delay { max_delay } = limit.on_limit else {
                            panic!("Delay from rule {rule}, whose limit rejects")
                        };
                        assert!(wait > Duration::ZERO && wait <= max_delay.max(Duration::from_micros(1)));
                    }
                }
            }
        }
        rules.housekeep();
    }
}
