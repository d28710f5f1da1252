//! Request/reply correlation: which request a server message answers.
//!
//! Spec: the standard header's requestID/responseTo
//! (<https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/#standard-message-header>)
//! and OP_MSG's moreToCome and exhaustAllowed
//! (<https://github.com/mongodb/specifications/blob/master/source/message/OP_MSG.md#moretocome>):
//!
//! - a request with moreToCome (an unacknowledged write) gets no reply; nor do the legacy
//!   writes and OP_KILL_CURSORS;
//! - a reply with moreToCome (only to a request with exhaustAllowed: an exhaust getMore, a
//!   streaming hello) is followed by more replies to the same request until one without
//!   it; each follow-up's responseTo is the previous reply's requestID, and the client
//!   sends nothing meanwhile.
//!
//! ```text
//! Idle --request--> Waiting(n) --last reply--> Idle
//!                   Waiting --reply with moreToCome--> Streaming --reply without--> Idle/Waiting
//! ```
//!
//! SecantusDB (a MongoDB-wire server, fixtures/mongodb) answers every follow-up with
//! responseTo = the original request's requestID instead; both are accepted while a
//! stream is open, so a proxy in front of either keeps its replies attributed.
//!
//! The table of requests in flight is capped ([`Correlator::new`]); each entry carries the
//! caller's data (the filter's op and start time).

use std::collections::HashMap;

use super::error::MongoError;
use super::header::Header;

/// What a client request expects back (see [`super::Op::expect`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expect {
    /// No reply: moreToCome on the request, or a legacy write.
    Nothing,
    /// Exactly one reply.
    Reply,
    /// exhaustAllowed: one reply, or a stream of them with moreToCome.
    Stream,
}

/// The correlator's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing in flight.
    Idle,
    /// Requests await replies.
    Waiting { in_flight: usize },
    /// A request's replies come with moreToCome; the last one had `last_reply_id`.
    Streaming { request_id: i32, last_reply_id: i32 },
}

/// What a server reply answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Matched<'c, T> {
    /// The request's last reply: its data, removed from the table.
    Done { request_id: i32, data: T },
    /// One reply of a stream (moreToCome): more follow for the same request.
    More { request_id: i32, data: &'c T },
}

#[derive(Debug)]
struct Stream<T> {
    request_id: i32,
    last_reply_id: i32,
    data: T,
}

/// Tracks requests by requestID and matches replies by responseTo.
#[derive(Debug)]
pub struct Correlator<T> {
    pending: HashMap<i32, T>,
    stream: Option<Stream<T>>,
    max_in_flight: usize,
}

impl<T> Correlator<T> {
    /// A correlator that keeps at most `max_in_flight` requests awaiting replies.
    pub fn new(max_in_flight: usize) -> Self {
        Correlator { pending: HashMap::new(), stream: None, max_in_flight }
    }

    pub fn state(&self) -> State {
        match &self.stream {
            Some(s) => State::Streaming { request_id: s.request_id, last_reply_id: s.last_reply_id },
            None if self.pending.is_empty() => State::Idle,
            None => State::Waiting { in_flight: self.pending.len() },
        }
    }

    /// Requests awaiting a reply (a streaming one included).
    pub fn in_flight(&self) -> usize {
        self.pending.len() + usize::from(self.stream.is_some())
    }

    /// A client request. With [`Expect::Nothing`] nothing is recorded and `data` is dropped.
    pub fn request(&mut self, header: &Header, expect: Expect, data: T) -> Result<(), MongoError> {
        if self.stream.is_some() {
            return Err(MongoError::RequestDuringExhaust);
        }
        if expect == Expect::Nothing {
            return Ok(());
        }
        if self.pending.contains_key(&header.request_id) {
            return Err(MongoError::DuplicateRequestId(header.request_id));
        }
        if self.pending.len() >= self.max_in_flight {
            return Err(MongoError::TooManyInFlight { limit: self.max_in_flight });
        }
        self.pending.insert(header.request_id, data);
        Ok(())
    }

    /// A server reply; `more_to_come` is its OP_MSG flag (of the decompressed message for
    /// OP_COMPRESSED).
    pub fn reply(&mut self, header: &Header, more_to_come: bool) -> Result<Matched<'_, T>, MongoError> {
        let to = header.response_to;
        if let Some(s) = &self.stream {
            if to == s.last_reply_id || to == s.request_id {
                if more_to_come {
                    let s = self.stream.as_mut().ok_or(MongoError::UnmatchedReply { response_to: to })?;
                    s.last_reply_id = header.request_id;
                    return Ok(Matched::More { request_id: s.request_id, data: &s.data });
                }
                let s = self.stream.take().ok_or(MongoError::UnmatchedReply { response_to: to })?;
                return Ok(Matched::Done { request_id: s.request_id, data: s.data });
            }
        }
        let data = self.pending.remove(&to).ok_or(MongoError::UnmatchedReply { response_to: to })?;
        if !more_to_come {
            return Ok(Matched::Done { request_id: to, data });
        }
        // A stream replaces any earlier one that never ended (the server moved on).
        let s = self.stream.insert(Stream { request_id: to, last_reply_id: header.request_id, data });
        Ok(Matched::More { request_id: s.request_id, data: &s.data })
    }

    /// Forgets everything (the connection closed or decoding stopped); returns the data of
    /// the requests that never got their last reply.
    pub fn drain(&mut self) -> Vec<(i32, T)> {
        let mut out: Vec<(i32, T)> = self.pending.drain().collect();
        if let Some(s) = self.stream.take() {
            out.push((s.request_id, s.data));
        }
        out.sort_by_key(|(id, _)| *id);
        out
    }
}
