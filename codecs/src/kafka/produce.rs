//! Produce (api key 0) requests and responses, v0-13.
//!
//! Spec: "Produce API" (<https://kafka.apache.org/protocol#The_Messages_Produce>) and
//! `ProduceRequest.json` / `ProduceResponse.json`; flexible from v9 (KIP-482), topic ids
//! instead of names from v13 (KIP-516). Hand-written (see the module header of
//! [`super`]): the request gives the topics and partitions, each partition's record set
//! (counted by [`super::summarize`], never decompressed); the response gives per-partition
//! error codes and the throttle time. Tagged fields (v10's CurrentLeader and NodeEndpoints,
//! KIP-951) are skipped.
//!
//! ```text
//! Request  => [transactional_id (v3+)] acks:int16 timeout_ms:int32
//!             [name | topic_id (v13+) [index:int32 records:NULLABLE_BYTES]]
//! Response => [name | topic_id [index error_code:int16 base_offset:int64
//!             log_append_time_ms (v2+) log_start_offset (v5+)
//!             [batch_index batch_index_error_message] (v8+) error_message (v8+)]]
//!             throttle_time_ms (v1+)
//! ```

use super::api::ApiKey;
use super::error::KafkaError;
use super::reader::Reader;
use super::record_batch::{summarize, RecordSetSummary};

/// The highest Produce version decoded.
pub const MAX_VERSION: i16 = 13;

fn check_version(version: i16) -> Result<bool, KafkaError> {
    if !(0..=MAX_VERSION).contains(&version) {
        return Err(KafkaError::UnsupportedVersion { api: ApiKey::PRODUCE, version });
    }
    Ok(version >= 9)
}

/// A topic's identity: its name, or from v13 its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopicRef<'a> {
    Name(&'a str),
    Id([u8; 16]),
}

impl<'a> TopicRef<'a> {
    pub fn name(&self) -> Option<&'a str> {
        match self {
            TopicRef::Name(n) => Some(n),
            TopicRef::Id(_) => None,
        }
    }

    pub(crate) fn read(
        r: &mut Reader<'a>,
        by_id: bool,
        flexible: bool,
        what: &'static str,
    ) -> Result<Self, KafkaError> {
        if by_id {
            r.uuid(what).map(TopicRef::Id)
        } else {
            r.string(flexible, what).map(TopicRef::Name)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProduceRequest<'a> {
    pub transactional_id: Option<&'a str>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topics: Vec<ProduceTopic<'a>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProduceTopic<'a> {
    pub topic: TopicRef<'a>,
    pub partitions: Vec<ProducePartition<'a>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducePartition<'a> {
    pub index: i32,
    /// The record set as sent (null is legal on the wire, though no client sends it).
    pub records: Option<&'a [u8]>,
}

impl ProducePartition<'_> {
    /// Batches, records, bytes and codec of this partition's records.
    pub fn summary(&self) -> Result<RecordSetSummary, KafkaError> {
        summarize(self.records.unwrap_or_default(), false)
    }
}

/// The acks field alone (what decides whether a response comes), without reading topics.
pub fn acks(body: &[u8], version: i16) -> Result<i16, KafkaError> {
    let flexible = check_version(version)?;
    let mut r = Reader::new(body);
    if version >= 3 {
        r.nullable_string(flexible, "produce transactional_id")?;
    }
    r.i16("produce acks")
}

impl<'a> ProduceRequest<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        let flexible = check_version(version)?;
        let by_id = version >= 13;
        let mut r = Reader::new(body);
        let transactional_id =
            if version >= 3 { r.nullable_string(flexible, "produce transactional_id")? } else { None };
        let acks = r.i16("produce acks")?;
        let timeout_ms = r.i32("produce timeout_ms")?;
        let n = r.array_len(flexible, 3, "produce topics")?;
        let mut topics = Vec::new();
        for _ in 0..n {
            let topic = TopicRef::read(&mut r, by_id, flexible, "produce topic")?;
            let np = r.array_len(flexible, 5, "produce partitions")?;
            let mut partitions = Vec::new();
            for _ in 0..np {
                let index = r.i32("produce partition index")?;
                let records = r.nullable_bytes(flexible, "produce records")?;
                r.tags_if(flexible, "produce partition tagged fields")?;
                partitions.push(ProducePartition { index, records });
            }
            r.tags_if(flexible, "produce topic tagged fields")?;
            topics.push(ProduceTopic { topic, partitions });
        }
        r.tags_if(flexible, "produce tagged fields")?;
        Ok(ProduceRequest { transactional_id, acks, timeout_ms, topics })
    }

    /// Totals over every partition.
    pub fn summary(&self) -> Result<RecordSetSummary, KafkaError> {
        let mut total = RecordSetSummary::default();
        for p in self.topics.iter().flat_map(|t| &t.partitions) {
            total.add(&p.summary()?);
        }
        Ok(total)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProduceResponse<'a> {
    pub topics: Vec<ProduceTopicResponse<'a>>,
    /// 0 before v1.
    pub throttle_time_ms: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProduceTopicResponse<'a> {
    pub topic: TopicRef<'a>,
    pub partitions: Vec<ProducePartitionResponse<'a>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducePartitionResponse<'a> {
    pub index: i32,
    pub error_code: i16,
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    pub error_message: Option<&'a str>,
}

impl<'a> ProduceResponse<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        let flexible = check_version(version)?;
        let mut r = Reader::new(body);
        let n = r.array_len(flexible, 3, "produce response topics")?;
        let mut topics = Vec::new();
        for _ in 0..n {
            let topic = TopicRef::read(&mut r, version >= 13, flexible, "produce response topic")?;
            let np = r.array_len(flexible, 14, "produce response partitions")?;
            let mut partitions = Vec::new();
            for _ in 0..np {
                let index = r.i32("produce response index")?;
                let error_code = r.i16("produce response error_code")?;
                let base_offset = r.i64("produce response base_offset")?;
                let log_append_time_ms = if version >= 2 { r.i64("produce response log_append_time_ms")? } else { -1 };
                let log_start_offset = if version >= 5 { r.i64("produce response log_start_offset")? } else { -1 };
                let mut error_message = None;
                if version >= 8 {
                    let ne = r.array_len(flexible, 5, "produce response record_errors")?;
                    for _ in 0..ne {
                        r.i32("produce response batch_index")?;
                        r.nullable_string(flexible, "produce response batch_index_error_message")?;
                        r.tags_if(flexible, "produce response record_error tagged fields")?;
                    }
                    error_message = r.nullable_string(flexible, "produce response error_message")?;
                }
                r.tags_if(flexible, "produce response partition tagged fields")?;
                partitions.push(ProducePartitionResponse {
                    index,
                    error_code,
                    base_offset,
                    log_append_time_ms,
                    log_start_offset,
                    error_message,
                });
            }
            r.tags_if(flexible, "produce response topic tagged fields")?;
            topics.push(ProduceTopicResponse { topic, partitions });
        }
        let throttle_time_ms = if version >= 1 { r.i32("produce response throttle_time_ms")? } else { 0 };
        r.tags_if(flexible, "produce response tagged fields")?;
        r.finish("produce response")?;
        Ok(ProduceResponse { topics, throttle_time_ms })
    }
}
