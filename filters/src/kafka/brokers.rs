//! Broker addresses on sluice, and topic names by id.
//!
//! A client learns brokers from Metadata, FindCoordinator and DescribeCluster responses and
//! then connects to them directly; a gateway that must not be bypassed tells it an address
//! of its own for each broker instead. [`BrokerDirectory`] is that mapping: the runtime
//! implements it (reusing the bootstrap listener for a one-endpoint cluster's broker,
//! opening a listener per other broker id from the configured port range), the filter asks
//! it for every broker a response names. It is consulted only on those responses, never
//! per produced or fetched frame.
//!
//! [`TopicNames`]: topic ids (KIP-516) as Metadata responses name them, so Fetch v13+ and
//! Produce v13+ (which carry ids only) are counted and matched by topic name.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::stats::{read, write};

/// Where clients reach each broker through sluice.
pub trait BrokerDirectory: Send + Sync {
    /// The host and port clients are told for broker `node_id`, whose real address is
    /// `host:port`. Never the real address: an implementation that cannot give the broker
    /// an address of its own answers one that still goes through sluice.
    fn advertise(&self, node_id: i32, host: &str, port: i32) -> (Arc<str>, i32);
}

/// A directory that answers one address for every broker: right for a one-broker cluster
/// behind one listener, and for tests.
pub struct SingleAddress {
    pub host: Arc<str>,
    pub port: i32,
}

impl BrokerDirectory for SingleAddress {
    fn advertise(&self, _node_id: i32, _host: &str, _port: i32) -> (Arc<str>, i32) {
        (self.host.clone(), self.port)
    }
}

/// Topic ids kept at most (a cluster with more topics names the rest `other` when only ids
/// are sent).
const MAX_TOPIC_IDS: usize = 100_000;

/// Topic names by id, learnt from Metadata responses.
#[derive(Default)]
pub struct TopicNames {
    names: RwLock<HashMap<[u8; 16], Arc<str>>>,
}

impl TopicNames {
    pub fn learn(&self, id: [u8; 16], name: &str) {
        if id == [0; 16] || read(&self.names).get(&id).is_some_and(|n| &**n == name) {
            return;
        }
        let mut names = write(&self.names);
        if names.len() < MAX_TOPIC_IDS || names.contains_key(&id) {
            names.insert(id, name.into());
        }
    }

    pub fn get(&self, id: &[u8; 16]) -> Option<Arc<str>> {
        read(&self.names).get(id).cloned()
    }
}
