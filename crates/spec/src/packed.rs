//! Short byte strings packed into integers, in a small open-addressing
//! table: a look-up is a 16-byte load (or copy), a multiplication and one
//! or two compares, without hashing byte by byte or calling `memcmp`. For
//! member names (`cell::project`) and keyword ranks (`keyword_rank`).

/// A map from byte strings to `V`; strings of up to 16 bytes are packed,
/// longer ones are compared in full.
#[derive(Debug, Clone)]
pub struct PackedMap<V> {
    /// (string packed little-endian and zero-padded, length + 1 (0: an empty slot), value)
    slots: Box<[(u128, usize, V)]>,
    long: Vec<(Box<[u8]>, V)>,
}

impl<V: Copy + Default> Default for PackedMap<V> {
    fn default() -> Self {
        Self::new(std::iter::empty())
    }
}

impl<V: Copy + Default> PackedMap<V> {
    /// Of repeated strings the last value wins.
    pub fn new<'k>(entries: impl IntoIterator<Item = (&'k [u8], V)>) -> Self {
        let entries: Vec<(&[u8], V)> = entries.into_iter().collect();
        let size = (entries.len() * 4).next_power_of_two().max(64);
        let mut map = PackedMap { slots: vec![(0, 0, V::default()); size].into_boxed_slice(), long: Vec::new() };
        for (k, v) in entries {
            if k.len() > 16 {
                map.long.retain(|(l, _)| &**l != k);
                map.long.push((k.into(), v));
                continue;
            }
            let packed = pack(k);
            let mut h = map.slot(packed, k.len());
            while map.slots[h].1 != 0 && (map.slots[h].0, map.slots[h].1) != (packed, k.len() + 1) {
                h = (h + 1) & (size - 1);
            }
            map.slots[h] = (packed, k.len() + 1, v);
        }
        map
    }

    #[inline(always)]
    fn slot(&self, packed: u128, len: usize) -> usize {
        let x = (packed as u64) ^ ((packed >> 64) as u64).rotate_left(29) ^ len as u64;
        (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & (self.slots.len() - 1)
    }

    #[inline(always)]
    fn lookup(&self, packed: u128, len: usize) -> Option<V> {
        let mut h = self.slot(packed, len);
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
            return self.long.iter().find(|(k, _)| &**k == w).map(|(_, v)| *v);
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
    fn finds_exactly_its_strings() {
        let names = ["", "a", "ab", "type", "name", "end_date", "0123456789abcdef", "0123456789abcdefg", "é", "ph d"];
        let map = PackedMap::new(names.iter().enumerate().map(|(i, n)| (n.as_bytes(), i + 1)));
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
        assert!(words.iter().all(|w| map.get(w.as_bytes()).is_some()));
        assert_eq!(map.get(b"w7"), Some(2));
        assert_eq!(map.get(b"w500"), None);
    }
}
