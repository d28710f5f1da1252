//! A real MariaDB server per test: `mariadb-install-db` into a scratch directory, `mariadbd`
//! on a free loopback port (about a second for both), a `bench` user with a password for
//! TCP clients, and helpers to drive it with the `mariadb` CLI, directly or through sluice.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use super::{free_port, require, self_signed, wait_until, Scratch};

/// The password of the `bench` user every test server has.
pub const PASSWORD: &str = "benchpw";

pub struct Mariadb {
    pub port: u16,
    child: Child,
    /// The certificate of a server started with TLS.
    tls_cert: Option<PathBuf>,
    dir: Scratch,
}

impl Mariadb {
    pub fn start() -> Mariadb {
        Mariadb::start_with(false)
    }

    /// A server with TLS (a self-signed certificate for 127.0.0.1, [`Mariadb::certificate`])
    /// whose `bench` user must log in over it (`REQUIRE SSL`).
    pub fn start_tls_only() -> Mariadb {
        Mariadb::start_with(true)
    }

    fn start_with(tls: bool) -> Mariadb {
        let server = require("mariadbd", "mariadb-server");
        let install = require("mariadb-install-db", "mariadb-server");
        require("mariadb", "mariadb-client");
        let dir = Scratch::new("mariadb");
        let data = dir.path("data");
        // A small redo log keeps each scratch server at a few MiB instead of ~100.
        let small_log = "--innodb-log-file-size=8M";
        // A starting server deletes every `#sql*` file in its tmpdir, which in a shared
        // /tmp includes the temporary tables of an install running next to it.
        let tmpdir = dir.path("tmp");
        std::fs::create_dir_all(&tmpdir).expect("create the server's tmpdir");
        let tmpdir = format!("--tmpdir={}", tmpdir.display());
        // Concurrent mariadb-install-db runs fail ("Installation of system tables
        // failed"), so the tests of one binary take turns at it; the servers then run side
        // by side.
        static INSTALLING: Mutex<()> = Mutex::new(());
        let turn = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
        let output = Command::new(install)
            .args(["--no-defaults", "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"])
            .arg(small_log)
            .arg(&tmpdir)
            .arg(format!("--datadir={}", data.display()))
            .output()
            .expect("run mariadb-install-db");
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        drop(turn);
        let port = free_port();
        let mut command = Command::new(server);
        // --no-defaults has to come first.
        command.args(["--no-defaults", "--user=root", "--bind-address=127.0.0.1", "--skip-log-bin", small_log]);
        command.arg(&tmpdir);
        let tls_cert = tls.then(|| {
            let (cert, key) = self_signed(&dir);
            command.arg(format!("--ssl-cert={}", cert.display())).arg(format!("--ssl-key={}", key.display()));
            cert
        });
        let child = command
            .arg(format!("--port={port}"))
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.path("mysqld.pid").display()))
            .arg(format!("--log-error={}", dir.path("error.log").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let db = Mariadb { port, child, tls_cert, dir };
        assert!(
            wait_until(Duration::from_secs(20), || db.root(&["-e", "SELECT 1"]).is_some()),
            "mariadbd did not come up on port {port}: {}",
            std::fs::read_to_string(db.dir.path("error.log")).unwrap_or_default()
        );
        let require = if tls { " REQUIRE SSL" } else { "" };
        let setup = format!(
            "CREATE USER 'bench'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'{require}; \
             GRANT ALL ON *.* TO 'bench'@'127.0.0.1'; CREATE DATABASE sbtest;"
        );
        db.root(&["-e", &setup]).expect("create the bench user");
        db
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The self-signed certificate of a server started with TLS.
    pub fn certificate(&self) -> &std::path::Path {
        self.tls_cert.as_deref().expect("a TLS server")
    }

    /// Runs the `mariadb` CLI as root over the server's socket (bypassing sluice), in
    /// batch mode; `None` if it failed.
    pub fn root(&self, args: &[&str]) -> Option<String> {
        let socket = format!("--socket={}", self.dir.path("mysqld.sock").display());
        run_cli(&["--no-defaults", "-uroot", "--batch", "--skip-column-names", &socket], args).ok()
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `mariadb` CLI as `bench` over TCP to `addr` (sluice or the server itself), in
/// batch mode without column names. `Err` carries stderr, where the CLI prints `ERROR …`.
pub fn mariadb_cli(addr: SocketAddr, args: &[&str]) -> Result<String, String> {
    let host = format!("--host={}", addr.ip());
    let port = format!("--port={}", addr.port());
    let password = format!("--password={PASSWORD}");
    run_cli(
        &["--no-defaults", &host, &port, "--protocol=TCP", "-ubench", &password, "--batch", "--skip-column-names"],
        args,
    )
}

fn run_cli(base: &[&str], args: &[&str]) -> Result<String, String> {
    let out = Command::new("mariadb").args(base).args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
