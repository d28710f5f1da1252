//! What the shared SQL layer costs per statement, for the two statements that dominate
//! benchmark traffic: sysbench's point select (`oltp_point_select`, ~40 bytes as text) and
//! an 8-row INSERT (`oltp_insert`-style bulk rows, ~500 bytes), plus a ~100-byte ORM
//! statement with an IN-list.
//!
//! - `normalize`: the digest pass alone (lexer + canonical writer + hash).
//! - `classify_hit/connection`: [`StatementCache::classify`] when the digest is cached —
//!   what every repeated statement costs on a connection-owned cache.
//! - `classify_hit/listener`: the same through [`SharedStatementCache`] (one shard lock).
//! - `classify_miss`: no cache: sqlparser parse and AST walk included, paid once per
//!   distinct digest.
//!
//! `cargo bench -p sluice-filters --bench sql_digest`; times are per statement.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_filters::sql::{normalize, CacheLimits, Dialect, SharedStatementCache, StatementCache, StatementInfo};
use std::hint::black_box;

const POINT_SELECT: &str = "SELECT c FROM sbtest1 WHERE id=5012";

const ORM_SELECT: &str = "SELECT `users`.`id`, `users`.`email` FROM `users` WHERE `users`.`id` IN (17, 42, 99, 1024)";

fn insert_8_rows() -> String {
    let row = "(5003, 4992, '83868641912-28773972837-60736120486-75162659906', '67847967377-48000963322')";
    format!("INSERT INTO sbtest1 (id, k, c, pad) VALUES {}", [row; 8].join(", "))
}

fn statements() -> Vec<(&'static str, String)> {
    vec![
        ("point_select", POINT_SELECT.to_string()),
        ("orm_in_list", ORM_SELECT.to_string()),
        ("insert_8_rows", insert_8_rows()),
    ]
}

fn sql_digest(c: &mut Criterion) {
    let mut group = c.benchmark_group("sql_digest");
    group.throughput(Throughput::Elements(1));
    for (name, sql) in statements() {
        let sql = sql.as_bytes();
        let mut out = String::new();
        group.bench_function(format!("normalize/{name}/{}B", sql.len()), |b| {
            b.iter(|| normalize(black_box(sql), Dialect::MySql, &mut out))
        });

        let mut cache = StatementCache::new(Dialect::MySql, CacheLimits::PER_CONNECTION);
        let mut scratch = String::new();
        cache.classify(sql, &mut scratch);
        group.bench_function(format!("classify_hit/connection/{name}"), |b| {
            b.iter(|| cache.classify(black_box(sql), &mut scratch))
        });

        let shared = SharedStatementCache::new(Dialect::MySql, CacheLimits::PER_LISTENER);
        shared.classify(sql, &mut scratch);
        group.bench_function(format!("classify_hit/listener/{name}"), |b| {
            b.iter(|| shared.classify(black_box(sql), &mut scratch))
        });

        group.bench_function(format!("classify_miss/{name}"), |b| {
            b.iter(|| StatementInfo::analyze(black_box(sql), Dialect::MySql))
        });
    }
    group.finish();
}

criterion_group!(benches, sql_digest);
criterion_main!(benches);
