//! The `postgres` filter without sockets: every captured session (fixtures/postgres)
//! replayed in wire order, in 7-byte reads, must pass byte for byte with every statement
//! finished; statements are attributed (multi-statement Query, prepared Execute); rules
//! refuse a Query or an Execute where the server would have answered, hold delayed
//! statements, answer encryption requests, and an enforcing listener closes on garbage.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sluice_codecs::postgres::{peek, typed_body, Backend, Direction, PgLimits, Session, State};

use super::stats::PostgresStats;
use super::{PostgresFilter, PostgresListener};
use crate::filter::{CloseReason, FilterStatus};
use crate::policy::{Action, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use crate::sql::{CacheLimits, Dialect, DigestOrder, DigestTable, SharedStatementCache};
use crate::stream::{StreamFilter, StreamIo, WriteQueue};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/postgres");

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

struct Setup {
    rules: Vec<Rule>,
    terminates_tls: bool,
    refuse_encryption: bool,
    originates_tls: bool,
}

fn listener_with(setup: Setup) -> Arc<PostgresListener> {
    Arc::new(PostgresListener {
        name: "test".into(),
        rules: Arc::new(RuleSet::new(setup.rules)),
        stats: PostgresStats::new("test", 16),
        digests: Arc::new(DigestTable::new(100)),
        statements: SharedStatementCache::new(Dialect::Postgres, CacheLimits::PER_LISTENER),
        limits: PgLimits::default(),
        query_log: None,
        terminates_tls: setup.terminates_tls,
        refuse_encryption: setup.refuse_encryption,
        originates_tls: setup.originates_tls,
    })
}

fn listener(rules: Vec<Rule>) -> Arc<PostgresListener> {
    listener_with(Setup { rules, terminates_tls: false, refuse_encryption: false, originates_tls: false })
}

fn client_ip() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

/// The fixture's messages in wire order: whichever side the protocol waits for goes next
/// (during authentication, the server after each client message). Once the stream turns
/// opaque the rest of each direction follows as one piece.
fn wire_order<'a>(client: &'a [u8], server: &'a [u8]) -> Vec<(Direction, &'a [u8])> {
    let limits = PgLimits::default();
    let mut session = Session::new(limits);
    let (mut c, mut s) = (0, 0);
    let mut order = Vec::new();
    let mut client_turn = true;
    loop {
        if matches!(session.state(), State::Closed | State::Opaque | State::Failed) {
            break;
        }
        let waiting = match session.state() {
            State::Authenticating { .. } => !client_turn,
            _ => session.waiting_for_server(),
        };
        let mut fed = false;
        for dir in
            if waiting { [Direction::Backend, Direction::Frontend] } else { [Direction::Frontend, Direction::Backend] }
        {
            let (bytes, at) = if dir == Direction::Frontend { (client, &mut c) } else { (server, &mut s) };
            let Ok(Some(n)) = peek(&bytes[*at..], session.phase(dir), &limits) else { continue };
            let msg = &bytes[*at..*at + n];
            let event = match dir {
                Direction::Frontend => session.feed_frontend(msg),
                Direction::Backend => session.feed_backend(msg),
            };
            event.unwrap_or_else(|e| panic!("{dir} message {msg:?}: {e}"));
            // During authentication the turns alternate: a server message that asks for
            // credentials hands the turn to the client.
            client_turn = match dir {
                Direction::Frontend => false,
                Direction::Backend => {
                    let (tag, body) = typed_body(msg).unwrap_or((0, &[]));
                    matches!(Backend::parse(tag, body), Ok(Backend::Authentication(a)) if !matches!(a, sluice_codecs::postgres::Auth::Ok | sluice_codecs::postgres::Auth::SaslFinal(_)))
                }
            };
            *at += n;
            order.push((dir, msg));
            fed = true;
            break;
        }
        if !fed {
            break;
        }
    }
    order.push((Direction::Frontend, &client[c..]));
    order.push((Direction::Backend, &server[s..]));
    order
}

/// Feeds `bytes` from `dir` in reads of `chunk` bytes; returns what the filter queued for
/// each side and the last status.
fn feed_status(
    filter: &mut PostgresFilter,
    dir: Direction,
    bytes: &[u8],
    chunk: usize,
    now: Instant,
    input: &mut BytesMut,
) -> (Vec<u8>, Vec<u8>, FilterStatus) {
    let (mut up, mut down) = (WriteQueue::default(), WriteQueue::default());
    // Nothing new still makes one call (the driver's call at a wake-up).
    let pieces: Vec<&[u8]> = if bytes.is_empty() { vec![&[]] } else { bytes.chunks(chunk.max(1)).collect() };
    let mut status = FilterStatus::Continue;
    for piece in pieces {
        input.extend_from_slice(piece);
        let mut io = StreamIo { now, to_upstream: &mut up, to_downstream: &mut down };
        status = match dir {
            Direction::Frontend => filter.on_downstream(input, false, &mut io),
            Direction::Backend => filter.on_upstream(input, false, &mut io),
        };
        if status != FilterStatus::Continue {
            break;
        }
    }
    (up.take_all(), down.take_all(), status)
}

fn feed(
    filter: &mut PostgresFilter,
    dir: Direction,
    bytes: &[u8],
    chunk: usize,
    now: Instant,
    input: &mut BytesMut,
) -> (Vec<u8>, Vec<u8>) {
    let (up, down, status) = feed_status(filter, dir, bytes, chunk, now, input);
    assert_eq!(status, FilterStatus::Continue);
    (up, down)
}

/// Replays a fixture through a filter of `listener`.
fn replay(name: &str, listener: &Arc<PostgresListener>, chunk: usize) -> (PostgresFilter, Vec<u8>, Vec<u8>) {
    let (client, server) = (fixture(&format!("{name}.client")), fixture(&format!("{name}.server")));
    let mut filter = PostgresFilter::new(listener.clone(), client_ip());
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    for (dir, bytes) in wire_order(&client, &server) {
        let input = if dir == Direction::Frontend { &mut c } else { &mut s };
        let (up, down) = feed(&mut filter, dir, bytes, chunk, Instant::now(), input);
        to_server.extend(up);
        to_client.extend(down);
    }
    (filter, to_server, to_client)
}

#[test]
fn every_fixture_passes_unchanged_and_every_statement_finishes() {
    for name in fixture_names() {
        let (filter, to_server, to_client) = replay(&name, &listener(Vec::new()), 7);
        assert_eq!(to_server, fixture(&format!("{name}.client")), "{name}: client bytes pass unchanged");
        assert_eq!(to_client, fixture(&format!("{name}.server")), "{name}: server bytes pass unchanged");
        assert_eq!(filter.statements_in_flight(), 0, "{name}: every forwarded statement finished");
    }
}

fn digest<'a>(rows: &'a [crate::sql::DigestRow], text: &str) -> &'a crate::sql::DigestRow {
    rows.iter().find(|r| &*r.digest_text == text).unwrap_or_else(|| {
        panic!("no digest {text:?} in {:?}", rows.iter().map(|r| &r.digest_text).collect::<Vec<_>>())
    })
}

#[test]
fn prepared_executes_are_attributed_to_their_statement() {
    for name in ["pgbench_prepared", "pgbench_extended"] {
        let listener = listener(Vec::new());
        replay(name, &listener, 4096);
        let top = listener.digests.top(10, DigestOrder::Count);
        let select = top.iter().find(|r| r.digest_text.contains("pgbench_accounts")).expect("the select's digest");
        assert_eq!(select.count, 3, "{name}: three Executes of the select");
        assert_eq!(select.rows, 3, "{name}: one row each");
        assert_eq!(select.verb.as_str(), "SELECT");
        assert_eq!(&*select.tables, &["pgbench_accounts".into()]);
    }
}

#[test]
fn a_multi_statement_query_counts_each_statement_up_to_the_error() {
    let listener = listener(Vec::new());
    replay("multi_statement", &listener, 4096);
    let top = listener.digests.top(10, DigestOrder::Count);
    // `SELECT 5` came after the error and never ran: `SELECT ?` is `SELECT 1` alone.
    assert_eq!(digest(&top, "SELECT ?").count, 1);
    assert_eq!(digest(&top, "SELECT ?, ?").rows, 1);
    assert_eq!(digest(&top, "SELECT generate_series(?, ?)").rows, 4);
    let nope = digest(&top, "SELECT nope");
    assert_eq!((nope.count, nope.errors), (1, 1));
    assert_eq!(top.iter().map(|r| r.count).sum::<u64>(), 4);
}

#[test]
fn rows_come_from_command_tags_for_writes_and_copy() {
    let listener = listener(Vec::new());
    replay("psql_simple", &listener, 4096);
    replay("copy_in", &listener, 4096);
    let top = listener.digests.top(20, DigestOrder::Count);
    let insert = top.iter().find(|r| r.verb.as_str() == "INSERT").unwrap();
    assert_eq!(insert.rows, 3);
    let copy = top.iter().find(|r| r.verb.as_str() == "COPY").unwrap();
    assert_eq!(copy.rows, 4, "COPY 4");
    assert_eq!(&*copy.tables, &["c".into()]);
}

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn query(sql: &str) -> Vec<u8> {
    msg(b'Q', &[sql.as_bytes(), b"\0"].concat())
}

fn parse(name: &str, sql: &str) -> Vec<u8> {
    msg(b'P', &[name.as_bytes(), b"\0", sql.as_bytes(), b"\0\0\0"].concat())
}

fn bind(portal: &str, statement: &str) -> Vec<u8> {
    msg(b'B', &[portal.as_bytes(), b"\0", statement.as_bytes(), b"\0", &[0; 6]].concat())
}

fn execute(portal: &str) -> Vec<u8> {
    msg(b'E', &[portal.as_bytes(), b"\0", &[0; 4]].concat())
}

fn sync() -> Vec<u8> {
    msg(b'S', b"")
}

fn ready(status: u8) -> Vec<u8> {
    msg(b'Z', &[status])
}

fn complete(tag: &str) -> Vec<u8> {
    msg(b'C', &[tag.as_bytes(), b"\0"].concat())
}

/// The startup of a trust login, as the client and the server send it.
fn trust_login() -> (Vec<u8>, Vec<u8>) {
    let body = b"\0\x03\0\0user\0bench\0database\0db\0\0";
    let mut startup = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    startup.extend_from_slice(body);
    (startup, [msg(b'R', &[0, 0, 0, 0]), ready(b'I')].concat())
}

/// A filter past a trust login, ready for statements.
fn logged_in(rules: Vec<Rule>) -> (PostgresFilter, BytesMut, BytesMut) {
    let mut filter = PostgresFilter::new(listener(rules), client_ip());
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let (startup, answer) = trust_login();
    let now = Instant::now();
    feed(&mut filter, Direction::Frontend, &startup, 4096, now, &mut c);
    feed(&mut filter, Direction::Backend, &answer, 4096, now, &mut s);
    assert_eq!(filter.state(), State::Running);
    (filter, c, s)
}

fn deny(op: &str) -> Rule {
    Rule { matcher: Matcher { ops: vec![op.into()], ..Default::default() }, action: Action::Deny }
}

/// The SQLSTATE of the ErrorResponse at the start of `bytes`, and its length.
fn error_at(bytes: &[u8]) -> (String, usize) {
    let n = peek(bytes, sluice_codecs::postgres::Phase::Typed, &PgLimits::default()).unwrap().unwrap();
    let (tag, body) = typed_body(&bytes[..n]).unwrap();
    let Ok(Backend::ErrorResponse(e)) = Backend::parse(tag, body) else { panic!("not an error: {bytes:?}") };
    (String::from_utf8_lossy(e.code).into_owned(), n)
}

#[test]
fn a_refused_query_in_a_pipeline_is_answered_after_the_earlier_ones() {
    let (mut filter, mut c, mut s) = logged_in(vec![deny("DROP")]);
    let now = Instant::now();
    let pipeline = [query("BEGIN"), query("DROP TABLE t"), query("SELECT 1")].concat();
    let (up, down) = feed(&mut filter, Direction::Frontend, &pipeline, 4096, now, &mut c);
    assert_eq!(up, [query("BEGIN"), query("SELECT 1")].concat(), "the DROP never leaves");
    assert!(down.is_empty(), "the refusal waits for the BEGIN's answer");
    let begun = [complete("BEGIN"), ready(b'T')].concat();
    let (_, down) = feed(&mut filter, Direction::Backend, &begun, 3, now, &mut s);
    assert_eq!(&down[..begun.len()], &begun[..], "the BEGIN's answer first");
    let (code, n) = error_at(&down[begun.len()..]);
    assert_eq!(code, "42501");
    assert_eq!(&down[begun.len() + n..], &ready(b'T')[..], "then ReadyForQuery, still in the transaction");
    let selected = [complete("SELECT 1"), ready(b'T')].concat();
    let (_, down) = feed(&mut filter, Direction::Backend, &selected, 4096, now, &mut s);
    assert_eq!(down, selected, "then the SELECT's answer");
    assert_eq!(filter.statements_in_flight(), 0);
}

#[test]
fn a_query_with_one_refused_statement_is_refused_whole() {
    let (mut filter, mut c, _) = logged_in(vec![deny("DROP")]);
    let (up, down) = feed(
        &mut filter,
        Direction::Frontend,
        &query("SELECT 1; DROP TABLE t; SELECT 2"),
        4096,
        Instant::now(),
        &mut c,
    );
    assert!(up.is_empty());
    let (code, n) = error_at(&down);
    assert_eq!(code, "42501");
    assert_eq!(&down[n..], &ready(b'I')[..]);
    assert_eq!(filter.statements_in_flight(), 0);
}

#[test]
fn a_refused_execute_drops_its_batch_up_to_the_sync_which_goes_on() {
    let (mut filter, mut c, mut s) = logged_in(vec![deny("DROP")]);
    let now = Instant::now();
    let close = msg(b'C', b"Sx\0");
    let batch = [
        parse("", "DROP TABLE t"),
        bind("", ""),
        execute(""),
        close.clone(),
        sync(),
        parse("", "SELECT 1"),
        bind("", ""),
        execute(""),
        sync(),
    ]
    .concat();
    let (up, down) = feed(&mut filter, Direction::Frontend, &batch, 5, now, &mut c);
    let expected =
        [parse("", "DROP TABLE t"), bind("", ""), sync(), parse("", "SELECT 1"), bind("", ""), execute(""), sync()]
            .concat();
    assert_eq!(up, expected, "the Execute and what follows it up to the Sync are dropped");
    assert!(down.is_empty());
    let (parsed, bound) = (msg(b'1', b""), msg(b'2', b""));
    let (_, down) = feed(&mut filter, Direction::Backend, &[parsed.clone(), bound.clone()].concat(), 4096, now, &mut s);
    assert_eq!(down[..10], [parsed.clone(), bound.clone()].concat()[..]);
    let (code, n) = error_at(&down[10..]);
    assert_eq!(code, "42501");
    assert_eq!(down.len(), 10 + n, "the ReadyForQuery is the server's");
    let rest = [ready(b'I'), parsed, bound, complete("SELECT 1"), ready(b'I')].concat();
    let (_, down) = feed(&mut filter, Direction::Backend, &rest, 4096, now, &mut s);
    assert_eq!(down, rest);
    assert_eq!(filter.statements_in_flight(), 0);
}

#[test]
fn a_refused_execute_after_a_server_error_in_its_batch_adds_no_second_error() {
    let (mut filter, mut c, mut s) = logged_in(vec![deny("DROP")]);
    let now = Instant::now();
    let batch = [parse("", "SELEC oops"), parse("d", "DROP TABLE t"), bind("", "d"), execute(""), sync()].concat();
    let (up, _) = feed(&mut filter, Direction::Frontend, &batch, 4096, now, &mut c);
    assert_eq!(up, [parse("", "SELEC oops"), parse("d", "DROP TABLE t"), bind("", "d"), sync()].concat());
    let failed = [msg(b'E', b"SERROR\0C42601\0Msyntax error\0\0"), ready(b'I')].concat();
    let (_, down) = feed(&mut filter, Direction::Backend, &failed, 4096, now, &mut s);
    assert_eq!(down, failed, "one error for the batch: the server's");
}

#[test]
fn a_delay_rule_holds_the_statement_until_its_slot() {
    let limit = RateLimit::new(
        NonZeroU32::new(10).unwrap(),
        Duration::from_secs(1),
        NonZeroU32::new(1).unwrap(),
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
    let (up, _) = feed(&mut filter, Direction::Frontend, &two, 4096, now, &mut c);
    assert_eq!(up, query("SELECT 1"), "the second SELECT waits for its slot");
    let wake = filter.wake_at().expect("a wake-up is asked for");
    assert!(wake > now && wake <= now + Duration::from_millis(200), "{:?}", wake - now);
    feed(&mut filter, Direction::Backend, &[complete("SELECT 1"), ready(b'I')].concat(), 4096, now, &mut s);
    let mut up = Vec::new();
    while let (true, Some(wake)) = (up.is_empty(), filter.wake_at()) {
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        up = feed(&mut filter, Direction::Frontend, &[], 4096, Instant::now(), &mut c).0;
    }
    assert_eq!(up, query("SELECT 2"));
    assert_eq!(filter.wake_at(), None);
}

#[test]
fn a_rate_limit_rejects_with_53400_and_the_session_goes_on() {
    let limit = RateLimit::new(
        NonZeroU32::new(1).unwrap(),
        Duration::from_secs(3600),
        NonZeroU32::new(1).unwrap(),
        LimitKind::Op,
        OnLimit::Reject,
    );
    let rule = Rule {
        matcher: Matcher { ops: vec!["INSERT".into()], ..Default::default() },
        action: Action::RateLimit(limit),
    };
    let (mut filter, mut c, mut s) = logged_in(vec![rule]);
    let now = Instant::now();
    let (up, _) = feed(&mut filter, Direction::Frontend, &query("INSERT INTO t VALUES (1)"), 4096, now, &mut c);
    assert_eq!(up, query("INSERT INTO t VALUES (1)"));
    feed(&mut filter, Direction::Backend, &[complete("INSERT 0 1"), ready(b'I')].concat(), 4096, now, &mut s);
    let (up, down) = feed(&mut filter, Direction::Frontend, &query("INSERT INTO t VALUES (2)"), 4096, now, &mut c);
    assert!(up.is_empty());
    assert_eq!(error_at(&down).0, "53400");
    let (up, _) = feed(&mut filter, Direction::Frontend, &query("SELECT 1"), 4096, now, &mut c);
    assert_eq!(up, query("SELECT 1"), "the session goes on");
}

fn ssl_request() -> Vec<u8> {
    [8u32.to_be_bytes(), 80877103u32.to_be_bytes()].concat()
}

#[test]
fn encryption_requests_are_forwarded_refused_or_terminated_by_the_listener() {
    let now = Instant::now();
    // Observing: the server answers.
    let mut filter = PostgresFilter::new(listener(Vec::new()), client_ip());
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let (up, down) = feed(&mut filter, Direction::Frontend, &ssl_request(), 4096, now, &mut c);
    assert_eq!((up, down), (ssl_request(), Vec::new()));
    let (_, down) = feed(&mut filter, Direction::Backend, b"S\x16\x03\x01", 4096, now, &mut s);
    assert_eq!(down, b"S\x16\x03\x01", "accepted: the rest passes opaque");
    let (up, _) = feed(&mut filter, Direction::Frontend, b"\x16\x03\x01\x00\x05hello", 4096, now, &mut c);
    assert_eq!(up, b"\x16\x03\x01\x00\x05hello");

    // Enforcing: answered N here, and the login goes on in the clear.
    let mut filter = PostgresFilter::new(listener(vec![deny("DROP")]), client_ip());
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let (startup, answer) = trust_login();
    let (up, down) =
        feed(&mut filter, Direction::Frontend, &[ssl_request(), startup.clone()].concat(), 4096, now, &mut c);
    assert_eq!((up, down), (startup, b"N".to_vec()));
    feed(&mut filter, Direction::Backend, &answer, 4096, now, &mut s);
    assert_eq!(filter.state(), State::Running);

    // Terminating: answered S here, and the driver is asked to start TLS.
    let listener = listener_with(Setup {
        rules: Vec::new(),
        terminates_tls: true,
        refuse_encryption: false,
        originates_tls: false,
    });
    let mut filter = PostgresFilter::new(listener, client_ip());
    let mut c = BytesMut::new();
    let hello = b"\x16\x03\x01\x00\x05hello";
    let (up, down, status) =
        feed_status(&mut filter, Direction::Frontend, &[&ssl_request()[..], hello].concat(), 4096, now, &mut c);
    assert_eq!((up, down, status), (Vec::new(), b"S".to_vec(), FilterStatus::StartDownstreamTls));
    assert_eq!(&c[..], hello, "the TLS handshake stays for the driver");
    assert_eq!(filter.state(), State::AwaitStartup, "the decrypted stream starts with the StartupMessage");
}

#[test]
fn garbage_closes_an_enforcing_listener_with_a_fatal_error_and_passes_an_observing_one() {
    let garbage = [b'Q', 0, 0, 0, 2, b'x', b'y'];
    let (mut filter, mut c, _) = logged_in(vec![deny("DROP")]);
    let (up, down, status) = feed_status(&mut filter, Direction::Frontend, &garbage, 4096, Instant::now(), &mut c);
    assert!(up.is_empty());
    assert_eq!(error_at(&down).0, "08P01");
    assert_eq!(status, FilterStatus::Close(CloseReason::ProtocolError));

    let (mut filter, mut c, _) = logged_in(Vec::new());
    let (up, down, status) = feed_status(&mut filter, Direction::Frontend, &garbage, 4096, Instant::now(), &mut c);
    assert_eq!((up, down, status), (garbage.to_vec(), Vec::new(), FilterStatus::Continue));
}

#[test]
fn a_statement_the_server_rejects_at_parse_counts_as_a_failed_execution() {
    let listener = listener(Vec::new());
    let mut filter = PostgresFilter::new(listener.clone(), client_ip());
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let (startup, answer) = trust_login();
    let now = Instant::now();
    feed(&mut filter, Direction::Frontend, &startup, 4096, now, &mut c);
    feed(&mut filter, Direction::Backend, &answer, 4096, now, &mut s);
    let batches = [
        [parse("", "SELECT nocol FROM t"), bind("", ""), execute(""), sync()].concat(),
        [parse("", "SELECT 1"), bind("", ""), execute(""), sync()].concat(),
    ]
    .concat();
    feed(&mut filter, Direction::Frontend, &batches, 4096, now, &mut c);
    let answers = [
        msg(b'E', b"SERROR\0C42703\0Mcolumn \"nocol\" does not exist\0\0"),
        ready(b'I'),
        msg(b'1', b""),
        msg(b'2', b""),
        complete("SELECT 1"),
        ready(b'I'),
    ]
    .concat();
    feed(&mut filter, Direction::Backend, &answers, 4096, now, &mut s);
    let top = listener.digests.top(10, DigestOrder::Count);
    let failed = digest(&top, "SELECT nocol FROM t");
    assert_eq!((failed.count, failed.errors), (1, 1), "the skipped Execute carries the Parse error");
    assert_eq!(digest(&top, "SELECT ?").errors, 0, "the next batch is not touched");
    assert_eq!(filter.statements_in_flight(), 0);
}
