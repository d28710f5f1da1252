//! The `udp` listener: a session per client address, replies routed back to the right
//! client, idle timeout, max_sessions and deny rules.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use support::*;

fn client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    s
}

fn exchange(socket: &UdpSocket, to: std::net::SocketAddr, msg: &str) -> Option<String> {
    socket.send_to(msg.as_bytes(), to).unwrap();
    let mut buf = vec![0u8; 65536];
    socket.recv_from(&mut buf).ok().map(|(n, _)| String::from_utf8_lossy(&buf[..n]).to_string())
}

#[test]
fn sessions_route_replies_to_their_client_and_idle_out() {
    let echo = UdpEcho::start();
    let proxy = Proxy::start(&one_listener("udp_in", "udp", &[echo.addr.to_string()], "    idle_timeout: 300ms\n"));
    let to = proxy.addr("udp_in");
    let (a, b) = (client(), client());
    for i in 0..5 {
        assert_eq!(exchange(&a, to, &format!("a{i}")).as_deref(), Some(format!("echo:a{i}").as_str()));
        assert_eq!(exchange(&b, to, &format!("b{i}")).as_deref(), Some(format!("echo:b{i}").as_str()));
    }
    // A large datagram arrives whole.
    let big = "x".repeat(60_000);
    assert_eq!(exchange(&a, to, &big).map(|r| r.len()), Some(60_005));

    let m = proxy.metrics();
    assert_eq!(m.get("sluice_udp_sessions_active", &[("listener", "udp_in")]), 2.0);
    assert_eq!(m.get("sluice_ops_total", &[("listener", "udp_in"), ("op", "connect"), ("outcome", "ok")]), 2.0);
    assert_eq!(m.get("sluice_udp_datagrams_total", &[("listener", "udp_in"), ("direction", "rx")]), 11.0);
    assert_eq!(m.get("sluice_udp_datagrams_total", &[("listener", "udp_in"), ("direction", "tx")]), 11.0);

    assert!(
        wait_until(Duration::from_secs(5), || {
            proxy.metrics().get("sluice_udp_sessions_active", &[("listener", "udp_in")]) == 0.0
        }),
        "sessions did not idle out"
    );
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_ops_total", &[("listener", "udp_in"), ("op", "close"), ("outcome", "ok")]), 2.0);
    // The same client address gets a fresh session.
    assert_eq!(exchange(&a, to, "again").as_deref(), Some("echo:again"));
}

#[test]
fn max_sessions_drops_datagrams_of_new_clients() {
    let echo = UdpEcho::start();
    let proxy = Proxy::start(&one_listener("udp_max", "udp", &[echo.addr.to_string()], "    max_sessions: 1\n"));
    let to = proxy.addr("udp_max");
    let (a, b) = (client(), client());
    assert_eq!(exchange(&a, to, "first").as_deref(), Some("echo:first"));
    assert_eq!(exchange(&b, to, "second"), None);
    assert_eq!(exchange(&a, to, "third").as_deref(), Some("echo:third"));
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_udp_datagrams_dropped_total", &[("listener", "udp_max"), ("reason", "limited")]), 1.0);
    assert_eq!(m.get("sluice_ops_total", &[("listener", "udp_max"), ("op", "connect"), ("outcome", "limited")]), 1.0);
}

#[test]
fn denied_clients_get_no_session() {
    let echo = UdpEcho::start();
    let rules = "    rules:\n      - match: { client_cidr: [\"127.0.0.0/8\"] }\n        action: deny\n";
    let proxy = Proxy::start(&one_listener("udp_deny", "udp", &[echo.addr.to_string()], rules));
    assert_eq!(exchange(&client(), proxy.addr("udp_deny"), "hello"), None);
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_udp_datagrams_dropped_total", &[("listener", "udp_deny"), ("reason", "denied")]), 1.0);
    assert_eq!(m.get("sluice_udp_sessions_active", &[("listener", "udp_deny")]), 0.0);
}
