//! Tests for `DigestTable`.

use super::*;
use crate::sql::Dialect;

fn info(sql: &str) -> StatementInfo {
    StatementInfo::analyze(sql.as_bytes(), Dialect::MySql)
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn records_and_ranks() {
    let table = DigestTable::new(100);
    let point = info("SELECT c FROM sbtest1 WHERE id=1");
    let range = info("SELECT c FROM sbtest1 WHERE id BETWEEN 1 AND 100");
    for _ in 0..10 {
        table.record(&point, MS, 1, false);
    }
    table.record(&range, 50 * MS, 100, false);
    table.record(&range, 30 * MS, 0, true);

    let by_count = table.top(10, DigestOrder::Count);
    assert_eq!(by_count.len(), 2);
    assert_eq!(&*by_count[0].digest_text, "SELECT c FROM sbtest1 WHERE id = ?");
    assert_eq!((by_count[0].count, by_count[0].rows, by_count[0].errors), (10, 10, 0));
    assert_eq!(by_count[0].total_latency, 10 * MS);
    assert_eq!(by_count[0].verb, Verb::Select);
    assert_eq!(&*by_count[0].tables[0], "sbtest1");

    let by_latency = table.top(1, DigestOrder::TotalLatency);
    assert_eq!(by_latency.len(), 1);
    let row = &by_latency[0];
    assert_eq!((row.count, row.errors, row.rows), (2, 1, 100));
    assert_eq!((row.total_latency, row.max_latency), (80 * MS, 50 * MS));
    assert_eq!(row.digest_hash, range.digest_hash);
    assert_eq!(table.len(), 2);
}

#[test]
fn full_table_counts_new_digests_as_other() {
    let table = DigestTable::new(3);
    for i in 0..10 {
        table.record(&info(&format!("SELECT * FROM t{i}")), MS, 0, false);
    }
    assert_eq!(table.len(), 3);
    assert_eq!(table.top(100, DigestOrder::Count).len(), 3);
    let other = table.overflow();
    assert_eq!((other.count, other.digest_hash, &*other.digest_text), (7, 0, "other"));
    // Digests already in the table keep counting.
    let first = table.top(1, DigestOrder::Count).remove(0);
    let again = StatementInfo { digest_text: Arc::clone(&first.digest_text), ..info("SELECT 1") };
    let again = StatementInfo { digest_hash: first.digest_hash, ..again };
    table.record(&again, MS, 0, false);
    assert_eq!(table.overflow().count, 7);
}

#[test]
fn colliding_text_goes_to_other() {
    let table = DigestTable::new(10);
    let real = info("SELECT 1");
    table.record(&real, MS, 0, false);
    let forged = StatementInfo { digest_text: Arc::from("SELECT 2 FROM x"), ..real.clone() };
    table.record(&forged, MS, 0, false);
    assert_eq!(table.top(10, DigestOrder::Count)[0].count, 1);
    assert_eq!(table.overflow().count, 1);
}

#[test]
fn clear_and_saturation() {
    let table = DigestTable::default();
    let statement = info("SELECT 1");
    table.record(&statement, Duration::MAX, u64::MAX, false);
    table.record(&statement, Duration::MAX, u64::MAX, true);
    let row = table.top(1, DigestOrder::TotalLatency).remove(0);
    assert_eq!((row.total_latency, row.rows, row.errors), (Duration::MAX, u64::MAX, 1));
    table.clear();
    assert!(table.is_empty());
    assert!(table.top(10, DigestOrder::Count).is_empty());
    assert_eq!(table.overflow().count, 0);
}

#[test]
fn concurrent_records_add_up() {
    let table = Arc::new(DigestTable::new(1000));
    let statements: Arc<Vec<StatementInfo>> = Arc::new((0..50).map(|i| info(&format!("SELECT * FROM t{i}"))).collect());
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (table, statements) = (Arc::clone(&table), Arc::clone(&statements));
            std::thread::spawn(move || {
                for round in 0..100 {
                    for statement in statements.iter() {
                        table.record(statement, MS, round, false);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        assert!(worker.join().is_ok());
    }
    let rows = table.top(usize::MAX, DigestOrder::Count);
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|row| row.count == 400 && row.rows == 4 * (0..100).sum::<u64>()));
}
