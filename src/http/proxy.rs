//! The connection driver of the `http` listener: one task per client connection on the
//! worker that accepted it, serving its requests one at a time, in order (pipelined
//! requests wait in the read buffer, unparsed: RFC 9112 §9.3.2 only asks that responses
//! keep the requests' order).
//!
//! Per request: rules (deny → 403, rate limit → 429 or a delay), route (none → 404), a
//! cluster by weight, an upstream connection from the worker's pool, the rewritten head,
//! then the body streamed up while the response head is awaited (interim 1xx responses
//! are passed on, RFC 9110 §15.2), then the response streamed down. Body bytes are
//! forwarded as received (their framing is unchanged); each direction holds at most one
//! read (64 KiB) and reads again only after that was written (backpressure), so a body
//! of any size moves through a bounded buffer.
//!
//! After a 101 (RFC 9110 §15.2.2) or a 2xx to CONNECT (§9.3.6) the connection is a tunnel:
//! bytes both ways, opaque, until either side closes.
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
use sluice_codecs::http1::{
    error_response, BodyKind, H1Error, Item, Method, RequestDecoder, RequestHead, ResponseDecoder, ResponseHead,
    Version,
};
use sluice_filters::filter::ConnectionEvent;
use sluice_filters::policy::Verdict;
use sluice_filters::{CloseReason, FilterStatus, Op, Outcome, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};

use super::io::Conn;
use super::local::{self, LocalReason};
use super::log::RequestLine;
use super::pool::{self, CheckoutError, Upstream};
use super::retry::{retryable_request, route_retries, TryFailure};
use super::rewrite::{self, ClientConnection, RequestContext};
use super::route::{pick_weighted, request_host, total_weight};
use super::HttpListener;
use crate::access_log::now_rfc3339;
use crate::config::http::RouteConfig;
use crate::listener::{ConnectionRecord, ListenerRuntime};
use crate::telemetry::Rejection;

/// How much one read takes at most: also the most a direction buffers beyond a head.
const READ_CHUNK: usize = 64 * 1024;
/// The most request body sluice reads and discards to keep a connection after a local reply.
const MAX_DISCARD: u64 = 64 * 1024;
/// How long closing a client connection may take (TLS close_notify, FIN).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves one client connection (see the module docs).
pub async fn serve(stream: TcpStream, client: SocketAddr, runtime: Arc<ListenerRuntime>) {
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
    let (io, https) = match &runtime.config.tls {
        None => (Conn::Plain(stream), false),
        Some(tls) => {
            let accept = tokio_rustls::TlsAcceptor::from(tls.server.clone()).accept(stream);
            match timeout(http.idle_timeout.min(Duration::from_secs(10)), accept).await {
                Ok(Ok(s)) => {
                    let (_, session) = s.get_ref();
                    let version = match session.protocol_version() {
                        Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
                        Some(rustls::ProtocolVersion::TLSv1_2) => "1.2",
                        _ => "other",
                    };
                    let alpn =
                        session.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
                    runtime.stats.tls.handshake("downstream", version, alpn);
                    (Conn::ServerTls(Box::new(s)), true)
                }
                Ok(Err(e)) => {
                    tracing::debug!(listener = %runtime.name, error = %e, "TLS handshake failed");
                    runtime.stats.tls.failure("downstream", "handshake");
                    record.summary.reason = CloseReason::TlsError;
                    return;
                }
                Err(_) => {
                    runtime.stats.tls.failure("downstream", "timeout");
                    record.summary.reason = CloseReason::TlsError;
                    return;
                }
            }
        }
    };
    let mut conn = ClientConn {
        io,
        buf: BytesMut::new(),
        decoder: RequestDecoder::new(http.limits),
        eof: false,
        client,
        https,
        http: &http,
        runtime: &runtime,
        bytes_in: 0,
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

/// What ended a wait for client bytes.
enum ReadError {
    Timeout,
    Io,
    Codec(H1Error),
}

/// What follows a request on the client connection.
enum Next {
    KeepAlive,
    Close(CloseReason),
}

/// How one try of a request failed before a response head arrived.
enum TryError {
    Connect(CheckoutError),
    /// The upstream failed or sent something unusable; `nothing` when it sent no byte
    /// (a pooled connection the server had closed).
    Upstream {
        nothing: bool,
    },
    /// The client went away or sent a bad body: close without an answer, or with one.
    Client(CloseReason, Option<H1Error>),
}

/// A response head that arrived, with the connection it came on.
struct Answer {
    up: Upstream,
    udec: ResponseDecoder,
    ubuf: BytesMut,
    head: ResponseHead,
    body: BodyKind,
    /// The request (with its body) was completely sent.
    request_done: bool,
}

/// The per-request facts the access log and stats need.
struct Exchange<'r> {
    started: Instant,
    route: Option<&'r RouteConfig>,
    cluster: Option<usize>,
    upstream: Option<SocketAddr>,
    retries: u32,
    bytes_in: u64,
    bytes_out: u64,
}

struct ClientConn<'a> {
    io: Conn,
    buf: BytesMut,
    decoder: RequestDecoder,
    /// The client sent FIN.
    eof: bool,
    client: SocketAddr,
    https: bool,
    http: &'a HttpListener,
    runtime: &'a ListenerRuntime,
    bytes_in: u64,
    bytes_out: u64,
    /// The last upstream used (the connection record's `upstream`).
    upstream: Option<SocketAddr>,
    /// Request body bytes (as framed) of the current request forwarded so far.
    body_in: u64,
}

/// Reads once into `buf`, keeping at most one read chunk of room.
async fn read_into(io: &mut Conn, buf: &mut BytesMut) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(READ_CHUNK);
    }
    io.read_buf(buf).await
}

async fn write_flush(io: &mut Conn, bytes: &[u8]) -> std::io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
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

    fn count_in(&mut self, n: usize) {
        self.bytes_in += n as u64;
        self.runtime.stats.bytes_rx.increment(n as u64);
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        timeout(self.http.idle_timeout, write_flush(&mut self.io, bytes))
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))?;
        self.bytes_out += bytes.len() as u64;
        self.runtime.stats.bytes_tx.increment(bytes.len() as u64);
        Ok(())
    }

    /// Answers a request the codec refused, then the connection closes.
    async fn refuse(&mut self, e: H1Error) {
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
            client_id: None,
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
    async fn local(&mut self, head: &RequestHead, body: BodyKind, reason: LocalReason, ex: &mut Exchange<'_>) -> Next {
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

    fn finish_local(&self, head: &RequestHead, reason: LocalReason, ex: &Exchange<'_>) {
        let status = reason.status();
        let stats = &self.http.stats;
        stats.local_reply(status);
        let outcome = match reason {
            LocalReason::Denied => Outcome::Denied,
            LocalReason::RateLimited => Outcome::Limited,
            _ => Outcome::Error,
        };
        let ran = matches!(reason, LocalReason::ConnectFailed | LocalReason::BadGateway | LocalReason::Timeout);
        stats.op(head.method()).record(outcome, ran.then(|| ex.started.elapsed()));
        let route_name = ex.route.map(|r| r.name.as_str());
        stats.route(route_name.unwrap_or(super::stats::NO_ROUTE)).response(status, ex.started.elapsed());
        let host = request_host(head);
        self.log_line(
            &RequestLogFacts { method: head.method(), path: head.path(), host: &host, status, local: Some(reason) },
            ex,
        );
    }

    fn log_line(&self, facts: &RequestLogFacts<'_>, ex: &Exchange<'_>) {
        let Some(log) = &self.http.access_log else { return };
        log.write_json(&RequestLine {
            time: now_rfc3339(),
            listener: &self.http.name,
            protocol: "http",
            client: self.client,
            method: facts.method,
            path: facts.path,
            host: facts.host,
            status: facts.status,
            bytes_received: ex.bytes_in + self.body_in,
            bytes_sent: ex.bytes_out,
            duration_ms: (ex.started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            route: ex.route.map_or(super::stats::NO_ROUTE, |r| r.name.as_str()),
            cluster: ex.cluster.map(|i| self.http.clusters[i].config.name.as_str()),
            upstream: ex.upstream,
            retries: ex.retries,
            local_reply: facts.local.map(LocalReason::as_str),
        });
    }

    /// Sends the request to the route's cluster (retrying as the route allows) and the
    /// response back.
    async fn forward(
        &mut self,
        head: RequestHead,
        body: BodyKind,
        route: &'a RouteConfig,
        mut ex: Exchange<'a>,
    ) -> Next {
        let http = self.http;
        let _active = http.budget.request();
        let deadline = ex.started + route.timeout;
        let retryable = retryable_request(head.method_kind(), body);
        let cx = RequestContext { client: self.client.ip(), https: self.https };
        let head_bytes = rewrite::request_head(&head, route, &cx);
        let mut stale_retried = false;
        let mut retry_token = None;
        let total = total_weight(route).max(1);
        let answer = loop {
            let cluster = pick_weighted(route, fastrand::u32(0..total));
            ex.cluster = Some(cluster);
            let attempt = timeout_at(deadline, self.try_once(cluster, &head, &head_bytes, stale_retried)).await;
            let failure = match attempt {
                Err(_) => {
                    // The route timeout: the request may be half sent; never retried.
                    let body_left = !self.decoder.is_idle() && body != BodyKind::None;
                    return self.upstream_failed(&head, LocalReason::Timeout, body_left, &mut ex).await;
                }
                Ok(Ok(answer)) => {
                    ex.upstream = Some(answer.up.lease.address());
                    let status = answer.head.status();
                    if retryable && route_retries(&route.retries, TryFailure::Status(status), ex.retries) {
                        if let Some(token) = self.retry_slot(route, &mut ex) {
                            retry_token = Some(token);
                            continue;
                        }
                    }
                    break answer;
                }
                Ok(Err(TryError::Client(reason, error))) => {
                    if let Some(e) = error {
                        self.refuse(e).await;
                    }
                    return Next::Close(reason);
                }
                Ok(Err(TryError::Upstream { nothing: true })) if retryable && !stale_retried => {
                    // A pooled connection the server closed as the request went out.
                    stale_retried = true;
                    continue;
                }
                Ok(Err(TryError::Upstream { .. })) => {
                    let body_left = !self.decoder.is_idle() && body != BodyKind::None;
                    return self.upstream_failed(&head, LocalReason::BadGateway, body_left, &mut ex).await;
                }
                Ok(Err(TryError::Connect(e))) => e,
            };
            if retryable && route_retries(&route.retries, TryFailure::Connect, ex.retries) {
                if let Some(token) = self.retry_slot(route, &mut ex) {
                    retry_token = Some(token);
                    continue;
                }
            }
            let reason = match failure {
                CheckoutError::Connect(_) | CheckoutError::Tls => LocalReason::ConnectFailed,
            };
            let body_left = body != BodyKind::None;
            return self.upstream_failed(&head, reason, body_left, &mut ex).await;
        };
        drop(retry_token);
        self.upstream = ex.upstream;
        self.respond(head, route, answer, ex).await
    }

    fn retry_slot(&self, route: &RouteConfig, ex: &mut Exchange<'_>) -> Option<super::retry::RetryToken<'a>> {
        let stats = self.http.stats.route(&route.name);
        match self.http.budget.try_retry() {
            Some(token) => {
                ex.retries += 1;
                stats.retries.increment(1);
                Some(token)
            }
            None => {
                self.http.stats.retries_exhausted.increment(1);
                None
            }
        }
    }

    /// A local 502/503/504 after the upstream failed; the connection closes when part of
    /// the request body may still be unread.
    async fn upstream_failed(
        &mut self,
        head: &RequestHead,
        reason: LocalReason,
        body_left: bool,
        ex: &mut Exchange<'_>,
    ) -> Next {
        if body_left || !self.decoder.is_idle() {
            let bytes = local::response(reason, head.version(), false, head.method_kind() == Method::Head);
            let _ = self.send(&bytes).await;
            ex.bytes_out += bytes.len() as u64;
            self.finish_local(head, reason, ex);
            return Next::Close(CloseReason::UpstreamError);
        }
        self.local(head, BodyKind::None, reason, ex).await
    }

    /// One try: an upstream connection, the head, the body, until the response head.
    async fn try_once(
        &mut self,
        cluster: usize,
        head: &RequestHead,
        head_bytes: &[u8],
        force_new: bool,
    ) -> Result<Answer, TryError> {
        let http = self.http;
        let c = &http.clusters[cluster];
        let stats = &http.pool_stats[cluster];
        let mut up = if force_new {
            pool::fresh(c, c.pick(), stats).await.map_err(TryError::Connect)?
        } else {
            pool::checkout(c, stats).await.map_err(TryError::Connect)?
        };
        let mut udec = ResponseDecoder::new(sluice_codecs::http1::H1Limits::default());
        let _ = udec.push_request(head.pending());
        let mut ubuf = BytesMut::new();
        let reused = up.reused;
        if write_flush(&mut up.io, head_bytes).await.is_err() {
            return Err(TryError::Upstream { nothing: reused });
        }
        let mut received = 0usize;
        let mut request_done = false;
        let client_version = head.version();
        loop {
            // The request body, as far as it has arrived.
            while !request_done {
                match self.decoder.decode(&mut self.buf) {
                    Ok(Some(Item::Body(p))) => {
                        self.body_in += p.wire().len() as u64;
                        if write_flush(&mut up.io, p.wire()).await.is_err() {
                            return Err(TryError::Upstream { nothing: false });
                        }
                    }
                    Ok(Some(Item::End(e))) => {
                        self.body_in += e.wire().len() as u64;
                        if !e.wire().is_empty() && write_flush(&mut up.io, e.wire()).await.is_err() {
                            return Err(TryError::Upstream { nothing: false });
                        }
                        request_done = true;
                    }
                    Ok(Some(_)) => return Err(TryError::Client(CloseReason::ProtocolError, None)),
                    Ok(None) => break,
                    Err(e) => return Err(TryError::Client(CloseReason::ProtocolError, Some(e))),
                }
            }
            // The response, as far as it has arrived.
            loop {
                match udec.decode(&mut ubuf) {
                    Ok(Some(Item::Head { head: rh, body })) => {
                        if rh.is_interim() && rh.status() != 101 {
                            // 100 Continue, 103 Early Hints: passed on to HTTP/1.1 clients.
                            if client_version == Version::Http11 && self.send(rh.raw()).await.is_err() {
                                return Err(TryError::Client(CloseReason::DownstreamError, None));
                            }
                            continue;
                        }
                        return Ok(Answer { up, udec, ubuf, head: rh, body, request_done });
                    }
                    // The end of an interim response.
                    Ok(Some(Item::End(_))) => continue,
                    Ok(Some(_)) | Err(_) => return Err(TryError::Upstream { nothing: false }),
                    Ok(None) => break,
                }
            }
            let client_open = !request_done && !self.eof;
            tokio::select! {
                read = read_into(&mut self.io, &mut self.buf), if client_open => match read {
                    Ok(0) => self.eof = true,
                    Ok(n) => self.count_in(n),
                    Err(_) => return Err(TryError::Client(CloseReason::DownstreamError, None)),
                },
                read = read_into(&mut up.io, &mut ubuf) => match read {
                    Ok(0) | Err(_) => {
                        if let Ok(Some(Item::Head { head: rh, body })) = udec.decode_eof(&mut ubuf) {
                            if !rh.is_interim() {
                                return Ok(Answer { up, udec, ubuf, head: rh, body, request_done });
                            }
                        }
                        return Err(TryError::Upstream { nothing: received == 0 && reused });
                    }
                    Ok(n) => received += n,
                },
            }
            if self.eof && !request_done {
                // The client left (or ended) in the middle of its body.
                match self.decoder.decode_eof(&mut self.buf) {
                    Ok(Some(Item::End(e))) => {
                        let _ = write_flush(&mut up.io, e.wire()).await;
                        request_done = true;
                    }
                    Ok(Some(Item::Body(p))) => {
                        let _ = write_flush(&mut up.io, p.wire()).await;
                    }
                    _ => return Err(TryError::Client(CloseReason::DownstreamError, None)),
                }
            }
        }
    }

    /// Streams the response to the client; pools the upstream connection if it can be.
    async fn respond(&mut self, head: RequestHead, route: &RouteConfig, answer: Answer, mut ex: Exchange<'_>) -> Next {
        let Answer { mut up, mut udec, mut ubuf, head: rh, body, mut request_done } = answer;
        let status = rh.status();
        let tunnel = body == BodyKind::Tunnel;
        // A request body still arriving is forwarded alongside the response (a server may
        // answer early, RFC 9112 §9.3); the connection is kept only if it completes.
        let client_keep = head.keep_alive() && !self.eof && body != BodyKind::CloseDelimited;
        let mode = if tunnel {
            ClientConnection::Upgrade
        } else if client_keep {
            ClientConnection::KeepAlive
        } else {
            ClientConnection::Close
        };
        if head.upgrade().is_some() || head.method_kind() == Method::Connect {
            self.decoder.resume(tunnel);
        }
        let out_head = rewrite::response_head(&rh, Some(route), head.version(), mode);
        let mut failed = self.send(&out_head).await.err().map(|_| CloseReason::DownstreamError);
        ex.bytes_out += out_head.len() as u64;
        let before = self.bytes_out;
        if tunnel && failed.is_none() {
            failed = Some(self.tunnel(&mut up, &mut ubuf).await);
        }
        let mut ended = false;
        // Still forwarding the request body; false once done or abandoned.
        let mut sending = !request_done && !tunnel;
        while failed.is_none() && (sending || !ended) {
            let mut progress = false;
            while failed.is_none() && !ended {
                match udec.decode(&mut ubuf) {
                    Ok(Some(Item::Body(p))) => {
                        if self.send(p.wire()).await.is_err() {
                            failed = Some(CloseReason::DownstreamError);
                        }
                    }
                    Ok(Some(Item::End(e))) => {
                        if !e.wire().is_empty() && self.send(e.wire()).await.is_err() {
                            failed = Some(CloseReason::DownstreamError);
                        }
                        ended = true;
                    }
                    Ok(Some(_)) | Err(_) => failed = Some(CloseReason::UpstreamError),
                    Ok(None) => break,
                }
                progress = true;
            }
            while sending && failed.is_none() {
                match self.decoder.decode(&mut self.buf) {
                    Ok(Some(Item::Body(p))) => {
                        self.body_in += p.wire().len() as u64;
                        sending = write_flush(&mut up.io, p.wire()).await.is_ok();
                    }
                    Ok(Some(Item::End(e))) => {
                        self.body_in += e.wire().len() as u64;
                        request_done = write_flush(&mut up.io, e.wire()).await.is_ok();
                        sending = false;
                    }
                    Ok(None) => break,
                    Ok(Some(_)) | Err(_) => sending = false,
                }
                progress = true;
            }
            if failed.is_some() || (ended && !sending) || progress {
                continue;
            }
            let client_open = sending && !self.eof;
            let idle = tokio::time::sleep(self.http.idle_timeout);
            tokio::select! {
                read = read_into(&mut up.io, &mut ubuf), if !ended => match read {
                    Ok(0) | Err(_) => match udec.decode_eof(&mut ubuf) {
                        Ok(Some(Item::End(_))) => ended = true,
                        Ok(Some(Item::Body(p))) => {
                            if self.send(p.wire()).await.is_err() {
                                failed = Some(CloseReason::DownstreamError);
                            }
                        }
                        _ => failed = Some(CloseReason::UpstreamError),
                    },
                    Ok(_) => {}
                },
                read = read_into(&mut self.io, &mut self.buf), if client_open => match read {
                    Ok(0) => self.eof = true,
                    Ok(n) => self.count_in(n),
                    Err(_) => failed = Some(CloseReason::DownstreamError),
                },
                _ = idle => failed = Some(CloseReason::IdleTimeout),
            }
            if sending && self.eof {
                // The client ended in the middle of its body.
                match self.decoder.decode_eof(&mut self.buf) {
                    Ok(Some(Item::End(e))) => {
                        request_done = write_flush(&mut up.io, e.wire()).await.is_ok();
                        sending = false;
                    }
                    Ok(Some(Item::Body(p))) => sending = write_flush(&mut up.io, p.wire()).await.is_ok(),
                    _ => sending = false,
                }
            }
        }
        ex.bytes_out += self.bytes_out - before;
        let reusable = ended
            && failed.is_none()
            && request_done
            && rh.keep_alive()
            && body != BodyKind::CloseDelimited
            && ubuf.is_empty()
            && udec.is_idle();
        if reusable {
            pool::checkin(up, self.http.pool);
        }
        let stats = &self.http.stats;
        let elapsed = ex.started.elapsed();
        stats.op(head.method()).record(super::stats::outcome(status), Some(elapsed));
        stats.route(&route.name).response(status, elapsed);
        let host = request_host(&head);
        self.log_line(
            &RequestLogFacts { method: head.method(), path: head.path(), host: &host, status, local: None },
            &ex,
        );
        match failed {
            Some(reason) => Next::Close(reason),
            None if tunnel => Next::Close(CloseReason::Done),
            None if mode == ClientConnection::KeepAlive && request_done => Next::KeepAlive,
            None => Next::Close(CloseReason::Done),
        }
    }

    /// After a switch of protocols: bytes both ways until either side is done.
    async fn tunnel(&mut self, up: &mut Upstream, ubuf: &mut BytesMut) -> CloseReason {
        // What either side sent before the switch took effect.
        if !ubuf.is_empty() {
            let early = ubuf.split();
            if self.send(&early).await.is_err() {
                return CloseReason::DownstreamError;
            }
        }
        while let Ok(Some(Item::Tunnel(bytes))) = self.decoder.decode(&mut self.buf) {
            if write_flush(&mut up.io, &bytes).await.is_err() {
                return CloseReason::UpstreamError;
            }
        }
        self.buf = BytesMut::new();
        match tokio::io::copy_bidirectional(&mut self.io, &mut up.io).await {
            Ok((to_up, to_down)) => {
                self.bytes_in += to_up;
                self.bytes_out += to_down;
                self.runtime.stats.bytes_rx.increment(to_up);
                self.runtime.stats.bytes_tx.increment(to_down);
                CloseReason::Done
            }
            Err(_) => CloseReason::UpstreamError,
        }
    }
}

/// The request fields of an access-log line.
struct RequestLogFacts<'r> {
    method: &'r str,
    path: &'r str,
    host: &'r str,
    status: u16,
    local: Option<LocalReason>,
}
