//! The TCP connection driver, terminal of every TCP filter chain: admits the connection
//! (`max_connections`, then the chain's `connect` verdict), connects to the cluster, then
//! moves bytes both ways until both sides have finished.
//!
//! One task per connection drives both directions. Reads go into a per-worker scratch
//! buffer and are written straight to the other socket; only bytes the other side could
//! not take yet are copied into a per-connection buffer, which is released once drained.
//! An idle connection therefore holds no buffer at all, and a busy one costs one `read`
//! and one `write` per chunk. A direction with unsent bytes stops reading (backpressure),
//! so each direction buffers at most one read. A FIN from one side is passed on as a
//! write shutdown to the other once its bytes are flushed (half-close), and the
//! connection ends when both directions have finished, on an error, on the idle timeout,
//! or when the drain timeout runs out.

use std::cell::RefCell;
use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use metrics::Counter;
use rustls::ServerConnection;
use sluice_filters::filter::{CloseSummary, ConnectionEvent, FilterContext, FilterStatus};
use sluice_filters::stream::Passthrough;
use sluice_filters::{CloseReason, ConnectionInfo, FilterChain, Outcome, Protocol, StreamFilter};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep_until, Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::listener::{ConnectionRecord, ListenerRuntime};
use crate::socket_io::{read_once, shutdown_write, write_once, Side, IDLE_TICKS};

use crate::stream_proxy::{DownstreamTls, StreamPump, UpstreamTls};
use crate::telemetry::Rejection;

/// How much one read takes at most; also the most a direction buffers.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// The worker's read buffer, shared by its connections: tasks of a worker never run
    /// at the same time and none holds it across an await.
    static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::with_capacity(READ_CHUNK));
}

/// Signals shared by the accept loops and the drain.
#[derive(Clone)]
pub struct Stops {
    /// Stop accepting (the drain has begun).
    pub accept: CancellationToken,
    /// Counts open connections and sessions, so the drain knows when they are done.
    pub tracker: TaskTracker,
}

/// Accepts connections on one worker's socket until the drain begins.
pub async fn accept_loop(listener: TcpListener, runtime: Arc<ListenerRuntime>, stops: Stops) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stops.accept.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, client)) => {
                let _ = stream.set_nodelay(true);
                if runtime.protocol() == Protocol::Http {
                    let task = crate::http::serve(stream, client, runtime.clone(), stops.accept.clone());
                    tokio::task::spawn_local(stops.tracker.track_future(task));
                    continue;
                }
                let task = serve(stream, client, runtime.clone());
                tokio::task::spawn_local(stops.tracker.track_future(task));
            }
            Err(e) => {
                // Out of file descriptors or memory: back off instead of spinning.
                tracing::warn!(listener = %runtime.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves one connection. Connections are not told about shutdown: when the drain
/// timeout runs out the worker drops their tasks, and the record accounts for them as
/// `drain`.
async fn serve(downstream: TcpStream, client: SocketAddr, runtime: Arc<ListenerRuntime>) {
    let mut record = ConnectionRecord::new(runtime.clone(), client);
    let Some(_slot) = runtime.try_admit() else {
        runtime.stats.rejected(Rejection::MaxConnections);
        runtime.connect_ops().connect.record(Outcome::Limited, None);
        record.summary.reason = CloseReason::Limited;
        return;
    };
    record.summary.reason = run(downstream, &runtime, &mut record).await;
}

/// Admission, upstream connect and the byte pump; returns why the connection ended.
async fn run(downstream: TcpStream, runtime: &Arc<ListenerRuntime>, record: &mut ConnectionRecord) -> CloseReason {
    let ConnectionRecord { info, chain, summary, .. } = record;
    loop {
        match chain.on_event(&ConnectionEvent::Accepted, info) {
            // Connection filters never start TLS (that is a stream filter's request).
            FilterStatus::Continue
            | FilterStatus::Stop
            | FilterStatus::StartDownstreamTls
            | FilterStatus::StartUpstreamTls => break,
            FilterStatus::Close(reason) => {
                match reason {
                    CloseReason::Denied => runtime.stats.rejected(Rejection::Denied),
                    CloseReason::Limited => runtime.stats.rejected(Rejection::RateLimited),
                    _ => {}
                }
                return reason;
            }
            FilterStatus::Retry(wait) => tokio::time::sleep(wait).await,
        }
    }

    if runtime.config.redis.as_ref().is_some_and(|r| r.pool.is_some()) {
        // Commands go over the worker's shared connections, not one of the client's own.
        return crate::redis_pool::serve(downstream, runtime, info.client.ip(), summary).await;
    }
    let connect_started = Instant::now();
    let (mut upstream, lease) = match runtime.cluster.connect().await {
        Ok(ok) => ok,
        Err(failure) => {
            tracing::debug!(listener = %runtime.name, cluster = %runtime.cluster.config.name, reason = failure.as_str(), "no upstream");
            chain.on_event(&ConnectionEvent::UpstreamConnectFailed { elapsed: connect_started.elapsed() }, info);
            return CloseReason::UpstreamConnectFailed;
        }
    };
    summary.upstream = Some(lease.address());
    chain.on_event(
        &ConnectionEvent::UpstreamConnected { upstream: lease.address(), elapsed: connect_started.elapsed() },
        info,
    );

    let upstream_tls = match upstream_tls(runtime, &mut upstream, lease.index()).await {
        Ok(tls) => tls,
        Err(reason) => return reason,
    };

    let downstream_tls = match downstream_tls(runtime) {
        Ok(tls) => tls,
        Err(reason) => return reason,
    };
    let tls_anywhere = !matches!((&downstream_tls, &upstream_tls), (DownstreamTls::Off, UpstreamTls::Off));
    let filter = runtime
        .new_stream_filter(info.client)
        // Plain bytes through TLS need the driver that has TLS; plain `tcp` keeps its own.
        .or_else(|| tls_anywhere.then(|| Box::new(Passthrough) as Box<dyn StreamFilter>));
    if let Some(mut filter) = filter {
        let stats = &runtime.stats;
        let mut pump =
            StreamPump::new(downstream, upstream, stats, filter.as_mut(), summary, downstream_tls, upstream_tls);
        return pump.run(runtime.config.idle_timeout).await;
    }
    let mut pump = Pump {
        downstream,
        upstream,
        to_upstream: Direction::new(runtime.stats.bytes_rx.clone()),
        to_downstream: Direction::new(runtime.stats.bytes_tx.clone()),
        chain,
        info,
        summary,
    };
    pump.run(runtime.config.idle_timeout).await
}

/// How the client's TLS starts when the listener terminates it: MySQL and PostgreSQL
/// clients ask in their protocol first (their filters answer); the others start with TLS.
fn downstream_tls(runtime: &ListenerRuntime) -> Result<DownstreamTls, CloseReason> {
    let Some(tls) = runtime.config.tls.as_ref() else { return Ok(DownstreamTls::Off) };
    match runtime.config.protocol {
        Protocol::Mysql | Protocol::Postgres => Ok(DownstreamTls::OnRequest(tls.server.clone())),
        _ => ServerConnection::new(tls.server.clone()).map(|conn| DownstreamTls::Now(Box::new(conn))).map_err(|e| {
            tracing::warn!(listener = %runtime.name, error = %e, "cannot start TLS");
            CloseReason::TlsError
        }),
    }
}

/// How the upstream side's TLS starts when the cluster originates it: PostgreSQL asks
/// with an SSLRequest first, here, before the client's first byte is forwarded; MySQL
/// asks in the middle of its handshake, in the filter; the others start with TLS.
async fn upstream_tls(
    runtime: &ListenerRuntime,
    upstream: &mut TcpStream,
    endpoint: usize,
) -> Result<UpstreamTls, CloseReason> {
    let Some(tls) = runtime.cluster.config.tls.as_ref() else { return Ok(UpstreamTls::Off) };
    let conn = tls.connect(endpoint).map_err(|e| {
        tracing::warn!(listener = %runtime.name, error = %e, "cannot start upstream TLS");
        CloseReason::UpstreamTlsError
    })?;
    match runtime.config.protocol {
        Protocol::Mysql => Ok(UpstreamTls::OnRequest(conn)),
        Protocol::Postgres => {
            let asked = tokio::time::timeout(runtime.cluster.config.connect_timeout, request_postgres_tls(upstream));
            match asked.await {
                Ok(Ok(true)) => Ok(UpstreamTls::Now(conn)),
                Ok(Ok(false)) => {
                    tracing::warn!(listener = %runtime.name, "the PostgreSQL server refused TLS (answered N to SSLRequest)");
                    Err(CloseReason::UpstreamTlsError)
                }
                Ok(Err(e)) => {
                    tracing::debug!(listener = %runtime.name, error = %e, "SSLRequest to the server failed");
                    Err(CloseReason::UpstreamError)
                }
                Err(_) => {
                    tracing::warn!(listener = %runtime.name, "the PostgreSQL server did not answer SSLRequest in time");
                    Err(CloseReason::UpstreamTlsError)
                }
            }
        }
        _ => Ok(UpstreamTls::Now(conn)),
    }
}

/// Sends SSLRequest and reads the server's one-byte answer: true for `S`. Exactly one
/// byte is read, so anything the server (or someone in the path) put after it is taken
/// by the TLS handshake as a record and fails it, rather than read as plaintext.
async fn request_postgres_tls(upstream: &mut TcpStream) -> std::io::Result<bool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    upstream.write_all(&sluice_codecs::postgres::ssl_request()).await?;
    let mut answer = [0u8; 1];
    upstream.read_exact(&mut answer).await?;
    Ok(answer == sluice_codecs::postgres::encryption_answer(true))
}

/// One direction of the byte stream: bytes read from its source and not yet written to
/// its sink, and how far its stream has got.
struct Direction {
    pending: BytesMut,
    /// The source sent FIN.
    eof: bool,
    /// The FIN has been passed on to the sink.
    shut: bool,
    counter: Counter,
}

impl Direction {
    fn new(counter: Counter) -> Self {
        Direction { pending: BytesMut::new(), eof: false, shut: false, counter }
    }

    fn can_read(&self) -> bool {
        !self.eof && self.pending.is_empty()
    }
}

struct Pump<'a> {
    downstream: TcpStream,
    upstream: TcpStream,
    to_upstream: Direction,
    to_downstream: Direction,
    chain: &'a mut FilterChain,
    info: &'a ConnectionInfo,
    /// Byte totals land here as they move, so a connection dropped mid-stream still
    /// reports them.
    summary: &'a mut CloseSummary,
}

/// What woke the pump.
enum Event {
    Writable(Side),
    Readable(Side),
    IdleTimer,
}

impl Pump<'_> {
    /// Moves bytes until the connection ends. Idleness is checked on a coarse tick
    /// (a quarter of the timeout) against a flag the data path sets, so moving bytes
    /// costs no clock read: a connection closes between 1 and 1.25 idle timeouts after
    /// its last byte.
    async fn run(&mut self, idle_timeout: Duration) -> CloseReason {
        let tick = idle_timeout / IDLE_TICKS;
        let idle = sleep_until(Instant::now() + tick);
        tokio::pin!(idle);
        let mut active = false;
        let mut quiet_ticks = 0;
        loop {
            let event = std::future::poll_fn(|cx| self.poll_event(cx, idle.as_mut())).await;
            let step = match event {
                Event::Writable(to) => self.flush(to),
                Event::Readable(from) => self.read(from),
                Event::IdleTimer => {
                    quiet_ticks = if active { 0 } else { quiet_ticks + 1 };
                    if quiet_ticks >= IDLE_TICKS {
                        return CloseReason::IdleTimeout;
                    }
                    active = false;
                    let next = idle.deadline() + tick;
                    idle.as_mut().reset(next);
                    continue;
                }
            };
            match step {
                Ok(moved) => active |= moved,
                Err(reason) => return reason,
            }
            if let Err(reason) = self.pass_on_fins() {
                return reason;
            }
            if self.to_upstream.shut && self.to_downstream.shut {
                return CloseReason::Done;
            }
        }
    }

    /// Waits for the next thing to do, registering interest only in what can make
    /// progress: writes while bytes are queued, reads while nothing is (backpressure).
    /// `poll_*_ready` keeps one waker slot per socket, so waiting allocates nothing.
    fn poll_event(&self, cx: &mut Context<'_>, idle: Pin<&mut Sleep>) -> Poll<Event> {
        let sides = [
            (Side::Downstream, &self.downstream, &self.to_downstream, &self.to_upstream),
            (Side::Upstream, &self.upstream, &self.to_upstream, &self.to_downstream),
        ];
        for (side, socket, inbound, outbound) in sides {
            // A readiness error is reported again by the read or write that follows.
            if !inbound.pending.is_empty() && socket.poll_write_ready(cx).is_ready() {
                return Poll::Ready(Event::Writable(side));
            }
            if outbound.can_read() && socket.poll_read_ready(cx).is_ready() {
                return Poll::Ready(Event::Readable(side));
            }
        }
        idle.poll(cx).map(|()| Event::IdleTimer)
    }

    /// Sockets and state for data read from `from`: (source, sink, direction).
    fn parts(&mut self, from: Side) -> (&TcpStream, &TcpStream, &mut Direction) {
        match from {
            Side::Downstream => (&self.downstream, &self.upstream, &mut self.to_upstream),
            Side::Upstream => (&self.upstream, &self.downstream, &mut self.to_downstream),
        }
    }

    /// Reads what `from` has, runs it through the filters and writes it on. Returns
    /// whether any bytes moved.
    fn read(&mut self, from: Side) -> Result<bool, CloseReason> {
        SCRATCH.with(|scratch| {
            let mut buf = scratch.borrow_mut();
            buf.clear();
            buf.reserve(READ_CHUNK);
            let (source, _, dir) = self.parts(from);
            let n = match read_once(source, &mut buf) {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(false),
                Err(_) => return Err(from.error()),
            };
            if n == 0 {
                dir.eof = true;
            } else {
                dir.counter.increment(n as u64);
                match from {
                    Side::Downstream => self.summary.bytes_from_downstream += n as u64,
                    Side::Upstream => self.summary.bytes_from_upstream += n as u64,
                }
            }
            let end_stream = n == 0;
            if self.chain.wants_data() {
                self.filter(from, &mut buf, end_stream)?;
            }
            if !buf.is_empty() {
                self.send(from, &buf)?;
            }
            Ok(n > 0)
        })
    }

    /// Runs data read from `from` through the chain; local replies go to the client
    /// behind whatever it is already owed.
    fn filter(&mut self, from: Side, buf: &mut BytesMut, end_stream: bool) -> Result<(), CloseReason> {
        let mut reply = BytesMut::new();
        let mut cx = FilterContext { info: self.info, reply_downstream: &mut reply };
        let status = match from {
            Side::Downstream => self.chain.on_downstream_data(buf, end_stream, &mut cx),
            Side::Upstream => self.chain.on_upstream_data(buf, end_stream, &mut cx),
        };
        if status == FilterStatus::Stop {
            buf.clear();
        }
        if !reply.is_empty() {
            if from == Side::Upstream {
                // Upstream data that survived the filters precedes the reply.
                self.send(from, buf)?;
                buf.clear();
            }
            self.send(Side::Upstream, &reply)?;
        }
        match status {
            FilterStatus::Close(reason) => Err(reason),
            _ => Ok(()),
        }
    }

    /// Writes `data` read from `from` to the other side, queuing what it cannot take now.
    fn send(&mut self, from: Side, data: &[u8]) -> Result<(), CloseReason> {
        let (_, sink, dir) = self.parts(from);
        if !dir.pending.is_empty() {
            dir.pending.extend_from_slice(data);
            return Ok(());
        }
        let Ok(written) = write_once(sink, &[IoSlice::new(data)]) else { return Err(from.other().error()) };
        if written < data.len() {
            dir.pending.extend_from_slice(&data[written..]);
        }
        Ok(())
    }

    /// Writes queued bytes to `to`. Returns whether any moved.
    fn flush(&mut self, to: Side) -> Result<bool, CloseReason> {
        let (_, sink, dir) = self.parts(to.other());
        match write_once(sink, &[IoSlice::new(&dir.pending)]) {
            Ok(n) => {
                let _ = dir.pending.split_to(n);
                if dir.pending.is_empty() {
                    // Give the memory back: an idle connection keeps no buffer.
                    dir.pending = BytesMut::new();
                }
                Ok(n > 0)
            }
            Err(_) => Err(to.error()),
        }
    }

    /// Passes a FIN on once everything before it has been written.
    fn pass_on_fins(&mut self) -> Result<(), CloseReason> {
        for from in [Side::Downstream, Side::Upstream] {
            let (_, sink, dir) = self.parts(from);
            if dir.eof && !dir.shut && dir.pending.is_empty() {
                dir.shut = true;
                if shutdown_write(sink).is_err() {
                    return Err(from.other().error());
                }
            }
        }
        Ok(())
    }
}
