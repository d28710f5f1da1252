//! Admin requests a rule may deny: CreateTopics (19, v0-7), DeleteTopics (20, v0-6),
//! CreateAcls (30, v0-3) and DeleteAcls (31, v0-3). Decoded only as far as a filter needs:
//! the topic names (the op's target) and the entry counts an error response must echo.
//!
//! Spec: <https://kafka.apache.org/protocol#The_Messages_CreateTopics> and the
//! `CreateTopicsRequest.json`, `DeleteTopicsRequest.json` (topic ids from v6, KIP-516),
//! `CreateAclsRequest.json`, `DeleteAclsRequest.json` definitions (pattern types from v1,
//! KIP-290; flexible from v5, v4, v2, v2).
//!
//! ```text
//! CreateTopics => [name num_partitions replication_factor [partition_index [broker_id]]
//!                  [config_name config_value]] timeout_ms validate_only (v1+)
//! DeleteTopics => [name] (v0-5) | [name topic_id] (v6+), timeout_ms
//! CreateAcls   => [resource_type resource_name pattern_type (v1+) principal host operation permission]
//! DeleteAcls   => [resource_type name? pattern_type (v1+) principal? host? operation permission]
//! ```

use super::api::ApiKey;
use super::error::KafkaError;
use super::reader::Reader;

fn check(api: ApiKey, version: i16, max: i16, first_flexible: i16) -> Result<bool, KafkaError> {
    if !(0..=max).contains(&version) {
        return Err(KafkaError::UnsupportedVersion { api, version });
    }
    Ok(version >= first_flexible)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTopicsRequest<'a> {
    pub topics: Vec<CreateTopic<'a>>,
    pub timeout_ms: i32,
    pub validate_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateTopic<'a> {
    pub name: &'a str,
    pub num_partitions: i32,
    pub replication_factor: i16,
}

impl<'a> CreateTopicsRequest<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        let flexible = check(ApiKey::CREATE_TOPICS, version, 7, 5)?;
        let mut r = Reader::new(body);
        let n = r.array_len(flexible, 9, "create_topics topics")?;
        let mut topics = Vec::new();
        for _ in 0..n {
            let name = r.string(flexible, "create_topics name")?;
            let num_partitions = r.i32("create_topics num_partitions")?;
            let replication_factor = r.i16("create_topics replication_factor")?;
            let na = r.array_len(flexible, 5, "create_topics assignments")?;
            for _ in 0..na {
                r.i32("create_topics partition_index")?;
                r.skip_array(flexible, 4, "create_topics broker_ids")?;
                r.tags_if(flexible, "create_topics assignment tagged fields")?;
            }
            let nc = r.array_len(flexible, 2, "create_topics configs")?;
            for _ in 0..nc {
                r.string(flexible, "create_topics config name")?;
                r.nullable_string(flexible, "create_topics config value")?;
                r.tags_if(flexible, "create_topics config tagged fields")?;
            }
            r.tags_if(flexible, "create_topics topic tagged fields")?;
            topics.push(CreateTopic { name, num_partitions, replication_factor });
        }
        let timeout_ms = r.i32("create_topics timeout_ms")?;
        let validate_only = if version >= 1 { r.bool("create_topics validate_only")? } else { false };
        r.tags_if(flexible, "create_topics tagged fields")?;
        Ok(CreateTopicsRequest { topics, timeout_ms, validate_only })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteTopicsRequest<'a> {
    pub topics: Vec<DeleteTopic<'a>>,
    pub timeout_ms: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeleteTopic<'a> {
    /// Null from v6 when deleting by id.
    pub name: Option<&'a str>,
    /// v6+.
    pub topic_id: Option<[u8; 16]>,
}

impl<'a> DeleteTopicsRequest<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        let flexible = check(ApiKey::DELETE_TOPICS, version, 6, 4)?;
        let mut r = Reader::new(body);
        let mut topics = Vec::new();
        if version >= 6 {
            let n = r.array_len(flexible, 18, "delete_topics topics")?;
            for _ in 0..n {
                let name = r.nullable_string(flexible, "delete_topics name")?;
                let topic_id = Some(r.uuid("delete_topics topic_id")?);
                r.tags_if(flexible, "delete_topics topic tagged fields")?;
                topics.push(DeleteTopic { name, topic_id });
            }
        } else {
            let n = r.array_len(flexible, 1, "delete_topics topic_names")?;
            for _ in 0..n {
                let name = Some(r.string(flexible, "delete_topics name")?);
                topics.push(DeleteTopic { name, topic_id: None });
            }
        }
        let timeout_ms = r.i32("delete_topics timeout_ms")?;
        r.tags_if(flexible, "delete_topics tagged fields")?;
        Ok(DeleteTopicsRequest { topics, timeout_ms })
    }
}

/// One ACL binding (CreateAcls) or filter (DeleteAcls); names are `None` for "any".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AclEntry<'a> {
    pub resource_type: i8,
    pub resource_name: Option<&'a str>,
    /// v1+ (3, LITERAL, before).
    pub pattern_type: i8,
    pub principal: Option<&'a str>,
    pub host: Option<&'a str>,
    pub operation: i8,
    pub permission_type: i8,
}

fn acl_entries<'a>(body: &'a [u8], version: i16, api: ApiKey, filters: bool) -> Result<Vec<AclEntry<'a>>, KafkaError> {
    let flexible = check(api, version, 3, 2)?;
    let mut r = Reader::new(body);
    let n = r.array_len(flexible, 9, "acl entries")?;
    let mut out = Vec::new();
    let name = |r: &mut Reader<'a>, what| {
        if filters {
            r.nullable_string(flexible, what)
        } else {
            r.string(flexible, what).map(Some)
        }
    };
    for _ in 0..n {
        let resource_type = r.i8("acl resource_type")?;
        let resource_name = name(&mut r, "acl resource_name")?;
        let pattern_type = if version >= 1 { r.i8("acl pattern_type")? } else { 3 };
        let principal = name(&mut r, "acl principal")?;
        let host = name(&mut r, "acl host")?;
        let operation = r.i8("acl operation")?;
        let permission_type = r.i8("acl permission_type")?;
        r.tags_if(flexible, "acl entry tagged fields")?;
        out.push(AclEntry { resource_type, resource_name, pattern_type, principal, host, operation, permission_type });
    }
    r.tags_if(flexible, "acl tagged fields")?;
    Ok(out)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateAclsRequest<'a> {
    pub creations: Vec<AclEntry<'a>>,
}

impl<'a> CreateAclsRequest<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        acl_entries(body, version, ApiKey::CREATE_ACLS, false).map(|creations| CreateAclsRequest { creations })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteAclsRequest<'a> {
    pub filters: Vec<AclEntry<'a>>,
}

impl<'a> DeleteAclsRequest<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        acl_entries(body, version, ApiKey::DELETE_ACLS, true).map(|filters| DeleteAclsRequest { filters })
    }
}
