//! The metrics of an `http` listener, registered once and updated with atomic adds:
//!
//! - `sluice_ops_total{protocol="http",op=<method>,outcome}` and
//!   `sluice_op_duration_seconds{op=<method>}` (shared with every protocol): the outcome is
//!   `ok` for a 1xx–4xx answer from upstream, `error` for 5xx (upstream or sluice's own
//!   502/503/504) and for requests the codec refused, `denied` / `limited` for rules.
//!   Methods outside the standard nine share `op="other"` (bounded).
//! - `sluice_http_responses_total{listener,route,class}`: responses by route and status
//!   class (`1xx`…`5xx`); `route="none"` for requests no route matched or the codec refused.
//! - `sluice_http_route_duration_seconds{listener,route}`: request start to response end.
//! - `sluice_http_retries_total{listener,route}`, `sluice_http_retries_exhausted_total{listener}`
//!   (the budget refused one), `sluice_http_local_replies_total{listener,status}`.
//! - `sluice_http_downstream_connections_total{listener,version}`: client connections by
//!   protocol (`1.1`: HTTP/1.x, `2`: HTTP/2 by prior knowledge or ALPN).
//! - `sluice_http2_streams_total{listener}`: HTTP/2 streams accepted (each one request);
//!   `sluice_http2_stream_resets_total{listener}`: streams the client reset before its
//!   response ended; `sluice_http2_goaways_total{listener,reason}`: connections sluice ended
//!   with GOAWAY (`drain`, `idle`, or the error code of a connection error: a rapid-reset or
//!   CONTINUATION flood is `enhance_your_calm` / `protocol_error`).
//! - Pool metrics per cluster live in `pool`.

use std::collections::HashMap;
use std::time::Duration;

use metrics::{Counter, Histogram, Unit};
use sluice_filters::stats::OpCounters;
use sluice_filters::{Outcome, Protocol};

use super::route::Router;

pub const RESPONSES_TOTAL: &str = "sluice_http_responses_total";
pub const ROUTE_DURATION_SECONDS: &str = "sluice_http_route_duration_seconds";
pub const RETRIES_TOTAL: &str = "sluice_http_retries_total";
pub const RETRIES_EXHAUSTED_TOTAL: &str = "sluice_http_retries_exhausted_total";
pub const LOCAL_REPLIES_TOTAL: &str = "sluice_http_local_replies_total";
pub const DOWNSTREAM_CONNECTIONS_TOTAL: &str = "sluice_http_downstream_connections_total";
pub const H2_STREAMS_TOTAL: &str = "sluice_http2_streams_total";
pub const H2_STREAM_RESETS_TOTAL: &str = "sluice_http2_stream_resets_total";
pub const H2_GOAWAYS_TOTAL: &str = "sluice_http2_goaways_total";
const GOAWAY_REASONS: [&str; 6] =
    ["drain", "idle", "protocol_error", "enhance_your_calm", "flow_control_error", "other"];

const METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];
const LOCAL_STATUSES: [u16; 14] = [400, 403, 404, 408, 413, 414, 429, 431, 500, 501, 502, 503, 504, 505];
pub const NO_ROUTE: &str = "none";

pub fn describe() {
    metrics::describe_counter!(
        RESPONSES_TOTAL,
        Unit::Count,
        "HTTP responses sent to clients, by route and status class."
    );
    metrics::describe_histogram!(
        ROUTE_DURATION_SECONDS,
        Unit::Seconds,
        "HTTP request duration per route, from the request head to the end of the response."
    );
    metrics::describe_counter!(RETRIES_TOTAL, Unit::Count, "HTTP requests sent again to an upstream, by route.");
    metrics::describe_counter!(RETRIES_EXHAUSTED_TOTAL, Unit::Count, "HTTP retries the retry budget refused.");
    metrics::describe_counter!(LOCAL_REPLIES_TOTAL, Unit::Count, "HTTP responses sluice answered itself, by status.");
    metrics::describe_counter!(
        DOWNSTREAM_CONNECTIONS_TOTAL,
        Unit::Count,
        "HTTP client connections, by protocol version (1.1 or 2)."
    );
    metrics::describe_counter!(H2_STREAMS_TOTAL, Unit::Count, "HTTP/2 streams (requests) accepted from clients.");
    metrics::describe_counter!(
        H2_STREAM_RESETS_TOTAL,
        Unit::Count,
        "HTTP/2 streams the client reset before the response ended."
    );
    metrics::describe_counter!(
        H2_GOAWAYS_TOTAL,
        Unit::Count,
        "HTTP/2 connections sluice ended with GOAWAY, by reason."
    );
    metrics::describe_gauge!(
        super::pool::UPSTREAM_CONNECTIONS_ACTIVE,
        Unit::Count,
        "Upstream HTTP connections carrying a request now."
    );
    metrics::describe_gauge!(
        super::pool::UPSTREAM_CONNECTIONS_IDLE,
        Unit::Count,
        "Idle upstream HTTP connections in the keep-alive pools."
    );
    metrics::describe_counter!(
        super::pool::UPSTREAM_REQUESTS_TOTAL,
        Unit::Count,
        "HTTP requests sent upstream, on a new or a reused (pooled) connection."
    );
}

/// The counters of one route.
pub struct RouteStats {
    classes: [Counter; 5],
    duration: Histogram,
    pub retries: Counter,
}

impl RouteStats {
    fn new(listener: &str, route: &str) -> Self {
        let class = |c: &'static str| metrics::counter!(RESPONSES_TOTAL, "listener" => listener.to_owned(), "route" => route.to_owned(), "class" => c);
        RouteStats {
            classes: [class("1xx"), class("2xx"), class("3xx"), class("4xx"), class("5xx")],
            duration: metrics::histogram!(ROUTE_DURATION_SECONDS, "listener" => listener.to_owned(), "route" => route.to_owned()),
            retries: metrics::counter!(RETRIES_TOTAL, "listener" => listener.to_owned(), "route" => route.to_owned()),
        }
    }

    pub fn response(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class].increment(1);
        self.duration.record(elapsed.as_secs_f64());
    }
}

pub struct HttpStats {
    ops: Vec<OpCounters>,
    routes: HashMap<String, RouteStats>,
    pub unrouted: RouteStats,
    local: Vec<(u16, Counter)>,
    pub retries_exhausted: Counter,
    pub connections_h1: Counter,
    pub connections_h2: Counter,
    pub h2_streams: Counter,
    pub h2_resets: Counter,
    goaways: Vec<(&'static str, Counter)>,
}

impl HttpStats {
    pub fn new(listener: &str, router: &Router) -> Self {
        let mut ops: Vec<OpCounters> = METHODS.iter().map(|m| OpCounters::new(listener, Protocol::Http, m)).collect();
        ops.push(OpCounters::new(listener, Protocol::Http, "other"));
        let statuses = LOCAL_STATUSES.iter().map(|s| s.to_string());
        HttpStats {
            ops,
            routes: router.routes().map(|r| (r.name.clone(), RouteStats::new(listener, &r.name))).collect(),
            unrouted: RouteStats::new(listener, NO_ROUTE),
            local: LOCAL_STATUSES
                .iter()
                .zip(statuses)
                .map(|(&s, text)| {
                    (s, metrics::counter!(LOCAL_REPLIES_TOTAL, "listener" => listener.to_owned(), "status" => text))
                })
                .collect(),
            retries_exhausted: metrics::counter!(RETRIES_EXHAUSTED_TOTAL, "listener" => listener.to_owned()),
            connections_h1: metrics::counter!(DOWNSTREAM_CONNECTIONS_TOTAL, "listener" => listener.to_owned(), "version" => "1.1"),
            connections_h2: metrics::counter!(DOWNSTREAM_CONNECTIONS_TOTAL, "listener" => listener.to_owned(), "version" => "2"),
            h2_streams: metrics::counter!(H2_STREAMS_TOTAL, "listener" => listener.to_owned()),
            h2_resets: metrics::counter!(H2_STREAM_RESETS_TOTAL, "listener" => listener.to_owned()),
            goaways: GOAWAY_REASONS
                .iter()
                .map(|&r| (r, metrics::counter!(H2_GOAWAYS_TOTAL, "listener" => listener.to_owned(), "reason" => r)))
                .collect(),
        }
    }

    pub fn op(&self, method: &str) -> &OpCounters {
        let i = METHODS.iter().position(|m| *m == method).unwrap_or(METHODS.len());
        &self.ops[i]
    }

    pub fn route(&self, name: &str) -> &RouteStats {
        self.routes.get(name).unwrap_or(&self.unrouted)
    }

    /// A GOAWAY sluice sent; `reason` outside the known set counts as `other`.
    pub fn goaway(&self, reason: &str) {
        let i = self.goaways.iter().position(|(r, _)| *r == reason).unwrap_or(self.goaways.len() - 1);
        self.goaways[i].1.increment(1);
    }

    pub fn local_reply(&self, status: u16) {
        if let Some((_, c)) = self.local.iter().find(|(s, _)| *s == status) {
            c.increment(1);
        }
    }
}

/// The `sluice_ops_total` outcome of a response status.
pub fn outcome(status: u16) -> Outcome {
    if status >= 500 {
        Outcome::Error
    } else {
        Outcome::Ok
    }
}
