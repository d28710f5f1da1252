//! RESP decoder, both directions: arbitrary bytes never panic the scanner, the decoder or
//! the views; frames cover exactly the bytes consumed; feeding the same bytes one at a time
//! gives the same frames; every reply frame re-encodes to its own bytes; every request frame
//! that parses as a command yields as many arguments as it claims; the one-pass
//! `Command::scan` and `Reply::scan_simple` accept only frames the scanner accepts (the
//! command with the same arguments).
//!
//! The first input byte picks the direction and the limits are small, so the size and
//! depth checks are reached often.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_codecs::framing::Decode;
use sluice_codecs::resp::{encode_value, parse_value, Command, Reply, RespDecoder, RespLimits};

fn decode_all(input: &[u8], limits: RespLimits, chunk: usize) -> (Vec<bytes::Bytes>, usize, bool) {
    let mut decoder = RespDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut consumed = 0;
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    consumed += frame.len();
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(_) => return (frames, consumed, true),
            }
        }
    }
    (frames, consumed, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let requests = mode & 1 == 1;
    let base = if requests { RespLimits::requests() } else { RespLimits::replies() };
    let limits = RespLimits { max_bulk_len: 4096, max_aggregate_len: 64, max_depth: 8, max_line_len: 256, ..base };

    let (frames, consumed, failed) = decode_all(input, limits, input.len());
    let joined: Vec<u8> = frames.concat();
    assert_eq!(&joined[..], &input[..consumed], "frames are the consumed bytes, in order");

    if input.len() <= 4096 {
        let (bytewise, consumed_bytewise, failed_bytewise) = decode_all(input, limits, 1);
        assert_eq!(bytewise, frames, "byte-by-byte feeding finds the same frames");
        assert_eq!((consumed_bytewise, failed_bytewise), (consumed, failed));
    }

    if !requests {
        // The one-pass simple-reply scan agrees with the scanner wherever it answers.
        if let Some(n) = Reply::scan_simple(input, &limits) {
            let mut scanner = sluice_codecs::resp::FrameScanner::new(limits);
            assert_eq!(scanner.scan(input), Ok(Some(n)), "Reply::scan_simple accepted what the scanner does not");
        }
    }
    if requests {
        // The one-pass command scan agrees with the scanner and the view wherever it answers.
        if let Some((n, fast)) = Command::scan(input, &limits) {
            let mut scanner = sluice_codecs::resp::FrameScanner::new(limits);
            assert_eq!(scanner.scan(input), Ok(Some(n)), "Command::scan accepted what the scanner does not");
            let slow = Command::parse(&input[..n]).expect("a scanned command parses");
            assert!(fast.args().eq(slow.args()), "both views give the same arguments");
            assert_eq!(fast.argc(), slow.argc());
        }
    }

    for frame in &frames {
        if requests {
            if let Ok(command) = Command::parse(frame) {
                assert_eq!(command.args().count(), command.argc());
                let _ = command.name();
            }
        } else {
            let value = parse_value(frame).expect("a scanned reply frame parses");
            let mut out = BytesMut::new();
            encode_value(&value, &mut out);
            assert_eq!(&out[..], &frame[..], "a reply frame re-encodes to itself");
            let reply = Reply::parse(frame);
            let _ = (reply.kind(), reply.error_prefix(), reply.first_element(), reply.integer(), reply.element_count());
        }
    }
});
