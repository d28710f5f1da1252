//! A real PostgreSQL 15 server per test: `initdb` into a scratch directory and `postgres`
//! as a child process on a free loopback port (about a second for both), with password
//! users for each authentication method a proxy has to pass through, optionally TLS, and
//! helpers to drive it with `psql` and `pgbench`, directly or through sluice.
//!
//! initdb and postgres refuse to run as root, so when the tests run as root the server
//! runs as the `postgres` user (created by Debian's packages) and owns the scratch
//! directory. Users and `pg_hba.conf`:
//!
//! | user         | password   | TCP auth      | notes                                  |
//! |--------------|------------|---------------|----------------------------------------|
//! | `postgres`   | —          | trust         | superuser; over the socket in `psql()` |
//! | `bench`      | `benchpw`  | scram-sha-256 | owns database `bench`                  |
//! | `scram_user` | `scrampw`  | scram-sha-256 |                                        |
//! | `md5_user`   | `md5pw`    | md5           | password stored as an MD5 hash         |
//! | anyone else  | —          | trust         |                                        |

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{free_port, require, self_signed, wait_until, Scratch};

/// The password of the `bench` user, who owns the `bench` database.
pub const PASSWORD: &str = "benchpw";
/// A user that logs in over TCP with SCRAM-SHA-256.
pub const SCRAM_USER: (&str, &str) = ("scram_user", "scrampw");
/// A user that logs in over TCP with MD5.
pub const MD5_USER: (&str, &str) = ("md5_user", "md5pw");

/// Where Debian installs the server binaries (initdb, postgres, pg_ctl).
const SERVER_BIN: &str = "/usr/lib/postgresql/15/bin";

const PG_HBA: &str = "\
local all all trust
host all scram_user 127.0.0.1/32 scram-sha-256
host all md5_user 127.0.0.1/32 md5
host all bench 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
";

/// How to start the server.
#[derive(Clone, Copy, Debug, Default)]
pub struct PgOptions {
    /// `ssl=on` with a self-signed certificate for `localhost` and 127.0.0.1.
    pub tls: bool,
    /// TCP logins only over TLS (`hostssl` lines in `pg_hba.conf`); implies `tls`.
    pub tls_only: bool,
}

pub struct Postgres {
    pub port: u16,
    child: Child,
    dir: Scratch,
}

impl Postgres {
    pub fn start() -> Postgres {
        Postgres::start_with(PgOptions::default())
    }

    pub fn start_with_tls() -> Postgres {
        Postgres::start_with(PgOptions { tls: true, ..PgOptions::default() })
    }

    pub fn start_with(options: PgOptions) -> Postgres {
        let initdb = server_bin("initdb");
        let postgres = server_bin("postgres");
        require("psql", "postgresql-client");
        let dir = Scratch::new("postgres");
        let owner = server_user();
        // The postgres user has to reach the scratch directory and own it: initdb creates
        // the data directory inside it, and the server its socket.
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir.0, Some(uid), Some(gid)).expect("chown the scratch directory");
        }
        set_mode(&dir.0, 0o755);
        let data = dir.path("data");
        let out = as_server_user(Command::new(initdb), owner)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ])
            .current_dir(&dir.0)
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        let tls = options.tls || options.tls_only;
        let hba = if options.tls_only { PG_HBA.replace("\nhost ", "\nhostssl ") } else { PG_HBA.to_string() };
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        if tls {
            let (cert, key) = self_signed(&dir);
            for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
                let path = data.join(to);
                std::fs::rename(from, &path).unwrap();
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
                }
                set_mode(&path, 0o600);
            }
        }

        let port = free_port();
        let log = std::fs::File::create(dir.path("postgres.log")).unwrap();
        let child = as_server_user(Command::new(postgres), owner)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir.0)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "synchronous_commit=off", "-c", "max_connections=50", "-c", "shared_buffers=32MB"])
            .args(["-c", &format!("ssl={}", if tls { "on" } else { "off" })])
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let db = Postgres { port, child, dir };
        assert!(
            wait_until(Duration::from_secs(20), || db.psql_db("postgres", &["-c", "SELECT 1"]).ok),
            "postgres did not come up on port {port}: {}",
            db.log()
        );
        let setup = [
            format!("CREATE USER bench PASSWORD '{PASSWORD}'"),
            "CREATE DATABASE bench OWNER bench".into(),
            format!("CREATE USER {} PASSWORD '{}'", SCRAM_USER.0, SCRAM_USER.1),
            // The password is hashed when it is set, with the session's password_encryption.
            "SET password_encryption = 'md5'".into(),
            format!("CREATE USER {} PASSWORD '{}'", MD5_USER.0, MD5_USER.1),
        ];
        let mut args = Vec::new();
        for sql in &setup {
            args.extend(["-c", sql.as_str()]);
        }
        let out = db.psql_db("postgres", &args);
        assert!(out.ok && out.stderr.is_empty(), "creating users: {out:?}");
        db
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's certificate (self-signed, so also the root to verify it with), when
    /// it was started with TLS.
    pub fn certificate(&self) -> PathBuf {
        self.dir.path("data/server.crt")
    }

    /// The server's own log (stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("postgres.log")).unwrap_or_default()
    }

    /// Runs `psql` as the superuser over the server's Unix socket (bypassing sluice) on
    /// database `bench`.
    pub fn psql(&self, args: &[&str]) -> PsqlOutput {
        self.psql_db("bench", args)
    }

    /// The single value a superuser query returns (unaligned, tuples only); panics on
    /// an error.
    pub fn query(&self, sql: &str) -> String {
        let out = self.psql(&["-c", sql]);
        assert!(out.ok && out.stderr.is_empty(), "{sql}: {out:?}");
        out.stdout.trim().to_string()
    }

    fn psql_db(&self, db: &str, args: &[&str]) -> PsqlOutput {
        let conninfo =
            format!("host={} port={} user=postgres dbname={db} connect_timeout=10", self.dir.0.display(), self.port);
        run_psql(&conninfo, None, args, None)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT is the postmaster's immediate shutdown: it stops every backend too.
        let pid = self.child.id() as libc::pid_t;
        unsafe {
            libc::kill(pid, libc::SIGQUIT);
        }
        let stopped = wait_until(Duration::from_secs(5), || matches!(self.child.try_wait(), Ok(Some(_))));
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What `psql` printed and whether it exited 0.
#[derive(Debug)]
pub struct PsqlOutput {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl PsqlOutput {
    /// stdout's lines, trimmed.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().map(str::trim).collect()
    }
}

/// Who logs in, and how, for [`psql_login`].
#[derive(Clone, Copy, Debug)]
pub struct Login<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub db: &'a str,
    /// libpq's `sslmode`: `disable` unless a test is about TLS (psql's default, `prefer`,
    /// would make every session ask for TLS first).
    pub sslmode: &'a str,
}

impl Login<'static> {
    /// The `bench` user on database `bench`, without TLS.
    pub const BENCH: Login<'static> = Login { user: "bench", password: PASSWORD, db: "bench", sslmode: "disable" };
}

/// Runs `psql` over TCP to `addr` (sluice or the server itself) as `user` with `password`
/// on `db`, without TLS, in unaligned tuples-only mode; statements after an error still run.
pub fn psql_at(addr: SocketAddr, user: &str, password: &str, db: &str, args: &[&str]) -> PsqlOutput {
    psql_login(addr, Login { user, password, db, sslmode: "disable" }, args, None)
}

/// Runs `psql` over TCP to `addr` with `login`, feeding `stdin` when given (psql then
/// reads its statements, and `\copy … from stdin` data, from there).
pub fn psql_login(addr: SocketAddr, login: Login<'_>, args: &[&str], stdin: Option<&str>) -> PsqlOutput {
    let conninfo = format!(
        "host={} port={} user={} dbname={} sslmode={} connect_timeout=10",
        addr.ip(),
        addr.port(),
        login.user,
        login.db,
        login.sslmode
    );
    run_psql(&conninfo, Some(login.password), args, stdin)
}

fn run_psql(conninfo: &str, password: Option<&str>, args: &[&str], stdin: Option<&str>) -> PsqlOutput {
    let mut command = Command::new("psql");
    command
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=0", "-d", conninfo])
        .args(args)
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGPASSWORD")
        .env_remove("PGSSLMODE")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let mut child = command.spawn().expect("run psql");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        // psql may stop reading early (a refused login); the exit status says what happened.
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().expect("wait for psql");
    PsqlOutput {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `pgbench` as `bench` on database `bench` over TCP to `addr` (sluice or the server
/// itself), without TLS; `Ok(stdout)` when it exited 0, else `Err(stdout + stderr)`.
pub fn pgbench_at(addr: SocketAddr, args: &[&str]) -> Result<String, String> {
    require("pgbench", "postgresql");
    let out = Command::new("pgbench")
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string(), "-U", "bench"])
        .args(args)
        .arg("bench")
        .env("PGPASSWORD", PASSWORD)
        .env("PGSSLMODE", "disable")
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("run pgbench");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(text(&out))
    }
}

/// A number pgbench reports after `field`, e.g. `number of transactions actually processed:`.
pub fn pgbench_field(report: &str, field: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(field)?.split_whitespace().next()?.split('/').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field:?} in pgbench's report:\n{report}"))
}

/// A PostgreSQL server binary, from Debian's versioned directory.
pub fn server_bin(name: &str) -> PathBuf {
    let path = Path::new(SERVER_BIN).join(name);
    assert!(
        path.is_file(),
        "{} not found: install it with `apt-get install postgresql` (scripts/install-peers.sh does this when run as root)",
        path.display()
    );
    path
}

/// The uid and gid the server runs as: the `postgres` user when this process is root
/// (initdb and postgres refuse root), else nobody in particular (this process's own).
fn server_user() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = passwd.lines().find_map(|l| l.strip_prefix("postgres:"));
    let fields: Vec<&str> = entry.map(|e| e.split(':').collect()).unwrap_or_default();
    match (fields.get(1).and_then(|u| u.parse().ok()), fields.get(2).and_then(|g| g.parse().ok())) {
        (Some(uid), Some(gid)) => Some((uid, gid)),
        _ => panic!("no postgres user in /etc/passwd: install the server with `apt-get install postgresql`"),
    }
}

fn as_server_user(mut command: Command, owner: Option<(u32, u32)>) -> Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid).env("HOME", "/var/lib/postgresql").env("USER", "postgres");
    }
    command
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
