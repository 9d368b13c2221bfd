//! The per-connection message budget, a token bucket in thousandths of a message so refill is
//! exact integer arithmetic; time is passed in. The server enforces it on each connection; the
//! client keeps its own sending under the server's (see `client`), so it is never cut off.

/// `rate_msgs_per_s` refill, at most `burst_msgs` saved up; starts full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_msgs_per_s: u32,
    burst_msgs: u32,
    milli_tokens: u64,
    last_ms: u64,
}

impl TokenBucket {
    pub fn full(rate_msgs_per_s: u32, burst_msgs: u32, now_ms: u64) -> TokenBucket {
        TokenBucket { rate_msgs_per_s, burst_msgs, milli_tokens: u64::from(burst_msgs) * 1000, last_ms: now_ms }
    }

    fn refill(&mut self, now_ms: u64) {
        let capacity = u64::from(self.burst_msgs) * 1000;
        let elapsed_ms = now_ms.saturating_sub(self.last_ms);
        // rate msgs/s = rate milli-msgs/ms.
        self.milli_tokens =
            self.milli_tokens.saturating_add(elapsed_ms.saturating_mul(self.rate_msgs_per_s.into())).min(capacity);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Takes a token if more than `reserve` whole tokens would be left: a reserve keeps room for
    /// what matters more (a client's registrations over its signals).
    pub fn take_above(&mut self, now_ms: u64, reserve: u32) -> bool {
        self.refill(now_ms);
        let need = (u64::from(reserve) + 1) * 1000;
        if self.milli_tokens >= need {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }

    pub fn take(&mut self, now_ms: u64) -> bool {
        self.take_above(now_ms, 0)
    }

    /// Milliseconds from `now_ms` until a token is there (0 if one is).
    pub fn wait_ms(&mut self, now_ms: u64) -> u64 {
        self.refill(now_ms);
        let missing = 1000u64.saturating_sub(self.milli_tokens);
        missing.div_ceil(u64::from(self.rate_msgs_per_s.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_rate_and_reserve() {
        let mut b = TokenBucket::full(10, 5, 0);
        assert!((0..3).all(|_| b.take_above(0, 2)));
        assert!(!b.take_above(0, 2), "two tokens are kept back");
        assert!(b.take(0) && b.take(0) && !b.take(0));
        assert_eq!(b.wait_ms(0), 100);
        assert_eq!(b.wait_ms(40), 60);
        assert!(b.take(100) && !b.take(100));
        assert!((0..5).all(|_| b.take(10_000)) && !b.take(10_000), "never more than the burst");
    }
}
