//! Kafka client traffic from arbitrary bytes, as a proxy meets it: framed by
//! `FrameDecoder`, every frame run through the `Correlator` (request headers, open API
//! keys), every request body this codec knows decoded (Produce record sets counted), and
//! every answerable request answered by `error_response`, whose frame must decode as that
//! API's response to that request and echo its topics and partitions.
//!
//! Must hold: no panic (overflow checks are on); the frames are exactly the consumed bytes,
//! and feeding the same bytes in two pieces finds the same frames and the same error; a
//! framing error leaves the buffer untouched; the correlator never holds more than its cap.
//!
//! Input: the first byte picks the limits (bit 0: a small max_frame, so the size check is
//! reached) and where to split the rest (bits 1..=7, a fraction of the length); the rest
//! is the client's byte stream. Seeds: each fixture's client side (`fuzz/seeds/kafka_request`).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_codecs::kafka::{
    default_limits, error_response, Correlator, Frame, FrameDecoder, Inbound, KafkaError, Outbound, RequestBody,
    ResponseBody,
};
use sluice_codecs::{Decode, Limits};

const MAX_IN_FLIGHT: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let limits = Limits { max_frame: if mode & 1 == 1 { 512 } else { 1 << 20 }, max_depth: 8 };
    let (frames, error) = frame(input, &[], limits);
    let split = input.len() * usize::from(mode >> 1) / 128;
    assert_eq!(frame(input, &[split], limits), (frames.clone(), error), "split at {split}");

    let mut consumed = 0;
    let mut correlator: Correlator<usize> = Correlator::new(MAX_IN_FLIGHT);
    for (i, f) in frames.iter().enumerate() {
        let len = f.bytes().len();
        assert_eq!(&input[consumed..consumed + len], &f.bytes()[..]);
        consumed += len;
        let Ok(Inbound::Request(req)) = correlator.request(f, i) else { continue };
        assert!(correlator.in_flight() <= MAX_IN_FLIGHT);
        let body = RequestBody::parse(&req);
        if let Ok(RequestBody::Produce(p)) = &body {
            let _ = p.summary();
        }
        let Ok(Some(bytes)) = error_response(&req, 44, 100, Some("fuzz")) else { continue };
        // The error response decodes as the answer to this request.
        let answer = Frame::new(bytes, &default_limits()).expect("an error response is one frame");
        let mut c: Correlator<()> = Correlator::new(1);
        c.request(f, ()).expect("the request parsed once");
        match c.response(&answer) {
            Ok(Outbound::Response(resp, ())) => {
                let decoded = ResponseBody::parse(&resp);
                assert!(decoded.is_ok(), "{:?}: {decoded:?}", req.header);
            }
            other => panic!("{other:?}"),
        }
    }
    let _ = correlator.drain();
});

/// Frames `input` fed in pieces ending at `cuts`: the frames and the error that stopped it.
fn frame(input: &[u8], cuts: &[usize], limits: Limits) -> (Vec<Frame>, Option<KafkaError>) {
    let mut decoder = FrameDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = vec![];
    let mut given = 0;
    for &cut in cuts.iter().filter(|&&c| c > 0 && c < input.len()).chain([&input.len()]) {
        buf.extend_from_slice(&input[given..cut]);
        given = cut;
        loop {
            let before = buf.clone();
            match decoder.decode(&mut buf) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => {
                    assert_eq!(buf, before, "Ok(None) consumed bytes");
                    break;
                }
                Err(e) => {
                    assert_eq!(buf, before, "an error consumed bytes");
                    return (out, Some(e));
                }
            }
        }
    }
    (out, None)
}
