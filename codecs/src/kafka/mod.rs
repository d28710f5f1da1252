//! The Kafka wire protocol.
//!
//! Spec: the Kafka protocol guide (<https://kafka.apache.org/protocol>) and the message
//! definitions it is generated from (Apache Kafka `clients/src/main/resources/common/message/*.json`);
//! KIP-482 (flexible versions: compact strings/arrays/bytes and tagged fields), KIP-511
//! (ApiVersions v3 and its header quirk), KIP-43/KIP-152 (SASL); each module cites its part.
//!
//! Frame first: every request and response is an i32 size and that many bytes.
//! [`FrameDecoder`] ([`crate::Decode`]) and [`peek`] check the size against
//! [`crate::Limits::max_frame`] (default [`MAX_FRAME_SIZE`], the broker's
//! `socket.request.max.bytes`) before waiting for the bytes, and cut one whole [`Frame`] off
//! the read buffer (`split_to(n).freeze()`, so forwarding is byte-exact). A request's
//! header ([`Request::parse`]) says its [`ApiKey`] (open: unknown keys pass by header v1),
//! version, correlation id and client id; responses carry only the correlation id, so the
//! [`Correlator`] remembers each request's key and version in order and reads the response
//! header ([`Response`]) in the right version (ApiVersions: always v0).
//!
//! Bodies are decoded by hand for the APIs a filter needs ([`RequestBody`],
//! [`ResponseBody`]): ApiVersions, Metadata, FindCoordinator, DescribeCluster (with
//! [`rewrite_brokers`]: broker host/port replaced, every other byte copied), Produce (topics,
//! partitions, record batches counted by [`summarize`] without decompression), Fetch, the
//! SASL pair ([`plain_user`]), and the admin requests rules deny (CreateTopics, DeleteTopics,
//! CreateAcls, DeleteAcls). [`error_response`] answers a denied request in its API's shape.
//! Every other API passes by header alone.
//!
//! Request bodies end after their last field: bytes after it are ignored, as the Java
//! broker ignores them (librdkafka 2.16 sends three after a v12 all-topics Metadata
//! request, see fixtures/kafka/README.md). Response bodies must end exactly
//! ([`KafkaError::TrailingBytes`]): the rewrite relies on knowing every byte.
//!
//! Why not the `kafka-protocol` crate: it decodes every message of every version into owned
//! structures (allocating per string and per element, `Vec::with_capacity` from wire
//! counts), which is more work than a proxy needs on its data path, and it would have to be
//! fenced against count-driven allocation. The bodies needed here are a dozen; they are
//! written as zero-copy views over the frame, every count checked against the bytes
//! present ([`Reader`]), and fuzzed (`fuzz/fuzz_targets/kafka_*.rs`).
//!
//! Sans-I/O, no `unsafe`, no panics on any input; no allocation is sized by a length field
//! beyond the bytes present.

mod address;
mod admin;
mod api;
mod api_versions;
mod body;
mod coordinator;
mod encode;
mod error;
mod fetch;
mod frame;
mod header;
mod metadata;
mod produce;
mod reader;
mod record_batch;
mod sasl;
mod session;
mod writer;

pub use address::Broker;
pub use admin::{
    AclEntry, CreateAclsRequest, CreateTopic, CreateTopicsRequest, DeleteAclsRequest, DeleteTopic, DeleteTopicsRequest,
};
pub use api::ApiKey;
pub use api_versions::{ApiVersionRange, ApiVersionsRequest, ApiVersionsResponse, UNSUPPORTED_VERSION};
pub use body::{RequestBody, ResponseBody};
pub use coordinator::{
    rewrite_brokers, rewrite_describe_cluster, rewrite_find_coordinator, Coordinator, DescribeClusterResponse,
    FindCoordinatorRequest, FindCoordinatorResponse,
};
pub use encode::{
    can_answer, error_response, CLUSTER_AUTHORIZATION_FAILED, POLICY_VIOLATION, THROTTLING_QUOTA_EXCEEDED,
    TOPIC_AUTHORIZATION_FAILED,
};
pub use error::KafkaError;
pub use fetch::{FetchPartition, FetchPartitionResponse, FetchRequest, FetchResponse, FetchTopic, FetchTopicResponse};
pub use frame::{default_limits, peek, Frame, FrameDecoder, MAX_FRAME_SIZE, SIZE_LEN};
pub use header::{response_correlation_id, Request, RequestHeader, Response};
pub use metadata::{
    rewrite_metadata_brokers, MetadataPartition, MetadataRequest, MetadataRequestTopic, MetadataResponse, MetadataTopic,
};
pub use produce::{
    acks, ProducePartition, ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopic,
    ProduceTopicResponse, TopicRef,
};
pub use reader::Reader;
pub use record_batch::{batches, summarize, Batches, Compression, RecordBatch, RecordSetSummary, BATCH_HEADER_LEN};
pub use sasl::{
    plain_authzid, plain_user, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
pub use session::{Correlator, Inbound, Outbound, Pending, State};

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
