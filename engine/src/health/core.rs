//! Health protocol core: one heartbeat per interval to every connection, failure detection (a
//! connection silent past the timeout is closed), and reconnection to lost peers with exponential
//! backoff (a bounded number of attempts, each delay capped).

use crate::config::HealthConfig;
use crate::core::{Core, Effect, LinkEvent, Outputs};
use crate::observer::Event;
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::Message;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Link(LinkEvent),
    Heartbeat { from: PeerId, seq: u64 },
}

pub type Output = Effect;

/// Delay before reconnect attempt `attempt` (0-based): base * multiplier^attempt, capped.
pub fn backoff_delay(cfg: &HealthConfig, attempt: u32) -> Millis {
    let factor = u64::from(cfg.reconnect_multiplier).saturating_pow(attempt);
    cfg.reconnect_base_ms.saturating_mul(factor).min(cfg.reconnect_max_ms)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reconnect {
    /// Attempts already made.
    attempt: u32,
    /// When to dial next; `None` while a dial is in flight.
    due: Option<Millis>,
}

pub struct HealthCore {
    cfg: HealthConfig,
    /// Connection -> last time anything was heard on it.
    conns: BTreeMap<PeerId, Millis>,
    reconnect: BTreeMap<PeerId, Reconnect>,
    seq: u64,
    next_tick: Millis,
    out: Outputs<Output>,
}

impl HealthCore {
    /// Heartbeat ticks start at a random phase so nodes do not beat in lock-step.
    pub fn new(cfg: HealthConfig, mut rng: ChaCha8Rng) -> Self {
        let first = rng.gen_range(0..cfg.heartbeat_interval_ms.max(1));
        HealthCore {
            cfg,
            conns: BTreeMap::new(),
            reconnect: BTreeMap::new(),
            seq: 0,
            next_tick: first,
            out: Outputs::new(),
        }
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    pub fn reconnecting(&self) -> impl Iterator<Item = &PeerId> {
        self.reconnect.keys()
    }

    fn lost(&mut self, now: Millis, peer: PeerId) {
        if self.cfg.reconnect_attempts == 0 || self.reconnect.len() >= self.cfg.reconnect_max_peers {
            return;
        }
        let due = now + backoff_delay(&self.cfg, 0);
        self.reconnect.insert(peer, Reconnect { attempt: 0, due: Some(due) });
    }

    fn on_link(&mut self, now: Millis, ev: LinkEvent) {
        match ev {
            LinkEvent::Up { peer, .. } => {
                self.conns.insert(peer, now);
                self.reconnect.remove(&peer);
            }
            LinkEvent::Down { peer, clean } => {
                // A link closed on purpose is not lost: nothing to reconnect.
                if self.conns.remove(&peer).is_some() && !clean {
                    self.lost(now, peer);
                }
            }
            LinkEvent::DialFailed { peer } => {
                let Some(r) = self.reconnect.get_mut(&peer) else {
                    return;
                };
                if r.due.is_some() {
                    return; // someone else's dial failed; ours is still scheduled
                }
                r.attempt += 1;
                if r.attempt >= self.cfg.reconnect_attempts {
                    self.reconnect.remove(&peer);
                    self.out.push_back(Effect::Event(Event::ReconnectGaveUp { peer }));
                } else {
                    r.due = Some(now + backoff_delay(&self.cfg, r.attempt));
                }
            }
        }
    }

    fn tick(&mut self, now: Millis) {
        let timeout = self.cfg.heartbeat_timeout_ms;
        let expired: Vec<PeerId> =
            self.conns.iter().filter(|(_, heard)| now.saturating_sub(**heard) >= timeout).map(|(p, _)| *p).collect();
        for p in expired {
            self.conns.remove(&p);
            self.out.push_back(Effect::Disconnect(p));
            self.out.push_back(Effect::Event(Event::PeerExpired { peer: p }));
            self.lost(now, p);
        }
        if !self.conns.is_empty() {
            self.seq += 1;
            let to: Vec<PeerId> = self.conns.keys().copied().collect();
            self.out.push_back(Effect::Broadcast { to, msg: Message::Heartbeat { seq: self.seq } });
        }
    }
}

impl Core for HealthCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Link(ev) => self.on_link(now, ev),
            Input::Heartbeat { from, .. } => {
                if let Some(heard) = self.conns.get_mut(&from) {
                    *heard = now;
                }
            }
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        if now >= self.next_tick {
            self.tick(now);
            self.next_tick = now + self.cfg.heartbeat_interval_ms;
        }
        for (peer, r) in self.reconnect.iter_mut() {
            if r.due.is_some_and(|d| d <= now) {
                r.due = None;
                self.out.push_back(Effect::Dial(*peer));
            }
        }
    }

    fn next_timeout(&self) -> Option<Millis> {
        let reconnect = self.reconnect.values().filter_map(|r| r.due).min();
        Some(reconnect.map_or(self.next_tick, |r| r.min(self.next_tick)))
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        debug_assert!(self.reconnect.len() <= self.cfg.reconnect_max_peers, "reconnect set over its bound");
        debug_assert!(self.reconnect.keys().all(|p| !self.conns.contains_key(p)), "reconnecting a live connection");
        debug_assert!(self.reconnect.values().all(|r| r.attempt < self.cfg.reconnect_attempts), "attempts over limit");
    }
}
