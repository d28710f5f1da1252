//! Splitting a multi-key command over servers and merging the replies back, for
//! `mode: pool` (see `routing`): each server gets the same command with the keys (or
//! key–value pairs) it holds, in the client's order; the replies become the one reply the
//! client expects — MGET's elements put back in key order, DEL/EXISTS/UNLINK/TOUCH counts
//! summed, MSET's `+OK` when every part is `+OK`. An error from any part is the reply.
//!
//! Reply syntax: https://redis.io/docs/latest/develop/reference/protocol-spec/

use bytes::{BufMut, Bytes, BytesMut};
use sluice_codecs::resp::{FrameScanner, Reply, ReplyKind, RespLimits};

use super::routing::Merge;

/// A RESP array command: `name` and `args`.
pub fn encode_command<'a>(name: &[u8], args: impl ExactSizeIterator<Item = &'a [u8]>) -> Bytes {
    let mut out = BytesMut::new();
    put_len(&mut out, b'*', args.len() + 1);
    put_bulk(&mut out, name);
    for arg in args {
        put_bulk(&mut out, arg);
    }
    out.freeze()
}

fn put_len(out: &mut BytesMut, kind: u8, len: usize) {
    out.put_u8(kind);
    out.put_slice(itoa(len as i64).as_bytes());
    out.put_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    put_len(out, b'$', data.len());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

fn itoa(n: i64) -> String {
    n.to_string()
}

/// Merges the replies of a split command. `parts` holds each part's reply and the
/// positions (in the client's key order) of the keys it carried; `keys` is how many keys
/// the client sent.
pub fn merge(merge: Merge, parts: &[(Bytes, Vec<usize>)], keys: usize, limits: &RespLimits) -> Bytes {
    if let Some((error, _)) = parts.iter().find(|(reply, _)| Reply::parse(reply).is_error()) {
        return error.clone();
    }
    match merge {
        Merge::Sum => {
            let mut total: i64 = 0;
            for (reply, _) in parts {
                match Reply::parse(reply).integer() {
                    Some(n) => total = total.saturating_add(n),
                    None => return unexpected(),
                }
            }
            Bytes::from(format!(":{total}\r\n"))
        }
        Merge::AllOk => {
            if parts.iter().all(|(reply, _)| Reply::parse(reply).simple_string() == Some(b"OK")) {
                Bytes::from_static(b"+OK\r\n")
            } else {
                unexpected()
            }
        }
        Merge::Elements => {
            let mut elements: Vec<Option<Bytes>> = vec![None; keys];
            for (reply, positions) in parts {
                let Some(items) = array_elements(reply, limits) else { return unexpected() };
                if items.len() != positions.len() {
                    return unexpected();
                }
                for (item, &at) in items.into_iter().zip(positions) {
                    match elements.get_mut(at) {
                        Some(slot) => *slot = Some(item),
                        None => return unexpected(),
                    }
                }
            }
            let mut out = BytesMut::new();
            put_len(&mut out, b'*', keys);
            for element in elements {
                match element {
                    Some(element) => out.put_slice(&element),
                    None => return unexpected(),
                }
            }
            out.freeze()
        }
    }
}

/// The elements of an array reply, each as its own frame.
fn array_elements(reply: &Bytes, limits: &RespLimits) -> Option<Vec<Bytes>> {
    let view = Reply::parse(reply);
    if !matches!(view.kind(), ReplyKind::Array) {
        return None;
    }
    let count = usize::try_from(view.element_count()?).ok()?;
    let header = reply.iter().position(|&b| b == b'\n')? + 1;
    let mut rest = reply.slice(header..);
    let mut items = Vec::with_capacity(count.min(rest.len()));
    for _ in 0..count {
        let n = FrameScanner::new(*limits).scan(&rest).ok()??;
        items.push(rest.split_to(n));
    }
    rest.is_empty().then_some(items)
}

fn unexpected() -> Bytes {
    Bytes::from_static(b"-ERR sluice: unexpected reply from an upstream server to a split command\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(merge_kind: Merge, parts: &[(&str, &[usize])], keys: usize) -> String {
        let parts: Vec<(Bytes, Vec<usize>)> =
            parts.iter().map(|(r, p)| (Bytes::from(r.to_string()), p.to_vec())).collect();
        String::from_utf8(merge(merge_kind, &parts, keys, &RespLimits::replies()).to_vec()).unwrap()
    }

    #[test]
    fn mget_elements_go_back_in_key_order() {
        let out = merged(Merge::Elements, &[("*2\r\n$1\r\na\r\n$-1\r\n", &[0, 2]), ("*1\r\n$2\r\nbb\r\n", &[1])], 3);
        assert_eq!(out, "*3\r\n$1\r\na\r\n$2\r\nbb\r\n$-1\r\n");
        // RESP3 nulls and a short array are taken as they are / refused.
        assert_eq!(merged(Merge::Elements, &[("*1\r\n_\r\n", &[0])], 1), "*1\r\n_\r\n");
        assert!(merged(Merge::Elements, &[("*1\r\n$1\r\na\r\n", &[0, 1])], 2).starts_with("-ERR sluice"));
    }

    #[test]
    fn counts_add_up_and_errors_win() {
        assert_eq!(merged(Merge::Sum, &[(":2\r\n", &[0, 1]), (":1\r\n", &[2])], 3), ":3\r\n");
        assert_eq!(merged(Merge::AllOk, &[("+OK\r\n", &[0]), ("+OK\r\n", &[1])], 2), "+OK\r\n");
        assert_eq!(merged(Merge::Sum, &[(":2\r\n", &[0]), ("-ERR boom\r\n", &[1])], 2), "-ERR boom\r\n");
        // A RESP3 bulk error from a part is the reply too (found by the redis_pool_routing fuzzer,
        // whose check expected only `-`).
        assert_eq!(merged(Merge::Sum, &[("!3\r\nERR\r\n", &[0]), (":1\r\n", &[1])], 2), "!3\r\nERR\r\n");
    }

    #[test]
    fn commands_are_encoded_as_arrays() {
        let keys: Vec<&[u8]> = vec![b"a", b"bc"];
        assert_eq!(&encode_command(b"MGET", keys.into_iter())[..], b"*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$2\r\nbc\r\n");
    }
}
