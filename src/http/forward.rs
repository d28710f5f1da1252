//! Forwarding one request upstream: a cluster picked by weight, a connection from the
//! worker's pool, the rewritten head, then the request body streamed up while the response
//! head is awaited (interim 1xx responses are passed on, RFC 9110 §15.2). Failed tries
//! are retried as the route allows (idempotent requests without a body, within the retry
//! budget); a pooled connection the server had closed is retried once on a new one.

use bytes::BytesMut;
use sluice_codecs::framing::Decode;
use sluice_codecs::http1::{BodyKind, H1Error, Item, Method, RequestHead, ResponseDecoder, ResponseHead, Version};
use sluice_filters::CloseReason;
use tokio::time::timeout_at;

use super::io::{read_into, write_flush, FIRST_READ};
use super::local::{self, LocalReason};
use super::log::Exchange;
use super::pool::{self, CheckoutError, Upstream};
use super::proxy::{ClientConn, Next};
use super::retry::{retryable_request, route_retries, RetryToken, TryFailure};
use super::rewrite::{self, RequestContext};
use super::route::{pick_weighted, total_weight};
use crate::config::http::RouteConfig;

/// How one try of a request failed before a response head arrived.
pub(super) enum TryError {
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
pub(super) struct Answer {
    pub(super) up: Upstream,
    pub(super) udec: ResponseDecoder,
    pub(super) ubuf: BytesMut,
    pub(super) head: ResponseHead,
    pub(super) body: BodyKind,
    /// The request (with its body) was completely sent.
    pub(super) request_done: bool,
}

impl<'a> ClientConn<'a> {
    /// Sends the request to the route's cluster (retrying as the route allows) and the
    /// response back.
    pub(super) async fn forward(
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
        let first = pick_weighted(route, fastrand::u32(0..total));
        if http.clusters[first].config.http2 {
            ex.cluster = Some(first);
            return self.forward_h2(head, body, route, first, head_bytes.freeze(), ex).await;
        }
        let mut next = Some(first);
        let answer = loop {
            let cluster = next.take().unwrap_or_else(|| pick_weighted(route, fastrand::u32(0..total)));
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
                CheckoutError::Connect(_) | CheckoutError::Tls | CheckoutError::Handshake => LocalReason::ConnectFailed,
            };
            let body_left = body != BodyKind::None;
            return self.upstream_failed(&head, reason, body_left, &mut ex).await;
        };
        drop(retry_token);
        self.upstream = ex.upstream;
        self.respond(head, route, answer, ex).await
    }

    pub(super) fn retry_slot(&self, route: &RouteConfig, ex: &mut Exchange<'_>) -> Option<RetryToken<'a>> {
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
    pub(super) async fn upstream_failed(
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
    pub(super) async fn try_once(
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
        // Most responses fit; a larger body grows it to a full read chunk (`read_into`).
        let mut ubuf = BytesMut::with_capacity(FIRST_READ);
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
}
