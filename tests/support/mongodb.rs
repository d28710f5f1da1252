//! A real MongoDB-wire server per test: SecantusDB (`secantusd-py`, PyPI `secantusdb`; no
//! mongod installs offline, see PEERS.md section 5) as a child process on a free loopback
//! port, in-memory, standalone by default (a one-node replica set for transactions), with
//! a SCRAM user when asked; and pymongo scripts run against it, directly or through sluice.
//!
//! Both come from the Python venv `scripts/install-peers.sh` makes at
//! `target/peers/mongo-venv` in the repository (or wherever `SLUICE_MONGO_VENV` points).

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, self_signed, wait_until, Scratch};

/// The SCRAM user of [`MongoOptions::auth`] (created in `admin` with role root).
pub const MONGO_USER: (&str, &str) = ("sluice", "s3cret");

/// The venv with `secantusd-py` and pymongo.
pub fn mongo_venv() -> PathBuf {
    let venv = std::env::var_os("SLUICE_MONGO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/peers/mongo-venv"));
    assert!(
        venv.join("bin/secantusd-py").is_file() && venv.join("bin/python").is_file(),
        "no MongoDB test venv at {}: run scripts/install-peers.sh (it makes a venv with PyPI pymongo and secantusdb)",
        venv.display()
    );
    venv
}

/// How to start the server.
#[derive(Clone, Copy, Debug, Default)]
pub struct MongoOptions {
    /// Its default one-node replica set instead of `--standalone` (transactions need it).
    pub replica_set: bool,
    /// `--auth`, with [`MONGO_USER`] created first (on disk storage, so it survives the restart).
    pub auth: bool,
}

pub struct Mongo {
    pub port: u16,
    child: Child,
    dir: Scratch,
}

impl Mongo {
    pub fn start() -> Mongo {
        Mongo::start_with(MongoOptions::default())
    }

    pub fn start_with(options: MongoOptions) -> Mongo {
        let dir = Scratch::new("mongo");
        let port = free_port();
        let storage = if options.auth { dir.path("data").display().to_string() } else { ":memory:".to_string() };
        let mut child = spawn(&dir, port, &storage, options.replica_set, false);
        if options.auth {
            let script = format!(
                "c.admin.command('createUser', {:?}, pwd={:?}, roles=['root'])\nprint('created')",
                MONGO_USER.0, MONGO_USER.1
            );
            let out = pymongo(&format!("mongodb://127.0.0.1:{port}/?directConnection=true"), &script);
            assert_eq!(out, ["created"]);
            let _ = child.kill();
            let _ = child.wait();
            child = spawn(&dir, port, &storage, options.replica_set, true);
        }
        Mongo { port, child, dir }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A self-signed certificate for `localhost` and 127.0.0.1 in the server's directory
    /// (for a TLS listener in front of it).
    pub fn certificate(&self) -> (PathBuf, PathBuf) {
        self_signed(&self.dir)
    }
}

impl Drop for Mongo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Scratch, port: u16, storage: &str, replica_set: bool, auth: bool) -> Child {
    let server = mongo_venv().join("bin/secantusd-py");
    let log = std::fs::File::create(dir.path("server.log")).unwrap();
    let mut cmd = Command::new(&server);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--storage-path", storage]);
    cmd.args(["--cache-size", "256M", "--log-level", "WARNING"]);
    if !replica_set {
        cmd.arg("--standalone");
    }
    if auth {
        cmd.arg("--auth");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", server.display()));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let up =
        wait_until(Duration::from_secs(30), || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok());
    if !up {
        let _ = child.kill();
        let log = std::fs::read_to_string(dir.path("server.log")).unwrap_or_default();
        panic!("secantusd-py did not listen on {port} within 30 s:\n{log}");
    }
    child
}

/// Runs a pymongo script with `c` = `MongoClient(uri)` (and `pymongo`, `bson`, `time`
/// imported) and returns its stdout's lines; the script fails the test if it raises.
pub fn pymongo(uri: &str, script: &str) -> Vec<String> {
    let python = mongo_venv().join("bin/python");
    let script = format!(
        "import signal, time\nsignal.alarm(90)\nimport pymongo, bson\nfrom pymongo import MongoClient\n\
         from pymongo.errors import OperationFailure\nc = MongoClient({uri:?}, serverSelectionTimeoutMS=10000)\n{script}\n"
    );
    let out = Command::new(&python).args(["-c", &script]).output().expect("run the venv's python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pymongo script failed:\n{script}\n--- stdout\n{stdout}--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}
