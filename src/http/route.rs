//! Request routing: the virtual host by the request's host (RFC 9110 §7.2: the Host
//! field, or the authority of an absolute-form target, RFC 9112 §3.2.2), then the first
//! route of that host whose path and header matches hold, then a cluster by weight.
//!
//! Host matching follows Envoy's order: an exact domain, then the longest `*.suffix`,
//! then the longest `prefix.*`, then `*`. Hosts are compared without their port and
//! case-insensitively. Path matches see the path without the query: `prefix` (a plain
//! string prefix), `path` (exact) or `regex` (unanchored search: anchor it with `^`/`$`).

use sluice_codecs::http1::RequestHead;

use crate::config::http::{HeaderMatch, HttpConfig, PathMatch, RouteConfig, VirtualHostConfig};

/// The routing table of one listener.
pub struct Router {
    hosts: Vec<VirtualHostConfig>,
}

/// The host a request is for: the absolute-form target's authority, else Host; without
/// the port, lower-cased.
pub fn request_host(head: &RequestHead) -> String {
    let target = head.target();
    let authority = match target.split_once("://") {
        Some((_, rest)) => rest.split(['/', '?']).next().unwrap_or_default().as_bytes(),
        None => head.host().unwrap_or_default(),
    };
    let authority = std::str::from_utf8(authority).unwrap_or_default();
    strip_port(authority).to_ascii_lowercase()
}

fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        // An IPv6 literal keeps its brackets.
        return authority.find(']').map_or(authority, |i| &authority[..=i]);
    }
    authority.rsplit_once(':').map_or(authority, |(host, _)| host)
}

/// How well `domain` matches `host`: higher is better, `None` if it does not.
fn domain_score(domain: &str, host: &str) -> Option<(u8, usize)> {
    if domain == "*" {
        return Some((0, 0));
    }
    if let Some(suffix) = domain.strip_prefix('*') {
        // "*.example.com" matches "a.example.com", not "example.com".
        return (host.len() > suffix.len() && host.ends_with(suffix)).then_some((2, suffix.len()));
    }
    if let Some(prefix) = domain.strip_suffix('*') {
        return (host.len() > prefix.len() && host.starts_with(prefix)).then_some((1, prefix.len()));
    }
    (domain == host).then_some((3, domain.len()))
}

fn header_matches(m: &HeaderMatch, head: &RequestHead) -> bool {
    let headers = head.headers();
    match &m.value {
        Some(v) => headers.get_all(&m.name).any(|x| x == v.as_bytes()),
        None => headers.contains(&m.name) == m.present,
    }
}

fn route_matches(route: &RouteConfig, path: &str, head: &RequestHead) -> bool {
    let path_ok = match &route.matcher.path {
        PathMatch::Prefix(p) => path.starts_with(p.as_str()),
        PathMatch::Exact(p) => path == p,
        PathMatch::Regex(r) => r.is_match(path),
    };
    path_ok && route.matcher.headers.iter().all(|m| header_matches(m, head))
}

impl Router {
    pub fn new(config: &HttpConfig) -> Self {
        Router { hosts: config.virtual_hosts.clone() }
    }

    /// The virtual host for `host`.
    pub fn virtual_host(&self, host: &str) -> Option<&VirtualHostConfig> {
        self.hosts
            .iter()
            .filter_map(|vh| vh.domains.iter().filter_map(|d| domain_score(d, host)).max().map(|s| (s, vh)))
            // The first of equally good hosts wins (max_by_key would take the last).
            .fold(None, |best: Option<((u8, usize), &VirtualHostConfig)>, (s, vh)| match best {
                Some((b, _)) if b >= s => best,
                _ => Some((s, vh)),
            })
            .map(|(_, vh)| vh)
    }

    /// The route for a request, with its position (virtual host, route) for stats.
    pub fn route(&self, head: &RequestHead) -> Option<(usize, &RouteConfig)> {
        let host = request_host(head);
        let vh = self.virtual_host(&host)?;
        let path = head.path();
        let vh_index = self.hosts.iter().position(|h| std::ptr::eq(h, vh)).unwrap_or(0);
        let route = vh.routes.iter().find(|r| route_matches(r, path, head))?;
        Some((vh_index, route))
    }

    /// Every route, in order (for per-route stats).
    pub fn routes(&self) -> impl Iterator<Item = &RouteConfig> {
        self.hosts.iter().flat_map(|vh| vh.routes.iter())
    }
}

/// Picks a cluster of a route by weight; `roll` is uniform in `0..total weight`.
pub fn pick_weighted(route: &RouteConfig, roll: u32) -> usize {
    let mut left = roll;
    for w in &route.clusters {
        if left < w.weight {
            return w.index;
        }
        left -= w.weight;
    }
    route.clusters.last().map_or(0, |w| w.index)
}

/// The total weight of a route's clusters.
pub fn total_weight(route: &RouteConfig) -> u32 {
    route.clusters.iter().map(|w| w.weight).fold(0u32, u32::saturating_add)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sluice_codecs::http1::H1Limits;

    use super::*;
    use crate::config::Config;

    fn head(text: &str) -> RequestHead {
        RequestHead::parse(Bytes::from(text.replace('\n', "\r\n")), &H1Limits::default()).unwrap()
    }

    fn config(http: &str) -> Config {
        let yaml = format!(
            "clusters:\n  - {{ name: a, endpoints: [\"127.0.0.1:1\"] }}\n  - {{ name: b, endpoints: [\"127.0.0.1:2\"] }}\n  - {{ name: c, endpoints: [\"127.0.0.1:3\"] }}\n\
             listeners:\n  - name: web\n    address: 127.0.0.1:0\n    protocol: http\n    cluster: a\n    http:\n{http}"
        );
        Config::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    fn routed(router: &Router, req: &str) -> Option<String> {
        router.route(&head(req)).map(|(_, r)| r.name.clone())
    }

    #[test]
    fn hosts_exact_then_suffix_then_prefix_then_any() {
        let c = config(
            "      virtual_hosts:\n\
             \x20       - { name: any, domains: [\"*\"], routes: [{ name: any, cluster: a }] }\n\
             \x20       - { name: pre, domains: [\"api.*\"], routes: [{ name: pre, cluster: a }] }\n\
             \x20       - { name: suf, domains: [\"*.example.com\"], routes: [{ name: suf, cluster: b }] }\n\
             \x20       - { name: longer, domains: [\"*.eu.example.com\"], routes: [{ name: longer, cluster: b }] }\n\
             \x20       - { name: exact, domains: [\"API.example.com\"], routes: [{ name: exact, cluster: c }] }\n",
        );
        let r = Router::new(c.listeners[0].http.as_ref().unwrap());
        assert_eq!(routed(&r, "GET / HTTP/1.1\nHost: api.example.com:8080\n\n").as_deref(), Some("exact"));
        assert_eq!(routed(&r, "GET / HTTP/1.1\nHost: www.example.com\n\n").as_deref(), Some("suf"));
        assert_eq!(routed(&r, "GET / HTTP/1.1\nHost: x.eu.example.com\n\n").as_deref(), Some("longer"));
        assert_eq!(routed(&r, "GET / HTTP/1.1\nHost: example.com\n\n").as_deref(), Some("any"));
        assert_eq!(routed(&r, "GET / HTTP/1.1\nHost: api.internal\n\n").as_deref(), Some("pre"));
        assert_eq!(routed(&r, "GET http://WWW.example.com/x HTTP/1.1\nHost: other\n\n").as_deref(), Some("suf"));
        assert_eq!(routed(&r, "GET / HTTP/1.0\n\n").as_deref(), Some("any"));
    }

    #[test]
    fn unmatched_host_or_path_has_no_route() {
        let c = config(
            "      virtual_hosts:\n        - { domains: [\"a.test\"], routes: [{ match: { prefix: /api }, cluster: a }] }\n",
        );
        let r = Router::new(c.listeners[0].http.as_ref().unwrap());
        assert!(routed(&r, "GET /api/x HTTP/1.1\nHost: b.test\n\n").is_none());
        assert!(routed(&r, "GET /other HTTP/1.1\nHost: a.test\n\n").is_none());
        assert_eq!(routed(&r, "GET /api/x?q=1 HTTP/1.1\nHost: a.test\n\n").as_deref(), Some("vh0/0"));
    }

    #[test]
    fn paths_prefix_exact_regex_and_headers_in_order() {
        let c = config(
            "      virtual_hosts:\n\
             \x20       - domains: [\"*\"]\n\
             \x20         routes:\n\
             \x20           - { name: exact, match: { path: /health }, cluster: a }\n\
             \x20           - { name: canary, match: { prefix: /api, headers: [{ name: X-Canary, value: \"1\" }] }, cluster: b }\n\
             \x20           - { name: traced, match: { prefix: /api, headers: [{ name: x-trace }] }, cluster: b }\n\
             \x20           - { name: untraced, match: { prefix: /api, headers: [{ name: x-trace, present: false }] }, cluster: a }\n\
             \x20           - { name: versioned, match: { regex: \"^/v[0-9]+/\" }, cluster: c }\n\
             \x20           - { name: rest, cluster: a }\n",
        );
        let r = Router::new(c.listeners[0].http.as_ref().unwrap());
        let at = |req: &str| routed(&r, req).unwrap();
        assert_eq!(at("GET /health HTTP/1.1\nHost: h\n\n"), "exact");
        assert_eq!(at("GET /health/x HTTP/1.1\nHost: h\n\n"), "rest");
        assert_eq!(at("GET /api/1 HTTP/1.1\nHost: h\nx-canary: 1\n\n"), "canary");
        assert_eq!(at("GET /api/1 HTTP/1.1\nHost: h\nx-canary: 2\nX-Trace: t\n\n"), "traced");
        assert_eq!(at("GET /api/1 HTTP/1.1\nHost: h\n\n"), "untraced");
        assert_eq!(at("GET /v2/items HTTP/1.1\nHost: h\n\n"), "versioned");
        assert_eq!(at("GET /v/items HTTP/1.1\nHost: h\n\n"), "rest");
    }

    #[test]
    fn weights_split_by_roll() {
        let c = config(
            "      virtual_hosts:\n        - { domains: [\"*\"], routes: [{ weighted_clusters: [{ cluster: a, weight: 90 }, { cluster: b, weight: 0 }, { cluster: c, weight: 10 }] }] }\n",
        );
        let route = &c.listeners[0].http.as_ref().unwrap().virtual_hosts[0].routes[0];
        assert_eq!(total_weight(route), 100);
        let picks: Vec<usize> = (0..100).map(|roll| pick_weighted(route, roll)).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 90);
        assert_eq!(picks.iter().filter(|&&i| i == 1).count(), 0);
        assert_eq!(picks.iter().filter(|&&i| i == 2).count(), 10);
    }

    #[test]
    fn no_http_block_routes_everything_to_the_listener_cluster() {
        let yaml = "clusters: [{ name: a, endpoints: [\"127.0.0.1:1\"] }]\nlisteners: [{ name: w, address: 127.0.0.1:0, protocol: http, cluster: a }]\n";
        let c = Config::from_yaml(yaml).unwrap();
        let r = Router::new(c.listeners[0].http.as_ref().unwrap());
        assert_eq!(routed(&r, "GET /x HTTP/1.1\nHost: anything\n\n").as_deref(), Some("default"));
    }
}
