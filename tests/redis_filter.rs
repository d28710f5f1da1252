//! The `redis` listener against a real redis-server with real clients: redis-cli (RESP2,
//! `-3` for RESP3, `--pipe`), redis-benchmark, pub/sub, MULTI/EXEC, BLPOP, a 100 MiB value,
//! CLIENT REPLY OFF, per-command counters, deny and rate-limit rules answered in RESP, and
//! hostile input.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};
use support::*;

fn redis_listener(name: &str, redis: &Redis, extra: &str) -> Proxy {
    Proxy::start(&one_listener(name, "redis", &[redis.addr()], extra))
}

fn cli(addr: SocketAddr, args: &[&str]) -> String {
    redis_cli(addr.port(), args).unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
}

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until `want` bytes arrived (or the timeout).
fn read_exactly(s: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut out = vec![0; want];
    s.read_exact(&mut out).unwrap_or_else(|e| panic!("reading {want} bytes: {e}"));
    out
}

fn ops(m: &Metrics, listener: &str, op: &str, outcome: &str) -> f64 {
    m.get("sluice_ops_total", &[("listener", listener), ("protocol", "redis"), ("op", op), ("outcome", outcome)])
}

#[test]
fn redis_cli_works_through_the_filter_in_resp2_and_resp3() {
    let redis = Redis::start();
    let proxy = redis_listener("cli_in", &redis, "");
    let addr = proxy.addr("cli_in");
    assert_eq!(cli(addr, &["SET", "greeting", "hello"]), "OK");
    assert_eq!(cli(addr, &["GET", "greeting"]), "hello");
    assert_eq!(cli(addr, &["-3", "HGETALL", "nosuch"]), "");
    assert_eq!(cli(addr, &["-3", "HELLO", "3"]).lines().next(), Some("server redis"));
    // An unknown command gets Redis's own error, counted under `other`.
    assert!(cli(addr, &["NOSUCHCMD", "x"]).starts_with("ERR unknown command"));
    let m = proxy.metrics();
    assert_eq!(ops(&m, "cli_in", "SET", "ok"), 1.0);
    assert_eq!(ops(&m, "cli_in", "GET", "ok"), 1.0);
    // redis-cli -3 says HELLO 3 when it connects: twice, plus the HELLO asked for.
    assert_eq!(ops(&m, "cli_in", "HELLO", "ok"), 3.0);
    assert_eq!(ops(&m, "cli_in", "other", "error"), 1.0);
    assert_eq!(m.get("sluice_redis_errors_total", &[("listener", "cli_in"), ("prefix", "ERR")]), 1.0);
    assert!(m.get("sluice_op_duration_seconds_count", &[("listener", "cli_in"), ("op", "GET")]) >= 1.0);
}

#[test]
fn mass_insertion_with_redis_cli_pipe() {
    let redis = Redis::start();
    let proxy = redis_listener("pipe_in", &redis, "");
    let mut input = Vec::new();
    for i in 0..10_000 {
        input.extend(encode(&[b"SET", format!("key:{i}").as_bytes(), format!("value {i}").as_bytes()]));
    }
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &proxy.addr("pipe_in").port().to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("errors: 0, replies: 10000"), "{report}");
    assert_eq!(redis.cli(&["DBSIZE"]).as_deref(), Some("10000"));
    let m = proxy.metrics();
    assert_eq!(ops(&m, "pipe_in", "SET", "ok"), 10_000.0);
}

#[test]
fn redis_benchmark_default_suite_and_exact_set_counts() {
    let redis = Redis::start();
    require("redis-benchmark", "redis-tools");
    let proxy = redis_listener("bench_in", &redis, "");
    let port = proxy.addr("bench_in").port().to_string();
    // Every default test (PING_INLINE, MSET, LRANGE_600, …), pipelined.
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port, "-n", "2000", "-c", "10", "-P", "8", "-q"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}{}", String::from_utf8_lossy(&out.stderr));
    for test in
        ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "SADD", "HSET", "ZADD", "LRANGE_600", "MSET"]
    {
        let done =
            report.split(['\r', '\n']).any(|l| l.trim_start().starts_with(test) && l.contains("requests per second"));
        assert!(done, "{test} missing from:\n{report}");
    }
    let set_calls = || {
        let stats = redis.cli(&["INFO", "commandstats"]).unwrap();
        let line = stats.lines().find_map(|l| l.strip_prefix("cmdstat_set:calls=")).unwrap().to_string();
        line.split(',').next().unwrap().parse::<f64>().unwrap()
    };
    let (before, server_before) = (ops(&proxy.metrics(), "bench_in", "SET", "ok"), set_calls());
    // 7 clients × 100 pipelines of 16: redis-benchmark sends whole pipelines.
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port, "-n", "11200", "-c", "7", "-P", "16", "-t", "set", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let m = proxy.metrics();
    let counted = ops(&m, "bench_in", "SET", "ok") - before;
    assert_eq!(counted, 11_200.0, "exactly the SETs redis-benchmark sent");
    assert_eq!(counted, set_calls() - server_before, "exactly the SETs redis-server ran");
    assert_eq!(ops(&m, "bench_in", "SET", "error"), 0.0);
    assert_eq!(m.get("sluice_redis_decode_errors_total", &[("listener", "bench_in")]), 0.0);
}

#[test]
fn pubsub_messages_reach_the_subscriber_and_replies_stay_matched() {
    let redis = Redis::start();
    let proxy = redis_listener("pubsub_in", &redis, "");
    let addr = proxy.addr("pubsub_in");
    let mut sub = connect(addr);
    sub.write_all(&encode(&[b"SUBSCRIBE", b"news", b"sport"])).unwrap();
    let confirmations = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n";
    assert_eq!(read_exactly(&mut sub, confirmations.len()), confirmations);
    assert_eq!(cli(addr, &["PUBLISH", "news", "extra"]), "1");
    let message = b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nextra\r\n";
    assert_eq!(read_exactly(&mut sub, message.len()), message);
    // PING while subscribed answers with a pong array; the message before it is a push.
    assert_eq!(cli(addr, &["PUBLISH", "sport", "goal"]), "1");
    sub.write_all(&encode(&[b"PING"])).unwrap();
    let expected = b"*3\r\n$7\r\nmessage\r\n$5\r\nsport\r\n$4\r\ngoal\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n";
    assert_eq!(read_exactly(&mut sub, expected.len()), expected);
    // UNSUBSCRIBE without arguments: one confirmation per channel, in the server's order.
    sub.write_all(&encode(&[b"UNSUBSCRIBE"])).unwrap();
    let news = "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n";
    let sport = "*3\r\n$11\r\nunsubscribe\r\n$5\r\nsport\r\n";
    let got = String::from_utf8(read_exactly(&mut sub, news.len() + sport.len() + 8)).unwrap();
    assert!(got == format!("{news}:1\r\n{sport}:0\r\n") || got == format!("{sport}:1\r\n{news}:0\r\n"), "{got:?}");
    sub.write_all(&encode(&[b"GET", b"x"])).unwrap();
    assert_eq!(read_exactly(&mut sub, 5), b"$-1\r\n");
    let m = proxy.metrics();
    assert_eq!(ops(&m, "pubsub_in", "SUBSCRIBE", "ok"), 1.0);
    assert_eq!(ops(&m, "pubsub_in", "UNSUBSCRIBE", "ok"), 1.0);
    assert_eq!(ops(&m, "pubsub_in", "PING", "ok"), 1.0);
    assert_eq!(ops(&m, "pubsub_in", "GET", "ok"), 1.0);
    assert_eq!(m.get("sluice_redis_push_messages_total", &[("listener", "pubsub_in")]), 2.0);
}

#[test]
fn resp3_pubsub_pushes_with_redis_cli() {
    let redis = Redis::start();
    let proxy = redis_listener("push_in", &redis, "");
    let addr = proxy.addr("push_in");
    let mut sub = connect(addr);
    sub.write_all(&[encode(&[b"HELLO", b"3"]), encode(&[b"SUBSCRIBE", b"ch"])].concat()).unwrap();
    // Wait for the subscription to be in place, then publish.
    assert!(wait_until(Duration::from_secs(5), || cli(addr, &["PUBSUB", "NUMSUB", "ch"]).ends_with('1')));
    assert_eq!(cli(addr, &["PUBLISH", "ch", "hi"]), "1");
    sub.write_all(&encode(&[b"PING"])).unwrap();
    let tail = b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n+PONG\r\n";
    let (got, _) = read_until_suffix(&mut sub, tail);
    assert!(got.ends_with(tail), "{}", String::from_utf8_lossy(&got));
    let m = proxy.metrics();
    assert_eq!(ops(&m, "push_in", "PING", "ok"), 1.0);
    assert_eq!(ops(&m, "push_in", "SUBSCRIBE", "ok"), 1.0);
}

fn read_until_suffix(s: &mut TcpStream, suffix: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(suffix) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return (out, false),
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    (out, true)
}

#[test]
fn multi_exec_and_a_blpop_unblocked_by_another_client() {
    let redis = Redis::start();
    let proxy = redis_listener("tx_in", &redis, "");
    let addr = proxy.addr("tx_in");
    let mut s = connect(addr);
    let tx = [encode(&[b"MULTI"]), encode(&[b"INCR", b"n"]), encode(&[b"INCR", b"n"]), encode(&[b"EXEC"])].concat();
    s.write_all(&tx).unwrap();
    let expected = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n:2\r\n";
    assert_eq!(read_exactly(&mut s, expected.len()), expected);

    let mut waiter = connect(addr);
    waiter.write_all(&encode(&[b"BLPOP", b"jobs", b"10"])).unwrap();
    assert!(wait_until(Duration::from_secs(5), || redis.info_field("blocked_clients") == 1));
    assert_eq!(cli(addr, &["RPUSH", "jobs", "job-1"]), "1");
    let popped = b"*2\r\n$4\r\njobs\r\n$5\r\njob-1\r\n";
    assert_eq!(read_exactly(&mut waiter, popped.len()), popped);
    let m = proxy.metrics();
    assert_eq!(ops(&m, "tx_in", "BLPOP", "ok"), 1.0);
    assert_eq!(ops(&m, "tx_in", "EXEC", "ok"), 1.0);
    assert_eq!(ops(&m, "tx_in", "INCR", "ok"), 2.0);
}

#[test]
fn a_100_mib_value_goes_both_ways_intact() {
    let redis = Redis::start();
    let proxy = redis_listener("big_in", &redis, "");
    let addr = proxy.addr("big_in");
    let value: Vec<u8> = (0..100u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let digest = Sha256::digest(&value);
    let mut s = connect(addr);
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&encode(&[b"SET", b"big", &value])).unwrap();
    assert_eq!(read_exactly(&mut s, 5), b"+OK\r\n");
    s.write_all(&encode(&[b"GET", b"big"])).unwrap();
    let header = format!("${}\r\n", value.len());
    let reply = read_exactly(&mut s, header.len() + value.len() + 2);
    assert_eq!(&reply[..header.len()], header.as_bytes());
    assert_eq!(Sha256::digest(&reply[header.len()..header.len() + value.len()]), digest);
    assert_eq!(redis.cli(&["STRLEN", "big"]).as_deref(), Some("104857600"));
}

#[test]
fn client_reply_off_gets_no_replies_and_on_resumes() {
    let redis = Redis::start();
    let proxy = redis_listener("quiet_in", &redis, "");
    let mut s = connect(proxy.addr("quiet_in"));
    let batch = [
        encode(&[b"CLIENT", b"REPLY", b"OFF"]),
        encode(&[b"SET", b"a", b"1"]),
        encode(&[b"SET", b"b", b"2"]),
        encode(&[b"CLIENT", b"REPLY", b"ON"]),
        encode(&[b"MGET", b"a", b"b"]),
    ]
    .concat();
    s.write_all(&batch).unwrap();
    let expected = b"+OK\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n";
    assert_eq!(read_exactly(&mut s, expected.len()), expected);
    let m = proxy.metrics();
    assert_eq!(ops(&m, "quiet_in", "SET", "ok"), 2.0);
    assert_eq!(ops(&m, "quiet_in", "MGET", "ok"), 1.0);
}

#[test]
fn a_deny_rule_blocks_flushall_and_the_data_survives() {
    let redis = Redis::start();
    let rules = "    rules:\n      - match: { op: [FLUSHALL, FLUSHDB] }\n        action: deny\n";
    let proxy = redis_listener("guard_in", &redis, rules);
    let addr = proxy.addr("guard_in");
    assert_eq!(cli(addr, &["SET", "precious", "data"]), "OK");
    let refusal = cli(addr, &["FLUSHALL"]);
    assert_eq!(refusal, "ERR sluice: command FLUSHALL denied by policy");
    assert_eq!(redis.cli(&["GET", "precious"]).as_deref(), Some("data"));
    let m = proxy.metrics();
    assert_eq!(ops(&m, "guard_in", "FLUSHALL", "denied"), 1.0);
    // The server never saw a FLUSHALL.
    let stats = redis.cli(&["INFO", "commandstats"]).unwrap();
    assert!(!stats.contains("cmdstat_flushall"), "{stats}");
}

#[test]
fn a_rate_limit_over_a_pipelined_burst_rejects_the_excess_in_place() {
    let redis = Redis::start();
    let rules = "    rules:\n      - match: { op: [INCR] }\n        rate_limit: { rate: 5/m, burst: 5, per: op }\n        action: reject\n";
    let proxy = redis_listener("limit_in", &redis, rules);
    let mut s = connect(proxy.addr("limit_in"));
    // Ten INCRs interleaved with GETs (not limited): every reply in its slot.
    let mut burst = Vec::new();
    for _ in 0..10 {
        burst.extend(encode(&[b"INCR", b"n"]));
        burst.extend(encode(&[b"GET", b"n"]));
    }
    s.write_all(&burst).unwrap();
    let mut expected = String::new();
    for i in 1..=10 {
        if i <= 5 {
            expected += &format!(":{i}\r\n$1\r\n{i}\r\n");
        } else {
            expected += "-ERR sluice: rate limit exceeded for INCR\r\n$1\r\n5\r\n";
        }
    }
    let got = read_exactly(&mut s, expected.len());
    assert_eq!(String::from_utf8_lossy(&got), expected);
    assert_eq!(redis.cli(&["GET", "n"]).as_deref(), Some("5"));
    let m = proxy.metrics();
    assert_eq!(ops(&m, "limit_in", "INCR", "ok"), 5.0);
    assert_eq!(ops(&m, "limit_in", "INCR", "limited"), 5.0);
}

#[test]
fn hostile_input_gets_an_error_and_a_close() {
    let redis = Redis::start();
    let rules = "    rules:\n      - match: { op: [FLUSHALL] }\n        action: deny\n";
    let proxy = redis_listener("hostile_in", &redis, rules);
    let addr = proxy.addr("hostile_in");
    let attacks: [&[u8]; 4] = [
        b"*1\r\n$9999999999\r\n",
        &b"*1\r\n".repeat(200),
        b"*2\r\n:1\r\n:2\r\n",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n+not a bulk string\r\n",
    ];
    for attack in attacks {
        let mut s = connect(addr);
        s.write_all(attack).unwrap();
        let (got, closed) = read_to_eof(&mut s, Duration::from_secs(5));
        let text = String::from_utf8_lossy(&got);
        assert!(closed, "not closed after {attack:?}");
        assert!(text.starts_with("-ERR"), "{text:?} after {attack:?}");
    }
    // Observe-only listeners fail open: the bytes reach redis, which answers and closes.
    let open = redis_listener("observe_in", &redis, "");
    let mut s = connect(open.addr("observe_in"));
    s.write_all(b"*1\r\n$9999999999\r\n").unwrap();
    let (got, closed) = read_to_eof(&mut s, Duration::from_secs(5));
    assert!(closed);
    assert!(String::from_utf8_lossy(&got).starts_with("-ERR Protocol error"), "{got:?}");
    let m = open.metrics();
    assert_eq!(m.get("sluice_redis_decode_errors_total", &[("listener", "observe_in"), ("direction", "request")]), 1.0);
    // Both proxies still serve.
    assert_eq!(cli(addr, &["PING"]), "PONG");
    assert_eq!(cli(open.addr("observe_in"), &["PING"]), "PONG");
}

#[test]
fn key_prefix_counters_and_fault_injection() {
    let redis = Redis::start();
    let extra = "    redis: { key_prefixes: [\"user:\", \"session:\"] }\n    faults:\n      - match: { op: [DEL] }\n        percentage: 100\n        error: \"ERR injected by test\"\n";
    let proxy = redis_listener("keys_in", &redis, extra);
    let addr = proxy.addr("keys_in");
    cli(addr, &["SET", "user:1", "a"]);
    cli(addr, &["SET", "user:2", "b"]);
    cli(addr, &["SET", "session:9", "c"]);
    cli(addr, &["SET", "misc", "d"]);
    assert_eq!(cli(addr, &["DEL", "user:1"]), "ERR injected by test");
    assert_eq!(redis.cli(&["EXISTS", "user:1"]).as_deref(), Some("1"));
    let m = proxy.metrics();
    let keys = |p: &str| m.get("sluice_redis_key_ops_total", &[("listener", "keys_in"), ("prefix", p)]);
    assert_eq!((keys("user:"), keys("session:"), keys("other")), (3.0, 1.0, 1.0));
    assert_eq!(ops(&m, "keys_in", "DEL", "error"), 1.0);
    assert_eq!(m.get("sluice_redis_faults_total", &[("listener", "keys_in"), ("fault", "error")]), 1.0);
}

#[test]
fn a_delay_limit_holds_a_pipelined_burst_until_each_slot() {
    let redis = Redis::start();
    let rules = "    rules:\n      - match: { op: [INCR] }\n        rate_limit: { rate: 10/s, burst: 1, per: op, max_delay: 5s }\n        action: delay\n";
    let proxy = redis_listener("delay_in", &redis, rules);
    let mut s = connect(proxy.addr("delay_in"));
    let started = std::time::Instant::now();
    let burst: Vec<u8> = (0..5).flat_map(|_| encode(&[b"INCR", b"n"])).chain(encode(&[b"GET", b"n"])).collect();
    s.write_all(&burst).unwrap();
    let expected = b":1\r\n:2\r\n:3\r\n:4\r\n:5\r\n$1\r\n5\r\n";
    assert_eq!(read_exactly(&mut s, expected.len()), expected, "every command ran, in order");
    // Four of the five waited for a slot 100 ms apart.
    assert!(started.elapsed() >= Duration::from_millis(350), "{:?}", started.elapsed());
    let m = proxy.metrics();
    assert_eq!(ops(&m, "delay_in", "INCR", "ok"), 5.0);
    assert_eq!(ops(&m, "delay_in", "INCR", "limited"), 0.0);
}

#[test]
fn a_cluster_with_tls_reaches_a_tls_only_server_and_every_command_is_still_read() {
    let redis = Redis::start_tls_only();
    require("redis-benchmark", "redis-tools");
    let proxy = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n  - {{ name: secure, endpoints: [\"{}\"], tls: {{ ca: \"{}\" }} }}\n\
         listeners:\n  - {{ name: tls_up, address: 127.0.0.1:0, protocol: redis, cluster: secure, \
         rules: [ {{ match: {{ op: FLUSHALL }}, action: deny }} ] }}\n",
        redis.addr(),
        redis.certificate().display()
    ));
    let addr = proxy.addr("tls_up");
    assert_eq!(cli(addr, &["SET", "k", "v"]), "OK");
    assert_eq!(redis.cli(&["GET", "k"]).as_deref(), Some("v"), "written over TLS");
    assert!(cli(addr, &["FLUSHALL"]).contains("denied"));
    // Pipelined load and a value far larger than a TLS record, both ways.
    let port = addr.port().to_string();
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port, "-n", "11200", "-c", "7", "-P", "16", "-t", "set,get", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value: Vec<u8> = (0..8u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut s = connect(addr);
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&encode(&[b"SET", b"big", &value])).unwrap();
    assert_eq!(read_exactly(&mut s, 5), b"+OK\r\n");
    s.write_all(&encode(&[b"GET", b"big"])).unwrap();
    let header = format!("${}\r\n", value.len());
    let reply = read_exactly(&mut s, header.len() + value.len() + 2);
    assert_eq!(Sha256::digest(&reply[header.len()..header.len() + value.len()]), Sha256::digest(&value));

    let m = proxy.metrics();
    assert_eq!(ops(&m, "tls_up", "SET", "ok"), 1.0 + 11_200.0 + 1.0);
    assert_eq!(ops(&m, "tls_up", "GET", "ok"), 11_200.0 + 1.0);
    assert_eq!(ops(&m, "tls_up", "FLUSHALL", "denied"), 1.0);
    assert_eq!(redis.cli(&["DBSIZE"]).as_deref(), Some("3"), "k, key:__rand_int__ and big");
}

/// A `redis` listener terminating TLS (Redis's own TLS: the first bytes are the
/// ClientHello) in front of a plain server: redis-cli and redis-benchmark with `--tls`,
/// every command still read, counted and subject to rules.
#[test]
fn a_tls_listener_reads_every_command_inside_the_clients_tls() {
    let redis = Redis::start();
    require("redis-benchmark", "redis-tools");
    let dir = Scratch::new("redis-tls-in");
    let (cert, key) = self_signed(&dir);
    let proxy = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n  - {{ name: plain, endpoints: [\"{}\"] }}\n\
         listeners:\n  - {{ name: tls_in, address: 127.0.0.1:0, protocol: redis, cluster: plain, \
         tls: {{ cert: \"{}\", key: \"{}\" }}, rules: [ {{ match: {{ op: FLUSHALL }}, action: deny }} ] }}\n",
        redis.addr(),
        cert.display(),
        key.display()
    ));
    let port = proxy.addr("tls_in").port().to_string();
    let cert = cert.display().to_string();
    let tls_cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["--tls", "--cacert", &cert, "-h", "127.0.0.1", "-p", &port])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(tls_cli(&["SET", "k", "v"]), "OK");
    assert_eq!(redis.cli(&["GET", "k"]).as_deref(), Some("v"));
    assert!(tls_cli(&["FLUSHALL"]).contains("denied"));
    let out = Command::new("redis-benchmark")
        .args(["--tls", "--cacert", &cert, "-h", "127.0.0.1", "-p", &port])
        .args(["-n", "11200", "-c", "7", "-P", "16", "-t", "set,get", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let m = proxy.metrics();
    assert_eq!(ops(&m, "tls_in", "SET", "ok"), 1.0 + 11_200.0);
    assert_eq!(ops(&m, "tls_in", "GET", "ok"), 11_200.0);
    assert_eq!(ops(&m, "tls_in", "FLUSHALL", "denied"), 1.0);
    assert_eq!(redis.cli(&["DBSIZE"]).as_deref(), Some("2"), "k and key:__rand_int__");
}
