use super::*;

const GOOD: &str = r#"
admin: { address: 127.0.0.1:9901 }
clusters:
  - name: cache
    endpoints: ["127.0.0.1:6379", "localhost:6380"]
    connect_timeout: 1s
listeners:
  - name: cache_in
    address: 127.0.0.1:6380
    protocol: tcp
    cluster: cache
    idle_timeout: 5m
    max_connections: 10000
    rules:
      - match: { op: [connect], client_cidr: ["10.0.0.0/8"] }
        action: deny
      - match: { op: [connect] }
        rate_limit: { rate: 500/s, burst: 100, per: client_ip }
        action: reject
"#;

fn errors(yaml: &str) -> Vec<String> {
    Config::from_yaml(yaml).unwrap_err().0.iter().map(ToString::to_string).collect()
}

#[test]
fn the_documented_example_loads() {
    let c = Config::from_yaml(GOOD).unwrap();
    assert_eq!(c.listeners.len(), 1);
    let l = &c.listeners[0];
    assert_eq!(l.idle_timeout, Duration::from_secs(300));
    assert_eq!(l.max_connections, 10000);
    assert_eq!(c.cluster(l).endpoints.len(), 2);
    assert_eq!(c.clusters[0].endpoints[1].address.port(), 6380);
    match &l.rules[1].action {
        ActionConfig::RateLimit(r) => {
            assert_eq!((r.count.get(), r.burst.get(), r.per), (500, 100, LimitKind::ClientIp));
            assert_eq!(r.on_limit, OnLimit::Reject);
        }
        other => panic!("{other:?}"),
    }
    let dump = serde_json::to_value(&c).unwrap();
    assert_eq!(dump["listeners"][0]["idle_timeout"], "5m");
    assert_eq!(dump["listeners"][0]["rules"][0]["match"]["client_cidr"][0], "10.0.0.0/8");
}

#[test]
fn unknown_cluster_is_named_by_path() {
    let yaml = GOOD.replace("cluster: cache\n", "cluster: cach\n");
    assert_eq!(errors(&yaml), [r#"listeners[0].cluster: unknown cluster "cach""#]);
}

#[test]
fn every_error_is_reported() {
    let yaml = r#"
clusters:
  - name: a
    endpoints: ["nonsense"]
    connect_timeout: 5 minutes
listeners:
  - name: l
    address: 127.0.0.1:1
    protocol: tcp
    cluster: a
    rules:
      - match: { op: [GET], client_cidr: ["10.0.0.0/33"] }
        action: deny
      - rate_limit: { rate: 5/d, per: shoe }
        action: reject
  - name: l
    address: 127.0.0.1:2
    protocol: kafka
    cluster: b
    kafka: { broker_ports: "2-1" }
"#;
    let got = errors(yaml);
    let expected = [
        "clusters[0].endpoints[0]: invalid endpoint",
        "clusters[0].connect_timeout: expected a duration",
        "listeners[0].rules[0].match.op[0]: tcp listeners evaluate only the \"connect\" op",
        "listeners[0].rules[0].match.client_cidr[0]: invalid CIDR",
        "listeners[0].rules[1].rate_limit.rate: expected",
        "listeners[0].rules[1].rate_limit.per: unknown key \"shoe\"",
        "listeners[1].cluster: unknown cluster \"b\"",
        "listeners[1].kafka.broker_ports: 2-1: the first port must not be above the last",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(g.starts_with(e), "{g:?} should start with {e:?}");
    }
}

#[test]
fn unknown_keys_are_errors_with_their_path() {
    let yaml = GOOD.replace("max_connections: 10000", "max_conections: 10000");
    let got = errors(&yaml);
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("listeners[0].max_conections: unknown field `max_conections`"), "{got:?}");

    let yaml = GOOD.replace("burst: 100,", "burst: 100, brust: 1,");
    assert!(errors(&yaml)[0].starts_with("listeners[0].rules[1].rate_limit.brust: unknown field `brust`"));
}

#[test]
fn wrong_types_and_bad_yaml() {
    let yaml = GOOD.replace("max_connections: 10000", "max_connections: lots");
    assert!(errors(&yaml)[0].starts_with("listeners[0].max_connections: invalid type"), "{:?}", errors(&yaml));
    assert!(errors("listeners: [")[0].starts_with("invalid YAML"));
}

#[test]
fn actions_and_rate_limits_must_agree() {
    let rule = |r: &str| {
        format!("clusters: [{{name: c, endpoints: ['127.0.0.1:1']}}]\nlisteners: [{{name: l, address: '127.0.0.1:0', protocol: tcp, cluster: c, rules: [{r}]}}]")
    };
    assert_eq!(
        errors(&rule("{action: deny, rate_limit: {rate: 1/s}}")),
        ["listeners[0].rules[0].rate_limit: action deny takes no rate_limit (use reject or delay)"]
    );
    assert_eq!(errors(&rule("{action: delay}")), ["listeners[0].rules[0].rate_limit: action delay needs a rate_limit"]);
    assert_eq!(
        errors(&rule("{action: smite}")),
        [r#"listeners[0].rules[0].action: unknown action "smite" (expected allow, deny, reject or delay)"#]
    );
    assert_eq!(
        errors(&rule("{action: reject, rate_limit: {rate: 1/s, max_delay: 1s}}")),
        ["listeners[0].rules[0].rate_limit.max_delay: applies only to action: delay"]
    );
    let c = Config::from_yaml(&rule("{action: delay, rate_limit: {rate: 10/s, per: listener}}")).unwrap();
    match &c.listeners[0].rules[0].action {
        ActionConfig::RateLimit(r) => {
            assert_eq!(r.burst.get(), 10);
            assert_eq!(r.on_limit, OnLimit::Delay { max_delay: Duration::from_secs(5) });
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn udp_listeners_limit_sessions() {
    let base = "clusters: [{name: c, endpoints: ['127.0.0.1:1']}]\nlisteners: [{name: u, address: '127.0.0.1:0', protocol: udp, cluster: c, ";
    let c = Config::from_yaml(&format!("{base}max_sessions: 7}}]")).unwrap();
    assert_eq!(c.listeners[0].max_connections, 7);
    assert_eq!(c.listeners[0].idle_timeout, Duration::from_secs(60));
    assert_eq!(
        errors(&format!("{base}max_connections: 7}}]")),
        ["listeners[0].max_connections: udp listeners limit sessions: use max_sessions"]
    );
}

#[test]
fn duplicates_are_errors() {
    let yaml = "clusters: [{name: c, endpoints: ['127.0.0.1:1']}, {name: c, endpoints: ['127.0.0.1:2']}]\nlisteners: [{name: l, address: '127.0.0.1:7000', protocol: tcp, cluster: c}, {name: l, address: '127.0.0.1:7000', protocol: tcp, cluster: c}]";
    assert_eq!(
        errors(yaml),
        [
            r#"clusters[1].name: duplicate cluster "c""#,
            r#"listeners[1].name: duplicate listener "l""#,
            "listeners[1].address: 127.0.0.1:7000 is already used by another listener"
        ]
    );
}

#[test]
fn empty_file_is_an_admin_only_config() {
    let c = Config::from_yaml("").unwrap();
    assert!(c.listeners.is_empty());
    assert_eq!(c.admin.address, "127.0.0.1:9901".parse().unwrap());
}

#[test]
fn bursts_governor_cannot_hold_are_refused() {
    let yaml = |burst: u32| {
        format!("clusters: [{{name: c, endpoints: ['127.0.0.1:1']}}]\nlisteners: [{{name: l, address: '127.0.0.1:0', protocol: tcp, cluster: c, rules: [{{action: reject, rate_limit: {{rate: 1/h, burst: {burst}}}}}]}}]")
    };
    assert!(Config::from_yaml(&yaml(1_281_024)).is_ok());
    assert_eq!(
        errors(&yaml(1_281_025)),
        [
            r#"listeners[0].rules[0].rate_limit.burst: at most 1281024 at rate "1/h": a deeper bucket would take centuries to refill"#
        ]
    );
}

#[test]
fn redis_listeners_take_commands_faults_and_limits() {
    let yaml = r#"
clusters:
  - name: cache
    endpoints: ["127.0.0.1:6379"]
listeners:
  - name: cache_in
    address: 127.0.0.1:6380
    protocol: redis
    cluster: cache
    redis: { max_bulk_length: 64MiB, max_depth: 8, key_prefixes: ["user:", "session:"] }
    rules:
      - match: { op: [FLUSHALL, "config set", JSON.SET] }
        action: deny
    faults:
      - match: { op: [GET] }
        percentage: 2.5
        delay: 20ms
"#;
    let config = Config::from_yaml(yaml).unwrap();
    let l = &config.listeners[0];
    let redis = l.redis.as_ref().unwrap();
    assert_eq!(redis.max_bulk_length, 64 << 20);
    assert_eq!(redis.max_depth, 8);
    assert_eq!(redis.max_array_length, 1 << 24);
    assert_eq!(l.faults.len(), 1);
    // Defaults when the block is left out.
    let plain =
        Config::from_yaml(&yaml.replace(
            "    redis: { max_bulk_length: 64MiB, max_depth: 8, key_prefixes: [\"user:\", \"session:\"] }\n",
            "",
        ))
        .unwrap();
    assert_eq!(plain.listeners[0].redis.as_ref().unwrap().max_bulk_length, 512 << 20);
}

#[test]
fn redis_config_errors_name_their_path() {
    let yaml = r#"
clusters:
  - name: cache
    endpoints: ["127.0.0.1:6379"]
listeners:
  - name: cache_in
    address: 127.0.0.1:6380
    protocol: redis
    cluster: cache
    redis: { max_bulk_length: 1GiB, max_depth: 100 }
    rules:
      - match: { op: [FLUSHAL] }
        action: deny
    faults:
      - match: { op: [GET] }
        percentage: 150
        delay: 1s
        error: "ERR x"
  - name: plain
    address: 127.0.0.1:6381
    protocol: tcp
    cluster: cache
    redis: { max_depth: 4 }
    faults:
      - percentage: 1
        delay: 1s
"#;
    let got = errors(yaml);
    let expected = [
        "listeners[0].rules[0].match.op[0]: unknown Redis command \"FLUSHAL\"",
        "listeners[0].faults[0].percentage: must be greater than 0 and at most 100",
        "listeners[0].faults[0]: needs exactly one of delay or error",
        "listeners[0].redis.max_bulk_length: must be between 1 byte and 512MiB",
        "listeners[0].redis.max_depth: must be between 1 and 64",
        "listeners[1].faults[0]: faults apply to protocol listeners (redis, mongodb), not tcp",
        "listeners[1].redis: applies only to protocol redis, not tcp",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(g.starts_with(e), "{g:?} should start with {e:?}");
    }
}

#[test]
fn mysql_listeners_take_sql_matches_and_their_own_block() {
    let yaml = r#"
clusters: [ { name: db, endpoints: ["127.0.0.1:3306"] } ]
listeners:
  - name: my
    address: 127.0.0.1:0
    protocol: mysql
    cluster: db
    mysql: { max_packet_size: 16MiB, max_digests: 100, query_log: { path: stdout, sample_rate: 0.5 } }
    rules:
      - match: { op: [drop, COM_PING], database: shop, without_where: true }
        action: deny
      - match: { digest: "select * from t where id = 1" }
        rate_limit: { rate: 5/s, per: digest }
        action: reject
"#;
    let c = Config::from_yaml(yaml).unwrap();
    let mysql = c.listeners[0].mysql.as_ref().unwrap();
    assert_eq!((mysql.max_packet_size, mysql.max_digests, mysql.max_tables), (16 << 20, 100, 256));
    assert_eq!(mysql.query_log.as_ref().unwrap().sample_rate, 0.5);
    let digest = &c.listeners[0].rules[1].matcher;
    // The rule's text is normalized like the statements it is compared with.
    let mut scratch = String::new();
    let hash = sluice_filters::sql::normalize(
        b"SELECT * FROM t WHERE id = 42",
        sluice_filters::sql::Dialect::MySql,
        &mut scratch,
    )
    .hash;
    assert_eq!(digest.digest_hashes, [hash]);

    let bad = yaml
        .replace("op: [drop, COM_PING]", "op: [DROPP]")
        .replace("sample_rate: 0.5", "sample_rate: 2")
        .replace("max_digests: 100", "max_digests: 1000000");
    assert_eq!(
        errors(&bad),
        [
            r#"listeners[0].rules[0].match.op[0]: unknown MySQL op "DROPP" (a SQL verb such as SELECT or DROP, or a command such as COM_PING)"#,
            "listeners[0].mysql.max_digests: at most 100000",
            "listeners[0].mysql.query_log.sample_rate: must be between 0 and 1",
        ]
    );
    let tcp = GOOD.replace(r#"client_cidr: ["10.0.0.0/8"] }"#, r#"client_cidr: ["10.0.0.0/8"], database: x }"#);
    assert_eq!(errors(&tcp), ["listeners[0].rules[0].match.database: applies to SQL and mongodb listeners, not tcp"]);
}

#[test]
fn postgres_listeners_take_sql_matches_their_own_block_and_tls() {
    let yaml = r#"
clusters: [ { name: db, endpoints: ["127.0.0.1:5432"] } ]
listeners:
  - name: pg
    address: 127.0.0.1:0
    protocol: postgres
    cluster: db
    postgres: { max_message_size: 1MiB, max_tables: 10, encryption: refuse, query_log: { path: stdout } }
    rules:
      - match: { op: [drop, FUNCTION_CALL], database: shop }
        action: deny
      - match: { digest: "select * from t where id = $1" }
        rate_limit: { rate: 5/s, per: digest }
        action: reject
"#;
    let c = Config::from_yaml(yaml).unwrap();
    let pg = c.listeners[0].postgres.as_ref().unwrap();
    assert_eq!((pg.max_message_size, pg.max_digests, pg.max_tables), (1 << 20, 5000, 10));
    assert_eq!(pg.encryption, EncryptionRequests::Refuse);
    assert_eq!(pg.limits().max_message, 1 << 20);
    let mut scratch = String::new();
    let hash = sluice_filters::sql::normalize(
        b"SELECT * FROM t WHERE id = 7",
        sluice_filters::sql::Dialect::Postgres,
        &mut scratch,
    )
    .hash;
    assert_eq!(c.listeners[0].rules[1].matcher.digest_hashes, [hash], "normalized with the PostgreSQL dialect");

    let bad = yaml
        .replace("op: [drop, FUNCTION_CALL]", "op: [COM_PING]")
        .replace("max_message_size: 1MiB", "max_message_size: 2GiB")
        .replace("encryption: refuse", "encryption: require");
    assert_eq!(
        errors(&bad),
        [
            r#"listeners[0].rules[0].match.op[0]: unknown PostgreSQL op "COM_PING" (a SQL verb such as SELECT or DROP, or FUNCTION_CALL)"#,
            "listeners[0].postgres.max_message_size: must be between 1KiB and 1GiB (PostgreSQL's own limit)",
            r#"listeners[0].postgres.encryption: must be "forward" or "refuse", not "require""#,
        ]
    );
    let mysql_block =
        yaml.replace("protocol: postgres", "protocol: mysql").replace("op: [drop, FUNCTION_CALL]", "op: [DROP]");
    assert_eq!(errors(&mysql_block), ["listeners[0].postgres: applies only to protocol postgres, not mysql"]);
    let files = TlsFiles::new("pg");
    assert!(Config::from_yaml(&files.yaml("postgres", "a.crt", "a.key")).unwrap().listeners[0].tls.is_some());
}

#[test]
fn mongodb_listeners_take_commands_databases_faults_and_their_own_block() {
    let yaml = r#"
clusters: [ { name: db, endpoints: ["127.0.0.1:27017"] } ]
listeners:
  - name: mg
    address: 127.0.0.1:0
    protocol: mongodb
    cluster: db
    mongodb:
      max_message_size: 16MiB
      max_collections: 10
      max_in_flight: 64
      limit_error: { code: 16500, code_name: TooManyRequests }
    rules:
      - match: { op: [dropDatabase, drop, OP_DELETE], database: shop }
        action: deny
      - match: { target_prefix: "shop.orders" }
        rate_limit: { rate: 5/s, per: target }
        action: reject
    faults:
      - match: { op: find }
        percentage: 10
        delay: 50ms
"#;
    let c = Config::from_yaml(yaml).unwrap();
    let l = &c.listeners[0];
    assert_eq!(l.protocol, Protocol::Mongodb);
    let mg = l.mongodb.as_ref().unwrap();
    assert_eq!((mg.max_message_size, mg.max_collections, mg.max_in_flight), (16 << 20, 10, 64));
    assert_eq!(mg.limits().max_frame, 16 << 20);
    assert_eq!((mg.deny_error.code, mg.deny_error.code_name.as_str()), (13, "Unauthorized"));
    assert_eq!((mg.limit_error.code, mg.limit_error.code_name.as_str()), (16500, "TooManyRequests"));
    assert_eq!(l.faults.len(), 1);
    // Defaults without a block: mongod's message cap, 449 RateLimitExceeded.
    let plain = Config::from_yaml(&yaml.replace("    mongodb:\n", "    mongodb_unused:\n")).err();
    assert!(plain.is_some(), "unknown keys are still errors");
    let defaults = yaml.split("    mongodb:").next().unwrap().to_string();
    let c = Config::from_yaml(&defaults).unwrap();
    let mg = c.listeners[0].mongodb.as_ref().unwrap();
    assert_eq!(mg.max_message_size, 48_000_000);
    assert_eq!((mg.limit_error.code, mg.limit_error.code_name.as_str()), (449, "RateLimitExceeded"));

    let bad = yaml
        .replace("op: [dropDatabase, drop, OP_DELETE]", "op: [dropDatabse]")
        .replace("max_message_size: 16MiB", "max_message_size: 64MiB")
        .replace("max_in_flight: 64", "max_in_flight: 0")
        .replace("code: 16500, code_name: TooManyRequests", "code: -1, code_name: \"Too many\"");
    assert_eq!(
        errors(&bad),
        [
            r#"listeners[0].rules[0].match.op[0]: unknown MongoDB command "dropDatabse" (a command such as find, insert or drop, or a legacy opcode such as OP_INSERT)"#,
            "listeners[0].mongodb.max_message_size: must be between 1KiB and 46875KiB (mongod's maxMessageSizeBytes)",
            "listeners[0].mongodb.max_in_flight: must be between 1 and 1048576",
            "listeners[0].mongodb.limit_error.code: must be a positive 32-bit integer",
            "listeners[0].mongodb.limit_error.code_name: must be 1 to 64 letters, digits or _ (like Unauthorized)",
        ]
    );
    let redis_block = yaml
        .replace("protocol: mongodb", "protocol: redis")
        .replace("op: [dropDatabase, drop, OP_DELETE], database: shop", "op: [FLUSHALL]");
    let redis_errors = errors(&redis_block);
    assert!(
        redis_errors.contains(&"listeners[0].mongodb: applies only to protocol mongodb, not redis".to_string()),
        "{redis_errors:?}"
    );
    let files = TlsFiles::new("mg");
    assert!(Config::from_yaml(&files.yaml("mongodb", "a.crt", "a.key")).unwrap().listeners[0].tls.is_some());
}

/// A directory with two self-signed certificates and their keys, made by openssl.
struct TlsFiles(std::path::PathBuf);

impl TlsFiles {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sluice-config-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a", "b"] {
            let out = std::process::Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1"])
                .arg("-keyout")
                .arg(dir.join(format!("{name}.key")))
                .arg("-out")
                .arg(dir.join(format!("{name}.crt")))
                .output()
                .expect("openssl (Debian package openssl) makes the test certificates");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        TlsFiles(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }

    /// A mysql (or `protocol`) listener with `tls: { cert, key }`.
    fn yaml(&self, protocol: &str, cert: &str, key: &str) -> String {
        format!(
            "clusters: [{{ name: db, endpoints: [\"127.0.0.1:3306\"] }}]\n\
             listeners:\n  - {{ name: l, address: 127.0.0.1:0, protocol: {protocol}, cluster: db, \
             tls: {{ cert: \"{}\", key: \"{}\" }} }}\n",
            self.path(cert),
            self.path(key)
        )
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn mysql_listeners_load_a_tls_certificate_and_key() {
    let files = TlsFiles::new("ok");
    let c = Config::from_yaml(&files.yaml("mysql", "a.crt", "a.key")).unwrap();
    let tls = c.listeners[0].tls.as_ref().expect("tls settings");
    assert_eq!(tls.cert.display().to_string(), files.path("a.crt"));
    let dump = serde_json::to_value(&c).unwrap();
    assert_eq!(dump["listeners"][0]["tls"]["key"], files.path("a.key"));
}

#[test]
fn tls_errors_name_the_file_and_the_path() {
    let files = TlsFiles::new("errors");
    let (cert, key) = (files.path("a.crt"), files.path("a.key"));
    for protocol in ["tcp", "redis", "mysql", "postgres"] {
        assert!(Config::from_yaml(&files.yaml(protocol, "a.crt", "a.key")).is_ok(), "{protocol} terminates TLS");
    }
    assert_eq!(
        errors(&files.yaml("udp", "a.crt", "a.key")),
        ["listeners[0].tls: udp listeners cannot terminate TLS (TLS runs over TCP)"]
    );
    let missing = files.path("missing.crt");
    assert_eq!(
        errors(&files.yaml("mysql", "missing.crt", "a.key")),
        [format!("listeners[0].tls.cert: cannot read {missing}: No such file or directory (os error 2)")]
    );
    assert_eq!(
        errors(&files.yaml("mysql", "a.key", "a.key")),
        [format!("listeners[0].tls.cert: no certificate (PEM CERTIFICATE block) found in {key}")]
    );
    assert_eq!(
        errors(&files.yaml("mysql", "a.crt", "a.crt")),
        [format!(
            "listeners[0].tls.key: no private key (PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block) found in {cert}"
        )]
    );
    let mismatch = errors(&files.yaml("mysql", "a.crt", "b.key"));
    assert_eq!(mismatch.len(), 1);
    assert!(mismatch[0].starts_with("listeners[0].tls: cannot use the key in"), "{mismatch:?}");
    let unknown = files.yaml("mysql", "a.crt", "a.key").replace("key:", "ca: x, key:");
    assert_eq!(
        errors(&unknown),
        ["listeners[0].tls.ca: unknown field `ca`, expected one of `cert`, `key`, `certificates`, `alpn`, `min_version`, `client_ca`"]
    );
}

#[test]
fn listener_tls_settings_load_and_their_errors_name_the_field() {
    let files = TlsFiles::new("settings");
    let with =
        |extra: &str| files.yaml("tcp", "a.crt", "a.key").replacen("a.key\" }", &format!("a.key\"{extra} }}"), 1);
    let (b_crt, b_key) = (files.path("b.crt"), files.path("b.key"));
    let named = format!(
        ", certificates: [ {{ server_names: [b.example, \"*.b.example\"], cert: \"{b_crt}\", key: \"{b_key}\" }} ]"
    );
    let full = with(&format!("{named}, alpn: [h2, http/1.1], min_version: \"1.3\", client_ca: \"{b_crt}\""));
    let c = Config::from_yaml(&full).unwrap_or_else(|e| panic!("{e:?}\n{full}"));
    let tls = c.listeners[0].tls.as_ref().unwrap();
    assert_eq!((tls.alpn.clone(), tls.min_version), (vec!["h2".to_string(), "http/1.1".to_string()], "1.3"));
    assert_eq!(tls.server.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(tls.certificates[0].server_names, ["b.example", "*.b.example"]);
    assert!(tls.certs.reload_if_changed().is_none(), "nothing changed since the load");

    let error = |extra: &str| errors(&with(extra));
    assert_eq!(
        error(", min_version: \"1.1\""),
        [r#"listeners[0].tls.min_version: "1.1" is not a TLS version sluice offers ("1.2" or "1.3")"#]
    );
    assert_eq!(error(", alpn: [\"\"]"), ["listeners[0].tls.alpn[0]: must be 1 to 255 bytes"]);
    assert_eq!(
        error(&format!(", certificates: [ {{ server_names: [], cert: \"{b_crt}\", key: \"{b_key}\" }} ]")),
        ["listeners[0].tls.certificates[0].server_names: must name at least one server"]
    );
    assert_eq!(
        error(&format!(", certificates: [ {{ server_names: [\"a b\"], cert: \"{b_crt}\", key: \"{b_key}\" }} ]")),
        [r#"listeners[0].tls.certificates[0].server_names: "a b" is not a DNS name"#]
    );
    let missing = files.path("missing.pem");
    assert_eq!(
        error(&format!(", certificates: [ {{ server_names: [b.example], cert: \"{b_crt}\", key: \"{missing}\" }} ]")),
        [format!(
            "listeners[0].tls.certificates[0].key: cannot read {missing}: No such file or directory (os error 2)"
        )]
    );
    assert_eq!(
        error(&format!(", client_ca: \"{missing}\"")),
        [format!("listeners[0].tls.client_ca: cannot read {missing}: No such file or directory (os error 2)")]
    );
}

/// A `protocol` listener on a cluster whose `tls` block is `tls`.
fn cluster_tls_yaml(protocol: &str, endpoint: &str, tls: &str) -> String {
    format!(
        "clusters: [{{ name: db, endpoints: [\"{endpoint}\"], tls: {tls} }}]\n\
         listeners:\n  - {{ name: l, address: 127.0.0.1:0, protocol: {protocol}, cluster: db }}\n"
    )
}

#[test]
fn clusters_originate_tls_with_their_own_roots_or_insecurely() {
    let files = TlsFiles::new("cluster");
    let ca = files.path("a.crt");
    let c = Config::from_yaml(&cluster_tls_yaml("postgres", "127.0.0.1:5432", &format!("{{ ca: \"{ca}\" }}"))).unwrap();
    let tls = c.clusters[0].tls.as_ref().expect("tls settings");
    assert_eq!(tls.ca.as_ref().unwrap().display().to_string(), ca);
    assert!(!tls.insecure);
    // An IP endpoint is its own server name; a DNS one too; `server_name` overrides both.
    assert!(tls.connect(0).is_ok());
    let named = cluster_tls_yaml("redis", "localhost:6379", "{ insecure: true, server_name: cache.internal }");
    let c = Config::from_yaml(&named).unwrap();
    assert_eq!(c.clusters[0].tls.as_ref().unwrap().server_name.as_deref(), Some("cache.internal"));
    let dump = serde_json::to_value(&c).unwrap();
    assert_eq!(dump["clusters"][0]["tls"]["insecure"], true);
    // A client certificate goes with its key.
    let mtls = format!("{{ ca: \"{ca}\", cert: \"{}\", key: \"{}\" }}", files.path("b.crt"), files.path("b.key"));
    assert!(Config::from_yaml(&cluster_tls_yaml("postgres", "127.0.0.1:5432", &mtls)).is_ok());
}

#[test]
fn cluster_tls_errors_name_the_field() {
    let files = TlsFiles::new("cluster-errors");
    let (ca, missing) = (files.path("a.crt"), files.path("missing.pem"));
    let pg = |tls: &str| errors(&cluster_tls_yaml("postgres", "127.0.0.1:5432", tls));
    assert_eq!(
        pg(&format!("{{ ca: \"{missing}\" }}")),
        [format!("clusters[0].tls.ca: cannot read {missing}: No such file or directory (os error 2)")]
    );
    assert_eq!(
        pg(&format!("{{ ca: \"{}\" }}", files.path("a.key"))),
        [format!("clusters[0].tls.ca: no certificate (PEM CERTIFICATE block) found in {}", files.path("a.key"))]
    );
    assert_eq!(
        pg(&format!("{{ ca: \"{ca}\", insecure: true }}")),
        ["clusters[0].tls.insecure: insecure skips verification, so ca would be unused: set one"]
    );
    assert_eq!(
        pg(&format!("{{ ca: \"{ca}\", cert: \"{}\" }}", files.path("b.crt"))),
        ["clusters[0].tls.key: a client certificate needs its key"]
    );
    let mismatch =
        pg(&format!("{{ ca: \"{ca}\", cert: \"{}\", key: \"{}\" }}", files.path("a.crt"), files.path("b.key")));
    assert!(mismatch[0].starts_with("clusters[0].tls.key: cannot use the key in"), "{mismatch:?}");
    assert_eq!(
        pg("{ insecure: true, server_name: \"not a name\" }"),
        [r#"clusters[0].tls.server_name: "not a name": invalid dns name"#]
    );
    assert_eq!(
        pg("{ insecure: true, sni: x }")[0],
        "clusters[0].tls.sni: unknown field `sni`, expected one of `server_name`, `ca`, `insecure`, `cert`, `key`"
    );
    // Every TCP listener originates TLS; a udp one says it cannot rather than send in the clear.
    assert!(Config::from_yaml(&cluster_tls_yaml("tcp", "127.0.0.1:5432", "{ insecure: true }")).is_ok());
    assert_eq!(
        errors(&cluster_tls_yaml("udp", "127.0.0.1:5432", "{ insecure: true }")),
        [r#"listeners[0].cluster: cluster "db" originates TLS, which udp listeners cannot use (TLS runs over TCP)"#]
    );
}

#[test]
fn redis_pool_mode_takes_its_settings_and_refuses_what_it_cannot_do() {
    let yaml = |redis: &str, extra: &str| {
        format!(
            "clusters: [{{ name: c, endpoints: [\"127.0.0.1:6379\", \"127.0.0.1:6380\"] }}]\n\
             listeners:\n  - {{ name: l, address: 127.0.0.1:0, protocol: redis, cluster: c, redis: {redis}{extra} }}\n"
        )
    };
    let c =
        Config::from_yaml(&yaml("{ mode: pool, pool: { connections: 4, hash: murmur, timeout: 2s } }", "")).unwrap();
    let pool = c.listeners[0].redis.as_ref().unwrap().pool.as_ref().unwrap();
    assert_eq!((pool.connections, pool.hash.as_str(), pool.timeout), (4, "murmur", Duration::from_secs(2)));
    let defaults = Config::from_yaml(&yaml("{ mode: pool }", "")).unwrap();
    let pool = defaults.listeners[0].redis.as_ref().unwrap().pool.clone().unwrap();
    assert_eq!((pool.connections, pool.hash.as_str(), pool.timeout), (1, "fnv1a_64", Duration::from_secs(5)));
    assert!(Config::from_yaml(&yaml("{ mode: observe }", "")).unwrap().listeners[0]
        .redis
        .as_ref()
        .unwrap()
        .pool
        .is_none());

    let auth = "{ mode: pool, pool: { users: [ { password: pw-a }, { user: app, password: pw-b } ], upstream_auth: { password: pw-c } } }";
    let c = Config::from_yaml(&yaml(auth, "")).unwrap();
    let pool = c.listeners[0].redis.as_ref().unwrap().pool.clone().unwrap();
    assert_eq!(
        pool.users.iter().map(|u| (u.user.as_str(), u.password.as_str())).collect::<Vec<_>>(),
        [("default", "pw-a"), ("app", "pw-b")]
    );
    assert_eq!(pool.upstream_auth.as_ref().map(|u| u.password.as_str()), Some("pw-c"));
    let dump = serde_json::to_string(&c.listeners[0]).unwrap();
    assert!(dump.contains("\"app\"") && !dump.contains("pw-"), "passwords stay out of dumps: {dump}");
    assert_eq!(
        errors(&yaml("{ mode: pool, pool: { users: [ { user: u, password: \"\" } ] } }", "")),
        ["listeners[0].redis.pool.users[0].password: must not be empty"]
    );
    let rc = Config::from_yaml(&yaml("{ mode: pool, pool: { backend: cluster } }", "")).unwrap();
    assert!(rc.listeners[0].redis.as_ref().unwrap().pool.as_ref().unwrap().cluster_backend);
    assert_eq!(
        errors(&yaml("{ mode: pool, pool: { backend: sentinel } }", "")),
        [r#"listeners[0].redis.pool.backend: unknown backend "sentinel" (expected servers or cluster)"#]
    );
    let maglev = Config::from_yaml(&yaml("{ mode: pool, pool: { distribution: maglev } }", "")).unwrap();
    assert_eq!(maglev.listeners[0].redis.as_ref().unwrap().pool.as_ref().unwrap().distribution.as_str(), "maglev");
    assert_eq!(
        errors(&yaml("{ mode: pool, pool: { distribution: modula } }", "")),
        [r#"listeners[0].redis.pool.distribution: unknown distribution "modula" (expected ketama or maglev)"#]
    );
    assert_eq!(
        errors(&yaml("{ mode: fast }", "")),
        [r#"listeners[0].redis.mode: unknown mode "fast" (expected observe or pool)"#]
    );
    assert_eq!(errors(&yaml("{ pool: { connections: 2 } }", "")), ["listeners[0].redis.pool: only with mode: pool"]);
    assert_eq!(
        errors(&yaml("{ mode: pool, pool: { connections: 0, hash: md5 } }", "")),
        [
            "listeners[0].redis.pool.connections: must be between 1 and 64 (per server, per worker)",
            r#"listeners[0].redis.pool.hash: unknown hash "md5" (expected fnv1a_64 or murmur)"#
        ]
    );
}

#[test]
fn redis_pool_routes_mirror_and_replica_reads_name_clusters_and_are_checked() {
    let yaml = |pool: &str| {
        format!(
            "clusters:\n  - {{ name: main, endpoints: [\"127.0.0.1:6379\"] }}\n  \
             - {{ name: sessions, endpoints: [{{ address: \"127.0.0.1:6380\", weight: 3 }}, \"127.0.0.1:6381\"] }}\n  \
             - {{ name: secure, endpoints: [\"127.0.0.1:6382\"], tls: {{ insecure: true }} }}\n\
             listeners:\n  - {{ name: l, address: 127.0.0.1:0, protocol: redis, cluster: main, redis: {{ mode: pool, pool: {pool} }} }}\n"
        )
    };
    let c = Config::from_yaml(&yaml(
        "{ routes: [ { prefix: \"s:\", cluster: sessions, remove_prefix: true } ], mirror: { cluster: sessions, fraction: 0.25, exclude_reads: true } }",
    ))
    .unwrap();
    assert_eq!(c.clusters[1].endpoints.iter().map(|e| e.weight).collect::<Vec<_>>(), [3, 1]);
    let pool = c.listeners[0].redis.as_ref().unwrap().pool.clone().unwrap();
    let route = &pool.routes[0];
    assert_eq!((route.prefix.as_str(), route.cluster_index, route.remove_prefix), ("s:", 1, true));
    let mirror = pool.mirror.unwrap();
    assert_eq!((mirror.cluster_index, mirror.fraction, mirror.exclude_reads), (1, 0.25, true));
    assert_eq!(pool.read_from, ReadFrom::Primary);
    let rc = Config::from_yaml(&yaml("{ backend: cluster, read_from: any }")).unwrap();
    assert_eq!(rc.listeners[0].redis.as_ref().unwrap().pool.as_ref().unwrap().read_from, ReadFrom::Any);
    assert_eq!(
        errors(&yaml(
            "{ routes: [ { prefix: \"\", cluster: sessions }, { prefix: a, cluster: nowhere }, { prefix: b, cluster: secure }, \
             { prefix: c, cluster: main }, { prefix: c, cluster: main } ], mirror: { cluster: main, fraction: 1.5 }, read_from: prefer_replica }"
        )),
        [
            "listeners[0].redis.pool.read_from: needs backend: cluster (a ring of servers has no replicas)",
            "listeners[0].redis.pool.routes[0].prefix: must not be empty (the listener's cluster takes every other key)",
            r#"listeners[0].redis.pool.routes[1].cluster: unknown cluster "nowhere""#,
            r#"listeners[0].redis.pool.routes[4].prefix: "c" is routed already"#,
            "listeners[0].redis.pool.mirror.fraction: must be above 0 and at most 1",
        ]
    );
    assert_eq!(
        errors(&yaml("{ read_from: replicas }")),
        [
            r#"listeners[0].redis.pool.read_from: unknown read_from "replicas" (expected primary, prefer_replica or any)"#
        ]
    );
}

#[test]
fn endpoint_weights_are_bounded_and_one_must_be_above_zero() {
    let yaml = |endpoints: &str| {
        format!(
            "clusters: [{{ name: c, endpoints: {endpoints} }}]\n\
             listeners: [{{ name: l, address: 127.0.0.1:0, protocol: tcp, cluster: c }}]\n"
        )
    };
    assert_eq!(
        errors(&yaml("[{ address: \"127.0.0.1:1\", weight: 0 }]")),
        ["clusters[0].endpoints: needs an endpoint with a weight above zero"]
    );
    assert_eq!(
        errors(&yaml("[{ address: \"127.0.0.1:1\", weight: 1001 }]")),
        ["clusters[0].endpoints[0].weight: at most 1000"]
    );
    assert!(Config::from_yaml(&yaml("[\"127.0.0.1:1\", { address: \"127.0.0.1:2\", weight: 0 }]")).is_ok());
}

#[test]
fn http_client_id_comes_from_a_header_that_per_header_names() {
    let yaml = |http: &str, rules: &str| {
        let rules = if rules.is_empty() { " []\n".to_string() } else { format!("\n{rules}") };
        format!("{HTTP_BASE}    rules:{rules}    http: {{ {http} }}\n")
    };
    let limit = |per: &str| format!("      - {{ action: reject, rate_limit: {{ rate: 1/s, per: \"{per}\" }} }}\n");
    let c = Config::from_yaml(&yaml("", &limit("header:X-Api-Key"))).unwrap();
    assert_eq!(c.listeners[0].http.as_ref().unwrap().client_id_header.as_deref(), Some("x-api-key"));
    let c = Config::from_yaml(&yaml("client_id_header: X-Tenant", &limit("client_id"))).unwrap();
    assert_eq!(c.listeners[0].http.as_ref().unwrap().client_id_header.as_deref(), Some("x-tenant"));
    assert_eq!(
        errors(&yaml("", &limit("client_id"))),
        ["listeners[0].rules[0].rate_limit.per: client_id on an http listener needs http.client_id_header (or per: header:<name>)"]
    );
    assert_eq!(
        errors(&yaml("client_id_header: x-tenant", &limit("header:x-api-key"))),
        [
            r#"listeners[0].rules[0].rate_limit.per: header:x-api-key differs from http.client_id_header "x-tenant" (one header per listener)"#
        ]
    );
    assert_eq!(
        errors(&yaml("client_id_header: \"bad name\"", "")),
        [r#"listeners[0].http.client_id_header: "bad name" is no header name"#]
    );
}

const HTTP_BASE: &str = "clusters:\n  - { name: web, endpoints: [\"127.0.0.1:8080\"] }\n  - { name: canary, endpoints: [\"127.0.0.1:8081\"] }\nlisteners:\n  - name: front\n    address: 127.0.0.1:0\n    protocol: http\n    cluster: web\n";

#[test]
fn http_listeners_load_routes_with_defaults() {
    let yaml = format!(
        "{HTTP_BASE}    http:\n      max_request_head: 32KiB\n      virtual_hosts:\n        - name: api\n          domains: [\"API.example.com\", \"*.example.com\"]\n          routes:\n            - {{ name: v1, match: {{ prefix: /v1/, headers: [{{ name: X-Canary, value: \"1\" }}] }}, weighted_clusters: [{{ cluster: web, weight: 90 }}, {{ cluster: canary, weight: 10 }}], prefix_rewrite: /, timeout: 2s, retries: {{ attempts: 2, on: [connect_failure, \"503\"] }} }}\n            - {{ match: {{ regex: \"^/v[0-9]+/\" }}, cluster: canary }}\n"
    );
    let c = Config::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let l = &c.listeners[0];
    assert_eq!(l.idle_timeout, http::DEFAULT_HTTP_IDLE);
    let h = l.http.as_ref().unwrap();
    assert_eq!(h.max_request_head, 32 * 1024);
    let vh = &h.virtual_hosts[0];
    assert_eq!(vh.domains, ["api.example.com", "*.example.com"]);
    let r = &vh.routes[0];
    assert_eq!((r.clusters[1].index, r.clusters[1].weight), (1, 10));
    assert_eq!(r.timeout, Duration::from_secs(2));
    assert_eq!((r.retries.attempts, r.retries.on_connect_failure, r.retries.statuses.clone()), (2, true, vec![503]));
    assert_eq!(vh.routes[1].name, "api/1");
    assert_eq!(vh.routes[1].timeout, http::DEFAULT_ROUTE_TIMEOUT);
}

#[test]
fn http_errors_name_their_paths() {
    let yaml = format!(
        "{HTTP_BASE}    http:\n      virtual_hosts:\n        - domains: [\"a.*.b\"]\n          routes:\n            - {{ cluster: nope }}\n            - {{ match: {{ prefix: /a, path: /b }}, cluster: web, prefix_rewrite: x }}\n            - {{ match: {{ regex: \"(\" }}, cluster: web, retries: {{ attempts: 1, on: [teapot] }} }}\n            - {{ cluster: web, weighted_clusters: [{{ cluster: web, weight: 1 }}] }}\n            - {{ match: {{ prefix: /h }}, weighted_clusters: [{{ cluster: ghost, weight: 0 }}], request_headers_to_add: [{{ name: \"bad name\", value: v }}] }}\n        - {{ domains: [], routes: [] }}\n"
    );
    let got = errors(&yaml);
    let expected = [
        "listeners[0].http.virtual_hosts[0].domains[0]: invalid domain",
        "listeners[0].http.virtual_hosts[0].routes[0].cluster: unknown cluster \"nope\"",
        "listeners[0].http.virtual_hosts[0].routes[1].match: takes at most one of prefix, path or regex",
        "listeners[0].http.virtual_hosts[0].routes[1].prefix_rewrite: must be a path",
        "listeners[0].http.virtual_hosts[0].routes[2].match.regex: invalid regex",
        "listeners[0].http.virtual_hosts[0].routes[2].retries.on[0]: unknown condition \"teapot\"",
        "listeners[0].http.virtual_hosts[0].routes[3]: takes cluster or weighted_clusters, not both",
        "listeners[0].http.virtual_hosts[0].routes[4].weighted_clusters[0].cluster: unknown cluster \"ghost\"",
        "listeners[0].http.virtual_hosts[0].routes[4].weighted_clusters: needs a cluster with a weight above zero",
        "listeners[0].http.virtual_hosts[0].routes[4].request_headers_to_add[0].name: invalid field name",
        "listeners[0].http.virtual_hosts[1].domains: needs at least one domain",
        "listeners[0].http.virtual_hosts[1].routes: needs at least one route",
    ];
    for (g, e) in got.iter().zip(expected) {
        assert!(g.starts_with(e), "{g:?} should start with {e:?}\nall: {got:#?}");
    }
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    let misplaced = "clusters: [{ name: c, endpoints: [\"127.0.0.1:1\"] }]\nlisteners: [{ name: t, address: 127.0.0.1:0, protocol: tcp, cluster: c, http: {} }]\n";
    assert_eq!(errors(misplaced), ["listeners[0].http: applies only to protocol http, not tcp"]);
}

#[test]
fn http2_settings_and_http2_clusters() {
    let yaml = format!("{HTTP_BASE}    http:\n      max_request_head: 8KiB\n");
    let c = Config::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let h2 = c.listeners[0].http.as_ref().unwrap().http2;
    // The header list defaults to max_request_head; the rest to the built-in defaults.
    assert_eq!(h2, http::Http2Config { max_header_list_size: 8 * 1024, ..http::Http2Config::default() });
    assert!(!c.clusters[0].http2);

    let yaml = format!(
        "{HTTP_BASE}    http:\n      http2: {{ max_concurrent_streams: 7, max_header_list_size: 4KiB, initial_window_size: 1MiB, max_pending_accept_reset_streams: 5, max_local_error_reset_streams: 50 }}\n"
    )
    .replace("endpoints: [\"127.0.0.1:8081\"] }", "endpoints: [\"127.0.0.1:8081\"], http2: true }");
    let c = Config::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let h2 = c.listeners[0].http.as_ref().unwrap().http2;
    assert_eq!(
        h2,
        http::Http2Config {
            max_concurrent_streams: 7,
            max_header_list_size: 4096,
            initial_window_size: 1024 * 1024,
            max_pending_accept_reset_streams: 5,
            max_local_error_reset_streams: 50,
        }
    );
    assert!(c.clusters[1].http2 && !c.clusters[0].http2);

    let yaml = format!(
        "{HTTP_BASE}    http:\n      http2: {{ max_concurrent_streams: 0, max_header_list_size: 100, initial_window_size: 4GiB, max_pending_accept_reset_streams: 0 }}\n"
    );
    assert_eq!(
        errors(&yaml),
        [
            "listeners[0].http.http2.max_concurrent_streams: must be between 1 and 10000",
            "listeners[0].http.http2.max_pending_accept_reset_streams: must be between 1 and 100000",
            "listeners[0].http.http2.max_header_list_size: must be between 1024 and 1048576 bytes",
            "listeners[0].http.http2.initial_window_size: must be between 1024 and 2147483647 bytes",
        ]
    );
}

#[test]
fn kafka_listener_with_quotas_and_broker_ports() {
    let yaml = r#"
clusters: [ { name: kafka, endpoints: ["127.0.0.1:9092"] } ]
listeners:
  - name: kf
    address: 127.0.0.1:19092
    protocol: kafka
    cluster: kafka
    kafka:
      advertised_host: kafka.example
      broker_ports: 19100-19199
      max_frame_size: 16MiB
      max_topics: 10
      max_client_ids: 20
      max_in_flight: 64
    rules:
      - match: { op: [DeleteTopics, CreateAcls] }
        action: deny
      - match: { op: Produce, client_id: [ingest] }
        rate_limit: { rate: 1048576/s, per: client_id, cost: bytes, max_delay: 2s }
        action: delay
"#;
    let c = Config::from_yaml(yaml).unwrap();
    let l = &c.listeners[0];
    assert_eq!(l.protocol, Protocol::Kafka);
    let k = l.kafka.as_ref().unwrap();
    assert_eq!(k.advertised_host, "kafka.example");
    assert_eq!(k.broker_ports, Some(19100..=19199));
    assert_eq!((k.max_frame_size, k.max_topics, k.max_client_ids, k.max_in_flight), (16 << 20, 10, 20, 64));
    let ActionConfig::RateLimit(rl) = &l.rules[1].action else { panic!("{:?}", l.rules[1].action) };
    assert!(rl.counts_bytes);
    assert_eq!(rl.per, LimitKind::ClientId);
    assert_eq!(l.rules[1].matcher.client_id, ["ingest"]);
    // Defaults: the listener's IP, no broker ports.
    let defaults = yaml.split("    kafka:").next().unwrap().to_string();
    let c = Config::from_yaml(&defaults).unwrap();
    let k = c.listeners[0].kafka.as_ref().unwrap();
    assert_eq!((k.advertised_host.as_str(), &k.broker_ports), ("127.0.0.1", &None));

    let bad = yaml
        .replace("[DeleteTopics, CreateAcls]", "[DeleteTopic]")
        .replace("broker_ports: 19100-19199", "broker_ports: 19000-19100")
        .replace("address: 127.0.0.1:19092", "address: 0.0.0.0:19092")
        .replace("      advertised_host: kafka.example\n", "")
        .replace("max_in_flight: 64", "max_in_flight: 0")
        .replace("cost: bytes", "cost: pages");
    assert_eq!(
        errors(&bad),
        [
            r#"listeners[0].rules[0].match.op[0]: unknown Kafka API "DeleteTopic" (an API name from the protocol guide such as Produce, Fetch or DeleteTopics)"#,
            r#"listeners[0].rules[1].rate_limit.cost: unknown cost "pages" (expected ops or bytes)"#,
            "listeners[0].kafka.advertised_host: required: the listener binds 0.0.0.0, which is no address a client can be told",
            "listeners[0].kafka.broker_ports: includes the listener's own port 19092",
            "listeners[0].kafka.max_in_flight: must be between 1 and 1048576",
        ]
    );
    let not_kafka = yaml.replace("protocol: kafka", "protocol: redis").replace("    kafka:\n", "    kafka_x:\n");
    assert!(errors(&not_kafka).iter().any(|e| e.contains("kafka_x")));
    let redis = r#"
clusters: [ { name: c, endpoints: ["127.0.0.1:6379"] } ]
listeners:
  - name: r
    address: 127.0.0.1:0
    protocol: redis
    cluster: c
    kafka: {}
    rules:
      - match: { client_id: x }
        rate_limit: { rate: 5/s, per: client_id, cost: bytes }
        action: reject
"#;
    assert_eq!(
        errors(redis),
        [
            "listeners[0].rules[0].match.client_id: client_id applies to kafka and http listeners, not redis",
            "listeners[0].rules[0].rate_limit.per: client_id applies to kafka and http listeners, not redis",
            "listeners[0].rules[0].rate_limit.cost: bytes applies to kafka listeners, not redis",
            "listeners[0].kafka: applies only to protocol kafka, not redis",
        ]
    );
}
