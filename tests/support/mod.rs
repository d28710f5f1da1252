//! Test harness: starts real peers (redis-server, mariadbd, postgres, a UDP echo peer,
//! plain TCP peers) on free loopback ports, starts sluice in-process or as its binary, and
//! reads its admin API.
//! A missing peer binary fails the test with an install hint; it is never skipped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::{Config, Server, ServerHandle};

mod kafka;
#[allow(unused_imports)]
pub use kafka::{kafka_python, kafka_venv, kcat, tansu_bin, Kafka};
mod mariadb;
pub mod nginx;
#[allow(unused_imports)]
pub use mariadb::{mariadb_cli, Mariadb, PASSWORD as MARIADB_PASSWORD};
mod mongodb;
#[allow(unused_imports)]
pub use mongodb::{mongo_venv, pymongo, Mongo, MongoOptions, MONGO_USER};
mod postgres;
#[allow(unused_imports)]
pub use postgres::{
    pgbench_at, pgbench_field, psql_at, psql_login, Login, PgOptions, Postgres, PsqlOutput, MD5_USER,
    PASSWORD as POSTGRES_PASSWORD, SCRAM_USER,
};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A loopback port that refuses connections for as long as this lives: bound, so no other
/// process can take it (a port from [`free_port`] may be taken by a server another test
/// starts meanwhile), but not listening.
pub struct ClosedPort {
    _socket: socket2::Socket,
    pub addr: String,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).unwrap();
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
        ClosedPort { _socket: socket, addr: format!("127.0.0.1:{port}") }
    }
}

/// The path of a peer binary, or a failure that says how to install it.
pub fn require(binary: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let path = Path::new(dir).join(binary);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "{binary} not found: install it with `apt-get install {package}` (scripts/test.sh does this when run as root)"
    );
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sluice-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for `localhost` and its key, made by openssl in `dir`.
pub fn self_signed(dir: &Scratch) -> (PathBuf, PathBuf) {
    require("openssl", "openssl");
    let (cert, key) = (dir.path("cert.pem"), dir.path("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1"])
        // Verifiers match names against the subject alternative names only, and take a
        // CA certificate for a leaf as an error.
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// Polls `check` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    check()
}

/// A real redis-server on a free loopback port, stopped on drop.
pub struct Redis {
    pub port: u16,
    child: Child,
    /// The certificate of a server that takes TLS connections only.
    tls_cert: Option<PathBuf>,
    /// The password of a server that requires one (`requirepass`).
    password: Option<String>,
    _dir: Scratch,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(false, None, &[])
    }

    /// A server that takes TLS connections only, with a self-signed certificate for
    /// 127.0.0.1 ([`Redis::certificate`]).
    pub fn start_tls_only() -> Redis {
        Redis::start_with(true, None, &[])
    }

    /// A server that wants `AUTH password` (`requirepass`) before any command.
    pub fn start_requiring_password(password: &str) -> Redis {
        Redis::start_with(false, Some(password), &[])
    }

    /// A Redis Cluster node (no slots yet: `redis-cli --cluster create` joins nodes).
    pub fn start_cluster_node() -> Redis {
        // Replicas sync at once (Redis 7 waits 5 s for more replicas before a diskless sync).
        let args =
            ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--repl-diskless-sync-delay", "0"];
        Redis::start_with(false, None, &args)
    }

    /// A plain server on `port` (one that a stopped server held, to bring it back).
    pub fn start_on(port: u16) -> Redis {
        Redis::start_at(port, false, None, &[])
    }

    fn start_with(tls: bool, password: Option<&str>, extra: &[&str]) -> Redis {
        Redis::start_at(free_port(), tls, password, extra)
    }

    fn start_at(port: u16, tls: bool, password: Option<&str>, extra: &[&str]) -> Redis {
        let bin = require("redis-server", "redis-server");
        require("redis-cli", "redis-tools");
        let dir = Scratch::new("redis");
        let mut command = Command::new(bin);
        command.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxclients", "4000", "--dir"]);
        command.arg(&dir.0);
        let tls_cert = if tls {
            let (cert, key) = self_signed(&dir);
            command.args(["--port", "0", "--tls-port", &port.to_string(), "--tls-auth-clients", "no"]);
            command.arg("--tls-cert-file").arg(&cert).arg("--tls-key-file").arg(&key);
            Some(cert)
        } else {
            command.args(["--port", &port.to_string()]);
            None
        };
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        command.args(extra);
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start redis-server");
        let redis = Redis { port, child, tls_cert, password: password.map(str::to_owned), _dir: dir };
        assert!(
            wait_until(Duration::from_secs(10), || redis.cli(&["PING"]).map(|o| o == "PONG").unwrap_or(false)),
            "redis-server did not come up on port {port}"
        );
        redis
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs redis-cli against redis directly.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        if let Some(password) = &self.password {
            return redis_cli(self.port, &[&["-a", password, "--no-auth-warning"], args].concat());
        }
        match &self.tls_cert {
            Some(cert) => {
                let cert = cert.to_str().unwrap();
                redis_cli(self.port, &[&["--tls", "--cacert", cert], args].concat())
            }
            None => redis_cli(self.port, args),
        }
    }

    /// The self-signed certificate of a TLS-only server.
    pub fn certificate(&self) -> &Path {
        self.tls_cert.as_deref().expect("a TLS server")
    }

    /// A field of `INFO`, e.g. `total_connections_received`.
    pub fn info_field(&self, field: &str) -> u64 {
        let info = self.cli(&["INFO", "all"]).unwrap_or_default();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in INFO"))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs redis-cli against `port`; `None` if it failed.
pub fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Sends one RESP command on a raw connection and reads the reply line.
pub fn resp_roundtrip(stream: &mut TcpStream, command: &[&str]) -> std::io::Result<String> {
    let mut req = format!("*{}\r\n", command.len());
    for arg in command {
        req.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(req.as_bytes())?;
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf)?;
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
    }
    Ok(String::from_utf8_lossy(&buf[..n]).trim_end().to_string())
}

/// A UDP echo peer: every datagram goes back to its sender, prefixed with `echo:`.
pub struct UdpEcho {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl UdpEcho {
    pub fn start() -> UdpEcho {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let mut reply = b"echo:".to_vec();
                    reply.extend_from_slice(&buf[..n]);
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        UdpEcho { addr, stop }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sluice running in this process, on ports chosen by the OS.
pub struct Proxy {
    pub handle: Option<ServerHandle>,
}

impl Proxy {
    /// Starts sluice on `yaml` with two workers; listeners should use port 0 and the
    /// admin address `127.0.0.1:0`.
    pub fn start(yaml: &str) -> Proxy {
        let config = Config::from_yaml(yaml).unwrap_or_else(|e| panic!("test config invalid:\n{e}\n{yaml}"));
        let handle = Server::start(config, 2).expect("start sluice");
        Proxy { handle: Some(handle) }
    }

    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().unwrap()
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        self.handle().listener_addr(listener).unwrap_or_else(|| panic!("no listener {listener}"))
    }

    pub fn admin(&self, path: &str) -> (u16, String) {
        http_get(self.handle().admin_addr(), path)
    }

    pub fn metrics(&self) -> Metrics {
        let (status, body) = self.admin("/metrics");
        assert_eq!(status, 200);
        Metrics(body)
    }

    /// Drains and waits until the server has stopped.
    pub fn drain_and_wait(mut self) {
        let handle = self.handle.take().unwrap();
        handle.drain();
        handle.wait();
    }
}

/// A Prometheus text exposition.
pub struct Metrics(pub String);

impl Metrics {
    /// The value of the sample `name` whose labels include all of `labels` (0 if none).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(series, _)| {
                let (n, rest) = series.split_once('{').unwrap_or((series, ""));
                n == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| v.parse::<f64>().unwrap())
            .sum()
    }
}

/// A minimal HTTP/1.1 GET for the admin API.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, "GET", path)
}

pub fn http_request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to admin");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: admin\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A YAML config with one cluster (`endpoints`) and one listener named `name`; `extra`
/// is appended to the listener's keys (indented by the caller's text).
pub fn one_listener(name: &str, protocol: &str, endpoints: &[String], extra: &str) -> String {
    let endpoints: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         drain_timeout: 2s\n\
         clusters:\n  - name: {name}_cluster\n    endpoints: [{}]\n    connect_timeout: 500ms\n\
         listeners:\n  - name: {name}\n    address: 127.0.0.1:0\n    protocol: {protocol}\n    cluster: {name}_cluster\n{extra}",
        endpoints.join(", ")
    )
}

/// Reads until EOF or `timeout`; returns the bytes and whether EOF was seen.
pub fn read_to_eof(stream: &mut TcpStream, timeout: Duration) -> (Vec<u8>, bool) {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

/// Raises this process's open-file limit (tests holding thousands of sockets).
/// Raises this process's soft open-file limit towards `want` (its children inherit it) and
/// returns the limit now in force: the hard limit caps it, as tests do not run with
/// CAP_SYS_RESOURCE.
pub fn raise_nofile(want: u64) -> u64 {
    sluice::server::raise_open_file_limit(want)
}
