//! A 1 GiB download and a 1 GiB chunked upload through the `http` listener, with curl and
//! nginx, in bounded memory: the proxy runs in this process, and this test binary runs
//! nothing else, so this process's resident set is the proxy's.

mod support;

use std::io::Write;
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
fn one_gib_download_and_upload_in_bounded_memory() {
    const GIB: u64 = 1 << 30;
    let nginx = Nginx::start("mem", GIB);
    let proxy = Proxy::start(&one_listener("mem", "http", &[nginx.addr()], ""));
    let url = |path: &str| format!("http://{}{path}", proxy.addr("mem"));
    let warm = Command::new("curl").args(["-sS", &url("/index.html")]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&warm.stdout), "hello from mem\n");
    let before = rss_kib();

    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", &url("/big.bin")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("200 {GIB}"));
    let after_download = rss_kib();

    // 1 GiB from a pipe: curl streams it chunked (`-T -`); nginx reads it all.
    let mut child = Command::new("curl")
        .args(["-sS", "-X", "POST", "-T", "-", &url("/upload")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..1024 {
        stdin.write_all(&chunk).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // nginx de-chunks the body towards its internal server, which reports its length.
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("received={GIB}\n"));
    let after_upload = rss_kib();
    eprintln!("VmRSS: {before} KiB before, {after_download} KiB after 1 GiB down, {after_upload} KiB after 1 GiB up");
    let grown = after_upload.saturating_sub(before);
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB over 1 GiB each way");
    let m = proxy.metrics();
    assert!(m.get("sluice_downstream_bytes_total", &[("listener", "mem"), ("direction", "tx")]) > GIB as f64);
    assert!(m.get("sluice_downstream_bytes_total", &[("listener", "mem"), ("direction", "rx")]) > GIB as f64);
}
