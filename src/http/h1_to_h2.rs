//! An HTTP/1.1 request proxied to an HTTP/2 cluster (`http2: true`), H1 → H2 both ways:
//! the routed, rewritten head converted to an HTTP/2 request (`convert::request_to_h2`),
//! the body's payload sent as DATA (its H1 framing removed) and any chunked trailers as a
//! trailing HEADERS frame; the response head written as HTTP/1.1 with its own framing
//! (the upstream's content-length, else chunked so trailers can follow, else — for an
//! HTTP/1.0 client — delimited by closing the connection), the body streamed as it comes.
//! Upgrades and CONNECT are not carried over HTTP/2 (502).
//!
//! Flow control: a response DATA frame is released back to the upstream's window only
//! after it was written to the client, and request body pieces are sent as the upstream's
//! window allows, so neither body is buffered whole.

use bytes::{Bytes, BytesMut};
use h2::RecvStream;
use http::HeaderMap;
use sluice_codecs::framing::Decode;
use sluice_codecs::http1::{
    encode_chunk, encode_last_chunk, encode_response_head, reason_phrase, BodyKind, H1Limits, Item, Method,
    RequestHead, Version,
};
use sluice_filters::CloseReason;
use tokio::time::{sleep, timeout_at};

use super::convert;
use super::h2_client;
use super::h2_stream::send_data;
use super::io::read_into;
use super::local::LocalReason;
use super::log::{Exchange, RequestLogFacts};
use super::proxy::{ClientConn, Next};
use super::retry::{retryable_request, route_retries, TryFailure};
use super::route::request_host;
use crate::config::http::RouteConfig;

/// A piece of the H1 request body, its framing removed.
enum Piece {
    Data(Bytes),
    End(Option<HeaderMap>),
    Failed(CloseReason),
}

fn trailer_map(end: &sluice_codecs::http1::BodyEnd) -> Option<HeaderMap> {
    let t = end.trailers()?;
    let mut map = HeaderMap::new();
    for (name, value) in t.headers().iter() {
        if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(name), http::HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    Some(convert::relay_trailers(map)).filter(|m| !m.is_empty())
}

impl<'a> ClientConn<'a> {
    /// The next piece of the request body; cancel-safe (reads into the buffer).
    async fn next_piece(&mut self) -> Piece {
        loop {
            let item =
                if self.eof { self.decoder.decode_eof(&mut self.buf) } else { self.decoder.decode(&mut self.buf) };
            match item {
                Ok(Some(Item::Body(p))) => {
                    self.body_in += p.wire().len() as u64;
                    return Piece::Data(p.data());
                }
                Ok(Some(Item::End(e))) => {
                    self.body_in += e.wire().len() as u64;
                    return Piece::End(trailer_map(&e));
                }
                Ok(Some(_)) | Err(_) => return Piece::Failed(CloseReason::ProtocolError),
                Ok(None) if self.eof => return Piece::Failed(CloseReason::DownstreamError),
                Ok(None) => {}
            }
            match read_into(&mut self.io, &mut self.buf).await {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.bytes_in += n as u64;
                    self.runtime.stats.bytes_rx.increment(n as u64);
                }
                Err(_) => return Piece::Failed(CloseReason::DownstreamError),
            }
        }
    }

    /// Sends the request to HTTP/2 cluster `cluster` and the response back.
    pub(super) async fn forward_h2(
        &mut self,
        head: RequestHead,
        body: BodyKind,
        route: &'a RouteConfig,
        cluster: usize,
        head_bytes: Bytes,
        mut ex: Exchange<'a>,
    ) -> Next {
        let http = self.http;
        let has_body = !matches!(body, BodyKind::None | BodyKind::Length(0));
        if head.upgrade().is_some() || head.method_kind() == Method::Connect || body == BodyKind::Tunnel {
            return self.upstream_failed(&head, LocalReason::BadGateway, has_body, &mut ex).await;
        }
        let limits = H1Limits { max_head: usize::MAX / 2, ..H1Limits::default() };
        let request =
            RequestHead::parse(head_bytes, &limits).ok().and_then(|up| convert::request_to_h2(&up, "http").ok());
        let Some(mut request) = request else {
            return self.upstream_failed(&head, LocalReason::BadGateway, has_body, &mut ex).await;
        };
        if head.headers().has_token("te", "trailers") {
            request.headers_mut().insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        }
        // sluice takes the body at once (flow control paces it), so it answers the
        // expectation itself (RFC 9110 §10.1.1) instead of waiting for the upstream's 100.
        let continue_now = has_body && head.expects_continue();
        request.headers_mut().remove(http::header::EXPECT);
        let deadline = ex.started + route.timeout;
        let idle = http.idle_timeout;
        // Each try already fails over across the endpoints; the route's retries add tries.
        let retryable = retryable_request(head.method_kind(), body);
        let mut retry_token = None;
        let (mut sender, addr, _in_flight) = loop {
            let ready = timeout_at(
                deadline,
                h2_client::ready(&http.clusters[cluster], &http.pool_stats[cluster], http.pool.idle_timeout),
            )
            .await;
            match ready {
                Err(_) => return self.upstream_failed(&head, LocalReason::Timeout, has_body, &mut ex).await,
                Ok(Ok(ready)) => break ready,
                Ok(Err(_)) if retryable && route_retries(&route.retries, TryFailure::Connect, ex.retries) => match self
                    .retry_slot(route, &mut ex)
                {
                    Some(token) => retry_token = Some(token),
                    None => return self.upstream_failed(&head, LocalReason::ConnectFailed, has_body, &mut ex).await,
                },
                Ok(Err(_)) => return self.upstream_failed(&head, LocalReason::ConnectFailed, has_body, &mut ex).await,
            }
        };
        drop(retry_token);
        ex.upstream = Some(addr);
        self.upstream = Some(addr);
        let Ok((response, mut up_tx)) = sender.send_request(request, !has_body) else {
            return self.upstream_failed(&head, LocalReason::BadGateway, has_body, &mut ex).await;
        };
        if continue_now && self.send(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
            up_tx.send_reset(h2::Reason::CANCEL);
            return Next::Close(CloseReason::DownstreamError);
        }
        // The request body goes up while the response head is awaited.
        let mut request_done = !has_body;
        tokio::pin!(response);
        let response = loop {
            tokio::select! {
                r = timeout_at(deadline, &mut response) => break r,
                piece = self.next_piece(), if !request_done => match piece {
                    Piece::Data(d) => {
                        if !send_data(&mut up_tx, d, idle).await {
                            request_done = true;
                        }
                    }
                    Piece::End(t) => {
                        let _ = match t {
                            Some(t) => up_tx.send_trailers(t),
                            None => up_tx.send_data(Bytes::new(), true),
                        };
                        request_done = true;
                    }
                    Piece::Failed(reason) => {
                        up_tx.send_reset(h2::Reason::CANCEL);
                        return Next::Close(reason);
                    }
                },
            }
        };
        let response = match response {
            Err(_) => return self.upstream_failed(&head, LocalReason::Timeout, !request_done, &mut ex).await,
            Ok(Err(_)) => return self.upstream_failed(&head, LocalReason::BadGateway, !request_done, &mut ex).await,
            Ok(Ok(r)) => r,
        };
        let (parts, mut rbody) = response.into_parts();
        let status = parts.status.as_u16();
        let relayed = convert::relay_response_head(&parts, Some(route));
        let no_body =
            head.method_kind() == Method::Head || status == 204 || status == 304 || (100..200).contains(&status);
        let length = relayed.headers().contains_key(http::header::CONTENT_LENGTH);
        let http10 = head.version() == Version::Http10;
        let chunked = !no_body && !length && !http10;
        let close_delimited = !no_body && !length && http10;
        let keep = head.keep_alive() && !close_delimited && !self.eof;
        let mut fields: Vec<(&[u8], &[u8])> =
            relayed.headers().iter().map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())).collect();
        let empty_end = rbody.is_end_stream() && !no_body && !length;
        if empty_end {
            fields.push((b"content-length", b"0"));
        } else if chunked {
            fields.push((b"transfer-encoding", b"chunked"));
        }
        match (keep, http10) {
            (false, _) => fields.push((b"connection", b"close")),
            (true, true) => fields.push((b"connection", b"keep-alive")),
            (true, false) => {}
        }
        let mut out = BytesMut::new();
        if encode_response_head(&mut out, Version::Http11, status, reason_phrase(status).as_bytes(), fields).is_err() {
            return self.upstream_failed(&head, LocalReason::BadGateway, !request_done, &mut ex).await;
        }
        let before = self.bytes_out;
        let mut failed = self.send(&out).await.err().map(|_| CloseReason::DownstreamError);
        let chunked = chunked && !empty_end;
        if !rbody.is_end_stream() && failed.is_none() {
            failed = self.relay_h2_body(&mut rbody, chunked, no_body).await.err();
        }
        ex.bytes_out += self.bytes_out - before;
        // A request body still arriving is not read further: close after the response.
        let stats = &http.stats;
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
            None if keep && request_done => Next::KeepAlive,
            None => Next::Close(CloseReason::Done),
        }
    }

    /// Writes the response body (chunk-framed or as is) and trailers, releasing each DATA
    /// frame to the upstream's window once written.
    async fn relay_h2_body(&mut self, rbody: &mut RecvStream, chunked: bool, no_body: bool) -> Result<(), CloseReason> {
        let idle = self.http.idle_timeout;
        let mut frame = BytesMut::new();
        loop {
            let data = tokio::select! {
                d = rbody.data() => d,
                _ = sleep(idle) => return Err(CloseReason::IdleTimeout),
            };
            match data {
                None => break,
                Some(Err(_)) => return Err(CloseReason::UpstreamError),
                Some(Ok(d)) => {
                    let len = d.len();
                    if !no_body {
                        let sent = if chunked {
                            frame.clear();
                            encode_chunk(&mut frame, &d);
                            self.send(&frame).await
                        } else {
                            self.send(&d).await
                        };
                        sent.map_err(|_| CloseReason::DownstreamError)?;
                    }
                    let _ = rbody.flow_control().release_capacity(len);
                }
            }
        }
        let trailers = rbody.trailers().await.map_err(|_| CloseReason::UpstreamError)?;
        if chunked {
            frame.clear();
            let fields: Vec<(&[u8], &[u8])> = trailers
                .as_ref()
                .map(|t| t.iter().map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())).collect())
                .unwrap_or_default();
            if encode_last_chunk(&mut frame, fields).is_err() {
                frame.clear();
                frame.extend_from_slice(b"0\r\n\r\n");
            }
            self.send(&frame).await.map_err(|_| CloseReason::DownstreamError)?;
        }
        Ok(())
    }
}
