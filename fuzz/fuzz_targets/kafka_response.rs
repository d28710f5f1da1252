//! Kafka broker traffic from arbitrary bytes, matched to a client stream: the client side
//! is framed and run through the `Correlator` first (so responses have api keys and
//! versions to be read with), then the server side is framed and every frame matched,
//! its header read in the right version (ApiVersions: v0), and every body this codec knows
//! decoded (Fetch record sets counted). Every Metadata / FindCoordinator / DescribeCluster
//! body that decodes has its broker addresses rewritten: the rewritten body decodes to the
//! same value but for the addresses, rewriting it back restores the original bytes, and the
//! re-framed response still matches.
//!
//! Must hold: no panic (overflow checks are on); frames are exactly the consumed bytes;
//! the correlator never holds more than its cap; the rewrite round trip above.
//!
//! Input: the first byte picks the limits (bit 0: a small max_frame); then a big-endian u32
//! giving the length of the client stream (clamped to what is there), the client stream,
//! and the server stream. Seeds: each fixture connection (`fuzz/seeds/kafka_response`).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_codecs::kafka::{
    rewrite_brokers, Broker, Correlator, Frame, FrameDecoder, Outbound, Response, ResponseBody,
};
use sluice_codecs::{Decode, Limits};

const MAX_IN_FLIGHT: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some((len, rest)) = rest.split_first_chunk::<4>() else { return };
    let split = (u32::from_be_bytes(*len) as usize).min(rest.len());
    let (client, server) = rest.split_at(split);
    let limits = Limits { max_frame: if mode & 1 == 1 { 512 } else { 1 << 20 }, max_depth: 8 };

    let mut correlator: Correlator<usize> = Correlator::new(MAX_IN_FLIGHT);
    for (i, f) in frames(client, limits).iter().enumerate() {
        let _ = correlator.request(f, i);
        assert!(correlator.in_flight() <= MAX_IN_FLIGHT);
    }
    for f in frames(server, limits) {
        let Ok(Outbound::Response(resp, _)) = correlator.response(&f) else { continue };
        let Ok(body) = ResponseBody::parse(&resp) else { continue };
        if let ResponseBody::Fetch(fetch) = &body {
            for p in fetch.topics.iter().flat_map(|t| &t.partitions) {
                let _ = p.summary();
            }
        }
        round_trip(&resp, &body);
    }
    let _ = correlator.drain();
});

fn frames(input: &[u8], limits: Limits) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new(limits);
    let mut buf = BytesMut::from(input);
    let mut out = vec![];
    while let Ok(Some(f)) = decoder.decode(&mut buf) {
        out.push(f);
    }
    let consumed: usize = out.iter().map(|f| f.bytes().len()).sum();
    assert_eq!(consumed + buf.len(), input.len());
    out
}

fn proxy_host(id: i32) -> String {
    format!("sluice-{id}.proxy")
}

fn brokers<'a>(body: &ResponseBody<'a>) -> Option<Vec<Broker<'a>>> {
    match body {
        ResponseBody::Metadata(m) => Some(m.brokers.clone()),
        ResponseBody::FindCoordinator(c) => Some(c.coordinators.iter().map(|c| c.broker).collect()),
        ResponseBody::DescribeCluster(d) => Some(d.brokers.clone()),
        _ => None,
    }
}

fn round_trip(resp: &Response<'_>, body: &ResponseBody<'_>) {
    let Some(before) = brokers(body) else { return };
    let (key, v) = (resp.api_key, resp.api_version);
    let mut originals = vec![];
    let new = rewrite_brokers(key, v, resp.body, |id, host, port| {
        originals.push((host.to_owned(), port));
        (proxy_host(id), port.wrapping_add(1))
    })
    .expect("a body that decodes rewrites")
    .expect("a broker-carrying API");
    let framed = resp.reframe(&new).expect("reframes");
    let f = Frame::new(framed, &sluice_codecs::kafka::default_limits()).expect("one frame");
    let again = Response::parse(f.payload(), key, v).expect("header");
    assert_eq!(again.body, &new[..]);
    let body2 = ResponseBody::parse(&again).expect("the rewritten body decodes");
    let after = brokers(&body2).expect("same API");
    assert_eq!(before.len(), after.len());
    for (a, b) in before.iter().zip(&after) {
        assert_eq!((a.node_id, a.rack), (b.node_id, b.rack));
        if a.node_id >= 0 {
            assert_eq!((b.host, b.port), (proxy_host(a.node_id).as_str(), a.port.wrapping_add(1)));
        } else {
            assert_eq!((a.host, a.port), (b.host, b.port));
        }
    }
    // Rewriting back restores the original bytes.
    let mut it = originals.into_iter();
    let back = rewrite_brokers(key, v, &new, |_, _, _| it.next().expect("same brokers")).unwrap().unwrap();
    assert_eq!(&back[..], resp.body);
}
