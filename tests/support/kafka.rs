//! A real Kafka-compatible broker per test: tansu 0.6.0 (`cargo install tansu --features
//! dynostore`, memory storage; PEERS.md section 4) as a child process on a free loopback
//! port; topics created with its CLI (it does not auto-create); clients from a Python venv
//! with confluent-kafka (librdkafka 2.16) and kafka-python, and kcat run against the
//! wheel's librdkafka (Debian's 2.0.2 cannot read tansu's ApiVersions v3).
//!
//! Where they are: `scripts/install-peers.sh` installs tansu into
//! `${XDG_CACHE_HOME:-$HOME/.cache}/sluice/tansu-0.6.0` (kept across checkouts: the build
//! takes 8 minutes) and the venv at `target/peers/kafka-venv`; `SLUICE_TANSU` (the binary)
//! and `SLUICE_KAFKA_VENV` point elsewhere. A missing peer fails the test with that hint.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, require, wait_until, Scratch};

const INSTALL_HINT: &str = "run scripts/install-peers.sh";

/// The tansu binary.
pub fn tansu_bin() -> PathBuf {
    let path = std::env::var_os("SLUICE_TANSU").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("/nonexistent"));
        cache.join("sluice/tansu-0.6.0/bin/tansu")
    });
    assert!(
        path.is_file(),
        "no tansu broker at {}: {INSTALL_HINT} (cargo install tansu --features dynostore, cached), \
         or point SLUICE_TANSU at a tansu 0.6 binary",
        path.display()
    );
    path
}

/// The venv with confluent-kafka and kafka-python.
pub fn kafka_venv() -> PathBuf {
    let venv = std::env::var_os("SLUICE_KAFKA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/peers/kafka-venv"));
    let ok = Command::new(venv.join("bin/python"))
        .args(["-c", "import confluent_kafka, kafka"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "no Kafka client venv at {} (PyPI confluent-kafka and kafka-python): {INSTALL_HINT}, \
         or point SLUICE_KAFKA_VENV at one",
        venv.display()
    );
    venv
}

pub struct Kafka {
    pub port: u16,
    child: Child,
    dir: Scratch,
}

impl Kafka {
    /// A broker advertising its own address.
    pub fn start() -> Kafka {
        Kafka::start_advertising("127.0.0.1")
    }

    /// A broker that tells clients `host:<its port>` in Metadata.
    pub fn start_advertising(host: &str) -> Kafka {
        let tansu = tansu_bin();
        let dir = Scratch::new("kafka");
        let port = free_port();
        let log = std::fs::File::create(dir.path("broker.log")).unwrap();
        let mut child = Command::new(&tansu)
            .args(["broker", "--listener-url", &format!("tcp://127.0.0.1:{port}")])
            .args(["--advertised-listener-url", &format!("tcp://{host}:{port}")])
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("CLUSTER_ID")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", tansu.display()));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let up = wait_until(Duration::from_secs(20), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        if !up {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.path("broker.log")).unwrap_or_default();
            panic!("tansu did not listen on {port} within 20 s:\n{log}");
        }
        Kafka { port, child, dir }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates a topic (tansu does not create topics on first use).
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(tansu_bin())
            .args(["topic", "create", name, "--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .args(["--partitions", &partitions.to_string()])
            .output()
            .expect("run tansu topic create");
        assert!(
            out.status.success(),
            "tansu topic create {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The broker's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("broker.log")).unwrap_or_default()
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a Python script (confluent_kafka, kafka and time imported; `BOOTSTRAP` = `bootstrap`)
/// and returns its stdout's lines; the script fails the test if it raises.
pub fn kafka_python(bootstrap: &str, script: &str) -> Vec<String> {
    let python = kafka_venv().join("bin/python");
    let script = format!(
        "import signal, sys, time\nsignal.alarm(120)\nimport confluent_kafka, kafka\n\
         from confluent_kafka import Producer, Consumer, KafkaError, KafkaException\n\
         from confluent_kafka.admin import AdminClient, NewTopic\nBOOTSTRAP = {bootstrap:?}\n{script}\n"
    );
    let out = Command::new(&python).args(["-c", &script]).output().expect("run the venv's python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kafka client script failed:\n{script}\n--- stdout\n{stdout}--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}

/// Runs kcat with the venv wheel's librdkafka; returns (success, stdout, stderr).
pub fn kcat(args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    use std::io::Write;
    let kcat = require("kcat", "kcat");
    let libs = kafka_venv().join("lib");
    let wheel_lib = std::fs::read_dir(&libs)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|python| std::fs::read_dir(python.ok()?.path().join("site-packages/confluent_kafka.libs")).ok())
        .and_then(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("librdkafka")))
        })
        .unwrap_or_else(|| {
            panic!("no librdkafka in the confluent-kafka wheel under {}: {INSTALL_HINT}", libs.display())
        });
    let dir = Scratch::new("kcat");
    std::os::unix::fs::symlink(&wheel_lib, dir.path("librdkafka.so.1")).unwrap();
    let mut child = Command::new(kcat)
        .args(args)
        .env("LD_LIBRARY_PATH", &dir.0)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kcat");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
