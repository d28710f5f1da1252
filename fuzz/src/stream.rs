//! Driving a stream filter the way the proxy does, for the `*_filter` targets: arbitrary
//! two-way traffic cut into arbitrary reads, with the invariants every protocol filter
//! keeps.
//!
//! Input: the first byte picks observe (even) or enforce (odd) mode, then records of one
//! header byte (top bit: from the server; low 7 bits: length) followed by that many bytes.

use std::time::Instant;

use bytes::BytesMut;
use sluice_filters::{FilterStatus, StreamFilter, StreamIo, WriteQueue};

/// The mode byte: whether the target builds its filter with rules.
pub fn enforces(data: &[u8]) -> Option<(bool, &[u8])> {
    let (&mode, records) = data.split_first()?;
    Some((mode & 1 == 1, records))
}

/// Feeds `records` (see the module doc) to `filter`. It must never panic; when it only
/// observes (`enforce` false) it never closes and forwards every byte unchanged and in
/// order, whatever it makes of them, and after both ends send FIN nothing is left behind.
pub fn replay_both_ways(filter: &mut dyn StreamFilter, mut records: &[u8], enforce: bool) {
    let (mut from_client, mut from_server) = (BytesMut::new(), BytesMut::new());
    let (mut to_server, mut to_client) = (WriteQueue::default(), WriteQueue::default());
    let (mut client_sent, mut server_sent) = (Vec::new(), Vec::new());
    let (mut got_server, mut got_client) = (Vec::new(), Vec::new());
    let now = Instant::now();
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
            server_sent.extend_from_slice(chunk);
            from_server.extend_from_slice(chunk);
            filter.on_upstream(&mut from_server, false, &mut io)
        };
        got_server.extend(to_server.take_all());
        got_client.extend(to_client.take_all());
        if let FilterStatus::Close(_) = status {
            assert!(enforce, "an observing filter never closes");
            return;
        }
    }
    if enforce {
        return;
    }
    let mut io = StreamIo { now, to_upstream: &mut to_server, to_downstream: &mut to_client };
    filter.on_downstream(&mut from_client, true, &mut io);
    filter.on_upstream(&mut from_server, true, &mut io);
    got_server.extend(to_server.take_all());
    got_client.extend(to_client.take_all());
    assert!(from_client.is_empty() && from_server.is_empty(), "nothing is kept after FIN");
    assert_eq!(got_server, client_sent, "the server gets exactly what the client sent");
    assert_eq!(got_client, server_sent, "the client gets exactly what the server sent");
}
