//! Synthetic sessions: flows no capture here could produce (MySQL 8's caching_sha2_password,
//! CLIENT_DEPRECATE_EOF cursors, query attributes, pipelining, 16 MiB chains) and hostile
//! input — lying lengths, truncated packets, sequence-id games, huge greetings, empty
//! packets mid-result-set, chains over the limit. Each must be a typed error, never a
//! panic or an allocation sized by a length field.

use bytes::BytesMut;
use proptest::prelude::*;

use super::tests::{own, pkt, Ev, Out};
use super::*;
use crate::framing::Decode;

const BASE: u64 = Capabilities::CLIENT_PROTOCOL_41.0
    | Capabilities::CLIENT_SECURE_CONNECTION.0
    | Capabilities::CLIENT_PLUGIN_AUTH.0
    | Capabilities::CLIENT_TRANSACTIONS.0
    | Capabilities::CLIENT_MULTI_RESULTS.0
    | Capabilities::CLIENT_MYSQL.0;

fn greeting(caps: u64) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"8.0.36\0");
    p.extend_from_slice(&42u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(0xFF);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&((caps >> 32) as u32).to_le_bytes());
    p.extend_from_slice(b"ijklmnopqrst\0caching_sha2_password\0");
    p
}

fn login(caps: u64, user: &[u8]) -> Vec<u8> {
    let mut p = (caps as u32).to_le_bytes().to_vec();
    p.extend_from_slice(&(16u32 << 20).to_le_bytes());
    p.push(0xFF);
    p.extend_from_slice(&[0; 19]);
    p.extend_from_slice(&((caps >> 32) as u32).to_le_bytes());
    p.extend_from_slice(user);
    p.push(0);
    p.push(20);
    p.extend_from_slice(&[7; 20]);
    p.extend_from_slice(b"caching_sha2_password\0");
    p
}

fn ok_payload(status: u16) -> Vec<u8> {
    let mut p = vec![0, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p
}

fn eof_payload(status: u16) -> Vec<u8> {
    let mut p = vec![0xFE, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p
}

fn evs(session: &mut Session, dir: Direction, packet: &[u8]) -> Vec<Ev> {
    session.feed(dir, packet).unwrap_or_else(|e| panic!("{dir}: {e}")).iter().map(own).collect()
}

fn client(session: &mut Session, seq: u8, payload: &[u8]) -> Vec<Ev> {
    evs(session, Direction::Client, &pkt(seq, payload))
}

fn server(session: &mut Session, seq: u8, payload: &[u8]) -> Vec<Ev> {
    evs(session, Direction::Server, &pkt(seq, payload))
}

/// A session logged in with `caps` on both sides.
fn idle(caps: u64) -> Session {
    idle_with(caps, MysqlLimits::default())
}

fn idle_with(caps: u64, limits: MysqlLimits) -> Session {
    let mut s = Session::new(limits);
    server(&mut s, 0, &greeting(caps));
    client(&mut s, 1, &login(caps, b"app"));
    assert_eq!(server(&mut s, 2, &ok_payload(2)), [Ev::AuthOk]);
    assert_eq!(s.state(), State::Idle);
    s
}

fn finished_with(events: &[Ev]) -> Option<&Out> {
    events.iter().find_map(|e| if let Ev::Finished { out, .. } = e { Some(out) } else { None })
}

#[test]
fn lying_lengths_are_refused_before_buffering() {
    let limits = MysqlLimits { max_packet: 1024, ..MysqlLimits::default() };
    let lie = [0xFE, 0xFF, 0xFF, 0];
    assert_eq!(peek(&lie, &limits), Err(MysqlError::PacketTooLarge { len: 0xFFFFFE, limit: 1024 }));
    let mut buf = BytesMut::from(&lie[..]);
    assert_eq!(
        PacketFramer::new(limits).decode(&mut buf),
        Err(MysqlError::PacketTooLarge { len: 0xFFFFFE, limit: 1024 })
    );
    // A slice that is not exactly the packet its header describes.
    let mut s = Session::new(limits);
    assert_eq!(s.server(&[5, 0, 0, 0, 10]), Err(MysqlError::NotOnePacket { expected: 9, actual: 5 }));
    let mut s = Session::new(limits);
    assert_eq!(s.server(&[1, 0, 0, 0, 10, 10]), Err(MysqlError::NotOnePacket { expected: 5, actual: 6 }));
    assert_eq!(Session::new(limits).server(&[1, 0]), Err(MysqlError::NotOnePacket { expected: 4, actual: 2 }));
}

#[test]
fn truncated_fields_are_typed_and_final() {
    let mut s = idle(BASE);
    assert_eq!(s.client(&pkt(0, b"\x17\x01\x00")), Err(MysqlError::Truncated { what: "statement id" }));
    assert_eq!(s.state(), State::Failed);
    assert_eq!(s.client(&pkt(0, b"\x0e")), Err(MysqlError::Failed));

    let mut s = idle(BASE);
    client(&mut s, 0, b"\x03DELETE FROM t");
    assert_eq!(s.server(&pkt(1, b"\x00\x05")), Err(MysqlError::Truncated { what: "last insert id" }));
    let mut s = idle(BASE);
    client(&mut s, 0, b"\x03SELECT 1");
    assert_eq!(s.server(&pkt(1, b"\xff\x01")), Err(MysqlError::Truncated { what: "error code" }));
}

#[test]
fn sequence_id_games() {
    let mut s = Session::new(MysqlLimits::default());
    let bad = MysqlError::SequenceMismatch { direction: Direction::Server, expected: 0, got: 1 };
    assert_eq!(s.server(&pkt(1, &greeting(BASE))), Err(bad));

    let mut s = Session::new(MysqlLimits::default());
    server(&mut s, 0, &greeting(BASE));
    let bad = MysqlError::SequenceMismatch { direction: Direction::Client, expected: 1, got: 2 };
    assert_eq!(s.client(&pkt(2, &login(BASE, b"app"))), Err(bad));

    let mut s = idle(BASE);
    let bad = MysqlError::SequenceMismatch { direction: Direction::Client, expected: 0, got: 3 };
    assert_eq!(s.client(&pkt(3, b"\x0e")), Err(bad));

    let mut s = idle(BASE);
    client(&mut s, 0, b"\x03SELECT 1");
    server(&mut s, 1, b"\x01");
    server(&mut s, 2, b"\x03def");
    let bad = MysqlError::SequenceMismatch { direction: Direction::Server, expected: 3, got: 2 };
    assert_eq!(s.server(&pkt(2, b"\x03def")), Err(bad), "a replayed sequence id");

    // Long result sets wrap the id at 256, as real servers do.
    let mut s = idle(BASE | Capabilities::CLIENT_DEPRECATE_EOF.0);
    client(&mut s, 0, b"\x03SELECT n FROM big");
    server(&mut s, 1, b"\x01");
    server(&mut s, 2, b"\x03def\0\0\0\x01n\0\x0c?\0\x01\0\0\0\x03\0\0\0\0\0");
    let mut seq = 2u8;
    for _ in 0..300 {
        seq = seq.wrapping_add(1);
        server(&mut s, seq, b"\x011");
    }
    let mut done = eof_payload(2);
    done.extend_from_slice(&[0, 0]);
    let events = server(&mut s, seq.wrapping_add(1), &done);
    assert!(matches!(events[..], [Ev::Finished { rows: 300, sets: 1, .. }]), "{events:?}");
}

#[test]
fn hostile_greetings() {
    let mut g = greeting(BASE);
    g[12 + 7 + 1 + 2 + 1 + 2 + 2 + 1] = 255; // auth data length: far more than present
    assert_eq!(
        Session::new(MysqlLimits::default()).server(&pkt(0, &g)),
        Err(MysqlError::Truncated { what: "auth plugin data part 2" })
    );
    let mut no_nul = vec![10];
    no_nul.extend(std::iter::repeat_n(b'v', 60_000));
    assert_eq!(
        Session::new(MysqlLimits::default()).server(&pkt(0, &no_nul)),
        Err(MysqlError::Truncated { what: "server version" })
    );
    let small = MysqlLimits { max_handshake: 1000, ..MysqlLimits::default() };
    assert_eq!(
        Session::new(small).server(&pkt(0, &no_nul)),
        Err(MysqlError::HandshakeTooLarge { len: 60_001, limit: 1000 })
    );
    assert_eq!(Session::new(small).server(&pkt(0, b"\x09old")), Err(MysqlError::UnsupportedProtocol(9)));
    assert_eq!(Session::new(small).server(&pkt(0, b"")), Err(MysqlError::Truncated { what: "protocol version" }));
    assert_eq!(
        Session::new(small).client(&pkt(0, b"\x03hi")),
        Err(MysqlError::UnexpectedPacket {
            direction: Direction::Client,
            state: "awaiting the server's greeting",
            first: 3
        })
    );
}

#[test]
fn empty_packets_where_content_is_required() {
    let mut s = idle(BASE);
    let empty = |state| MysqlError::EmptyPacket { direction: Direction::Server, state };
    client(&mut s, 0, b"\x03SELECT a, b FROM t");
    server(&mut s, 1, b"\x02");
    assert_eq!(s.server(&pkt(2, b"")), Err(empty("reading column definitions")));

    let mut s = idle(BASE | Capabilities::CLIENT_DEPRECATE_EOF.0);
    client(&mut s, 0, b"\x03SELECT a FROM t");
    server(&mut s, 1, b"\x01");
    server(&mut s, 2, b"\x03def");
    server(&mut s, 3, b"\x01a");
    assert_eq!(s.server(&pkt(4, b"")), Err(empty("reading rows")));

    let mut s = idle(BASE);
    assert_eq!(s.client(&pkt(0, b"")), Err(MysqlError::EmptyPacket { direction: Direction::Client, state: "idle" }));
}

#[test]
fn continuation_chains() {
    // A COM_QUERY of 0xFFFFFF + 5 bytes: two packets, the response follows the last one.
    let mut s = idle(BASE);
    let mut first = vec![0x03];
    first.resize(MAX_PACKET_PAYLOAD, b'x');
    let events = client(&mut s, 0, &first);
    assert!(matches!(events[..], [Ev::Started { kind: CommandKind::Query, complete: false, .. }]));
    assert_eq!(s.waiting_for(), Some(Direction::Client), "the chain is not over");
    let bad = MysqlError::SequenceMismatch { direction: Direction::Client, expected: 1, got: 2 };
    assert_eq!(s.clone().client(&pkt(2, b"tail!")), Err(bad));
    assert!(client(&mut s, 1, b"tail!").is_empty());
    assert_eq!(
        finished_with(&server(&mut s, 2, &ok_payload(2))),
        Some(&Out::Ok { affected: 0, insert_id: 0, status: StatusFlags(2) })
    );

    // A 16 MiB row in a result set is one row however many parts it has.
    let mut s = idle(BASE | Capabilities::CLIENT_DEPRECATE_EOF.0);
    client(&mut s, 0, b"\x03SELECT blob FROM t");
    server(&mut s, 1, b"\x01");
    server(&mut s, 2, b"\x03def");
    let mut big_row = vec![0xFE];
    big_row.resize(MAX_PACKET_PAYLOAD, 0);
    server(&mut s, 3, &big_row);
    server(&mut s, 4, &big_row);
    server(&mut s, 5, b"");
    server(&mut s, 6, b"\x01a");
    let mut done = eof_payload(2);
    done.extend_from_slice(&[0, 0]);
    assert!(matches!(server(&mut s, 7, &done)[..], [Ev::Finished { rows: 2, .. }]));

    // Over the logical limit, the framer refuses the chain at the header that passes it.
    let limits = MysqlLimits { max_payload: MAX_PACKET_PAYLOAD + 100, ..MysqlLimits::default() };
    let mut framer = PacketFramer::new(limits);
    let mut buf = BytesMut::from(&pkt(0, &first)[..]);
    buf.extend_from_slice(&[0xFF, 0, 0, 1]);
    framer.decode(&mut buf).unwrap().unwrap();
    assert_eq!(
        framer.decode(&mut buf),
        Err(MysqlError::PayloadTooLarge { len: MAX_PACKET_PAYLOAD + 255, limit: MAX_PACKET_PAYLOAD + 100 })
    );
}

#[test]
fn limits_on_columns_and_pipelining() {
    let limits = MysqlLimits { max_columns: 10, max_pipelined: 2, ..MysqlLimits::default() };
    let mut s = idle_with(BASE, limits);
    client(&mut s, 0, b"\x03SELECT *");
    assert_eq!(s.server(&pkt(1, b"\xfc\x00\x10")), Err(MysqlError::TooManyColumns { count: 4096, limit: 10 }));

    let mut s = idle_with(BASE, limits);
    client(&mut s, 0, b"\x0e");
    client(&mut s, 0, b"\x0e");
    client(&mut s, 0, b"\x0e");
    assert_eq!(s.commands_in_flight(), 3);
    assert_eq!(s.client(&pkt(0, b"\x0e")), Err(MysqlError::TooManyPipelined { limit: 2 }));
}

#[test]
fn proxy_err_packets_round_trip_through_the_session() {
    // Refusing a command.
    let mut s = idle(BASE);
    client(&mut s, 0, b"\x03DROP TABLE t");
    let mut out = BytesMut::new();
    encode_err(&mut out, 1, 1142, Some(b"42000"), b"DROP denied by sluice");
    let events = s.server(&out).unwrap();
    let [Event::CommandFinished { outcome: Outcome::Err(e), .. }] = events.iter().copied().collect::<Vec<_>>()[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((e.code, e.sqlstate_str(), e.message), (1142, Some("42000"), &b"DROP denied by sluice"[..]));
    assert_eq!(s.state(), State::Idle);

    // Refusing a login, and refusing a connection before any greeting.
    let mut s = Session::new(MysqlLimits::default());
    server(&mut s, 0, &greeting(BASE));
    client(&mut s, 1, &login(BASE, b"app"));
    let mut out = BytesMut::new();
    encode_err(&mut out, 2, 1045, Some(b"28000"), b"Access denied");
    assert_eq!(evs(&mut s, Direction::Server, &out), [Ev::AuthErr(1045, Some("28000".into()))]);
    let mut out = BytesMut::new();
    encode_err(&mut out, 0, 1040, None, b"Too many connections");
    let mut s = Session::new(MysqlLimits::default());
    assert_eq!(evs(&mut s, Direction::Server, &out), [Ev::AuthErr(1040, None)]);
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn caching_sha2_fast_and_full_auth() {
    let mut s = Session::new(MysqlLimits::default());
    server(&mut s, 0, &greeting(BASE));
    client(&mut s, 1, &login(BASE, b"app"));
    assert!(server(&mut s, 2, b"\x01\x03").is_empty());
    assert_eq!(s.waiting_for(), Some(Direction::Server), "fast auth: the OK follows");
    assert_eq!(server(&mut s, 3, &ok_payload(2)), [Ev::AuthOk]);

    let mut s = Session::new(MysqlLimits::default());
    server(&mut s, 0, &greeting(BASE));
    client(&mut s, 1, &login(BASE, b"app"));
    server(&mut s, 2, b"\x01\x04");
    assert_eq!(s.waiting_for(), Some(Direction::Client), "full auth: the client sends the password");
    client(&mut s, 3, b"\x02");
    server(&mut s, 4, b"\x01-----BEGIN PUBLIC KEY-----");
    client(&mut s, 5, &[9; 256]);
    assert_eq!(server(&mut s, 6, &ok_payload(2)), [Ev::AuthOk]);

    // Multi-factor authentication: AuthNextFactor (0x02) names the next plugin.
    let mfa = BASE | Capabilities::MULTI_FACTOR_AUTHENTICATION.0;
    let mut s = Session::new(MysqlLimits::default());
    server(&mut s, 0, &greeting(mfa));
    client(&mut s, 1, &login(mfa, b"app"));
    let events = server(&mut s, 2, b"\x02authentication_fido_client\0");
    assert_eq!(events, [Ev::AuthSwitch("authentication_fido_client".into())]);
    client(&mut s, 3, b"assertion");
    assert_eq!(server(&mut s, 4, &ok_payload(2)), [Ev::AuthOk]);
    // Without it, 0x02 means nothing during authentication.
    let mut s = Session::new(MysqlLimits::default());
    server(&mut s, 0, &greeting(BASE));
    client(&mut s, 1, &login(BASE, b"app"));
    assert!(matches!(s.server(&pkt(2, b"\x02x\0")), Err(MysqlError::UnexpectedPacket { first: 2, .. })));
}

#[test]
fn tls_request_then_a_terminated_tls_login() {
    let caps = BASE | Capabilities::CLIENT_SSL.0;
    let mut s = Session::new(MysqlLimits::default());
    server(&mut s, 0, &greeting(caps));
    assert_eq!(client(&mut s, 1, &login(caps, b"")[..32]), [Ev::Tls]);
    assert_eq!(s.client(&pkt(2, b"\x16\x03\x01")), Err(MysqlError::Opaque(Opaque::Tls)));
    assert!(s.resume_after_tls());
    let events = client(&mut s, 2, &login(caps, b"app"));
    assert!(matches!(&events[..], [Ev::Login { tls: true, user, .. }] if user == "app"));
    assert_eq!(server(&mut s, 3, &ok_payload(2)), [Ev::AuthOk]);
}

#[test]
fn query_attributes_shift_the_sql() {
    let mut s = idle(BASE | Capabilities::CLIENT_QUERY_ATTRIBUTES.0);
    let events = client(&mut s, 0, b"\x03\x01\x01\x00\x01\xfe\x00\x03tag\x02v1SELECT 1");
    assert!(matches!(&events[..], [Ev::Started { text: Some(sql), .. }] if sql == "SELECT 1"), "{events:?}");
}

#[test]
fn deprecate_eof_cursor_ends_at_the_ok_after_the_columns() {
    let mut s = idle(BASE | Capabilities::CLIENT_DEPRECATE_EOF.0);
    client(&mut s, 0, b"\x17\x01\x00\x00\x00\x01\x01\x00\x00\x00");
    server(&mut s, 1, b"\x01");
    server(&mut s, 2, b"\x03def");
    let mut cursor_ok = eof_payload(0x42);
    cursor_ok.extend_from_slice(&[0, 0]);
    let events = server(&mut s, 3, &cursor_ok);
    assert!(matches!(&events[..], [Ev::Finished { kind: CommandKind::StmtExecute, rows: 0, sets: 1, .. }]));
    client(&mut s, 0, b"\x1c\x01\x00\x00\x00\x0a\x00\x00\x00");
    server(&mut s, 1, b"\x00\x00\x01");
    let mut last = eof_payload(0x82);
    last.extend_from_slice(&[0, 0]);
    assert!(matches!(&server(&mut s, 2, &last)[..], [Ev::Finished { kind: CommandKind::StmtFetch, rows: 1, .. }]));
}

#[test]
fn mysql8_optional_metadata_none() {
    let mut s = idle(BASE | Capabilities::CLIENT_OPTIONAL_RESULTSET_METADATA.0);
    client(&mut s, 0, b"\x03SELECT 1");
    server(&mut s, 1, b"\x01\x00"); // one column, no metadata
    server(&mut s, 2, &eof_payload(2));
    server(&mut s, 3, b"\x011");
    assert!(matches!(&server(&mut s, 4, &eof_payload(2))[..], [Ev::Finished { rows: 1, sets: 1, .. }]));
}

#[test]
fn unknown_commands_resync_on_the_next_command() {
    let mut s = idle(BASE);
    client(&mut s, 0, b"\x12\x04\x00\x00\x00\x00\x00\x01\x00\x00\x00"); // COM_BINLOG_DUMP
    let events = server(&mut s, 1, b"\x00\x01\x02\x03\x04");
    assert!(matches!(events[..], [Ev::Finished { kind: CommandKind::Other(0x12), .. }]), "{events:?}");
    assert_eq!(s.state(), State::Resync);
    for seq in 2..40 {
        assert!(server(&mut s, seq, b"\x00binlog event").is_empty(), "ignored while resyncing");
    }
    client(&mut s, 0, b"\x0e");
    assert!(matches!(&server(&mut s, 1, &ok_payload(2))[..], [Ev::Finished { kind: CommandKind::Ping, .. }]));

    let mut s = idle(BASE);
    client(&mut s, 0, b"\x20");
    let events = server(&mut s, 1, b"\x42junk");
    assert!(matches!(events[..], [Ev::Finished { out: Out::Unrecognized(0x42), .. }]));
}

#[test]
fn unsolicited_errors_close_the_session() {
    let mut s = idle(BASE);
    let events = server(&mut s, 0, b"\xff\xa3\x0f#HY000Disconnected by the server because of inactivity");
    assert_eq!(events, [Ev::Unsolicited(4003)]);
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.client(&pkt(0, b"\x0e")), Err(MysqlError::Closed));
}

#[test]
fn pipelined_prepare_and_execute_are_answered_in_order() {
    let mut s = idle(BASE | Capabilities::CLIENT_DEPRECATE_EOF.0);
    client(&mut s, 0, b"\x16SELECT ?");
    client(&mut s, 0, b"\x17\xff\xff\xff\xff\x00\x01\x00\x00\x00");
    client(&mut s, 0, b"\x19\x09\x00\x00\x00"); // COM_STMT_CLOSE: no response, done at once
    assert_eq!(s.state(), State::AwaitingResponse(CommandKind::StmtPrepare));
    let events = server(&mut s, 1, b"\x00\x07\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00");
    assert_eq!(events[0], Ev::PrepareOk { id: 7, params: 1, columns: 1 });
    server(&mut s, 2, b"\x03def");
    assert!(matches!(server(&mut s, 3, b"\x03def")[..], [Ev::Finished { kind: CommandKind::StmtPrepare, .. }]));
    assert_eq!(s.state(), State::AwaitingResponse(CommandKind::StmtExecute));
    server(&mut s, 1, b"\x01");
    server(&mut s, 2, b"\x03def");
    server(&mut s, 3, b"\x00\x00\x01");
    let mut done = eof_payload(2);
    done.extend_from_slice(&[0, 0]);
    assert!(matches!(server(&mut s, 4, &done)[..], [Ev::Finished { kind: CommandKind::StmtExecute, rows: 1, .. }]));
    assert_eq!(s.state(), State::Idle);
}

/// Rough cost of the hot path (run with `--release -- --ignored --nocapture`).
#[test]
#[ignore]
fn row_throughput() {
    let mut s = idle(BASE | Capabilities::CLIENT_DEPRECATE_EOF.0);
    let rows: Vec<Vec<u8>> = (0..=255u8).map(|seq| pkt(seq, b"\x0512345\x05abcde")).collect();
    let start = std::time::Instant::now();
    let n = 20_000_000u64;
    client(&mut s, 0, b"\x03SELECT");
    server(&mut s, 1, b"\x01");
    server(&mut s, 2, b"\x03def");
    let mut seq = 2u8;
    for _ in 0..n {
        seq = seq.wrapping_add(1);
        let events = s.server(std::hint::black_box(&rows[usize::from(seq)])).unwrap();
        assert!(events.is_empty());
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{ns:.2} ns per row packet");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary packets in arbitrary directions after a real login: never a panic, and
    /// after the first error every call is an error.
    #[test]
    fn arbitrary_packets_never_panic(
        caps in prop::sample::select(vec![BASE, BASE | Capabilities::CLIENT_DEPRECATE_EOF.0,
            BASE | Capabilities::CLIENT_QUERY_ATTRIBUTES.0 | Capabilities::CLIENT_OPTIONAL_RESULTSET_METADATA.0]),
        packets in prop::collection::vec((any::<bool>(), any::<u8>(), prop::collection::vec(any::<u8>(), 0..40)), 0..40),
    ) {
        let mut s = idle(caps);
        let mut failed = false;
        for (to_server, seq, payload) in packets {
            let dir = if to_server { Direction::Client } else { Direction::Server };
            let is_err = s.feed(dir, &pkt(seq, &payload)).is_err();
            if failed {
                prop_assert!(is_err);
            }
            failed |= is_err;
        }
    }

    /// Arbitrary bytes framed and fed from the greeting on: never a panic.
    #[test]
    fn arbitrary_streams_never_panic(server_bytes in prop::collection::vec(any::<u8>(), 0..300),
                                     client_bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut s = Session::new(MysqlLimits::default());
        for (dir, bytes) in [(Direction::Server, server_bytes), (Direction::Client, client_bytes)] {
            let mut at = 0;
            while let Ok(Some(n)) = peek(&bytes[at..], &MysqlLimits::default()) {
                let _ = s.feed(dir, &bytes[at..at + n]);
                at += n;
            }
        }
    }
}
