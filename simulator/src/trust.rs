//! What reputation did, measured against the scenario's ground truth (which peers are
//! adversaries): how fast honest nodes isolate adversaries, what share of honest nodes' links
//! still end at adversaries, and how many honest peers honest nodes graylisted by mistake.
//! Measurement only.

use rustc_hash::{FxHashMap, FxHashSet};
use swarm_engine::PeerId;

/// Per adversary: the honest nodes that dealt with it (met a failure or an offence of it) ->
/// when they first did, and when they graylisted it (if they did).
#[derive(Default)]
pub struct Trust {
    /// Peers the scenario made adversarial (ground truth the nodes do not have), by kind.
    kinds: FxHashMap<PeerId, &'static str>,
    /// Of those, the ones that sign wrongly (`adversary.invalid_signatures`).
    forgers: FxHashSet<PeerId>,
    dealt: FxHashMap<PeerId, FxHashMap<PeerId, (u64, Option<u64>)>>,
    /// Honest peers graylisted by at least one honest node.
    false_positives: FxHashSet<PeerId>,
}

/// The figures, for the report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrustSummary {
    /// Adversaries some honest node dealt with.
    pub dealt: usize,
    /// ...of which 90% of the honest nodes that dealt with it (and were still up, or had
    /// graylisted it before they left) graylisted it.
    pub isolated: usize,
    /// Time from an isolated adversary's first failure or offence seen by an honest node until
    /// that 90% (s), sorted.
    pub isolation_times_s: Vec<f64>,
    /// Per honest node and adversary it graylisted: time from its own first failure or offence
    /// of the adversary to its graylisting (s), sorted. Isolation also waits for nodes that meet
    /// the adversary late; this is how fast one node decides.
    pub detection_times_s: Vec<f64>,
    /// Honest peers graylisted by at least one honest node.
    pub false_positives: usize,
}

/// Open links: node -> peer -> opened at (ms), as the collector keeps them.
pub type OpenLinks = FxHashMap<PeerId, FxHashMap<PeerId, u64>>;

impl Trust {
    pub fn mark(&mut self, peer: PeerId, kind: &'static str, forger: bool) {
        self.kinds.insert(peer, kind);
        if forger {
            self.forgers.insert(peer);
        }
    }

    pub fn is_adversary(&self, peer: &PeerId) -> bool {
        self.kinds.contains_key(peer)
    }

    /// The adversary kind `peer` was started as, if any.
    pub fn kind(&self, peer: &PeerId) -> Option<&'static str> {
        self.kinds.get(peer).copied()
    }

    pub fn is_forger(&self, peer: &PeerId) -> bool {
        self.forgers.contains(peer)
    }

    /// Adversaries started over the run.
    pub fn adversaries(&self) -> usize {
        self.kinds.len()
    }

    /// `node` met a failure or offence of `peer` at `now_ms` (kept for honest nodes meeting
    /// adversaries only).
    pub fn dealt(&mut self, node: PeerId, peer: PeerId, now_ms: u64) {
        if self.is_adversary(&peer) && !self.is_adversary(&node) {
            self.dealt.entry(peer).or_default().entry(node).or_insert((now_ms, None));
        }
    }

    /// `node` graylisted `peer` (counted for honest nodes only).
    pub fn graylisted(&mut self, node: PeerId, peer: PeerId, now_ms: u64) {
        if self.is_adversary(&node) {
            return;
        }
        if !self.is_adversary(&peer) {
            self.false_positives.insert(peer);
            return;
        }
        let e = self.dealt.entry(peer).or_default().entry(node).or_insert((now_ms, None));
        e.1.get_or_insert(now_ms);
    }

    /// Share of honest nodes' open links that end at adversaries (None without adversaries or
    /// links).
    pub fn link_share(&self, open: &OpenLinks) -> Option<f64> {
        if self.kinds.is_empty() {
            return None;
        }
        let (mut all, mut bad) = (0u64, 0u64);
        for (_, peers) in open.iter().filter(|(n, _)| !self.is_adversary(n)) {
            all += peers.len() as u64;
            bad += peers.keys().filter(|p| self.is_adversary(p)).count() as u64;
        }
        (all > 0).then(|| bad as f64 / all as f64)
    }

    /// Per adversary kind, in name order: (kind, live adversaries, honest nodes' links to them).
    pub fn links_by_kind(&self, open: &OpenLinks, alive: impl Fn(&PeerId) -> bool) -> Vec<(&'static str, usize, u64)> {
        let mut by: std::collections::BTreeMap<&'static str, (usize, u64)> = Default::default();
        for (_, k) in self.kinds.iter().filter(|(p, _)| alive(p)) {
            by.entry(k).or_default().0 += 1;
        }
        for (_, peers) in open.iter().filter(|(n, _)| !self.is_adversary(n)) {
            for k in peers.keys().filter_map(|p| self.kinds.get(p)) {
                by.entry(k).or_default().1 += 1;
            }
        }
        by.into_iter().map(|(k, (n, l))| (k, n, l)).collect()
    }

    /// `alive`: whether a node is up at the end (one that left before it graylisted an
    /// adversary no longer counts against that adversary's isolation).
    pub fn summary(&self, alive: impl Fn(&PeerId) -> bool) -> TrustSummary {
        let mut times = Vec::new();
        let mut detection: Vec<f64> = self
            .dealt
            .values()
            .flat_map(|nodes| nodes.values())
            .filter_map(|(t, g)| g.map(|g| g.saturating_sub(*t) as f64 / 1000.0))
            .collect();
        detection.sort_by(f64::total_cmp);
        for nodes in self.dealt.values() {
            let first = nodes.values().map(|(t, _)| *t).min().unwrap_or(0);
            let mut at: Vec<Option<u64>> =
                nodes.iter().filter(|(n, (_, g))| g.is_some() || alive(n)).map(|(_, (_, g))| *g).collect();
            if at.is_empty() {
                continue;
            }
            // None (never) sorts first: put it last.
            at.sort_by_key(|g| g.map_or(u64::MAX, |t| t));
            let k = (at.len() * 9).div_ceil(10);
            if let Some(t) = at[k - 1] {
                times.push(t.saturating_sub(first) as f64 / 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        TrustSummary {
            dealt: self.dealt.len(),
            isolated: times.len(),
            isolation_times_s: times,
            detection_times_s: detection,
            false_positives: self.false_positives.len(),
        }
    }
}
