//! The `kafka` stream filter with arbitrary traffic in both directions, cut into arbitrary
//! reads: it never panics. It fails closed (every broker address a client learns must be
//! one on sluice, so a stream it cannot follow closes), so unlike the other `*_filter`
//! targets it may close in either mode; what must hold is:
//!
//! - without rules, until it closes, the broker gets exactly the client's bytes, unchanged
//!   and in order (requests are never rewritten), and after both ends send FIN (without a
//!   close) nothing is left behind;
//! - what the client gets is whole frames, but for an incomplete frame passed on at the
//!   broker's FIN (responses are forwarded or rewritten, never cut);
//! - without rules, every broker host a Metadata / FindCoordinator / DescribeCluster
//!   response reaching the client names is sluice's (checked by decoding the client's side
//!   with the codec's own correlator, fed with the client's requests);
//! - with deny rules (DeleteTopics, a topic prefix) and rate limits (requests per client
//!   id, bytes per topic) it may refuse, answering in the API's shape, and close.
//!
//! Input: as `sluice_fuzz::stream` reads it (a mode byte, then two-way records).

#![no_main]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_codecs::kafka::{peek, Correlator, Frame, Outbound, ResponseBody};
use sluice_codecs::Limits;
use sluice_filters::kafka::stats::KafkaStats;
use sluice_filters::kafka::{KafkaFilter, KafkaListener, SingleAddress, TopicNames};
use sluice_filters::policy::{Action, LimitKind, Matcher, OnLimit, RateLimit, Rule, RuleSet};
use sluice_filters::{FilterStatus, StreamFilter, StreamIo, WriteQueue};
use sluice_fuzz::stream::enforces;

const HOST: &str = "sluice.fuzz";
const LIMITS: Limits = Limits { max_frame: 1 << 20, max_depth: 8 };

fn listener(enforce: bool) -> Arc<KafkaListener> {
    let rules = if enforce {
        let two = NonZeroU32::new(2).unwrap();
        let hour = Duration::from_secs(3600);
        vec![
            Rule { matcher: Matcher { ops: vec!["DeleteTopics".into()], ..Default::default() }, action: Action::Deny },
            Rule {
                matcher: Matcher { target_prefixes: vec![b"se".to_vec()], ..Default::default() },
                action: Action::Deny,
            },
            Rule {
                matcher: Matcher { ops: vec!["Metadata".into()], ..Default::default() },
                action: Action::RateLimit(RateLimit::new(two, hour, two, LimitKind::ClientId, OnLimit::Reject)),
            },
            Rule {
                matcher: Matcher { ops: vec!["Produce".into()], ..Default::default() },
                action: Action::RateLimit(
                    RateLimit::new(
                        NonZeroU32::new(200).unwrap(),
                        hour,
                        NonZeroU32::new(200).unwrap(),
                        LimitKind::Target,
                        OnLimit::Reject,
                    )
                    .counting_bytes(),
                ),
            },
        ]
    } else {
        vec![]
    };
    Arc::new(KafkaListener {
        name: "fuzz".into(),
        rules: Arc::new(RuleSet::new(rules)),
        stats: KafkaStats::new("fuzz", 8, 8),
        limits: LIMITS,
        max_in_flight: 16,
        brokers: Arc::new(SingleAddress { host: HOST.into(), port: 9 }),
        topic_names: TopicNames::default(),
    })
}

/// Checks the client's side: whole frames (an incomplete one only at the broker's FIN),
/// and, when `addresses`, no broker host but sluice's. That check reads the responses as
/// the client would, in the order of its requests; it holds only without rules: a refused
/// request gets sluice's reply, and the input's broker, which answers whatever it likes,
/// may still answer it too, so the client's reading and the filter's (which matches the
/// broker's responses to the requests it forwarded) part ways; a real broker answers only
/// what it received.
fn check_client_side(client_sent: &[u8], to_client: &[u8], eof: bool, addresses: bool) {
    let mut correlator: Correlator<()> = Correlator::new(1 << 16);
    let mut requests = client_sent;
    while let Ok(Some(n)) = peek(requests, &LIMITS) {
        let Ok(frame) = Frame::new(requests[..n].to_vec().into(), &LIMITS) else { break };
        if correlator.request(&frame, ()).is_err() {
            break;
        }
        requests = &requests[n..];
    }
    let mut responses = to_client;
    loop {
        match peek(responses, &LIMITS) {
            Ok(Some(n)) => {
                let frame = Frame::new(responses[..n].to_vec().into(), &LIMITS).expect("peek cut one frame");
                responses = &responses[n..];
                // After bytes the filter could not follow (it closed, or passed them on at
                // FIN), the correlator may lose track; only what it reads is checked.
                if !addresses {
                    continue;
                }
                let Ok(Outbound::Response(response, ())) = correlator.response(&frame) else { return };
                let hosts: Vec<&str> = match ResponseBody::parse(&response) {
                    Ok(ResponseBody::Metadata(m)) => m.brokers.iter().map(|b| b.host).collect(),
                    Ok(ResponseBody::FindCoordinator(f)) => {
                        f.coordinators.iter().filter(|c| c.broker.node_id >= 0).map(|c| c.broker.host).collect()
                    }
                    Ok(ResponseBody::DescribeCluster(d)) => d.brokers.iter().map(|b| b.host).collect(),
                    _ => Vec::new(),
                };
                assert!(hosts.iter().all(|h| *h == HOST), "a broker address reached the client: {hosts:?}");
            }
            Ok(None) => {
                assert!(responses.is_empty() || eof, "a response frame was cut");
                return;
            }
            Err(_) => {
                assert!(eof, "the client got a frame size the filter would refuse");
                return;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((enforce, mut records)) = enforces(data) else { return };
    let mut filter = KafkaFilter::new(listener(enforce), "127.0.0.1".parse().unwrap());
    let (mut from_client, mut from_server) = (BytesMut::new(), BytesMut::new());
    let (mut to_server, mut to_client) = (WriteQueue::default(), WriteQueue::default());
    let (mut client_sent, mut got_server, mut got_client) = (Vec::new(), Vec::new(), Vec::new());
    let now = Instant::now();
    let mut closed = false;
    while let Some((&header, tail)) = records.split_first() {
        let len = usize::from(header & 0x7f).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        records = tail;
        let mut io = StreamIo { now, to_upstream: &mut to_server, to_downstream: &mut to_client };
        let status = if header & 0x80 == 0 {
            client_sent.extend_from_slice(chunk);
            from_client.extend_from_slice(chunk);
            filter.on_downstream(&mut from_client, false, &mut io)
        } else {
            from_server.extend_from_slice(chunk);
            filter.on_upstream(&mut from_server, false, &mut io)
        };
        got_server.extend(to_server.take_all());
        got_client.extend(to_client.take_all());
        if let FilterStatus::Close(_) = status {
            closed = true;
            break;
        }
    }
    if !closed {
        let mut io = StreamIo { now, to_upstream: &mut to_server, to_downstream: &mut to_client };
        let down = filter.on_downstream(&mut from_client, true, &mut io);
        let up = filter.on_upstream(&mut from_server, true, &mut io);
        got_server.extend(to_server.take_all());
        got_client.extend(to_client.take_all());
        closed = matches!(down, FilterStatus::Close(_)) || matches!(up, FilterStatus::Close(_));
        if !closed && filter.wake_at().is_none() {
            assert!(from_client.is_empty() && from_server.is_empty(), "nothing is kept after FIN");
        }
    }
    if !enforce {
        assert!(client_sent.starts_with(&got_server), "requests reach the broker unchanged and in order");
        if !closed {
            assert_eq!(got_server, client_sent, "the broker gets exactly what the client sent");
        }
    }
    check_client_side(&client_sent, &got_client, !closed, !enforce);
});
