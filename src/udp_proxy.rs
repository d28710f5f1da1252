//! The UDP proxy: a session per client address, each with its own connected upstream
//! socket, so replies find their way back to the client that caused them.
//!
//! A session starts with a client's first datagram, which is evaluated as the `connect`
//! op (deny and rate limits drop it; `delay` is treated as a drop, since holding
//! datagrams would only reorder them), counts against `max_sessions`, and ends after
//! `idle_timeout` without traffic in either direction, with a `close` op and an access-log
//! line. Datagrams are relayed whole, through the worker's scratch buffer; a datagram the
//! kernel cannot take right now is dropped and counted, as UDP allows.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;

use sluice_filters::filter::{ConnectionEvent, FilterStatus};
use sluice_filters::{CloseReason, Outcome};
use tokio::net::UdpSocket;
use tokio::time::{sleep_until, Instant};

use crate::cluster::{ConnectFailure, UpstreamLease};
use crate::listener::{ConnectionRecord, ConnectionSlot, ListenerRuntime};
use crate::tcp_proxy::Stops;
use crate::telemetry::UdpStats;

/// Larger than any UDP payload (65,507 bytes over IPv4).
const DATAGRAM_MAX: usize = 65_536;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; DATAGRAM_MAX]);
}

struct Session {
    upstream: UdpSocket,
    last_activity: Cell<Instant>,
    bytes_from_client: Cell<u64>,
    bytes_to_client: Cell<u64>,
}

type Sessions = Rc<RefCell<HashMap<SocketAddr, Rc<Session>>>>;

/// Receives client datagrams on one worker's socket until the drain begins.
pub async fn serve(socket: UdpSocket, runtime: Arc<ListenerRuntime>, stops: Stops) {
    let socket = Rc::new(socket);
    let sessions: Sessions = Rc::default();
    let udp = runtime.stats.udp.as_ref().expect("udp listener has udp stats");
    loop {
        let ready = tokio::select! {
            biased;
            _ = stops.accept.cancelled() => return,
            ready = socket.readable() => ready,
        };
        if ready.is_err() {
            continue;
        }
        // Drain everything queued, so one wakeup serves a burst.
        loop {
            let received = SCRATCH.with(|s| {
                let mut buf = s.borrow_mut();
                match socket.try_recv_from(&mut buf) {
                    Ok((n, client)) => {
                        udp.datagrams_rx.increment(1);
                        runtime.stats.bytes_rx.increment(n as u64);
                        Ok(Some((client, n, forward_existing(&sessions, client, &buf[..n], udp))))
                    }
                    Err(e) => Err(e),
                }
            });
            match received {
                Ok(Some((_, _, true))) => {}
                Ok(Some((client, n, false))) => {
                    let first = SCRATCH.with(|s| s.borrow()[..n].to_vec());
                    start_session(&socket, &sessions, &runtime, &stops, client, first);
                }
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ICMP errors surface here on some kernels; they concern one peer only.
                    tracing::debug!(listener = %runtime.name, error = %e, "udp receive failed");
                    break;
                }
            }
        }
    }
}

/// Sends a client datagram on its session's upstream socket; false when it has none.
fn forward_existing(sessions: &Sessions, client: SocketAddr, data: &[u8], udp: &UdpStats) -> bool {
    let Some(session) = sessions.borrow().get(&client).cloned() else { return false };
    session.last_activity.set(Instant::now());
    session.bytes_from_client.set(session.bytes_from_client.get() + data.len() as u64);
    // A direct non-blocking send: a fresh socket has no readiness recorded by tokio yet,
    // and for UDP "the kernel has no room" means "drop it" anyway.
    if socket2::SockRef::from(&session.upstream).send(data).is_err() {
        udp.dropped_send_error.increment(1);
    }
    true
}

fn start_session(
    socket: &Rc<UdpSocket>,
    sessions: &Sessions,
    runtime: &Arc<ListenerRuntime>,
    stops: &Stops,
    client: SocketAddr,
    first: Vec<u8>,
) {
    let udp = runtime.stats.udp.as_ref().expect("udp listener has udp stats");
    let mut record = ConnectionRecord::new(runtime.clone(), client);
    match record.chain.on_event(&ConnectionEvent::Accepted, &record.info) {
        FilterStatus::Continue
        | FilterStatus::Stop
        | FilterStatus::StartDownstreamTls
        | FilterStatus::StartUpstreamTls => {}
        FilterStatus::Close(CloseReason::Denied) => {
            udp.dropped_denied.increment(1);
            return record.discard();
        }
        FilterStatus::Close(_) | FilterStatus::Retry(_) => {
            udp.dropped_limited.increment(1);
            return record.discard();
        }
    }
    // Admission is checked here, so a full listener drops the datagram instead of
    // queueing it.
    let Some(slot) = runtime.try_admit() else {
        udp.dropped_limited.increment(1);
        runtime.connect_ops().connect.record(Outcome::Limited, None);
        return record.discard();
    };
    let index = runtime.cluster.pick();
    let upstream_addr = runtime.cluster.config.endpoints[index].address;
    let started = Instant::now();
    let upstream = connected_socket(upstream_addr);
    let upstream = match upstream {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(listener = %runtime.name, upstream = %upstream_addr, error = %e, "udp upstream socket failed");
            runtime.cluster.record_connect_error(index, ConnectFailure::Other);
            record.chain.on_event(&ConnectionEvent::UpstreamConnectFailed { elapsed: started.elapsed() }, &record.info);
            record.summary.reason = CloseReason::UpstreamConnectFailed;
            return;
        }
    };
    let elapsed = started.elapsed();
    record.chain.on_event(&ConnectionEvent::UpstreamConnected { upstream: upstream_addr, elapsed }, &record.info);
    record.summary.upstream = Some(upstream_addr);
    let session = Rc::new(Session {
        upstream,
        last_activity: Cell::new(Instant::now()),
        bytes_from_client: Cell::new(0),
        bytes_to_client: Cell::new(0),
    });
    sessions.borrow_mut().insert(client, session.clone());
    udp.sessions_active.increment(1);
    forward_existing(sessions, client, &first, udp);
    let end =
        SessionEnd { record, session, sessions: sessions.clone(), _slot: slot, _lease: runtime.cluster.lease(index) };
    tokio::task::spawn_local(stops.tracker.track_future(run_session(socket.clone(), end)));
}

/// An unbound-port UDP socket connected to `upstream`, so only its replies reach it.
fn connected_socket(upstream: SocketAddr) -> io::Result<UdpSocket> {
    let any: SocketAddr =
        if upstream.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = std::net::UdpSocket::bind(any)?;
    socket.connect(upstream)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Everything a session releases when it ends, however it ends (idle timeout, upstream
/// error, or its worker dropping it at the end of a drain).
struct SessionEnd {
    record: ConnectionRecord,
    session: Rc<Session>,
    sessions: Sessions,
    _slot: ConnectionSlot,
    _lease: UpstreamLease,
}

impl Drop for SessionEnd {
    fn drop(&mut self) {
        if let Ok(mut sessions) = self.sessions.try_borrow_mut() {
            sessions.remove(&self.record.info.client);
        }
        if let Some(udp) = &self.record.runtime.stats.udp {
            udp.sessions_active.decrement(1);
        }
        self.record.summary.bytes_from_downstream = self.session.bytes_from_client.get();
        self.record.summary.bytes_from_upstream = self.session.bytes_to_client.get();
    }
}

async fn run_session(socket: Rc<UdpSocket>, mut end: SessionEnd) {
    let runtime = end.record.runtime.clone();
    let udp = runtime.stats.udp.as_ref().expect("udp listener has udp stats");
    let idle_timeout = runtime.config.idle_timeout;
    let client = end.record.info.client;
    let session = end.session.clone();
    let idle = sleep_until(session.last_activity.get() + idle_timeout);
    tokio::pin!(idle);
    end.record.summary.reason = loop {
        tokio::select! {
            () = &mut idle => {
                let deadline = session.last_activity.get() + idle_timeout;
                if deadline <= Instant::now() {
                    break CloseReason::IdleTimeout;
                }
                idle.as_mut().reset(deadline);
            }
            ready = session.upstream.readable() => {
                if ready.is_err() {
                    break CloseReason::UpstreamError;
                }
                relay_replies(&socket, &session, client, &runtime, udp);
            }
        }
    };
}

/// Sends every reply the upstream has queued back to the client.
fn relay_replies(socket: &UdpSocket, session: &Session, client: SocketAddr, runtime: &ListenerRuntime, udp: &UdpStats) {
    SCRATCH.with(|s| {
        let mut buf = s.borrow_mut();
        loop {
            let n = match session.upstream.try_recv(&mut buf) {
                Ok(n) => n,
                // WouldBlock, or an ICMP port-unreachable from an upstream that is not
                // listening: nothing to relay; the session idles out.
                Err(_) => return,
            };
            session.last_activity.set(Instant::now());
            match socket2::SockRef::from(socket).send_to(&buf[..n], &client.into()) {
                Ok(_) => {
                    udp.datagrams_tx.increment(1);
                    runtime.stats.bytes_tx.increment(n as u64);
                    session.bytes_to_client.set(session.bytes_to_client.get() + n as u64);
                }
                Err(_) => udp.dropped_send_error.increment(1),
            }
        }
    });
}
