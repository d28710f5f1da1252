//! Hostile input: lying size prefixes, array counts and string lengths, overlong varints,
//! tagged-field bombs, truncation at every byte of every captured body, record batches
//! with bad lengths and magic, correlator abuse. Each must give a typed error (the exact
//! variant is asserted where it is fixed), never a panic or an allocation sized by a length
//! field; arbitrary bytes are thrown at every body parser and version by proptest.

use bytes::BytesMut;
use proptest::prelude::*;

use super::tests::{batch_v2, fixture_names, replay, request_frame, response_frame};
use super::*;
use crate::framing::{Decode, Limits};

#[test]
fn negative_and_oversized_sizes_fail_before_the_bytes_arrive() {
    let mut d = FrameDecoder::new(Limits { max_frame: 1024, max_depth: 8 });
    let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
    assert_eq!(d.decode(&mut buf), Err(KafkaError::NegativeSize { size: -1 }));
    assert_eq!(buf.len(), 4, "an error consumes nothing");
    let mut buf = BytesMut::from(&1025i32.to_be_bytes()[..]);
    assert_eq!(d.decode(&mut buf), Err(KafkaError::FrameTooLarge { size: 1025, limit: 1024 }));
    assert_eq!(
        peek(&i32::MAX.to_be_bytes(), &default_limits()),
        Err(KafkaError::FrameTooLarge { size: i32::MAX as usize, limit: MAX_FRAME_SIZE })
    );
    // Within the limit: waits, reserving no more than the cap allows.
    let mut buf = BytesMut::from(&1024i32.to_be_bytes()[..]);
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), 4);
    // The default is the broker's socket.request.max.bytes.
    assert_eq!(default_limits().max_frame, 100 * 1024 * 1024);
    let mut buf = BytesMut::from(&(100 * 1024 * 1024i32 + 1).to_be_bytes()[..]);
    assert!(matches!(FrameDecoder::default().decode(&mut buf), Err(KafkaError::FrameTooLarge { .. })));
}

#[test]
fn frames_must_be_exactly_one_frame() {
    let f = Frame::from_payload(b"abc").unwrap();
    let mut longer = f.bytes().to_vec();
    longer.push(0);
    assert_eq!(Frame::new(longer.into(), &default_limits()), Err(KafkaError::NotOneFrame { expected: 7, actual: 8 }));
    assert_eq!(
        Frame::new(bytes::Bytes::from_static(&[0, 0]), &default_limits()),
        Err(KafkaError::Truncated { what: "frame size" })
    );
    // An empty frame is legal at this layer (a raw SASL answer), not as a request.
    let empty = Frame::from_payload(b"").unwrap();
    assert_eq!(Request::parse(empty.payload()), Err(KafkaError::Truncated { what: "request api_key" }));
}

#[test]
fn array_counts_are_checked_against_the_bytes_present() {
    // Metadata v1 response: no throttle, brokers array claiming 2^31-1 entries in 5 bytes.
    let body = [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0];
    assert_eq!(
        MetadataResponse::parse(&body, 1),
        Err(KafkaError::ArrayTooLong { what: "metadata brokers", count: i32::MAX as usize, left: 5 })
    );
    // A compact array (Produce v9 request): count 2^32-2 as an unsigned varint.
    let body = [0, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(matches!(ProduceRequest::parse(&body, 9), Err(KafkaError::ArrayTooLong { what: "produce topics", .. })));
    // Negative counts other than -1 are malformed, -1 is null (not allowed here).
    let body = [0xff, 0xff, 0xff, 0xfe];
    assert_eq!(MetadataResponse::parse(&body, 0), Err(KafkaError::Malformed { what: "metadata brokers" }));
    let body = [0xff, 0xff, 0xff, 0xff];
    assert_eq!(MetadataResponse::parse(&body, 0), Err(KafkaError::Malformed { what: "metadata brokers" }));
}

#[test]
fn lengths_and_varints_are_bounded() {
    let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert_eq!(r.unsigned_varint("v"), Err(KafkaError::VarintTooLong { what: "v" }));
    let mut r = Reader::new(&[0x80, 0x80]);
    assert_eq!(r.unsigned_varint("v"), Err(KafkaError::Truncated { what: "v" }));
    let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(r.unsigned_varint("v"), Ok(u32::MAX));
    assert_eq!(Reader::new(&[0x03]).varint("v"), Ok(-2));
    assert_eq!(Reader::new(&[0x04]).varint("v"), Ok(2));
    assert_eq!(Reader::new(&[0xff; 10]).varlong("v"), Err(KafkaError::VarintTooLong { what: "v" }));
    assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).varlong("v"), Ok(i64::MIN));
    // A string claiming more bytes than there are.
    assert_eq!(Reader::new(&[0x7f, 0xff, b'a']).string(false, "s"), Err(KafkaError::Truncated { what: "s" }));
    assert_eq!(Reader::new(&[0x80, 0x00]).string(false, "s"), Err(KafkaError::Malformed { what: "s" }));
    assert_eq!(Reader::new(&[0x00]).string(true, "s"), Err(KafkaError::Malformed { what: "s" }), "compact null");
    assert_eq!(Reader::new(&[0x00]).nullable_string(true, "s"), Ok(None));
    assert_eq!(Reader::new(&[0x00, 0x01, 0xff]).string(false, "s"), Err(KafkaError::InvalidUtf8 { what: "s" }));
    assert_eq!(Reader::new(&[0x02]).bool("b"), Err(KafkaError::Malformed { what: "b" }));
}

#[test]
fn tagged_field_sections_are_bounded_and_ordered() {
    // 2^32-1 fields claimed in 3 bytes.
    let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0]);
    assert!(matches!(r.tagged_fields("t"), Err(KafkaError::ArrayTooLong { .. })));
    // A field whose size runs past the end.
    let mut r = Reader::new(&[1, 0, 0x7f]);
    assert_eq!(r.tagged_fields("t"), Err(KafkaError::Truncated { what: "t" }));
    // Tags must ascend.
    let mut r = Reader::new(&[2, 1, 0, 1, 0]);
    assert_eq!(r.tagged_fields("t"), Err(KafkaError::Malformed { what: "t" }));
    // Unknown tags are skipped.
    let mut r = Reader::new(&[2, 0, 1, 0xaa, 9, 2, 0xbb, 0xcc, 7]);
    assert_eq!(r.tagged_fields("t"), Ok(()));
    assert_eq!(r.rest(), [7]);
}

#[test]
fn unsupported_versions_are_typed() {
    assert_eq!(
        ProduceRequest::parse(&[], 14),
        Err(KafkaError::UnsupportedVersion { api: ApiKey::PRODUCE, version: 14 })
    );
    assert_eq!(FetchResponse::parse(&[], -1), Err(KafkaError::UnsupportedVersion { api: ApiKey::FETCH, version: -1 }));
    assert_eq!(
        MetadataResponse::parse(&[], 13),
        Err(KafkaError::UnsupportedVersion { api: ApiKey::METADATA, version: 13 })
    );
    // A request of an unsupported version still passes by its header.
    let f = request_frame(ApiKey::METADATA, 42, 1, b"future");
    let mut c: Correlator<()> = Correlator::new(2);
    let Inbound::Request(r) = c.request(&f, ()).unwrap() else { panic!() };
    assert!(RequestBody::parse(&r).is_err());
    assert_eq!(c.in_flight(), 1);
}

#[test]
fn record_batches_with_lying_lengths_or_magic_are_errors() {
    let good = batch_v2(2, 3, b"snappy");
    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert_eq!(summarize(&bad, false), Err(KafkaError::Malformed { what: "record batch length" }));
    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert_eq!(summarize(&bad, false), Err(KafkaError::Truncated { what: "record batch" }));
    assert_eq!(summarize(&bad, true).map(|s| (s.batches, s.partial_bytes)), Ok((0, bad.len())));
    let mut bad = good.clone();
    bad[16] = 7;
    assert_eq!(summarize(&bad, false), Err(KafkaError::Malformed { what: "record batch magic" }));
    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&20i32.to_be_bytes());
    assert_eq!(summarize(&bad[..32], false), Err(KafkaError::Malformed { what: "record batch length" }));
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    assert_eq!(batches(&bad, false).next().unwrap().unwrap().crc_ok(), Some(false));
    let mut bad = good;
    bad[57..61].copy_from_slice(&(-1i32).to_be_bytes());
    assert_eq!(summarize(&bad, false), Err(KafkaError::Malformed { what: "record batch recordsCount" }));
}

#[test]
fn correlator_abuse_is_typed_and_leaves_the_queue_alone() {
    let mut c: Correlator<u8> = Correlator::new(2);
    let meta = |id| request_frame(ApiKey::METADATA, 1, id, &[0, 0, 0, 0]);
    let answer = |id| response_frame(ApiKey::METADATA, 1, id, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(c.response(&answer(1)), Err(KafkaError::UnsolicitedResponse { got: 1 }));
    c.request(&meta(1), 1).unwrap();
    c.request(&meta(2), 2).unwrap();
    assert_eq!(c.request(&meta(3), 3), Err(KafkaError::TooManyInFlight { limit: 2 }));
    assert_eq!(c.response(&answer(2)), Err(KafkaError::CorrelationMismatch { expected: 1, got: 2 }));
    assert_eq!(c.in_flight(), 2);
    assert!(matches!(c.response(&answer(1)), Ok(Outbound::Response(_, 1))));
    // A response too short for its correlation id.
    assert_eq!(
        c.response(&Frame::from_payload(&[0, 0]).unwrap()),
        Err(KafkaError::Truncated { what: "response correlation_id" })
    );
    assert_eq!(c.in_flight(), 1);
    assert_eq!(c.drain().len(), 1);
    assert_eq!(c.state(), State::Ready { in_flight: 0 });
}

#[test]
fn rewriting_a_malformed_body_is_an_error_not_a_guess() {
    let body = [0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0x00];
    assert!(rewrite_metadata_brokers(&body, 0, |_, h, p| (h.to_owned(), p)).is_err());
    assert!(rewrite_find_coordinator(&[0, 0], 0, |_, h, p| (h.to_owned(), p)).is_err());
    assert_eq!(rewrite_brokers(ApiKey::PRODUCE, 9, &[], |_, h, p| (h.to_owned(), p)), Ok(None));
    // A host too long for its i16 length.
    let body = [0, 0, 0, 1, 0, 0, 0, 1, 0, 1, b'h', 0, 0, 0x23, 0x84, 0, 0, 0, 0];
    let long = "h".repeat(40_000);
    assert_eq!(
        rewrite_metadata_brokers(&body, 0, |_, _, p| (long.clone(), p)),
        Err(KafkaError::TooLargeToEncode { what: "broker host" })
    );
}

/// Every captured request and response body, cut short at every byte, is an error (a request
/// cut only inside the bytes after its last field, which are ignored, reads the same), never
/// a panic.
#[test]
fn every_captured_body_truncated_anywhere_fails_cleanly() {
    for name in fixture_names() {
        for x in replay(&name) {
            let req = x.request();
            let full = req.body;
            let whole = RequestBody::parse(&req).unwrap();
            for cut in (0..full.len()).filter(|_| whole != RequestBody::Other) {
                let r = Request { header: req.header, body: &full[..cut] };
                // Bytes after a request's last field are ignored: a cut into them changes nothing.
                if let Ok(b) = RequestBody::parse(&r) {
                    assert_eq!(b, whole, "{name}: {:?} cut at {cut}", req.header);
                }
            }
            let Some(resp) = x.response() else { continue };
            for cut in 0..resp.body.len() {
                let r = Response { body: &resp.body[..cut], ..resp };
                if let Ok(b) = ResponseBody::parse(&r) {
                    assert_eq!(b, ResponseBody::Other, "{name}: {:?} v{} cut at {cut}", resp.api_key, resp.api_version);
                }
            }
        }
    }
}

fn every_parser(body: &[u8], version: i16) {
    let _ = ProduceRequest::parse(body, version).map(|p| p.summary());
    let _ = ProduceResponse::parse(body, version);
    let _ = FetchRequest::parse(body, version);
    let _ = FetchResponse::parse(body, version)
        .map(|f| f.topics.iter().flat_map(|t| &t.partitions).all(|p| p.summary().is_ok() || p.records.is_some()));
    let _ = MetadataRequest::parse(body, version);
    let _ = MetadataResponse::parse(body, version);
    let _ = FindCoordinatorRequest::parse(body, version);
    let _ = FindCoordinatorResponse::parse(body, version);
    let _ = DescribeClusterResponse::parse(body, version);
    let _ = ApiVersionsRequest::parse(body, version);
    let _ = ApiVersionsResponse::parse(body, version);
    let _ = SaslHandshakeRequest::parse(body, version);
    let _ = SaslHandshakeResponse::parse(body, version);
    let _ = SaslAuthenticateRequest::parse(body, version);
    let _ = SaslAuthenticateResponse::parse(body, version);
    let _ = CreateTopicsRequest::parse(body, version);
    let _ = DeleteTopicsRequest::parse(body, version);
    let _ = CreateAclsRequest::parse(body, version);
    let _ = DeleteAclsRequest::parse(body, version);
    for key in [ApiKey::METADATA, ApiKey::FIND_COORDINATOR, ApiKey::DESCRIBE_CLUSTER] {
        if let Ok(Some(out)) = rewrite_brokers(key, version, body, |id, _, p| (format!("n{id}"), p)) {
            // What was rewritten decodes again.
            assert!(rewrite_brokers(key, version, &out, |_, h, p| (h.to_owned(), p)).unwrap().is_some());
        }
    }
    let _ = summarize(body, true);
    let _ = plain_user(body);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200), version in 0i16..20) {
        every_parser(&body, version);
    }

    #[test]
    fn arbitrary_frames_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut c: Correlator<()> = Correlator::new(4);
        let mut d = FrameDecoder::new(Limits { max_frame: 256, max_depth: 8 });
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(f)) = d.decode(&mut buf) {
            if let Ok(Inbound::Request(r)) = c.request(&f, ()) {
                if let Ok(Some(bytes)) = error_response(&r, 1, 0, None) {
                    prop_assert!(Frame::new(bytes, &default_limits()).is_ok());
                }
            }
            let _ = c.response(&f).map(|o| if let Outbound::Response(r, ()) = o { let _ = ResponseBody::parse(&r); });
        }
    }
}

/// Fuzz crash 1 (`kafka_request`): a Produce v0 with acks=0 got an error response, which
/// the client would have taken for the answer to its next request. Such a request is never
/// answered.
#[test]
fn produce_with_acks_0_gets_no_error_response() {
    // Produce v0, correlation id 0x29000000, empty client id: acks 0, timeout 0, no topics.
    let mut input = vec![0, 0, 0, 0x14, 0, 0, 0, 0, 0x29, 0, 0, 0, 0, 0];
    input.extend_from_slice(&[0; 10]);
    let f = Frame::new(input.into(), &default_limits()).unwrap();
    let req = Request::parse(f.payload()).unwrap();
    assert!(!req.expects_response());
    assert_eq!(error_response(&req, POLICY_VIOLATION, 0, None), Ok(None));
}
