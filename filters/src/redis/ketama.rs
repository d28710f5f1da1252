//! Key distribution over a cluster's endpoints for `mode: pool`: twemproxy's ketama
//! consistent hashing (nutcracker `src/hashkit/nc_ketama.c`), with its `fnv1a_64` and
//! `murmur` key hashes, so a key lands on the same server behind sluice as behind a
//! twemproxy configured with the same servers in the same order.
//!
//! The continuum: each server gets `floor(weight share × 160 / 4 × servers) × 4` points;
//! point group `i` of server `name` is the MD5 of `"<name>-<i>"`, cut into four
//! little-endian 32-bit values. A key goes to the first point at or above its hash,
//! wrapping to the first point. `name` is `host:port` as the endpoint is written (twemproxy
//! drops the port when it is 11211, its memcached default, and so does this).
//!
//! Hash tags (`{…}`, as Redis Cluster and twemproxy's `hash_tag: "{}"`): when the key has
//! a non-empty `{…}`, only the part between the first `{` and the next `}` is hashed.

use md5::{Digest, Md5};

const POINTS_PER_SERVER: f32 = 160.0;
const POINTS_PER_HASH: usize = 4;

/// A key hash twemproxy offers (the two in common use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyHash {
    Fnv1a64,
    Murmur,
}

impl KeyHash {
    pub fn parse(name: &str) -> Option<KeyHash> {
        match name {
            "fnv1a_64" => Some(KeyHash::Fnv1a64),
            "murmur" => Some(KeyHash::Murmur),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyHash::Fnv1a64 => "fnv1a_64",
            KeyHash::Murmur => "murmur",
        }
    }

    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            KeyHash::Fnv1a64 => fnv1a_64(key),
            KeyHash::Murmur => murmur(key),
        }
    }
}

/// twemproxy's `hash_fnv1a_64`: the 64-bit FNV-1a constants truncated to 32 bits, and each
/// byte widened as a C `char` (signed), as nutcracker does.
fn fnv1a_64(key: &[u8]) -> u32 {
    const INIT: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = INIT as u32;
    for &byte in key {
        hash ^= byte as i8 as i32 as u32;
        hash = hash.wrapping_mul(PRIME as u32);
    }
    hash
}

/// twemproxy's `hash_murmur`: MurmurHash2 seeded with `0xdeadbeef × length`.
fn murmur(key: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let len = key.len() as u32;
    let mut h = 0xdead_beef_u32.wrapping_mul(len) ^ len;
    let mut words = key.chunks_exact(4);
    for word in &mut words {
        let mut k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// The part of `key` that is hashed: the content of its first non-empty `{…}`, else all.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// A ketama continuum over servers (by index in the order given).
#[derive(Clone, Debug)]
pub struct Ketama {
    hash: KeyHash,
    /// (point, server index), sorted by point.
    points: Vec<(u32, usize)>,
}

impl Ketama {
    /// `servers`: (name, weight) in configuration order; weights of 0 get no points.
    pub fn new(servers: &[(String, u32)], hash: KeyHash) -> Ketama {
        let total: u64 = servers.iter().map(|(_, w)| u64::from(*w)).sum();
        let live = servers.iter().filter(|(_, w)| *w > 0).count();
        let mut points = Vec::new();
        for (index, (name, weight)) in servers.iter().enumerate() {
            if *weight == 0 || total == 0 {
                continue;
            }
            // twemproxy computes this in single precision; so does this, to land on the
            // same point counts.
            let share = *weight as f32 / total as f32;
            let per_server = ((share * POINTS_PER_SERVER / 4.0 * live as f32 + 0.000_000_000_1).floor() as usize) * 4;
            for group in 0..per_server / POINTS_PER_HASH {
                let digest = Md5::digest(format!("{name}-{group}").as_bytes());
                for x in 0..POINTS_PER_HASH {
                    let b = &digest[x * 4..x * 4 + 4];
                    points.push((u32::from_le_bytes([b[0], b[1], b[2], b[3]]), index));
                }
            }
        }
        points.sort_unstable();
        Ketama { hash, points }
    }

    /// The name ketama hashes for an endpoint written `host:port`.
    pub fn server_name(endpoint: &str) -> String {
        match endpoint.strip_suffix(":11211") {
            Some(host) => host.to_string(),
            None => endpoint.to_string(),
        }
    }

    /// The server a key belongs to (`None` when no server has weight).
    pub fn server_for(&self, key: &[u8]) -> Option<usize> {
        let hash = self.hash.hash(hash_tag(key));
        let at = self.points.partition_point(|&(point, _)| point < hash);
        self.points.get(at).or(self.points.first()).map(|&(_, server)| server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_keep_twemproxys_quirks() {
        // 32-bit arithmetic on truncated 64-bit constants: the empty key hashes to the
        // truncated offset basis, and a byte above 0x7f is sign-extended like a C char.
        assert_eq!(fnv1a_64(b""), 0x8422_2325);
        assert_eq!(fnv1a_64(&[0xff]), (0x8422_2325_u32 ^ 0xffff_ffff).wrapping_mul(0x1b3));
        assert_eq!(murmur(b""), 0);
        assert_ne!(murmur(b"abcd"), murmur(b"abce"));
    }

    #[test]
    fn hash_tags_narrow_the_hashed_part() {
        assert_eq!(hash_tag(b"user:{42}:name"), b"42");
        assert_eq!(hash_tag(b"{}x"), b"{}x");
        assert_eq!(hash_tag(b"no tag"), b"no tag");
        assert_eq!(hash_tag(b"a{b"), b"a{b");
    }

    #[test]
    fn every_server_gets_its_share_of_points_and_keys() {
        let servers: Vec<(String, u32)> = (0..3).map(|i| (format!("127.0.0.1:{}", 7000 + i), 1)).collect();
        let ring = Ketama::new(&servers, KeyHash::Fnv1a64);
        assert_eq!(ring.points.len(), 3 * 160);
        let mut counts = [0usize; 3];
        for i in 0..30_000 {
            counts[ring.server_for(format!("key:{i}").as_bytes()).unwrap()] += 1;
        }
        assert!(counts.iter().all(|&c| c > 7_000), "{counts:?}");
        // Tagged keys stay together.
        assert_eq!(ring.server_for(b"{user1}:a"), ring.server_for(b"{user1}:b"));
        // A weight of 0 takes a server out; a doubled weight doubles its points.
        let weighted = Ketama::new(&[("a:1".into(), 2), ("b:1".into(), 1), ("c:1".into(), 0)], KeyHash::Murmur);
        let a = weighted.points.iter().filter(|p| p.1 == 0).count();
        let b = weighted.points.iter().filter(|p| p.1 == 1).count();
        assert_eq!((a, b, weighted.points.len()), (212, 104, 316));
        assert!(Ketama::new(&[("a:1".into(), 0)], KeyHash::Murmur).server_for(b"k").is_none());
    }
}
