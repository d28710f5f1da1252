//! Listener TLS settings against real TLS clients (openssl s_client, redis-cli --tls): the
//! certificate chosen by SNI, ALPN, the minimum version, client certificates (mTLS),
//! certificates reloaded when their files change, and the TLS metrics.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

/// A self-signed certificate for `name` in `dir` (files `<stem>.crt` and `<stem>.key`).
fn certificate_for(dir: &Scratch, stem: &str, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.path(&format!("{stem}.crt")), dir.path(&format!("{stem}.key")));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        &format!("/CN={name}"),
        "-addext",
        &format!("subjectAltName=DNS:{name}"),
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-keyout",
        path(&key),
        "-out",
        path(&cert),
    ]);
    (cert, key)
}

/// A CA and a client certificate it signed: (ca, client cert, client key).
fn client_ca(dir: &Scratch) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (dir.path("ca.crt"), dir.path("ca.key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=sluice test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-keyout",
        path(&ca_key),
        "-out",
        path(&ca),
    ]);
    let (cert, key, csr, ext) =
        (dir.path("client.crt"), dir.path("client.key"), dir.path("client.csr"), dir.path("client.ext"));
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=client",
        "-keyout",
        path(&key),
        "-out",
        path(&csr),
    ]);
    std::fs::write(&ext, "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        path(&csr),
        "-CA",
        path(&ca),
        "-CAkey",
        path(&ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        path(&ext),
        "-out",
        path(&cert),
    ]);
    (ca, cert, key)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn openssl(args: &[&str]) {
    require("openssl", "openssl");
    let out = Command::new("openssl").args(args).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// What `openssl s_client` prints about a handshake with `port`, and whether it succeeded.
fn s_client(port: u16, extra: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let established = text.contains(", Cipher is ") && !text.contains("Cipher is (NONE)");
    (established, text)
}

#[test]
fn listener_tls_chooses_by_sni_offers_alpn_and_enforces_version_and_client_certificates() {
    let redis = Redis::start();
    let dir = Scratch::new("listener-tls");
    let (default_cert, default_key) = certificate_for(&dir, "default", "localhost");
    let (other_cert, other_key) = certificate_for(&dir, "other", "other.example");
    let (wild_cert, wild_key) = certificate_for(&dir, "wild", "any.wild.example");
    let (ca, client_cert, client_key) = client_ca(&dir);
    let tls = |extra: &str| {
        format!(
            "{{ cert: \"{}\", key: \"{}\", certificates: [ {{ server_names: [other.example], cert: \"{}\", key: \"{}\" }}, \
             {{ server_names: [\"*.wild.example\"], cert: \"{}\", key: \"{}\" }} ]{extra} }}",
            default_cert.display(),
            default_key.display(),
            other_cert.display(),
            other_key.display(),
            wild_cert.display(),
            wild_key.display()
        )
    };
    let proxy = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n  - {{ name: cache, endpoints: [\"{}\"] }}\n\
         listeners:\n\
         \x20 - {{ name: sni, address: 127.0.0.1:0, protocol: tcp, cluster: cache, tls: {} }}\n\
         \x20 - {{ name: modern, address: 127.0.0.1:0, protocol: tcp, cluster: cache, tls: {} }}\n\
         \x20 - {{ name: mutual, address: 127.0.0.1:0, protocol: redis, cluster: cache, tls: {} }}\n",
        redis.addr(),
        tls(", alpn: [h2, http/1.1]"),
        tls(", min_version: \"1.3\""),
        tls(&format!(", client_ca: \"{}\"", ca.display())),
    ));
    let port = |name: &str| proxy.addr(name).port();

    // SNI picks the certificate; no SNI or an unknown name gets the default one.
    let (ok, text) = s_client(port("sni"), &["-servername", "other.example"]);
    assert!(ok && text.contains("subject=CN = other.example"), "{text}");
    let (ok, text) = s_client(port("sni"), &["-servername", "a.wild.example"]);
    assert!(ok && text.contains("subject=CN = any.wild.example"), "{text}");
    let (ok, text) = s_client(port("sni"), &["-servername", "b.a.wild.example"]);
    assert!(ok && text.contains("subject=CN = localhost"), "a wildcard covers one label: {text}");
    let (ok, text) = s_client(port("sni"), &["-noservername"]);
    assert!(ok && text.contains("subject=CN = localhost"), "{text}");
    // ALPN: the server's preference among what the client offers.
    let (ok, text) = s_client(port("sni"), &["-alpn", "http/1.1,h2"]);
    assert!(ok && text.contains("ALPN protocol: h2"), "{text}");

    // TLS 1.2 is refused where 1.3 is the minimum.
    assert!(s_client(port("modern"), &["-tls1_3"]).0);
    let (ok, text) = s_client(port("modern"), &["-tls1_2"]);
    assert!(!ok, "{text}");

    // Mutual TLS: a client certificate signed by the CA gets through, none does not.
    let cli = |extra: &[&str]| {
        let p = port("mutual").to_string();
        let out = Command::new("redis-cli")
            .args(["--tls", "--cacert", path(&default_cert), "-h", "127.0.0.1", "-p", &p])
            .args(extra)
            .arg("PING")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["--cert", path(&client_cert), "--key", path(&client_key)]), "PONG");
    assert_ne!(cli(&[]), "PONG");

    let m = proxy.metrics();
    let handshakes = |listener: &str, version: &str, alpn: &str| {
        m.get(
            "sluice_tls_handshakes_total",
            &[("listener", listener), ("side", "downstream"), ("version", version), ("alpn", alpn)],
        )
    };
    assert_eq!(handshakes("sni", "1.3", "h2"), 1.0);
    assert_eq!(handshakes("sni", "1.3", ""), 4.0);
    assert_eq!(handshakes("modern", "1.3", ""), 1.0);
    assert_eq!(handshakes("mutual", "1.3", ""), 1.0);
    let failures = |listener: &str, reason: &str| {
        m.get(
            "sluice_tls_handshake_failures_total",
            &[("listener", listener), ("side", "downstream"), ("reason", reason)],
        )
    };
    assert_eq!(failures("modern", "incompatible"), 1.0);
    assert_eq!(failures("mutual", "no_client_certificate"), 1.0);
}

#[test]
fn certificates_are_reloaded_when_their_files_change() {
    let redis = Redis::start();
    let dir = Scratch::new("tls-reload");
    let (cert, key) = certificate_for(&dir, "served", "before.example");
    let proxy = Proxy::start(&format!(
        "admin: {{ address: 127.0.0.1:0 }}\n\
         clusters:\n  - {{ name: cache, endpoints: [\"{}\"] }}\n\
         listeners:\n  - {{ name: reload, address: 127.0.0.1:0, protocol: tcp, cluster: cache, \
         tls: {{ cert: \"{}\", key: \"{}\" }} }}\n",
        redis.addr(),
        cert.display(),
        key.display()
    ));
    let port = proxy.addr("reload").port();
    let served = || s_client(port, &[]).1;
    assert!(served().contains("subject=CN = before.example"));
    let reloads = |outcome: &str| {
        proxy.metrics().get("sluice_tls_reloads_total", &[("listener", "reload"), ("outcome", outcome)])
    };

    // A broken certificate file leaves the old certificate in use.
    std::thread::sleep(Duration::from_millis(1100)); // a new modification time
    std::fs::write(&cert, "not a certificate").unwrap();
    assert!(wait_until(Duration::from_secs(10), || reloads("failed") == 1.0));
    assert!(served().contains("subject=CN = before.example"));

    // A new certificate and key (written to the side, then moved in) is served next.
    let (new_cert, new_key) = certificate_for(&dir, "next", "after.example");
    std::fs::rename(&new_key, &key).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();
    assert!(wait_until(Duration::from_secs(10), || reloads("ok") == 1.0));
    assert!(served().contains("subject=CN = after.example"), "{}", served());
}
