//! Redis Cluster's key space, for `mode: pool` in front of a Redis Cluster
//! (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/): a key's
//! hash slot is CRC16 (XMODEM) of the key — of its hash tag when it has one — mod 16384;
//! `CLUSTER SLOTS` says which node serves each range of slots; a node that no longer
//! serves a slot answers `-MOVED <slot> <host>:<port>` (for good) or `-ASK <slot>
//! <host>:<port>` (this once, during a migration, after `ASKING`).

use bytes::Bytes;
use sluice_codecs::resp::{parse_value, Value};

use super::ketama::hash_tag;

pub const SLOTS: usize = 16_384;

/// CRC16-CCITT, XMODEM variant (polynomial 0x1021, initial 0), as the spec's `crc16.c`.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// The hash slot of a key.
pub fn slot_of(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS as u16
}

/// One range of slots and the nodes serving it, from `CLUSTER SLOTS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
    /// `host:port` of the primary.
    pub primary: String,
    /// `host:port` of each replica, as listed after the primary.
    pub replicas: Vec<String>,
}

/// The ranges in a `CLUSTER SLOTS` reply; `None` if it is not one.
pub fn parse_cluster_slots(reply: &Bytes) -> Option<Vec<SlotRange>> {
    let Ok(Value::Array(ranges)) = parse_value(reply) else { return None };
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let Value::Array(fields) = range else { return None };
        let number = |v: &Value| match v {
            Value::Integer(text) => std::str::from_utf8(text).ok()?.parse::<u16>().ok(),
            _ => None,
        };
        let (start, end) = (number(fields.first()?)?, number(fields.get(1)?)?);
        if start > end || usize::from(end) >= SLOTS {
            return None;
        }
        let primary = node_address(fields.get(2)?)?;
        let replicas = fields.get(3..).unwrap_or_default().iter().map(node_address).collect::<Option<Vec<_>>>()?;
        out.push(SlotRange { start, end, primary, replicas });
    }
    Some(out)
}

/// `host:port` of one node entry (`[host, port, id, …]`).
fn node_address(node: &Value) -> Option<String> {
    let Value::Array(node) = node else { return None };
    let host = match node.first()? {
        Value::BulkString(host) => std::str::from_utf8(host).ok()?,
        _ => return None,
    };
    let port = match node.get(1)? {
        Value::Integer(port) => std::str::from_utf8(port).ok()?.parse::<u16>().ok()?,
        _ => return None,
    };
    Some(format!("{host}:{port}"))
}

/// A redirection in a reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Redirect {
    /// The slot lives on this node from now on.
    Moved { slot: u16, node: String },
    /// Ask this node, this once (prefixed with ASKING).
    Ask { slot: u16, node: String },
}

/// The redirection a reply carries, if it is `-MOVED …` or `-ASK …`.
pub fn redirect(reply: &[u8]) -> Option<Redirect> {
    let line = reply.strip_prefix(b"-")?;
    let line = std::str::from_utf8(line.strip_suffix(b"\r\n")?).ok()?;
    let mut words = line.split(' ');
    let kind = words.next()?;
    let slot = words.next()?.parse::<u16>().ok().filter(|&s| usize::from(s) < SLOTS)?;
    let node = words.next()?.to_owned();
    match kind {
        "MOVED" => Some(Redirect::Moved { slot, node }),
        "ASK" => Some(Redirect::Ask { slot, node }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_spec() {
        // The spec's check value for its CRC16, and slots redis-cli's CLUSTER KEYSLOT gives.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"bar"), 5061);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"foo{}{bar}"), slot_of(b"foo{}{bar}"));
    }

    #[test]
    fn cluster_slots_and_redirections_are_read() {
        let reply = Bytes::from_static(
            b"*2\r\n*3\r\n:0\r\n:5460\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$4\r\nabcd\r\n\
              *4\r\n:5461\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:7001\r\n*2\r\n$9\r\n127.0.0.1\r\n:7004\r\n",
        );
        let ranges = parse_cluster_slots(&reply).unwrap();
        let range = |start, end, primary: &str, replicas: &[&str]| SlotRange {
            start,
            end,
            primary: primary.into(),
            replicas: replicas.iter().map(|r| r.to_string()).collect(),
        };
        assert_eq!(ranges[0], range(0, 5460, "127.0.0.1:7000", &[]));
        assert_eq!(ranges[1], range(5461, 16383, "127.0.0.1:7001", &["127.0.0.1:7004"]));
        assert!(
            parse_cluster_slots(&Bytes::from_static(b"-ERR This instance has cluster support disabled\r\n")).is_none()
        );
        assert_eq!(
            redirect(b"-MOVED 3999 127.0.0.1:6381\r\n"),
            Some(Redirect::Moved { slot: 3999, node: "127.0.0.1:6381".into() })
        );
        assert_eq!(
            redirect(b"-ASK 3999 10.0.0.1:7002\r\n"),
            Some(Redirect::Ask { slot: 3999, node: "10.0.0.1:7002".into() })
        );
        assert_eq!(redirect(b"-ERR unknown\r\n"), None);
        assert_eq!(redirect(b"-MOVED 99999 a:1\r\n"), None);
    }
}
