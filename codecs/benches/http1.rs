//! What the HTTP/1 codec costs without sockets: requests per second through the request
//! decoder (wrk's 20 captured keep-alive GETs, fixtures/http1/wrk.client), responses with
//! their bodies through the response decoder (nginx's answers to them), and body framing
//! throughput in bytes per second for a large Content-Length body and a chunked body of
//! 16 KiB chunks.
//!
//! `cargo bench -p sluice-codecs --bench http1`.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_codecs::framing::Decode;
use sluice_codecs::http1::{
    encode_chunk, encode_last_chunk, H1Limits, Item, PendingRequest, RequestDecoder, ResponseDecoder,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/http1");

fn fixture(name: &str) -> Bytes {
    Bytes::from(std::fs::read(format!("{FIXTURES}/{name}")).unwrap())
}

/// Decodes every request in `input`; returns how many heads were seen.
fn requests(input: &Bytes) -> usize {
    let mut d = RequestDecoder::new(H1Limits::default());
    let mut buf = BytesMut::from(&input[..]);
    let mut heads = 0;
    while let Some(item) = d.decode(&mut buf).unwrap() {
        heads += usize::from(matches!(item, Item::Head { .. }));
    }
    heads
}

fn responses(input: &Bytes, n: usize) -> usize {
    let mut d = ResponseDecoder::new(H1Limits::default());
    for _ in 0..n {
        d.push_request(PendingRequest::default()).unwrap();
    }
    let mut buf = BytesMut::from(&input[..]);
    let mut bytes = 0;
    while let Some(item) = d.decode(&mut buf).unwrap() {
        if let Item::Body(p) = item {
            bytes += p.data().len();
        }
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let client = fixture("wrk.client");
    let server = fixture("wrk.server");
    let n = requests(&client);
    let mut g = c.benchmark_group("http1_heads");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("wrk_requests", |b| b.iter(|| requests(&client)));
    g.bench_function("wrk_responses", |b| b.iter(|| responses(&server, n)));
    g.finish();

    let mut g = c.benchmark_group("http1_body");
    let size = 4 << 20;
    let mut plain = BytesMut::from(format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {size}\r\n\r\n").as_bytes());
    plain.resize(plain.len() + size, b'x');
    let plain = plain.freeze();
    let mut chunked = BytesMut::from(&b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"[..]);
    for _ in 0..size / (16 << 10) {
        encode_chunk(&mut chunked, &[b'x'; 16 << 10]);
    }
    encode_last_chunk(&mut chunked, []).unwrap();
    let chunked = chunked.freeze();
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function("content_length_4MiB", |b| b.iter(|| requests(&plain)));
    g.bench_function("chunked_16KiB_chunks_4MiB", |b| b.iter(|| requests(&chunked)));
    // As a socket delivers it: 64 KiB reads.
    g.bench_function("chunked_4MiB_in_64KiB_reads", |b| {
        b.iter(|| {
            let mut d = RequestDecoder::new(H1Limits::default());
            let mut buf = BytesMut::with_capacity(128 << 10);
            let mut data = 0;
            for read in chunked.chunks(64 << 10) {
                buf.extend_from_slice(read);
                while let Some(item) = d.decode(&mut buf).unwrap() {
                    if let Item::Body(p) = item {
                        data += p.data().len();
                    }
                }
            }
            assert_eq!(data, size);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
