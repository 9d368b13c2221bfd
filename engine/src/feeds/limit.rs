//! Token buckets by key with a bounded number of keys: a flood by one sender (or one owner) is cut
//! to its rate, and a flood of senders cannot grow the map (the bucket least recently used goes;
//! a key that comes back starts full, which costs at most one burst).

use crate::time::Millis;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
pub struct RateLimiter<K: Ord + Copy> {
    burst: u32,
    /// Milliseconds per token.
    refill_ms: u64,
    max_keys: usize,
    /// key -> (tokens, last refill, last use).
    buckets: BTreeMap<K, (u32, Millis, Millis)>,
    by_use: BTreeSet<(Millis, K)>,
}

impl<K: Ord + Copy> RateLimiter<K> {
    /// `per_hour` tokens an hour per key, up to `burst` saved; at most `max_keys` keys.
    pub fn new(burst: u32, per_hour: u32, max_keys: usize) -> Self {
        let refill_ms = 3_600_000 / u64::from(per_hour.max(1));
        RateLimiter {
            burst: burst.max(1),
            refill_ms,
            max_keys: max_keys.max(1),
            buckets: BTreeMap::new(),
            by_use: BTreeSet::new(),
        }
    }

    /// Take a token for `key` if it has one.
    pub fn allow(&mut self, now: Millis, key: K) -> bool {
        let (mut tokens, mut refilled, used) = self.buckets.get(&key).copied().unwrap_or((self.burst, now, now));
        self.by_use.remove(&(used, key));
        let earned = now.saturating_sub(refilled) / self.refill_ms;
        if earned > 0 {
            tokens = tokens.saturating_add(u32::try_from(earned).unwrap_or(u32::MAX)).min(self.burst);
            refilled += earned * self.refill_ms;
        }
        if tokens == self.burst {
            refilled = now;
        }
        let ok = tokens > 0;
        if ok {
            tokens -= 1;
        }
        self.buckets.insert(key, (tokens, refilled, now));
        self.by_use.insert((now, key));
        while self.buckets.len() > self.max_keys {
            let Some((_, old)) = self.by_use.pop_first() else { break };
            self.buckets.remove(&old);
        }
        ok
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn forget(&mut self, key: &K) {
        if let Some((_, _, used)) = self.buckets.remove(key) {
            self.by_use.remove(&(used, *key));
        }
    }

    pub fn check_invariants(&self) {
        debug_assert!(self.buckets.len() <= self.max_keys, "rate limiter over its key bound");
        debug_assert_eq!(self.buckets.len(), self.by_use.len(), "rate limiter index out of step");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_and_keys_bounded() {
        let mut l = RateLimiter::new(3, 60, 2); // one a minute
        assert!((0..3).all(|_| l.allow(0, 1u8)));
        assert!(!l.allow(0, 1));
        assert!(!l.allow(59_999, 1));
        assert!(l.allow(60_000, 1));
        assert!(!l.allow(60_001, 1));
        // Other keys have their own buckets; the least recently used goes past the bound.
        assert!(l.allow(70_000, 2));
        assert!(l.allow(80_000, 3));
        assert_eq!(l.len(), 2);
        l.check_invariants();
        // Key 1 was evicted: it starts full again (at most one burst more).
        assert!(l.allow(90_000, 1));
        l.check_invariants();
    }
}
