//! The state of one Redis connection that decides which upstream frame answers which
//! command: the FIFO of commands awaiting replies, the reply mode (`CLIENT REPLY`), the
//! protocol version (`HELLO`), pub/sub subscriptions, `MULTI`, and the authenticated
//! user.
//!
//! Spec: <https://redis.io/docs/latest/develop/reference/protocol-spec/> (pushes, RESP2
//! pub/sub replies), <https://redis.io/docs/latest/develop/interact/pubsub/> (subscribe
//! confirmations carry the subscription count), CLIENT REPLY, HELLO, MULTI and RESET
//! command pages.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use sluice_codecs::resp::{parse_value, Reply, ReplyKind, Value};

use super::command_table::CommandId;
use crate::op::Outcome;

/// Which subscription family a pub/sub command or confirmation belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubKind {
    Channel,
    Pattern,
    Shard,
}

/// How the client's next reply is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    /// `CLIENT REPLY OFF`: no replies until `CLIENT REPLY ON`.
    Off,
    /// `CLIENT REPLY SKIP`: no reply to the next command.
    Skip,
}

/// How a pending command is answered.
#[derive(Debug)]
pub enum Answer {
    /// By the upstream with this many frames; `None` until the command reaches the head
    /// of the queue (an argument-less UNSUBSCRIBE answers once per subscription then).
    Upstream { frames: Option<u32> },
    /// By sluice with these bytes, in turn; the op was already counted. (Boxed, like the
    /// other rare parts of an entry, to keep the common entry small: one per command.)
    Local(Box<Bytes>),
    /// The upstream answers one frame, which the client gets replaced by these bytes (an
    /// EXEC sent as DISCARD because a command of its transaction was refused).
    Replaced(Box<Bytes>),
}

/// What a successful reply changes in the connection's state.
#[derive(Debug, Default)]
pub enum Effect {
    #[default]
    None,
    /// HELLO: the protocol version asked for (if any) and the user authenticated.
    Hello {
        resp3: Option<bool>,
        user: Option<Box<str>>,
    },
    Auth(Box<str>),
    Reset,
    Monitor,
}

/// A command waiting for its reply.
#[derive(Debug)]
pub struct Pending {
    pub command: CommandId,
    pub sent: Instant,
    pub answer: Answer,
    pub subscription: Option<SubKind>,
    /// What its successful reply changes; `None` for almost every command.
    pub effect: Option<Box<Effect>>,
    /// One of its reply frames was an error.
    pub failed: bool,
}

/// Subscription counts, kept from the counts the confirmations carry.
#[derive(Clone, Copy, Debug, Default)]
pub struct Subscriptions {
    /// Channels plus patterns: the count `subscribe`/`psubscribe` confirmations carry.
    total: i64,
    channels: i64,
    patterns: i64,
    shard: i64,
}

impl Subscriptions {
    pub fn active(&self) -> bool {
        self.channels > 0 || self.patterns > 0 || self.shard > 0
    }

    fn of(&self, kind: SubKind) -> i64 {
        match kind {
            SubKind::Channel => self.channels,
            SubKind::Pattern => self.patterns,
            SubKind::Shard => self.shard,
        }
    }

    /// Applies a confirmation (`subscribe`, `unsubscribe`, …) carrying `count`.
    fn confirm(&mut self, kind: SubKind, count: i64) {
        match kind {
            SubKind::Shard => self.shard = count,
            SubKind::Channel | SubKind::Pattern => {
                let delta = count - self.total;
                self.total = count;
                let n = if kind == SubKind::Channel { &mut self.channels } else { &mut self.patterns };
                *n = (*n + delta).max(0);
            }
        }
    }
}

/// The confirmation kinds of the pub/sub commands: (name, family, whether it subscribes).
const CONFIRMATIONS: [(&[u8], SubKind); 6] = [
    (b"subscribe", SubKind::Channel),
    (b"unsubscribe", SubKind::Channel),
    (b"psubscribe", SubKind::Pattern),
    (b"punsubscribe", SubKind::Pattern),
    (b"ssubscribe", SubKind::Shard),
    (b"sunsubscribe", SubKind::Shard),
];

/// Pub/sub message kinds: pushed by the server, never replies.
const MESSAGES: [&[u8]; 3] = [b"message", b"pmessage", b"smessage"];

/// What an upstream frame is to the client's queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Role {
    /// It answers (part of) the command at the head of the queue.
    Reply,
    /// Out-of-band: a pub/sub message, a RESP3 push, a MONITOR line.
    Push,
    /// A reply nothing asked for (the queue is empty).
    Unexpected,
}

#[derive(Debug)]
pub struct Session {
    pub pending: VecDeque<Pending>,
    pub reply_mode: ReplyMode,
    pub resp3: bool,
    /// Inside MULTI; `true` once a command of the transaction was refused.
    pub multi: Option<bool>,
    pub subscriptions: Subscriptions,
    pub monitoring: bool,
    pub user: Option<Box<str>>,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            pending: VecDeque::new(),
            reply_mode: ReplyMode::On,
            resp3: false,
            multi: None,
            subscriptions: Subscriptions::default(),
            monitoring: false,
            user: None,
        }
    }
}

impl Session {
    /// Whether the client gets a reply to the command it just sent; consumes a SKIP.
    pub fn expects_reply(&mut self) -> bool {
        match self.reply_mode {
            ReplyMode::On => true,
            ReplyMode::Off => false,
            ReplyMode::Skip => {
                self.reply_mode = ReplyMode::On;
                false
            }
        }
    }

    /// Classifies an upstream frame and, for a reply, fixes how many frames the head
    /// command still expects.
    pub fn role(&mut self, reply: &Reply<'_>, frame: &[u8]) -> Role {
        // The common case first: a scalar (`+OK`, `$3`, `:1`, `-ERR`) answers the head.
        let scalar = !matches!(frame.first(), Some(b'*' | b'>' | b'|' | b'~' | b'%'));
        if scalar && !self.monitoring {
            return if self.pending.is_empty() { Role::Unexpected } else { Role::Reply };
        }
        // Fix an argument-less UNSUBSCRIBE's count before this frame's count changes it.
        self.head_frames();
        let kind = reply.kind();
        let aggregate = matches!(kind, ReplyKind::Push | ReplyKind::Array);
        let head_sub = self.pending.front().and_then(|p| p.subscription);
        if aggregate {
            if let Some(first) = reply.first_element() {
                let confirmation = CONFIRMATIONS.iter().find(|(name, _)| first.eq_ignore_ascii_case(name));
                if let Some(&(_, family)) = confirmation {
                    if let Some(count) = confirmation_count(frame) {
                        self.subscriptions.confirm(family, count);
                    }
                    if head_sub == Some(family) {
                        return Role::Reply;
                    }
                    // A confirmation the client did not ask for (a server-side unsubscribe).
                    return Role::Push;
                }
                let pubsub = kind == ReplyKind::Push || self.subscriptions.active();
                if pubsub && MESSAGES.iter().any(|m| first.eq_ignore_ascii_case(m)) {
                    return Role::Push;
                }
            }
        }
        if kind == ReplyKind::Push {
            return Role::Push;
        }
        if self.monitoring && kind == ReplyKind::SimpleString && frame.get(1).is_some_and(u8::is_ascii_digit) {
            return Role::Push;
        }
        if self.pending.is_empty() {
            Role::Unexpected
        } else {
            Role::Reply
        }
    }

    /// The frames the head command still expects, resolving an argument-less
    /// UNSUBSCRIBE's count now that every earlier confirmation has been seen.
    pub fn head_frames(&mut self) -> u32 {
        let subscriptions = self.subscriptions;
        let Some(head) = self.pending.front_mut() else { return 0 };
        match &mut head.answer {
            Answer::Upstream { frames } => *frames.get_or_insert_with(|| {
                let n = head.subscription.map_or(1, |k| subscriptions.of(k));
                u32::try_from(n.max(1)).unwrap_or(u32::MAX)
            }),
            Answer::Replaced(_) => 1,
            Answer::Local(_) => 0,
        }
    }

    /// Applies a completed command's effect.
    pub fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::None => {}
            Effect::Hello { resp3, user } => {
                if let Some(resp3) = resp3 {
                    self.resp3 = resp3;
                }
                if user.is_some() {
                    self.user = user;
                }
            }
            Effect::Auth(user) => self.user = Some(user),
            Effect::Reset => {
                self.resp3 = false;
                self.multi = None;
                self.subscriptions = Subscriptions::default();
                self.monitoring = false;
                self.reply_mode = ReplyMode::On;
                self.user = None;
            }
            Effect::Monitor => self.monitoring = true,
        }
    }

    /// The outcome of a finished command.
    pub fn outcome(failed: bool) -> Outcome {
        if failed {
            Outcome::Error
        } else {
            Outcome::Ok
        }
    }
}

/// The subscription count a confirmation carries as its third element.
fn confirmation_count(frame: &[u8]) -> Option<i64> {
    // Confirmations are rare and small: decoding the whole frame is fine here.
    match parse_value(&Bytes::copy_from_slice(frame)).ok()? {
        Value::Array(items) | Value::Push(items) => match items.get(2)? {
            Value::Integer(text) => std::str::from_utf8(text).ok()?.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(subscription: Option<SubKind>, frames: Option<u32>) -> Pending {
        Pending {
            command: CommandId::OTHER,
            sent: Instant::now(),
            answer: Answer::Upstream { frames },
            subscription,
            effect: None,
            failed: false,
        }
    }

    fn role(session: &mut Session, frame: &[u8]) -> Role {
        session.role(&Reply::parse(frame), frame)
    }

    #[test]
    fn resp2_subscriptions_turn_messages_into_pushes() {
        let mut s = Session::default();
        s.pending.push_back(pending(Some(SubKind::Channel), Some(2)));
        assert_eq!(role(&mut s, b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"), Role::Reply);
        assert_eq!(role(&mut s, b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"), Role::Reply);
        s.pending.pop_front();
        assert!(s.subscriptions.active());
        assert_eq!(role(&mut s, b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n"), Role::Push);
        // UNSUBSCRIBE without arguments: one reply per channel.
        s.pending.push_back(pending(Some(SubKind::Channel), None));
        assert_eq!(s.head_frames(), 2);
        role(&mut s, b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n");
        role(&mut s, b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n");
        assert!(!s.subscriptions.active());
        s.pending.pop_front();
        // Not subscribed: an array that starts with "message" is an ordinary reply.
        s.pending.push_back(pending(None, Some(1)));
        assert_eq!(role(&mut s, b"*1\r\n$7\r\nmessage\r\n"), Role::Reply);
    }

    #[test]
    fn resp3_pushes_are_never_replies_except_confirmations() {
        let mut s = Session { resp3: true, ..Session::default() };
        assert_eq!(role(&mut s, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"), Role::Push);
        s.pending.push_back(pending(Some(SubKind::Pattern), Some(1)));
        assert_eq!(role(&mut s, b">3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n"), Role::Reply);
        assert_eq!(role(&mut s, b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$2\r\nnx\r\n$1\r\nv\r\n"), Role::Push);
        assert_eq!(s.subscriptions.of(SubKind::Pattern), 1);
    }

    #[test]
    fn unsubscribe_with_nothing_subscribed_expects_one_reply() {
        let mut s = Session::default();
        s.pending.push_back(pending(Some(SubKind::Shard), None));
        assert_eq!(s.head_frames(), 1);
        assert_eq!(role(&mut s, b"*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n"), Role::Reply);
    }

    #[test]
    fn entries_stay_small() {
        // One per command in flight: the rare parts are boxed.
        assert!(std::mem::size_of::<Pending>() <= 48, "{}", std::mem::size_of::<Pending>());
    }

    #[test]
    fn reply_modes() {
        let mut s = Session::default();
        assert!(s.expects_reply());
        s.reply_mode = ReplyMode::Skip;
        assert!(!s.expects_reply());
        assert!(s.expects_reply());
        s.reply_mode = ReplyMode::Off;
        assert!(!s.expects_reply());
        assert!(!s.expects_reply());
        assert_eq!(role(&mut s, b"+OK\r\n"), Role::Unexpected);
    }
}
