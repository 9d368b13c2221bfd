//! Health: liveness of open links, a sub-machine of the connection manager ([`crate::links`]).
//! Any frame counts as a sign of life (the router stamps what it hears and sends), so a heartbeat
//! goes only to a link on which nothing else was sent for a whole interval, and a link silent past
//! the timeout is declared dead. Reconnecting to a lost peer with exponential backoff is the
//! manager's dialler's job ([`crate::links::dialer`]); the delay schedule is [`backoff_delay`].

#[cfg(test)]
mod tests;

use crate::config::HealthConfig;
use crate::time::Millis;
use crate::types::PeerId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Delay before reconnect attempt `attempt` (0-based): base * multiplier^attempt, capped.
pub fn backoff_delay(base_ms: Millis, multiplier: u32, max_ms: Millis, attempt: u32) -> Millis {
    let factor = u64::from(multiplier).saturating_pow(attempt);
    base_ms.saturating_mul(factor).min(max_ms)
}

/// What one liveness tick decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Links silent past the timeout: to be dropped (no goodbye: the peer is gone).
    pub expired: Vec<PeerId>,
    /// Links nothing was sent on for an interval: each gets a heartbeat with `seq`.
    pub beat: Vec<PeerId>,
    pub seq: u64,
}

pub struct Liveness {
    cfg: HealthConfig,
    seq: u64,
    next_tick: Millis,
}

impl Liveness {
    /// Ticks start at a random phase so nodes do not beat in lock-step.
    pub fn new(cfg: HealthConfig, rng: &mut ChaCha8Rng) -> Self {
        let next_tick = rng.gen_range(0..cfg.heartbeat_interval_ms.max(1));
        Liveness { cfg, seq: 0, next_tick }
    }

    pub fn next_timeout(&self) -> Millis {
        self.next_tick
    }

    /// At a tick (`now >= next_timeout()`), given each open link's last heard and last sent
    /// times: which expire and which need a heartbeat. Before the tick it decides nothing.
    pub fn tick(&mut self, now: Millis, links: impl IntoIterator<Item = (PeerId, Millis, Millis)>) -> Tick {
        if now < self.next_tick {
            return Tick::default();
        }
        self.next_tick = now + self.cfg.heartbeat_interval_ms;
        self.seq += 1;
        let mut t = Tick { seq: self.seq, ..Tick::default() };
        for (peer, heard, sent) in links {
            if now.saturating_sub(heard) >= self.cfg.heartbeat_timeout_ms {
                t.expired.push(peer);
            } else if now.saturating_sub(sent) >= self.cfg.heartbeat_interval_ms {
                t.beat.push(peer);
            }
        }
        t
    }
}
