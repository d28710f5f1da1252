//! Tests for `StatementInfo` and the statement caches.

use super::*;

fn scratch() -> String {
    String::new()
}

#[test]
fn analyze_fills_every_field() {
    let info = StatementInfo::analyze(b"UPDATE sbtest1 SET k=k+1 WHERE id=5040", Dialect::MySql);
    assert_eq!(info.verb, Verb::Update);
    assert_eq!(&*info.digest_text, "UPDATE sbtest1 SET k = k + ? WHERE id = ?");
    assert_eq!(info.tables.iter().map(|t| &**t).collect::<Vec<_>>(), ["sbtest1"]);
    assert!(!info.parse_fallback && !info.truncated);
    assert_eq!(info.flags, StatementFlags::default());
    let mut out = String::new();
    assert_eq!(
        info.digest_hash,
        normalize(b"update sbtest1 set k = k + 2 where id = 1", Dialect::MySql, &mut out).hash
    );
}

#[test]
fn flags() {
    let cases: &[(&str, bool, bool)] = &[
        ("DELETE FROM t", true, false),
        ("delete from t where id = 1", false, false),
        ("UPDATE t SET a = (SELECT b FROM u WHERE u.id = 1)", true, false),
        ("UPDATE t SET a = 1 WHERE id IN (SELECT id FROM u)", false, false),
        ("WITH x AS (SELECT 1 WHERE true) DELETE FROM t", true, false),
        ("DELETE FROM t; SELECT 1 WHERE 1", true, true),
        ("SELECT * FROM t", false, false),
        ("SELECT 1; SELECT 2", false, true),
        ("SELECT 1; ", false, false),
        ("SELECT 1; -- c\n ;", false, false),
    ];
    for (sql, without_where, multiple) in cases {
        let info = StatementInfo::analyze(sql.as_bytes(), Dialect::Postgres);
        assert_eq!(info.flags.delete_or_update_without_where, *without_where, "{sql:?}");
        assert_eq!(info.flags.multiple_statements, *multiple, "{sql:?}");
    }
}

#[test]
fn fallback_is_reported() {
    let info = StatementInfo::analyze(b"SELECT * FROM t WHERE ((", Dialect::MySql);
    assert!(info.parse_fallback);
    assert_eq!(info.tables.iter().map(|t| &**t).collect::<Vec<_>>(), ["t"]);
}

#[test]
fn cache_hits_share_the_entry() {
    let mut cache = StatementCache::new(Dialect::MySql, CacheLimits::PER_CONNECTION);
    let mut scratch = scratch();
    let first = cache.classify(b"SELECT c FROM sbtest1 WHERE id=1", &mut scratch);
    let second = cache.classify(b"select c from sbtest1 where id = 99", &mut scratch);
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(cache.len(), 1);
    let other = cache.classify(b"SELECT c FROM sbtest2 WHERE id=1", &mut scratch);
    assert!(!Arc::ptr_eq(&first, &other));
    assert_eq!(cache.len(), 2);
    assert!(cache.bytes() > 0);
}

#[test]
fn a_hash_collision_is_a_miss() {
    let mut cache = StatementCache::new(Dialect::MySql, CacheLimits::PER_CONNECTION);
    let mut scratch = scratch();
    let real = cache.classify(b"SELECT 1", &mut scratch);
    // Plant an entry with the same hash but other text, as a collision would.
    let forged = Arc::new(StatementInfo { digest_text: Arc::from("SELECT * FROM secrets"), ..(*real).clone() });
    cache.insert(&forged);
    let again = cache.classify(b"SELECT 1", &mut scratch);
    assert_eq!(&*again.digest_text, "SELECT ?");
    assert!(again.tables.is_empty());
}

#[test]
fn truncated_statements_are_not_cached() {
    let mut cache = StatementCache::new(Dialect::MySql, CacheLimits::PER_LISTENER);
    let mut scratch = scratch();
    let pad = " ".repeat(MAX_DIGEST_INPUT);
    let a = cache.classify(format!("SELECT * FROM public_t /*{pad}*/ JOIN a").as_bytes(), &mut scratch);
    let b = cache.classify(format!("SELECT * FROM public_t /*{pad}*/ JOIN secrets").as_bytes(), &mut scratch);
    assert!(a.truncated && b.truncated);
    assert_eq!(a.digest_hash, b.digest_hash);
    assert!(b.tables.iter().any(|t| &**t == "secrets"), "{:?}", b.tables);
    assert!(cache.is_empty());
}

#[test]
fn eviction_keeps_the_bounds_and_the_hot_entries() {
    let limits = CacheLimits { max_entries: 8, max_bytes: 1 << 20 };
    let mut cache = StatementCache::new(Dialect::Postgres, limits);
    let mut scratch = scratch();
    let hot = cache.classify(b"SELECT * FROM hot WHERE id = $1", &mut scratch);
    for i in 0..100 {
        // The hot statement runs between every one-off.
        let again = cache.classify(b"SELECT * FROM hot WHERE id = $1", &mut scratch);
        assert!(Arc::ptr_eq(&hot, &again), "hot entry evicted at {i}");
        cache.classify(format!("SELECT * FROM cold_{i}").as_bytes(), &mut scratch);
        assert!(cache.len() <= limits.max_entries);
    }

    let limits = CacheLimits { max_entries: 1000, max_bytes: 4096 };
    let mut cache = StatementCache::new(Dialect::Postgres, limits);
    for i in 0..200 {
        cache.classify(format!("SELECT * FROM table_with_a_long_name_{i} WHERE x = 1").as_bytes(), &mut scratch);
        assert!(cache.bytes() <= limits.max_bytes);
    }
    assert!(cache.len() < 200);

    // An entry larger than a quarter of the budget is not cached.
    let big = format!("SELECT * FROM t WHERE {}", "a = b AND ".repeat(200));
    cache.classify(big.as_bytes(), &mut scratch);
    assert!(cache.bytes() <= limits.max_bytes);

    let mut none = StatementCache::new(Dialect::Postgres, CacheLimits { max_entries: 0, max_bytes: 0 });
    none.classify(b"SELECT 1", &mut scratch);
    assert!(none.is_empty());
}

#[test]
fn shared_cache_across_threads() {
    let cache = Arc::new(SharedStatementCache::new(Dialect::MySql, CacheLimits::PER_LISTENER));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || {
                let mut scratch = String::new();
                for i in 0..200 {
                    let sql = format!("SELECT c FROM sbtest{} WHERE id={}", i % 10, worker * 1000 + i);
                    let info = cache.classify(sql.as_bytes(), &mut scratch);
                    assert_eq!(info.verb, Verb::Select);
                    assert_eq!(&*info.tables[0], format!("sbtest{}", i % 10));
                }
            })
        })
        .collect();
    for worker in workers {
        assert!(worker.join().is_ok());
    }
    assert_eq!(cache.len(), 10);
    assert!(!cache.is_empty() && cache.bytes() > 0);
}
