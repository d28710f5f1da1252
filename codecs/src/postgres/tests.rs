//! PostgreSQL codec tests on captured sessions (fixtures/postgres, see capture.py and
//! README.md there) and on synthetic flows the captures do not show; hostile input is in
//! `hostile_tests`.
//!
//! The captures keep each direction in its own file, so the replay interleaves them: it
//! feeds the server when the session says the client is waiting for it (or, during
//! authentication, until the server asks for credentials), the client otherwise, and
//! falls back to the other side when one has nothing left. Every fixture gives the same
//! messages and events whole, in small chunks and split in two at every byte boundary.

use bytes::{Bytes, BytesMut};

use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/postgres");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub(super) fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().unwrap().strip_suffix(".client").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 12, "{names:?}");
    names
}

/// One direction's bytes arriving in pieces.
struct Stream<'a> {
    data: &'a [u8],
    cuts: Vec<usize>,
    given: usize,
    buf: BytesMut,
}

impl<'a> Stream<'a> {
    fn new(data: &'a [u8], mut cuts: Vec<usize>) -> Self {
        cuts.retain(|&c| c > 0 && c < data.len());
        cuts.push(data.len());
        cuts.sort_unstable();
        cuts.dedup();
        Stream { data, cuts, given: 0, buf: BytesMut::new() }
    }

    fn chunked(data: &'a [u8], chunk: usize) -> Self {
        Self::new(data, (chunk..data.len()).step_by(chunk).collect())
    }

    fn next(&mut self, phase: Phase, limits: &PgLimits) -> Option<Bytes> {
        loop {
            if let Some(m) = split_message(&mut self.buf, phase, limits).unwrap() {
                return Some(m);
            }
            let &cut = self.cuts.iter().find(|&&c| c > self.given)?;
            self.buf.extend_from_slice(&self.data[self.given..cut]);
            self.given = cut;
        }
    }

    fn done(&self) -> bool {
        self.given == self.data.len() && self.buf.is_empty()
    }
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Replay {
    /// (from the client?, message bytes)
    pub(super) messages: Vec<(bool, Bytes)>,
    /// Debug renderings of the events, in order.
    events: Vec<String>,
}

fn replay_streams<'a>(mut client: Stream<'a>, mut server: Stream<'a>) -> Replay {
    let limits = PgLimits::default();
    let mut session = Session::new(limits);
    let mut out = Replay::default();
    let mut credentials_asked = false;
    loop {
        if matches!(session.state(), State::Closed) {
            break;
        }
        let server_turn = match session.state() {
            State::Authenticating { .. } => !credentials_asked,
            _ => session.waiting_for_server(),
        };
        let order = if server_turn { [false, true] } else { [true, false] };
        let mut fed = false;
        for from_client in order {
            let (stream, dir) =
                if from_client { (&mut client, Direction::Frontend) } else { (&mut server, Direction::Backend) };
            let Some(msg) = stream.next(session.phase(dir), &limits) else { continue };
            let event = if from_client { session.feed_frontend(&msg) } else { session.feed_backend(&msg) };
            let event = event.unwrap_or_else(|e| panic!("{dir} message {msg:?}: {e}"));
            if from_client {
                credentials_asked = false;
            }
            if let Some(Event::AuthRequest(a)) = &event {
                credentials_asked = !matches!(a, Auth::SaslFinal(_));
            }
            if let Some(e) = event {
                out.events.push(format!("{e:?}"));
            }
            out.messages.push((from_client, msg));
            fed = true;
            break;
        }
        if !fed {
            break;
        }
    }
    assert!(client.done() && server.done(), "bytes left over");
    out
}

pub(super) fn replay(name: &str) -> Replay {
    let (c, s) = (fixture(&format!("{name}.client")), fixture(&format!("{name}.server")));
    replay_streams(Stream::new(&c, vec![]), Stream::new(&s, vec![]))
}

#[test]
fn every_fixture_replays_the_same_whole_chunked_and_split_anywhere() {
    for name in fixture_names() {
        let (c, s) = (fixture(&format!("{name}.client")), fixture(&format!("{name}.server")));
        let whole = replay_streams(Stream::new(&c, vec![]), Stream::new(&s, vec![]));
        assert!(!whole.events.is_empty(), "{name}");
        for chunk in [1, 3, 7] {
            let r = replay_streams(Stream::chunked(&c, chunk), Stream::chunked(&s, chunk));
            assert_eq!(r, whole, "{name} in chunks of {chunk}");
        }
        for k in 0..c.len().max(s.len()) {
            let r = replay_streams(Stream::new(&c, vec![k]), Stream::new(&s, vec![k]));
            assert_eq!(r, whole, "{name} split at {k}");
        }
    }
}

/// The session's events for a fixture, owned for matching.
fn events(name: &str) -> Vec<String> {
    replay(name).events
}

fn finished(name: &str) -> Vec<String> {
    let (c, s) = (fixture(&format!("{name}.client")), fixture(&format!("{name}.server")));
    let limits = PgLimits::default();
    // Re-feed the replayed messages to get typed events.
    let r = replay_streams(Stream::new(&c, vec![]), Stream::new(&s, vec![]));
    let mut session = Session::new(limits);
    let mut out = vec![];
    for (from_client, msg) in &r.messages {
        let e = if *from_client { session.feed_frontend(msg) } else { session.feed_backend(msg) };
        if let Some(Event::StatementFinished { outcome, rows, extended }) = e.unwrap() {
            out.push(match outcome {
                Outcome::Complete(tag) => {
                    format!("{} {:?} rows={rows} ext={extended}", String::from_utf8_lossy(tag.verb()), tag.rows())
                }
                Outcome::Empty => "empty".into(),
                Outcome::Suspended => "suspended".into(),
                Outcome::Error(n) => format!("error {}", String::from_utf8_lossy(n.code)),
            });
        }
    }
    out
}

fn has(events: &[String], needle: &str) -> bool {
    events.iter().any(|e| e.contains(needle))
}

#[test]
fn psql_simple_queries_finish_with_verbs_and_rows() {
    assert_eq!(
        finished("psql_simple"),
        [
            "SELECT Some(1) rows=1 ext=false",
            "CREATE TABLE None rows=0 ext=false",
            "INSERT Some(3) rows=0 ext=false",
            "UPDATE Some(2) rows=0 ext=false",
            "DELETE Some(1) rows=0 ext=false",
            "SELECT Some(2) rows=2 ext=false",
            "empty",
        ]
    );
    let ev = events("psql_simple");
    assert!(ev[0].starts_with("Startup"), "{}", ev[0]);
    assert!(has(&ev, "ReadyForQuery(Idle)"));
    assert!(has(&ev, "BackendKeyData"));
}

#[test]
fn errors_carry_sqlstate_and_multi_statement_stops_at_the_first() {
    assert_eq!(finished("psql_error"), ["error 42P01", "error 22012", "SELECT Some(1) rows=1 ext=false"]);
    assert_eq!(
        finished("multi_statement"),
        [
            "SELECT Some(1) rows=1 ext=false",
            "SELECT Some(1) rows=1 ext=false",
            "SELECT Some(4) rows=4 ext=false",
            "error 42703",
        ]
    );
}

#[test]
fn pgbench_extended_and_prepared_are_attributed_to_sql() {
    for name in ["pgbench_extended", "pgbench_prepared"] {
        let f = finished(name);
        assert_eq!(f.iter().filter(|s| s.as_str() == "SELECT Some(1) rows=1 ext=true").count(), 3, "{name}: {f:?}");
        let ev = events(name);
        let executes: Vec<_> = ev.iter().filter(|e| e.starts_with("Execute")).collect();
        assert_eq!(executes.len(), 3, "{name}");
        // The SQL reached Execute through the (named or unnamed) statement and portal.
        assert!(executes.iter().all(|e| e.contains("sql: Some(")), "{name}: {executes:?}");
    }
    assert_eq!(events("pgbench_prepared").iter().filter(|e| e.starts_with("Parse")).count(), 1);
}

#[test]
fn copy_in_out_and_failed_copy() {
    let ev = events("copy_in");
    assert!(has(&ev, "CopyStarted { direction: In"));
    assert!(finished("copy_in").contains(&"COPY Some(4) rows=0 ext=false".to_string()));
    assert!(has(&events("copy_out"), "CopyStarted { direction: Out, columns: 2"));
    assert_eq!(finished("copy_out"), ["COPY Some(5) rows=0 ext=false"]);
    assert!(finished("copy_in_fail").contains(&"error 22P02".to_string()));
}

#[test]
fn logins_md5_scram_wrong_password_and_ssl_refused() {
    let md5 = events("md5_login");
    assert!(has(&md5, "AuthRequest(Md5Password"), "{md5:?}");
    assert!(has(&md5, "AuthResult(Ok(()))"));
    let scram = events("scram_login");
    assert!(has(&scram, "AuthRequest(Sasl"));
    assert!(has(&scram, "SaslMechanism { mechanism: [83, 67, 82, 65, 77, 45, 83, 72, 65, 45, 50, 53, 54]"));
    assert!(has(&scram, "AuthRequest(SaslFinal"));
    assert!(has(&scram, "AuthResult(Ok(()))"));
    let wrong = events("wrong_password");
    assert!(has(&wrong, "AuthResult(Err("), "{wrong:?}");
    let ssl = events("ssl_refused");
    assert_eq!(ssl[0], "EncryptionRequested { gss: false }");
    assert_eq!(ssl[1], "EncryptionAnswer { gss: false, accepted: false }");
    assert!(ssl[2].starts_with("Startup"));
}

#[test]
fn command_tags() {
    let t = |s: &'static str| {
        (String::from_utf8_lossy(CommandTag(s.as_bytes()).verb()).into_owned(), CommandTag(s.as_bytes()).rows())
    };
    assert_eq!(t("INSERT 0 5"), ("INSERT".into(), Some(5)));
    assert_eq!(t("SELECT 3"), ("SELECT".into(), Some(3)));
    assert_eq!(t("UPDATE 2"), ("UPDATE".into(), Some(2)));
    assert_eq!(t("COPY 4"), ("COPY".into(), Some(4)));
    assert_eq!(t("CREATE TABLE"), ("CREATE TABLE".into(), None));
    assert_eq!(t(""), ("".into(), None));
    assert_eq!(t(" 1"), ("".into(), Some(1)));
    assert_eq!(t("SELECT 99999999999999999999999"), ("SELECT".into(), None));
    assert_eq!(t("INSERT 0 99999999999999999999999"), ("INSERT".into(), Some(0)));
    assert_eq!(t("SELECT 18446744073709551615"), ("SELECT".into(), Some(u64::MAX)));
    assert_eq!(t("SELECT "), ("SELECT ".into(), None));
    assert_eq!(t("A  12"), ("A ".into(), Some(12)));
    assert_eq!(t("A1 2"), ("A1".into(), Some(2)));
    assert_eq!(t("12 34"), ("12".into(), Some(34)));
    assert_eq!(t("123"), ("123".into(), None));
}

#[test]
fn strings_short_and_long_end_at_their_nul() {
    use super::reader::Reader;
    for len in [0, 1, 15, 16, 17, 40] {
        let mut body = vec![b'x'; len];
        body.extend_from_slice(b"\0rest");
        let mut r = Reader::new(&body);
        assert_eq!(r.cstr("s").unwrap().len(), len);
        assert_eq!(r.remaining(), b"rest");
        assert!(Reader::new(&body[..len]).cstr("s").is_err(), "{len}");
    }
}

pub(super) fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// The StartupMessage of user `u`, protocol 3.0.
pub(super) fn startup() -> Vec<u8> {
    let mut startup = 16u32.to_be_bytes().to_vec();
    startup.extend_from_slice(b"\0\x03\0\0user\0u\0\0");
    startup
}

/// A session past start-up (trust login).
pub(super) fn running() -> Session {
    running_with(PgLimits::default())
}

pub(super) fn running_with(limits: PgLimits) -> Session {
    let mut s = Session::new(limits);
    s.feed_frontend(&startup()).unwrap();
    s.feed_backend(&msg(b'R', &[0, 0, 0, 0])).unwrap();
    s.feed_backend(&msg(b'Z', b"I")).unwrap();
    assert_eq!(s.state(), State::Running);
    s
}

pub(super) fn short(e: Option<Event<'_>>) -> String {
    match e {
        None => "-".into(),
        Some(Event::StatementFinished { outcome: Outcome::Complete(t), rows, extended }) => {
            format!("finished {} rows={rows} ext={extended}", String::from_utf8_lossy(t.0))
        }
        Some(Event::StatementFinished { outcome: Outcome::Error(n), extended, .. }) => {
            format!("failed {} ext={extended}", String::from_utf8_lossy(n.code))
        }
        Some(Event::ExtendedError(n)) => format!("extended error {}", String::from_utf8_lossy(n.code)),
        Some(Event::Execute { portal, sql }) => format!(
            "execute {:?} {:?}",
            String::from_utf8_lossy(portal),
            sql.map(|s| String::from_utf8_lossy(&s).into_owned())
        ),
        Some(Event::Bind { portal, sql, .. }) => format!(
            "bind {:?} {:?}",
            String::from_utf8_lossy(portal),
            sql.map(|s| String::from_utf8_lossy(&s).into_owned())
        ),
        Some(e) => format!("{e:?}"),
    }
}

#[test]
fn pipelined_extended_protocol_skips_to_sync_after_an_error() {
    let mut s = running();
    let err = msg(b'E', b"SERROR\0C42601\0Msyntax\0\0");
    let client = [
        msg(b'P', b"s1\0SELECT 1\0\0\0"),
        msg(b'B', b"p1\0s1\0\0\0\0\0\0\0"),
        msg(b'E', b"p1\0\0\0\0\0"),
        msg(b'P', b"\0SELEC\0\0\0"),
        msg(b'B', b"\0\0\0\0\0\0\0\0"),
        msg(b'E', b"\0\0\0\0\0"),
        msg(b'S', b""),
        // After the Sync: a fresh Bind of the named statement runs.
        msg(b'B', b"\0s1\0\0\0\0\0\0\0"),
        msg(b'E', b"\0\0\0\0\0"),
        msg(b'S', b""),
    ];
    let got: Vec<String> = client.iter().map(|m| short(s.feed_frontend(m).unwrap())).collect();
    assert_eq!(got[2], "execute \"p1\" Some(\"SELECT 1\")");
    assert_eq!(got[5], "execute \"\" Some(\"SELEC\")");
    assert_eq!(got[8], "execute \"\" Some(\"SELECT 1\")");
    let server = [
        msg(b'1', b""),
        msg(b'2', b""),
        msg(b'D', b"\0\x01\0\0\0\x011"),
        msg(b'C', b"SELECT 1\0"),
        err.clone(),
        msg(b'Z', b"I"),
        msg(b'2', b""),
        msg(b'D', b"\0\x01\0\0\0\x011"),
        msg(b'C', b"SELECT 1\0"),
        msg(b'Z', b"I"),
    ];
    let got: Vec<String> = server.iter().map(|m| short(s.feed_backend(m).unwrap())).collect();
    assert_eq!(
        got,
        [
            "-",
            "-",
            "-",
            "finished SELECT 1 rows=1 ext=true",
            "extended error 42601",
            "ReadyForQuery(Idle)",
            "-",
            "-",
            "finished SELECT 1 rows=1 ext=true",
            "ReadyForQuery(Idle)"
        ]
    );
    assert!(!s.waiting_for_server());

    // The error can also arrive before the client has sent its Sync: what it sends until
    // then is skipped by the server, and by the session.
    s.feed_frontend(&msg(b'B', b"\0nope\0\0\0\0\0\0\0")).unwrap();
    assert_eq!(short(s.feed_backend(&err).unwrap()), "extended error 42601");
    assert_eq!(short(s.feed_frontend(&msg(b'E', b"\0\0\0\0\0")).unwrap()), "-");
    s.feed_frontend(&msg(b'S', b"")).unwrap();
    assert!(s.waiting_for_server());
    assert_eq!(short(s.feed_backend(&msg(b'Z', b"E")).unwrap()), "ReadyForQuery(Failed)");
}

#[test]
fn ssl_accepted_makes_the_stream_opaque_until_resumed() {
    let mut s = Session::new(PgLimits::default());
    let req = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    assert_eq!(s.feed_frontend(&req), Ok(Some(Event::EncryptionRequested { gss: false })));
    assert_eq!(s.phase(Direction::Backend), Phase::EncryptionAnswer);
    assert_eq!(s.feed_backend(b"S"), Ok(Some(Event::EncryptionAnswer { gss: false, accepted: true })));
    assert_eq!(s.feed_frontend(b"\x16\x03\x01"), Err(PgError::Opaque));
    s.resume_after_tls();
    assert_eq!(s.phase(Direction::Frontend), Phase::Startup);
}

#[test]
fn sync_and_flush_inside_copy_in_are_ignored() {
    let mut s = running();
    s.feed_frontend(&msg(b'P', b"\0COPY t FROM STDIN\0\0\0")).unwrap();
    s.feed_frontend(&msg(b'B', b"\0\0\0\0\0\0\0\0")).unwrap();
    s.feed_frontend(&msg(b'E', b"\0\0\0\0\0")).unwrap();
    s.feed_frontend(&msg(b'H', b"")).unwrap();
    s.feed_backend(&msg(b'1', b"")).unwrap();
    s.feed_backend(&msg(b'2', b"")).unwrap();
    let copy_in = msg(b'G', b"\0\0\x01\0\0");
    let started = s.feed_backend(&copy_in).unwrap();
    assert_eq!(started, Some(Event::CopyStarted { direction: CopyDirection::In, columns: 1 }));
    s.feed_frontend(&msg(b'd', b"1\n")).unwrap();
    s.feed_frontend(&msg(b'S', b"")).unwrap(); // ignored by the server in copy-in
    assert!(!s.waiting_for_server());
    s.feed_frontend(&msg(b'c', b"")).unwrap();
    s.feed_frontend(&msg(b'S', b"")).unwrap();
    assert_eq!(short(s.feed_backend(&msg(b'C', b"COPY 1\0")).unwrap()), "finished COPY 1 rows=0 ext=true");
    assert_eq!(short(s.feed_backend(&msg(b'Z', b"I")).unwrap()), "ReadyForQuery(Idle)");
    assert!(!s.waiting_for_server());
}

#[test]
fn requests_are_counted_as_sent_and_answered_in_order_skips_included() {
    let mut s = running();
    let err = msg(b'E', b"SERROR\0C42601\0Msyntax\0\0");
    for m in [msg(b'P', b"\0SELEC\0\0\0"), msg(b'B', b"\0\0\0\0\0\0\0\0"), msg(b'E', b"\0\0\0\0\0"), msg(b'S', b"")] {
        s.feed_frontend(&m).unwrap();
    }
    assert_eq!((s.requests_sent(), s.requests_answered()), (4, 0));
    // The Parse fails: the Bind and Execute are skipped, counted as answered with it.
    s.feed_backend(&err).unwrap();
    assert_eq!(s.requests_answered(), 3);
    s.feed_backend(&msg(b'Z', b"T")).unwrap();
    assert_eq!((s.requests_answered(), s.tx_status()), (4, TxStatus::InTransaction));
    // CopyData, Flush and skipped messages are not requests.
    s.feed_frontend(&msg(b'Q', b"SELECT 1\0")).unwrap();
    s.feed_frontend(&msg(b'H', b"")).unwrap();
    assert_eq!(s.requests_sent(), 5);
    s.feed_backend(&msg(b'T', b"\0\0")).unwrap();
    s.feed_backend(&msg(b'C', b"SELECT 0\0")).unwrap();
    assert_eq!(s.requests_answered(), 4, "a Query is answered by its ReadyForQuery");
    s.feed_backend(&msg(b'Z', b"I")).unwrap();
    assert_eq!((s.requests_answered(), s.tx_status()), (5, TxStatus::Idle));
}

#[test]
fn rows_of_a_pipelined_execute_are_counted_past_the_next_execute() {
    // The client sends its second batch while the first one's rows are still arriving.
    let mut s = running();
    let batch = [msg(b'B', b"\0\0\0\0\0\0\0\0"), msg(b'E', b"\0\0\0\0\0"), msg(b'S', b"")];
    s.feed_frontend(&msg(b'P', b"\0SELECT g FROM generate_series(1, 2) g\0\0\0")).unwrap();
    batch.iter().for_each(|m| drop(s.feed_frontend(m).unwrap()));
    let row = msg(b'D', b"\0\x01\0\0\0\x011");
    for m in [msg(b'1', b""), msg(b'2', b""), row.clone()] {
        s.feed_backend(&m).unwrap();
    }
    batch.iter().for_each(|m| drop(s.feed_frontend(m).unwrap()));
    s.feed_backend(&row).unwrap();
    assert_eq!(short(s.feed_backend(&msg(b'C', b"SELECT 2\0")).unwrap()), "finished SELECT 2 rows=2 ext=true");
    s.feed_backend(&msg(b'Z', b"I")).unwrap();
    for m in [msg(b'2', b""), row.clone()] {
        s.feed_backend(&m).unwrap();
    }
    assert_eq!(short(s.feed_backend(&msg(b'C', b"SELECT 1\0")).unwrap()), "finished SELECT 1 rows=1 ext=true");
}

#[test]
fn portals_end_with_their_transaction() {
    let mut s = running();
    s.feed_frontend(&msg(b'P', b"s\0SELECT 1\0\0\0")).unwrap();
    let execute = |s: &mut Session, portal: &[u8]| {
        let mut body = portal.to_vec();
        body.extend_from_slice(b"\0\0\0\0\0");
        short(s.feed_frontend(&msg(b'E', &body)).unwrap())
    };
    // Bound in a transaction block: still there after its ReadyForQuery ('T').
    s.feed_frontend(&msg(b'B', b"c1\0s\0\0\0\0\0\0\0")).unwrap();
    s.feed_frontend(&msg(b'S', b"")).unwrap();
    s.feed_backend(&msg(b'1', b"")).unwrap();
    s.feed_backend(&msg(b'2', b"")).unwrap();
    s.feed_backend(&msg(b'Z', b"T")).unwrap();
    assert_eq!(execute(&mut s, b"c1"), "execute \"c1\" Some(\"SELECT 1\")");
    // Pipelined: c2 is bound before the ReadyForQuery that ends c1's transaction arrives,
    // so it outlives it.
    s.feed_frontend(&msg(b'S', b"")).unwrap();
    s.feed_frontend(&msg(b'B', b"c2\0s\0\0\0\0\0\0\0")).unwrap();
    s.feed_backend(&msg(b'C', b"SELECT 1\0")).unwrap();
    s.feed_backend(&msg(b'Z', b"I")).unwrap();
    assert_eq!(execute(&mut s, b"c1"), "execute \"c1\" None");
    assert_eq!(execute(&mut s, b"c2"), "execute \"c2\" Some(\"SELECT 1\")");
}

#[test]
fn ready_for_query_ends_a_copy_in() {
    // A server that answers CopyInResponse and then ReadyForQuery (no COPY completes): the
    // client is not in copy-in any more, so its next Query is a Query.
    let mut s = running();
    s.feed_frontend(&msg(b'Q', b"COPY t FROM STDIN\0")).unwrap();
    s.feed_backend(&msg(b'G', b"\0\0\0")).unwrap();
    s.feed_backend(&msg(b'Z', b"I")).unwrap();
    assert_eq!(s.copy(), None);
    assert_eq!(
        short(s.feed_frontend(&msg(b'Q', b"SELECT 1\0")).unwrap()),
        "QueryStarted { sql: [83, 69, 76, 69, 67, 84, 32, 49] }"
    );
}

/// Writes the seeds of the PostgreSQL fuzz targets (fuzz/fuzz_targets/postgres_*.rs) from
/// the captures. Run after recapturing:
/// `cargo test -p sluice-codecs write_postgres_fuzz_seeds -- --ignored`.
///
/// - `postgres_session`: each capture's messages in the order the replay fed them, as that
///   target's records (header byte: top bit = from the server, low 7 bits = length);
/// - `postgres_frontend`: the client side whole from a fresh session, and what follows the
///   opening it matches (after the login: running; after the StartupMessage: SASL or MD5
///   asked; after the COPY Query: copy-in);
/// - `postgres_backend`: the server side until the first ReadyForQuery (opening 0), the
///   SSLRequest's answer and what follows (1), the answers to psql's Queries (2) and to
///   pgbench's batches (3, 4), the rest of a COPY (5, 6) and, written here by hand, the
///   answers to the mixed pipeline (7).
///
/// The first byte of a one-direction seed is the mode: the opening's number in bits 1..=3
/// (see `frontend_opening` and `backend_opening` in fuzz/src/postgres.rs), default limits.
#[test]
#[ignore]
fn write_postgres_fuzz_seeds() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds");
    for target in ["postgres_session", "postgres_frontend", "postgres_backend"] {
        std::fs::create_dir_all(format!("{root}/{target}")).unwrap();
    }
    let write = |target: &str, name: &str, opening: Option<u8>, messages: &[&Bytes]| {
        let dir = format!("{root}/{target}");
        let mut seed = vec![opening.map_or(0, |o| o << 1)];
        messages.iter().for_each(|m| seed.extend_from_slice(m));
        std::fs::write(format!("{dir}/{name}"), seed).unwrap();
    };
    for name in fixture_names() {
        let r = replay(&name);
        let mut records = vec![0u8];
        for (from_client, msg) in &r.messages {
            for chunk in msg.chunks(0x7F) {
                records.push(if *from_client { 0 } else { 0x80 } | chunk.len() as u8);
                records.extend_from_slice(chunk);
            }
        }
        std::fs::write(format!("{root}/postgres_session/{name}"), records).unwrap();

        // Where the session stands after each message.
        let mut session = Session::new(PgLimits::default());
        let mut steps = vec![];
        for (from_client, msg) in &r.messages {
            let event = if *from_client { session.feed_frontend(msg) } else { session.feed_backend(msg) };
            let copy = match event.unwrap() {
                Some(Event::CopyStarted { direction, .. }) => Some(direction),
                _ => None,
            };
            steps.push((*from_client, msg, session.state(), copy));
        }
        let side = |client: bool, from: usize, until: usize| -> Vec<&Bytes> {
            steps[from..until].iter().filter(|s| s.0 == client).map(|s| s.1).collect()
        };
        let all = steps.len();
        let running = steps.iter().position(|s| s.2 == State::Running).map(|i| i + 1);
        let client = side(true, 0, all);
        write("postgres_frontend", &name, None, &client);
        if name == "ssl_refused" {
            write("postgres_backend", &name, Some(1), &side(false, 0, all));
        } else {
            write("postgres_backend", &format!("{name}.start"), Some(0), &side(false, 0, running.unwrap_or(all)));
        }
        let Some(running) = running else { continue };
        write("postgres_frontend", &format!("{name}.running"), Some(3), &side(true, running, all));
        let auth = match &name[..] {
            "scram_login" | "psql_simple" => Some(1),
            "md5_login" => Some(2),
            _ => None,
        };
        if let Some(opening) = auth {
            write("postgres_frontend", &format!("{name}.auth"), Some(opening), &side(true, 1, all));
        }
        let extended = steps[running..].iter().any(|s| s.0 && s.1[0] == b'P');
        let opening = match &name[..] {
            "pgbench_extended" => 3,
            "pgbench_prepared" => 4,
            _ if !extended => 2,
            _ => continue,
        };
        write("postgres_backend", &name, Some(opening), &side(false, running, all));
        // COPY: the client's side after the COPY Query, the server's after its CopyIn/OutResponse.
        if let Some(start) = steps.iter().position(|s| s.3.is_some()) {
            let end = steps[start..].iter().position(|s| !s.0 && s.1[0] == b'Z').map_or(all, |i| start + i + 1);
            let in_copy = steps[start].3 != Some(CopyDirection::Out);
            write(
                "postgres_backend",
                &format!("{name}.copy"),
                Some(if in_copy { 5 } else { 6 }),
                &side(false, start + 1, end),
            );
            if in_copy {
                write("postgres_frontend", &format!("{name}.copy"), Some(4), &side(true, start + 1, all));
            }
        }
    }
    // The server's answers to backend opening 7 (Parse/Describe S/Bind/Execute 1 row/
    // Execute/Close P/Close S/Sync, FunctionCall, empty Query).
    let answers: Vec<Bytes> = [
        msg(b'1', b""),
        msg(b't', b"\0\x01\0\0\0\x17"),
        msg(b'T', b"\0\x01int4\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\x01"),
        msg(b'2', b""),
        msg(b'D', b"\0\x01\0\0\0\x04\0\0\0\x07"),
        msg(b's', b""),
        msg(b'D', b"\0\x01\xff\xff\xff\xff"),
        msg(b'C', b"SELECT 1\0"),
        msg(b'3', b""),
        msg(b'3', b""),
        msg(b'Z', b"I"),
        msg(b'V', b"\0\0\0\x01x"),
        msg(b'Z', b"I"),
        msg(b'I', b""),
        msg(b'Z', b"I"),
    ]
    .into_iter()
    .map(Bytes::from)
    .collect();
    write("postgres_backend", "mixed_pipeline", Some(7), &answers.iter().collect::<Vec<_>>());
}

#[test]
fn the_ssl_request_sluice_sends_is_the_one_it_reads() {
    let request = ssl_request();
    assert_eq!(StartupPacket::parse(&request, &PgLimits::default()), Ok(StartupPacket::SslRequest));
}

#[test]
fn channel_binding_is_taken_out_of_a_sasl_offer() {
    fn sasl(mechanisms: &[&str]) -> Vec<u8> {
        let mut body = 10u32.to_be_bytes().to_vec();
        for m in mechanisms {
            body.extend_from_slice(m.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut message = vec![b'R'];
        message.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        message.extend_from_slice(&body);
        message
    }
    let offer = sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
    let plain = sasl_without_channel_binding(&offer).expect("rewritten");
    assert_eq!(&plain[..], &sasl(&["SCRAM-SHA-256"])[..]);
    // The codec reads the result as the offer it is.
    let Ok(Backend::Authentication(auth)) = Backend::parse(b'R', &plain[5..]) else { panic!("unreadable") };
    assert_eq!(auth.mechanisms().collect::<Vec<_>>(), [&b"SCRAM-SHA-256"[..]]);
    // The offer a real server makes over TLS (captured inside the TLS session).
    let server = fixture("scram_over_tls.server");
    let offer = server.get(..1 + 4).map(|h| 1 + u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize).unwrap();
    assert_eq!(server[0], b'R');
    let Ok(Backend::Authentication(captured)) = Backend::parse(b'R', &server[5..offer]) else { panic!("no offer") };
    assert_eq!(captured.mechanisms().collect::<Vec<_>>(), [&b"SCRAM-SHA-256-PLUS"[..], &b"SCRAM-SHA-256"[..]]);
    let rewritten = sasl_without_channel_binding(&server[..offer]).expect("rewritten");
    assert_eq!(&rewritten[..], &sasl(&["SCRAM-SHA-256"])[..]);
    // Nothing to take out, or not an offer: left alone.
    assert!(sasl_without_channel_binding(&sasl(&["SCRAM-SHA-256"])).is_none());
    assert!(sasl_without_channel_binding(b"R\0\0\0\x08\0\0\0\0").is_none());
    assert!(sasl_without_channel_binding(b"R\0").is_none());
}
