//! Kafka codec tests on captured sessions (fixtures/kafka, see capture.py and README.md
//! there) and on hand-built bodies; hostile input is in `hostile_tests`.
//!
//! Each fixture keeps one connection's directions in `<name>.client` / `<name>.server`
//! (a session that opened several connections: `<name>-1`, `<name>-2`, ...). Both are
//! framed whole, in small chunks and split in two at every byte boundary (the same frames
//! every time); then the replay runs the client's frames through the [`Correlator`] and
//! matches every server frame to its request, decodes every body this codec knows, rewrites
//! every broker address and answers every answerable request with an error response; the
//! content tests check what the capture script did (topics, record counts, codecs).

use std::collections::BTreeMap;

use bytes::BytesMut;

use super::*;
use crate::framing::Decode;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/kafka");

// What capture.py produced.
const N_CODEC: u64 = 100;
const N_IDEMPOTENT: u64 = 50;
const N_GROUP: u64 = 30;
const N_KPY: u64 = 20;

pub(super) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every connection captured (`<stem>.client` files), sorted.
pub(super) fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().unwrap().strip_suffix(".client").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    names
}

/// The connections of one session (`name` or `name-<i>`).
fn connections(session: &str) -> Vec<String> {
    let conns: Vec<String> = fixture_names()
        .into_iter()
        .filter(|n| {
            n == session
                || n.strip_prefix(session).and_then(|r| r.strip_prefix('-')).is_some_and(|i| i.parse::<u32>().is_ok())
        })
        .collect();
    assert!(!conns.is_empty(), "no fixture for {session}");
    conns
}

/// Frames `data` fed in pieces ending at `cuts`; every byte must belong to a frame.
pub(super) fn frame(data: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = vec![];
    let mut given = 0;
    for &cut in cuts.iter().filter(|&&c| c > 0 && c < data.len()).chain([&data.len()]) {
        if cut <= given {
            continue;
        }
        buf.extend_from_slice(&data[given..cut]);
        given = cut;
        while let Some(f) = decoder.decode(&mut buf).unwrap() {
            out.push(f);
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    out
}

#[test]
fn every_fixture_frames_the_same_whole_chunked_and_split_anywhere() {
    for name in fixture_names() {
        for side in ["client", "server"] {
            let data = fixture(&format!("{name}.{side}"));
            let whole = frame(&data, &[]);
            assert!(!whole.is_empty(), "{name}.{side}");
            assert_eq!(whole.iter().map(|f| f.bytes().len()).sum::<usize>(), data.len());
            for chunk in [1, 3, 7, 64] {
                let cuts: Vec<usize> = (chunk..data.len()).step_by(chunk).collect();
                assert_eq!(frame(&data, &cuts), whole, "{name}.{side} in chunks of {chunk}");
            }
            for k in 0..data.len() {
                assert_eq!(frame(&data, &[k]), whole, "{name}.{side} split at {k}");
            }
            for f in &whole {
                assert_eq!(peek(f.bytes(), &default_limits()), Ok(Some(f.bytes().len())));
                assert_eq!(Frame::new(f.bytes().clone(), &default_limits()).as_ref(), Ok(f));
            }
        }
    }
}

/// One request and, unless it expects none, its response.
pub(super) struct Exchange {
    pub request: Frame,
    pub response: Option<Frame>,
}

impl Exchange {
    pub fn request(&self) -> Request<'_> {
        Request::parse(self.request.payload()).unwrap()
    }

    pub fn response(&self) -> Option<Response<'_>> {
        let h = self.request().header;
        self.response.as_ref().map(|f| Response::parse(f.payload(), h.api_key, h.api_version).unwrap())
    }
}

/// Sessions in which the broker dropped the connection with requests in flight (tansu
/// cannot read kafka-python's magic-1 message sets).
const REFUSED: &[&str] = &["kafka_python_v0_10"];

/// Replays one connection through the correlator: every response must match its request
/// (and the same correlation id), none may be left over, and every request that expects a
/// response has one (but in the [`REFUSED`] sessions, where the broker closed).
pub(super) fn replay(name: &str) -> Vec<Exchange> {
    let (out, unanswered) = replay_lenient(name);
    if !REFUSED.iter().any(|r| name.starts_with(r)) {
        assert_eq!(unanswered, 0, "{name}: requests left unanswered");
    }
    out
}

/// As [`replay`], also returning how many requests were left in flight when it ended.
pub(super) fn replay_lenient(name: &str) -> (Vec<Exchange>, usize) {
    let client = frame(&fixture(&format!("{name}.client")), &[]);
    let server = frame(&fixture(&format!("{name}.server")), &[]);
    let mut correlator: Correlator<usize> = Correlator::new(64);
    let mut out: Vec<Exchange> = vec![];
    let mut responses = server.into_iter();
    for f in client {
        let i = out.len();
        match correlator.request(&f, i).unwrap_or_else(|e| panic!("{name}: request {i}: {e}")) {
            Inbound::Request(r) => assert!(r.header.api_key.is_known(), "{name}: {:?}", r.header),
            other => panic!("{name}: {other:?}"),
        }
        out.push(Exchange { request: f, response: None });
        // A response can only follow its request: match what is in flight.
        while correlator.in_flight() > 0 {
            let Some(resp) = responses.next() else { break };
            match correlator.response(&resp).unwrap_or_else(|e| panic!("{name}: response: {e}")) {
                Outbound::Response(r, j) => {
                    assert_eq!(r.correlation_id, out[j].request().header.correlation_id);
                    out[j].response = Some(resp.clone());
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
    assert!(responses.next().is_none(), "{name}: responses left over");
    let unanswered = correlator.drain().len();
    (out, unanswered)
}

#[test]
fn every_response_matches_its_request_and_every_known_body_decodes() {
    let mut seen: BTreeMap<(ApiKey, i16), usize> = BTreeMap::new();
    for name in fixture_names() {
        for (i, x) in replay(&name).iter().enumerate() {
            let req = x.request();
            *seen.entry((req.header.api_key, req.header.api_version)).or_default() += 1;
            RequestBody::parse(&req).unwrap_or_else(|e| panic!("{name} #{i} {:?}: {e}", req.header));
            match x.response() {
                Some(resp) => {
                    let body =
                        ResponseBody::parse(&resp).unwrap_or_else(|e| panic!("{name} #{i} {:?}: {e}", req.header));
                    if let Some(t) = body.throttle_time_ms() {
                        assert_eq!(t, 0, "{name} #{i}");
                    }
                }
                None => assert!(
                    !req.expects_response() || REFUSED.iter().any(|r| name.starts_with(r)),
                    "{name} #{i} {:?} has no response",
                    req.header
                ),
            }
        }
    }
    // Old (non-flexible) and flexible versions of the main APIs were both captured.
    let versions = |k: ApiKey| seen.keys().filter(|(a, _)| *a == k).map(|(_, v)| *v).collect::<Vec<_>>();
    for k in [ApiKey::PRODUCE, ApiKey::FETCH, ApiKey::METADATA, ApiKey::API_VERSIONS] {
        let v = versions(k);
        let first_flexible = k.first_flexible_version().unwrap().unwrap();
        assert!(v.iter().any(|&v| v < first_flexible), "{k}: {v:?}");
        assert!(v.iter().any(|&v| v >= first_flexible), "{k}: {v:?}");
    }
    eprintln!("{seen:?}");
}

/// The exchanges of every connection of a session.
fn session(name: &str) -> Vec<Exchange> {
    connections(name).iter().flat_map(|c| replay(c)).collect()
}

fn of(xs: &[Exchange], key: ApiKey) -> impl Iterator<Item = &Exchange> {
    xs.iter().filter(move |x| x.request().header.api_key == key)
}

fn api_keys(xs: &[Exchange]) -> std::collections::BTreeSet<ApiKey> {
    xs.iter().map(|x| x.request().header.api_key).collect()
}

/// Topic → (records, codecs) over a session's Produce requests, checking every partition's
/// response is error-free.
fn produced(xs: &[Exchange]) -> BTreeMap<String, (u64, Vec<Compression>)> {
    let mut out: BTreeMap<String, (u64, Vec<Compression>)> = BTreeMap::new();
    for x in of(xs, ApiKey::PRODUCE) {
        let req = x.request();
        let p = ProduceRequest::parse(req.body, req.header.api_version).unwrap();
        assert_eq!(p.acks, -1, "acks=all");
        for t in &p.topics {
            let e = out.entry(t.topic.name().unwrap().to_owned()).or_default();
            for part in &t.partitions {
                let s = part.summary().unwrap();
                e.0 += s.records;
                e.1.extend(s.compression);
                assert!(!s.mixed_compression);
                for b in batches(part.records.unwrap(), false) {
                    assert_eq!(b.unwrap().crc_ok(), Some(true));
                }
            }
        }
        let resp = x.response().unwrap();
        let r = ProduceResponse::parse(resp.body, resp.api_version).unwrap();
        assert!(r.topics.iter().flat_map(|t| &t.partitions).all(|p| p.error_code == 0), "{r:?}");
    }
    out
}

/// Topic → records returned by a session's Fetch responses (Fetch v13+ names topics by
/// id: the names come from the session's Metadata responses).
fn fetched(xs: &[Exchange]) -> BTreeMap<String, u64> {
    let mut names: BTreeMap<[u8; 16], String> = BTreeMap::new();
    for x in of(xs, ApiKey::METADATA) {
        let resp = x.response().unwrap();
        let m = MetadataResponse::parse(resp.body, resp.api_version).unwrap();
        names.extend(m.topic_ids().map(|(id, n)| (id, n.to_owned())));
    }
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for x in of(xs, ApiKey::FETCH) {
        let resp = x.response().unwrap();
        let r = FetchResponse::parse(resp.body, resp.api_version).unwrap();
        assert_eq!(r.error_code, 0);
        for t in &r.topics {
            let name = match t.topic {
                TopicRef::Name(n) => n.to_owned(),
                TopicRef::Id(id) => names[&id].clone(),
            };
            for p in &t.partitions {
                assert_eq!(p.error_code, 0, "{p:?}");
                let s = p.summary().unwrap();
                *out.entry(name.clone()).or_default() += s.records;
            }
        }
    }
    out
}

#[test]
fn producers_sent_what_the_capture_produced_with_each_codec() {
    for (codec, want) in [
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let xs = session(&format!("produce_{codec}"));
        let p = produced(&xs);
        let (records, codecs) = &p[&format!("clicks-{codec}")];
        assert_eq!(*records, N_CODEC, "{codec}");
        assert!(codecs.iter().all(|c| *c == want), "{codec}: {codecs:?}");
        for x in of(&xs, ApiKey::PRODUCE) {
            assert_eq!(x.request().header.client_id, Some("fixture-producer"));
            assert!(x.request().header.api_version >= 9, "librdkafka 2.16 produces with a flexible version");
        }
    }
}

#[test]
fn the_idempotent_producer_gets_a_producer_id_and_uses_it() {
    let xs = session("idempotent_produce");
    assert!(api_keys(&xs).contains(&ApiKey::INIT_PRODUCER_ID), "{:?}", api_keys(&xs));
    assert_eq!(produced(&xs)["idem"].0, N_IDEMPOTENT);
    for x in of(&xs, ApiKey::PRODUCE) {
        let req = x.request();
        let p = ProduceRequest::parse(req.body, req.header.api_version).unwrap();
        for part in p.topics.iter().flat_map(|t| &t.partitions) {
            for b in batches(part.records.unwrap(), false) {
                let b = b.unwrap();
                assert!(b.producer_id >= 0 && b.base_sequence >= 0, "{b:?}");
            }
        }
    }
}

#[test]
fn the_consumer_group_joins_fetches_and_commits() {
    let xs = session("consumer_group");
    let keys = api_keys(&xs);
    for k in [
        ApiKey::FIND_COORDINATOR,
        ApiKey::JOIN_GROUP,
        ApiKey::SYNC_GROUP,
        ApiKey::FETCH,
        ApiKey::OFFSET_COMMIT,
        ApiKey::OFFSET_FETCH,
    ] {
        assert!(keys.contains(&k), "{k} not in {keys:?}");
    }
    assert_eq!(fetched(&xs)["group-topic"], N_GROUP);
    for x in of(&xs, ApiKey::FIND_COORDINATOR) {
        let req = x.request();
        let f = FindCoordinatorRequest::parse(req.body, req.header.api_version).unwrap();
        assert_eq!(f.keys, ["fixture-group"]);
    }
}

#[test]
fn kafka_python_produces_and_consumes_with_older_versions() {
    let xs = session("kafka_python");
    assert_eq!(produced(&xs)["kpy-topic"].0, N_KPY);
    assert_eq!(fetched(&xs)["kpy-topic"], N_KPY);
    for x in &xs {
        let h = x.request().header;
        assert_eq!(h.client_id, Some("fixture-kpy"), "{h:?}");
        if h.api_key != ApiKey::API_VERSIONS {
            assert_eq!(h.header_version, 1, "{h:?} is not flexible");
        }
    }
}

/// kafka-python with api_version 0.10.1 sends Produce v2 with magic-1 message sets, which
/// tansu cannot read: it drops the connection, and the Produce gets no response.
#[test]
fn kafka_python_0_10_sends_legacy_message_sets() {
    let mut records = 0;
    for name in connections("kafka_python_v0_10") {
        for x in replay(&name) {
            let req = x.request();
            if req.header.api_key != ApiKey::PRODUCE {
                continue;
            }
            assert_eq!(req.header.api_version, 2);
            assert!(x.response.is_none());
            let p = ProduceRequest::parse(req.body, 2).unwrap();
            for part in p.topics.iter().flat_map(|t| &t.partitions) {
                for b in batches(part.records.unwrap(), false) {
                    let b = b.unwrap();
                    assert_eq!((b.magic, b.records, b.compression(), b.crc_ok()), (1, 1, Compression::None, None));
                }
                records += part.summary().unwrap().records;
            }
        }
    }
    // The producer retried its three messages on each new connection.
    assert!(records >= 3 && records % 3 == 0, "{records}");
}

/// tansu 0.6.0 refuses SASL PLAIN (UNSUPPORTED_SASL_MECHANISM while listing PLAIN).
#[test]
fn the_sasl_handshake_is_refused_by_tansu() {
    let xs = session("sasl_plain");
    let x = of(&xs, ApiKey::SASL_HANDSHAKE).next().unwrap();
    let req = x.request();
    assert_eq!(SaslHandshakeRequest::parse(req.body, req.header.api_version).unwrap().mechanism, "PLAIN");
    let resp = x.response().unwrap();
    let r = SaslHandshakeResponse::parse(resp.body, resp.api_version).unwrap();
    assert_eq!((r.error_code, r.mechanisms), (33, vec!["PLAIN"]));
}

#[test]
fn kcat_lists_the_broker_and_the_topics() {
    let xs = session("kcat_metadata");
    let mut topics = vec![];
    for x in of(&xs, ApiKey::METADATA) {
        let resp = x.response().unwrap();
        let m = MetadataResponse::parse(resp.body, resp.api_version).unwrap();
        assert_eq!(m.brokers.len(), 1);
        assert_eq!(m.brokers[0].host, "127.0.0.1");
        topics.extend(m.topics.iter().filter_map(|t| t.name));
    }
    for t in ["clicks-gzip", "clicks-zstd", "group-topic"] {
        assert!(topics.contains(&t), "{t} not in {topics:?}");
    }
}

#[test]
fn the_admin_client_creates_and_deletes_topics() {
    let xs = session("admin_topics");
    let created: Vec<&str> = of(&xs, ApiKey::CREATE_TOPICS)
        .flat_map(|x| {
            let r = x.request();
            CreateTopicsRequest::parse(r.body, r.header.api_version).unwrap().topics.into_iter().map(|t| t.name)
        })
        .collect();
    assert_eq!(created, ["admin-a", "admin-b"]);
    let deleted: Vec<&str> = of(&xs, ApiKey::DELETE_TOPICS)
        .flat_map(|x| {
            let r = x.request();
            DeleteTopicsRequest::parse(r.body, r.header.api_version).unwrap().topics.into_iter().filter_map(|t| t.name)
        })
        .collect();
    assert_eq!(deleted, ["admin-a", "admin-b"]);
}

/// Every broker address in every captured Metadata / FindCoordinator / DescribeCluster
/// response is rewritten; the result decodes to the same value but for the addresses, and
/// rewriting to the same addresses gives back the original bytes.
#[test]
fn broker_addresses_rewrite_and_round_trip() {
    let mut rewritten = 0;
    for name in fixture_names() {
        for x in replay(&name) {
            let Some(resp) = x.response() else { continue };
            let (key, v, body) = (resp.api_key, resp.api_version, resp.body);
            let proxy = |id: i32, _: &str, port: i32| (format!("sluice-{id}.proxy.example"), port + 1000);
            let Some(new) = rewrite_brokers(key, v, body, proxy).unwrap() else { continue };
            let same = rewrite_brokers(key, v, body, |_, h, p| (h.to_owned(), p)).unwrap().unwrap();
            assert_eq!(&same[..], body, "{name}: identity rewrite of {key} v{v}");
            // The rewritten body, re-framed, still matches its request.
            let framed = resp.reframe(&new).unwrap();
            let f = Frame::new(framed, &default_limits()).unwrap();
            let again = Response::parse(f.payload(), key, v).unwrap();
            assert_eq!(again.body, &new[..]);
            match (ResponseBody::parse(&resp).unwrap(), ResponseBody::parse(&again).unwrap()) {
                (ResponseBody::Metadata(mut a), ResponseBody::Metadata(b)) => {
                    for br in &mut a.brokers {
                        assert_eq!(br.port, b.brokers[0].port - 1000);
                    }
                    let hosts: Vec<String> =
                        a.brokers.iter().map(|b| format!("sluice-{}.proxy.example", b.node_id)).collect();
                    for (br, h) in a.brokers.iter_mut().zip(&hosts) {
                        br.host = h;
                        br.port += 1000;
                    }
                    assert_eq!(a, b);
                }
                (ResponseBody::FindCoordinator(mut a), ResponseBody::FindCoordinator(b)) => {
                    let hosts: Vec<String> =
                        a.coordinators.iter().map(|c| format!("sluice-{}.proxy.example", c.broker.node_id)).collect();
                    for (c, h) in a.coordinators.iter_mut().zip(&hosts) {
                        if c.broker.node_id >= 0 {
                            c.broker.host = h;
                            c.broker.port += 1000;
                        }
                    }
                    assert_eq!(a, b);
                }
                (ResponseBody::DescribeCluster(mut a), ResponseBody::DescribeCluster(b)) => {
                    let hosts: Vec<String> =
                        a.brokers.iter().map(|b| format!("sluice-{}.proxy.example", b.node_id)).collect();
                    for (br, h) in a.brokers.iter_mut().zip(&hosts) {
                        br.host = h;
                        br.port += 1000;
                    }
                    assert_eq!(a, b);
                }
                other => panic!("{other:?}"),
            }
            rewritten += 1;
        }
    }
    assert!(rewritten >= 10, "{rewritten}");
}

/// Every answerable captured request gets an error response that decodes as its API's
/// response, echoes its topics and partitions, and carries the error everywhere.
#[test]
fn error_responses_echo_the_request_and_decode() {
    let mut answered = BTreeMap::<ApiKey, usize>::new();
    for name in fixture_names() {
        for x in replay(&name) {
            let req = x.request();
            let key = req.header.api_key;
            let Some(bytes) = error_response(&req, POLICY_VIOLATION, 250, Some("denied by sluice")).unwrap() else {
                assert!(!can_answer(key));
                continue;
            };
            *answered.entry(key).or_default() += 1;
            let f = Frame::new(bytes, &default_limits()).unwrap();
            let mut c: Correlator<()> = Correlator::new(1);
            c.request(&x.request, ()).unwrap();
            let Outbound::Response(resp, ()) = c.response(&f).unwrap() else { panic!() };
            check_error_response(&req, &ResponseBody::parse(&resp).unwrap(), resp.body, POLICY_VIOLATION);
        }
    }
    for k in [ApiKey::PRODUCE, ApiKey::FETCH, ApiKey::METADATA, ApiKey::CREATE_TOPICS, ApiKey::DELETE_TOPICS] {
        assert!(answered.contains_key(&k), "{k}: {answered:?}");
    }
}

pub(super) fn check_error_response(req: &Request<'_>, body: &ResponseBody<'_>, body_bytes: &[u8], code: i16) {
    let v = req.header.api_version;
    match (RequestBody::parse(req).unwrap(), body) {
        (RequestBody::Produce(p), ResponseBody::Produce(r)) => {
            assert_eq!(r.topics.len(), p.topics.len());
            for (a, b) in p.topics.iter().zip(&r.topics) {
                assert_eq!(a.topic, b.topic);
                let idx: Vec<i32> = a.partitions.iter().map(|p| p.index).collect();
                assert_eq!(b.partitions.iter().map(|p| p.index).collect::<Vec<_>>(), idx);
                assert!(b.partitions.iter().all(|p| p.error_code == code));
            }
            assert_eq!(r.throttle_time_ms, if v >= 1 { 250 } else { 0 });
        }
        (RequestBody::Fetch(p), ResponseBody::Fetch(r)) => {
            assert_eq!(r.error_code, if v >= 7 { code } else { 0 });
            assert_eq!(r.topics.len(), p.topics.len());
            for (a, b) in p.topics.iter().zip(&r.topics) {
                assert_eq!(a.topic, b.topic);
                assert_eq!(a.partitions.len(), b.partitions.len());
                assert!(b.partitions.iter().all(|p| p.error_code == code && p.records_len() == 0));
            }
        }
        (RequestBody::Metadata(p), ResponseBody::Metadata(r)) => {
            assert!(r.brokers.is_empty());
            let asked: Vec<_> = p.topics.unwrap_or_default().iter().map(|t| t.name).collect();
            assert_eq!(r.topics.iter().map(|t| t.name).collect::<Vec<_>>(), asked);
            assert!(r.topics.iter().all(|t| t.error_code == code));
        }
        (RequestBody::CreateTopics(p), ResponseBody::Other) => {
            let names: Vec<_> = p.topics.iter().map(|t| Some(t.name)).collect();
            assert_eq!(admin_response_topics(req, body_bytes, code), names);
        }
        (RequestBody::DeleteTopics(p), ResponseBody::Other) => {
            let names: Vec<_> = p.topics.iter().map(|t| t.name).collect();
            assert_eq!(admin_response_topics(req, body_bytes, code), names);
        }
        other => panic!("{other:?}"),
    }
}

/// Reads a CreateTopics / DeleteTopics response (the codec does not decode these), checking
/// every entry's error code; returns the topic names.
fn admin_response_topics<'a>(req: &Request<'_>, body: &'a [u8], code: i16) -> Vec<Option<&'a str>> {
    let (key, v) = (req.header.api_key, req.header.api_version);
    let flexible = key.is_flexible(v).unwrap();
    let create = key == ApiKey::CREATE_TOPICS;
    let mut r = Reader::new(body);
    if v > i16::from(create) {
        assert_eq!(r.i32("throttle").unwrap(), 250);
    }
    let n = r.array_len(flexible, 1, "topics").unwrap();
    let mut names = vec![];
    for _ in 0..n {
        names.push(if !create && v >= 6 {
            r.nullable_string(flexible, "name").unwrap()
        } else {
            Some(r.string(flexible, "name").unwrap())
        });
        if (create && v >= 7) || (!create && v >= 6) {
            r.uuid("id").unwrap();
        }
        assert_eq!(r.i16("code").unwrap(), code);
        if (create && v >= 1) || (!create && v >= 5) {
            assert_eq!(r.nullable_string(flexible, "message").unwrap(), Some("denied by sluice"));
        }
        if create && v >= 5 {
            assert_eq!((r.i32("n").unwrap(), r.i16("rf").unwrap()), (-1, -1));
            assert_eq!(r.nullable_array(flexible, 1, "configs").unwrap(), None);
        }
        r.tags_if(flexible, "t").unwrap();
    }
    r.tags_if(flexible, "t").unwrap();
    r.finish("admin response").unwrap();
    names
}

#[test]
fn api_versions_lists_what_tansu_advertises() {
    let xs = session("kcat_metadata");
    let x = of(&xs, ApiKey::API_VERSIONS).next().unwrap();
    let req = x.request();
    let r = ApiVersionsRequest::parse(req.body, req.header.api_version).unwrap();
    assert_eq!(r.client_software_name, Some("librdkafka"));
    let resp = x.response().unwrap();
    assert_eq!(resp.header_version, Some(0), "ApiVersions responses use header v0 (KIP-511)");
    let v = ApiVersionsResponse::parse(resp.body, resp.api_version).unwrap();
    assert_eq!(v.error_code, 0);
    let range = |k| v.range(k).map(|r| (r.min_version, r.max_version));
    assert_eq!(range(ApiKey::PRODUCE), Some((0, 11)));
    assert_eq!(range(ApiKey::FETCH), Some((0, 17)));
    assert_eq!(range(ApiKey::METADATA), Some((0, 12)));
    assert_eq!(range(ApiKey::API_VERSIONS), Some((0, 4)));
}

/// Writes the fuzz seeds from the fixtures:
/// `cargo test -p sluice-codecs write_kafka_fuzz_seeds -- --ignored`.
///
/// - `kafka_request`: mode byte 0, then a connection's client side;
/// - `kafka_response`: mode byte 0, the client side's length (u32, big-endian), the client
///   side, then the server side.
#[test]
#[ignore]
fn write_kafka_fuzz_seeds() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds");
    for target in ["kafka_request", "kafka_response"] {
        std::fs::create_dir_all(format!("{root}/{target}")).unwrap();
    }
    for name in fixture_names() {
        let client = fixture(&format!("{name}.client"));
        let server = fixture(&format!("{name}.server"));
        let mut seed = vec![0u8];
        seed.extend_from_slice(&client);
        std::fs::write(format!("{root}/kafka_request/{name}"), &seed).unwrap();
        let mut seed = vec![0u8];
        seed.extend_from_slice(&(client.len() as u32).to_be_bytes());
        seed.extend_from_slice(&client);
        seed.extend_from_slice(&server);
        std::fs::write(format!("{root}/kafka_response/{name}"), &seed).unwrap();
    }
}

// ---- hand-built bodies -------------------------------------------------------------------

pub(super) fn request_frame(key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Frame {
    let mut p = BytesMut::new();
    p.extend_from_slice(&key.0.to_be_bytes());
    p.extend_from_slice(&version.to_be_bytes());
    p.extend_from_slice(&correlation_id.to_be_bytes());
    if key.request_header_version(version) >= 1 {
        p.extend_from_slice(&4i16.to_be_bytes());
        p.extend_from_slice(b"test");
    }
    if key.request_header_version(version) == 2 {
        p.extend_from_slice(&[0]);
    }
    p.extend_from_slice(body);
    Frame::from_payload(&p).unwrap()
}

pub(super) fn response_frame(key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Frame {
    let mut p = correlation_id.to_be_bytes().to_vec();
    if key.response_header_version(version) == Some(1) {
        p.push(0);
    }
    p.extend_from_slice(body);
    Frame::from_payload(&p).unwrap()
}

#[test]
fn header_versions_follow_the_flexible_table() {
    assert_eq!(ApiKey::PRODUCE.request_header_version(8), 1);
    assert_eq!(ApiKey::PRODUCE.request_header_version(9), 2);
    assert_eq!(ApiKey::PRODUCE.response_header_version(9), Some(1));
    assert_eq!(ApiKey::API_VERSIONS.request_header_version(3), 2);
    assert_eq!(ApiKey::API_VERSIONS.response_header_version(3), Some(0));
    assert_eq!(ApiKey::SASL_HANDSHAKE.request_header_version(1), 1);
    assert_eq!(ApiKey::CONTROLLED_SHUTDOWN.request_header_version(0), 0);
    assert_eq!(ApiKey::DESCRIBE_CLUSTER.request_header_version(0), 2);
    assert_eq!(ApiKey(1000).request_header_version(7), 1);
    assert_eq!(ApiKey(1000).response_header_version(7), None);
    assert_eq!(ApiKey(1000).name(), "Unknown");
    assert_eq!(ApiKey(1000).to_string(), "Unknown(1000)");
    assert_eq!(ApiKey::DESCRIBE_TOPIC_PARTITIONS.to_string(), "DescribeTopicPartitions");
    for k in ApiKey::KNOWN {
        assert_ne!(k.name(), "Unknown");
    }
}

#[test]
fn unknown_api_keys_pass_by_their_header() {
    let f = request_frame(ApiKey(999), 3, 42, b"opaque body");
    let mut c: Correlator<&str> = Correlator::new(4);
    let Inbound::Request(r) = c.request(&f, "x").unwrap() else { panic!() };
    assert_eq!((r.header.api_key, r.header.api_version, r.header.correlation_id), (ApiKey(999), 3, 42));
    assert_eq!(r.header.client_id, Some("test"));
    assert_eq!(r.body, b"opaque body");
    assert_eq!(RequestBody::parse(&r), Ok(RequestBody::Other));
    let resp = response_frame(ApiKey(999), 3, 42, b"\x00answer");
    let Outbound::Response(r, "x") = c.response(&resp).unwrap() else { panic!() };
    assert_eq!((r.header_version, r.body), (None, &b"\x00answer"[..]));
    assert_eq!(ResponseBody::parse(&r), Ok(ResponseBody::Other));
    assert_eq!(c.state(), State::Ready { in_flight: 0 });
}

fn acl_body(version: i16, filters: bool) -> Vec<u8> {
    let flexible = version >= 2;
    let mut b = BytesMut::new();
    let s = |b: &mut BytesMut, v: &str| writer::put_string(b, v, flexible, "s").unwrap();
    writer::put_array_len(&mut b, 2, flexible, "a").unwrap();
    for name in ["orders", "payments"] {
        b.extend_from_slice(&[2]); // TOPIC
        s(&mut b, name);
        if version >= 1 {
            b.extend_from_slice(&[3]); // LITERAL
        }
        if filters {
            writer::put_nullable_string(&mut b, None, flexible, "p").unwrap();
        } else {
            s(&mut b, "User:alice");
        }
        s(&mut b, "*");
        b.extend_from_slice(&[3, 3]); // READ, ALLOW
        writer::put_no_tags(&mut b, flexible);
    }
    writer::put_no_tags(&mut b, flexible);
    b.to_vec()
}

#[test]
fn acl_requests_decode_and_get_error_responses() {
    for v in 0..=3 {
        for (key, filters) in [(ApiKey::CREATE_ACLS, false), (ApiKey::DELETE_ACLS, true)] {
            let f = request_frame(key, v, 9, &acl_body(v, filters));
            let req = Request::parse(f.payload()).unwrap();
            let entries = match RequestBody::parse(&req).unwrap() {
                RequestBody::CreateAcls(c) => c.creations,
                RequestBody::DeleteAcls(d) => d.filters,
                other => panic!("{other:?}"),
            };
            assert_eq!(entries.iter().map(|e| e.resource_name).collect::<Vec<_>>(), [Some("orders"), Some("payments")]);
            assert_eq!(entries[0].principal, (!filters).then_some("User:alice"));
            let bytes = error_response(&req, CLUSTER_AUTHORIZATION_FAILED, 0, None).unwrap().unwrap();
            let resp = Frame::new(bytes, &default_limits()).unwrap();
            let r = Response::parse(resp.payload(), key, v).unwrap();
            let flexible = v >= 2;
            let mut rd = Reader::new(r.body);
            assert_eq!(rd.i32("throttle").unwrap(), 0);
            assert_eq!(rd.array_len(flexible, 1, "results").unwrap(), 2);
            for _ in 0..2 {
                assert_eq!(rd.i16("code").unwrap(), CLUSTER_AUTHORIZATION_FAILED);
                assert_eq!(rd.nullable_string(flexible, "msg").unwrap(), None);
                if filters {
                    assert_eq!(rd.array_len(flexible, 1, "matching").unwrap(), 0);
                }
                rd.tags_if(flexible, "t").unwrap();
            }
            rd.tags_if(flexible, "t").unwrap();
            rd.finish("acl response").unwrap();
        }
    }
}

#[test]
fn apis_without_an_error_shape_are_not_answered() {
    let f = request_frame(ApiKey::JOIN_GROUP, 5, 1, b"");
    let req = Request::parse(f.payload()).unwrap();
    assert_eq!(error_response(&req, POLICY_VIOLATION, 0, None), Ok(None));
    assert!(!can_answer(ApiKey::JOIN_GROUP));
}

#[test]
fn api_versions_falls_back_to_v0_on_unsupported_version() {
    // KIP-511: a v0 body (error 35, one range, no throttle) answering a v3 request.
    let body = [0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 2];
    let r = ApiVersionsResponse::parse(&body, 3).unwrap();
    assert_eq!((r.error_code, r.version), (UNSUPPORTED_VERSION, 0));
    assert_eq!(r.range(ApiKey::API_VERSIONS).map(|r| r.max_version), Some(2));
}

#[test]
fn sasl_plain_gives_the_user_and_never_the_password() {
    assert_eq!(plain_user(b"\0alice\0secret"), Some("alice"));
    assert_eq!(plain_user(b"admin\0alice\0secret"), Some("alice"));
    assert_eq!(plain_authzid(b"admin\0alice\0secret"), Some("admin"));
    assert_eq!(plain_authzid(b"\0alice\0secret"), None);
    assert_eq!(plain_user(b"alice\0secret"), None);
    assert_eq!(plain_user(b"\0\0secret"), None);
    assert_eq!(plain_user(b"n,,n=alice,r=abc"), None, "a SCRAM client-first message is not PLAIN");
}

/// SaslHandshake v0 (KIP-43): the raw token exchange after it is followed for PLAIN (one
/// token) and SCRAM (two), and decoding stops for a mechanism it cannot count.
#[test]
fn raw_sasl_tokens_after_handshake_v0() {
    for (mechanism, tokens) in [("PLAIN", 1), ("SCRAM-SHA-512", 2), ("GSSAPI", 0)] {
        let mut c: Correlator<u32> = Correlator::new(8);
        let mut body = (mechanism.len() as i16).to_be_bytes().to_vec();
        body.extend_from_slice(mechanism.as_bytes());
        c.request(&request_frame(ApiKey::SASL_HANDSHAKE, 0, 1, &body), 1).unwrap();
        let ok = [0, 0, 0, 0, 0, 1, 0, 5, b'P', b'L', b'A', b'I', b'N'];
        let Outbound::Response(_, 1) = c.response(&response_frame(ApiKey::SASL_HANDSHAKE, 0, 1, &ok)).unwrap() else {
            panic!()
        };
        if tokens == 0 {
            assert_eq!(c.state(), State::Opaque);
            let token = Frame::from_payload(b"\x60\x82gssapi").unwrap();
            assert_eq!(c.request(&token, 2), Ok(Inbound::Opaque));
            assert_eq!(c.response(&token), Ok(Outbound::Opaque));
            continue;
        }
        assert_eq!(c.state(), State::RawSasl { tokens_left: tokens, in_flight: 0 });
        for i in 0..tokens {
            let token = Frame::from_payload(b"\0alice\0secret").unwrap();
            assert_eq!(c.request(&token, 10 + u32::from(i)), Ok(Inbound::SaslToken(b"\0alice\0secret")));
            let answer = Frame::from_payload(b"").unwrap();
            assert_eq!(c.response(&answer), Ok(Outbound::SaslToken(b"", 10 + u32::from(i))));
        }
        assert_eq!(c.state(), State::Ready { in_flight: 0 });
        // Back to Kafka requests.
        let f = request_frame(ApiKey::METADATA, 1, 7, &[0, 0, 0, 0]);
        assert!(matches!(c.request(&f, 3), Ok(Inbound::Request(_))));
    }
}

#[test]
fn produce_with_acks_0_is_not_queued() {
    // Produce v3: null transactional id, acks 0, timeout, no topics.
    let body = [0xff, 0xff, 0, 0, 0, 0, 0x75, 0x30, 0, 0, 0, 0];
    let f = request_frame(ApiKey::PRODUCE, 3, 5, &body);
    let mut c: Correlator<()> = Correlator::new(1);
    let Inbound::Request(r) = c.request(&f, ()).unwrap() else { panic!() };
    assert!(!r.expects_response());
    assert_eq!(c.in_flight(), 0);
    let req = Request::parse(f.payload()).unwrap();
    assert_eq!(acks(req.body, 3), Ok(0));
}

pub(super) fn batch_v2(codec: i16, records: i32, payload: &[u8]) -> Vec<u8> {
    let mut tail = Vec::new(); // attributes .. end
    tail.extend_from_slice(&codec.to_be_bytes());
    tail.extend_from_slice(&(records - 1).to_be_bytes());
    tail.extend_from_slice(&[0; 16]);
    tail.extend_from_slice(&(-1i64).to_be_bytes());
    tail.extend_from_slice(&(-1i16).to_be_bytes());
    tail.extend_from_slice(&(-1i32).to_be_bytes());
    tail.extend_from_slice(&records.to_be_bytes());
    tail.extend_from_slice(payload);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&tail);
    let mut b = 0i64.to_be_bytes().to_vec();
    b.extend_from_slice(&((4 + 1 + 4 + tail.len()) as i32).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&crc.to_be_bytes());
    b.extend_from_slice(&tail);
    b
}

#[test]
fn record_sets_count_batches_records_and_codecs() {
    let mut set = batch_v2(4, 10, b"zstd-bytes");
    set.extend_from_slice(&batch_v2(4, 5, b"more"));
    let s = summarize(&set, false).unwrap();
    assert_eq!((s.batches, s.records, s.bytes, s.compression), (2, 15, set.len(), Some(Compression::Zstd)));
    assert!(batches(&set, false).all(|b| b.unwrap().crc_ok() == Some(true)));
    // A fetch may end in a partial batch.
    let cut = &set[..set.len() - 3];
    let s = summarize(cut, true).unwrap();
    assert_eq!((s.batches, s.records, s.partial_bytes), (1, 10, cut.len() - batch_v2(4, 10, b"zstd-bytes").len()));
    assert_eq!(summarize(cut, false), Err(KafkaError::Truncated { what: "record batch" }));
    let mut mixed = batch_v2(1, 1, b"");
    mixed.extend_from_slice(&batch_v2(0, 1, b""));
    assert!(summarize(&mixed, false).unwrap().mixed_compression);
}

/// FindCoordinator v4+ (batched) and DescribeCluster were not in the captures (librdkafka
/// 2.16 asks FindCoordinator v2 and never DescribeCluster): hand-built bodies, rewritten.
#[test]
fn batched_find_coordinator_and_describe_cluster_rewrite() {
    use writer::{put_array_len, put_no_tags, put_nullable_string, put_string};
    let mut b = BytesMut::new();
    b.extend_from_slice(&0i32.to_be_bytes()); // throttle
    put_array_len(&mut b, 2, true, "c").unwrap();
    for (key, node, host, port, err) in [("g1", 1i32, "broker-1.internal", 9092i32, 0i16), ("g2", -1, "", -1, 15)] {
        put_string(&mut b, key, true, "k").unwrap();
        b.extend_from_slice(&node.to_be_bytes());
        put_string(&mut b, host, true, "h").unwrap();
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&err.to_be_bytes());
        put_nullable_string(&mut b, None, true, "m").unwrap();
        put_no_tags(&mut b, true);
    }
    put_no_tags(&mut b, true);
    let new = rewrite_find_coordinator(&b, 4, |id, _, _| (format!("sluice-{id}"), 19092)).unwrap();
    let c = FindCoordinatorResponse::parse(&new, 4).unwrap();
    assert_eq!(c.coordinators[0].key, Some("g1"));
    assert_eq!((c.coordinators[0].broker.host, c.coordinators[0].broker.port), ("sluice-1", 19092));
    assert_eq!(
        (c.coordinators[1].broker.host, c.coordinators[1].broker.port, c.coordinators[1].error_code),
        ("", -1, 15)
    );

    for v in 0..=2 {
        let mut b = BytesMut::new();
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        put_nullable_string(&mut b, None, true, "m").unwrap();
        if v >= 1 {
            b.extend_from_slice(&[1]);
        }
        put_string(&mut b, "cluster-x", true, "c").unwrap();
        b.extend_from_slice(&2i32.to_be_bytes());
        put_array_len(&mut b, 2, true, "b").unwrap();
        for id in [1i32, 2] {
            b.extend_from_slice(&id.to_be_bytes());
            put_string(&mut b, &format!("kafka-{id}.cluster.local"), true, "h").unwrap();
            b.extend_from_slice(&9092i32.to_be_bytes());
            put_nullable_string(&mut b, Some("rack-a"), true, "r").unwrap();
            if v >= 2 {
                b.extend_from_slice(&[0]);
            }
            put_no_tags(&mut b, true);
        }
        b.extend_from_slice(&i32::MIN.to_be_bytes());
        put_no_tags(&mut b, true);
        let before = DescribeClusterResponse::parse(&b, v).unwrap();
        let new = rewrite_describe_cluster(&b, v, |id, _, p| (format!("s{id}"), p + id)).unwrap();
        let after = DescribeClusterResponse::parse(&new, v).unwrap();
        assert_eq!(after.cluster_id, "cluster-x");
        let got: Vec<_> = after.brokers.iter().map(|b| (b.node_id, b.host, b.port, b.rack)).collect();
        assert_eq!(got, [(1, "s1", 9093, Some("rack-a")), (2, "s2", 9094, Some("rack-a"))]);
        let mut restored = after.clone();
        restored.brokers = before.brokers.clone();
        assert_eq!(restored, before);
    }
}
