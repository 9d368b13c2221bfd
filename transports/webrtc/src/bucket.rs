//! A token bucket with the time passed in (milliseconds on any monotonic base), in exact integer
//! arithmetic: the level is kept in token-milliseconds, so a rate of `tokens` per `per_ms` refills
//! `tokens` units per elapsed millisecond and a token costs `per_ms` units.

/// `tokens` every `per_ms`, at most `burst` saved up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub tokens: u64,
    pub per_ms: u64,
    pub burst: u64,
}

impl Rate {
    pub fn per_sec(tokens: u32, burst: u32) -> Rate {
        Rate { tokens: tokens.into(), per_ms: 1_000, burst: burst.into() }
    }

    pub fn per_min(tokens: u32, burst: u32) -> Rate {
        Rate { tokens: tokens.into(), per_ms: 60_000, burst: burst.into() }
    }

    fn capacity(&self) -> u64 {
        self.burst.saturating_mul(self.per_ms)
    }
}

#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: Rate,
    level: u64,
    last_ms: u64,
}

impl TokenBucket {
    /// A bucket holding its whole burst at `now_ms`.
    pub fn full(rate: Rate, now_ms: u64) -> TokenBucket {
        TokenBucket { rate, level: rate.capacity(), last_ms: now_ms }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.level = self.level.saturating_add(elapsed.saturating_mul(self.rate.tokens)).min(self.rate.capacity());
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Whether a token is there at `now_ms` (nothing taken).
    pub fn ready(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        self.level >= self.rate.per_ms
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let ok = self.ready(now_ms);
        if ok {
            self.level -= self.rate.per_ms;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_the_rate() {
        let mut b = TokenBucket::full(Rate::per_min(6, 3), 0);
        assert!((0..3).all(|_| b.take(0)));
        assert!(!b.take(0), "the burst is spent");
        assert!(!b.take(9_999), "one token per 10 s");
        assert!(b.take(10_000));
        assert!(!b.take(10_000));
        assert!(b.ready(1_000_000) && b.take(1_000_000) && b.take(1_000_000) && b.take(1_000_000));
        assert!(!b.take(1_000_000), "never more than the burst saved up");
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut b = TokenBucket::full(Rate::per_sec(1, 1), 5_000);
        assert!(b.take(5_000));
        assert!(!b.take(0));
        assert!(b.take(6_000));
    }
}
