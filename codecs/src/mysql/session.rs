//! The session state machine: fed every client and server packet in wire order, it knows
//! what each packet means and tells the proxy filter through [`Event`]s.
//!
//! Spec: "Connection Lifecycle", "Connection Phase", "Command Phase" and the response
//! shapes of each command (<https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_lifecycle.html>,
//! "COM_QUERY Response", "Text Resultset", "Binary Protocol Resultset", "COM_STMT_PREPARE
//! Response", "COM_STMT_FETCH Response", "LOCAL INFILE Request"), and MariaDB's
//! (<https://mariadb.com/kb/en/clientserver-protocol/>).
//!
//! ```text
//! AwaitGreeting -> AwaitLogin -> (SSLRequest: Opaque(Tls)) -> Auth (OK / ERR / AuthSwitch /
//! AuthMoreData rounds) -> Idle <-> Response(step) ... ; CLIENT_COMPRESS: Opaque(Compression)
//! ```
//!
//! One sequence counter runs through each exchange in both directions (the handshake is one
//! exchange; every command starts a new one at 0), and every packet must carry the next id
//! (wrapping at 256), except that a continuation chain's parts follow their own first part.
//! Capabilities are negotiated (client ∧ server) at login, since `CLIENT_DEPRECATE_EOF`,
//! `CLIENT_PROTOCOL_41`, `CLIENT_QUERY_ATTRIBUTES` and MariaDB's metadata cache change
//! how later packets parse. A client may pipeline commands (MariaDB connectors send
//! COM_STMT_PREPARE + COM_STMT_EXECUTE back to back): they wait in a bounded queue and
//! their responses are matched in order. A row packet costs a header check, the sequence
//! check and two byte comparisons; nothing here allocates except that queue.

use std::collections::VecDeque;

use super::command::{Command, CommandKind};
use super::error::MysqlError;
use super::event::{Event, Events, OkSummary, Opaque, Outcome};
use super::flags::Capabilities;
use super::handshake::{AuthMoreData, AuthSwitch, Handshake, Login};
use super::packet::{Direction, MysqlLimits, PacketHeader, HEADER_LEN};
use super::response::{Completion, ServerError, EOF_HEADER, ERR_HEADER, OK_HEADER};

mod response;

use response::{Response, Step};

pub(super) const AUTH_MORE_DATA_HEADER: u8 = 0x01;
/// MySQL 8.0.27+ multi-factor authentication: "now authenticate with this next plugin".
pub(super) const AUTH_NEXT_FACTOR_HEADER: u8 = 0x02;

/// The session's state, as the filter may want to see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    AwaitGreeting,
    AwaitLogin,
    Authenticating,
    Idle,
    /// A command's response is due or under way (the oldest of any pipelined ones).
    AwaitingResponse(CommandKind),
    /// After an unknown command answered with something unrecognized: server packets are
    /// ignored until the client's next command.
    Resync,
    Opaque(Opaque),
    Closed,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    AwaitGreeting,
    AwaitLogin,
    Auth { server_turn: bool },
    Idle,
    Response,
    Resync,
    Opaque(Opaque),
    Closed,
    Failed,
}

/// A pipelined command whose response has not started.
#[derive(Clone, Copy, Debug)]
struct Pending {
    kind: CommandKind,
    cursor: bool,
    /// Its last packet's sequence id (more than 0 when it was a continuation chain).
    last_seq: u8,
}

/// Whose sequence counter a client continuation chain advances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChainOwner {
    Current,
    Queued,
    Nobody,
}

/// The sans-I/O session of one client connection.
#[derive(Clone, Debug)]
pub struct Session {
    limits: MysqlLimits,
    phase: Phase,
    /// The last sequence id of the current exchange.
    seq: u8,
    server_caps: Capabilities,
    /// Negotiated: client ∧ server.
    caps: Capabilities,
    tls_requested: bool,
    /// The sequence id the next part of a continuation chain must carry, per direction.
    client_chain: Option<u8>,
    server_chain: Option<u8>,
    client_chain_owner: ChainOwner,
    response: Response,
    queue: VecDeque<Pending>,
}

impl Session {
    pub fn new(limits: MysqlLimits) -> Self {
        Session {
            limits,
            phase: Phase::AwaitGreeting,
            seq: 0,
            server_caps: Capabilities::default(),
            caps: Capabilities::default(),
            tls_requested: false,
            client_chain: None,
            server_chain: None,
            client_chain_owner: ChainOwner::Nobody,
            response: Response {
                kind: CommandKind::Other(0),
                cursor: false,
                step: Step::Simple,
                rows: 0,
                result_sets: 0,
                summary: OkSummary::default(),
            },
            queue: VecDeque::new(),
        }
    }

    /// Feeds one client → server wire packet (header included, exactly one packet).
    pub fn client<'a>(&mut self, packet: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        self.feed(Direction::Client, packet)
    }

    /// Feeds one server → client wire packet (header included, exactly one packet).
    pub fn server<'a>(&mut self, packet: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        self.feed(Direction::Server, packet)
    }

    /// Feeds one wire packet. An error is final: later calls return [`MysqlError::Failed`]
    /// (or [`MysqlError::Opaque`] / [`MysqlError::Closed`] when that is why).
    pub fn feed<'a>(&mut self, direction: Direction, packet: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        let result = self.dispatch(direction, packet);
        if result.is_err() && !matches!(self.phase, Phase::Opaque(_) | Phase::Closed) {
            self.phase = Phase::Failed;
        }
        result
    }

    pub fn state(&self) -> State {
        match self.phase {
            Phase::AwaitGreeting => State::AwaitGreeting,
            Phase::AwaitLogin => State::AwaitLogin,
            Phase::Auth { .. } => State::Authenticating,
            Phase::Idle => State::Idle,
            Phase::Response => State::AwaitingResponse(self.response.kind),
            Phase::Resync => State::Resync,
            Phase::Opaque(o) => State::Opaque(o),
            Phase::Closed => State::Closed,
            Phase::Failed => State::Failed,
        }
    }

    /// Why the stream is no longer MySQL packets, once it is not: the filter then forwards
    /// everything (the rest of the current read buffer included) without framing it.
    pub fn opaque(&self) -> Option<Opaque> {
        match self.phase {
            Phase::Opaque(o) => Some(o),
            _ => None,
        }
    }

    /// Which side is expected to send next, when the protocol says.
    pub fn waiting_for(&self) -> Option<Direction> {
        if self.client_chain.is_some() {
            return Some(Direction::Client);
        }
        if self.server_chain.is_some() {
            return Some(Direction::Server);
        }
        match self.phase {
            Phase::AwaitGreeting => Some(Direction::Server),
            Phase::AwaitLogin | Phase::Idle => Some(Direction::Client),
            Phase::Auth { server_turn } => Some(if server_turn { Direction::Server } else { Direction::Client }),
            Phase::Response => match self.response.step {
                Step::InfileData | Step::ChangeUserAuth { server_turn: false } => Some(Direction::Client),
                _ => Some(Direction::Server),
            },
            Phase::Resync | Phase::Opaque(_) | Phase::Closed | Phase::Failed => None,
        }
    }

    /// Negotiated capabilities (client ∧ server), once the client has logged in.
    pub fn capabilities(&self) -> Capabilities {
        self.caps
    }

    pub fn server_capabilities(&self) -> Capabilities {
        self.server_caps
    }

    /// Commands sent whose responses have not finished (the current one included).
    pub fn commands_in_flight(&self) -> usize {
        usize::from(self.phase == Phase::Response) + self.queue.len()
    }

    /// Whether a client packet with sequence id `seq` starts a new command, rather than
    /// continuing one (a 0xFFFFFF chain) or carrying a LOCAL INFILE's data or a
    /// COM_CHANGE_USER's authentication: what a proxy that decides per command must know
    /// before it forwards (and feeds) the packet. Pipelined commands start one too.
    pub fn starts_command(&self, seq: u8) -> bool {
        if seq != 0 || self.client_chain.is_some() {
            return false;
        }
        match self.phase {
            Phase::Idle | Phase::Resync => true,
            Phase::Response => self.waiting_for() != Some(Direction::Client),
            _ => false,
        }
    }

    /// The hot path of a result set: counts the complete row packets at the start of
    /// `buf` (server to client) in one tight loop and returns how many bytes they span;
    /// the caller forwards them and feeds the packet after them as usual. Stops at the
    /// first packet that is not plainly a row (a terminator, an error, an empty or
    /// continued packet, a sequence id out of order, an incomplete packet), which
    /// [`Session::server`] then handles or rejects. Same outcome as feeding each row.
    pub fn skip_rows(&mut self, buf: &[u8]) -> usize {
        if self.phase != Phase::Response || self.response.step != Step::Rows || self.server_chain.is_some() {
            return 0;
        }
        let mut at = 0;
        while let Some(header) = buf.get(at..).and_then(PacketHeader::parse) {
            let end = at + header.wire_len();
            let plain_row = header.payload_len > 0
                && !header.is_continued()
                && header.payload_len <= self.limits.max_packet
                && header.seq == self.seq.wrapping_add(1)
                && end <= buf.len()
                && !matches!(buf[at + HEADER_LEN], EOF_HEADER | ERR_HEADER);
            if !plain_row {
                break;
            }
            self.seq = header.seq;
            self.response.rows += 1;
            at = end;
        }
        at
    }

    /// For a proxy that terminates TLS itself: after [`Event::TlsUpgrade`], feed the
    /// decrypted stream and the login follows. Returns false unless the session is
    /// [`Opaque::Tls`].
    pub fn resume_after_tls(&mut self) -> bool {
        let resumable = self.phase == Phase::Opaque(Opaque::Tls);
        if resumable {
            self.phase = Phase::AwaitLogin;
        }
        resumable
    }

    fn dispatch<'a>(&mut self, dir: Direction, packet: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        let header = PacketHeader::parse(packet).filter(|h| h.wire_len() == packet.len()).ok_or_else(|| {
            let expected = PacketHeader::parse(packet).map_or(HEADER_LEN, |h| h.wire_len());
            MysqlError::NotOnePacket { expected, actual: packet.len() }
        })?;
        match self.phase {
            Phase::Opaque(o) => return Err(MysqlError::Opaque(o)),
            Phase::Closed => return Err(MysqlError::Closed),
            Phase::Failed => return Err(MysqlError::Failed),
            Phase::Resync if dir == Direction::Server => return Ok(Events::none()),
            _ => {}
        }
        if self.continuation(dir, header)? {
            return Ok(Events::none());
        }
        let (seq, payload) = (header.seq, &packet[HEADER_LEN..]);
        let events = match (self.phase, dir) {
            (Phase::Response, Direction::Server) => {
                self.check_seq(dir, seq)?;
                self.server_in_response(payload)?
            }
            (Phase::Response, Direction::Client) => self.client_in_response(seq, payload, header.is_continued())?,
            (Phase::Idle | Phase::Resync, Direction::Client) => self.command(seq, payload, header.is_continued())?,
            (Phase::Idle, Direction::Server) => self.unsolicited(payload)?,
            (Phase::AwaitGreeting, Direction::Server) => self.greeting(seq, payload)?,
            (Phase::AwaitLogin, Direction::Client) => self.login(seq, payload)?,
            (Phase::AwaitLogin, Direction::Server) => self.early_error(payload)?,
            (Phase::Auth { .. }, Direction::Server) => self.auth_server(seq, payload)?,
            (Phase::Auth { .. }, Direction::Client) => {
                self.check_handshake_len(payload)?;
                self.check_seq(dir, seq)?;
                self.client_chain_owner = ChainOwner::Current;
                self.phase = Phase::Auth { server_turn: true };
                Events::none()
            }
            _ => return Err(unexpected(dir, "awaiting the server's greeting", payload)),
        };
        if header.is_continued() {
            match dir {
                Direction::Client => self.client_chain = Some(seq.wrapping_add(1)),
                Direction::Server => self.server_chain = Some(seq.wrapping_add(1)),
            }
        }
        Ok(events)
    }

    /// Handles a later part of a 0xFFFFFF chain; false if the packet is not one.
    fn continuation(&mut self, dir: Direction, header: PacketHeader) -> Result<bool, MysqlError> {
        let slot = match dir {
            Direction::Client => &mut self.client_chain,
            Direction::Server => &mut self.server_chain,
        };
        let Some(expected) = *slot else { return Ok(false) };
        if header.seq != expected {
            return Err(MysqlError::SequenceMismatch { direction: dir, expected, got: header.seq });
        }
        *slot = header.is_continued().then(|| expected.wrapping_add(1));
        match (dir, self.client_chain_owner) {
            (Direction::Server, _) | (Direction::Client, ChainOwner::Current) => self.seq = header.seq,
            (Direction::Client, ChainOwner::Queued) => {
                if let Some(last) = self.queue.back_mut() {
                    last.last_seq = header.seq;
                }
            }
            (Direction::Client, ChainOwner::Nobody) => {}
        }
        Ok(true)
    }

    fn check_seq(&mut self, direction: Direction, got: u8) -> Result<(), MysqlError> {
        let expected = self.seq.wrapping_add(1);
        if got != expected {
            return Err(MysqlError::SequenceMismatch { direction, expected, got });
        }
        self.seq = got;
        Ok(())
    }

    fn check_handshake_len(&self, payload: &[u8]) -> Result<(), MysqlError> {
        if payload.len() > self.limits.max_handshake {
            return Err(MysqlError::HandshakeTooLarge { len: payload.len(), limit: self.limits.max_handshake });
        }
        Ok(())
    }

    /// 0xFE always switches plugins; 0x02 only when multi-factor authentication was agreed.
    fn switch_allowed(&self, payload: &[u8]) -> bool {
        payload.first() == Some(&EOF_HEADER) || self.caps.contains(Capabilities::MULTI_FACTOR_AUTHENTICATION)
    }

    fn deprecate_eof(&self) -> bool {
        self.caps.contains(Capabilities::CLIENT_DEPRECATE_EOF)
    }

    fn greeting<'a>(&mut self, seq: u8, payload: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        self.check_handshake_len(payload)?;
        if seq != 0 {
            return Err(MysqlError::SequenceMismatch { direction: Direction::Server, expected: 0, got: seq });
        }
        self.seq = 0;
        if payload.first() == Some(&ERR_HEADER) {
            // "Too many connections", "Host is blocked": an ERR instead of a greeting.
            let err = ServerError::parse(payload)?;
            self.phase = Phase::Closed;
            return Ok(Events::one(Event::AuthResult(Err(err))));
        }
        let h = Handshake::parse(payload)?;
        self.server_caps = h.capabilities;
        self.phase = Phase::AwaitLogin;
        Ok(Events::one(Event::Greeting {
            server_version: h.server_version,
            connection_id: h.connection_id,
            capabilities: h.capabilities,
            auth_plugin: h.auth_plugin,
        }))
    }

    fn login<'a>(&mut self, seq: u8, payload: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        self.check_handshake_len(payload)?;
        self.check_seq(Direction::Client, seq)?;
        match Login::parse(payload)? {
            Login::SslRequest { capabilities, .. } => {
                self.caps = capabilities.intersection(self.server_caps);
                self.tls_requested = true;
                self.phase = Phase::Opaque(Opaque::Tls);
                Ok(Events::one(Event::TlsUpgrade { capabilities }))
            }
            Login::Response(r) => {
                self.caps = r.capabilities.intersection(self.server_caps);
                self.client_chain_owner = ChainOwner::Current;
                self.phase = Phase::Auth { server_turn: true };
                Ok(Events::one(Event::Login {
                    user: r.user,
                    database: r.database,
                    auth_plugin: r.auth_plugin,
                    capabilities: self.caps,
                    tls_requested: self.tls_requested,
                }))
            }
        }
    }

    /// A server packet before the login: only an ERR (e.g. a handshake timeout) makes sense.
    fn early_error<'a>(&mut self, payload: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        if payload.first() != Some(&ERR_HEADER) {
            return Err(unexpected(Direction::Server, "awaiting the client's login", payload));
        }
        let err = ServerError::parse(payload)?;
        self.phase = Phase::Closed;
        Ok(Events::one(Event::AuthResult(Err(err))))
    }

    fn auth_server<'a>(&mut self, seq: u8, payload: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        self.check_handshake_len(payload)?;
        self.check_seq(Direction::Server, seq)?;
        match payload.first() {
            Some(&OK_HEADER) => {
                Completion::parse(payload, self.caps)?;
                let mut events = Events::one(Event::AuthResult(Ok(())));
                let compress = Capabilities::CLIENT_COMPRESS.union(Capabilities::CLIENT_ZSTD_COMPRESSION_ALGORITHM);
                if self.caps.intersection(compress).bits() != 0 {
                    // The OK itself is plain; everything after it is compressed packets.
                    self.phase = Phase::Opaque(Opaque::Compression);
                    events.push(Event::CompressionStarted);
                } else {
                    self.phase = Phase::Idle;
                }
                Ok(events)
            }
            Some(&ERR_HEADER) => {
                let err = ServerError::parse(payload)?;
                self.phase = Phase::Closed;
                Ok(Events::one(Event::AuthResult(Err(err))))
            }
            Some(&EOF_HEADER) | Some(&AUTH_NEXT_FACTOR_HEADER) if self.switch_allowed(payload) => {
                let switch = AuthSwitch::parse(payload)?;
                self.phase = Phase::Auth { server_turn: false };
                Ok(Events::one(Event::AuthSwitch { plugin: switch.plugin }))
            }
            Some(&AUTH_MORE_DATA_HEADER) => {
                let fast = AuthMoreData::parse(payload)? == AuthMoreData::FastAuthSuccess;
                self.phase = Phase::Auth { server_turn: fast };
                Ok(Events::none())
            }
            _ => Err(unexpected(Direction::Server, "authenticating", payload)),
        }
    }

    fn unsolicited<'a>(&mut self, payload: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        if payload.first() != Some(&ERR_HEADER) {
            return Err(unexpected(Direction::Server, "idle", payload));
        }
        let err = ServerError::parse(payload)?;
        self.phase = Phase::Closed;
        Ok(Events::one(Event::Unsolicited(err)))
    }

    fn parse_command<'a>(&self, payload: &'a [u8], state: &'static str) -> Result<Command<'a>, MysqlError> {
        if payload.is_empty() {
            return Err(MysqlError::EmptyPacket { direction: Direction::Client, state });
        }
        Command::parse(payload, self.caps)
    }

    /// A client packet while idle (or lost after an unknown command's response).
    fn command<'a>(&mut self, seq: u8, payload: &'a [u8], continued: bool) -> Result<Events<'a>, MysqlError> {
        if self.phase == Phase::Resync {
            if seq != 0 {
                return Ok(Events::none());
            }
            self.phase = Phase::Idle;
            self.server_chain = None;
        }
        if seq != 0 {
            return Err(MysqlError::SequenceMismatch { direction: Direction::Client, expected: 0, got: seq });
        }
        let command = self.parse_command(payload, "idle")?;
        self.seq = 0;
        let mut events = Events::one(Event::CommandStarted { command, complete: !continued });
        if command.kind().has_response() {
            self.client_chain_owner = ChainOwner::Current;
            self.begin_response(command.kind(), command.opens_cursor());
        } else {
            self.client_chain_owner = ChainOwner::Nobody;
            events.push(no_response(command.kind()));
        }
        Ok(events)
    }

    fn client_in_response<'a>(
        &mut self,
        seq: u8,
        payload: &'a [u8],
        continued: bool,
    ) -> Result<Events<'a>, MysqlError> {
        match self.response.step {
            Step::InfileData => {
                self.check_seq(Direction::Client, seq)?;
                self.client_chain_owner = ChainOwner::Current;
                if payload.is_empty() {
                    self.response.step = Step::InfileResult;
                }
                return Ok(Events::none());
            }
            Step::ChangeUserAuth { .. } if seq != 0 => {
                self.check_handshake_len(payload)?;
                self.check_seq(Direction::Client, seq)?;
                self.client_chain_owner = ChainOwner::Current;
                self.response.step = Step::ChangeUserAuth { server_turn: true };
                return Ok(Events::none());
            }
            _ => {}
        }
        // Anything else is a pipelined command.
        if seq != 0 {
            return Err(MysqlError::SequenceMismatch { direction: Direction::Client, expected: 0, got: seq });
        }
        let command = self.parse_command(payload, self.response.step.describe())?;
        let mut events = Events::one(Event::CommandStarted { command, complete: !continued });
        if command.kind().has_response() {
            if self.queue.len() >= self.limits.max_pipelined {
                return Err(MysqlError::TooManyPipelined { limit: self.limits.max_pipelined });
            }
            self.queue.push_back(Pending { kind: command.kind(), cursor: command.opens_cursor(), last_seq: 0 });
            self.client_chain_owner = ChainOwner::Queued;
        } else {
            self.client_chain_owner = ChainOwner::Nobody;
            events.push(no_response(command.kind()));
        }
        Ok(events)
    }
}

fn no_response<'a>(kind: CommandKind) -> Event<'a> {
    Event::CommandFinished { command: kind, outcome: Outcome::NoResponse, rows: 0, result_sets: 0 }
}

fn unexpected(direction: Direction, state: &'static str, payload: &[u8]) -> MysqlError {
    match payload.first() {
        Some(&first) => MysqlError::UnexpectedPacket { direction, state, first },
        None => MysqlError::EmptyPacket { direction, state },
    }
}
