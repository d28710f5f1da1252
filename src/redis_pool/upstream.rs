//! One pooled connection to a Redis server, shared by the clients of a worker: commands
//! from any of them are queued, written together on the next turn of the connection's
//! task (one write carries every command queued since the last), and replies are matched
//! back in order, each to the [`Slot`] its command left.
//!
//! The connection is opened on first use. When it fails (refused, reset, a reply that does
//! not parse, a reply that does not come within the pool's timeout), every command waiting
//! on it is answered with an error, and the next command opens it again — not before a
//! short backoff, during which commands are refused at once instead of piling up.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sluice_codecs::resp::{FrameScanner, RespLimits};
use sluice_filters::redis::merge::encode_command;
use sluice_filters::WriteQueue;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::group::Group;
use super::stats::ServerStats;
use super::wire::{Read, Wire};
use crate::cluster_tls::ClusterTls;
use crate::tls_stream::TlsSide;

/// How long a server that failed is left alone before it is tried again.
const BACKOFF: Duration = Duration::from_millis(500);
const READ_CHUNK: usize = 64 * 1024;

/// Where the reply to one command lands, and whom to wake when it does.
pub struct Slot {
    reply: RefCell<Option<Bytes>>,
    /// The reply is sluice's error: the command never got a server's answer.
    failed: Cell<bool>,
    client: Rc<Notify>,
}

impl Slot {
    pub fn new(client: Rc<Notify>) -> Rc<Slot> {
        Rc::new(Slot { reply: RefCell::new(None), failed: Cell::new(false), client })
    }

    pub fn is_filled(&self) -> bool {
        self.reply.borrow().is_some()
    }

    /// Answered by sluice's error because the connection failed, not by a server.
    pub fn is_failed(&self) -> bool {
        self.failed.get()
    }

    /// Answers with sluice's error for a connection that failed.
    fn fail(&self, error: &'static str) {
        self.failed.set(true);
        self.fill(Bytes::from_static(error.as_bytes()));
    }

    /// Looks at the reply without taking it.
    pub fn peek<T>(&self, look: impl FnOnce(&[u8]) -> Option<T>) -> Option<T> {
        self.reply.borrow().as_deref().and_then(look)
    }

    pub fn take(&self) -> Option<Bytes> {
        self.reply.borrow_mut().take()
    }

    pub fn fill(&self, reply: Bytes) {
        *self.reply.borrow_mut() = Some(reply);
        self.client.notify_one();
    }
}

/// Where a connection goes and how it starts: TCP, TLS when the cluster originates it,
/// then the login commands.
#[derive(Clone)]
pub struct Target {
    pub address: SocketAddr,
    /// The server as configured or announced (`host:port`): the TLS server name's source.
    pub name: String,
    pub connect_timeout: Duration,
    pub limits: RespLimits,
    pub login: Option<LoginCommands>,
    pub tls: Option<ClusterTls>,
}

impl Target {
    /// Opens a connection: connected, through its TLS handshake, logged in.
    pub async fn open(&self) -> Result<Wire, &'static str> {
        let unavailable = "-ERR sluice: upstream server unavailable\r\n";
        let tls_failed = "-ERR sluice: TLS to the upstream server failed\r\n";
        let connect = tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.address));
        let stream = connect.await.map_err(|_| unavailable)?.map_err(|_| unavailable)?;
        let _ = stream.set_nodelay(true);
        let mut wire = match &self.tls {
            None => Wire::plain(stream),
            Some(tls) => {
                let session = tls.connect_to(&self.name).map_err(|_| tls_failed)?;
                let mut wire = Wire::tls(stream, TlsSide::client(session));
                let handshake = tokio::time::timeout(self.connect_timeout, wire.handshake());
                handshake.await.map_err(|_| tls_failed)?.map_err(|_| tls_failed)?;
                wire
            }
        };
        if let Some(commands) = &self.login {
            login(&mut wire, commands, self.limits, self.connect_timeout).await?;
        }
        Ok(wire)
    }
}

/// One connection of a server's pool.
pub struct Upstream {
    stats: ServerStats,
    target: Target,
    /// Asked for a new slot map when the connection fails (in front of a Redis Cluster).
    on_failure: Option<Weak<Group>>,
    /// `None` for a client's own connection, where a blocking command may wait forever.
    reply_timeout: Option<Duration>,
    queue: RefCell<Queue>,
    wake: Notify,
    running: Cell<bool>,
    /// Until when commands are refused after a failure.
    down_until: Cell<Option<Instant>>,
    /// Its owner is gone: the connection closes.
    closed: Cell<bool>,
}

#[derive(Default)]
struct Queue {
    /// Commands not yet written.
    out: WriteQueue,
    /// Commands written or queued, oldest first, awaiting their replies.
    waiting: VecDeque<Rc<Slot>>,
}

impl Upstream {
    pub fn new(
        target: Target,
        reply_timeout: Option<Duration>,
        stats: ServerStats,
        on_failure: Option<Weak<Group>>,
    ) -> Rc<Self> {
        Rc::new(Upstream {
            stats,
            target,
            on_failure,
            reply_timeout,
            queue: RefCell::default(),
            wake: Notify::new(),
            running: Cell::new(false),
            down_until: Cell::new(None),
            closed: Cell::new(false),
        })
    }

    /// Closes the connection (a client's own, when the client leaves); what waits on it is
    /// answered with an error nobody reads.
    pub fn close(&self) {
        self.closed.set(true);
        self.wake.notify_one();
    }

    /// In the backoff after a failure: commands are refused at once.
    pub fn is_down(&self) -> bool {
        self.down_until.get().is_some_and(|until| Instant::now() < until)
    }

    /// Queues a command; its reply (or an error) goes to `slot`.
    pub fn send(self: &Rc<Self>, command: Bytes, slot: Rc<Slot>) {
        if self.is_down() {
            slot.fail("-ERR sluice: upstream server unavailable\r\n");
            return;
        }
        {
            let mut queue = self.queue.borrow_mut();
            queue.out.push(command);
            queue.waiting.push_back(slot);
        }
        if self.stats.pooled {
            self.stats.commands.increment(1);
            self.stats.in_flight.increment(1);
        }
        if self.running.replace(true) {
            self.wake.notify_one();
        } else {
            tokio::task::spawn_local(Rc::clone(self).run());
        }
    }

    async fn run(self: Rc<Self>) {
        let failure = match self.target.open().await {
            Ok(wire) => {
                let mut wire = wire.read_chunk(READ_CHUNK);
                self.stats.connections.increment(1);
                let failure = self.pump(&mut wire).await;
                self.stats.connections.decrement(1);
                failure
            }
            Err(failure) => failure,
        };
        if !self.closed.get() {
            self.stats.ejections.increment(1);
            self.down_until.set(Some(Instant::now() + BACKOFF));
            if let Some(group) = self.on_failure.as_ref().and_then(Weak::upgrade) {
                group.refresh_soon();
            }
        }
        self.running.set(false);
        self.fail_all(failure);
    }

    /// Answers every queued command with `error`.
    fn fail_all(&self, error: &'static str) {
        let mut queue = self.queue.borrow_mut();
        queue.out = WriteQueue::default();
        self.answered(queue.waiting.len());
        for slot in queue.waiting.drain(..) {
            slot.fail(error);
        }
    }

    /// Moves commands and replies until the connection fails; returns the error the
    /// commands still waiting get.
    async fn pump(&self, wire: &mut Wire) -> &'static str {
        let mut input = BytesMut::new();
        let mut scanner = FrameScanner::new(self.target.limits);
        let lost = "-ERR sluice: upstream connection lost\r\n";
        loop {
            if self.closed.get() {
                return lost;
            }
            let (has_out, waiting) = {
                let queue = self.queue.borrow();
                (wire.wants_write(&queue.out), !queue.waiting.is_empty())
            };
            // A server silent for the timeout while replies are owed ends the connection:
            // the replies behind the late one cannot arrive before it.
            let deadline = self.reply_timeout.map(|timeout| Instant::now() + timeout);
            tokio::select! {
                ready = wire.socket().readable() => {
                    if ready.is_err() {
                        return lost;
                    }
                    match wire.read_now(&mut input) {
                        Ok(Read::Closed) | Err(_) => return lost,
                        Ok(Read::Bytes(n)) if n > 0 => {
                            if let Err(error) = self.dispatch(&mut input, &mut scanner) {
                                return error;
                            }
                        }
                        Ok(_) => {}
                    }
                }
                ready = wire.socket().writable(), if has_out => {
                    if ready.is_err() || self.write(wire).is_err() {
                        return lost;
                    }
                }
                () = self.wake.notified(), if !has_out => {}
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if waiting && deadline.is_some() => {
                    return "-ERR sluice: upstream server timed out\r\n";
                }
            }
        }
    }

    /// Hands every complete reply in `input` to its slot.
    fn dispatch(&self, input: &mut BytesMut, scanner: &mut FrameScanner) -> Result<(), &'static str> {
        let mut answered = 0;
        let outcome = loop {
            let n = match scanner.scan(input) {
                Ok(Some(n)) => n,
                Ok(None) => break Ok(()),
                Err(_) => break Err("-ERR sluice: unreadable reply from the upstream server\r\n"),
            };
            let reply = input.split_to(n).freeze();
            let slot = self.queue.borrow_mut().waiting.pop_front();
            match slot {
                Some(slot) => slot.fill(reply),
                None => break Err("-ERR sluice: unexpected reply from the upstream server\r\n"),
            }
            answered += 1;
        };
        self.answered(answered);
        outcome
    }

    /// Counts `n` commands out of flight (once per read, not per reply).
    fn answered(&self, n: usize) {
        if self.stats.pooled && n > 0 {
            self.stats.in_flight.decrement(n as f64);
        }
    }

    fn write(&self, wire: &mut Wire) -> std::io::Result<()> {
        let mut queue = self.queue.borrow_mut();
        wire.write_now(&mut queue.out)?;
        if self.stats.pooled {
            self.stats.writes.increment(1);
        }
        Ok(())
    }
}

/// The commands a new connection starts with, pipelined, and how many replies they get.
#[derive(Clone, Debug)]
pub struct LoginCommands {
    pub bytes: Bytes,
    pub replies: usize,
}

/// What every connection of a pool logs in with, per RESP version: AUTH with the pool's
/// `upstream_auth` (inside HELLO 3 for RESP3 clients' connections), and READONLY where
/// replicas of a Redis Cluster are read from.
#[derive(Clone, Debug, Default)]
pub struct Login {
    resp2: Option<LoginCommands>,
    resp3: Option<LoginCommands>,
}

impl Login {
    pub fn new(auth: Option<(&str, &str)>, readonly: bool) -> Login {
        let mut resp2 = (BytesMut::new(), 0);
        let mut resp3 = (BytesMut::new(), 1);
        if let Some((user, password)) = auth {
            let args: [&[u8]; 2] = [user.as_bytes(), password.as_bytes()];
            resp2.0.extend_from_slice(&encode_command(b"AUTH", args.into_iter()));
            resp2.1 += 1;
            let args: [&[u8]; 4] = [b"3", b"AUTH", user.as_bytes(), password.as_bytes()];
            resp3.0.extend_from_slice(&encode_command(b"HELLO", args.into_iter()));
        } else {
            resp3.0.extend_from_slice(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n");
        }
        if readonly {
            for (bytes, replies) in [&mut resp2, &mut resp3] {
                bytes.extend_from_slice(b"*1\r\n$8\r\nREADONLY\r\n");
                *replies += 1;
            }
        }
        let commands = |(bytes, replies): (BytesMut, usize)| {
            (replies > 0).then(|| LoginCommands { bytes: bytes.freeze(), replies })
        };
        Login { resp2: commands(resp2), resp3: commands(resp3) }
    }

    pub fn for_version(&self, resp3: bool) -> Option<LoginCommands> {
        if resp3 {
            self.resp3.clone()
        } else {
            self.resp2.clone()
        }
    }
}

/// Sends a connection's login commands and reads their replies, before anything else
/// goes on it; any error reply (a wrong password, a server without RESP3) fails it.
pub async fn login(
    wire: &mut Wire,
    commands: &LoginCommands,
    limits: RespLimits,
    timeout: Duration,
) -> Result<(), &'static str> {
    let refused = "-ERR sluice: the upstream server refused sluice's login (AUTH, HELLO or READONLY)\r\n";
    let exchange = async {
        let mut out = WriteQueue::default();
        out.push(commands.bytes.clone());
        wire.write_all(&mut out).await.map_err(|_| refused)?;
        let mut reply = BytesMut::with_capacity(512);
        let mut scanner = FrameScanner::new(limits);
        let mut answered = 0;
        loop {
            if wire.read_some(&mut reply).await.map_err(|_| refused)? == 0 {
                return Err(refused);
            }
            while let Some(n) = scanner.scan(&reply).map_err(|_| refused)? {
                if matches!(reply.first(), Some(b'-' | b'!')) {
                    return Err(refused);
                }
                let _ = reply.split_to(n);
                answered += 1;
                if answered == commands.replies {
                    return if reply.is_empty() { Ok(()) } else { Err(refused) };
                }
            }
        }
    };
    tokio::time::timeout(timeout, exchange).await.unwrap_or(Err(refused))
}
