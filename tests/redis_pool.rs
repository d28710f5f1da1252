//! `redis` listeners in `mode: pool` against three real redis-servers: keys land where
//! twemproxy (nutcracker, same servers, ketama + fnv1a_64) puts them, multi-key commands
//! are split and merged, cross-server ones refused, many clients share the pool's few
//! upstream connections, a server that dies fails only its own keys, and transactions,
//! blocking commands and subscriptions work on connections of the client's own.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;

/// A proxy with one pool-mode listener named `name` (names differ per test: the tests of
/// this file share one metrics registry).
fn pool_proxy(name: &str, servers: &[&Redis], hash: &str) -> Proxy {
    pool_proxy_with(name, servers, &format!("hash: {hash}"))
}

fn pool_proxy_with(name: &str, servers: &[&Redis], pool: &str) -> Proxy {
    pool_proxy_weighted(name, servers, &vec![1; servers.len()], pool)
}

/// A pool-mode listener with `extra` listener keys (rules, faults).
fn pool_proxy_extra(name: &str, servers: &[&Redis], extra: &str) -> Proxy {
    let endpoints: Vec<String> = servers.iter().map(|r| format!("\"{}\"", r.addr())).collect();
    Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n  - {{ name: shards, endpoints: [{}] }}\n\
         listeners:\n  - {{ name: {name}, address: 127.0.0.1:0, protocol: redis, cluster: shards, \
         redis: {{ mode: pool }}, {extra} }}\n",
        endpoints.join(", ")
    ))
}

/// Servers with weights: `{ address, weight }` endpoints.
fn pool_proxy_weighted(name: &str, servers: &[&Redis], weights: &[u32], pool: &str) -> Proxy {
    let endpoints: Vec<String> = servers
        .iter()
        .zip(weights)
        .map(|(r, weight)| format!("{{ address: \"{}\", weight: {weight} }}", r.addr()))
        .collect();
    Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n  - {{ name: shards, endpoints: [{}] }}\n\
         listeners:\n  - {{ name: {name}, address: 127.0.0.1:0, protocol: redis, cluster: shards, \
         redis: {{ mode: pool, pool: {{ connections: 2, {pool} }} }} }}\n",
        endpoints.join(", ")
    ))
}

/// Which of `servers` holds `key`, and with which value.
fn holders(servers: &[&Redis], key: &str) -> Vec<(usize, String)> {
    servers
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.cli(&["GET", key]).filter(|v| !v.is_empty()).map(|v| (i, v)))
        .collect()
}

struct Nutcracker {
    child: Child,
    port: u16,
    _dir: Scratch,
}

impl Nutcracker {
    fn start(servers: &[&Redis], weights: &[u32], hash: &str) -> Nutcracker {
        let bin = require("nutcracker", "nutcracker");
        let dir = Scratch::new("nutcracker");
        let port = free_port();
        let list: String = servers.iter().zip(weights).map(|(r, w)| format!("   - {}:{w}\n", r.addr())).collect();
        let conf = dir.path("nutcracker.yml");
        std::fs::write(
            &conf,
            format!(
                "alpha:\n  listen: 127.0.0.1:{port}\n  hash: {hash}\n  distribution: ketama\n  redis: true\n  servers:\n{list}"
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(free_port().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nutcracker");
        assert!(
            wait_until(Duration::from_secs(10), || redis_cli(port, &["SET", "probe", "1"]).as_deref() == Some("OK"))
        );
        Nutcracker { child, port, _dir: dir }
    }
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `count` keys through sluice, then through nutcracker with other values: each
/// key must end on one server, with nutcracker's value. Returns the keys per server.
fn same_placement_as_twemproxy(servers: &[&Redis], weights: &[u32], hash: &str, count: usize) -> Vec<usize> {
    let name = format!("placement_{hash}_{}", weights.iter().map(u32::to_string).collect::<Vec<_>>().join("_"));
    let proxy = pool_proxy_weighted(&name, servers, weights, &format!("hash: {hash}"));
    let port = proxy.addr(&name).port();
    let twemproxy = Nutcracker::start(servers, weights, hash);
    for server in servers {
        assert_eq!(server.cli(&["FLUSHALL"]).as_deref(), Some("OK"));
    }
    let mut per_server = vec![0; servers.len()];
    for i in 0..count {
        let key = format!("user:{i}");
        assert_eq!(redis_cli(port, &["SET", &key, "sluice"]).as_deref(), Some("OK"));
        assert_eq!(redis_cli(twemproxy.port, &["SET", &key, "twemproxy"]).as_deref(), Some("OK"));
        let held = holders(servers, &key);
        assert_eq!(held.len(), 1, "{hash}: {key} on {held:?}");
        assert_eq!(held[0].1, "twemproxy", "{hash}: {key}");
        per_server[held[0].0] += 1;
    }
    per_server
}

#[test]
fn keys_land_where_twemproxy_puts_them_and_multi_key_commands_are_split() {
    let (a, b, c) = (Redis::start(), Redis::start(), Redis::start());
    let servers = [&a, &b, &c];
    // twemproxy's fnv1a_64 multiplies by a 9-bit prime (the 64-bit one truncated), so short
    // similar keys crowd a few arcs of the ring: same placement, no spread to check.
    same_placement_as_twemproxy(&servers, &[1, 1, 1], "fnv1a_64", 100);
    // Weights as twemproxy reads them (`host:port:weight`): same placement, shares to match.
    let weighted = same_placement_as_twemproxy(&servers, &[1, 4, 2], "murmur", 200);
    assert!(weighted[1] > weighted[2] && weighted[2] > weighted[0], "{weighted:?}");
    // Last: the keys it writes are read below.
    let per_server = same_placement_as_twemproxy(&servers, &[1, 1, 1], "murmur", 200);
    assert!(per_server.iter().all(|&n| n > 30), "{per_server:?}");
    let proxy = pool_proxy("split", &servers, "murmur");
    let port = proxy.addr("split").port();

    // Split and merged, in the client's order, across servers.
    let keys: Vec<String> = (0..12).map(|i| format!("user:{i}")).collect();
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    mget.insert(3, "missing");
    let got = redis_cli(port, &mget).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 13, "{got}");
    assert_eq!(lines[2], "", "the missing key's nil, in its place");
    assert!(lines.iter().enumerate().all(|(i, l)| i == 2 || *l == "twemproxy"), "{got}");
    assert_eq!(redis_cli(port, &["MSET", "m:1", "1", "m:2", "2", "m:3", "3", "m:4", "4"]).as_deref(), Some("OK"));
    assert_eq!(redis_cli(port, &["MGET", "m:4", "m:1"]).as_deref(), Some("4\n1"));
    assert_eq!(redis_cli(port, &["EXISTS", "m:1", "m:2", "m:3", "nope"]).as_deref(), Some("3"));
    assert_eq!(redis_cli(port, &["DEL", "m:1", "m:2", "m:3", "m:4", "nope"]).as_deref(), Some("4"));

    // Several keys that must share a server: refused unless hash-tagged.
    let (mut first, mut second) = (String::new(), String::new());
    for i in 0..50 {
        let (x, y) = (format!("x:{i}"), format!("y:{i}"));
        redis_cli(port, &["SET", &x, "1"]);
        redis_cli(port, &["SET", &y, "1"]);
        if holders(&servers, &x)[0].0 != holders(&servers, &y)[0].0 {
            (first, second) = (x, y);
            break;
        }
    }
    assert!(redis_cli(port, &["RENAME", &first, &second]).unwrap().starts_with("CROSSSLOT"));
    assert_eq!(redis_cli(port, &["SET", "{acct:7}:a", "v"]).as_deref(), Some("OK"));
    assert_eq!(redis_cli(port, &["RENAME", "{acct:7}:a", "{acct:7}:b"]).as_deref(), Some("OK"));
    assert_eq!(redis_cli(port, &["GET", "{acct:7}:b"]).as_deref(), Some("v"));
    // MSETNX is all or nothing, so never split: whole on one server, or refused.
    assert_eq!(redis_cli(port, &["MSETNX", "{n}1", "a", "{n}2", "b"]).as_deref(), Some("1"));
    assert_eq!(redis_cli(port, &["MSETNX", "{n}2", "c", "{n}3", "d"]).as_deref(), Some("0"));
    assert!(redis_cli(port, &["MSETNX", &first, "1", &second, "2"]).unwrap().starts_with("CROSSSLOT"));

    // Answered by sluice, and refused with a reason.
    assert_eq!(redis_cli(port, &["PING"]).as_deref(), Some("PONG"));
    assert_eq!(redis_cli(port, &["ECHO", "hi"]).as_deref(), Some("hi"));
    assert!(redis_cli(port, &["PUBSUB", "CHANNELS"]).unwrap().contains("outside a subscription"));
    assert!(redis_cli(port, &["KEYS", "*"]).unwrap().contains("no key to route by"));

    let m = proxy.metrics();
    let ops = |op: &str, outcome: &str| {
        m.get("sluice_ops_total", &[("listener", "split"), ("protocol", "redis"), ("op", op), ("outcome", outcome)])
    };
    assert!(ops("SET", "ok") >= 2.0);
    assert_eq!(ops("MGET", "ok"), 2.0);
    assert_eq!(ops("RENAME", "error"), 1.0);
}

#[test]
fn many_clients_share_a_few_upstream_connections_and_a_dead_server_fails_only_its_keys() {
    require("redis-benchmark", "redis-tools");
    let (a, b) = (Redis::start(), Redis::start());
    let proxy = pool_proxy("shared", &[&a, &b], "murmur");
    let port = proxy.addr("shared").port().to_string();
    let before = [a.info_field("total_connections_received"), b.info_field("total_connections_received")];
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port, "-c", "300", "-n", "30000", "-t", "set,get", "-r", "10000", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("SET") && text.contains("GET"), "{text}");
    // Two workers × two connections per server, however many clients (plus the INFO
    // connection that reads the count).
    for (server, before) in [&a, &b].iter().zip(before) {
        let opened = server.info_field("total_connections_received") - before - 1;
        assert!((1..=4).contains(&opened), "{opened} connections to one server for 300 clients");
    }
    let m = proxy.metrics();
    let gets =
        m.get("sluice_ops_total", &[("listener", "shared"), ("protocol", "redis"), ("op", "GET"), ("outcome", "ok")]);
    assert_eq!(gets, 30_000.0);
    // Pool stats: at most 2 workers x 2 connections per server, commands of many clients
    // per write, no ejections yet.
    let per_server = |metric: &str, server: &Redis| {
        m.get(metric, &[("listener", "shared"), ("server", &server.addr()), ("kind", "pooled")])
    };
    let counter = |metric: &str, server: &Redis| m.get(metric, &[("listener", "shared"), ("server", &server.addr())]);
    let (commands, writes) = (
        counter("sluice_redis_pool_commands_total", &a) + counter("sluice_redis_pool_commands_total", &b),
        counter("sluice_redis_pool_writes_total", &a) + counter("sluice_redis_pool_writes_total", &b),
    );
    assert_eq!(commands, 60_000.0);
    assert!(writes < commands, "{writes} writes for {commands} commands");
    for server in [&a, &b] {
        assert!((1.0..=4.0).contains(&per_server("sluice_redis_pool_connections", server)));
        assert_eq!(counter("sluice_redis_pool_ejections_total", server), 0.0);
        assert_eq!(counter("sluice_redis_pool_in_flight", server), 0.0, "every command answered");
    }

    // One server goes away: its keys get errors, the other's keep working.
    let port: u16 = port.parse().unwrap();
    let keys: Vec<String> = (0..40).map(|i| format!("k:{i}")).collect();
    for key in &keys {
        assert_eq!(redis_cli(port, &["SET", key, "v"]).as_deref(), Some("OK"));
    }
    let on_b: Vec<&String> = keys.iter().filter(|k| b.cli(&["EXISTS", k]).as_deref() == Some("1")).collect();
    assert!(!on_b.is_empty() && on_b.len() < keys.len());
    let b_addr = b.addr();
    drop(b);
    for key in &keys {
        let reply = redis_cli(port, &["GET", key]).unwrap_or_default();
        if on_b.contains(&key) {
            assert!(reply.starts_with("ERR sluice: upstream"), "{key}: {reply}");
        } else {
            assert_eq!(reply, "v", "{key}");
        }
    }
    let ejections =
        proxy.metrics().get("sluice_redis_pool_ejections_total", &[("listener", "shared"), ("server", &b_addr)]);
    assert!(ejections >= 1.0, "{ejections}");

    // The server comes back (empty): after the backoff its keys work again.
    let b = Redis::start_on(b_addr.rsplit_once(':').unwrap().1.parse().unwrap());
    let key = on_b[0].as_str();
    assert!(wait_until(Duration::from_secs(5), || redis_cli(port, &["SET", key, "back"]).as_deref() == Some("OK")));
    assert_eq!(b.cli(&["GET", key]).as_deref(), Some("back"));
    assert!(keys.iter().all(|k| !redis_cli(port, &["GET", k]).unwrap_or_default().starts_with("ERR")));
}

/// Sends `command` and reads until the reply is complete enough to compare (a short wait
/// for the rest of a multi-line reply).
fn roundtrip(stream: &mut std::net::TcpStream, command: &[&str]) -> String {
    use std::io::{Read, Write};
    let mut request = format!("*{}\r\n", command.len());
    for arg in command {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    reply.extend_from_slice(&buf[..n]);
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&reply).trim_end().replace("\r\n", " ")
}

#[test]
fn transactions_blocking_commands_and_subscriptions_get_a_connection_of_their_own() {
    let (a, b) = (Redis::start(), Redis::start());
    let servers = [&a, &b];
    let proxy = pool_proxy("own", &servers, "murmur");
    let addr = proxy.addr("own");
    let port = addr.port();
    let connect = move || std::net::TcpStream::connect(addr).unwrap();
    let mut s = connect();

    // A transaction on one server (hash tags keep its keys together).
    assert_eq!(roundtrip(&mut s, &["MULTI"]), "+OK");
    assert_eq!(roundtrip(&mut s, &["SET", "{t}a", "1"]), "+QUEUED");
    assert_eq!(roundtrip(&mut s, &["INCR", "{t}a"]), "+QUEUED");
    assert_eq!(roundtrip(&mut s, &["EXEC"]), "*2 +OK :2");
    // WATCH sees another client's write and EXEC answers nil.
    assert_eq!(roundtrip(&mut s, &["WATCH", "{w}k"]), "+OK");
    assert_eq!(redis_cli(port, &["SET", "{w}k", "other"]).as_deref(), Some("OK"));
    assert_eq!(roundtrip(&mut s, &["MULTI"]), "+OK");
    assert_eq!(roundtrip(&mut s, &["SET", "{w}k", "mine"]), "+QUEUED");
    assert_eq!(roundtrip(&mut s, &["EXEC"]), "*-1");
    assert_eq!(redis_cli(port, &["GET", "{w}k"]).as_deref(), Some("other"));
    // Keys on two servers cannot share a transaction: refused, and EXEC aborts it.
    let (x, y) = (0..100)
        .map(|i| (format!("x{i}"), format!("y{i}")))
        .find(|(x, y)| {
            redis_cli(port, &["SET", x, "0"]);
            redis_cli(port, &["SET", y, "0"]);
            holders(&servers, x)[0].0 != holders(&servers, y)[0].0
        })
        .unwrap();
    assert_eq!(roundtrip(&mut s, &["MULTI"]), "+OK");
    assert_eq!(roundtrip(&mut s, &["SET", &x, "1"]), "+QUEUED");
    assert!(roundtrip(&mut s, &["SET", &y, "1"]).starts_with("-CROSSSLOT"));
    assert!(roundtrip(&mut s, &["EXEC"]).starts_with("-EXECABORT"));
    assert_eq!(redis_cli(port, &["GET", &x]).as_deref(), Some("0"), "nothing ran");
    assert_eq!(roundtrip(&mut s, &["MULTI"]), "+OK");
    assert_eq!(roundtrip(&mut s, &["DISCARD"]), "+OK");
    assert_eq!(roundtrip(&mut s, &["PING"]), "+PONG", "out of the transaction");

    // A blocking pop waits on the client's own connection; the pool keeps serving others.
    let waiter = std::thread::spawn(move || {
        let mut w = connect();
        roundtrip(&mut w, &["BLPOP", "queue", "10"])
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(redis_cli(port, &["GET", &x]).as_deref(), Some("0"));
    assert_eq!(redis_cli(port, &["RPUSH", "queue", "job"]).as_deref(), Some("1"));
    assert_eq!(waiter.join().unwrap(), "*2 $5 queue $3 job");

    // A subscription on the channel's server; PUBLISH through the pool reaches it.
    let mut sub = connect();
    assert_eq!(roundtrip(&mut sub, &["SUBSCRIBE", "news"]), "*3 $9 subscribe $4 news :1");
    assert_eq!(redis_cli(port, &["PUBLISH", "news", "hello"]).as_deref(), Some("1"));
    let mut buf = [0u8; 256];
    use std::io::Read;
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = sub.read(&mut buf).unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]), "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
}

#[test]
fn clients_auth_against_the_pools_users_and_the_pool_logs_in_to_servers() {
    let server = Redis::start_requiring_password("server-secret");
    let proxy = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n  - {{ name: locked, endpoints: [\"{}\"] }}\n\
         listeners:\n  - {{ name: locked, address: 127.0.0.1:0, protocol: redis, cluster: locked, \
         redis: {{ mode: pool, pool: {{ users: [ {{ password: client-secret }}, {{ user: app, password: app-secret }} ], \
         upstream_auth: {{ password: server-secret }} }} }}, \
         rules: [ {{ match: {{ op: DEL, user: app }}, action: deny }} ] }}\n",
        server.addr()
    ));
    let addr = proxy.addr("locked");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    assert_eq!(roundtrip(&mut s, &["GET", "k"]), "-NOAUTH Authentication required.");
    assert!(roundtrip(&mut s, &["AUTH", "wrong"]).starts_with("-WRONGPASS"));
    assert_eq!(roundtrip(&mut s, &["AUTH", "client-secret"]), "+OK");
    assert_eq!(roundtrip(&mut s, &["SET", "k", "v"]), "+OK", "sluice logged in to the server");
    assert_eq!(server.cli(&["GET", "k"]).as_deref(), Some("v"));
    // HELLO 3: a RESP3 map, and from then on RESP3 replies from RESP3 pooled connections
    // (which log in with HELLO 3 AUTH), down to RESP3's null and map types.
    assert!(roundtrip(&mut s, &["HELLO", "3"]).starts_with("%7 $6 server $6 sluice $7 version $5 7.0.0 $5 proto :3"));
    assert_eq!(roundtrip(&mut s, &["HSET", "h", "f", "v"]), ":1");
    assert_eq!(roundtrip(&mut s, &["HGETALL", "h"]), "%1 $1 f $1 v");
    assert_eq!(roundtrip(&mut s, &["MGET", "k", "nokey"]), "*2 $1 v _");
    assert!(roundtrip(&mut s, &["HELLO", "4"]).starts_with("-NOPROTO"));
    assert!(roundtrip(&mut s, &["HELLO", "2"]).starts_with("*14 $6 server"));
    assert_eq!(roundtrip(&mut s, &["HGETALL", "h"]), "*2 $1 f $1 v", "back to RESP2");
    // Credentials inside MULTI would reach the server in its queue: refused.
    assert_eq!(roundtrip(&mut s, &["MULTI"]), "+OK");
    assert!(roundtrip(&mut s, &["AUTH", "client-secret"]).contains("not allowed inside MULTI"));
    assert!(roundtrip(&mut s, &["EXEC"]).starts_with("-EXECABORT"));
    // HELLO with AUTH, as a named user the rules see.
    let mut app = std::net::TcpStream::connect(addr).unwrap();
    assert!(roundtrip(&mut app, &["HELLO", "2", "AUTH", "app", "app-secret"]).starts_with("*14 $6 server $6 sluice"));
    assert_eq!(roundtrip(&mut app, &["GET", "k"]), "$1 v");
    assert!(roundtrip(&mut app, &["DEL", "k"]).contains("denied"));
    assert_eq!(roundtrip(&mut s, &["DEL", "k"]), ":1", "the default user may");
}

#[test]
fn maglev_gives_every_server_an_even_share() {
    let (a, b, c) = (Redis::start(), Redis::start(), Redis::start());
    let servers = [&a, &b, &c];
    let proxy = pool_proxy_with("maglev", &servers, "distribution: maglev, hash: murmur");
    let port = proxy.addr("maglev").port().to_string();
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port, "-c", "20", "-n", "20000", "-t", "set", "-r", "100000", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sizes: Vec<u64> = servers.iter().map(|s| s.cli(&["DBSIZE"]).unwrap().parse().unwrap()).collect();
    let total: u64 = sizes.iter().sum();
    assert!(total > 15_000, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n.abs_diff(total / 3) < total / 15), "uneven: {sizes:?}");
}

/// Three Redis Cluster primaries holding all 16384 slots, each with `replicas` replicas.
fn redis_cluster(replicas: usize) -> Vec<Redis> {
    let nodes: Vec<Redis> = (0..3 * (1 + replicas)).map(|_| Redis::start_cluster_node()).collect();
    let out = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(nodes.iter().map(Redis::addr))
        .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(wait_until(Duration::from_secs(20), || {
        nodes.iter().all(|n| n.cli(&["CLUSTER", "INFO"]).unwrap_or_default().contains("cluster_state:ok"))
    }));
    // The seed's slot map lists every replica (once it has synced) before anyone asks.
    let ports: Vec<String> = nodes.iter().map(|n| n.port.to_string()).collect();
    assert!(wait_until(Duration::from_secs(30), || {
        let slots = nodes[0].cli(&["CLUSTER", "SLOTS"]).unwrap_or_default();
        ports.iter().all(|p| slots.lines().any(|l| l == p))
    }));
    nodes
}

#[test]
fn a_redis_cluster_behind_the_pool_and_moved_slots_followed_transparently() {
    let nodes = redis_cluster(0);
    // Only the first node is given: the rest are learnt from its slot map.
    let proxy = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n  - {{ name: rc, endpoints: [\"{}\"] }}\n\
         listeners:\n  - {{ name: rc_pool, address: 127.0.0.1:0, protocol: redis, cluster: rc, \
         redis: {{ mode: pool, pool: {{ backend: cluster }} }} }}\n",
        nodes[0].addr()
    ));
    let port = proxy.addr("rc_pool").port();
    let keys: Vec<String> = (0..200).map(|i| format!("item:{i}")).collect();
    for key in &keys {
        assert_eq!(redis_cli(port, &["SET", key, &format!("v-{key}")]).as_deref(), Some("OK"), "{key}");
    }
    // Each key sits on the node that serves its slot (the others answer MOVED).
    for key in keys.iter().take(20) {
        let owners = nodes.iter().filter(|n| n.cli(&["GET", key]).as_deref() == Some(&format!("v-{key}"))).count();
        assert_eq!(owners, 1, "{key}");
    }
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().take(30).map(String::as_str));
    let values = redis_cli(port, &mget).unwrap();
    assert_eq!(values.lines().collect::<Vec<_>>(), keys.iter().take(30).map(|k| format!("v-{k}")).collect::<Vec<_>>());

    // 1000 slots (and their keys) move from the first node to the second; sluice's map
    // is stale for them until a MOVED, which it follows for the client.
    let id = |n: &Redis| n.cli(&["CLUSTER", "MYID"]).unwrap();
    let out = Command::new("redis-cli")
        .args(["--cluster", "reshard", &nodes[0].addr(), "--cluster-from", &id(&nodes[0])])
        .args(["--cluster-to", &id(&nodes[1]), "--cluster-slots", "1000", "--cluster-yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for key in &keys {
        assert_eq!(redis_cli(port, &["GET", key]).unwrap_or_default(), format!("v-{key}"), "{key}");
    }
    let m = proxy.metrics();
    let redirections =
        |kind: &str| m.get("sluice_redis_pool_redirections_total", &[("listener", "rc_pool"), ("kind", kind)]);
    assert!(redirections("moved") >= 1.0, "no MOVED followed");
    assert!(redirections("refresh") >= 2.0, "the map was learnt, then refreshed after MOVED");
    let gets =
        m.get("sluice_ops_total", &[("listener", "rc_pool"), ("protocol", "redis"), ("op", "GET"), ("outcome", "ok")]);
    assert_eq!(gets, 200.0, "every GET answered with its value, none with MOVED");
}

/// How many times `server` ran `command` (INFO commandstats).
fn calls(server: &Redis, command: &str) -> u64 {
    let stats = server.cli(&["INFO", "commandstats"]).unwrap_or_default();
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn prefixes_route_keys_to_other_clusters_and_writes_are_mirrored() {
    let (main, sessions, admin, shadow) = (Redis::start(), Redis::start(), Redis::start(), Redis::start());
    let proxy = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n  - {{ name: main, endpoints: [\"{}\"] }}\n  - {{ name: sessions, endpoints: [\"{}\"] }}\n  \
         - {{ name: admin, endpoints: [\"{}\"] }}\n  - {{ name: shadow, endpoints: [\"{}\"] }}\n\
         listeners:\n  - {{ name: routed, address: 127.0.0.1:0, protocol: redis, cluster: main, \
         redis: {{ mode: pool, pool: {{ routes: [ {{ prefix: \"session:\", cluster: sessions, remove_prefix: true }}, \
         {{ prefix: \"session:admin:\", cluster: admin }} ], \
         mirror: {{ cluster: shadow, exclude_reads: true }} }} }} }}\n",
        main.addr(),
        sessions.addr(),
        admin.addr(),
        shadow.addr()
    ));
    let port = proxy.addr("routed").port();
    let cli = |args: &[&str]| redis_cli(port, args);

    // The longest prefix wins; `remove_prefix` cuts it off the key the cluster sees.
    assert_eq!(cli(&["SET", "session:abc", "s1"]).as_deref(), Some("OK"));
    assert_eq!(cli(&["SET", "session:admin:root", "a1"]).as_deref(), Some("OK"));
    assert_eq!(cli(&["SET", "user:1", "u1"]).as_deref(), Some("OK"));
    assert_eq!(sessions.cli(&["GET", "abc"]).as_deref(), Some("s1"));
    assert_eq!(sessions.cli(&["EXISTS", "session:abc"]).as_deref(), Some("0"));
    assert_eq!(admin.cli(&["GET", "session:admin:root"]).as_deref(), Some("a1"));
    assert_eq!(main.cli(&["GET", "user:1"]).as_deref(), Some("u1"), "the catch-all is the listener's cluster");
    assert_eq!(main.cli(&["DBSIZE"]).as_deref(), Some("1"));
    assert_eq!(cli(&["GET", "session:abc"]).as_deref(), Some("s1"));

    // Split commands are split per cluster (keys cut per route) and merged in order.
    let got = cli(&["MGET", "user:1", "session:none", "session:abc", "session:admin:root"]).unwrap();
    assert_eq!(got.lines().collect::<Vec<_>>(), ["u1", "", "s1", "a1"]);
    assert_eq!(cli(&["MSET", "session:x", "1", "user:2", "2"]).as_deref(), Some("OK"));
    assert_eq!(sessions.cli(&["GET", "x"]).as_deref(), Some("1"));
    assert_eq!(cli(&["DEL", "session:x", "user:2", "nothing"]).as_deref(), Some("2"));
    // Keys of one command in two clusters cannot meet; within one they are cut alike.
    assert!(cli(&["RENAME", "session:abc", "user:9"]).unwrap().starts_with("CROSSSLOT"));
    assert_eq!(cli(&["RENAME", "session:abc", "session:def"]).as_deref(), Some("OK"));
    assert_eq!(sessions.cli(&["GET", "def"]).as_deref(), Some("s1"));
    // Inside a transaction too.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(roundtrip(&mut s, &["MULTI"]), "+OK");
    assert_eq!(roundtrip(&mut s, &["INCR", "session:n"]), "+QUEUED");
    assert_eq!(roundtrip(&mut s, &["EXEC"]), "*1 :1");
    assert_eq!(sessions.cli(&["GET", "n"]).as_deref(), Some("1"));

    // Every write was copied to the shadow cluster, as its route sent it; reads were not.
    assert!(wait_until(Duration::from_secs(5), || calls(&shadow, "rename") == 1));
    assert_eq!(calls(&shadow, "get"), 0, "reads are not mirrored");
    assert_eq!(calls(&shadow, "mget"), 0);
    assert_eq!(calls(&shadow, "mset"), 1);
    assert_eq!(shadow.cli(&["GET", "user:1"]).as_deref(), Some("u1"));
    assert_eq!(shadow.cli(&["GET", "def"]).as_deref(), Some("s1"), "mirrored after the prefix was cut, renamed");
    assert_eq!(shadow.cli(&["GET", "session:admin:root"]).as_deref(), Some("a1"));
    let mirrored = proxy.metrics().get("sluice_redis_pool_mirrored_total", &[("listener", "routed")]);
    assert_eq!(mirrored, 6.0, "3 SET, MSET, DEL and RENAME, once each (not the refused RENAME)");
}

#[test]
fn replicas_of_a_redis_cluster_serve_reads_with_read_from_prefer_replica() {
    let mut nodes = redis_cluster(1);
    let proxy = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n  - {{ name: rcr, endpoints: [\"{}\"] }}\n\
         listeners:\n  - {{ name: rcr_pool, address: 127.0.0.1:0, protocol: redis, cluster: rcr, \
         redis: {{ mode: pool, pool: {{ backend: cluster, read_from: prefer_replica }} }} }}\n",
        nodes[0].addr()
    ));
    let port = proxy.addr("rcr_pool").port();
    let keys: Vec<String> = (0..100).map(|i| format!("item:{i}")).collect();
    for key in &keys {
        assert_eq!(redis_cli(port, &["SET", key, "v"]).as_deref(), Some("OK"), "{key}");
    }
    // Replication is asynchronous: every read comes back once the replicas have caught up.
    assert!(wait_until(Duration::from_secs(10), || keys
        .iter()
        .all(|k| redis_cli(port, &["GET", k]).as_deref() == Some("v"))));
    let is_replica = |n: &Redis| n.cli(&["ROLE"]).unwrap_or_default().starts_with("slave");
    let (replicas, primaries): (Vec<&Redis>, Vec<&Redis>) = nodes.iter().partition(|n| is_replica(n));
    assert_eq!((replicas.len(), primaries.len()), (3, 3));
    assert!(primaries.iter().all(|p| calls(p, "get") == 0), "reads never reached a primary");
    assert!(replicas.iter().all(|r| calls(r, "get") > 0), "every replica served reads");
    assert!(primaries.iter().all(|p| calls(p, "set") > 0), "writes go to the primaries");
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    assert_eq!(redis_cli(port, &mget).unwrap().lines().filter(|v| *v == "v").count(), 100);

    // A replica dies: its reads go to its primary, without an error reaching the client.
    let dead = nodes.iter().position(is_replica).unwrap();
    drop(nodes.remove(dead));
    for key in &keys {
        assert_eq!(redis_cli(port, &["GET", key]).as_deref(), Some("v"), "{key}");
    }
    assert!(primaries_of(&nodes).iter().any(|p| calls(p, "get") > 0), "the dead replica's primary took its reads");
}

fn primaries_of(nodes: &[Redis]) -> Vec<&Redis> {
    nodes.iter().filter(|n| n.cli(&["ROLE"]).unwrap_or_default().starts_with("master")).collect()
}

#[test]
fn five_thousand_clients_cost_each_server_only_the_pools_connections() {
    use std::io::{Read, Write};
    // sluice runs in this process, so each client holds two of its descriptors. Where the
    // hard limit is lower (some CI containers pin it at 1,024), as many as fit.
    let limit = raise_nofile(12_000);
    let n = 5000.min(limit.saturating_sub(200) as usize / 2);
    assert!(n >= 400, "open-file limit {limit} holds only {n} clients");
    if n < 5000 {
        eprintln!("open-file limit {limit}: {n} concurrent clients instead of 5,000");
    }
    let (a, b) = (Redis::start(), Redis::start());
    let proxy = pool_proxy("crowd", &[&a, &b], "murmur");
    let addr = proxy.addr("crowd");
    let mut clients: Vec<std::net::TcpStream> =
        (0..n).map(|i| std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("client {i}: {e}"))).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        let (key, value) = (format!("crowd:{i}"), i.to_string());
        let request = format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n",
            key.len(),
            value.len(),
            key.len()
        );
        client.write_all(request.as_bytes()).unwrap();
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let value = i.to_string();
        // The GET sees the SET before it: a client's commands to a server stay in order.
        let expected = format!("+OK\r\n${}\r\n{value}\r\n", value.len());
        let mut reply = vec![0u8; expected.len()];
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        client.read_exact(&mut reply).unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert_eq!(String::from_utf8_lossy(&reply), expected, "client {i}");
    }
    // All of them still connected: each server sees at most the pool (2 workers × 2
    // connections), plus the redis-cli asking.
    for server in [&a, &b] {
        let clients_seen = server.info_field("connected_clients");
        assert!((2..=5).contains(&clients_seen), "{} connected clients on {}", clients_seen, server.addr());
    }
    let m = proxy.metrics();
    let active = m.get("sluice_downstream_connections_active", &[("listener", "crowd")]);
    let sent = m.get("sluice_redis_pool_commands_total", &[("listener", "crowd")]);
    assert_eq!(sent, 2.0 * n as f64, "every client's SET and GET, on the pool's connections");
    assert_eq!(m.get("sluice_redis_pool_in_flight", &[("listener", "crowd")]), 0.0);
    assert_eq!(active, n as f64);
    let keys = |r: &Redis| r.cli(&["DBSIZE"]).unwrap().parse::<usize>().unwrap();
    assert_eq!(keys(&a) + keys(&b), n);
}

#[test]
fn faults_answer_or_hold_commands_in_pool_mode() {
    let (a, b) = (Redis::start(), Redis::start());
    let proxy = pool_proxy_extra(
        "faulty",
        &[&a, &b],
        "faults: [ { match: { op: [GET], target_prefix: [\"flaky:\"] }, percentage: 100, error: \"ERR injected\" }, \
         { match: { op: [INCR] }, percentage: 100, delay: 300ms } ]",
    );
    let port = proxy.addr("faulty").port();
    assert_eq!(redis_cli(port, &["SET", "flaky:1", "v"]).as_deref(), Some("OK"));
    assert_eq!(redis_cli(port, &["GET", "flaky:1"]).as_deref(), Some("ERR injected"));
    assert_eq!(redis_cli(port, &["GET", "steady"]).as_deref(), Some(""));
    // A delayed command, and the one pipelined behind it, run once its time comes (the
    // dice are not rolled again for it, or it would wait again).
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(roundtrip(&mut s, &["INCR", "counter"]), ":1");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_millis(2000), "{waited:?}");
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_redis_faults_total", &[("listener", "faulty"), ("fault", "error")]), 1.0);
    assert_eq!(m.get("sluice_redis_faults_total", &[("listener", "faulty"), ("fault", "delay")]), 1.0);
    assert_eq!(a.cli(&["GET", "counter"]).unwrap_or_default() + &b.cli(&["GET", "counter"]).unwrap_or_default(), "1");
}

#[test]
fn tls_on_both_sides_of_the_pool() {
    require("redis-benchmark", "redis-tools");
    // A TLS-only server behind a route, a plain one as the catch-all; clients speak TLS.
    let (plain, secure) = (Redis::start(), Redis::start_tls_only());
    let dir = Scratch::new("pool-tls");
    let (cert, key) = self_signed(&dir);
    let proxy = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n  - {{ name: plain, endpoints: [\"{}\"] }}\n  \
         - {{ name: secure, endpoints: [\"{}\"], tls: {{ ca: \"{}\" }} }}\n\
         listeners:\n  - {{ name: pool_tls, address: 127.0.0.1:0, protocol: redis, cluster: plain, \
         tls: {{ cert: \"{}\", key: \"{}\" }}, \
         redis: {{ mode: pool, pool: {{ routes: [ {{ prefix: \"s:\", cluster: secure }} ] }} }} }}\n",
        plain.addr(),
        secure.addr(),
        secure.certificate().display(),
        cert.display(),
        key.display()
    ));
    let port = proxy.addr("pool_tls").port().to_string();
    let cert = cert.display().to_string();
    let tls = |program: &str| {
        let mut command = Command::new(program);
        command.args(["--tls", "--cacert", &cert, "-h", "127.0.0.1", "-p", &port]);
        command
    };
    let cli = |args: &[&str]| {
        let out = tls("redis-cli").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["SET", "s:1", "secret"]), "OK");
    assert_eq!(cli(&["SET", "p:1", "open"]), "OK");
    assert_eq!(secure.cli(&["GET", "s:1"]).as_deref(), Some("secret"), "through sluice's own TLS to the server");
    assert_eq!(plain.cli(&["GET", "p:1"]).as_deref(), Some("open"));
    assert_eq!(cli(&["MGET", "p:1", "s:1"]), "open\nsecret");
    let out =
        tls("redis-benchmark").args(["-n", "20000", "-c", "20", "-P", "8", "-t", "set,get", "-q"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A subscription inside the client's TLS, to the TLS server of its channel.
    let mut sub = tls("redis-cli").args(["SUBSCRIBE", "s:news"]).stdout(Stdio::piped()).spawn().unwrap();
    assert!(wait_until(Duration::from_secs(10), || cli(&["PUBLISH", "s:news", "hello"]) == "1"));
    let _ = sub.kill();
    let output = sub.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("hello"));

    let m = proxy.metrics();
    assert!(m.get("sluice_tls_handshakes_total", &[("listener", "pool_tls"), ("side", "downstream")]) >= 3.0);
    let gets = m.get("sluice_ops_total", &[("listener", "pool_tls"), ("op", "GET"), ("outcome", "ok")]);
    assert_eq!(gets, 20_000.0);
}
