//! Connection-level policy against a real redis-server: CIDR deny, connection rate limits
//! with reject and delay, and max_connections.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

fn ping(addr: std::net::SocketAddr) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    match resp_roundtrip(&mut s, &["PING"]) {
        Ok(reply) if reply == "+PONG" => Ok(s),
        Ok(other) => Err(other),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn cidr_deny_closes_before_the_upstream_sees_anything() {
    let redis = Redis::start();
    let rules = "    rules:\n      - match: { op: [connect], client_cidr: [\"127.0.0.0/8\"] }\n        action: deny\n";
    let proxy = Proxy::start(&one_listener("deny_in", "tcp", &[redis.addr()], rules));
    let before = redis.info_field("total_connections_received");
    assert!(ping(proxy.addr("deny_in")).is_err(), "denied client got an answer");
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_ops_total", &[("listener", "deny_in"), ("op", "connect"), ("outcome", "denied")]), 1.0);
    assert_eq!(
        m.get("sluice_downstream_connections_rejected_total", &[("listener", "deny_in"), ("reason", "denied")]),
        1.0
    );
    // Only the INFO connection itself reached redis.
    assert_eq!(redis.info_field("total_connections_received"), before + 1);
}

#[test]
fn allow_rules_take_precedence_over_later_denies() {
    let redis = Redis::start();
    let rules = "    rules:\n      - match: { client_cidr: [\"127.0.0.1/32\"] }\n        action: allow\n      - match: { op: connect }\n        action: deny\n";
    let proxy = Proxy::start(&one_listener("allow_in", "tcp", &[redis.addr()], rules));
    assert!(ping(proxy.addr("allow_in")).is_ok());
}

#[test]
fn connection_rate_limit_rejects_the_excess_and_counts_limited() {
    let redis = Redis::start();
    let rules = "    rules:\n      - match: { op: [connect] }\n        rate_limit: { rate: 5/m, burst: 5, per: client_ip }\n        action: reject\n";
    let proxy = Proxy::start(&one_listener("rate_in", "tcp", &[redis.addr()], rules));
    let results: Vec<bool> = (0..9).map(|_| ping(proxy.addr("rate_in")).is_ok()).collect();
    assert_eq!(results, [true, true, true, true, true, false, false, false, false]);
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_ops_total", &[("listener", "rate_in"), ("op", "connect"), ("outcome", "limited")]), 4.0);
    assert_eq!(m.get("sluice_ops_total", &[("listener", "rate_in"), ("op", "connect"), ("outcome", "ok")]), 5.0);
    assert_eq!(
        m.get("sluice_downstream_connections_rejected_total", &[("listener", "rate_in"), ("reason", "rate_limited")]),
        4.0
    );
}

#[test]
fn connection_rate_limit_with_delay_holds_the_excess_instead_of_refusing() {
    let redis = Redis::start();
    let rules = "    rules:\n      - rate_limit: { rate: 4/s, burst: 1, per: listener, max_delay: 5s }\n        action: delay\n";
    let proxy = Proxy::start(&one_listener("delay_in", "tcp", &[redis.addr()], rules));
    let started = Instant::now();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let addr = proxy.addr("delay_in");
            std::thread::spawn(move || ping(addr).map(|_| ()))
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), Ok(()));
    }
    // Three connections at 4/s with a burst of one cannot all pass in under 0.5 s.
    assert!(started.elapsed() >= Duration::from_millis(450), "{:?}", started.elapsed());
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_ops_total", &[("listener", "delay_in"), ("op", "connect"), ("outcome", "ok")]), 3.0);
    assert_eq!(m.get("sluice_ops_total", &[("listener", "delay_in"), ("op", "connect"), ("outcome", "limited")]), 0.0);
}

#[test]
fn max_connections_refuses_the_excess_until_a_slot_frees() {
    let redis = Redis::start();
    let proxy = Proxy::start(&one_listener("max_in", "tcp", &[redis.addr()], "    max_connections: 3\n"));
    let addr = proxy.addr("max_in");
    let mut held: Vec<TcpStream> = (0..3).map(|_| ping(addr).expect("under the limit")).collect();
    assert!(ping(addr).is_err(), "a fourth connection was served");
    let m = proxy.metrics();
    assert_eq!(
        m.get("sluice_downstream_connections_rejected_total", &[("listener", "max_in"), ("reason", "max_connections")]),
        1.0
    );
    assert_eq!(m.get("sluice_downstream_connections_active", &[("listener", "max_in")]), 3.0);
    held.pop();
    assert!(wait_until(Duration::from_secs(5), || ping(addr).is_ok()), "a freed slot was not reused");
}
