//! Capping the versions a broker advertises, so no response names a broker in a place the
//! rewrite does not reach.
//!
//! Spec: KIP-951 (<https://cwiki.apache.org/confluence/display/KAFKA/KIP-951%3A+Leader+discovery+optimisations+for+the+client>):
//! from Produce v10 and Fetch v16, a response to a request sent to the wrong broker carries
//! the new leader's host and port in a tagged field (`NodeEndpoints`). A proxy that let
//! those through would tell the client a broker's real address. Clients pick the highest
//! version both sides support (ApiVersions, KIP-511), so the filter lowers the broker's
//! advertised maximum for these two APIs to the last version without the field; the client
//! then learns leaders from Metadata, which is rewritten. For the same reason the three APIs
//! whose responses are rewritten (Metadata, FindCoordinator, DescribeCluster) are capped at
//! the last version the codec decodes: a newer broker's later version would otherwise be a
//! response the filter cannot rewrite, and so a closed connection. Only the max_version
//! fields change, in place; every other byte of the response stays as it came.
//!
//! ```text
//! ApiVersions Response v0-2 => error_code [api_key min_version max_version] throttle_time_ms (v1+)
//! ApiVersions Response v3+  => error_code [api_key min_version max_version TAG_BUFFER]
//!                              throttle_time_ms TAG_BUFFER
//! ```

use bytes::{Bytes, BytesMut};
use sluice_codecs::kafka::{ApiKey, KafkaError, Reader};

/// The highest version of an API a client may use through sluice: for Produce and Fetch
/// the last whose responses cannot name a broker (KIP-951); for the APIs whose responses
/// are rewritten, the last the codec decodes (`sluice_codecs::kafka` metadata,
/// coordinator modules).
fn cap(api: ApiKey) -> Option<i16> {
    match api {
        ApiKey::PRODUCE => Some(9),
        ApiKey::FETCH => Some(15),
        ApiKey::METADATA => Some(12),
        ApiKey::FIND_COORDINATOR => Some(6),
        ApiKey::DESCRIBE_CLUSTER => Some(2),
        _ => None,
    }
}

/// How many APIs [`cap`] names.
const CAPPED: usize = 5;

/// The ApiVersions response body with the capped maxima, or `None` when nothing needs to
/// change.
pub fn cap_api_versions(body: &[u8], version: i16) -> Result<Option<Bytes>, KafkaError> {
    let flexible = version >= 3;
    let mut r = Reader::new(body);
    r.i16("api_versions error_code")?;
    let n = r.array_len(flexible, 6, "api_versions api_keys")?;
    // (position of max_version, new value): at most one per capped API.
    let mut patches: [(usize, i16); CAPPED] = [(0, 0); CAPPED];
    let mut found = 0;
    for _ in 0..n {
        let api = ApiKey(r.i16("api_versions api_key")?);
        r.i16("api_versions min_version")?;
        let at = r.position();
        let max = r.i16("api_versions max_version")?;
        if flexible {
            r.tagged_fields("api_versions api_key tagged fields")?;
        }
        if let Some(limit) = cap(api) {
            if max > limit && found < patches.len() {
                patches[found] = (at, limit);
                found += 1;
            }
        }
    }
    if found == 0 {
        return Ok(None);
    }
    let mut out = BytesMut::from(body);
    for &(at, limit) in &patches[..found] {
        if let Some(field) = out.get_mut(at..at + 2) {
            field.copy_from_slice(&limit.to_be_bytes());
        }
    }
    Ok(Some(out.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(flexible: bool, entries: &[(i16, i16, i16)]) -> Vec<u8> {
        let mut b = vec![0, 0];
        if flexible {
            b.push(entries.len() as u8 + 1);
        } else {
            b.extend_from_slice(&(entries.len() as i32).to_be_bytes());
        }
        for &(k, min, max) in entries {
            b.extend_from_slice(&k.to_be_bytes());
            b.extend_from_slice(&min.to_be_bytes());
            b.extend_from_slice(&max.to_be_bytes());
            if flexible {
                b.push(0);
            }
        }
        b.extend_from_slice(&0i32.to_be_bytes());
        if flexible {
            b.push(0);
        }
        b
    }

    #[test]
    fn produce_and_fetch_maxima_are_capped_in_place() {
        for flexible in [false, true] {
            let version = if flexible { 3 } else { 2 };
            let original = body(flexible, &[(0, 0, 11), (1, 0, 17), (3, 0, 13), (10, 0, 6), (18, 0, 4)]);
            let capped = cap_api_versions(&original, version).unwrap().unwrap();
            let expected = body(flexible, &[(0, 0, 9), (1, 0, 15), (3, 0, 12), (10, 0, 6), (18, 0, 4)]);
            assert_eq!(&capped[..], &expected[..]);
            let low = body(flexible, &[(0, 0, 8), (1, 0, 11)]);
            assert_eq!(cap_api_versions(&low, version).unwrap(), None);
        }
    }

    #[test]
    fn truncated_bodies_are_errors() {
        let original = body(true, &[(0, 0, 11), (1, 0, 17)]);
        for end in 0..original.len() - 6 {
            assert!(cap_api_versions(&original[..end], 3).is_err(), "cut at {end}");
        }
    }
}
