//! Metrics and logs: installs the Prometheus recorder (metrics-exporter-prometheus, no HTTP
//! listener of its own: the admin server serves `/metrics`), names and describes the
//! runtime's metrics, and holds the per-listener handles the data path updates with one
//! atomic operation each.

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sluice_filters::latency::LATENCY_BUCKETS;
use sluice_filters::Protocol;

pub const DOWNSTREAM_CONNECTIONS_TOTAL: &str = "sluice_downstream_connections_total";
pub const DOWNSTREAM_CONNECTIONS_ACTIVE: &str = "sluice_downstream_connections_active";
pub const DOWNSTREAM_BYTES_TOTAL: &str = "sluice_downstream_bytes_total";
pub const DOWNSTREAM_REJECTED_TOTAL: &str = "sluice_downstream_connections_rejected_total";
pub const UPSTREAM_CONNECT_ERRORS_TOTAL: &str = "sluice_upstream_connect_errors_total";
pub const UPSTREAM_CONNECTIONS_ACTIVE: &str = "sluice_upstream_connections_active";
pub const UPSTREAM_CONNECTIONS_TOTAL: &str = "sluice_upstream_connections_total";
pub const UDP_SESSIONS_ACTIVE: &str = "sluice_udp_sessions_active";
pub const UDP_DATAGRAMS_TOTAL: &str = "sluice_udp_datagrams_total";
pub const UDP_DATAGRAMS_DROPPED_TOTAL: &str = "sluice_udp_datagrams_dropped_total";
pub const TLS_HANDSHAKES_TOTAL: &str = "sluice_tls_handshakes_total";
pub const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "sluice_tls_handshake_failures_total";
pub const TLS_RELOADS_TOTAL: &str = "sluice_tls_reloads_total";

/// Installs the process-wide recorder once and returns its handle (tests start several
/// servers in one process; they share it).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .expect("bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        handle
    })
}

/// The whole exposition: the exporter's metrics and sluice's own op latency histograms.
pub fn render(prometheus: &PrometheusHandle) -> String {
    let mut out = prometheus.render();
    sluice_filters::latency::render(&mut out);
    sluice_filters::sql::stats::render(&mut out);
    out
}

fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        DOWNSTREAM_CONNECTIONS_TOTAL,
        Unit::Count,
        "Client connections accepted (TCP) or sessions started (UDP)."
    );
    describe_gauge!(DOWNSTREAM_CONNECTIONS_ACTIVE, Unit::Count, "Client connections open now.");
    describe_counter!(DOWNSTREAM_BYTES_TOTAL, Unit::Bytes, "Bytes received from (rx) and sent to (tx) clients.");
    describe_counter!(
        DOWNSTREAM_REJECTED_TOTAL,
        Unit::Count,
        "Client connections refused before reaching a cluster, by reason."
    );
    describe_counter!(UPSTREAM_CONNECT_ERRORS_TOTAL, Unit::Count, "Failed upstream connection attempts, by reason.");
    describe_gauge!(UPSTREAM_CONNECTIONS_ACTIVE, Unit::Count, "Upstream connections (or UDP sessions) open now.");
    describe_counter!(UPSTREAM_CONNECTIONS_TOTAL, Unit::Count, "Upstream connections (or UDP sessions) opened.");
    describe_gauge!(UDP_SESSIONS_ACTIVE, Unit::Count, "UDP client sessions open now.");
    describe_counter!(UDP_DATAGRAMS_TOTAL, Unit::Count, "UDP datagrams received from (rx) and sent to (tx) clients.");
    describe_counter!(UDP_DATAGRAMS_DROPPED_TOTAL, Unit::Count, "UDP datagrams dropped, by reason.");
    describe_counter!(TLS_HANDSHAKES_TOTAL, Unit::Count, "TLS handshakes completed, by side, version and ALPN.");
    describe_counter!(TLS_HANDSHAKE_FAILURES_TOTAL, Unit::Count, "TLS handshakes that failed, by side and reason.");
    describe_counter!(
        TLS_RELOADS_TOTAL,
        Unit::Count,
        "Reloads of a listener's certificates after their files changed."
    );
    sluice_filters::stats::describe();
    sluice_filters::redis::stats::describe();
    sluice_filters::mysql::stats::describe();
    sluice_filters::postgres::stats::describe();
    crate::redis_pool::stats::describe();
    sluice_filters::mongodb::stats::describe();
    sluice_filters::kafka::stats::describe();
    crate::http::stats::describe();
}

/// TLS handshakes of one listener, on either side of its connections (`side`:
/// `downstream` where sluice terminates TLS, `upstream` where it originates it), and the
/// reloads of its certificates. Handles are looked up per handshake: a handshake costs far
/// more than the lookup, and the label values are bounded (two versions, the configured
/// ALPN protocols, a fixed list of failure reasons).
pub struct TlsStats {
    listener: String,
}

impl TlsStats {
    pub fn new(listener: &str) -> Self {
        TlsStats { listener: listener.to_owned() }
    }

    pub fn handshake(&self, side: &'static str, version: &'static str, alpn: String) {
        let l = self.listener.clone();
        metrics::counter!(TLS_HANDSHAKES_TOTAL, "listener" => l, "side" => side, "version" => version, "alpn" => alpn)
            .increment(1);
    }

    pub fn failure(&self, side: &'static str, reason: &'static str) {
        let l = self.listener.clone();
        metrics::counter!(TLS_HANDSHAKE_FAILURES_TOTAL, "listener" => l, "side" => side, "reason" => reason)
            .increment(1);
    }

    pub fn reload(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        metrics::counter!(TLS_RELOADS_TOTAL, "listener" => self.listener.clone(), "outcome" => outcome).increment(1);
    }
}

/// Why a connection was refused before reaching its cluster.
#[derive(Clone, Copy, Debug)]
pub enum Rejection {
    MaxConnections,
    Denied,
    RateLimited,
}

/// The handles of one listener.
pub struct ListenerStats {
    pub connections_total: Counter,
    pub connections_active: Gauge,
    pub bytes_rx: Counter,
    pub bytes_tx: Counter,
    rejected: [Counter; 3],
    pub udp: Option<UdpStats>,
    pub tls: TlsStats,
}

pub struct UdpStats {
    pub sessions_active: Gauge,
    pub datagrams_rx: Counter,
    pub datagrams_tx: Counter,
    pub dropped_denied: Counter,
    pub dropped_limited: Counter,
    pub dropped_send_error: Counter,
}

impl ListenerStats {
    pub fn new(listener: &str, protocol: Protocol) -> Self {
        let l = || listener.to_owned();
        let rejected =
            |reason: &'static str| metrics::counter!(DOWNSTREAM_REJECTED_TOTAL, "listener" => l(), "reason" => reason);
        let dropped = |reason: &'static str| metrics::counter!(UDP_DATAGRAMS_DROPPED_TOTAL, "listener" => l(), "reason" => reason);
        ListenerStats {
            connections_total: metrics::counter!(DOWNSTREAM_CONNECTIONS_TOTAL, "listener" => l()),
            connections_active: metrics::gauge!(DOWNSTREAM_CONNECTIONS_ACTIVE, "listener" => l()),
            bytes_rx: metrics::counter!(DOWNSTREAM_BYTES_TOTAL, "listener" => l(), "direction" => "rx"),
            bytes_tx: metrics::counter!(DOWNSTREAM_BYTES_TOTAL, "listener" => l(), "direction" => "tx"),
            rejected: [rejected("max_connections"), rejected("denied"), rejected("rate_limited")],
            tls: TlsStats::new(listener),
            udp: (protocol == Protocol::Udp).then(|| UdpStats {
                sessions_active: metrics::gauge!(UDP_SESSIONS_ACTIVE, "listener" => l()),
                datagrams_rx: metrics::counter!(UDP_DATAGRAMS_TOTAL, "listener" => l(), "direction" => "rx"),
                datagrams_tx: metrics::counter!(UDP_DATAGRAMS_TOTAL, "listener" => l(), "direction" => "tx"),
                dropped_denied: dropped("denied"),
                dropped_limited: dropped("limited"),
                dropped_send_error: dropped("send_error"),
            }),
        }
    }

    pub fn rejected(&self, why: Rejection) {
        self.rejected[why as usize].increment(1);
    }
}
