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
    /// Honest nodes that left the run -> when (a dealer that left before it graylisted stops
    /// counting against the adversary's isolation from then on).
    left: FxHashMap<PeerId, u64>,
    /// Honest peers graylisted by at least one honest node.
    false_positives: FxHashSet<PeerId>,
}

/// The figures, for the report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrustSummary {
    /// Adversaries some honest node dealt with.
    pub dealt: usize,
    /// ...of which, at some instant, at least 90% of the honest nodes that had dealt with it so
    /// far (leaving out those that left without graylisting it) had graylisted it.
    pub isolated: usize,
    /// Time from an isolated adversary's first failure or offence seen by an honest node until
    /// that instant (s), sorted: how long the nodes that met it took to shut it out. Nodes that
    /// meet it later decide on their own (see `detection_times_s`), or never meet it once warned.
    pub isolation_times_s: Vec<f64>,
    /// The stricter, whole-run reading: until 90% of every honest node that dealt with it over
    /// the whole run (and was up at the end, or graylisted it before it left) graylisted it (s),
    /// sorted. A live adversary is met by newcomers all hour, so this tracks when the last of
    /// them first met it rather than how fast the swarm reacts.
    pub isolation_times_all_dealers_s: Vec<f64>,
    /// Per honest node and adversary it graylisted: time from its own first failure or offence
    /// of the adversary to its graylisting (s), sorted. Isolation also waits for nodes that meet
    /// the adversary late; this is how fast one node decides.
    pub detection_times_s: Vec<f64>,
    /// Honest peers graylisted by at least one honest node.
    pub false_positives: usize,
}

/// Open links: node -> peer -> opened at (ms), as the collector keeps them.
pub type OpenLinks = FxHashMap<PeerId, FxHashMap<PeerId, u64>>;

/// Honest nodes' links to one kind of adversary.
pub struct KindLinks {
    pub kind: &'static str,
    /// Live adversaries of the kind.
    pub live: usize,
    /// Honest nodes' links to them.
    pub links: usize,
    /// The median age of those links (s).
    pub age_p50_s: Option<f64>,
}

impl Trust {
    pub fn mark(&mut self, peer: PeerId, kind: &'static str, forger: bool) {
        tracing::debug!(target: "swarm_sim::adversary", peer = %peer.short(), kind, "adversary started");
        self.kinds.insert(peer, kind);
        if forger {
            self.forgers.insert(peer);
        }
    }

    pub fn is_adversary(&self, peer: &PeerId) -> bool {
        self.kinds.contains_key(peer)
    }

    /// The kind of adversary `node` is when `peer` is honest, while the `swarm_sim::adv_evidence`
    /// diagnostic is on (what adversaries hold against honest peers); `None` otherwise.
    pub fn evidence_against_honest(&self, node: &PeerId, peer: &PeerId) -> Option<&'static str> {
        if !tracing::enabled!(target: "swarm_sim::adv_evidence", tracing::Level::DEBUG) || self.is_adversary(peer) {
            return None;
        }
        self.kind(node)
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

    /// `node` left the run at `now_ms`.
    pub fn left(&mut self, node: PeerId, now_ms: u64) {
        if !self.is_adversary(&node) {
            self.left.insert(node, now_ms);
        }
    }

    /// Whether a verdict of `node` against `peer` is an honest node's on an adversary (the ones
    /// isolation counts); one on an honest peer is counted as a false positive here.
    fn verdict_on_adversary(&mut self, node: PeerId, peer: PeerId, now_ms: u64, how: &str) -> bool {
        if self.is_adversary(&node) {
            return false;
        }
        if !self.is_adversary(&peer) {
            tracing::info!(target: "swarm_sim::false_positive", t_s = now_ms / 1000, node = %node.short(), peer = %peer.short(), how);
            self.false_positives.insert(peer);
            return false;
        }
        true
    }

    /// `node` shunned `peer` on other nodes' warnings: it refuses its links as it would a
    /// graylisted peer's, so for a node that dealt with it this is its verdict. A node that
    /// shuns an adversary it never dealt with does not become one of its dealers (hearsay is
    /// not dealing); shunning an honest peer is a false positive like graylisting it.
    pub fn shunned(&mut self, node: PeerId, peer: PeerId, now_ms: u64) {
        if !self.verdict_on_adversary(node, peer, now_ms, "shunned") {
            return;
        }
        if let Some(e) = self.dealt.get_mut(&peer).and_then(|d| d.get_mut(&node)) {
            e.1.get_or_insert(now_ms);
        }
    }

    /// `node` graylisted `peer` (counted for honest nodes only).
    pub fn graylisted(&mut self, node: PeerId, peer: PeerId, now_ms: u64) {
        if !self.verdict_on_adversary(node, peer, now_ms, "graylisted") {
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

    /// Per adversary kind, in name order: (kind, live adversaries, honest nodes' links to them,
    /// the median age in seconds of those links at `now`).
    pub fn links_by_kind(&self, open: &OpenLinks, now: u64, alive: impl Fn(&PeerId) -> bool) -> Vec<KindLinks> {
        let mut by: std::collections::BTreeMap<&'static str, (usize, Vec<f64>)> = Default::default();
        for (_, k) in self.kinds.iter().filter(|(p, _)| alive(p)) {
            by.entry(k).or_default().0 += 1;
        }
        for (_, peers) in open.iter().filter(|(n, _)| !self.is_adversary(n)) {
            for (k, since) in peers.iter().filter_map(|(p, t)| self.kinds.get(p).map(|k| (k, t))) {
                by.entry(k).or_default().1.push(now.saturating_sub(*since) as f64 / 1000.0);
            }
        }
        by.into_iter()
            .map(|(kind, (live, mut ages))| {
                ages.sort_unstable_by(f64::total_cmp);
                let age_p50_s = (!ages.is_empty()).then(|| crate::report::percentile(&ages, 50.0));
                KindLinks { kind, live, links: ages.len(), age_p50_s }
            })
            .collect()
    }

    /// The first instant at which at least 90% of the honest nodes that had dealt with an
    /// adversary so far had graylisted (or shunned) it, if any. A dealer counts from its first
    /// dealing until it decides (then for good) or leaves without a verdict (then no more).
    fn isolated_at(&self, nodes: &FxHashMap<PeerId, (u64, Option<u64>)>) -> Option<u64> {
        // (time, change in dealers, change in graylisters), applied in time order.
        let mut steps: Vec<(u64, i64, i64)> = Vec::with_capacity(nodes.len() * 2);
        for (node, (dealt, gray)) in nodes {
            match gray {
                // Graylisting counts as dealing too (a node may graylist at its first offence).
                Some(g) => {
                    steps.push(((*dealt).min(*g), 1, 0));
                    steps.push((*g, 0, 1));
                }
                None => {
                    steps.push((*dealt, 1, 0));
                    if let Some(l) = self.left.get(node).filter(|l| **l >= *dealt) {
                        steps.push((*l, -1, 0));
                    }
                }
            }
        }
        steps.sort_unstable();
        let (mut dealers, mut gray) = (0i64, 0i64);
        let mut i = 0;
        while i < steps.len() {
            let t = steps[i].0;
            while i < steps.len() && steps[i].0 == t {
                dealers += steps[i].1;
                gray += steps[i].2;
                i += 1;
            }
            // With no dealer left (all left without a verdict) there is nothing to judge by.
            if dealers > 0 && gray * 10 >= dealers * 9 {
                return Some(t);
            }
        }
        None
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
        let mut times_all = Vec::new();
        for (adversary, nodes) in &self.dealt {
            let first = nodes.values().map(|(t, _)| *t).min().unwrap_or(0);
            let reached = self.isolated_at(nodes);
            if let Some(t) = reached {
                times.push(t.saturating_sub(first) as f64 / 1000.0);
            }
            if tracing::enabled!(target: "swarm_sim::isolation", tracing::Level::DEBUG) {
                let kind = self.kind(adversary).unwrap_or("?");
                let never: Vec<String> = nodes
                    .iter()
                    .filter(|(n, (_, g))| g.is_none() && !self.left.contains_key(*n))
                    .map(|(n, (t, _))| format!("{}@{}", n.short(), t / 1000))
                    .collect();
                tracing::debug!(target: "swarm_sim::isolation", adversary = %adversary.short(), kind, first_s = first / 1000, reached_s = ?reached.map(|t| t / 1000), dealers = nodes.len(), ?never, "adversary");
            }
            let mut at: Vec<Option<u64>> =
                nodes.iter().filter(|(n, (_, g))| g.is_some() || alive(n)).map(|(_, (_, g))| *g).collect();
            if at.is_empty() {
                continue;
            }
            // None (never) sorts first: put it last.
            at.sort_by_key(|g| g.map_or(u64::MAX, |t| t));
            let k = (at.len() * 9).div_ceil(10);
            if let Some(t) = at[k - 1] {
                times_all.push(t.saturating_sub(first) as f64 / 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        times_all.sort_by(f64::total_cmp);
        TrustSummary {
            dealt: self.dealt.len(),
            isolated: times.len(),
            isolation_times_s: times,
            isolation_times_all_dealers_s: times_all,
            detection_times_s: detection,
            false_positives: self.false_positives.len(),
        }
    }
}
