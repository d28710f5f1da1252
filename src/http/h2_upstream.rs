//! One HTTP/2 stream proxied to an HTTP/2 cluster (`http2: true`): the request head sluice
//! would send an HTTP/1.1 upstream (routed and rewritten the same way) is converted back to
//! HTTP/2 (`convert::request_to_h2`, with `te: trailers` when the client sent it, as gRPC
//! requires) and sent as a stream on the worker's connection to the endpoint
//! (`h2_client`). Both bodies and both trailer sections cross as they come, concurrently
//! (a gRPC bidirectional stream works), each direction with flow control: a DATA frame is
//! released back to the sender's window only once the other side's window took it.

use std::time::Duration;

use bytes::Bytes;
use h2::{Reason, RecvStream, SendStream};
use sluice_codecs::http1::{BodyKind, H1Limits, RequestHead};
use sluice_filters::CloseReason;
use tokio::time::{timeout, timeout_at};

use super::convert;
use super::h2_client;
use super::h2_stream::{send_data, Stream};
use super::local::LocalReason;
use super::log::{write_line, Exchange, RequestLogFacts};
use super::retry::{retryable_request, route_retries, TryFailure};
use super::route::request_host;
use crate::config::http::RouteConfig;

/// Which side of a pump failed.
enum PumpError {
    /// Reading: the sending peer reset the stream, or went idle.
    Recv,
    /// Writing: the receiving peer is gone.
    Send,
}

/// Moves a body and its trailers from `recv` to `tx`; the payload bytes moved.
async fn pump(recv: &mut RecvStream, tx: &mut SendStream<Bytes>, idle: Duration) -> Result<u64, PumpError> {
    let mut moved = 0u64;
    loop {
        match timeout(idle, recv.data()).await {
            Err(_) | Ok(Some(Err(_))) => return Err(PumpError::Recv),
            Ok(None) => break,
            Ok(Some(Ok(data))) => {
                let len = data.len();
                if !send_data(tx, data, idle).await {
                    return Err(PumpError::Send);
                }
                let _ = recv.flow_control().release_capacity(len);
                moved += len as u64;
            }
        }
    }
    let sent = match timeout(idle, recv.trailers()).await {
        Ok(Ok(Some(t))) => tx.send_trailers(convert::relay_trailers(t)),
        Ok(Ok(None)) => tx.send_data(Bytes::new(), true),
        _ => return Err(PumpError::Recv),
    };
    sent.map_err(|_| PumpError::Send)?;
    Ok(moved)
}

/// How the exchange ended.
enum Ending {
    /// The response was relayed (status, body bytes).
    Done(u16, u64),
    /// No response head reached the client: answer locally.
    Local(LocalReason),
    /// It broke after the head was sent (status); the client's stream was reset.
    Broken(u16, CloseReason),
    /// The client reset its stream.
    ClientGone,
}

impl<'a> Stream<'a> {
    /// Sends the request to HTTP/2 cluster `cluster` and relays the response.
    pub(super) async fn forward_h2(
        &mut self,
        head: &RequestHead,
        head_bytes: Bytes,
        route: &'a RouteConfig,
        cluster: usize,
        mut ex: Exchange<'a>,
    ) {
        let http = self.http;
        let idle = http.idle_timeout;
        let deadline = ex.started + route.timeout;
        let limits = H1Limits { max_head: usize::MAX / 2, ..H1Limits::default() };
        let request =
            RequestHead::parse(head_bytes, &limits).ok().and_then(|up| convert::request_to_h2(&up, "http").ok());
        let Some(mut request) = request else {
            return self.local(head, LocalReason::BadGateway, &mut ex).await;
        };
        if self.te_trailers {
            request.headers_mut().insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        }
        let c = &http.clusters[cluster];
        // Each try already fails over across the endpoints; the route's retries add tries.
        let body = if self.request_done { BodyKind::None } else { BodyKind::Chunked };
        let retryable = retryable_request(head.method_kind(), body);
        let mut retry_token = None;
        let (mut sender, addr, _in_flight) = loop {
            match timeout_at(deadline, h2_client::ready(c, &http.pool_stats[cluster], http.pool.idle_timeout)).await {
                Err(_) => return self.local(head, LocalReason::Timeout, &mut ex).await,
                Ok(Ok(ready)) => break ready,
                Ok(Err(_)) if retryable && route_retries(&route.retries, TryFailure::Connect, ex.retries) => {
                    match self.retry_slot(route, &mut ex) {
                        Some(token) => retry_token = Some(token),
                        None => return self.local(head, LocalReason::ConnectFailed, &mut ex).await,
                    }
                }
                Ok(Err(_)) => return self.local(head, LocalReason::ConnectFailed, &mut ex).await,
            }
        };
        drop(retry_token);
        ex.upstream = Some(addr);
        let end = self.request_done;
        let Ok((response, mut up_tx)) = sender.send_request(request, end) else {
            return self.local(head, LocalReason::BadGateway, &mut ex).await;
        };
        let mut uploaded = 0;
        let recv = &mut self.recv;
        let respond = &mut self.respond;
        let ending = {
            let upload = async {
                if end {
                    Ok(0)
                } else {
                    pump(recv, &mut up_tx, idle).await
                }
            };
            let download = async {
                let response = match timeout_at(deadline, response).await {
                    Err(_) => return Ending::Local(LocalReason::Timeout),
                    Ok(Err(e)) if e.reason() == Some(Reason::REFUSED_STREAM) => {
                        return Ending::Local(LocalReason::ConnectFailed)
                    }
                    Ok(Err(_)) => return Ending::Local(LocalReason::BadGateway),
                    Ok(Ok(r)) => r,
                };
                let (parts, mut body) = response.into_parts();
                let status = parts.status.as_u16();
                let end = body.is_end_stream();
                let Ok(mut tx) = respond.send_response(convert::relay_response_head(&parts, Some(route)), end) else {
                    return Ending::ClientGone;
                };
                if end {
                    return Ending::Done(status, 0);
                }
                match pump(&mut body, &mut tx, idle).await {
                    Ok(n) => Ending::Done(status, n),
                    Err(PumpError::Recv) => {
                        tx.send_reset(Reason::INTERNAL_ERROR);
                        Ending::Broken(status, CloseReason::UpstreamError)
                    }
                    Err(PumpError::Send) => Ending::Broken(status, CloseReason::DownstreamError),
                }
            };
            tokio::pin!(upload, download);
            let mut uploading = !end;
            loop {
                tokio::select! {
                    sent = &mut upload, if uploading => {
                        uploading = false;
                        match sent {
                            Ok(n) => uploaded = n,
                            Err(PumpError::Recv) => break Ending::ClientGone,
                            Err(PumpError::Send) => {}
                        }
                    }
                    ending = &mut download => break ending,
                }
            }
        };
        let (status, bytes) = match ending {
            Ending::Local(reason) => return self.local(head, reason, &mut ex).await,
            Ending::ClientGone => {
                self.sh.client_reset();
                return;
            }
            Ending::Broken(status, reason) => {
                if reason == CloseReason::DownstreamError {
                    self.sh.client_reset();
                }
                (status, 0)
            }
            Ending::Done(status, bytes) => (status, bytes),
        };
        ex.bytes_out += bytes;
        self.body_in += uploaded;
        let elapsed = ex.started.elapsed();
        http.stats.op(head.method()).record(super::stats::outcome(status), Some(elapsed));
        http.stats.route(&route.name).response(status, elapsed);
        let host = request_host(head);
        write_line(
            http,
            self.sh.client,
            self.body_in,
            &RequestLogFacts { method: head.method(), path: head.path(), host: &host, status, local: None },
            &ex,
        );
    }
}
