//! The `http` listener against real nginx upstreams, driven by real curl, wrk and the
//! Python `websockets` client: methods and bodies, keep-alive pooling, routing by host and
//! path, weights, rules, upstream failures and retries, smuggling refused, a large
//! download in bounded memory, WebSocket, TLS termination and a load run.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::nginx::Nginx;
use support::*;

/// A config with clusters `name → endpoints` and one http listener `web` with `http`
/// (indented under `    http:`) and `extra` listener keys.
fn config(listener: &str, clusters: &[(&str, Vec<String>)], http: &str, extra: &str) -> String {
    let mut y = String::from("admin: { address: 127.0.0.1:0 }\ndrain_timeout: 2s\nclusters:\n");
    for (name, endpoints) in clusters {
        let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
        y += &format!("  - {{ name: {name}, endpoints: [{}], connect_timeout: 500ms }}\n", eps.join(", "));
    }
    y += &format!(
        "listeners:\n  - name: {listener}\n    address: 127.0.0.1:0\n    protocol: http\n    cluster: {}\n{extra}",
        clusters[0].0
    );
    if !http.is_empty() {
        y += &format!("    http:\n{http}");
    }
    y
}

struct Curl {
    status: u16,
    headers: String,
    body: String,
}

/// Runs curl with `args`, returning the last response's status, headers and body.
fn curl(args: &[&str]) -> Curl {
    require("curl", "curl");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-D", "-", "--http1.1"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "curl {args:?} failed: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    // The last head (after any 100 Continue) and what follows it.
    let mut rest = text.as_str();
    let mut head = "";
    while let Some((h, b)) = rest.split_once("\r\n\r\n") {
        head = h;
        rest = b;
        if !h.starts_with("HTTP/1.1 1") {
            break;
        }
    }
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Curl { status, headers: head.to_string(), body: rest.to_string() }
}

/// Sluice with one http listener; metrics are per process, so every test names its
/// listener and clusters apart.
struct Web {
    proxy: Proxy,
    name: &'static str,
}

impl Web {
    fn start(name: &'static str, clusters: &[(&str, Vec<String>)], http: &str, extra: &str) -> Web {
        Web { proxy: Proxy::start(&config(name, clusters, http, extra)), name }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.proxy.addr(self.name)
    }

    fn metrics(&self) -> Metrics {
        self.proxy.metrics()
    }
}

#[test]
fn methods_bodies_and_keep_alive_through_nginx() {
    let nginx = Nginx::start("a", 1024 * 1024);
    let http = "      virtual_hosts:\n        - domains: [\"*\"]\n          routes:\n            - name: all\n              cluster: basic_a\n              request_headers_to_add: [{ name: X-Env, value: test }]\n              request_headers_to_remove: [x-secret]\n              response_headers_to_add: [{ name: X-Via, value: sluice }]\n              response_headers_to_remove: [server]\n";
    let dir = Scratch::new("httplog");
    let log = dir.path("access.log");
    let proxy = Web::start(
        "basic",
        &[("basic_a", vec![nginx.addr()])],
        http,
        &format!("    access_log: {{ path: \"{}\" }}\n", log.display()),
    );

    let r = curl(&[&proxy.url("/")]);
    assert_eq!((r.status, r.body.as_str()), (200, "hello from a\n"));
    assert!(
        r.headers.contains("X-Via: sluice") && !r.headers.to_lowercase().contains("server: nginx"),
        "{}",
        r.headers
    );

    let r = curl(&["-H", "X-Secret: s", "-H", "X-Forwarded-For: 1.2.3.4", &proxy.url("/echo?x=1")]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("method=GET uri=/echo?x=1"), "{}", r.body);
    assert!(r.body.contains("xff=1.2.3.4, 127.0.0.1 xfp=http env=test secret=\n"), "{}", r.body);

    // POST with a Content-Length body, a chunked upload, and Expect: 100-continue.
    let file = dir.path("upload.bin");
    std::fs::write(&file, vec![b'u'; 300_000]).unwrap();
    let at_file = format!("@{}", file.display());
    let r = curl(&["--data-binary", &at_file, &proxy.url("/upload")]);
    assert_eq!((r.status, r.body.as_str()), (200, "received=300000\n"));
    let r = curl(&["-H", "Transfer-Encoding: chunked", "--data-binary", &at_file, &proxy.url("/upload")]);
    assert_eq!(r.status, 200, "{}", r.headers);
    let r = curl(&["-H", "Expect: 100-continue", "--data-binary", &at_file, &proxy.url("/upload")]);
    assert_eq!((r.status, r.body.as_str()), (200, "received=300000\n"));

    // HEAD, 304, a chunked response, a close-delimited request from HTTP/1.0.
    let r = curl(&["-I", &proxy.url("/big.bin")]);
    // (curl -I prints the head itself too, after -D's copy.)
    assert!(r.status == 200 && r.headers.contains("Content-Length: 1048576"), "{}", r.headers);
    let last_modified =
        r.headers.lines().find_map(|l| l.strip_prefix("Last-Modified: ")).expect("Last-Modified").to_string();
    let r = curl(&["-H", &format!("If-Modified-Since: {last_modified}"), &proxy.url("/big.bin")]);
    assert_eq!(r.status, 304);
    let r = curl(&[&proxy.url("/chunked")]);
    assert!(r.status == 200 && r.body == "chunked body from a\n", "{} {}", r.headers, r.body);
    let r = curl(&["--http1.0", &proxy.url("/echo")]);
    assert!(r.status == 200 && r.body.starts_with("method=GET"), "{}", r.body);

    // Keep-alive: 50 requests on one client connection use one upstream connection.
    let before = proxy.metrics();
    let new_before =
        before.get("sluice_http_upstream_requests_total", &[("cluster", "basic_a"), ("connection", "new")]);
    let urls: Vec<String> = (0..50).map(|_| proxy.url("/index.html")).collect();
    let out = Command::new("curl").arg("-sS").args(&urls).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).matches("hello from a").count(), 50);
    let m = proxy.metrics();
    let new_after = m.get("sluice_http_upstream_requests_total", &[("cluster", "basic_a"), ("connection", "new")]);
    let reused = m.get("sluice_http_upstream_requests_total", &[("cluster", "basic_a"), ("connection", "reused")]);
    assert!(new_after - new_before <= 1.0, "new upstream connections: {new_before} -> {new_after}");
    assert!(reused >= 49.0, "reused: {reused}");
    // nginx saw those 50 on one connection ($connection_requests reaching 50).
    let nginx_conns: std::collections::HashSet<String> = nginx
        .requests()
        .iter()
        .filter(|l| l.contains("GET /index.html"))
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    assert!(nginx_conns.len() <= 2, "nginx connections for /index.html: {nginx_conns:?}");
    assert!(m.get("sluice_http_upstream_connections_idle", &[("cluster", "basic_a")]) >= 1.0);
    assert!(
        m.get("sluice_ops_total", &[("listener", proxy.name), ("protocol", "http"), ("op", "GET"), ("outcome", "ok")])
            >= 55.0
    );
    assert!(
        m.get("sluice_http_responses_total", &[("listener", proxy.name), ("route", "all"), ("class", "2xx")]) >= 55.0
    );
    assert!(m.get("sluice_http_route_duration_seconds_count", &[("listener", proxy.name), ("route", "all")]) >= 55.0);

    proxy.proxy.drain_and_wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 59, "one line per request");
    let upload = lines.iter().find(|l| l["method"] == "POST").unwrap();
    assert_eq!(upload["path"], "/upload");
    assert_eq!(upload["status"], 200);
    assert_eq!(upload["route"], "all");
    assert_eq!(upload["cluster"], "basic_a");
    assert_eq!(upload["upstream"], nginx.addr());
    // nginx may answer before it has read the whole body (its internal server does not
    // read it); sluice still forwards all of it.
    assert!(upload["bytes_received"].as_u64().unwrap() > 300_000, "{upload}");
    assert!(upload["bytes_sent"].as_u64().unwrap() > 0);
}

#[test]
fn routes_by_host_and_path_and_splits_by_weight() {
    let a = Nginx::start("a", 16);
    let b = Nginx::start("b", 16);
    let http = "      virtual_hosts:\n\
        \x20       - name: api\n          domains: [\"api.example.com\"]\n          routes:\n\
        \x20           - { name: api_v1, match: { prefix: /v1/ }, cluster: rb, prefix_rewrite: /api/ }\n\
        \x20           - { name: api_rest, cluster: ra }\n\
        \x20       - name: split\n          domains: [\"*.split.test\"]\n          routes:\n\
        \x20           - { name: canary, weighted_clusters: [{ cluster: ra, weight: 80 }, { cluster: rb, weight: 20 }] }\n\
        \x20       - name: other\n          domains: [\"www.example.com\"]\n          routes:\n\
        \x20           - { name: only_echo, match: { path: /echo }, cluster: rb }\n";
    let proxy = Web::start("routing", &[("ra", vec![a.addr()]), ("rb", vec![b.addr()])], http, "");

    let r = curl(&["-H", "Host: api.example.com", &proxy.url("/v1/items?q=2")]);
    assert_eq!(r.body, "api b uri=/api/items?q=2\n");
    let r = curl(&["-H", "Host: API.example.com:80", &proxy.url("/")]);
    assert_eq!(r.body, "hello from a\n");
    let r = curl(&["-H", "Host: www.example.com", &proxy.url("/echo")]);
    assert!(r.headers.contains("X-Upstream: b"), "{}", r.headers);
    // No route for the path, no virtual host for the host: 404.
    let r = curl(&["-H", "Host: www.example.com", &proxy.url("/other")]);
    assert_eq!((r.status, r.body.as_str()), (404, "no route for this host and path\n"));
    let r = curl(&["-H", "Host: nobody.test", &proxy.url("/")]);
    assert_eq!(r.status, 404);

    // 400 requests split about 80/20.
    let urls: Vec<String> = (0..400).map(|_| proxy.url("/index.html")).collect();
    let out = Command::new("curl").args(["-sS", "-H", "Host: x.split.test"]).args(&urls).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let to_a = text.matches("hello from a").count();
    let to_b = text.matches("hello from b").count();
    assert_eq!(to_a + to_b, 400);
    assert!((280..=360).contains(&to_a), "a got {to_a}, b got {to_b}");

    let m = proxy.metrics();
    assert_eq!(m.get("sluice_http_local_replies_total", &[("listener", proxy.name), ("status", "404")]), 2.0);
    assert_eq!(
        m.get("sluice_http_responses_total", &[("listener", proxy.name), ("route", "none"), ("class", "4xx")]),
        2.0
    );
    assert_eq!(
        m.get("sluice_http_responses_total", &[("listener", proxy.name), ("route", "canary"), ("class", "2xx")]),
        400.0
    );
}

#[test]
fn rules_deny_and_rate_limit_keep_the_connection() {
    let nginx = Nginx::start("a", 16);
    let extra = "    rules:\n\
        \x20     - { match: { op: DELETE }, action: deny }\n\
        \x20     - { match: { target_prefix: /admin }, action: deny }\n\
        \x20     - { match: { target: /limited }, action: reject, rate_limit: { rate: 2/s, burst: 2 } }\n";
    let proxy = Web::start("rules", &[("rules_a", vec![nginx.addr()])], "", extra);
    assert_eq!(curl(&["-X", "DELETE", &proxy.url("/x")]).status, 403);
    assert_eq!(curl(&[&proxy.url("/admin/users")]).status, 403);
    assert_eq!(curl(&[&proxy.url("/")]).status, 200);

    // Three requests on one connection: 2 pass (nginx's 404), the third gets 429 and the
    // connection stays usable.
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        s.write_all(b"GET /limited HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        statuses.push(read_response(&mut s).0);
    }
    assert_eq!(statuses, vec![404, 404, 429]);
    s.write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s).0, 200);
    let r = curl(&[&proxy.url("/limited")]);
    assert!(r.status == 429 && r.headers.contains("Retry-After: 1"), "{}", r.headers);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(curl(&[&proxy.url("/limited")]).status, 404);

    let m = proxy.metrics();
    assert_eq!(m.get("sluice_ops_total", &[("listener", proxy.name), ("op", "DELETE"), ("outcome", "denied")]), 1.0);
    assert!(m.get("sluice_ops_total", &[("listener", proxy.name), ("op", "GET"), ("outcome", "limited")]) >= 2.0);
    assert!(m.get("sluice_http_local_replies_total", &[("listener", proxy.name), ("status", "429")]) >= 2.0);
}

#[test]
fn a_rate_limit_per_header_value_keeps_each_api_key_to_its_own_budget() {
    let nginx = Nginx::start("a", 16);
    let extra = "    rules:\n\
        \x20     - { match: { client_id: [blocked-key] }, action: deny }\n\
        \x20     - { match: { target_prefix: /api }, action: reject, rate_limit: { rate: 2/m, burst: 2, per: \"header:X-Api-Key\" } }\n";
    let proxy = Web::start("per_key", &[("per_key_a", vec![nginx.addr()])], "", extra);
    // What nginx answers (the request passed) or what sluice answers instead.
    let outcome = |status: u16| match status {
        429 => "limited",
        403 => "denied",
        _ => "passed",
    };
    let get = |key: &str| outcome(curl(&["-H", &format!("X-Api-Key: {key}"), &proxy.url("/api/x")]).status);
    // Each key has its own bucket of 2: one key spent does not touch the other.
    assert_eq!([get("alice"), get("alice"), get("alice")], ["passed", "passed", "limited"]);
    assert_eq!([get("bob"), get("bob"), get("bob")], ["passed", "passed", "limited"]);
    // Requests without the header share one bucket of their own.
    assert_eq!(outcome(curl(&[&proxy.url("/api/x")]).status), "passed");
    // The header's value is the op's client_id, which rules match on too.
    assert_eq!(get("blocked-key"), "denied");
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_ops_total", &[("listener", proxy.name), ("op", "GET"), ("outcome", "limited")]), 2.0);
}

/// Reads one response with a Content-Length body: (status, whole text).
fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return (status, text);
            }
        }
    }
}

#[test]
fn upstream_failures_retries_timeouts_and_smuggling() {
    let nginx = Nginx::start("a", 16);
    let closed = ClosedPort::new();
    let dead = closed.addr.clone();
    let http = "      virtual_hosts:\n        - domains: [\"*\"]\n          routes:\n\
        \x20           - { name: dead, match: { prefix: /dead }, cluster: fail_down, retries: { attempts: 2, on: [connect_failure] } }\n\
        \x20           - { name: flaky, match: { path: /status/503 }, cluster: fail_a, retries: { attempts: 2, on: [\"503\"] } }\n\
        \x20           - { name: slow, match: { path: /slow }, cluster: fail_a, timeout: 300ms }\n\
        \x20           - { name: rest, cluster: fail_a }\n";
    let proxy = Web::start("fail", &[("fail_a", vec![nginx.addr()]), ("fail_down", vec![dead])], http, "");

    assert_eq!(curl(&[&proxy.url("/dead")]).status, 503);
    let r = curl(&[&proxy.url("/status/503")]);
    assert_eq!((r.status, r.body.as_str()), (503, "unavailable\n"));
    let started = Instant::now();
    let r = curl(&[&proxy.url("/slow")]);
    // The head of the slow file comes at once; the timeout covers request start to head.
    assert_eq!(r.status, 200);
    assert!(started.elapsed() > Duration::from_secs(1), "slow download took {:?}", started.elapsed());
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_http_retries_total", &[("listener", proxy.name), ("route", "dead")]), 2.0);
    assert_eq!(m.get("sluice_http_retries_total", &[("listener", proxy.name), ("route", "flaky")]), 2.0);
    assert_eq!(nginx.requests().iter().filter(|l| l.contains("GET /status/503")).count(), 3);
    assert_eq!(m.get("sluice_http_local_replies_total", &[("listener", proxy.name), ("status", "503")]), 1.0);
    assert_eq!(m.get("sluice_ops_total", &[("listener", proxy.name), ("op", "GET"), ("outcome", "error")]), 2.0);

    // A POST to a dead cluster is not retried.
    let r = curl(&["-d", "x=1", &proxy.url("/dead")]);
    assert_eq!(r.status, 503);
    assert_eq!(proxy.metrics().get("sluice_http_retries_total", &[("listener", proxy.name), ("route", "dead")]), 2.0);

    // Smuggling: Content-Length with Transfer-Encoding is refused with 400 and closed;
    // nothing reaches nginx.
    let before = nginx.requests().len();
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (bytes, eof) = read_to_eof(&mut s, Duration::from_secs(5));
    let text = String::from_utf8_lossy(&bytes);
    assert!(eof && text.starts_with("HTTP/1.1 400 ") && text.contains("Connection: close"), "{text}");
    assert_eq!(text.matches("HTTP/1.1").count(), 1, "{text}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(nginx.requests().len(), before);
    assert_eq!(
        proxy.metrics().get("sluice_http_local_replies_total", &[("listener", proxy.name), ("status", "400")]),
        1.0
    );
}

#[test]
fn route_timeout_answers_504() {
    // An upstream that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let http =
        "      virtual_hosts:\n        - { domains: [\"*\"], routes: [{ name: r, cluster: tmo_s, timeout: 300ms }] }\n";
    let proxy = Web::start("tmo", &[("tmo_s", vec![addr])], http, "");
    let started = Instant::now();
    let r = curl(&[&proxy.url("/")]);
    assert_eq!((r.status, r.body.as_str()), (504, "upstream timed out\n"));
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(silent);
}

#[test]
fn websocket_upgrade_is_tunnelled() {
    require("python3", "python3");
    let port = free_port();
    let server = format!(
        "import asyncio, websockets\n\
         async def echo(ws, _path=None):\n    async for m in ws:\n        await ws.send('echo:' + m)\n\
         async def main():\n    async with websockets.serve(echo, '127.0.0.1', {port}):\n        await asyncio.Future()\n\
         asyncio.run(main())\n"
    );
    let mut child = Command::new("/usr/bin/python3").args(["-c", &server]).spawn().expect("python3 websockets");
    assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", port)).is_ok()));
    let proxy = Web::start("ws", &[("ws_up", vec![format!("127.0.0.1:{port}")])], "", "");
    let client = format!(
        "import asyncio, websockets\n\
         async def main():\n    async with websockets.connect('ws://{}/chat', compression=None) as ws:\n        for i in range(3):\n            await ws.send('m%d' % i)\n            print(await ws.recv())\n\
         asyncio.run(main())\n",
        proxy.addr()
    );
    let out = Command::new("/usr/bin/python3").args(["-c", &client]).output().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "echo:m0\necho:m1\necho:m2\n");
    let m = proxy.metrics();
    assert_eq!(
        m.get("sluice_http_responses_total", &[("listener", proxy.name), ("route", "default"), ("class", "1xx")]),
        1.0
    );
}

#[test]
fn tls_listener_with_curl() {
    let nginx = Nginx::start("a", 16);
    let dir = Scratch::new("httptls");
    let (cert, key) = self_signed(&dir);
    let extra = format!("    tls: {{ cert: \"{}\", key: \"{}\", alpn: [http/1.1] }}\n", cert.display(), key.display());
    let proxy = Web::start("tls", &[("tls_a", vec![nginx.addr()])], "", &extra);
    let port = proxy.addr().port();
    let base = format!("https://localhost:{port}");
    let r = curl(&["--cacert", cert.to_str().unwrap(), &format!("{base}/index.html"), &format!("{base}/echo")]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("xfp=https"), "{}", r.body);
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_tls_handshakes_total", &[("listener", proxy.name), ("side", "downstream")]), 1.0);
}

#[test]
fn wrk_load_without_errors() {
    require("wrk", "wrk");
    let nginx = Nginx::start("a", 16);
    let proxy = Web::start("load", &[("load_a", vec![nginx.addr()])], "", "");
    let out = Command::new("wrk").args(["-t2", "-c32", "-d5s", &proxy.url("/index.html")]).output().expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("Socket errors") && !text.contains("Non-2xx"), "{text}");
    let requests: u64 =
        text.lines().find_map(|l| l.trim().split_once(" requests in").map(|(n, _)| n.trim().parse().unwrap())).unwrap();
    assert!(requests > 1000, "{text}");
    let m = proxy.metrics();
    let new = m.get("sluice_http_upstream_requests_total", &[("cluster", "load_a"), ("connection", "new")]);
    assert!(new <= 64.0, "{new} new upstream connections for {requests} requests");
}
