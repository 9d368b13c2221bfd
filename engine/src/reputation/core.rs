//! The reputation core: one [`Record`] per peer id, fed link changes, request outcomes and
//! offences; it says when a peer's [`Standing`] changes (at the input that changes it, or at the
//! instant decay carries the score across a threshold) and hands changed records out for
//! storage in rate-limited batches. Other cores read it through [`ReputationCore::score`],
//! [`ReputationCore::standing`] and [`ReputationCore::rank`].

use super::persist::StoredRecord;
use super::score::{OffenceKind, Outcome, Record, Standing};
use crate::config::ReputationConfig;
use crate::core::{Core, LinkEvent, Outputs};
use crate::time::Millis;
use crate::types::PeerId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Link(LinkEvent),
    /// A request to `peer` ended.
    Request {
        peer: PeerId,
        outcome: Outcome,
    },
    Offence {
        peer: PeerId,
        kind: OffenceKind,
    },
    /// Records read back from storage at start (merged into any already kept).
    Restore(Vec<StoredRecord>),
    /// `accuser` says it graylisted these peers on its own evidence (a signed rumour).
    Warned {
        accuser: PeerId,
        accused: Vec<PeerId>,
    },
}

/// Accusers remembered per peer (the quorum, `hearsay_quorum`, is 2: more only refresh the
/// count).
pub const MAX_ACCUSERS: usize = 8;

/// A write for the storage the wiring owns (keyed by peer id).
#[derive(Clone, Debug, PartialEq)]
pub enum PersistOp {
    /// Store this encoded [`StoredRecord`].
    Put { peer: PeerId, bytes: Vec<u8> },
    /// The record was forgotten (the bound): delete it.
    Delete { peer: PeerId },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A peer's standing changed (only on a change of class), with the score that put it there.
    Standing { peer: PeerId, standing: Standing, score: f64 },
    /// One batch of writes, applied atomically by the wiring.
    Persist(Vec<PersistOp>),
    /// `peer` became shunned, or stopped being (see [`crate::reputation::TrustView::allows_link`]).
    Shunned { peer: PeerId, shunned: bool },
    /// This node graylisted `peer` on its own evidence (hearsay left out): warn the others;
    /// `spread`: push it through the swarm now (fewer than a quorum have warned of it yet),
    /// else only tell new links.
    Warn { peer: PeerId, spread: bool },
}

/// Which records go first when the bound is reached: nearest neutral by standing, then least
/// recently seen, then by id. A graylisted record goes last: forgetting it would wash it.
type EvictKey = (u8, Millis, PeerId);

fn evict_rank(s: Standing) -> u8 {
    match s {
        Standing::Acceptable => 0,
        Standing::Trusted => 1,
        Standing::NoGossip => 2,
        Standing::NoPublish => 3,
        Standing::Graylisted => 4,
    }
}

#[derive(Clone, Copy, Debug)]
struct Accuser {
    peer: PeerId,
    at: Millis,
    counted: bool,
}

struct Entry {
    record: Record,
    /// The standing last reported (Acceptable, the neutral band, until a change is reported).
    standing: Standing,
    /// When decay alone will change the standing, if it will.
    recheck: Option<Millis>,
    /// Who warned of the peer, when, and whether it is counted yet (each counts once per
    /// hearsay half-life; not while the peer serves this node well, but as soon as it stops).
    accusers: Vec<Accuser>,
    /// Graylisted on this node's own evidence and said so ([`Output::Warn`]), until the
    /// standing lifts.
    vouched: bool,
    /// Below the publish threshold with at least half the hearsay weight behind it (as last
    /// reported; looked at again at each input and each change of standing).
    shunned: bool,
    /// When this peer last warned of one that serves this node well: its warnings are not
    /// heard here for a hearsay half-life after.
    contradicted: Option<Millis>,
}

impl Entry {
    fn evict_key(&self, peer: PeerId) -> EvictKey {
        (evict_rank(self.standing), self.record.last_seen, peer)
    }
}

pub struct ReputationCore {
    cfg: ReputationConfig,
    /// Unix time (ms) of this node's zero: stored records carry Unix times.
    unix_epoch_ms: u64,
    peers: BTreeMap<PeerId, Entry>,
    by_eviction: BTreeSet<EvictKey>,
    rechecks: BTreeSet<(Millis, PeerId)>,
    /// Records changed since the last batch, and records forgotten.
    dirty: BTreeSet<PeerId>,
    deleted: BTreeSet<PeerId>,
    persist_at: Option<Millis>,
    /// False where nothing is stored (simulations): no batches are made.
    persists: bool,
    out: Outputs<Output>,
}

impl ReputationCore {
    pub fn new(cfg: ReputationConfig, unix_epoch_ms: u64) -> Self {
        ReputationCore {
            cfg,
            unix_epoch_ms,
            peers: BTreeMap::new(),
            by_eviction: BTreeSet::new(),
            rechecks: BTreeSet::new(),
            dirty: BTreeSet::new(),
            deleted: BTreeSet::new(),
            persist_at: None,
            persists: true,
            out: Outputs::new(),
        }
    }

    /// A core whose records are never handed out for storage (a node without a store).
    pub fn without_persistence(mut self) -> Self {
        self.persists = false;
        self.dirty.clear();
        self.deleted.clear();
        self.persist_at = None;
        self
    }

    pub fn config(&self) -> &ReputationConfig {
        &self.cfg
    }

    /// The peer's score at `now`; 0 (neutral) for a peer without a record.
    pub fn score(&self, peer: &PeerId, now: Millis) -> f64 {
        self.peers.get(peer).map_or(0.0, |e| e.record.score(now, &self.cfg))
    }

    pub fn standing(&self, peer: &PeerId, now: Millis) -> Standing {
        Standing::of(self.score(peer, now), &self.cfg)
    }

    pub fn record(&self, peer: &PeerId) -> Option<&Record> {
        self.peers.get(peer).map(|e| &e.record)
    }

    /// The peers with a record, in id order.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.keys()
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// `peers` best first for selection: by [`Record::selection_weight`] (score, RTT, served
    /// ratio), ties by peer id. A peer without a record weighs 0.
    pub fn rank(&self, peers: &[PeerId], now: Millis) -> Vec<PeerId> {
        let mut weighed: Vec<(f64, PeerId)> = peers
            .iter()
            .map(|p| (self.peers.get(p).map_or(0.0, |e| e.record.selection_weight(now, &self.cfg)), *p))
            .collect();
        weighed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        weighed.into_iter().map(|(_, p)| p).collect()
    }

    /// The entry for `peer`, made (forgetting one if at the bound) if there is none.
    fn entry(&mut self, peer: PeerId, now: Millis) -> &mut Entry {
        if !self.peers.contains_key(&peer) {
            if self.peers.len() >= self.cfg.max_peers_scored {
                self.evict(now);
            }
            let e = Entry {
                record: Record::new(now),
                standing: Standing::Acceptable,
                recheck: None,
                accusers: Vec::new(),
                vouched: false,
                shunned: false,
                contradicted: None,
            };
            self.by_eviction.insert(e.evict_key(peer));
            self.peers.insert(peer, e);
            self.deleted.remove(&peer);
        }
        self.peers.get_mut(&peer).expect("inserted above")
    }

    fn evict(&mut self, now: Millis) {
        let Some(&(_, _, peer)) = self.by_eviction.first() else { return };
        let e = self.peers.remove(&peer).expect("the index follows the map");
        self.by_eviction.remove(&e.evict_key(peer));
        if let Some(t) = e.recheck {
            self.rechecks.remove(&(t, peer));
        }
        if e.standing != Standing::Acceptable {
            self.out.push_back(Output::Standing { peer, standing: Standing::Acceptable, score: 0.0 });
        }
        if e.shunned {
            self.out.push_back(Output::Shunned { peer, shunned: false });
        }
        self.dirty.remove(&peer);
        if self.persists {
            self.deleted.insert(peer);
        }
        self.schedule_persist(now);
    }

    /// Apply `f` to the peer's record (`seen`: an input about the peer itself, not a restore),
    /// then report a change of standing and reschedule.
    fn update(&mut self, peer: PeerId, now: Millis, seen: bool, f: impl FnOnce(&mut Record, &ReputationConfig)) {
        let cfg = self.cfg.clone();
        let e = self.entry(peer, now);
        let old = e.evict_key(peer);
        f(&mut e.record, &cfg);
        if seen {
            e.record.last_seen = e.record.last_seen.max(now);
        }
        self.by_eviction.remove(&old);
        if self.persists {
            self.dirty.insert(peer);
        }
        self.schedule_persist(now);
        self.refresh(peer, now);
    }

    /// Compare the standing with the one reported; report a change; find the next one.
    fn refresh(&mut self, peer: PeerId, now: Millis) {
        let Some(e) = self.peers.get_mut(&peer) else { return };
        self.by_eviction.remove(&e.evict_key(peer));
        if let Some(t) = e.recheck.take() {
            self.rechecks.remove(&(t, peer));
        }
        let score = e.record.score(now, &self.cfg);
        let standing = Standing::of(score, &self.cfg);
        if standing != e.standing {
            e.standing = standing;
            self.out.push_back(Output::Standing { peer, standing, score });
        }
        let shunned = !standing.may_publish() && e.record.at(now, &self.cfg).hearsay(&self.cfg) >= 0.5;
        if shunned != e.shunned {
            if shunned {
                let accusers = || e.accusers.iter().map(|a| a.peer.short()).collect::<Vec<_>>();
                tracing::debug!(peer = %peer.short(), accusers = ?accusers(), score, "shunned on warnings");
            }
            e.shunned = shunned;
            self.out.push_back(Output::Shunned { peer, shunned });
        }
        if !standing.is_graylisted() {
            e.vouched = false;
        } else if !e.vouched && e.record.own_verdict(now, &self.cfg) < self.cfg.graylist_threshold {
            e.vouched = true;
            let window = self.cfg.hearsay_half_life_ms;
            let heard = e.accusers.iter().filter(|a| now.saturating_sub(a.at) < window).count();
            let spread = (heard as f64) < self.cfg.hearsay_quorum;
            self.out.push_back(Output::Warn { peer, spread });
        }
        e.recheck = e.record.next_change(now, &self.cfg);
        if let Some(t) = e.recheck {
            self.rechecks.insert((t, peer));
        }
        self.by_eviction.insert(e.evict_key(peer));
    }

    /// Take a warning only from an accuser this node knows first-hand for good (a positive
    /// score on its own evidence: time linked, requests served) and that nobody has warned of,
    /// once per accuser and half-life; it counts once the peer does not serve this node well (at
    /// once, or later). An accuser that warns of a peer serving this node well is *contradicted*:
    /// for a half-life its warnings of other peers are not heard (a slanderer names every peer
    /// it links to, this node's good peers among them; at 1,000 nodes, pairs of sybil ids shunned
    /// 2% of honest peers before). Strangers' and accused accusers' warnings are not heard: at 1,000 nodes
    /// nearly every honest peer shunned by mistake had only adversaries among its accusers (a
    /// peer the swarm cuts off finds honest nodes refusing it, and warns of them in turn).
    /// Hearing only accusers scored at least 2 (about 15 minutes linked, or a request served) or
    /// that served this node cut those mistakes from 1.7% to 0.2% of honest peers, but hearsay
    /// then came too rarely: adversaries kept 4% of honest links (eleventh session).
    fn warned(&mut self, now: Millis, accuser: PeerId, accused: Vec<PeerId>) {
        let window = self.cfg.hearsay_half_life_ms;
        let Some(known) = self.peers.get(&accuser) else { return };
        let accused_itself = known.accusers.iter().any(|a| now.saturating_sub(a.at) < window);
        if accused_itself || known.record.first_hand_score(now, &self.cfg) <= 0.0 {
            return;
        }
        let was_contradicted = known.contradicted.is_some_and(|t| now.saturating_sub(t) < window);
        let cfg = &self.cfg;
        let good: Vec<bool> =
            accused.iter().map(|p| self.peers.get(p).is_some_and(|e| e.record.at(now, cfg).serves_well(cfg))).collect();
        let contradicted = was_contradicted || good.contains(&true);
        if good.contains(&true) {
            if let Some(e) = self.peers.get_mut(&accuser) {
                e.contradicted = Some(now);
            }
        }
        for (peer, good) in accused.into_iter().zip(good) {
            // A contradicted accuser is heard only of the peers that serve this node well,
            // which its warnings do not touch unless they stop.
            if peer == accuser || (contradicted && !good) {
                continue;
            }
            let e = self.entry(peer, now);
            e.accusers.retain(|a| now.saturating_sub(a.at) < window);
            if e.accusers.len() >= MAX_ACCUSERS || e.accusers.iter().any(|a| a.peer == accuser) {
                continue;
            }
            e.accusers.push(Accuser { peer: accuser, at: now, counted: false });
            self.count_hearsay(peer, now);
        }
    }

    /// Count the warnings about `peer` not counted yet, unless it serves this node well.
    fn count_hearsay(&mut self, peer: PeerId, now: Millis) {
        let Some(e) = self.peers.get_mut(&peer) else { return };
        if e.accusers.iter().all(|a| a.counted) || e.record.at(now, &self.cfg).serves_well(&self.cfg) {
            return;
        }
        let mut n = 0;
        for a in e.accusers.iter_mut().filter(|a| !a.counted) {
            a.counted = true;
            n += 1;
        }
        self.update(peer, now, false, |r, cfg| {
            for _ in 0..n {
                r.warned(now, cfg);
            }
        });
    }

    fn schedule_persist(&mut self, now: Millis) {
        if self.persists && self.persist_at.is_none() {
            self.persist_at = Some(now.saturating_add(self.cfg.persist_interval_ms));
        }
    }

    /// One batch: deletions first, then changed records, at most `max_persist_batch` in all; the
    /// rest waits for the next interval.
    fn persist(&mut self, now: Millis) {
        let mut ops = Vec::new();
        while ops.len() < self.cfg.max_persist_batch {
            let Some(peer) = self.deleted.pop_first() else { break };
            ops.push(PersistOp::Delete { peer });
        }
        while ops.len() < self.cfg.max_persist_batch {
            let Some(peer) = self.dirty.pop_first() else { break };
            if let Some(e) = self.peers.get(&peer) {
                let stored = StoredRecord::new(peer, &e.record, now, self.unix_epoch_ms, &self.cfg);
                ops.push(PersistOp::Put { peer, bytes: stored.encode() });
            }
        }
        self.persist_at = None;
        if !ops.is_empty() {
            self.out.push_back(Output::Persist(ops));
        }
        if !self.dirty.is_empty() || !self.deleted.is_empty() {
            self.schedule_persist(now);
        }
    }

    fn restore(&mut self, now: Millis, stored: Vec<StoredRecord>) {
        for s in stored {
            let restored = s.to_record(now, self.unix_epoch_ms, &self.cfg);
            let fresh = !self.peers.contains_key(&s.peer);
            self.update(s.peer, now, false, |r, cfg| {
                if fresh {
                    *r = restored;
                } else {
                    r.absorb(&restored, now, cfg);
                }
            });
            if fresh {
                // Already stored as it is.
                self.dirty.remove(&s.peer);
            }
        }
    }
}

impl Record {
    /// Add the counts of a disjoint history (a stored record restored after events arrived).
    fn absorb(&mut self, other: &Record, now: Millis, cfg: &ReputationConfig) {
        self.advance(now, cfg);
        let o = other.at(now, cfg);
        self.last_seen = self.last_seen.max(o.last_seen);
        self.sessions += o.sessions;
        self.counts.linked_ms += o.counts.linked_ms;
        self.counts.churn += o.counts.churn;
        self.counts.served += o.counts.served;
        self.counts.failed += o.counts.failed;
        self.counts.withheld += o.counts.withheld;
        let n = self.counts.rtt_samples + o.counts.rtt_samples;
        self.counts.rtt_ewma_ms = match (self.counts.rtt_ewma_ms, o.counts.rtt_ewma_ms) {
            (Some(a), Some(b)) if n > 0.0 => Some((a * self.counts.rtt_samples + b * o.counts.rtt_samples) / n),
            (a, b) => a.or(b),
        };
        self.counts.rtt_samples = n;
        self.counts.malice += o.counts.malice;
        self.counts.slandered += o.counts.slandered;
        self.counts.violation += o.counts.violation;
        self.counts.noise += o.counts.noise;
        self.counts.warned += o.counts.warned;
    }
}

impl Core for ReputationCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Link(LinkEvent::Up { peer, .. }) => self.update(peer, now, true, |r, cfg| r.link_up(now, cfg)),
            Input::Link(LinkEvent::Down { peer, clean }) => {
                self.update(peer, now, true, |r, cfg| r.link_down(now, clean, cfg))
            }
            // A dial that failed says more about NATs and paths than about the peer.
            Input::Link(LinkEvent::DialFailed { .. }) => {}
            Input::Request { peer, outcome } => {
                self.update(peer, now, true, |r, cfg| r.request(now, outcome, cfg));
                self.count_hearsay(peer, now);
            }
            Input::Offence { peer, kind } => {
                self.update(peer, now, true, |r, cfg| r.offence(now, kind, cfg));
                self.count_hearsay(peer, now);
            }
            Input::Restore(stored) => self.restore(now, stored),
            Input::Warned { accuser, accused } => self.warned(now, accuser, accused),
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        while let Some(&(t, peer)) = self.rechecks.first() {
            if t > now {
                break;
            }
            self.refresh(peer, now);
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist(now);
        }
    }

    fn next_timeout(&self) -> Option<Millis> {
        let recheck = self.rechecks.first().map(|&(t, _)| t);
        match (recheck, self.persist_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        debug_assert!(self.peers.len() <= self.cfg.max_peers_scored, "record bound exceeded");
        debug_assert!(self.peers.values().all(|e| e.accusers.len() <= MAX_ACCUSERS), "accusers over their bound");
        debug_assert_eq!(self.by_eviction.len(), self.peers.len(), "eviction index drifted");
        debug_assert_eq!(
            self.rechecks.len(),
            self.peers.values().filter(|e| e.recheck.is_some()).count(),
            "recheck index drifted"
        );
        debug_assert!(self.dirty.iter().all(|p| self.peers.contains_key(p)), "dirty record not kept");
        debug_assert!(self.deleted.iter().all(|p| !self.peers.contains_key(p)), "deleted record still kept");
    }
}
