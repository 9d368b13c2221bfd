//! Collects what simulated nodes report through the engine's observer port: gossip rumour
//! coverage, registry sizes, bad frames, expiries. Measurement only; nothing here feeds back into
//! the nodes.

use rustc_hash::FxHashMap;
use std::cell::RefCell;
use swarm_engine::content::{ChunkId, ShareLink};
use swarm_engine::files::{FileEvent, FilesHandle, OpId};
use swarm_engine::links::{CloseReason, DialError, Purpose};
use swarm_engine::observer::{Event, LinkChange, Observer, Offence, StoreCause};
use swarm_engine::reputation::Standing;
use swarm_engine::routing::Key;
use swarm_engine::PeerId;

use crate::trust::{Trust, TrustSummary};

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
    /// `Flood` offences reported against [honest, adversarial] peers.
    floods: [u64; 2],
    /// Recovery shares that failed their owner's commitments (lying holders caught).
    bad_shares: u64,
    /// Envelopes (accepted, rejected) by sender: [honest or other adversary, forger].
    envelopes: [(u64, u64); 2],
    content: Content,
    links: Links,
    files: Files,
    trust: Trust,
}

/// What the connection managers reported about links.
#[derive(Default)]
struct Links {
    dials: u64,
    dials_by_purpose: [u64; Purpose::ALL.len()],
    dial_failures: u64,
    trimmed: u64,
    refused: u64,
    /// Open links: node -> peer -> opened at (ms). Looked up, and read once (sorted) at the end.
    open: FxHashMap<PeerId, FxHashMap<PeerId, u64>>,
    /// Lifetimes of links that closed (ms), each end's view counted.
    lifetimes_ms: Vec<u64>,
}

/// What the collector measured about links, for the report.
#[derive(Clone, Debug, Default)]
pub struct LinkSummary {
    pub dials: u64,
    pub dials_by_purpose: Vec<(&'static str, u64)>,
    pub dial_failures: u64,
    pub trimmed: u64,
    pub refused: u64,
    /// Lifetimes of every link (closed, or open at the end counted up to the end), sorted (s).
    pub lifetimes_s: Vec<f64>,
}

/// Whole files: what was published, and how the probes' fetches went.
#[derive(Default)]
struct Files {
    /// Completed publications in order, with the time they completed (ms).
    published: Vec<(ShareLink, u64)>,
    publishes_failed: u64,
    /// Probe fetches running -> when they started (ms).
    started: FxHashMap<OpId, u64>,
    ok: u64,
    failed: u64,
    latencies_ms: Vec<u64>,
}

/// What the collector measured about whole files, for the report.
#[derive(Clone, Debug, Default)]
pub struct FilesSummary {
    pub published: usize,
    pub publishes_failed: u64,
    pub fetches_ok: u64,
    pub fetches_failed: u64,
    /// Latencies of complete fetches (root to last piece), sorted (s).
    pub latencies_s: Vec<f64>,
}

/// Ground truth about chunks: who holds what (from the nodes' reports), what was lost.
#[derive(Default)]
struct Content {
    /// Published chunks in publication order, with the time of publication (ms).
    published: Vec<(ChunkId, u64)>,
    index: FxHashMap<ChunkId, usize>,
    live_holders: Vec<u32>,
    max_holders: Vec<u32>,
    /// Whether an adversary published it: availability probes fetch honest nodes' data only
    /// (what an isolated adversary published is not the swarm's to keep).
    by_adversary: Vec<bool>,
    lost: Vec<bool>,
    /// Chunks lost while their author held the only copy (it crashed before any replica).
    lost_unreplicated: u64,
    held_by: FxHashMap<PeerId, Vec<usize>>,
    repair_bytes: u64,
    repair_stores: u64,
    /// Surplus copies nodes let go.
    dropped: u64,
    /// Per probe: (fetches ok, fetches failed); fetchers that crashed never answer.
    probes: Vec<(u32, u32)>,
    /// When each probe ran (ms).
    probe_at_ms: Vec<u64>,
    latencies_ms: Vec<u64>,
    /// Successful probe fetches whose bytes came through another node.
    relayed: u64,
}

impl Content {
    /// `node` no longer holds `chunk`; whether it did.
    fn let_go(&mut self, node: PeerId, chunk: &ChunkId) -> bool {
        let Some(&i) = self.index.get(chunk) else { return false };
        let Some(held) = self.held_by.get_mut(&node) else { return false };
        let Some(at) = held.iter().position(|x| *x == i) else { return false };
        held.swap_remove(at);
        self.live_holders[i] -= 1;
        if self.live_holders[i] == 0 && !self.lost[i] {
            self.lost[i] = true;
            tracing::debug!(target: "swarm_sim::chunk", chunk = %chunk.short(), node = %node.short(), "lost: last copy let go");
        }
        true
    }
}

/// What the collector measured about content, for the report.
#[derive(Clone, Debug, Default)]
pub struct ContentSummary {
    pub published: usize,
    pub lost: usize,
    pub lost_unreplicated: u64,
    /// Of the published chunks, those an adversary published whose publication completed (a
    /// second copy stored), and those of them lost after: an adversary's own data, which
    /// durability leaves out (as the availability probes do).
    pub adversarial_completed: usize,
    pub adversarial_lost: usize,
    pub repair_bytes: u64,
    pub repair_stores: u64,
    pub dropped: u64,
    /// Availability per probe (answered fetches only), in probe order.
    pub probes: Vec<Option<f64>>,
    /// Per probe: (time s, fetches ok, fetches failed).
    pub probe_counts: Vec<(f64, u32, u32)>,
    pub fetches_ok: u64,
    pub fetches_failed: u64,
    /// Latencies of successful fetches, sorted (s).
    pub latencies_s: Vec<f64>,
    /// Successful probe fetches whose bytes came through another node.
    pub relayed: u64,
    /// Live copies of each surviving chunk at the end: (min, mean).
    pub copies_min: u32,
    pub copies_mean: f64,
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
            floods: [0; 2],
            bad_shares: 0,
            envelopes: [(0, 0); 2],
            content: Content::default(),
            links: Links::default(),
            files: Files::default(),
            trust: Trust::default(),
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

    /// A node crashed: it is gone, and so are its copies and its end of every link.
    pub fn forget(&self, peer: &PeerId) {
        let mut s = self.st.borrow_mut();
        s.slot_of.remove(peer);
        let now_ms = tokio::time::Instant::now().saturating_duration_since(s.epoch).as_millis() as u64;
        s.trust.left(*peer, now_ms);
        tracing::trace!(target: "swarm_sim::chunk", t_ms = now_ms, node = %peer.short(), "crashed");
        let l = &mut s.links;
        if let Some(open) = l.open.remove(peer) {
            l.lifetimes_ms.extend(open.into_values().map(|at| now_ms.saturating_sub(at)));
        }
        let c = &mut s.content;
        for i in c.held_by.remove(peer).unwrap_or_default() {
            c.live_holders[i] -= 1;
            if c.live_holders[i] == 0 && !c.lost[i] {
                c.lost[i] = true;
                let chunk = c.published[i].0.short();
                tracing::debug!(target: "swarm_sim::chunk", %chunk, node = %peer.short(), copies_max = c.max_holders[i], "lost: last holder crashed");
                if c.max_holders[i] <= 1 {
                    c.lost_unreplicated += 1;
                }
            }
        }
    }

    /// The published chunks: (id, published at ms), in order.
    pub fn published(&self) -> Vec<(ChunkId, u64)> {
        self.st.borrow().content.published.clone()
    }

    /// Number of chunks published no later than `ms` (they are numbered in publication order).
    /// Chunks whose publication completed (a second copy was stored somewhere) and that were
    /// published at or before `ms`: what an availability probe may ask for.
    pub fn probe_candidates(&self, ms: u64) -> Vec<ChunkId> {
        let s = self.st.borrow();
        let c = &s.content;
        let n = c.published.partition_point(|(_, at)| *at <= ms);
        (0..n).filter(|i| c.max_holders[*i] >= 2 && !c.by_adversary[*i]).map(|i| c.published[i].0).collect()
    }

    /// A new availability probe; returns its number (fetch ids carry it in their high bits).
    pub fn open_probe(&self, at_ms: u64) -> u64 {
        let mut s = self.st.borrow_mut();
        s.content.probes.push((0, 0));
        s.content.probe_at_ms.push(at_ms);
        (s.content.probes.len() - 1) as u64
    }

    pub fn content_summary(&self) -> ContentSummary {
        let s = self.st.borrow();
        let c = &s.content;
        let mut latencies_s: Vec<f64> = c.latencies_ms.iter().map(|ms| *ms as f64 / 1000.0).collect();
        latencies_s.sort_by(f64::total_cmp);
        let alive: Vec<u32> = (0..c.published.len()).filter(|i| !c.lost[*i]).map(|i| c.live_holders[i]).collect();
        let adversarial = |lost: bool| {
            (0..c.published.len())
                .filter(|i| c.by_adversary[*i] && c.max_holders[*i] >= 2 && (!lost || c.lost[*i]))
                .count()
        };
        ContentSummary {
            published: c.published.len(),
            lost: c.lost.iter().filter(|l| **l).count(),
            lost_unreplicated: c.lost_unreplicated,
            adversarial_completed: adversarial(false),
            adversarial_lost: adversarial(true),
            repair_bytes: c.repair_bytes,
            repair_stores: c.repair_stores,
            dropped: c.dropped,
            probes: c
                .probes
                .iter()
                .map(|(ok, failed)| (ok + failed > 0).then(|| f64::from(*ok) / f64::from(ok + failed)))
                .collect(),
            probe_counts: c
                .probes
                .iter()
                .zip(&c.probe_at_ms)
                .map(|((ok, failed), at)| (*at as f64 / 1000.0, *ok, *failed))
                .collect(),
            fetches_ok: c.probes.iter().map(|(ok, _)| u64::from(*ok)).sum(),
            fetches_failed: c.probes.iter().map(|(_, f)| u64::from(*f)).sum(),
            latencies_s,
            relayed: c.relayed,
            copies_min: alive.iter().copied().min().unwrap_or(0),
            copies_mean: if alive.is_empty() {
                0.0
            } else {
                alive.iter().map(|n| f64::from(*n)).sum::<f64>() / alive.len() as f64
            },
        }
    }

    fn now_ms(s: &State) -> u64 {
        tokio::time::Instant::now().saturating_duration_since(s.epoch).as_millis() as u64
    }

    /// A node's file events (its file listener): publications completed, probe fetches ended;
    /// every piece is taken at once.
    pub fn on_file_event(&self, ev: FileEvent, files: &FilesHandle) {
        let mut s = self.st.borrow_mut();
        let now_ms = Self::now_ms(&s);
        let f = &mut s.files;
        match ev {
            FileEvent::Piece { op, .. } => files.consumed(op),
            FileEvent::Published { result: Ok(p), .. } => f.published.push((p.link, now_ms)),
            FileEvent::Published { result: Err(e), op } => {
                f.publishes_failed += 1;
                tracing::info!(target: "swarm_sim::file_failed", op, error = %e, "file publication failed");
            }
            FileEvent::Fetched { op, result } => {
                let Some(at) = f.started.remove(&op) else { return };
                match result {
                    Ok(()) => {
                        f.ok += 1;
                        f.latencies_ms.push(now_ms.saturating_sub(at));
                    }
                    Err(e) => {
                        f.failed += 1;
                        tracing::info!(target: "swarm_sim::file_failed", op, error = %e, "file fetch failed");
                    }
                }
            }
            FileEvent::Accepted { .. } | FileEvent::Opened { .. } => {}
        }
    }

    /// Files whose publication completed at or before `ms`: what a file probe may fetch.
    pub fn file_candidates(&self, ms: u64) -> Vec<ShareLink> {
        let s = self.st.borrow();
        let p = &s.files.published;
        p[..p.partition_point(|(_, at)| *at <= ms)].iter().map(|(l, _)| l.clone()).collect()
    }

    /// A probe's file fetch started (one whose node crashes never ends, and is not counted).
    pub fn file_fetch_started(&self, op: OpId, at_ms: u64) {
        self.st.borrow_mut().files.started.insert(op, at_ms);
    }

    pub fn files_summary(&self) -> FilesSummary {
        let s = self.st.borrow();
        let f = &s.files;
        let mut latencies_s: Vec<f64> = f.latencies_ms.iter().map(|ms| *ms as f64 / 1000.0).collect();
        latencies_s.sort_by(f64::total_cmp);
        FilesSummary {
            published: f.published.len(),
            publishes_failed: f.publishes_failed,
            fetches_ok: f.ok,
            fetches_failed: f.failed,
            latencies_s,
        }
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

    /// How well live nodes are linked into their XOR neighbourhoods: for every live node, the
    /// share of its `m` nearest live peers (by key distance) it holds a link to; returns the mean
    /// of those shares and the share of live nodes linked to none of them. A lookup's answers
    /// name linked peers, so a node none of its neighbours links to is one lookups near its key
    /// do not find (None with fewer than `m + 1` live nodes).
    pub fn neighbourhood_linked(&self, m: usize) -> Option<(f64, f64)> {
        let s = self.st.borrow();
        let mut keys: Vec<(Key, PeerId)> = s.slot_of.keys().map(|p| (Key::of_peer(p), *p)).collect();
        if m == 0 || keys.len() <= m {
            return None;
        }
        keys.sort_unstable();
        // The keys sharing the first `d` bits with `k` are one run of the sorted list.
        let block = |k: &Key, d: usize| {
            let (mut lo, mut hi) = (k.0, k.0);
            for (i, (l, h)) in lo.iter_mut().zip(hi.iter_mut()).enumerate().skip(d / 8) {
                // The bits of byte `i` past the first `d` of the key.
                let free = if i == d / 8 { 0xffu8 >> (d % 8) } else { 0xff };
                *l &= !free;
                *h |= free;
            }
            keys.partition_point(|(x, _)| x.0 < lo)..keys.partition_point(|(x, _)| x.0 <= hi)
        };
        let (mut share_sum, mut none) = (0.0, 0usize);
        for (i, (k, p)) in keys.iter().enumerate() {
            // The longest shared prefix whose run still holds `m` others: every key outside it
            // is farther than every key inside, so the `m` nearest are in it.
            let shallow = mth_longest_prefix(&keys, i, m);
            let mut near: Vec<&(Key, PeerId)> = keys[block(k, shallow)].iter().filter(|(_, q)| q != p).collect();
            near.sort_unstable_by_key(|(x, _)| k.distance(x));
            let open = s.links.open.get(p);
            let linked = near.iter().take(m).filter(|(_, q)| open.is_some_and(|o| o.contains_key(q))).count();
            share_sum += linked as f64 / m as f64;
            none += usize::from(linked == 0);
        }
        Some((share_sum / keys.len() as f64, none as f64 / keys.len() as f64))
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

    pub fn mark_adversary(&self, peer: PeerId, kind: &'static str) {
        self.st.borrow_mut().trust.mark(peer, kind, false);
    }

    /// An adversary that signs every envelope wrongly.
    pub fn mark_forger(&self, peer: PeerId) {
        self.st.borrow_mut().trust.mark(peer, "invalid_signatures", true);
    }

    /// Per adversary kind, in name order: honest nodes' links to them now.
    pub fn adversary_links_by_kind(&self) -> Vec<crate::trust::KindLinks> {
        let s = self.st.borrow();
        s.trust.links_by_kind(&s.links.open, Self::now_ms(&s), |p| s.slot_of.contains_key(p))
    }

    pub fn is_adversary(&self, peer: &PeerId) -> bool {
        self.st.borrow().trust.is_adversary(peer)
    }

    /// The adversary kind `peer` was started as, if any.
    pub fn adversary_kind(&self, peer: &PeerId) -> Option<&'static str> {
        self.st.borrow().trust.kind(peer)
    }

    /// Adversarial nodes started over the run.
    pub fn adversaries(&self) -> usize {
        self.st.borrow().trust.adversaries()
    }

    /// Envelopes (accepted, rejected) received from honest and from adversarial senders.
    pub fn envelopes(&self) -> [(u64, u64); 2] {
        self.st.borrow().envelopes
    }

    /// Wrong recovery shares detected (each reported to reputation as `Offence::BadShare`).
    pub fn bad_shares(&self) -> u64 {
        self.st.borrow().bad_shares
    }

    /// `Flood` offences reported against [honest, adversarial] peers.
    pub fn floods(&self) -> [u64; 2] {
        self.st.borrow().floods
    }

    /// Links whose peer proved its identity, and offences reported, over the run.
    pub fn auth_counts(&self) -> (u64, u64) {
        let s = self.st.borrow();
        (s.authenticated, s.offences)
    }

    /// Link figures up to `end_ms` (links still open then are counted up to it).
    pub fn link_summary(&self, end_ms: u64) -> LinkSummary {
        let s = self.st.borrow();
        let l = &s.links;
        let mut ms = l.lifetimes_ms.clone();
        ms.extend(l.open.values().flat_map(|m| m.values()).map(|at| end_ms.saturating_sub(*at)));
        ms.sort_unstable();
        LinkSummary {
            dials: l.dials,
            dials_by_purpose: Purpose::ALL.iter().map(|p| (p.name(), l.dials_by_purpose[*p as usize])).collect(),
            dial_failures: l.dial_failures,
            trimmed: l.trimmed,
            refused: l.refused,
            lifetimes_s: ms.into_iter().map(|m| m as f64 / 1000.0).collect(),
        }
    }

    /// Share of honest nodes' open links that end at adversaries (None without adversaries or
    /// links).
    pub fn adversary_link_share(&self) -> Option<f64> {
        let s = self.st.borrow();
        s.trust.link_share(&s.links.open)
    }

    /// Reputation against the ground truth.
    pub fn trust_summary(&self) -> TrustSummary {
        let s = self.st.borrow();
        s.trust.summary(|p| s.slot_of.contains_key(p))
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
            Event::RumorReceived { origin, seq, from } => {
                if let Some(r) = s.rumors.get_mut(&(origin, seq)) {
                    r.receivers += 1;
                }
                let bad = s.trust.is_forger(&from);
                s.envelopes[usize::from(bad)].0 += 1;
            }
            Event::KnownPeers(n) => {
                if let Some(slot) = s.slot_of.get(&node).copied() {
                    s.known[slot] = n;
                }
            }
            Event::BadFrame { .. } => s.bad_frames += 1,
            Event::Link(change) => {
                let now_ms = tokio::time::Instant::now().saturating_duration_since(s.epoch).as_millis() as u64;
                let l = &mut s.links;
                match change {
                    LinkChange::Dialled { purpose, .. } => {
                        l.dials += 1;
                        l.dials_by_purpose[purpose as usize] += 1;
                    }
                    LinkChange::Opened { peer, .. } => {
                        l.open.entry(node).or_default().insert(peer, now_ms);
                    }
                    LinkChange::Closed { peer, reason, age_ms } => {
                        if let Some(m) = l.open.get_mut(&node) {
                            m.remove(&peer);
                        }
                        l.lifetimes_ms.push(age_ms);
                        match reason {
                            CloseReason::Trimmed => l.trimmed += 1,
                            CloseReason::Expired => s.expired += 1,
                            _ => {}
                        }
                    }
                    // Refusals by the manager itself (no room, backing off) were not attempts.
                    LinkChange::DialFailed { error, .. } => {
                        if matches!(error, DialError::Unreachable | DialError::AuthFailed) {
                            l.dial_failures += 1;
                        }
                    }
                    LinkChange::Refused { .. } => l.refused += 1,
                }
            }
            Event::ReconnectGaveUp { .. } => s.reconnect_gave_up += 1,
            // Taken by the sync workload's observer (`crate::sync`) before it gets here.
            Event::Sync(_) => {}
            Event::Authenticated { .. } => s.authenticated += 1,
            Event::Offence { peer, offence } => {
                s.offences += 1;
                s.bad_shares += u64::from(offence == Offence::BadShare);
                if offence == Offence::Flood {
                    let i = usize::from(s.trust.is_adversary(&peer));
                    s.floods[i] += 1;
                }
                let now_ms = Self::now_ms(&s);
                if !s.trust.is_adversary(&peer) && !s.trust.is_adversary(&node) {
                    tracing::debug!(target: "swarm_sim::honest_offence", t_s = now_ms / 1000, node = %node.short(), peer = %peer.short(), ?offence);
                }
                if let Some(kind) = s.trust.evidence_against_honest(&node, &peer) {
                    tracing::debug!(target: "swarm_sim::adv_evidence", t_s = now_ms / 1000, node = %node.short(), kind, peer = %peer.short(), ?offence, "offence");
                }
                s.trust.dealt(node, peer, now_ms);
            }
            // A timeout alone is no dealing: a crashed peer times out too.
            Event::RequestFailed { peer, answered } => {
                let now_ms = Self::now_ms(&s);
                if let Some(kind) = s.trust.evidence_against_honest(&node, &peer) {
                    tracing::debug!(target: "swarm_sim::adv_evidence", t_s = now_ms / 1000, node = %node.short(), kind, peer = %peer.short(), answered, "request failed");
                }
                if answered {
                    s.trust.dealt(node, peer, now_ms);
                }
            }
            Event::Standing { peer, standing: Standing::Graylisted } => {
                let now_ms = Self::now_ms(&s);
                if let Some(kind) = s.trust.evidence_against_honest(&node, &peer) {
                    tracing::debug!(target: "swarm_sim::adv_evidence", t_s = now_ms / 1000, node = %node.short(), kind, peer = %peer.short(), "graylisted");
                }
                s.trust.graylisted(node, peer, now_ms);
            }
            Event::Standing { .. } => {}
            // Shunned on warnings: cut off as a graylisted peer is (links refused both ways).
            Event::Shunned { peer, shunned: true } => {
                let now_ms = Self::now_ms(&s);
                s.trust.shunned(node, peer, now_ms);
            }
            Event::Shunned { .. } => {}
            Event::EnvelopeRejected { from, .. } => {
                let bad = s.trust.is_forger(&from);
                s.envelopes[usize::from(bad)].1 += 1;
            }
            Event::ChunkStored { chunk, bytes, cause } => {
                let now_ms = tokio::time::Instant::now().saturating_duration_since(s.epoch).as_millis() as u64;
                tracing::trace!(target: "swarm_sim::chunk", t_ms = now_ms, node = %node.short(), chunk = %chunk.short(), ?cause, "stored");
                let by_adversary = s.trust.is_adversary(&node);
                let c = &mut s.content;
                let i = match c.index.get(&chunk) {
                    Some(i) => *i,
                    None if cause == StoreCause::Published => {
                        c.by_adversary.push(by_adversary);
                        c.published.push((chunk, now_ms));
                        c.live_holders.push(0);
                        c.max_holders.push(0);
                        c.lost.push(false);
                        c.index.insert(chunk, c.published.len() - 1);
                        c.published.len() - 1
                    }
                    // A chunk the run did not publish: not ours to count.
                    None => return,
                };
                if cause == StoreCause::Repair {
                    c.repair_bytes += u64::from(bytes);
                    c.repair_stores += 1;
                }
                let held = c.held_by.entry(node).or_default();
                if !held.contains(&i) {
                    held.push(i);
                    c.live_holders[i] += 1;
                    c.max_holders[i] = c.max_holders[i].max(c.live_holders[i]);
                }
            }
            Event::ChunkDropped { chunk } => {
                tracing::trace!(target: "swarm_sim::chunk", t_ms = Self::now_ms(&s), node = %node.short(), chunk = %chunk.short(), "dropped");
                if s.content.let_go(node, &chunk) {
                    s.content.dropped += 1;
                }
            }
            Event::ChunkReclaimed { chunk } => {
                tracing::trace!(target: "swarm_sim::chunk", t_ms = Self::now_ms(&s), node = %node.short(), chunk = %chunk.short(), "reclaimed");
                s.content.let_go(node, &chunk);
            }
            Event::FetchFinished { id, ok, latency_ms, chunk, relayed } => {
                let t_s = tokio::time::Instant::now().saturating_duration_since(s.epoch).as_secs();
                let c = &mut s.content;
                if !ok {
                    // Ground truth beside the fetcher's own trail (logged by the engine).
                    let mut holders: Vec<String> = match c.index.get(&chunk) {
                        Some(&i) => c.held_by.iter().filter(|(_, h)| h.contains(&i)).map(|(p, _)| p.short()).collect(),
                        None => vec![],
                    };
                    holders.sort();
                    tracing::info!(target: "swarm_sim::fetch_failed", t_s, node = %node.short(), chunk = %chunk.short(), ?holders, "probe fetch failed");
                }
                if let Some(p) = c.probes.get_mut((id >> 32) as usize) {
                    if ok {
                        p.0 += 1;
                        c.latencies_ms.push(latency_ms);
                        c.relayed += u64::from(relayed);
                    } else {
                        p.1 += 1;
                    }
                }
            }
        }
    }
}

/// Leading bits `a` and `b` share.
fn shared_bits(a: &Key, b: &Key) -> usize {
    for (i, (x, y)) in a.0.iter().zip(&b.0).enumerate() {
        if x != y {
            return i * 8 + (x ^ y).leading_zeros() as usize;
        }
    }
    256
}

/// The longest prefix (in bits) of `keys[i]` whose run of the sorted `keys` holds `m` others
/// (`m` < `keys.len()`). Along a sorted list the prefix shared with `keys[i]` never grows moving
/// away from `i`, so the `m` others sharing most are the first `m` met walking outwards, always
/// on the side that shares more; the last one met shares exactly that prefix.
fn mth_longest_prefix(keys: &[(Key, PeerId)], i: usize, m: usize) -> usize {
    let k = &keys[i].0;
    let (mut lo, mut hi) = (i, i + 1);
    let mut shared = 256;
    for _ in 0..m {
        let left = lo.checked_sub(1).map(|j| shared_bits(k, &keys[j].0));
        let right = keys.get(hi).map(|(x, _)| shared_bits(k, x));
        shared = match (left, right) {
            (Some(l), Some(r)) if l >= r => {
                lo -= 1;
                l
            }
            (_, Some(r)) => {
                hi += 1;
                r
            }
            (Some(l), None) => {
                lo -= 1;
                l
            }
            (None, None) => break,
        };
    }
    shared
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn bit(k: &Key, b: usize) -> bool {
        k.0[b / 8] & (0x80 >> (b % 8)) != 0
    }

    /// The same by definition: the largest `d` such that `m` other keys agree with `keys[i]` on
    /// their first `d` bits, bit by bit.
    fn by_definition(keys: &[(Key, PeerId)], i: usize, m: usize) -> usize {
        let k = &keys[i].0;
        (0..=256)
            .rev()
            .find(|&d| {
                keys.iter().enumerate().filter(|(j, (x, _))| *j != i && (0..d).all(|b| bit(x, b) == bit(k, b))).count()
                    >= m
            })
            .expect("d = 0 holds with m < keys.len()")
    }

    #[test]
    fn walking_outwards_finds_the_prefix_of_the_mth_nearest() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        // Random keys, and clusters sharing long prefixes (a few differing bits at the end).
        let mut keys: Vec<(Key, PeerId)> = Vec::new();
        for c in 0..12u8 {
            let base: [u8; 32] = rng.gen();
            for _ in 0..rng.gen_range(1..8) {
                let mut k = base;
                let byte = if c % 2 == 0 { rng.gen_range(0..32) } else { 31 };
                k[byte] ^= rng.gen::<u8>() >> rng.gen_range(0..8);
                keys.push((Key(k), PeerId(k)));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        for m in [1, 2, 5, 8, keys.len() - 1] {
            for i in 0..keys.len() {
                assert_eq!(mth_longest_prefix(&keys, i, m), by_definition(&keys, i, m), "key {i}, m {m}");
            }
        }
    }
}
