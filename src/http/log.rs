//! The access log of an `http` listener: one JSON line per request (not per connection),
//! through the listener's `access_log` writer thread.

use std::net::SocketAddr;

use serde::Serialize;

#[derive(Serialize)]
pub struct RequestLine<'a> {
    pub time: String,
    pub listener: &'a str,
    pub protocol: &'static str,
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
