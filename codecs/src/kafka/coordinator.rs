//! FindCoordinator (api key 10, v0-6) and DescribeCluster (api key 60, v0-2): the other two
//! responses that carry broker addresses, with their rewrites.
//!
//! Spec: "FindCoordinator API" and "DescribeCluster API"
//! (<https://kafka.apache.org/protocol#The_Messages_FindCoordinator>,
//! <https://kafka.apache.org/protocol#The_Messages_DescribeCluster>),
//! `FindCoordinator{Request,Response}.json` (key_type v1+, flexible v3+, batched lookups with
//! a `coordinators` array from v4, KIP-699) and `DescribeCluster{Request,Response}.json`
//! (KIP-700; always flexible; endpoint_type v1+, is_fenced v2+).
//!
//! ```text
//! FindCoordinator Request  => key (v0-3) key_type:int8 (v1+) [coordinator_keys] (v4+)
//! FindCoordinator Response => throttle_time_ms (v1+)
//!     v0-3: error_code error_message (v1+) node_id host port
//!     v4+:  [key node_id host port error_code error_message]
//! DescribeCluster Response => throttle_time_ms error_code error_message endpoint_type (v1+)
//!     cluster_id controller_id [broker_id host port rack is_fenced (v2+)]
//!     cluster_authorized_operations
//! ```

use bytes::Bytes;

use super::address::{read_host_port, splice, Broker, Spans};
use super::api::ApiKey;
use super::error::KafkaError;
use super::reader::Reader;

/// The highest FindCoordinator version decoded.
pub const FIND_COORDINATOR_MAX_VERSION: i16 = 6;
/// The highest DescribeCluster version decoded.
pub const DESCRIBE_CLUSTER_MAX_VERSION: i16 = 2;

fn check_find(version: i16) -> Result<bool, KafkaError> {
    if !(0..=FIND_COORDINATOR_MAX_VERSION).contains(&version) {
        return Err(KafkaError::UnsupportedVersion { api: ApiKey::FIND_COORDINATOR, version });
    }
    Ok(version >= 3)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindCoordinatorRequest<'a> {
    /// 0: group, 1: transaction, 2: share (v6).
    pub key_type: i8,
    /// One key before v4, a batch from v4.
    pub keys: Vec<&'a str>,
}

impl<'a> FindCoordinatorRequest<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        let flexible = check_find(version)?;
        let mut r = Reader::new(body);
        let mut keys = Vec::new();
        if version <= 3 {
            keys.push(r.string(flexible, "find_coordinator key")?);
        }
        let key_type = if version >= 1 { r.i8("find_coordinator key_type")? } else { 0 };
        if version >= 4 {
            let n = r.array_len(flexible, 1, "find_coordinator coordinator_keys")?;
            for _ in 0..n {
                keys.push(r.string(flexible, "find_coordinator coordinator_key")?);
            }
        }
        r.tags_if(flexible, "find_coordinator tagged fields")?;
        Ok(FindCoordinatorRequest { key_type, keys })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindCoordinatorResponse<'a> {
    pub throttle_time_ms: i32,
    /// One entry before v4 (its `key` is `None`), one per key asked from v4.
    pub coordinators: Vec<Coordinator<'a>>,
    spans: Spans,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coordinator<'a> {
    pub key: Option<&'a str>,
    pub broker: Broker<'a>,
    pub error_code: i16,
    pub error_message: Option<&'a str>,
}

impl<'a> FindCoordinatorResponse<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        let flexible = check_find(version)?;
        let mut r = Reader::new(body);
        let throttle_time_ms = if version >= 1 { r.i32("find_coordinator throttle_time_ms")? } else { 0 };
        let mut spans = Spans::default();
        let mut coordinators = Vec::new();
        if version <= 3 {
            let error_code = r.i16("find_coordinator error_code")?;
            let error_message =
                if version >= 1 { r.nullable_string(flexible, "find_coordinator error_message")? } else { None };
            let node_id = r.i32("find_coordinator node_id")?;
            let (host, port) = read_host_port(&mut r, flexible, &mut spans, "find_coordinator host/port")?;
            let broker = Broker { node_id, host, port, rack: None };
            coordinators.push(Coordinator { key: None, broker, error_code, error_message });
        } else {
            let n = r.array_len(flexible, 13, "find_coordinator coordinators")?;
            for _ in 0..n {
                let key = r.string(flexible, "find_coordinator key")?;
                let node_id = r.i32("find_coordinator node_id")?;
                let (host, port) = read_host_port(&mut r, flexible, &mut spans, "find_coordinator host/port")?;
                let error_code = r.i16("find_coordinator error_code")?;
                let error_message = r.nullable_string(flexible, "find_coordinator error_message")?;
                r.tags_if(flexible, "find_coordinator coordinator tagged fields")?;
                let broker = Broker { node_id, host, port, rack: None };
                coordinators.push(Coordinator { key: Some(key), broker, error_code, error_message });
            }
        }
        r.tags_if(flexible, "find_coordinator tagged fields")?;
        r.finish("find_coordinator response")?;
        Ok(FindCoordinatorResponse { throttle_time_ms, coordinators, spans })
    }
}

/// Re-encodes a FindCoordinator response body with each coordinator's host and port
/// replaced by `f(node_id, host, port)` (entries with node id -1 are left alone).
pub fn rewrite_find_coordinator<F>(body: &[u8], version: i16, f: F) -> Result<Bytes, KafkaError>
where
    F: FnMut(i32, &str, i32) -> (String, i32),
{
    let c = FindCoordinatorResponse::parse(body, version)?;
    let entries: Vec<_> = c.coordinators.iter().map(|c| c.broker).zip(c.spans.0.iter().copied()).collect();
    splice(body, &entries, version >= 3, f)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribeClusterResponse<'a> {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub error_message: Option<&'a str>,
    /// v1+: 1 brokers, 2 controllers.
    pub endpoint_type: i8,
    pub cluster_id: &'a str,
    pub controller_id: i32,
    pub brokers: Vec<Broker<'a>>,
    pub cluster_authorized_operations: i32,
    spans: Spans,
}

impl<'a> DescribeClusterResponse<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        if !(0..=DESCRIBE_CLUSTER_MAX_VERSION).contains(&version) {
            return Err(KafkaError::UnsupportedVersion { api: ApiKey::DESCRIBE_CLUSTER, version });
        }
        let mut r = Reader::new(body);
        let throttle_time_ms = r.i32("describe_cluster throttle_time_ms")?;
        let error_code = r.i16("describe_cluster error_code")?;
        let error_message = r.nullable_string(true, "describe_cluster error_message")?;
        let endpoint_type = if version >= 1 { r.i8("describe_cluster endpoint_type")? } else { 1 };
        let cluster_id = r.string(true, "describe_cluster cluster_id")?;
        let controller_id = r.i32("describe_cluster controller_id")?;
        let n = r.array_len(true, 11, "describe_cluster brokers")?;
        let mut brokers = Vec::new();
        let mut spans = Spans::default();
        for _ in 0..n {
            let node_id = r.i32("describe_cluster broker_id")?;
            let (host, port) = read_host_port(&mut r, true, &mut spans, "describe_cluster host/port")?;
            let rack = r.nullable_string(true, "describe_cluster rack")?;
            if version >= 2 {
                r.bool("describe_cluster is_fenced")?;
            }
            r.tagged_fields("describe_cluster broker tagged fields")?;
            brokers.push(Broker { node_id, host, port, rack });
        }
        let cluster_authorized_operations = r.i32("describe_cluster cluster_authorized_operations")?;
        r.tagged_fields("describe_cluster tagged fields")?;
        r.finish("describe_cluster response")?;
        Ok(DescribeClusterResponse {
            throttle_time_ms,
            error_code,
            error_message,
            endpoint_type,
            cluster_id,
            controller_id,
            brokers,
            cluster_authorized_operations,
            spans,
        })
    }
}

/// Re-encodes a DescribeCluster response body with each broker's host and port replaced
/// by `f(node_id, host, port)`.
pub fn rewrite_describe_cluster<F>(body: &[u8], version: i16, f: F) -> Result<Bytes, KafkaError>
where
    F: FnMut(i32, &str, i32) -> (String, i32),
{
    let d = DescribeClusterResponse::parse(body, version)?;
    let entries: Vec<_> = d.brokers.iter().copied().zip(d.spans.0.iter().copied()).collect();
    splice(body, &entries, true, f)
}

/// Rewrites the broker addresses of a Metadata, FindCoordinator or DescribeCluster response
/// body; `Ok(None)` for any other API (nothing to rewrite).
pub fn rewrite_brokers<F>(api_key: ApiKey, version: i16, body: &[u8], f: F) -> Result<Option<Bytes>, KafkaError>
where
    F: FnMut(i32, &str, i32) -> (String, i32),
{
    match api_key {
        ApiKey::METADATA => super::metadata::rewrite_metadata_brokers(body, version, f).map(Some),
        ApiKey::FIND_COORDINATOR => rewrite_find_coordinator(body, version, f).map(Some),
        ApiKey::DESCRIBE_CLUSTER => rewrite_describe_cluster(body, version, f).map(Some),
        _ => Ok(None),
    }
}
