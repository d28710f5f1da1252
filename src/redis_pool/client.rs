//! One client connection of a `redis` listener in `mode: pool`: commands are read and
//! cut by the RESP scanner, checked against the listener's rules, and sent to the pooled
//! connection of their key's server (or split, answered here, or refused — `routing`).
//! Replies go back in the order the commands came, whichever server answers first: each
//! command leaves an entry in the client's queue, and the queue is written from its front
//! as entries complete.
//!
//! The client is not read while it has [`MAX_PENDING`] commands unanswered or a full
//! write queue, so a client that pipelines without reading is held back by TCP, as a
//! server would hold it. A `delay` rule holds the command, and everything after it, in
//! the read buffer until its time.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sluice_codecs::resp::{Command, FrameScanner, Reply};
use sluice_filters::filter::CloseSummary;
use sluice_filters::redis::command_table::{lookup, CommandId};
use sluice_filters::redis::merge::{encode_command, merge};
use sluice_filters::redis::routing::{route, Local, Merge, Route};
use sluice_filters::redis::RedisListener;
use sluice_filters::{CloseReason, Op, Outcome, Protocol, Verdict, WriteQueue};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

use super::upstream::{login, Slot, Upstream};
use super::{pools, Pools};
use crate::listener::ListenerRuntime;
use crate::socket_io::{read_once, write_once, IDLE_TICKS};
use transaction::Transaction;

mod auth;
mod redirect;
mod transaction;

/// Commands a client may have unanswered before it is no longer read.
const MAX_PENDING: usize = 4096;
/// Reply bytes queued for a client before it is no longer read.
const QUEUE_LIMIT: usize = 256 * 1024;
const READ_CHUNK: usize = 16 * 1024;
const MAX_IOV: usize = 64;

/// A command in the client's reply queue.
struct Entry {
    id: CommandId,
    started: Instant,
    reply: Pending,
}

enum Pending {
    /// Answered already (by sluice, or refused).
    Ready(Bytes, Outcome),
    /// Sent to one server (on a connection of the client's own, or not to be redirected).
    One(Rc<Slot>),
    /// Sent to the server of its key on a pooled connection: followed to another server
    /// if a Redis Cluster answers MOVED or ASK.
    Routed { slot: Rc<Slot>, command: Bytes, redirects: u8 },
    /// Split over servers: each part's slot and the client's key positions it carries.
    Split { merge: Merge, parts: Vec<(Rc<Slot>, Vec<usize>)>, keys: usize },
}

impl Pending {
    fn is_done(&self) -> bool {
        match self {
            Pending::Ready(..) => true,
            Pending::One(slot) | Pending::Routed { slot, .. } => slot.is_filled(),
            Pending::Split { parts, .. } => parts.iter().all(|(slot, _)| slot.is_filled()),
        }
    }
}

/// Serves one client until it leaves (or QUIT, or the idle timeout).
pub async fn serve(
    downstream: TcpStream,
    runtime: &Arc<ListenerRuntime>,
    client_ip: IpAddr,
    summary: &mut CloseSummary,
) -> CloseReason {
    let (Some(pools), Some(redis)) = (pools(runtime), runtime.redis()) else { return CloseReason::ProtocolError };
    // In front of a Redis Cluster, the first clients wait for the slot map (a refresh
    // under way elsewhere is waited for, up to the connect timeout).
    let deadline = Instant::now() + pools.connect_timeout;
    while !pools.placement_known() && !pools.refresh().await && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = Client {
        socket: downstream,
        pools,
        redis: redis.clone(),
        runtime: runtime.clone(),
        client_ip,
        notify: Rc::new(Notify::new()),
        input: BytesMut::new(),
        scanner: FrameScanner::new(redis.request_limits),
        queue: VecDeque::new(),
        out: WriteQueue::default(),
        quit: false,
        eof: false,
        hold: None,
        authenticated: auth::pool_users(runtime).is_empty(),
        user: None,
        own: Vec::new(),
        pinned: None,
        tx: None,
        subscribe: None,
    };
    client.run(summary).await
}

struct Client {
    socket: TcpStream,
    pools: Rc<Pools>,
    redis: Arc<RedisListener>,
    runtime: Arc<ListenerRuntime>,
    client_ip: IpAddr,
    /// Woken when a slot of this client is filled.
    notify: Rc<Notify>,
    input: BytesMut,
    scanner: FrameScanner,
    queue: VecDeque<Entry>,
    out: WriteQueue,
    quit: bool,
    eof: bool,
    hold: Option<Instant>,
    /// AUTH is not needed, or the client has passed it (as `user`).
    authenticated: bool,
    user: Option<String>,
    /// The client's own connections, by server: blocking commands and transactions.
    own: Vec<Option<Rc<Upstream>>>,
    /// The server WATCH tied the client to, until EXEC, DISCARD or UNWATCH.
    pinned: Option<usize>,
    tx: Option<Transaction>,
    /// A subscription asked for (server, command): the connection becomes a tunnel to
    /// that server once the replies before it are written.
    subscribe: Option<(usize, Bytes)>,
}

impl Drop for Client {
    fn drop(&mut self) {
        for own in self.own.iter().flatten() {
            own.close();
        }
    }
}

impl Client {
    async fn run(mut self, summary: &mut CloseSummary) -> CloseReason {
        let idle_timeout = self.runtime.config.idle_timeout;
        let tick = idle_timeout / IDLE_TICKS;
        let mut quiet_ticks = 0;
        let mut active = false;
        let idle = tokio::time::sleep(tick);
        tokio::pin!(idle);
        loop {
            self.collect_replies();
            if (self.quit || self.eof) && self.queue.is_empty() && self.out.is_empty() {
                return CloseReason::Done;
            }
            if self.subscribe.is_some() && self.queue.is_empty() && self.out.is_empty() {
                return self.tunnel(summary).await;
            }
            let can_read = !self.quit
                && !self.eof
                && self.subscribe.is_none()
                && self.hold.is_none()
                && self.queue.len() < MAX_PENDING
                && self.out.len() < QUEUE_LIMIT;
            let hold = self.hold;
            tokio::select! {
                ready = self.socket.readable(), if can_read => {
                    if ready.is_err() {
                        return CloseReason::DownstreamError;
                    }
                    if self.input.capacity() - self.input.len() < READ_CHUNK / 4 {
                        self.input.reserve(READ_CHUNK);
                    }
                    match read_once(&self.socket, &mut self.input) {
                        Ok(Some(0)) => self.eof = true,
                        Ok(Some(n)) => {
                            summary.bytes_from_downstream += n as u64;
                            self.runtime.stats.bytes_rx.increment(n as u64);
                            active = true;
                            if let Err(reason) = self.take_commands() {
                                self.collect_replies();
                                let _ = self.write();
                                return reason;
                            }
                        }
                        Ok(None) => {}
                        Err(_) => return CloseReason::DownstreamError,
                    }
                }
                ready = self.socket.writable(), if !self.out.is_empty() => {
                    match ready.and_then(|()| self.write()) {
                        Ok(n) => {
                            summary.bytes_from_upstream += n as u64;
                            active |= n > 0;
                        }
                        Err(_) => return CloseReason::DownstreamError,
                    }
                }
                () = self.notify.notified(), if !self.queue.is_empty() => {}
                () = sleep_until(hold.unwrap_or_else(Instant::now)), if hold.is_some() => {
                    self.hold = None;
                    if let Err(reason) = self.take_commands() {
                        return reason;
                    }
                }
                () = &mut idle => {
                    quiet_ticks = if active || !self.queue.is_empty() { 0 } else { quiet_ticks + 1 };
                    if quiet_ticks >= IDLE_TICKS {
                        return CloseReason::IdleTimeout;
                    }
                    active = false;
                    let next = idle.deadline() + tick;
                    idle.as_mut().reset(next);
                }
            }
        }
    }

    /// Cuts every complete command off the read buffer and dispatches it.
    fn take_commands(&mut self) -> Result<(), CloseReason> {
        while self.hold.is_none() && self.subscribe.is_none() && self.queue.len() < MAX_PENDING {
            let n = match self.scanner.scan(&self.input) {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(()),
                Err(error) => {
                    let reply = format!("-ERR Protocol error: {error}\r\n");
                    self.push(CommandId::OTHER, Pending::Ready(Bytes::from(reply), Outcome::Error));
                    return Err(CloseReason::ProtocolError);
                }
            };
            let frame = self.input.split_to(n).freeze();
            let Ok(command) = Command::parse(&frame) else {
                self.push(
                    CommandId::OTHER,
                    Pending::Ready(error("ERR Protocol error: unreadable command"), Outcome::Error),
                );
                return Err(CloseReason::ProtocolError);
            };
            if !self.dispatch(&frame, &command) {
                // Held by a delay rule: the command goes back to the front of the buffer.
                let mut rest = BytesMut::with_capacity(frame.len() + self.input.len());
                rest.extend_from_slice(&frame);
                rest.extend_from_slice(&self.input);
                self.input = rest;
            }
        }
        Ok(())
    }

    /// Sends, answers or refuses one command; false when a delay rule holds it.
    fn dispatch(&mut self, frame: &Bytes, command: &Command<'_>) -> bool {
        let spec = lookup(command.args());
        let id = spec.map_or(CommandId::OTHER, CommandId::of);
        let routed = route(command);
        let target = match &routed {
            Route::Key(key) => Some(*key),
            Route::SameServer(keys) => keys.first().copied(),
            Route::Split { .. } => command.arg(1),
            _ => None,
        };
        let name = spec.map_or("other", |s| s.name);
        if !self.authenticated
            && !matches!(routed, Route::Local(Local::Auth { .. } | Local::Hello { .. } | Local::Quit))
        {
            self.push(id, Pending::Ready(error("NOAUTH Authentication required."), Outcome::Denied));
            return true;
        }
        let verdict = self.redis.rules.evaluate(&Op {
            protocol: Protocol::Redis,
            listener: &self.redis.name,
            op: name,
            target,
            user: self.user.as_deref(),
            database: None,
            statement: None,
            client_id: None,
            client: self.client_ip,
        });
        match verdict {
            Verdict::Allow => {}
            Verdict::Delay { wait, .. } => {
                self.hold = Some(Instant::now() + wait);
                return false;
            }
            Verdict::Deny { .. } => {
                let reply = error(&format!("ERR sluice: command {name} denied by policy"));
                self.push(id, Pending::Ready(reply, Outcome::Denied));
                return true;
            }
            Verdict::Limited { .. } => {
                let reply = error(&format!("ERR sluice: rate limit exceeded for {name}"));
                self.push(id, Pending::Ready(reply, Outcome::Limited));
                return true;
            }
        }
        if self.tx.is_some() && !matches!(routed, Route::Transaction(_) | Route::Local(Local::Quit)) {
            let pending = self.in_transaction(command, frame, routed);
            self.push(id, pending);
            return true;
        }
        let pending = match routed {
            Route::Local(Local::Pong) => Pending::Ready(Bytes::from_static(b"+PONG\r\n"), Outcome::Ok),
            Route::Local(Local::Ok) => Pending::Ready(Bytes::from_static(b"+OK\r\n"), Outcome::Ok),
            Route::Local(Local::Quit) => {
                self.quit = true;
                self.input.clear();
                Pending::Ready(Bytes::from_static(b"+OK\r\n"), Outcome::Ok)
            }
            Route::Local(Local::Auth { user, password }) => self.auth(user.unwrap_or(b"default"), password),
            Route::Local(Local::Hello { protover, auth }) => self.hello(protover, auth),
            Route::Local(Local::Echo(message)) => {
                let mut reply = format!("${}\r\n", message.len()).into_bytes();
                reply.extend_from_slice(message);
                reply.extend_from_slice(b"\r\n");
                Pending::Ready(Bytes::from(reply), Outcome::Ok)
            }
            Route::Refuse(message) => Pending::Ready(error(&message), Outcome::Error),
            Route::Key(key) => self.send(key, frame.clone()),
            Route::SameServer(keys) => {
                let servers: Vec<Option<usize>> = keys.iter().map(|k| self.pools.server_for(k)).collect();
                if servers.windows(2).any(|w| w[0] != w[1]) {
                    crossslot()
                } else {
                    self.send(keys[0], frame.clone())
                }
            }
            Route::Split { name, group, merge } => self.split(command, name, group, merge),
            Route::Blocking(keys) => match self.server_of_all(&keys) {
                Ok(server) => self.send_own(server, frame.clone()),
                Err(refusal) => refusal,
            },
            Route::Transaction(tx) => self.transaction(tx, frame),
            Route::Subscribe(channel) => match self.pools.server_for(channel) {
                Some(server) => {
                    self.subscribe = Some((server, frame.clone()));
                    return true;
                }
                None => Pending::Ready(error("ERR sluice: no upstream server"), Outcome::Error),
            },
        };
        self.push(id, pending);
        true
    }

    /// The one server all `keys` live on, or the CROSSSLOT refusal.
    fn server_of_all(&self, keys: &[&[u8]]) -> Result<usize, Pending> {
        let mut servers = keys.iter().map(|k| self.pools.server_for(k));
        let first = servers.next().flatten();
        match first {
            Some(server) if servers.all(|s| s == Some(server)) => Ok(server),
            Some(_) => Err(crossslot()),
            None => Err(Pending::Ready(error("ERR sluice: no upstream server"), Outcome::Error)),
        }
    }

    /// The client's own connection to `server`, opened on first use.
    fn own(&mut self, server: usize) -> Rc<Upstream> {
        if self.own.len() <= server {
            self.own.resize(server + 1, None);
        }
        self.own[server].get_or_insert_with(|| self.pools.own_connection(server)).clone()
    }

    fn send_own(&mut self, server: usize, command: Bytes) -> Pending {
        let slot = Slot::new(self.notify.clone());
        self.own(server).send(command, slot.clone());
        Pending::One(slot)
    }

    /// Turns the connection into a subscription: the subscribing command and whatever the
    /// client sent after it go to the channel's server, then bytes flow both ways as they
    /// come until either side closes. The connection stays on that server from then on.
    async fn tunnel(&mut self, summary: &mut CloseSummary) -> CloseReason {
        use tokio::io::AsyncWriteExt;
        let Some((server, frame)) = self.subscribe.take() else { return CloseReason::Done };
        let address = self.pools.server(server).address;
        let connected = tokio::time::timeout(self.pools.connect_timeout, TcpStream::connect(address)).await;
        let Ok(Ok(mut upstream)) = connected else {
            let _ = self.socket.write_all(b"-ERR sluice: upstream server unavailable\r\n").await;
            return CloseReason::UpstreamConnectFailed;
        };
        if let Some(auth) = &self.pools.auth {
            if let Err(refused) = login(&mut upstream, auth, self.pools.limits, self.pools.connect_timeout).await {
                let _ = self.socket.write_all(refused.as_bytes()).await;
                return CloseReason::UpstreamError;
            }
        }
        if upstream.write_all(&frame).await.is_err() || upstream.write_all(&self.input).await.is_err() {
            return CloseReason::UpstreamError;
        }
        self.input.clear();
        match tokio::io::copy_bidirectional(&mut self.socket, &mut upstream).await {
            Ok((up, down)) => {
                summary.bytes_from_downstream += up;
                summary.bytes_from_upstream += down;
                self.runtime.stats.bytes_rx.increment(up);
                self.runtime.stats.bytes_tx.increment(down);
                CloseReason::Done
            }
            Err(_) => CloseReason::DownstreamError,
        }
    }

    /// Sends `command` to the server of `key`.
    fn send(&self, key: &[u8], command: Bytes) -> Pending {
        let Some(server) = self.pools.server_for(key) else {
            return Pending::Ready(error("ERR sluice: no upstream server"), Outcome::Error);
        };
        let slot = Slot::new(self.notify.clone());
        self.pools.server(server).pick().send(command.clone(), slot.clone());
        Pending::Routed { slot, command, redirects: 0 }
    }

    /// Sends each server the part of a multi-key command it holds.
    fn split(&self, command: &Command<'_>, name: &[u8], group: usize, merge: Merge) -> Pending {
        let args: Vec<&[u8]> = command.args().skip(1).collect();
        let keys = args.len() / group;
        // One part per server; per hash slot in front of a Redis Cluster, whose nodes
        // refuse multi-key commands across slots.
        let mut parts_by: Vec<((usize, u16), Vec<usize>)> = Vec::new();
        for k in 0..keys {
            let Some(part) = self.pools.part_for(args[k * group]) else {
                return Pending::Ready(error("ERR sluice: no upstream server"), Outcome::Error);
            };
            match parts_by.iter_mut().find(|(p, _)| *p == part) {
                Some((_, positions)) => positions.push(k),
                None => parts_by.push((part, vec![k])),
            }
        }
        let parts = parts_by
            .into_iter()
            .map(|((server, _), positions)| {
                let part_args: Vec<&[u8]> =
                    positions.iter().flat_map(|&k| args[k * group..k * group + group].iter().copied()).collect();
                let slot = Slot::new(self.notify.clone());
                self.pools.server(server).pick().send(encode_command(name, part_args.into_iter()), slot.clone());
                (slot, positions)
            })
            .collect();
        Pending::Split { merge, parts, keys }
    }

    fn push(&mut self, id: CommandId, reply: Pending) {
        self.queue.push_back(Entry { id, started: Instant::now(), reply });
    }

    /// Moves the replies at the front of the queue that are complete to the write queue,
    /// counting each command.
    fn collect_replies(&mut self) {
        let now = Instant::now();
        while self.queue.front().is_some_and(|e| e.reply.is_done()) {
            if self.follow_redirect() {
                continue;
            }
            let Some(entry) = self.queue.pop_front() else { break };
            let (reply, outcome) = match entry.reply {
                Pending::Ready(reply, outcome) => (reply, outcome),
                Pending::One(slot) | Pending::Routed { slot, .. } => (slot.take().unwrap_or_default(), Outcome::Ok),
                Pending::Split { merge: how, parts, keys } => {
                    let parts: Vec<(Bytes, Vec<usize>)> = parts
                        .into_iter()
                        .map(|(slot, positions)| (slot.take().unwrap_or_default(), positions))
                        .collect();
                    (merge(how, &parts, keys, &self.redis.reply_limits), Outcome::Ok)
                }
            };
            let view = Reply::parse(&reply);
            let outcome = if outcome == Outcome::Ok && view.is_error() {
                if let Some(prefix) = view.error_prefix() {
                    self.redis.stats.error(prefix);
                }
                Outcome::Error
            } else {
                outcome
            };
            let elapsed: Duration = now.saturating_duration_since(entry.started);
            self.redis.stats.command(entry.id).record(outcome, Some(elapsed));
            self.out.push(reply);
        }
    }

    /// Writes what the client takes now; returns the bytes written.
    fn write(&mut self) -> std::io::Result<usize> {
        let mut total = 0;
        while !self.out.is_empty() {
            let (written, wanted) = {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let count = self.out.io_slices(&mut slices);
                let slices = &slices[..count];
                (write_once(&self.socket, slices)?, slices.iter().map(|s| s.len()).sum::<usize>())
            };
            self.out.advance(written);
            total += written;
            self.runtime.stats.bytes_tx.increment(written as u64);
            if written < wanted {
                break;
            }
        }
        Ok(total)
    }
}

fn crossslot() -> Pending {
    let message = "CROSSSLOT Keys in request don't hash to the same server (use hash tags: {…})";
    Pending::Ready(error(message), Outcome::Error)
}

/// Sent in place of the EXEC of a transaction that lost a command.
const DISCARD: &[u8] = b"*1\r\n$7\r\nDISCARD\r\n";
const EXECABORT: &[u8] = b"-EXECABORT Transaction discarded because of previous errors.\r\n";

fn error(message: &str) -> Bytes {
    Bytes::from(format!("-{message}\r\n"))
}
