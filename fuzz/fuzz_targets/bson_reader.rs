//! The lazy BSON reader on arbitrary bytes: `Document::parse` / `parse_prefix`, the
//! depth-bounded validator, iteration, `get`, `count`, every `Value` accessor and the
//! command and reply scans.
//!
//! Must hold: no panic (overflow checks are on); a document that validates iterates and
//! scans without error at every level, and validation with a smaller depth fails only with
//! `TooDeep`; iteration ends after its first error; `parse` accepts exactly the inputs
//! `parse_prefix` accepts with nothing left over.
//!
//! Input: the first byte is the depth limit (0..=31), the rest one document. Seeds: body
//! documents of the fixtures (`fuzz/seeds/bson_reader`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_codecs::mongodb::{BsonError, CommandInfo, Document, ReplyInfo, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&depth, input)) = data.split_first() else { return };
    let depth = usize::from(depth % 32);
    let parsed = Document::parse(input);
    match Document::parse_prefix(input) {
        Ok((doc, rest)) => {
            assert_eq!(parsed.is_ok(), rest.is_empty());
            assert_eq!(doc.as_bytes().len() + rest.len(), input.len());
            walk(doc, depth);
        }
        Err(e) => assert_eq!(parsed, Err(e)),
    }
});

fn walk(doc: Document<'_>, depth: usize) {
    let valid = doc.validate(depth);
    if let Err(e) = valid {
        if depth > 0 {
            // Deeper limits can only turn TooDeep into Ok.
            if !matches!(e, BsonError::TooDeep { .. }) {
                assert_eq!(doc.validate(depth + 8), Err(e));
            }
        }
    }
    let mut errors = 0;
    let mut count = 0;
    for e in doc.iter() {
        match e {
            Ok(e) => {
                count += 1;
                value(e.value, depth);
                let _ = doc.get(e.key);
            }
            Err(_) => errors += 1,
        }
    }
    assert!(errors <= 1, "iteration ends after its first error");
    let _ = (doc.first(), doc.get("$db"), doc.is_empty());
    let command = CommandInfo::scan(doc);
    let reply = ReplyInfo::scan(doc);
    if valid.is_ok() {
        assert_eq!(errors, 0);
        assert_eq!(doc.count(), Ok(count));
        let command = command.expect("a valid document scans as a command");
        reply.expect("a valid document scans as a reply");
        if let Some(c) = command {
            let _ = (c.collection(), c.lsid_id());
        }
    }
}

fn value(v: Value<'_>, depth: usize) {
    let _ = (v.type_byte(), v.as_str(), v.as_i64(), v.as_f64(), v.is_truthy());
    let nested = match v {
        Value::Document(d) | Value::Array(d) => Some(d),
        Value::JavaScriptWithScope { scope, .. } => Some(scope),
        _ => None,
    };
    if let Some(d) = nested {
        // Bounded by the bytes: each level is at least 5 bytes shorter.
        walk(d, depth.saturating_sub(1));
    }
}
