//! The admin HTTP server: `/metrics` (Prometheus text), `/stats` (the same samples as
//! JSON, plus listeners), `/clusters`, `/config_dump`, `/queries` (SQL statement digests),
//! `/ready` and `/healthz`.
//!
//! It serves a handful of small GET requests per scrape, so it is a minimal HTTP/1.1
//! server over `httparse` (one request per connection, `Connection: close`) rather than
//! a full HTTP stack; request heads are capped at 16 KiB and must arrive within 5 s.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};
use sluice_filters::sql::{DigestOrder, DigestRow};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::server::Shared;

const MAX_HEAD: usize = 16 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Digests `/queries` lists when not asked for a number.
const DEFAULT_TOP_QUERIES: usize = 20;

pub async fn serve(listener: TcpListener, shared: Arc<Shared>, prometheus: &'static PrometheusHandle) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle(stream, shared.clone(), prometheus));
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Self {
        Response { status, content_type: "text/plain; charset=utf-8", body: body.into() }
    }

    fn json(value: &Value) -> Self {
        let mut body = serde_json::to_string_pretty(value).unwrap_or_default();
        body.push('\n');
        Response { status: 200, content_type: "application/json", body }
    }
}

async fn handle(mut stream: TcpStream, shared: Arc<Shared>, prometheus: &'static PrometheusHandle) {
    let mut buf = Vec::with_capacity(1024);
    let request = tokio::time::timeout(READ_TIMEOUT, async {
        loop {
            let mut chunk = [0u8; 2048];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(_)) => {
                    return Some(Ok((req.method.unwrap_or("").to_string(), req.path.unwrap_or("").to_string())));
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => return Some(Err(Response::text(431, "request head too large\n"))),
                Err(e) => return Some(Err(Response::text(400, format!("bad request: {e}\n")))),
            }
        }
    })
    .await;
    let response = match request {
        Ok(Some(Ok((method, path)))) => route(&method, &path, &shared, prometheus),
        Ok(Some(Err(response))) => response,
        Ok(None) | Err(_) => return,
    };
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(response.body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn route(method: &str, target: &str, shared: &Shared, prometheus: &PrometheusHandle) -> Response {
    if method != "GET" && method != "HEAD" {
        return Response::text(405, "only GET is supported\n");
    }
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/metrics" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: crate::telemetry::render(prometheus),
        },
        "/stats" => Response::json(&stats(shared, &crate::telemetry::render(prometheus))),
        "/clusters" => Response::json(&json!({
            "clusters": shared.clusters.iter().map(|c| c.snapshot()).collect::<Vec<_>>()
        })),
        "/config_dump" => Response::json(&serde_json::to_value(&shared.config).unwrap_or(Value::Null)),
        "/ready" if shared.draining.load(Ordering::Acquire) => Response::text(503, "draining\n"),
        "/ready" => Response::text(200, "ready\n"),
        "/healthz" => Response::text(200, "ok\n"),
        "/queries" => queries(shared, target),
        "/" => Response::text(200, "sluice admin: /metrics /stats /clusters /config_dump /queries /ready /healthz\n"),
        _ => Response::text(404, "not found\n"),
    }
}

/// `/queries?listener=NAME&top=N&order=count|total_latency`: the statement digests of SQL
/// listeners, busiest first (all SQL listeners unless one is named; top 20 by default).
fn queries(shared: &Shared, target: &str) -> Response {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let param = |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='));
    let top = match param("top").map(str::parse::<usize>) {
        None => DEFAULT_TOP_QUERIES,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Response::text(400, "top: expected a number\n"),
    };
    let order = match param("order") {
        None | Some("count") => DigestOrder::Count,
        Some("total_latency") => DigestOrder::TotalLatency,
        Some(other) => return Response::text(400, format!("order: expected count or total_latency, not {other:?}\n")),
    };
    let wanted = param("listener");
    let mut found = false;
    let listeners: Vec<Value> = shared
        .listeners
        .iter()
        .filter(|(l, _)| wanted.is_none_or(|name| *l.name == *name))
        .filter_map(|(l, _)| {
            found = true;
            let digests = l.digests()?;
            let row = |r: &DigestRow| {
                json!({
                    "digest": &*r.digest_text,
                    "digest_hash": format!("{:016x}", r.digest_hash),
                    "op": r.verb.as_str(),
                    "tables": r.tables.iter().map(|t| &**t).collect::<Vec<_>>(),
                    "count": r.count,
                    "errors": r.errors,
                    "rows": r.rows,
                    "total_latency_ms": r.total_latency.as_secs_f64() * 1e3,
                    "mean_latency_ms": r.total_latency.as_secs_f64() * 1e3 / r.count.max(1) as f64,
                    "max_latency_ms": r.max_latency.as_secs_f64() * 1e3,
                })
            };
            let rows: Vec<Value> = digests.top(top, order).iter().map(row).collect();
            let other = digests.overflow();
            Some(json!({
                "listener": &*l.name,
                "protocol": l.protocol().as_str(),
                "digests": digests.len(),
                "queries": rows,
                "other": (other.count > 0).then(|| row(&other)),
            }))
        })
        .collect();
    if !found {
        return Response::text(404, format!("no listener {:?}\n", wanted.unwrap_or_default()));
    }
    Response::json(&json!({ "listeners": listeners }))
}

fn stats(shared: &Shared, exposition: &str) -> Value {
    let listeners: Vec<Value> = shared
        .listeners
        .iter()
        .map(|(l, addr)| {
            json!({
                "name": &*l.name,
                "protocol": l.protocol().as_str(),
                "address": addr,
                "cluster": l.cluster.config.name,
                "active_connections": l.active_connections(),
            })
        })
        .collect();
    json!({ "listeners": listeners, "metrics": exposition_to_json(exposition) })
}

/// Turns Prometheus text exposition into `{name: [{labels: {..}, value: n}, ..]}`.
pub fn exposition_to_json(text: &str) -> Value {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
            None => (series, BTreeMap::new()),
        };
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or(f64::NAN),
        };
        out.entry(name.to_string()).or_default().push(json!({ "labels": labels, "value": value }));
    }
    serde_json::to_value(out).unwrap_or(Value::Null)
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_becomes_json() {
        let text = "# HELP x\n# TYPE sluice_ops_total counter\nsluice_ops_total{listener=\"a\",op=\"co\\\"n,nect\"} 3\nup 1\nh_bucket{le=\"+Inf\"} 2\n";
        let v = exposition_to_json(text);
        assert_eq!(v["sluice_ops_total"][0]["labels"]["op"], "co\"n,nect");
        assert_eq!(v["sluice_ops_total"][0]["labels"]["listener"], "a");
        assert_eq!(v["sluice_ops_total"][0]["value"], 3.0);
        assert_eq!(v["up"][0]["value"], 1.0);
        assert_eq!(v["h_bucket"][0]["labels"]["le"], "+Inf");
    }
}
