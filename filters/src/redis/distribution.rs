//! How `mode: pool` spreads keys over a cluster's servers: ketama (twemproxy-compatible,
//! the default) or maglev (even shares, one-step lookups; Envoy redis_proxy's other
//! choice).

use super::ketama::{Ketama, KeyHash};
use super::maglev::Maglev;

/// A distribution as configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DistributionKind {
    Ketama,
    Maglev,
}

impl DistributionKind {
    pub fn parse(name: &str) -> Option<DistributionKind> {
        match name {
            "ketama" => Some(DistributionKind::Ketama),
            "maglev" => Some(DistributionKind::Maglev),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DistributionKind::Ketama => "ketama",
            DistributionKind::Maglev => "maglev",
        }
    }
}

/// A built distribution over servers named as their endpoints are written, each with its
/// weight.
#[derive(Clone, Debug)]
pub enum Distribution {
    Ketama(Ketama),
    Maglev(Maglev),
}

impl Distribution {
    pub fn new(kind: DistributionKind, endpoints: &[(String, u32)], hash: KeyHash) -> Distribution {
        match kind {
            DistributionKind::Ketama => {
                let servers: Vec<(String, u32)> =
                    endpoints.iter().map(|(e, weight)| (Ketama::server_name(e), *weight)).collect();
                Distribution::Ketama(Ketama::new(&servers, hash))
            }
            DistributionKind::Maglev => Distribution::Maglev(Maglev::new(endpoints, hash)),
        }
    }

    /// The server `key` belongs to (`None` without servers).
    pub fn server_for(&self, key: &[u8]) -> Option<usize> {
        match self {
            Distribution::Ketama(ring) => ring.server_for(key),
            Distribution::Maglev(table) => table.server_for(key),
        }
    }
}
