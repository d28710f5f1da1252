//! HTTP/2 clients through the `http` listener to HTTP/1.1 upstreams: real curl
//! (`--http2-prior-knowledge`, `--http2` over TLS with ALPN) and h2load against real nginx,
//! a raw HTTP/1.1 upstream for trailers, and hand-built HTTP/2 frames for the hardening
//! cases (rapid reset, CONTINUATION flood, header list size, concurrent streams, GOAWAY
//! on drain).

mod support;

#[path = "http2/frames.rs"]
mod h2_frames;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

use std::time::Duration;

use h2_frames::*;
use support::nginx::Nginx;
use support::*;

/// A config with clusters `name → endpoints` and one http listener with `http` (indented
/// under `    http:`) and `extra` listener keys.
fn config(listener: &str, clusters: &[(&str, Vec<String>)], http: &str, extra: &str) -> String {
    let mut y = String::from("admin: { address: 127.0.0.1:0 }\ndrain_timeout: 10s\nclusters:\n");
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

struct Curl {
    status: u16,
    version: String,
    headers: String,
    body: String,
}

/// Runs curl with `args`; the status and HTTP version of the last response, its headers
/// (and trailers) and body.
fn curl(args: &[&str]) -> Curl {
    require("curl", "curl");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-D", "/dev/stderr", "-w", "\n%{http_code} %{http_version}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let headers = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "curl {args:?} failed: {headers}\n{text}");
    let (body, tail) = text.rsplit_once('\n').unwrap();
    let (status, version) = tail.split_once(' ').unwrap();
    Curl { status: status.parse().unwrap(), version: version.to_string(), headers, body: body.to_string() }
}

#[test]
fn curl_prior_knowledge_to_http1_nginx() {
    let nginx = Nginx::start("a", 3 * 1024 * 1024);
    let proxy = Web::start("h2c", &[("h2c_a", vec![nginx.addr()])], "", "");
    let h2 = "--http2-prior-knowledge";
    let r = curl(&[h2, &proxy.url("/index.html")]);
    assert_eq!((r.status, r.version.as_str(), r.body.as_str()), (200, "2", "hello from a\n"));
    assert!(r.headers.contains("x-upstream: a"), "{}", r.headers);

    // The request line and Host come from the pseudo-headers; X-Forwarded-* are added.
    let r = curl(&[h2, "-H", "X-Env: prod", &proxy.url("/echo?q=1")]);
    assert!(
        r.body.starts_with("method=GET uri=/echo?q=1 host=127.0.0.1 xff=127.0.0.1 xfp=http env=prod"),
        "{}",
        r.body
    );

    // HEAD: the length of the GET, no body.
    let r = curl(&[h2, "-I", &proxy.url("/big.bin")]);
    assert_eq!(r.status, 200);
    assert!(r.headers.contains("content-length: 3145728"), "{}", r.headers);

    // A 3 MiB download through the flow-controlled stream.
    let r = curl(&[h2, &proxy.url("/big.bin")]);
    assert_eq!(r.body.len(), 3 * 1024 * 1024, "download length");

    // A chunked response from nginx arrives as DATA frames.
    let r = curl(&[h2, &proxy.url("/chunked")]);
    assert_eq!((r.status, r.body.as_str()), (200, "chunked body from a\n"));

    // Several requests multiplexed on one connection.
    let urls: Vec<String> = (0..8).map(|i| proxy.url(&format!("/echo?n={i}"))).collect();
    let mut args = vec![h2, "--parallel", "--parallel-immediate"];
    args.extend(urls.iter().map(String::as_str));
    let r = curl(&args);
    assert_eq!(r.body.matches("method=GET").count(), 8, "{}", r.body);

    let m = proxy.metrics();
    let name = proxy.name;
    assert!(m.get("sluice_http_downstream_connections_total", &[("listener", name), ("version", "2")]) >= 7.0);
    assert_eq!(m.get("sluice_http_downstream_connections_total", &[("listener", name), ("version", "1.1")]), 0.0);
    assert_eq!(m.get("sluice_http2_streams_total", &[("listener", name)]), 13.0);
    // HTTP/1.1 still works on the same listener.
    let r = curl(&["--http1.1", &proxy.url("/index.html")]);
    assert_eq!((r.status, r.version.as_str()), (200, "1.1"));
}

/// An HTTP/1.1 upstream that reads each request body to its end before answering
/// `received=<body bytes as framed>` (with a 100 Continue first when the request expects it).
fn counting_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 65536];
                let mut continued = false;
                loop {
                    let Ok(n) = s.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else { continue };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let body = buf.len() - end;
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: ").map(|v| v.trim().parse::<usize>().unwrap()));
                    let done = match length {
                        Some(n) => body >= n,
                        None => buf.ends_with(b"\r\n0\r\n\r\n") || (body == 0 && !head.contains("chunked")),
                    };
                    if !done {
                        if head.contains("expect: 100-continue") && !continued {
                            continued = true;
                            let _ = s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
                        }
                        continue;
                    }
                    continued = false;
                    let text = format!("received={body}");
                    let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}", text.len());
                    if s.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                    buf.clear();
                }
            });
        }
    });
    addr
}

#[test]
fn uploads_stream_to_an_upstream_that_reads_them() {
    let upstream = counting_upstream();
    let proxy = Web::start("h2up", &[("h2up_a", vec![upstream])], "", "");
    let h2 = "--http2-prior-knowledge";
    let dir = Scratch::new("h2upload");
    let file = dir.path("up.bin");
    std::fs::write(&file, vec![b'u'; 2 * 1024 * 1024]).unwrap();
    // With a content-length: forwarded with it.
    let r = curl(&[h2, "--data-binary", &format!("@{}", file.display()), &proxy.url("/upload")]);
    assert_eq!((r.status, r.body.as_str()), (200, "received=2097152"), "{}", r.headers);
    // Without one (curl -T from stdin): chunked upstream, more bytes than the payload.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("curl -sS --max-time 20 {h2} -T - {} < {}", proxy.url("/upload"), file.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let received: usize = text.strip_prefix("received=").and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(received > 2 * 1024 * 1024, "{text} {}", String::from_utf8_lossy(&out.stderr));
    // The upstream's 100 Continue reaches the HTTP/2 client as an informational response.
    let r = curl(&[h2, "-H", "Expect: 100-continue", "--data-binary", "hello", &proxy.url("/upload")]);
    assert!(r.headers.starts_with("HTTP/2 100"), "{}", r.headers);
    assert_eq!((r.status, r.body.as_str()), (200, "received=5"));
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_ops_total", &[("listener", proxy.name), ("op", "POST"), ("outcome", "ok")]), 2.0);
    assert_eq!(m.get("sluice_ops_total", &[("listener", proxy.name), ("op", "PUT"), ("outcome", "ok")]), 1.0);
}

#[test]
fn curl_http2_over_tls_by_alpn() {
    let nginx = Nginx::start("a", 16);
    let dir = Scratch::new("h2tls");
    let (cert, key) = self_signed(&dir);
    let extra = format!("    tls: {{ cert: \"{}\", key: \"{}\" }}\n", cert.display(), key.display());
    let proxy = Web::start("h2tls", &[("h2tls_a", vec![nginx.addr()])], "", &extra);
    let base = format!("https://localhost:{}", proxy.addr().port());
    let ca = cert.to_str().unwrap();
    let r = curl(&["--http2", "--cacert", ca, &format!("{base}/echo")]);
    assert_eq!((r.status, r.version.as_str()), (200, "2"));
    assert!(r.body.contains("host=localhost") && r.body.contains("xfp=https"), "{}", r.body);
    let r = curl(&["--http1.1", "--cacert", ca, &format!("{base}/index.html")]);
    assert_eq!((r.status, r.version.as_str(), r.body.as_str()), (200, "1.1", "hello from a\n"));
    let m = proxy.metrics();
    let name = proxy.name;
    assert_eq!(m.get("sluice_tls_handshakes_total", &[("listener", name), ("alpn", "h2")]), 1.0);
    assert_eq!(m.get("sluice_tls_handshakes_total", &[("listener", name), ("alpn", "http/1.1")]), 1.0);
    assert_eq!(m.get("sluice_http_downstream_connections_total", &[("listener", name), ("version", "2")]), 1.0);
}

#[test]
fn rules_routes_and_local_replies_over_http2() {
    let nginx = Nginx::start("a", 16);
    let http = "      virtual_hosts:\n\
        \x20       - { domains: [\"127.0.0.1\", sluice.test], routes: [ { name: api, match: { prefix: /api/ }, cluster: rr_a } ] }\n";
    let dir = Scratch::new("h2log");
    let log = dir.path("access.log");
    let extra = format!(
        "    access_log: {{ path: \"{}\" }}\n    rules:\n\
        \x20     - {{ match: {{ op: DELETE }}, action: deny }}\n\
        \x20     - {{ match: {{ target: /api/limited }}, action: reject, rate_limit: {{ rate: 1/s, burst: 1 }} }}\n",
        log.display()
    );
    let proxy = Web::start("rr", &[("rr_a", vec![nginx.addr()])], http, &extra);
    let h2 = "--http2-prior-knowledge";
    let r = curl(&[h2, &proxy.url("/api/x")]);
    assert_eq!((r.status, r.body.as_str()), (200, "api a uri=/api/x\n"));
    assert_eq!(curl(&[h2, "-X", "DELETE", &proxy.url("/api/x")]).status, 403);
    assert_eq!(curl(&[h2, &proxy.url("/other")]).status, 404);
    assert_eq!(curl(&[h2, &proxy.url("/api/limited")]).status, 200);
    let r = curl(&[h2, &proxy.url("/api/limited")]);
    assert!(r.status == 429 && r.headers.contains("retry-after: 1"), "{}", r.headers);
    // :authority and a different Host: malformed (RFC 9113 §8.3.1), answered 400
    // (`:status` 400 is static table entry 12: 0x8c); the same Host is fine.
    let mut c = H2Conn::connect(proxy.addr());
    let id = c.request("GET", "/api/x", &[("host", "127.0.0.1")], true);
    assert_eq!(c.response(id).first_byte, Some(0x8c));
    let id = c.request("GET", "/api/x", &[("host", "sluice.test")], true);
    assert_eq!(c.response(id).first_byte, Some(0x88));
    let m = proxy.metrics();
    let name = proxy.name;
    assert_eq!(m.get("sluice_ops_total", &[("listener", name), ("op", "DELETE"), ("outcome", "denied")]), 1.0);
    assert_eq!(m.get("sluice_ops_total", &[("listener", name), ("op", "GET"), ("outcome", "limited")]), 1.0);
    assert_eq!(m.get("sluice_http_responses_total", &[("listener", name), ("route", "api"), ("class", "2xx")]), 3.0);
    assert_eq!(m.get("sluice_http_local_replies_total", &[("listener", name), ("status", "404")]), 1.0);
    // One access-log line per stream, marked HTTP/2.
    drop(c);
    proxy.proxy.drain_and_wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert!(lines.iter().all(|l| l["version"] == "2"), "{text}");
    let denied = lines.iter().find(|l| l["method"] == "DELETE").unwrap();
    assert_eq!((denied["status"].as_u64(), denied["local_reply"].as_str()), (Some(403), Some("denied")));
    let ok = lines.iter().find(|l| l["path"] == "/api/x" && l["status"] == 200).unwrap();
    assert_eq!((ok["route"].as_str(), ok["cluster"].as_str()), (Some("api"), Some("rr_a")));
}

#[test]
fn h2load_all_requests_2xx_and_counted() {
    require("h2load", "nghttp2-client");
    let nginx = Nginx::start("a", 16);
    // 100 streams in flight: the default pool keeps that many idle upstream connections.
    let proxy = Web::start("h2load", &[("h2load_a", vec![nginx.addr()])], "", "");
    let out = Command::new("h2load")
        .args(["-n", "10000", "-c", "10", "-m", "10", &proxy.url("/index.html")])
        .output()
        .expect("run h2load");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("10000 succeeded, 0 failed, 0 errored"), "{text}");
    assert!(text.contains("status codes: 10000 2xx"), "{text}");
    let m = proxy.metrics();
    let name = proxy.name;
    assert_eq!(m.get("sluice_http2_streams_total", &[("listener", name)]), 10000.0);
    assert_eq!(m.get("sluice_ops_total", &[("listener", name), ("op", "GET"), ("outcome", "ok")]), 10000.0);
    assert_eq!(m.get("sluice_http_responses_total", &[("listener", name), ("class", "2xx")]), 10000.0);
    assert_eq!(m.get("sluice_http_downstream_connections_total", &[("listener", name), ("version", "2")]), 10.0);
    // Pooled: about one upstream connection per stream in flight, not one per request.
    let new = m.get("sluice_http_upstream_requests_total", &[("cluster", "h2load_a"), ("connection", "new")]);
    assert!(new <= 250.0, "{new} new upstream connections");
}

/// An HTTP/1.1 upstream that answers every request with a chunked body carrying the
/// request it received (head, body and trailers, as text), then trailers of its own.
fn echo_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                loop {
                    let Ok(n) = s.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(head_end) = text.find("\r\n\r\n") else { continue };
                    let chunked = text[..head_end].to_ascii_lowercase().contains("transfer-encoding: chunked");
                    if chunked && !(text[head_end..].contains("\r\n0\r\n") && text.ends_with("\r\n\r\n")) {
                        continue;
                    }
                    let body = text.replace("\r\n", "|");
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n{:x}\r\n{body}\r\n0\r\nx-checksum: abc\r\ngrpc-status: 0\r\n\r\n",
                        body.len()
                    );
                    if s.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                    buf.clear();
                }
            });
        }
    });
    addr
}

#[test]
fn trailers_cross_both_ways() {
    let upstream = echo_upstream();
    let proxy = Web::start("trl", &[("trl_a", vec![upstream])], "", "");
    let mut c = H2Conn::connect(proxy.addr());
    // A request with a body and trailers: chunked upstream with the trailer section.
    let id = c.request("POST", "/t", &[("te", "trailers")], false);
    c.send(&frame(DATA, 0, id, b"hello"));
    c.send(&frame(HEADERS, END_HEADERS | END_STREAM, id, &literal("x-req-trailer", "yes")));
    let r = c.response(id);
    let body = String::from_utf8_lossy(&r.data).to_string();
    assert!(body.starts_with("POST /t HTTP/1.1|host: sluice.test|"), "{body}");
    assert!(body.contains("transfer-encoding: chunked"), "{body}");
    assert!(body.contains("|5|hello|0|x-req-trailer: yes||"), "{body}");
    // The response's trailers arrive as a trailing HEADERS frame with END_STREAM.
    assert_eq!(r.header_blocks, 2, "head and trailers");
    assert!(r.ended);
}

/// The SETTINGS the server sent first, read before anything else.
fn server_settings(c: &mut H2Conn) {
    while c.settings.is_empty() {
        let f = c.read_frame().expect("server SETTINGS");
        assert!(f.kind == SETTINGS || f.kind == WINDOW_UPDATE, "frame {} before SETTINGS", f.kind);
    }
}

#[test]
fn max_concurrent_streams_is_advertised_and_enforced() {
    let nginx = Nginx::start("a", 16);
    let http = "      http2: { max_concurrent_streams: 2 }\n";
    let proxy = Web::start("h2mcs", &[("h2mcs_a", vec![nginx.addr()])], http, "");
    let mut c = H2Conn::connect(proxy.addr());
    server_settings(&mut c);
    assert!(c.settings.contains(&(0x3, 2)), "{:?}", c.settings);
    // Two uploads that never end hold both slots; a third stream is refused.
    c.request("POST", "/upload", &[], false);
    c.request("POST", "/upload", &[], false);
    let third = c.request("GET", "/index.html", &[], true);
    let r = c.response(third);
    assert!(matches!(r.reset, Some(0x7) | Some(0x1)), "third stream not refused: {r:?}");
    assert!(c.goaway.is_none());
}

#[test]
fn rapid_reset_flood_ends_the_connection_and_others_are_served() {
    let nginx = Nginx::start("a", 16);
    let proxy = Web::start("h2rr", &[("h2rr_a", vec![nginx.addr()])], "", "");
    let mut c = H2Conn::connect(proxy.addr());
    server_settings(&mut c);
    // CVE-2023-44487: streams opened and cancelled at once, in one burst.
    let mut burst = Vec::new();
    for _ in 0..1000 {
        let id = c.next_stream();
        burst.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &request_block("GET", "/index.html", &[])));
        burst.extend(frame(RST_STREAM, 0, id, &0x8u32.to_be_bytes()));
    }
    let _ = c.try_send(&burst);
    assert_eq!(c.until_goaway_or_close(), Some(0xb), "GOAWAY ENHANCE_YOUR_CALM expected");
    // The connection is closed after the GOAWAY.
    while c.read_frame().is_some() {}
    let r = curl(&["--http2-prior-knowledge", &proxy.url("/index.html")]);
    assert_eq!((r.status, r.body.as_str()), (200, "hello from a\n"));
    let m = proxy.metrics();
    let name = proxy.name;
    assert_eq!(m.get("sluice_http2_goaways_total", &[("listener", name), ("reason", "enhance_your_calm")]), 1.0);
    // Only a few of the flood's streams (if any) reached the upstream.
    assert!(m.get("sluice_http2_streams_total", &[("listener", name)]) < 100.0);
}

#[test]
fn continuation_flood_closes_the_connection() {
    let nginx = Nginx::start("a", 16);
    let proxy = Web::start("h2cont", &[("h2cont_a", vec![nginx.addr()])], "", "");
    let mut c = H2Conn::connect(proxy.addr());
    server_settings(&mut c);
    let id = c.next_stream();
    let mut reader = c.reader();
    let seen = std::thread::spawn(move || reader.until_goaway_or_close());
    // A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION
    // frames of small literal fields, up to 64 MiB unless the server stops it.
    let _ = c.try_send(&frame(HEADERS, 0, id, &request_block("GET", "/", &[])));
    let mut block = Vec::new();
    while block.len() < 16 * 1024 - 64 {
        block.extend(literal("x-flood", "aaaaaaaaaaaaaaaa"));
    }
    let cont = frame(CONTINUATION, 0, id, &block);
    let mut sent = 0usize;
    while sent < 64 * 1024 * 1024 && c.try_send(&cont) {
        sent += cont.len();
    }
    let code = seen.join().unwrap();
    assert!(sent < 64 * 1024 * 1024, "sluice kept reading CONTINUATION frames ({sent} bytes)");
    assert!(matches!(code, Some(0xb) | Some(0x1) | None), "{code:?}");
    let r = curl(&["--http2-prior-knowledge", &proxy.url("/index.html")]);
    assert_eq!(r.status, 200);
}

#[test]
fn oversized_header_list_is_refused_and_the_connection_lives() {
    let nginx = Nginx::start("a", 16);
    let http = "      http2: { max_header_list_size: 4096 }\n";
    let proxy = Web::start("h2hls", &[("h2hls_a", vec![nginx.addr()])], http, "");
    let big = "b".repeat(8000);
    let r = curl(&["--http2-prior-knowledge", "-H", &format!("x-big: {big}"), &proxy.url("/index.html")]);
    assert_eq!(r.status, 431);
    let mut c = H2Conn::connect(proxy.addr());
    server_settings(&mut c);
    assert!(c.settings.contains(&(0x6, 4096)), "{:?}", c.settings);
    let id = c.request("GET", "/index.html", &[("x-big", &big)], true);
    let r = c.response(id);
    assert!(r.header_blocks == 1 || r.reset.is_some(), "{r:?}");
    let id = c.request("GET", "/index.html", &[], true);
    let r = c.response(id);
    assert_eq!((r.first_byte, r.data.as_slice()), (Some(0x88), &b"hello from a\n"[..]));
}

#[test]
fn drain_sends_goaway_and_lets_the_stream_finish() {
    let nginx = Nginx::start("a", 16);
    let proxy = Web::start("h2drain", &[("h2drain_a", vec![nginx.addr()])], "", "");
    let mut c = H2Conn::connect(proxy.addr());
    server_settings(&mut c);
    // /slow: 64 KiB at 20 KiB/s, about 3 s.
    let id = c.request("GET", "/slow", &[], true);
    let mut first = None;
    while first.is_none() {
        let f = c.read_frame().expect("response head");
        if f.kind == HEADERS && f.stream == id {
            first = Some(f);
        }
    }
    proxy.proxy.handle().drain();
    // Until the GOAWAY: the stream's DATA so far (the server is still up for /metrics while
    // the stream is in flight; it stops once the connection is done).
    let mut early = 0;
    while c.goaway.is_none() {
        let f = c.read_frame().expect("GOAWAY");
        if f.kind == DATA && f.stream == id {
            early += f.payload.len();
            c.send(&frame(WINDOW_UPDATE, 0, id, &(f.payload.len() as u32).to_be_bytes()));
        }
    }
    assert_eq!(c.goaway.map(|g| g.1), Some(0), "graceful GOAWAY (NO_ERROR)");
    let m = proxy.metrics();
    let r = c.response(id);
    assert!(r.ended && r.reset.is_none(), "{r:?}");
    assert_eq!(early + r.data.len(), 64 * 1024);
    assert_eq!(m.get("sluice_http2_goaways_total", &[("listener", proxy.name), ("reason", "drain")]), 1.0);
}

/// The gRPC test venv (grpcio from PyPI), made by scripts/install-peers.sh.
fn grpc_python() -> std::path::PathBuf {
    let venv = std::env::var_os("SLUICE_GRPC_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/peers/grpc-venv"));
    let python = venv.join("bin/python");
    let ok = Command::new(&python).args(["-c", "import grpc"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "no grpcio venv at {} (make it with scripts/install-peers.sh)", venv.display());
    python
}

/// The gRPC server of tests/http2/grpc_server.py, stopped on drop.
struct GrpcServer {
    child: std::process::Child,
    port: u16,
}

impl GrpcServer {
    fn start(python: &std::path::Path) -> GrpcServer {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http2/grpc_server.py");
        let mut child = Command::new(python)
            .arg(script)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the gRPC server");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("gRPC server said {line:?}"));
        GrpcServer { child, port }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn grpc_end_to_end_over_http2_upstream() {
    let python = grpc_python();
    let server = GrpcServer::start(&python);
    let y = config("grpc", &[("grpc_a", vec![format!("127.0.0.1:{}", server.port)])], "", "")
        .replace("connect_timeout: 500ms }", "connect_timeout: 500ms, http2: true }");
    let proxy = Web { proxy: Proxy::start(&y), name: "grpc" };
    let client = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http2/grpc_client.py");
    let out = Command::new(&python).arg(client).arg(proxy.addr().to_string()).output().expect("run the gRPC client");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let m = proxy.metrics();
    let name = proxy.name;
    // Unary twice, Bidi, Fail: four streams, all answered 200 (the gRPC status is in the
    // trailers), over one multiplexed upstream connection.
    assert_eq!(m.get("sluice_ops_total", &[("listener", name), ("op", "POST"), ("outcome", "ok")]), 4.0);
    assert_eq!(m.get("sluice_http_upstream_requests_total", &[("cluster", "grpc_a"), ("connection", "new")]), 1.0);
    assert_eq!(m.get("sluice_http_upstream_requests_total", &[("cluster", "grpc_a"), ("connection", "reused")]), 3.0);
}

/// nghttpd (HTTP/2 only, prior knowledge) serving a directory, adding a trailer to every
/// response with a body; stopped on drop.
struct Nghttpd {
    child: std::process::Child,
    port: u16,
    _dir: Scratch,
}

impl Nghttpd {
    fn start() -> Nghttpd {
        Nghttpd::start_with(None)
    }

    /// With `tls` (key, certificate): h2 over TLS, chosen by ALPN.
    fn start_with(tls: Option<(&std::path::Path, &std::path::Path)>) -> Nghttpd {
        let bin = require("nghttpd", "nghttp2-server");
        let dir = Scratch::new("nghttpd");
        std::fs::write(dir.path("index.html"), "hello from nghttpd\n").unwrap();
        std::fs::write(dir.path("big.bin"), vec![b'n'; 2 * 1024 * 1024]).unwrap();
        let port = free_port();
        let mut cmd = Command::new(bin);
        if tls.is_none() {
            cmd.arg("--no-tls");
        }
        cmd.args(["-a", "127.0.0.1", "--trailer", "x-trailer: yes", "-d"]).arg(&dir.0).arg(port.to_string());
        if let Some((key, cert)) = tls {
            cmd.arg(key).arg(cert);
        }
        let child =
            cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("start nghttpd");
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "nghttpd did not come up"
        );
        Nghttpd { child, port, _dir: dir }
    }
}

impl Drop for Nghttpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn http1_and_http2_clients_to_an_http2_upstream() {
    let nghttpd = Nghttpd::start();
    let y = config("toh2", &[("toh2_a", vec![format!("127.0.0.1:{}", nghttpd.port)])], "", "")
        .replace("connect_timeout: 500ms }", "connect_timeout: 500ms, http2: true }");
    let proxy = Web { proxy: Proxy::start(&y), name: "toh2" };
    // H1 → H2.
    let r = curl(&["--http1.1", &proxy.url("/index.html")]);
    assert_eq!((r.status, r.version.as_str(), r.body.as_str()), (200, "1.1", "hello from nghttpd\n"));
    let r = curl(&["--http1.1", &proxy.url("/big.bin")]);
    assert_eq!((r.status, r.body.len()), (200, 2 * 1024 * 1024));
    let r = curl(&["--http1.1", &proxy.url("/nothing")]);
    assert_eq!(r.status, 404);
    let dir = Scratch::new("toh2up");
    let file = dir.path("up.bin");
    std::fs::write(&file, vec![b'u'; 1024 * 1024]).unwrap();
    let r = curl(&["--http1.1", "--data-binary", &format!("@{}", file.display()), &proxy.url("/index.html")]);
    assert_eq!((r.status, r.body.as_str()), (200, "hello from nghttpd\n"));
    // Expect: 100-continue is answered by sluice at once (curl would wait 1 s otherwise).
    let started = std::time::Instant::now();
    let r = curl(&["--http1.1", "-H", "Expect: 100-continue", "--data-binary", "hello", &proxy.url("/index.html")]);
    assert!(r.headers.starts_with("HTTP/1.1 100 Continue"), "{}", r.headers);
    assert_eq!(r.status, 200);
    assert!(started.elapsed() < Duration::from_millis(900), "{:?}", started.elapsed());
    // H2 → H2, the upstream's trailer passed on.
    let r = curl(&["--http2-prior-knowledge", &proxy.url("/index.html")]);
    assert_eq!((r.status, r.version.as_str(), r.body.as_str()), (200, "2", "hello from nghttpd\n"));
    let mut c = H2Conn::connect(proxy.addr());
    let id = c.request("GET", "/big.bin", &[], true);
    let r = c.response(id);
    assert_eq!((r.data.len(), r.header_blocks, r.ended), (2 * 1024 * 1024, 2, true));
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_ops_total", &[("listener", proxy.name), ("op", "GET"), ("outcome", "ok")]), 5.0);
    assert_eq!(m.get("sluice_ops_total", &[("listener", proxy.name), ("op", "POST"), ("outcome", "ok")]), 2.0);
    // One multiplexed connection per worker at most.
    assert!(m.get("sluice_http_upstream_requests_total", &[("cluster", "toh2_a"), ("connection", "new")]) <= 2.0);
}

#[test]
fn idle_connection_gets_goaway_and_http1_is_not_mistaken_for_http2() {
    let nginx = Nginx::start("a", 16);
    let proxy = Web::start("h2idle", &[("h2idle_a", vec![nginx.addr()])], "", "    idle_timeout: 1s\n");
    let mut c = H2Conn::connect(proxy.addr());
    let id = c.request("GET", "/index.html", &[], true);
    assert_eq!(c.response(id).data, b"hello from a\n");
    let started = std::time::Instant::now();
    assert_eq!(c.until_goaway_or_close(), Some(0), "GOAWAY NO_ERROR after the idle timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    // An HTTP/1.1 request whose first bytes look like the preface's start is still HTTP/1.
    let mut s = std::net::TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PRI /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 "), "{reply}");
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_http2_goaways_total", &[("listener", proxy.name), ("reason", "idle")]), 1.0);
    assert_eq!(m.get("sluice_http_downstream_connections_total", &[("listener", proxy.name), ("version", "1.1")]), 1.0);
}

#[test]
fn http2_upstream_over_tls_by_alpn() {
    let dir = Scratch::new("h2uptls");
    let (cert, key) = self_signed(&dir);
    let nghttpd = Nghttpd::start_with(Some((&key, &cert)));
    let y = config("uptls", &[("uptls_a", vec![format!("localhost:{}", nghttpd.port)])], "", "").replace(
        "connect_timeout: 500ms }",
        &format!("connect_timeout: 500ms, http2: true, tls: {{ ca: \"{}\" }} }}", cert.display()),
    );
    let proxy = Web { proxy: Proxy::start(&y), name: "uptls" };
    let r = curl(&["--http2-prior-knowledge", &proxy.url("/index.html")]);
    assert_eq!((r.status, r.body.as_str()), (200, "hello from nghttpd\n"));
    let r = curl(&["--http1.1", &proxy.url("/index.html")]);
    assert_eq!((r.status, r.body.as_str()), (200, "hello from nghttpd\n"));
    let m = proxy.metrics();
    // Two requests, on one TLS connection per worker that served them.
    let count = |c| m.get("sluice_http_upstream_requests_total", &[("cluster", "uptls_a"), ("connection", c)]);
    assert_eq!((count("new") + count("reused"), count("new") <= 2.0), (2.0, true));
}

#[test]
fn data_beyond_content_length_is_refused() {
    let upstream = counting_upstream();
    let proxy = Web::start("h2cl", &[("h2cl_a", vec![upstream])], "", "");
    let mut c = H2Conn::connect(proxy.addr());
    let id = c.request("POST", "/u", &[("content-length", "3")], false);
    c.send(&frame(DATA, END_STREAM, id, b"abcdefghij"));
    let r = c.response(id);
    assert!(r.reset.is_some() && r.data.is_empty(), "{r:?}");
    // The connection and the upstream are fine: the next request gets its own answer.
    let id = c.request("POST", "/u", &[("content-length", "3")], false);
    c.send(&frame(DATA, END_STREAM, id, b"abc"));
    assert_eq!(c.response(id).data, b"received=3");
}

#[test]
fn resets_of_accepted_streams_end_the_connection() {
    let nginx = Nginx::start("a", 16);
    let proxy = Web::start("h2prr", &[("h2prr_a", vec![nginx.addr()])], "", "");
    let mut c = H2Conn::connect(proxy.addr());
    server_settings(&mut c);
    // Each stream is accepted and its response under way (/slow sends its head at once and
    // its body over seconds) before the client cancels it.
    let mut sent = 0;
    while c.goaway.is_none() && sent < 400 {
        let id = c.request("GET", "/slow", &[], true);
        sent += 1;
        while let Some(f) = c.read_frame() {
            if f.kind == HEADERS && f.stream == id || f.kind == GOAWAY {
                break;
            }
        }
        if c.goaway.is_none() && !c.try_send(&frame(RST_STREAM, 0, id, &0x8u32.to_be_bytes())) {
            break;
        }
    }
    if c.goaway.is_none() {
        c.until_goaway_or_close();
    }
    assert_eq!(c.goaway.map(|g| g.1), Some(0xb), "GOAWAY ENHANCE_YOUR_CALM after {sent} cancelled streams");
    assert!((100..=250).contains(&sent), "{sent} streams before the GOAWAY");
    let r = curl(&["--http2-prior-knowledge", &proxy.url("/index.html")]);
    assert_eq!(r.status, 200);
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_http2_goaways_total", &[("listener", proxy.name), ("reason", "enhance_your_calm")]), 1.0);
    assert!(m.get("sluice_http2_stream_resets_total", &[("listener", proxy.name)]) >= 100.0);
}

#[test]
fn garbage_frames_close_the_connection_cleanly() {
    let nginx = Nginx::start("a", 16);
    let proxy = Web::start("h2junk", &[("h2junk_a", vec![nginx.addr()])], "", "");
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..20 {
        let mut c = H2Conn::connect(proxy.addr());
        let mut junk = Vec::with_capacity(16 * 1024);
        for _ in 0..16 * 1024 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            junk.push(rng as u8);
        }
        if round % 2 == 1 {
            // A valid frame header in front, so the junk is read as a frame's payload.
            junk.splice(0..0, frame(HEADERS, END_HEADERS, 1, &[]).into_iter().take(9));
        }
        let _ = c.try_send(&junk);
        let code = c.until_goaway_or_close();
        assert!(!matches!(code, Some(0)), "round {round}: a graceful GOAWAY for junk");
    }
    let r = curl(&["--http2-prior-knowledge", &proxy.url("/index.html")]);
    assert_eq!((r.status, r.body.as_str()), (200, "hello from a\n"));
}

#[test]
fn http2_requests_are_retried_like_http1() {
    let nginx = Nginx::start("a", 16);
    let closed = ClosedPort::new();
    let http = "      virtual_hosts:\n        - domains: [\"*\"]\n          routes:\n\
        \x20           - { name: dead, match: { prefix: /dead }, cluster: h2fail_down, retries: { attempts: 2, on: [connect_failure] } }\n\
        \x20           - { name: flaky, match: { path: /status/503 }, cluster: h2fail_a, retries: { attempts: 2, on: [\"503\"] } }\n\
        \x20           - { name: dead2, match: { prefix: /h2dead }, cluster: h2fail_h2, retries: { attempts: 2, on: [connect_failure] } }\n\
        \x20           - { name: rest, cluster: h2fail_a }\n";
    let clusters = [
        ("h2fail_a", vec![nginx.addr()]),
        ("h2fail_down", vec![closed.addr.clone()]),
        ("h2fail_h2", vec![closed.addr.clone()]),
    ];
    let y = config("h2fail", &clusters, http, "").replace(
        &format!("name: h2fail_h2, endpoints: [\"{}\"], connect_timeout: 500ms }}", closed.addr),
        &format!("name: h2fail_h2, endpoints: [\"{}\"], connect_timeout: 500ms, http2: true }}", closed.addr),
    );
    assert!(y.contains("http2: true"), "{y}");
    let proxy = Web { proxy: Proxy::start(&y), name: "h2fail" };
    let h2 = "--http2-prior-knowledge";
    assert_eq!(curl(&[h2, &proxy.url("/dead")]).status, 503);
    let r = curl(&[h2, &proxy.url("/status/503")]);
    assert_eq!((r.status, r.body.as_str()), (503, "unavailable\n"));
    // A POST with a body is not retried.
    assert_eq!(curl(&[h2, "-d", "x=1", &proxy.url("/dead")]).status, 503);
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_http_retries_total", &[("listener", proxy.name), ("route", "dead")]), 2.0);
    assert_eq!(m.get("sluice_http_retries_total", &[("listener", proxy.name), ("route", "flaky")]), 2.0);
    assert_eq!(nginx.requests().iter().filter(|l| l.contains("GET /status/503")).count(), 3);
    assert_eq!(m.get("sluice_http_local_replies_total", &[("listener", proxy.name), ("status", "503")]), 2.0);
    // To an HTTP/2 cluster, from both kinds of clients.
    assert_eq!(curl(&[h2, &proxy.url("/h2dead")]).status, 503);
    assert_eq!(curl(&["--http1.1", &proxy.url("/h2dead")]).status, 503);
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_http_retries_total", &[("listener", proxy.name), ("route", "dead2")]), 4.0);
}

#[test]
fn idle_http2_upstream_connections_close() {
    let nghttpd = Nghttpd::start();
    let y = config(
        "h2upidle",
        &[("h2upidle_a", vec![format!("127.0.0.1:{}", nghttpd.port)])],
        "      upstream_idle_timeout: 1s\n",
        "",
    )
    .replace("connect_timeout: 500ms }", "connect_timeout: 500ms, http2: true }");
    let proxy = Web { proxy: Proxy::start(&y), name: "h2upidle" };
    let active = |p: &Web| p.metrics().get("sluice_http_upstream_connections_active", &[("cluster", "h2upidle_a")]);
    assert_eq!(curl(&["--http2-prior-knowledge", &proxy.url("/index.html")]).status, 200);
    assert_eq!(active(&proxy), 1.0);
    assert!(wait_until(Duration::from_secs(5), || active(&proxy) == 0.0), "the idle connection stayed open");
    assert_eq!(curl(&["--http1.1", &proxy.url("/index.html")]).status, 200);
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_http_upstream_requests_total", &[("cluster", "h2upidle_a"), ("connection", "new")]), 2.0);
}
