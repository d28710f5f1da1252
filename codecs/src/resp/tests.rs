//! RESP codec tests: captured fixtures (fixtures/redis, see capture.py there) decoded whole,
//! byte by byte and split in two at every boundary; round trips; hostile input.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::framing::Decode;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/redis");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn limits_for(name: &str) -> RespLimits {
    if name.ends_with(".requests") {
        RespLimits::requests()
    } else {
        RespLimits::replies()
    }
}

/// Decodes `bytes` fed in chunks of `chunk` bytes; every byte must end up in a frame.
fn decode_chunked(bytes: &[u8], limits: RespLimits, chunk: usize) -> Vec<Bytes> {
    let mut decoder = RespDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            frames.push(frame);
        }
    }
    assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
    frames
}

fn all_fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".requests") || n.ends_with(".replies"))
        .collect();
    names.sort();
    assert!(names.len() >= 18, "{names:?}");
    names
}

#[test]
fn every_fixture_decodes_the_same_whole_byte_by_byte_and_split_anywhere() {
    for name in all_fixtures() {
        let bytes = fixture(&name);
        let limits = limits_for(&name);
        let whole = decode_chunked(&bytes, limits, bytes.len().max(1));
        assert!(!whole.is_empty(), "{name}");
        assert_eq!(whole.concat(), bytes, "{name}");
        for chunk in [1, 2, 3, 7, 4096] {
            assert_eq!(decode_chunked(&bytes, limits, chunk), whole, "{name} in chunks of {chunk}");
        }
        // Two pieces, split at every boundary (the large fixtures at a stride).
        let stride = if bytes.len() > 8192 { 61 } else { 1 };
        for split in (1..bytes.len()).step_by(stride) {
            let mut decoder = RespDecoder::new(limits);
            let mut buf = BytesMut::from(&bytes[..split]);
            let mut frames = Vec::new();
            while let Some(f) = decoder.decode(&mut buf).unwrap() {
                frames.push(f);
            }
            buf.extend_from_slice(&bytes[split..]);
            while let Some(f) = decoder.decode(&mut buf).unwrap() {
                frames.push(f);
            }
            assert_eq!(frames, whole, "{name} split at {split}");
        }
    }
}

#[test]
fn fixture_replies_reencode_to_their_bytes() {
    for name in all_fixtures().into_iter().filter(|n| n.ends_with(".replies")) {
        for frame in decode_chunked(&fixture(&name), RespLimits::replies(), 1 << 20) {
            let value = parse_value(&frame).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut out = BytesMut::new();
            encode_value(&value, &mut out);
            assert_eq!(out, frame, "{name}");
        }
    }
}

fn commands(name: &str) -> Vec<Vec<String>> {
    decode_chunked(&fixture(name), RespLimits::requests(), 1 << 20)
        .iter()
        .map(|f| Command::parse(f).unwrap().args().map(|a| String::from_utf8_lossy(a).into_owned()).collect())
        .collect()
}

fn replies(name: &str) -> Vec<Bytes> {
    decode_chunked(&fixture(name), RespLimits::replies(), 1 << 20)
}

#[test]
fn pipeline_commands_and_replies_pair_up() {
    let cmds = commands("resp2_pipeline.requests");
    // The 100 commands given, then what redis-cli --pipe adds: an empty line (an empty
    // inline command, which Redis ignores without a reply) and an ECHO of a random marker.
    assert_eq!(cmds.len(), 102);
    assert_eq!(cmds[0], ["SET", "key:0", "val"]);
    assert_eq!(cmds[99], ["GET", "key:49"]);
    assert!(cmds[100].is_empty());
    assert_eq!(cmds[101][0], "ECHO");
    let replies = replies("resp2_pipeline.replies");
    assert_eq!(replies.len(), 101);
    assert_eq!(Reply::parse(&replies[0]).simple_string(), Some(&b"OK"[..]));
    assert_eq!(Reply::parse(&replies[50]).kind(), ReplyKind::BulkString);
}

#[test]
fn reply_views_classify_real_replies() {
    let r = replies("resp2_commands.replies");
    let kinds: Vec<ReplyKind> = r.iter().map(|f| Reply::parse(f).kind()).collect();
    // COMMAND DOCS (redis-cli's start-up), then the script's twelve commands.
    assert_eq!(kinds.len(), 13, "{kinds:?}");
    assert_eq!(kinds[0], ReplyKind::Array);
    assert_eq!(kinds[3], ReplyKind::Null, "GET missing");
    assert_eq!(Reply::parse(&r[4]).integer(), Some(1), "INCR counter");
    let wrong = Reply::parse(&r[9]);
    assert!(wrong.is_error());
    assert_eq!(wrong.error_prefix(), Some(&b"ERR"[..]), "INCR on a string");

    let multi = replies("resp2_multi.replies");
    let texts: Vec<Option<&[u8]>> = multi.iter().skip(1).map(|f| Reply::parse(f).simple_string()).collect();
    assert_eq!(texts[..4], [Some(&b"OK"[..]), Some(b"QUEUED"), Some(b"QUEUED"), Some(b"QUEUED")]);
    assert_eq!(Reply::parse(&multi[5]).element_count(), Some(3), "EXEC returns the queued replies");
    assert_eq!(Reply::parse(&multi[5]).kind(), ReplyKind::Array);
    assert_eq!(Reply::parse(multi.last().unwrap()).error_prefix(), Some(&b"EXECABORT"[..]));

    let big = replies("resp2_big_get.replies");
    assert_eq!(big.len(), 1);
    assert_eq!(big[0].len(), 70000 + 10);
}

#[test]
fn pubsub_messages_are_recognisable_in_resp2_and_resp3() {
    let r2 = replies("resp2_pubsub.replies");
    let firsts: Vec<&[u8]> = r2.iter().map(|f| Reply::parse(f).first_element().unwrap()).collect();
    assert_eq!(firsts, [&b"subscribe"[..], b"subscribe", b"message", b"message"]);
    assert!(r2.iter().all(|f| Reply::parse(f).kind() == ReplyKind::Array));

    let r3 = replies("resp3_pubsub.replies");
    // HELLO 3's map, then pushes.
    assert_eq!(Reply::parse(&r3[0]).kind(), ReplyKind::Map);
    assert!(r3[1..].iter().all(|f| Reply::parse(f).kind() == ReplyKind::Push));
    assert_eq!(Reply::parse(&r3[3]).first_element(), Some(&b"message"[..]));
}

#[test]
fn resp3_types_from_a_real_server() {
    let kinds: Vec<ReplyKind> = replies("resp3_types.replies").iter().map(|f| Reply::parse(f).kind()).collect();
    for expected in [ReplyKind::Map, ReplyKind::Set, ReplyKind::Double, ReplyKind::Verbatim, ReplyKind::Boolean] {
        assert!(kinds.contains(&expected), "no {expected:?} in {kinds:?}");
    }
}

#[test]
fn inline_commands_split_into_arguments() {
    let cmds = commands("inline_commands.requests");
    assert_eq!(cmds, [vec!["PING"], vec!["SET", "inline", "two words"], vec!["GET", "inline"], vec!["ECHO", "quoted"]]);
    assert_eq!(replies("inline_commands.replies").len(), 4);
}

#[test]
fn big_values_are_framed_without_reading_them() {
    let cmds = decode_chunked(&fixture("resp2_big_value.requests"), RespLimits::requests(), 1 << 20);
    let set = cmds.iter().find_map(|f| Command::parse(f).ok().filter(|c| c.name() == Some(b"SET"))).unwrap();
    assert_eq!(set.arg(1), Some(&b"big"[..]));
    assert_eq!(set.arg(2).map(<[u8]>::len), Some(70000));
}

fn scan(bytes: &[u8], limits: RespLimits) -> Result<Option<usize>, RespError> {
    FrameScanner::new(limits).scan(bytes)
}

#[test]
fn hostile_frames_get_errors_not_allocations() {
    let r = RespLimits::replies();
    let small = RespLimits { max_bulk_len: 1024, max_aggregate_len: 8, max_depth: 4, max_line_len: 32, ..r };
    assert_eq!(scan(b"$9999999999\r\n", r), Err(RespError::BulkTooLarge { len: 9_999_999_999, limit: r.max_bulk_len }));
    assert_eq!(scan(b"$1025\r\n", small), Err(RespError::BulkTooLarge { len: 1025, limit: 1024 }));
    assert_eq!(scan(b"*9\r\n", small), Err(RespError::AggregateTooLarge { len: 9, limit: 8 }));
    assert_eq!(scan(b"%5\r\n", small), Err(RespError::AggregateTooLarge { len: 10, limit: 8 }));
    assert_eq!(scan(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n", small), Err(RespError::TooDeep { limit: 4 }));
    assert_eq!(scan(&[b'+'; 40], small), Err(RespError::LineTooLong { limit: 32 }));
    assert_eq!(scan(b"?what\r\n", r), Err(RespError::InvalidType(b'?')));
    assert_eq!(scan(b"$3\r\nabcXY", r), Err(RespError::MissingCrlf));
    assert_eq!(scan(b"+OK\n", r), Err(RespError::MissingCrlf));
    assert_eq!(scan(b"*-2\r\n", r), Err(RespError::InvalidLength));
    assert_eq!(scan(b"$99999999999999999999\r\n", r), Err(RespError::InvalidLength));
    assert_eq!(scan(b":12a\r\n", r), Err(RespError::InvalidInteger));
    assert_eq!(scan(b"#x\r\n", r), Err(RespError::InvalidBoolean));
    assert_eq!(scan(b"=3\r\ntxt\r\n", r), Err(RespError::InvalidLength));
    // Replies are never inline.
    assert_eq!(scan(b"PING\r\n", r), Err(RespError::InvalidType(b'P')));
    assert_eq!(scan(b"PING\r\n", RespLimits::requests()), Ok(Some(6)));
    // Found by fuzzing (resp_decode): a line feed where a type byte belongs.
    assert_eq!(scan(b"\n", RespLimits::requests()), Ok(Some(1)));
    assert_eq!(scan(b"\n", r), Err(RespError::InvalidType(b'\n')));
    assert_eq!(scan(b"*1\r\n\n", r), Err(RespError::InvalidType(b'\n')));
    // Found by fuzzing: lengths must be canonical (Redis refuses `$04` too), or a frame
    // would not re-encode to itself.
    assert_eq!(scan(b"$04\r\nnews\r\n", r), Err(RespError::InvalidLength));
    assert_eq!(scan(b"$0\r\n\r\n", r), Ok(Some(6)));
    // Incomplete is not an error.
    assert_eq!(scan(b"*2\r\n$3\r\nGET\r\n", r), Ok(None));
    assert_eq!(scan(b"$70000\r\nab", r), Ok(None));
    assert_eq!(Command::parse(b"*1\r\n:1\r\n").err(), Some(RespError::NotACommand));
    assert_eq!(Command::parse(b"SET \"open\r\n").err(), Some(RespError::UnbalancedQuotes));
}

#[test]
fn resp3_shapes_frame_correctly() {
    let r = RespLimits::replies();
    // An attribute decorates the value after it: one frame.
    let attributed = b"|1\r\n+ttl\r\n:3600\r\n$5\r\nhello\r\n";
    assert_eq!(scan(attributed, r), Ok(Some(attributed.len())));
    let reply = Reply::parse(attributed);
    assert_eq!(reply.kind(), ReplyKind::BulkString);
    // Nested attribute inside an array.
    let nested = b"*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n";
    assert_eq!(scan(nested, r), Ok(Some(nested.len())));
    for frame in [
        &b"_\r\n"[..],
        b"#t\r\n",
        b",-inf\r\n",
        b"(12345678901234567890\r\n",
        b"!9\r\nERR oops!\r\n",
        b"=7\r\ntxt:abc\r\n",
        b"%0\r\n",
        b"~0\r\n",
        b">0\r\n",
        b"*-1\r\n",
        b"$-1\r\n",
        b"$0\r\n\r\n",
    ] {
        assert_eq!(scan(frame, r), Ok(Some(frame.len())), "{}", String::from_utf8_lossy(frame));
        let value = parse_value(&Bytes::copy_from_slice(frame)).unwrap();
        let mut out = BytesMut::new();
        encode_value(&value, &mut out);
        assert_eq!(&out[..], frame);
    }
    assert_eq!(Reply::parse(b"!9\r\nERR oops!\r\n").error_prefix(), Some(&b"ERR"[..]));
    let mut err = BytesMut::new();
    encode_error(&mut err, "ERR sluice: denied\r\nby policy");
    assert_eq!(&err[..], b"-ERR sluice: denied  by policy\r\n");
}

fn arb_bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn arb_line() -> impl Strategy<Value = Bytes> {
    "[ -~]{0,20}".prop_map(|s| Bytes::from(s.into_bytes()))
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        arb_line().prop_map(Value::SimpleString),
        arb_line().prop_map(Value::Error),
        any::<i64>().prop_map(|n| Value::Integer(Bytes::from(n.to_string()))),
        arb_bytes().prop_map(Value::BulkString),
        Just(Value::NullBulk),
        Just(Value::NullArray),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Boolean),
        any::<f64>().prop_map(|f| Value::Double(Bytes::from(format!("{f}")))),
        "[0-9]{1,40}".prop_map(|s| Value::BigNumber(Bytes::from(s))),
        arb_bytes().prop_map(Value::BulkError),
        arb_bytes().prop_map(|b| Value::Verbatim(Bytes::from([&b"txt:"[..], &b[..]].concat()))),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Set),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Push),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            (proptest::collection::vec((inner.clone(), inner.clone()), 1..3), inner)
                .prop_map(|(a, v)| Value::Attributed(a, Box::new(v))),
        ]
    })
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(values in proptest::collection::vec(arb_value(), 1..5), chunk in 1usize..64) {
        let mut wire = BytesMut::new();
        for v in &values {
            encode_value(v, &mut wire);
        }
        let frames = decode_chunked(&wire, RespLimits::replies(), chunk);
        prop_assert_eq!(frames.len(), values.len());
        for (frame, value) in frames.iter().zip(&values) {
            prop_assert_eq!(&parse_value(frame).unwrap(), value);
        }
    }
}

#[test]
fn one_pass_command_scan_agrees_with_the_scanner_on_every_request_fixture() {
    let limits = RespLimits::requests();
    let mut checked = 0;
    for name in all_fixtures().into_iter().filter(|n| n.ends_with(".requests")) {
        let bytes = fixture(&name);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = FrameScanner::new(limits).scan(rest).unwrap().expect("complete frame");
            if let Some((fast_n, fast)) = Command::scan(rest, &limits) {
                assert_eq!(fast_n, n, "{name}");
                assert!(fast.args().eq(Command::parse(&rest[..n]).unwrap().args()), "{name}");
                checked += 1;
            } else {
                assert_ne!(rest[0], b'*', "{name}: an array command was left to the slow path");
            }
            rest = &rest[n..];
        }
    }
    assert!(checked > 100, "{checked}");
    // Incomplete, over a limit or malformed: no answer, the scanner decides.
    let small = RespLimits { max_bulk_len: 4, ..limits };
    assert!(Command::scan(b"*2\r\n$3\r\nGET\r\n$1\r\nk", &limits).is_none());
    assert!(Command::scan(b"*1\r\n$5\r\nhello\r\n", &small).is_none());
    assert!(Command::scan(b"*1\r\n$03\r\nGET\r\n", &limits).is_none());
    assert!(Command::scan(b"*1\r\n:3\r\n", &limits).is_none());
}

#[test]
fn one_pass_simple_reply_scan_agrees_with_the_scanner_on_every_reply_fixture() {
    let limits = RespLimits::replies();
    let mut checked = 0;
    for name in all_fixtures().into_iter().filter(|n| n.ends_with(".replies")) {
        let bytes = fixture(&name);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = FrameScanner::new(limits).scan(rest).unwrap().expect("complete frame");
            if let Some(fast) = Reply::scan_simple(rest, &limits) {
                assert_eq!(fast, n, "{name}");
                checked += 1;
            }
            rest = &rest[n..];
        }
    }
    assert!(checked > 50, "{checked}");
    assert_eq!(Reply::scan_simple(b"+OK\r\n+PONG", &limits), Some(5));
    assert_eq!(Reply::scan_simple(b"$-1\r\n", &limits), None, "null bulk: the scanner decides");
    assert_eq!(Reply::scan_simple(b"$3\r\nab", &limits), None);
    assert_eq!(Reply::scan_simple(b"+OK\n", &limits), None);
}
