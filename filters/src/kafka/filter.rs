//! The `kafka` protocol filter: sees every request of a connection, turns it into an
//! [`Op`] per topic it names (`op` = API name, `target` = topic, `client_id` from the
//! request header, `user` = the SASL PLAIN principal), applies the listener's rules, and
//! matches every response to its request (through the codec's [`Correlator`]: a broker
//! answers a connection's requests in order) to count and time it, to record the
//! broker's throttle time and the error codes it answered, and to rewrite the broker
//! addresses it names.
//!
//! Spec: "Protocol" (<https://kafka.apache.org/protocol#protocol_network>): responses come
//! in request order, each with the request's correlation id; a Produce with acks=0 gets
//! none. A refused request never reaches the broker; the client gets the error response
//! its API and version expect (`sluice_codecs::kafka::error_response`), placed behind the
//! responses still owed for earlier requests, so the order holds. A refused Produce with
//! acks=0 gets nothing, as it would from a broker; a refused request whose API has no
//! error response sluice can write closes the connection (as a broker does with a request
//! it cannot serve).
//!
//! Quotas: a rule with `delay` holds the request, and everything the client sends after
//! it, until the limit has room — the way a broker mutes a client's channel for its
//! throttle time (KIP-219) — and the time held is recorded as sluice's throttle time. A
//! rule with `reject` answers POLICY_VIOLATION, or THROTTLING_QUOTA_EXCEEDED where the API
//! version defines it (KIP-599: CreateTopics v6+, DeleteTopics v5+). A `deny` rule answers
//! TOPIC_AUTHORIZATION_FAILED (CLUSTER_AUTHORIZATION_FAILED for the ACL APIs).
//!
//! Failure mode: fails closed. Every broker address a client learns must be one on sluice,
//! so a stream the filter can no longer follow (a bad frame size, a response that does not
//! line up with a request, a Metadata / FindCoordinator / DescribeCluster response it cannot
//! read to rewrite) closes the connection. A request body it cannot read is counted as a
//! decode error and forwarded when the listener has no rules (its header suffices to follow
//! the stream), and closes the connection when it has (a rule could not be applied).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use sluice_codecs::kafka::{
    error_response, peek, plain_user, rewrite_brokers, ApiKey, Correlator, Frame, Inbound, KafkaError, Outbound,
    Request, Response, ResponseBody, State, CLUSTER_AUTHORIZATION_FAILED, POLICY_VIOLATION, THROTTLING_QUOTA_EXCEEDED,
    TOPIC_AUTHORIZATION_FAILED,
};

use super::inspect::{self, RequestFacts};
use super::stats::ConnectionCounters;
use super::versions::cap_api_versions;
use super::KafkaListener;
use crate::filter::{CloseReason, FilterStatus};
use crate::op::{Op, Outcome, Protocol};
use crate::policy::Verdict;
use crate::stream::{take, StreamFilter, StreamIo};

/// Local replies waiting for their turn before a client that does not read them is cut off.
const MAX_LOCAL_REPLIES: usize = 1024;

/// A request forwarded and awaiting its response.
#[derive(Debug)]
pub(super) struct InFlight {
    api: ApiKey,
    started: Instant,
}

/// A reply made here, owed to the client once the broker has answered `after` requests.
struct LocalReply {
    after: u64,
    bytes: Bytes,
}

/// What happens to one complete request.
enum Decision {
    Forward,
    /// Cut out of the stream (answered here, or refused without an answer).
    Drop,
    /// Held, with everything after it, until `hold` ends.
    Hold,
    Close(CloseReason),
}

/// A finished op, as the filter tests see it.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Done {
    pub op: &'static str,
    pub outcome: Outcome,
}

pub struct KafkaFilter {
    listener: Arc<KafkaListener>,
    client: IpAddr,
    correlator: Correlator<InFlight>,
    local: VecDeque<LocalReply>,
    /// Requests forwarded that expect a response, and those answered.
    sent: u64,
    answered: u64,
    /// The SASL PLAIN principal the client authenticated as (claimed; the broker judges).
    user: Option<Box<str>>,
    /// The connection's SaslHandshake named PLAIN.
    plain: bool,
    hold: Option<Instant>,
    /// Counter caches: one per metric (the cache is keyed by name and op only).
    topic_bytes: ConnectionCounters,
    topic_records: ConnectionCounters,
    clients: ConnectionCounters,
    #[cfg(test)]
    pub(super) done: Vec<Done>,
    #[cfg(test)]
    pub(super) produced_records: u64,
    #[cfg(test)]
    pub(super) fetched_records: u64,
}

impl KafkaFilter {
    pub fn new(listener: Arc<KafkaListener>, client: IpAddr) -> Self {
        KafkaFilter {
            correlator: Correlator::new(listener.max_in_flight),
            listener,
            client,
            local: VecDeque::new(),
            sent: 0,
            answered: 0,
            user: None,
            plain: false,
            hold: None,
            topic_bytes: ConnectionCounters::default(),
            topic_records: ConnectionCounters::default(),
            clients: ConnectionCounters::default(),
            #[cfg(test)]
            done: Vec::new(),
            #[cfg(test)]
            produced_records: 0,
            #[cfg(test)]
            fetched_records: 0,
        }
    }

    /// Requests forwarded and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.correlator.in_flight()
    }

    /// The SASL PLAIN user the client authenticated as, if one was seen.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    fn record(&mut self, api: ApiKey, outcome: Outcome, elapsed: Option<Duration>) {
        self.listener.stats.op(api).record(outcome, elapsed);
        #[cfg(test)]
        self.done.push(Done { op: api.name(), outcome });
    }

    /// Decides about one complete request (`msg`: the whole frame, size included).
    fn request(&mut self, msg: &[u8], now: Instant, io: &mut StreamIo<'_>) -> Result<Decision, KafkaError> {
        let listener = Arc::clone(&self.listener);
        let req = Request::parse(msg.get(4..).unwrap_or_default())?;
        let api = req.header.api_key;
        let enforces = listener.enforces();
        let facts = if enforces || inspect::always_read(api) {
            match inspect::request(&req, &listener.topic_names, self.plain) {
                Ok(facts) => facts,
                Err(e) if enforces => return Err(e),
                Err(_) => {
                    listener.stats.client_decode_errors.increment(1);
                    RequestFacts::default()
                }
            }
        } else {
            RequestFacts::default()
        };
        if facts.unreadable_records {
            listener.stats.client_decode_errors.increment(1);
        }
        if let Some(plain) = facts.plain_mechanism {
            self.plain = plain;
        }
        if let Some(user) = facts.user {
            self.user = Some(user.into());
        }
        if enforces {
            match self.verdict(&req, &facts, msg.len() as u64) {
                Verdict::Allow => {}
                Verdict::Deny { rule } => {
                    let code = match api {
                        ApiKey::CREATE_ACLS | ApiKey::DELETE_ACLS => CLUSTER_AUTHORIZATION_FAILED,
                        _ => TOPIC_AUTHORIZATION_FAILED,
                    };
                    let message = format!("sluice: {} denied by policy (rule {rule})", api.name());
                    return Ok(self.refuse(&req, Outcome::Denied, code, &message, io));
                }
                Verdict::Limited { rule } => {
                    let v = req.header.api_version;
                    let quota_code =
                        (api == ApiKey::CREATE_TOPICS && v >= 6) || (api == ApiKey::DELETE_TOPICS && v >= 5);
                    let code = if quota_code { THROTTLING_QUOTA_EXCEEDED } else { POLICY_VIOLATION };
                    let message = format!("sluice: {} over its quota (rule {rule})", api.name());
                    return Ok(self.refuse(&req, Outcome::Limited, code, &message, io));
                }
                Verdict::Delay { wait, .. } => {
                    listener.stats.quota_throttle.record(wait.as_millis().try_into().unwrap_or(u64::MAX));
                    self.hold = Some(now + wait);
                    return Ok(Decision::Hold);
                }
            }
        }
        // Forwarded: counted now (the op itself when its response comes).
        let client_id = req.header.client_id.filter(|c| !c.is_empty()).unwrap_or("-");
        self.clients.add(&listener.stats.clients, client_id, api.name(), 1);
        if api == ApiKey::PRODUCE {
            for t in &facts.topics {
                self.topic_bytes.add(&listener.stats.topic_bytes, &t.name, "Produce", t.bytes);
                self.topic_records.add(&listener.stats.topic_records, &t.name, "Produce", t.records);
                #[cfg(test)]
                {
                    self.produced_records += t.records;
                }
            }
        }
        if !req.expects_response() {
            self.record(api, Outcome::Ok, None);
        }
        Ok(Decision::Forward)
    }

    /// The rules' verdict on a request: evaluated once per topic it names (once if none);
    /// a deny wins, then a rejection, then the longest delay.
    fn verdict(&self, req: &Request<'_>, facts: &RequestFacts<'_>, frame_len: u64) -> Verdict {
        let listener = &self.listener;
        let mut op = Op {
            protocol: Protocol::Kafka,
            listener: &listener.name,
            op: req.header.api_key.name(),
            target: None,
            user: self.user.as_deref(),
            database: None,
            statement: None,
            client_id: req.header.client_id,
            client: self.client,
        };
        if facts.topics.is_empty() {
            return listener.rules.evaluate_sized(&op, frame_len);
        }
        let mut worst = Verdict::Allow;
        for t in &facts.topics {
            op.target = Some(t.name.as_bytes());
            let bytes = if req.header.api_key == ApiKey::PRODUCE { t.bytes } else { frame_len };
            let verdict = listener.rules.evaluate_sized(&op, bytes);
            worst = match (worst, verdict) {
                (_, v @ Verdict::Deny { .. }) => return v,
                (w @ Verdict::Limited { .. }, _) | (_, w @ Verdict::Limited { .. }) => w,
                (Verdict::Delay { rule, wait: a }, Verdict::Delay { wait: b, .. }) => {
                    Verdict::Delay { rule, wait: a.max(b) }
                }
                (w @ Verdict::Delay { .. }, _) | (_, w @ Verdict::Delay { .. }) => w,
                _ => Verdict::Allow,
            };
        }
        worst
    }

    /// Answers a request with an error response instead of forwarding it.
    fn refuse(
        &mut self,
        req: &Request<'_>,
        outcome: Outcome,
        code: i16,
        message: &str,
        io: &mut StreamIo<'_>,
    ) -> Decision {
        let api = req.header.api_key;
        self.record(api, outcome, None);
        let bytes = match error_response(req, code, 0, Some(message)) {
            Ok(Some(bytes)) => bytes,
            // A Produce with acks=0 expects no answer, and gets none.
            Ok(None) if !req.expects_response() => return Decision::Drop,
            // No error response sluice can write for this API (or a body it cannot read):
            // the connection closes, as the refusal's own (a broker closes on a request it
            // will not serve).
            Ok(None) | Err(_) => {
                let reason = if outcome == Outcome::Limited { CloseReason::Limited } else { CloseReason::Denied };
                return Decision::Close(reason);
            }
        };
        if self.local.is_empty() && self.answered >= self.sent {
            io.to_downstream.push(bytes);
        } else if self.local.len() >= MAX_LOCAL_REPLIES {
            // Refusals the client does not read: it is cut off.
            return Decision::Close(CloseReason::ProtocolError);
        } else {
            self.local.push_back(LocalReply { after: self.sent, bytes });
        }
        Decision::Drop
    }

    /// Forwards a frame decided on, queueing it with the correlator.
    fn forward(&mut self, frame: Bytes, now: Instant, io: &mut StreamIo<'_>) -> Result<(), KafkaError> {
        let frame = Frame::new(frame, &self.listener.limits)?;
        let api = match self.correlator.state() {
            State::Ready { .. } => Request::parse(frame.payload())?.header.api_key,
            // A raw SASL token is the SaslAuthenticate of SaslHandshake v0.
            State::RawSasl { .. } | State::Opaque => ApiKey::SASL_AUTHENTICATE,
        };
        let before = self.correlator.in_flight();
        match self.correlator.request(&frame, InFlight { api, started: now })? {
            Inbound::SaslToken(token) => {
                if self.plain {
                    if let Some(user) = plain_user(token) {
                        self.user = Some(user.into());
                    }
                }
            }
            Inbound::Request(_) | Inbound::Opaque => {}
        }
        if self.correlator.in_flight() > before {
            self.sent += 1;
        }
        io.to_upstream.push(frame.into_bytes());
        Ok(())
    }

    /// Accounts for one broker response; returns the bytes to send the client (rewritten
    /// where it names brokers).
    fn response(&mut self, frame: Frame, now: Instant) -> Result<Bytes, KafkaError> {
        let (response, in_flight) = match self.correlator.response(&frame)? {
            Outbound::Response(response, in_flight) => (response, in_flight),
            Outbound::SaslToken(_, in_flight) => {
                self.answered += 1;
                self.record(in_flight.api, Outcome::Ok, Some(now.saturating_duration_since(in_flight.started)));
                return Ok(frame.into_bytes());
            }
            Outbound::Opaque => return Ok(frame.into_bytes()),
        };
        self.answered += 1;
        let elapsed = Some(now.saturating_duration_since(in_flight.started));
        let api = response.api_key;
        let names_brokers = matches!(api, ApiKey::METADATA | ApiKey::FIND_COORDINATOR | ApiKey::DESCRIBE_CLUSTER);
        let body = match ResponseBody::parse(&response) {
            Ok(body) => body,
            Err(e) if names_brokers => return Err(e),
            Err(_) => {
                self.listener.stats.server_decode_errors.increment(1);
                self.record(api, Outcome::Ok, elapsed);
                return Ok(frame.into_bytes());
            }
        };
        let listener = Arc::clone(&self.listener);
        let stats = &listener.stats;
        let (topic_bytes, topic_records) = (&mut self.topic_bytes, &mut self.topic_records);
        let mut fetched_records = 0;
        let facts = inspect::response(
            &body,
            &listener.topic_names,
            |code| stats.error(api, code),
            |topic, bytes, records| {
                topic_bytes.add(&stats.topic_bytes, topic, "Fetch", bytes);
                topic_records.add(&stats.topic_records, topic, "Fetch", records);
                fetched_records += records;
            },
        );
        #[cfg(test)]
        {
            self.fetched_records += fetched_records;
        }
        #[cfg(not(test))]
        let _ = fetched_records;
        if let Some(ms) = facts.throttle_time_ms.filter(|ms| *ms > 0) {
            stats.broker_throttle.record(u64::try_from(ms).unwrap_or(0));
        }
        let outcome = if facts.errors > 0 { Outcome::Error } else { Outcome::Ok };
        self.record(api, outcome, elapsed);
        let rewritten = match &body {
            ResponseBody::ApiVersions(v) => cap_api_versions(response.body, v.version)?,
            _ if names_brokers => self.rewrite(&response)?,
            _ => None,
        };
        match rewritten {
            Some(body) => response.reframe(&body),
            None => Ok(frame.into_bytes()),
        }
    }

    /// The body of a Metadata, FindCoordinator or DescribeCluster response with every
    /// broker's host and port replaced by its address on sluice.
    ///
    /// The codec leaves entries with a negative node id alone (FindCoordinator's "no
    /// coordinator" is `-1, "", -1`); a response that names a host there anyway (no broker
    /// does; a hostile one might) is refused, checked on the rewritten body, so no host but
    /// sluice's reaches the client.
    fn rewrite(&self, response: &Response<'_>) -> Result<Option<Bytes>, KafkaError> {
        let listener = &self.listener;
        let mut told: Vec<Arc<str>> = Vec::new();
        let rewritten =
            rewrite_brokers(response.api_key, response.api_version, response.body, |node_id, host, port| {
                listener.stats.brokers_rewritten.increment(1);
                let (host, port) = listener.brokers.advertise(node_id, host, port);
                if !told.contains(&host) {
                    told.push(host.clone());
                }
                (host.to_string(), port)
            })?;
        let Some(body) = rewritten else { return Ok(None) };
        let ours = |host: &str| host.is_empty() || told.iter().any(|t| &**t == host);
        let check = Response { body: &body, ..*response };
        let clean = match ResponseBody::parse(&check)? {
            ResponseBody::Metadata(m) => m.brokers.iter().all(|b| ours(b.host)),
            ResponseBody::FindCoordinator(f) => f.coordinators.iter().all(|c| ours(c.broker.host)),
            ResponseBody::DescribeCluster(d) => d.brokers.iter().all(|b| ours(b.host)),
            _ => true,
        };
        if !clean {
            return Err(KafkaError::Malformed { what: "broker with a negative node id and a host" });
        }
        Ok(Some(body))
    }

    /// Queues the local replies whose turn has come.
    fn release_local_replies(&mut self, io: &mut StreamIo<'_>) {
        while self.local.front().is_some_and(|r| r.after <= self.answered) {
            if let Some(reply) = self.local.pop_front() {
                io.to_downstream.push(reply.bytes);
            }
        }
    }

    /// The stream cannot be followed any more: the connection closes.
    fn decode_error(&mut self, from_client: bool, input: &mut BytesMut) -> FilterStatus {
        let stats = &self.listener.stats;
        if from_client { &stats.client_decode_errors } else { &stats.server_decode_errors }.increment(1);
        input.clear();
        for (_, in_flight) in self.correlator.drain() {
            self.listener.stats.op(in_flight.api).record(Outcome::Error, None);
        }
        FilterStatus::Close(CloseReason::ProtocolError)
    }

    fn downstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        if let Some(until) = self.hold {
            if io.now < until {
                return FilterStatus::Continue;
            }
            self.hold = None;
        }
        loop {
            let n = match peek(input, &self.listener.limits) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(_) => return self.decode_error(true, input),
            };
            // Raw SASL tokens (after SaslHandshake v0) carry no Kafka header: they only pass.
            let decision = if matches!(self.correlator.state(), State::Ready { .. }) {
                match self.request(&input[..n], io.now, io) {
                    Ok(d) => d,
                    Err(_) => return self.decode_error(true, input),
                }
            } else {
                Decision::Forward
            };
            match decision {
                Decision::Forward => {
                    if self.forward(take(input, n), io.now, io).is_err() {
                        return self.decode_error(true, input);
                    }
                }
                Decision::Drop => input.advance(n),
                Decision::Hold => break,
                Decision::Close(reason) => {
                    input.clear();
                    return FilterStatus::Close(reason);
                }
            }
        }
        if eof && self.hold.is_none() && !input.is_empty() {
            // An incomplete request at the end of the stream: pass it on as it is.
            io.to_upstream.push(take(input, input.len()));
        }
        FilterStatus::Continue
    }

    fn upstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        loop {
            let n = match peek(input, &self.listener.limits) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(_) => return self.decode_error(false, input),
            };
            let Ok(frame) = Frame::new(take(input, n), &self.listener.limits) else {
                return self.decode_error(false, input);
            };
            match self.response(frame, io.now) {
                Ok(bytes) => io.to_downstream.push(bytes),
                Err(_) => return self.decode_error(false, input),
            }
            self.release_local_replies(io);
        }
        self.release_local_replies(io);
        if eof && !input.is_empty() {
            // A response cut short by the broker closing: the client sees the same.
            io.to_downstream.push(take(input, input.len()));
        }
        FilterStatus::Continue
    }
}

impl StreamFilter for KafkaFilter {
    fn on_downstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        self.downstream(input, eof, io)
    }

    fn on_upstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        self.upstream(input, eof, io)
    }

    fn wake_at(&self) -> Option<Instant> {
        self.hold
    }

    /// A client that pipelines without reading its responses is not read further once as
    /// many requests await responses as the listener tracks.
    fn downstream_paused(&self) -> bool {
        self.correlator.in_flight() >= self.listener.max_in_flight
    }
}
