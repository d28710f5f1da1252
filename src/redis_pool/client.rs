//! One client connection of a `redis` listener in `mode: pool`: commands are read and
//! cut by the RESP scanner, checked against the listener's rules, and sent to the pooled
//! connection of their key's server (or split, answered here, or refused — `routing`).
//! Replies go back in the order the commands came, whichever server answers first: each
//! command leaves an entry in the client's queue, and the queue is written from its front
//! as entries complete.
//!
//! The client is not read while it has [`MAX_PENDING`] commands unanswered or a full
//! write queue, so a client that pipelines without reading is held back by TCP, as a
//! server would hold it. A `delay` rule or fault holds the command, and everything after
//! it, in the read buffer until its time; an error fault answers it in the server's place.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sluice_codecs::resp::{Command, FrameScanner, Reply};
use sluice_filters::filter::CloseSummary;
use sluice_filters::policy::FaultAction;
use sluice_filters::redis::command_table::{CommandId, LastLookup, READONLY, WRITE};
use sluice_filters::redis::merge::{encode_command, merge};
use sluice_filters::redis::routing::{route, Local, Merge, Route};
use sluice_filters::redis::RedisListener;
use sluice_filters::{CloseReason, Op, Outcome, Protocol, Verdict, WriteQueue};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

use super::upstream::{Slot, Upstream};
use super::wire::{Read, Wire, WireError};
use super::{pools, sink_slot, Pools, ServerId};
use crate::listener::ListenerRuntime;
use crate::socket_io::IDLE_TICKS;
use crate::tls_stream::TlsSide;
use transaction::Transaction;

mod auth;
mod redirect;
mod transaction;

/// Commands a client may have unanswered before it is no longer read.
const MAX_PENDING: usize = 4096;
/// Reply bytes queued for a client before it is no longer read.
const QUEUE_LIMIT: usize = 256 * 1024;

/// One part of a split command: its server (and hash slot), and the client's key
/// positions it carries.
type Part = ((ServerId, u16), Vec<usize>);

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
    /// Sent to the server of its key on a pooled connection (of `group`): followed to
    /// another server if a Redis Cluster answers MOVED or ASK, and sent to `fallback`
    /// (the primary of the replica a read went to) if its connection fails.
    Routed { slot: Rc<Slot>, command: Bytes, group: usize, redirects: u8, fallback: Option<usize> },
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
    let deadline = Instant::now() + pools.groups[0].settings.connect_timeout;
    while !pools.placement_known() && !pools.refresh().await && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wire = match &runtime.config.tls {
        None => Wire::plain(downstream),
        Some(tls) => match rustls::ServerConnection::new(tls.server.clone()) {
            Ok(session) => Wire::tls(downstream, TlsSide::accepting(session)),
            Err(e) => {
                tracing::warn!(listener = %runtime.name, error = %e, "cannot start TLS");
                return CloseReason::TlsError;
            }
        },
    };
    let lane = pools.next_lane();
    let client = Client {
        wire,
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
        released_fault: false,
        rng: fastrand::Rng::new(),
        now: Instant::now(),
        last_lookup: LastLookup::default(),
        authenticated: auth::pool_users(runtime).is_empty(),
        user: None,
        resp3: false,
        lane,
        own: Vec::new(),
        pinned: None,
        tx: None,
        subscribe: None,
    };
    client.run(summary).await
}

struct Client {
    /// The client's socket, plain or through the listener's TLS.
    wire: Wire,
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
    /// Until when commands are held (by a delay rule, or a delay fault: `true`).
    hold: Option<(Instant, bool)>,
    /// The command at the front was held by a delay fault, whose time has come.
    released_fault: bool,
    /// Rolls the dice for faults.
    rng: fastrand::Rng,
    /// When the commands being dispatched were read.
    now: Instant,
    last_lookup: LastLookup,
    /// AUTH is not needed, or the client has passed it (as `user`).
    authenticated: bool,
    user: Option<String>,
    /// The client said HELLO 3: its commands go on RESP3 connections.
    resp3: bool,
    /// Which of each server's pooled connections the client uses (always the same, so
    /// its commands to a server stay in order).
    lane: usize,
    /// The client's own connections, by server: blocking commands and transactions.
    own: Vec<(ServerId, Rc<Upstream>)>,
    /// The server WATCH tied the client to, until EXEC, DISCARD or UNWATCH.
    pinned: Option<ServerId>,
    tx: Option<Transaction>,
    /// A subscription asked for (server, command): the connection becomes a tunnel to
    /// that server once the replies before it are written.
    subscribe: Option<(ServerId, Bytes)>,
}

impl Drop for Client {
    fn drop(&mut self) {
        for (_, own) in &self.own {
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
            // Replies go out at once: the socket is almost always writable, and waiting for
            // the readiness event would cost a turn of this loop per reply.
            if self.wire.wants_write(&self.out) {
                match self.write() {
                    Ok(n) => {
                        summary.bytes_from_upstream += n as u64;
                        active |= n > 0;
                    }
                    Err(_) => return CloseReason::DownstreamError,
                }
            }
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
                ready = self.wire.socket().readable(), if can_read => {
                    if ready.is_err() {
                        return CloseReason::DownstreamError;
                    }
                    let read = self.wire.read_now(&mut self.input);
                    if let Some((version, alpn)) = self.wire.handshake_finished() {
                        self.runtime.stats.tls.handshake("downstream", version, alpn);
                    }
                    match read {
                        Ok(Read::Closed) => self.eof = true,
                        Ok(Read::Bytes(n)) => {
                            summary.bytes_from_downstream += n as u64;
                            self.runtime.stats.bytes_rx.increment(n as u64);
                            active = true;
                            if let Err(reason) = self.take_commands() {
                                self.collect_replies();
                                let _ = self.write();
                                return reason;
                            }
                        }
                        Ok(Read::Nothing) => {}
                        Err(WireError::Io(e)) => {
                            tracing::debug!(listener = %self.runtime.name, error = %e, "client read failed");
                            return CloseReason::DownstreamError;
                        }
                        Err(WireError::Tls(failure)) => {
                            self.runtime.stats.tls.failure("downstream", failure.reason());
                            return CloseReason::TlsError;
                        }
                    }
                }
                ready = self.wire.socket().writable(), if self.wire.wants_write(&self.out) => {
                    match ready.and_then(|()| self.write()) {
                        Ok(n) => {
                            summary.bytes_from_upstream += n as u64;
                            active |= n > 0;
                        }
                        Err(_) => return CloseReason::DownstreamError,
                    }
                }
                () = self.notify.notified(), if !self.queue.is_empty() => {}
                () = sleep_until(hold.map_or_else(Instant::now, |(until, _)| until)), if hold.is_some() => {
                    self.released_fault = hold.is_some_and(|(_, fault)| fault);
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
        // One clock read for the commands of one read: they arrived together.
        self.now = Instant::now();
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
        let spec = self.last_lookup.lookup(command.args());
        let id = spec.map_or(CommandId::OTHER, CommandId::of);
        let routed = route(command, spec);
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
        let op = Op {
            protocol: Protocol::Redis,
            listener: &self.redis.name,
            op: name,
            target,
            user: self.user.as_deref(),
            database: None,
            statement: None,
            client_id: None,
            client: self.client_ip,
        };
        // A command a delay fault held is let through when its time comes, unchecked: the
        // dice are not rolled for it again.
        let released = std::mem::take(&mut self.released_fault);
        let verdict = match released {
            true => Verdict::Allow,
            false => self.redis.rules.evaluate(&op),
        };
        let fault = match verdict {
            Verdict::Allow if !released && !self.redis.faults.is_empty() => {
                let rng = &mut self.rng;
                self.redis.faults.pick(&op, || rng.f64() * 100.0).cloned()
            }
            _ => None,
        };
        match fault {
            Some(FaultAction::Delay(delay)) => {
                self.redis.stats.fault_delays.increment(1);
                self.hold = Some((Instant::now() + delay, true));
                return false;
            }
            Some(FaultAction::Error(message)) => {
                self.redis.stats.fault_errors.increment(1);
                self.push(id, Pending::Ready(error(&message), Outcome::Error));
                return true;
            }
            None => {}
        }
        match verdict {
            Verdict::Allow => {}
            Verdict::Delay { wait, .. } => {
                self.hold = Some((Instant::now() + wait, false));
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
        let read = spec.is_some_and(|s| s.has(READONLY));
        let writes = spec.is_some_and(|s| s.has(WRITE));
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
            Route::Key(key) => self.send_keyed(command, frame, &[key], read, writes),
            Route::SameServer(keys) => self.send_keyed(command, frame, &keys, read, writes),
            Route::Publish(channel) => match self.pools.channel_server(channel) {
                Some(server) => self.send_to(server, frame.clone(), None),
                None => no_server(),
            },
            Route::Split { name, group, merge } => self.split(command, name, group, merge, read, writes),
            Route::Blocking(keys) => match self.server_of_all(&keys) {
                Ok(server) => {
                    let outgoing = self.outgoing(command, frame, &keys);
                    self.send_own(server, outgoing)
                }
                Err(refusal) => refusal,
            },
            Route::Transaction(tx) => self.transaction(tx, command, frame),
            Route::Subscribe(channel) => match self.pools.channel_server(channel) {
                Some(server) => {
                    self.subscribe = Some((server, frame.clone()));
                    return true;
                }
                None => no_server(),
            },
        };
        self.push(id, pending);
        true
    }

    /// The one (primary) server all `keys` live on, or the CROSSSLOT refusal.
    fn server_of_all(&self, keys: &[&[u8]]) -> Result<ServerId, Pending> {
        let Some(&first) = keys.first() else { return Err(no_server()) };
        let primary = self.pools.server_for(first, false);
        if keys[1..].iter().any(|k| self.pools.server_for(k, false) != primary) {
            return Err(crossslot());
        }
        primary.ok_or_else(no_server)
    }

    /// `frame`, with each of `keys` (arguments of `command`) cut by its prefix route.
    fn outgoing(&self, command: &Command<'_>, frame: &Bytes, keys: &[&[u8]]) -> Bytes {
        if !self.pools.strips {
            return frame.clone();
        }
        let cuts: Vec<(&[u8], usize)> =
            keys.iter().map(|k| (*k, self.pools.route(k).1)).filter(|(_, cut)| *cut > 0).collect();
        if cuts.is_empty() {
            return frame.clone();
        }
        let mut args = command.args();
        let name = args.next().unwrap_or_default();
        let rest: Vec<&[u8]> = args
            .map(|arg| match cuts.iter().find(|(key, _)| std::ptr::eq(*key, arg)) {
                Some((_, cut)) => &arg[*cut..],
                None => arg,
            })
            .collect();
        encode_command(name, rest.into_iter())
    }

    /// The client's own connection to `server`, opened on first use.
    fn own(&mut self, server: ServerId) -> Rc<Upstream> {
        if let Some((_, own)) = self.own.iter().find(|(id, _)| *id == server) {
            return own.clone();
        }
        let own = self.pools.group(server).own_connection(server.index, self.resp3);
        self.own.push((server, own.clone()));
        own
    }

    fn send_own(&mut self, server: ServerId, command: Bytes) -> Pending {
        let slot = Slot::new(self.notify.clone());
        self.own(server).send(command, slot.clone());
        Pending::One(slot)
    }

    /// Turns the connection into a subscription: the subscribing command and whatever the
    /// client sent after it go to the channel's server, then bytes flow both ways as they
    /// come until either side closes. The connection stays on that server from then on.
    async fn tunnel(&mut self, summary: &mut CloseSummary) -> CloseReason {
        let Some((server, frame)) = self.subscribe.take() else { return CloseReason::Done };
        let target = {
            let server_entry = self.pools.server(server);
            self.pools.group(server).target(&server_entry.name, server_entry.address, self.resp3)
        };
        let mut upstream = match target.open().await {
            Ok(wire) => wire,
            Err(refused) => {
                self.out.push(Bytes::from_static(refused.as_bytes()));
                let _ = self.wire.write_all(&mut self.out).await;
                return CloseReason::UpstreamConnectFailed;
            }
        };
        let mut to_server = WriteQueue::default();
        to_server.push(frame);
        to_server.push(self.input.split().freeze());
        let (mut from_client, mut from_server) = (BytesMut::new(), BytesMut::new());
        loop {
            tokio::select! {
                ready = self.wire.socket().readable() => {
                    if ready.is_err() {
                        return CloseReason::DownstreamError;
                    }
                    match self.wire.read_now(&mut from_client) {
                        Ok(Read::Closed) => return CloseReason::Done,
                        Ok(Read::Bytes(n)) if n > 0 => {
                            summary.bytes_from_downstream += n as u64;
                            self.runtime.stats.bytes_rx.increment(n as u64);
                            to_server.push(from_client.split().freeze());
                        }
                        Ok(_) => {}
                        Err(_) => return CloseReason::DownstreamError,
                    }
                }
                ready = upstream.socket().readable() => {
                    if ready.is_err() {
                        return CloseReason::UpstreamError;
                    }
                    match upstream.read_now(&mut from_server) {
                        Ok(Read::Closed) => return CloseReason::Done,
                        Ok(Read::Bytes(n)) if n > 0 => {
                            summary.bytes_from_upstream += n as u64;
                            self.out.push(from_server.split().freeze());
                        }
                        Ok(_) => {}
                        Err(_) => return CloseReason::UpstreamError,
                    }
                }
                ready = upstream.socket().writable(), if upstream.wants_write(&to_server) => {
                    if ready.is_err() || upstream.write_now(&mut to_server).is_err() {
                        return CloseReason::UpstreamError;
                    }
                }
                ready = self.wire.socket().writable(), if self.wire.wants_write(&self.out) => {
                    if ready.is_err() || self.write().is_err() {
                        return CloseReason::DownstreamError;
                    }
                }
            }
        }
    }

    /// Sends a command to the server all its `keys` share (cut by their prefix route),
    /// and its copy to the mirror.
    fn send_keyed(&self, command: &Command<'_>, frame: &Bytes, keys: &[&[u8]], read: bool, writes: bool) -> Pending {
        let primary = match self.server_of_all(keys) {
            Ok(server) => server,
            Err(refusal) => return refusal,
        };
        // Only a group that reads from replicas places a read anew (one hash per key else).
        let server = match read && self.pools.groups[primary.group].reads_replicas() {
            true => self.pools.server_for(keys[0], true).unwrap_or(primary),
            false => primary,
        };
        let outgoing = self.outgoing(command, frame, keys);
        if let Some(mirror) = self.pools.mirrors(writes) {
            let (_, cut) = self.pools.route(keys[0]);
            let mirror_group = &self.pools.groups[mirror.group];
            let first = mirror_group.server_for(&keys[0][cut..], false);
            let together = keys[1..].iter().all(|k| mirror_group.server_for(&k[cut..], false) == first);
            if let (Some(index), true) = (first, together) {
                mirror_group.server(index).pick(false, self.lane).send(outgoing.clone(), sink_slot(mirror));
            }
        }
        let fallback = (server != primary).then_some(primary.index);
        self.send_to(server, outgoing, fallback)
    }

    /// Sends `command` to `server` on a pooled connection.
    fn send_to(&self, server: ServerId, command: Bytes, fallback: Option<usize>) -> Pending {
        let slot = Slot::new(self.notify.clone());
        self.pools.server(server).pick(self.resp3, self.lane).send(command.clone(), slot.clone());
        Pending::Routed { slot, command, group: server.group, redirects: 0, fallback }
    }

    /// Sends each server the part of a multi-key command it holds, and the mirror its own
    /// split of it.
    fn split(
        &self,
        command: &Command<'_>,
        name: &[u8],
        group: usize,
        merge: Merge,
        read: bool,
        writes: bool,
    ) -> Pending {
        let args: Vec<&[u8]> = command.args().skip(1).collect();
        let keys = args.len() / group;
        let Some(parts) = self.parts(&args, group, |key| self.pools.part_for(key, read)) else {
            return no_server();
        };
        if let Some(mirror) = self.pools.mirrors(writes) {
            let mirror_group = &self.pools.groups[mirror.group];
            let place = |key: &[u8]| {
                let (_, cut) = self.pools.route(key);
                let (index, slot) = mirror_group.part_for(&key[cut..], false)?;
                Some((ServerId { group: mirror.group, index }, slot))
            };
            for ((server, _), positions) in self.parts(&args, group, place).unwrap_or_default() {
                let part = self.part_command(name, &args, group, &positions);
                self.pools.server(server).pick(false, self.lane).send(part, sink_slot(mirror));
            }
        }
        let parts = parts
            .into_iter()
            .map(|((server, _), positions)| {
                let slot = Slot::new(self.notify.clone());
                let part = self.part_command(name, &args, group, &positions);
                self.pools.server(server).pick(self.resp3, self.lane).send(part, slot.clone());
                (slot, positions)
            })
            .collect();
        Pending::Split { merge, parts, keys }
    }

    /// The client's key positions per part of a split command: one part per server, and
    /// per hash slot in front of a Redis Cluster, whose nodes refuse multi-key commands
    /// across slots. `None` when a key has no server.
    fn parts(
        &self,
        args: &[&[u8]],
        group: usize,
        place: impl Fn(&[u8]) -> Option<(ServerId, u16)>,
    ) -> Option<Vec<Part>> {
        let mut parts: Vec<Part> = Vec::new();
        for k in 0..args.len() / group {
            let part = place(args[k * group])?;
            match parts.iter_mut().find(|(p, _)| *p == part) {
                Some((_, positions)) => positions.push(k),
                None => parts.push((part, vec![k])),
            }
        }
        Some(parts)
    }

    /// One part of a split command: `name` and the argument runs at `positions`, each key
    /// cut by its prefix route.
    fn part_command(&self, name: &[u8], args: &[&[u8]], group: usize, positions: &[usize]) -> Bytes {
        let part_args: Vec<&[u8]> = positions
            .iter()
            .flat_map(|&k| {
                let run = &args[k * group..k * group + group];
                let cut = if self.pools.strips { self.pools.route(run[0]).1 } else { 0 };
                std::iter::once(&run[0][cut..]).chain(run[1..].iter().copied())
            })
            .collect();
        encode_command(name, part_args.into_iter())
    }

    fn push(&mut self, id: CommandId, reply: Pending) {
        self.queue.push_back(Entry { id, started: self.now, reply });
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
        let written = self.wire.write_now(&mut self.out)?;
        self.runtime.stats.bytes_tx.increment(written as u64);
        Ok(written)
    }
}

fn no_server() -> Pending {
    Pending::Ready(error("ERR sluice: no upstream server"), Outcome::Error)
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
