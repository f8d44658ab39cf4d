//! A bounded map that forgets its least recently used entry when full.
//!
//! The in-memory counters that hostile traffic can feed (failures per
//! source, audit gates) hold at most `capacity` entries: a flood of new
//! keys pushes out the keys that have been quiet longest, never the ones
//! still in use, and memory stays proportional to the cap whatever the
//! number of sources.
//!
//! Use order is a counter stamped on every touch; an ordered index from
//! stamp to key finds the oldest in O(log n). No unsafe code, no linked
//! list.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

pub struct Lru<K, V> {
    capacity: usize,
    tick: u64,
    entries: HashMap<K, (V, u64)>,
    /// Stamp of last use → key; the first entry is the least recent.
    order: BTreeMap<u64, K>,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// A map of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            tick: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains_key<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.entries.contains_key(key)
    }

    /// The value for `key`, without counting as a use.
    pub fn peek<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.entries.get(key).map(|(v, _)| v)
    }

    /// The value for `key`, marked as just used.
    pub fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let (value, stamp) = self.entries.get_mut(key)?;
        // The index gives its own copy of the key back: no clone.
        if let Some(owned) = self.order.remove(stamp) {
            self.tick += 1;
            self.order.insert(self.tick, owned);
            *stamp = self.tick;
        }
        Some(value)
    }

    /// The value for `key`, created with `make` when absent (the least
    /// recently used entry makes room when the map is full); marked as
    /// just used.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            if let Some((_, oldest)) = self.order.pop_first() {
                self.entries.remove(&oldest);
            }
        }
        // Stamps start at 1, so 0 marks an entry not yet in the index.
        self.tick += 1;
        let order = &mut self.order;
        let entry = self
            .entries
            .entry(key.clone())
            .or_insert_with(|| (make(), 0));
        if entry.1 != 0 {
            order.remove(&entry.1);
        }
        order.insert(self.tick, key);
        entry.1 = self.tick;
        &mut entry.0
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let (value, stamp) = self.entries.remove(key)?;
        self.order.remove(&stamp);
        Some(value)
    }

    /// Keeps only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let order = &mut self.order;
        self.entries.retain(|k, (v, stamp)| {
            let kept = keep(k, v);
            if !kept {
                order.remove(stamp);
            }
            kept
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_entry_makes_room() {
        let mut m = Lru::new(2);
        *m.get_or_insert_with("a", || 0) += 1;
        *m.get_or_insert_with("b", || 0) += 1;
        // Using "a" again makes "b" the oldest.
        assert!(m.get_mut(&"a").is_some());
        *m.get_or_insert_with("c", || 0) += 1;
        assert!(m.contains_key(&"a") && m.contains_key(&"c"));
        assert!(!m.contains_key(&"b"));
        assert_eq!(m.len(), 2);
        assert_eq!(m.remove(&"a"), Some(1));
        m.retain(|_, v| *v > 5);
        assert!(m.is_empty());
        assert!(m.order.is_empty(), "the index follows the entries");
    }
}
