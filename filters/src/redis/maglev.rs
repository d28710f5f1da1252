//! Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software
//! Network Load Balancer", NSDI 2016, §3.4), the other key distribution of `mode: pool`
//! besides ketama, as Envoy's redis_proxy offers it: a lookup table of a prime size (65537,
//! Envoy's default) filled by each server in turn taking its next preferred slot, so every
//! server owns an equal share of slots (±1) and removing a server moves only the keys it
//! held. A key is looked up in one step: `table[hash(key) % size]`.
//!
//! A server's preference list is its permutation `(offset + j × skip) mod size`, with
//! `offset` and `skip` from the MD5 of its name (two 64-bit halves), so the table depends
//! only on the servers' names and order, never on the process.
//!
//! Weights (Envoy's weighted Maglev): a server takes a turn in a round only when its
//! credit, grown by its weight each round, reaches the largest weight, so its share of
//! slots follows its weight; with equal weights every server takes every round and the
//! table is the unweighted one. Weight 0 takes a server out.

use md5::{Digest, Md5};

use super::ketama::{hash_tag, KeyHash};

/// The lookup table size: a prime, so every skip walks all slots.
const TABLE_SIZE: usize = 65_537;

#[derive(Clone, Debug)]
pub struct Maglev {
    hash: KeyHash,
    /// Server index per slot; empty when there are no servers.
    table: Vec<u16>,
}

impl Maglev {
    /// `servers`: (name, weight) in configuration order (at most 65535).
    pub fn new(servers: &[(String, u32)], hash: KeyHash) -> Maglev {
        let n = servers.len().min(usize::from(u16::MAX));
        let max_weight = servers[..n].iter().map(|(_, w)| u64::from(*w)).max().unwrap_or(0);
        if max_weight == 0 {
            return Maglev { hash, table: Vec::new() };
        }
        let size = TABLE_SIZE as u64;
        let permutations: Vec<(u64, u64)> = servers[..n]
            .iter()
            .map(|(name, _)| {
                let digest = Md5::digest(name.as_bytes());
                let half = |at: usize| {
                    let mut bytes = [0u8; 8];
                    bytes.copy_from_slice(&digest[at..at + 8]);
                    u64::from_le_bytes(bytes)
                };
                (half(0) % size, half(8) % (size - 1) + 1)
            })
            .collect();
        let mut table = vec![u16::MAX; TABLE_SIZE];
        let mut next = vec![0u64; n];
        let mut credit = vec![0u64; n];
        let mut filled = 0;
        'fill: loop {
            for (server, &(offset, skip)) in permutations.iter().enumerate() {
                credit[server] += u64::from(servers[server].1);
                if credit[server] < max_weight {
                    continue;
                }
                credit[server] -= max_weight;
                loop {
                    // j < size always: a server's permutation visits every slot once, and
                    // the table fills before any server runs out.
                    let slot = ((offset + next[server] * skip) % size) as usize;
                    next[server] += 1;
                    if table[slot] == u16::MAX {
                        table[slot] = server as u16;
                        filled += 1;
                        break;
                    }
                }
                if filled == TABLE_SIZE {
                    break 'fill;
                }
            }
        }
        Maglev { hash, table }
    }

    /// The server a key belongs to (`None` without servers).
    pub fn server_for(&self, key: &[u8]) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        let slot = self.hash.hash(hash_tag(key)) as usize % self.table.len();
        self.table.get(slot).map(|&s| usize::from(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<(String, u32)> {
        (0..n).map(|i| (format!("10.0.0.{i}:6379"), 1)).collect()
    }

    #[test]
    fn weights_set_the_shares_and_zero_takes_a_server_out() {
        let servers = [("a:1".to_string(), 3), ("b:1".to_string(), 1), ("c:1".to_string(), 0)];
        let table = Maglev::new(&servers, KeyHash::Murmur);
        let mut slots = [0usize; 3];
        for &s in &table.table {
            slots[usize::from(s)] += 1;
        }
        assert_eq!(slots[2], 0);
        assert!(slots[0].abs_diff(TABLE_SIZE * 3 / 4) <= 2, "{slots:?}");
        let none = [("a:1".to_string(), 0)];
        assert!(Maglev::new(&none, KeyHash::Murmur).server_for(b"k").is_none());
    }

    #[test]
    fn slots_are_shared_evenly_and_keys_follow_them() {
        let table = Maglev::new(&names(3), KeyHash::Murmur);
        let mut slots = [0usize; 3];
        for &s in &table.table {
            slots[usize::from(s)] += 1;
        }
        assert!(slots.iter().all(|&c| c.abs_diff(TABLE_SIZE / 3) <= 1), "{slots:?}");
        let mut keys = [0usize; 3];
        for i in 0..30_000 {
            keys[table.server_for(format!("key:{i}").as_bytes()).unwrap()] += 1;
        }
        assert!(keys.iter().all(|&c| c > 9_000), "{keys:?}");
        assert_eq!(table.server_for(b"{t}a"), table.server_for(b"{t}b"));
        assert!(Maglev::new(&[], KeyHash::Murmur).server_for(b"k").is_none());
    }

    #[test]
    fn removing_a_server_moves_mostly_its_own_keys() {
        let before = Maglev::new(&names(5), KeyHash::Murmur);
        let after = Maglev::new(&names(4), KeyHash::Murmur);
        let (mut kept, mut moved_elsewhere) = (0, 0);
        for i in 0..20_000 {
            let key = format!("key:{i}");
            let (b, a) = (before.server_for(key.as_bytes()).unwrap(), after.server_for(key.as_bytes()).unwrap());
            if b == 4 {
                continue;
            }
            if a == b {
                kept += 1;
            } else {
                moved_elsewhere += 1;
            }
        }
        // Maglev trades a little disruption for even shares: a few percent, not a reshuffle.
        assert!(moved_elsewhere * 10 < kept, "{moved_elsewhere} of the survivors' keys moved, {kept} stayed");
    }
}
