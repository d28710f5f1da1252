//! The network filter contract (DESIGN.md "Filters").
//!
//! A filter sees connection events, downstream data and upstream data, and answers with a
//! [`FilterStatus`]. The runtime's connection driver owns the sockets and buffers and is
//! the terminal of every chain: it forwards whatever the filters leave in the buffer.
//! Downstream data runs through the chain in order, upstream data in reverse order, like
//! Envoy's read and write filters.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use crate::op::Protocol;

/// What every filter of a connection knows about it.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    pub listener: Arc<str>,
    pub protocol: Protocol,
    pub cluster: Arc<str>,
    pub client: SocketAddr,
}

/// Why a connection ended; the `close_reason` of the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Both sides finished their streams.
    Done,
    IdleTimeout,
    /// A read or write on the client's socket failed (reset, broken pipe).
    DownstreamError,
    /// A read or write on the upstream socket failed.
    UpstreamError,
    /// No endpoint of the cluster accepted the connection.
    UpstreamConnectFailed,
    /// A deny rule refused the connection.
    Denied,
    /// A rate limit or `max_connections` refused the connection.
    Limited,
    /// The drain timeout ran out during shutdown.
    Drain,
    /// A filter could not make sense of the stream and closed it.
    ProtocolError,
    /// The TLS session with the client failed (handshake refused, bad record, alert).
    TlsError,
    /// The TLS session with the server failed or could not start (the server refused
    /// TLS, its certificate did not verify, a bad record, an alert).
    UpstreamTlsError,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Done => "done",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::DownstreamError => "downstream_error",
            CloseReason::UpstreamError => "upstream_error",
            CloseReason::UpstreamConnectFailed => "upstream_connect_failed",
            CloseReason::Denied => "denied",
            CloseReason::Limited => "limited",
            CloseReason::Drain => "drain",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::TlsError => "tls_error",
            CloseReason::UpstreamTlsError => "upstream_tls_error",
        }
    }

    /// Whether the connection ended because something went wrong (for the `close` op's
    /// outcome).
    pub fn is_error(self) -> bool {
        !matches!(self, CloseReason::Done | CloseReason::IdleTimeout | CloseReason::Drain)
    }
}

/// Totals of a finished connection, given to filters with [`ConnectionEvent::Closed`].
#[derive(Clone, Debug)]
pub struct CloseSummary {
    pub reason: CloseReason,
    pub upstream: Option<SocketAddr>,
    /// Bytes read from the client.
    pub bytes_from_downstream: u64,
    /// Bytes read from the upstream.
    pub bytes_from_upstream: u64,
    pub duration: Duration,
}

/// Connection lifecycle events, in the order they happen.
#[derive(Clone, Debug)]
pub enum ConnectionEvent<'a> {
    /// A client connected (TCP) or sent its first datagram (UDP); nothing has been sent
    /// upstream yet, so a filter can still refuse it.
    Accepted,
    UpstreamConnected {
        upstream: SocketAddr,
        elapsed: Duration,
    },
    UpstreamConnectFailed {
        elapsed: Duration,
    },
    Closed(&'a CloseSummary),
}

/// What the driver does after a filter has seen an event or data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterStatus {
    /// Pass the event or the data left in the buffer on to the next filter.
    Continue,
    /// The filter took the data (it buffers a partial frame or answered locally); the rest
    /// of the chain does not see it.
    Stop,
    /// Hold this event for the given time, then deliver it to the filter again. Used for
    /// rate limits with `delay` on `Accepted`.
    Retry(Duration),
    /// Close both sides of the connection.
    Close(CloseReason),
    /// Stream filters only: the bytes left in the client's buffer, and all that follow, are
    /// TLS records the proxy terminates (the filter answered a MySQL SSLRequest itself). The
    /// driver starts a TLS server session on the client's socket and from then on hands the
    /// filter the decrypted bytes, and encrypts what the filter queues for the client.
    StartDownstreamTls,
    /// Stream filters only: the filter has asked the server for TLS in the protocol's own
    /// way (a MySQL SSLRequest) and the server can take the handshake now. The driver
    /// starts the cluster's TLS client session on the upstream socket; the filter keeps
    /// reading and writing plaintext. Bytes the filter left in the client's buffer are
    /// offered to it again once the session is set up.
    StartUpstreamTls,
}

/// Bytes a filter wants sent back to the client without involving the upstream (a local
/// reply such as a protocol error). Appended in order after the data already queued.
pub struct FilterContext<'a> {
    pub info: &'a ConnectionInfo,
    pub reply_downstream: &'a mut BytesMut,
}

/// A network filter. Every method has a pass-through default so a filter implements only
/// what it needs.
pub trait Filter {
    fn on_event(&mut self, _event: &ConnectionEvent<'_>, _info: &ConnectionInfo) -> FilterStatus {
        FilterStatus::Continue
    }

    /// Whether the filter inspects data at all; the driver skips the data hooks (and the
    /// per-read dispatch) when no filter of the chain does.
    fn wants_data(&self) -> bool {
        false
    }

    /// Bytes read from the client. Whatever is left in `data` after `Continue` goes on.
    fn on_downstream_data(
        &mut self,
        _data: &mut BytesMut,
        _end_stream: bool,
        _cx: &mut FilterContext<'_>,
    ) -> FilterStatus {
        FilterStatus::Continue
    }

    /// Bytes read from the upstream. Whatever is left in `data` after `Continue` goes on.
    fn on_upstream_data(
        &mut self,
        _data: &mut BytesMut,
        _end_stream: bool,
        _cx: &mut FilterContext<'_>,
    ) -> FilterStatus {
        FilterStatus::Continue
    }
}

/// The filters of one connection, in configuration order.
pub struct FilterChain {
    filters: Vec<Box<dyn Filter>>,
    wants_data: bool,
}

impl FilterChain {
    pub fn new(filters: Vec<Box<dyn Filter>>) -> Self {
        let wants_data = filters.iter().any(|f| f.wants_data());
        FilterChain { filters, wants_data }
    }

    pub fn wants_data(&self) -> bool {
        self.wants_data
    }

    /// Delivers an event to every filter in order; the first status other than `Continue`
    /// wins. `Closed` is delivered to every filter regardless, so each can account for it.
    pub fn on_event(&mut self, event: &ConnectionEvent<'_>, info: &ConnectionInfo) -> FilterStatus {
        let mut result = FilterStatus::Continue;
        for filter in &mut self.filters {
            let status = filter.on_event(event, info);
            if status != FilterStatus::Continue && result == FilterStatus::Continue {
                result = status;
                if !matches!(event, ConnectionEvent::Closed(_)) {
                    break;
                }
            }
        }
        result
    }

    pub fn on_downstream_data(
        &mut self,
        data: &mut BytesMut,
        end_stream: bool,
        cx: &mut FilterContext<'_>,
    ) -> FilterStatus {
        for filter in self.filters.iter_mut().filter(|f| f.wants_data()) {
            match filter.on_downstream_data(data, end_stream, cx) {
                FilterStatus::Continue => {}
                other => return other,
            }
        }
        FilterStatus::Continue
    }

    pub fn on_upstream_data(
        &mut self,
        data: &mut BytesMut,
        end_stream: bool,
        cx: &mut FilterContext<'_>,
    ) -> FilterStatus {
        for filter in self.filters.iter_mut().rev().filter(|f| f.wants_data()) {
            match filter.on_upstream_data(data, end_stream, cx) {
                FilterStatus::Continue => {}
                other => return other,
            }
        }
        FilterStatus::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Protocol;

    /// Upper-cases downstream bytes and answers `PING` locally.
    struct Shout;
    impl Filter for Shout {
        fn wants_data(&self) -> bool {
            true
        }
        fn on_downstream_data(&mut self, data: &mut BytesMut, _: bool, cx: &mut FilterContext<'_>) -> FilterStatus {
            if &data[..] == b"ping" {
                data.clear();
                cx.reply_downstream.extend_from_slice(b"pong");
                return FilterStatus::Stop;
            }
            data.make_ascii_uppercase();
            FilterStatus::Continue
        }
    }

    /// Refuses every connection.
    struct Door;
    impl Filter for Door {
        fn on_event(&mut self, event: &ConnectionEvent<'_>, _: &ConnectionInfo) -> FilterStatus {
            match event {
                ConnectionEvent::Accepted => FilterStatus::Close(CloseReason::Denied),
                _ => FilterStatus::Continue,
            }
        }
    }

    fn info() -> ConnectionInfo {
        ConnectionInfo {
            listener: "l".into(),
            protocol: Protocol::Tcp,
            cluster: "c".into(),
            client: "127.0.0.1:1".parse().unwrap(),
        }
    }

    #[test]
    fn data_runs_through_filters_and_local_replies_stop_the_chain() {
        let mut chain = FilterChain::new(vec![Box::new(Door), Box::new(Shout)]);
        assert!(chain.wants_data());
        let info = info();
        let mut reply = BytesMut::new();
        let mut cx = FilterContext { info: &info, reply_downstream: &mut reply };
        let mut data = BytesMut::from(&b"hello"[..]);
        assert_eq!(chain.on_downstream_data(&mut data, false, &mut cx), FilterStatus::Continue);
        assert_eq!(&data[..], b"HELLO");
        let mut data = BytesMut::from(&b"ping"[..]);
        assert_eq!(chain.on_downstream_data(&mut data, false, &mut cx), FilterStatus::Stop);
        assert!(data.is_empty());
        assert_eq!(&reply[..], b"pong");
        assert_eq!(chain.on_event(&ConnectionEvent::Accepted, &info), FilterStatus::Close(CloseReason::Denied));
    }

    #[test]
    fn chain_without_data_filters_skips_data() {
        let chain = FilterChain::new(vec![Box::new(Door)]);
        assert!(!chain.wants_data());
    }
}
