//! The `http:` block of a `protocol: http` listener: virtual hosts, routes, rewrites,
//! timeouts and retries, as written (`Raw*`, serde with `deny_unknown_fields`) and as
//! validated (`HttpConfig`). Routing itself lives in `crate::http::route`.
//!
//! Without an `http:` block (or with one that lists no virtual hosts) every request goes
//! to the listener's `cluster`: one virtual host `*` with one route `/`. With virtual
//! hosts, the listener's `cluster` is not used for routing; a request no route matches
//! gets 404 (Envoy's behaviour).

use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize, Serializer};

use super::raw::{OneOrMany, RawSize};
use super::units::parse_size;
use super::validate::Validator;
use super::{ser_duration, ClusterConfig};

/// Envoy's route timeout default.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long sluice waits for the next request on a client connection (Envoy's HTTP
/// connection manager default idle timeout is 1 h; nginx's keepalive_timeout is 75 s).
pub const DEFAULT_HTTP_IDLE: Duration = Duration::from_secs(75);
const DEFAULT_MAX_REQUEST_HEAD: usize = 64 * 1024;
const DEFAULT_UPSTREAM_IDLE: Duration = Duration::from_secs(30);
/// An HTTP/2 client multiplexes 100 streams per connection by default: the pool keeps
/// enough idle connections for a few such clients per worker instead of closing and
/// reopening them under load.
const DEFAULT_UPSTREAM_MAX_IDLE: usize = 256;
/// Retries beyond these are refused at load time: each is another upstream request.
const MAX_RETRY_ATTEMPTS: u32 = 10;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub max_request_head: Option<RawSize>,
    pub upstream_idle_timeout: Option<String>,
    pub upstream_max_idle: Option<u64>,
    pub client_id_header: Option<String>,
    pub http2: Option<RawHttp2>,
    #[serde(default)]
    pub virtual_hosts: Vec<RawVirtualHost>,
}

/// The HTTP/2 settings of a listener (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp2 {
    pub max_concurrent_streams: Option<u64>,
    pub max_header_list_size: Option<RawSize>,
    pub initial_window_size: Option<RawSize>,
    pub max_pending_accept_reset_streams: Option<u64>,
    pub max_local_error_reset_streams: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVirtualHost {
    pub name: Option<String>,
    pub domains: Vec<String>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<String>,
    #[serde(rename = "match", default)]
    pub matcher: RawRouteMatch,
    pub cluster: Option<String>,
    pub weighted_clusters: Option<Vec<RawWeightedCluster>>,
    pub prefix_rewrite: Option<String>,
    #[serde(default)]
    pub request_headers_to_add: Vec<RawHeader>,
    #[serde(default)]
    pub request_headers_to_remove: Vec<String>,
    #[serde(default)]
    pub response_headers_to_add: Vec<RawHeader>,
    #[serde(default)]
    pub response_headers_to_remove: Vec<String>,
    pub timeout: Option<String>,
    pub retries: Option<RawRetries>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteMatch {
    pub prefix: Option<String>,
    pub path: Option<String>,
    pub regex: Option<String>,
    #[serde(default)]
    pub headers: Vec<RawHeaderMatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderMatch {
    pub name: String,
    pub value: Option<String>,
    pub present: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeightedCluster {
    pub cluster: String,
    pub weight: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetries {
    pub attempts: u32,
    pub on: Option<OneOrMany>,
}

/// A validated `http:` block (defaults filled in).
#[derive(Debug, Clone, Serialize)]
pub struct HttpConfig {
    /// The largest request head (request line and fields): larger is 431 (or 414).
    pub max_request_head: usize,
    /// How long an idle pooled upstream connection is kept.
    #[serde(serialize_with = "ser_duration")]
    pub upstream_idle_timeout: Duration,
    /// The most idle connections kept per upstream endpoint, per worker.
    pub upstream_max_idle: usize,
    /// The request header whose value is the op's `client_id` (an API key, a tenant):
    /// what `match.client_id` and `per: client_id` (or `per: header:<name>`) see.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id_header: Option<String>,
    pub http2: Http2Config,
    pub virtual_hosts: Vec<VirtualHostConfig>,
}

/// HTTP/2 downstream limits (RFC 9113 §6.5.2 SETTINGS, and the h2 crate's reset limits
/// against rapid-reset floods, CVE-2023-44487).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Http2Config {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: streams a client may have open at once.
    pub max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: the largest decoded header list (RFC 9113 §6.5.2).
    pub max_header_list_size: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: per-stream receive window (bytes buffered per upload).
    pub initial_window_size: u32,
    /// Streams reset by the client before sluice accepted them; more is a GOAWAY.
    pub max_pending_accept_reset_streams: usize,
    /// Streams sluice had to reset for the client's errors; more is a GOAWAY.
    pub max_local_error_reset_streams: usize,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            max_concurrent_streams: 100,
            max_header_list_size: 64 * 1024,
            initial_window_size: 256 * 1024,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VirtualHostConfig {
    pub name: String,
    /// Lower-cased; `*` alone matches every host, `*.x` a suffix, `x.*` a prefix.
    pub domains: Vec<String>,
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteConfig {
    /// The `route` label of the route's metrics and access-log lines.
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    pub clusters: Vec<WeightedCluster>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_rewrite: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_add: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_remove: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_add: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_remove: Vec<String>,
    /// From the start of the request to the response head.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    pub retries: RetryConfig,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteMatch {
    pub path: PathMatch,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
}

#[derive(Debug, Clone)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(Regex),
}

impl Serialize for PathMatch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PathMatch::Prefix(p) => s.collect_str(&format_args!("prefix {p}")),
            PathMatch::Exact(p) => s.collect_str(&format_args!("path {p}")),
            PathMatch::Regex(r) => s.collect_str(&format_args!("regex {}", r.as_str())),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HeaderMatch {
    /// Lower-cased.
    pub name: String,
    /// `Some`: the field's value equals this; `None`: the field is present (or absent when
    /// `present` is false).
    pub value: Option<String>,
    pub present: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct WeightedCluster {
    pub cluster: String,
    /// Index into `Config::clusters`.
    #[serde(skip)]
    pub index: usize,
    pub weight: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RetryConfig {
    /// Retries after the first try.
    pub attempts: u32,
    pub on_connect_failure: bool,
    /// Upstream statuses that are retried (502, 503, 504).
    pub statuses: Vec<u16>,
}

fn header_name_ok(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn header_value_ok(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b >= b' ' && b != 0x7f)) && value.trim() == value
}

impl Validator {
    /// Checks a listener's `http:` block; `default_cluster` is the listener's `cluster`.
    pub(super) fn http(
        &mut self,
        path: &str,
        raw: Option<RawHttp>,
        clusters: &[Arc<ClusterConfig>],
        default_cluster: Option<usize>,
    ) -> HttpConfig {
        let raw = raw.unwrap_or_default();
        let max_request_head = match raw.max_request_head {
            None => DEFAULT_MAX_REQUEST_HEAD,
            Some(size) => {
                let parsed = match size {
                    RawSize::Bytes(n) => Ok(n),
                    RawSize::Text(t) => parse_size(&t),
                };
                match parsed {
                    Ok(n) if (1024..=1024 * 1024).contains(&n) => n as usize,
                    Ok(_) => {
                        self.error(format!("{path}.max_request_head"), "must be between 1KiB and 1MiB");
                        DEFAULT_MAX_REQUEST_HEAD
                    }
                    Err(e) => {
                        self.error(format!("{path}.max_request_head"), e);
                        DEFAULT_MAX_REQUEST_HEAD
                    }
                }
            }
        };
        let upstream_idle_timeout = self.duration(
            &format!("{path}.upstream_idle_timeout"),
            raw.upstream_idle_timeout.as_deref(),
            DEFAULT_UPSTREAM_IDLE,
        );
        let upstream_max_idle = match raw.upstream_max_idle {
            None => DEFAULT_UPSTREAM_MAX_IDLE,
            Some(n) if n <= 10_000 => n as usize,
            Some(_) => {
                self.error(format!("{path}.upstream_max_idle"), "at most 10000");
                DEFAULT_UPSTREAM_MAX_IDLE
            }
        };
        let client_id_header = raw.client_id_header.map(|name| {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
                self.error(format!("{path}.client_id_header"), format!(r#""{name}" is no header name"#));
            }
            name.to_ascii_lowercase()
        });
        let http2 = self.http2(&format!("{path}.http2"), raw.http2.unwrap_or_default(), max_request_head);
        let mut virtual_hosts = Vec::new();
        for (i, vh) in raw.virtual_hosts.into_iter().enumerate() {
            virtual_hosts.push(self.virtual_host(&format!("{path}.virtual_hosts[{i}]"), i, vh, clusters));
        }
        if virtual_hosts.is_empty() {
            // Everything to the listener's cluster.
            if let Some(index) = default_cluster {
                virtual_hosts.push(VirtualHostConfig {
                    name: "default".into(),
                    domains: vec!["*".into()],
                    routes: vec![RouteConfig {
                        name: "default".into(),
                        matcher: RouteMatch { path: PathMatch::Prefix("/".into()), headers: Vec::new() },
                        clusters: vec![WeightedCluster { cluster: clusters[index].name.clone(), index, weight: 1 }],
                        prefix_rewrite: None,
                        request_headers_to_add: Vec::new(),
                        request_headers_to_remove: Vec::new(),
                        response_headers_to_add: Vec::new(),
                        response_headers_to_remove: Vec::new(),
                        timeout: DEFAULT_ROUTE_TIMEOUT,
                        retries: RetryConfig::default(),
                    }],
                });
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, vh) in virtual_hosts.iter().enumerate() {
            for (j, r) in vh.routes.iter().enumerate() {
                if !names.insert(r.name.clone()) {
                    self.error(
                        format!("{path}.virtual_hosts[{i}].routes[{j}].name"),
                        format!(r#"duplicate route name "{}""#, r.name),
                    );
                }
            }
        }
        HttpConfig {
            max_request_head,
            upstream_idle_timeout,
            upstream_max_idle,
            client_id_header,
            http2,
            virtual_hosts,
        }
    }

    /// `http2:`; the header list defaults to `max_request_head`.
    fn http2(&mut self, path: &str, raw: RawHttp2, max_request_head: usize) -> Http2Config {
        let d = Http2Config { max_header_list_size: max_request_head as u32, ..Http2Config::default() };
        let mut count = |field: &str, v: Option<u64>, max: u64, default: u64| match v {
            None => default,
            Some(n) if (1..=max).contains(&n) => n,
            Some(_) => {
                self.error(format!("{path}.{field}"), format!("must be between 1 and {max}"));
                default
            }
        };
        let streams =
            count("max_concurrent_streams", raw.max_concurrent_streams, 10_000, d.max_concurrent_streams.into());
        let pending = count(
            "max_pending_accept_reset_streams",
            raw.max_pending_accept_reset_streams,
            100_000,
            d.max_pending_accept_reset_streams as u64,
        );
        let local = count(
            "max_local_error_reset_streams",
            raw.max_local_error_reset_streams,
            100_000,
            d.max_local_error_reset_streams as u64,
        );
        let mut size = |field: &str, v: Option<RawSize>, min: u64, max: u64, default: u32| {
            let parsed = match v {
                None => return default,
                Some(RawSize::Bytes(n)) => Ok(n),
                Some(RawSize::Text(t)) => parse_size(&t),
            };
            match parsed {
                Ok(n) if (min..=max).contains(&n) => n as u32,
                Ok(_) => {
                    self.error(format!("{path}.{field}"), format!("must be between {min} and {max} bytes"));
                    default
                }
                Err(e) => {
                    self.error(format!("{path}.{field}"), e);
                    default
                }
            }
        };
        let header_list =
            size("max_header_list_size", raw.max_header_list_size, 1024, 1024 * 1024, d.max_header_list_size);
        let window = size("initial_window_size", raw.initial_window_size, 1024, (1 << 31) - 1, d.initial_window_size);
        Http2Config {
            max_concurrent_streams: streams as u32,
            max_header_list_size: header_list,
            initial_window_size: window,
            max_pending_accept_reset_streams: pending as usize,
            max_local_error_reset_streams: local as usize,
        }
    }

    fn virtual_host(
        &mut self,
        path: &str,
        i: usize,
        raw: RawVirtualHost,
        clusters: &[Arc<ClusterConfig>],
    ) -> VirtualHostConfig {
        let name = raw.name.unwrap_or_else(|| format!("vh{i}"));
        if raw.domains.is_empty() {
            self.error(format!("{path}.domains"), r#"needs at least one domain (use "*" for any host)"#);
        }
        let mut domains = Vec::new();
        for (k, d) in raw.domains.into_iter().enumerate() {
            let d = d.to_ascii_lowercase();
            let stars = d.matches('*').count();
            let ok = !d.is_empty()
                && (d == "*" || (stars == 0) || (stars == 1 && (d.starts_with("*.") || d.ends_with(".*"))))
                && d.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.*:[]_".contains(&b));
            if !ok {
                self.error(
                    format!("{path}.domains[{k}]"),
                    format!(r#"invalid domain "{d}" (a host, "*.suffix", "prefix.*" or "*")"#),
                );
            }
            domains.push(d);
        }
        if raw.routes.is_empty() {
            self.error(format!("{path}.routes"), "needs at least one route");
        }
        let routes = raw
            .routes
            .into_iter()
            .enumerate()
            .map(|(j, r)| self.route(&format!("{path}.routes[{j}]"), &name, j, r, clusters))
            .collect();
        VirtualHostConfig { name, domains, routes }
    }

    fn route(
        &mut self,
        path: &str,
        vhost: &str,
        j: usize,
        raw: RawRoute,
        clusters: &[Arc<ClusterConfig>],
    ) -> RouteConfig {
        let name = raw.name.unwrap_or_else(|| format!("{vhost}/{j}"));
        let m = raw.matcher;
        let path_match = match (m.prefix, m.path, m.regex) {
            (Some(p), None, None) => PathMatch::Prefix(p),
            (None, Some(p), None) => PathMatch::Exact(p),
            (None, None, Some(r)) => match Regex::new(&r) {
                Ok(re) => PathMatch::Regex(re),
                Err(e) => {
                    self.error(format!("{path}.match.regex"), format!("invalid regex: {e}"));
                    PathMatch::Prefix("/".into())
                }
            },
            (None, None, None) => PathMatch::Prefix("/".into()),
            _ => {
                self.error(format!("{path}.match"), "takes at most one of prefix, path or regex");
                PathMatch::Prefix("/".into())
            }
        };
        if let PathMatch::Prefix(p) | PathMatch::Exact(p) = &path_match {
            if !p.starts_with('/') {
                self.error(format!("{path}.match"), format!(r#"a path must start with "/", not "{p}""#));
            }
        }
        let mut headers = Vec::new();
        for (k, h) in m.headers.into_iter().enumerate() {
            let hp = format!("{path}.match.headers[{k}]");
            if !header_name_ok(&h.name) {
                self.error(format!("{hp}.name"), format!(r#"invalid field name "{}""#, h.name));
            }
            if h.value.is_some() && h.present.is_some() {
                self.error(hp.clone(), "takes value or present, not both");
            }
            headers.push(HeaderMatch {
                name: h.name.to_ascii_lowercase(),
                present: h.present.unwrap_or(true),
                value: h.value,
            });
        }
        let mut cluster_ref = |p: String, name: &str| -> usize {
            clusters.iter().position(|c| c.name == name).unwrap_or_else(|| {
                self.error(p, format!(r#"unknown cluster "{name}""#));
                0
            })
        };
        let targets = match (raw.cluster, raw.weighted_clusters) {
            (Some(c), None) => {
                let index = cluster_ref(format!("{path}.cluster"), &c);
                vec![WeightedCluster { cluster: c, index, weight: 1 }]
            }
            (None, Some(list)) => {
                let mut out = Vec::new();
                for (k, w) in list.into_iter().enumerate() {
                    let index = cluster_ref(format!("{path}.weighted_clusters[{k}].cluster"), &w.cluster);
                    out.push(WeightedCluster { cluster: w.cluster, index, weight: w.weight });
                }
                if out.is_empty() || out.iter().all(|w| w.weight == 0) {
                    self.error(format!("{path}.weighted_clusters"), "needs a cluster with a weight above zero");
                }
                out
            }
            (Some(_), Some(_)) => {
                self.error(path.to_string(), "takes cluster or weighted_clusters, not both");
                Vec::new()
            }
            (None, None) => {
                self.error(format!("{path}.cluster"), "missing: a route needs cluster or weighted_clusters");
                Vec::new()
            }
        };
        if let Some(p) = &raw.prefix_rewrite {
            if !matches!(path_match, PathMatch::Prefix(_)) {
                self.error(format!("{path}.prefix_rewrite"), "applies to routes matching a prefix");
            }
            if !p.starts_with('/') || !p.bytes().all(|b| b.is_ascii_graphic()) {
                self.error(format!("{path}.prefix_rewrite"), format!(r#"must be a path starting with "/", not "{p}""#));
            }
        }
        let mut adds = |field: &str, list: Vec<RawHeader>| -> Vec<(String, String)> {
            let mut out = Vec::new();
            for (k, h) in list.into_iter().enumerate() {
                if !header_name_ok(&h.name) {
                    self.error(format!("{path}.{field}[{k}].name"), format!(r#"invalid field name "{}""#, h.name));
                }
                if !header_value_ok(&h.value) {
                    self.error(
                        format!("{path}.{field}[{k}].value"),
                        "invalid field value (control characters or edge whitespace)",
                    );
                }
                out.push((h.name, h.value));
            }
            out
        };
        let request_headers_to_add = adds("request_headers_to_add", raw.request_headers_to_add);
        let response_headers_to_add = adds("response_headers_to_add", raw.response_headers_to_add);
        let mut removes = |field: &str, list: Vec<String>| -> Vec<String> {
            for (k, n) in list.iter().enumerate() {
                if !header_name_ok(n) {
                    self.error(format!("{path}.{field}[{k}]"), format!(r#"invalid field name "{n}""#));
                }
            }
            list.into_iter().map(|n| n.to_ascii_lowercase()).collect()
        };
        let request_headers_to_remove = removes("request_headers_to_remove", raw.request_headers_to_remove);
        let response_headers_to_remove = removes("response_headers_to_remove", raw.response_headers_to_remove);
        let timeout = self.duration(&format!("{path}.timeout"), raw.timeout.as_deref(), DEFAULT_ROUTE_TIMEOUT);
        let retries = match raw.retries {
            None => RetryConfig::default(),
            Some(r) => {
                if r.attempts > MAX_RETRY_ATTEMPTS {
                    self.error(format!("{path}.retries.attempts"), format!("at most {MAX_RETRY_ATTEMPTS}"));
                }
                let mut out = RetryConfig { attempts: r.attempts.min(MAX_RETRY_ATTEMPTS), ..RetryConfig::default() };
                let on = r.on.map(OneOrMany::into_vec).unwrap_or_else(|| vec!["connect_failure".into()]);
                for (k, cond) in on.iter().enumerate() {
                    match cond.as_str() {
                        "connect_failure" => out.on_connect_failure = true,
                        "502" => out.statuses.push(502),
                        "503" => out.statuses.push(503),
                        "504" => out.statuses.push(504),
                        "gateway_error" => out.statuses.extend([502, 503, 504]),
                        other => self.error(
                            format!("{path}.retries.on[{k}]"),
                            format!(
                                r#"unknown condition "{other}" (connect_failure, "502", "503", "504" or gateway_error)"#
                            ),
                        ),
                    }
                }
                out
            }
        };
        RouteConfig {
            name,
            matcher: RouteMatch { path: path_match, headers },
            clusters: targets,
            prefix_rewrite: raw.prefix_rewrite,
            request_headers_to_add,
            request_headers_to_remove,
            response_headers_to_add,
            response_headers_to_remove,
            timeout,
            retries,
        }
    }
}
