//! The connection driver for protocol listeners (`redis`, …): the same admission, connect
//! and half-close rules as the plain TCP driver, but the bytes go through the listener's
//! [`StreamFilter`], which decides frame by frame what goes where.
//!
//! Each side has a read buffer the filter takes complete frames from (partial frames stay
//! and the next read appends to them, so nothing is copied to reassemble them) and a write
//! queue of slices, written with one vectored write. Reading from a side stops while the
//! queues it feeds are full (backpressure), and reading from the client also stops while
//! the filter holds back more than [`HOLD_LIMIT`] of it. Read buffers of a quiet
//! connection are released on the idle tick.
//!
//! When the filter answers a TLS request itself ([`FilterStatus::StartDownstreamTls`]),
//! the client's side goes through a rustls session from then on (`tls_stream`): reads are
//! decrypted into the same input buffer, and the write queue is encrypted on its way out.
//! The upstream side does the same when the cluster originates TLS: from the start, or
//! when the filter has asked the server for it ([`FilterStatus::StartUpstreamTls`]).

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use metrics::Counter;
use rustls::{ClientConnection, ServerConfig, ServerConnection};
use sluice_filters::filter::CloseSummary;
use sluice_filters::{CloseReason, FilterStatus, StreamFilter, StreamIo, WriteQueue};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant, Sleep};

use crate::socket_io::{read_once, shutdown_write, write_once, Side, IDLE_TICKS};
use crate::telemetry::{ListenerStats, TlsStats};
use crate::tls_stream::TlsSide;

/// How much one read asks for.
const READ_CHUNK: usize = 64 * 1024;
/// A side is not read while a queue it feeds holds this much.
const QUEUE_LIMIT: usize = 256 * 1024;
/// Client bytes buffered behind a held command before the client is no longer read.
const HOLD_LIMIT: usize = 1024 * 1024;
/// A read buffer grown past this for a large frame is released once it is empty.
const KEEP_CAPACITY: usize = 4 * READ_CHUNK;
/// Slices per vectored write.
const MAX_IOV: usize = 64;

thread_local! {
    /// The worker's read buffer for sides with nothing buffered: tasks of a worker never
    /// run at the same time and none holds it across an await.
    static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::with_capacity(READ_CHUNK));
}

/// One socket and the bytes in flight at it.
struct End {
    socket: TcpStream,
    /// Read from this socket, not yet taken by the filter.
    input: BytesMut,
    /// To be written to this socket.
    output: WriteQueue,
    /// This socket sent FIN.
    eof: bool,
    /// The FIN of the other socket has been passed on to this one.
    shut: bool,
    received: Counter,
    /// The TLS session on this socket, once started: `input` and `output` then hold
    /// plaintext.
    tls: Option<Box<TlsSide>>,
}

impl End {
    fn new(socket: TcpStream, received: Counter) -> Self {
        End {
            socket,
            input: BytesMut::new(),
            output: WriteQueue::default(),
            eof: false,
            shut: false,
            received,
            tls: None,
        }
    }

    /// Whether there is something to write (through TLS, bytes rustls can send now).
    fn has_output(&self) -> bool {
        match &self.tls {
            Some(tls) => tls.has_output(&self.output),
            None => !self.output.is_empty(),
        }
    }
}

/// How the client's side's TLS starts when the listener terminates it.
pub enum DownstreamTls {
    /// The client's socket is plain.
    Off,
    /// The first bytes are the client's ClientHello (`tcp` and `redis` listeners).
    Now(Box<ServerConnection>),
    /// When the client has asked in the protocol's own way and the filter answered
    /// ([`FilterStatus::StartDownstreamTls`]): MySQL and PostgreSQL.
    OnRequest(Arc<ServerConfig>),
}

/// How the upstream side's TLS starts when the cluster originates it.
pub enum UpstreamTls {
    /// The upstream socket is plain.
    Off,
    /// The first bytes are TLS (the protocol's own request, if it has one, is done).
    Now(ClientConnection),
    /// When the filter has asked the server for it in the protocol's own way.
    OnRequest(ClientConnection),
}

enum Event {
    Readable(Side),
    Writable(Side),
    /// The filter asked to be woken (a held command's time has come).
    Wake,
    IdleTimer,
}

pub struct StreamPump<'a> {
    down: End,
    up: End,
    filter: &'a mut dyn StreamFilter,
    summary: &'a mut CloseSummary,
    /// The listener's TLS settings, for a filter that asks to terminate TLS.
    tls_config: Option<Arc<ServerConfig>>,
    /// The upstream TLS session the filter will ask for.
    upstream_tls: Option<ClientConnection>,
    /// The filter's `wake_at` and `downstream_paused` as of its last run: they change only
    /// when it runs, and the event loop asks for them on every turn.
    wake_at: Option<std::time::Instant>,
    downstream_paused: bool,
    tls_stats: &'a TlsStats,
}

impl<'a> StreamPump<'a> {
    pub fn new(
        downstream: TcpStream,
        upstream: TcpStream,
        stats: &'a ListenerStats,
        filter: &'a mut dyn StreamFilter,
        summary: &'a mut CloseSummary,
        downstream_tls: DownstreamTls,
        upstream_tls: UpstreamTls,
    ) -> Self {
        let mut down = End::new(downstream, stats.bytes_rx.clone());
        let tls_config = match downstream_tls {
            DownstreamTls::Off => None,
            DownstreamTls::Now(conn) => {
                down.tls = Some(Box::new(TlsSide::accepting(*conn)));
                None
            }
            DownstreamTls::OnRequest(config) => Some(config),
        };
        let mut up = End::new(upstream, stats.bytes_tx.clone());
        let upstream_tls = match upstream_tls {
            UpstreamTls::Off => None,
            UpstreamTls::Now(conn) => {
                up.tls = Some(Box::new(TlsSide::client(conn)));
                None
            }
            UpstreamTls::OnRequest(conn) => Some(conn),
        };
        let (wake_at, downstream_paused) = (filter.wake_at(), filter.downstream_paused());
        let tls_stats = &stats.tls;
        StreamPump { down, up, filter, summary, tls_config, upstream_tls, wake_at, downstream_paused, tls_stats }
    }

    /// Moves frames until the connection ends; idleness is checked as in the TCP driver.
    pub async fn run(&mut self, idle_timeout: Duration) -> CloseReason {
        let tick = idle_timeout / IDLE_TICKS;
        let idle = sleep_until(Instant::now() + tick);
        let wake = sleep_until(Instant::now() + tick);
        tokio::pin!(idle, wake);
        let mut wake_armed = false;
        // The idle timer has been polled since its last reset, so it holds this task's
        // waker (which does not change: the task is spawned once and polled as it is).
        let mut idle_polled = false;
        let mut active = false;
        let mut quiet_ticks = 0;
        loop {
            let event = std::future::poll_fn(|cx| {
                self.poll_event(cx, idle.as_mut(), &mut idle_polled, wake_armed.then_some(wake.as_mut()))
            })
            .await;
            let step = match event {
                Event::Readable(side) => self.read(side),
                Event::Writable(side) => self.flush(side).map(|n| n > 0),
                Event::Wake => self.run_filter(Side::Downstream, std::time::Instant::now()).map(|()| true),
                Event::IdleTimer => {
                    quiet_ticks = if active { 0 } else { quiet_ticks + 1 };
                    if quiet_ticks >= IDLE_TICKS {
                        return CloseReason::IdleTimeout;
                    }
                    if !active {
                        self.release_buffers();
                    }
                    active = false;
                    let next = idle.deadline() + tick;
                    idle.as_mut().reset(next);
                    idle_polled = false;
                    continue;
                }
            };
            match step {
                Ok(moved) => active |= moved,
                Err(reason) => {
                    // Best effort: the client may still get a protocol error (or a TLS
                    // alert) sent last.
                    let _ = self.flush(Side::Downstream);
                    return reason;
                }
            }
            match self.wake_at {
                Some(at) => {
                    let at = Instant::from_std(at);
                    if !wake_armed || wake.deadline() != at {
                        wake.as_mut().reset(at);
                    }
                    wake_armed = true;
                }
                None => wake_armed = false,
            }
            if let Err(reason) = self.pass_on_fins() {
                return reason;
            }
            if self.down.shut && self.up.shut {
                return CloseReason::Done;
            }
        }
    }

    fn can_read(&self, side: Side) -> bool {
        match side {
            Side::Downstream => {
                !self.down.eof
                    && !self.downstream_paused
                    && self.up.output.len() < QUEUE_LIMIT
                    && self.down.output.len() < QUEUE_LIMIT
                    && (self.wake_at.is_none() || self.down.input.len() < HOLD_LIMIT)
            }
            Side::Upstream => !self.up.eof && self.down.output.len() < QUEUE_LIMIT,
        }
    }

    fn poll_event(
        &self,
        cx: &mut Context<'_>,
        idle: Pin<&mut Sleep>,
        idle_polled: &mut bool,
        wake: Option<Pin<&mut Sleep>>,
    ) -> Poll<Event> {
        for (side, end) in [(Side::Downstream, &self.down), (Side::Upstream, &self.up)] {
            if self.has_output(side) && end.socket.poll_write_ready(cx).is_ready() {
                return Poll::Ready(Event::Writable(side));
            }
            if self.can_read(side) && end.socket.poll_read_ready(cx).is_ready() {
                return Poll::Ready(Event::Readable(side));
            }
        }
        if let Some(wake) = wake {
            if wake.poll(cx).is_ready() {
                return Poll::Ready(Event::Wake);
            }
        }
        // Polled once per tick: until it fires, the timer keeps the waker it was given, and
        // polling it again on every turn (every read) would only register it again.
        if *idle_polled && !idle.is_elapsed() {
            return Poll::Pending;
        }
        *idle_polled = true;
        idle.poll(cx).map(|()| Event::IdleTimer)
    }

    /// Whether `side` has bytes to write (through TLS, bytes rustls can send now).
    fn has_output(&self, side: Side) -> bool {
        match side {
            Side::Downstream => self.down.has_output(),
            Side::Upstream => self.up.has_output(),
        }
    }

    fn end(&mut self, side: Side) -> &mut End {
        match side {
            Side::Downstream => &mut self.down,
            Side::Upstream => &mut self.up,
        }
    }

    /// Reads what `side` has, lets the filter take what it can, and writes the results.
    ///
    /// When nothing is buffered for `side` (the usual case: reads end on frame
    /// boundaries), the read goes into the worker's scratch buffer, which stays hot in the
    /// cache, and only an incomplete frame left over is copied into the connection's own
    /// buffer, where the next read completes it.
    fn read(&mut self, side: Side) -> Result<bool, CloseReason> {
        if self.end(side).tls.is_some() {
            return self.read_tls(side);
        }
        if !self.end(side).input.is_empty() {
            return self.read_into_input(side);
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            scratch.reserve(READ_CHUNK);
            std::mem::swap(&mut self.end(side).input, &mut *scratch);
            let result = self.read_into_input(side);
            let end = self.end(side);
            std::mem::swap(&mut end.input, &mut *scratch);
            if !scratch.is_empty() {
                end.input.extend_from_slice(&scratch);
                scratch.clear();
            }
            result
        })
    }

    fn read_into_input(&mut self, side: Side) -> Result<bool, CloseReason> {
        let end = self.end(side);
        if end.input.capacity() - end.input.len() < READ_CHUNK / 4 {
            end.input.reserve(READ_CHUNK);
        }
        let n = match read_once(&end.socket, &mut end.input) {
            Ok(Some(n)) => n,
            Ok(None) => return Ok(false),
            Err(_) => return Err(side.error()),
        };
        if n == 0 {
            end.eof = true;
        } else {
            end.received.increment(n as u64);
        }
        match side {
            Side::Downstream => self.summary.bytes_from_downstream += n as u64,
            Side::Upstream => self.summary.bytes_from_upstream += n as u64,
        }
        self.run_filter(side, std::time::Instant::now())?;
        Ok(n > 0)
    }

    /// Reads TLS records from `side`, decrypts them into its input buffer, and lets the
    /// filter take what it can. Handshake replies go out with the filter's writes.
    fn read_tls(&mut self, side: Side) -> Result<bool, CloseReason> {
        let tls_stats = self.tls_stats;
        let end = self.end(side);
        let Some(tls) = end.tls.as_mut() else { return Ok(false) };
        let n = SCRATCH.with(|scratch| {
            let mut raw = scratch.borrow_mut();
            raw.clear();
            raw.reserve(READ_CHUNK);
            let n = match read_once(&end.socket, &mut raw) {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(None),
                Err(_) => return Err(side.error()),
            };
            if n == 0 {
                end.eof = true;
                return Ok(Some(0));
            }
            end.received.increment(n as u64);
            let handshaking = tls.handshaking();
            let closed = tls.receive(&raw, &mut end.input).map_err(|failure| {
                if handshaking {
                    tls_stats.failure(side.as_str(), failure.reason());
                }
                let error = failure.0.map_or_else(|| "unreadable record".to_string(), |e| e.to_string());
                match side {
                    // A client's failure is the client's business; the server's (a
                    // certificate that does not verify) is the operator's.
                    Side::Downstream => tracing::debug!(%error, "client TLS session failed"),
                    Side::Upstream => tracing::warn!(%error, "upstream TLS session failed"),
                }
                side.tls_error()
            })?;
            raw.clear();
            end.eof |= closed;
            if let Some((version, alpn)) = tls.handshake_finished() {
                tls_stats.handshake(side.as_str(), version, alpn);
            }
            Ok(Some(n))
        });
        // What the peer's alert or our own needs to say goes out before the close.
        let n = match n {
            Ok(n) => n,
            Err(reason) => {
                let _ = self.flush(side);
                return Err(reason);
            }
        };
        let Some(n) = n else { return Ok(false) };
        match side {
            Side::Downstream => self.summary.bytes_from_downstream += n as u64,
            Side::Upstream => self.summary.bytes_from_upstream += n as u64,
        }
        self.run_filter(side, std::time::Instant::now())?;
        Ok(n > 0)
    }

    /// Starts the client's TLS session at the filter's request: the bytes left in the
    /// client's buffer (the ClientHello often comes in the read that carried the request)
    /// are the first TLS records.
    fn start_tls(&mut self, now: std::time::Instant) -> Result<(), CloseReason> {
        let Some(config) = self.tls_config.clone() else {
            tracing::debug!("a filter asked for TLS on a listener without tls settings");
            return Err(CloseReason::ProtocolError);
        };
        let tls = self.down.tls.insert(Box::new(TlsSide::server(config).map_err(|_| CloseReason::TlsError)?));
        let raw = self.down.input.split();
        let tls_stats = self.tls_stats;
        let closed = tls.receive(&raw, &mut self.down.input).map_err(|failure| {
            tls_stats.failure(Side::Downstream.as_str(), failure.reason());
            CloseReason::TlsError
        })?;
        self.down.eof |= closed;
        if let Some((version, alpn)) = tls.handshake_finished() {
            tls_stats.handshake(Side::Downstream.as_str(), version, alpn);
        }
        if self.has_output(Side::Downstream) {
            self.flush(Side::Downstream)?;
        }
        if !self.down.input.is_empty() {
            self.run_filter(Side::Downstream, now)?;
        }
        Ok(())
    }

    /// Starts the upstream TLS session the filter has asked the server for. Its request
    /// went out plain before this; the server has answered and sent nothing since (bytes
    /// it had sent would be injected, not protected, so they end the connection), and
    /// the first TLS bytes are our ClientHello. The client's bytes the filter left
    /// waiting for the session go through it.
    fn start_upstream_tls(&mut self, now: std::time::Instant) -> Result<(), CloseReason> {
        let Some(conn) = self.upstream_tls.take() else {
            tracing::debug!("a filter asked for upstream TLS on a cluster without tls settings");
            return Err(CloseReason::ProtocolError);
        };
        if !self.up.input.is_empty() || !self.up.output.is_empty() {
            tracing::debug!("bytes around the start of upstream TLS");
            return Err(CloseReason::UpstreamTlsError);
        }
        self.up.tls = Some(Box::new(TlsSide::client(conn)));
        self.flush(Side::Upstream)?;
        if !self.down.input.is_empty() {
            self.run_filter(Side::Downstream, now)?;
        }
        Ok(())
    }

    /// Runs the filter over `side`'s buffer, then writes whatever it queued.
    fn run_filter(&mut self, side: Side, now: std::time::Instant) -> Result<(), CloseReason> {
        let (down, up) = (&mut self.down, &mut self.up);
        let mut io = StreamIo { now, to_upstream: &mut up.output, to_downstream: &mut down.output };
        let status = match side {
            Side::Downstream => self.filter.on_downstream(&mut down.input, down.eof, &mut io),
            Side::Upstream => self.filter.on_upstream(&mut up.input, up.eof, &mut io),
        };
        self.wake_at = self.filter.wake_at();
        self.downstream_paused = self.filter.downstream_paused();
        let input = &mut self.end(side).input;
        if input.is_empty() && input.capacity() > KEEP_CAPACITY {
            *input = BytesMut::new();
        }
        for to in [Side::Upstream, Side::Downstream] {
            if self.has_output(to) {
                self.flush(to)?;
            }
        }
        match status {
            FilterStatus::Close(reason) => Err(reason),
            FilterStatus::StartDownstreamTls if side == Side::Downstream && self.down.tls.is_none() => {
                self.start_tls(now)
            }
            FilterStatus::StartUpstreamTls if self.up.tls.is_none() => self.start_upstream_tls(now),
            _ => Ok(()),
        }
    }

    /// Writes queued bytes to `to`; returns how many went.
    fn flush(&mut self, to: Side) -> Result<usize, CloseReason> {
        let end = self.end(to);
        match end.tls.as_mut() {
            Some(tls) => tls.write_to(&end.socket, &mut end.output).map_err(|_| to.error()),
            None => write_queue(&end.socket, &mut end.output).map_err(|_| to.error()),
        }
    }

    /// Passes a FIN on once everything before it has been taken and written.
    fn pass_on_fins(&mut self) -> Result<(), CloseReason> {
        let held = self.wake_at.is_some();
        for (from, to) in [(Side::Downstream, Side::Upstream), (Side::Upstream, Side::Downstream)] {
            let source = self.end(from);
            if !source.eof || !source.input.is_empty() || (from == Side::Downstream && held) {
                continue;
            }
            if self.end(to).shut || self.has_output(to) {
                continue;
            }
            let sink = self.end(to);
            if let Some(tls) = sink.tls.as_mut() {
                // Best effort, like the FIN it precedes.
                tls.close();
                let _ = tls.write_to(&sink.socket, &mut sink.output);
            }
            sink.shut = true;
            if shutdown_write(&sink.socket).is_err() {
                return Err(to.error());
            }
        }
        Ok(())
    }

    /// Gives back the memory of empty buffers, so a quiet connection holds none.
    fn release_buffers(&mut self) {
        for end in [&mut self.down, &mut self.up] {
            if end.input.is_empty() {
                end.input = BytesMut::new();
            }
            end.output.shrink();
        }
    }
}

/// Writes as much of `queue` as the socket takes now; a short write clears write
/// readiness at once, like a short read.
fn write_queue(sink: &TcpStream, queue: &mut WriteQueue) -> io::Result<usize> {
    let mut total = 0;
    while !queue.is_empty() {
        let (written, wanted) = if queue.chunk_count() == 1 {
            // The usual case (one forwarded run): no 64-slot array to set up.
            let mut one = [IoSlice::new(&[])];
            queue.io_slices(&mut one);
            (write_once(sink, &one)?, queue.len())
        } else {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let count = queue.io_slices(&mut slices);
            let slices = &slices[..count];
            (write_once(sink, slices)?, slices.iter().map(|s| s.len()).sum::<usize>())
        };
        queue.advance(written);
        total += written;
        if written < wanted {
            break;
        }
    }
    Ok(total)
}
