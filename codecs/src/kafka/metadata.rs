//! Metadata (api key 3) requests and responses, v0-12, and the broker address rewrite.
//!
//! Spec: "Metadata API" (<https://kafka.apache.org/protocol#The_Messages_Metadata>) and
//! `MetadataRequest.json` / `MetadataResponse.json`: rack and controller from v1, cluster id
//! v2, throttle time v3, offline replicas v5, leader epoch v7, authorized operations v8
//! (cluster-level only through v10), flexible from v9 (KIP-482), topic ids from v10
//! (KIP-516), nullable topic names in responses from v12.
//!
//! ```text
//! Request  => [topic_id (v10+) name] (null = all, v1+) allow_auto_topic_creation (v4+)
//!             include_cluster_authorized_operations (v8-10) include_topic_authorized_operations (v8+)
//! Response => throttle_time_ms (v3+) [node_id host port rack (v1+)] cluster_id (v2+)
//!             controller_id (v1+) [error_code name topic_id (v10+) is_internal (v1+)
//!             [error_code partition_index leader_id leader_epoch (v7+) [replica] [isr]
//!              [offline] (v5+)] topic_authorized_operations (v8+)]
//!             cluster_authorized_operations (v8-10)
//! ```
//!
//! [`rewrite_metadata_brokers`] replaces each broker's host and port (see [`super::address`]).

use bytes::Bytes;

use super::address::{read_host_port, splice, Broker, Spans};
use super::api::ApiKey;
use super::error::KafkaError;
use super::reader::Reader;

/// The highest Metadata version decoded.
pub const MAX_VERSION: i16 = 12;

fn check_version(version: i16) -> Result<bool, KafkaError> {
    if !(0..=MAX_VERSION).contains(&version) {
        return Err(KafkaError::UnsupportedVersion { api: ApiKey::METADATA, version });
    }
    Ok(version >= 9)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataRequest<'a> {
    /// `None`: every topic (a null array, v1+). v0's empty array also means every topic.
    pub topics: Option<Vec<MetadataRequestTopic<'a>>>,
    pub allow_auto_topic_creation: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataRequestTopic<'a> {
    /// v10+ (all zero when asking by name).
    pub topic_id: Option<[u8; 16]>,
    pub name: Option<&'a str>,
}

impl<'a> MetadataRequest<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        let flexible = check_version(version)?;
        let mut r = Reader::new(body);
        let topics = match r.nullable_array(flexible, 2, "metadata topics")? {
            None if version >= 1 => None,
            None => return Err(KafkaError::Malformed { what: "metadata topics" }),
            Some(n) => {
                let mut topics = Vec::new();
                for _ in 0..n {
                    let topic_id = if version >= 10 { Some(r.uuid("metadata topic_id")?) } else { None };
                    let name = if version >= 10 {
                        r.nullable_string(flexible, "metadata topic name")?
                    } else {
                        Some(r.string(flexible, "metadata topic name")?)
                    };
                    r.tags_if(flexible, "metadata topic tagged fields")?;
                    topics.push(MetadataRequestTopic { topic_id, name });
                }
                Some(topics)
            }
        };
        let allow_auto_topic_creation = if version >= 4 { r.bool("metadata allow_auto_topic_creation")? } else { true };
        if (8..=10).contains(&version) {
            r.bool("metadata include_cluster_authorized_operations")?;
        }
        if version >= 8 {
            r.bool("metadata include_topic_authorized_operations")?;
        }
        r.tags_if(flexible, "metadata tagged fields")?;
        Ok(MetadataRequest { topics, allow_auto_topic_creation })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataResponse<'a> {
    pub throttle_time_ms: i32,
    pub brokers: Vec<Broker<'a>>,
    pub cluster_id: Option<&'a str>,
    pub controller_id: i32,
    pub topics: Vec<MetadataTopic<'a>>,
    spans: Spans,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataTopic<'a> {
    pub error_code: i16,
    /// Nullable from v12 (a topic asked for by id that does not exist).
    pub name: Option<&'a str>,
    /// v10+.
    pub topic_id: Option<[u8; 16]>,
    pub is_internal: bool,
    pub partitions: Vec<MetadataPartition>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataPartition {
    pub error_code: i16,
    pub partition_index: i32,
    pub leader_id: i32,
    /// v7+ (-1 before).
    pub leader_epoch: i32,
    pub replicas: usize,
    pub isr: usize,
}

impl<'a> MetadataResponse<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        let flexible = check_version(version)?;
        let mut r = Reader::new(body);
        let throttle_time_ms = if version >= 3 { r.i32("metadata throttle_time_ms")? } else { 0 };
        let nb = r.array_len(flexible, 9, "metadata brokers")?;
        let mut brokers = Vec::new();
        let mut spans = Spans::default();
        for _ in 0..nb {
            let node_id = r.i32("metadata broker node_id")?;
            let (host, port) = read_host_port(&mut r, flexible, &mut spans, "metadata broker host/port")?;
            let rack = if version >= 1 { r.nullable_string(flexible, "metadata broker rack")? } else { None };
            r.tags_if(flexible, "metadata broker tagged fields")?;
            brokers.push(Broker { node_id, host, port, rack });
        }
        let cluster_id = if version >= 2 { r.nullable_string(flexible, "metadata cluster_id")? } else { None };
        let controller_id = if version >= 1 { r.i32("metadata controller_id")? } else { -1 };
        let nt = r.array_len(flexible, 6, "metadata topics")?;
        let mut topics = Vec::new();
        for _ in 0..nt {
            let error_code = r.i16("metadata topic error_code")?;
            let name = if version >= 12 {
                r.nullable_string(flexible, "metadata topic name")?
            } else {
                Some(r.string(flexible, "metadata topic name")?)
            };
            let topic_id = if version >= 10 { Some(r.uuid("metadata topic_id")?) } else { None };
            let is_internal = if version >= 1 { r.bool("metadata topic is_internal")? } else { false };
            let np = r.array_len(flexible, 12, "metadata partitions")?;
            let mut partitions = Vec::new();
            for _ in 0..np {
                let error_code = r.i16("metadata partition error_code")?;
                let partition_index = r.i32("metadata partition_index")?;
                let leader_id = r.i32("metadata leader_id")?;
                let leader_epoch = if version >= 7 { r.i32("metadata leader_epoch")? } else { -1 };
                let replicas = r.skip_array(flexible, 4, "metadata replica_nodes")?;
                let isr = r.skip_array(flexible, 4, "metadata isr_nodes")?;
                if version >= 5 {
                    r.skip_array(flexible, 4, "metadata offline_replicas")?;
                }
                r.tags_if(flexible, "metadata partition tagged fields")?;
                partitions.push(MetadataPartition {
                    error_code,
                    partition_index,
                    leader_id,
                    leader_epoch,
                    replicas,
                    isr,
                });
            }
            if version >= 8 {
                r.i32("metadata topic_authorized_operations")?;
            }
            r.tags_if(flexible, "metadata topic tagged fields")?;
            topics.push(MetadataTopic { error_code, name, topic_id, is_internal, partitions });
        }
        if (8..=10).contains(&version) {
            r.i32("metadata cluster_authorized_operations")?;
        }
        r.tags_if(flexible, "metadata tagged fields")?;
        r.finish("metadata response")?;
        Ok(MetadataResponse { throttle_time_ms, brokers, cluster_id, controller_id, topics, spans })
    }

    /// The topic id → name pairs this response teaches (Fetch v13+ names topics by id).
    pub fn topic_ids(&self) -> impl Iterator<Item = ([u8; 16], &'a str)> + '_ {
        self.topics.iter().filter_map(|t| Some((t.topic_id?, t.name?)))
    }
}

/// Re-encodes a Metadata response body with each broker's host and port replaced by
/// `f(node_id, host, port)`; every other byte is copied unchanged.
pub fn rewrite_metadata_brokers<F>(body: &[u8], version: i16, f: F) -> Result<Bytes, KafkaError>
where
    F: FnMut(i32, &str, i32) -> (String, i32),
{
    let m = MetadataResponse::parse(body, version)?;
    let entries: Vec<_> = m.brokers.iter().copied().zip(m.spans.0.iter().copied()).collect();
    splice(body, &entries, version >= 9, f)
}
