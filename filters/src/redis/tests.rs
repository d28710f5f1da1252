//! The `redis` filter driven sans-I/O: bytes in, bytes queued for each side out.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sluice_codecs::resp::RespLimits;

use super::stats::RedisStats;
use super::{RedisFilter, RedisListener};
use crate::filter::{CloseReason, FilterStatus};
use crate::policy::{Action, Fault, FaultAction, FaultSet, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use crate::stream::{StreamFilter, StreamIo, WriteQueue};

fn listener(rules: Vec<Rule>, faults: Vec<Fault>) -> Arc<RedisListener> {
    Arc::new(RedisListener {
        name: "cache".into(),
        rules: Arc::new(RuleSet::new(rules)),
        faults: FaultSet::new(faults),
        stats: RedisStats::new("cache", &[]),
        request_limits: RespLimits::requests(),
        reply_limits: RespLimits::replies(),
    })
}

fn deny(op: &str) -> Rule {
    Rule { matcher: Matcher { ops: vec![op.into()], ..Default::default() }, action: Action::Deny }
}

fn limit(op: &str, per_second: u32, on_limit: OnLimit) -> Rule {
    let n = NonZeroU32::new(per_second).unwrap();
    Rule {
        matcher: Matcher { ops: vec![op.into()], ..Default::default() },
        action: Action::RateLimit(RateLimit::new(n, Duration::from_secs(1), n, LimitKind::Op, on_limit)),
    }
}

/// A filter with both read buffers and both output queues.
struct Conn {
    filter: RedisFilter,
    from_client: BytesMut,
    from_server: BytesMut,
    to_server: WriteQueue,
    to_client: WriteQueue,
    now: Instant,
}

impl Conn {
    fn new(listener: Arc<RedisListener>) -> Self {
        Conn {
            filter: RedisFilter::new(listener, "127.0.0.1".parse().unwrap()),
            from_client: BytesMut::new(),
            from_server: BytesMut::new(),
            to_server: WriteQueue::default(),
            to_client: WriteQueue::default(),
            now: Instant::now(),
        }
    }

    fn observe() -> Self {
        Self::new(listener(vec![], vec![]))
    }

    /// Client bytes in; returns the filter's status.
    fn client(&mut self, bytes: &[u8]) -> FilterStatus {
        self.from_client.extend_from_slice(bytes);
        let mut io = StreamIo { now: self.now, to_upstream: &mut self.to_server, to_downstream: &mut self.to_client };
        self.filter.on_downstream(&mut self.from_client, false, &mut io)
    }

    fn server(&mut self, bytes: &[u8]) -> FilterStatus {
        self.from_server.extend_from_slice(bytes);
        let mut io = StreamIo { now: self.now, to_upstream: &mut self.to_server, to_downstream: &mut self.to_client };
        self.filter.on_upstream(&mut self.from_server, false, &mut io)
    }

    fn sent_to_server(&mut self) -> String {
        drain(&mut self.to_server)
    }

    fn sent_to_client(&mut self) -> String {
        drain(&mut self.to_client)
    }

    fn pending(&self) -> usize {
        self.filter.session.pending.len()
    }
}

fn drain(queue: &mut WriteQueue) -> String {
    String::from_utf8(queue.take_all()).unwrap()
}

fn cmd(args: &[&str]) -> String {
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out += &format!("${}\r\n{a}\r\n", a.len());
    }
    out
}

#[test]
fn a_pipeline_passes_unchanged_as_one_slice_and_replies_are_matched() {
    let mut c = Conn::observe();
    let pipeline = cmd(&["PING"]) + &cmd(&["SET", "k", "v"]) + &cmd(&["GET", "k"]) + "PING\r\n";
    c.client(pipeline.as_bytes());
    assert_eq!(c.to_server.len(), pipeline.len());
    assert_eq!(c.sent_to_server(), pipeline);
    assert_eq!(c.pending(), 4);
    c.server(b"+PONG\r\n+OK\r\n$1\r\nv");
    assert_eq!(c.pending(), 2, "the GET reply is incomplete");
    c.server(b"\r\n+PONG\r\n");
    assert_eq!(c.pending(), 0);
    assert_eq!(c.sent_to_client(), "+PONG\r\n+OK\r\n$1\r\nv\r\n+PONG\r\n");
}

#[test]
fn frames_split_at_every_byte_reassemble() {
    let pipeline = cmd(&["SET", "key", "a value"]) + &cmd(&["LRANGE", "l", "0", "-1"]);
    let replies = "+OK\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n";
    let mut c = Conn::observe();
    for b in pipeline.bytes() {
        c.client(&[b]);
    }
    assert_eq!(c.sent_to_server(), pipeline);
    for b in replies.bytes() {
        c.server(&[b]);
    }
    assert_eq!(c.sent_to_client(), replies);
    assert_eq!(c.pending(), 0);
}

#[test]
fn a_denied_command_is_answered_in_its_place_in_the_pipeline() {
    let mut c = Conn::new(listener(vec![deny("FLUSHALL")], vec![]));
    c.client((cmd(&["GET", "a"]) + &cmd(&["flushall"]) + &cmd(&["GET", "b"])).as_bytes());
    assert_eq!(c.sent_to_server(), cmd(&["GET", "a"]) + &cmd(&["GET", "b"]));
    assert_eq!(c.sent_to_client(), "", "the refusal waits for GET a's reply");
    c.server(b"$1\r\n1\r\n");
    assert_eq!(c.sent_to_client(), "$1\r\n1\r\n-ERR sluice: command FLUSHALL denied by policy\r\n");
    c.server(b"$1\r\n2\r\n");
    assert_eq!(c.sent_to_client(), "$1\r\n2\r\n");
    // Nothing in flight: the refusal goes out at once.
    c.client(cmd(&["FLUSHALL", "ASYNC"]).as_bytes());
    assert_eq!(c.sent_to_client(), "-ERR sluice: command FLUSHALL denied by policy\r\n");
    assert_eq!(c.sent_to_server(), "");
}

#[test]
fn a_subcommand_is_denied_after_its_sibling_was_let_through() {
    // The lookup cache must not answer `CONFIG SET` with the `CONFIG GET` it saw last.
    let mut c = Conn::new(listener(vec![deny("CONFIG SET")], vec![]));
    c.client(cmd(&["config", "get", "maxmemory"]).as_bytes());
    assert_eq!(c.sent_to_server(), cmd(&["config", "get", "maxmemory"]));
    c.server(b"*0\r\n");
    c.client(cmd(&["config", "set", "maxmemory", "1"]).as_bytes());
    assert_eq!(c.sent_to_server(), "", "CONFIG SET never reaches the server");
    assert_eq!(c.sent_to_client(), "*0\r\n-ERR sluice: command CONFIG SET denied by policy\r\n");
}

#[test]
fn rate_limit_rejects_the_excess_in_reply_order() {
    let mut c = Conn::new(listener(vec![limit("INCR", 2, OnLimit::Reject)], vec![]));
    let pipeline: String = (0..4).map(|_| cmd(&["INCR", "n"])).collect();
    c.client(pipeline.as_bytes());
    assert_eq!(c.sent_to_server(), cmd(&["INCR", "n"]).repeat(2));
    c.server(b":1\r\n:2\r\n");
    let limited = "-ERR sluice: rate limit exceeded for INCR\r\n";
    assert_eq!(c.sent_to_client(), format!(":1\r\n:2\r\n{limited}{limited}"));
}

#[test]
fn a_delayed_command_holds_the_rest_of_the_pipeline() {
    // 20/s with a burst of 1: the second GET waits about 50 ms (governor's real clock).
    let rule = Rule {
        matcher: Matcher { ops: vec!["GET".into()], ..Default::default() },
        action: Action::RateLimit(RateLimit::new(
            NonZeroU32::new(20).unwrap(),
            Duration::from_secs(1),
            NonZeroU32::MIN,
            LimitKind::Op,
            OnLimit::Delay { max_delay: Duration::from_secs(5) },
        )),
    };
    let mut c = Conn::new(listener(vec![rule], vec![]));
    c.client((cmd(&["GET", "a"]) + &cmd(&["GET", "b"]) + &cmd(&["PING"])).as_bytes());
    assert_eq!(c.sent_to_server(), cmd(&["GET", "a"]));
    let wake = c.filter.wake_at().expect("held");
    assert!(wake > c.now);
    // Woken too early: still held.
    c.client(b"");
    assert_eq!(c.sent_to_server(), "");
    std::thread::sleep(wake.saturating_duration_since(Instant::now()) + Duration::from_millis(5));
    c.now = Instant::now();
    c.client(b"");
    assert_eq!(c.sent_to_server(), cmd(&["GET", "b"]) + &cmd(&["PING"]));
    assert!(c.filter.wake_at().is_none());
}

#[test]
fn a_refused_command_inside_multi_aborts_exec() {
    let mut c = Conn::new(listener(vec![deny("FLUSHDB")], vec![]));
    c.client((cmd(&["MULTI"]) + &cmd(&["SET", "k", "v"]) + &cmd(&["FLUSHDB"]) + &cmd(&["EXEC"])).as_bytes());
    assert_eq!(c.sent_to_server(), cmd(&["MULTI"]) + &cmd(&["SET", "k", "v"]) + &cmd(&["DISCARD"]));
    c.server(b"+OK\r\n+QUEUED\r\n+OK\r\n");
    assert_eq!(
        c.sent_to_client(),
        "+OK\r\n+QUEUED\r\n-ERR sluice: command FLUSHDB denied by policy\r\n\
         -EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(c.pending(), 0);
}

#[test]
fn client_reply_off_and_skip_expect_no_replies() {
    let mut c = Conn::new(listener(vec![deny("KEYS")], vec![]));
    c.client((cmd(&["CLIENT", "REPLY", "OFF"]) + &cmd(&["SET", "a", "1"]) + &cmd(&["KEYS", "*"])).as_bytes());
    assert_eq!(c.pending(), 0);
    assert_eq!(c.sent_to_client(), "", "no refusal either: the client asked for silence");
    c.client((cmd(&["CLIENT", "REPLY", "ON"]) + &cmd(&["CLIENT", "REPLY", "SKIP"]) + &cmd(&["GET", "a"])).as_bytes());
    c.client(cmd(&["GET", "a"]).as_bytes());
    assert_eq!(c.pending(), 2, "REPLY ON and the last GET");
    c.server(b"+OK\r\n$1\r\n1\r\n");
    assert_eq!(c.pending(), 0);
}

#[test]
fn pubsub_messages_are_not_replies() {
    let mut c = Conn::observe();
    c.client(cmd(&["SUBSCRIBE", "a", "b"]).as_bytes());
    c.server(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n");
    assert_eq!(c.pending(), 0);
    c.client(cmd(&["PING"]).as_bytes());
    c.server(b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n");
    assert_eq!(c.pending(), 1, "a message does not answer PING");
    c.server(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(c.pending(), 0);
    c.client(cmd(&["UNSUBSCRIBE"]).as_bytes());
    c.server(b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(c.pending(), 1, "one reply per subscribed channel");
    c.server(b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n");
    assert_eq!(c.pending(), 0);
}

#[test]
fn hello_and_auth_set_the_user_rules_match_on() {
    let rule = Rule {
        matcher: Matcher { users: vec!["app".into()], ops: vec!["DEL".into()], ..Default::default() },
        action: Action::Deny,
    };
    let mut c = Conn::new(listener(vec![rule], vec![]));
    c.client(cmd(&["HELLO", "3", "AUTH", "app", "secret"]).as_bytes());
    c.server(b"%1\r\n$6\r\nserver\r\n$5\r\nredis\r\n");
    assert_eq!(c.filter.session.user.as_deref(), Some("app"));
    assert!(c.filter.session.resp3);
    c.sent_to_client();
    c.client(cmd(&["DEL", "k"]).as_bytes());
    assert!(c.sent_to_client().starts_with("-ERR sluice: command DEL denied"));
    // A failed AUTH changes nothing.
    c.client(cmd(&["AUTH", "admin", "wrong"]).as_bytes());
    c.server(b"-WRONGPASS invalid username-password pair\r\n");
    assert_eq!(c.filter.session.user.as_deref(), Some("app"));
}

#[test]
fn faults_inject_errors_and_delays() {
    let error = Fault {
        matcher: Matcher { ops: vec!["GET".into()], ..Default::default() },
        percentage: 100.0,
        action: FaultAction::Error("ERR injected".into()),
    };
    let delay = Fault {
        matcher: Matcher { ops: vec!["SET".into()], ..Default::default() },
        percentage: 100.0,
        action: FaultAction::Delay(Duration::from_millis(20)),
    };
    let mut c = Conn::new(listener(vec![], vec![error, delay]));
    c.client(cmd(&["GET", "k"]).as_bytes());
    assert_eq!(c.sent_to_client(), "-ERR injected\r\n");
    c.client(cmd(&["SET", "k", "v"]).as_bytes());
    assert_eq!(c.sent_to_server(), "");
    c.now += Duration::from_millis(20);
    c.client(b"");
    assert_eq!(c.sent_to_server(), cmd(&["SET", "k", "v"]), "a delayed command is not delayed again");
}

#[test]
fn undecodable_input_fails_open_without_rules_and_closed_with_them() {
    let garbage = "*1\r\n:12\r\n+more\r\n";
    let mut open = Conn::observe();
    open.client(cmd(&["GET", "a"]).as_bytes());
    assert_eq!(open.client(garbage.as_bytes()), FilterStatus::Continue);
    assert_eq!(open.sent_to_server(), cmd(&["GET", "a"]) + garbage, "forwarded untouched");
    open.client(b"anything at all");
    assert_eq!(open.sent_to_server(), "anything at all");

    let mut closed = Conn::new(listener(vec![deny("FLUSHALL")], vec![]));
    assert_eq!(
        closed.client(format!("*1\r\n${}\r\n", u64::MAX).as_bytes()),
        FilterStatus::Close(CloseReason::ProtocolError)
    );
    assert!(closed.sent_to_client().starts_with("-ERR Protocol error: "));
    assert_eq!(closed.sent_to_server(), "");

    // With a reply owed, the error waits for it, then the filter closes.
    let mut closed = Conn::new(listener(vec![deny("FLUSHALL")], vec![]));
    closed.client(cmd(&["GET", "a"]).as_bytes());
    assert_eq!(closed.client(b"*-5\r\n"), FilterStatus::Continue);
    assert_eq!(closed.server(b"$-1\r\n"), FilterStatus::Close(CloseReason::ProtocolError));
    let to_client = closed.sent_to_client();
    assert!(to_client.starts_with("$-1\r\n-ERR Protocol error: "), "{to_client}");
}

#[test]
fn deep_nesting_and_huge_lengths_are_refused_without_allocating() {
    let mut c = Conn::new(listener(vec![deny("FLUSHALL")], vec![]));
    assert_eq!(c.client(&b"*1\r\n".repeat(100)), FilterStatus::Close(CloseReason::ProtocolError));
    let mut c = Conn::new(listener(vec![deny("FLUSHALL")], vec![]));
    assert_eq!(c.client(b"*1\r\n$1073741824\r\n"), FilterStatus::Close(CloseReason::ProtocolError));
    assert!(c.from_client.capacity() < 1024);
}

#[test]
fn resp3_pushes_pass_between_replies() {
    let mut c = Conn::observe();
    c.client(cmd(&["GET", "k"]).as_bytes());
    c.server(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
    assert_eq!(c.pending(), 1);
    c.server(b"_\r\n");
    assert_eq!(c.pending(), 0);
    assert_eq!(c.sent_to_client(), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n_\r\n");
}

/// Every captured session (fixtures/redis), fed through an observing filter: the bytes
/// pass unchanged both ways and every reply finds its command, with none left over.
#[test]
fn captured_sessions_pass_unchanged_and_every_reply_is_matched() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/redis");
    let mut sessions = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("requests") {
            continue;
        }
        let requests = std::fs::read(&path).unwrap();
        let replies = std::fs::read(path.with_extension("replies")).unwrap();
        for chunk in [usize::MAX, 7] {
            let mut c = Conn::observe();
            requests
                .chunks(chunk.min(requests.len().max(1)))
                .for_each(|piece| assert_eq!(c.client(piece), FilterStatus::Continue));
            replies
                .chunks(chunk.min(replies.len().max(1)))
                .for_each(|piece| assert_eq!(c.server(piece), FilterStatus::Continue));
            let name = path.display();
            assert!(c.to_server.take_all() == requests, "{name}: requests changed");
            assert!(c.to_client.take_all() == replies, "{name}: replies changed");
            assert_eq!((c.pending(), c.filter.unexpected), (0, 0), "{name}: commands left waiting, replies unmatched");
        }
        sessions += 1;
    }
    assert!(sessions >= 9, "{sessions} sessions");
}

#[test]
fn a_client_that_never_reads_its_replies_is_paused_at_the_in_flight_limit() {
    let mut c = Conn::observe();
    let batch = cmd(&["INCR", "n"]).repeat(1024);
    for _ in 0..63 {
        c.client(batch.as_bytes());
    }
    assert!(!c.filter.downstream_paused());
    c.client(batch.as_bytes());
    assert!(c.filter.downstream_paused(), "{} in flight", c.pending());
    c.server(&b":1\r\n".repeat(10));
    assert!(!c.filter.downstream_paused());
}
