//! HTTP/2 upstream connections for clusters with `http2: true` (RFC 9113; prior knowledge
//! on plain TCP, §3.3, or ALPN `h2` over the cluster's `tls`, §3.2): one multiplexed
//! connection per worker and endpoint, opened on first use and shared by every stream the
//! worker sends there, so no lock is taken.
//!
//! The connection is driven by its own task on the worker (it holds the endpoint lease and
//! counts as an active upstream connection while open). A connection that failed or was
//! closed by the server (GOAWAY) is forgotten; the next request opens a new one. One with
//! no stream for the listener's `upstream_idle_timeout` is forgotten too, and closes once
//! its last handle is gone. Requests
//! wait for a stream slot when the server's SETTINGS_MAX_CONCURRENT_STREAMS is reached
//! (`SendRequest::ready`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;

use super::pool::{self, CheckoutError, PoolStats};
use crate::cluster::Cluster;
use tokio::time::{sleep_until, Instant};

/// Most the client's send buffer holds per stream beyond the server's window.
const MAX_SEND_BUFFER: usize = 64 * 1024;
/// Per-stream receive window: what a response may buffer before sluice relays it.
const WINDOW: u32 = 256 * 1024;

type Key = (usize, usize);

thread_local! {
    static CONNECTIONS: RefCell<HashMap<Key, Entry>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

#[derive(Clone)]
struct Entry {
    sender: SendRequest<Bytes>,
    addr: SocketAddr,
    /// Tells this connection from a later one to the same endpoint.
    id: u64,
    usage: Rc<Usage>,
}

/// Streams in flight on a connection, and when the last one ended.
struct Usage {
    in_flight: Cell<usize>,
    last: Cell<Instant>,
}

/// One stream's use of a connection (for its idle timeout); hold it for the exchange.
pub struct InFlight(Rc<Usage>);

impl InFlight {
    fn new(usage: &Rc<Usage>) -> InFlight {
        usage.in_flight.set(usage.in_flight.get() + 1);
        InFlight(usage.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get().saturating_sub(1));
        self.0.last.set(Instant::now());
    }
}

fn key(cluster: &Arc<Cluster>, endpoint: usize) -> Key {
    (Arc::as_ptr(cluster) as usize, endpoint)
}

/// A sender ready for one more stream to the next endpoint of `cluster`, its address, and
/// the stream's hold on the connection; an idle connection closes after `idle_timeout`.
pub async fn ready(
    cluster: &Arc<Cluster>,
    stats: &Arc<PoolStats>,
    idle_timeout: Duration,
) -> Result<(SendRequest<Bytes>, SocketAddr, InFlight), CheckoutError> {
    let endpoint = cluster.pick();
    let k = key(cluster, endpoint);
    if let Some(entry) = CONNECTIONS.with(|c| c.borrow().get(&k).cloned()) {
        match entry.sender.ready().await {
            Ok(sender) => {
                stats.count_reused();
                return Ok((sender, entry.addr, InFlight::new(&entry.usage)));
            }
            Err(_) => forget(k, entry.id),
        }
    }
    let up = pool::fresh_with_alpn(cluster, endpoint, stats, Some(b"h2")).await?;
    let addr = up.lease.address();
    let mut builder = h2::client::Builder::new();
    builder
        .initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW * 4)
        .max_send_buffer_size(MAX_SEND_BUFFER);
    let (sender, connection) = match builder.handshake::<_, Bytes>(up.io).await {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(cluster = %cluster.config.name, error = %e, "HTTP/2 upstream handshake failed");
            return Err(CheckoutError::Handshake);
        }
    };
    let (lease, guard) = (up.lease, up.guard);
    // The endpoint this connection was made to (failover may have picked another).
    let k = key(cluster, lease.index());
    let id = NEXT_ID.with(|n| n.replace(n.get() + 1));
    let usage = Rc::new(Usage { in_flight: Cell::new(0), last: Cell::new(Instant::now()) });
    let in_flight = InFlight::new(&usage);
    let watched = usage.clone();
    tokio::task::spawn_local(async move {
        tokio::pin!(connection);
        let mut forgotten = false;
        loop {
            let busy = watched.in_flight.get() > 0;
            let deadline = if busy { Instant::now() + idle_timeout } else { watched.last.get() + idle_timeout };
            tokio::select! {
                ended = &mut connection => {
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "HTTP/2 upstream connection ended");
                    }
                    break;
                }
                _ = sleep_until(deadline), if !forgotten => {
                    if watched.in_flight.get() == 0 && watched.last.get() + idle_timeout <= Instant::now() {
                        // Idle: no new stream gets it; it closes when the last handle drops.
                        forget(k, id);
                        forgotten = true;
                    }
                }
            }
        }
        forget(k, id);
        drop((lease, guard));
    });
    CONNECTIONS.with(|c| c.borrow_mut().insert(k, Entry { sender: sender.clone(), addr, id, usage }));
    let sender = sender.ready().await.map_err(|_| CheckoutError::Handshake)?;
    Ok((sender, addr, in_flight))
}

fn forget(k: Key, id: u64) {
    CONNECTIONS.with(|c| {
        let mut c = c.borrow_mut();
        if c.get(&k).is_some_and(|e| e.id == id) {
            c.remove(&k);
        }
    });
}
