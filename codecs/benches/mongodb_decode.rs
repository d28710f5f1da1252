//! What the MongoDB codec costs per message, without sockets: framing (`MessageDecoder`,
//! header + `split_to`), OP_MSG parsing (flags, section framing, sequence document
//! framing) and the command scan (first key, `$db`, `lsid`, ...) that a filter does on
//! every request, plus the reply scan on every reply. The messages are the captured ones
//! (fixtures/mongodb): the client side of `insert_many` (a 200-document sequence, ~10 KB)
//! and of `find_getmore` (small commands), and the server side of `find_getmore` (cursor
//! batches). Throughput is reported in bytes, so the result reads as GB/s of traffic.
//!
//! `cargo bench -p sluice-codecs --bench mongodb_decode`.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_codecs::mongodb::{CommandInfo, MessageDecoder, Op, ReplyInfo};
use sluice_codecs::Decode;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/mongodb");

fn decode_all(bytes: &[u8], request: bool) -> usize {
    let mut decoder = MessageDecoder::default();
    let mut buf = BytesMut::from(bytes);
    let mut n = 0;
    while let Some(m) = decoder.decode(&mut buf).unwrap() {
        if let Ok(Op::Msg(msg)) = m.op() {
            if request {
                let info = CommandInfo::scan(msg.body()).unwrap().unwrap();
                n += info.name.len() + msg.sequence_documents();
            } else {
                n += ReplyInfo::scan(msg.body()).unwrap().cursor.map_or(0, |c| c.batch_len);
            }
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("mongodb");
    for (name, side, request) in
        [("insert_many", "client", true), ("find_getmore", "client", true), ("find_getmore", "server", false)]
    {
        let bytes = std::fs::read(format!("{FIXTURES}/{name}.{side}")).unwrap();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group
            .bench_function(format!("{name}.{side}"), |b| b.iter(|| decode_all(std::hint::black_box(&bytes), request)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
