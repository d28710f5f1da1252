//! ApiVersions (api key 18), v0-4.
//!
//! Spec: "ApiVersions API" (<https://kafka.apache.org/protocol#The_Messages_ApiVersions>),
//! KIP-35 and KIP-511 (<https://cwiki.apache.org/confluence/display/KAFKA/KIP-511%3A+Collect+and+Expose+Client%27s+Name+and+Version+in+the+Brokers>):
//! v3 adds the client software name and version to the request and is flexible, but the
//! response header stays v0 (see [`super::ApiKey::response_header_version`]). A broker
//! that does not support the requested version answers UNSUPPORTED_VERSION (35) in a **v0**
//! body listing its own ApiVersions range; [`ApiVersionsResponse::parse`] falls back to v0
//! for that. The response's top-level tagged fields (SupportedFeatures, FinalizedFeatures…)
//! are skipped.
//!
//! ```text
//! Request  => client_software_name client_software_version (v3+)
//! Response => error_code [api_key min_version max_version] throttle_time_ms (v1+)
//! ```

use super::api::ApiKey;
use super::error::KafkaError;
use super::reader::Reader;

/// The highest ApiVersions version decoded.
pub const MAX_VERSION: i16 = 4;

/// UNSUPPORTED_VERSION, the error that comes with a v0 fallback body.
pub const UNSUPPORTED_VERSION: i16 = 35;

fn check_version(version: i16) -> Result<bool, KafkaError> {
    if !(0..=MAX_VERSION).contains(&version) {
        return Err(KafkaError::UnsupportedVersion { api: ApiKey::API_VERSIONS, version });
    }
    Ok(version >= 3)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApiVersionsRequest<'a> {
    pub client_software_name: Option<&'a str>,
    pub client_software_version: Option<&'a str>,
}

impl<'a> ApiVersionsRequest<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        let flexible = check_version(version)?;
        let mut r = Reader::new(body);
        let mut req = ApiVersionsRequest::default();
        if version >= 3 {
            req.client_software_name = Some(r.string(flexible, "api_versions client_software_name")?);
            req.client_software_version = Some(r.string(flexible, "api_versions client_software_version")?);
            r.tagged_fields("api_versions tagged fields")?;
        }
        Ok(req)
    }
}

/// One API's supported version range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiVersionRange {
    pub api_key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiVersionsResponse {
    pub error_code: i16,
    pub api_keys: Vec<ApiVersionRange>,
    pub throttle_time_ms: i32,
    /// The body version actually read: the request's, or 0 for a KIP-511 fallback.
    pub version: i16,
}

impl ApiVersionsResponse {
    pub fn parse(body: &[u8], version: i16) -> Result<Self, KafkaError> {
        match Self::parse_exact(body, version) {
            Err(e) if version > 0 && Reader::new(body).i16("").ok() == Some(UNSUPPORTED_VERSION) => {
                Self::parse_exact(body, 0).map_err(|_| e)
            }
            other => other,
        }
    }

    fn parse_exact(body: &[u8], version: i16) -> Result<Self, KafkaError> {
        let flexible = check_version(version)?;
        let mut r = Reader::new(body);
        let error_code = r.i16("api_versions error_code")?;
        let n = r.array_len(flexible, 6, "api_versions api_keys")?;
        let mut api_keys = Vec::new();
        for _ in 0..n {
            let api_key = ApiKey(r.i16("api_versions api_key")?);
            let min_version = r.i16("api_versions min_version")?;
            let max_version = r.i16("api_versions max_version")?;
            r.tags_if(flexible, "api_versions api_key tagged fields")?;
            api_keys.push(ApiVersionRange { api_key, min_version, max_version });
        }
        let throttle_time_ms = if version >= 1 { r.i32("api_versions throttle_time_ms")? } else { 0 };
        r.tags_if(flexible, "api_versions tagged fields")?;
        r.finish("api_versions response")?;
        Ok(ApiVersionsResponse { error_code, api_keys, throttle_time_ms, version })
    }

    /// The broker's range for `api_key`, if it lists it.
    pub fn range(&self, api_key: ApiKey) -> Option<ApiVersionRange> {
        self.api_keys.iter().copied().find(|r| r.api_key == api_key)
    }
}
