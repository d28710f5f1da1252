//! MongoDB messages from arbitrary bytes, as a proxy meets them: framed by
//! `MessageDecoder`, every message parsed into its view, every document (body, document
//! sequences, OP_QUERY / OP_REPLY documents, decompressed OP_COMPRESSED inners) walked by
//! the validator and scanned by the command and reply accessors, and the stream run
//! through the request/reply `Correlator`.
//!
//! Must hold: no panic (overflow checks are on); the frames are exactly the consumed
//! bytes, in order, and feeding the same bytes in two pieces finds the same frames and the
//! same error; a framing error leaves the buffer untouched; decompression stays within its
//! cap and an inner message has the outer requestID/responseTo; a document that validates
//! scans without error; the correlator never holds more than its cap.
//!
//! Input: the first byte picks the limits (bit 0: small ones, so the size and depth caps
//! are reached) and where to split the rest (bits 1..=7, a fraction of the length); the
//! rest is the byte stream. Seeds: each fixture direction (`fuzz/seeds/mongodb_message`).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_codecs::mongodb::{
    CommandInfo, Correlator, Document, Expect, Message, MessageDecoder, MongoError, Op, ReplyInfo,
};
use sluice_codecs::{Decode, Limits};

const MAX_IN_FLIGHT: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let limits = if mode & 1 == 1 {
        Limits { max_frame: 4096, max_depth: 6 }
    } else {
        Limits { max_frame: 1 << 20, max_depth: 100 }
    };
    let (frames, error) = frame(input, &[], limits);
    let split = input.len() * usize::from(mode >> 1) / 128;
    assert_eq!(frame(input, &[split], limits), (frames.clone(), error), "split at {split}");

    let mut consumed = 0;
    let mut correlator: Correlator<usize> = Correlator::new(MAX_IN_FLIGHT);
    for (i, m) in frames.iter().enumerate() {
        let len = m.bytes().len();
        assert_eq!(&input[consumed..consumed + len], &m.bytes()[..]);
        consumed += len;
        exercise(m, &limits, &mut correlator, i, true);
        assert!(correlator.in_flight() <= MAX_IN_FLIGHT + 1);
    }
    let _ = correlator.drain();
    assert_eq!(correlator.in_flight(), 0);
});

/// Frames `input` fed in pieces ending at `cuts`: the messages and the error that stopped it.
fn frame(input: &[u8], cuts: &[usize], limits: Limits) -> (Vec<Message>, Option<MongoError>) {
    let mut decoder = MessageDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = vec![];
    let mut given = 0;
    for &cut in cuts.iter().filter(|&&c| c > 0 && c < input.len()).chain([&input.len()]) {
        buf.extend_from_slice(&input[given..cut]);
        given = cut;
        loop {
            let before = buf.clone();
            match decoder.decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
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

fn exercise(m: &Message, limits: &Limits, correlator: &mut Correlator<usize>, i: usize, outer: bool) {
    let Ok(op) = m.op() else { return };
    let mut expect = op.expect();
    let mut more = op.more_to_come();
    match op {
        Op::Msg(msg) => {
            document(msg.body(), limits);
            let mut n = 0;
            for seq in msg.sequences() {
                assert!(!seq.identifier.contains('\0'));
                for d in seq.documents() {
                    document(d, limits);
                    n += 1;
                }
            }
            assert_eq!(n, msg.sequence_documents());
        }
        Op::Compressed(c) => {
            if let Ok(inner) = c.decompress(limits) {
                assert!(inner.bytes().len() <= limits.max_frame);
                assert_eq!(inner.header().request_id, m.header().request_id);
                assert_eq!(inner.header().response_to, m.header().response_to);
                assert_eq!(inner.bytes().len(), usize::try_from(c.uncompressed_size).unwrap() + 16);
                if let Ok(inner_op) = inner.op() {
                    expect = inner_op.expect();
                    more = inner_op.more_to_come();
                }
                if outer {
                    exercise(&inner, limits, &mut Correlator::new(1), i, false);
                }
            }
        }
        Op::Query(q) => {
            document(q.query, limits);
            if let Some(p) = q.projection {
                document(p, limits);
            }
            let _ = (q.is_command(), q.database());
        }
        Op::Reply(r) => {
            assert_eq!(r.documents().count(), usize::try_from(r.number_returned).unwrap());
            r.documents().for_each(|d| document(d, limits));
        }
        Op::Legacy(l) => {
            let _ = l.expects_reply();
        }
        Op::Unknown(_) => {}
    }
    // A message with responseTo 0 is a request; anything else a reply.
    if m.header().response_to == 0 {
        let _ = correlator.request(m.header(), expect.unwrap_or(Expect::Reply), i);
    } else {
        let _ = correlator.reply(m.header(), more.unwrap_or(false));
    }
}

fn document(d: Document<'_>, limits: &Limits) {
    let valid = d.validate(limits.max_depth).is_ok();
    let command = CommandInfo::scan(d);
    let reply = ReplyInfo::scan(d);
    if valid {
        assert!(d.iter().all(|e| e.is_ok()));
        let command = command.expect("a valid document scans as a command");
        let reply = reply.expect("a valid document scans as a reply");
        if let Some(c) = command {
            let _ = (c.collection(), c.lsid_id());
        }
        let _ = (reply.is_ok(), reply.write_concern_code());
    }
}
