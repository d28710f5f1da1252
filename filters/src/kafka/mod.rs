//! Kafka: the `kafka` protocol filter. The filter (`filter`) frames each direction with the
//! codec (`sluice_codecs::kafka`), reads every request (`inspect`) into an op — `op` the API
//! name, `target` each topic it names, `client_id` from the request header, `user` the SASL
//! PLAIN principal where visible — applies the listener's rules (deny by API, quotas in
//! requests or bytes with `reject` or `delay`), matches responses to requests with the
//! codec's `Correlator` (by correlation id, in order) and counts and times each op with the
//! outcome its error codes give. Responses that name brokers (Metadata, FindCoordinator,
//! DescribeCluster) are rewritten (`brokers`) so every broker address a client learns is
//! one on sluice; ApiVersions responses are capped (`versions`) below the Produce and
//! Fetch versions whose responses may carry broker endpoints in tagged fields (KIP-951), and
//! at the last versions of the rewritten responses the codec decodes.
//! `stats` holds the per-listener counters; `errors` names error codes.
//!
//! Spec: the Kafka protocol guide (<https://kafka.apache.org/protocol>), KIP-482 (flexible
//! versions), KIP-511 (ApiVersions v3), KIP-43/KIP-152 (SASL), KIP-219 (throttle_time_ms is
//! sent before the broker throttles), KIP-599 (THROTTLING_QUOTA_EXCEEDED), KIP-951 (leader
//! discovery in Produce/Fetch responses).

mod brokers;
pub mod errors;
mod filter;
mod inspect;
pub mod stats;
mod versions;

use std::sync::Arc;

use sluice_codecs::Limits;

pub use brokers::{BrokerDirectory, SingleAddress, TopicNames};
pub use filter::KafkaFilter;

use crate::policy::RuleSet;

/// Requests awaiting responses on one connection before its client is no longer read
/// (librdkafka's `max.in.flight` is 1,000,000 by default but it rarely has more than a few
/// per broker; the Java client's is 5).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// What every connection of one `kafka` listener (and of the per-broker listeners it
/// opened) shares.
pub struct KafkaListener {
    pub name: Arc<str>,
    pub rules: Arc<RuleSet>,
    pub stats: stats::KafkaStats,
    /// `max_frame`: the largest request or response (the broker's `socket.request.max.bytes`
    /// by default).
    pub limits: Limits,
    pub max_in_flight: usize,
    /// Where brokers are on sluice: consulted for every broker a response names.
    pub brokers: Arc<dyn BrokerDirectory>,
    /// Topic ids seen in Metadata responses, to name the topics of requests and responses
    /// that carry only ids (Fetch v13+, Produce v13+).
    pub topic_names: TopicNames,
}

impl KafkaListener {
    /// Whether the filter acts on requests (and so must fail closed).
    pub fn enforces(&self) -> bool {
        !self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests;
