//! MongoDB codec tests on captured sessions (fixtures/mongodb, see capture.py and README.md
//! there) and on documents built with the `bson` crate; hostile input is in
//! `hostile_tests`.
//!
//! Each fixture keeps one connection's directions in `<name>.client` / `<name>.server`.
//! Both are framed whole, in small chunks and split in two at every byte boundary (the same
//! messages every time); then the replay interleaves them as the server answered (a reply
//! waits until the request it answers was read) through the [`Correlator`], and the tests
//! check each session's commands, replies and streams.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::framing::{Decode, Limits};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/mongodb");

pub(super) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub(super) fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().unwrap().strip_suffix(".client").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 16, "{names:?}");
    names
}

/// Frames `data` fed in pieces ending at `cuts`; every byte must belong to a message.
pub(super) fn frame(data: &[u8], cuts: &[usize]) -> Vec<Message> {
    let mut decoder = MessageDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = vec![];
    let mut given = 0;
    for &cut in cuts.iter().filter(|&&c| c > 0 && c < data.len()).chain([&data.len()]) {
        if cut <= given {
            continue;
        }
        buf.extend_from_slice(&data[given..cut]);
        given = cut;
        while let Some(m) = decoder.decode(&mut buf).unwrap() {
            out.push(m);
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    out
}

pub(super) fn messages(name: &str) -> (Vec<Message>, Vec<Message>) {
    (frame(&fixture(&format!("{name}.client")), &[]), frame(&fixture(&format!("{name}.server")), &[]))
}

#[test]
fn every_fixture_frames_the_same_whole_chunked_and_split_anywhere() {
    for name in fixture_names() {
        for side in ["client", "server"] {
            let data = fixture(&format!("{name}.{side}"));
            let whole = frame(&data, &[]);
            assert!(!whole.is_empty(), "{name}.{side}");
            assert_eq!(whole.iter().map(|m| m.bytes().len()).sum::<usize>(), data.len());
            for chunk in [1, 3, 7, 16] {
                let cuts: Vec<usize> = (chunk..data.len()).step_by(chunk).collect();
                assert_eq!(frame(&data, &cuts), whole, "{name}.{side} in chunks of {chunk}");
            }
            for k in 0..data.len() {
                assert_eq!(frame(&data, &[k]), whole, "{name}.{side} split at {k}");
            }
            for m in &whole {
                // Every message parses, and every document in it validates.
                validate_message(m);
            }
        }
    }
}

/// Parses `m` (decompressing OP_COMPRESSED) and validates every document in it.
pub(super) fn validate_message(m: &Message) {
    let limits = default_limits();
    match m.op().unwrap_or_else(|e| panic!("{:?}: {e}", m.header())) {
        Op::Msg(msg) => {
            msg.body().validate(limits.max_depth).unwrap();
            for s in msg.sequences() {
                for d in s.documents() {
                    d.validate(limits.max_depth).unwrap();
                }
            }
        }
        Op::Compressed(c) => validate_message(&c.decompress(&limits).unwrap()),
        Op::Query(q) => q.query.validate(limits.max_depth).unwrap(),
        Op::Reply(r) => r.documents().for_each(|d| d.validate(limits.max_depth).unwrap()),
        other => panic!("unexpected {other:?}"),
    }
}

/// A message as the tests read it: decompressed, with its command or reply parsed.
fn plain(m: &Message) -> Message {
    match m.op().unwrap() {
        Op::Compressed(c) => c.decompress(&default_limits()).unwrap(),
        _ => m.clone(),
    }
}

fn body(m: &Message) -> Document<'_> {
    match m.op().unwrap() {
        Op::Msg(msg) => msg.body(),
        Op::Query(q) => q.query,
        Op::Reply(r) => r.first().unwrap(),
        other => panic!("no body in {other:?}"),
    }
}

/// "name" of each request, "OP_COMPRESSED:name" when compressed.
fn command_names(name: &str) -> Vec<String> {
    let (client, _) = messages(name);
    client
        .iter()
        .map(|m| {
            let p = plain(m);
            let info = CommandInfo::scan(body(&p)).unwrap().unwrap();
            let prefix = if m.op_code() == OpCode::Compressed { "OP_COMPRESSED:" } else { "" };
            format!("{prefix}{}", info.name)
        })
        .collect()
}

#[test]
fn command_names_match_the_captured_sessions() {
    let cases: &[(&str, &[&str])] = &[
        ("handshake", &["ismaster", "ping", "hello", "buildInfo", "endSessions"]),
        ("insert_many", &["ismaster", "drop", "insert", "insert", "endSessions"]),
        ("aggregate", &["ismaster", "aggregate", "aggregate", "distinct", "endSessions"]),
        (
            "update_delete",
            &["ismaster", "insert", "update", "update", "update", "update", "delete", "delete", "drop", "endSessions"],
        ),
        ("errors", &["ismaster", "insert", "noSuchCommand", "insert", "find", "delete", "endSessions"]),
        ("unacknowledged", &["ismaster", "insert", "insert", "delete", "ping", "endSessions"]),
        ("exhaust_find", &["ismaster", "find", "getMore", "endSessions"]),
        ("monitor_stream", &["ismaster", "hello"]),
        ("legacy_handshake", &["ismaster", "ping", "find", "endSessions"]),
        ("transaction", &["ismaster", "insert", "update", "insert", "commitTransaction", "endSessions"]),
        ("scram_auth", &["ismaster", "saslContinue", "insert", "find", "endSessions"]),
        ("scram_wrong_password", &["ismaster", "saslContinue"]),
    ];
    for (name, expected) in cases {
        assert_eq!(command_names(name), *expected, "{name}");
    }
    let mut find = vec!["ismaster", "find"];
    find.extend(["getMore"; 10]);
    find.extend(["find", "killCursors", "find", "endSessions"]);
    assert_eq!(command_names("find_getmore"), find);
    for c in ["zlib", "zstd", "snappy"] {
        let mut expected = vec!["ismaster".to_string()];
        for n in ["find", "find", "getMore", "getMore", "insert", "drop", "endSessions"] {
            expected.push(format!("OP_COMPRESSED:{n}"));
        }
        assert_eq!(command_names(&format!("compressed_{c}")), expected, "{c}");
    }
}

/// One request or reply of a replayed session, as a line.
#[derive(Debug)]
struct Exchange {
    request: String,
    replies: Vec<String>,
}

fn describe_reply(m: &Message) -> String {
    let p = plain(m);
    let info = ReplyInfo::scan(body(&p)).unwrap();
    let mut s = if info.is_ok() { "ok".to_string() } else { format!("error {:?} {:?}", info.code, info.code_name) };
    if let Some(c) = info.cursor {
        s += &format!(" cursor={} {}={}", c.id != 0, if c.first_batch { "first" } else { "next" }, c.batch_len);
    }
    if let Some(n) = info.n {
        s += &format!(" n={n}");
    }
    if let Some(n) = info.n_modified {
        s += &format!(" nModified={n}");
    }
    if info.write_errors > 0 {
        s += &format!(" writeErrors={}", info.write_errors);
    }
    s
}

fn describe_request(m: &Message) -> String {
    let p = plain(m);
    let b = body(&p);
    let info = CommandInfo::scan(b).unwrap().unwrap();
    let mut s = info.name.to_string();
    if let Some(c) = info.collection() {
        s += &format!(" {c}");
    }
    if let Op::Msg(msg) = p.op().unwrap() {
        for seq in msg.sequences() {
            s += &format!(" {}={}", seq.identifier, seq.len());
        }
    }
    s
}

/// Replays a session through the correlator: each server message after the client
/// messages up to the request it answers.
fn replay(name: &str) -> Vec<Exchange> {
    let (client, server) = messages(name);
    let mut correlator: Correlator<usize> = Correlator::new(16);
    let mut out: Vec<Exchange> = vec![];
    let mut next_client = client.iter();
    for reply in &server {
        let p = plain(reply);
        let more = p.op().unwrap().more_to_come().unwrap();
        loop {
            match correlator.reply(reply.header(), more) {
                Ok(Matched::Done { data, .. }) => {
                    out[data].replies.push(describe_reply(reply));
                    break;
                }
                Ok(Matched::More { data, .. }) => {
                    out[*data].replies.push(format!("{} (more)", describe_reply(reply)));
                    break;
                }
                Err(MongoError::UnmatchedReply { .. }) => {
                    let req =
                        next_client.next().unwrap_or_else(|| panic!("{name}: reply {:?} unmatched", reply.header()));
                    let expect = plain(req).op().unwrap().expect().unwrap();
                    out.push(Exchange { request: describe_request(req), replies: vec![] });
                    correlator.request(req.header(), expect, out.len() - 1).unwrap();
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
    for req in next_client {
        // Requests after the last reply: endSessions (no reply before the close) or
        // unacknowledged writes.
        out.push(Exchange { request: describe_request(req), replies: vec![] });
    }
    out
}

fn lines(name: &str) -> Vec<String> {
    replay(name).iter().map(|e| format!("{} -> {}", e.request, e.replies.join(", "))).collect()
}

#[test]
fn handshake_hello_then_commands() {
    let (client, server) = messages("handshake");
    // pymongo 4.20 opens with an OP_MSG legacy hello ("ismaster"), not OP_QUERY.
    let Op::Msg(m) = client[0].op().unwrap() else { panic!("first hello is OP_MSG") };
    let hello = CommandInfo::scan(m.body()).unwrap().unwrap();
    assert_eq!((hello.name, hello.database), ("ismaster", Some("admin")));
    assert!(m.body().get("client").unwrap().is_some(), "the driver's metadata");
    let reply = body(&server[0]);
    assert_eq!(reply.get("maxWireVersion").unwrap().and_then(|v| v.as_i64()), Some(27));
    assert_eq!(server[0].header().response_to, client[0].header().request_id);

    let ping = CommandInfo::scan(body(&client[1])).unwrap().unwrap();
    assert_eq!((ping.name, ping.database), ("ping", Some("admin")));
    assert!(ping.lsid_id().is_some_and(|id| id.len() == 16));
    assert_eq!(
        lines("handshake"),
        ["ismaster -> ok", "ping -> ok", "hello -> ok", "buildInfo -> ok", "endSessions -> ok"]
    );
}

#[test]
fn legacy_handshake_is_op_query_answered_by_op_reply() {
    // pymongo 3.13: the first hello is an OP_QUERY on admin.$cmd.
    let (client, server) = messages("legacy_handshake");
    let Op::Query(q) = client[0].op().unwrap() else { panic!("first hello is OP_QUERY") };
    assert_eq!(q.full_collection_name, "admin.$cmd");
    assert!(q.is_command());
    assert_eq!(q.database(), "admin");
    assert_eq!(q.number_to_return, -1);
    assert_eq!(q.projection, None);
    assert_eq!(q.query.first().unwrap().unwrap().key, "ismaster");
    assert!(q.query.get("client").unwrap().is_some(), "the driver's metadata");
    let Op::Reply(r) = server[0].op().unwrap() else { panic!("answered by OP_REPLY") };
    assert_eq!((r.number_returned, r.cursor_id, r.starting_from), (1, 0, 0));
    assert_eq!(r.first().unwrap().get("maxWireVersion").unwrap().and_then(|v| v.as_i64()), Some(27));
    assert_eq!(server[0].header().response_to, client[0].header().request_id);
    assert_eq!(client[0].op().unwrap().expect(), Some(Expect::Reply));
    assert_eq!(
        lines("legacy_handshake"),
        ["ismaster -> ok", "ping -> ok", "find items -> ok cursor=false first=1", "endSessions -> ok"]
    );
}

#[test]
fn insert_many_uses_a_document_sequence() {
    let (client, _) = messages("insert_many");
    let Op::Msg(msg) = client[2].op().unwrap() else { panic!() };
    let info = CommandInfo::scan(msg.body()).unwrap().unwrap();
    assert_eq!((info.name, info.collection(), info.database), ("insert", Some("logs"), Some("app")));
    let seq = msg.sequence("documents").unwrap();
    assert_eq!(seq.len(), 200);
    assert_eq!(msg.sequence_documents(), 200);
    let last = seq.documents().last().unwrap();
    assert_eq!(last.get("msg").unwrap(), Some(Value::String("line 199")));
    assert_eq!(
        lines("insert_many"),
        [
            "ismaster -> ok",
            "drop logs -> ok",
            "insert logs documents=200 -> ok n=200",
            "insert logs documents=1 -> ok n=1",
            "endSessions -> ok"
        ]
    );
}

#[test]
fn find_and_get_more_batches_add_up() {
    let l = lines("find_getmore");
    assert_eq!(l[1], "find items -> ok cursor=true first=10");
    assert_eq!(l[2], "getMore -> ok cursor=true next=10");
    assert_eq!(l[11], "getMore -> ok cursor=false next=1");
    assert_eq!(l[12], "find items -> ok cursor=true first=5");
    assert_eq!(l[13], "killCursors items -> ok");
    assert_eq!(l[14], "find items -> ok cursor=false first=1");
    let (_, server) = messages("find_getmore");
    let total: usize =
        server.iter().filter_map(|m| ReplyInfo::scan(body(m)).unwrap().cursor).take(11).map(|c| c.batch_len).sum();
    assert_eq!(total, 101);
    let first = ReplyInfo::scan(body(&server[1])).unwrap().cursor.unwrap();
    assert_eq!(first.ns, Some("app.items"));
}

#[test]
fn aggregate_update_delete_counts() {
    assert_eq!(
        lines("aggregate"),
        [
            "ismaster -> ok",
            "aggregate items -> ok cursor=false first=2",
            "aggregate items -> ok cursor=false first=1",
            "distinct items -> ok",
            "endSessions -> ok"
        ]
    );
    assert_eq!(
        lines("update_delete"),
        [
            "ismaster -> ok",
            "insert scratch documents=10 -> ok n=10",
            "update scratch updates=1 -> ok n=1 nModified=1",
            "update scratch updates=1 -> ok n=4 nModified=4",
            "update scratch updates=1 -> ok n=1 nModified=1",
            "update scratch updates=1 -> ok n=1 nModified=0",
            "delete scratch deletes=1 -> ok n=1",
            "delete scratch deletes=1 -> ok n=7",
            "drop scratch -> ok",
            "endSessions -> ok"
        ]
    );
}

#[test]
fn errors_carry_code_name_and_write_errors() {
    assert_eq!(
        lines("errors"),
        [
            "ismaster -> ok",
            "insert users documents=1 -> ok n=0 writeErrors=1",
            "noSuchCommand -> error Some(59) Some(\"CommandNotFound\")",
            "insert users documents=3 -> ok n=2 writeErrors=1",
            "find items -> error Some(2) Some(\"BadValue\")",
            "delete users deletes=1 -> ok n=2",
            "endSessions -> ok"
        ]
    );
    let (_, server) = messages("errors");
    let unknown = ReplyInfo::scan(body(&server[2])).unwrap();
    assert_eq!(unknown.errmsg, Some("no such command: 'noSuchCommand'"));
    assert_eq!(unknown.ok, Some(0.0));
}

#[test]
fn unacknowledged_writes_expect_no_reply() {
    let (client, server) = messages("unacknowledged");
    let flags: Vec<bool> =
        client.iter().map(|m| matches!(m.op().unwrap(), Op::Msg(msg) if msg.flags().more_to_come())).collect();
    assert_eq!(flags, [false, true, true, true, false, false]);
    assert_eq!(server.len(), 3);
    assert_eq!(
        lines("unacknowledged"),
        [
            "ismaster -> ok",
            "insert fire documents=1 -> ",
            "insert fire documents=1 -> ",
            "delete fire deletes=1 -> ",
            "ping -> ok",
            "endSessions -> ok"
        ]
    );
}

#[test]
fn exhaust_cursor_and_streaming_hello_are_one_request_each() {
    assert_eq!(
        lines("exhaust_find"),
        [
            "ismaster -> ok",
            "find items -> ok cursor=true first=20",
            "getMore -> ok cursor=true next=20 (more), ok cursor=true next=20 (more), ok cursor=true next=20 (more), \
             ok cursor=true next=20 (more), ok cursor=true next=1 (more), ok cursor=false next=0",
            "endSessions -> ok"
        ]
    );
    let (client, _) = messages("exhaust_find");
    let Op::Msg(get_more) = client[2].op().unwrap() else { panic!() };
    assert!(get_more.flags().exhaust_allowed());
    assert_eq!(get_more.flags().0, MsgFlags::EXHAUST_ALLOWED);
    assert_eq!(client[2].op().unwrap().expect(), Some(Expect::Stream));

    // The monitor's hello streams until the client goes away: the request stays in flight.
    let l = lines("monitor_stream");
    assert_eq!(l[0], "ismaster -> ok");
    assert!(l[1].starts_with("hello -> ok (more), ok (more)"), "{}", l[1]);
    assert!(!l[1].ends_with(" ok"), "no final reply: {}", l[1]);
}

#[test]
fn exhaust_follow_ups_match_the_previous_reply_as_the_spec_says() {
    // SecantusDB answers every follow-up with responseTo = the request; mongod (and the
    // spec) with the previous reply's requestID. Both keep the stream attributed.
    let h = |request_id, response_to| Header { message_length: 0, request_id, response_to, op_code: OpCode::Msg };
    let mut c: Correlator<&str> = Correlator::new(4);
    c.request(&h(10, 0), Expect::Stream, "getMore").unwrap();
    assert_eq!(c.state(), State::Waiting { in_flight: 1 });
    assert_eq!(c.reply(&h(100, 10), true), Ok(Matched::More { request_id: 10, data: &"getMore" }));
    assert_eq!(c.state(), State::Streaming { request_id: 10, last_reply_id: 100 });
    assert_eq!(c.reply(&h(101, 100), true), Ok(Matched::More { request_id: 10, data: &"getMore" }));
    assert_eq!(c.reply(&h(102, 10), true), Ok(Matched::More { request_id: 10, data: &"getMore" }));
    assert_eq!(c.request(&h(11, 0), Expect::Reply, "find"), Err(MongoError::RequestDuringExhaust));
    assert_eq!(c.reply(&h(103, 102), false), Ok(Matched::Done { request_id: 10, data: "getMore" }));
    assert_eq!(c.state(), State::Idle);
    assert_eq!(c.reply(&h(104, 103), false), Err(MongoError::UnmatchedReply { response_to: 103 }));

    c.request(&h(12, 0), Expect::Reply, "a").unwrap();
    c.request(&h(13, 0), Expect::Nothing, "unacknowledged").unwrap();
    c.request(&h(14, 0), Expect::Reply, "b").unwrap();
    assert_eq!(c.in_flight(), 2);
    assert_eq!(c.drain(), vec![(12, "a"), (14, "b")]);
    assert_eq!(c.state(), State::Idle);
}

#[test]
fn compressed_sessions_decompress_to_plain_op_msgs() {
    for (name, compressor) in [
        ("compressed_zlib", Compressor::Zlib),
        ("compressed_zstd", Compressor::Zstd),
        ("compressed_snappy", Compressor::Snappy),
    ] {
        let (client, server) = messages(name);
        for m in client.iter().chain(&server) {
            if m.header().request_id == client[0].header().request_id
                || m.header().response_to == client[0].header().request_id
            {
                continue; // the hello and its reply are never compressed
            }
            let Op::Compressed(c) = m.op().unwrap() else { panic!("{name}: {:?}", m.header()) };
            assert_eq!(c.compressor, compressor);
            assert_eq!(c.original_op, OpCode::Msg);
            let inner = c.decompress(&default_limits()).unwrap();
            assert_eq!(inner.header().request_id, m.header().request_id);
            assert_eq!(inner.header().response_to, m.header().response_to);
            assert_eq!(inner.bytes().len(), c.uncompressed_size as usize + HEADER_LEN);
        }
        assert_eq!(
            lines(name),
            [
                "ismaster -> ok",
                "find items -> ok cursor=false first=1",
                "find items -> ok cursor=true first=40",
                "getMore -> ok cursor=true next=40",
                "getMore -> ok cursor=false next=21",
                "insert clicks documents=30 -> ok n=30",
                "drop clicks -> ok",
                "endSessions -> ok"
            ],
            "{name}"
        );
        // The driver offered the compressor in its hello.
        let (client, _) = messages(name);
        let offered = body(&client[0]).get("compression").unwrap().unwrap().as_array().unwrap();
        assert_eq!(offered.first().unwrap().unwrap().value.as_str(), Some(compressor.name()));
    }
}

#[test]
fn transactions_and_sessions_fields() {
    let (client, _) = messages("transaction");
    let infos: Vec<CommandInfo> = client.iter().map(|m| CommandInfo::scan(body(m)).unwrap().unwrap()).collect();
    // The first insert is a retryable write (txnNumber 1); the transaction is number 2.
    assert_eq!((infos[1].name, infos[1].txn_number, infos[1].start_transaction), ("insert", Some(1), false));
    let update = &infos[2];
    assert_eq!(update.name, "update");
    assert_eq!(update.txn_number, Some(2));
    assert!(update.start_transaction);
    assert!(update.lsid_id().is_some());
    let insert = &infos[3];
    assert_eq!(insert.txn_number, Some(2));
    assert!(!insert.start_transaction);
    assert_eq!(insert.lsid_id(), update.lsid_id());
    let commit = &infos[4];
    assert_eq!((commit.name, commit.database, commit.txn_number), ("commitTransaction", Some("admin"), Some(2)));
}

#[test]
fn scram_conversation_and_failure() {
    let (client, server) = messages("scram_auth");
    // The first SCRAM step rides in the hello (speculativeAuthenticate).
    let spec = body(&client[0]).get("speculativeAuthenticate").unwrap().unwrap().as_document().unwrap();
    assert_eq!(spec.first().unwrap().unwrap().key, "saslStart");
    assert_eq!(spec.get("mechanism").unwrap(), Some(Value::String("SCRAM-SHA-256")));
    assert!(body(&server[0]).get("speculativeAuthenticate").unwrap().is_some());
    assert_eq!(lines("scram_auth")[1], "saslContinue -> ok");
    let l = lines("scram_wrong_password");
    assert_eq!(l[0], "ismaster -> ok");
    assert_eq!(l[1], "saslContinue -> error Some(18) Some(\"AuthenticationFailed\")");
}

#[test]
fn error_reply_round_trips_through_the_decoder_and_the_bson_crate() {
    let bytes = op_msg_error_reply(77, 9, 13, "Unauthorized", "denied by sluice rule 2");
    let msg = frame(&bytes, &[]).pop().unwrap();
    assert_eq!(msg.bytes(), &bytes);
    assert_eq!(
        *msg.header(),
        Header { message_length: bytes.len() as i32, request_id: 9, response_to: 77, op_code: OpCode::Msg }
    );
    let Op::Msg(m) = msg.op().unwrap() else { panic!() };
    assert_eq!(m.flags(), MsgFlags(0));
    let info = ReplyInfo::scan(m.body()).unwrap();
    assert_eq!(
        (info.ok, info.code, info.code_name, info.errmsg),
        (Some(0.0), Some(13), Some("Unauthorized"), Some("denied by sluice rule 2"))
    );
    assert!(!info.is_ok());
    let doc = bson::Document::from_reader(m.body().as_bytes()).unwrap();
    assert_eq!(
        doc,
        bson::doc! {"ok": 0.0, "errmsg": "denied by sluice rule 2", "code": 13_i32, "codeName": "Unauthorized"}
    );

    // Long messages are cut at a character boundary.
    let long = "é".repeat(MAX_ERROR_MESSAGE);
    let bytes = op_msg_error_reply(1, 2, 8000, "AtlasError", &long);
    let msg = frame(&bytes, &[]).pop().unwrap();
    let Op::Msg(m) = msg.op().unwrap() else { panic!() };
    assert_eq!(ReplyInfo::scan(m.body()).unwrap().errmsg.unwrap().len(), MAX_ERROR_MESSAGE);

    // The legacy form for an OP_QUERY.
    let bytes = op_reply_error(5, 6, 13, "Unauthorized", "no");
    let msg = frame(&bytes, &[]).pop().unwrap();
    let Op::Reply(r) = msg.op().unwrap() else { panic!() };
    assert_eq!(r.response_flags, OpReply::QUERY_FAILURE);
    let doc = bson::Document::from_reader(r.first().unwrap().as_bytes()).unwrap();
    assert_eq!(doc, bson::doc! {"$err": "no", "code": 13_i32, "ok": 0.0, "errmsg": "no", "codeName": "Unauthorized"});
}

pub(super) fn to_bytes(doc: &bson::Document) -> Vec<u8> {
    let mut v = vec![];
    doc.to_writer(&mut v).unwrap();
    v
}

#[test]
fn documents_built_by_the_bson_crate_read_back() {
    use bson::spec::BinarySubtype;
    let oid = bson::oid::ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap();
    let doc = bson::doc! {
        "find": "users",
        "filter": {"age": {"$gt": 30_i32}, "tags": ["a", "b", {"deep": [1_i64, 2.5]}]},
        "double": 1.5,
        "bin": bson::Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] },
        "uuid": bson::Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] },
        "undefined": bson::Bson::Undefined,
        "oid": oid,
        "yes": true,
        "no": false,
        "when": bson::DateTime::from_millis(1_700_000_000_000),
        "nothing": bson::Bson::Null,
        "re": bson::Regex { pattern: "^a.*".into(), options: "i".into() },
        "ptr": bson::Bson::DbPointer(dbpointer()),
        "js": bson::Bson::JavaScriptCode("return 1".into()),
        "sym": bson::Bson::Symbol("sym".into()),
        "jsws": bson::Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope { code: "x".into(), scope: bson::doc! {"x": 1_i32} }),
        "i32": -5_i32,
        "ts": bson::Timestamp { time: 1_700_000_000, increment: 7 },
        "i64": i64::MIN,
        "dec": bson::Bson::Decimal128(bson::Decimal128::from_bytes([9; 16])),
        "min": bson::Bson::MinKey,
        "max": bson::Bson::MaxKey,
        "unicode": "naïve ☃",
        "$db": "app",
        "comment": {"callingFunction": "lookup"},
    };
    let bytes = to_bytes(&doc);
    let d = Document::parse(&bytes).unwrap();
    // doc > filter > tags > {deep} > deep: five levels.
    d.validate(5).unwrap();
    assert_eq!(d.validate(4), Err(BsonError::TooDeep { limit: 4 }));
    let elements: Vec<Element> = d.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(elements.len(), doc.len());
    for (e, (k, v)) in elements.iter().zip(doc.iter()) {
        assert_eq!(e.key, k);
        assert_eq!(e.value.type_byte(), v.element_type() as u8, "{k}");
    }
    let get = |k| d.get(k).unwrap().unwrap();
    assert_eq!(get("double"), Value::Double(1.5));
    assert_eq!(get("bin"), Value::Binary { subtype: 0, bytes: &[1, 2, 3] });
    assert_eq!(get("oid"), Value::ObjectId(&oid.bytes()));
    assert_eq!((get("yes"), get("no")), (Value::Boolean(true), Value::Boolean(false)));
    assert_eq!(get("when"), Value::DateTime(1_700_000_000_000));
    assert_eq!(get("re"), Value::Regex { pattern: "^a.*", options: "i" });
    assert_eq!(get("js"), Value::JavaScript("return 1"));
    assert_eq!(get("sym"), Value::Symbol("sym"));
    let Value::JavaScriptWithScope { code, scope } = get("jsws") else { panic!() };
    assert_eq!((code, scope.get("x").unwrap()), ("x", Some(Value::Int32(1))));
    assert_eq!(get("i32").as_i64(), Some(-5));
    assert_eq!(get("ts"), Value::Timestamp { increment: 7, time: 1_700_000_000 });
    assert_eq!(get("i64"), Value::Int64(i64::MIN));
    assert_eq!(get("dec"), Value::Decimal128(&[9; 16]));
    assert_eq!(
        (get("min"), get("max"), get("nothing"), get("undefined")),
        (Value::MinKey, Value::MaxKey, Value::Null, Value::Undefined)
    );
    assert_eq!(get("unicode"), Value::String("naïve ☃"));
    let Value::DbPointer { namespace, id } = get("ptr") else { panic!() };
    assert_eq!((namespace, id), ("db.coll", &[3; 12]));
    let tags = get("filter").as_document().unwrap().get("tags").unwrap().unwrap().as_array().unwrap();
    assert_eq!(tags.count(), Ok(3));
    assert_eq!(d.get("missing"), Ok(None));

    let info = CommandInfo::scan(d).unwrap().unwrap();
    assert_eq!((info.name, info.collection(), info.database), ("find", Some("users"), Some("app")));
    assert_eq!(
        info.comment.unwrap().as_document().unwrap().get("callingFunction").unwrap(),
        Some(Value::String("lookup"))
    );
    assert_eq!(CommandInfo::scan(Document::parse(&to_bytes(&bson::doc! {})).unwrap()), Ok(None));
}

/// A DBPointer value, which the bson crate only builds by deserializing.
fn dbpointer() -> bson::DbPointer {
    let mut raw = vec![];
    raw.extend_from_slice(&0i32.to_le_bytes());
    raw.push(0x0C);
    raw.extend_from_slice(b"p\0");
    raw.extend_from_slice(&8i32.to_le_bytes());
    raw.extend_from_slice(b"db.coll\0");
    raw.extend_from_slice(&[3; 12]);
    raw.push(0);
    let len = raw.len() as i32;
    raw[..4].copy_from_slice(&len.to_le_bytes());
    match bson::Document::from_reader(&raw[..]).unwrap().get("p").unwrap() {
        bson::Bson::DbPointer(p) => p.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reply_accessors_on_built_replies() {
    let reply = bson::doc! {
        "n": 3_i32, "nModified": 2_i64,
        "writeErrors": [{"index": 0_i32, "code": 11000_i32}, {"index": 2_i32, "code": 11000_i32}],
        "writeConcernError": {"code": 64_i32, "errmsg": "waiting for replication timed out"},
        "cursor": {"nextBatch": [{}, {}], "id": 42_i64, "ns": "app.items"},
        "ok": true,
    };
    let bytes = to_bytes(&reply);
    let info = ReplyInfo::scan(Document::parse(&bytes).unwrap()).unwrap();
    assert_eq!((info.n, info.n_modified, info.write_errors), (Some(3), Some(2), 2));
    assert_eq!(info.write_concern_code(), Some(64));
    assert_eq!(info.cursor, Some(CursorInfo { id: 42, ns: Some("app.items"), batch_len: 2, first_batch: false }));
    assert!(info.is_ok());
    let bytes = to_bytes(&bson::doc! {"ok": 0_i32, "code": 11600.0, "codeName": "InterruptedAtShutdown"});
    let info = ReplyInfo::scan(Document::parse(&bytes).unwrap()).unwrap();
    assert_eq!((info.is_ok(), info.code), (false, Some(11600)));
}

#[test]
fn checksummed_op_msg_with_sequences_before_the_body() {
    let body = to_bytes(&bson::doc! {"insert": "c", "$db": "d"});
    let doc = to_bytes(&bson::doc! {"_id": 1_i32});
    let mut m = vec![];
    m.extend_from_slice(&[0; 16]);
    m.extend_from_slice(&MsgFlags::CHECKSUM_PRESENT.to_le_bytes());
    // A sequence first (the spec allows any order), then the body.
    m.push(1);
    m.extend_from_slice(&((4 + 10 + 2 * doc.len()) as i32).to_le_bytes());
    m.extend_from_slice(b"documents\0");
    m.extend_from_slice(&doc);
    m.extend_from_slice(&doc);
    m.push(0);
    m.extend_from_slice(&body);
    let len = (m.len() + 4) as i32;
    m[..4].copy_from_slice(&len.to_le_bytes());
    m[12..16].copy_from_slice(&2013i32.to_le_bytes());
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&m);
    m.extend_from_slice(&crc.to_le_bytes());
    let msg = Message::new(Bytes::from(m), &Limits::default()).unwrap();
    let Op::Msg(op) = msg.op().unwrap() else { panic!() };
    assert_eq!(op.checksum(), Some(crc));
    assert_eq!(op.body().first().unwrap().unwrap().key, "insert");
    assert_eq!(op.sequence("documents").unwrap().len(), 2);
    assert!(op.sequence("updates").is_none());
    // Known CRC-32C check value (RFC 3720 B.4): 32 zero bytes.
    assert_eq!(crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&[0; 32]), 0x8A91_36AA);
}

#[test]
fn op_codes_are_open() {
    for v in [1, 2001, 2002, 2004, 2005, 2006, 2007, 2010, 2011, 2012, 2013, 0, -1, i32::MAX] {
        assert_eq!(OpCode::from_i32(v).as_i32(), v);
    }
    assert_eq!(OpCode::from_i32(2010), OpCode::Other(2010));
    let mut m = vec![];
    m.extend_from_slice(&20i32.to_le_bytes());
    m.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&2010i32.to_le_bytes());
    m.extend_from_slice(b"abcd");
    let msg = frame(&m, &[]).pop().unwrap();
    assert_eq!(msg.op().unwrap(), Op::Unknown(2010));
    assert_eq!(msg.op_code().name(), "OP_UNKNOWN");
    assert_eq!(msg.body(), b"abcd");
}

#[test]
fn legacy_writes_are_recognized_with_their_namespace() {
    let build = |op: i32, body: &[u8]| {
        let mut m = ((16 + body.len()) as i32).to_le_bytes().to_vec();
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&op.to_le_bytes());
        m.extend_from_slice(body);
        Message::new(Bytes::from(m), &default_limits()).unwrap()
    };
    let doc = to_bytes(&bson::doc! {"x": 1_i32});
    let mut insert = vec![0, 0, 0, 0];
    insert.extend_from_slice(b"app.items\0");
    insert.extend_from_slice(&doc);
    let m = build(2002, &insert);
    let Op::Legacy(l) = m.op().unwrap() else { panic!() };
    assert_eq!((l.op, l.full_collection_name), (OpCode::Insert, Some("app.items")));
    assert_eq!(m.op().unwrap().expect(), Some(Expect::Nothing));
    let mut get_more = vec![0, 0, 0, 0];
    get_more.extend_from_slice(b"app.items\0");
    get_more.extend_from_slice(&[0; 12]);
    let m = build(2005, &get_more);
    assert_eq!(m.op().unwrap().expect(), Some(Expect::Reply));
    let mut kill = vec![0, 0, 0, 0, 2, 0, 0, 0];
    kill.extend_from_slice(&[0; 16]);
    let m = build(2007, &kill);
    assert_eq!(m.op().unwrap(), Op::Legacy(LegacyOp { op: OpCode::KillCursors, full_collection_name: None }));
    assert_eq!(namespace_database("app.items.sub"), "app");
    assert_eq!(namespace_collection("app.items.sub"), Some("items.sub"));
}

/// Writes the fuzz seeds from the fixtures: `cargo test -p sluice-codecs
/// write_mongodb_fuzz_seeds -- --ignored`.
#[test]
#[ignore]
fn write_mongodb_fuzz_seeds() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds");
    for target in ["mongodb_message", "bson_reader"] {
        std::fs::create_dir_all(format!("{root}/{target}")).unwrap();
    }
    for name in fixture_names() {
        for (side, mode) in [("client", 0u8), ("server", 1u8)] {
            let data = fixture(&format!("{name}.{side}"));
            let mut seed = vec![mode];
            seed.extend_from_slice(&data);
            std::fs::write(format!("{root}/mongodb_message/{name}.{side}"), seed).unwrap();
        }
        // bson_reader: the first body document of each direction.
        let (client, server) = messages(&name);
        for (side, m) in [("client", &client[client.len() - 1]), ("server", &server[0])] {
            let p = plain(m);
            std::fs::write(format!("{root}/bson_reader/{name}.{side}"), body(&p).as_bytes()).unwrap();
        }
    }
}
