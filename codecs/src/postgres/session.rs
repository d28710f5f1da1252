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

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::backend::{Auth, Backend, ServerNotice, TxStatus};
use super::error::PgError;
use super::event::{CopyDirection, Event, Outcome};
use super::frame::{typed_body, Direction, PgLimits, Phase};
use super::frontend::{Frontend, SaslInitialResponse};
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
    Parse,
    Bind,
    Describe,
    Execute,
    Close,
    Sync,
}

/// What the next 'p' message from the client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthExpect {
    Password,
    SaslInitial,
    SaslResponse,
}

/// Prepared statements or portals by name. The unnamed one (the empty name), which most
/// drivers use for every statement, has its own slot: replacing it allocates nothing.
#[derive(Debug)]
struct Named<V> {
    unnamed: Option<V>,
    named: HashMap<Box<[u8]>, V>,
}

impl<V> Default for Named<V> {
    fn default() -> Self {
        Named { unnamed: None, named: HashMap::new() }
    }
}

impl<V> Named<V> {
    fn get(&self, name: &[u8]) -> Option<&V> {
        if name.is_empty() {
            self.unnamed.as_ref()
        } else {
            self.named.get(name)
        }
    }

    fn contains(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }

    /// How many named ones there are (the unnamed slot is not counted: it is always one).
    fn named_len(&self) -> usize {
        self.named.len()
    }

    fn insert(&mut self, name: &[u8], value: V) {
        if name.is_empty() {
            self.unnamed = Some(value);
        } else {
            self.named.insert(name.into(), value);
        }
    }

    fn remove(&mut self, name: &[u8]) {
        if name.is_empty() {
            self.unnamed = None;
        } else {
            self.named.remove(name);
        }
    }
}

#[derive(Debug)]
pub struct Session {
    state: State,
    limits: PgLimits,
    pending: VecDeque<Pending>,
    /// After an extended-protocol error whose Sync has not been sent yet: the server skips
    /// every frontend message until that Sync.
    skipping: bool,
    statements: Named<Arc<[u8]>>,
    portals: Named<Option<Arc<[u8]>>>,
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
            statements: Named::default(),
            portals: Named::default(),
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
            State::Running => {
                self.pending.iter().any(|p| matches!(p, Pending::Query | Pending::FunctionCall | Pending::Sync))
            }
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
    /// it before it goes to the server).
    /// The same `Arc` stands for the statement as long as it is not parsed again, so a
    /// proxy can key what it learned about the SQL by the pointer.
    pub fn portal_sql(&self, portal: &[u8]) -> Option<&Arc<[u8]>> {
        self.portals.get(portal)?.as_ref()
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
                self.remember_statement(statement, sql)?;
                self.push(Pending::Parse)?;
                Some(Event::Parse { statement, sql })
            }
            Frontend::Bind { portal, statement } => {
                let sql = self.statements.get(statement).cloned();
                if !portal.is_empty()
                    && !self.portals.contains(portal)
                    && self.portals.named_len() >= self.limits.max_named
                {
                    return Err(PgError::TooMany { what: "named portals", limit: self.limits.max_named });
                }
                self.portals.insert(portal, sql.clone());
                self.push(Pending::Bind)?;
                Some(Event::Bind { portal, statement, sql })
            }
            Frontend::Execute { portal, .. } => {
                let sql = self.portals.get(portal).cloned().flatten();
                self.push(Pending::Execute)?;
                self.rows = 0;
                Some(Event::Execute { portal, sql })
            }
            Frontend::Describe { .. } => {
                self.push(Pending::Describe)?;
                None
            }
            Frontend::Close { kind, name } => {
                if kind == b'S' {
                    self.statements.remove(name);
                } else {
                    self.portals.remove(name);
                }
                self.push(Pending::Close)?;
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

    fn remember_statement(&mut self, name: &[u8], sql: &[u8]) -> Result<(), PgError> {
        if !name.is_empty() && !self.statements.contains(name) && self.statements.named_len() >= self.limits.max_named {
            return Err(PgError::TooMany { what: "named statements", limit: self.limits.max_named });
        }
        // A second Parse of an existing named statement fails on the server (42P05) and the
        // first one stays; the unnamed statement is simply replaced.
        // Drivers re-parse the same unnamed statement for every execution: the SQL already
        // held is kept (no copy, and the same `Arc` for whoever keyed anything by it).
        if name.is_empty() && self.statements.unnamed.as_deref() == Some(sql) {
            return Ok(());
        }
        if name.is_empty() || !self.statements.contains(name) {
            self.statements.insert(name, sql.into());
        }
        Ok(())
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
            Backend::ParseComplete => self.answered(Pending::Parse, tag)?,
            Backend::BindComplete => self.answered(Pending::Bind, tag)?,
            Backend::CloseComplete => self.answered(Pending::Close, tag)?,
            Backend::ParameterDescription { .. } => match self.pending.front() {
                Some(Pending::Describe) => None,
                _ => return Err(self.unexpected(Direction::Backend, tag)),
            },
            Backend::NoData => self.answered(Pending::Describe, tag)?,
            Backend::RowDescription { .. } => match self.pending.front() {
                Some(Pending::Describe) => self.answered(Pending::Describe, tag)?,
                Some(Pending::Query) => None,
                _ => return Err(self.unexpected(Direction::Backend, tag)),
            },
            Backend::DataRow { .. } => {
                self.rows = self.rows.saturating_add(1);
                None
            }
            Backend::CommandComplete(command) => self.finish(Outcome::Complete(command), tag)?,
            Backend::EmptyQueryResponse => self.finish(Outcome::Empty, tag)?,
            Backend::PortalSuspended => self.finish(Outcome::Suspended, tag)?,
            Backend::CopyInResponse { columns, .. } => self.copy_started(CopyDirection::In, columns, tag)?,
            Backend::CopyOutResponse { columns, .. } => self.copy_started(CopyDirection::Out, columns, tag)?,
            Backend::CopyBothResponse { columns, .. } => self.copy_started(CopyDirection::Both, columns, tag)?,
            Backend::CopyData(_) | Backend::CopyDone | Backend::FunctionCallResponse => None,
            Backend::ErrorResponse(n) => self.error(n),
            Backend::ReadyForQuery(status) => {
                match self.pending.pop_front() {
                    Some(Pending::Query | Pending::Sync | Pending::FunctionCall) => self.answered += 1,
                    _ => return Err(self.unexpected(Direction::Backend, tag)),
                }
                self.tx_status = status;
                self.copy = None;
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

    fn answered<'a>(&mut self, expected: Pending, tag: u8) -> Result<Option<Event<'a>>, PgError> {
        if self.pending.front() != Some(&expected) {
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

    /// Drops the queued messages the server will skip: everything before the next Sync.
    fn skip_to_sync(&mut self) {
        while let Some(p) = self.pending.front() {
            if *p == Pending::Sync {
                return;
            }
            self.pending.pop_front();
            self.answered += 1;
        }
        // The client has not sent that Sync yet: its next messages are skipped too.
        self.skipping = true;
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
