//! The HTTP/2 connection driver (RFC 9113) of the `http` listener, on the `h2` crate's
//! server. A connection is HTTP/2 when the client starts with the connection preface on a
//! plain listener (prior knowledge, RFC 9113 §3.3) or chose `h2` by ALPN over TLS (§3.2).
//!
//! The connection task drives the h2 connection (`accept` polls all its I/O) and runs
//! each stream as its own task on the same worker (`h2_stream`), so streams proceed
//! concurrently while sharing the one socket.
//!
//! Limits (the listener's `http2` settings): SETTINGS_MAX_CONCURRENT_STREAMS,
//! SETTINGS_MAX_HEADER_LIST_SIZE (a larger header block is refused; the h2 crate also
//! caps how much HPACK/CONTINUATION input it buffers, the CVE-2024-27316 class, with a
//! connection error), the initial window (what an upload may buffer per stream), and
//! the rapid-reset defences (CVE-2023-44487): streams the client opens and resets before
//! they are accepted, and streams sluice resets for client errors, are counted by h2 and
//! past their limits the connection ends with GOAWAY ENHANCE_YOUR_CALM. Streams the client
//! resets after sluice accepted them (each had started an upstream request) are counted
//! too: at 100 or more, once they are over half of the connection's streams, the
//! connection ends the same way (Envoy's "premature reset" rule).
//!
//! The connection ends with a graceful GOAWAY (in-flight streams finish, no new ones) when
//! the listener drains (SIGTERM) or when it had no stream for the idle timeout.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::Reason;
use sluice_filters::CloseReason;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{sleep, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::h2_stream::{self, Shared};
use super::HttpListener;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Client resets of accepted streams tolerated before the ratio test below applies.
const RESET_FLOOR: u64 = 100;

/// Most the server's send buffer holds per stream beyond the client's window.
const MAX_SEND_BUFFER: usize = 64 * 1024;

/// The streams in flight and when the last one ended (the idle clock starts then).
#[derive(Default)]
struct Activity {
    active: Cell<usize>,
    last_end: Cell<Option<Instant>>,
}

/// Counts a stream as active while it lives.
struct ActiveStream(Rc<Activity>);

impl Drop for ActiveStream {
    fn drop(&mut self) {
        self.0.active.set(self.0.active.get().saturating_sub(1));
        self.0.last_end.set(Some(Instant::now()));
    }
}

fn reason_label(reason: Option<Reason>) -> &'static str {
    match reason {
        Some(Reason::PROTOCOL_ERROR) => "protocol_error",
        Some(Reason::ENHANCE_YOUR_CALM) => "enhance_your_calm",
        Some(Reason::FLOW_CONTROL_ERROR) => "flow_control_error",
        _ => "other",
    }
}

/// Serves one HTTP/2 client connection until it closes.
pub async fn serve<T>(
    io: T,
    client: SocketAddr,
    https: bool,
    http: Arc<HttpListener>,
    drain: CancellationToken,
) -> CloseReason
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    http.stats.connections_h2.increment(1);
    let settings = http.http2;
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(settings.max_concurrent_streams)
        .max_header_list_size(settings.max_header_list_size)
        .initial_window_size(settings.initial_window_size)
        .initial_connection_window_size(settings.initial_window_size.saturating_mul(4).min(i32::MAX as u32))
        .max_pending_accept_reset_streams(settings.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(Some(settings.max_local_error_reset_streams))
        .max_send_buffer_size(MAX_SEND_BUFFER);
    let idle = http.idle_timeout;
    let mut conn = match timeout(idle.min(Duration::from_secs(10)), builder.handshake::<T, Bytes>(io)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            tracing::debug!(listener = %http.name, client = %client, error = %e, "HTTP/2 handshake failed");
            return CloseReason::ProtocolError;
        }
        Err(_) => return CloseReason::IdleTimeout,
    };
    let shared = Rc::new(Shared { http: http.clone(), client, https, resets: Cell::new(0) });
    let mut streams = 0u64;
    let activity = Rc::new(Activity::default());
    let opened = Instant::now();
    let mut closing = false;
    let idle_timer = sleep(idle);
    tokio::pin!(idle_timer);
    loop {
        tokio::select! {
            accepted = conn.accept() => match accepted {
                Some(Ok((request, respond))) => {
                    http.stats.h2_streams.increment(1);
                    streams += 1;
                    let resets = shared.resets.get();
                    if !closing && resets >= RESET_FLOOR && resets * 2 > streams {
                        // Rapid reset of accepted streams: each one cost an upstream request.
                        tracing::debug!(listener = %http.name, client = %client, resets, streams, "HTTP/2 reset flood");
                        closing = true;
                        http.stats.goaway("enhance_your_calm");
                        conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
                        continue;
                    }
                    activity.active.set(activity.active.get() + 1);
                    let guard = ActiveStream(activity.clone());
                    let shared = shared.clone();
                    tokio::task::spawn_local(async move {
                        h2_stream::serve(shared, request, respond).await;
                        drop(guard);
                    });
                }
                Some(Err(e)) => {
                    tracing::debug!(listener = %http.name, client = %client, error = %e, "HTTP/2 connection error");
                    if e.is_go_away() && !e.is_remote() && !closing {
                        http.stats.goaway(reason_label(e.reason()));
                        return CloseReason::ProtocolError;
                    }
                    return if e.is_io() { CloseReason::DownstreamError } else { CloseReason::ProtocolError };
                }
                None => return CloseReason::Done,
            },
            _ = drain.cancelled(), if !closing => {
                closing = true;
                http.stats.goaway("drain");
                conn.graceful_shutdown();
            }
            _ = &mut idle_timer, if !closing => {
                let now = Instant::now();
                let idle_since = activity.last_end.get().unwrap_or(opened);
                if activity.active.get() == 0 && idle_since + idle <= now {
                    closing = true;
                    http.stats.goaway("idle");
                    conn.graceful_shutdown();
                } else if activity.active.get() == 0 {
                    idle_timer.as_mut().reset(idle_since + idle);
                } else {
                    idle_timer.as_mut().reset(now + idle);
                }
            }
        }
    }
}
