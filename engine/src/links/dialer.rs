//! The dialler, a sub-machine of the connection manager: which peers are to be dialled, the dials
//! in flight (one per peer, bounded, each with the one dial timeout), and each peer's reconnect
//! backoff after failures (delays growing by a multiplier up to a cap; after the last attempt the
//! peer is left alone for a long pause). Deadlines are ordered sets: `next_timeout` reads the
//! earliest entry, it never walks the dials.

use crate::health::backoff_delay;
use crate::time::Millis;
use crate::types::PeerId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialerConfig {
    pub dial_timeout_ms: Millis,
    pub max_pending_dials: usize,
    pub reconnect_attempts: u32,
    pub reconnect_base_ms: Millis,
    pub reconnect_multiplier: u32,
    pub reconnect_max_ms: Millis,
    /// After the last attempt, the peer is not dialled again for this long.
    pub give_up_ms: Millis,
    /// Peers whose failures are remembered at once (the oldest are forgotten first).
    pub max_failed_peers: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Failure {
    count: u32,
    /// Not dialled before this.
    retry_at: Millis,
}

/// What a failed dial means for the peer's next attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Another attempt is allowed at this time.
    RetryAt(Millis),
    /// That was the last attempt: left alone until this time.
    GaveUp(Millis),
}

pub struct Dialer {
    cfg: DialerConfig,
    /// Dials in flight -> deadline.
    in_flight: BTreeMap<PeerId, Millis>,
    deadlines: BTreeSet<(Millis, PeerId)>,
    /// Targets that may be dialled now, in the order they became ready.
    ready: BTreeSet<(u64, PeerId)>,
    ready_seq: BTreeMap<PeerId, u64>,
    next_seq: u64,
    /// Targets waiting out a backoff -> when they become ready.
    waiting: BTreeSet<(Millis, PeerId)>,
    waiting_at: BTreeMap<PeerId, Millis>,
    failures: BTreeMap<PeerId, Failure>,
    /// (retry_at, peer) of every failure record, to forget the stalest first.
    failure_order: BTreeSet<(Millis, PeerId)>,
}

impl Dialer {
    pub fn new(cfg: DialerConfig) -> Self {
        Dialer {
            cfg,
            in_flight: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            ready: BTreeSet::new(),
            ready_seq: BTreeMap::new(),
            next_seq: 0,
            waiting: BTreeSet::new(),
            waiting_at: BTreeMap::new(),
            failures: BTreeMap::new(),
            failure_order: BTreeSet::new(),
        }
    }

    fn cfg(&self) -> &DialerConfig {
        &self.cfg
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_dialing(&self, peer: &PeerId) -> bool {
        self.in_flight.contains_key(peer)
    }

    pub fn dialing(&self) -> impl Iterator<Item = &PeerId> {
        self.in_flight.keys()
    }

    /// Whether the peer is targeted (dialling, ready or waiting).
    pub fn is_target(&self, peer: &PeerId) -> bool {
        self.in_flight.contains_key(peer) || self.ready_seq.contains_key(peer) || self.waiting_at.contains_key(peer)
    }

    /// When the peer may be dialled again (None: now).
    pub fn backoff_until(&self, peer: &PeerId, now: Millis) -> Option<Millis> {
        self.failures.get(peer).map(|f| f.retry_at).filter(|t| *t > now)
    }

    /// The peer should be dialled: at once if its backoff allows, else when it ends.
    pub fn target(&mut self, peer: PeerId, now: Millis) {
        if self.is_target(&peer) {
            return;
        }
        match self.backoff_until(&peer, now) {
            Some(at) => {
                self.waiting.insert((at, peer));
                self.waiting_at.insert(peer, at);
            }
            None => self.make_ready(peer),
        }
    }

    fn make_ready(&mut self, peer: PeerId) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ready.insert((seq, peer));
        self.ready_seq.insert(peer, seq);
    }

    /// No longer to be dialled (a dial already in flight runs to its end).
    pub fn untarget(&mut self, peer: &PeerId) {
        if let Some(seq) = self.ready_seq.remove(peer) {
            self.ready.remove(&(seq, *peer));
        }
        if let Some(at) = self.waiting_at.remove(peer) {
            self.waiting.remove(&(at, *peer));
        }
    }

    /// Dials to start now: ready targets, as far as the bound on dials in flight allows.
    pub fn start(&mut self, now: Millis) -> Vec<PeerId> {
        while let Some(&(at, peer)) = self.waiting.first() {
            if at > now {
                break;
            }
            self.waiting.pop_first();
            self.waiting_at.remove(&peer);
            self.make_ready(peer);
        }
        let mut started = vec![];
        while self.in_flight.len() < self.cfg().max_pending_dials {
            let Some((_, peer)) = self.ready.pop_first() else { break };
            self.ready_seq.remove(&peer);
            let deadline = now + self.cfg().dial_timeout_ms;
            self.in_flight.insert(peer, deadline);
            self.deadlines.insert((deadline, peer));
            started.push(peer);
        }
        started
    }

    /// A link to the peer opened (dialled or not): its failures are forgotten.
    pub fn connected(&mut self, peer: &PeerId) {
        self.end_dial(peer);
        self.untarget(peer);
        if let Some(f) = self.failures.remove(peer) {
            self.failure_order.remove(&(f.retry_at, *peer));
        }
    }

    fn end_dial(&mut self, peer: &PeerId) -> bool {
        match self.in_flight.remove(peer) {
            Some(d) => {
                self.deadlines.remove(&(d, *peer));
                true
            }
            None => false,
        }
    }

    /// A dial to the peer failed (or a link it opened failed its handshake).
    pub fn failed(&mut self, peer: PeerId, now: Millis) -> AfterFailure {
        self.end_dial(&peer);
        self.untarget(&peer);
        let cfg = self.cfg().clone();
        let count = self.failures.get(&peer).map_or(0, |f| f.count) + 1;
        let (retry_at, result) = if count >= cfg.reconnect_attempts {
            let at = now + cfg.give_up_ms;
            (at, AfterFailure::GaveUp(at))
        } else {
            let delay = backoff_delay(cfg.reconnect_base_ms, cfg.reconnect_multiplier, cfg.reconnect_max_ms, count - 1);
            (now + delay, AfterFailure::RetryAt(now + delay))
        };
        if let Some(old) = self.failures.insert(peer, Failure { count, retry_at }) {
            self.failure_order.remove(&(old.retry_at, peer));
        }
        self.failure_order.insert((retry_at, peer));
        while self.failures.len() > cfg.max_failed_peers {
            let Some((_, p)) = self.failure_order.pop_first() else { break };
            self.failures.remove(&p);
        }
        // A peer that gave up starts over after its pause.
        if count >= cfg.reconnect_attempts {
            if let Some(f) = self.failures.get_mut(&peer) {
                f.count = 0;
            }
        }
        result
    }

    /// Do not dial the peer before `until` (it said goodbye), whatever its failures.
    pub fn hold_off(&mut self, peer: PeerId, until: Millis) {
        self.untarget(&peer);
        if let Some(old) = self.failures.insert(peer, Failure { count: 0, retry_at: until }) {
            self.failure_order.remove(&(old.retry_at, peer));
        }
        self.failure_order.insert((until, peer));
        while self.failures.len() > self.cfg.max_failed_peers {
            let Some((_, p)) = self.failure_order.pop_first() else { break };
            self.failures.remove(&p);
        }
    }

    /// Dials whose deadline passed (the caller counts them as failed).
    pub fn timed_out(&mut self, now: Millis) -> Vec<PeerId> {
        let mut late = vec![];
        while let Some(&(d, peer)) = self.deadlines.first() {
            if d > now {
                break;
            }
            self.deadlines.pop_first();
            self.in_flight.remove(&peer);
            late.push(peer);
        }
        late
    }

    /// The earliest dial deadline or backoff end, and whether a dial could start at once.
    pub fn next_timeout(&self) -> Option<Millis> {
        let d = self.deadlines.first().map(|(d, _)| *d);
        let w = self.waiting.first().map(|(w, _)| *w);
        d.into_iter().chain(w).min()
    }

    /// Ready targets waiting only for a free dial slot.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    pub fn check_invariants(&self) {
        debug_assert!(self.in_flight.len() <= self.cfg().max_pending_dials, "too many dials in flight");
        debug_assert_eq!(self.in_flight.len(), self.deadlines.len());
        debug_assert_eq!(self.ready.len(), self.ready_seq.len());
        debug_assert_eq!(self.waiting.len(), self.waiting_at.len());
        debug_assert_eq!(self.failures.len(), self.failure_order.len());
        debug_assert!(self.failures.len() <= self.cfg().max_failed_peers);
        debug_assert!(
            self.ready_seq.keys().all(|p| !self.in_flight.contains_key(p) && !self.waiting_at.contains_key(p)),
            "a target in two states"
        );
    }
}
