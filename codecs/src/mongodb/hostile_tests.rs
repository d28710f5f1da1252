//! Hostile input: lying lengths in the header, in sections and in BSON, truncated
//! cstrings, depth bombs, decompression bombs, bad checksums, undefined required flag bits,
//! correlator abuse. Each must give a typed error (the exact variant is asserted), never a
//! panic or an allocation sized by a length field; arbitrary bytes are thrown at every
//! view by proptest.

use std::io::Write;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::tests::{fixture, fixture_names, frame, messages, to_bytes};
use super::*;
use crate::framing::{Decode, Limits};

fn header(len: usize, op: i32) -> Vec<u8> {
    let mut m = (len as i32).to_le_bytes().to_vec();
    m.extend_from_slice(&7i32.to_le_bytes());
    m.extend_from_slice(&0i32.to_le_bytes());
    m.extend_from_slice(&op.to_le_bytes());
    m
}

/// A message of opcode `op` around `body`.
fn message(op: i32, body: &[u8]) -> Message {
    let mut m = header(16 + body.len(), op);
    m.extend_from_slice(body);
    Message::new(Bytes::from(m), &default_limits()).unwrap()
}

/// An OP_MSG with `flags` and raw `sections`.
fn op_msg_raw(flags: u32, sections: &[u8]) -> Message {
    let mut body = flags.to_le_bytes().to_vec();
    body.extend_from_slice(sections);
    message(2013, &body)
}

fn body_section(doc: &[u8]) -> Vec<u8> {
    let mut s = vec![0];
    s.extend_from_slice(doc);
    s
}

fn sequence_section(id: &str, docs: &[&[u8]]) -> Vec<u8> {
    let len: usize = 4 + id.len() + 1 + docs.iter().map(|d| d.len()).sum::<usize>();
    let mut s = vec![1];
    s.extend_from_slice(&(len as i32).to_le_bytes());
    s.extend_from_slice(id.as_bytes());
    s.push(0);
    docs.iter().for_each(|d| s.extend_from_slice(d));
    s
}

fn ping() -> Vec<u8> {
    to_bytes(&::bson::doc! {"ping": 1_i32, "$db": "admin"})
}

fn msg_err(m: &Message) -> MongoError {
    OpMsg::parse(m).unwrap_err()
}

fn bson_err(what: &'static str, source: BsonError) -> MongoError {
    MongoError::Bson { what, source }
}

#[test]
fn lying_header_lengths_are_refused_before_waiting() {
    let l = Limits { max_frame: 1000, max_depth: 8 };
    for len in [0i32, 1, 15, -1, i32::MIN] {
        let h = len.to_le_bytes();
        assert_eq!(peek(&h, &l), Err(MongoError::LengthTooSmall { len: len.into() }));
        let mut buf = BytesMut::from(&h[..]);
        assert_eq!(MessageDecoder::new(l).decode(&mut buf), Err(MongoError::LengthTooSmall { len: len.into() }));
        assert_eq!(&buf[..], &h, "the buffer is left as it was");
    }
    assert_eq!(peek(&1001i32.to_le_bytes(), &l), Err(MongoError::MessageTooLarge { len: 1001, limit: 1000 }));
    assert_eq!(peek(&1000i32.to_le_bytes(), &l), Ok(None));
    assert_eq!(peek(&[16, 0, 0], &l), Ok(None));
    // Default limits: i32::MAX announced by 4 bytes is refused at once, and a legal length
    // reserves at most a small step, not what it announces.
    let mut buf = BytesMut::from(&i32::MAX.to_le_bytes()[..]);
    let mut d = MessageDecoder::default();
    assert_eq!(
        d.decode(&mut buf),
        Err(MongoError::MessageTooLarge { len: i32::MAX as usize, limit: MAX_MESSAGE_SIZE })
    );
    let mut buf = BytesMut::from(&(MAX_MESSAGE_SIZE as i32).to_le_bytes()[..]);
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert!(buf.capacity() <= 128 * 1024, "{}", buf.capacity());
    // A slice that is not the message its header describes.
    let m = header(20, 2013);
    assert_eq!(Message::new(Bytes::from(m), &l), Err(MongoError::NotOneMessage { expected: 20, actual: 16 }));
    assert_eq!(Message::new(Bytes::from_static(&[1, 2]), &l), Err(MongoError::Truncated { what: "message header" }));
}

#[test]
fn undefined_required_flag_bits_are_errors_optional_ones_are_ignored() {
    let sections = body_section(&ping());
    for bit in 2..16 {
        let m = op_msg_raw(1 << bit, &sections);
        assert_eq!(msg_err(&m), MongoError::UnknownRequiredFlags { bits: 1 << bit }, "bit {bit}");
    }
    assert_eq!(msg_err(&op_msg_raw(0xFFFF_FFFF, &sections)), MongoError::UnknownRequiredFlags { bits: 0xFFFC });
    for bit in 16..32 {
        let m = op_msg_raw(1 << bit, &sections);
        assert!(OpMsg::parse(&m).is_ok(), "optional bit {bit}");
    }
}

#[test]
fn checksums_are_verified() {
    let sections = body_section(&ping());
    let mut body = MsgFlags::CHECKSUM_PRESENT.to_le_bytes().to_vec();
    body.extend_from_slice(&sections);
    body.extend_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    let m = message(2013, &body);
    let computed = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&m.bytes()[..m.bytes().len() - 4]);
    assert_eq!(msg_err(&m), MongoError::ChecksumMismatch { stored: 0xDEAD_BEEF, computed });
    // The flag without room for a checksum.
    let m = op_msg_raw(MsgFlags::CHECKSUM_PRESENT, &[]);
    assert_eq!(msg_err(&m), MongoError::Truncated { what: "OP_MSG checksum" });
    // A correct checksum over a flipped byte.
    let mut bytes = m.bytes().to_vec();
    bytes.truncate(20);
    bytes.extend_from_slice(&sections);
    bytes[0] = (bytes.len() + 4) as u8;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let good = Message::new(Bytes::from(bytes.clone()), &default_limits()).unwrap();
    assert_eq!(OpMsg::parse(&good).unwrap().checksum(), Some(crc));
    bytes[25] ^= 1;
    let bad = Message::new(Bytes::from(bytes), &default_limits()).unwrap();
    assert!(matches!(msg_err(&bad), MongoError::ChecksumMismatch { stored, .. } if stored == crc));
}

#[test]
fn sections_with_lying_sizes_and_wrong_counts() {
    let doc = ping();
    // No body, two bodies.
    assert_eq!(msg_err(&op_msg_raw(0, &[])), MongoError::BodySections { count: 0 });
    let seq_only = sequence_section("documents", &[&doc]);
    assert_eq!(msg_err(&op_msg_raw(0, &seq_only)), MongoError::BodySections { count: 0 });
    let two = [body_section(&doc), body_section(&doc)].concat();
    assert_eq!(msg_err(&op_msg_raw(0, &two)), MongoError::BodySections { count: 2 });
    // Unknown kinds.
    assert_eq!(msg_err(&op_msg_raw(0, &[2, 0, 0])), MongoError::UnknownSectionKind(2));
    // A body whose document lies about its length.
    let mut lying = body_section(&doc);
    lying[1] += 1;
    assert_eq!(msg_err(&op_msg_raw(0, &lying)), bson_err("OP_MSG body", BsonError::Truncated { what: "document" }));
    lying[1] -= 3;
    assert_eq!(msg_err(&op_msg_raw(0, &lying)), bson_err("OP_MSG body", BsonError::MissingTerminator));
    // Sequence sizes: past the end, below its own 4 bytes, negative.
    let body = body_section(&doc);
    let mut seq = sequence_section("documents", &[&doc]);
    seq[1] += 1;
    assert_eq!(
        msg_err(&op_msg_raw(0, &[body.clone(), seq.clone()].concat())),
        MongoError::Truncated { what: "document sequence" }
    );
    for size in [0i32, 3, -1, i32::MIN] {
        seq[1..5].copy_from_slice(&size.to_le_bytes());
        let m = op_msg_raw(0, &[body.clone(), seq.clone()].concat());
        assert_eq!(msg_err(&m), MongoError::Malformed { what: "document sequence size" }, "{size}");
    }
    assert_eq!(msg_err(&op_msg_raw(0, &[1, 5, 0])), MongoError::Truncated { what: "document sequence size" });
    // An identifier without its NUL inside the section.
    let m = op_msg_raw(0, &[body.clone(), vec![1, 8, 0, 0, 0, b'd', b'o', b'c', b's']].concat());
    assert_eq!(msg_err(&m), MongoError::Truncated { what: "document sequence identifier" });
    let m = op_msg_raw(0, &[body.clone(), vec![1, 6, 0, 0, 0, 0xFF, 0]].concat());
    assert_eq!(msg_err(&m), MongoError::Malformed { what: "document sequence identifier" });
    // A document inside a sequence lying about its length, or cut short.
    let mut inner = doc.clone();
    inner[0] += 3;
    let mut seq = sequence_section("documents", &[&inner]);
    let m = op_msg_raw(0, &[body.clone(), seq.clone()].concat());
    assert_eq!(msg_err(&m), bson_err("sequence document", BsonError::Truncated { what: "document" }));
    seq.truncate(seq.len() - 1);
    seq[1] -= 1;
    let m = op_msg_raw(0, &[body.clone(), seq].concat());
    assert_eq!(msg_err(&m), bson_err("sequence document", BsonError::Truncated { what: "document" }));
    let m = op_msg_raw(0, &[body.clone(), sequence_section("documents", &[&[1, 2]])].concat());
    assert_eq!(msg_err(&m), bson_err("sequence document", BsonError::Truncated { what: "document length" }));
    // Repeated identifiers, too many sequences.
    let dup = [body.clone(), sequence_section("documents", &[]), sequence_section("documents", &[&doc])].concat();
    assert_eq!(msg_err(&op_msg_raw(0, &dup)), MongoError::DuplicateSequence);
    let mut many = body.clone();
    for i in 0..=MAX_SEQUENCES {
        many.extend(sequence_section(&format!("s{i}"), &[]));
    }
    assert_eq!(msg_err(&op_msg_raw(0, &many)), MongoError::TooManySequences { limit: MAX_SEQUENCES });
    // A truncated flagBits.
    assert_eq!(msg_err(&message(2013, &[0, 0])), MongoError::Truncated { what: "OP_MSG flagBits" });
}

fn doc_with(element: &[u8]) -> Vec<u8> {
    let mut d = ((element.len() + 5) as i32).to_le_bytes().to_vec();
    d.extend_from_slice(element);
    d.push(0);
    d
}

fn first_err(bytes: &[u8]) -> BsonError {
    let d = Document::parse(bytes).unwrap();
    let e = d.first().unwrap_err();
    assert_eq!(d.validate(100), Err(e));
    assert_eq!(CommandInfo::scan(d), Err(e));
    assert_eq!(ReplyInfo::scan(d), Err(e));
    e
}

#[test]
fn bson_lying_lengths_and_broken_elements() {
    // Document lengths: negative, below 5, past the slice, shorter than the slice.
    for len in [-1i32, 0, 4] {
        let mut b = len.to_le_bytes().to_vec();
        b.extend_from_slice(&[0; 8]);
        assert_eq!(Document::parse(&b), Err(BsonError::BadDocumentLength { len: len.into() }));
    }
    assert_eq!(Document::parse(&[6, 0, 0, 0, 0]), Err(BsonError::Truncated { what: "document" }));
    assert_eq!(Document::parse(&[5, 0, 0, 0, 0, 0]), Err(BsonError::BadDocumentLength { len: 5 }));
    assert_eq!(Document::parse(&[5, 0, 0, 0, 1]), Err(BsonError::MissingTerminator));
    assert_eq!(Document::parse(&[5, 0, 0]), Err(BsonError::Truncated { what: "document length" }));
    assert!(Document::parse(&[5, 0, 0, 0, 0]).unwrap().is_empty());

    // Keys and strings.
    assert_eq!(first_err(&doc_with(&[0x10, b'a', b'b'])), BsonError::UnterminatedCString);
    assert_eq!(first_err(&doc_with(&[0x10, 0xC3, 0x28, 0, 1, 0, 0, 0])), BsonError::InvalidUtf8 { what: "key" });
    assert_eq!(first_err(&doc_with(&[0x00, 0x10])), BsonError::EarlyTerminator);
    let bytes = doc_with(&[0x0A, 0, 0x00, 0x10]);
    let d = Document::parse(&bytes).unwrap();
    assert_eq!(d.iter().nth(1), Some(Err(BsonError::EarlyTerminator)));
    for len in [0i32, -5] {
        let mut e = vec![0x02, b's', 0];
        e.extend_from_slice(&len.to_le_bytes());
        e.extend_from_slice(b"x\0");
        assert_eq!(first_err(&doc_with(&e)), BsonError::BadString, "{len}");
    }
    let mut e = vec![0x02, b's', 0];
    e.extend_from_slice(&100i32.to_le_bytes());
    e.extend_from_slice(b"x\0");
    assert_eq!(first_err(&doc_with(&e)), BsonError::Truncated { what: "string" });
    let mut e = vec![0x02, b's', 0];
    e.extend_from_slice(&2i32.to_le_bytes());
    e.extend_from_slice(b"xy");
    assert_eq!(first_err(&doc_with(&e)), BsonError::BadString);
    let mut e = vec![0x02, b's', 0];
    e.extend_from_slice(&2i32.to_le_bytes());
    e.extend_from_slice(&[0xFF, 0]);
    assert_eq!(first_err(&doc_with(&e)), BsonError::InvalidUtf8 { what: "string" });
    // Fixed-size values cut short by the document's end.
    assert_eq!(first_err(&doc_with(&[0x01, b'd', 0, 1, 2, 3])), BsonError::Truncated { what: "double" });
    assert_eq!(first_err(&doc_with(&[0x07, b'o', 0, 1, 2, 3])), BsonError::Truncated { what: "ObjectId" });
    assert_eq!(first_err(&doc_with(&[0x12, b'i', 0, 1])), BsonError::Truncated { what: "int64" });
    assert_eq!(first_err(&doc_with(&[0x08, b'b', 0, 2])), BsonError::BadBool(2));
    assert_eq!(first_err(&doc_with(&[0x08, b'b', 0])), BsonError::Truncated { what: "boolean" });
    assert_eq!(first_err(&doc_with(&[0x14, b'x', 0])), BsonError::UnknownType(0x14));
    assert_eq!(first_err(&doc_with(&[0x0B, b'r', 0, b'a', 0, b'i'])), BsonError::UnterminatedCString);
    // Binary: negative or lying length.
    let mut e = vec![0x05, b'b', 0];
    e.extend_from_slice(&(-1i32).to_le_bytes());
    e.push(0);
    assert_eq!(first_err(&doc_with(&e)), BsonError::BadLength { what: "binary" });
    let mut e = vec![0x05, b'b', 0];
    e.extend_from_slice(&50i32.to_le_bytes());
    e.extend_from_slice(&[0, 1, 2]);
    assert_eq!(first_err(&doc_with(&e)), BsonError::Truncated { what: "binary" });
    // Code with scope whose total is too small to hold its parts, or disagrees with them.
    for total in [0i32, 3, 9] {
        let mut e = vec![0x0F, b'c', 0];
        e.extend_from_slice(&total.to_le_bytes());
        e.extend_from_slice(&[2, 0, 0, 0, b'x', 0, 5, 0, 0, 0, 0]);
        let err = first_err(&doc_with(&e));
        assert!(
            matches!(err, BsonError::BadLength { .. } | BsonError::Truncated { .. } | BsonError::BadString),
            "{total}: {err:?}"
        );
    }
    // A nested document lying about its length: iterating the top level catches it, since
    // skipping needs the length, but it does not walk the inside.
    let mut e = vec![0x03, b'n', 0];
    e.extend_from_slice(&[50, 0, 0, 0, 0]);
    assert_eq!(first_err(&doc_with(&e)), BsonError::Truncated { what: "document" });
    let mut e = vec![0x03, b'n', 0];
    e.extend_from_slice(&doc_with(&[0x08, b'b', 0, 7])); // broken inside
    let bytes = doc_with(&e);
    let d = Document::parse(&bytes).unwrap();
    let inner = d.first().unwrap().unwrap().value.as_document().unwrap();
    assert_eq!(inner.first(), Err(BsonError::BadBool(7)), "the inside is read only when asked");
    assert_eq!(d.validate(10), Err(BsonError::BadBool(7)));
    // Iteration stops after the first error.
    let bytes = doc_with(&[0x10, b'a', 0, 1, 0, 0, 0, 0x08, b'b', 0, 9, 0x10, b'c', 0, 1, 0, 0, 0]);
    let d = Document::parse(&bytes).unwrap();
    let items: Vec<_> = d.iter().collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1], Err(BsonError::BadBool(9)));
}

#[test]
fn depth_bombs_are_cut_at_the_limit_and_cost_nothing_to_skip() {
    // {a: {a: {a: ... }}} 2,000 levels deep.
    let depth = 2_000;
    let mut doc = vec![5, 0, 0, 0, 0];
    for _ in 0..depth {
        let mut e = vec![0x03, b'a', 0];
        e.extend_from_slice(&doc);
        doc = doc_with(&e);
    }
    let d = Document::parse(&doc).unwrap();
    assert_eq!(d.validate(MAX_BSON_DEPTH), Err(BsonError::TooDeep { limit: MAX_BSON_DEPTH }));
    assert_eq!(d.validate(depth), Err(BsonError::TooDeep { limit: depth }));
    assert_eq!(d.validate(depth + 1), Ok(()), "depth + 1 levels counting the outermost");
    // The top level is one element, skipped by its length.
    assert_eq!(d.count(), Ok(1));
    let info = CommandInfo::scan(d).unwrap().unwrap();
    assert_eq!(info.name, "a");
    // Arrays count too, and so does a code-with-scope's scope.
    let arrays = to_bytes(&::bson::doc! {"x": [[[[1_i32]]]]});
    assert_eq!(Document::parse(&arrays).unwrap().validate(4), Err(BsonError::TooDeep { limit: 4 }));
    let scoped = to_bytes(&::bson::doc! {"c": ::bson::Bson::JavaScriptCodeWithScope(::bson::JavaScriptCodeWithScope {
    code: "f".into(), scope: ::bson::doc! {"s": {"t": 1_i32}} })});
    assert_eq!(Document::parse(&scoped).unwrap().validate(2), Err(BsonError::TooDeep { limit: 2 }));
    assert_eq!(Document::parse(&scoped).unwrap().validate(3), Ok(()));
}

fn compressed(original: i32, size: i32, id: u8, payload: &[u8]) -> Message {
    let mut body = original.to_le_bytes().to_vec();
    body.extend_from_slice(&size.to_le_bytes());
    body.push(id);
    body.extend_from_slice(payload);
    message(2012, &body)
}

fn decompress(m: &Message, limits: &Limits) -> Result<Message, MongoError> {
    OpCompressed::parse(m)?.decompress(limits)
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(vec![], flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn decompression_bombs_and_lying_sizes() {
    let small = Limits { max_frame: 1 << 20, max_depth: 8 };
    let cap = (1 << 20) - 16;
    // 8 MiB of zeros in ~8 KiB of zlib, declared as 1000 bytes: cut off at 1001.
    let zeros = vec![0u8; 8 << 20];
    let bomb = zlib(&zeros);
    assert!(bomb.len() < 100_000);
    let m = compressed(2013, 1000, 2, &bomb);
    assert_eq!(
        decompress(&m, &small),
        Err(MongoError::UncompressedSizeMismatch { declared: 1000, actual: 1000, cut_off: true })
    );
    // Declared honestly: over the cap, refused before decompressing.
    let m = compressed(2013, 64 << 20, 2, &bomb);
    assert_eq!(decompress(&m, &small), Err(MongoError::UncompressedTooLarge { size: 64 << 20, limit: cap }));
    for size in [-1, i32::MIN] {
        let m = compressed(2013, size, 2, &bomb);
        assert_eq!(decompress(&m, &small), Err(MongoError::UncompressedTooLarge { size: size.into(), limit: cap }));
    }
    // Shorter than declared.
    let m = compressed(2013, 500, 2, &zlib(&[1; 100]));
    assert_eq!(
        decompress(&m, &small),
        Err(MongoError::UncompressedSizeMismatch { declared: 500, actual: 100, cut_off: false })
    );
    // The same bomb in zstd, cut off.
    let z = ruzstd::encoding::compress_to_vec(&zeros[..], ruzstd::encoding::CompressionLevel::Fastest);
    let m = compressed(2013, 600_000, 3, &z);
    assert_eq!(
        decompress(&m, &small),
        Err(MongoError::UncompressedSizeMismatch { declared: 600_000, actual: 600_000, cut_off: true })
    );
    // Snappy says its own length up front: it must be the declared one.
    let s = snap::raw::Encoder::new().compress_vec(&[7; 5000]).unwrap();
    let m = compressed(2013, 1000, 1, &s);
    assert_eq!(
        decompress(&m, &small),
        Err(MongoError::UncompressedSizeMismatch { declared: 1000, actual: 5000, cut_off: false })
    );
    let m = compressed(2013, 5000, 1, &s[..s.len() - 3]);
    assert_eq!(decompress(&m, &small), Err(MongoError::Decompress { compressor: "snappy", reason: "corrupt block" }));
    // 40 MB announced by a 4-byte varint: refused before the output is allocated.
    let m = compressed(2013, 40_000_000, 1, &[0x80, 0xB4, 0x89, 0x13]);
    assert_eq!(
        decompress(&m, &default_limits()),
        Err(MongoError::Decompress { compressor: "snappy", reason: "claims more than the block can expand to" })
    );
    let m = compressed(2013, 5000, 1, &[0xFF; 12]);
    assert_eq!(
        decompress(&m, &small),
        Err(MongoError::Decompress { compressor: "snappy", reason: "bad length header" })
    );
    // Noop: the payload is the message.
    let m = compressed(2013, 3, 0, b"ab");
    assert_eq!(
        decompress(&m, &small),
        Err(MongoError::UncompressedSizeMismatch { declared: 3, actual: 2, cut_off: false })
    );
    // Garbage for zlib and zstd.
    let m = compressed(2013, 10, 2, b"not zlib at all");
    assert_eq!(decompress(&m, &small), Err(MongoError::Decompress { compressor: "zlib", reason: "corrupt stream" }));
    let m = compressed(2013, 10, 3, b"not zstd at all");
    assert_eq!(decompress(&m, &small), Err(MongoError::Decompress { compressor: "zstd", reason: "bad magic number" }));
}

#[test]
fn zstd_windows_larger_than_the_content_are_refused_before_the_decoder_reserves_them() {
    // Magic, descriptor 0 (not single segment, no checksum, no dictionary), window
    // descriptor 0x88: 2^(10+17) = 128 MiB, which ruzstd would reserve.
    let frame = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x88, 0x01, 0x00, 0x00];
    let m = compressed(2013, 100, 3, &frame);
    assert_eq!(
        decompress(&m, &default_limits()),
        Err(MongoError::Decompress { compressor: "zstd", reason: "window larger than allowed" })
    );
    let m = compressed(2013, 100, 3, &frame[..5]);
    assert_eq!(
        decompress(&m, &default_limits()),
        Err(MongoError::Decompress { compressor: "zstd", reason: "truncated frame header" })
    );
    // A streaming frame (window from its descriptor, no content size), as ruzstd writes it.
    let z = ruzstd::encoding::compress_to_vec(&[5u8; 300][..], ruzstd::encoding::CompressionLevel::Fastest);
    let m = compressed(2013, 300, 3, &z);
    let inner = decompress(&m, &default_limits()).unwrap();
    assert_eq!(inner.body(), &[5u8; 300][..]);
    let m = compressed(2013, 100, 3, &z);
    assert_eq!(
        decompress(&m, &default_limits()),
        Err(MongoError::UncompressedSizeMismatch { declared: 100, actual: 100, cut_off: true })
    );
}

#[test]
fn compressed_headers_that_make_no_sense() {
    let m = compressed(2013, 0, 9, b"");
    assert_eq!(OpCompressed::parse(&m), Err(MongoError::UnknownCompressor(9)));
    let m = compressed(2012, 0, 0, b"");
    assert_eq!(OpCompressed::parse(&m), Err(MongoError::NestedCompression));
    let m = message(2012, &[1, 2, 3]);
    assert_eq!(OpCompressed::parse(&m), Err(MongoError::Truncated { what: "OP_COMPRESSED prefix" }));
    // A noop OP_COMPRESSED wrapping a message too short to be one: the inner message is
    // still a message (header + body), its view reports the problem.
    let m = compressed(2013, 2, 0, b"ab");
    let inner = decompress(&m, &default_limits()).unwrap();
    assert_eq!(inner.op(), Err(MongoError::Truncated { what: "OP_MSG flagBits" }));
    assert_eq!(
        OpMsg::parse(&message(2004, &[])),
        Err(MongoError::WrongOpCode { expected: OpCode::Msg, actual: OpCode::Query })
    );
}

#[test]
fn legacy_messages_with_lying_fields() {
    // OP_QUERY without the NUL of its collection name, without its counts, with trailing junk.
    assert_eq!(
        OpQuery::parse(&message(2004, &[0, 0, 0, 0, b'a', b'b'])),
        Err(MongoError::Truncated { what: "OP_QUERY fullCollectionName" })
    );
    assert_eq!(
        OpQuery::parse(&message(2004, &[0, 0, 0, 0, b'a', 0, 1])),
        Err(MongoError::Truncated { what: "OP_QUERY numberToSkip" })
    );
    let mut q = vec![0, 0, 0, 0, b'a', 0, 0, 0, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(&ping());
    q.extend_from_slice(&[1, 2]);
    assert_eq!(
        OpQuery::parse(&message(2004, &q)),
        Err(bson_err("OP_QUERY returnFieldsSelector", BsonError::Truncated { what: "document length" }))
    );
    // OP_REPLY claiming more documents than it has, or fewer; a negative count.
    let mut r = vec![0; 16];
    r.extend_from_slice(&2i32.to_le_bytes());
    r.extend_from_slice(&ping());
    assert_eq!(OpReply::parse(&message(1, &r)), Err(MongoError::Malformed { what: "OP_REPLY numberReturned" }));
    r[16..20].copy_from_slice(&(-1i32).to_le_bytes());
    assert_eq!(OpReply::parse(&message(1, &r)), Err(MongoError::Malformed { what: "OP_REPLY numberReturned" }));
    assert_eq!(OpReply::parse(&message(1, &[0; 19])), Err(MongoError::Truncated { what: "OP_REPLY prefix" }));
    // OP_KILL_CURSORS whose count disagrees with its ids.
    let mut k = vec![0, 0, 0, 0];
    k.extend_from_slice(&i32::MAX.to_le_bytes());
    k.extend_from_slice(&[0; 8]);
    assert_eq!(LegacyOp::parse(&message(2007, &k)), Err(MongoError::Malformed { what: "OP_KILL_CURSORS count" }));
    assert_eq!(
        LegacyOp::parse(&message(2006, &[0, 0, 0, 0, b'x'])),
        Err(MongoError::Truncated { what: "fullCollectionName" })
    );
}

#[test]
fn correlator_caps_and_misuse() {
    let h = |request_id, response_to| Header { message_length: 0, request_id, response_to, op_code: OpCode::Msg };
    let mut c: Correlator<u32> = Correlator::new(2);
    c.request(&h(1, 0), Expect::Reply, 1).unwrap();
    assert_eq!(c.request(&h(1, 0), Expect::Reply, 2), Err(MongoError::DuplicateRequestId(1)));
    c.request(&h(2, 0), Expect::Stream, 2).unwrap();
    assert_eq!(c.request(&h(3, 0), Expect::Reply, 3), Err(MongoError::TooManyInFlight { limit: 2 }));
    // Requests that expect nothing are not counted.
    c.request(&h(4, 0), Expect::Nothing, 4).unwrap();
    assert_eq!(c.reply(&h(10, 99), false), Err(MongoError::UnmatchedReply { response_to: 99 }));
    assert_eq!(c.reply(&h(11, 1), false), Ok(Matched::Done { request_id: 1, data: 1 }));
    assert_eq!(c.reply(&h(12, 1), false), Err(MongoError::UnmatchedReply { response_to: 1 }));
    assert_eq!(c.reply(&h(13, 2), true), Ok(Matched::More { request_id: 2, data: &2 }));
    assert_eq!(c.request(&h(5, 0), Expect::Reply, 5), Err(MongoError::RequestDuringExhaust));
    assert_eq!(c.in_flight(), 1);
    assert_eq!(c.drain(), vec![(2, 2)]);
}

#[test]
fn every_fixture_message_cut_short_or_lengthened_is_an_error_not_a_panic() {
    for name in fixture_names() {
        let (client, server) = messages(&name);
        for m in client.iter().chain(&server) {
            let bytes = m.bytes();
            for cut in (17..bytes.len()).step_by(7) {
                // Pretend the message ends at `cut`.
                let mut v = bytes[..cut].to_vec();
                v[..4].copy_from_slice(&(cut as i32).to_le_bytes());
                let short = Message::new(Bytes::from(v), &default_limits()).unwrap();
                if let Ok(Op::Compressed(c)) = short.op() {
                    let _ = c.decompress(&default_limits());
                }
            }
            // One byte of junk after the last section.
            let mut v = bytes.to_vec();
            v.push(0x42);
            let len = v.len() as i32;
            v[..4].copy_from_slice(&len.to_le_bytes());
            let long = Message::new(Bytes::from(v), &default_limits()).unwrap();
            match long.op() {
                Ok(Op::Compressed(c)) => {
                    assert!(c.decompress(&default_limits()).is_err() || c.compressor != Compressor::Noop)
                }
                Ok(Op::Msg(_)) => panic!("{name}: junk after an OP_MSG's sections was accepted"),
                _ => {}
            }
        }
        let _ = fixture(&format!("{name}.client"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512), op in prop_oneof![
        Just(1i32), Just(2001), Just(2002), Just(2004), Just(2005), Just(2006), Just(2007), Just(2012), Just(2013), any::<i32>()
    ]) {
        let limits = Limits { max_frame: 4096, max_depth: 8 };
        let m = message(op, &data);
        if let Ok(view) = m.op() {
            let _ = (view.expect(), view.more_to_come());
            if let Op::Compressed(c) = view {
                if let Ok(inner) = c.decompress(&limits) {
                    let _ = inner.op();
                }
            }
            if let Op::Msg(msg) = view {
                let _ = msg.body().validate(8);
                let _ = CommandInfo::scan(msg.body());
                let _ = ReplyInfo::scan(msg.body());
                for s in msg.sequences() {
                    s.documents().for_each(|d| { let _ = d.validate(8); });
                }
            }
        }
        if let Ok((d, _)) = Document::parse_prefix(&data) {
            let _ = d.validate(8);
            let _ = CommandInfo::scan(d);
            let _ = ReplyInfo::scan(d);
        }
        let _ = frame_prefix(&data);
    }

    #[test]
    fn arbitrary_documents_after_a_valid_header(elements in proptest::collection::vec(any::<u8>(), 0..256)) {
        let bytes = doc_with(&elements);
        let d = Document::parse(&bytes).unwrap();
        let valid = d.validate(8).is_ok();
        if valid {
            prop_assert!(d.iter().all(|e| e.is_ok()));
            prop_assert!(CommandInfo::scan(d).is_ok());
            prop_assert!(ReplyInfo::scan(d).is_ok());
        }
    }
}

/// Frames whatever whole messages `data` starts with; stops at the first error.
fn frame_prefix(data: &[u8]) -> usize {
    let mut d = MessageDecoder::new(Limits { max_frame: 4096, max_depth: 8 });
    let mut buf = BytesMut::from(data);
    let mut n = 0;
    while let Ok(Some(_)) = d.decode(&mut buf) {
        n += 1;
    }
    n
}

#[test]
fn fixtures_frame_under_small_limits_with_typed_errors() {
    // The largest message of insert_many is ~10 KB: under a 4 KiB cap it is refused by
    // its header, after the messages before it.
    let data = fixture("insert_many.client");
    let mut d = MessageDecoder::new(Limits { max_frame: 4096, max_depth: 8 });
    let mut buf = BytesMut::from(&data[..]);
    let mut ok = 0;
    let err = loop {
        match d.decode(&mut buf) {
            Ok(Some(_)) => ok += 1,
            Ok(None) => panic!("everything framed"),
            Err(e) => break e,
        }
    };
    assert!(ok >= 2);
    assert!(matches!(err, MongoError::MessageTooLarge { limit: 4096, .. }), "{err:?}");
    assert_eq!(frame(&data, &[]).len(), 5);
}
