//! The `postgres` protocol filter: follows a connection message by message with the
//! codec's [`Session`], turns every statement into an [`Op`] (`op` = the SQL verb, `target`
//! = the tables touched, `user` and `database` from the StartupMessage), applies the
//! listener's rules, and counts and times each statement from the read that carried it to
//! the read that carried the message ending it (CommandComplete, EmptyQueryResponse,
//! PortalSuspended or ErrorResponse).
//!
//! What a statement is (protocol §55.2.2 "Simple Query", §55.2.3 "Extended Query"): each
//! statement of a simple Query string (split on its top-level `;`), each Execute of the
//! extended protocol (attributed to the SQL its portal was bound from; Parse, Bind and
//! Describe run nothing and are not ops), and a FunctionCall. Statements of one Query end
//! one after the other, so each is timed from the end of the one before it.
//!
//! Messages it does not refuse are forwarded as they came, consecutive ones as one slice.
//! A refused statement never reaches the server, and the client gets what the server
//! would have answered had the statement failed, where the server would have answered:
//! - a refused Query (or FunctionCall) is dropped and answered with an ErrorResponse and a
//!   ReadyForQuery carrying the transaction status the server last reported (the server's
//!   transaction is untouched, so that status is still true);
//! - a refused Execute is dropped, answered with an ErrorResponse, and — as the server does
//!   after an error in the extended protocol — every message the client sends after it up
//!   to its Sync is dropped too, but the Sync itself goes on, so the ReadyForQuery that ends
//!   the batch is the server's own. If the server reports an error earlier in that batch
//!   (a failing Parse), the client must not see a second one, and ours is left out.
//!
//! Each local reply is placed with the session's request counters: one made when `n`
//! requests had been sent goes out right after the server has answered the `n`-th, never
//! ahead of answers owed for earlier requests. A delayed statement is held in the read
//! buffer with everything the client sent after it.
//!
//! Encryption (protocol §55.2.10 "SSL Session Encryption"): a listener with `tls` answers
//! SSLRequest `S` itself and asks the driver to terminate TLS on the client's socket
//! ([`FilterStatus::StartDownstreamTls`]); the decrypted stream starts over with the
//! StartupMessage. The server's connection is plain, or TLS when the cluster originates
//! it (the driver asked the server with its own SSLRequest before the first byte); then a
//! plain client's SASL offer loses its channel-binding mechanisms, which cannot span two
//! TLS sessions (see `sasl_without_channel_binding`). A listener that enforces rules, is
//! told to refuse encryption, or whose cluster originates TLS answers SSLRequest and
//! GSSENCRequest `N` itself, so no session can turn opaque; an observing one forwards
//! them, and counts and forwards opaque the sessions the server accepts.
//!
//! Failure mode: fails open when the listener has no rules (an undecodable message is
//! counted and the connection continues as a plain byte stream), and closed otherwise,
//! since a filter that cannot read the stream cannot enforce anything on it: the client
//! gets a FATAL ErrorResponse (SQLSTATE 08P01, protocol violation) and the connection
//! closes.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use sluice_codecs::postgres::Session;
use sluice_codecs::postgres::{
    encode_error, encode_ready_for_query, encryption_answer, peek, sasl_without_channel_binding, typed_body,
    CopyDirection, Direction, Event, Frontend, Outcome as Completion, PgError, Phase, Severity, StartupPacket, State,
    TxStatus,
};

use super::stats::{OpName, PostgresStats};
use super::PostgresListener;
use crate::filter::{CloseReason, FilterStatus};
use crate::op::{Op, Outcome, Protocol};
use crate::policy::Verdict;
use crate::query_log::QueryRecord;
use crate::sql::stats::ConnectionTables;
use crate::sql::{is_blank, lossy, split_statements, Dialect, SharedStatementCache, StatementInfo, Verb};
use crate::stream::{drop_frame, take, StreamFilter, StreamIo};

/// insufficient_privilege: what the server itself answers for a statement the role may not run.
const DENIED: &[u8; 5] = b"42501";
/// configuration_limit_exceeded: a limit of the deployment, not of the statement.
const LIMITED: &[u8; 5] = b"53400";
/// program_limit_exceeded: a Query with more statements than an enforcing filter examines.
const TOO_COMPLEX: &[u8; 5] = b"54000";
/// protocol_violation: the FATAL error before an enforcing filter closes an unreadable stream.
const PROTOCOL_VIOLATION: &[u8; 5] = b"08P01";

/// The most statements of one simple Query that are followed one by one. An observing
/// listener counts the first ones only; an enforcing one refuses a longer Query, whose
/// remaining statements it could not check.
pub const MAX_STATEMENTS_PER_QUERY: usize = 1000;

/// A statement forwarded to the server and not finished yet.
struct InFlight {
    /// The index of the request (Query, Execute, FunctionCall) it belongs to, in the
    /// session's count of requests sent.
    request: u64,
    op: OpName,
    statement: Option<Arc<StatementInfo>>,
    /// When it started: when its request was read, or when the statement before it in the
    /// same Query finished.
    started: Instant,
}

/// A reply made here, owed to the client once the server has answered `after` requests.
struct LocalReply {
    after: u64,
    error: Bytes,
    /// Which request it stands for.
    kind: Refused,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// A simple Query or FunctionCall: the ErrorResponse is followed by a ReadyForQuery.
    Query,
    /// An Execute: only the ErrorResponse; the batch's Sync brings the ReadyForQuery.
    Execute,
}

enum Decision {
    Forward,
    Refuse(LocalReply),
    Hold(Instant),
}

pub struct PostgresFilter {
    listener: Arc<PostgresListener>,
    client: IpAddr,
    session: Session,
    in_flight: VecDeque<InFlight>,
    local: VecDeque<LocalReply>,
    user: Option<Box<str>>,
    database: Option<Box<str>>,
    /// A delayed statement waits at the front of the client's buffer until then.
    hold: Option<Instant>,
    /// An Execute was refused: client messages are dropped up to its batch's Sync.
    discarding: bool,
    /// The server reported an error in the current extended-protocol batch (since the last
    /// ReadyForQuery).
    batch_failed: bool,
    /// Inside an explicit transaction block: from a BEGIN's tag or a ReadyForQuery status
    /// `T` or `E`, to the COMMIT or ROLLBACK tag that ends it (counted then, also when
    /// BEGIN and COMMIT are statements of one Query, whose ReadyForQuery only comes after).
    in_transaction: bool,
    /// The COPY in progress sends rows to the client.
    copy_out: bool,
    /// Forward everything unchanged from now on (encrypted, or undecodable).
    passthrough: bool,
    /// The client's hop is TLS that sluice terminates.
    client_tls: bool,
    scratch: String,
    rng: fastrand::Rng,
    tables: ConnectionTables,
    prepared: PreparedStatements,
}

impl PostgresFilter {
    pub fn new(listener: Arc<PostgresListener>, client: IpAddr) -> Self {
        PostgresFilter {
            session: Session::new(listener.limits),
            listener,
            client,
            in_flight: VecDeque::new(),
            local: VecDeque::new(),
            user: None,
            database: None,
            hold: None,
            discarding: false,
            batch_failed: false,
            in_transaction: false,
            copy_out: false,
            passthrough: false,
            client_tls: false,
            scratch: String::new(),
            rng: fastrand::Rng::new(),
            tables: ConnectionTables::default(),
            prepared: PreparedStatements::default(),
        }
    }

    /// Where the connection is in the protocol.
    pub fn state(&self) -> State {
        self.session.state()
    }

    /// Statements forwarded and not finished yet.
    pub fn statements_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Decides about one Query, Execute or FunctionCall message.
    fn decide(&mut self, msg: &[u8], now: Instant) -> Decision {
        // An unparsable message is left to the session, which reports it.
        let Ok(message) = typed_body(msg).and_then(|(tag, body)| Frontend::parse(tag, body)) else {
            return Decision::Forward;
        };
        let listener: &PostgresListener = &self.listener;
        let request = self.session.requests_sent();
        let first = self.in_flight.len();
        let mut push = |op: OpName, statement: Option<Arc<StatementInfo>>| {
            if let Some(statement) = &statement {
                if statement.parse_fallback {
                    listener.stats.parse_fallbacks.increment(1);
                }
            }
            self.in_flight.push_back(InFlight { request, op, statement, started: now });
        };
        let kind = match message {
            Frontend::Query { sql } => {
                let whole = listener.statements.classify(sql, &mut self.scratch);
                if !whole.flags.multiple_statements {
                    if !whole.digest_text.is_empty() {
                        push(OpName::Verb(whole.verb), Some(whole));
                    }
                } else {
                    let mut pieces = split_statements(sql, Dialect::Postgres)
                        .map(|range| &sql[range])
                        .filter(|piece| !is_blank(piece, Dialect::Postgres));
                    for piece in pieces.by_ref().take(MAX_STATEMENTS_PER_QUERY) {
                        let statement = listener.statements.classify(piece, &mut self.scratch);
                        push(OpName::Verb(statement.verb), Some(statement));
                    }
                    if listener.enforces() && pieces.next().is_some() {
                        self.in_flight.truncate(first);
                        let message = format!("sluice: more than {MAX_STATEMENTS_PER_QUERY} statements in one query");
                        return Decision::Refuse(self.local_reply(Refused::Query, TOO_COMPLEX, &message));
                    }
                }
                Refused::Query
            }
            Frontend::Execute { portal, .. } => {
                let statement = self
                    .session
                    .portal_sql(portal)
                    .map(|sql| self.prepared.classify(sql, &listener.statements, &mut self.scratch));
                push(OpName::Verb(statement.as_ref().map_or(Verb::Other, |s| s.verb)), statement);
                Refused::Execute
            }
            Frontend::FunctionCall { .. } => {
                push(OpName::FunctionCall, None);
                Refused::Query
            }
            _ => return Decision::Forward,
        };
        if listener.rules.is_empty() {
            return Decision::Forward;
        }
        for statement in self.in_flight.range(first..) {
            let info = statement.statement.as_deref();
            let verdict = listener.rules.evaluate(&Op {
                protocol: Protocol::Postgres,
                listener: &listener.name,
                op: statement.op.as_str(),
                target: info.and_then(|s| s.tables.first()).map(|t| t.as_bytes()),
                user: self.user.as_deref(),
                database: self.database.as_deref(),
                statement: info,
                client_id: None,
                client: self.client,
            });
            let (outcome, rule) = match verdict {
                Verdict::Allow => continue,
                Verdict::Delay { wait, .. } => {
                    self.in_flight.truncate(first);
                    return Decision::Hold(now + wait);
                }
                Verdict::Deny { rule } => (Outcome::Denied, rule),
                Verdict::Limited { rule } => (Outcome::Limited, rule),
            };
            let op = statement.op;
            listener.stats.op(op).record(outcome, None);
            self.in_flight.truncate(first);
            let (sqlstate, what) =
                if outcome == Outcome::Denied { (DENIED, "denied") } else { (LIMITED, "rate limited") };
            let message = format!("sluice: {} {what} by policy (rule {rule})", op.as_str());
            return Decision::Refuse(self.local_reply(kind, sqlstate, &message));
        }
        Decision::Forward
    }

    fn local_reply(&self, kind: Refused, sqlstate: &[u8; 5], message: &str) -> LocalReply {
        let mut error = BytesMut::new();
        encode_error(&mut error, Severity::Error, sqlstate, message);
        LocalReply { after: self.session.requests_sent(), error: error.freeze(), kind }
    }

    /// Sends the local replies whose turn has come (see the module doc).
    fn release_local_replies(&mut self, io: &mut StreamIo<'_>) {
        while let Some(reply) = self.local.front() {
            if reply.after > self.session.requests_answered() {
                return;
            }
            let Some(reply) = self.local.pop_front() else { return };
            match reply.kind {
                Refused::Query => {
                    io.to_downstream.push(reply.error);
                    let mut ready = BytesMut::with_capacity(6);
                    encode_ready_for_query(&mut ready, self.session.tx_status());
                    io.to_downstream.push(ready.freeze());
                }
                // The server already failed this batch: the client expects one error.
                Refused::Execute if self.batch_failed => {}
                Refused::Execute => {
                    io.to_downstream.push(reply.error);
                    // As if the server had failed the batch: an error later in it (there
                    // is none, the rest was dropped) would not be reported either.
                    self.batch_failed = true;
                }
            }
        }
    }

    /// An SSLRequest or GSSENCRequest from the client: answered here, or forwarded.
    /// Returns `None` to forward it.
    fn encryption_request(&mut self, gss: bool, msg: &[u8]) -> Option<EncryptionStep> {
        let listener = &self.listener;
        let step = if !gss && listener.terminates_tls {
            EncryptionStep::Terminate
        } else if listener.refuse_encryption
            || listener.enforces()
            || listener.terminates_tls
            // A client's own TLS cannot ride inside the TLS sluice originates.
            || listener.originates_tls
        {
            EncryptionStep::Refuse
        } else {
            return None;
        };
        // The session follows the exchange as if the server had answered.
        let answer = encryption_answer(step == EncryptionStep::Terminate);
        let fed = self.session.feed_frontend(msg).and_then(|_| self.session.feed_backend(answer));
        debug_assert!(fed.is_ok(), "an encryption request the session refused: {fed:?}");
        if step == EncryptionStep::Terminate {
            self.client_tls = true;
            self.session.resume_after_tls();
            listener.stats.tls_terminated_sessions.increment(1);
        }
        Some(step)
    }

    /// A decode error: counted; observe-only listeners forward the rest unchanged,
    /// enforcing ones answer a FATAL protocol violation and close the connection.
    fn decode_error(
        &mut self,
        from_client: bool,
        input: &mut BytesMut,
        run: usize,
        io: &mut StreamIo<'_>,
    ) -> FilterStatus {
        let stats = &self.listener.stats;
        if from_client { &stats.client_decode_errors } else { &stats.server_decode_errors }.increment(1);
        tracing::debug!(listener = %self.listener.name, client = %self.client, from_client, "undecodable PostgreSQL message");
        let to = if from_client { &mut *io.to_upstream } else { &mut *io.to_downstream };
        to.push(take(input, run));
        if self.listener.enforces() {
            input.clear();
            if from_client {
                let mut fatal = BytesMut::new();
                encode_error(
                    &mut fatal,
                    Severity::Fatal,
                    PROTOCOL_VIOLATION,
                    "sluice: invalid message from the client",
                );
                io.to_downstream.push(fatal.freeze());
            }
            return FilterStatus::Close(CloseReason::ProtocolError);
        }
        self.passthrough = true;
        to.push(take(input, input.len()));
        FilterStatus::Continue
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
            let phase = self.session.phase(Direction::Frontend);
            let n = match peek(&input[run..], phase, &self.listener.limits) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(_) => return self.decode_error(true, input, run, io),
            };
            let msg = &input[run..run + n];
            if self.discarding {
                // After a refused Execute: what the server would skip is dropped, but the
                // Sync goes on (it brings the ReadyForQuery), and so does a Flush (the
                // client may be waiting for the answers to what came before).
                match msg[0] {
                    b'S' => self.discarding = false,
                    b'H' => {}
                    _ => {
                        drop_frame(input, &mut run, n, io.to_upstream);
                        continue;
                    }
                }
            }
            if phase == Phase::Startup {
                let request = match StartupPacket::parse(msg, &self.listener.limits) {
                    Ok(StartupPacket::SslRequest) => Some(false),
                    Ok(StartupPacket::GssEncRequest) => Some(true),
                    _ => None,
                };
                if let Some(step) = request.and_then(|gss| self.encryption_request(gss, &input[run..run + n])) {
                    drop_frame(input, &mut run, n, io.to_upstream);
                    io.to_downstream.push(Bytes::from_static(encryption_answer(step == EncryptionStep::Terminate)));
                    if step == EncryptionStep::Terminate {
                        // What follows in `input` is the client's TLS handshake, for the driver.
                        return FilterStatus::StartDownstreamTls;
                    }
                    continue;
                }
            } else if matches!(msg[0], b'Q' | b'E' | b'F')
                && self.session.state() == State::Running
                && !self.session.skipping_to_sync()
            {
                match self.decide(&input[run..run + n], io.now) {
                    Decision::Forward => {}
                    Decision::Hold(until) => {
                        self.hold = Some(until);
                        break;
                    }
                    Decision::Refuse(reply) => {
                        drop_frame(input, &mut run, n, io.to_upstream);
                        if self.local.len() >= self.listener.limits.max_pending {
                            // A client that pipelines refusals without reading them.
                            input.clear();
                            return FilterStatus::Close(CloseReason::ProtocolError);
                        }
                        self.discarding = reply.kind == Refused::Execute;
                        self.local.push_back(reply);
                        self.release_local_replies(io);
                        continue;
                    }
                }
            }
            let event = match self.session.feed_frontend(&input[run..run + n]) {
                Ok(event) => event,
                Err(PgError::Opaque) => {
                    self.passthrough = true;
                    run = input.len();
                    break;
                }
                Err(_) => return self.decode_error(true, input, run, io),
            };
            match event {
                Some(Event::Startup { user, database, .. }) => {
                    self.user = user.map(lossy);
                    // The server's default: the database named like the user.
                    self.database = database.or(user).map(lossy);
                }
                Some(Event::CancelRequest { .. }) => self.listener.stats.cancel_requests.increment(1),
                _ => {}
            }
            run += n;
        }
        io.to_upstream.push(take(input, run));
        if eof && self.hold.is_none() && !input.is_empty() {
            // An incomplete message at the end of the stream: pass it on as it is.
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
            let phase = self.session.phase(Direction::Backend);
            let n = match peek(&input[run..], phase, &self.listener.limits) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(_) => return self.decode_error(false, input, run, io),
            };
            // The request this message answers, if it ends a statement.
            let answering = self.session.requests_answered();
            // Channel binding binds the login to the server's TLS session. A plain client
            // must not see it offered (libpq refuses that); a TLS client is left the
            // offer, which succeeds only when the listener presents the server's own
            // certificate (RFC 5929 tls-server-end-point) — taking it out would not help,
            // as SCRAM then sees a downgrade and fails the login anyway.
            let offer = (self.listener.originates_tls
                && !self.client_tls
                && matches!(self.session.state(), State::Authenticating { .. }))
            .then(|| sasl_without_channel_binding(&input[run..run + n]))
            .flatten();
            let event = match self.session.feed_backend(&input[run..run + n]) {
                Ok(event) => event,
                Err(PgError::Opaque) => {
                    self.passthrough = true;
                    run = input.len();
                    break;
                }
                Err(_) => return self.decode_error(false, input, run, io),
            };
            if let Some(offer) = offer {
                // The session has read the server's offer; the client gets it without
                // channel binding.
                drop_frame(input, &mut run, n, io.to_downstream);
                io.to_downstream.push(offer.freeze());
                continue;
            }
            run += n;
            if let Some(event) = event {
                if self.server_event(event, answering, io.now) {
                    // The server accepted encryption: the rest is opaque.
                    self.passthrough = true;
                    run = input.len();
                    break;
                }
            }
            // Statements of requests answered without finishing (the rest of a Query after
            // an error, Executes the server skipped) are not counted: they did not run.
            let answered = self.session.requests_answered();
            while self.in_flight.front().is_some_and(|s| s.request < answered) {
                self.in_flight.pop_front();
            }
            if self.local.front().is_some_and(|r| r.after <= answered) {
                io.to_downstream.push(take(input, run));
                run = 0;
                self.release_local_replies(io);
            }
        }
        io.to_downstream.push(take(input, run));
        if eof && !input.is_empty() {
            io.to_downstream.push(take(input, input.len()));
        }
        FilterStatus::Continue
    }

    /// Accounts for one server event; true when the stream turns opaque.
    fn server_event(&mut self, event: Event<'_>, answering: u64, now: Instant) -> bool {
        let stats = &self.listener.stats;
        match event {
            Event::EncryptionAnswer { gss, accepted: true } => {
                if gss { &stats.gss_sessions } else { &stats.tls_sessions }.increment(1);
                return true;
            }
            Event::AuthResult(Ok(())) => stats.logins_ok.increment(1),
            Event::AuthResult(Err(notice)) => {
                stats.logins_failed.increment(1);
                stats.error(notice.code);
            }
            Event::StatementFinished { outcome, rows, extended } => {
                if extended && matches!(outcome, Completion::Error(_)) {
                    self.batch_failed = true;
                }
                self.finish(answering, outcome, rows, now);
            }
            Event::ExtendedError(notice) => {
                self.batch_failed = true;
                // The server skips the rest of the batch, its Executes included; the first
                // of them is the statement that failed (drivers meet most syntax and name
                // errors at Parse), counted with this error.
                let skipped_to = self.session.requests_answered();
                let failed = self.in_flight.iter().position(|s| s.request >= answering && s.request < skipped_to);
                match failed.and_then(|at| self.in_flight.remove(at)) {
                    Some(done) => self.record(done, Completion::Error(notice), 0, now),
                    None => stats.error(notice.code),
                }
            }
            Event::Unsolicited(notice) => stats.error(notice.code),
            Event::CopyStarted { direction, .. } => self.copy_out = direction == CopyDirection::Out,
            Event::ReadyForQuery(status) => {
                self.batch_failed = false;
                self.in_transaction = status != TxStatus::Idle;
            }
            _ => {}
        }
        false
    }

    /// Counts the statement that just ended; `request` is the request it belongs to.
    fn finish(&mut self, request: u64, outcome: Completion<'_>, data_rows: u64, now: Instant) {
        while self.in_flight.front().is_some_and(|s| s.request < request) {
            self.in_flight.pop_front();
        }
        // An empty query, or more statements than the split found: nothing to count.
        if self.in_flight.front().is_none_or(|s| s.request != request) {
            return;
        }
        let Some(done) = self.in_flight.pop_front() else { return };
        if let Some(next) = self.in_flight.front_mut().filter(|s| s.request == request) {
            next.started = now;
        }
        self.record(done, outcome, data_rows, now);
    }

    /// Counts, times, logs and digests one finished statement.
    fn record(&mut self, done: InFlight, outcome: Completion<'_>, data_rows: u64, now: Instant) {
        let elapsed = now.saturating_duration_since(done.started);
        let copy_out = std::mem::take(&mut self.copy_out);
        let stats = &self.listener.stats;
        let (result, sqlstate, rows) = match outcome {
            Completion::Complete(tag) => {
                let (verb, counted) = tag.split();
                transaction_step(&mut self.in_transaction, stats, verb, done.statement.as_deref());
                let rows = counted.unwrap_or(data_rows);
                let returned = data_rows > 0 || verb == b"SELECT" || verb == b"FETCH" || (verb == b"COPY" && copy_out);
                if returned {
                    stats.rows_returned.record(rows);
                } else if counted.is_some() {
                    stats.rows_affected.record(rows);
                }
                (Outcome::Ok, None, rows)
            }
            Completion::Empty => (Outcome::Ok, None, 0),
            Completion::Suspended => {
                stats.rows_returned.record(data_rows);
                (Outcome::Ok, None, data_rows)
            }
            Completion::Error(notice) => {
                stats.error(notice.code);
                (Outcome::Error, Some(notice.code), data_rows)
            }
        };
        stats.op(done.op).record(result, Some(elapsed));
        if let Some(statement) = &done.statement {
            self.tables.count(&stats.tables, statement, done.op.as_str());
            self.listener.digests.record(statement, elapsed, rows, sqlstate.is_some());
        }
        if let Some(log) = &self.listener.query_log {
            if log.sampled(self.rng.f64()) {
                let sqlstate = sqlstate.map(|s| std::str::from_utf8(s).unwrap_or("XX000"));
                log.sink.write(&QueryRecord {
                    listener: &self.listener.name,
                    protocol: Protocol::Postgres,
                    client: self.client,
                    user: self.user.as_deref(),
                    database: self.database.as_deref(),
                    op: done.op.as_str(),
                    digest: done.statement.as_deref().map(|s| (&*s.digest_text, s.digest_hash)),
                    tables: done.statement.as_deref().map_or(&[], |s| &s.tables),
                    duration: elapsed,
                    rows,
                    outcome: result,
                    error: sqlstate.map(|state| (None, state)),
                });
            }
        }
    }
}

/// The statements this connection executed last, by the session's `Arc` of their SQL: an
/// Execute of a statement prepared once (and bound again and again) finds its
/// classification by pointer, without normalizing the SQL again.
#[derive(Default)]
struct PreparedStatements {
    kept: Vec<(Arc<[u8]>, Arc<StatementInfo>)>,
    /// The slot the next new statement takes once all are used.
    next: usize,
}

/// Prepared statements a connection keeps at hand.
const PREPARED_KEPT: usize = 32;

impl PreparedStatements {
    fn classify(&mut self, sql: &Arc<[u8]>, cache: &SharedStatementCache, scratch: &mut String) -> Arc<StatementInfo> {
        if let Some((_, info)) = self.kept.iter().find(|(kept, _)| Arc::ptr_eq(kept, sql)) {
            return Arc::clone(info);
        }
        let info = cache.classify(sql, scratch);
        let entry = (Arc::clone(sql), Arc::clone(&info));
        if self.kept.len() < PREPARED_KEPT {
            self.kept.push(entry);
        } else {
            self.kept[self.next] = entry;
            self.next = (self.next + 1) % PREPARED_KEPT;
        }
        info
    }
}

/// How sluice answers an encryption request itself.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EncryptionStep {
    /// `S`, then TLS terminated here.
    Terminate,
    /// `N`: the client goes on in the clear (or gives up).
    Refuse,
}

impl StreamFilter for PostgresFilter {
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

/// Follows transaction blocks by the tags of the statements that open and end them.
/// COMMIT of a failed transaction is answered with the tag ROLLBACK, and so is
/// ROLLBACK TO SAVEPOINT, which ends nothing.
fn transaction_step(in_transaction: &mut bool, stats: &PostgresStats, verb: &[u8], statement: Option<&StatementInfo>) {
    match verb {
        b"BEGIN" | b"START TRANSACTION" => *in_transaction = true,
        b"COMMIT" | b"ROLLBACK" if *in_transaction => {
            let to_savepoint = statement.is_some_and(|s| s.digest_text.contains(" TO "));
            if to_savepoint {
                return;
            }
            *in_transaction = false;
            if verb == b"COMMIT" { &stats.commits } else { &stats.rollbacks }.increment(1);
        }
        _ => {}
    }
}
