//! Request/response correlation, and the connection's state.
//!
//! Spec: "Protocol" (<https://kafka.apache.org/protocol#protocol_network>): a broker answers
//! a connection's requests in the order it received them, each response carrying the
//! request's correlation id and nothing else about it. So the correlator keeps a FIFO of
//! the requests in flight (correlation id, api key, api version, and the caller's data, for
//! instance the op and its start time), checks each response's correlation id against the
//! oldest, and reads the response header in the version that request implies. The FIFO is
//! capped (librdkafka pipelines up to `max.in.flight` = 1,000,000 by default, Java 5;
//! the caller picks the cap). A Produce with acks=0 gets no response and is not queued.
//!
//! SaslHandshake v0 (KIP-43): once the broker accepts the mechanism, the client sends raw
//! SASL tokens, each size-prefixed without a Kafka header, and the broker answers each the
//! same way. The correlator follows the exchanges it can count (PLAIN: one token;
//! SCRAM-SHA-256/512: two) and then returns to Kafka requests; for any other mechanism it
//! gives up decoding ([`State::Opaque`]). Handshake v1 wraps tokens in SaslAuthenticate
//! requests and needs nothing special.
//!
//! ```text
//! Ready --SaslHandshake v0 accepted, PLAIN/SCRAM--> RawSasl { tokens_left } --last token--> Ready
//! Ready --SaslHandshake v0 accepted, other mechanism--> Opaque (pass through, no decoding)
//! ```

use std::collections::VecDeque;

use super::api::ApiKey;
use super::error::KafkaError;
use super::frame::Frame;
use super::header::{response_correlation_id, Request, Response};
use super::sasl::{handshake_error_code, SaslHandshakeRequest};

/// The connection's decoding state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Kafka requests and responses; `in_flight` requests await responses.
    Ready { in_flight: usize },
    /// After an accepted SaslHandshake v0: the client's next `tokens_left` frames are raw
    /// SASL tokens.
    RawSasl { tokens_left: u8, in_flight: usize },
    /// A raw SASL exchange of unknown length: frames pass undecoded from here on.
    Opaque,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ready,
    RawSasl { tokens_left: u8 },
    Opaque,
}

/// What a request in flight was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// A Kafka request. `raw_sasl_tokens`: a SaslHandshake v0 for a mechanism whose raw
    /// exchange is counted (`Some(n)`) or not (`None`); `Some(0)` for every other request.
    Api { api_key: ApiKey, api_version: i16, correlation_id: i32, raw_sasl_tokens: Option<u8> },
    /// A raw SASL token (after SaslHandshake v0).
    SaslToken,
}

/// A client frame, as the correlator read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound<'f> {
    /// A Kafka request (queued if it expects a response).
    Request(Request<'f>),
    /// A raw SASL token (after SaslHandshake v0); its bytes may hold a password.
    SaslToken(&'f [u8]),
    /// Not decoded ([`State::Opaque`]).
    Opaque,
}

/// A server frame, matched to the request it answers (whose data it hands back).
#[derive(Debug, PartialEq, Eq)]
pub enum Outbound<'f, T> {
    Response(Response<'f>, T),
    SaslToken(&'f [u8], T),
    /// Not decoded ([`State::Opaque`]).
    Opaque,
}

/// Raw token exchanges a SaslHandshake v0 mechanism takes, if known.
fn raw_rounds(mechanism: &str) -> Option<u8> {
    match mechanism {
        "PLAIN" => Some(1),
        "SCRAM-SHA-256" | "SCRAM-SHA-512" => Some(2),
        _ => None,
    }
}

/// Matches responses to requests in order.
#[derive(Debug)]
pub struct Correlator<T> {
    queue: VecDeque<(Pending, T)>,
    mode: Mode,
    max_in_flight: usize,
}

impl<T> Correlator<T> {
    /// A correlator that keeps at most `max_in_flight` requests awaiting responses.
    pub fn new(max_in_flight: usize) -> Self {
        Correlator { queue: VecDeque::new(), mode: Mode::Ready, max_in_flight }
    }

    pub fn state(&self) -> State {
        let in_flight = self.queue.len();
        match self.mode {
            Mode::Ready => State::Ready { in_flight },
            Mode::RawSasl { tokens_left } => State::RawSasl { tokens_left, in_flight },
            Mode::Opaque => State::Opaque,
        }
    }

    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    fn push(&mut self, p: Pending, data: T) -> Result<(), KafkaError> {
        if self.queue.len() >= self.max_in_flight {
            return Err(KafkaError::TooManyInFlight { limit: self.max_in_flight });
        }
        self.queue.push_back((p, data));
        Ok(())
    }

    /// A client frame. A request that expects a response is queued with `data`; one that
    /// does not (Produce acks=0) drops `data`. On error nothing is queued.
    pub fn request<'f>(&mut self, frame: &'f Frame, data: T) -> Result<Inbound<'f>, KafkaError> {
        match self.mode {
            Mode::Opaque => Ok(Inbound::Opaque),
            Mode::RawSasl { tokens_left } => {
                self.push(Pending::SaslToken, data)?;
                self.mode = match tokens_left {
                    0 | 1 => Mode::Ready,
                    n => Mode::RawSasl { tokens_left: n - 1 },
                };
                Ok(Inbound::SaslToken(frame.payload()))
            }
            Mode::Ready => {
                let request = Request::parse(frame.payload())?;
                let h = &request.header;
                if !request.expects_response() {
                    return Ok(Inbound::Request(request));
                }
                let raw_sasl_tokens = if h.api_key == ApiKey::SASL_HANDSHAKE && h.api_version == 0 {
                    SaslHandshakeRequest::parse(request.body, 0).ok().and_then(|r| raw_rounds(r.mechanism))
                } else {
                    Some(0)
                };
                let pending = Pending::Api {
                    api_key: h.api_key,
                    api_version: h.api_version,
                    correlation_id: h.correlation_id,
                    raw_sasl_tokens,
                };
                self.push(pending, data)?;
                Ok(Inbound::Request(request))
            }
        }
    }

    /// A server frame: matched to the oldest request in flight, whose data is returned. On
    /// error the queue is left as it was.
    pub fn response<'f>(&mut self, frame: &'f Frame) -> Result<Outbound<'f, T>, KafkaError> {
        if self.mode == Mode::Opaque {
            return Ok(Outbound::Opaque);
        }
        let payload = frame.payload();
        let Some((pending, _)) = self.queue.front() else {
            let got = response_correlation_id(payload).unwrap_or(0);
            return Err(KafkaError::UnsolicitedResponse { got });
        };
        let pending = *pending;
        let response = match pending {
            Pending::SaslToken => None,
            Pending::Api { api_key, api_version, correlation_id, .. } => {
                let got = response_correlation_id(payload)?;
                if got != correlation_id {
                    return Err(KafkaError::CorrelationMismatch { expected: correlation_id, got });
                }
                Some(Response::parse(payload, api_key, api_version)?)
            }
        };
        let Some((_, data)) = self.queue.pop_front() else {
            return Err(KafkaError::UnsolicitedResponse { got: 0 });
        };
        let Some(response) = response else { return Ok(Outbound::SaslToken(payload, data)) };
        if let Pending::Api { api_key: ApiKey::SASL_HANDSHAKE, api_version: 0, raw_sasl_tokens, .. } = pending {
            if handshake_error_code(response.body) == Some(0) {
                self.mode = match raw_sasl_tokens {
                    Some(n) if n > 0 => Mode::RawSasl { tokens_left: n },
                    Some(_) => Mode::Ready,
                    None => Mode::Opaque,
                };
            }
        }
        Ok(Outbound::Response(response, data))
    }

    /// Forgets everything (the connection closed or decoding stopped); returns the data of
    /// the requests that never got a response, oldest first.
    pub fn drain(&mut self) -> Vec<(Pending, T)> {
        self.queue.drain(..).collect()
    }
}
