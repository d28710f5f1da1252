//! The `sluice` binary: --check, --version, bad configurations, and the SIGTERM drain.

mod support;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

fn write_config(dir: &Scratch, yaml: &str) -> std::path::PathBuf {
    let path = dir.path("sluice.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn check_accepts_the_bundled_config() {
    let bundled = concat!(env!("CARGO_MANIFEST_DIR"), "/sluice.yaml");
    let out = Command::new(SLUICE).args(["--config", bundled, "--check"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "config ok\n");
    assert!(out.status.success());
}

#[test]
fn check_names_every_error_by_path() {
    let dir = Scratch::new("check");
    let path = write_config(
        &dir,
        r#"
clusters:
  - name: cache
    endpoints: ["127.0.0.1:6379"]
listeners:
  - name: a
    address: 127.0.0.1:6380
    protocol: tcp
    cluster: cache
  - name: b
    address: 127.0.0.1:6381
    protocol: tcp
    cluster: cach
    idle_timeout: 5 minutes
"#,
    );
    let out = Command::new(SLUICE).arg("-c").arg(&path).arg("--check").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(r#"listeners[1].cluster: unknown cluster "cach""#), "{stderr}");
    assert!(stderr.contains("listeners[1].idle_timeout: expected a duration"), "{stderr}");
    assert!(out.stdout.is_empty());

    // Running (not just checking) a bad config never starts anything.
    let out = Command::new(SLUICE).arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown cluster"));
}

#[test]
fn missing_config_file_and_version() {
    let out = Command::new(SLUICE).args(["--config", "/nonexistent/sluice.yaml", "--check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/sluice.yaml"));
    let out = Command::new(SLUICE).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("sluice {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_port_in_use_fails_the_start_with_the_listener_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = Scratch::new("inuse");
    let yaml = format!(
        "admin: {{ address: 127.0.0.1:0 }}\nclusters: [{{name: c, endpoints: ['127.0.0.1:1']}}]\nlisteners: [{{name: busy, address: '{}', protocol: tcp, cluster: c}}]\n",
        taken.local_addr().unwrap()
    );
    let path = write_config(&dir, &yaml);
    let out = Command::new(SLUICE).arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listeners[0] (busy): cannot bind tcp"), "{stderr}");
}

struct Running {
    child: Child,
    port: u16,
    admin: std::net::SocketAddr,
    _dir: Scratch,
}

impl Running {
    fn start(redis: &Redis, drain_timeout: &str) -> Running {
        let dir = Scratch::new("sigterm");
        let port = free_port();
        let admin_port = free_port();
        let yaml = format!(
            "admin: {{ address: 127.0.0.1:{admin_port} }}\ndrain_timeout: {drain_timeout}\n\
             clusters: [{{name: c, endpoints: ['{}']}}]\n\
             listeners: [{{name: l, address: '127.0.0.1:{port}', protocol: tcp, cluster: c}}]\n",
            redis.addr()
        );
        let path = write_config(&dir, &yaml);
        let child = Command::new(SLUICE)
            .arg("--config")
            .arg(&path)
            .args(["--workers", "2", "--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let admin = std::net::SocketAddr::from(([127, 0, 0, 1], admin_port));
        assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(admin).is_ok()), "sluice did not start");
        Running { child, port, admin, _dir: dir }
    }

    fn sigterm(&self) {
        let pid = i32::try_from(self.child.id()).unwrap();
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    }

    /// Waits for the exit; returns its code and how long it took.
    fn wait_exit(&mut self, limit: Duration) -> (Option<i32>, Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        panic!("sluice did not exit within {limit:?}");
    }
}

#[test]
fn sigterm_lets_open_connections_finish_then_exits_zero() {
    let redis = Redis::start();
    let mut sluice = Running::start(&redis, "10s");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], sluice.port));
    let mut open = TcpStream::connect(addr).unwrap();
    assert_eq!(resp_roundtrip(&mut open, &["SET", "k", "v"]).unwrap(), "+OK");
    sluice.sigterm();
    assert!(wait_until(Duration::from_secs(5), || http_get(sluice.admin, "/ready").0 == 503));
    // No new connections; the open one keeps working.
    assert!(wait_until(Duration::from_secs(5), || TcpStream::connect(addr).is_err()), "still accepting");
    assert_eq!(resp_roundtrip(&mut open, &["GET", "k"]).unwrap(), "$1\r\nv");
    assert!(sluice.child.try_wait().unwrap().is_none(), "exited with a connection open");
    drop(open);
    let (code, took) = sluice.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5));
}

#[test]
fn sigterm_closes_what_is_left_after_the_drain_timeout() {
    let redis = Redis::start();
    let mut sluice = Running::start(&redis, "500ms");
    let mut open = TcpStream::connect(("127.0.0.1", sluice.port)).unwrap();
    assert_eq!(resp_roundtrip(&mut open, &["PING"]).unwrap(), "+PONG");
    sluice.sigterm();
    let (code, took) = sluice.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0));
    assert!(took >= Duration::from_millis(400), "exited before the drain timeout: {took:?}");
    let (_, eof) = read_to_eof(&mut open, Duration::from_secs(2));
    assert!(eof, "the held connection was not closed");
}
