//! The `tcp` listener against real peers: redis-cli through the proxy, large transfers
//! both ways with checksums, half-close in both directions, upstream failures, idle
//! timeout, and the access log.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::*;

#[test]
fn redis_cli_through_tcp_listener_with_access_log() {
    let redis = Redis::start();
    let dir = Scratch::new("alog");
    let log = dir.path("access.log");
    let yaml =
        one_listener("cli_in", "tcp", &[redis.addr()], &format!("    access_log: {{ path: \"{}\" }}\n", log.display()));
    let proxy = Proxy::start(&yaml);
    let port = proxy.addr("cli_in").port();

    assert_eq!(redis_cli(port, &["SET", "greeting", "hello sluice"]).as_deref(), Some("OK"));
    assert_eq!(redis_cli(port, &["GET", "greeting"]).as_deref(), Some("hello sluice"));
    assert_eq!(redis.cli(&["GET", "greeting"]).as_deref(), Some("hello sluice"));

    let m = proxy.metrics();
    assert_eq!(m.get("sluice_downstream_connections_total", &[("listener", "cli_in")]), 2.0);
    assert_eq!(m.get("sluice_ops_total", &[("listener", "cli_in"), ("op", "connect"), ("outcome", "ok")]), 2.0);
    assert!(m.get("sluice_downstream_bytes_total", &[("listener", "cli_in"), ("direction", "rx")]) > 0.0);
    assert!(wait_until(Duration::from_secs(5), || {
        proxy.metrics().get("sluice_downstream_connections_active", &[("listener", "cli_in")]) == 0.0
    }));

    proxy.drain_and_wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in &lines {
        assert_eq!(line["listener"], "cli_in");
        assert_eq!(line["upstream"], redis.addr());
        assert_eq!(line["close_reason"], "done");
        assert!(line["bytes_received"].as_u64().unwrap() > 0);
        assert!(line["bytes_sent"].as_u64().unwrap() > 0);
        assert!(line["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    }
}

/// An upstream that reads until the client's FIN, hashing what it got, then sends
/// `reply_len` pseudo-random bytes followed by the SHA-256 of what it received.
fn hashing_upstream(reply_len: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let thread = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        s.write_all(&pattern(reply_len)).unwrap();
        s.write_all(&hasher.finalize()).unwrap();
    });
    (addr, thread)
}

fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn large_transfers_both_ways_keep_every_byte_across_a_half_close() {
    const UP: usize = 48 * 1024 * 1024;
    const DOWN: usize = 40 * 1024 * 1024;
    let (upstream, server) = hashing_upstream(DOWN);
    let proxy = Proxy::start(&one_listener("bulk_in", "tcp", &[upstream], ""));
    let mut client = TcpStream::connect(proxy.addr("bulk_in")).unwrap();
    let sent = pattern(UP);
    let sent_digest = Sha256::digest(&sent);
    let mut writer = client.try_clone().unwrap();
    let writing = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        // Half-close: the upstream answers only after this FIN, through the still-open
        // other direction.
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let (received, eof) = read_to_eof(&mut client, Duration::from_secs(60));
    writing.join().unwrap();
    server.join().unwrap();
    assert!(eof);
    assert_eq!(received.len(), DOWN + 32);
    assert_eq!(Sha256::digest(&received[..DOWN]), Sha256::digest(pattern(DOWN)), "download corrupted");
    assert_eq!(&received[DOWN..], &sent_digest[..], "upload corrupted");
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_downstream_bytes_total", &[("listener", "bulk_in"), ("direction", "rx")]), UP as f64);
    assert_eq!(
        m.get("sluice_downstream_bytes_total", &[("listener", "bulk_in"), ("direction", "tx")]),
        (DOWN + 32) as f64
    );
}

#[test]
fn upstream_half_close_keeps_the_client_direction_open() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"greeting").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let proxy = Proxy::start(&one_listener("hc_in", "tcp", &[upstream], ""));
    let mut client = TcpStream::connect(proxy.addr("hc_in")).unwrap();
    let (greeting, eof) = read_to_eof(&mut client, Duration::from_secs(10));
    assert_eq!((greeting.as_slice(), eof), (&b"greeting"[..], true));
    // The upstream stopped sending, but it still listens.
    client.write_all(b"after the upstream's FIN").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.join().unwrap(), b"after the upstream's FIN");
}

/// Connects and expects the proxy to close the connection within two seconds.
fn assert_closed_promptly(addr: std::net::SocketAddr) {
    let mut client = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    let (_, eof) = read_to_eof(&mut client, Duration::from_secs(5));
    assert!(eof, "client was not closed");
    assert!(started.elapsed() < Duration::from_secs(2), "closing took {:?}", started.elapsed());
}

#[test]
fn refused_upstream_closes_the_client_promptly_and_is_counted() {
    let closed_port = ClosedPort::new();
    let closed = closed_port.addr.clone();
    let proxy = Proxy::start(&one_listener("refused_in", "tcp", &[closed], ""));
    assert_closed_promptly(proxy.addr("refused_in"));
    let m = proxy.metrics();
    assert_eq!(
        m.get("sluice_upstream_connect_errors_total", &[("cluster", "refused_in_cluster"), ("reason", "refused")]),
        1.0
    );
    assert_eq!(m.get("sluice_ops_total", &[("listener", "refused_in"), ("op", "connect"), ("outcome", "error")]), 1.0);
}

#[test]
fn silent_upstream_times_out_and_the_next_endpoint_is_tried() {
    // A listener with a full backlog drops SYNs: connecting to it hangs until the
    // cluster's connect_timeout.
    let silent = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    silent.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    silent.listen(0).unwrap();
    let silent_addr = silent.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&silent_addr.into());
        fillers.push(s);
    }
    std::thread::sleep(Duration::from_millis(100));

    // Alone, it fails the client after connect_timeout (500 ms), counted as a timeout.
    let lone = Proxy::start(&one_listener("lone_in", "tcp", &[silent_addr.to_string()], ""));
    assert_closed_promptly(lone.addr("lone_in"));
    let m = lone.metrics();
    assert_eq!(
        m.get("sluice_upstream_connect_errors_total", &[("cluster", "lone_in_cluster"), ("reason", "timeout")]),
        1.0
    );

    let redis = Redis::start();
    let proxy = Proxy::start(&one_listener("silent_in", "tcp", &[silent_addr.to_string(), redis.addr()], ""));
    let port = proxy.addr("silent_in").port();
    // Round robin starts at the silent endpoint for one of these two; both succeed.
    for _ in 0..2 {
        assert_eq!(redis_cli(port, &["PING"]).as_deref(), Some("PONG"));
    }
    let m = proxy.metrics();
    assert_eq!(
        m.get("sluice_upstream_connect_errors_total", &[("cluster", "silent_in_cluster"), ("reason", "timeout")]),
        1.0
    );
    let (_, clusters) = proxy.admin("/clusters");
    let clusters: serde_json::Value = serde_json::from_str(&clusters).unwrap();
    let endpoints = &clusters["clusters"][0]["endpoints"];
    assert_eq!(endpoints[0]["connect_errors"], 1);
    assert_eq!(endpoints[1]["total_connections"], 2);
    drop(fillers);
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    // `tcp` has its own pump; `redis` goes through the protocol listeners' driver.
    for protocol in ["tcp", "redis"] {
        let redis = Redis::start();
        let proxy = Proxy::start(&one_listener("idle_in", protocol, &[redis.addr()], "    idle_timeout: 300ms\n"));
        let mut client = TcpStream::connect(proxy.addr("idle_in")).unwrap();
        assert_eq!(resp_roundtrip(&mut client, &["PING"]).unwrap(), "+PONG");
        let (_, eof) = read_to_eof(&mut client, Duration::from_secs(5));
        assert!(eof, "idle {protocol} connection was not closed");
        // The close count is checked where this test's connection is the only one counted.
        if protocol == "tcp" {
            assert!(wait_until(Duration::from_secs(2), || {
                proxy.metrics().get("sluice_ops_total", &[("listener", "idle_in"), ("op", "close"), ("outcome", "ok")])
                    == 1.0
            }));
        }

        // Traffic keeps a connection alive past the timeout.
        let mut busy = TcpStream::connect(proxy.addr("idle_in")).unwrap();
        for _ in 0..6 {
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(resp_roundtrip(&mut busy, &["PING"]).unwrap(), "+PONG", "{protocol}");
        }
    }
}

#[test]
fn connections_left_at_the_drain_timeout_are_closed_and_logged() {
    let redis = Redis::start();
    let dir = Scratch::new("drainlog");
    let log = dir.path("access.log");
    let yaml = one_listener(
        "drained_in",
        "tcp",
        &[redis.addr()],
        &format!("    access_log: {{ path: \"{}\" }}\n", log.display()),
    );
    let proxy = Proxy::start(&yaml);
    let mut held = TcpStream::connect(proxy.addr("drained_in")).unwrap();
    assert_eq!(resp_roundtrip(&mut held, &["PING"]).unwrap(), "+PONG");
    proxy.drain_and_wait();
    let (_, eof) = read_to_eof(&mut held, Duration::from_secs(2));
    assert!(eof);
    let line: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["close_reason"], "drain");
    assert_eq!(line["bytes_received"], 14, "bytes moved before the drain are reported");
    assert_eq!(line["bytes_sent"], 7);
}

/// TLS on `tcp` listeners, with redis-cli and redis-benchmark as the TLS clients and a
/// TLS-only redis-server as the TLS server: terminated (TLS client → plain server),
/// originated (plain client → TLS server), both, and a server certificate that does not
/// verify.
#[test]
fn tcp_listeners_terminate_and_originate_tls() {
    require("redis-benchmark", "redis-tools");
    let (plain, secure) = (Redis::start(), Redis::start_tls_only());
    let dir = Scratch::new("tcp-tls");
    let (cert, key) = self_signed(&dir);
    let (cert, key, server_ca) = (cert.display(), key.display(), secure.certificate().display());
    let log = dir.path("access.log");
    let proxy = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n\
         \x20 - {{ name: plain, endpoints: [\"{}\"] }}\n\
         \x20 - {{ name: secure, endpoints: [\"{}\"], tls: {{ ca: \"{server_ca}\" }} }}\n\
         \x20 - {{ name: wrong_ca, endpoints: [\"{}\"], tls: {{ ca: \"{cert}\" }} }}\n\
         listeners:\n\
         \x20 - {{ name: down, address: 127.0.0.1:0, protocol: tcp, cluster: plain, tls: {{ cert: \"{cert}\", key: \"{key}\" }} }}\n\
         \x20 - {{ name: up, address: 127.0.0.1:0, protocol: tcp, cluster: secure }}\n\
         \x20 - {{ name: both, address: 127.0.0.1:0, protocol: tcp, cluster: secure, tls: {{ cert: \"{cert}\", key: \"{key}\" }} }}\n\
         \x20 - {{ name: wrong, address: 127.0.0.1:0, protocol: tcp, cluster: wrong_ca, access_log: {{ path: \"{}\" }} }}\n",
        plain.addr(),
        secure.addr(),
        secure.addr(),
        log.display(),
    ));
    let tls_cli = |listener: &str, args: &[&str]| {
        let port = proxy.addr(listener).port();
        redis_cli(port, &[&["--tls", "--cacert", &cert.to_string()], args].concat())
    };

    assert_eq!(tls_cli("down", &["SET", "k", "terminated"]).as_deref(), Some("OK"));
    assert_eq!(plain.cli(&["GET", "k"]).as_deref(), Some("terminated"));
    assert_eq!(redis_cli(proxy.addr("up").port(), &["SET", "k", "originated"]).as_deref(), Some("OK"));
    assert_eq!(secure.cli(&["GET", "k"]).as_deref(), Some("originated"));
    assert_eq!(tls_cli("both", &["GET", "k"]).as_deref(), Some("originated"));
    // A plain client on a TLS listener gets no answer from the server.
    assert_ne!(redis_cli(proxy.addr("down").port(), &["PING"]).as_deref(), Some("PONG"));

    // Pipelined load through both TLS sessions, and a value larger than a record (an
    // argument is at most 128 KiB).
    let port = proxy.addr("both").port().to_string();
    let out = Command::new("redis-benchmark")
        .args(["--tls", "--cacert", &cert.to_string(), "-h", "127.0.0.1", "-p", &port])
        .args(["-n", "20000", "-c", "5", "-P", "16", "-t", "set,get", "-d", "3000", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("GET"), "{}", String::from_utf8_lossy(&out.stdout));
    let big: String = (0..120_000u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    assert_eq!(tls_cli("both", &["SET", "big", &big]).as_deref(), Some("OK"));
    let digest = |s: &str| Sha256::digest(s.as_bytes());
    assert_eq!(secure.cli(&["GET", "big"]).map(|v| digest(&v)), Some(digest(&big)));
    assert_eq!(tls_cli("down", &["PING"]).as_deref(), Some("PONG"));

    // The server's certificate is not signed by the configured CA: no bytes reach it.
    assert_ne!(redis_cli(proxy.addr("wrong").port(), &["PING"]).as_deref(), Some("PONG"));
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&log).unwrap_or_default().contains(r#""close_reason":"upstream_tls_error""#)
    }));
}
