//! The access log of an `http` listener: one JSON line per request (not per connection),
//! through the listener's `access_log` writer thread; and the per-request bookkeeping both
//! the HTTP/1 and the HTTP/2 drivers share (stats and log line of a local reply).

use std::net::SocketAddr;

use serde::Serialize;
use sluice_codecs::http1::RequestHead;
use sluice_filters::Outcome;
use tokio::time::Instant;

use super::local::LocalReason;
use super::route::request_host;
use super::HttpListener;
use crate::access_log::now_rfc3339;
use crate::config::http::RouteConfig;

#[derive(Serialize)]
pub struct RequestLine<'a> {
    pub time: String,
    pub listener: &'a str,
    pub protocol: &'static str,
    /// The client's HTTP version: "1.1" (HTTP/1.x) or "2".
    pub version: &'static str,
    pub client: SocketAddr,
    pub method: &'a str,
    pub path: &'a str,
    pub host: &'a str,
    pub status: u16,
    /// Request bytes received from the client (head and body as framed).
    pub bytes_received: u64,
    /// Response bytes sent to the client.
    pub bytes_sent: u64,
    pub duration_ms: f64,
    pub route: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<SocketAddr>,
    /// Retries made for this request.
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// Set when sluice answered itself: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_reply: Option<&'a str>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The per-request facts the access log and stats need.
pub(super) struct Exchange<'r> {
    /// The client's HTTP version, for the log line ("1.1" or "2").
    pub(super) version: &'static str,
    pub(super) started: Instant,
    pub(super) route: Option<&'r RouteConfig>,
    pub(super) cluster: Option<usize>,
    pub(super) upstream: Option<SocketAddr>,
    pub(super) retries: u32,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
}

/// The request fields of an access-log line.
pub(super) struct RequestLogFacts<'r> {
    pub(super) method: &'r str,
    pub(super) path: &'r str,
    pub(super) host: &'r str,
    pub(super) status: u16,
    pub(super) local: Option<LocalReason>,
}

/// The stats and the log line of a response sluice answered itself.
pub(super) fn finish_local(
    http: &HttpListener,
    client: SocketAddr,
    body_in: u64,
    head: &RequestHead,
    reason: LocalReason,
    ex: &Exchange<'_>,
) {
    let status = reason.status();
    let stats = &http.stats;
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
    write_line(
        http,
        client,
        body_in,
        &RequestLogFacts { method: head.method(), path: head.path(), host: &host, status, local: Some(reason) },
        ex,
    );
}

/// One access-log line; `body_in`: request body bytes received.
pub(super) fn write_line(
    http: &HttpListener,
    client: SocketAddr,
    body_in: u64,
    facts: &RequestLogFacts<'_>,
    ex: &Exchange<'_>,
) {
    let Some(log) = &http.access_log else { return };
    log.write_json(&RequestLine {
        time: now_rfc3339(),
        listener: &http.name,
        protocol: "http",
        version: ex.version,
        client,
        method: facts.method,
        path: facts.path,
        host: facts.host,
        status: facts.status,
        bytes_received: ex.bytes_in + body_in,
        bytes_sent: ex.bytes_out,
        duration_ms: (ex.started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        route: ex.route.map_or(super::stats::NO_ROUTE, |r| r.name.as_str()),
        cluster: ex.cluster.map(|i| http.clusters[i].config.name.as_str()),
        upstream: ex.upstream,
        retries: ex.retries,
        local_reply: facts.local.map(LocalReason::as_str),
    });
}
