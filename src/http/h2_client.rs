//! HTTP/2 upstream connections for clusters with `http2: true` (RFC 9113; prior knowledge
//! on plain TCP, §3.3, or ALPN `h2` over the cluster's `tls`, §3.2): one multiplexed
//! connection per worker and endpoint, opened on first use and shared by every stream the
//! worker sends there, so no lock is taken.
//!
//! The connection is driven by its own task on the worker (it holds the endpoint lease and
//! counts as an active upstream connection while open). A connection that failed or was
//! closed by the server (GOAWAY) is forgotten; the next request opens a new one. Requests
//! wait for a stream slot when the server's SETTINGS_MAX_CONCURRENT_STREAMS is reached
//! (`SendRequest::ready`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use h2::client::SendRequest;

use super::pool::{self, CheckoutError, PoolStats};
use crate::cluster::Cluster;

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
}

fn key(cluster: &Arc<Cluster>, endpoint: usize) -> Key {
    (Arc::as_ptr(cluster) as usize, endpoint)
}

/// A sender ready for one more stream to the next endpoint of `cluster`, and its address.
pub async fn ready(
    cluster: &Arc<Cluster>,
    stats: &Arc<PoolStats>,
) -> Result<(SendRequest<Bytes>, SocketAddr), CheckoutError> {
    let endpoint = cluster.pick();
    let k = key(cluster, endpoint);
    if let Some(entry) = CONNECTIONS.with(|c| c.borrow().get(&k).cloned()) {
        match entry.sender.ready().await {
            Ok(sender) => {
                stats.count_reused();
                return Ok((sender, entry.addr));
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
    tokio::task::spawn_local(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "HTTP/2 upstream connection ended");
        }
        forget(k, id);
        drop((lease, guard));
    });
    CONNECTIONS.with(|c| c.borrow_mut().insert(k, Entry { sender: sender.clone(), addr, id }));
    let sender = sender.ready().await.map_err(|_| CheckoutError::Handshake)?;
    Ok((sender, addr))
}

fn forget(k: Key, id: u64) {
    CONNECTIONS.with(|c| {
        let mut c = c.borrow_mut();
        if c.get(&k).is_some_and(|e| e.id == id) {
            c.remove(&k);
        }
    });
}
