//! The 64-bit digest hash, and the `HashMap` hasher for maps keyed by it.
//!
//! The digest hash is an identifier as well as a key (the query log and the admin
//! `/stats` output show it), so it is stable across processes and machines: a fixed
//! function of the digest text's bytes, read as little-endian words. It is FxHash's
//! word-at-a-time multiply-rotate step (8 bytes per multiply, ~15 ns for a 100-byte digest,
//! where byte-at-a-time FNV-1a costs ~100 ns) followed by MurmurHash3's `fmix64`
//! finalizer so that every output bit depends on every input bit. It is not
//! collision-resistant against an adversary, and nothing relies on it being so: the
//! statement cache compares the digest text on every hit, and the digest table sends a
//! colliding text to its `other` entry.
//!
//! Maps keyed by a digest hash do not hash it again with SipHash (~20 ns); they mix it
//! with a per-map random seed instead, so that crafted statements whose digest hashes
//! share low bits cannot line up in one probe chain of a given process's map.

use std::hash::{BuildHasher, Hasher};

const K: u64 = 0x9e37_79b9_7f4a_7c15;

fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The digest hash of `bytes`.
pub(crate) fn digest_hash(bytes: &[u8]) -> u64 {
    // The length in the seed: texts that differ only by trailing NULs hash apart; the
    // constant keeps the empty text's hash off 0, which the digest table's `other` uses.
    let mut h = (bytes.len() as u64 ^ 0x5851_f42d_4c95_7f2d).wrapping_mul(K);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = <[u8; 8]>::try_from(word).map_or(0, u64::from_le_bytes);
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    for (to, from) in tail.iter_mut().zip(words.remainder()) {
        *to = *from;
    }
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    fmix64(h)
}

/// Builds [`DigestKeyHasher`]s with one random seed per map.
#[derive(Clone, Debug)]
pub(crate) struct DigestKeyState {
    seed: u64,
}

impl Default for DigestKeyState {
    fn default() -> Self {
        DigestKeyState { seed: fastrand::u64(..) }
    }
}

impl BuildHasher for DigestKeyState {
    type Hasher = DigestKeyHasher;

    fn build_hasher(&self) -> DigestKeyHasher {
        DigestKeyHasher { state: self.seed }
    }
}

/// Hashes a `u64` key that is already a good hash: one xor and one finalizer.
#[derive(Clone, Debug)]
pub(crate) struct DigestKeyHasher {
    state: u64,
}

impl Hasher for DigestKeyHasher {
    fn finish(&self) -> u64 {
        fmix64(self.state)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; this keeps other key types correct.
        for &byte in bytes {
            self.state = (self.state.rotate_left(8) ^ u64::from(byte)).wrapping_mul(K);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.state ^= value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_hash_is_a_fixed_function_of_the_bytes() {
        // Pinned (values from an independent implementation of the same steps): the digest
        // hash is shown to users and must not change between releases or machines.
        assert_eq!(digest_hash(b""), 0xea98f16c8b5901de);
        assert_eq!(digest_hash(b"SELECT ?"), 0xca22cd302df02043);
        assert_eq!(digest_hash(b"SELECT c FROM sbtest1 WHERE id = ?"), 0x8dfa653d81ada5b2);
        assert_ne!(digest_hash(b"SELECT ?"), digest_hash(b"SELECT ?;"));
        // Trailing zero bytes are not lost in the padding: the length is part of the state.
        assert_ne!(digest_hash(b"a"), digest_hash(b"a\0"));
        assert_ne!(digest_hash(b"12345678"), digest_hash(b"12345678\0"));
    }

    #[test]
    fn nearby_texts_spread_over_all_bits() {
        let a = digest_hash(b"SELECT c FROM sbtest1 WHERE id = ?");
        let b = digest_hash(b"SELECT c FROM sbtest2 WHERE id = ?");
        let differing = (a ^ b).count_ones();
        assert!((16..=48).contains(&differing), "{differing} bits differ");
    }

    #[test]
    fn key_hasher_depends_on_the_seed() {
        let one = DigestKeyState { seed: 1 };
        let two = DigestKeyState { seed: 2 };
        assert_ne!(one.hash_one(42u64), two.hash_one(42u64));
        assert_eq!(one.hash_one(42u64), one.hash_one(42u64));
    }
}
