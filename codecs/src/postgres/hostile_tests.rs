//! Hostile input: lying lengths, truncated messages, counts and fields running past the end
//! of their message, messages that have no meaning in the session's state, too many names
//! or pending messages, and statement games a client could play to make the session
//! attribute an Execute to the wrong SQL. Each must be a typed error (the exact variant is
//! asserted) after which the session answers `Failed` to everything, never a panic or an
//! allocation sized by a length field.

use bytes::BytesMut;
use proptest::prelude::*;

use super::tests::{fixture_names, msg, replay, running, running_with, short, startup};
use super::*;

fn truncated(what: &'static str) -> PgError {
    PgError::Truncated { what }
}

fn malformed(what: &'static str) -> PgError {
    PgError::Malformed { what }
}

fn unexpected(direction: Direction, state: &'static str, tag: u8) -> PgError {
    PgError::UnexpectedMessage { direction, state, tag }
}

/// Feeding `m` from `dir` fails with `expected`, and the session answers `Failed` from
/// then on, both ways.
fn assert_final(s: &mut Session, dir: Direction, m: &[u8], expected: PgError) {
    let result = match dir {
        Direction::Frontend => s.feed_frontend(m),
        Direction::Backend => s.feed_backend(m),
    };
    assert_eq!(result.map(|_| ()), Err(expected), "{dir} {m:?}");
    assert_eq!(s.state(), State::Failed);
    for _ in 0..2 {
        assert_eq!(s.feed_frontend(&msg(b'S', b"")), Err(PgError::Failed));
        assert_eq!(s.feed_frontend(&startup()), Err(PgError::Failed));
        assert_eq!(s.feed_backend(&msg(b'Z', b"I")), Err(PgError::Failed));
        assert_eq!(s.feed_backend(b"N"), Err(PgError::Failed));
    }
    assert_eq!(s.phase(Direction::Frontend), Phase::Typed);
    assert_eq!(s.state(), State::Failed);
}

fn err(code: &str) -> Vec<u8> {
    msg(b'E', format!("SERROR\0C{code}\0Mboom\0\0").as_bytes())
}

/// A session that sent the StartupMessage.
fn authenticating() -> Session {
    let mut s = Session::new(PgLimits::default());
    s.feed_frontend(&startup()).unwrap();
    s
}

#[test]
fn lying_lengths_are_refused_from_the_header_alone() {
    let l = PgLimits { max_message: 100, ..PgLimits::default() };
    for len in 0..4u8 {
        assert_eq!(peek(&[b'Q', 0, 0, 0, len], Phase::Typed, &l), Err(PgError::LengthTooSmall { len: len.into() }));
    }
    assert_eq!(peek(b"Q\xff\xff\xff\xff", Phase::Typed, &l), Err(PgError::LengthTooSmall { len: -1 }));
    assert_eq!(peek(b"Q\x80\0\0\0", Phase::Typed, &l), Err(PgError::LengthTooSmall { len: i32::MIN.into() }));
    assert_eq!(peek(b"Q\0\0\0\x64", Phase::Typed, &l), Err(PgError::MessageTooLarge { len: 101, limit: 100 }));
    assert_eq!(peek(b"Q\0\0\0\x63", Phase::Typed, &l), Ok(None), "the limit counts the tag");
    assert_eq!(peek(b"Q\0\0\0\x04", Phase::Typed, &l), Ok(Some(5)));
    // Default limits: 2 GiB announced by 5 bytes is refused at once, not waited for.
    let d = PgLimits::default();
    let huge = b"D\x7f\xff\xff\xff";
    assert_eq!(peek(huge, Phase::Typed, &d), Err(PgError::MessageTooLarge { len: 1 << 31, limit: 64 << 20 }));
    let mut buf = BytesMut::from(&huge[..]);
    assert_eq!(
        split_message(&mut buf, Phase::Typed, &d),
        Err(PgError::MessageTooLarge { len: 1 << 31, limit: 64 << 20 })
    );
    assert_eq!(&buf[..], huge, "the buffer is left as it was");

    // Startup packets: below 8 (length word and protocol code), negative, over the limit.
    for len in 0..8u8 {
        assert_eq!(peek(&[0, 0, 0, len], Phase::Startup, &d), Err(PgError::LengthTooSmall { len: len.into() }));
    }
    assert_eq!(peek(b"\xff\xff\xff\xf0", Phase::Startup, &d), Err(PgError::LengthTooSmall { len: -16 }));
    assert_eq!(peek(b"\0\0\x27\x11", Phase::Startup, &d), Err(PgError::StartupTooLarge { len: 10_001, limit: 10_000 }));
    assert_eq!(peek(b"\0\0\x27\x10", Phase::Startup, &d), Ok(None));
    assert_eq!(peek(b"\0\0\x27", Phase::Startup, &d), Ok(None));

    // A slice that is not exactly the message its header describes.
    let mut s = running();
    assert_final(&mut s, Direction::Frontend, b"Q\0\0\0\x05", PgError::NotOneMessage { expected: 6, actual: 5 });
    let mut s = running();
    assert_final(&mut s, Direction::Backend, b"Z\0\0", truncated("message header"));
    let mut s = Session::new(d);
    assert_final(
        &mut s,
        Direction::Frontend,
        &[0, 0, 0, 9, 0, 3, 0, 0],
        PgError::NotOneMessage { expected: 9, actual: 8 },
    );
    let mut s = Session::new(d);
    assert_final(
        &mut s,
        Direction::Frontend,
        &[0, 0, 0, 8, 0, 3, 0, 0, 0],
        PgError::NotOneMessage { expected: 8, actual: 9 },
    );
}

#[test]
fn startup_packets_past_their_limits() {
    let l = PgLimits { max_parameters: 2, max_startup: 64, ..PgLimits::default() };
    let pkt = |body: &[u8]| {
        let mut v = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    };
    let too_many = pkt(b"\0\x03\0\0user\0a\0b\0c\0d\0e\0\0");
    assert_eq!(StartupPacket::parse(&too_many, &l), Err(PgError::TooManyParameters { limit: 2 }));
    let mut s = Session::new(l);
    assert_final(&mut s, Direction::Frontend, &too_many, PgError::TooManyParameters { limit: 2 });
    let cases: [(&[u8], PgError); 7] = [
        (b"\0\x03\0\0user\0a", truncated("parameter value")),
        (b"\0\x03\0\0user", truncated("parameter name")),
        (b"\0\x03\0\0user\0a\0\0junk", malformed("bytes after the startup parameters")),
        (b"\0\x04\0\0\0", PgError::UnsupportedProtocol(0x0004_0000)),
        (b"\x04\xd2\x16\x2e\0\0\0\x01", malformed("cancel key")),
        (b"\x04\xd2\x16\x2f\0", malformed("encryption request")),
        (b"\0\x03", truncated("protocol code")),
    ];
    for (body, expected) in cases {
        assert_eq!(StartupPacket::parse(&pkt(body), &l), Err(expected), "{body:?}");
    }
    // Over max_startup: refused by framing, from the length word.
    let big = pkt(&[b'x'; 100]);
    assert_eq!(peek(&big[..4], Phase::Startup, &l), Err(PgError::StartupTooLarge { len: 104, limit: 64 }));
}

#[test]
fn every_prefix_of_every_captured_message_is_incomplete_and_refused() {
    let limits = PgLimits::default();
    for name in fixture_names() {
        let mut session = Session::new(limits);
        for (from_client, m) in &replay(&name).messages {
            let dir = if *from_client { Direction::Frontend } else { Direction::Backend };
            let phase = session.phase(dir);
            assert_eq!(peek(m, phase, &limits), Ok(Some(m.len())), "{name}: {m:?}");
            for k in 0..m.len() {
                let prefix = &m[..k];
                assert_eq!(peek(prefix, phase, &limits), Ok(None), "{name}: {k} bytes of {m:?}");
                // Fed as if whole anyway: a typed error, then Failed.
                let expected = match phase {
                    Phase::Typed if k < 5 => truncated("message header"),
                    Phase::Typed => PgError::NotOneMessage { expected: m.len(), actual: k },
                    Phase::Startup if k < 4 => truncated("startup length"),
                    Phase::Startup => PgError::NotOneMessage { expected: m.len(), actual: k },
                    Phase::EncryptionAnswer => malformed("encryption answer"),
                };
                assert_final(&mut session.clone(), dir, prefix, expected);
            }
            let r = if *from_client { session.feed_frontend(m) } else { session.feed_backend(m) };
            r.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn frontend_fields_running_past_the_end() {
    let cases: [(u8, &[u8], PgError); 17] = [
        (b'Q', b"SELECT 1", truncated("Query string")),
        (b'P', b"s\0SELECT 1", truncated("Parse query")),
        (b'P', b"s\0SELECT 1\0\0", truncated("Parse parameter count")),
        (b'P', b"s\0SELECT $1\0\0\x03\0\0\0\x17", truncated("Parse parameter types")),
        (b'B', b"p\0s", truncated("Bind statement")),
        (b'B', b"p\0s\0", truncated("Bind parameter format count")),
        (b'B', b"\0\0\0\x0a\0\0\0\x01", truncated("Bind parameter formats")),
        // Five parameters announced, one present.
        (b'B', b"\0\0\0\0\0\x05\0\0\0\x011\0\0", truncated("Bind parameter value")),
        // A value of 4096 bytes announced, 3 present.
        (b'B', b"\0\0\0\0\0\x01\0\0\x10\0abc", truncated("Bind parameter value")),
        (b'B', b"\0\0\0\0\0\x01\xff\xff\xff\xfe\0\0", malformed("Bind parameter value")),
        (b'B', b"\0\0\0\0\0\0", truncated("Bind result format count")),
        (b'B', b"\0\0\0\0\0\0\0\x02\0\0", truncated("Bind result formats")),
        (b'E', b"\0\0\0", truncated("Execute max rows")),
        (b'D', b"X\0", malformed("Describe/Close kind")),
        (b'C', b"S", truncated("Describe/Close name")),
        (b'F', b"\0\0\x05\x0b\0\0\0\x02\0\0\0\x01x\0\0", truncated("FunctionCall argument value")),
        (b'f', b"no terminator", truncated("CopyFail message")),
    ];
    for (tag, body, expected) in cases {
        assert_eq!(Frontend::parse(tag, body), Err(expected), "{} {body:?}", tag as char);
        let mut s = running();
        let m = msg(tag, body);
        assert_final(&mut s, Direction::Frontend, &m, expected);
    }
    // The same shapes, well formed (NULL values included), pass.
    let mut s = running();
    s.feed_frontend(&msg(b'P', b"s\0SELECT $1, $2\0\0\x02\0\0\0\x17\0\0\0\x19")).unwrap();
    s.feed_frontend(&msg(b'B', b"\0s\0\0\x01\0\x01\0\x02\0\0\0\x04\0\0\0\x07\xff\xff\xff\xff\0\x01\0\x01")).unwrap();
    s.feed_frontend(&msg(b'F', b"\0\0\x05\x0b\0\0\0\x01\xff\xff\xff\xff\0\0")).unwrap();

    assert_eq!(SaslInitialResponse::parse(b"SCRAM-SHA-256\0\0\0\x01\0n,,"), Err(truncated("SASL data")));
    assert_eq!(SaslInitialResponse::parse(b"SCRAM-SHA-256"), Err(truncated("SASL mechanism")));
    let mut s = authenticating();
    s.feed_backend(&msg(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0")).unwrap();
    let m = msg(b'p', b"SCRAM-SHA-256\0\0\0\x01\0n,,");
    assert_final(&mut s, Direction::Frontend, &m, truncated("SASL data"));
}

#[test]
fn backend_fields_running_past_the_end() {
    let field = b"a\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0";
    let two_fields_one_present = [&b"\0\x02"[..], field].concat();
    let cases: [(u8, &[u8], PgError); 17] = [
        (b'T', &two_fields_one_present[..], truncated("RowDescription field name")),
        (b'T', b"\0\x01a\0\0\0", truncated("RowDescription field")),
        (b'T', b"\0", truncated("RowDescription field count")),
        // Three columns announced, one present; a column of 100 bytes with 3; a length of -2.
        (b'D', b"\0\x03\0\0\0\x011", truncated("DataRow column value")),
        (b'D', b"\0\x01\0\0\0\x64abc", truncated("DataRow column value")),
        (b'D', b"\0\x01\xff\xff\xff\xfe", malformed("DataRow column value")),
        (b'E', b"SERROR\0C42601\0", truncated("error field type")),
        (b'E', b"SERROR\0Mboom", truncated("error field value")),
        (b'N', b"", truncated("error field type")),
        (b'S', b"TimeZone\0UTC", truncated("parameter value")),
        (b'K', b"\0\0\0\x01\0\0", malformed("BackendKeyData key")),
        (b'G', b"\0\0\x03\0\0", truncated("copy column formats")),
        (b't', b"\0\x02\0\0\0\x17", truncated("ParameterDescription parameter types")),
        (b'v', b"\0\0\0\x02\0\0\0\x02_pq_.a\0", truncated("unrecognized option name")),
        (b'V', b"\0\0\0\x05ab", truncated("FunctionCallResponse value")),
        (b'R', b"\0\0\0\x05ab", truncated("MD5 salt")),
        (b'C', b"SELECT 1", truncated("command tag")),
    ];
    for (tag, body, expected) in cases {
        assert_eq!(Backend::parse(tag, body), Err(expected), "{} {body:?}", tag as char);
    }
    // Through a session waiting for a Query's answers.
    for (tag, body, expected) in cases.iter().filter(|c| b"TDEC".contains(&c.0)) {
        let mut s = running();
        s.feed_frontend(&msg(b'Q', b"SELECT a FROM t\0")).unwrap();
        let m = msg(*tag, body);
        assert_final(&mut s, Direction::Backend, &m, *expected);
    }
    // Well formed: NULL and empty columns, a field list, parameter types, copy formats.
    assert_eq!(Backend::parse(b'D', b"\0\x02\xff\xff\xff\xff\0\0\0\0"), Ok(Backend::DataRow { columns: 2 }));
    let one = [&b"\0\x01"[..], field].concat();
    assert_eq!(Backend::parse(b'T', &one), Ok(Backend::RowDescription { fields: 1 }));
    assert_eq!(Backend::parse(b't', b"\0\x01\0\0\0\x17"), Ok(Backend::ParameterDescription { params: 1 }));
    assert_eq!(Backend::parse(b'H', b"\x01\0\x01\0\x01"), Ok(Backend::CopyOutResponse { format: 1, columns: 1 }));
}

#[test]
fn unknown_tags_and_codes_are_open_values() {
    assert_eq!(Frontend::parse(b'~', b"xy"), Ok(Frontend::Unknown { tag: b'~', body: b"xy" }));
    assert_eq!(Backend::parse(b'~', b""), Ok(Backend::Unknown { tag: b'~', body: b"" }));
    assert_eq!(Backend::parse(b'R', b"\0\0\0\x63z"), Ok(Backend::Authentication(Auth::Other { code: 99, data: b"z" })));
    assert_eq!(Backend::parse(b'Z', b"Q"), Err(malformed("transaction status")));
    let mut s = running();
    assert_eq!(s.feed_frontend(&msg(b'~', b"xy")), Ok(None));
    assert_eq!(s.feed_backend(&msg(b'~', b"")), Ok(None));
}

#[test]
fn messages_with_no_meaning_in_the_state() {
    use Direction::{Backend as B, Frontend as F};
    let data_row = msg(b'D', b"\0\x01\0\0\0\x011");
    let query = msg(b'Q', b"SELECT 1\0");

    // Server messages before the StartupMessage, and during authentication.
    let mut s = Session::new(PgLimits::default());
    assert_final(&mut s, Direction::Backend, &data_row, unexpected(B, "awaiting the startup packet", b'D'));
    for (m, tag) in
        [(&data_row, b'D'), (&msg(b'Z', b"I"), b'Z'), (&msg(b'K', b"\0\0\0\x01abcd"), b'K'), (&msg(b'1', b""), b'1')]
    {
        let mut s = authenticating();
        assert_final(&mut s, Direction::Backend, m, unexpected(B, "authenticating", tag));
    }
    // A credentials request after AuthenticationOk.
    let mut s = authenticating();
    s.feed_backend(&msg(b'R', b"\0\0\0\0")).unwrap();
    assert_final(&mut s, Direction::Backend, &msg(b'R', b"\0\0\0\x03"), unexpected(B, "authenticating", b'R'));

    // A Query (or any non-'p' message) while authenticating.
    let mut s = authenticating();
    assert_final(&mut s, Direction::Frontend, &query, unexpected(F, "authenticating", b'Q'));

    // SSLRequest sent, answer pending: a typed client message is refused by the session,
    // and framing reads its tag and length as an oversized startup packet; a typed server
    // message's first byte is not 'S' or 'N'.
    let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let mut s = Session::new(PgLimits::default());
    s.feed_frontend(&ssl).unwrap();
    assert_eq!(
        peek(&query, s.phase(F), &PgLimits::default()),
        Err(PgError::StartupTooLarge { len: 0x5100_0000, limit: 10_000 })
    );
    assert_final(&mut s, Direction::Frontend, &query, unexpected(F, "awaiting the encryption answer", b'Q'));
    let mut s = Session::new(PgLimits::default());
    s.feed_frontend(&ssl).unwrap();
    let auth_ok = msg(b'R', b"\0\0\0\0");
    assert_eq!(peek(&auth_ok, s.phase(B), &PgLimits::default()), Ok(Some(1)));
    assert_final(&mut s, Direction::Backend, &auth_ok[..1], malformed("encryption answer"));

    // Running with nothing pending: no server message but the asynchronous ones fits.
    for m in [
        data_row.clone(),
        msg(b'Z', b"I"),
        msg(b'1', b""),
        msg(b'2', b""),
        msg(b'3', b""),
        msg(b'n', b""),
        msg(b't', b"\0\0"),
        msg(b'T', b"\0\0"),
        msg(b'C', b"SELECT 1\0"),
        msg(b'I', b""),
        msg(b's', b""),
        msg(b'd', b"row\n"),
        msg(b'c', b""),
        msg(b'V', b"\xff\xff\xff\xff"),
        msg(b'G', b"\0\0\0"),
        msg(b'K', b"\0\0\0\x01abcd"),
        msg(b'R', b"\0\0\0\0"),
    ] {
        let mut s = running();
        assert_final(&mut s, Direction::Backend, &m, unexpected(B, "running", m[0]));
    }
    // Answers out of order: a ParseComplete while a Bind is first in line; rows for a
    // Describe; CopyData from the server during a copy-in.
    let mut s = running();
    s.feed_frontend(&msg(b'B', b"\0\0\0\0\0\0\0\0")).unwrap();
    assert_final(&mut s, Direction::Backend, &msg(b'1', b""), unexpected(B, "running", b'1'));
    let mut s = running();
    s.feed_frontend(&msg(b'D', b"S\0")).unwrap();
    assert_final(&mut s, Direction::Backend, &data_row, unexpected(B, "running", b'D'));
    let mut s = running();
    s.feed_frontend(&msg(b'Q', b"COPY t FROM STDIN\0")).unwrap();
    s.feed_backend(&msg(b'G', b"\0\0\0")).unwrap();
    assert_final(&mut s, Direction::Backend, &msg(b'd', b"1\n"), unexpected(B, "running", b'd'));

    // Client messages: a password after start-up, a Query in the middle of a copy-in.
    let mut s = running();
    assert_final(&mut s, Direction::Frontend, &msg(b'p', b"secret\0"), unexpected(F, "running", b'p'));
    let mut s = running();
    s.feed_frontend(&msg(b'Q', b"COPY t FROM STDIN\0")).unwrap();
    s.feed_backend(&msg(b'G', b"\0\0\0")).unwrap();
    assert_final(&mut s, Direction::Frontend, &query, unexpected(F, "running", b'Q'));
}

#[test]
fn closed_and_encrypted_sessions_answer_so_forever() {
    let mut s = running();
    assert_eq!(s.feed_frontend(&msg(b'X', b"")), Ok(Some(Event::Terminate)));
    for _ in 0..2 {
        assert_eq!(s.feed_backend(&msg(b'Z', b"I")), Err(PgError::Closed));
        assert_eq!(s.feed_frontend(&msg(b'Q', b"SELECT 1\0")), Err(PgError::Closed));
    }
    assert_eq!(s.state(), State::Closed);
    // A FATAL error while running closes it too.
    let mut s = running();
    let fatal = msg(b'E', b"SFATAL\0C57P01\0Mterminating connection\0\0");
    assert!(matches!(s.feed_backend(&fatal), Ok(Some(Event::Unsolicited(_)))));
    assert_eq!(s.feed_frontend(&msg(b'S', b"")), Err(PgError::Closed));

    let mut s = Session::new(PgLimits::default());
    s.feed_frontend(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]).unwrap();
    assert_eq!(s.feed_backend(b"S"), Ok(Some(Event::EncryptionAnswer { gss: true, accepted: true })));
    for _ in 0..2 {
        assert_eq!(s.feed_frontend(b"\x16\x03\x01\0\x05hello"), Err(PgError::Opaque));
        assert_eq!(s.feed_backend(b"\x16\x03\x03"), Err(PgError::Opaque));
    }
}

#[test]
fn too_many_names_and_pending_messages() {
    let limits = PgLimits { max_named: 2, max_pending: 64, ..PgLimits::default() };
    let too_many = |what| PgError::TooMany { what, limit: 2 };

    let mut s = running_with(limits);
    s.feed_frontend(&msg(b'P', b"a\0SELECT 1\0\0\0")).unwrap();
    s.feed_frontend(&msg(b'P', b"b\0SELECT 2\0\0\0")).unwrap();
    // The unnamed statement and a name already known do not count.
    s.feed_frontend(&msg(b'P', b"\0SELECT 3\0\0\0")).unwrap();
    s.feed_frontend(&msg(b'P', b"a\0SELECT 4\0\0\0")).unwrap();
    assert_final(&mut s, Direction::Frontend, &msg(b'P', b"c\0SELECT 5\0\0\0"), too_many("named statements"));

    // Closing one makes room.
    let mut s = running_with(limits);
    s.feed_frontend(&msg(b'P', b"a\0SELECT 1\0\0\0")).unwrap();
    s.feed_frontend(&msg(b'P', b"b\0SELECT 2\0\0\0")).unwrap();
    s.feed_frontend(&msg(b'C', b"Sa\0")).unwrap();
    s.feed_frontend(&msg(b'P', b"c\0SELECT 3\0\0\0")).unwrap();

    // Portals in one transaction count together...
    let mut s = running_with(limits);
    s.feed_frontend(&msg(b'B', b"p1\0\0\0\0\0\0\0\0")).unwrap();
    s.feed_frontend(&msg(b'B', b"p2\0\0\0\0\0\0\0\0")).unwrap();
    s.feed_frontend(&msg(b'B', b"\0\0\0\0\0\0\0\0")).unwrap();
    assert_final(&mut s, Direction::Frontend, &msg(b'B', b"p3\0\0\0\0\0\0\0\0"), too_many("named portals"));
    // ...and across Syncs while a transaction block stays open ('T')...
    let mut s = running_with(limits);
    for (i, name) in [&b"p1"[..], b"p2", b"p3"].into_iter().enumerate() {
        let bind = msg(b'B', &[name, b"\0\0\0\0\0\0\0\0"].concat());
        if i == 2 {
            assert_final(&mut s, Direction::Frontend, &bind, too_many("named portals"));
            break;
        }
        s.feed_frontend(&bind).unwrap();
        s.feed_frontend(&msg(b'S', b"")).unwrap();
        s.feed_backend(&msg(b'2', b"")).unwrap();
        s.feed_backend(&msg(b'Z', b"T")).unwrap();
    }
    // ...but a transaction that ended took its portals with it, as on the server.
    let mut s = running_with(limits);
    for i in 0..10u8 {
        s.feed_frontend(&msg(b'B', &[b'p', b'0' + i, 0, 0, 0, 0, 0, 0, 0, 0])).unwrap();
        s.feed_frontend(&msg(b'S', b"")).unwrap();
        s.feed_backend(&msg(b'2', b"")).unwrap();
        s.feed_backend(&msg(b'Z', b"I")).unwrap();
    }

    // Pending answers.
    let limits = PgLimits { max_pending: 3, ..PgLimits::default() };
    for extra in [msg(b'S', b""), msg(b'Q', b"SELECT 1\0"), msg(b'P', b"a\0SELECT 1\0\0\0"), msg(b'C', b"Sa\0")] {
        let mut s = running_with(limits);
        for _ in 0..3 {
            s.feed_frontend(&msg(b'H', b"")).unwrap(); // Flush waits for nothing
            s.feed_frontend(&msg(b'S', b"")).unwrap();
        }
        assert_final(
            &mut s,
            Direction::Frontend,
            &extra,
            PgError::TooMany { what: "messages awaiting answers", limit: 3 },
        );
    }
}

/// The SQL a Bind or Execute event attributes.
fn sql_of(event: Option<Event<'_>>) -> Option<String> {
    match event {
        Some(Event::Bind { sql, .. } | Event::Execute { sql, .. }) => {
            sql.map(|s| String::from_utf8_lossy(&s).into_owned())
        }
        e => panic!("not a Bind or Execute: {e:?}"),
    }
}

fn bind_s1(s: &mut Session) -> Option<String> {
    sql_of(s.feed_frontend(&msg(b'B', b"\0s1\0\0\0\0\0\0\0")).unwrap())
}

fn sync_ready(s: &mut Session) {
    s.feed_frontend(&msg(b'S', b"")).unwrap();
    assert_eq!(s.feed_backend(&msg(b'Z', b"I")).unwrap(), Some(Event::ReadyForQuery(TxStatus::Idle)));
}

#[test]
fn a_refused_parse_lends_its_sql_to_nothing() {
    // The server refuses the first Parse, so the name stays free and the second Parse is
    // what a later Bind of that name runs: attributing it to the first would let a client
    // run `DELETE FROM orders` under the name of a harmless SELECT.
    let mut s = running();
    s.feed_frontend(&msg(b'P', b"s1\0SELECT 1 FROM nope\0\0\0")).unwrap();
    assert_eq!(short(s.feed_backend(&err("42P01")).unwrap()), "extended error 42P01");
    sync_ready(&mut s);
    s.feed_frontend(&msg(b'P', b"s1\0DELETE FROM orders\0\0\0")).unwrap();
    assert_eq!(bind_s1(&mut s).as_deref(), Some("DELETE FROM orders"));
    let execute = msg(b'E', b"\0\0\0\0\0");
    assert_eq!(sql_of(s.feed_frontend(&execute).unwrap()).as_deref(), Some("DELETE FROM orders"));
}

#[test]
fn a_repeated_parse_is_what_the_server_answers() {
    // Refused as a duplicate (42P05): the first statement stays.
    let mut s = running();
    s.feed_frontend(&msg(b'P', b"s1\0SELECT 1\0\0\0")).unwrap();
    s.feed_backend(&msg(b'1', b"")).unwrap();
    sync_ready(&mut s);
    s.feed_frontend(&msg(b'P', b"s1\0DELETE FROM orders\0\0\0")).unwrap();
    s.feed_backend(&err("42P05")).unwrap();
    sync_ready(&mut s);
    assert_eq!(bind_s1(&mut s).as_deref(), Some("SELECT 1"));

    // Accepted after `DEALLOCATE s1` (which the codec does not read): the new one counts,
    // already for the Bind pipelined behind it.
    let mut s = running();
    s.feed_frontend(&msg(b'P', b"s1\0SELECT 1\0\0\0")).unwrap();
    s.feed_backend(&msg(b'1', b"")).unwrap();
    sync_ready(&mut s);
    s.feed_frontend(&msg(b'Q', b"DEALLOCATE s1\0")).unwrap();
    s.feed_backend(&msg(b'C', b"DEALLOCATE\0")).unwrap();
    s.feed_backend(&msg(b'Z', b"I")).unwrap();
    s.feed_frontend(&msg(b'P', b"s1\0DELETE FROM orders\0\0\0")).unwrap();
    assert_eq!(bind_s1(&mut s).as_deref(), Some("DELETE FROM orders"));
    s.feed_backend(&msg(b'1', b"")).unwrap();
    s.feed_backend(&msg(b'2', b"")).unwrap();
    assert_eq!(bind_s1(&mut s).as_deref(), Some("DELETE FROM orders"));
}

#[test]
fn what_the_server_skips_after_an_error_is_undone() {
    // s1 exists; then a batch whose first Parse fails: the server skips the Close and the
    // second Parse of s1 behind it, so s1 is still the first statement.
    let mut s = running();
    s.feed_frontend(&msg(b'P', b"s1\0SELECT 1\0\0\0")).unwrap();
    s.feed_backend(&msg(b'1', b"")).unwrap();
    sync_ready(&mut s);
    for m in [
        msg(b'P', b"s1\0SELECT 2\0\0\0"),
        msg(b'C', b"Ss1\0"),
        msg(b'P', b"s1\0DELETE FROM orders\0\0\0"),
        msg(b'S', b""),
    ] {
        s.feed_frontend(&m).unwrap();
    }
    assert_eq!(short(s.feed_backend(&err("42P05")).unwrap()), "extended error 42P05");
    s.feed_backend(&msg(b'Z', b"I")).unwrap();
    assert_eq!(bind_s1(&mut s).as_deref(), Some("SELECT 1"));

    // The same batch on a fresh name whose first Parse fails: nothing of it exists.
    let mut s = running();
    for m in [msg(b'P', b"s1\0SELEC 1\0\0\0"), msg(b'C', b"Ss1\0"), msg(b'P', b"s1\0DELETE FROM orders\0\0\0")] {
        s.feed_frontend(&m).unwrap();
    }
    // The error arrives before the client's Sync: what it sends until then is skipped.
    s.feed_backend(&err("42601")).unwrap();
    s.feed_frontend(&msg(b'P', b"s1\0SELECT 3\0\0\0")).unwrap();
    sync_ready(&mut s);
    assert_eq!(bind_s1(&mut s), None);

    // An Execute that fails takes the Parse behind it with it, not the one before.
    let mut s = running();
    for m in [
        msg(b'P', b"s1\0SELECT 1/0\0\0\0"),
        msg(b'B', b"\0s1\0\0\0\0\0\0\0"),
        msg(b'E', b"\0\0\0\0\0"),
        msg(b'P', b"s2\0SELECT 2\0\0\0"),
        msg(b'S', b""),
    ] {
        s.feed_frontend(&m).unwrap();
    }
    s.feed_backend(&msg(b'1', b"")).unwrap();
    s.feed_backend(&msg(b'2', b"")).unwrap();
    assert_eq!(short(s.feed_backend(&err("22012")).unwrap()), "failed 22012 ext=true");
    s.feed_backend(&msg(b'Z', b"I")).unwrap();
    assert_eq!(bind_s1(&mut s).as_deref(), Some("SELECT 1/0"));
    assert_eq!(sql_of(s.feed_frontend(&msg(b'B', b"\0s2\0\0\0\0\0\0\0")).unwrap()), None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary messages in arbitrary directions after a login: never a panic, and after
    /// the first error every feed answers Failed (Closed or Opaque once closed or encrypted).
    #[test]
    fn after_an_error_only_failed(
        messages in prop::collection::vec(
            (any::<bool>(),
             prop::sample::select(b"QPBDESHCdcfFXpZT1234nstIGHWKRNAVv~".to_vec()),
             prop::collection::vec(any::<u8>(), 0..24)),
            0..40),
    ) {
        let mut s = running_with(PgLimits { max_named: 2, max_pending: 4, ..PgLimits::default() });
        for (from_client, tag, body) in messages {
            let before = s.state();
            let m = msg(tag, &body);
            let r = if from_client { s.feed_frontend(&m) } else { s.feed_backend(&m) };
            match before {
                State::Failed => prop_assert_eq!(r, Err(PgError::Failed)),
                State::Closed => prop_assert_eq!(r, Err(PgError::Closed)),
                State::Opaque => prop_assert_eq!(r, Err(PgError::Opaque)),
                _ => if r.is_err() { prop_assert_eq!(s.state(), State::Failed) },
            }
        }
    }

    #[test]
    fn views_never_panic(tag in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Frontend::parse(tag, &body);
        let _ = Backend::parse(tag, &body);
        let _ = SaslInitialResponse::parse(&body);
        let mut pkt = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        pkt.extend_from_slice(&body);
        let _ = StartupPacket::parse(&pkt, &PgLimits::default());
    }

    #[test]
    fn framing_and_session_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), client_first in any::<bool>()) {
        let limits = PgLimits { max_message: 128, max_pending: 4, max_named: 2, ..PgLimits::default() };
        let mut session = Session::new(limits);
        let mut buf = BytesMut::from(&bytes[..]);
        let mut from_client = client_first;
        // Alternate directions over one random stream: whatever the bytes, errors only.
        loop {
            let dir = if from_client { Direction::Frontend } else { Direction::Backend };
            let Ok(Some(msg)) = split_message(&mut buf, session.phase(dir), &limits) else { break };
            let r = if from_client { session.feed_frontend(&msg) } else { session.feed_backend(&msg) };
            if r.is_err() { break; }
            from_client = !from_client;
        }
    }
}
