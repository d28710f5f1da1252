//! The `mongodb` protocol filter: sees every request of a connection, turns it into an
//! [`Op`] (`op` = command name or legacy opcode, `target` = `db.collection`, `database` =
//! `$db`, `user` from the SCRAM client-first message), applies the listener's rules and
//! faults, and matches every reply to its request (requestID / responseTo, through the
//! codec's [`Correlator`]) to count and time it.
//!
//! Spec: MongoDB Wire Protocol, "Standard Message Header" and OP_MSG's moreToCome and
//! exhaustAllowed (<https://github.com/mongodb/specifications/blob/master/source/message/OP_MSG.md#moretocome>):
//! a request with moreToCome (an unacknowledged write) gets no reply and counts as done
//! when it is forwarded; an exhaust request (a getMore or a streaming hello with
//! exhaustAllowed) gets replies with moreToCome until one without, and completes there;
//! latency runs from forwarding the request to its last reply.
//!
//! Messages are forwarded as they came, consecutive ones as one slice; an OP_COMPRESSED is
//! decompressed (within the listener's cap) only to be read. A refused request never
//! reaches the server; the client gets what mongod answers a command it refuses: an OP_MSG
//! `{ok: 0, errmsg, code, codeName}` with responseTo = the request's requestID (an OP_REPLY
//! with QueryFailure for a legacy OP_QUERY), placed behind the replies still owed for
//! earlier requests. A refused request with moreToCome gets nothing, as the client expects
//! nothing. A delayed request is held in the read buffer with everything after it.
//!
//! Failure mode: fails open when the listener has neither rules nor faults (observe-only:
//! an undecodable message is counted and the connection continues as a plain byte stream),
//! and closed otherwise (the connection closes: a filter that cannot read the stream cannot
//! enforce anything on it, and a reply without a readable requestID would be no answer).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sluice_codecs::mongodb::{
    op_msg_error_reply, op_reply_error, peek, Correlator, Expect, Header, Matched, MongoError,
};

use super::commands::CommandId;
use super::inspect::{self, ReplyForm, Request, Scratch};
use super::stats::ConnectionCollections;
use super::{ErrorCode, MongodbListener};
use crate::filter::{CloseReason, FilterStatus};
use crate::op::{Op, Outcome, Protocol};
use crate::policy::{FaultAction, Verdict};
use crate::stream::{drop_frame, take, StreamFilter, StreamIo, WriteQueue};

/// Local replies waiting for their turn before a client that does not read them is cut off.
const MAX_LOCAL_REPLIES: usize = 1024;
/// The requestIDs of sluice's own replies count up from here (a client only compares
/// responseTo, and exhaust follow-ups, which sluice never writes, with requestIDs).
const FIRST_LOCAL_ID: i32 = 0x5100_0000;

/// A request forwarded and awaiting its (last) reply.
#[derive(Debug)]
pub(super) struct InFlight {
    id: CommandId,
    started: Instant,
    /// Cursor ids its killCursors names.
    kill: u64,
}

/// A reply made here, owed to the client once the server has answered `after` requests.
struct LocalReply {
    after: u64,
    bytes: Bytes,
}

/// A request held back, and until when.
#[derive(Clone, Copy, Debug)]
struct Hold {
    until: Instant,
    /// Held by an injected delay: forwarded without asking the rules again.
    fault: bool,
}

/// What happens to one complete request.
enum Decision {
    Forward,
    /// Cut out of the stream (answered here, or refused without an answer).
    Drop,
    /// Held, with everything after it, until the hold ends.
    Hold,
    /// Too many refusals the client has not read: close.
    Close,
}

/// A finished op, as the filter tests see it.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Done {
    pub op: &'static str,
    pub outcome: Outcome,
}

pub struct MongodbFilter {
    listener: Arc<MongodbListener>,
    client: IpAddr,
    correlator: Correlator<InFlight>,
    local: VecDeque<LocalReply>,
    /// Requests forwarded that expect a reply, and those answered (their last reply seen).
    sent: u64,
    answered: u64,
    user: Option<Box<str>>,
    hold: Option<Hold>,
    /// Decoding gave up (fail open): bytes pass through untouched from now on.
    passthrough: bool,
    next_local_id: i32,
    scratch: Scratch,
    rng: fastrand::Rng,
    collections: ConnectionCollections,
    #[cfg(test)]
    pub(super) done: Vec<Done>,
    #[cfg(test)]
    pub(super) documents_written: u64,
    #[cfg(test)]
    pub(super) documents_returned: u64,
}

impl MongodbFilter {
    pub fn new(listener: Arc<MongodbListener>, client: IpAddr) -> Self {
        MongodbFilter {
            correlator: Correlator::new(listener.max_in_flight),
            listener,
            client,
            local: VecDeque::new(),
            sent: 0,
            answered: 0,
            user: None,
            hold: None,
            passthrough: false,
            next_local_id: FIRST_LOCAL_ID,
            scratch: Scratch::default(),
            rng: fastrand::Rng::new(),
            collections: ConnectionCollections::default(),
            #[cfg(test)]
            done: Vec::new(),
            #[cfg(test)]
            documents_written: 0,
            #[cfg(test)]
            documents_returned: 0,
        }
    }

    /// Requests forwarded and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.correlator.in_flight()
    }

    /// The user the SCRAM conversation named, if one was seen.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether decoding gave up and bytes pass through unread.
    pub fn is_passthrough(&self) -> bool {
        self.passthrough
    }

    fn record(&mut self, id: CommandId, outcome: Outcome, elapsed: Option<Duration>) {
        self.listener.stats.op(id).record(outcome, elapsed);
        #[cfg(test)]
        self.done.push(Done { op: id.name(), outcome });
    }

    /// Decides about one complete request.
    fn request(
        &mut self,
        msg: &[u8],
        now: Instant,
        skip_policy: bool,
        io: &mut StreamIo<'_>,
    ) -> Result<Decision, MongoError> {
        let listener = Arc::clone(&self.listener);
        let header = Header::parse(msg).ok_or(MongoError::Truncated { what: "message header" })?;
        let req = inspect::request(msg, &listener.limits, &mut self.scratch)?;
        if let Some(c) = req.compressor {
            listener.stats.compressed(c).increment(1);
        }
        if let Some(user) = &req.user {
            self.user = Some(user.clone());
        }
        if skip_policy || !listener.enforces() {
            return Ok(self.forward(&header, &req, now));
        }
        let s = &self.scratch;
        let op = Op {
            protocol: Protocol::Mongodb,
            listener: &listener.name,
            op: req.name(s),
            target: req.has_target.then_some(s.target.as_bytes()),
            user: self.user.as_deref(),
            database: req.has_database.then_some(s.database.as_str()),
            statement: None,
            client_id: None,
            client: self.client,
        };
        let verdict = listener.rules.evaluate(&op);
        let fault = match verdict {
            Verdict::Allow => {
                let rng = &mut self.rng;
                listener.faults.pick(&op, || rng.f64() * 100.0).cloned()
            }
            _ => None,
        };
        let name = op.op;
        Ok(match (verdict, fault) {
            (Verdict::Deny { rule }, _) => {
                let message = format!("sluice: {name} denied by policy (rule {rule})");
                self.refuse(&header, &req, Outcome::Denied, &listener.deny_error, &message, io)
            }
            (Verdict::Limited { rule }, _) => {
                let message = format!("sluice: {name} rate limited by policy (rule {rule})");
                self.refuse(&header, &req, Outcome::Limited, &listener.limit_error, &message, io)
            }
            (Verdict::Delay { wait, .. }, _) => self.hold_for(now, wait, false),
            (Verdict::Allow, None) => self.forward(&header, &req, now),
            (Verdict::Allow, Some(FaultAction::Delay(delay))) => {
                listener.stats.fault_delays.increment(1);
                self.hold_for(now, delay, true)
            }
            (Verdict::Allow, Some(FaultAction::Error(message))) => {
                listener.stats.fault_errors.increment(1);
                self.refuse(&header, &req, Outcome::Error, &ErrorCode::internal_error(), &message, io)
            }
        })
    }

    fn hold_for(&mut self, now: Instant, wait: Duration, fault: bool) -> Decision {
        self.hold = Some(Hold { until: now + wait, fault });
        Decision::Hold
    }

    /// Records a forwarded request: counted per collection now, and as an op when its last
    /// reply comes (or now, when it expects none).
    fn forward(&mut self, header: &Header, req: &Request, now: Instant) -> Decision {
        let stats = &self.listener.stats;
        if req.has_target {
            self.collections.count(&stats.collections, &self.scratch.target, req.id);
        }
        if let Some(n) = req.written {
            stats.documents_written.record(n);
            #[cfg(test)]
            {
                self.documents_written += n;
            }
        }
        if req.expect == Expect::Nothing {
            self.record(req.id, Outcome::Ok, None);
            return Decision::Forward;
        }
        let in_flight = InFlight { id: req.id, started: now, kill: req.kill };
        let tracked = match self.correlator.request(header, req.expect, in_flight) {
            Err(MongoError::RequestDuringExhaust) => {
                // The client moved on from a stream (the spec forbids it; a driver closing
                // an exhaust cursor early does it by closing the connection): the stream
                // and whatever was waiting end here.
                for (_, ended) in self.correlator.drain() {
                    self.answered += 1;
                    self.record(ended.id, Outcome::Ok, Some(now.saturating_duration_since(ended.started)));
                }
                let in_flight = InFlight { id: req.id, started: now, kill: req.kill };
                self.correlator.request(header, req.expect, in_flight).is_ok()
            }
            other => other.is_ok(),
        };
        // A duplicate requestID or a full table: forwarded untracked, its reply unexpected.
        if tracked {
            self.sent += 1;
        }
        Decision::Forward
    }

    /// Answers a request with an error reply instead of forwarding it.
    fn refuse(
        &mut self,
        header: &Header,
        req: &Request,
        outcome: Outcome,
        error: &ErrorCode,
        message: &str,
        io: &mut StreamIo<'_>,
    ) -> Decision {
        self.record(req.id, outcome, None);
        if req.expect == Expect::Nothing {
            return Decision::Drop;
        }
        let id = self.next_local_id;
        self.next_local_id = self.next_local_id.wrapping_add(1);
        let (code, name) = (error.code, &*error.code_name);
        let bytes = match req.form {
            ReplyForm::Msg => op_msg_error_reply(header.request_id, id, code, name, message),
            ReplyForm::Reply => op_reply_error(header.request_id, id, code, name, message),
        };
        if self.local.is_empty() && self.answered >= self.sent {
            io.to_downstream.push(bytes);
        } else if self.local.len() >= MAX_LOCAL_REPLIES {
            return Decision::Close;
        } else {
            self.local.push_back(LocalReply { after: self.sent, bytes });
        }
        Decision::Drop
    }

    /// Accounts for one server reply.
    fn reply(&mut self, msg: &[u8], now: Instant) -> Result<(), MongoError> {
        let listener = Arc::clone(&self.listener);
        let stats = &listener.stats;
        let header = Header::parse(msg).ok_or(MongoError::Truncated { what: "message header" })?;
        let reply = inspect::reply(msg, &listener.limits, &mut self.scratch)?;
        stats.reply_bytes.record(msg.len() as u64);
        if let Some(c) = reply.compressor {
            stats.compressed(c).increment(1);
        }
        if let Some(n) = reply.returned {
            stats.documents_returned.record(n);
            #[cfg(test)]
            {
                self.documents_returned += n;
            }
        }
        let done = match self.correlator.reply(&header, reply.more_to_come) {
            Ok(Matched::Done { data, .. }) => data,
            Ok(Matched::More { .. }) => return Ok(()),
            Err(_) => {
                stats.unexpected_replies.increment(1);
                return Ok(());
            }
        };
        self.answered += 1;
        let outcome = if reply.ok {
            Outcome::Ok
        } else {
            stats.error(reply.has_code_name.then_some(self.scratch.code_name.as_str()));
            Outcome::Error
        };
        if reply.write_errors > 0 {
            stats.write_errors.increment(reply.write_errors as u64);
        }
        match reply.cursor {
            Some((true, id)) if id != 0 => stats.cursors_opened.increment(1),
            Some((false, 0)) => stats.cursors_exhausted.increment(1),
            _ => {}
        }
        if done.kill > 0 && reply.ok {
            stats.cursors_killed.increment(done.kill);
        }
        self.record(done.id, outcome, Some(now.saturating_duration_since(done.started)));
        Ok(())
    }

    /// Sends the local replies whose turn has come.
    fn release_local_replies(&mut self, to: &mut WriteQueue) {
        while self.local.front().is_some_and(|r| r.after <= self.answered) {
            if let Some(reply) = self.local.pop_front() {
                to.push(reply.bytes);
            }
        }
    }

    /// A decode error: counted; an observe-only listener forwards the rest unchanged, an
    /// enforcing one closes the connection.
    fn decode_error(
        &mut self,
        from_client: bool,
        error: MongoError,
        input: &mut BytesMut,
        run: usize,
        io: &mut StreamIo<'_>,
    ) -> FilterStatus {
        let stats = &self.listener.stats;
        if from_client { &stats.client_decode_errors } else { &stats.server_decode_errors }.increment(1);
        tracing::debug!(listener = %self.listener.name, client = %self.client, from_client, %error, "undecodable MongoDB message");
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

    fn downstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        if self.passthrough {
            io.to_upstream.push(take(input, input.len()));
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
            let n = match peek(&input[run..], &self.listener.limits) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => return self.decode_error(true, e, input, run, io),
            };
            let skip = std::mem::take(&mut released_fault);
            match self.request(&input[run..run + n], io.now, skip, io) {
                Ok(Decision::Forward) => run += n,
                Ok(Decision::Drop) => drop_frame(input, &mut run, n, io.to_upstream),
                Ok(Decision::Hold) => break,
                Ok(Decision::Close) => {
                    io.to_upstream.push(take(input, run));
                    input.clear();
                    return FilterStatus::Close(CloseReason::ProtocolError);
                }
                Err(e) => return self.decode_error(true, e, input, run, io),
            }
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
            let n = match peek(&input[run..], &self.listener.limits) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => return self.decode_error(false, e, input, run, io),
            };
            if let Err(e) = self.reply(&input[run..run + n], io.now) {
                return self.decode_error(false, e, input, run, io);
            }
            run += n;
            if self.local.front().is_some_and(|r| r.after <= self.answered) {
                io.to_downstream.push(take(input, run));
                run = 0;
                self.release_local_replies(io.to_downstream);
            }
        }
        io.to_downstream.push(take(input, run));
        if eof && !input.is_empty() {
            io.to_downstream.push(take(input, input.len()));
        }
        FilterStatus::Continue
    }
}

impl StreamFilter for MongodbFilter {
    fn on_downstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        self.downstream(input, eof, io)
    }

    fn on_upstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        self.upstream(input, eof, io)
    }

    fn wake_at(&self) -> Option<Instant> {
        self.hold.map(|h| h.until)
    }

    /// A client that pipelines without reading its replies is not read further once as
    /// many requests await replies as the listener tracks.
    fn downstream_paused(&self) -> bool {
        self.correlator.in_flight() >= self.listener.max_in_flight
    }
}
