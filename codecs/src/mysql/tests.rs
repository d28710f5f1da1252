//! MySQL codec tests on captured sessions (fixtures/mysql, see capture.py and README.md
//! there): every fixture framed whole, in small chunks and split in two at every byte
//! boundary gives the same packets and the same session events; specific events are
//! checked against what the capture did.
//!
//! The captures keep each direction in its own file, so the replay interleaves them the
//! way the protocol does: it feeds the side [`Session::waiting_for`] names, which is itself
//! a check that the session knows whose turn it is.

use bytes::BytesMut;

use super::*;
use crate::framing::Decode;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/mysql");

pub(super) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub(super) fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().unwrap().strip_suffix(".client").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 13, "{names:?}");
    names
}

/// One wire packet with this sequence id and payload.
pub(super) fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    v.extend_from_slice(payload);
    v
}

/// An owned digest of an [`Event`], to compare runs and assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ev {
    Greeting { version: String, caps: Capabilities },
    Tls,
    Login { user: String, db: Option<String>, caps: Capabilities, tls: bool },
    AuthSwitch(String),
    AuthOk,
    AuthErr(u16, Option<String>),
    Compression,
    Started { kind: CommandKind, text: Option<String>, stmt: Option<u32>, complete: bool },
    Infile(String),
    PrepareOk { id: u32, params: u16, columns: u16 },
    Finished { kind: CommandKind, out: Out, rows: u64, sets: u32 },
    Unsolicited(u16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Out {
    Ok { affected: u64, insert_id: u64, status: StatusFlags },
    Err(u16, Option<String>),
    NoResponse,
    Unrecognized(u8),
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn err_digest(e: &ServerError<'_>) -> (u16, Option<String>) {
    (e.code, e.sqlstate_str().map(str::to_owned))
}

pub(super) fn own(e: &Event<'_>) -> Ev {
    match *e {
        Event::Greeting { server_version, capabilities, .. } => {
            Ev::Greeting { version: text(server_version), caps: capabilities }
        }
        Event::TlsUpgrade { .. } => Ev::Tls,
        Event::Login { user, database, capabilities, tls_requested, .. } => {
            Ev::Login { user: text(user), db: database.map(text), caps: capabilities, tls: tls_requested }
        }
        Event::AuthSwitch { plugin } => Ev::AuthSwitch(text(plugin)),
        Event::AuthResult(Ok(())) => Ev::AuthOk,
        Event::AuthResult(Err(ref err)) => {
            let (code, state) = err_digest(err);
            Ev::AuthErr(code, state)
        }
        Event::CompressionStarted => Ev::Compression,
        Event::CommandStarted { command, complete } => Ev::Started {
            kind: command.kind(),
            text: match command {
                Command::InitDb { schema } => Some(text(schema)),
                Command::FieldList { table, .. } => Some(text(table)),
                Command::ChangeUser { user, .. } => Some(text(user)),
                _ => command.sql().map(text),
            },
            stmt: command.statement_id(),
            complete,
        },
        Event::LocalInfile { filename } => Ev::Infile(text(filename)),
        Event::PrepareOk(p) => Ev::PrepareOk { id: p.statement_id, params: p.num_params, columns: p.num_columns },
        Event::CommandFinished { command, outcome, rows, result_sets } => Ev::Finished {
            kind: command,
            out: match outcome {
                Outcome::Ok(s) => Out::Ok { affected: s.affected_rows, insert_id: s.last_insert_id, status: s.status },
                Outcome::Err(ref e) => {
                    let (code, state) = err_digest(e);
                    Out::Err(code, state)
                }
                Outcome::NoResponse => Out::NoResponse,
                Outcome::Unrecognized { first_byte } => Out::Unrecognized(first_byte),
            },
            rows,
            sets: result_sets,
        },
        Event::Unsolicited(ref e) => Ev::Unsolicited(e.code),
    }
}

/// A direction's bytes delivered in the given pieces, framed as they arrive.
struct Stream<'a> {
    pieces: std::vec::IntoIter<&'a [u8]>,
    buf: BytesMut,
    framer: PacketFramer,
}

impl<'a> Stream<'a> {
    fn new(bytes: &'a [u8], cuts: &[usize]) -> Self {
        let mut pieces = Vec::new();
        let mut at = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let cut = cut.clamp(at, bytes.len());
            pieces.push(&bytes[at..cut]);
            at = cut;
        }
        Stream { pieces: pieces.into_iter(), buf: BytesMut::new(), framer: PacketFramer::new(MysqlLimits::default()) }
    }

    fn chunked(bytes: &'a [u8], chunk: usize) -> Self {
        let cuts: Vec<usize> = (chunk..bytes.len()).step_by(chunk).collect();
        Self::new(bytes, &cuts)
    }

    fn next_packet(&mut self) -> Option<Packet> {
        loop {
            if let Some(p) = self.framer.decode(&mut self.buf).unwrap() {
                return Some(p);
            }
            self.buf.extend_from_slice(self.pieces.next()?);
        }
    }

    /// Bytes never framed: the opaque rest after TLS or compression starts.
    fn unframed(self) -> usize {
        self.buf.len() + self.pieces.map(<[u8]>::len).sum::<usize>()
    }
}

/// What a replay saw.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Replay {
    pub events: Vec<Ev>,
    pub client_packets: Vec<Packet>,
    pub server_packets: Vec<Packet>,
    pub state: State,
    pub unframed: (usize, usize),
    /// The direction of each packet fed, in feeding order.
    pub order: Vec<Direction>,
}

fn replay_streams<'a>(mut client: Stream<'a>, mut server: Stream<'a>) -> Replay {
    let mut session = Session::new(MysqlLimits::default());
    let (mut events, mut client_packets, mut server_packets) = (Vec::new(), Vec::new(), Vec::new());
    let mut fed_order = Vec::new();
    while session.opaque().is_none() {
        let first = session.waiting_for().unwrap_or(Direction::Server);
        let order = if first == Direction::Server {
            [Direction::Server, Direction::Client]
        } else {
            [Direction::Client, Direction::Server]
        };
        let Some((dir, packet)) = order.into_iter().find_map(|dir| {
            let stream = if dir == Direction::Client { &mut client } else { &mut server };
            stream.next_packet().map(|p| (dir, p))
        }) else {
            break;
        };
        let fed = session.feed(dir, packet.wire()).unwrap_or_else(|e| panic!("{dir} packet {packet:?}: {e}"));
        events.extend(fed.iter().map(own));
        fed_order.push(dir);
        match dir {
            Direction::Client => client_packets.push(packet),
            Direction::Server => server_packets.push(packet),
        }
    }
    let state = session.state();
    Replay {
        events,
        client_packets,
        server_packets,
        state,
        unframed: (client.unframed(), server.unframed()),
        order: fed_order,
    }
}

pub(super) fn replay(name: &str) -> Replay {
    let (client, server) = (fixture(&format!("{name}.client")), fixture(&format!("{name}.server")));
    replay_streams(Stream::new(&client, &[]), Stream::new(&server, &[]))
}

#[test]
fn every_fixture_replays_the_same_whole_chunked_and_split_anywhere() {
    for name in fixture_names() {
        let client = fixture(&format!("{name}.client"));
        let server = fixture(&format!("{name}.server"));
        let whole = replay_streams(Stream::new(&client, &[]), Stream::new(&server, &[]));
        assert!(!whole.events.is_empty(), "{name}");
        // Every byte is in a packet, except the opaque rest of a TLS or compressed session.
        let framed = |ps: &[Packet]| ps.iter().map(|p| p.wire().len()).sum::<usize>();
        assert_eq!(framed(&whole.client_packets) + whole.unframed.0, client.len(), "{name}");
        assert_eq!(framed(&whole.server_packets) + whole.unframed.1, server.len(), "{name}");
        if whole.unframed != (0, 0) {
            assert!(matches!(whole.state, State::Opaque(_)), "{name}: {:?} with bytes left", whole.state);
        }
        for chunk in [1, 2, 3, 7, 64] {
            let r = replay_streams(Stream::chunked(&client, chunk), Stream::chunked(&server, chunk));
            assert_eq!(r, whole, "{name} in chunks of {chunk}");
        }
        for cut in 1..client.len() {
            assert_eq!(
                replay_streams(Stream::new(&client, &[cut]), Stream::new(&server, &[])),
                whole,
                "{name} c@{cut}"
            );
        }
        for cut in 1..server.len() {
            assert_eq!(
                replay_streams(Stream::new(&client, &[]), Stream::new(&server, &[cut])),
                whole,
                "{name} s@{cut}"
            );
        }
    }
}

#[test]
fn peek_and_the_message_framer_agree_with_the_packet_framer() {
    for name in fixture_names() {
        let r = replay(&name);
        for (dir, packets) in [("client", &r.client_packets), ("server", &r.server_packets)] {
            let bytes: Vec<u8> = packets.iter().flat_map(|p| p.wire().to_vec()).collect();
            let mut at = 0;
            let limits = MysqlLimits::default();
            for p in packets.iter() {
                assert_eq!(peek(&bytes[at..], &limits), Ok(Some(p.wire().len())), "{name}.{dir}");
                at += p.wire().len();
            }
            let mut buf = BytesMut::from(&bytes[..]);
            let mut framer = MessageFramer::new(limits);
            let mut messages = Vec::new();
            while let Some(m) = framer.decode(&mut buf).unwrap() {
                messages.push(m);
            }
            // No capture holds a 16 MiB payload: one message per packet.
            assert_eq!(messages.len(), packets.len(), "{name}.{dir}");
            assert!(messages.iter().zip(packets.iter()).all(|(m, p)| m.wire() == p.wire() && m.parts() == 1));
        }
    }
}

fn finished(events: &[Ev]) -> Vec<(CommandKind, Out, u64, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Finished { kind, out, rows, sets } => Some((*kind, out.clone(), *rows, *sets)),
            _ => None,
        })
        .collect()
}

fn started(events: &[Ev]) -> Vec<(CommandKind, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Started { kind, text, .. } => Some((*kind, text.clone())),
            _ => None,
        })
        .collect()
}

fn ok(affected: u64, insert_id: u64, status: u16) -> Out {
    Out::Ok { affected, insert_id, status: StatusFlags(status) }
}

fn err(code: u16, state: &str) -> Out {
    Out::Err(code, Some(state.to_owned()))
}

#[test]
fn every_started_command_finishes_once_in_order() {
    for name in fixture_names() {
        let r = replay(&name);
        let starts: Vec<CommandKind> =
            r.events.iter().filter_map(|e| if let Ev::Started { kind, .. } = e { Some(*kind) } else { None }).collect();
        let ends: Vec<CommandKind> = finished(&r.events).into_iter().map(|f| f.0).collect();
        assert_eq!(starts, ends, "{name}");
        if !matches!(r.state, State::Opaque(_) | State::Closed) {
            assert_eq!(r.state, State::Idle, "{name}");
        }
    }
}

#[test]
fn text_queries_rows_and_counters() {
    let r = replay("text_queries");
    assert!(matches!(&r.events[0], Ev::Greeting { version, caps } if version.contains("MariaDB")
        && caps.contains(Capabilities::MARIADB_CLIENT_CACHE_METADATA)));
    let Ev::Login { user, db, caps, tls } = &r.events[1] else { panic!("{:?}", r.events[1]) };
    assert_eq!((user.as_str(), db.as_deref(), *tls), ("bench", Some("sluice"), false));
    assert!(caps.contains(Capabilities::CLIENT_PROTOCOL_41) && !caps.contains(Capabilities::CLIENT_DEPRECATE_EOF));
    assert_eq!(r.events[2], Ev::AuthOk);
    let f = finished(&r.events);
    assert_eq!(f[0], (CommandKind::Query, ok(0, 0, 0x22), 5, 1), "SELECT of the five items");
    assert_eq!(f[1], (CommandKind::Query, ok(0, 0, 0x02), 0, 1), "an empty result set");
    assert_eq!(f[2].1, ok(2, 0, 0x02), "UPDATE: two rows affected");
    assert!(matches!(f[3].1, Out::Ok { affected: 1, insert_id: 1.., .. }), "INSERT: {:?}", f[3]);
    assert_eq!(f[4], (CommandKind::Quit, Out::NoResponse, 0, 0));
}

#[test]
fn unknown_table_is_err_1146_42s02() {
    let r = replay("error_unknown_table");
    let f = finished(&r.events);
    assert_eq!(f[0], (CommandKind::Query, err(1146, "42S02"), 0, 0));
}

#[test]
fn multi_statements_and_procedures_loop_over_results() {
    let f = finished(&replay("multi_statements").events);
    assert_eq!(f[0], (CommandKind::Query, ok(0, 0, 0x02), 2, 2), "SELECT 1; SELECT 2, 'two'");
    assert!(matches!(f[1], (CommandKind::Query, Out::Ok { affected: 1, insert_id: 1.., .. }, 1, 1)), "{:?}", f[1]);
    let f = finished(&replay("stored_procedure").events);
    assert_eq!(f[0], (CommandKind::Query, ok(0, 0, 0x22), 4, 2), "CALL: 3 rows, then COUNT(*), then the OK");
}

#[test]
fn init_db_ok_and_unknown_database() {
    let r = replay("init_db");
    let s = started(&r.events);
    assert!(s.contains(&(CommandKind::InitDb, Some("sluice".into()))));
    let f = finished(&r.events);
    let init: Vec<_> = f.iter().filter(|f| f.0 == CommandKind::InitDb).map(|f| f.1.clone()).collect();
    assert_eq!(init.len(), 2);
    assert!(matches!(init[0], Out::Ok { status, .. } if status.contains(StatusFlags::SERVER_SESSION_STATE_CHANGED)));
    assert_eq!(init[1], err(1049, "42000"));
}

#[test]
fn local_infile_round_trip_skips_the_progress_report() {
    let r = replay("local_infile");
    assert!(r.events.iter().any(|e| matches!(e, Ev::Infile(f) if f.ends_with("rows.csv"))));
    let f = finished(&r.events);
    assert_eq!(f[0], (CommandKind::Query, ok(200, 0, 0x02), 0, 0), "200 records loaded");
}

#[test]
fn auth_switch_wrong_password_tls_and_compression() {
    let r = replay("auth_switch_ed25519");
    assert!(r.events.contains(&Ev::AuthSwitch("client_ed25519".into())));
    assert!(r.events.contains(&Ev::AuthOk));
    assert_eq!(finished(&r.events)[0].2, 1);

    let r = replay("wrong_password");
    assert_eq!(r.events.last(), Some(&Ev::AuthErr(1045, Some("28000".into()))));
    assert_eq!(r.state, State::Closed);

    let r = replay("tls_request");
    assert_eq!(r.events.last(), Some(&Ev::Tls));
    assert_eq!(r.state, State::Opaque(Opaque::Tls));
    assert!(r.unframed.0 > 0 && r.unframed.1 > 0, "TLS records in both directions");

    let r = replay("compressed");
    assert!(matches!(&r.events[1], Ev::Login { caps, .. } if caps.contains(Capabilities::CLIENT_COMPRESS)));
    assert_eq!(&r.events[2..], &[Ev::AuthOk, Ev::Compression]);
    assert_eq!(r.state, State::Opaque(Opaque::Compression));
}

#[test]
fn sysbench_prepared_statements_with_cached_metadata() {
    let r = replay("sysbench_point_select");
    assert!(r.events.contains(&Ev::PrepareOk { id: 1, params: 1, columns: 1 }));
    let f = finished(&r.events);
    let executes: Vec<_> = f.iter().filter(|f| f.0 == CommandKind::StmtExecute).collect();
    assert_eq!(executes.len(), 20, "--events=20");
    assert!(executes.iter().all(|e| e.2 == 1 && e.3 == 1 && matches!(e.1, Out::Ok { .. })), "{executes:?}");
}

#[test]
fn c_api_commands_cursor_fetch_and_change_user() {
    let r = replay("c_api_commands");
    let kinds: Vec<CommandKind> = finished(&r.events).iter().map(|f| f.0).collect();
    use CommandKind::*;
    assert_eq!(
        kinds,
        [
            Ping,
            Statistics,
            InitDb,
            FieldList,
            SetOption,
            StmtPrepare,
            StmtExecute,
            StmtFetch,
            StmtFetch,
            StmtFetch,
            StmtReset,
            StmtClose,
            StmtPrepare,
            StmtSendLongData,
            StmtSendLongData,
            StmtExecute,
            StmtClose,
            ResetConnection,
            Query,
            ChangeUser,
            Query,
            Quit
        ]
    );
    let f = finished(&r.events);
    assert_eq!(f[3].2, 4, "COM_FIELD_LIST: four fields");
    assert_eq!((f[6].2, f[6].3), (0, 1), "the cursor's execute: metadata only");
    assert!(matches!(f[6].1, Out::Ok { status, .. } if status.cursor_exists()));
    assert_eq!([f[7].2, f[8].2, f[9].2], [2, 2, 1], "COM_STMT_FETCH of two rows at a time");
    assert!(matches!(f[9].1, Out::Ok { status, .. } if status.contains(StatusFlags::SERVER_STATUS_LAST_ROW_SENT)));
    assert_eq!(f[15].1, ok(1, 0, 0x02), "the UPDATE with long data");
    assert_eq!(f[18].1, err(1094, "HY000"), "KILL of an unknown thread");
    assert!(r.events.contains(&Ev::AuthSwitch("mysql_native_password".into())));
    assert!(matches!(f[19].1, Out::Ok { .. }), "COM_CHANGE_USER");
    assert!(r.events.contains(&Ev::Started { kind: StmtExecute, text: None, stmt: Some(2), complete: true }));
}

#[test]
fn pymysql_process_kill_and_multi_results() {
    let r = replay("pymysql_session");
    let f = finished(&r.events);
    assert!(f.contains(&(CommandKind::ProcessKill, err(1094, "HY000"), 0, 0)));
    assert!(f.iter().any(|f| f.0 == CommandKind::Query && f.2 == 2 && f.3 == 2), "two SELECTs in one COM_QUERY");
    assert!(f.contains(&(CommandKind::Query, err(1146, "42S02"), 0, 0)));
    let Ev::Login { caps, .. } = &r.events[1] else { panic!() };
    // PyMySQL keeps CLIENT_MYSQL set, so it sends no MariaDB extended capabilities.
    assert_eq!(caps.mariadb_extended(), 0);
    assert!(!caps.contains(Capabilities::CLIENT_DEPRECATE_EOF));
}

#[test]
fn connector_deprecate_eof_session() {
    let names = fixture_names();
    if !names.iter().any(|n| n == "connector_deprecate_eof") {
        return; // optional capture (needs a PyPI wheel), see capture.py
    }
    let r = replay("connector_deprecate_eof");
    let Ev::Login { caps, .. } = &r.events[1] else { panic!() };
    assert!(caps.contains(Capabilities::CLIENT_DEPRECATE_EOF));
    let f = finished(&r.events);
    let queries: Vec<_> = f.iter().filter(|f| f.0 == CommandKind::Query).collect();
    assert_eq!((queries[2].2, queries[2].3), (5, 1), "SELECT of five rows ended by an OK");
    assert_eq!(queries[4].1, err(1146, "42S02"));
    assert_eq!((queries[5].2, queries[5].3), (3, 2), "CALL: two result sets");
    assert!(r.events.contains(&Ev::PrepareOk { id: 4, params: 1, columns: 2 }));
    let executes: Vec<_> = f.iter().filter(|f| f.0 == CommandKind::StmtExecute).map(|f| f.2).collect();
    assert_eq!(executes, [3, 0]);
    assert!(f.iter().any(|f| f.0 == CommandKind::ChangeUser && matches!(f.1, Out::Ok { .. })));
}

/// Writes the fuzz seeds for `fuzz/fuzz_targets/mysql_session.rs`: each fixture's packets in
/// the order the replay fed them, as that target's records (header byte: top bit = from the
/// server, low 7 bits = length), then the opaque rest of each side. Run after recapturing:
/// `cargo test -p sluice-codecs write_mysql_fuzz_seeds -- --ignored`.
#[test]
#[ignore]
fn write_mysql_fuzz_seeds() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/mysql_session");
    std::fs::create_dir_all(dir).unwrap();
    fn records(out: &mut Vec<u8>, from_server: bool, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = bytes.len().min(0x7F);
            out.push(if from_server { 0x80 } else { 0 } | n as u8);
            out.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
    }
    for name in fixture_names() {
        let (client, server) = (fixture(&format!("{name}.client")), fixture(&format!("{name}.server")));
        let r = replay(&name);
        let mut seed = vec![0u8]; // default limits
        let (mut c, mut s) = (r.client_packets.iter(), r.server_packets.iter());
        for dir in &r.order {
            let from_server = *dir == Direction::Server;
            let packet = if from_server { s.next() } else { c.next() }.unwrap();
            records(&mut seed, from_server, packet.wire());
        }
        records(&mut seed, false, &client[client.len() - r.unframed.0..]);
        records(&mut seed, true, &server[server.len() - r.unframed.1..]);
        std::fs::write(format!("{dir}/{name}"), &seed).unwrap();
    }
}

#[test]
fn skipping_rows_in_bulk_gives_the_same_events_as_feeding_each() {
    for name in fixture_names() {
        let reference = replay(&name);
        let mut session = Session::new(MysqlLimits::default());
        let (mut client, mut server) = (reference.client_packets.iter(), reference.server_packets.iter());
        let mut events = Vec::new();
        let mut skipped = 0;
        for dir in &reference.order {
            let packet = match dir {
                Direction::Client => client.next().unwrap(),
                Direction::Server => server.next().unwrap(),
            };
            if *dir == Direction::Server && session.skip_rows(packet.wire()) == packet.wire().len() {
                skipped += 1;
                continue;
            }
            let fed = session.feed(*dir, packet.wire()).unwrap_or_else(|e| panic!("{name}: {e}"));
            events.extend(fed.iter().map(own));
        }
        assert_eq!(events, reference.events, "{name}");
        assert_eq!(session.state(), reference.state, "{name}");
        if name == "text_queries" {
            assert_eq!(skipped, 5, "the five rows of the first SELECT");
        }
    }
}

#[test]
fn skipping_rows_stops_at_a_sequence_id_out_of_order() {
    let mut session = Session::new(MysqlLimits::default());
    let text = replay("text_queries");
    // Feed up to the first row of the first result set.
    let (mut client, mut server) = (text.client_packets.iter(), text.server_packets.iter());
    for dir in &text.order {
        let packet = match dir {
            Direction::Client => client.next().unwrap(),
            Direction::Server => server.next().unwrap(),
        };
        if *dir == Direction::Server && session.skip_rows(packet.wire()) > 0 {
            break;
        }
        session.feed(*dir, packet.wire()).unwrap();
    }
    let row = pkt(99, b"\x01x");
    assert_eq!(session.skip_rows(&row), 0, "a row with the wrong sequence id is left to feed");
    assert!(session.feed(Direction::Server, &row).is_err());
}
