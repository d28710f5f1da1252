//! What the filter reads from a request body and from a response body.
//!
//! Spec: the request and response schemas of <https://kafka.apache.org/protocol#protocol_messages>,
//! decoded by `sluice_codecs::kafka`. A request names its topics (Produce, Fetch,
//! Metadata, CreateTopics, DeleteTopics; by id from Produce/Fetch v13, KIP-516, named here
//! through the ids Metadata responses taught) and, for Produce, carries the record sets
//! whose bytes and records are counted per topic (record batches are read by header, never
//! decompressed). A SASL request carries the mechanism (SaslHandshake) or, for PLAIN, the
//! principal (SaslAuthenticate, or the raw token after SaslHandshake v0). A response gives
//! its error codes (top level and per topic, partition or coordinator) and throttle time.

use std::ops::Deref;
use std::sync::Arc;

use sluice_codecs::kafka::{plain_user, ApiKey, KafkaError, Request, RequestBody, ResponseBody, TopicRef};

use super::brokers::TopicNames;

/// A topic's name as a request or response gives it, or as learnt for its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicName<'a> {
    Wire(&'a str),
    Learnt(Arc<str>),
    /// An id no Metadata response has named yet.
    Unknown,
}

impl Deref for TopicName<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            TopicName::Wire(s) => s,
            TopicName::Learnt(s) => s,
            TopicName::Unknown => "other",
        }
    }
}

pub fn topic_name<'a>(topic: &TopicRef<'a>, names: &TopicNames) -> TopicName<'a> {
    match topic {
        TopicRef::Name(n) => TopicName::Wire(n),
        TopicRef::Id(id) => names.get(id).map_or(TopicName::Unknown, TopicName::Learnt),
    }
}

/// One topic a request names, with what it produces to it.
#[derive(Debug, PartialEq, Eq)]
pub struct TopicUse<'a> {
    pub name: TopicName<'a>,
    /// Record-set bytes and records (Produce only; 0 otherwise).
    pub bytes: u64,
    pub records: u64,
}

/// What a request says beyond its header.
#[derive(Debug, Default)]
pub struct RequestFacts<'a> {
    pub topics: Vec<TopicUse<'a>>,
    /// A SaslHandshake's mechanism is PLAIN (`Some(false)`: another mechanism).
    pub plain_mechanism: Option<bool>,
    /// The PLAIN principal of a SaslAuthenticate (read only after a PLAIN handshake).
    pub user: Option<&'a str>,
    /// A Produce record set that is not v2 record batches (counted as bytes only).
    pub unreadable_records: bool,
}

/// Whether the filter reads this API's request body even when it enforces nothing: for the
/// per-topic produce counts, and for the SASL principal.
pub fn always_read(api: ApiKey) -> bool {
    matches!(api, ApiKey::PRODUCE | ApiKey::SASL_HANDSHAKE | ApiKey::SASL_AUTHENTICATE)
}

/// Reads a request's body. `plain`: the connection's SASL mechanism is PLAIN.
pub fn request<'a>(req: &Request<'a>, names: &TopicNames, plain: bool) -> Result<RequestFacts<'a>, KafkaError> {
    let mut facts = RequestFacts::default();
    let named = |n: &'a str| TopicUse { name: TopicName::Wire(n), bytes: 0, records: 0 };
    match RequestBody::parse(req)? {
        RequestBody::Produce(p) => {
            for t in &p.topics {
                let mut use_ = TopicUse { name: topic_name(&t.topic, names), bytes: 0, records: 0 };
                for part in &t.partitions {
                    match part.summary() {
                        Ok(s) => {
                            use_.bytes += s.bytes as u64;
                            use_.records += s.records;
                        }
                        // Not v2 record batches (a magic 0/1 message set from an old
                        // client, or a broken batch): its size still counts, its records
                        // cannot be told, and the broker judges it.
                        Err(_) => {
                            use_.bytes += part.records.map_or(0, <[u8]>::len) as u64;
                            facts.unreadable_records = true;
                        }
                    }
                }
                facts.topics.push(use_);
            }
        }
        RequestBody::Fetch(f) => {
            for t in &f.topics {
                facts.topics.push(TopicUse { name: topic_name(&t.topic, names), bytes: 0, records: 0 });
            }
        }
        RequestBody::Metadata(m) => {
            facts.topics.extend(m.topics.iter().flatten().filter_map(|t| t.name).map(named));
        }
        RequestBody::CreateTopics(c) => facts.topics.extend(c.topics.iter().map(|t| named(t.name))),
        RequestBody::DeleteTopics(d) => {
            for t in &d.topics {
                let name = match (t.name, t.topic_id) {
                    (Some(n), _) => TopicName::Wire(n),
                    (None, Some(id)) => names.get(&id).map_or(TopicName::Unknown, TopicName::Learnt),
                    (None, None) => TopicName::Unknown,
                };
                facts.topics.push(TopicUse { name, bytes: 0, records: 0 });
            }
        }
        RequestBody::SaslHandshake(h) => facts.plain_mechanism = Some(h.mechanism == "PLAIN"),
        RequestBody::SaslAuthenticate(a) if plain => facts.user = plain_user(a.auth_bytes),
        _ => {}
    }
    Ok(facts)
}

/// What a response says: how many error codes it holds (each counted through `error`), its
/// throttle time, and the record sets a Fetch returned per topic (through `fetched`).
pub struct ResponseFacts {
    pub errors: u32,
    pub throttle_time_ms: Option<i32>,
}

/// Reads a decoded response body: error codes (not NONE) go to `error`, Fetch record sets to
/// `fetched(topic, bytes, records)`, Metadata topic ids to `names`.
pub fn response(
    body: &ResponseBody<'_>,
    names: &TopicNames,
    mut error: impl FnMut(i16),
    mut fetched: impl FnMut(&str, u64, u64),
) -> ResponseFacts {
    let mut errors = 0;
    let mut code = |c: i16| {
        if c != 0 {
            errors += 1;
            error(c);
        }
    };
    match body {
        ResponseBody::Produce(p) => p.topics.iter().flat_map(|t| &t.partitions).for_each(|p| code(p.error_code)),
        ResponseBody::Fetch(f) => {
            code(f.error_code);
            for t in &f.topics {
                let name = topic_name(&t.topic, names);
                let (mut bytes, mut records) = (0, 0);
                for p in &t.partitions {
                    code(p.error_code);
                    bytes += p.records_len() as u64;
                    // A record set the broker cut short still counts its whole batches.
                    records += p.summary().map_or(0, |s| s.records);
                }
                if bytes > 0 {
                    fetched(&name, bytes, records);
                }
            }
        }
        ResponseBody::Metadata(m) => {
            for t in &m.topics {
                code(t.error_code);
                if let (Some(id), Some(name)) = (t.topic_id, t.name) {
                    names.learn(id, name);
                }
            }
        }
        ResponseBody::FindCoordinator(f) => f.coordinators.iter().for_each(|c| code(c.error_code)),
        ResponseBody::DescribeCluster(d) => code(d.error_code),
        ResponseBody::ApiVersions(a) => code(a.error_code),
        ResponseBody::SaslHandshake(h) => code(h.error_code),
        ResponseBody::SaslAuthenticate(a) => code(a.error_code),
        ResponseBody::Other => {}
    }
    ResponseFacts { errors, throttle_time_ms: body.throttle_time_ms() }
}
