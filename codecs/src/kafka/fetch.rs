//! Fetch (api key 1) requests and responses, v0-17.
//!
//! Spec: "Fetch API" (<https://kafka.apache.org/protocol#The_Messages_Fetch>) and
//! `FetchRequest.json` / `FetchResponse.json`: flexible from v12 (KIP-482), incremental
//! fetch sessions from v7 (KIP-227), topic ids instead of names from v13 (KIP-516),
//! replica_id moved into a tagged field from v15 (KIP-903), NodeEndpoints (KIP-951) as a
//! tagged field from v16 (skipped here). The request gives the topics and partitions asked
//! for; the response the throttle time, the top-level error (v7+), and per partition the
//! error code and the record set (its length, and batches counted on demand, allowing the
//! partial last batch a broker may send).
//!
//! ```text
//! Request  => replica_id (v0-14) max_wait_ms min_bytes max_bytes (v3+) isolation_level (v4+)
//!             session_id session_epoch (v7+)
//!             [topic | topic_id [partition current_leader_epoch (v9+) fetch_offset
//!              last_fetched_epoch (v12+) log_start_offset (v5+) partition_max_bytes]]
//!             [forgotten topic [partition]] (v7+) rack_id (v11+)
//! Response => throttle_time_ms (v1+) error_code session_id (v7+)
//!             [topic | topic_id [partition_index error_code high_watermark
//!              last_stable_offset (v4+) log_start_offset (v5+)
//!              [producer_id first_offset] (nullable, v4+) preferred_read_replica (v11+) records]]
//! ```

use super::api::ApiKey;
use super::error::KafkaError;
use super::produce::TopicRef;
use super::reader::Reader;
use super::record_batch::{summarize, RecordSetSummary};

/// The highest Fetch version decoded.
pub const MAX_VERSION: i16 = 17;

fn check_version(version: i16) -> Result<bool, KafkaError> {
    if !(0..=MAX_VERSION).contains(&version) {
        return Err(KafkaError::UnsupportedVersion { api: ApiKey::FETCH, version });
    }
    Ok(version >= 12)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest<'a> {
    /// -1 for consumers; absent (-1) from v15.
    pub replica_id: i32,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub isolation_level: i8,
    pub session_id: i32,
    pub session_epoch: i32,
    pub topics: Vec<FetchTopic<'a>>,
    pub rack_id: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchTopic<'a> {
    pub topic: TopicRef<'a>,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchPartition {
    pub partition: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
}

impl<'a> FetchRequest<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        let flexible = check_version(version)?;
        let by_id = version >= 13;
        let mut r = Reader::new(body);
        let replica_id = if version <= 14 { r.i32("fetch replica_id")? } else { -1 };
        let max_wait_ms = r.i32("fetch max_wait_ms")?;
        let min_bytes = r.i32("fetch min_bytes")?;
        let max_bytes = if version >= 3 { r.i32("fetch max_bytes")? } else { i32::MAX };
        let isolation_level = if version >= 4 { r.i8("fetch isolation_level")? } else { 0 };
        let (session_id, session_epoch) =
            if version >= 7 { (r.i32("fetch session_id")?, r.i32("fetch session_epoch")?) } else { (0, -1) };
        let n = r.array_len(flexible, 3, "fetch topics")?;
        let mut topics = Vec::new();
        for _ in 0..n {
            let topic = TopicRef::read(&mut r, by_id, flexible, "fetch topic")?;
            let np = r.array_len(flexible, 16, "fetch partitions")?;
            let mut partitions = Vec::new();
            for _ in 0..np {
                let partition = r.i32("fetch partition")?;
                if version >= 9 {
                    r.i32("fetch current_leader_epoch")?;
                }
                let fetch_offset = r.i64("fetch fetch_offset")?;
                if version >= 12 {
                    r.i32("fetch last_fetched_epoch")?;
                }
                if version >= 5 {
                    r.i64("fetch log_start_offset")?;
                }
                let partition_max_bytes = r.i32("fetch partition_max_bytes")?;
                r.tags_if(flexible, "fetch partition tagged fields")?;
                partitions.push(FetchPartition { partition, fetch_offset, partition_max_bytes });
            }
            r.tags_if(flexible, "fetch topic tagged fields")?;
            topics.push(FetchTopic { topic, partitions });
        }
        if version >= 7 {
            let nf = r.array_len(flexible, 3, "fetch forgotten_topics_data")?;
            for _ in 0..nf {
                TopicRef::read(&mut r, by_id, flexible, "fetch forgotten topic")?;
                r.skip_array(flexible, 4, "fetch forgotten partitions")?;
                r.tags_if(flexible, "fetch forgotten tagged fields")?;
            }
        }
        let rack_id = if version >= 11 { Some(r.string(flexible, "fetch rack_id")?) } else { None };
        r.tags_if(flexible, "fetch tagged fields")?;
        Ok(FetchRequest {
            replica_id,
            max_wait_ms,
            min_bytes,
            max_bytes,
            isolation_level,
            session_id,
            session_epoch,
            topics,
            rack_id,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchResponse<'a> {
    /// 0 before v1.
    pub throttle_time_ms: i32,
    /// The top-level error (v7+; 0 before).
    pub error_code: i16,
    pub session_id: i32,
    pub topics: Vec<FetchTopicResponse<'a>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchTopicResponse<'a> {
    pub topic: TopicRef<'a>,
    pub partitions: Vec<FetchPartitionResponse<'a>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchPartitionResponse<'a> {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub records: Option<&'a [u8]>,
}

impl FetchPartitionResponse<'_> {
    /// Bytes of the record set returned (0 for null).
    pub fn records_len(&self) -> usize {
        self.records.map_or(0, <[u8]>::len)
    }

    /// Batches and records returned; a partial last batch is counted in `partial_bytes`.
    pub fn summary(&self) -> Result<RecordSetSummary, KafkaError> {
        summarize(self.records.unwrap_or_default(), true)
    }
}

impl<'a> FetchResponse<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        let flexible = check_version(version)?;
        let mut r = Reader::new(body);
        let throttle_time_ms = if version >= 1 { r.i32("fetch response throttle_time_ms")? } else { 0 };
        let (error_code, session_id) = if version >= 7 {
            (r.i16("fetch response error_code")?, r.i32("fetch response session_id")?)
        } else {
            (0, 0)
        };
        let n = r.array_len(flexible, 3, "fetch response topics")?;
        let mut topics = Vec::new();
        for _ in 0..n {
            let topic = TopicRef::read(&mut r, version >= 13, flexible, "fetch response topic")?;
            let np = r.array_len(flexible, 18, "fetch response partitions")?;
            let mut partitions = Vec::new();
            for _ in 0..np {
                let partition_index = r.i32("fetch response partition_index")?;
                let error_code = r.i16("fetch response error_code")?;
                let high_watermark = r.i64("fetch response high_watermark")?;
                if version >= 4 {
                    r.i64("fetch response last_stable_offset")?;
                }
                if version >= 5 {
                    r.i64("fetch response log_start_offset")?;
                }
                if version >= 4 {
                    let na = r.nullable_array(flexible, 16, "fetch response aborted_transactions")?.unwrap_or(0);
                    for _ in 0..na {
                        r.skip(16, "fetch response aborted transaction")?;
                        r.tags_if(flexible, "fetch response aborted transaction tagged fields")?;
                    }
                }
                if version >= 11 {
                    r.i32("fetch response preferred_read_replica")?;
                }
                let records = r.nullable_bytes(flexible, "fetch response records")?;
                r.tags_if(flexible, "fetch response partition tagged fields")?;
                partitions.push(FetchPartitionResponse { partition_index, error_code, high_watermark, records });
            }
            r.tags_if(flexible, "fetch response topic tagged fields")?;
            topics.push(FetchTopicResponse { topic, partitions });
        }
        r.tags_if(flexible, "fetch response tagged fields")?;
        r.finish("fetch response")?;
        Ok(FetchResponse { throttle_time_ms, error_code, session_id, topics })
    }

    /// Bytes of records returned over every partition.
    pub fn records_len(&self) -> usize {
        self.topics.iter().flat_map(|t| &t.partitions).map(FetchPartitionResponse::records_len).sum()
    }
}
