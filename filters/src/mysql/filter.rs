//! The `mysql` protocol filter: follows a connection packet by packet with the codec's
//! [`Session`], turns every command into an [`Op`] (`op` = the SQL verb of a statement —
//! COM_QUERY, or COM_STMT_EXECUTE of a statement prepared on this connection — or the
//! command's `COM_` name; `target` = the tables touched; `user` and `database` from the
//! login, COM_INIT_DB and `USE`), applies the listener's rules, and counts and times each
//! command from the read that carried it to the read that carried its last response packet.
//!
//! Packets it does not refuse are forwarded as they came, consecutive ones as one slice. A
//! refused command never reaches the server: the client gets an ERR packet in its place
//! (sequence id 1 past the command's last packet, so the session stays usable), queued
//! behind the responses still owed for commands pipelined before it. A delayed command is
//! held in the read buffer with everything the client sent after it.
//!
//! Failure mode: fails open when the listener has no rules (observe-only: an undecodable
//! packet is counted and the connection continues as a plain byte stream), and closed
//! otherwise (the connection closes), since a filter that cannot read the stream cannot
//! enforce anything on it. For the same reason an enforcing listener hides `CLIENT_SSL`
//! and the compression capabilities from the server's greeting, so a client cannot turn
//! the stream opaque; an observing one counts such sessions and forwards them untouched.
//!
//! TLS termination (listeners with `tls`): the greeting offers `CLIENT_SSL` whatever the
//! server says, and the client's SSLRequest (MySQL "Protocol::SSLRequest") is not forwarded:
//! the filter asks the driver to start TLS on the client's socket
//! ([`FilterStatus::StartDownstreamTls`]) and then sees the decrypted login. The server's
//! connection stays plain and never saw an SSLRequest, so through the rest of the
//! connection phase (up to the OK or ERR that ends authentication, AuthSwitch and
//! AuthMoreData rounds included) the two sides number their packets one apart: client
//! packets go upstream with their sequence id one lower, server packets go downstream one
//! higher, each as a copy with that byte changed, and the login goes without `CLIENT_SSL`.
//! The session is fed the client's numbering (the server's packets after the shift), which
//! is the numbering of a plain SSLRequest-then-login exchange it already knows.
//!
//! TLS origination (clusters with `tls`): when the client's login arrives, the filter first
//! sends the server an SSLRequest of its own (the login's fixed part with `CLIENT_SSL`,
//! sequence 1) and asks the driver to start the cluster's TLS session on the server's
//! socket ([`FilterStatus::StartUpstreamTls`]); the login then follows inside it with
//! sequence 2 and `CLIENT_SSL` set, and the server's packets go to the client one lower
//! until authentication ends. With TLS terminated on the client's side too, the two
//! shifts cancel out. A greeting without `CLIENT_SSL` gets the client an ERR (1043) and a
//! close instead of a login in the clear, and the greeting the client sees offers
//! `CLIENT_SSL` only when the listener terminates TLS itself.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use sluice_codecs::mysql::{
    edit_greeting_capabilities, edit_login_capabilities, encode_err, peek, ssl_request_for, Capabilities, Command,
    CommandKind, Event, Login, MysqlError, Opaque, Outcome as Completion, PacketHeader, Session, State, HEADER_LEN,
    MAX_PACKET_PAYLOAD,
};

use super::prepared::Prepared;
use super::stats::OpName;
use super::MysqlListener;
use crate::filter::{CloseReason, FilterStatus};
use crate::op::{Op, Outcome, Protocol};
use crate::policy::Verdict;
use crate::query_log::QueryRecord;
use crate::sql::stats::ConnectionTables;
use crate::sql::{lossy, StatementInfo, Verb};
use crate::stream::{drop_frame, take, take_frame, StreamFilter, StreamIo};

/// ER_SPECIFIC_ACCESS_DENIED_ERROR: what a client shows for a statement it may not run.
const DENIED: (u16, &[u8; 5]) = (1227, b"42000");
/// ER_HANDSHAKE_ERROR: the connection could not be set up as configured.
const HANDSHAKE_ERROR: (u16, &[u8; 5]) = (1043, b"08S01");
/// ER_USER_LIMIT_REACHED: a resource limit, what MySQL itself answers past
/// `MAX_QUERIES_PER_HOUR`.
const LIMITED: (u16, &[u8; 5]) = (1226, b"42000");
/// Capabilities an enforcing listener removes from the greeting (see the module doc); a
/// listener that terminates TLS offers CLIENT_SSL instead of hiding it.
const COMPRESSION: Capabilities = Capabilities::CLIENT_COMPRESS.union(Capabilities::CLIENT_ZSTD_COMPRESSION_ALGORITHM);

/// A command whose response is owed to the client, in order.
enum Owed {
    /// Forwarded; the server answers it.
    Upstream(InFlight),
    /// Refused: this ERR packet goes to the client when its turn comes.
    Local(Bytes),
}

struct InFlight {
    op: OpName,
    kind: CommandKind,
    statement: Option<Arc<StatementInfo>>,
    sent: Instant,
    /// What the session becomes if the command succeeds.
    switch: Option<Switch>,
}

/// A change of session identity a command makes when it succeeds.
enum Switch {
    /// COM_INIT_DB or `USE`.
    Database(Box<str>),
    /// COM_CHANGE_USER.
    User { user: Box<str>, database: Option<Box<str>> },
}

/// A refused command whose continuation packets are still arriving: they are dropped, and
/// the ERR goes out after the last one.
struct Refusal {
    /// Commands that get no response (COM_STMT_CLOSE, …) are dropped without an ERR.
    answered: bool,
    code: u16,
    sqlstate: &'static [u8; 5],
    message: String,
}

pub struct MysqlFilter {
    listener: Arc<MysqlListener>,
    client: IpAddr,
    session: Session,
    owed: VecDeque<Owed>,
    prepared: Prepared,
    user: Option<Box<str>>,
    database: Option<Box<str>>,
    /// A delayed command waits at the front of the client's buffer until then.
    hold: Option<Instant>,
    refusing_chain: Option<Refusal>,
    /// Forward everything unchanged from now on (opaque stream, or an undecodable one).
    passthrough: bool,
    /// Until authentication ends, what is added to a client packet's sequence id on its
    /// way to the server (and taken from a server packet's on its way to the client): -1
    /// when TLS was terminated here, +1 when sluice asked the server for TLS itself, 0
    /// for both or neither (see the module doc).
    seq_shift: i8,
    /// The SSLRequest that starts the cluster's TLS has gone to the server.
    upstream_tls_requested: bool,
    scratch: String,
    rng: fastrand::Rng,
    tables: ConnectionTables,
}

enum Decision {
    Forward(Option<InFlight>),
    Refuse(Refusal),
    Hold(Instant),
}

impl MysqlFilter {
    pub fn new(listener: Arc<MysqlListener>, client: IpAddr) -> Self {
        MysqlFilter {
            session: Session::new(listener.limits),
            listener,
            client,
            owed: VecDeque::new(),
            prepared: Prepared::default(),
            user: None,
            database: None,
            hold: None,
            refusing_chain: None,
            passthrough: false,
            seq_shift: 0,
            upstream_tls_requested: false,
            scratch: String::new(),
            rng: fastrand::Rng::new(),
            tables: ConnectionTables::default(),
        }
    }

    /// Responses the client is still owed (forwarded commands and queued refusals).
    pub fn responses_owed(&self) -> usize {
        self.owed.len()
    }

    /// Where the connection is in the protocol.
    pub fn state(&self) -> State {
        self.session.state()
    }

    /// Decides about one command.
    fn decide(&mut self, command: &Command<'_>, now: Instant) -> Decision {
        // A field borrow, disjoint from the scratch buffer and the prepared statements.
        let listener: &MysqlListener = &self.listener;
        let kind = command.kind();
        let mut schema: Option<Box<str>> = None;
        let mut switch = None;
        let statement = match *command {
            Command::Query { sql, .. } => Some(listener.statements.classify(sql, &mut self.scratch)),
            Command::StmtPrepare { sql } => {
                let statement = listener.statements.classify(sql, &mut self.scratch);
                self.prepared.preparing(&statement);
                Some(statement)
            }
            Command::StmtExecute { statement_id, .. } | Command::StmtBulkExecute { statement_id, .. } => {
                self.prepared.get(statement_id).cloned()
            }
            Command::InitDb { schema: name } => {
                schema = Some(String::from_utf8_lossy(name).into());
                None
            }
            Command::ChangeUser { user, database, .. } => {
                switch = Some(Switch::User { user: lossy(user), database: database.map(lossy) });
                None
            }
            _ => None,
        };
        if let Some(statement) = &statement {
            if statement.parse_fallback && kind != CommandKind::StmtExecute {
                listener.stats.parse_fallbacks.increment(1);
            }
            if statement.verb == Verb::Use && kind == CommandKind::Query {
                schema = use_target(statement);
            }
        }
        let op = match (&statement, kind) {
            // A PREPARE runs nothing: it is counted (and matched) as the command.
            (Some(statement), CommandKind::Query | CommandKind::StmtExecute | CommandKind::StmtBulkExecute) => {
                OpName::Verb(statement.verb)
            }
            _ => OpName::Command(kind),
        };
        let matched_statement = statement.as_deref().filter(|_| matches!(op, OpName::Verb(_)));
        let verdict = if listener.rules.is_empty() {
            Verdict::Allow
        } else {
            listener.rules.evaluate(&Op {
                protocol: Protocol::Mysql,
                listener: &listener.name,
                op: op.as_str(),
                target: matched_statement.and_then(|s| s.tables.first()).map(|t| t.as_bytes()),
                user: self.user.as_deref(),
                database: schema.as_deref().filter(|_| kind == CommandKind::InitDb).or(self.database.as_deref()),
                statement: matched_statement,
                client_id: None,
                client: self.client,
            })
        };
        let refusal = |outcome: Outcome, rule: usize| {
            listener.stats.op(op).record(outcome, None);
            let ((code, sqlstate), what) =
                if outcome == Outcome::Denied { (DENIED, "denied") } else { (LIMITED, "rate limited") };
            let message = format!("sluice: {} {what} by policy (rule {rule})", op.as_str());
            Refusal { answered: kind.has_response(), code, sqlstate, message }
        };
        match verdict {
            Verdict::Allow => {
                let switch = switch.or(schema.map(Switch::Database));
                let in_flight = kind.has_response().then_some(InFlight { op, kind, statement, sent: now, switch });
                if !kind.has_response() {
                    listener.stats.op(op).record(Outcome::Ok, None);
                    if let Command::StmtClose { statement_id } = *command {
                        self.prepared.close(statement_id);
                    }
                }
                Decision::Forward(in_flight)
            }
            Verdict::Deny { rule } => Decision::Refuse(refusal(Outcome::Denied, rule)),
            Verdict::Limited { rule } => Decision::Refuse(refusal(Outcome::Limited, rule)),
            Verdict::Delay { wait, .. } => Decision::Hold(now + wait),
        }
    }

    /// A packet of a refused command was dropped: wait for the rest of its continuation
    /// chain, or answer after its last packet (`seq`).
    fn refused_packet(&mut self, refusal: Refusal, continued: bool, seq: u8, io: &mut StreamIo<'_>) {
        match continued {
            true => self.refusing_chain = Some(refusal),
            false => self.refuse(&refusal, seq.wrapping_add(1), io),
        }
    }

    /// Queues a refusal's ERR packet (sequence id `seq`) in the client's response order.
    fn refuse(&mut self, refusal: &Refusal, seq: u8, io: &mut StreamIo<'_>) {
        if !refusal.answered {
            return;
        }
        let mut packet = BytesMut::new();
        encode_err(&mut packet, seq, refusal.code, Some(refusal.sqlstate), refusal.message.as_bytes());
        let packet = packet.freeze();
        if self.owed.is_empty() {
            io.to_downstream.push(packet);
        } else {
            self.owed.push_back(Owed::Local(packet));
        }
    }

    /// A decode error: counted; observe-only listeners forward the rest unchanged,
    /// enforcing ones close the connection.
    fn decode_error(
        &mut self,
        from_client: bool,
        input: &mut BytesMut,
        run: usize,
        io: &mut StreamIo<'_>,
    ) -> FilterStatus {
        let stats = &self.listener.stats;
        if from_client { &stats.client_decode_errors } else { &stats.server_decode_errors }.increment(1);
        tracing::debug!(listener = %self.listener.name, client = %self.client, from_client, "undecodable MySQL packet");
        let to = if from_client { &mut *io.to_upstream } else { &mut *io.to_downstream };
        to.push(take(input, run));
        if self.listener.enforces() {
            input.clear();
            return FilterStatus::Close(CloseReason::ProtocolError);
        }
        self.passthrough = true;
        to.push(take(input, input.len()));
        FilterStatus::Continue
    }

    /// Once the stream turned opaque (TLS, compression), everything passes as it is.
    fn went_opaque(&mut self) {
        self.passthrough = true;
        match self.session.opaque() {
            Some(Opaque::Tls) => self.listener.stats.tls_sessions.increment(1),
            Some(Opaque::Compression) => self.listener.stats.compressed_sessions.increment(1),
            None => {}
        }
    }

    fn downstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        if self.passthrough {
            io.to_upstream.push(take(input, input.len()));
            return FilterStatus::Continue;
        }
        if let Some(until) = self.hold {
            if io.now < until {
                return FilterStatus::Continue;
            }
            self.hold = None;
        }
        // Bytes at the front of `input` decided to go upstream unchanged.
        let mut run = 0;
        loop {
            let n = match peek(&input[run..], &self.listener.limits) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(_) => return self.decode_error(true, input, run, io),
            };
            let Some(header) = PacketHeader::parse(&input[run..]) else { break };
            let continued = header.payload_len == MAX_PACKET_PAYLOAD;
            if let Some(refusal) = self.refusing_chain.take() {
                // A continuation of a refused command: dropped.
                drop_frame(input, &mut run, n, io.to_upstream);
                self.refused_packet(refusal, continued, header.seq, io);
                continue;
            }
            let mut in_flight = None;
            if self.session.starts_command(header.seq) {
                let parsed = Command::parse(&input[run + HEADER_LEN..run + n], self.session.capabilities());
                // An unparsable command is left to the session, which reports it.
                if let Ok(command) = parsed {
                    match self.decide(&command, io.now) {
                        Decision::Forward(owed) => in_flight = owed,
                        Decision::Hold(until) => {
                            self.hold = Some(until);
                            break;
                        }
                        Decision::Refuse(refusal) => {
                            drop_frame(input, &mut run, n, io.to_upstream);
                            self.refused_packet(refusal, continued, header.seq, io);
                            continue;
                        }
                    }
                }
            }
            let login = self.session.state() == State::AwaitLogin;
            if login
                && self.listener.originates_tls
                && !self.upstream_tls_requested
                && !is_ssl_request(&input[run..run + n])
            {
                // Ask the server for TLS first; the login stays in `input` and goes through
                // the session the driver starts, offered to this filter again.
                let Some(request) = ssl_request_for(&input[run..run + n]) else {
                    return self.decode_error(true, input, run, io);
                };
                io.to_upstream.push(take(input, run));
                io.to_upstream.push(Bytes::copy_from_slice(&request));
                self.upstream_tls_requested = true;
                self.seq_shift += 1;
                return FilterStatus::StartUpstreamTls;
            }
            let events = match self.session.client(&input[run..run + n]) {
                Ok(events) => events,
                Err(MysqlError::Opaque(_)) => {
                    self.went_opaque();
                    run = input.len();
                    break;
                }
                Err(_) => return self.decode_error(true, input, run, io),
            };
            for event in events {
                match event {
                    Event::Login { user, database, tls_requested, .. } => {
                        self.user = Some(lossy(user));
                        self.database = database.map(lossy);
                        if tls_requested {
                            self.listener.stats.tls_terminated_sessions.increment(1);
                        }
                    }
                    Event::CommandStarted { command, .. } if command.kind().has_response() => {
                        // Commands `decide` did not see (not parsable there) are counted
                        // by their kind, so responses still meet the right command.
                        let kind = command.kind();
                        let in_flight = in_flight.take().unwrap_or(InFlight {
                            op: OpName::Command(kind),
                            kind,
                            statement: None,
                            sent: io.now,
                            switch: None,
                        });
                        self.owed.push_back(Owed::Upstream(in_flight));
                    }
                    _ => {}
                }
            }
            if self.listener.terminates_tls && self.session.opaque() == Some(Opaque::Tls) {
                // The SSLRequest is answered here; what follows it in `input` is the
                // client's TLS handshake, for the driver.
                drop_frame(input, &mut run, n, io.to_upstream);
                self.session.resume_after_tls();
                self.seq_shift -= 1;
                return FilterStatus::StartDownstreamTls;
            }
            let claims_tls = login && (self.listener.terminates_tls || self.listener.originates_tls);
            if self.seq_shift != 0 || claims_tls {
                let mut packet = take_frame(input, &mut run, n, io.to_upstream);
                packet[HEADER_LEN - 1] = packet[HEADER_LEN - 1].wrapping_add_signed(self.seq_shift);
                if claims_tls {
                    // The login says TLS exactly when the server's connection is TLS.
                    let (clear, set) = match self.listener.originates_tls {
                        true => (Capabilities::default(), Capabilities::CLIENT_SSL),
                        false => (Capabilities::CLIENT_SSL, Capabilities::default()),
                    };
                    edit_login_capabilities(&mut packet, clear, set);
                }
                io.to_upstream.push(packet.freeze());
                continue;
            }
            run += n;
            if self.session.opaque().is_some() {
                // The SSLRequest went as a packet; what follows it is TLS.
                self.went_opaque();
                run = input.len();
                break;
            }
        }
        io.to_upstream.push(take(input, run));
        if eof && self.hold.is_none() && !input.is_empty() {
            // An incomplete packet at the end of the stream: pass it on as it is.
            io.to_upstream.push(take(input, input.len()));
        }
        FilterStatus::Continue
    }

    fn upstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        if self.passthrough {
            io.to_downstream.push(take(input, input.len()));
            return FilterStatus::Continue;
        }
        let mut run = 0;
        loop {
            // Rows of a result set: counted in one pass, forwarded with what precedes them.
            run += self.session.skip_rows(&input[run..]);
            let n = match peek(&input[run..], &self.listener.limits) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(_) => return self.decode_error(false, input, run, io),
            };
            // A greeting, not an ERR in its place ("Too many connections").
            let greeting = self.session.state() == State::AwaitGreeting && input.get(run + HEADER_LEN) == Some(&10);
            // While the two sides number the login differently, the server's packets are
            // renumbered first: the session follows the client's numbering.
            let shifted = if self.seq_shift != 0 {
                let mut packet = take_frame(input, &mut run, n, io.to_downstream);
                packet[HEADER_LEN - 1] = packet[HEADER_LEN - 1].wrapping_add_signed(-self.seq_shift);
                Some(packet.freeze())
            } else {
                None
            };
            let packet = match &shifted {
                Some(packet) => &packet[..],
                None => &input[run..run + n],
            };
            let events = match self.session.server(packet) {
                Ok(events) => events,
                Err(MysqlError::Opaque(_)) => {
                    self.went_opaque();
                    run = input.len();
                    break;
                }
                Err(_) => return self.decode_error(false, input, run, io),
            };
            let mut finished = false;
            for event in events {
                match event {
                    Event::AuthResult(Ok(())) => self.listener.stats.logins_ok.increment(1),
                    Event::AuthResult(Err(error)) => {
                        self.listener.stats.logins_failed.increment(1);
                        self.listener.stats.error(error.code);
                    }
                    Event::PrepareOk(ok) => {
                        if let Some(Owed::Upstream(InFlight { statement: Some(statement), .. })) = self.owed.front() {
                            self.prepared.prepared(ok.statement_id, Arc::clone(statement));
                        }
                    }
                    Event::CommandFinished { outcome, rows, result_sets, .. } => {
                        self.finish(outcome, rows, result_sets, io.now);
                        finished = true;
                    }
                    Event::Unsolicited(error) => self.listener.stats.error(error.code),
                    _ => {}
                }
            }
            if greeting
                && self.listener.originates_tls
                && !self.session.server_capabilities().contains(Capabilities::CLIENT_SSL)
            {
                return self.server_without_tls(io);
            }
            if let Some(packet) = shifted {
                io.to_downstream.push(packet);
                if !matches!(self.session.state(), State::AwaitLogin | State::Authenticating) {
                    // The OK (or ERR) that ends the connection phase: commands number
                    // their packets from 0 on both sides.
                    self.seq_shift = 0;
                }
                continue;
            }
            if let (true, Some(caps)) = (greeting, self.greeting_capabilities()) {
                // Forward the greeting without the capabilities that would blind the
                // filter, and with CLIENT_SSL when TLS is answered here.
                let mut packet = take_frame(input, &mut run, n, io.to_downstream);
                edit_greeting_capabilities(&mut packet, caps.clear, caps.set);
                io.to_downstream.push(packet.freeze());
                continue;
            }
            run += n;
            if finished {
                self.release_local_replies(input, &mut run, io);
            }
        }
        io.to_downstream.push(take(input, run));
        if eof && !input.is_empty() {
            io.to_downstream.push(take(input, input.len()));
        }
        FilterStatus::Continue
    }

    /// How the greeting's capabilities change on their way to the client, if they do.
    fn greeting_capabilities(&self) -> Option<CapabilityEdit> {
        let enforces = self.listener.enforces();
        match (enforces, self.listener.terminates_tls) {
            // The client's own TLS cannot ride inside the server's.
            (false, false) if self.listener.originates_tls => {
                Some(CapabilityEdit { clear: Capabilities::CLIENT_SSL, set: Capabilities::default() })
            }
            (false, false) => None,
            (true, false) => Some(CapabilityEdit {
                clear: COMPRESSION.union(Capabilities::CLIENT_SSL),
                set: Capabilities::default(),
            }),
            (enforces, true) => Some(CapabilityEdit {
                clear: if enforces { COMPRESSION } else { Capabilities::default() },
                set: Capabilities::CLIENT_SSL,
            }),
        }
    }

    /// The cluster originates TLS but the server's greeting does not offer it: the client
    /// gets an ERR in the greeting's place (as for "Too many connections") and the
    /// connection closes, rather than logging in in the clear.
    fn server_without_tls(&mut self, io: &mut StreamIo<'_>) -> FilterStatus {
        tracing::warn!(listener = %self.listener.name, "the MySQL server does not offer TLS (no CLIENT_SSL in its greeting)");
        let mut packet = BytesMut::new();
        encode_err(
            &mut packet,
            0,
            HANDSHAKE_ERROR.0,
            Some(HANDSHAKE_ERROR.1),
            b"sluice: the server does not offer TLS",
        );
        io.to_downstream.push(packet.freeze());
        FilterStatus::Close(CloseReason::UpstreamTlsError)
    }

    /// Counts the command at the head of the queue, which the server has answered.
    fn finish(&mut self, outcome: Completion<'_>, rows: u64, result_sets: u32, now: Instant) {
        let Some(Owed::Upstream(mut done)) = self.owed.pop_front() else {
            return;
        };
        let stats = &self.listener.stats;
        let elapsed = now.saturating_duration_since(done.sent);
        let (result, error) = match outcome {
            Completion::Ok(summary) => {
                if result_sets == 0 {
                    stats.rows_affected.record(summary.affected_rows);
                }
                (Outcome::Ok, None)
            }
            Completion::Err(error) => {
                stats.error(error.code);
                (Outcome::Error, Some((error.code, error.sqlstate.unwrap_or(*b"HY000"))))
            }
            Completion::NoResponse | Completion::Unrecognized { .. } => (Outcome::Ok, None),
        };
        if result_sets > 0 {
            stats.rows_returned.record(rows);
        }
        stats.op(done.op).record(result, Some(elapsed));
        if let (OpName::Verb(_), Some(statement)) = (done.op, &done.statement) {
            self.tables.count(&stats.tables, statement, done.op.as_str());
            // Rows returned by a query, rows affected by a write.
            let rows = match (result_sets, outcome) {
                (0, Completion::Ok(summary)) => summary.affected_rows,
                _ => rows,
            };
            self.listener.digests.record(statement, elapsed, rows, error.is_some());
        }
        if result == Outcome::Ok {
            if matches!(done.kind, CommandKind::ResetConnection | CommandKind::ChangeUser) {
                self.prepared.clear();
            }
            match done.switch.take() {
                Some(Switch::Database(name)) => self.database = Some(name),
                Some(Switch::User { user, database }) => {
                    self.user = Some(user);
                    self.database = database;
                }
                None => {}
            }
        }
        if let Some(log) = &self.listener.query_log {
            if log.sampled(self.rng.f64()) {
                let sqlstate = error.map(|(_, state)| state);
                let sqlstate = sqlstate.as_ref().map(|s| std::str::from_utf8(s).unwrap_or("HY000"));
                log.sink.write(&QueryRecord {
                    listener: &self.listener.name,
                    protocol: Protocol::Mysql,
                    client: self.client,
                    user: self.user.as_deref(),
                    database: self.database.as_deref(),
                    op: done.op.as_str(),
                    digest: done.statement.as_deref().map(|s| (&*s.digest_text, s.digest_hash)),
                    tables: done.statement.as_deref().map_or(&[], |s| &s.tables),
                    duration: elapsed,
                    rows,
                    outcome: result,
                    error: error.map(|(code, _)| Some(code)).zip(sqlstate),
                });
            }
        }
    }

    /// Sends the refusals that have reached the head of the queue.
    fn release_local_replies(&mut self, input: &mut BytesMut, run: &mut usize, io: &mut StreamIo<'_>) {
        while let Some(Owed::Local(_)) = self.owed.front() {
            io.to_downstream.push(take(input, *run));
            *run = 0;
            if let Some(Owed::Local(packet)) = self.owed.pop_front() {
                io.to_downstream.push(packet);
            }
        }
    }
}

impl StreamFilter for MysqlFilter {
    fn on_downstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        self.downstream(input, eof, io)
    }

    fn on_upstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        self.upstream(input, eof, io)
    }

    fn wake_at(&self) -> Option<Instant> {
        self.hold
    }
}

/// The database a `USE db` statement switches to.
fn use_target(statement: &StatementInfo) -> Option<Box<str>> {
    let name = statement.digest_text.split_whitespace().nth(1)?;
    let name = name.trim_end_matches(';').trim_matches('`');
    (!name.is_empty()).then(|| name.into())
}

/// Capabilities to clear and set in the greeting on its way to the client.
#[derive(Clone, Copy)]
struct CapabilityEdit {
    clear: Capabilities,
    set: Capabilities,
}

/// Whether a client login packet is an SSLRequest (its fixed part alone, with CLIENT_SSL).
fn is_ssl_request(packet: &[u8]) -> bool {
    matches!(Login::parse(&packet[HEADER_LEN..]), Ok(Login::SslRequest { .. }))
}
