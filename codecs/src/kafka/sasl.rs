//! SaslHandshake (api key 17, v0-1) and SaslAuthenticate (api key 36, v0-2), and the PLAIN
//! principal.
//!
//! Spec: "SaslHandshake API" / "SaslAuthenticate API"
//! (<https://kafka.apache.org/protocol#The_Messages_SaslHandshake>), KIP-43 (handshake; with
//! v0 the SASL tokens then travel as bare size-prefixed frames without a Kafka header, see
//! [`super::Correlator`]) and KIP-152 (SaslAuthenticate wraps the tokens, v1 handshake on).
//! PLAIN's token is RFC 4616 (<https://www.rfc-editor.org/rfc/rfc4616>):
//! `[authzid] NUL authcid NUL passwd`. [`plain_user`] returns the authentication identity and
//! never the password.
//!
//! ```text
//! SaslHandshake Request     => mechanism:string
//! SaslHandshake Response    => error_code [mechanisms]
//! SaslAuthenticate Request  => auth_bytes:bytes (compact v2+)
//! SaslAuthenticate Response => error_code error_message auth_bytes session_lifetime_ms (v1+)
//! ```

use super::api::ApiKey;
use super::error::KafkaError;
use super::reader::Reader;

fn unsupported(api: ApiKey, version: i16) -> KafkaError {
    KafkaError::UnsupportedVersion { api, version }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaslHandshakeRequest<'a> {
    pub mechanism: &'a str,
}

impl<'a> SaslHandshakeRequest<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        if !(0..=1).contains(&version) {
            return Err(unsupported(ApiKey::SASL_HANDSHAKE, version));
        }
        let mut r = Reader::new(body);
        let mechanism = r.string(false, "sasl_handshake mechanism")?;
        Ok(SaslHandshakeRequest { mechanism })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslHandshakeResponse<'a> {
    pub error_code: i16,
    pub mechanisms: Vec<&'a str>,
}

impl<'a> SaslHandshakeResponse<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        if !(0..=1).contains(&version) {
            return Err(unsupported(ApiKey::SASL_HANDSHAKE, version));
        }
        let mut r = Reader::new(body);
        let error_code = r.i16("sasl_handshake error_code")?;
        let n = r.array_len(false, 2, "sasl_handshake mechanisms")?;
        let mut mechanisms = Vec::new();
        for _ in 0..n {
            mechanisms.push(r.string(false, "sasl_handshake mechanism")?);
        }
        r.finish("sasl_handshake response")?;
        Ok(SaslHandshakeResponse { error_code, mechanisms })
    }
}

/// The raw error code at the front of a SaslHandshake response (what the correlator needs).
pub(crate) fn handshake_error_code(body: &[u8]) -> Option<i16> {
    Reader::new(body).i16("").ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaslAuthenticateRequest<'a> {
    /// The SASL token. For PLAIN it holds the password: use [`plain_user`], do not log it.
    pub auth_bytes: &'a [u8],
}

impl<'a> SaslAuthenticateRequest<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        if !(0..=2).contains(&version) {
            return Err(unsupported(ApiKey::SASL_AUTHENTICATE, version));
        }
        let flexible = version >= 2;
        let mut r = Reader::new(body);
        let auth_bytes = r.bytes(flexible, "sasl_authenticate auth_bytes")?;
        r.tags_if(flexible, "sasl_authenticate tagged fields")?;
        Ok(SaslAuthenticateRequest { auth_bytes })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaslAuthenticateResponse<'a> {
    pub error_code: i16,
    pub error_message: Option<&'a str>,
    pub auth_bytes: &'a [u8],
    /// v1+ (0 before).
    pub session_lifetime_ms: i64,
}

impl<'a> SaslAuthenticateResponse<'a> {
    pub fn parse(body: &'a [u8], version: i16) -> Result<Self, KafkaError> {
        if !(0..=2).contains(&version) {
            return Err(unsupported(ApiKey::SASL_AUTHENTICATE, version));
        }
        let flexible = version >= 2;
        let mut r = Reader::new(body);
        let error_code = r.i16("sasl_authenticate error_code")?;
        let error_message = r.nullable_string(flexible, "sasl_authenticate error_message")?;
        let auth_bytes = r.bytes(flexible, "sasl_authenticate auth_bytes")?;
        let session_lifetime_ms = if version >= 1 { r.i64("sasl_authenticate session_lifetime_ms")? } else { 0 };
        r.tags_if(flexible, "sasl_authenticate tagged fields")?;
        r.finish("sasl_authenticate response")?;
        Ok(SaslAuthenticateResponse { error_code, error_message, auth_bytes, session_lifetime_ms })
    }
}

/// The user of a SASL/PLAIN token (`authzid NUL authcid NUL passwd`): the authentication
/// identity `authcid`, or `None` if the token is not PLAIN-shaped or not UTF-8. The
/// password is never returned or copied.
pub fn plain_user(token: &[u8]) -> Option<&str> {
    let mut parts = token.splitn(3, |&b| b == 0);
    let _authzid = parts.next()?;
    let authcid = parts.next()?;
    // The third part (the password) must exist for the token to be PLAIN.
    parts.next()?;
    if authcid.is_empty() {
        return None;
    }
    std::str::from_utf8(authcid).ok()
}

/// The authorization identity of a PLAIN token, when one is given (empty otherwise).
pub fn plain_authzid(token: &[u8]) -> Option<&str> {
    plain_user(token)?;
    let authzid = token.split(|&b| b == 0).next()?;
    (!authzid.is_empty()).then(|| std::str::from_utf8(authzid).ok()).flatten()
}
