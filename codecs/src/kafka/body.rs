//! One entry point per direction: the decoded body of a request or response, for the APIs
//! this codec decodes; every other API is [`RequestBody::Other`] / [`ResponseBody::Other`]
//! and passes by its header alone.

use super::admin::{CreateAclsRequest, CreateTopicsRequest, DeleteAclsRequest, DeleteTopicsRequest};
use super::api::ApiKey;
use super::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use super::coordinator::{DescribeClusterResponse, FindCoordinatorRequest, FindCoordinatorResponse};
use super::error::KafkaError;
use super::fetch::{FetchRequest, FetchResponse};
use super::header::{Request, Response};
use super::metadata::{MetadataRequest, MetadataResponse};
use super::produce::{ProduceRequest, ProduceResponse};
use super::sasl::{SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse};

/// A decoded request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestBody<'a> {
    Produce(ProduceRequest<'a>),
    Fetch(FetchRequest<'a>),
    Metadata(MetadataRequest<'a>),
    FindCoordinator(FindCoordinatorRequest<'a>),
    ApiVersions(ApiVersionsRequest<'a>),
    SaslHandshake(SaslHandshakeRequest<'a>),
    SaslAuthenticate(SaslAuthenticateRequest<'a>),
    CreateTopics(CreateTopicsRequest<'a>),
    DeleteTopics(DeleteTopicsRequest<'a>),
    CreateAcls(CreateAclsRequest<'a>),
    DeleteAcls(DeleteAclsRequest<'a>),
    /// Not decoded: passes by header.
    Other,
}

impl<'a> RequestBody<'a> {
    pub fn parse(request: &Request<'a>) -> Result<Self, KafkaError> {
        let (b, v) = (request.body, request.header.api_version);
        Ok(match request.header.api_key {
            ApiKey::PRODUCE => RequestBody::Produce(ProduceRequest::parse(b, v)?),
            ApiKey::FETCH => RequestBody::Fetch(FetchRequest::parse(b, v)?),
            ApiKey::METADATA => RequestBody::Metadata(MetadataRequest::parse(b, v)?),
            ApiKey::FIND_COORDINATOR => RequestBody::FindCoordinator(FindCoordinatorRequest::parse(b, v)?),
            ApiKey::API_VERSIONS => RequestBody::ApiVersions(ApiVersionsRequest::parse(b, v)?),
            ApiKey::SASL_HANDSHAKE => RequestBody::SaslHandshake(SaslHandshakeRequest::parse(b, v)?),
            ApiKey::SASL_AUTHENTICATE => RequestBody::SaslAuthenticate(SaslAuthenticateRequest::parse(b, v)?),
            ApiKey::CREATE_TOPICS => RequestBody::CreateTopics(CreateTopicsRequest::parse(b, v)?),
            ApiKey::DELETE_TOPICS => RequestBody::DeleteTopics(DeleteTopicsRequest::parse(b, v)?),
            ApiKey::CREATE_ACLS => RequestBody::CreateAcls(CreateAclsRequest::parse(b, v)?),
            ApiKey::DELETE_ACLS => RequestBody::DeleteAcls(DeleteAclsRequest::parse(b, v)?),
            _ => RequestBody::Other,
        })
    }
}

/// A decoded response body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseBody<'a> {
    Produce(ProduceResponse<'a>),
    Fetch(FetchResponse<'a>),
    Metadata(MetadataResponse<'a>),
    FindCoordinator(FindCoordinatorResponse<'a>),
    DescribeCluster(DescribeClusterResponse<'a>),
    ApiVersions(ApiVersionsResponse),
    SaslHandshake(SaslHandshakeResponse<'a>),
    SaslAuthenticate(SaslAuthenticateResponse<'a>),
    /// Not decoded: passes by header.
    Other,
}

impl<'a> ResponseBody<'a> {
    pub fn parse(response: &Response<'a>) -> Result<Self, KafkaError> {
        let (b, v) = (response.body, response.api_version);
        Ok(match response.api_key {
            ApiKey::PRODUCE => ResponseBody::Produce(ProduceResponse::parse(b, v)?),
            ApiKey::FETCH => ResponseBody::Fetch(FetchResponse::parse(b, v)?),
            ApiKey::METADATA => ResponseBody::Metadata(MetadataResponse::parse(b, v)?),
            ApiKey::FIND_COORDINATOR => ResponseBody::FindCoordinator(FindCoordinatorResponse::parse(b, v)?),
            ApiKey::DESCRIBE_CLUSTER => ResponseBody::DescribeCluster(DescribeClusterResponse::parse(b, v)?),
            ApiKey::API_VERSIONS => ResponseBody::ApiVersions(ApiVersionsResponse::parse(b, v)?),
            ApiKey::SASL_HANDSHAKE => ResponseBody::SaslHandshake(SaslHandshakeResponse::parse(b, v)?),
            ApiKey::SASL_AUTHENTICATE => ResponseBody::SaslAuthenticate(SaslAuthenticateResponse::parse(b, v)?),
            _ => ResponseBody::Other,
        })
    }

    /// The throttle time the broker reports, where this body has one.
    pub fn throttle_time_ms(&self) -> Option<i32> {
        match self {
            ResponseBody::Produce(r) => Some(r.throttle_time_ms),
            ResponseBody::Fetch(r) => Some(r.throttle_time_ms),
            ResponseBody::Metadata(r) => Some(r.throttle_time_ms),
            ResponseBody::FindCoordinator(r) => Some(r.throttle_time_ms),
            ResponseBody::DescribeCluster(r) => Some(r.throttle_time_ms),
            ResponseBody::ApiVersions(r) => Some(r.throttle_time_ms),
            _ => None,
        }
    }
}
