//! The session state machine: fed every message of both directions in wire order, it
//! knows how the next message of each direction is framed ([`Session::phase`]) and reports
//! [`Event`]s.
//!
//! Spec: <https://www.postgresql.org/docs/current/protocol-flow.html>. Start-up (optional
//! SSLRequest/GSSENCRequest answered 'S' or 'N', StartupMessage, authentication exchange,
//! ParameterStatus/BackendKeyData, ReadyForQuery), then simple Query cycles and the
//! extended protocol. The server answers frontend messages strictly in order, so the
//! session keeps a queue of the messages still awaiting their answers; extended-protocol
//! messages are pipelined freely until a Sync. After an error in the extended protocol the
//! server discards every message until the next Sync, and so does the queue. Named
//! statements and portals are remembered so Bind and Execute can be attributed to SQL.
//!
//! A Parse or Close takes effect on the statement map when the client sends it, so that
//! the Bind pipelined right behind it sees it, and is undone if the server refuses it or
//! skips it after an earlier error: the map follows the server's statements, not the
//! client's wishes (a Parse the server refused must not lend its SQL to a later statement
//! of the same name). Portals live until their transaction ends: a ReadyForQuery saying
//! idle forgets every portal bound before the message it answers.

use std::collections::VecDeque;
use std::sync::Arc;

use super::backend::{Auth, Backend, ServerNotice, TxStatus};
use super::error::PgError;
use super::event::{CopyDirection, Event, Outcome};
use super::frame::{typed_body, Direction, PgLimits, Phase};
use super::frontend::{Frontend, SaslInitialResponse};
use super::names::NameMap;
use super::startup::StartupPacket;

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Waiting for the client's first packet (or its next one after an 'N').
    AwaitStartup,
    /// SSLRequest or GSSENCRequest sent; waiting for the server's single byte.
    EncryptionPending {
        gss: bool,
    },
    /// StartupMessage sent; authentication and start-up until the first ReadyForQuery.
    Authenticating {
        authenticated: bool,
    },
    /// Normal operation.
    Running,
    /// Encrypted from here on; see [`Session::resume_after_tls`].
    Opaque,
    Closed,
    Failed,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::AwaitStartup => "awaiting the startup packet",
            State::EncryptionPending { .. } => "awaiting the encryption answer",
            State::Authenticating { .. } => "authenticating",
            State::Running => "running",
            State::Opaque => "opaque",
            State::Closed => "closed",
            State::Failed => "failed",
        }
    }
}

/// A frontend message still waiting for the server's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Query,
    FunctionCall,
    Parse(Undo),
    Bind,
    Describe,
    Execute,
    /// `Some` for a Close of a statement that existed.
    Close(Option<Undo>),
    Sync,
}

impl Pending {
    /// Answered by a ReadyForQuery.
    fn ends_in_ready(&self) -> bool {
        matches!(self, Pending::Query | Pending::FunctionCall | Pending::Sync)
    }
}

/// How to put the statement map back as it was before a Parse or Close the server did not
/// carry out: `name` maps to `previous` again (or to nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Undo {
    name: Box<[u8]>,
    previous: Option<Arc<[u8]>>,
}

/// A named (or the unnamed) portal: its statement's SQL when known, and how many
/// ReadyForQuery-answered messages the client had sent before binding it.
#[derive(Clone, Debug)]
struct Portal {
    sql: Option<Arc<[u8]>>,
    epoch: u64,
}

/// What the next 'p' message from the client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthExpect {
    Password,
    SaslInitial,
    SaslResponse,
}

#[derive(Clone, Debug)]
pub struct Session {
    state: State,
    limits: PgLimits,
    pending: VecDeque<Pending>,
    /// After an extended-protocol error whose Sync has not been sent yet: the server skips
    /// every frontend message until that Sync.
    skipping: bool,
    statements: NameMap<Arc<[u8]>>,
    portals: NameMap<Portal>,
    /// Messages answered by ReadyForQuery (Query, FunctionCall, Sync) sent so far, and
    /// ReadyForQuery messages received: a portal's `epoch` against `ready_seen` tells
    /// whether the transaction it was bound in has ended.
    ready_sent: u64,
    ready_seen: u64,
    rows: u64,
    copy: Option<CopyDirection>,
    /// The client is in copy-in mode (CopyInResponse/CopyBothResponse seen, its CopyDone
    /// or CopyFail not yet): the server ignores Flush and Sync meanwhile.
    client_copying: bool,
    auth: AuthExpect,
    /// Requests (messages that get an answer) queued so far, and how many of them the
    /// server has answered or skipped: see [`Session::requests_sent`].
    sent: u64,
    answered: u64,
    tx_status: TxStatus,
}

impl Session {
    pub fn new(limits: PgLimits) -> Self {
        Session {
            state: State::AwaitStartup,
            limits,
            pending: VecDeque::new(),
            skipping: false,
            statements: NameMap::default(),
            portals: NameMap::default(),
            ready_sent: 0,
            ready_seen: 0,
            rows: 0,
            copy: None,
            client_copying: false,
            auth: AuthExpect::Password,
            sent: 0,
            answered: 0,
            tx_status: TxStatus::Idle,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The COPY sub-protocol in progress, if any.
    pub fn copy(&self) -> Option<CopyDirection> {
        self.copy
    }

    /// Whether the client has sent a request the server has not finished answering and the
    /// client cannot go on without: a Query, FunctionCall or Sync awaiting ReadyForQuery, or
    /// an encryption request awaiting 'S'/'N'. Always false during authentication (whose
    /// turns depend on the method).
    pub fn waiting_for_server(&self) -> bool {
        match self.state {
            State::EncryptionPending { .. } => true,
            State::Running => self.pending.iter().any(Pending::ends_in_ready),
            _ => false,
        }
    }

    /// How many requests (Query, Parse, Bind, Describe, Execute, Close, Sync, FunctionCall)
    /// the session has queued for the server's answers, counting from the start of the
    /// connection. With [`Session::requests_answered`] this places a reply the proxy makes
    /// itself: one queued when `requests_sent()` was `n` goes to the client as soon as
    /// `requests_answered() >= n`, after the answers to everything sent before it.
    pub fn requests_sent(&self) -> u64 {
        self.sent
    }

    /// How many of the queued requests the server has finished answering (or skipped, after
    /// an error in the extended protocol). Requests are answered in order, so request `i`
    /// (0-based) is the one being answered while `requests_answered() == i`.
    pub fn requests_answered(&self) -> u64 {
        self.answered
    }

    /// The SQL of the statement a portal was bound from, if the session knows it: what an
    /// Execute of `portal` will run (look it up before feeding the Execute, to decide about
    /// it before it goes to the server). The same `Arc` stands for the statement as long as
    /// it is not parsed again with other SQL, so a proxy can key what it learned about the
    /// SQL by the pointer.
    pub fn portal_sql(&self, portal: &[u8]) -> Option<&Arc<[u8]>> {
        self.portals.get(portal)?.sql.as_ref()
    }

    /// Whether the server is skipping the client's messages up to the next Sync (after an
    /// error in the extended protocol, the Sync not yet sent): what the client sends now
    /// will not run.
    pub fn skipping_to_sync(&self) -> bool {
        self.skipping
    }

    /// The transaction status of the last ReadyForQuery (`Idle` before the first).
    pub fn tx_status(&self) -> TxStatus {
        self.tx_status
    }

    /// How the next message from `direction` is framed (for [`super::peek`]).
    pub fn phase(&self, direction: Direction) -> Phase {
        match (self.state, direction) {
            (State::AwaitStartup | State::EncryptionPending { .. }, Direction::Frontend) => Phase::Startup,
            (State::EncryptionPending { .. }, Direction::Backend) => Phase::EncryptionAnswer,
            _ => Phase::Typed,
        }
    }

    /// When the proxy terminates TLS itself: the decrypted stream starts over with the
    /// client's StartupMessage.
    pub fn resume_after_tls(&mut self) {
        if self.state == State::Opaque {
            self.state = State::AwaitStartup;
        }
    }

    /// Feeds one whole client message (as cut by [`super::peek`] in [`Session::phase`]).
    pub fn feed_frontend<'a>(&mut self, msg: &'a [u8]) -> Result<Option<Event<'a>>, PgError> {
        self.guard(|s| s.frontend(msg))
    }

    /// Feeds one whole server message.
    pub fn feed_backend<'a>(&mut self, msg: &'a [u8]) -> Result<Option<Event<'a>>, PgError> {
        self.guard(|s| s.backend(msg))
    }

    fn guard<'a>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<Option<Event<'a>>, PgError>,
    ) -> Result<Option<Event<'a>>, PgError> {
        match self.state {
            State::Failed => return Err(PgError::Failed),
            State::Opaque => return Err(PgError::Opaque),
            State::Closed => return Err(PgError::Closed),
            _ => {}
        }
        let result = f(self);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn unexpected(&self, direction: Direction, tag: u8) -> PgError {
        PgError::UnexpectedMessage { direction, state: self.state.name(), tag }
    }

    fn push(&mut self, p: Pending) -> Result<(), PgError> {
        if self.pending.len() >= self.limits.max_pending {
            return Err(PgError::TooMany { what: "messages awaiting answers", limit: self.limits.max_pending });
        }
        if p.ends_in_ready() {
            self.ready_sent += 1;
        }
        self.pending.push_back(p);
        self.sent += 1;
        Ok(())
    }

    fn frontend<'a>(&mut self, msg: &'a [u8]) -> Result<Option<Event<'a>>, PgError> {
        if matches!(self.state, State::AwaitStartup) {
            return Ok(Some(match StartupPacket::parse(msg, &self.limits)? {
                StartupPacket::Startup(m) => {
                    self.state = State::Authenticating { authenticated: false };
                    Event::Startup { user: m.user(), database: m.database(), message: m }
                }
                StartupPacket::SslRequest => {
                    self.state = State::EncryptionPending { gss: false };
                    Event::EncryptionRequested { gss: false }
                }
                StartupPacket::GssEncRequest => {
                    self.state = State::EncryptionPending { gss: true };
                    Event::EncryptionRequested { gss: true }
                }
                StartupPacket::Cancel { pid, key } => {
                    self.state = State::Closed;
                    Event::CancelRequest { pid, key }
                }
            }));
        }
        if let State::EncryptionPending { .. } = self.state {
            return Err(self.unexpected(Direction::Frontend, msg.first().copied().unwrap_or(0)));
        }
        let (tag, body) = typed_body(msg)?;
        let message = Frontend::parse(tag, body)?;
        if let Frontend::Terminate = message {
            self.state = State::Closed;
            return Ok(Some(Event::Terminate));
        }
        if let State::Authenticating { .. } = self.state {
            let Frontend::AuthData(data) = message else {
                return Err(self.unexpected(Direction::Frontend, tag));
            };
            return Ok(match self.auth {
                AuthExpect::SaslInitial => {
                    self.auth = AuthExpect::SaslResponse;
                    Some(Event::SaslMechanism { mechanism: SaslInitialResponse::parse(data)?.mechanism })
                }
                _ => None,
            });
        }
        if self.client_copying {
            match message {
                Frontend::CopyDone | Frontend::CopyFail { .. } => self.client_copying = false,
                Frontend::CopyData(_) | Frontend::Sync | Frontend::Flush => {}
                _ => return Err(self.unexpected(Direction::Frontend, tag)),
            }
            return Ok(None);
        }
        if self.skipping {
            // The server discards everything until Sync; so do we.
            if message == Frontend::Sync {
                self.skipping = false;
                self.push(Pending::Sync)?;
            }
            return Ok(None);
        }
        Ok(match message {
            Frontend::Query { sql } => {
                self.push(Pending::Query)?;
                Some(Event::QueryStarted { sql })
            }
            Frontend::Parse { statement, sql, .. } => {
                self.room_for_pending()?;
                let undo = self.parse_statement(statement, sql)?;
                self.push(Pending::Parse(undo))?;
                Some(Event::Parse { statement, sql })
            }
            Frontend::Bind { portal, statement } => {
                self.room_for_pending()?;
                let sql = self.statements.get(statement).cloned();
                let bound = Portal { sql: sql.clone(), epoch: self.ready_sent };
                // No allocation for a portal name seen before (pgbench's unnamed one).
                if let Some(slot) = self.portals.get_mut(portal) {
                    *slot = bound;
                } else {
                    if !portal.is_empty() && self.portals.named_len() >= self.limits.max_named {
                        return Err(PgError::TooMany { what: "named portals", limit: self.limits.max_named });
                    }
                    self.portals.insert(portal, bound);
                }
                self.push(Pending::Bind)?;
                Some(Event::Bind { portal, statement, sql })
            }
            Frontend::Execute { portal, .. } => {
                let sql = self.portals.get(portal).and_then(|p| p.sql.clone());
                self.push(Pending::Execute)?;
                Some(Event::Execute { portal, sql })
            }
            Frontend::Describe { .. } => {
                self.push(Pending::Describe)?;
                None
            }
            Frontend::Close { kind, name } => {
                self.room_for_pending()?;
                let undo = if kind == b'S' {
                    self.statements.remove(name).map(|sql| Undo { name: name.into(), previous: Some(sql) })
                } else {
                    self.portals.remove(name);
                    None
                };
                self.push(Pending::Close(undo))?;
                None
            }
            Frontend::Sync => {
                self.push(Pending::Sync)?;
                None
            }
            Frontend::FunctionCall { .. } => {
                self.push(Pending::FunctionCall)?;
                None
            }
            // COPY data flows without answers; Flush only asks the server to send.
            Frontend::CopyData(_) | Frontend::CopyDone | Frontend::CopyFail { .. } | Frontend::Flush => None,
            Frontend::Unknown { .. } => None,
            Frontend::AuthData(_) => return Err(self.unexpected(Direction::Frontend, tag)),
            Frontend::Terminate => None,
        })
    }

    /// Checked before a message changes the maps, so a refused message changes nothing.
    fn room_for_pending(&self) -> Result<(), PgError> {
        if self.pending.len() >= self.limits.max_pending {
            return Err(PgError::TooMany { what: "messages awaiting answers", limit: self.limits.max_pending });
        }
        Ok(())
    }

    /// Puts `sql` under `name` as the server will if it accepts the Parse, and says how to
    /// take it back if it does not. A Parse of a name that exists replaces it here: the
    /// server refuses it (42P05) only if the old statement still exists there, which the
    /// session cannot know (DEALLOCATE, DISCARD ALL), and the refusal undoes it.
    fn parse_statement(&mut self, name: &[u8], sql: &[u8]) -> Result<Undo, PgError> {
        if let Some(slot) = self.statements.get_mut(name) {
            // The same SQL again (pgbench's unnamed statement every round): no allocation.
            let new: Arc<[u8]> = if **slot == *sql { slot.clone() } else { sql.into() };
            let previous = std::mem::replace(slot, new);
            return Ok(Undo { name: name.into(), previous: Some(previous) });
        }
        if !name.is_empty() && self.statements.named_len() >= self.limits.max_named {
            return Err(PgError::TooMany { what: "named statements", limit: self.limits.max_named });
        }
        self.statements.insert(name, sql.into());
        Ok(Undo { name: name.into(), previous: None })
    }

    fn backend<'a>(&mut self, msg: &'a [u8]) -> Result<Option<Event<'a>>, PgError> {
        match self.state {
            State::EncryptionPending { gss } => {
                let accepted = match msg {
                    b"S" => true,
                    b"N" => false,
                    _ => return Err(PgError::Malformed { what: "encryption answer" }),
                };
                self.state = if accepted { State::Opaque } else { State::AwaitStartup };
                return Ok(Some(Event::EncryptionAnswer { gss, accepted }));
            }
            State::AwaitStartup => return Err(self.unexpected(Direction::Backend, msg.first().copied().unwrap_or(0))),
            _ => {}
        }
        let (tag, body) = typed_body(msg)?;
        let message = Backend::parse(tag, body)?;
        // Messages the server may send at any time.
        match message {
            Backend::ParameterStatus { name, value } => return Ok(Some(Event::ParameterStatus { name, value })),
            Backend::NoticeResponse(n) => return Ok(Some(Event::Notice(n))),
            Backend::NotificationResponse { pid, channel, payload } => {
                return Ok(Some(Event::Notification { pid, channel, payload }))
            }
            _ => {}
        }
        if let State::Authenticating { authenticated } = self.state {
            return Ok(match message {
                Backend::Authentication(Auth::Ok) => {
                    self.state = State::Authenticating { authenticated: true };
                    Some(Event::AuthResult(Ok(())))
                }
                Backend::Authentication(auth) if !authenticated => {
                    self.auth = match auth {
                        Auth::Sasl { .. } => AuthExpect::SaslInitial,
                        Auth::SaslContinue(_) | Auth::SaslFinal(_) => AuthExpect::SaslResponse,
                        _ => AuthExpect::Password,
                    };
                    Some(Event::AuthRequest(auth))
                }
                Backend::ErrorResponse(n) => {
                    self.state = State::Closed;
                    Some(if authenticated { Event::Unsolicited(n) } else { Event::AuthResult(Err(n)) })
                }
                Backend::BackendKeyData { pid, key } if authenticated => Some(Event::BackendKeyData { pid, key }),
                Backend::NegotiateProtocolVersion { newest_minor, .. } => {
                    Some(Event::NegotiateProtocolVersion { newest_minor })
                }
                Backend::ReadyForQuery(status) if authenticated => {
                    self.state = State::Running;
                    self.tx_status = status;
                    Some(Event::ReadyForQuery(status))
                }
                _ => return Err(self.unexpected(Direction::Backend, tag)),
            });
        }
        Ok(match message {
            Backend::ParseComplete => self.answered(|p| matches!(p, Pending::Parse(_)), tag)?,
            Backend::BindComplete => self.answered(|p| matches!(p, Pending::Bind), tag)?,
            Backend::CloseComplete => self.answered(|p| matches!(p, Pending::Close(_)), tag)?,
            Backend::ParameterDescription { .. } => match self.pending.front() {
                Some(Pending::Describe) => None,
                _ => return Err(self.unexpected(Direction::Backend, tag)),
            },
            Backend::NoData => self.answered(|p| matches!(p, Pending::Describe), tag)?,
            Backend::RowDescription { .. } => match self.pending.front() {
                Some(Pending::Describe) => self.answered(|p| matches!(p, Pending::Describe), tag)?,
                Some(Pending::Query) => None,
                _ => return Err(self.unexpected(Direction::Backend, tag)),
            },
            Backend::DataRow { .. } => match self.pending.front() {
                Some(Pending::Query | Pending::Execute) => {
                    self.rows = self.rows.saturating_add(1);
                    None
                }
                _ => return Err(self.unexpected(Direction::Backend, tag)),
            },
            Backend::CommandComplete(command) => self.finish(Outcome::Complete(command), tag)?,
            Backend::EmptyQueryResponse => self.finish(Outcome::Empty, tag)?,
            Backend::PortalSuspended => self.finish(Outcome::Suspended, tag)?,
            Backend::CopyInResponse { columns, .. } => self.copy_started(CopyDirection::In, columns, tag)?,
            Backend::CopyOutResponse { columns, .. } => self.copy_started(CopyDirection::Out, columns, tag)?,
            Backend::CopyBothResponse { columns, .. } => self.copy_started(CopyDirection::Both, columns, tag)?,
            Backend::CopyData(_) | Backend::CopyDone => match self.copy {
                Some(CopyDirection::Out | CopyDirection::Both) => None,
                _ => return Err(self.unexpected(Direction::Backend, tag)),
            },
            Backend::FunctionCallResponse => match self.pending.front() {
                Some(Pending::FunctionCall) => None,
                _ => return Err(self.unexpected(Direction::Backend, tag)),
            },
            Backend::ErrorResponse(n) => self.error(n),
            Backend::ReadyForQuery(status) => {
                if !self.pending.front().is_some_and(Pending::ends_in_ready) {
                    return Err(self.unexpected(Direction::Backend, tag));
                }
                self.pending.pop_front();
                self.answered += 1;
                self.tx_status = status;
                self.ready_seen += 1;
                // Whatever a server left unfinished (rows without a CommandComplete, a
                // COPY without its end) does not outlive the cycle.
                self.rows = 0;
                self.copy = None;
                self.client_copying = false;
                if status == TxStatus::Idle && !self.portals.is_empty() {
                    // No transaction any more: the portals bound before the message this
                    // answers are gone; those bound since (pipelined) are not.
                    let ended = self.ready_seen;
                    self.portals.retain(|p| p.epoch >= ended);
                }
                Some(Event::ReadyForQuery(status))
            }
            Backend::NegotiateProtocolVersion { newest_minor, .. } => {
                Some(Event::NegotiateProtocolVersion { newest_minor })
            }
            Backend::BackendKeyData { .. } | Backend::Authentication(_) => {
                return Err(self.unexpected(Direction::Backend, tag))
            }
            Backend::Unknown { .. } => None,
            Backend::ParameterStatus { .. } | Backend::NoticeResponse(_) | Backend::NotificationResponse { .. } => None,
        })
    }

    fn answered<'a>(&mut self, expected: fn(&Pending) -> bool, tag: u8) -> Result<Option<Event<'a>>, PgError> {
        if !self.pending.front().is_some_and(expected) {
            return Err(self.unexpected(Direction::Backend, tag));
        }
        self.pending.pop_front();
        self.answered += 1;
        Ok(None)
    }

    fn copy_started<'a>(
        &mut self,
        direction: CopyDirection,
        columns: u16,
        tag: u8,
    ) -> Result<Option<Event<'a>>, PgError> {
        match self.pending.front() {
            Some(Pending::Query | Pending::Execute) => {
                self.copy = Some(direction);
                self.client_copying = direction != CopyDirection::Out;
                Ok(Some(Event::CopyStarted { direction, columns }))
            }
            _ => Err(self.unexpected(Direction::Backend, tag)),
        }
    }

    fn finish<'a>(&mut self, outcome: Outcome<'a>, tag: u8) -> Result<Option<Event<'a>>, PgError> {
        let extended = match self.pending.front() {
            Some(Pending::Query) => false,
            Some(Pending::Execute) => {
                self.pending.pop_front();
                self.answered += 1;
                true
            }
            _ => return Err(self.unexpected(Direction::Backend, tag)),
        };
        let rows = std::mem::take(&mut self.rows);
        self.copy = None;
        self.client_copying = false;
        Ok(Some(Event::StatementFinished { outcome, rows, extended }))
    }

    /// Drops the queued messages the server will skip, the failed one first among them:
    /// everything before the next Sync. What they did to the statement map is undone,
    /// latest first, so a name touched twice ends as it was before the first.
    fn skip_to_sync(&mut self) {
        let end = self.pending.iter().position(|p| matches!(p, Pending::Sync));
        // The client has not sent that Sync yet: its next messages are skipped too.
        self.skipping = end.is_none();
        let skipped = end.unwrap_or(self.pending.len());
        self.answered += skipped as u64;
        let statements = &mut self.statements;
        for p in self.pending.drain(..skipped).rev() {
            let (Pending::Parse(undo) | Pending::Close(Some(undo))) = p else { continue };
            match undo.previous {
                Some(sql) => statements.insert(undo.name, sql),
                None => drop(statements.remove(&undo.name)),
            };
        }
    }

    fn error<'a>(&mut self, n: ServerNotice<'a>) -> Option<Event<'a>> {
        self.copy = None;
        // After an error in copy-in the server discards the client's remaining CopyData,
        // CopyDone or CopyFail; they carry no answer either way.
        self.client_copying = false;
        let rows = std::mem::take(&mut self.rows);
        let event = match self.pending.front() {
            // A simple Query (or FunctionCall) still ends with ReadyForQuery.
            Some(Pending::Query | Pending::FunctionCall) => {
                Event::StatementFinished { outcome: Outcome::Error(n), rows, extended: false }
            }
            Some(Pending::Execute) => {
                self.skip_to_sync();
                Event::StatementFinished { outcome: Outcome::Error(n), rows, extended: true }
            }
            Some(_) => {
                self.skip_to_sync();
                Event::ExtendedError(n)
            }
            None => Event::Unsolicited(n),
        };
        if n.is_fatal() {
            self.state = State::Closed;
        }
        Some(event)
    }
}
