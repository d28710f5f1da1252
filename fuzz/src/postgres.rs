//! Shared by the PostgreSQL targets (`postgres_frontend`, `postgres_backend`,
//! `postgres_session`): a [`Checked`] session that verifies the codec's promises on every
//! message, the fixed openings the one-direction targets start from, and the framing
//! checks a proxy relies on.
//!
//! What is checked on every feed: no panic; an error (other than the session being closed
//! or encrypted) leaves the session failed, and from then on every feed of either
//! direction answers `PgError::Failed`; a closed session answers `Closed`, an opaque one
//! `Opaque`. On every framing step: `peek` answers `None` for every prefix of a message it
//! accepted (checked on the header prefixes and one byte short), a framing error is decided
//! by the header alone (before any announced byte arrived), and what it accepts is within
//! the limits.
//!
//! `SLUICE_FUZZ_PRINT=1` prints every message fed and what the session answered.
//!
//! The openings are numbered by the targets' mode byte; the seed writer
//! (`write_postgres_fuzz_seeds` in codecs/src/postgres/tests.rs) uses the same numbers.

use sluice_codecs::postgres::{peek, Direction, Event, PgError, PgLimits, Phase, Session, State};

/// Limits small enough that every limit error is reachable from short inputs (and large
/// enough for the openings: the longest keeps 20 messages pending).
pub const SMALL: PgLimits =
    PgLimits { max_message: 512, max_startup: 256, max_parameters: 4, max_pending: 24, max_named: 4 };

pub fn limits(small: bool) -> PgLimits {
    if small {
        SMALL
    } else {
        PgLimits::default()
    }
}

/// A typed message: tag, length, body.
pub fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// A StartupMessage (protocol 3.0) for user and database `bench`.
pub fn startup() -> Vec<u8> {
    let body = b"\0\x03\0\0user\0bench\0database\0bench\0\0";
    let mut v = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

pub fn ssl_request() -> Vec<u8> {
    vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]
}

/// A session under test.
pub struct Checked {
    pub session: Session,
    pub limits: PgLimits,
}

impl Checked {
    pub fn new(limits: PgLimits) -> Self {
        Checked { session: Session::new(limits), limits }
    }

    /// Feeds one whole message and checks what every feed promises. Returns whether the
    /// session accepted it.
    pub fn feed(&mut self, dir: Direction, msg: &[u8]) -> bool {
        let before = self.session.state();
        let result = match dir {
            Direction::Frontend => self.session.feed_frontend(msg),
            Direction::Backend => self.session.feed_backend(msg),
        };
        if crate::print_inputs() {
            eprintln!("{dir} {:?} -> {result:?}", bytes::Bytes::copy_from_slice(msg));
        }
        let ok = match result {
            Ok(event) => {
                check_event(event.as_ref(), msg);
                true
            }
            Err(e) => {
                match before {
                    State::Failed => assert_eq!(e, PgError::Failed, "a failed session stays failed"),
                    State::Closed => assert_eq!(e, PgError::Closed),
                    State::Opaque => assert_eq!(e, PgError::Opaque),
                    _ => {
                        assert!(!matches!(e, PgError::Failed | PgError::Closed | PgError::Opaque), "{before:?}: {e}");
                        assert_eq!(self.session.state(), State::Failed, "an error fails the session: {e}");
                    }
                }
                false
            }
        };
        let after = self.session.state();
        if matches!(before, State::Failed | State::Closed | State::Opaque) {
            assert_eq!(after, before, "a stopped session does not move");
        }
        let _ = (self.session.waiting_for_server(), self.session.copy());
        ok
    }

    /// Feeds a message of an opening: it must be accepted.
    pub fn must(&mut self, dir: Direction, msg: &[u8]) {
        assert!(self.feed(dir, msg), "opening message refused: {dir} {msg:?}");
    }

    /// Frames `bytes` as a proxy does (`peek` in the session's current phase for `dir`)
    /// and feeds each message, also after an error (each must then answer `Failed`).
    /// Stops when a message is incomplete or framing fails; returns the bytes consumed.
    pub fn drive(&mut self, dir: Direction, bytes: &[u8]) -> usize {
        let mut at = 0;
        loop {
            let rest = &bytes[at..];
            let phase = self.session.phase(dir);
            match frame(rest, phase, &self.limits) {
                Ok(Some(n)) => {
                    self.feed(dir, &rest[..n]);
                    at += n;
                }
                Ok(None) | Err(_) => return at,
            }
        }
    }

    /// After a stop: the session answers every later message of both directions the same
    /// way (`Failed`, `Closed` or `Opaque`).
    pub fn check_stopped(&mut self) {
        let state = self.session.state();
        if !matches!(state, State::Failed | State::Closed | State::Opaque) {
            return;
        }
        for (dir, m) in [(Direction::Frontend, msg(b'S', b"")), (Direction::Backend, msg(b'Z', b"I"))] {
            assert!(!self.feed(dir, &m));
        }
        assert_eq!(self.session.state(), state);
    }
}

/// `peek` as a proxy calls it, with the framing promises checked.
pub fn frame(buf: &[u8], phase: Phase, limits: &PgLimits) -> Result<Option<usize>, PgError> {
    let header = match phase {
        Phase::Startup => 4,
        Phase::Typed => 5,
        Phase::EncryptionAnswer => 1,
    };
    match peek(buf, phase, limits) {
        Ok(Some(n)) => {
            match phase {
                Phase::Startup => assert!((8..=limits.max_startup).contains(&n), "startup packet of {n}"),
                Phase::Typed => assert!((5..=limits.max_message).contains(&n), "message of {n}"),
                Phase::EncryptionAnswer => assert_eq!(n, 1),
            }
            assert!(n <= buf.len());
            // Every prefix is incomplete: the header ones and the one a byte short.
            for k in (0..n.min(header + 1)).chain([n - 1]) {
                assert_eq!(peek(&buf[..k], phase, limits), Ok(None), "prefix of {k} of a {n}-byte message");
            }
            Ok(Some(n))
        }
        Ok(None) => {
            assert!(buf.len() < header || phase != Phase::EncryptionAnswer);
            Ok(None)
        }
        Err(e) => {
            assert!(
                matches!(
                    e,
                    PgError::LengthTooSmall { .. } | PgError::MessageTooLarge { .. } | PgError::StartupTooLarge { .. }
                ),
                "framing error {e}"
            );
            // Decided by the header alone, before any announced byte.
            assert_eq!(peek(&buf[..header], phase, limits), Err(e));
            for k in 0..header {
                assert_eq!(peek(&buf[..k], phase, limits), Ok(None));
            }
            Err(e)
        }
    }
}

fn within(msg: &[u8], part: &[u8]) -> bool {
    let (start, end) = (msg.as_ptr() as usize, msg.as_ptr() as usize + msg.len());
    let p = part.as_ptr() as usize;
    part.is_empty() || (p >= start && p + part.len() <= end)
}

/// Whatever an event borrows comes from the message it was made of.
fn check_event(event: Option<&Event<'_>>, msg: &[u8]) {
    let Some(event) = event else { return };
    let parts: Vec<&[u8]> = match event {
        Event::Parse { statement, sql } => vec![statement, sql],
        Event::Bind { portal, statement, .. } => vec![portal, statement],
        Event::Execute { portal, .. } => vec![portal],
        Event::QueryStarted { sql } => vec![sql],
        Event::ParameterStatus { name, value } => vec![name, value],
        Event::CancelRequest { key, .. } | Event::BackendKeyData { key, .. } => {
            assert!((4..=256).contains(&key.len()));
            vec![key]
        }
        Event::Notification { channel, payload, .. } => vec![channel, payload],
        Event::SaslMechanism { mechanism } => vec![mechanism],
        Event::Startup { message, .. } => message.params().flat_map(|(k, v)| [k, v]).collect(),
        _ => vec![],
    };
    for part in parts {
        assert!(within(msg, part), "{event:?} borrows outside its message");
    }
}

// ---- openings ----

/// The frontend target's openings (mode byte bits 1..=3).
///
/// 0. a fresh session: the fuzz bytes start with the startup packets;
/// 1. StartupMessage sent, the server asked for SASL (SCRAM-SHA-256): SASLInitialResponse next;
/// 2. StartupMessage sent, the server asked for an MD5 password;
/// 3. running, idle (trust login: AuthenticationOk, ReadyForQuery);
/// 4. running, in copy-in (`COPY t FROM STDIN` answered by CopyInResponse);
/// 5. running, an extended-protocol batch failed before its Sync (the server skips to Sync);
/// 6. SSLRequest sent, not answered yet;
/// 7. running in a transaction with statement `s1` and portal `p1` known.
pub fn frontend_opening(mode: u8, limits: PgLimits) -> Checked {
    use Direction::{Backend as B, Frontend as F};
    let mut c = Checked::new(limits);
    match mode % 8 {
        0 => {}
        1 => {
            c.must(F, &startup());
            c.must(B, &msg(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"));
        }
        2 => {
            c.must(F, &startup());
            c.must(B, &msg(b'R', b"\0\0\0\x05salt"));
        }
        6 => c.must(F, &ssl_request()),
        m => {
            trust_login(&mut c);
            match m {
                4 => {
                    c.must(F, &msg(b'Q', b"COPY t FROM STDIN\0"));
                    c.must(B, &msg(b'G', b"\0\0\x02\0\0\0\0"));
                }
                5 => {
                    c.must(F, &msg(b'P', b"\0SELEC 1\0\0\0"));
                    c.must(B, &msg(b'E', b"SERROR\0C42601\0Msyntax error\0\0"));
                }
                7 => {
                    c.must(F, &msg(b'Q', b"BEGIN\0"));
                    c.must(B, &msg(b'C', b"BEGIN\0"));
                    c.must(B, &msg(b'Z', b"T"));
                    c.must(F, &msg(b'P', b"s1\0SELECT $1\0\0\x01\0\0\0\x17"));
                    c.must(F, &msg(b'B', b"p1\0s1\0\0\0\0\x01\0\0\0\x011\0\0"));
                    c.must(F, &msg(b'S', b""));
                    c.must(B, &msg(b'1', b""));
                    c.must(B, &msg(b'2', b""));
                    c.must(B, &msg(b'Z', b"T"));
                }
                _ => {}
            }
        }
    }
    c
}

/// The backend target's openings (mode byte bits 1..=3): the frontend messages (and
/// server answers) that bring the session to a state whose server messages the fuzz
/// bytes then supply.
///
/// 0. StartupMessage sent: authentication and start-up;
/// 1. SSLRequest sent: the one-byte answer;
/// 2. running, 8 simple Queries pending;
/// 3. running, 4 extended batches Parse/Bind/Describe P/Execute/Sync of the unnamed
///    statement pending (pgbench --protocol=extended);
/// 4. running, Parse of `P_0`/Sync, then 4 × Bind/Describe P/Execute/Sync pending
///    (pgbench --protocol=prepared);
/// 5. running, in copy-in: `COPY t FROM STDIN` answered by CopyInResponse, the client's
///    CopyData and CopyDone sent;
/// 6. running, in copy-out: `COPY t TO STDOUT` answered by CopyOutResponse;
/// 7. running, a mixed pipeline: Parse `s`/Describe S/Bind `p`/Execute `p` 1 row/Execute
///    `p`/Close P/Close S/Sync, a FunctionCall, an empty Query.
pub fn backend_opening(mode: u8, limits: PgLimits) -> Checked {
    use Direction::{Backend as B, Frontend as F};
    let mut c = Checked::new(limits);
    match mode % 8 {
        0 => c.must(F, &startup()),
        1 => c.must(F, &ssl_request()),
        m => {
            trust_login(&mut c);
            let pbdes = [
                msg(b'P', b"\0SELECT abalance FROM pgbench_accounts WHERE aid = $1\0\0\0"),
                msg(b'B', b"\0\0\0\0\0\x01\0\0\0\x0542042\0\0"),
                msg(b'D', b"P\0"),
                msg(b'E', b"\0\0\0\0\0"),
                msg(b'S', b""),
            ];
            let frontend: Vec<Vec<u8>> = match m {
                2 => (0..8).map(|i| msg(b'Q', format!("SELECT {i}\0").as_bytes())).collect(),
                3 => (0..4).flat_map(|_| pbdes.clone()).collect(),
                4 => {
                    let mut v = vec![
                        msg(b'P', b"P_0\0SELECT abalance FROM pgbench_accounts WHERE aid = $1\0\0\0"),
                        msg(b'S', b""),
                    ];
                    let bind = msg(b'B', b"\0P_0\0\0\0\0\x01\0\0\0\x0542042\0\0");
                    for _ in 0..4 {
                        v.extend([bind.clone(), pbdes[2].clone(), pbdes[3].clone(), pbdes[4].clone()]);
                    }
                    v
                }
                5 => vec![msg(b'Q', b"COPY t FROM STDIN\0")],
                6 => vec![msg(b'Q', b"COPY t TO STDOUT\0")],
                _ => vec![
                    msg(b'P', b"s\0SELECT $1::int\0\0\x01\0\0\0\x17"),
                    msg(b'D', b"Ss\0"),
                    msg(b'B', b"p\0s\0\0\x01\0\x01\0\x01\0\0\0\x04\0\0\0\x07\0\x01\0\x01"),
                    msg(b'E', b"p\0\0\0\0\x01"),
                    msg(b'E', b"p\0\0\0\0\0"),
                    msg(b'C', b"Pp\0"),
                    msg(b'C', b"Ss\0"),
                    msg(b'S', b""),
                    msg(b'F', b"\0\0\x05\x0b\0\0\0\x01\0\0\0\x01x\0\0"),
                    msg(b'Q', b"\0"),
                ],
            };
            for m in &frontend {
                c.must(F, m);
            }
            match m {
                5 => {
                    c.must(B, &msg(b'G', b"\0\0\x01\0\0"));
                    c.must(F, &msg(b'd', b"1\n"));
                    c.must(F, &msg(b'c', b""));
                }
                6 => c.must(B, &msg(b'H', b"\0\0\x01\0\0")),
                _ => {}
            }
        }
    }
    c
}

/// A trust login: StartupMessage, AuthenticationOk, ReadyForQuery.
pub fn trust_login(c: &mut Checked) {
    c.must(Direction::Frontend, &startup());
    c.must(Direction::Backend, &msg(b'R', b"\0\0\0\0"));
    c.must(Direction::Backend, &msg(b'Z', b"I"));
    assert_eq!(c.session.state(), State::Running);
}
