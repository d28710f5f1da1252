//! The `kafka:` block of a `protocol: kafka` listener, as written (`RawKafka`, serde with
//! `deny_unknown_fields`) and as validated (`KafkaConfig`).
//!
//! ```yaml
//! kafka:
//!   advertised_host: 127.0.0.1     # what clients are told; default: the listener's IP
//!   broker_ports: 19100-19199      # one listener per broker id, opened on demand
//!   max_frame_size: 100MiB         # the broker's socket.request.max.bytes
//!   max_topics: 256                # topics with their own byte/record series
//!   max_client_ids: 256            # client ids with their own request series
//!   max_in_flight: 1024            # requests awaiting responses per connection
//! ```
//!
//! Every broker address in a Metadata, FindCoordinator or DescribeCluster response is
//! replaced with `advertised_host` and a port on sluice: the listener's own port for the
//! broker of a one-endpoint cluster, else a port from `broker_ports` where sluice opens a
//! listener to that broker (see `crate::kafka_brokers`). Without `broker_ports`, a cluster
//! of several brokers is told the listener's own address for each of them (nothing bypasses
//! sluice, but requests may reach a broker that does not lead their partition).

use std::net::SocketAddr;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize, Serializer};
use sluice_codecs::kafka::MAX_FRAME_SIZE;

use super::raw::RawSize;
use super::units::parse_size;
use super::validate::Validator;

/// The most ports a `broker_ports` range may hold (each open one is a listener).
const MAX_BROKER_PORTS: u32 = 4096;
const MAX_LABELS_CAP: u64 = 10_000;
const MAX_IN_FLIGHT_CAP: u64 = 1 << 20;
/// 1 GiB: frames are held whole to be read.
const MAX_FRAME_CAP: u64 = 1 << 30;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    pub advertised_host: Option<String>,
    /// `"19100-19199"`, or a single port.
    pub broker_ports: Option<serde_json::Value>,
    pub max_frame_size: Option<RawSize>,
    pub max_topics: Option<u64>,
    pub max_client_ids: Option<u64>,
    pub max_in_flight: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KafkaConfig {
    pub advertised_host: String,
    #[serde(serialize_with = "ser_ports", skip_serializing_if = "Option::is_none")]
    pub broker_ports: Option<RangeInclusive<u16>>,
    pub max_frame_size: usize,
    pub max_topics: usize,
    pub max_client_ids: usize,
    pub max_in_flight: usize,
}

impl KafkaConfig {
    pub fn limits(&self) -> sluice_codecs::Limits {
        sluice_codecs::Limits { max_frame: self.max_frame_size, ..sluice_codecs::kafka::default_limits() }
    }
}

fn ser_ports<S: Serializer>(ports: &Option<RangeInclusive<u16>>, s: S) -> Result<S::Ok, S::Error> {
    match ports {
        Some(r) => s.collect_str(&format_args!("{}-{}", r.start(), r.end())),
        None => s.serialize_none(),
    }
}

fn parse_ports(value: &serde_json::Value) -> Result<RangeInclusive<u16>, String> {
    const HINT: &str = r#"expected a port range like "19100-19199""#;
    let port = |text: &str| text.trim().parse::<u16>().ok().filter(|p| *p > 0);
    let (start, end) = match value {
        serde_json::Value::Number(n) => {
            let p = n.as_u64().and_then(|n| u16::try_from(n).ok()).filter(|p| *p > 0).ok_or(HINT)?;
            (p, p)
        }
        serde_json::Value::String(s) => match s.split_once('-') {
            Some((a, b)) => (port(a).ok_or(HINT)?, port(b).ok_or(HINT)?),
            None => {
                let p = port(s).ok_or(HINT)?;
                (p, p)
            }
        },
        _ => return Err(HINT.into()),
    };
    if start > end {
        return Err(format!("{start}-{end}: the first port must not be above the last"));
    }
    if u32::from(end - start) + 1 > MAX_BROKER_PORTS {
        return Err(format!("at most {MAX_BROKER_PORTS} ports"));
    }
    Ok(start..=end)
}

impl Validator {
    pub(super) fn kafka(&mut self, path: &str, raw: Option<RawKafka>, address: SocketAddr) -> KafkaConfig {
        let raw = raw.unwrap_or_default();
        let advertised_host = match raw.advertised_host {
            Some(host) => {
                if host.is_empty() || host.len() > 253 || host.bytes().any(|b| b.is_ascii_whitespace() || b == b'/') {
                    self.error(
                        format!("{path}.advertised_host"),
                        "must be a host name or IP address clients can reach",
                    );
                }
                host
            }
            None if address.ip().is_unspecified() => {
                self.error(
                    format!("{path}.advertised_host"),
                    format!("required: the listener binds {}, which is no address a client can be told", address.ip()),
                );
                String::new()
            }
            None => address.ip().to_string(),
        };
        let broker_ports = raw.broker_ports.as_ref().and_then(|v| match parse_ports(v) {
            Ok(range) if range.contains(&address.port()) => {
                self.error(
                    format!("{path}.broker_ports"),
                    format!("includes the listener's own port {}", address.port()),
                );
                None
            }
            Ok(range) => Some(range),
            Err(e) => {
                self.error(format!("{path}.broker_ports"), e);
                None
            }
        });
        let max_frame_size = match raw.max_frame_size {
            None => MAX_FRAME_SIZE,
            Some(size) => {
                let parsed = match size {
                    RawSize::Bytes(n) => Ok(n),
                    RawSize::Text(text) => parse_size(&text),
                };
                match parsed {
                    Ok(n) if (1024..=MAX_FRAME_CAP).contains(&n) => n as usize,
                    Ok(_) => {
                        self.error(format!("{path}.max_frame_size"), "must be between 1KiB and 1GiB");
                        MAX_FRAME_SIZE
                    }
                    Err(e) => {
                        self.error(format!("{path}.max_frame_size"), e);
                        MAX_FRAME_SIZE
                    }
                }
            }
        };
        let mut count = |field: &str, value: Option<u64>, default: usize, cap: u64| match value {
            None => default,
            Some(n) if (1..=cap).contains(&n) => n as usize,
            Some(_) => {
                self.error(format!("{path}.{field}"), format!("must be between 1 and {cap}"));
                default
            }
        };
        let labels = sluice_filters::kafka::stats::DEFAULT_MAX_LABELS;
        let max_topics = count("max_topics", raw.max_topics, labels, MAX_LABELS_CAP);
        let max_client_ids = count("max_client_ids", raw.max_client_ids, labels, MAX_LABELS_CAP);
        let max_in_flight =
            count("max_in_flight", raw.max_in_flight, sluice_filters::kafka::DEFAULT_MAX_IN_FLIGHT, MAX_IN_FLIGHT_CAP);
        KafkaConfig { advertised_host, broker_ports, max_frame_size, max_topics, max_client_ids, max_in_flight }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(parse_ports(&serde_json::json!("19100-19199")), Ok(19100..=19199));
        assert_eq!(parse_ports(&serde_json::json!(19100)), Ok(19100..=19100));
        assert_eq!(parse_ports(&serde_json::json!("19100")), Ok(19100..=19100));
        assert!(parse_ports(&serde_json::json!("19199-19100")).is_err());
        assert!(parse_ports(&serde_json::json!("0-10")).is_err());
        assert!(parse_ports(&serde_json::json!("1-65535")).unwrap_err().contains("at most"));
        assert!(parse_ports(&serde_json::json!([1])).is_err());
    }
}
