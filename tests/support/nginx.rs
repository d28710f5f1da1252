//! A real nginx as an HTTP/1.1 upstream (PEERS.md §6): unprivileged, everything under a
//! scratch directory, `daemon off;`, on a free loopback port; stopped on drop.
//!
//! Locations: static files under `/` (`index.html`, `big.bin` of the size asked for),
//! `/echo` (method and URI), `/headers` (selected request fields echoed back),
//! `/status/503` (`return 503`), `/slow` (a file sent at `limit_rate` 20 KiB/s), `/upload`
//! (a POST body read and answered 200 with its length; nginx proxies it to a second
//! internal server so the body is really read), `/chunked` (a chunked response: SSI-free
//! `return` with `chunked_transfer_encoding` via a proxied internal upstream).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, require, wait_until, Scratch};

pub struct Nginx {
    pub port: u16,
    /// Tag returned in the `X-Upstream` response field, to tell servers apart.
    pub name: String,
    child: Child,
    dir: Scratch,
}

impl Nginx {
    /// Starts nginx named `name`, with a `big.bin` of `big_bytes` bytes.
    pub fn start(name: &str, big_bytes: u64) -> Nginx {
        let bin = require("nginx", "nginx");
        let dir = Scratch::new("nginx");
        let port = free_port();
        let inner = free_port();
        let html = dir.path("html");
        std::fs::create_dir_all(&html).unwrap();
        for sub in ["tmp_body", "tmp_proxy", "tmp_fcgi", "tmp_uwsgi", "tmp_scgi", "logs"] {
            std::fs::create_dir_all(dir.path(sub)).unwrap();
        }
        std::fs::write(html.join("index.html"), format!("hello from {name}\n")).unwrap();
        let big = std::fs::File::create(html.join("big.bin")).unwrap();
        big.set_len(big_bytes).unwrap();
        std::fs::write(html.join("slow.bin"), vec![b's'; 64 * 1024]).unwrap();
        let root = dir.0.display().to_string();
        let conf = format!(
            r#"worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format up '$remote_addr $connection $connection_requests "$request" $status $http_x_forwarded_for';
  access_log {root}/logs/access.log up;
  client_body_temp_path {root}/tmp_body; proxy_temp_path {root}/tmp_proxy;
  fastcgi_temp_path {root}/tmp_fcgi; uwsgi_temp_path {root}/tmp_uwsgi; scgi_temp_path {root}/tmp_scgi;
  keepalive_requests 100000;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
    root {root}/html;
    add_header X-Upstream {name} always;
    location = /echo {{ return 200 "method=$request_method uri=$request_uri host=$host xff=$http_x_forwarded_for xfp=$http_x_forwarded_proto env=$http_x_env secret=$http_x_secret\n"; }}
    location = /status/503 {{ return 503 "unavailable\n"; }}
    location = /status/502 {{ return 502 "bad\n"; }}
    location = /slow {{ limit_rate 20k; alias {root}/html/slow.bin; }}
    location = /upload {{
      proxy_pass http://127.0.0.1:{inner}/len;
      proxy_request_buffering off;
    }}
    location = /chunked {{ proxy_pass http://127.0.0.1:{inner}/chunked; proxy_http_version 1.1; proxy_buffering off; }}
    location /api/ {{ return 200 "api {name} uri=$request_uri\n"; }}
  }}
  server {{
    listen 127.0.0.1:{inner};
    location = /len {{ return 200 "received=$content_length\n"; }}
    location = /chunked {{
      default_type text/plain;
      return 200 "chunked body from {name}\n";
    }}
  }}
}}
"#
        );
        let conf_path = dir.path("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path("logs/error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let nginx = Nginx { port, name: name.to_string(), child, dir };
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "nginx did not come up on port {port}: {}",
            std::fs::read_to_string(nginx.dir.path("logs/error.log")).unwrap_or_default()
        );
        nginx
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path("logs/access.log")).unwrap_or_default()
    }

    /// Lines of the access log for requests to the public server (not the internal one).
    pub fn requests(&self) -> Vec<String> {
        self.access_log()
            .lines()
            .filter(|l| !l.contains("\"GET /len") && !l.contains("/len "))
            .map(String::from)
            .collect()
    }

    pub fn html(&self) -> PathBuf {
        self.dir.path("html")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
