//! The `redis` protocol filter: sees every command of a connection, turns it into an
//! [`Op`] (`op` = command name with its subcommand, `target` = first key, `user` from
//! AUTH/HELLO), applies the listener's rules and faults, and matches every reply to its
//! command to count and time it.
//!
//! Bytes it does not refuse are forwarded as they came: complete frames are cut off the
//! read buffer and queued as slices, consecutive ones as one slice. A refused command
//! never reaches the server; its RESP error waits in the reply queue behind the replies
//! still owed for earlier commands, so a pipeline's replies stay in order. A delayed
//! command is held in the read buffer together with everything the client sent after it.
//!
//! Failure mode: fails open when the listener has neither rules nor faults (observe-only:
//! an undecodable frame is counted and the connection continues as a plain byte stream),
//! and closed otherwise (the client gets `-ERR Protocol error: …` after the replies it is
//! owed, then the connection closes), since a filter that cannot read the stream cannot
//! enforce anything on it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sluice_codecs::resp::{Command, FrameScanner, Reply, RespError, RespLimits};

use super::command_table::{self, first_key, lookup, CommandId, CommandSpec};
use super::session::{Answer, Effect, Pending, ReplyMode, Role, Session, SubKind};
use super::stats::RedisStats;
use crate::filter::{CloseReason, FilterStatus};
use crate::op::{Op, Outcome, Protocol};
use crate::policy::{FaultAction, FaultSet, RuleSet, Verdict};
use crate::stream::{drop_frame, take, StreamFilter, StreamIo, WriteQueue};

/// DISCARD, sent instead of an EXEC whose transaction lost a refused command.
const DISCARD: &[u8] = b"*1\r\n$7\r\nDISCARD\r\n";
const EXECABORT: &[u8] = b"-EXECABORT Transaction discarded because of previous errors.\r\n";
/// Commands awaiting replies on one connection before its client is no longer read.
const MAX_IN_FLIGHT: usize = 64 * 1024;
/// The longest command name the lookup cache keeps.
const LAST_NAME_MAX: usize = 24;
/// The longest unknown command name kept for rule matching.
const MAX_UNKNOWN_NAME: usize = 64;

/// What every connection of one `redis` listener shares.
pub struct RedisListener {
    pub name: Arc<str>,
    pub rules: Arc<RuleSet>,
    pub faults: FaultSet,
    pub stats: RedisStats,
    pub request_limits: RespLimits,
    pub reply_limits: RespLimits,
}

impl RedisListener {
    /// Whether the filter acts on commands (and so must fail closed).
    fn enforces(&self) -> bool {
        !self.rules.is_empty() || !self.faults.is_empty()
    }
}

/// A command held back, and until when.
#[derive(Clone, Copy, Debug)]
struct Hold {
    until: Instant,
    /// Held by an injected delay: forwarded without asking the rules again.
    fault: bool,
}

/// What happens to one complete command frame.
enum Decision {
    /// Goes upstream unchanged.
    Forward,
    /// Cut out of the stream (answered locally, or silently under CLIENT REPLY OFF).
    Drop,
    /// Cut out, and these bytes go upstream in its place.
    Replace(&'static [u8]),
    /// Held, with everything after it, until the hold ends.
    Hold,
}

pub struct RedisFilter {
    listener: Arc<RedisListener>,
    client: IpAddr,
    requests: FrameScanner,
    replies: FrameScanner,
    pub(super) session: Session,
    hold: Option<Hold>,
    /// Decoding gave up (fail open): bytes pass through untouched from now on.
    passthrough: bool,
    /// A protocol error was answered (fail closed): close once the replies owed are out.
    closing: bool,
    rng: fastrand::Rng,
    /// Replies that arrived with no command waiting (a desynchronised stream).
    pub(super) unexpected: u64,
    /// Finished commands not yet added to the stats.
    tally: Option<Tally>,
    /// The last command name looked up, as sent, and its spec.
    last_lookup: Option<([u8; LAST_NAME_MAX], usize, &'static CommandSpec)>,
}

/// A run of finished commands with the same command, outcome and latency (a pipeline
/// answered in one read): added to the stats once, at the end of the read, instead of
/// once per command.
#[derive(Clone, Copy)]
struct Tally {
    command: CommandId,
    outcome: Outcome,
    elapsed: Option<Duration>,
    n: u64,
}

impl RedisFilter {
    pub fn new(listener: Arc<RedisListener>, client: IpAddr) -> Self {
        RedisFilter {
            requests: FrameScanner::new(listener.request_limits),
            replies: FrameScanner::new(listener.reply_limits),
            listener,
            client,
            session: Session::default(),
            hold: None,
            passthrough: false,
            closing: false,
            rng: fastrand::Rng::new(),
            unexpected: 0,
            tally: None,
            last_lookup: None,
        }
    }

    /// Counts a finished command.
    fn count(&mut self, command: CommandId, outcome: Outcome, elapsed: Option<Duration>) {
        match &mut self.tally {
            Some(t) if t.command == command && t.outcome == outcome && t.elapsed == elapsed => t.n += 1,
            _ => {
                self.flush_tally();
                self.tally = Some(Tally { command, outcome, elapsed, n: 1 });
            }
        }
    }

    fn flush_tally(&mut self) {
        if let Some(t) = self.tally.take() {
            self.listener.stats.command(t.command).record_many(t.outcome, t.elapsed, t.n);
        }
    }

    /// Decides about one complete command frame.
    fn decide(
        &mut self,
        command: Command<'_>,
        now: Instant,
        skip_policy: bool,
        io: &mut StreamIo<'_>,
    ) -> Result<Decision, RespError> {
        if command.argc() == 0 {
            // An empty inline line or `*0`: Redis ignores it without a reply.
            return Ok(Decision::Forward);
        }
        let spec = self.lookup(&command);
        let id = spec.map_or(CommandId::OTHER, CommandId::of);
        let enforce = !skip_policy && self.listener.enforces();
        // The key is only looked for when something uses it.
        let key = if enforce || self.listener.stats.counts_keys() {
            spec.and_then(|s| first_key(s, command.args()))
        } else {
            None
        };
        if let Some(key) = key {
            self.listener.stats.key(key);
        }
        if !enforce {
            return Ok(self.forward(&command, spec, id, now));
        }
        let unknown: String;
        let name = match spec {
            Some(spec) => spec.name,
            None => {
                let raw = command.name().unwrap_or_default();
                unknown = raw.iter().take(MAX_UNKNOWN_NAME).map(|b| b.to_ascii_uppercase() as char).collect();
                &unknown
            }
        };
        let op = Op {
            protocol: Protocol::Redis,
            listener: &self.listener.name,
            op: name,
            target: key,
            user: self.session.user.as_deref(),
            database: None,
            statement: None,
            client_id: None,
            client: self.client,
        };
        let verdict = self.listener.rules.evaluate(&op);
        // Owned, so the borrows of the op end here (an error fault's message is cloned
        // only when it fires).
        let fault = match verdict {
            Verdict::Allow => {
                let rng = &mut self.rng;
                self.listener.faults.pick(&op, || rng.f64() * 100.0).cloned()
            }
            _ => None,
        };
        match (verdict, fault) {
            (Verdict::Deny { .. }, _) => {
                let message = format!("ERR sluice: command {name} denied by policy");
                Ok(self.refuse(&command, id, Outcome::Denied, &message, now, io))
            }
            (Verdict::Limited { .. }, _) => {
                let message = format!("ERR sluice: rate limit exceeded for {name}");
                Ok(self.refuse(&command, id, Outcome::Limited, &message, now, io))
            }
            (Verdict::Delay { wait, .. }, _) => Ok(self.hold_for(now, wait, false)),
            (Verdict::Allow, None) => Ok(self.forward(&command, spec, id, now)),
            (Verdict::Allow, Some(FaultAction::Delay(delay))) => {
                self.listener.stats.fault_delays.increment(1);
                Ok(self.hold_for(now, delay, true))
            }
            (Verdict::Allow, Some(FaultAction::Error(message))) => {
                self.listener.stats.fault_errors.increment(1);
                Ok(self.refuse(&command, id, Outcome::Error, &message, now, io))
            }
        }
    }

    /// The command's spec. A pipeline usually repeats one command, spelt the same way each
    /// time, so the last lookup of a command without subcommands is remembered by its bytes.
    fn lookup(&mut self, command: &Command<'_>) -> Option<&'static CommandSpec> {
        let name = command.name().unwrap_or_default();
        if let Some((bytes, len, spec)) = &self.last_lookup {
            if &bytes[..*len] == name {
                return Some(spec);
            }
        }
        let spec = lookup(command.args());
        if let Some(spec) = spec.filter(|s| !s.has_subcommands && name.len() <= LAST_NAME_MAX) {
            let mut bytes = [0; LAST_NAME_MAX];
            bytes[..name.len()].copy_from_slice(name);
            self.last_lookup = Some((bytes, name.len(), spec));
        }
        spec
    }

    fn hold_for(&mut self, now: Instant, wait: Duration, fault: bool) -> Decision {
        self.hold = Some(Hold { until: now + wait, fault });
        Decision::Hold
    }

    /// Answers a command with a RESP error instead of forwarding it.
    fn refuse(
        &mut self,
        command: &Command<'_>,
        id: CommandId,
        outcome: Outcome,
        message: &str,
        now: Instant,
        io: &mut StreamIo<'_>,
    ) -> Decision {
        self.count(id, outcome, None);
        let reply = error_reply(message);
        let name = command.name().unwrap_or_default();
        if let Some(aborted) = &mut self.session.multi {
            if name.eq_ignore_ascii_case(b"EXEC") || name.eq_ignore_ascii_case(b"DISCARD") {
                // The server is inside MULTI: end the transaction there, answer the client
                // with the refusal.
                self.session.multi = None;
                self.session.pending.push_back(pending(id, now, Answer::Replaced(Box::new(reply))));
                return Decision::Replace(DISCARD);
            }
            // Like a command Redis itself refuses while queuing: EXEC will abort.
            *aborted = true;
        }
        if !self.session.expects_reply() {
            return Decision::Drop;
        }
        if self.session.pending.is_empty() {
            io.to_downstream.push(reply);
        } else {
            self.session.pending.push_back(pending(id, now, Answer::Local(Box::new(reply))));
        }
        Decision::Drop
    }

    /// Records a forwarded command in the reply queue, with what its reply will change.
    fn forward(
        &mut self,
        command: &Command<'_>,
        spec: Option<&'static CommandSpec>,
        id: CommandId,
        now: Instant,
    ) -> Decision {
        let session = &mut self.session;
        // Most commands change nothing in the session: skip the name comparisons for them.
        let name = match spec {
            Some(spec) if has_session_effect(id) => spec.name,
            _ => "",
        };
        let argc = command.argc();
        let arg = |i: usize| command.arg(i).unwrap_or_default();
        let mut decision = Decision::Forward;
        let mut answer = Answer::Upstream { frames: Some(1) };
        let mut subscription = None;
        let mut effect = Effect::None;
        match name {
            "CLIENT REPLY" => {
                let mode = arg(2);
                let mode = [(b"ON".as_slice(), ReplyMode::On), (b"OFF", ReplyMode::Off), (b"SKIP", ReplyMode::Skip)]
                    .into_iter()
                    .find(|(word, _)| mode.eq_ignore_ascii_case(word));
                if let Some((_, mode)) = mode {
                    session.reply_mode = mode;
                    if mode != ReplyMode::On {
                        // OFF and SKIP are not answered themselves.
                        self.count(id, Outcome::Ok, None);
                        return decision;
                    }
                }
            }
            "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" => {
                subscription = Some(sub_kind(name));
                answer = Answer::Upstream { frames: Some(u32::try_from(argc - 1).unwrap_or(u32::MAX).max(1)) };
            }
            "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "SUNSUBSCRIBE" => {
                subscription = Some(sub_kind(name));
                let frames = (argc > 1).then(|| u32::try_from(argc - 1).unwrap_or(u32::MAX));
                answer = Answer::Upstream { frames };
            }
            "HELLO" => {
                let resp3 = match arg(1) {
                    b"3" => Some(true),
                    b"2" => Some(false),
                    _ => None,
                };
                let auth = command.args().position(|a| a.eq_ignore_ascii_case(b"AUTH"));
                let user = auth.and_then(|i| command.arg(i + 1)).map(user_name);
                effect = Effect::Hello { resp3, user };
            }
            "AUTH" => effect = Effect::Auth(if argc >= 3 { user_name(arg(1)) } else { "default".into() }),
            "RESET" => {
                // RESET is answered whatever the reply mode, and turns replies back on.
                session.reply_mode = ReplyMode::On;
                effect = Effect::Reset;
            }
            "MONITOR" => effect = Effect::Monitor,
            "MULTI" => session.multi = Some(false),
            "EXEC" => {
                if session.multi == Some(true) {
                    decision = Decision::Replace(DISCARD);
                    answer = Answer::Replaced(Box::new(Bytes::from_static(EXECABORT)));
                }
                session.multi = None;
            }
            "DISCARD" => session.multi = None,
            _ => {}
        }
        if !session.expects_reply() {
            self.count(id, Outcome::Ok, None);
            return decision;
        }
        let effect = (!matches!(effect, Effect::None)).then(|| Box::new(effect));
        session.pending.push_back(Pending { command: id, sent: now, answer, subscription, effect, failed: false });
        decision
    }

    /// Handles one reply frame of the head command; returns the bytes the client gets
    /// instead of the frame, if it is replaced.
    fn on_reply(&mut self, is_error: bool, now: Instant) -> Option<Bytes> {
        let frames = self.session.head_frames();
        let head = self.session.pending.front_mut()?;
        head.failed |= is_error;
        let (done, replacement) = match &mut head.answer {
            Answer::Replaced(bytes) => (true, Some(Bytes::clone(bytes))),
            Answer::Upstream { frames: left } => {
                // A failed command gets one error, however many frames success would take.
                let remaining = if is_error { 0 } else { frames.saturating_sub(1) };
                *left = Some(remaining);
                (remaining == 0, None)
            }
            Answer::Local(_) => (true, None),
        };
        if done {
            let head = self.session.pending.pop_front()?;
            let outcome = Session::outcome(head.failed);
            self.count(head.command, outcome, Some(now.saturating_duration_since(head.sent)));
            if let (false, Some(effect)) = (head.failed, head.effect) {
                self.session.apply(*effect);
            }
        }
        replacement
    }

    /// Sends the local replies that have reached the head of the queue.
    fn release_local_replies(&mut self, input: &mut BytesMut, run: &mut usize, io: &mut StreamIo<'_>) {
        while let Some(Pending { answer: Answer::Local(_), .. }) = self.session.pending.front() {
            io.to_downstream.push(take(input, *run));
            *run = 0;
            if let Some(Pending { answer: Answer::Local(bytes), .. }) = self.session.pending.pop_front() {
                io.to_downstream.push(*bytes);
            }
        }
    }

    fn request_decode_error(
        &mut self,
        input: &mut BytesMut,
        run: usize,
        error: RespError,
        io: &mut StreamIo<'_>,
    ) -> FilterStatus {
        self.listener.stats.request_decode_errors.increment(1);
        tracing::debug!(listener = %self.listener.name, client = %self.client, %error, "undecodable Redis command");
        if self.fail_open(input, run, io.to_upstream) {
            return FilterStatus::Continue;
        }
        input.clear();
        self.closing = true;
        let reply = error_reply(&format!("ERR Protocol error: {error}"));
        if self.session.pending.is_empty() {
            io.to_downstream.push(reply);
            return FilterStatus::Close(CloseReason::ProtocolError);
        }
        self.session.pending.push_back(pending(CommandId::OTHER, io.now, Answer::Local(Box::new(reply))));
        FilterStatus::Continue
    }

    fn reply_decode_error(
        &mut self,
        input: &mut BytesMut,
        run: usize,
        error: RespError,
        io: &mut StreamIo<'_>,
    ) -> FilterStatus {
        self.listener.stats.reply_decode_errors.increment(1);
        tracing::debug!(listener = %self.listener.name, client = %self.client, %error, "undecodable Redis reply");
        if self.fail_open(input, run, io.to_downstream) {
            return FilterStatus::Continue;
        }
        FilterStatus::Close(CloseReason::UpstreamError)
    }

    /// After a decode error: the `run` bytes decided before it go on; an observe-only
    /// listener then forwards everything from here on untouched and this returns `true`.
    fn fail_open(&mut self, input: &mut BytesMut, run: usize, to: &mut WriteQueue) -> bool {
        to.push(take(input, run));
        if self.listener.enforces() {
            return false;
        }
        self.passthrough = true;
        to.push(take(input, input.len()));
        true
    }
}

impl StreamFilter for RedisFilter {
    fn on_downstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        let status = self.downstream(input, eof, io);
        self.flush_tally();
        status
    }

    fn on_upstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        let status = self.upstream(input, eof, io);
        self.flush_tally();
        status
    }

    fn wake_at(&self) -> Option<Instant> {
        self.hold.map(|h| h.until)
    }

    /// A client that pipelines without reading its replies is not read further once this
    /// many commands await replies: the reply queue stays bounded, and the client is held
    /// back by TCP flow control as a server would hold it.
    fn downstream_paused(&self) -> bool {
        self.session.pending.len() >= MAX_IN_FLIGHT
    }
}

impl RedisFilter {
    fn downstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        if self.passthrough {
            io.to_upstream.push(take(input, input.len()));
            return FilterStatus::Continue;
        }
        if self.closing {
            input.clear();
            return FilterStatus::Continue;
        }
        let mut released_fault = false;
        if let Some(hold) = self.hold {
            if io.now < hold.until {
                return FilterStatus::Continue;
            }
            self.hold = None;
            released_fault = hold.fault;
        }
        // Bytes at the front of `input` decided to go upstream unchanged.
        let mut run = 0;
        loop {
            // The usual frame, a complete array of bulk strings, is found and viewed in one
            // pass; anything else (inline, incomplete, malformed) goes through the
            // resumable scanner and then the view.
            let fast =
                if self.requests.in_progress() { None } else { Command::scan(&input[run..], self.requests.limits()) };
            let (n, command) = match fast {
                Some(found) => found,
                None => {
                    let n = match self.requests.scan(&input[run..]) {
                        Ok(Some(n)) => n,
                        Ok(None) => break,
                        Err(e) => return self.request_decode_error(input, run, e, io),
                    };
                    match Command::parse(&input[run..run + n]) {
                        Ok(command) => (n, command),
                        Err(e) => return self.request_decode_error(input, run, e, io),
                    }
                }
            };
            let decision = match self.decide(command, io.now, std::mem::take(&mut released_fault), io) {
                Ok(decision) => decision,
                Err(e) => return self.request_decode_error(input, run, e, io),
            };
            match decision {
                Decision::Forward => run += n,
                Decision::Drop | Decision::Replace(_) => {
                    drop_frame(input, &mut run, n, io.to_upstream);
                    if let Decision::Replace(bytes) = decision {
                        io.to_upstream.push(Bytes::from_static(bytes));
                    }
                }
                Decision::Hold => break,
            }
        }
        io.to_upstream.push(take(input, run));
        if eof && self.hold.is_none() && !input.is_empty() {
            // An incomplete command at the end of the stream: pass it on as it is.
            io.to_upstream.push(take(input, input.len()));
            self.requests.reset();
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
            // Most replies are simple (`+OK`, a bulk string): found in one pass.
            let simple = if self.replies.in_progress() {
                None
            } else {
                Reply::scan_simple(&input[run..], self.replies.limits())
            };
            let n = match simple {
                Some(n) => n,
                None => match self.replies.scan(&input[run..]) {
                    Ok(Some(n)) => n,
                    Ok(None) => break,
                    Err(e) => return self.reply_decode_error(input, run, e, io),
                },
            };
            let frame = &input[run..run + n];
            let reply = Reply::parse(frame);
            match self.session.role(&reply, frame) {
                Role::Push => {
                    self.listener.stats.push_messages.increment(1);
                    run += n;
                }
                Role::Unexpected => {
                    self.unexpected += 1;
                    self.listener.stats.unexpected_replies.increment(1);
                    run += n;
                }
                Role::Reply => {
                    // Only `-`, `!` (or an attribute in front) can be an error.
                    let error = match frame[0] {
                        b'-' | b'!' | b'|' => reply.error_prefix(),
                        _ => None,
                    };
                    if let Some(prefix) = error {
                        self.listener.stats.error(prefix);
                    }
                    match self.on_reply(error.is_some(), io.now) {
                        None => run += n,
                        Some(replacement) => {
                            drop_frame(input, &mut run, n, io.to_downstream);
                            io.to_downstream.push(replacement);
                        }
                    }
                    self.release_local_replies(input, &mut run, io);
                }
            }
        }
        io.to_downstream.push(take(input, run));
        if eof && !input.is_empty() {
            io.to_downstream.push(take(input, input.len()));
            self.replies.reset();
        }
        if self.closing && self.session.pending.is_empty() {
            return FilterStatus::Close(CloseReason::ProtocolError);
        }
        FilterStatus::Continue
    }
}

/// The commands [`RedisFilter::forward`] treats specially.
const SESSION_COMMANDS: [&str; 14] = [
    "CLIENT REPLY",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "HELLO",
    "AUTH",
    "RESET",
    "MONITOR",
    "MULTI",
    "EXEC",
    "DISCARD",
];

/// Whether a command is one of [`SESSION_COMMANDS`], by id (a table built once).
fn has_session_effect(id: CommandId) -> bool {
    static TABLE: std::sync::OnceLock<Box<[bool]>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..=command_table::count())
            .map(|i| SESSION_COMMANDS.contains(&command_table::stats_name(CommandId::from_index(i))))
            .collect()
    });
    table.get(id.index()).copied().unwrap_or(false)
}

fn pending(command: CommandId, sent: Instant, answer: Answer) -> Pending {
    Pending { command, sent, answer, subscription: None, effect: None, failed: false }
}

fn sub_kind(name: &str) -> SubKind {
    match name {
        "PSUBSCRIBE" | "PUNSUBSCRIBE" => SubKind::Pattern,
        "SSUBSCRIBE" | "SUNSUBSCRIBE" => SubKind::Shard,
        _ => SubKind::Channel,
    }
}

fn user_name(raw: &[u8]) -> Box<str> {
    String::from_utf8_lossy(&raw[..raw.len().min(256)]).into()
}

/// A RESP simple error; line breaks in the message would end the frame early, so they
/// become spaces.
fn error_reply(message: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(message.len() + 3);
    out.extend_from_slice(b"-");
    out.extend(message.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    out.extend_from_slice(b"\r\n");
    out.freeze()
}
