//! The connection driver of the `http` listener: one task per client connection on the
//! worker that accepted it, serving its requests one at a time, in order (pipelined
//! requests wait in the read buffer, unparsed: RFC 9112 §9.3.2 only asks that responses
//! keep the requests' order).
//!
//! Per request: rules (deny → 403, rate limit → 429 or a delay), route (none → 404),
//! then `forward` (upstream tries until the response head) and `relay` (the response
//! streamed down, or a tunnel). Body bytes are forwarded as received (their framing is
//! unchanged); each direction holds at most one read (64 KiB) and reads again only after
//! that was written (backpressure), so a body of any size moves through a bounded buffer.
//!
//! The client connection stays open after a response unless: the request or the response
//! said `Connection: close` (or was HTTP/1.0 without keep-alive, RFC 9112 §9.3), the
//! response was delimited by the server's close (sluice then closes too, after telling the
//! client `Connection: close`), the request body was not read to its end, or an error
//! happened. An upstream connection goes back to the pool only after a complete exchange
//! whose response allows persistence.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sluice_codecs::framing::Decode;
use sluice_codecs::http1::{error_response, BodyKind, H1Error, Item, Method, RequestDecoder, RequestHead};
use sluice_filters::filter::ConnectionEvent;
use sluice_filters::policy::Verdict;
use sluice_filters::{CloseReason, FilterStatus, Op, Outcome, Protocol};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

use super::h2_server::{self, PREFACE};
use super::io::{accept_tls, read_into, write_flush, Conn, Prefixed};
use super::local::{self, LocalReason};
use super::log::{Exchange, RequestLogFacts};
use super::HttpListener;
use crate::listener::{ConnectionRecord, ListenerRuntime};
use crate::telemetry::Rejection;

/// The most request body sluice reads and discards to keep a connection after a local reply.
const MAX_DISCARD: u64 = 64 * 1024;
/// How long closing a client connection may take (TLS close_notify, FIN).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves one client connection (see the module docs).
pub async fn serve(stream: TcpStream, client: SocketAddr, runtime: Arc<ListenerRuntime>, drain: CancellationToken) {
    let mut record = ConnectionRecord::new(runtime.clone(), client);
    let Some(_slot) = runtime.try_admit() else {
        runtime.stats.rejected(Rejection::MaxConnections);
        runtime.connect_ops().connect.record(Outcome::Limited, None);
        record.summary.reason = CloseReason::Limited;
        return;
    };
    let Some(http) = runtime.http.clone() else { return };
    // The `connect` op: rules matching it refuse or hold the connection before any byte.
    loop {
        match record.chain.on_event(&ConnectionEvent::Accepted, &record.info) {
            FilterStatus::Retry(wait) => tokio::time::sleep(wait).await,
            FilterStatus::Close(reason) => {
                match reason {
                    CloseReason::Denied => runtime.stats.rejected(Rejection::Denied),
                    CloseReason::Limited => runtime.stats.rejected(Rejection::RateLimited),
                    _ => {}
                }
                record.summary.reason = reason;
                return;
            }
            _ => break,
        }
    }
    let (mut io, https) = match accept_tls(stream, http.tls.as_ref(), &runtime, http.idle_timeout).await {
        Ok(accepted) => accepted,
        Err(reason) => {
            record.summary.reason = reason;
            return;
        }
    };
    let mut buf = BytesMut::new();
    let h2 = if https {
        io.alpn() == Some(b"h2")
    } else {
        match sniff_preface(&mut io, &mut buf, &http, &runtime).await {
            Ok(h2) => h2,
            Err(reason) => {
                record.summary.bytes_from_downstream = buf.len() as u64;
                record.summary.reason = reason;
                return;
            }
        }
    };
    if h2 {
        let io = Prefixed::new(buf.freeze(), io, runtime.clone());
        let (rx, tx) = (io.rx.clone(), io.tx.clone());
        let reason = h2_server::serve(io, client, https, http.clone(), drain).await;
        record.summary.bytes_from_downstream = rx.get();
        record.summary.bytes_from_upstream = tx.get();
        record.summary.reason = reason;
        return;
    }
    http.stats.connections_h1.increment(1);
    let sniffed = buf.len() as u64;
    let mut conn = ClientConn {
        io,
        buf,
        decoder: RequestDecoder::new(http.limits),
        eof: false,
        client,
        https,
        http: &http,
        runtime: &runtime,
        bytes_in: sniffed,
        bytes_out: 0,
        upstream: None,
        body_in: 0,
    };
    let reason = conn.run().await;
    record.summary.bytes_from_downstream = conn.bytes_in;
    record.summary.bytes_from_upstream = conn.bytes_out;
    record.summary.upstream = conn.upstream;
    record.summary.reason = reason;
}

/// Reads until the first bytes either are the HTTP/2 connection preface (prior
/// knowledge, RFC 9113 §3.3) or cannot be; an HTTP/1 request differs at its first byte
/// unless its method starts with "PRI", so this rarely waits for more than one read.
async fn sniff_preface(
    io: &mut Conn,
    buf: &mut BytesMut,
    http: &HttpListener,
    runtime: &ListenerRuntime,
) -> Result<bool, CloseReason> {
    loop {
        let n = buf.len().min(PREFACE.len());
        if buf[..n] != PREFACE[..n] {
            return Ok(false);
        }
        if n == PREFACE.len() {
            return Ok(true);
        }
        match timeout(http.idle_timeout, read_into(io, buf)).await {
            Err(_) => return Err(CloseReason::IdleTimeout),
            Ok(Err(_)) => return Err(CloseReason::DownstreamError),
            // Let the HTTP/1 side see the end (a connection closed before a request).
            Ok(Ok(0)) => return Ok(false),
            Ok(Ok(n)) => runtime.stats.bytes_rx.increment(n as u64),
        }
    }
}

/// What ended a wait for client bytes.
enum ReadError {
    Timeout,
    Io,
    Codec(H1Error),
}

/// What follows a request on the client connection.
pub(super) enum Next {
    KeepAlive,
    Close(CloseReason),
}

pub(super) struct ClientConn<'a> {
    pub(super) io: Conn,
    pub(super) buf: BytesMut,
    pub(super) decoder: RequestDecoder,
    /// The client sent FIN.
    pub(super) eof: bool,
    pub(super) client: SocketAddr,
    pub(super) https: bool,
    pub(super) http: &'a HttpListener,
    pub(super) runtime: &'a ListenerRuntime,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    /// The last upstream used (the connection record's `upstream`).
    pub(super) upstream: Option<SocketAddr>,
    /// Request body bytes (as framed) of the current request forwarded so far.
    pub(super) body_in: u64,
}

impl<'a> ClientConn<'a> {
    async fn run(&mut self) -> CloseReason {
        let reason = loop {
            let (head, body) = match self.next_item(true).await {
                Ok(Some(Item::Head { head, body })) => (head, body),
                Ok(Some(_)) => break CloseReason::ProtocolError,
                Ok(None) => break CloseReason::Done,
                Err(ReadError::Timeout) => break CloseReason::IdleTimeout,
                Err(ReadError::Io) => break CloseReason::DownstreamError,
                Err(ReadError::Codec(e)) => {
                    self.refuse(e).await;
                    break CloseReason::ProtocolError;
                }
            };
            match self.request(head, body).await {
                Next::KeepAlive => continue,
                Next::Close(reason) => break reason,
            }
        };
        let _ = timeout(CLOSE_TIMEOUT, self.io.shutdown()).await;
        reason
    }

    /// The next request item; `Ok(None)` when the client closed between requests.
    /// `between` waits at most the idle timeout for a new head.
    async fn next_item(&mut self, between: bool) -> Result<Option<Item<RequestHead>>, ReadError> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(item)) => return Ok(Some(item)),
                Ok(None) => {}
                Err(e) => return Err(ReadError::Codec(e)),
            }
            if self.eof {
                return self.decoder.decode_eof(&mut self.buf).map_err(ReadError::Codec);
            }
            let wait =
                if between { self.http.idle_timeout } else { self.http.idle_timeout.max(Duration::from_secs(1)) };
            match timeout(wait, read_into(&mut self.io, &mut self.buf)).await {
                Err(_) => return Err(ReadError::Timeout),
                Ok(Err(_)) => return Err(ReadError::Io),
                Ok(Ok(0)) => self.eof = true,
                Ok(Ok(n)) => self.count_in(n),
            }
        }
    }

    pub(super) fn count_in(&mut self, n: usize) {
        self.bytes_in += n as u64;
        self.runtime.stats.bytes_rx.increment(n as u64);
    }

    pub(super) async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        timeout(self.http.idle_timeout, write_flush(&mut self.io, bytes))
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))?;
        self.bytes_out += bytes.len() as u64;
        self.runtime.stats.bytes_tx.increment(bytes.len() as u64);
        Ok(())
    }

    /// Answers a request the codec refused, then the connection closes.
    pub(super) async fn refuse(&mut self, e: H1Error) {
        let status = e.status();
        tracing::debug!(listener = %self.http.name, client = %self.client, error = %e, "request refused");
        let _ = self.send(&error_response(status, format!("{e}\n").as_bytes())).await;
        let stats = &self.http.stats;
        stats.local_reply(status);
        stats.unrouted.response(status, Duration::ZERO);
        stats.op("other").record(Outcome::Error, None);
        self.log_line(
            &RequestLogFacts {
                method: "-",
                path: "-",
                host: "-",
                status,
                local: Some(LocalReason::BadRequest(status)),
            },
            &Exchange {
                version: "1.1",
                started: Instant::now(),
                route: None,
                cluster: None,
                upstream: None,
                retries: 0,
                bytes_in: 0,
                bytes_out: 0,
            },
        );
    }

    /// Serves one request whose head has been read.
    async fn request(&mut self, head: RequestHead, body: BodyKind) -> Next {
        let http = self.http;
        self.body_in = 0;
        let mut ex = Exchange {
            version: "1.1",
            started: Instant::now(),
            route: None,
            cluster: None,
            upstream: None,
            retries: 0,
            bytes_in: head.raw().len() as u64,
            bytes_out: 0,
        };
        let op = Op {
            protocol: Protocol::Http,
            listener: &http.name,
            op: head.method(),
            target: Some(head.path().as_bytes()),
            user: None,
            database: None,
            statement: None,
            client_id: http.client_id(&head),
            client: self.client.ip(),
        };
        loop {
            match http.rules.evaluate(&op) {
                Verdict::Allow => break,
                Verdict::Deny { .. } => return self.local(&head, body, LocalReason::Denied, &mut ex).await,
                Verdict::Limited { .. } => return self.local(&head, body, LocalReason::RateLimited, &mut ex).await,
                Verdict::Delay { wait, .. } => tokio::time::sleep(wait).await,
            }
        }
        let Some((_, route)) = http.router.route(&head) else {
            return self.local(&head, body, LocalReason::NoRoute, &mut ex).await;
        };
        ex.route = Some(route);
        self.forward(head, body, route, ex).await
    }

    /// Answers locally; keeps the connection when the request body could be read and
    /// discarded (a little of it, promptly), closes it otherwise.
    pub(super) async fn local(
        &mut self,
        head: &RequestHead,
        body: BodyKind,
        reason: LocalReason,
        ex: &mut Exchange<'_>,
    ) -> Next {
        let mut keep = head.keep_alive() && !(head.expects_continue() && body != BodyKind::None);
        if keep {
            keep = self.discard_body(ex).await;
        }
        if head.upgrade().is_some() || head.method_kind() == Method::Connect {
            self.decoder.resume(false);
        }
        let bytes = local::response(reason, head.version(), keep, head.method_kind() == Method::Head);
        let sent = self.send(&bytes).await.is_ok();
        ex.bytes_out += bytes.len() as u64;
        self.finish_local(head, reason, ex);
        match (sent, keep) {
            (true, true) => Next::KeepAlive,
            (true, false) => Next::Close(CloseReason::Done),
            (false, _) => Next::Close(CloseReason::DownstreamError),
        }
    }

    /// Reads the rest of the request and drops it; false if it is too large, slow or bad.
    async fn discard_body(&mut self, ex: &mut Exchange<'_>) -> bool {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let item = match timeout_at(deadline, self.next_item(false)).await {
                Ok(Ok(Some(item))) => item,
                _ => return false,
            };
            ex.bytes_in += item.wire().len() as u64;
            match item {
                Item::End(_) => return true,
                Item::Body(_) if ex.bytes_in > MAX_DISCARD => return false,
                Item::Body(_) => {}
                Item::Head { .. } | Item::Tunnel(_) => return false,
            }
        }
    }

    pub(super) fn finish_local(&self, head: &RequestHead, reason: LocalReason, ex: &Exchange<'_>) {
        super::log::finish_local(self.http, self.client, self.body_in, head, reason, ex);
    }

    pub(super) fn log_line(&self, facts: &RequestLogFacts<'_>, ex: &Exchange<'_>) {
        super::log::write_line(self.http, self.client, self.body_in, facts, ex);
    }
}
