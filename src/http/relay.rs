//! Relaying the response: its head rewritten, its body streamed to the client as received
//! while any rest of the request body still goes up (a server may answer early, RFC 9112
//! §9.3); each direction holds at most one read and reads again only after writing it.
//! After a 101 (RFC 9110 §15.2.2) or a 2xx to CONNECT (§9.3.6) the connection becomes a
//! tunnel: bytes both ways, opaque, until either side closes.

use bytes::BytesMut;
use sluice_codecs::framing::Decode;
use sluice_codecs::http1::{BodyKind, Item, Method, RequestHead};
use sluice_filters::CloseReason;

use super::forward::Answer;
use super::io::{read_into, write_flush};
use super::log::{Exchange, RequestLogFacts};
use super::pool::{self, Upstream};
use super::proxy::{ClientConn, Next};
use super::rewrite::{self, ClientConnection};
use super::route::request_host;
use crate::config::http::RouteConfig;

impl ClientConn<'_> {
    /// Streams the response to the client; pools the upstream connection if it can be.
    pub(super) async fn respond(
        &mut self,
        head: RequestHead,
        route: &RouteConfig,
        answer: Answer,
        mut ex: Exchange<'_>,
    ) -> Next {
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
    pub(super) async fn tunnel(&mut self, up: &mut Upstream, ubuf: &mut BytesMut) -> CloseReason {
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
