//! Request and response headers.
//!
//! Spec: "Headers" in <https://kafka.apache.org/protocol#protocol_messages> and the
//! `RequestHeader.json` / `ResponseHeader.json` message definitions:
//!
//! ```text
//! Request Header v0 => api_key:int16 api_version:int16 correlation_id:int32
//! Request Header v1 => v0 + client_id:NULLABLE_STRING
//! Request Header v2 => v1 + TAG_BUFFER          (client_id stays a non-compact string)
//! Response Header v0 => correlation_id:int32
//! Response Header v1 => correlation_id:int32 TAG_BUFFER
//! ```
//!
//! Which version applies is decided by [`ApiKey::request_header_version`] and
//! [`ApiKey::response_header_version`]; a response's api key and version come from the
//! request it answers (see [`super::Correlator`]).

use bytes::{BufMut, Bytes, BytesMut};

use super::api::ApiKey;
use super::error::KafkaError;
use super::reader::Reader;

/// A parsed request header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHeader<'a> {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    /// Absent in header v0; null or a string from v1.
    pub client_id: Option<&'a str>,
    /// 0, 1 or 2.
    pub header_version: u8,
}

/// A request: its header and its body (the bytes after the header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub header: RequestHeader<'a>,
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// Parses the header at the front of a frame's payload. An unknown API key is read as
    /// header v1 (its body is opaque).
    pub fn parse(payload: &'a [u8]) -> Result<Request<'a>, KafkaError> {
        let mut r = Reader::new(payload);
        let api_key = ApiKey(r.i16("request api_key")?);
        let api_version = r.i16("request api_version")?;
        let correlation_id = r.i32("request correlation_id")?;
        let header_version = api_key.request_header_version(api_version);
        let client_id = if header_version >= 1 { r.nullable_string(false, "request client_id")? } else { None };
        if header_version >= 2 {
            r.tagged_fields("request header tagged fields")?;
        }
        let header = RequestHeader { api_key, api_version, correlation_id, client_id, header_version };
        Ok(Request { header, body: r.rest() })
    }

    /// Whether the broker answers: everything but a Produce with acks=0.
    pub fn expects_response(&self) -> bool {
        if self.header.api_key != ApiKey::PRODUCE {
            return true;
        }
        super::produce::acks(self.body, self.header.api_version) != Ok(0)
    }

    /// Whether the body uses flexible (KIP-482) encodings; `None` for an unknown API key.
    pub fn is_flexible(&self) -> Option<bool> {
        self.header.api_key.is_flexible(self.header.api_version)
    }
}

/// A response matched to its request: the api key and version come from the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    /// The response header version; `None` for an unknown API (then `body` follows the
    /// correlation id and may start with tagged fields).
    pub header_version: Option<u8>,
    /// The header's bytes (correlation id and any tagged fields), kept for re-framing.
    pub header: &'a [u8],
    pub body: &'a [u8],
}

/// The correlation id at the front of a response payload (common to every header version).
pub fn response_correlation_id(payload: &[u8]) -> Result<i32, KafkaError> {
    Reader::new(payload).i32("response correlation_id")
}

impl<'a> Response<'a> {
    /// Parses the header of a response to a request of `api_key` at `api_version`.
    pub fn parse(payload: &'a [u8], api_key: ApiKey, api_version: i16) -> Result<Response<'a>, KafkaError> {
        let mut r = Reader::new(payload);
        let correlation_id = r.i32("response correlation_id")?;
        let header_version = api_key.response_header_version(api_version);
        if header_version == Some(1) {
            r.tagged_fields("response header tagged fields")?;
        }
        let (header, body) = payload.split_at(r.position());
        Ok(Response { api_key, api_version, correlation_id, header_version, header, body })
    }

    /// Whether the body uses flexible (KIP-482) encodings (ApiVersions v3+ included,
    /// though its header is v0); `None` for an unknown API key.
    pub fn is_flexible(&self) -> Option<bool> {
        self.api_key.is_flexible(self.api_version)
    }

    /// A whole frame with this response's header and `body` (for a rewritten body): the
    /// size is recomputed, the header bytes are copied as they came.
    pub fn reframe(&self, body: &[u8]) -> Result<Bytes, KafkaError> {
        let len = self.header.len().checked_add(body.len()).ok_or(KafkaError::TooLargeToEncode { what: "frame" })?;
        let size = i32::try_from(len).map_err(|_| KafkaError::TooLargeToEncode { what: "frame" })?;
        let mut out = BytesMut::with_capacity(len + 4);
        out.put_i32(size);
        out.put_slice(self.header);
        out.put_slice(body);
        Ok(out.freeze())
    }
}

/// Writes a response frame's size placeholder and header; [`finish_frame`] fills the size.
pub(crate) fn start_response(correlation_id: i32, api_key: ApiKey, api_version: i16) -> BytesMut {
    let mut out = BytesMut::with_capacity(64);
    out.put_i32(0);
    out.put_i32(correlation_id);
    if api_key.response_header_version(api_version) == Some(1) {
        out.put_u8(0);
    }
    out
}

/// Fills the size prefix written by [`start_response`].
pub(crate) fn finish_frame(mut out: BytesMut) -> Result<Bytes, KafkaError> {
    let size =
        i32::try_from(out.len().saturating_sub(4)).map_err(|_| KafkaError::TooLargeToEncode { what: "frame" })?;
    if let Some(prefix) = out.get_mut(..4) {
        prefix.copy_from_slice(&size.to_be_bytes());
    }
    Ok(out.freeze())
}
