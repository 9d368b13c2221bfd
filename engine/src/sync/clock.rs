//! Vector clocks over writer ids: one counter per writer that has written a record, the partial
//! order between two clocks (a write that saw another dominates it; two that did not see each
//! other are concurrent), and the pointwise-max merge. A clock never goes backwards: merging and
//! ticking only raise counters, and a clock holds at most [`MAX_CLOCK_ENTRIES`] writers.

use crate::types::PeerId;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Writers one clock may name (the owner and the writers it authorised; guess: a user's devices
/// plus a handful of collaborators; each entry costs 43 bytes in every write).
pub const MAX_CLOCK_ENTRIES: usize = 32;

/// How two clocks relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Causality {
    Equal,
    /// The left clock saw everything the right one did, and more.
    Dominates,
    /// The right clock saw everything the left one did, and more.
    Dominated,
    /// Each saw something the other did not.
    Concurrent,
}

impl Causality {
    /// The same relation seen from the other side.
    pub fn reverse(self) -> Causality {
        match self {
            Causality::Dominates => Causality::Dominated,
            Causality::Dominated => Causality::Dominates,
            other => other,
        }
    }
}

/// Why a clock cannot be built or taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("vector clock would name {entries} writers; at most {max} are allowed")]
    TooManyEntries { entries: usize, max: usize },
    #[error("vector clock entry for writer {0} is 0 (absent writers are left out)")]
    ZeroEntry(String),
    #[error("vector clock counter of writer {0} is at its maximum")]
    Overflow(String),
}

/// Counters by writer, zero entries left out (so equal clocks are equal maps and encode alike).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VectorClock(BTreeMap<PeerId, u64>);

impl VectorClock {
    pub fn new() -> Self {
        VectorClock(BTreeMap::new())
    }

    /// A clock from entries (zero counters are left out; duplicates keep the larger).
    pub fn from_entries(entries: impl IntoIterator<Item = (PeerId, u64)>) -> Result<Self, ClockError> {
        let mut map = BTreeMap::new();
        for (writer, n) in entries {
            if n > 0 {
                let e = map.entry(writer).or_insert(n);
                *e = (*e).max(n);
            }
        }
        let clock = VectorClock(map);
        clock.validate()?;
        Ok(clock)
    }

    /// Check a clock that came from the network or a file: bounded, no zero entries.
    pub fn validate(&self) -> Result<(), ClockError> {
        if self.0.len() > MAX_CLOCK_ENTRIES {
            return Err(ClockError::TooManyEntries { entries: self.0.len(), max: MAX_CLOCK_ENTRIES });
        }
        if let Some((w, _)) = self.0.iter().find(|(_, n)| **n == 0) {
            return Err(ClockError::ZeroEntry(w.short()));
        }
        Ok(())
    }

    /// The writer's counter (0 if it never wrote).
    pub fn get(&self, writer: &PeerId) -> u64 {
        self.0.get(writer).copied().unwrap_or(0)
    }

    /// Entries in writer order.
    pub fn entries(&self) -> impl Iterator<Item = (&PeerId, u64)> {
        self.0.iter().map(|(w, n)| (w, *n))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sum of the counters: strictly larger in a clock that dominates another.
    pub fn total(&self) -> u128 {
        self.0.values().map(|n| *n as u128).sum()
    }

    /// How `self` relates to `other`.
    pub fn compare(&self, other: &VectorClock) -> Causality {
        let (mut greater, mut less) = (false, false);
        // Walk both maps in writer order at once: entries absent on one side count as 0.
        let mut a = self.0.iter().peekable();
        let mut b = other.0.iter().peekable();
        loop {
            let ord = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((wa, _)), Some((wb, _))) => wa.cmp(wb),
            };
            match ord {
                Ordering::Less => {
                    a.next();
                    greater = true; // a writer only `self` saw (entries are never 0)
                }
                Ordering::Greater => {
                    b.next();
                    less = true;
                }
                Ordering::Equal => {
                    let (na, nb) = (a.next().map_or(0, |e| *e.1), b.next().map_or(0, |e| *e.1));
                    greater |= na > nb;
                    less |= na < nb;
                }
            }
            if greater && less {
                return Causality::Concurrent;
            }
        }
        match (greater, less) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Dominates,
            (false, true) => Causality::Dominated,
            (true, true) => Causality::Concurrent,
        }
    }

    /// `self` saw everything `other` did, and more.
    pub fn dominates(&self, other: &VectorClock) -> bool {
        self.compare(other) == Causality::Dominates
    }

    pub fn concurrent(&self, other: &VectorClock) -> bool {
        self.compare(other) == Causality::Concurrent
    }

    /// Pointwise maximum, in place. Refused (and `self` unchanged) if the result would name more
    /// than [`MAX_CLOCK_ENTRIES`] writers.
    pub fn merge(&mut self, other: &VectorClock) -> Result<(), ClockError> {
        let new = other.0.keys().filter(|w| !self.0.contains_key(w)).count();
        if self.0.len() + new > MAX_CLOCK_ENTRIES {
            return Err(ClockError::TooManyEntries { entries: self.0.len() + new, max: MAX_CLOCK_ENTRIES });
        }
        let before = cfg!(debug_assertions).then(|| self.clone());
        for (w, n) in &other.0 {
            let e = self.0.entry(*w).or_insert(0);
            *e = (*e).max(*n);
        }
        debug_assert!(
            before.is_none_or(|b| matches!(self.compare(&b), Causality::Equal | Causality::Dominates)),
            "a merged clock went backwards"
        );
        Ok(())
    }

    /// The pointwise maximum of two clocks.
    pub fn merged(&self, other: &VectorClock) -> Result<VectorClock, ClockError> {
        let mut c = self.clone();
        c.merge(other)?;
        Ok(c)
    }

    /// Count one more write by `writer`; returns its new counter.
    pub fn tick(&mut self, writer: PeerId) -> Result<u64, ClockError> {
        if !self.0.contains_key(&writer) && self.0.len() >= MAX_CLOCK_ENTRIES {
            return Err(ClockError::TooManyEntries { entries: self.0.len() + 1, max: MAX_CLOCK_ENTRIES });
        }
        let e = self.0.entry(writer).or_insert(0);
        *e = e.checked_add(1).ok_or_else(|| ClockError::Overflow(writer.short()))?;
        Ok(*e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(i: u8) -> PeerId {
        PeerId([i; 32])
    }

    /// Clocks over a few writers with small counters, so equal and dominating pairs are common.
    fn clock() -> impl Strategy<Value = VectorClock> {
        proptest::collection::vec((0u8..5, 0u64..4), 0..6)
            .prop_map(|e| VectorClock::from_entries(e.into_iter().map(|(i, n)| (w(i), n))).unwrap())
    }

    /// The definition, written the slow way: pointwise comparison over the union of writers.
    fn le(a: &VectorClock, b: &VectorClock) -> bool {
        a.entries().all(|(wr, n)| n <= b.get(wr))
    }

    proptest! {
        #[test]
        fn compare_matches_pointwise_definition(a in clock(), b in clock()) {
            let expected = match (le(&a, &b), le(&b, &a)) {
                (true, true) => Causality::Equal,
                (false, true) => Causality::Dominates,
                (true, false) => Causality::Dominated,
                (false, false) => Causality::Concurrent,
            };
            prop_assert_eq!(a.compare(&b), expected);
            prop_assert_eq!(b.compare(&a), expected.reverse());
            prop_assert_eq!(a.compare(&b) == Causality::Equal, a == b);
        }

        #[test]
        fn order_is_reflexive_antisymmetric_transitive(a in clock(), b in clock(), c in clock()) {
            prop_assert_eq!(a.compare(&a), Causality::Equal);
            let at_least = |x: &VectorClock, y: &VectorClock| matches!(x.compare(y), Causality::Equal | Causality::Dominates);
            if at_least(&a, &b) && at_least(&b, &a) {
                prop_assert_eq!(&a, &b);
            }
            if at_least(&a, &b) && at_least(&b, &c) {
                prop_assert!(at_least(&a, &c));
            }
            if a.dominates(&b) {
                prop_assert!(a.total() > b.total());
            }
        }

        #[test]
        fn merge_is_least_upper_bound(a in clock(), b in clock(), c in clock()) {
            let ab = a.merged(&b).unwrap();
            prop_assert!(le(&a, &ab) && le(&b, &ab));
            // Least: any clock above both is above the merge.
            if le(&a, &c) && le(&b, &c) {
                prop_assert!(le(&ab, &c));
            }
            prop_assert_eq!(&ab, &b.merged(&a).unwrap());
            prop_assert_eq!(&a.merged(&a).unwrap(), &a);
            prop_assert_eq!(ab.merged(&c).unwrap(), a.merged(&b.merged(&c).unwrap()).unwrap());
        }

        #[test]
        fn tick_dominates_and_never_goes_back(a in clock(), i in 0u8..6) {
            let mut t = a.clone();
            let n = t.tick(w(i)).unwrap();
            prop_assert_eq!(n, a.get(&w(i)) + 1);
            prop_assert_eq!(t.compare(&a), Causality::Dominates);
            prop_assert_eq!(t.len(), a.len() + usize::from(a.get(&w(i)) == 0));
        }

        #[test]
        fn encoding_round_trips(a in clock()) {
            let bytes = rmp_serde::to_vec(&a).unwrap();
            let back: VectorClock = rmp_serde::from_slice(&bytes).unwrap();
            prop_assert_eq!(back, a);
        }
    }

    #[test]
    fn bounded_entries() {
        let full = VectorClock::from_entries((0..MAX_CLOCK_ENTRIES as u8).map(|i| (w(i), 1))).unwrap();
        let mut t = full.clone();
        assert!(matches!(t.tick(w(200)), Err(ClockError::TooManyEntries { .. })));
        assert_eq!(t, full, "a refused tick leaves the clock as it was");
        assert_eq!(t.tick(w(0)), Ok(2), "an existing writer still ticks");
        let other = VectorClock::from_entries([(w(201), 1)]).unwrap();
        assert!(t.merge(&other).is_err());
        assert_eq!(t.get(&w(201)), 0);
        let over = VectorClock::from_entries((0..=MAX_CLOCK_ENTRIES as u8).map(|i| (w(i), 1)));
        assert!(matches!(over, Err(ClockError::TooManyEntries { entries: 33, .. })));
    }

    #[test]
    fn zero_entries_from_the_network_are_refused() {
        let zero: BTreeMap<PeerId, u64> = [(w(1), 0)].into_iter().collect();
        let bytes = rmp_serde::to_vec(&zero).unwrap();
        let c: VectorClock = rmp_serde::from_slice(&bytes).unwrap();
        assert!(matches!(c.validate(), Err(ClockError::ZeroEntry(_))));
        let mut top = VectorClock::from_entries([(w(1), u64::MAX)]).unwrap();
        assert!(matches!(top.tick(w(1)), Err(ClockError::Overflow(_))));
    }
}
