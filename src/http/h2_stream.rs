//! One HTTP/2 stream (one request) proxied to an HTTP/1.1 upstream: the request is
//! converted to an HTTP/1.1 head (`convert`), then goes through the same rules (403/429),
//! routing (404), rewrite, pooled upstream connections, retries, stats and access log as
//! an HTTP/1 request.
//!
//! Bodies stream with flow control both ways, never buffered whole: a DATA frame is
//! written upstream (chunk-framed unless the request had a content-length) and only then
//! released back to the client's window (RFC 9113 §5.2), so an upload moves at the
//! upstream's pace within one window; a response body piece is sent only as the client's
//! window allows (`reserve_capacity` / `poll_capacity`), and the upstream is read again
//! only after that, so a download moves at the client's pace. Trailers cross both ways.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::{HeaderMap, Request};
use sluice_codecs::framing::Decode;
use sluice_codecs::http1::{
    encode_chunk, request_body, BodyKind, H1Limits, Item, Method, RequestHead, ResponseDecoder,
};
use sluice_filters::policy::Verdict;
use sluice_filters::{CloseReason, Op, Outcome, Protocol};
use tokio::time::{sleep, timeout, timeout_at, Instant};

use super::convert;
use super::forward::{Answer, TryError};
use super::io::{read_into, write_flush, Conn, FIRST_READ};
use super::local::LocalReason;
use super::log::{finish_local, write_line, Exchange, RequestLogFacts};
use super::pool::{self, CheckoutError};
use super::retry::{retryable_request, route_retries, TryFailure};
use super::rewrite::{self, RequestContext};
use super::route::{pick_weighted, request_host, total_weight};
use super::HttpListener;
use crate::config::http::RouteConfig;

/// What the streams of one connection share.
pub struct Shared {
    pub http: Arc<HttpListener>,
    pub client: SocketAddr,
    pub https: bool,
    /// Streams the client reset before their response ended (see `h2_server`).
    pub resets: std::cell::Cell<u64>,
}

impl Shared {
    /// The client reset a stream before its response ended.
    pub fn client_reset(&self) {
        self.resets.set(self.resets.get() + 1);
        self.http.stats.h2_resets.increment(1);
    }
}

/// A piece of the request body.
enum Piece {
    Data(Bytes),
    /// The end, with trailers if the client sent any.
    End(Option<HeaderMap>),
    /// The client reset the stream (or the connection failed).
    Reset,
}

/// The next piece of the request body; cancel-safe (used in `select!`).
async fn next_piece(recv: &mut RecvStream) -> Piece {
    match recv.data().await {
        Some(Ok(data)) => Piece::Data(data),
        Some(Err(_)) => Piece::Reset,
        None => match recv.trailers().await {
            Ok(t) => Piece::End(t),
            Err(_) => Piece::Reset,
        },
    }
}

/// Sends `data` as the client's window allows; false if the stream is gone or stalled
/// beyond `idle`.
pub(super) async fn send_data(tx: &mut SendStream<Bytes>, mut data: Bytes, idle: std::time::Duration) -> bool {
    while !data.is_empty() {
        tx.reserve_capacity(data.len());
        match timeout(idle, poll_fn(|cx| tx.poll_capacity(cx))).await {
            Ok(Some(Ok(0))) => continue,
            Ok(Some(Ok(n))) => {
                let chunk = data.split_to(n.min(data.len()));
                if tx.send_data(chunk, false).is_err() {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

pub(super) struct Stream<'a> {
    pub(super) sh: &'a Shared,
    pub(super) http: &'a HttpListener,
    pub(super) respond: SendResponse<Bytes>,
    pub(super) recv: RecvStream,
    /// The request body is completely sent upstream (or there is none).
    pub(super) request_done: bool,
    /// The client sent `te: trailers` (forwarded to HTTP/2 upstreams).
    pub(super) te_trailers: bool,
    /// The request body is chunk-framed upstream.
    chunked: bool,
    /// Body bytes the head's content-length still allows (`None`: chunked). The h2 crate
    /// already refuses DATA beyond a content-length; this keeps the H1 framing exact
    /// regardless, so no byte can be read upstream as the start of another request.
    length_left: Option<u64>,
    /// The upstream stopped taking the request body (the response may still come).
    upload_stopped: bool,
    /// Request body bytes received.
    pub(super) body_in: u64,
    /// Chunk framing of the request body, reused for each DATA frame.
    scratch: BytesMut,
}

/// Serves one stream (see the module docs).
pub async fn serve(shared: std::rc::Rc<Shared>, request: Request<RecvStream>, respond: SendResponse<Bytes>) {
    let (parts, recv) = request.into_parts();
    let http = &*shared.http;
    let has_body = !recv.is_end_stream();
    let mut stream = Stream {
        sh: &shared,
        http,
        respond,
        recv,
        request_done: !has_body,
        te_trailers: parts
            .headers
            .get(http::header::TE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers")),
        chunked: false,
        length_left: None,
        upload_stopped: false,
        body_in: 0,
        scratch: BytesMut::new(),
    };
    let mut ex = Exchange {
        version: "2",
        started: Instant::now(),
        route: None,
        cluster: None,
        upstream: None,
        retries: 0,
        bytes_in: 0,
        bytes_out: 0,
    };
    let limits =
        H1Limits { max_head: http.limits.max_head.max(http.http2.max_header_list_size as usize), ..http.limits };
    let head = match convert::request_head(&parts, has_body, &limits) {
        Ok(head) => head,
        Err(e) => {
            tracing::debug!(listener = %http.name, client = %shared.client, error = %e, "HTTP/2 request refused");
            stream.refuse(e.status(), parts.method.as_str(), parts.uri.path(), &mut ex);
            return;
        }
    };
    ex.bytes_in = head.raw().len() as u64;
    let body = match request_body(&head, &limits) {
        Ok(body) => body,
        Err(e) => {
            let status = e.status();
            stream.refuse(status, parts.method.as_str(), parts.uri.path(), &mut ex);
            return;
        }
    };
    stream.chunked = body == BodyKind::Chunked;
    stream.length_left = match body {
        BodyKind::Length(n) => Some(n),
        BodyKind::Chunked => None,
        _ => Some(0),
    };
    stream.request(head, body, ex).await;
}

impl<'a> Stream<'a> {
    /// A request that could not be converted: the status, stats and a log line.
    fn refuse(&mut self, status: u16, method: &str, path: &str, ex: &mut Exchange<'_>) {
        let stats = &self.http.stats;
        stats.local_reply(status);
        stats.unrouted.response(status, ex.started.elapsed());
        stats.op("other").record(Outcome::Error, None);
        let body = if status == 501 { "not implemented\n" } else { "bad request\n" };
        ex.bytes_out = self.send_local(status, body, false, false) as u64;
        write_line(
            self.http,
            self.sh.client,
            self.body_in,
            &RequestLogFacts { method, path, host: "-", status, local: Some(LocalReason::BadRequest(status)) },
            ex,
        );
    }

    /// Sends a whole local response; returns the body bytes sent.
    fn send_local(&mut self, status: u16, body: &'static str, retry_after: bool, head_only: bool) -> usize {
        let (response, bytes) = convert::local_response(status, body, retry_after);
        let len = bytes.len();
        match self.respond.send_response(response, head_only) {
            Ok(mut tx) if !head_only => {
                // Within the initial window of any sane client (local bodies are tiny);
                // buffered by h2 otherwise.
                let _ = tx.send_data(bytes, true);
                len
            }
            _ => 0,
        }
    }

    async fn request(&mut self, head: RequestHead, body: BodyKind, mut ex: Exchange<'a>) {
        let http = self.http;
        let op = Op {
            protocol: Protocol::Http,
            listener: &http.name,
            op: head.method(),
            target: Some(head.path().as_bytes()),
            user: None,
            database: None,
            statement: None,
            client_id: http.client_id(&head),
            client: self.sh.client.ip(),
        };
        loop {
            match http.rules.evaluate(&op) {
                Verdict::Allow => break,
                Verdict::Deny { .. } => return self.local(&head, LocalReason::Denied, &mut ex).await,
                Verdict::Limited { .. } => return self.local(&head, LocalReason::RateLimited, &mut ex).await,
                Verdict::Delay { wait, .. } => sleep(wait).await,
            }
        }
        let Some((_, route)) = http.router.route(&head) else {
            return self.local(&head, LocalReason::NoRoute, &mut ex).await;
        };
        ex.route = Some(route);
        self.forward(head, body, route, ex).await
    }

    /// Answers locally. A request body still arriving is read and dropped first (up to
    /// 64 KiB, within 1 s, as for HTTP/1), so a client still uploading sees the answer
    /// rather than its stream reset under it; beyond that, h2 refuses the rest with
    /// RST_STREAM once the response has ended (RFC 9113 §8.1).
    pub(super) async fn local(&mut self, head: &RequestHead, reason: LocalReason, ex: &mut Exchange<'_>) {
        let drain = async {
            let mut dropped = 0usize;
            while !self.recv.is_end_stream() && dropped < 64 * 1024 {
                match next_piece(&mut self.recv).await {
                    Piece::Data(data) => {
                        dropped += data.len();
                        let _ = self.recv.flow_control().release_capacity(data.len());
                    }
                    Piece::End(_) | Piece::Reset => break,
                }
            }
        };
        let _ = timeout(std::time::Duration::from_secs(1), drain).await;
        let head_only = head.method_kind() == Method::Head;
        let sent = self.send_local(reason.status(), reason.body(), reason == LocalReason::RateLimited, head_only);
        ex.bytes_out += sent as u64;
        finish_local(self.http, self.sh.client, self.body_in, head, reason, ex);
    }

    async fn forward(&mut self, head: RequestHead, body: BodyKind, route: &'a RouteConfig, mut ex: Exchange<'a>) {
        let http = self.http;
        let _active = http.budget.request();
        let deadline = ex.started + route.timeout;
        let retryable = retryable_request(head.method_kind(), body);
        let cx = RequestContext { client: self.sh.client.ip(), https: self.sh.https };
        let head_bytes = rewrite::request_head(&head, route, &cx);
        let mut stale_retried = false;
        let mut retry_token = None;
        let total = total_weight(route).max(1);
        let first = pick_weighted(route, fastrand::u32(0..total));
        if http.clusters[first].config.http2 {
            ex.cluster = Some(first);
            // Boxed: the HTTP/2-upstream exchange would otherwise grow every stream's task
            // (copied when spawned) by ~770 bytes.
            return Box::pin(self.forward_h2(&head, head_bytes.freeze(), route, first, ex)).await;
        }
        let mut next = Some(first);
        let answer = loop {
            let cluster = next.take().unwrap_or_else(|| pick_weighted(route, fastrand::u32(0..total)));
            ex.cluster = Some(cluster);
            let attempt = timeout_at(deadline, self.try_once(cluster, &head, &head_bytes, stale_retried)).await;
            let failure = match attempt {
                Err(_) => return self.local(&head, LocalReason::Timeout, &mut ex).await,
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
                Ok(Err(TryError::Client(..))) => {
                    self.sh.client_reset();
                    return;
                }
                Ok(Err(TryError::Upstream { nothing: true })) if retryable && !stale_retried => {
                    stale_retried = true;
                    continue;
                }
                Ok(Err(TryError::Upstream { .. })) => return self.local(&head, LocalReason::BadGateway, &mut ex).await,
                Ok(Err(TryError::Connect(e))) => e,
            };
            if retryable && route_retries(&route.retries, TryFailure::Connect, ex.retries) {
                if let Some(token) = self.retry_slot(route, &mut ex) {
                    retry_token = Some(token);
                    continue;
                }
            }
            let (CheckoutError::Connect(_) | CheckoutError::Tls | CheckoutError::Handshake) = failure;
            return self.local(&head, LocalReason::ConnectFailed, &mut ex).await;
        };
        drop(retry_token);
        self.respond(head, route, answer, ex).await
    }

    pub(super) fn retry_slot(
        &self,
        route: &RouteConfig,
        ex: &mut Exchange<'_>,
    ) -> Option<super::retry::RetryToken<'a>> {
        match self.http.budget.try_retry() {
            Some(token) => {
                ex.retries += 1;
                self.http.stats.route(&route.name).retries.increment(1);
                Some(token)
            }
            None => {
                self.http.stats.retries_exhausted.increment(1);
                None
            }
        }
    }

    /// Writes a request body piece upstream and releases its window to the client.
    async fn forward_piece(&mut self, piece: Piece, up: &mut Conn) -> Result<(), TryError> {
        match piece {
            Piece::Data(data) => {
                let len = data.len();
                self.body_in += len as u64;
                if let Some(left) = &mut self.length_left {
                    match left.checked_sub(len as u64) {
                        Some(rest) => *left = rest,
                        None => return Err(TryError::Client(CloseReason::ProtocolError, None)),
                    }
                }
                let written = if self.chunked {
                    self.scratch.clear();
                    encode_chunk(&mut self.scratch, &data);
                    write_flush(up, &self.scratch).await
                } else {
                    write_flush(up, &data).await
                };
                written.map_err(|_| TryError::Upstream { nothing: false })?;
                let _ = self.recv.flow_control().release_capacity(len);
            }
            Piece::End(trailers) => {
                if self.chunked {
                    self.scratch.clear();
                    if convert::request_trailers(&trailers.unwrap_or_default(), &mut self.scratch).is_err() {
                        self.scratch.clear();
                        self.scratch.extend_from_slice(b"0\r\n\r\n");
                    }
                    write_flush(up, &self.scratch).await.map_err(|_| TryError::Upstream { nothing: false })?;
                }
                self.request_done = true;
            }
            Piece::Reset => return Err(TryError::Client(CloseReason::DownstreamError, None)),
        }
        Ok(())
    }

    /// One try: an upstream connection, the head, the body as it comes, until the
    /// response head (interim responses are passed on, RFC 9113 §8.1).
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
        let mut udec = ResponseDecoder::new(H1Limits::default());
        let _ = udec.push_request(head.pending());
        // Most responses fit; a larger body grows it to a full read chunk (`read_into`).
        let mut ubuf = BytesMut::with_capacity(FIRST_READ);
        let reused = up.reused;
        if write_flush(&mut up.io, head_bytes).await.is_err() {
            return Err(TryError::Upstream { nothing: reused });
        }
        let mut received = 0usize;
        loop {
            loop {
                match udec.decode(&mut ubuf) {
                    Ok(Some(Item::Head { head: rh, body })) if !rh.is_interim() => {
                        let request_done = self.request_done;
                        return Ok(Answer { up, udec, ubuf, head: rh, body, request_done });
                    }
                    Ok(Some(Item::Head { head: rh, .. })) if rh.status() == 101 => {
                        return Err(TryError::Upstream { nothing: false })
                    }
                    Ok(Some(Item::Head { head: rh, .. })) => {
                        // 100 Continue, 103 Early Hints: passed on as informational HEADERS.
                        let _ = self.respond.send_informational(convert::response_head(&rh, None));
                    }
                    Ok(Some(Item::End(_))) => continue,
                    Ok(Some(_)) | Err(_) => return Err(TryError::Upstream { nothing: false }),
                    Ok(None) => break,
                }
            }
            let sending = !self.request_done;
            tokio::select! {
                piece = next_piece(&mut self.recv), if sending => self.forward_piece(piece, &mut up.io).await?,
                // The client gave up (RST_STREAM): stop waiting for the upstream.
                _ = poll_fn(|cx| self.respond.poll_reset(cx)) => {
                    return Err(TryError::Client(CloseReason::DownstreamError, None));
                }
                read = read_into(&mut up.io, &mut ubuf) => match read {
                    Ok(0) | Err(_) => {
                        if let Ok(Some(Item::Head { head: rh, body })) = udec.decode_eof(&mut ubuf) {
                            if !rh.is_interim() {
                                let request_done = self.request_done;
                                return Ok(Answer { up, udec, ubuf, head: rh, body, request_done });
                            }
                        }
                        return Err(TryError::Upstream { nothing: received == 0 && reused });
                    }
                    Ok(n) => received += n,
                },
            }
        }
    }

    /// Streams the response to the client; pools the upstream connection if it can be.
    async fn respond(&mut self, head: RequestHead, route: &RouteConfig, answer: Answer, mut ex: Exchange<'_>) {
        let Answer { mut up, mut udec, mut ubuf, head: rh, body, .. } = answer;
        let status = rh.status();
        let idle = self.http.idle_timeout;
        let end_now = body == BodyKind::None;
        let mut failed: Option<CloseReason> = None;
        let mut ended = end_now;
        let mut tx = match self.respond.send_response(convert::response_head(&rh, Some(route)), end_now) {
            Ok(tx) => Some(tx),
            Err(_) => {
                failed = Some(CloseReason::DownstreamError);
                None
            }
        };
        // A request body still arriving goes upstream while the response comes (a server
        // may answer early, RFC 9112 §9.3); once the response has ended, the rest of it is
        // refused with RST_STREAM NO_ERROR (RFC 9113 §8.1) and the upstream connection,
        // its request unfinished, is not reused.
        while let (Some(out), None, false) = (tx.as_mut(), failed, ended) {
            let sending = !self.request_done && !self.upload_stopped;
            if !ended {
                match udec.decode(&mut ubuf) {
                    Ok(Some(Item::Body(p))) => {
                        let data = p.data();
                        ex.bytes_out += data.len() as u64;
                        if !send_data(out, data, idle).await {
                            failed = Some(CloseReason::DownstreamError);
                        }
                        continue;
                    }
                    Ok(Some(Item::End(e))) => {
                        let trailers = e.trailers().map(convert::response_trailers).filter(|t| !t.is_empty());
                        let sent = match trailers {
                            Some(t) => out.send_trailers(t),
                            None => out.send_data(Bytes::new(), true),
                        };
                        if sent.is_err() {
                            failed = Some(CloseReason::DownstreamError);
                        }
                        ended = true;
                        continue;
                    }
                    Ok(Some(_)) | Err(_) => {
                        failed = Some(CloseReason::UpstreamError);
                        continue;
                    }
                    Ok(None) => {}
                }
            }
            tokio::select! {
                piece = next_piece(&mut self.recv), if sending => {
                    match self.forward_piece(piece, &mut up.io).await {
                        Ok(()) => {}
                        Err(TryError::Client(reason, _)) => failed = Some(reason),
                        // An upstream that stopped reading the body may still answer in full.
                        Err(_) => self.upload_stopped = true,
                    }
                }
                read = read_into(&mut up.io, &mut ubuf), if !ended => match read {
                    Ok(0) | Err(_) => match udec.decode_eof(&mut ubuf) {
                        Ok(Some(Item::End(_))) => {
                            if out.send_data(Bytes::new(), true).is_err() {
                                failed = Some(CloseReason::DownstreamError);
                            }
                            ended = true;
                        }
                        Ok(Some(Item::Body(p))) => {
                            ex.bytes_out += p.data().len() as u64;
                            if !send_data(out, p.data(), idle).await {
                                failed = Some(CloseReason::DownstreamError);
                            }
                        }
                        _ => failed = Some(CloseReason::UpstreamError),
                    },
                    Ok(_) => {}
                },
                _ = poll_fn(|cx| out.poll_reset(cx)), if !ended => failed = Some(CloseReason::DownstreamError),
                _ = sleep(idle) => failed = Some(CloseReason::IdleTimeout),
            }
        }
        match failed {
            Some(CloseReason::DownstreamError) => self.sh.client_reset(),
            Some(_) => {
                if let Some(out) = tx.as_mut() {
                    out.send_reset(Reason::INTERNAL_ERROR);
                }
            }
            None => {}
        }
        let reusable = ended
            && failed.is_none()
            && self.request_done
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
        write_line(
            self.http,
            self.sh.client,
            self.body_in,
            &RequestLogFacts { method: head.method(), path: head.path(), host: &host, status, local: None },
            &ex,
        );
    }
}
