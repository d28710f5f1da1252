//! The `mongodb` filter without sockets: every captured session (fixtures/mongodb) replayed
//! in wire order, whole and in 7-byte reads, must pass byte for byte with every reply
//! matched to its request; the ops counted match what the capture's driver did (a batched
//! insert of 200 documents, ten getMores, an exhaust cursor's six replies, unacknowledged
//! writes); rules answer refused commands with error replies that the codec reads back,
//! with the right responseTo and in order behind replies still owed; a delay holds.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sluice_codecs::mongodb::{
    default_limits, op_msg, peek, Correlator, DocumentWriter, Message, Op, OpReply, ReplyInfo,
};

use super::filter::Done;
use super::stats::MongodbStats;
use super::{ErrorCode, MongodbFilter, MongodbListener, DEFAULT_MAX_IN_FLIGHT};
use crate::filter::{CloseReason, FilterStatus};
use crate::op::Outcome;
use crate::policy::{Action, Fault, FaultAction, FaultSet, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use crate::stream::{StreamFilter, StreamIo, WriteQueue};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/mongodb");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".client").map(str::to_owned))
        .collect();
    names.sort();
    names
}

fn listener_with(rules: Vec<Rule>, faults: Vec<Fault>) -> Arc<MongodbListener> {
    Arc::new(MongodbListener {
        name: "test".into(),
        rules: Arc::new(RuleSet::new(rules)),
        faults: FaultSet::new(faults),
        stats: MongodbStats::new("test", 16),
        limits: default_limits(),
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        deny_error: ErrorCode::unauthorized(),
        limit_error: ErrorCode::rate_limit_exceeded(),
    })
}

fn listener(rules: Vec<Rule>) -> Arc<MongodbListener> {
    listener_with(rules, Vec::new())
}

fn client_ip() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Client,
    Server,
}

fn message(bytes: &[u8]) -> Message {
    Message::new(Bytes::copy_from_slice(bytes), &default_limits()).unwrap()
}

/// The message itself, or the one inside an OP_COMPRESSED.
fn inner(msg: Message) -> Message {
    match msg.op().unwrap() {
        Op::Compressed(c) => c.decompress(&default_limits()).unwrap(),
        _ => msg,
    }
}

/// The fixture's messages in wire order: a client request, then the server's replies until
/// it has its last one (none for moreToCome, several for an exhaust stream). What is left
/// when a stream never ends (the monitor's hello) follows at the end.
fn wire_order<'a>(client: &'a [u8], server: &'a [u8]) -> Vec<(Side, &'a [u8])> {
    let limits = default_limits();
    let mut correlator = Correlator::<()>::new(1000);
    let (mut c, mut s) = (0, 0);
    let mut order = Vec::new();
    loop {
        if correlator.in_flight() > 0 {
            if let Ok(Some(n)) = peek(&server[s..], &limits) {
                let bytes = &server[s..s + n];
                let msg = inner(message(bytes));
                let more = msg.op().unwrap().more_to_come().unwrap();
                correlator.reply(msg.header(), more).unwrap();
                order.push((Side::Server, bytes));
                s += n;
                continue;
            }
        }
        let Ok(Some(n)) = peek(&client[c..], &limits) else { break };
        let bytes = &client[c..c + n];
        let msg = inner(message(bytes));
        let expect = msg.op().unwrap().expect().unwrap();
        correlator.request(msg.header(), expect, ()).unwrap();
        order.push((Side::Client, bytes));
        c += n;
    }
    order.push((Side::Client, &client[c..]));
    order.push((Side::Server, &server[s..]));
    order
}

/// Feeds `bytes` from `side` in reads of `chunk` bytes; returns what the filter queued for
/// each side and the last status.
fn feed_status(
    filter: &mut MongodbFilter,
    side: Side,
    bytes: &[u8],
    chunk: usize,
    now: Instant,
    input: &mut BytesMut,
) -> (Vec<u8>, Vec<u8>, FilterStatus) {
    let (mut up, mut down) = (WriteQueue::default(), WriteQueue::default());
    let pieces: Vec<&[u8]> = if bytes.is_empty() { vec![&[]] } else { bytes.chunks(chunk.max(1)).collect() };
    let mut status = FilterStatus::Continue;
    for piece in pieces {
        input.extend_from_slice(piece);
        let mut io = StreamIo { now, to_upstream: &mut up, to_downstream: &mut down };
        status = match side {
            Side::Client => filter.on_downstream(input, false, &mut io),
            Side::Server => filter.on_upstream(input, false, &mut io),
        };
        if status != FilterStatus::Continue {
            break;
        }
    }
    (up.take_all(), down.take_all(), status)
}

fn feed(
    filter: &mut MongodbFilter,
    side: Side,
    bytes: &[u8],
    now: Instant,
    input: &mut BytesMut,
) -> (Vec<u8>, Vec<u8>) {
    let (up, down, status) = feed_status(filter, side, bytes, 4096, now, input);
    assert_eq!(status, FilterStatus::Continue);
    (up, down)
}

/// Replays a fixture through a filter of `listener` in reads of `chunk` bytes.
fn replay(name: &str, listener: &Arc<MongodbListener>, chunk: usize) -> (MongodbFilter, Vec<u8>, Vec<u8>) {
    let (client, server) = (fixture(&format!("{name}.client")), fixture(&format!("{name}.server")));
    let mut filter = MongodbFilter::new(listener.clone(), client_ip());
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    for (side, bytes) in wire_order(&client, &server) {
        let input = if side == Side::Client { &mut c } else { &mut s };
        let (up, down, status) = feed_status(&mut filter, side, bytes, chunk, Instant::now(), input);
        assert_eq!(status, FilterStatus::Continue, "{name}");
        to_server.extend(up);
        to_client.extend(down);
    }
    (filter, to_server, to_client)
}

fn count(done: &[Done], op: &str, outcome: Outcome) -> usize {
    done.iter().filter(|d| d.op == op && d.outcome == outcome).count()
}

#[test]
fn every_fixture_passes_unchanged_and_every_reply_finds_its_request() {
    for name in fixture_names() {
        for chunk in [7, 1 << 20] {
            let (filter, to_server, to_client) = replay(&name, &listener(Vec::new()), chunk);
            assert_eq!(to_server, fixture(&format!("{name}.client")), "{name}/{chunk}: client bytes pass unchanged");
            assert_eq!(to_client, fixture(&format!("{name}.server")), "{name}/{chunk}: server bytes pass unchanged");
            assert!(!filter.is_passthrough(), "{name}: every message decoded");
            // The monitor's streaming hello is still open when the capture ends.
            let open = usize::from(name == "monitor_stream");
            assert_eq!(filter.in_flight(), open, "{name}: every request answered");
            assert!(!filter.done.is_empty(), "{name}: ops counted");
            // `errors` sends an unknown command on purpose.
            let unknown = usize::from(name == "errors");
            assert_eq!(count(&filter.done, "other", Outcome::Error), unknown, "{name}: {:?}", filter.done);
            assert!(filter.done.iter().all(|d| d.op != "other" || name == "errors"), "{name}: {:?}", filter.done);
        }
    }
}

#[test]
fn every_fixture_passes_unchanged_through_an_enforcing_filter_that_allows_it() {
    for name in fixture_names() {
        let (_, to_server, to_client) = replay(&name, &listener(vec![deny(&["dropDatabase"])]), 7);
        assert_eq!(to_server, fixture(&format!("{name}.client")), "{name}");
        assert_eq!(to_client, fixture(&format!("{name}.server")), "{name}");
    }
}

#[test]
fn a_batched_insert_counts_its_documents() {
    let (filter, _, _) = replay("insert_many", &listener(Vec::new()), 7);
    assert_eq!(count(&filter.done, "insert", Outcome::Ok), 2, "{:?}", filter.done);
    assert_eq!(count(&filter.done, "drop", Outcome::Ok) + count(&filter.done, "drop", Outcome::Error), 1);
    assert_eq!(filter.documents_written, 201, "200 in one sequence, then 1");
}

#[test]
fn a_cursor_over_many_batches_counts_each_get_more() {
    let (filter, _, _) = replay("find_getmore", &listener(Vec::new()), 7);
    assert_eq!(count(&filter.done, "getMore", Outcome::Ok), 10, "{:?}", filter.done);
    assert_eq!(count(&filter.done, "killCursors", Outcome::Ok), 1);
    assert!(count(&filter.done, "find", Outcome::Ok) >= 2, "the cursor's find and find_one");
    // 101 documents through the first cursor, a first batch of 5 through the one closed
    // early, 1 for find_one.
    assert_eq!(filter.documents_returned, 101 + 5 + 1);
}

#[test]
fn an_exhaust_cursor_is_one_op_however_many_replies() {
    let (filter, _, to_client) = replay("exhaust_find", &listener(Vec::new()), 7);
    assert_eq!(to_client, fixture("exhaust_find.server"));
    assert_eq!(count(&filter.done, "getMore", Outcome::Ok), 1, "six replies, one op: {:?}", filter.done);
    assert_eq!(filter.in_flight(), 0);
}

#[test]
fn unacknowledged_writes_count_when_sent() {
    let (filter, _, _) = replay("unacknowledged", &listener(Vec::new()), 7);
    assert!(count(&filter.done, "insert", Outcome::Ok) >= 2, "{:?}", filter.done);
    assert_eq!(count(&filter.done, "delete", Outcome::Ok), 1, "{:?}", filter.done);
    assert_eq!(count(&filter.done, "ping", Outcome::Ok), 1);
}

#[test]
fn errors_are_outcomes_and_write_errors_are_not() {
    let (filter, _, _) = replay("errors", &listener(Vec::new()), 7);
    // The duplicate key insert and the unordered insert_many answer ok: 1 with writeErrors.
    assert_eq!(count(&filter.done, "insert", Outcome::Error), 0, "{:?}", filter.done);
    assert_eq!(count(&filter.done, "other", Outcome::Error), 1, "the unknown command: {:?}", filter.done);
    assert_eq!(count(&filter.done, "find", Outcome::Error), 1, "$bogus: {:?}", filter.done);
}

#[test]
fn the_scram_user_is_taken_from_the_client_first_message() {
    for name in ["scram_auth", "scram_wrong_password"] {
        let (filter, _, _) = replay(name, &listener(Vec::new()), 7);
        assert!(filter.user().is_some_and(|u| !u.is_empty()), "{name}: {:?}", filter.user());
    }
    let (filter, _, _) = replay("scram_wrong_password", &listener(Vec::new()), 7);
    assert_eq!(count(&filter.done, "saslContinue", Outcome::Error), 1, "{:?}", filter.done);
}

#[test]
fn compressed_sessions_count_like_plain_ones() {
    for name in ["compressed_zlib", "compressed_zstd", "compressed_snappy"] {
        let (filter, _, _) = replay(name, &listener(Vec::new()), 7);
        assert_eq!(count(&filter.done, "insert", Outcome::Ok), 1, "{name}: {:?}", filter.done);
        assert!(count(&filter.done, "getMore", Outcome::Ok) >= 1, "{name}: {:?}", filter.done);
        assert_eq!(filter.documents_written, 30, "{name}");
    }
}

#[test]
fn the_legacy_handshake_is_counted() {
    let (filter, _, _) = replay("legacy_handshake", &listener(Vec::new()), 7);
    assert_eq!(count(&filter.done, "isMaster", Outcome::Ok) + count(&filter.done, "ismaster", Outcome::Ok), 1);
}

// Hand-made traffic for the rules.

fn command(request_id: i32, flags: u32, doc: DocumentWriter) -> Vec<u8> {
    op_msg(request_id, 0, flags, &doc.string("$db", "app").finish()).to_vec()
}

fn find(request_id: i32) -> Vec<u8> {
    command(request_id, 0, DocumentWriter::new().string("find", "users"))
}

fn drop_users(request_id: i32) -> Vec<u8> {
    command(request_id, 0, DocumentWriter::new().string("drop", "users"))
}

fn ping(request_id: i32) -> Vec<u8> {
    command(request_id, 0, DocumentWriter::new().int32("ping", 1))
}

fn ok_reply(request_id: i32, response_to: i32) -> Vec<u8> {
    op_msg(request_id, response_to, 0, &DocumentWriter::new().double("ok", 1.0).finish()).to_vec()
}

/// The error replies in `bytes`: (responseTo, code, codeName, errmsg).
fn error_replies(bytes: &[u8]) -> Vec<(i32, i64, String, String)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Ok(Some(n)) = peek(rest, &default_limits()) {
        let msg = message(&rest[..n]);
        rest = &rest[n..];
        let body = match msg.op().unwrap() {
            Op::Msg(m) => m.body(),
            Op::Reply(r) => {
                assert_ne!(r.response_flags & OpReply::QUERY_FAILURE, 0);
                r.first().unwrap()
            }
            other => panic!("{other:?}"),
        };
        let info = ReplyInfo::scan(body).unwrap();
        if info.is_ok() {
            continue;
        }
        out.push((
            msg.header().response_to,
            info.code.unwrap(),
            info.code_name.unwrap().to_owned(),
            info.errmsg.unwrap().to_owned(),
        ));
    }
    assert!(rest.is_empty());
    out
}

fn deny(ops: &[&str]) -> Rule {
    Rule {
        matcher: Matcher { ops: ops.iter().map(|o| o.to_string()).collect(), ..Default::default() },
        action: Action::Deny,
    }
}

#[test]
fn a_denied_drop_is_answered_in_turn_with_unauthorized() {
    let mut filter = MongodbFilter::new(listener(vec![deny(&["dropDatabase", "drop"])]), client_ip());
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let now = Instant::now();
    let pipeline = [find(1), drop_users(2), ping(3)].concat();
    let (up, down) = feed(&mut filter, Side::Client, &pipeline, now, &mut c);
    assert_eq!(up, [find(1), ping(3)].concat(), "the drop never reaches the server");
    assert!(down.is_empty(), "its answer waits behind the find's");
    let (_, down) = feed(&mut filter, Side::Server, &ok_reply(100, 1), now, &mut s);
    let errors = error_replies(&down);
    assert_eq!(down[..ok_reply(100, 1).len()], ok_reply(100, 1), "the find's reply first");
    assert_eq!(errors, [(2, 13, "Unauthorized".into(), "sluice: drop denied by policy (rule 0)".into())]);
    let (_, down) = feed(&mut filter, Side::Server, &ok_reply(101, 3), now, &mut s);
    assert_eq!(down, ok_reply(101, 3));
    assert_eq!(count(&filter.done, "drop", Outcome::Denied), 1);
    assert_eq!(count(&filter.done, "find", Outcome::Ok), 1);
    assert_eq!(filter.in_flight(), 0);
}

#[test]
fn a_target_prefix_rule_matches_db_collection() {
    let rule = Rule {
        matcher: Matcher { target_prefixes: vec![b"app.us".to_vec()], ..Default::default() },
        action: Action::Deny,
    };
    let mut filter = MongodbFilter::new(listener(vec![rule]), client_ip());
    let (mut c, now) = (BytesMut::new(), Instant::now());
    let (up, down) = feed(&mut filter, Side::Client, &[find(1), ping(2)].concat(), now, &mut c);
    assert_eq!(up, ping(2), "ping names no collection");
    assert_eq!(error_replies(&down).len(), 1);
}

#[test]
fn a_refused_unacknowledged_write_gets_no_reply() {
    let mut filter = MongodbFilter::new(listener(vec![deny(&["insert"])]), client_ip());
    let (mut c, now) = (BytesMut::new(), Instant::now());
    let w0 = command(7, 2, DocumentWriter::new().string("insert", "users"));
    let (up, down) = feed(&mut filter, Side::Client, &w0, now, &mut c);
    assert!(up.is_empty() && down.is_empty());
    assert_eq!(count(&filter.done, "insert", Outcome::Denied), 1);
}

#[test]
fn a_refused_legacy_query_gets_an_op_reply() {
    let client = fixture("legacy_handshake.client");
    let n = peek(&client, &default_limits()).unwrap().unwrap();
    let hello = &client[..n];
    let request_id = message(hello).header().request_id;
    let mut filter = MongodbFilter::new(listener(vec![deny(&["isMaster", "ismaster"])]), client_ip());
    let (mut c, now) = (BytesMut::new(), Instant::now());
    let (up, down) = feed(&mut filter, Side::Client, hello, now, &mut c);
    assert!(up.is_empty());
    let errors = error_replies(&down);
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].0, errors[0].1), (request_id, 13));
}

#[test]
fn a_rate_limit_rejects_with_the_configured_code_and_the_connection_goes_on() {
    let limit = RateLimit::new(
        NonZeroU32::new(1).unwrap(),
        Duration::from_secs(3600),
        NonZeroU32::new(1).unwrap(),
        LimitKind::Op,
        OnLimit::Reject,
    );
    let rule =
        Rule { matcher: Matcher { ops: vec!["find".into()], ..Default::default() }, action: Action::RateLimit(limit) };
    let mut filter = MongodbFilter::new(listener(vec![rule]), client_ip());
    let (mut c, mut s, now) = (BytesMut::new(), BytesMut::new(), Instant::now());
    let (up, _) = feed(&mut filter, Side::Client, &find(1), now, &mut c);
    assert_eq!(up, find(1));
    feed(&mut filter, Side::Server, &ok_reply(50, 1), now, &mut s);
    let (up, down) = feed(&mut filter, Side::Client, &find(2), now, &mut c);
    assert!(up.is_empty());
    assert_eq!(
        error_replies(&down),
        [(2, 449, "RateLimitExceeded".into(), "sluice: find rate limited by policy (rule 0)".into())]
    );
    let (up, _) = feed(&mut filter, Side::Client, &ping(3), now, &mut c);
    assert_eq!(up, ping(3), "other commands go on");
    assert_eq!(count(&filter.done, "find", Outcome::Limited), 1);
}

#[test]
fn a_delay_rule_holds_the_command_until_its_slot() {
    let limit = RateLimit::new(
        NonZeroU32::new(10).unwrap(),
        Duration::from_secs(1),
        NonZeroU32::new(1).unwrap(),
        LimitKind::Op,
        OnLimit::Delay { max_delay: Duration::from_secs(5) },
    );
    let rule =
        Rule { matcher: Matcher { ops: vec!["find".into()], ..Default::default() }, action: Action::RateLimit(limit) };
    let mut filter = MongodbFilter::new(listener(vec![rule]), client_ip());
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let now = Instant::now();
    let (up, _) = feed(&mut filter, Side::Client, &[find(1), find(2), ping(3)].concat(), now, &mut c);
    assert_eq!(up, find(1), "the second find and what follows wait");
    let wake = filter.wake_at().expect("a wake-up is asked for");
    assert!(wake > now && wake <= now + Duration::from_millis(200), "{:?}", wake - now);
    feed(&mut filter, Side::Server, &ok_reply(50, 1), now, &mut s);
    let mut up = Vec::new();
    while let (true, Some(wake)) = (up.is_empty(), filter.wake_at()) {
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        up = feed(&mut filter, Side::Client, &[], Instant::now(), &mut c).0;
    }
    assert_eq!(up, [find(2), ping(3)].concat());
    assert_eq!(filter.wake_at(), None);
}

#[test]
fn an_error_fault_answers_with_its_message() {
    let fault = Fault {
        matcher: Matcher { ops: vec!["ping".into()], ..Default::default() },
        percentage: 100.0,
        action: FaultAction::Error("injected".into()),
    };
    let mut filter = MongodbFilter::new(listener_with(Vec::new(), vec![fault]), client_ip());
    let (mut c, now) = (BytesMut::new(), Instant::now());
    let (up, down) = feed(&mut filter, Side::Client, &ping(9), now, &mut c);
    assert!(up.is_empty());
    assert_eq!(error_replies(&down), [(9, 1, "InternalError".into(), "injected".into())]);
}

#[test]
fn garbage_closes_an_enforcing_listener_and_passes_an_observing_one() {
    // A message length below the 16-byte header: the stream's framing is lost.
    let garbage = [&3u32.to_le_bytes()[..], &[0; 12], b"more bytes after"].concat();
    let (mut c, now) = (BytesMut::new(), Instant::now());
    let mut observing = MongodbFilter::new(listener(Vec::new()), client_ip());
    let (up, _) = feed(&mut observing, Side::Client, &[ping(1), garbage.clone()].concat(), now, &mut c);
    assert_eq!(up, [ping(1), garbage.clone()].concat(), "forwarded unchanged");
    assert!(observing.is_passthrough());

    let mut enforcing = MongodbFilter::new(listener(vec![deny(&["drop"])]), client_ip());
    let mut c = BytesMut::new();
    let (up, _, status) = feed_status(&mut enforcing, Side::Client, &[ping(1), garbage].concat(), 4096, now, &mut c);
    assert_eq!(up, ping(1), "what came before the garbage still goes");
    assert_eq!(status, FilterStatus::Close(CloseReason::ProtocolError));
}

/// Writes the `mongodb_filter` fuzz seeds: each capture in wire order as the target's
/// records (a mode byte, then records of a header byte — top bit: from the server, low 7
/// bits: length — and up to 127 bytes), observing and enforcing.
/// `cargo test -p sluice-filters write_mongodb_filter_seeds -- --ignored`
#[test]
#[ignore = "writes fuzz/seeds/mongodb_filter"]
fn write_mongodb_filter_seeds() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/mongodb_filter");
    std::fs::create_dir_all(dir).unwrap();
    for name in fixture_names() {
        let (client, server) = (fixture(&format!("{name}.client")), fixture(&format!("{name}.server")));
        let mut records = Vec::new();
        for (side, bytes) in wire_order(&client, &server) {
            for chunk in bytes.chunks(127) {
                let from_server = if side == Side::Server { 0x80 } else { 0 };
                records.push(from_server | chunk.len() as u8);
                records.extend_from_slice(chunk);
            }
        }
        for (mode, suffix) in [(0u8, ""), (1, "_enforce")] {
            let seed = [&[mode][..], &records].concat();
            std::fs::write(format!("{dir}/{name}{suffix}"), seed).unwrap();
        }
    }
}
