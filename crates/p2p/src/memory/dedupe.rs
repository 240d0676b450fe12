//! Bounded memory of what was seen (§7 dedupe): a FIFO-evicting map, and a set over it.
//!
//! Both evict the oldest insertion once `capacity` is exceeded, so a flood of distinct keys can
//! never grow them without bound.
//!
//! Their hash tables use foldhash, seeded at random per table: several look-ups per gossiped
//! message, and SipHash (std's default) cost more than the rest of the dedupe together. The
//! random seed keeps a peer from choosing keys that collide.

use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::hash::Hash;

use foldhash::HashMap;

/// A set that forgets its oldest member beyond `capacity`.
#[derive(Debug)]
pub(crate) struct BoundedSet<K>(BoundedMap<K, ()>);

impl<K: Eq + Hash + Clone> BoundedSet<K> {
    /// An empty set holding at most `capacity` (at least 1) keys.
    pub(crate) fn new(capacity: usize) -> Self {
        Self(BoundedMap::new(capacity))
    }

    /// Inserts `key`; returns `false` if it was already present.
    pub(crate) fn insert(&mut self, key: K) -> bool {
        self.0.insert(key, ())
    }

    /// Whether `key` is remembered.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: &K) -> bool {
        self.0.get(key).is_some()
    }

    /// Number of remembered keys.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// A map that forgets its oldest entry beyond `capacity`.
#[derive(Debug)]
pub(crate) struct BoundedMap<K, V> {
    entries: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V> BoundedMap<K, V> {
    /// An empty map holding at most `capacity` (at least 1) entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Inserts `value` under `key` unless present; returns `false` if it was (the value there
    /// stays).
    pub(crate) fn insert(&mut self, key: K, value: V) -> bool {
        match self.entries.entry(key.clone()) {
            Entry::Occupied(_) => return false,
            Entry::Vacant(slot) => {
                slot.insert(value);
            }
        }
        self.order.push_back(key);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
        true
    }

    /// Inserts `value` under `key` unless present; returns the value already there.
    pub(crate) fn insert_if_absent(&mut self, key: K, value: V) -> Option<&V> {
        if self.insert(key.clone(), value) {
            return None;
        }
        self.entries.get(&key)
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key)
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_forgets_oldest() {
        let mut set = BoundedSet::new(2);
        assert_eq!(set.len(), 0);
        assert!(set.insert(1));
        assert_eq!(set.len(), 1);
        assert!(!set.insert(1));
        assert!(set.insert(2));
        assert!(set.insert(3));
        assert!(!set.contains(&1));
        assert!(set.contains(&2) && set.contains(&3));
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn map_keeps_first_value_and_forgets_oldest() {
        let mut map = BoundedMap::new(2);
        assert_eq!(map.len(), 0);
        assert!(map.insert_if_absent("a", 1).is_none());
        assert_eq!(map.len(), 1);
        assert_eq!(map.insert_if_absent("a", 2), Some(&1));
        map.insert_if_absent("b", 2);
        map.insert_if_absent("c", 3);
        assert!(map.get(&"a").is_none());
        assert_eq!(map.get(&"b"), Some(&2));
        assert_eq!(map.len(), 2);
    }
}
