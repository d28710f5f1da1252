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
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use sluice_filters::filter::{CloseSummary, ConnectionEvent, FilterStatus};
use sluice_filters::{CloseReason, ConnectionInfo, FilterChain};
use tokio::net::UdpSocket;
use tokio::time::{sleep_until, Instant};

use crate::cluster::UpstreamLease;
use crate::listener::{ConnectionSlot, ListenerRuntime};
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
    let info = runtime.connection_info(client);
    let mut chain = runtime.new_chain();
    match chain.on_event(&ConnectionEvent::Accepted, &info) {
        FilterStatus::Continue | FilterStatus::Stop => {}
        FilterStatus::Close(CloseReason::Denied) => {
            udp.dropped_denied.increment(1);
            return;
        }
        FilterStatus::Close(_) | FilterStatus::Retry(_) => {
            udp.dropped_limited.increment(1);
            return;
        }
    }
    // The session task owns its slot; admission is checked here so a full listener drops
    // the datagram instead of queueing it.
    let Some(slot) = runtime.try_admit() else {
        udp.dropped_limited.increment(1);
        runtime.connect_ops().connect.record(sluice_filters::Outcome::Limited, None);
        return;
    };
    let index = runtime.cluster.pick();
    let upstream_addr = runtime.cluster.config.endpoints[index].address;
    let started = Instant::now();
    let bind: SocketAddr =
        if upstream_addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let upstream = std::net::UdpSocket::bind(bind)
        .and_then(|s| s.connect(upstream_addr).map(|()| s))
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .and_then(UdpSocket::from_std);
    let upstream = match upstream {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(listener = %runtime.name, upstream = %upstream_addr, error = %e, "udp upstream socket failed");
            runtime.cluster.record_connect_error(index, crate::cluster::ConnectFailure::Other);
            chain.on_event(&ConnectionEvent::UpstreamConnectFailed { elapsed: started.elapsed() }, &info);
            return;
        }
    };
    chain.on_event(&ConnectionEvent::UpstreamConnected { upstream: upstream_addr, elapsed: started.elapsed() }, &info);
    let session = Rc::new(Session {
        upstream,
        last_activity: Cell::new(Instant::now()),
        bytes_from_client: Cell::new(0),
        bytes_to_client: Cell::new(0),
    });
    sessions.borrow_mut().insert(client, session.clone());
    udp.sessions_active.increment(1);
    forward_existing(sessions, client, &first, udp);
    let lease = runtime.cluster.lease(index);
    let task = run_session(
        socket.clone(),
        sessions.clone(),
        runtime.clone(),
        slot,
        lease,
        session,
        chain,
        info,
        stops.clone(),
    );
    tokio::task::spawn_local(stops.tracker.track_future(task));
}

#[allow(clippy::too_many_arguments)]
async fn run_session(
    socket: Rc<UdpSocket>,
    sessions: Sessions,
    runtime: Arc<ListenerRuntime>,
    slot: ConnectionSlot,
    lease: UpstreamLease,
    session: Rc<Session>,
    mut chain: FilterChain,
    info: ConnectionInfo,
    stops: Stops,
) {
    let udp = runtime.stats.udp.as_ref().expect("udp listener has udp stats");
    let started = std::time::Instant::now();
    let idle_timeout = runtime.config.idle_timeout;
    let client = info.client;
    let reason = loop {
        let deadline = session.last_activity.get() + idle_timeout;
        tokio::select! {
            biased;
            _ = stops.connections.cancelled() => break CloseReason::Drain,
            () = sleep_until(deadline) => {
                if session.last_activity.get() + idle_timeout <= Instant::now() {
                    break CloseReason::IdleTimeout;
                }
            }
            ready = session.upstream.readable() => {
                if ready.is_err() {
                    break CloseReason::UpstreamError;
                }
                relay_replies(&socket, &session, client, &runtime, udp);
            }
        }
    };
    sessions.borrow_mut().remove(&client);
    udp.sessions_active.decrement(1);
    let summary = CloseSummary {
        reason,
        upstream: Some(lease.address()),
        bytes_from_downstream: session.bytes_from_client.get(),
        bytes_from_upstream: session.bytes_to_client.get(),
        duration: started.elapsed(),
    };
    chain.on_event(&ConnectionEvent::Closed(&summary), &info);
    runtime.log_close(client, started, &summary);
    drop((slot, lease));
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
