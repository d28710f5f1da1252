//! A 512 MiB download and a 512 MiB upload over HTTP/2 (curl --http2-prior-knowledge)
//! through the `http` listener to HTTP/1.1 nginx, then a 512 MiB chunked response from a
//! streaming HTTP/1.1 upstream, in bounded memory: the request body is sent upstream
//! chunked as DATA frames arrive, and responses are relayed as the client's window allows.
//! The proxy runs in this process (with the small streaming upstream), and this test binary
//! runs nothing else, so this process's resident set is the proxy's.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use support::nginx::Nginx;
use support::*;

/// This process's resident set, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn half_gib_each_way_over_http2_in_bounded_memory() {
    const SIZE: u64 = 512 << 20;
    let nginx = Nginx::start("mem2", SIZE);
    let proxy = Proxy::start(&one_listener("mem2", "http", &[nginx.addr()], ""));
    let url = |path: &str| format!("http://{}{path}", proxy.addr("mem2"));
    let h2 = "--http2-prior-knowledge";
    let warm = Command::new("curl").args(["-sS", h2, &url("/index.html")]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&warm.stdout), "hello from mem2\n");
    let before = rss_kib();

    let out = Command::new("curl")
        .args(["-sS", h2, "-o", "/dev/null", "-w", "%{http_code} %{http_version} %{size_download}", &url("/big.bin")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("200 2 {SIZE}"));
    let after_download = rss_kib();

    // From a pipe: no content-length, so sluice sends it upstream chunked; nginx reads it
    // all before its internal server reports the length.
    let mut child = Command::new("curl")
        .args(["-sS", h2, "-X", "POST", "-T", "-", &url("/upload")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..(SIZE >> 20) {
        stdin.write_all(&chunk).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("received={SIZE}\n"));
    let after_upload = rss_kib();
    eprintln!(
        "VmRSS: {before} KiB before, {after_download} KiB after 512 MiB down, {after_upload} KiB after 512 MiB up"
    );
    let grown = after_upload.saturating_sub(before);
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB over 512 MiB each way");
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_http2_streams_total", &[("listener", "mem2")]), 3.0);

    // A chunked response of SIZE bytes made on the fly (one 64 KiB chunk, repeated).
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        let mut head = [0u8; 4096];
        let _ = s.read(&mut head);
        let mut chunk = b"10000\r\n".to_vec();
        chunk.extend(vec![b'c'; 0x10000]);
        chunk.extend_from_slice(b"\r\n");
        s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        for _ in 0..(SIZE / 0x10000) {
            s.write_all(&chunk).unwrap();
        }
        s.write_all(b"0\r\n\r\n").unwrap();
    });
    let streaming = Proxy::start(&one_listener("mem2c", "http", &[upstream_addr], ""));
    let before_chunked = rss_kib();
    let out = Command::new("curl")
        .args(["-sS", h2, "-o", "/dev/null", "-w", "%{http_code} %{size_download}"])
        .arg(format!("http://{}/stream", streaming.addr("mem2c")))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("200 {SIZE}"));
    let after_chunked = rss_kib();
    eprintln!("VmRSS: {before_chunked} KiB before, {after_chunked} KiB after a 512 MiB chunked response");
    let grown = after_chunked.saturating_sub(before_chunked);
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB over a 512 MiB chunked response");
}
