//! Collects what simulated nodes report through the engine's observer port: gossip rumour
//! coverage, registry sizes, bad frames, expiries. Measurement only; nothing here feeds back into
//! the nodes.

use rustc_hash::{FxHashMap, FxHashSet};
use std::cell::RefCell;
use swarm_engine::observer::{Event, Observer};
use swarm_engine::PeerId;

#[derive(Clone, Copy, Debug, Default)]
struct RumorStat {
    origin_ms: u64,
    live_at_origin: usize,
    receivers: usize,
}

struct State {
    epoch: tokio::time::Instant,
    live: usize,
    slot_of: FxHashMap<PeerId, usize>,
    known: Vec<usize>,
    /// Keyed by (origin, seq); looked up only, summarised in id order at the end.
    rumors: FxHashMap<(PeerId, u64), RumorStat>,
    bad_frames: u64,
    expired: u64,
    reconnect_gave_up: u64,
    authenticated: u64,
    offences: u64,
    /// Peers the scenario made adversarial (ground truth the nodes do not have).
    adversaries: FxHashSet<PeerId>,
    /// Envelopes (accepted, rejected) by sender: [honest, adversarial].
    envelopes: [(u64, u64); 2],
}

/// The simulator's observer; one per run, shared by every node.
pub struct Collector {
    st: RefCell<State>,
}

impl Collector {
    /// `epoch`: the run's time zero (virtual time under the paused runtime).
    pub fn new(epoch: tokio::time::Instant) -> Self {
        let st = State {
            epoch,
            live: 0,
            slot_of: FxHashMap::default(),
            known: Vec::new(),
            rumors: FxHashMap::default(),
            bad_frames: 0,
            expired: 0,
            reconnect_gave_up: 0,
            authenticated: 0,
            offences: 0,
            adversaries: FxHashSet::default(),
            envelopes: [(0, 0); 2],
        };
        Collector { st: RefCell::new(st) }
    }

    /// Live population, used as the denominator of rumour coverage.
    pub fn set_live(&self, live: usize) {
        self.st.borrow_mut().live = live;
    }

    pub fn register(&self, peer: PeerId, slot: usize) {
        let mut s = self.st.borrow_mut();
        s.slot_of.insert(peer, slot);
        if s.known.len() <= slot {
            s.known.resize(slot + 1, 0);
        }
        s.known[slot] = 0;
    }

    pub fn forget(&self, peer: &PeerId) {
        self.st.borrow_mut().slot_of.remove(peer);
    }

    /// Mean registry size over the given (live) slots.
    pub fn known_peers_mean(&self, live_slots: &[usize]) -> f64 {
        let s = self.st.borrow();
        if live_slots.is_empty() {
            return 0.0;
        }
        let sum: usize = live_slots.iter().map(|i| s.known.get(*i).copied().unwrap_or(0)).sum();
        sum as f64 / live_slots.len() as f64
    }

    /// Mean share of the other live nodes a rumour reached, over rumours originated no later than
    /// `until_ms` (later ones may still be travelling).
    pub fn gossip_coverage(&self, until_ms: u64) -> f64 {
        let s = self.st.borrow();
        let mut shares: Vec<f64> = s
            .rumors
            .values()
            .filter(|r| r.origin_ms <= until_ms && r.live_at_origin > 1)
            .map(|r| (r.receivers as f64 / (r.live_at_origin - 1) as f64).min(1.0))
            .collect();
        if shares.is_empty() {
            return 0.0;
        }
        // Sum in a fixed order so the float result does not depend on hash order.
        shares.sort_by(f64::total_cmp);
        shares.iter().sum::<f64>() / shares.len() as f64
    }

    pub fn bad_frames(&self) -> u64 {
        self.st.borrow().bad_frames
    }

    pub fn expired(&self) -> u64 {
        self.st.borrow().expired
    }

    pub fn mark_adversary(&self, peer: PeerId) {
        self.st.borrow_mut().adversaries.insert(peer);
    }

    /// Adversarial nodes started over the run.
    pub fn adversaries(&self) -> usize {
        self.st.borrow().adversaries.len()
    }

    /// Envelopes (accepted, rejected) received from honest and from adversarial senders.
    pub fn envelopes(&self) -> [(u64, u64); 2] {
        self.st.borrow().envelopes
    }

    /// Links whose peer proved its identity, and offences reported, over the run.
    pub fn auth_counts(&self) -> (u64, u64) {
        let s = self.st.borrow();
        (s.authenticated, s.offences)
    }

    pub fn reconnect_gave_up(&self) -> u64 {
        self.st.borrow().reconnect_gave_up
    }
}

impl Observer for Collector {
    fn on_event(&self, node: PeerId, event: Event) {
        let mut s = self.st.borrow_mut();
        match event {
            Event::RumorOriginated { origin, seq } => {
                let origin_ms = tokio::time::Instant::now().saturating_duration_since(s.epoch).as_millis() as u64;
                let stat = RumorStat { origin_ms, live_at_origin: s.live, receivers: 0 };
                s.rumors.insert((origin, seq), stat);
            }
            Event::RumorReceived { origin, seq } => {
                if let Some(r) = s.rumors.get_mut(&(origin, seq)) {
                    r.receivers += 1;
                }
            }
            Event::KnownPeers(n) => {
                if let Some(slot) = s.slot_of.get(&node).copied() {
                    s.known[slot] = n;
                }
            }
            Event::BadFrame { .. } => s.bad_frames += 1,
            Event::PeerExpired { .. } => s.expired += 1,
            Event::ReconnectGaveUp { .. } => s.reconnect_gave_up += 1,
            Event::Authenticated { .. } => s.authenticated += 1,
            Event::Offence { .. } => s.offences += 1,
            Event::EnvelopeAccepted { from, .. } => {
                let bad = s.adversaries.contains(&from);
                s.envelopes[usize::from(bad)].0 += 1;
            }
            Event::EnvelopeRejected { from, .. } => {
                let bad = s.adversaries.contains(&from);
                s.envelopes[usize::from(bad)].1 += 1;
            }
        }
    }
}
