//! The `kafka` listener against a real Kafka-compatible broker (tansu 0.6) with real
//! clients (confluent-kafka / librdkafka 2.16, kafka-python, kcat): produce with every
//! compression codec and an idempotent producer, consume in a group with commits, and
//! sluice's per-topic record counts must equal what the clients sent and read; Metadata
//! names only sluice addresses (the bootstrap listener, or a per-broker listener opened on
//! demand from `broker_ports` when the broker advertises a name of its own); a `deny` on
//! DeleteTopics answers TOPIC_AUTHORIZATION_FAILED and the topic stays; a produce quota in
//! bytes per client_id delays the producer to its rate, and one with `reject` fails
//! deliveries with POLICY_VIOLATION; bytes that are not Kafka get a clean close; SSL
//! clients go through sluice's TLS, on the bootstrap and the per-broker listener.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::*;

fn kafka_listener(name: &str, broker: &Kafka, extra: &str) -> Proxy {
    Proxy::start(&one_listener(name, "kafka", &[broker.addr()], extra))
}

fn topic_records(m: &Metrics, listener: &str, topic: &str, op: &str) -> f64 {
    m.get("sluice_kafka_topic_records_total", &[("listener", listener), ("topic", topic), ("op", op)])
}

fn ops(m: &Metrics, listener: &str, op: &str, outcome: &str) -> f64 {
    m.get("sluice_ops_total", &[("listener", listener), ("protocol", "kafka"), ("op", op), ("outcome", outcome)])
}

/// `host:port` of every broker a `kcat -L` listing names.
fn kcat_brokers(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|l| l.trim().strip_prefix("broker "))
        .filter_map(|l| l.split(" at ").nth(1))
        .map(|a| a.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

/// Produces `n` messages per codec (acks=all) and prints `delivered <codec> <count>`.
const PRODUCE: &str = "
import sys
def produce(topic, n, **conf):
    p = Producer({'bootstrap.servers': BOOTSTRAP, 'acks': 'all', 'client.id': conf.pop('client_id', 'sluice-test'),
                  'linger.ms': 5, **conf})
    done = []
    def cb(err, msg):
        if err is not None:
            print('error', err.name(), flush=True)
        else:
            done.append(1)
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=('v%05d' % i).encode() * 10, on_delivery=cb)
        p.poll(0)
    assert p.flush(60) == 0
    return len(done)
";

#[test]
fn produce_and_group_consume_are_counted_per_topic_as_the_clients_sent_them() {
    let broker = Kafka::start();
    let codecs = ["gzip", "snappy", "lz4", "zstd"];
    for codec in codecs {
        broker.create_topic(&format!("clicks-{codec}"), 2);
    }
    broker.create_topic("idem", 1);
    let proxy = kafka_listener("kf", &broker, "");
    let bootstrap = proxy.addr("kf").to_string();
    let n = 300;
    let script = format!(
        "{PRODUCE}
for codec in {codecs:?}:
    print('delivered', codec, produce('clicks-' + codec, {n}, **{{'compression.type': codec}}))
print('delivered idem', produce('idem', {n}, **{{'enable.idempotence': True}}))
c = Consumer({{'bootstrap.servers': BOOTSTRAP, 'group.id': 'g1', 'auto.offset.reset': 'earliest',
              'enable.auto.commit': False, 'client.id': 'sluice-consumer'}})
c.subscribe(['clicks-gzip'])
got, deadline = 0, time.time() + 60
while got < {n} and time.time() < deadline:
    m = c.poll(1.0)
    if m is None:
        continue
    if m.error():
        raise KafkaException(m.error())
    got += 1
c.commit(asynchronous=False)
c.close()
print('consumed', got)
"
    );
    let out = kafka_python(&bootstrap, &script);
    for codec in codecs {
        assert!(out.contains(&format!("delivered {codec} {n}")), "{out:?}\n{}", broker.log());
    }
    assert!(out.contains(&format!("delivered idem {n}")), "{out:?}");
    assert!(out.contains(&format!("consumed {n}")), "{out:?}");
    let m = proxy.metrics();
    for codec in codecs {
        let topic = format!("clicks-{codec}");
        assert_eq!(topic_records(&m, "kf", &topic, "Produce"), f64::from(n), "{topic}");
    }
    assert_eq!(topic_records(&m, "kf", "idem", "Produce"), f64::from(n));
    assert!(topic_records(&m, "kf", "clicks-gzip", "Fetch") >= f64::from(n), "{}", m.0);
    assert!(
        m.get("sluice_kafka_topic_bytes_total", &[("listener", "kf"), ("topic", "clicks-zstd"), ("op", "Produce")])
            > 0.0
    );
    assert!(ops(&m, "kf", "Produce", "ok") > 0.0);
    assert_eq!(ops(&m, "kf", "Produce", "error"), 0.0);
    for op in ["Metadata", "FindCoordinator", "JoinGroup", "SyncGroup", "Fetch", "OffsetCommit", "InitProducerId"] {
        assert!(ops(&m, "kf", op, "ok") > 0.0, "{op}: {}", m.0);
    }
    let requests = |client_id| {
        m.get("sluice_kafka_client_requests_total", &[("listener", "kf"), ("client_id", client_id), ("op", "Produce")])
    };
    assert!(requests("sluice-test") > 0.0, "{}", m.0);
    assert!(m.get("sluice_kafka_client_requests_total", &[("listener", "kf"), ("client_id", "sluice-consumer")]) > 0.0);
    assert!(m.get("sluice_kafka_brokers_rewritten_total", &[("listener", "kf")]) > 0.0);
    assert_eq!(m.get("sluice_kafka_decode_errors_total", &[("listener", "kf")]), 0.0);
}

#[test]
fn kafka_python_produces_and_consumes_through_sluice() {
    let broker = Kafka::start();
    broker.create_topic("kpy", 1);
    let proxy = kafka_listener("kf_kpy", &broker, "");
    let script = "
p = kafka.KafkaProducer(bootstrap_servers=BOOTSTRAP, acks='all', enable_idempotence=False, client_id='kpy')
for i in range(40):
    p.send('kpy', b'x%d' % i)
p.flush(30)
p.close()
c = kafka.KafkaConsumer('kpy', bootstrap_servers=BOOTSTRAP, auto_offset_reset='earliest', consumer_timeout_ms=5000,
                        enable_auto_commit=False)
print('consumed', sum(1 for _ in c))
c.close()
";
    let out = kafka_python(&proxy.addr("kf_kpy").to_string(), script);
    assert_eq!(out, ["consumed 40"]);
    let m = proxy.metrics();
    assert_eq!(topic_records(&m, "kf_kpy", "kpy", "Produce"), 40.0, "{}", m.0);
    assert_eq!(topic_records(&m, "kf_kpy", "kpy", "Fetch"), 40.0);
}

#[test]
fn metadata_names_only_sluice_addresses() {
    let broker = Kafka::start();
    broker.create_topic("meta", 3);
    let proxy = kafka_listener("kf_meta", &broker, "");
    let addr = proxy.addr("kf_meta");
    let (ok, listing, err) = kcat(&["-b", &addr.to_string(), "-L"], None);
    assert!(ok, "kcat -L: {err}");
    assert!(listing.contains("topic \"meta\" with 3 partitions"), "{listing}");
    let brokers = kcat_brokers(&listing);
    assert!(!brokers.is_empty(), "{listing}");
    for b in &brokers {
        assert_eq!(b, &addr.to_string(), "kcat was told {b}, not sluice's {addr}:\n{listing}");
    }
    // kcat produce and consume through the same listener.
    let (ok, _, err) = kcat(&["-b", &addr.to_string(), "-P", "-t", "meta", "-p", "0", "-K:"], Some(b"a:1\nb:2\nc:3\n"));
    assert!(ok, "kcat -P: {err}");
    let (ok, out, err) =
        kcat(&["-b", &addr.to_string(), "-C", "-t", "meta", "-p", "0", "-o", "beginning", "-e", "-f", "%k=%s\n"], None);
    assert!(ok, "kcat -C: {err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["a=1", "b=2", "c=3"]);
    assert_eq!(topic_records(&proxy.metrics(), "kf_meta", "meta", "Produce"), 3.0);
}

#[test]
fn a_broker_with_an_address_of_its_own_gets_a_listener_from_broker_ports() {
    // The broker advertises `localhost`, which is not how the cluster names it, so sluice
    // opens a listener for it on the one port of its range.
    let broker = Kafka::start_advertising("localhost");
    broker.create_topic("far", 1);
    let broker_port = free_port();
    let extra = format!("    kafka: {{ advertised_host: 127.0.0.1, broker_ports: \"{broker_port}-{broker_port}\" }}\n");
    let proxy = kafka_listener("kf_ports", &broker, &extra);
    let addr = proxy.addr("kf_ports");
    let (ok, listing, err) = kcat(&["-b", &addr.to_string(), "-L"], None);
    assert!(ok, "kcat -L: {err}");
    assert_eq!(kcat_brokers(&listing), [format!("127.0.0.1:{broker_port}")], "{listing}");
    let script = format!("{PRODUCE}\nprint('delivered', produce('far', 50))\n");
    assert_eq!(kafka_python(&addr.to_string(), &script), ["delivered 50"]);
    let m = proxy.metrics();
    assert_eq!(topic_records(&m, "kf_ports", "far", "Produce"), 50.0, "the broker listener shares the stats");
    // The produce went to the broker's own listener (named after the broker id).
    let broker_connections: f64 = m
        .0
        .lines()
        .filter(|l| l.starts_with("sluice_downstream_connections_total{") && l.contains("listener=\"kf_ports-broker-"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert!(broker_connections >= 1.0, "{}", m.0);
}

#[test]
fn without_broker_ports_a_broker_is_told_as_the_listener_itself() {
    // The broker advertises a name sluice has no listener for and no port range to open one
    // from: clients are told the listener's own address, never the broker's. The name
    // resolves nowhere (RFC 6761 `.invalid`), so a client told it could not produce at all.
    let broker = Kafka::start_advertising("broker.invalid");
    broker.create_topic("near", 1);
    let proxy = kafka_listener("kf_noports", &broker, "");
    let addr = proxy.addr("kf_noports");
    let (ok, listing, err) = kcat(&["-b", &addr.to_string(), "-L"], None);
    assert!(ok, "kcat -L: {err}");
    assert_eq!(kcat_brokers(&listing), [addr.to_string()], "{listing}");
    let script = format!("{PRODUCE}\nprint('delivered', produce('near', 25))\n");
    assert_eq!(kafka_python(&addr.to_string(), &script), ["delivered 25"]);
    assert_eq!(topic_records(&proxy.metrics(), "kf_noports", "near", "Produce"), 25.0);
}

#[test]
fn a_deny_rule_refuses_delete_topics_with_topic_authorization_failed() {
    let broker = Kafka::start();
    broker.create_topic("keep", 1);
    let extra = "    rules:\n      - match: { op: [DeleteTopics, CreateTopics] }\n        action: deny\n";
    let proxy = kafka_listener("kf_deny", &broker, extra);
    let script = "
a = AdminClient({'bootstrap.servers': BOOTSTRAP})
for name, fut in a.delete_topics(['keep'], operation_timeout=10).items():
    try:
        fut.result()
        print('deleted', name)
    except KafkaException as e:
        print('refused', name, e.args[0].name())
for name, fut in a.create_topics([NewTopic('fresh', 1, 1)]).items():
    try:
        fut.result()
        print('created', name)
    except KafkaException as e:
        print('refused', name, e.args[0].name())
print('topics', sorted(t for t in a.list_topics(timeout=10).topics if not t.startswith('_')))
";
    let out = kafka_python(&proxy.addr("kf_deny").to_string(), script);
    assert_eq!(
        out,
        ["refused keep TOPIC_AUTHORIZATION_FAILED", "refused fresh TOPIC_AUTHORIZATION_FAILED", "topics ['keep']"]
    );
    let m = proxy.metrics();
    assert_eq!(ops(&m, "kf_deny", "DeleteTopics", "denied"), 1.0);
    assert_eq!(ops(&m, "kf_deny", "CreateTopics", "denied"), 1.0);
    // The broker still has the topic.
    let direct = kafka_python(
        &broker.addr(),
        "print(sorted(AdminClient({'bootstrap.servers': BOOTSTRAP}).list_topics(timeout=10).topics))",
    );
    assert!(direct[0].contains("'keep'"), "{direct:?}");
}

#[test]
fn a_produce_quota_in_bytes_delays_the_producer_to_its_rate() {
    let broker = Kafka::start();
    broker.create_topic("slow", 1);
    // 20 KB/s with a 10 KB burst; the producer sends ~60 KB in 20 batches of ~3 KB.
    let extra = "    rules:\n      - match: { op: Produce, client_id: throttled }\n        \
                 rate_limit: { rate: 20000/s, burst: 10000, per: client_id, cost: bytes, max_delay: 30s }\n        \
                 action: delay\n";
    let proxy = kafka_listener("kf_delay", &broker, extra);
    let script = "
p = Producer({'bootstrap.servers': BOOTSTRAP, 'acks': 'all', 'client.id': 'throttled', 'linger.ms': 0,
              'batch.num.messages': 30, 'compression.type': 'none'})
start = time.time()
for batch in range(20):
    for i in range(30):
        p.produce('slow', value=b'%0100d' % i)
    p.flush(60)
print('elapsed %.2f' % (time.time() - start))
";
    let started = Instant::now();
    let out = kafka_python(&proxy.addr("kf_delay").to_string(), script);
    let elapsed: f64 = out[0].strip_prefix("elapsed ").unwrap().parse().unwrap();
    let m = proxy.metrics();
    let bytes =
        m.get("sluice_kafka_topic_bytes_total", &[("listener", "kf_delay"), ("topic", "slow"), ("op", "Produce")]);
    assert_eq!(topic_records(&m, "kf_delay", "slow", "Produce"), 600.0);
    // What the bucket could not absorb at once, at the configured rate.
    let floor = (bytes - 10_000.0) / 20_000.0;
    assert!(elapsed >= floor * 0.8, "{bytes} bytes took {elapsed} s, the quota allows no less than {floor} s");
    assert!(
        elapsed <= floor * 2.0 + 5.0,
        "{bytes} bytes took {elapsed} s for a {floor} s floor ({:?})",
        started.elapsed()
    );
    assert!(
        m.get("sluice_kafka_throttle_time_ms_count", &[("listener", "kf_delay"), ("kind", "sluice")]) > 0.0,
        "{}",
        m.0
    );
    assert_eq!(ops(&m, "kf_delay", "Produce", "limited"), 0.0);
}

#[test]
fn a_produce_quota_with_reject_fails_deliveries_with_policy_violation() {
    let broker = Kafka::start();
    broker.create_topic("capped", 1);
    let extra = "    rules:\n      - match: { op: Produce, target: capped }\n        \
                 rate_limit: { rate: 1/m, burst: 1, per: client_id }\n        action: reject\n";
    let proxy = kafka_listener("kf_reject", &broker, extra);
    let script = "
p = Producer({'bootstrap.servers': BOOTSTRAP, 'acks': 'all', 'client.id': 'capped-client', 'linger.ms': 0,
              'retries': 0})
results = []
def cb(err, msg):
    results.append('ok' if err is None else err.name())
for i in range(3):
    p.produce('capped', value=b'm%d' % i, on_delivery=cb)
    p.flush(30)
print(results)
";
    let out = kafka_python(&proxy.addr("kf_reject").to_string(), script);
    assert_eq!(out, ["['ok', 'POLICY_VIOLATION', 'POLICY_VIOLATION']"]);
    let m = proxy.metrics();
    assert_eq!(ops(&m, "kf_reject", "Produce", "limited"), 2.0);
    assert_eq!(topic_records(&m, "kf_reject", "capped", "Produce"), 1.0, "refused records are not counted");
}

#[test]
fn bytes_that_are_not_kafka_get_a_clean_close() {
    let broker = Kafka::start();
    let proxy = kafka_listener("kf_garbage", &broker, "");
    let addr: SocketAddr = proxy.addr("kf_garbage");
    for garbage in [&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], &[0xff; 64][..], &[0, 0, 0, 8, 0, 3, 0][..]] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(garbage).unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let (bytes, eof) = read_to_eof(&mut s, Duration::from_secs(5));
        assert!(eof, "the connection closes");
        assert!(bytes.is_empty(), "nothing is answered to {garbage:?}: {bytes:?}");
    }
    let m = proxy.metrics();
    assert!(
        m.get("sluice_kafka_decode_errors_total", &[("listener", "kf_garbage"), ("direction", "client")]) >= 2.0,
        "{}",
        m.0
    );
    // The listener still serves Kafka.
    let (ok, listing, err) = kcat(&["-b", &addr.to_string(), "-L"], None);
    assert!(ok && !kcat_brokers(&listing).is_empty(), "{err}{listing}");
}

#[test]
fn ssl_clients_reach_the_broker_through_sluices_tls() {
    let broker = Kafka::start_advertising("localhost");
    broker.create_topic("secure", 1);
    let dir = Scratch::new("kafka-tls");
    let (cert, key) = self_signed(&dir);
    let broker_port = free_port();
    let extra = format!(
        "    tls: {{ cert: \"{}\", key: \"{}\" }}\n    kafka: {{ advertised_host: localhost, broker_ports: \"{broker_port}\" }}\n",
        cert.display(),
        key.display()
    );
    let proxy = kafka_listener("kf_tls", &broker, &extra);
    let bootstrap = format!("localhost:{}", proxy.addr("kf_tls").port());
    let ssl = ["-X", "security.protocol=ssl"];
    let ca = format!("ssl.ca.location={}", cert.display());
    let (ok, listing, err) = kcat(&[&ssl[..], &["-X", &ca, "-b", &bootstrap, "-L"]].concat(), None);
    assert!(ok, "kcat -L over TLS: {err}");
    assert_eq!(kcat_brokers(&listing), [format!("localhost:{broker_port}")], "{listing}");
    let script = format!(
        "{PRODUCE}\nprint('delivered', produce('secure', 20, **{{'security.protocol': 'ssl', 'ssl.ca.location': {:?}}}))\n",
        cert.display().to_string()
    );
    assert_eq!(kafka_python(&bootstrap, &script), ["delivered 20"]);
    assert_eq!(topic_records(&proxy.metrics(), "kf_tls", "secure", "Produce"), 20.0);
}
