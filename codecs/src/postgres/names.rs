//! The session's maps of prepared statements and portals by name (protocol §55.2.3,
//! "Extended Query": the empty name is the unnamed statement or portal).
//!
//! Most drivers use the unnamed portal for every Execute, and many the unnamed statement
//! too, once or twice per round trip: it lives in its own slot, so the common case costs
//! no hashing and no key comparison. Named entries are in a map whose hasher is foldhash
//! with a per-process random seed — a few nanoseconds for a short name where SipHash
//! takes tens — which is enough against crafted names here: the names come from one
//! client, their number is capped by the session's limits, and only that client's own
//! lookups would slow down.

use std::borrow::Borrow;
use std::collections::HashMap;

type Seeded = foldhash::fast::RandomState;

#[derive(Clone, Debug)]
pub(super) struct NameMap<V> {
    unnamed: Option<V>,
    named: HashMap<Box<[u8]>, V, Seeded>,
}

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        NameMap { unnamed: None, named: HashMap::default() }
    }
}

impl<V> NameMap<V> {
    pub(super) fn get(&self, name: &[u8]) -> Option<&V> {
        if name.is_empty() {
            self.unnamed.as_ref()
        } else {
            self.named.get(name)
        }
    }

    pub(super) fn get_mut(&mut self, name: &[u8]) -> Option<&mut V> {
        if name.is_empty() {
            self.unnamed.as_mut()
        } else {
            self.named.get_mut(name)
        }
    }

    /// Puts `value` under `name`; the name is copied only when it is new and named.
    pub(super) fn insert(&mut self, name: impl Borrow<[u8]> + Into<Box<[u8]>>, value: V) {
        if name.borrow().is_empty() {
            self.unnamed = Some(value);
        } else if let Some(slot) = self.named.get_mut(name.borrow()) {
            *slot = value;
        } else {
            self.named.insert(name.into(), value);
        }
    }

    pub(super) fn remove(&mut self, name: &[u8]) -> Option<V> {
        if name.is_empty() {
            self.unnamed.take()
        } else {
            self.named.remove(name)
        }
    }

    /// How many named entries there are (the unnamed one is not counted against limits).
    pub(super) fn named_len(&self) -> usize {
        self.named.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.unnamed.is_none() && self.named.is_empty()
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        if self.unnamed.as_ref().is_some_and(|v| !keep(v)) {
            self.unnamed = None;
        }
        if !self.named.is_empty() {
            self.named.retain(|_, v| keep(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unnamed_entry_and_named_ones_are_apart() {
        let mut map = NameMap::default();
        assert!(map.is_empty());
        map.insert(&b""[..], 1);
        map.insert(&b"s1"[..], 2);
        map.insert(&b"s1"[..], 3);
        assert_eq!((map.get(b""), map.get(b"s1"), map.get(b"s2")), (Some(&1), Some(&3), None));
        assert_eq!(map.named_len(), 1);
        *map.get_mut(b"").unwrap() = 4;
        map.retain(|v| *v != 4);
        assert_eq!((map.get(b""), map.get(b"s1")), (None, Some(&3)));
        assert_eq!(map.remove(b"s1"), Some(3));
        assert!(map.is_empty());
    }
}
