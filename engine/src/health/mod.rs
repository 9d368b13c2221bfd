//! Health: liveness of open links, a sub-machine of the connection manager ([`crate::links`]).
//! Any frame counts as a sign of life (the router stamps what it hears and sends), so a heartbeat
//! goes only to a link on which nothing else was sent for a whole interval, and a link silent past
//! the timeout is declared dead. A peer another core found unresponsive is probed
//! ([`Probes`]): it answers at once if alive, and its link is declared dead `probe_timeout_ms`
//! later if nothing came. Reconnecting to a lost peer with exponential backoff is the
//! manager's dialler's job ([`crate::links::dialer`]); the delay schedule is [`backoff_delay`].

#[cfg(test)]
mod tests;

use crate::config::HealthConfig;
use crate::time::Millis;
use crate::types::PeerId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

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

/// Probes of peers suspected dead. A peer that stopped answering (its node crashed, its network
/// went) is otherwise noticed only at the heartbeat timeout (90 s by default), while every core
/// keeps counting it as a neighbour, a replica, a relay. A core that asked it something and got
/// no answer in time says so (`suspect`); the peer gets a probe, which any live peer answers at
/// once, and a link on which nothing at all is heard within `probe_timeout_ms` of the probe is
/// dead (`due`). One probe per peer at a time; none to a peer heard from within the timeout.
pub struct Probes {
    timeout_ms: Millis,
    /// Peer -> when its probe went.
    sent: BTreeMap<PeerId, Millis>,
    /// (deadline, peer), one per entry of `sent`.
    deadlines: BTreeSet<(Millis, PeerId)>,
}

impl Probes {
    pub fn new(cfg: &HealthConfig) -> Self {
        Probes { timeout_ms: cfg.probe_timeout_ms, sent: BTreeMap::new(), deadlines: BTreeSet::new() }
    }

    /// `peer`, last heard at `heard`, did not answer a question: whether to send it a probe now.
    pub fn suspect(&mut self, now: Millis, peer: PeerId, heard: Millis) -> bool {
        if self.sent.contains_key(&peer) || now.saturating_sub(heard) < self.timeout_ms {
            return false;
        }
        self.sent.insert(peer, now);
        self.deadlines.insert((now + self.timeout_ms, peer));
        true
    }

    /// The probes whose time is up: the peers heard from nothing since their probe (by
    /// `heard`, `None` for a link gone meanwhile) are dead.
    pub fn due(&mut self, now: Millis, heard: impl Fn(&PeerId) -> Option<Millis>) -> Vec<PeerId> {
        let mut dead = Vec::new();
        while let Some(&(at, peer)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let sent = self.sent.remove(&peer).unwrap_or(at);
            if heard(&peer).is_some_and(|h| h < sent) {
                dead.push(peer);
            }
        }
        dead
    }

    /// The link is gone: its probe, if any, with it.
    pub fn forget(&mut self, peer: &PeerId) {
        if let Some(sent) = self.sent.remove(peer) {
            self.deadlines.remove(&(sent + self.timeout_ms, *peer));
        }
    }

    pub fn next_timeout(&self) -> Option<Millis> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    pub fn check_invariants(&self) {
        debug_assert_eq!(self.sent.len(), self.deadlines.len(), "a probe without its deadline");
        debug_assert!(self.sent.iter().all(|(p, at)| self.deadlines.contains(&(at + self.timeout_ms, *p))));
    }
}
