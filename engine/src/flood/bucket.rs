//! A token bucket in integer arithmetic (no floats, so every node computes the same): up to
//! `burst` tokens, refilled at `per_min` a minute, on the time it is handed.

use crate::time::Millis;

/// A token is this many units: refilling `per_min` tokens a minute adds `per_min` units a ms.
const UNITS_PER_TOKEN: u64 = 60_000;

/// A bucket's size and refill rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub per_min: u32,
}

impl Rate {
    fn cap(self) -> u64 {
        u64::from(self.burst) * UNITS_PER_TOKEN
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    units: u64,
    /// When it was last refilled.
    at: Millis,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(rate: Rate, now: Millis) -> Self {
        TokenBucket { units: rate.cap(), at: now }
    }

    /// Refill for the time since the last call (time never runs backwards here).
    pub fn refill(&mut self, now: Millis, rate: Rate) {
        let added = now.saturating_sub(self.at).saturating_mul(u64::from(rate.per_min));
        self.units = self.units.saturating_add(added).min(rate.cap());
        self.at = self.at.max(now);
    }

    /// Whether `n` tokens are there (as last refilled).
    pub fn has(&self, n: u32) -> bool {
        u64::from(n) * UNITS_PER_TOKEN <= self.units
    }

    /// Take `n` tokens; the caller checked [`TokenBucket::has`].
    pub fn take(&mut self, n: u32) {
        debug_assert!(self.has(n), "took more tokens than the bucket holds");
        self.units = self.units.saturating_sub(u64::from(n) * UNITS_PER_TOKEN);
    }

    /// Whole tokens left (as last refilled).
    pub fn tokens(&self) -> u64 {
        self.units / UNITS_PER_TOKEN
    }
}
