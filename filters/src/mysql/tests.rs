//! The `mysql` filter without sockets: every captured session (fixtures/mysql) replayed in
//! wire order, in 7-byte reads, must pass byte for byte with every command answered; rules
//! refuse in order inside a pipeline and hold delayed commands.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sluice_codecs::mysql::{peek, Direction, MysqlLimits, Session};

use super::stats::MysqlStats;
use super::{MysqlFilter, MysqlListener};
use crate::filter::FilterStatus;
use crate::policy::{Action, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use crate::sql::{CacheLimits, Dialect, DigestOrder, DigestTable, SharedStatementCache};
use crate::stream::{StreamFilter, StreamIo, WriteQueue};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/mysql");

pub(super) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub(super) fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".client").map(str::to_owned))
        .collect();
    names.sort();
    names
}

pub(super) fn listener(rules: Vec<Rule>) -> Arc<MysqlListener> {
    Arc::new(MysqlListener {
        name: "test".into(),
        rules: Arc::new(RuleSet::new(rules)),
        stats: MysqlStats::new("test", 16),
        digests: Arc::new(DigestTable::new(100)),
        statements: SharedStatementCache::new(Dialect::MySql, CacheLimits::PER_LISTENER),
        limits: MysqlLimits::default(),
        query_log: None,
        terminates_tls: false,
        originates_tls: false,
    })
}

pub(super) fn client_ip() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

/// Splits a direction's bytes into wire packets.
pub(super) fn packets(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Ok(Some(n)) = peek(&bytes[at..], &MysqlLimits::default()) {
        out.push(&bytes[at..at + n]);
        at += n;
    }
    out
}

/// The fixture's packets in wire order: whichever side the protocol waits for goes next.
/// Once the stream turns opaque the rest of each direction follows as one piece.
pub(super) fn wire_order<'a>(client: &'a [u8], server: &'a [u8]) -> Vec<(Direction, &'a [u8])> {
    let (mut c, mut s) = (packets(client).into_iter().peekable(), packets(server).into_iter().peekable());
    let (mut c_used, mut s_used) = (0, 0);
    let mut session = Session::new(MysqlLimits::default());
    let mut order = Vec::new();
    while session.opaque().is_none() {
        let first = session.waiting_for().unwrap_or(Direction::Server);
        let next = match first {
            Direction::Server => {
                s.next().map(|p| (Direction::Server, p)).or_else(|| c.next().map(|p| (Direction::Client, p)))
            }
            Direction::Client => {
                c.next().map(|p| (Direction::Client, p)).or_else(|| s.next().map(|p| (Direction::Server, p)))
            }
        };
        let Some((dir, packet)) = next else { break };
        if session.feed(dir, packet).is_err() {
            break;
        }
        match dir {
            Direction::Client => c_used += packet.len(),
            Direction::Server => s_used += packet.len(),
        }
        order.push((dir, packet));
    }
    order.push((Direction::Client, &client[c_used..]));
    order.push((Direction::Server, &server[s_used..]));
    order
}

/// Feeds `bytes` from `dir` in reads of `chunk` bytes; returns what the filter queued for
/// each side.
pub(super) fn feed(
    filter: &mut MysqlFilter,
    dir: Direction,
    bytes: &[u8],
    chunk: usize,
    now: Instant,
    input: &mut BytesMut,
) -> (Vec<u8>, Vec<u8>) {
    let (mut up, mut down) = (WriteQueue::default(), WriteQueue::default());
    // Nothing new still makes one call (the driver's call at a wake-up).
    let pieces: Vec<&[u8]> = if bytes.is_empty() { vec![&[]] } else { bytes.chunks(chunk.max(1)).collect() };
    for piece in pieces {
        input.extend_from_slice(piece);
        let mut io = StreamIo { now, to_upstream: &mut up, to_downstream: &mut down };
        let status = match dir {
            Direction::Client => filter.on_downstream(input, false, &mut io),
            Direction::Server => filter.on_upstream(input, false, &mut io),
        };
        assert!(matches!(status, FilterStatus::Continue), "{status:?}");
    }
    (up.take_all(), down.take_all())
}

#[test]
fn every_fixture_passes_unchanged_and_every_command_is_answered() {
    for name in fixture_names() {
        let client = fixture(&format!("{name}.client"));
        let server = fixture(&format!("{name}.server"));
        let order = wire_order(&client, &server);
        let mut filter = MysqlFilter::new(listener(Vec::new()), client_ip());
        let (mut client_in, mut server_in) = (BytesMut::new(), BytesMut::new());
        let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
        let now = Instant::now();
        for (dir, bytes) in &order {
            let input = if *dir == Direction::Client { &mut client_in } else { &mut server_in };
            let (up, down) = feed(&mut filter, *dir, bytes, 7, now, input);
            to_server.extend(up);
            to_client.extend(down);
        }
        assert_eq!(to_server, client, "{name}: client bytes pass unchanged");
        assert_eq!(to_client, server, "{name}: server bytes pass unchanged");
        assert!(filter.responses_owed() == 0, "{name}: every forwarded command was answered");
    }
}

#[test]
fn sysbench_executes_are_attributed_to_their_prepared_statement() {
    let (client, server) = (fixture("sysbench_point_select.client"), fixture("sysbench_point_select.server"));
    let listener = listener(Vec::new());
    let mut filter = MysqlFilter::new(listener.clone(), client_ip());
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    for (dir, bytes) in wire_order(&client, &server) {
        let input = if dir == Direction::Client { &mut c } else { &mut s };
        feed(&mut filter, dir, bytes, 4096, Instant::now(), input);
    }
    let top = listener.digests.top(10, DigestOrder::Count);
    let select = top.iter().find(|r| r.digest_text.contains("FROM sbtest")).expect("the point select's digest");
    assert_eq!(select.count, 20, "20 COM_STMT_EXECUTEs under the prepared SELECT");
    assert_eq!(select.rows, 20, "one row each");
    assert_eq!(select.verb.as_str(), "SELECT");
}

/// A filter past the login of `text_queries` (greeting, login, OK), ready for commands.
fn logged_in(rules: Vec<Rule>) -> (MysqlFilter, BytesMut, BytesMut) {
    let (client, server) = (fixture("text_queries.client"), fixture("text_queries.server"));
    let (client, server) = (packets(&client), packets(&server));
    let mut filter = MysqlFilter::new(listener(rules), client_ip());
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let now = Instant::now();
    feed(&mut filter, Direction::Server, server[0], 4096, now, &mut s);
    feed(&mut filter, Direction::Client, client[0], 4096, now, &mut c);
    feed(&mut filter, Direction::Server, server[1], 4096, now, &mut s);
    assert_eq!(filter.state(), sluice_codecs::mysql::State::Idle, "logged in");
    (filter, c, s)
}

fn query(sql: &str) -> Vec<u8> {
    let len = (sql.len() + 1) as u32;
    let mut out = len.to_le_bytes()[..3].to_vec();
    out.push(0);
    out.push(0x03);
    out.extend_from_slice(sql.as_bytes());
    out
}

/// An OK packet (no rows affected) with sequence id 1.
const OK: &[u8] = b"\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00";

fn deny(op: &str) -> Rule {
    Rule { matcher: Matcher { ops: vec![op.into()], ..Default::default() }, action: Action::Deny }
}

#[test]
fn a_refused_command_in_a_pipeline_is_answered_after_the_earlier_ones() {
    let (mut filter, mut c, mut s) = logged_in(vec![deny("DROP")]);
    let now = Instant::now();
    let pipeline = [query("UPDATE t SET a = 1"), query("DROP TABLE t"), query("DELETE FROM t WHERE a = 2")].concat();
    let (up, down) = feed(&mut filter, Direction::Client, &pipeline, 4096, now, &mut c);
    assert_eq!(up, [query("UPDATE t SET a = 1"), query("DELETE FROM t WHERE a = 2")].concat(), "DROP never leaves");
    assert!(down.is_empty(), "the refusal waits for the UPDATE's answer");
    let (_, down) = feed(&mut filter, Direction::Server, OK, 4096, now, &mut s);
    assert_eq!(&down[..OK.len()], OK, "the UPDATE's OK first");
    let err = &down[OK.len()..];
    assert_eq!(err[3], 1, "ERR with sequence id 1");
    assert_eq!(err[4], 0xFF);
    assert_eq!(u16::from_le_bytes([err[5], err[6]]), 1227);
    assert_eq!(&err[7..13], b"#42000");
    let (_, down) = feed(&mut filter, Direction::Server, OK, 4096, now, &mut s);
    assert_eq!(down, OK, "then the DELETE's OK");
    assert!(filter.responses_owed() == 0);
}

#[test]
fn a_delay_rule_holds_the_command_until_its_slot() {
    let one = NonZeroU32::new(1).unwrap();
    let limit = RateLimit::new(
        NonZeroU32::new(10).unwrap(),
        Duration::from_secs(1),
        one,
        LimitKind::Op,
        OnLimit::Delay { max_delay: Duration::from_secs(5) },
    );
    let rule = Rule {
        matcher: Matcher { ops: vec!["SELECT".into()], ..Default::default() },
        action: Action::RateLimit(limit),
    };
    let (mut filter, mut c, mut s) = logged_in(vec![rule]);
    let now = Instant::now();
    let two = [query("SELECT 1"), query("SELECT 2")].concat();
    let (up, _) = feed(&mut filter, Direction::Client, &two, 4096, now, &mut c);
    assert_eq!(up, query("SELECT 1"), "the second SELECT waits for its slot");
    let wake = filter.wake_at().expect("a wake-up is asked for");
    assert!(wake > now && wake <= now + Duration::from_millis(200), "{:?}", wake - now);
    feed(&mut filter, Direction::Server, OK, 4096, now, &mut s);
    // The driver calls again at each wake-up with nothing new (the limiter's clock and
    // the filter's may differ by a hair, so the first wake-up can be a little early).
    let mut up = Vec::new();
    while let (true, Some(wake)) = (up.is_empty(), filter.wake_at()) {
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        up = feed(&mut filter, Direction::Client, &[], 4096, Instant::now(), &mut c).0;
    }
    assert_eq!(up, query("SELECT 2"));
    assert_eq!(filter.wake_at(), None);
}

#[test]
fn refusing_a_command_split_into_continuation_packets_drops_every_part() {
    let (mut filter, mut c, _) = logged_in(vec![deny("DROP")]);
    // A DROP whose payload is exactly 0xFFFFFF bytes, then an empty closing part.
    let mut sql = b"DROP TABLE t /*".to_vec();
    sql.resize(0xFF_FFFF - 1 - 2, b' ');
    sql.extend_from_slice(b"*/");
    let mut first = vec![0xFF, 0xFF, 0xFF, 0, 0x03];
    first.extend_from_slice(&sql);
    let last = [0u8, 0, 0, 1];
    let (up, down) =
        feed(&mut filter, Direction::Client, &[first, last.to_vec()].concat(), 1 << 20, Instant::now(), &mut c);
    assert!(up.is_empty(), "no part of the DROP reaches the server");
    assert_eq!(down[3], 2, "the ERR follows the chain's last sequence id");
    assert_eq!(down[4], 0xFF);
}
