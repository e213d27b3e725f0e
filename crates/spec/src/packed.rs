//! Short byte strings packed into integers, in a small table: a look-up is
//! a 16-byte load (or copy), a multiplication and one compare (small sets
//! get a perfect table) or a few (larger ones are probed), without hashing
//! byte by byte or calling `memcmp`. For keyword ranks (`keyword_rank`).

use std::collections::HashMap;

/// A map from byte strings to `V`; strings of up to 16 bytes are packed,
/// longer ones are compared in full.
#[derive(Debug, Clone)]
pub struct PackedMap<V> {
    /// (string packed little-endian and zero-padded, length + 1 (0: an empty slot), value)
    slots: Box<[(u128, usize, V)]>,
    /// The odd multiplier of the hash.
    seed: u64,
    /// Every packed string has a slot of its own (no probing): then a
    /// look-up is one compare, and no branch a predictor can miss.
    perfect: bool,
    long: HashMap<Box<[u8]>, V>,
}

/// Sets of up to this many packed strings get a perfect table.
const PERFECT_UP_TO: usize = 64;

impl<V: Copy + Default> Default for PackedMap<V> {
    fn default() -> Self {
        Self::new(std::iter::empty())
    }
}

impl<V: Copy + Default> PackedMap<V> {
    /// Of repeated strings the last value wins.
    pub fn new<'k>(entries: impl IntoIterator<Item = (&'k [u8], V)>) -> Self {
        let mut short: HashMap<(u128, usize), V> = HashMap::new();
        let mut long: HashMap<Box<[u8]>, V> = HashMap::new();
        for (k, v) in entries {
            if k.len() > 16 {
                long.insert(k.into(), v);
            } else {
                short.insert((pack(k), k.len()), v);
            }
        }
        let short: Vec<(u128, usize, V)> = short.into_iter().map(|((p, l), v)| (p, l, v)).collect();
        let mut size = (short.len() * 4).next_power_of_two().max(64);
        // a perfect table for small sets: a few dozen seeds per size, doubling the size
        if short.len() <= PERFECT_UP_TO {
            for _ in 0..4 {
                for seed in seeds().take(64) {
                    if let Some(map) = Self::place(&short, size, seed, true) {
                        return PackedMap { long, ..map };
                    }
                }
                size *= 2;
            }
            size = (short.len() * 4).next_power_of_two().max(64);
        }
        let map = Self::place(&short, size, seeds().next().expect("a seed"), false).expect("probing places all");
        PackedMap { long, ..map }
    }

    /// A table of `size` slots holding `short`; with `perfect`, `None` if two collide.
    fn place(short: &[(u128, usize, V)], size: usize, seed: u64, perfect: bool) -> Option<Self> {
        let mut map = PackedMap {
            slots: vec![(0, 0, V::default()); size].into_boxed_slice(),
            seed,
            perfect,
            long: HashMap::new(),
        };
        for &(packed, len, v) in short {
            let mut h = map.slot(packed, len);
            while map.slots[h].1 != 0 {
                if perfect {
                    return None;
                }
                h = (h + 1) & (size - 1);
            }
            map.slots[h] = (packed, len + 1, v);
        }
        Some(map)
    }

    #[inline(always)]
    fn slot(&self, packed: u128, len: usize) -> usize {
        let x = (packed as u64) ^ ((packed >> 64) as u64).rotate_left(29) ^ len as u64;
        (x.wrapping_mul(self.seed) >> 32) as usize & (self.slots.len() - 1)
    }

    #[inline(always)]
    fn lookup(&self, packed: u128, len: usize) -> Option<V> {
        let mut h = self.slot(packed, len);
        if self.perfect {
            let (p, l, v) = self.slots[h];
            return (p == packed && l == len + 1).then_some(v);
        }
        loop {
            match self.slots[h] {
                (_, 0, _) => return None,
                (p, l, v) if p == packed && l == len + 1 => return Some(v),
                _ => h = (h + 1) & (self.slots.len() - 1),
            }
        }
    }

    /// The value of `w`.
    #[inline(always)]
    pub fn get(&self, w: &[u8]) -> Option<V> {
        if w.len() > 16 {
            return self.long.get(w).copied();
        }
        self.lookup(pack(w), w.len())
    }

    /// The value of `b[start..end]`, reading sixteen bytes from `start`
    /// when `b` has them rather than copying.
    #[inline(always)]
    pub fn get_in(&self, b: &[u8], start: usize, end: usize) -> Option<V> {
        let len = end - start;
        match b.get(start..start + 16) {
            Some(w) if len <= 16 => {
                let packed = u128::from_le_bytes(w.try_into().expect("sixteen bytes"));
                let packed = if len == 16 { packed } else { packed & ((1u128 << (len * 8)) - 1) };
                self.lookup(packed, len)
            }
            _ => self.get(&b[start..end]),
        }
    }
}

/// Odd multipliers for the hash, the first the golden ratio's.
fn seeds() -> impl Iterator<Item = u64> {
    std::iter::successors(Some(0x9e37_79b9_7f4a_7c15u64), |s| {
        Some((s ^ (s >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) | 1)
    })
}

#[inline(always)]
fn pack(w: &[u8]) -> u128 {
    let mut buf = [0u8; 16];
    buf[..w.len()].copy_from_slice(w);
    u128::from_le_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_tables_are_perfect() {
        for t in &crate::Spec::predict_age().prog.keywords {
            assert!(t.ranks.perfect && t.ranks.slots.len() <= 256, "{} slots", t.ranks.slots.len());
        }
    }

    #[test]
    fn finds_exactly_its_strings() {
        let names = ["", "a", "ab", "type", "name", "end_date", "0123456789abcdef", "0123456789abcdefg", "é", "ph d"];
        let map = PackedMap::new(names.iter().enumerate().map(|(i, n)| (n.as_bytes(), i + 1)));
        assert!(map.perfect, "a small set gets a table without probing");
        let others =
            ["b", "nam", "names", "Name", "end_datf", "0123456789abcdeg", "0123456789abcdefh", "e", "\0", "ph"];
        for (name, want) in
            names.iter().enumerate().map(|(i, n)| (n, Some(i + 1))).chain(others.iter().map(|n| (n, None)))
        {
            assert_eq!(map.get(name.as_bytes()), want, "{name:?}");
            // in a document, with room for a 16-byte load after it and without
            for tail in ["\": 1, \"padding\": 2}", "\""] {
                let doc = format!("\"{name}{tail}");
                assert_eq!(map.get_in(doc.as_bytes(), 1, 1 + name.len()), want, "{name:?} before {tail:?}");
            }
        }
        // many strings: the table grows, the last of a repeated string wins
        let words: Vec<String> = (0..500).map(|i| format!("w{i}")).collect();
        let map = PackedMap::new(words.iter().map(|w| (w.as_bytes(), 1)).chain([(&b"w7"[..], 2)]));
        assert!(!map.perfect, "a large set is probed");
        assert!(words.iter().all(|w| map.get(w.as_bytes()).is_some()));
        assert_eq!(map.get(b"w7"), Some(2));
        assert_eq!(map.get(b"w500"), None);
    }
}
