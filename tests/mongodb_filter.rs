//! The `mongodb` listener against a real MongoDB-wire server (SecantusDB) with a real driver
//! (pymongo, `directConnection=true`): CRUD, a batched insert, a cursor over many batches,
//! aggregation, a transaction, SCRAM-SHA-256 through sluice, and TLS terminated by sluice;
//! sluice's op counts must equal the commands pymongo's command monitoring saw it send. A
//! `deny` on `drop` leaves the collection in place and pymongo raises OperationFailure code
//! 13; a rate limit answers the configured code on a connection that keeps working; a
//! `delay` rule slows the command; garbage closes an enforcing listener.
//!
//! Compression: SecantusDB does not negotiate it (its hello has no `compression`), so
//! pymongo never sends OP_COMPRESSED here; the filter's tests replay the compressed
//! fixtures (captured through a relay that played a compressing mongod) instead.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::*;

fn mongo_listener(name: &str, db: &Mongo, extra: &str) -> Proxy {
    Proxy::start(&one_listener(name, "mongodb", &[db.addr()], extra))
}

fn uri(addr: SocketAddr, options: &str) -> String {
    format!("mongodb://{}:{}/?directConnection=true{options}", addr.ip(), addr.port())
}

fn ops(m: &Metrics, listener: &str, op: &str, outcome: &str) -> f64 {
    m.get("sluice_ops_total", &[("listener", listener), ("protocol", "mongodb"), ("op", op), ("outcome", outcome)])
}

fn all_ops(m: &Metrics, listener: &str, op: &str) -> f64 {
    m.get("sluice_ops_total", &[("listener", listener), ("protocol", "mongodb"), ("op", op)])
}

/// A pymongo command listener that counts the commands the driver sends (on its pooled
/// connections; monitoring heartbeats are not commands) and prints them as `name count`
/// lines after the script's own output.
const COUNTING: &str = "
from pymongo import monitoring
class Counter(monitoring.CommandListener):
    def __init__(self): self.sent = {}
    def started(self, e): self.sent[e.command_name] = self.sent.get(e.command_name, 0) + 1
    def succeeded(self, e): pass
    def failed(self, e): pass
counter = Counter()
";

/// The `name count` lines a script printed, as a map.
fn sent(lines: &[String]) -> BTreeMap<String, f64> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("sent "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, n)| (name.to_string(), n.parse().unwrap()))
        .collect()
}

#[test]
fn crud_bulk_cursors_and_aggregation_are_counted_as_pymongo_sent_them() {
    let db = Mongo::start();
    let proxy = mongo_listener("mg_crud", &db, "");
    let addr = proxy.addr("mg_crud");
    let script = format!(
        "{COUNTING}
c = MongoClient({:?}, event_listeners=[counter])
items = c.app.items
items.drop()
items.insert_one({{'_id': 'first', 'n': -1}})
r = items.insert_many([{{'n': i, 'tag': 'even' if i % 2 == 0 else 'odd'}} for i in range(200)])
assert len(r.inserted_ids) == 200
docs = list(items.find({{'n': {{'$gte': 0}}}}, batch_size=10).sort('n', 1))
assert len(docs) == 200, len(docs)
assert items.update_one({{'_id': 'first'}}, {{'$set': {{'n': -2}}}}).modified_count == 1
assert items.update_many({{'tag': 'odd'}}, {{'$inc': {{'n': 1000}}}}).modified_count == 100
groups = list(items.aggregate([{{'$match': {{'n': {{'$gte': 0}}}}}}, {{'$group': {{'_id': '$tag', 'k': {{'$sum': 1}}}}}}, {{'$sort': {{'_id': 1}}}}]))
assert [g['k'] for g in groups] == [100, 100], groups
assert items.count_documents({{'tag': 'even'}}) == 100
assert sorted(items.distinct('tag')) == ['even', 'odd']
items.create_index('n')
assert items.delete_many({{'tag': 'odd'}}).deleted_count == 100
assert items.find_one({{'_id': 'first'}})['n'] == -2
print('ok')
for name, n in sorted(counter.sent.items()): print('sent', name, n)
c.close()
",
        uri(addr, "")
    );
    let lines = pymongo(&uri(addr, ""), &script);
    assert_eq!(lines[0], "ok", "{lines:?}");
    let sent = sent(&lines);
    // 200 documents in batches of 10: 19 getMores, and one more that finds the end.
    assert!(sent["getMore"] >= 19.0, "{sent:?}");
    // Give the closing endSessions and the monitor's close time to be counted.
    std::thread::sleep(Duration::from_millis(300));
    let m = proxy.metrics();
    for (name, n) in &sent {
        if name == "endSessions" {
            continue;
        }
        assert_eq!(all_ops(&m, "mg_crud", name), *n, "sluice counts {name} as pymongo sent it: {sent:?}");
    }
    assert_eq!(ops(&m, "mg_crud", "insert", "ok"), 2.0);
    assert_eq!(ops(&m, "mg_crud", "getMore", "ok"), sent["getMore"]);
    assert_eq!(ops(&m, "mg_crud", "aggregate", "ok"), 2.0, "the pipeline and count_documents");
    assert_eq!(
        m.get("sluice_mongodb_documents_sum", &[("listener", "mg_crud"), ("kind", "written")]),
        1.0 + 200.0 + 1.0 + 1.0 + 1.0
    );
    // 200 in the cursor, 2 groups, 1 count, 1 find_one (plus what listIndexes and the like return).
    assert!(m.get("sluice_mongodb_documents_sum", &[("listener", "mg_crud"), ("kind", "returned")]) >= 204.0);
    // Every reply's size is recorded: at least one per getMore and insert, each at least a header.
    let reply = [("listener", "mg_crud"), ("kind", "reply")];
    let (replies, reply_bytes) =
        (m.get("sluice_mongodb_reply_bytes_count", &reply), m.get("sluice_mongodb_reply_bytes_sum", &reply));
    assert!(replies >= sent["getMore"] + 2.0, "{replies} replies");
    assert!(reply_bytes >= 16.0 * replies, "{reply_bytes} bytes in {replies} replies");
    assert_eq!(m.get("sluice_mongodb_cursors_total", &[("listener", "mg_crud"), ("event", "opened")]), 1.0);
    assert_eq!(m.get("sluice_mongodb_cursors_total", &[("listener", "mg_crud"), ("event", "exhausted")]), 1.0);
    let coll = |op: &str| {
        m.get(
            "sluice_mongodb_collection_ops_total",
            &[("listener", "mg_crud"), ("collection", "app.items"), ("op", op)],
        )
    };
    assert_eq!(coll("insert"), 2.0);
    assert_eq!(coll("getMore"), sent["getMore"]);
    assert_eq!(coll("update"), 2.0);
    assert_eq!(coll("delete"), 1.0);
    assert_eq!(m.get("sluice_mongodb_decode_errors_total", &[("listener", "mg_crud")]), 0.0);
    assert_eq!(m.get("sluice_mongodb_unexpected_replies_total", &[("listener", "mg_crud")]), 0.0);
    let p50 = m.get("sluice_op_duration_seconds_count", &[("listener", "mg_crud"), ("op", "find")]);
    assert_eq!(p50, sent["find"], "every find timed");
}

#[test]
fn server_errors_are_counted_by_code_name() {
    let db = Mongo::start();
    let proxy = mongo_listener("mg_err", &db, "");
    let addr = proxy.addr("mg_err");
    let lines = pymongo(
        &uri(addr, ""),
        "
c.app.e.insert_one({'_id': 1})
try:
    c.app.e.insert_one({'_id': 1})
except pymongo.errors.DuplicateKeyError:
    print('duplicate')
try:
    c.app.command('noSuchCommand')
except OperationFailure as e:
    print('unknown', e.code)
",
    );
    assert_eq!(lines, ["duplicate", "unknown 59"]);
    let m = proxy.metrics();
    assert_eq!(m.get("sluice_mongodb_write_errors_total", &[("listener", "mg_err")]), 1.0);
    assert_eq!(m.get("sluice_mongodb_errors_total", &[("listener", "mg_err"), ("code_name", "CommandNotFound")]), 1.0);
    assert_eq!(ops(&m, "mg_err", "other", "error"), 1.0, "an unknown command counts as other");
    assert_eq!(ops(&m, "mg_err", "insert", "ok"), 2.0, "a write error answers ok: 1");
}

#[test]
fn a_denied_drop_leaves_the_collection_and_raises_unauthorized() {
    let db = Mongo::start();
    let rules = "    rules:\n      - match: { op: [dropDatabase, drop] }\n        action: deny\n";
    let proxy = mongo_listener("mg_deny", &db, rules);
    let addr = proxy.addr("mg_deny");
    let lines = pymongo(
        &uri(addr, ""),
        "
c.app.keep.insert_one({'x': 1})
try:
    c.app.keep.drop()
    print('dropped')
except OperationFailure as e:
    print('refused', e.code, e.details.get('codeName'), e.details.get('errmsg'))
try:
    c.drop_database('app')
except OperationFailure as e:
    print('refused', e.code)
print(c.app.list_collection_names())
print(c.app.keep.count_documents({}))
",
    );
    assert_eq!(
        lines,
        ["refused 13 Unauthorized sluice: drop denied by policy (rule 0)", "refused 13", "['keep']", "1"],
        "{lines:?}"
    );
    let direct =
        pymongo(&format!("mongodb://{}/?directConnection=true", db.addr()), "print(c.app.list_collection_names())");
    assert_eq!(direct, ["['keep']"], "the server still has it");
    let m = proxy.metrics();
    assert_eq!(ops(&m, "mg_deny", "drop", "denied"), 1.0);
    assert_eq!(ops(&m, "mg_deny", "dropDatabase", "denied"), 1.0);
    assert_eq!(ops(&m, "mg_deny", "insert", "ok"), 1.0);
}

#[test]
fn a_rate_limit_answers_the_configured_code_and_the_connection_keeps_working() {
    let db = Mongo::start();
    let extra = "    mongodb: { limit_error: { code: 16500, code_name: TooManyRequests } }\n    rules:\n      \
                 - match: { op: find, target: app.limited }\n        action: reject\n        \
                 rate_limit: { rate: 2/h, per: target }\n";
    let proxy = mongo_listener("mg_limit", &db, extra);
    let addr = proxy.addr("mg_limit");
    let lines = pymongo(
        &uri(addr, ""),
        "
c.app.limited.insert_one({'x': 1})
refused = 0
for i in range(5):
    try:
        c.app.limited.find_one({})
    except OperationFailure as e:
        assert e.code == 16500 and e.details['codeName'] == 'TooManyRequests', e.details
        refused += 1
print('refused', refused)
print('other', c.app.free.find_one({}) is None, c.admin.command('ping')['ok'])
",
    );
    assert_eq!(lines, ["refused 3", "other True 1.0"]);
    let m = proxy.metrics();
    assert_eq!(ops(&m, "mg_limit", "find", "limited"), 3.0);
    assert_eq!(ops(&m, "mg_limit", "find", "ok"), 3.0, "two within the limit, one on app.free");
}

#[test]
fn a_delay_rule_slows_the_command() {
    let db = Mongo::start();
    let rules = "    rules:\n      - match: { op: count }\n        action: delay\n        \
                 rate_limit: { rate: 4/s, burst: 1, per: op }\n";
    let proxy = mongo_listener("mg_delay", &db, rules);
    let addr = proxy.addr("mg_delay");
    let lines = pymongo(
        &uri(addr, ""),
        "
c.admin.command('ping')
t = time.monotonic()
for i in range(5):
    c.app.command('count', 'x')
print('count', round(time.monotonic() - t, 2))
t = time.monotonic()
for i in range(5):
    c.admin.command('ping')
print('ping', round(time.monotonic() - t, 2))
",
    );
    let elapsed = |what: &str| -> f64 {
        lines.iter().find_map(|l| l.strip_prefix(what)).unwrap_or_else(|| panic!("{lines:?}")).trim().parse().unwrap()
    };
    assert!(elapsed("count") >= 0.9, "five counts at 4/s take a second: {lines:?}");
    assert!(elapsed("ping") < 0.9, "other commands are not held: {lines:?}");
    assert_eq!(ops(&proxy.metrics(), "mg_delay", "count", "ok"), 5.0);
}

#[test]
fn a_transaction_commits_through_sluice() {
    let db = Mongo::start_with(MongoOptions { replica_set: true, ..MongoOptions::default() });
    let proxy = mongo_listener("mg_txn", &db, "");
    let addr = proxy.addr("mg_txn");
    let lines = pymongo(
        &uri(addr, ""),
        "
c.app.accounts.insert_one({'_id': 1, 'balance': 10})
with c.start_session() as s:
    with s.start_transaction():
        c.app.accounts.update_one({'_id': 1}, {'$inc': {'balance': -5}}, session=s)
        c.app.accounts.insert_one({'_id': 2, 'balance': 5}, session=s)
with c.start_session() as s:
    s.start_transaction()
    c.app.accounts.insert_one({'_id': 3}, session=s)
    s.abort_transaction()
print(sorted((d['_id'], d.get('balance')) for d in c.app.accounts.find()))
",
    );
    assert_eq!(lines, ["[(1, 5), (2, 5)]"]);
    let m = proxy.metrics();
    assert_eq!(ops(&m, "mg_txn", "commitTransaction", "ok"), 1.0);
    assert_eq!(ops(&m, "mg_txn", "abortTransaction", "ok"), 1.0);
    assert_eq!(ops(&m, "mg_txn", "insert", "ok"), 3.0);
}

#[test]
fn scram_logins_pass_through_and_rules_see_the_user() {
    let db = Mongo::start_with(MongoOptions { auth: true, ..MongoOptions::default() });
    let (user, password) = MONGO_USER;
    let rules = format!("    rules:\n      - match: {{ op: delete, user: {user} }}\n        action: deny\n");
    let proxy = mongo_listener("mg_scram", &db, &rules);
    let addr = proxy.addr("mg_scram");
    let login = |password: &str| {
        format!(
            "mongodb://{user}:{password}@{addr}/?directConnection=true&authSource=admin&authMechanism=SCRAM-SHA-256"
        )
    };
    let lines = pymongo(
        &login(password),
        "
c.app.items.insert_one({'auth': True})
print(c.app.items.find_one({'auth': True})['auth'])
try:
    c.app.items.delete_one({})
except OperationFailure as e:
    print('refused', e.code)
",
    );
    assert_eq!(lines, ["True", "refused 13"]);
    let failed = pymongo(
        &login("nope"),
        "
try:
    c.admin.command('ping')
except OperationFailure as e:
    print('failed', e.code)
",
    );
    assert_eq!(failed, ["failed 18"]);
    let m = proxy.metrics();
    assert!(ops(&m, "mg_scram", "saslContinue", "ok") >= 1.0);
    assert_eq!(
        m.get("sluice_mongodb_errors_total", &[("listener", "mg_scram"), ("code_name", "AuthenticationFailed")]),
        1.0
    );
    assert_eq!(ops(&m, "mg_scram", "delete", "denied"), 1.0);
}

#[test]
fn pymongo_over_tls_to_a_mongodb_listener() {
    let db = Mongo::start();
    let (cert, key) = db.certificate();
    let extra = format!("    tls: {{ cert: \"{}\", key: \"{}\" }}\n", cert.display(), key.display());
    let proxy = mongo_listener("mg_tls", &db, &extra);
    let addr = proxy.addr("mg_tls");
    let options = format!("&tls=true&tlsCAFile={}", cert.display());
    let lines = pymongo(
        &format!("mongodb://localhost:{}/?directConnection=true{options}", addr.port()),
        "
c.app.t.insert_many([{'i': i} for i in range(50)])
print(len(list(c.app.t.find(batch_size=20))))
",
    );
    assert_eq!(lines, ["50"]);
    let m = proxy.metrics();
    assert_eq!(ops(&m, "mg_tls", "insert", "ok"), 1.0);
    assert_eq!(ops(&m, "mg_tls", "getMore", "ok"), 2.0);
    assert_eq!(m.get("sluice_mongodb_documents_sum", &[("listener", "mg_tls"), ("kind", "written")]), 50.0);
}

#[test]
fn garbage_closes_an_enforcing_listener() {
    let db = Mongo::start();
    let rules = "    rules:\n      - match: { op: drop }\n        action: deny\n";
    let proxy = mongo_listener("mg_bad", &db, rules);
    let mut s = TcpStream::connect(proxy.addr("mg_bad")).unwrap();
    // A message length below the 16-byte header.
    s.write_all(&[3, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).unwrap();
    let (_, closed) = read_to_eof(&mut s, Duration::from_secs(5));
    assert!(closed, "the connection is closed");
    assert_eq!(
        proxy.metrics().get("sluice_mongodb_decode_errors_total", &[("listener", "mg_bad"), ("direction", "client")]),
        1.0
    );
}
