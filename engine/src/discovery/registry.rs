//! The bootstrap registry: the peers this node knows, with dial success/failure counts and a
//! reliability score (success rate + recency). Bounded; the lowest-scoring peer that is not in use
//! makes room for a new one.

use crate::time::Millis;
use crate::types::PeerId;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    pub successes: u32,
    pub failures: u32,
    /// Last time this node was connected to the peer (or learned it was alive first-hand).
    pub last_seen: Option<Millis>,
    pub last_failure: Option<Millis>,
}

impl Entry {
    /// Reliability in [0, 2]: Laplace-smoothed success rate (a stranger scores 0.5) plus a
    /// recency term halving every `half_life_ms` since the peer was last seen.
    pub fn score(&self, now: Millis, half_life_ms: u64) -> f64 {
        let s = f64::from(self.successes);
        let f = f64::from(self.failures);
        let rate = (s + 1.0) / (s + f + 2.0);
        let recency = match self.last_seen {
            Some(t) => 0.5f64.powf(now.saturating_sub(t) as f64 / half_life_ms as f64),
            None => 0.0,
        };
        rate + recency
    }

    /// Linked within `within_ms` and no dial failed since: alive as far as this node knows.
    pub fn fresh(&self, now: Millis, within_ms: u64) -> bool {
        self.last_seen.is_some_and(|s| now.saturating_sub(s) < within_ms && self.last_failure.is_none_or(|f| f < s))
    }
}

/// Known peers, keyed by id (BTreeMap: iteration order is part of determinism).
#[derive(Clone, Debug)]
pub struct Registry {
    entries: BTreeMap<PeerId, Entry>,
    max_peers: usize,
    half_life_ms: u64,
}

impl Registry {
    pub fn new(max_peers: usize, half_life_ms: u64) -> Self {
        assert!(max_peers >= 1);
        Registry { entries: BTreeMap::new(), max_peers, half_life_ms }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, peer: &PeerId) -> Option<&Entry> {
        self.entries.get(peer)
    }

    pub fn contains(&self, peer: &PeerId) -> bool {
        self.entries.contains_key(peer)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &Entry)> {
        self.entries.iter()
    }

    /// Add a peer heard of second-hand. Returns whether it is now known.
    pub fn learn(&mut self, peer: PeerId, now: Millis, in_use: impl Fn(&PeerId) -> bool) -> bool {
        self.learn_many(&[peer], now, in_use);
        self.entries.contains_key(&peer)
    }

    /// Add peers heard of second-hand; returns how many were new. Free room is used first; when
    /// full, a newcomer may replace a peer that is not in use and scores below a stranger (0.5),
    /// worst first. A full registry of peers at least as good as a stranger keeps its peers.
    /// The registry is scored once per batch, not once per peer: gossip hands over hundreds.
    pub fn learn_many(&mut self, peers: &[PeerId], now: Millis, in_use: impl Fn(&PeerId) -> bool) -> usize {
        let free = self.max_peers.saturating_sub(self.entries.len());
        // Room first: a full registry of good peers (the usual state) costs one scoring pass.
        let mut victims: Vec<(f64, PeerId)> = Vec::new();
        if free < peers.len() {
            let stranger = Entry::default().score(now, self.half_life_ms);
            victims = self
                .entries
                .iter()
                .map(|(p, e)| (e.score(now, self.half_life_ms), *p))
                .filter(|(s, p)| *s < stranger && !in_use(p))
                .collect();
            if free == 0 && victims.is_empty() {
                return 0;
            }
            victims.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        let mut fresh: Vec<PeerId> = peers.iter().copied().filter(|p| !self.entries.contains_key(p)).collect();
        fresh.sort_unstable();
        fresh.dedup();
        let added = fresh.len().min(free + victims.len());
        let mut fresh = fresh.into_iter();
        for p in fresh.by_ref().take(free) {
            self.entries.insert(p, Entry::default());
        }
        for ((_, victim), p) in victims.into_iter().zip(fresh) {
            self.entries.remove(&victim);
            self.entries.insert(p, Entry::default());
        }
        added
    }

    /// Put back what a previous run of this node knew of a peer (its counts; recency starts
    /// over). Ignored once the registry is full: restored peers never evict live knowledge.
    pub fn restore(&mut self, peer: PeerId, successes: u32, failures: u32) {
        if self.entries.len() < self.max_peers || self.entries.contains_key(&peer) {
            let e = self.entries.entry(peer).or_default();
            e.successes = successes;
            e.failures = failures;
        }
    }

    /// Record a first-hand sighting (connected, or connection closed after being up).
    pub fn seen(&mut self, peer: PeerId, now: Millis, in_use: impl Fn(&PeerId) -> bool) {
        self.force_insert(peer, now, in_use);
        if let Some(e) = self.entries.get_mut(&peer) {
            e.last_seen = Some(now);
        }
    }

    pub fn record_success(&mut self, peer: PeerId, now: Millis, in_use: impl Fn(&PeerId) -> bool) {
        self.seen(peer, now, in_use);
        if let Some(e) = self.entries.get_mut(&peer) {
            e.successes = e.successes.saturating_add(1);
        }
    }

    pub fn record_failure(&mut self, peer: &PeerId, now: Millis) {
        if let Some(e) = self.entries.get_mut(peer) {
            e.failures = e.failures.saturating_add(1);
            e.last_failure = Some(now);
        }
    }

    /// Insert even when full (a peer we are actually connected to must be remembered): evict the
    /// worst peer not in use, whatever its score.
    fn force_insert(&mut self, peer: PeerId, now: Millis, in_use: impl Fn(&PeerId) -> bool) {
        if self.entries.contains_key(&peer) {
            return;
        }
        if self.entries.len() >= self.max_peers {
            match self.worst(now, &in_use) {
                Some((victim, _)) => {
                    self.entries.remove(&victim);
                }
                None => return,
            }
        }
        self.entries.insert(peer, Entry::default());
    }

    /// Lowest score among peers not in use; ties go to the smallest id (deterministic).
    fn worst(&self, now: Millis, in_use: &impl Fn(&PeerId) -> bool) -> Option<(PeerId, f64)> {
        let mut worst: Option<(PeerId, f64)> = None;
        for (p, e) in &self.entries {
            if in_use(p) {
                continue;
            }
            let s = e.score(now, self.half_life_ms);
            if worst.is_none_or(|(_, w)| s < w) {
                worst = Some((*p, s));
            }
        }
        worst
    }

    /// Peers sorted best first (score descending, id ascending on ties).
    pub fn ranked(&self, now: Millis) -> Vec<(PeerId, f64)> {
        let mut v: Vec<(PeerId, f64)> =
            self.entries.iter().map(|(p, e)| (*p, e.score(now, self.half_life_ms))).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pid(i: u8) -> PeerId {
        PeerId([i; 32])
    }

    #[derive(Clone, Debug)]
    enum Op {
        Learn(u8),
        Success(u8),
        Failure(u8),
        Advance(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u8>().prop_map(Op::Learn),
            any::<u8>().prop_map(Op::Success),
            any::<u8>().prop_map(Op::Failure),
            (0u32..3_600_000).prop_map(Op::Advance),
        ]
    }

    proptest! {
        #[test]
        fn score_is_bounded_and_monotone(s in 0u32..1000, f in 0u32..1000, age in 0u64..10_000_000) {
            let e = Entry { successes: s, failures: f, last_seen: Some(0), last_failure: None };
            let sc = e.score(age, 600_000);
            prop_assert!((0.0..=2.0).contains(&sc));
            // One more success never lowers the score; one more failure never raises it.
            let better = Entry { successes: s + 1, ..e.clone() };
            let worse = Entry { failures: f + 1, ..e.clone() };
            prop_assert!(better.score(age, 600_000) >= sc);
            prop_assert!(worse.score(age, 600_000) <= sc);
            // Older sightings never score higher.
            prop_assert!(e.score(age + 1000, 600_000) <= sc);
        }

        #[test]
        fn registry_stays_bounded_and_keeps_peers_in_use(ops in prop::collection::vec(op(), 0..400), cap in 1usize..20) {
            let mut r = Registry::new(cap, 600_000);
            let mut now = 0u64;
            let pinned = pid(0);
            r.record_success(pinned, now, |_| false);
            for o in ops {
                let in_use = |p: &PeerId| *p == pinned;
                match o {
                    Op::Learn(i) => { r.learn(pid(i), now, in_use); }
                    Op::Success(i) => r.record_success(pid(i), now, in_use),
                    Op::Failure(i) => r.record_failure(&pid(i), now),
                    Op::Advance(d) => now += u64::from(d),
                }
                prop_assert!(r.len() <= cap);
                prop_assert!(r.contains(&pinned), "a peer in use was evicted");
            }
            let ranked = r.ranked(now);
            prop_assert!(ranked.windows(2).all(|w| w[0].1 >= w[1].1));
        }
    }

    proptest! {
        #[test]
        fn batch_learning_respects_bound_and_keeps_good_peers(
            good in prop::collection::vec(0u8..60, 0..40), bad in prop::collection::vec(60u8..120, 0..40),
            batch in prop::collection::vec(120u8..255, 0..80), cap in 1usize..50,
        ) {
            let mut r = Registry::new(cap, 600_000);
            for g in &good { r.record_success(pid(*g), 0, |_| false); }
            for b in &bad { r.learn(pid(*b), 0, |_| false); r.record_failure(&pid(*b), 0); }
            let good_before: Vec<PeerId> = r.iter().filter(|(_, e)| e.successes > 0).map(|(p, _)| *p).collect();
            let batch: Vec<PeerId> = batch.into_iter().map(pid).collect();
            let added = r.learn_many(&batch, 1, |_| false);
            prop_assert!(r.len() <= cap);
            prop_assert!(good_before.iter().all(|p| r.contains(p)), "a good peer was evicted for a stranger");
            let distinct: std::collections::BTreeSet<_> = batch.iter().collect();
            prop_assert!(added <= distinct.len());
            prop_assert_eq!(batch.iter().filter(|p| r.contains(p)).collect::<std::collections::BTreeSet<_>>().len(), added);
        }
    }

    #[test]
    fn reliable_recent_peer_outranks_failing_one() {
        let mut r = Registry::new(10, 600_000);
        r.record_success(pid(1), 0, |_| false);
        r.learn(pid(2), 0, |_| false);
        r.record_failure(&pid(2), 0);
        r.record_failure(&pid(2), 0);
        let ranked = r.ranked(1000);
        assert_eq!(ranked[0].0, pid(1));
        assert_eq!(ranked[1].0, pid(2));
    }

    #[test]
    fn full_registry_replaces_failing_peer_but_not_good_ones() {
        let mut r = Registry::new(2, 600_000);
        r.record_success(pid(1), 0, |_| false);
        r.learn(pid(2), 0, |_| false);
        r.record_failure(&pid(2), 0);
        assert!(r.learn(pid(3), 0, |_| false), "failing peer should make room");
        assert!(!r.contains(&pid(2)));
        assert!(!r.learn(pid(4), 0, |_| false), "good peers are kept");
    }
}
