//! Error responses a filter answers a denied or rate-limited request with, in the shape the
//! request's API and version expect.
//!
//! Spec: the response schemas of <https://kafka.apache.org/protocol#protocol_messages>
//! (`ProduceResponse.json`, `FetchResponse.json`, `MetadataResponse.json`,
//! `CreateTopicsResponse.json`, `DeleteTopicsResponse.json`, `CreateAclsResponse.json`,
//! `DeleteAclsResponse.json`). Kafka has no generic error reply: most responses carry their
//! errors per topic, partition or entry, so the encoder takes the parsed request and echoes
//! each of its topics/partitions/entries with the error code:
//!
//! - Produce: every topic and partition of the request, `base_offset` -1; acks=0 gets no
//!   response at all (the broker sends none), so a filter drops such a request silently.
//! - Fetch: every partition of the request, plus the top-level error from v7.
//! - Metadata: every topic asked for, with no brokers; a request for all topics is answered
//!   with no topics (the client sees an empty cluster and retries).
//! - CreateTopics / DeleteTopics: every topic; CreateAcls / DeleteAcls: every entry.
//!
//! Every other API gets `Ok(None)`: its response shape needs data the proxy does not have
//! (or has no error field), so the filter closes the connection instead.
//!
//! Useful codes: 29 TOPIC_AUTHORIZATION_FAILED, 31 CLUSTER_AUTHORIZATION_FAILED,
//! 44 POLICY_VIOLATION, 89 THROTTLING_QUOTA_EXCEEDED (CreateTopics v6+, DeleteTopics v5+).

use bytes::{BufMut, Bytes, BytesMut};

use super::admin::{CreateAclsRequest, CreateTopicsRequest, DeleteAclsRequest, DeleteTopicsRequest};
use super::api::ApiKey;
use super::error::KafkaError;
use super::fetch::FetchRequest;
use super::header::{finish_frame, start_response, Request};
use super::metadata::MetadataRequest;
use super::produce::{ProduceRequest, TopicRef};
use super::writer::{put_array_len, put_no_tags, put_null_array, put_nullable_bytes, put_nullable_string, put_string};

/// TOPIC_AUTHORIZATION_FAILED.
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
/// CLUSTER_AUTHORIZATION_FAILED.
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
/// POLICY_VIOLATION.
pub const POLICY_VIOLATION: i16 = 44;
/// THROTTLING_QUOTA_EXCEEDED (KIP-599).
pub const THROTTLING_QUOTA_EXCEEDED: i16 = 89;

/// Whether [`error_response`] can answer this API (otherwise: close).
pub fn can_answer(api_key: ApiKey) -> bool {
    matches!(
        api_key,
        ApiKey::PRODUCE
            | ApiKey::FETCH
            | ApiKey::METADATA
            | ApiKey::CREATE_TOPICS
            | ApiKey::DELETE_TOPICS
            | ApiKey::CREATE_ACLS
            | ApiKey::DELETE_ACLS
    )
}

/// A whole response frame (size, header, body) answering `request` with `error_code`
/// everywhere it has one, and `throttle_time_ms` where the version has it. `message` goes
/// into the error_message fields that exist. `Ok(None)`: this API is not answered (see the
/// module header) or this request gets no response (Produce with acks=0); an error:
/// the request body did not parse.
pub fn error_response(
    request: &Request<'_>,
    error_code: i16,
    throttle_time_ms: i32,
    message: Option<&str>,
) -> Result<Option<Bytes>, KafkaError> {
    // A Produce with acks=0 is never answered: an answer would be taken for the response
    // to the client's next request.
    if !request.expects_response() {
        return Ok(None);
    }
    let h = &request.header;
    let (key, v) = (h.api_key, h.api_version);
    let flexible = key.is_flexible(v).unwrap_or(false);
    let mut out = start_response(h.correlation_id, key, v);
    let e = Enc { flexible, error_code, throttle_time_ms, message };
    match key {
        ApiKey::PRODUCE => e.produce(&mut out, &ProduceRequest::parse(request.body, v)?, v)?,
        ApiKey::FETCH => e.fetch(&mut out, &FetchRequest::parse(request.body, v)?, v)?,
        ApiKey::METADATA => e.metadata(&mut out, &MetadataRequest::parse(request.body, v)?, v)?,
        ApiKey::CREATE_TOPICS => e.create_topics(&mut out, &CreateTopicsRequest::parse(request.body, v)?, v)?,
        ApiKey::DELETE_TOPICS => e.delete_topics(&mut out, &DeleteTopicsRequest::parse(request.body, v)?, v)?,
        ApiKey::CREATE_ACLS => {
            let n = CreateAclsRequest::parse(request.body, v)?.creations.len();
            e.acl_results(&mut out, n, false)?
        }
        ApiKey::DELETE_ACLS => {
            let n = DeleteAclsRequest::parse(request.body, v)?.filters.len();
            e.acl_results(&mut out, n, true)?
        }
        _ => return Ok(None),
    }
    finish_frame(out).map(Some)
}

struct Enc<'m> {
    flexible: bool,
    error_code: i16,
    throttle_time_ms: i32,
    message: Option<&'m str>,
}

impl Enc<'_> {
    fn topic(&self, out: &mut BytesMut, t: &TopicRef<'_>) -> Result<(), KafkaError> {
        match t {
            TopicRef::Name(n) => put_string(out, n, self.flexible, "topic name"),
            TopicRef::Id(id) => {
                out.put_slice(id);
                Ok(())
            }
        }
    }

    fn produce(&self, out: &mut BytesMut, req: &ProduceRequest<'_>, v: i16) -> Result<(), KafkaError> {
        put_array_len(out, req.topics.len(), self.flexible, "topics")?;
        for t in &req.topics {
            self.topic(out, &t.topic)?;
            put_array_len(out, t.partitions.len(), self.flexible, "partitions")?;
            for p in &t.partitions {
                out.put_i32(p.index);
                out.put_i16(self.error_code);
                out.put_i64(-1);
                if v >= 2 {
                    out.put_i64(-1);
                }
                if v >= 5 {
                    out.put_i64(-1);
                }
                if v >= 8 {
                    put_array_len(out, 0, self.flexible, "record_errors")?;
                    put_nullable_string(out, self.message, self.flexible, "error_message")?;
                }
                put_no_tags(out, self.flexible);
            }
            put_no_tags(out, self.flexible);
        }
        if v >= 1 {
            out.put_i32(self.throttle_time_ms);
        }
        put_no_tags(out, self.flexible);
        Ok(())
    }

    fn fetch(&self, out: &mut BytesMut, req: &FetchRequest<'_>, v: i16) -> Result<(), KafkaError> {
        if v >= 1 {
            out.put_i32(self.throttle_time_ms);
        }
        if v >= 7 {
            out.put_i16(self.error_code);
            out.put_i32(req.session_id);
        }
        put_array_len(out, req.topics.len(), self.flexible, "topics")?;
        for t in &req.topics {
            self.topic(out, &t.topic)?;
            put_array_len(out, t.partitions.len(), self.flexible, "partitions")?;
            for p in &t.partitions {
                out.put_i32(p.partition);
                out.put_i16(self.error_code);
                out.put_i64(-1);
                if v >= 4 {
                    out.put_i64(-1);
                }
                if v >= 5 {
                    out.put_i64(-1);
                }
                if v >= 4 {
                    put_null_array(out, self.flexible);
                }
                if v >= 11 {
                    out.put_i32(-1);
                }
                put_nullable_bytes(out, Some(&[]), self.flexible, "records")?;
                put_no_tags(out, self.flexible);
            }
            put_no_tags(out, self.flexible);
        }
        put_no_tags(out, self.flexible);
        Ok(())
    }

    fn metadata(&self, out: &mut BytesMut, req: &MetadataRequest<'_>, v: i16) -> Result<(), KafkaError> {
        if v >= 3 {
            out.put_i32(self.throttle_time_ms);
        }
        put_array_len(out, 0, self.flexible, "brokers")?;
        if v >= 2 {
            put_nullable_string(out, None, self.flexible, "cluster_id")?;
        }
        if v >= 1 {
            out.put_i32(-1);
        }
        let topics = req.topics.as_deref().unwrap_or_default();
        put_array_len(out, topics.len(), self.flexible, "topics")?;
        for t in topics {
            out.put_i16(self.error_code);
            if v >= 12 {
                put_nullable_string(out, t.name, self.flexible, "topic name")?;
            } else {
                put_string(out, t.name.unwrap_or_default(), self.flexible, "topic name")?;
            }
            if v >= 10 {
                out.put_slice(&t.topic_id.unwrap_or_default());
            }
            if v >= 1 {
                out.put_u8(0);
            }
            put_array_len(out, 0, self.flexible, "partitions")?;
            if v >= 8 {
                out.put_i32(i32::MIN);
            }
            put_no_tags(out, self.flexible);
        }
        if (8..=10).contains(&v) {
            out.put_i32(i32::MIN);
        }
        put_no_tags(out, self.flexible);
        Ok(())
    }

    fn create_topics(&self, out: &mut BytesMut, req: &CreateTopicsRequest<'_>, v: i16) -> Result<(), KafkaError> {
        if v >= 2 {
            out.put_i32(self.throttle_time_ms);
        }
        put_array_len(out, req.topics.len(), self.flexible, "topics")?;
        for t in &req.topics {
            put_string(out, t.name, self.flexible, "topic name")?;
            if v >= 7 {
                out.put_slice(&[0; 16]);
            }
            out.put_i16(self.error_code);
            if v >= 1 {
                put_nullable_string(out, self.message, self.flexible, "error_message")?;
            }
            if v >= 5 {
                out.put_i32(-1);
                out.put_i16(-1);
                put_null_array(out, self.flexible);
            }
            put_no_tags(out, self.flexible);
        }
        put_no_tags(out, self.flexible);
        Ok(())
    }

    fn delete_topics(&self, out: &mut BytesMut, req: &DeleteTopicsRequest<'_>, v: i16) -> Result<(), KafkaError> {
        if v >= 1 {
            out.put_i32(self.throttle_time_ms);
        }
        put_array_len(out, req.topics.len(), self.flexible, "responses")?;
        for t in &req.topics {
            if v >= 6 {
                put_nullable_string(out, t.name, self.flexible, "topic name")?;
                out.put_slice(&t.topic_id.unwrap_or_default());
            } else {
                put_string(out, t.name.unwrap_or_default(), self.flexible, "topic name")?;
            }
            out.put_i16(self.error_code);
            if v >= 5 {
                put_nullable_string(out, self.message, self.flexible, "error_message")?;
            }
            put_no_tags(out, self.flexible);
        }
        put_no_tags(out, self.flexible);
        Ok(())
    }

    fn acl_results(&self, out: &mut BytesMut, n: usize, matching: bool) -> Result<(), KafkaError> {
        out.put_i32(self.throttle_time_ms);
        put_array_len(out, n, self.flexible, "results")?;
        for _ in 0..n {
            out.put_i16(self.error_code);
            put_nullable_string(out, self.message, self.flexible, "error_message")?;
            if matching {
                put_array_len(out, 0, self.flexible, "matching_acls")?;
            }
            put_no_tags(out, self.flexible);
        }
        put_no_tags(out, self.flexible);
        Ok(())
    }
}
