//! Primitive types of the Kafka protocol, written (the inverse of [`super::Reader`]).
//!
//! Spec: "Protocol Primitive Types" (<https://kafka.apache.org/protocol#protocol_types>),
//! KIP-482 for the compact forms. Used by the broker-address rewrite and the error
//! responses; every length is checked to fit its field.

use bytes::{BufMut, BytesMut};

use super::error::KafkaError;

pub(crate) fn put_unsigned_varint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// A length prefix: i16 / i32, or in flexible versions an unsigned varint of length + 1.
fn put_len(
    out: &mut BytesMut,
    len: Option<usize>,
    flexible: bool,
    wide: bool,
    what: &'static str,
) -> Result<(), KafkaError> {
    let too_large = KafkaError::TooLargeToEncode { what };
    match (len, flexible, wide) {
        (None, true, _) => out.put_u8(0),
        (None, false, false) => out.put_i16(-1),
        (None, false, true) => out.put_i32(-1),
        (Some(n), true, _) => {
            let n = u32::try_from(n).ok().and_then(|n| n.checked_add(1)).ok_or(too_large)?;
            put_unsigned_varint(out, n);
        }
        (Some(n), false, false) => out.put_i16(i16::try_from(n).map_err(|_| too_large)?),
        (Some(n), false, true) => out.put_i32(i32::try_from(n).map_err(|_| too_large)?),
    }
    Ok(())
}

pub(crate) fn put_nullable_string(
    out: &mut BytesMut,
    s: Option<&str>,
    flexible: bool,
    what: &'static str,
) -> Result<(), KafkaError> {
    put_len(out, s.map(str::len), flexible, false, what)?;
    if let Some(s) = s {
        out.put_slice(s.as_bytes());
    }
    Ok(())
}

pub(crate) fn put_string(out: &mut BytesMut, s: &str, flexible: bool, what: &'static str) -> Result<(), KafkaError> {
    put_nullable_string(out, Some(s), flexible, what)
}

pub(crate) fn put_nullable_bytes(
    out: &mut BytesMut,
    b: Option<&[u8]>,
    flexible: bool,
    what: &'static str,
) -> Result<(), KafkaError> {
    put_len(out, b.map(<[u8]>::len), flexible, true, what)?;
    if let Some(b) = b {
        out.put_slice(b);
    }
    Ok(())
}

pub(crate) fn put_array_len(
    out: &mut BytesMut,
    n: usize,
    flexible: bool,
    what: &'static str,
) -> Result<(), KafkaError> {
    put_len(out, Some(n), flexible, true, what)
}

pub(crate) fn put_null_array(out: &mut BytesMut, flexible: bool) {
    // A null length cannot fail to encode.
    let _ = put_len(out, None, flexible, true, "array");
}

/// An empty tagged-field section, when `flexible`.
pub(crate) fn put_no_tags(out: &mut BytesMut, flexible: bool) {
    if flexible {
        out.put_u8(0);
    }
}
