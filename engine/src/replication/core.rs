//! Replication core: keeps every chunk on its replica set, the `rf` live peers closest to the
//! chunk by XOR distance, as far as this node can see (itself and the peers it is linked to; the
//! topology keeps a node linked to its XOR neighbourhood, where the chunks it is responsible for
//! and their other holders are).
//!
//! Repair is pulled, not pushed. Neighbours tell each other what they hold (everything when a
//! link comes up, changes after) and whether they are full. Every `repair_interval_ms` a node
//! looks at the chunks it has heard of: where it is itself in the replica set (counting only
//! peers with room) and lacks the chunk, it asks one holder for it, within a byte budget per
//! round, so churn never turns into a repair storm. The node that should hold a copy is the only
//! one that asks for it, so nobody is sent a chunk twice; a newcomer that became closest asks
//! for what it now owns; a full node is left out of everyone's replica sets and its share goes
//! to the next closest.
//!
//! Neighbourhoods are not enough on their own: the peers closest to a chunk need not be closest
//! to each other (XOR closeness to the chunk and to a holder differ). So each holder also checks
//! its chunks against the network every `check_interval_ms`, and at once when a neighbour holding
//! one goes: it asks the routing layer for the live peers closest to the chunk (`Lookup`), and
//! tells the members of the replica set that lack it (`Offer`); they pull it.
//!
//! Churn moves replica sets, so old holders end up far from their chunks. A holder whose check
//! finds it outside the `rf + spare_copies` closest live peers, with all `rf` of the replica set
//! saying they hold the chunk, lets its copy go (`Drop`); spares nearer than that stay, as warm
//! copies for the next departure. What a node published itself (during this run, or as part of
//! a completed publication found at start: `Kept`) is never dropped this way.
//!
//! Pure: bytes stay in the inventory. The wiring answers `Request`s from it, stores what arrives
//! and reports `Stored`; it removes what `Drop` names and reports `Dropped`.

use crate::config::ReplicationConfig;
use crate::content::ChunkId;
use crate::core::{Core, LinkEvent, Outputs};
use crate::links::Unreachable;
use crate::routing::{closest, replica_set, Distance, Key};
use crate::time::Millis;
use crate::topology::core::{UNREACHABLE_MEMORY_MAX, UNREACHABLE_MEMORY_MS};
use crate::types::PeerId;
use std::collections::{BTreeMap, BTreeSet};

/// Why the core looks for chunks to fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    /// The periodic round, over everything known.
    Round,
    /// A neighbour announced what it holds.
    Announced,
    /// A holder offered us a chunk.
    Offered,
}

/// How soon a chunk just offered around is checked again.
const URGENT_CHECK_MS: Millis = 10_000;

/// A dropped copy is not taken back on our own view for this many check intervals.
const DROP_COOLDOWN_CHECKS: Millis = 10;

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Link(LinkEvent),
    /// The inventory holds this chunk now (published here, or fetched and stored).
    Stored {
        chunk: ChunkId,
        bytes: u32,
    },
    /// This node published the chunk: held, and its replica set is looked up at once (a new
    /// chunk must not wait for the next round with a single copy).
    Published {
        chunk: ChunkId,
        bytes: u32,
    },
    /// The inventory let a chunk go.
    Dropped {
        chunk: ChunkId,
    },
    /// Held since before this run, as a chunk of a completed publication of this node (never
    /// dropped as surplus).
    Kept {
        chunk: ChunkId,
        bytes: u32,
    },
    /// A chunk published here is no longer this node's own (its publication failed) but still
    /// held as a replica: it may be dropped as surplus from now on.
    Unpinned {
        chunk: ChunkId,
    },
    /// Whether the inventory has room for another chunk (changes are announced).
    Room {
        full: bool,
    },
    /// A neighbour's announcement.
    Holdings {
        from: PeerId,
        held: Vec<ChunkId>,
        released: Vec<ChunkId>,
        full: bool,
    },
    /// A request for `chunk` to `from` will not be answered (refused, link gone, bad data).
    Failed {
        from: PeerId,
        chunk: ChunkId,
    },
    /// `chunk` arrived but could not be stored here (no room): no fault of its holder, which
    /// may be asked again once there is room.
    NotStored {
        chunk: ChunkId,
    },
    /// A holder (neighbour or not) says we belong to the replica set of `chunk`.
    Offer {
        from: PeerId,
        chunk: ChunkId,
    },
    /// The routing layer's answer to `Lookup`: live peers closest to the chunk, nearest first,
    /// each with whether it is full.
    Found {
        chunk: ChunkId,
        peers: Vec<Found>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Tell these neighbours what we hold now, no longer hold, and whether we are full.
    Announce { to: Vec<PeerId>, held: Vec<ChunkId>, released: Vec<ChunkId>, full: bool },
    /// Ask `to` for its copy of `chunk`.
    Request { to: PeerId, chunk: ChunkId },
    /// Find the live peers closest to `chunk` (answered with `Found`).
    Lookup { chunk: ChunkId },
    /// Tell `to` it belongs to the replica set of `chunk`, which we hold.
    Offer { to: PeerId, chunk: ChunkId },
    /// Our copy of `chunk` is surplus: remove it (answered with `Dropped`).
    Drop { chunk: ChunkId },
}

/// A peer a lookup reached, and what it said of itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub peer: PeerId,
    /// It has no room for another chunk.
    pub full: bool,
    /// It holds the chunk looked up.
    pub holds: bool,
}

/// Counters for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicationStats {
    pub requests: u64,
    pub lookups: u64,
    pub offers: u64,
    pub failures: u64,
    /// Surplus copies let go.
    pub drops: u64,
    /// Rounds that stopped early for want of budget.
    pub throttled_rounds: u64,
}

#[derive(Clone, Debug, Default)]
struct Neighbour {
    full: bool,
}

/// A chunk we hold, and when its replica set is checked against the network next.
#[derive(Clone, Copy, Debug)]
struct HeldChunk {
    bytes: u32,
    check_at: Millis,
    /// The wait before the next check: `check_interval_ms` after any sign of trouble, doubled
    /// after each check that found the whole replica set holding it, up to
    /// `check_interval_max_ms`. A settled chunk costs few lookups; a linked holder's departure
    /// brings the check forward at once, whatever the wait.
    calm_ms: Millis,
}

pub struct ReplicationCore {
    me: PeerId,
    cfg: ReplicationConfig,
    /// Assumed size of a chunk we have not seen yet, for the budget (the largest there is).
    chunk_bytes_max: u32,
    neighbours: BTreeMap<PeerId, Neighbour>,
    /// What we hold: size, and when to check its replica set against the network next.
    held: BTreeMap<ChunkId, HeldChunk>,
    /// Held chunks never dropped as surplus (published here, or stored before this run).
    pinned: BTreeSet<ChunkId>,
    /// Surplus copies we let go -> until when our own view (neighbours' announcements) may not
    /// make us take them back: a lookup saw farther than that view, and only an `Offer` (a
    /// holder's lookup naming us) overrides it. Without this, a node whose neighbours do not
    /// include the chunk's closest peers fetches and drops the same chunk over and over.
    dropped: BTreeMap<ChunkId, Millis>,
    /// Checks due before the next round: chunks just offered around (to confirm the copies
    /// were taken) or looked up with nobody found (a node still forming its links).
    urgent: BTreeSet<(Millis, ChunkId)>,
    /// Chunks others hold -> which peers (neighbours, and holders that offered them to us).
    known: BTreeMap<ChunkId, BTreeSet<PeerId>>,
    /// Offers made: (chunk, peer) -> until when not to repeat it.
    offered: BTreeMap<(ChunkId, PeerId), Millis>,
    full: bool,
    /// Requests in flight: chunk -> (asked, deadline).
    pending: BTreeMap<ChunkId, (PeerId, Millis)>,
    /// Holders that failed us, per chunk, not asked again while the link lasts.
    failed: BTreeSet<(ChunkId, PeerId)>,
    /// Peers we could not dial lately (gone, or both of us behind NATs).
    unreachable: Unreachable,
    next_round: Millis,
    /// Repair budget left (bytes), and when it was last refilled.
    tokens: u64,
    tokens_at: Millis,
    stats: ReplicationStats,
    out: Outputs<Output>,
}

impl ReplicationCore {
    pub fn new(me: PeerId, cfg: ReplicationConfig, chunk_bytes_max: u32, first_round: Millis) -> Self {
        let tokens = cfg.repair_bytes_per_round;
        ReplicationCore {
            tokens,
            me,
            cfg,
            chunk_bytes_max,
            neighbours: BTreeMap::new(),
            held: BTreeMap::new(),
            pinned: BTreeSet::new(),
            dropped: BTreeMap::new(),
            urgent: BTreeSet::new(),
            known: BTreeMap::new(),
            offered: BTreeMap::new(),
            full: false,
            pending: BTreeMap::new(),
            failed: BTreeSet::new(),
            unreachable: Unreachable::new(UNREACHABLE_MEMORY_MS, UNREACHABLE_MEMORY_MAX),
            next_round: first_round,
            tokens_at: 0,
            stats: ReplicationStats::default(),
            out: Outputs::new(),
        }
    }

    pub fn stats(&self) -> ReplicationStats {
        self.stats
    }

    pub fn holds(&self, chunk: &ChunkId) -> bool {
        self.held.contains_key(chunk)
    }

    /// Whether this node is full.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Whether `peer` (a neighbour) said it is full.
    pub fn neighbour_full(&self, peer: &PeerId) -> bool {
        self.neighbours.get(peer).is_some_and(|n| n.full)
    }

    /// The peers known to hold `chunk` (neighbours' announcements and offers).
    pub fn known_holders(&self, chunk: &ChunkId) -> Option<&BTreeSet<PeerId>> {
        self.known.get(chunk)
    }

    /// Whether `peer` is known to hold `chunk` (a neighbour's announcement or an offer).
    pub fn known_holder(&self, chunk: &ChunkId, peer: &PeerId) -> bool {
        self.known_holders(chunk).is_some_and(|hs| hs.contains(peer))
    }

    /// Chunks others are known to hold, in id order from `from` (audits pick among them).
    pub fn known_chunks_from(&self, from: &ChunkId) -> impl Iterator<Item = ChunkId> + '_ {
        self.known.range(*from..).map(|(c, _)| *c)
    }

    /// Chunks held, with their sizes.
    pub fn held(&self) -> impl Iterator<Item = (&ChunkId, u32)> {
        self.held.iter().map(|(c, h)| (c, h.bytes))
    }

    fn announce(&mut self, to: Vec<PeerId>, held: Vec<ChunkId>, released: Vec<ChunkId>) {
        if !to.is_empty() {
            self.out.push_back(Output::Announce { to, held, released, full: self.full });
        }
    }

    fn everyone(&self) -> Vec<PeerId> {
        self.neighbours.keys().copied().collect()
    }

    fn forget_holder(&mut self, peer: &PeerId) {
        self.known.retain(|_, hs| {
            hs.remove(peer);
            !hs.is_empty()
        });
        self.failed.retain(|(_, p)| p != peer);
        let gone: Vec<ChunkId> = self.pending.iter().filter(|(_, (p, _))| p == peer).map(|(c, _)| *c).collect();
        for c in gone {
            self.pending.remove(&c);
        }
    }

    fn on_link(&mut self, now: Millis, ev: LinkEvent) {
        self.unreachable.on_link(now, &ev);
        match ev {
            LinkEvent::Up { peer, .. } => {
                if peer != self.me && !self.neighbours.contains_key(&peer) {
                    self.neighbours.insert(peer, Neighbour::default());
                    let all: Vec<ChunkId> = self.held.keys().copied().collect();
                    self.announce(vec![peer], all, vec![]);
                }
            }
            LinkEvent::Down { peer, .. } => {
                if self.neighbours.remove(&peer).is_some() {
                    // Chunks it held with us are checked against the network at the next round.
                    let base = self.cfg.check_interval_ms;
                    for (c, h) in self.held.iter_mut() {
                        if self.known.get(c).is_some_and(|hs| hs.contains(&peer)) {
                            h.check_at = h.check_at.min(now);
                            h.calm_ms = base;
                        }
                    }
                    self.forget_holder(&peer);
                }
            }
            LinkEvent::DialFailed { .. } => {}
        }
    }

    fn unknow(&mut self, chunk: &ChunkId, peer: &PeerId) {
        if let Some(hs) = self.known.get_mut(chunk) {
            hs.remove(peer);
            if hs.is_empty() {
                self.known.remove(chunk);
            }
        }
    }

    /// The network's closest peers to a chunk we hold: offer it to the members of its replica
    /// set (those with room) that are not known to hold it. A member we could not dial lately
    /// (both of us behind NATs, say) is offered it through the next ranked peer we can reach,
    /// a spare that then offers it on.
    fn on_found(&mut self, now: Millis, chunk: ChunkId, peers: Vec<Found>) {
        if !self.held.contains_key(&chunk) {
            return;
        }
        let eligible = peers
            .iter()
            .filter(|f| f.peer == self.me || !f.full || f.holds)
            .map(|f| f.peer)
            .chain(std::iter::once(self.me));
        let holding: BTreeSet<PeerId> = peers.iter().filter(|f| f.holds).map(|f| f.peer).collect();
        let ranked = replica_set(&chunk, eligible, self.cfg.rf + self.cfg.spare_copies);
        let set = &ranked[..ranked.len().min(self.cfg.rf)];
        let blocked = set.iter().filter(|m| self.unreachable.contains(now, m) && !holding.contains(m)).count();
        let stand_ins = ranked[set.len()..].iter().filter(|m| !self.unreachable.contains(now, m)).take(blocked);
        let targets: Vec<PeerId> =
            set.iter().filter(|m| !self.unreachable.contains(now, m)).chain(stand_ins).copied().collect();
        tracing::trace!(target: "swarm::replica", node = %self.me.short(), chunk = %chunk.short(), found = ?peers.iter().map(|f| (f.peer.short(), f.holds, f.full)).collect::<Vec<_>>(), targets = ?targets.iter().map(|p| p.short()).collect::<Vec<_>>(), "found");
        let mut offers = 0;
        for m in targets {
            if m == self.me || holding.contains(&m) || self.offered.contains_key(&(chunk, m)) {
                continue;
            }
            self.offered.insert((chunk, m), now + self.cfg.check_interval_ms);
            self.stats.offers += 1;
            offers += 1;
            self.out.push_back(Output::Offer { to: m, chunk });
        }
        if offers > 0 || peers.iter().all(|f| f.peer == self.me) {
            self.urgent.insert((now + URGENT_CHECK_MS, chunk));
        }
        // Settled: a full replica set, every member (ourselves included) holding it.
        let settled = offers == 0
            && set.len() == self.cfg.rf
            && set.iter().all(|m| *m == self.me || holding.contains(m))
            && blocked == 0;
        let (base, max) = (self.cfg.check_interval_ms, self.cfg.check_interval_max_ms.max(self.cfg.check_interval_ms));
        if let Some(h) = self.held.get_mut(&chunk) {
            h.calm_ms = if settled { h.calm_ms.saturating_mul(2).clamp(base, max) } else { base };
            h.check_at = now + h.calm_ms;
        }
        // Surplus: far from the chunk, and the whole replica set (others than us) holds it.
        let surplus = !ranked.contains(&self.me)
            && set.len() == self.cfg.rf
            && set.iter().all(|m| holding.contains(m))
            && !self.pinned.contains(&chunk);
        if surplus {
            self.stats.drops += 1;
            self.out.push_back(Output::Drop { chunk });
        }
    }

    /// A neighbour that had no room has room again: the chunks we hold whose replica set it
    /// now belongs to (fewer than `rf` peers with room nearer, us included) are checked at the
    /// next round rather than at their calm interval, and offered to it.
    fn recheck_for(&mut self, now: Millis, peer: &PeerId) {
        let (me, them) = (Key::of_peer(&self.me), Key::of_peer(peer));
        let nobody = BTreeSet::new();
        let joined: Vec<ChunkId> = self
            .held
            .keys()
            .filter(|c| {
                let key = Key::of_chunk(c);
                let me_nearer = key.distance(&me) < key.distance(&them);
                self.nearer_with_room(&key, peer, &nobody) + usize::from(me_nearer) < self.cfg.rf
            })
            .copied()
            .collect();
        let base = self.cfg.check_interval_ms;
        for c in joined {
            if let Some(h) = self.held.get_mut(&c) {
                h.check_at = h.check_at.min(now);
                h.calm_ms = base;
            }
        }
    }

    /// How far our own view reaches: the distance to our `2 * rf`-th closest neighbour (None:
    /// fewer neighbours than that, we see everyone). The topology links every node to its XOR
    /// neighbourhood, so within this radius nobody closer to a chunk can hide from us; beyond
    /// it, the peers closest to a chunk are mostly not our neighbours, and our view would name
    /// us responsible for chunks that belong elsewhere (a copy fetched, then dropped).
    fn view_radius(&self) -> Option<Distance> {
        let me = Key::of_peer(&self.me);
        let hood = closest(&me, self.neighbours.keys().copied(), 2 * self.cfg.rf);
        if hood.len() < 2 * self.cfg.rf {
            return None;
        }
        hood.last().map(|p| Key::of_peer(p).distance(&me))
    }

    /// Whether we belong to the replica set of `chunk`, among ourselves and the neighbours with
    /// room (a full neighbour counts only for chunks it already holds), for a chunk within our
    /// view radius.
    fn responsible_for(&self, chunk: &ChunkId, holders: &BTreeSet<PeerId>, radius: Option<Distance>) -> bool {
        if radius.is_some_and(|r| Key::of_peer(&self.me).distance(&Key::of_chunk(chunk)) > r) {
            return false;
        }
        // In the replica set exactly when fewer than `rf` eligible peers are nearer than we are
        // (keys are distinct, so distances are): a count, not a sort, for every chunk of a round.
        self.nearer_with_room(&Key::of_chunk(chunk), &self.me, holders) < self.cfg.rf
    }

    /// The neighbours other than `than` nearer to `key` than `than` is, that have room (a full
    /// one counts only if it is among `holders`), counted up to `rf`: whether `than` belongs to
    /// the replica set is all that is asked.
    fn nearer_with_room(&self, key: &Key, than: &PeerId, holders: &BTreeSet<PeerId>) -> usize {
        let d = key.distance(&Key::of_peer(than));
        self.neighbours
            .iter()
            .filter(|(p, n)| *p != than && (!n.full || holders.contains(p)))
            .filter(|(p, _)| key.distance(&Key::of_peer(p)) < d)
            .take(self.cfg.rf)
            .count()
    }

    /// One repair round: fetch what we should hold and do not, within the byte budget.
    fn round(&mut self, now: Millis) {
        let expired: Vec<(ChunkId, PeerId)> =
            self.pending.iter().filter(|(_, (_, d))| *d <= now).map(|(c, (p, _))| (*c, *p)).collect();
        for (c, p) in expired {
            self.pending.remove(&c);
            self.failed.insert((c, p));
            self.stats.failures += 1;
        }
        self.offered.retain(|_, until| *until > now);
        self.dropped.retain(|_, until| *until > now);
        let due: Vec<ChunkId> = self
            .held
            .iter()
            .filter(|(_, h)| h.check_at <= now)
            .map(|(c, _)| *c)
            .take(self.cfg.lookups_per_round)
            .collect();
        for c in due {
            // Until the answer sets the next one (a lookup that never ends is retried then).
            if let Some(h) = self.held.get_mut(&c) {
                h.check_at = now + h.calm_ms;
            }
            self.stats.lookups += 1;
            self.out.push_back(Output::Lookup { chunk: c });
        }
        let all: Vec<ChunkId> = self.known.keys().copied().collect();
        self.ask(now, all, Ask::Round);
    }

    /// Refill the repair budget: `repair_bytes_per_round` per `repair_interval_ms`, accrued
    /// continuously, never more than one round's worth (a token bucket).
    fn refill(&mut self, now: Millis) {
        let cap = self.cfg.repair_bytes_per_round;
        let elapsed = now.saturating_sub(self.tokens_at);
        let add = u128::from(elapsed) * u128::from(cap) / u128::from(self.cfg.repair_interval_ms.max(1));
        self.tokens = (u128::from(self.tokens) + add).min(u128::from(cap)) as u64;
        self.tokens_at = now;
    }

    /// Ask for the chunks among `chunks` that we should hold and do not, within the budget.
    /// Rounds ask for everything known; an offer or an announcement asks at once for what it
    /// names (a new chunk must not wait a round with a single copy).
    fn ask(&mut self, now: Millis, chunks: Vec<ChunkId>, why: Ask) {
        let round = why == Ask::Round;
        if self.full {
            return;
        }
        self.refill(now);
        let radius = self.view_radius();
        let mut asks = Vec::new();
        for chunk in chunks {
            let Some(holders) = self.known.get(&chunk) else { continue };
            if self.held.contains_key(&chunk) || self.pending.contains_key(&chunk) {
                continue;
            }
            if why != Ask::Offered && self.dropped.get(&chunk).is_some_and(|until| *until > now) {
                continue;
            }
            // An offer comes from a holder whose lookup named us: it saw farther than we do.
            if why != Ask::Offered && !self.responsible_for(&chunk, holders, radius) {
                continue;
            }
            // Ask the holder closest to the chunk that has not failed us for it.
            let usable = holders.iter().copied().filter(|p| !self.failed.contains(&(chunk, *p)));
            let key = Key::of_chunk(&chunk);
            let Some(from) = usable.min_by_key(|p| key.distance(&Key::of_peer(p))) else { continue };
            let cost = u64::from(self.chunk_bytes_max);
            if cost > self.tokens {
                if round {
                    self.stats.throttled_rounds += 1;
                }
                break;
            }
            self.tokens -= cost;
            asks.push((chunk, from));
        }
        for (chunk, from) in asks {
            self.pending.insert(chunk, (from, now + self.cfg.request_timeout_ms));
            self.stats.requests += 1;
            self.out.push_back(Output::Request { to: from, chunk });
        }
    }
}

impl Core for ReplicationCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Link(ev) => self.on_link(now, ev),
            Input::Stored { chunk, bytes } => {
                self.pending.remove(&chunk);
                // A new chunk is checked against the network at the next round.
                let fresh = HeldChunk { bytes, check_at: now, calm_ms: self.cfg.check_interval_ms };
                if self.held.insert(chunk, fresh).is_none() {
                    let to = self.everyone();
                    self.announce(to, vec![chunk], vec![]);
                }
            }
            Input::Published { chunk, bytes } => {
                self.pinned.insert(chunk);
                self.handle(now, Input::Stored { chunk, bytes });
                if let Some(h) = self.held.get_mut(&chunk) {
                    h.check_at = now + self.cfg.check_interval_ms;
                    self.stats.lookups += 1;
                    self.out.push_back(Output::Lookup { chunk });
                }
            }
            Input::Dropped { chunk } => {
                self.pinned.remove(&chunk);
                self.dropped.insert(chunk, now + DROP_COOLDOWN_CHECKS * self.cfg.check_interval_ms);
                if self.held.remove(&chunk).is_some() {
                    let to = self.everyone();
                    self.announce(to, vec![], vec![chunk]);
                }
            }
            Input::Room { full } => {
                if full != self.full {
                    self.full = full;
                    let to = self.everyone();
                    self.announce(to, vec![], vec![]);
                }
            }
            Input::Holdings { from, held, released, full } => {
                let Some(n) = self.neighbours.get_mut(&from) else { return };
                let room_again = n.full && !full;
                n.full = full;
                if room_again {
                    self.recheck_for(now, &from);
                }
                for c in &held {
                    self.known.entry(*c).or_default().insert(from);
                }
                for c in released {
                    self.unknow(&c, &from);
                }
                self.ask(now, held, Ask::Announced);
            }
            Input::Failed { from, chunk } => {
                if self.pending.get(&chunk).is_some_and(|(p, _)| *p == from) {
                    self.pending.remove(&chunk);
                    self.stats.failures += 1;
                    if self.neighbours.contains_key(&from) {
                        self.failed.insert((chunk, from));
                    } else {
                        self.unknow(&chunk, &from);
                    }
                }
            }
            Input::NotStored { chunk } => {
                self.pending.remove(&chunk);
            }
            Input::Offer { from, chunk } => {
                tracing::trace!(target: "swarm::replica", node = %self.me.short(), chunk = %chunk.short(), from = %from.short(), "offered");
                if from != self.me && !self.held.contains_key(&chunk) {
                    self.dropped.remove(&chunk);
                    self.known.entry(chunk).or_default().insert(from);
                    self.ask(now, vec![chunk], Ask::Offered);
                }
            }
            Input::Found { chunk, peers } => self.on_found(now, chunk, peers),
            Input::Unpinned { chunk } => {
                self.pinned.remove(&chunk);
            }
            Input::Kept { chunk, bytes } => {
                self.pinned.insert(chunk);
                self.handle(now, Input::Stored { chunk, bytes });
            }
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        while let Some(&(at, chunk)) = self.urgent.first() {
            if at > now {
                break;
            }
            self.urgent.pop_first();
            if self.held.contains_key(&chunk) {
                self.stats.lookups += 1;
                self.out.push_back(Output::Lookup { chunk });
            }
        }
        if now >= self.next_round {
            self.next_round = now + self.cfg.repair_interval_ms;
            self.round(now);
        }
    }

    fn next_timeout(&self) -> Option<Millis> {
        Some(self.urgent.first().map_or(self.next_round, |(at, _)| (*at).min(self.next_round)))
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        debug_assert!(!self.neighbours.contains_key(&self.me), "linked to ourselves");
        debug_assert!(self.known.values().all(|hs| !hs.is_empty() && !hs.contains(&self.me)));
        debug_assert!(self.pending.keys().all(|c| !self.held.contains_key(c)), "asking for what we hold");
        debug_assert!(self.pinned.iter().all(|c| self.held.contains_key(c)), "pinned but not held");
        debug_assert!(self.failed.iter().all(|(_, p)| self.neighbours.contains_key(p)));
    }
}
