//! Replication laws on a model network: nodes join and leave (crash: their copies are gone), each
//! live node linked to its XOR neighbourhood (the topology's job, done here by an oracle), chunks
//! published at random nodes and placed on their replica set; repair rounds run between events.
//! Publishing puts a chunk on its author and on the live peer closest to it (what a lookup
//! finds); repair does the rest. Checked: every chunk keeps at least `rf` live copies and sits
//! on the closest live peer with room, nobody asks for a chunk it holds, full nodes are passed
//! over, and repair stays within its byte budget.

use super::core::{Found, Input, Output, ReplicationCore};
use crate::config::ReplicationConfig;
use crate::content::ChunkId;
use crate::core::{Core, LinkEvent};
use crate::routing::{closest, replica_set, Key};
use crate::types::PeerId;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// Links per node to its XOR-closest live peers (made symmetric).
const NEIGHBOURHOOD: usize = 6;
const CHUNK_BYTES: u32 = 1000;

struct Node {
    core: ReplicationCore,
    inventory: BTreeSet<ChunkId>,
    capacity: usize,
}

struct Model {
    cfg: ReplicationConfig,
    nodes: BTreeMap<PeerId, Node>,
    links: BTreeSet<(PeerId, PeerId)>,
    now: u64,
    duplicate_requests: u64,
    requested_bytes_per_node_round: Vec<u64>,
}

fn peer(i: u16) -> PeerId {
    let mut b = [0u8; 32];
    b[0..2].copy_from_slice(&i.to_be_bytes());
    b[31] = 0x5A;
    PeerId(b)
}

fn chunk(i: u16) -> ChunkId {
    ChunkId(Key::of_peer(&PeerId([i as u8; 32])).0)
}

impl Model {
    fn new(cfg: ReplicationConfig) -> Self {
        Model {
            cfg,
            nodes: BTreeMap::new(),
            links: BTreeSet::new(),
            now: 0,
            duplicate_requests: 0,
            requested_bytes_per_node_round: vec![],
        }
    }

    /// The oracle topology: each live node linked to its NEIGHBOURHOOD closest, both ways.
    fn wanted_links(&self) -> BTreeSet<(PeerId, PeerId)> {
        let live: Vec<PeerId> = self.nodes.keys().copied().collect();
        let mut links = BTreeSet::new();
        for p in &live {
            let others = live.iter().copied().filter(|q| q != p);
            for q in closest(&Key::of_peer(p), others, NEIGHBOURHOOD) {
                links.insert((*p.min(&q), *p.max(&q)));
            }
        }
        links
    }

    fn relink(&mut self) {
        let want = self.wanted_links();
        let gone: Vec<_> = self.links.difference(&want).copied().collect();
        let new: Vec<_> = want.difference(&self.links).copied().collect();
        for (a, b) in gone {
            for (x, y) in [(a, b), (b, a)] {
                if let Some(n) = self.nodes.get_mut(&x) {
                    n.core.handle(self.now, Input::Link(LinkEvent::Down { peer: y, clean: false }));
                }
            }
        }
        for (a, b) in new {
            for (x, y, outbound) in [(a, b, true), (b, a, false)] {
                self.nodes.get_mut(&x).unwrap().core.handle(self.now, Input::Link(LinkEvent::Up { peer: y, outbound }));
            }
        }
        self.links = want;
        self.settle();
    }

    fn linked(&self, a: &PeerId, b: &PeerId) -> bool {
        self.links.contains(&(*a.min(b), *a.max(b)))
    }

    /// Put a chunk in a node's inventory and tell its core (and whether it is now full).
    fn store(&mut self, at: &PeerId, c: ChunkId) {
        let now = self.now;
        let n = self.nodes.get_mut(at).unwrap();
        n.inventory.insert(c);
        n.core.handle(now, Input::Stored { chunk: c, bytes: CHUNK_BYTES });
        let full = n.inventory.len() >= n.capacity;
        n.core.handle(now, Input::Room { full });
    }

    /// Deliver everything the cores want to say, until nobody says anything.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut msgs = vec![];
            for (id, n) in self.nodes.iter_mut() {
                while let Some(o) = n.core.poll_output() {
                    msgs.push((*id, o));
                }
            }
            if msgs.is_empty() {
                return;
            }
            for (from, o) in msgs {
                match o {
                    Output::Announce { to, held, released, full } => {
                        let to: Vec<PeerId> = to.into_iter().filter(|t| self.linked(&from, t)).collect();
                        for t in to {
                            let input = Input::Holdings { from, held: held.clone(), released: released.clone(), full };
                            self.nodes.get_mut(&t).unwrap().core.handle(self.now, input);
                        }
                    }
                    Output::Request { to, chunk } => {
                        if self.nodes[&from].inventory.contains(&chunk) {
                            self.duplicate_requests += 1;
                        }
                        // Over a link, or one made for the purpose (an offer may come from afar).
                        let served = self.nodes.get(&to).is_some_and(|n| n.inventory.contains(&chunk));
                        let room = self.nodes[&from].inventory.len() < self.nodes[&from].capacity;
                        if served && room {
                            self.store(&from, chunk);
                        } else {
                            // Served, but the asker filled up meanwhile (it asked for several):
                            // no fault of the holder.
                            let input =
                                if served { Input::NotStored { chunk } } else { Input::Failed { from: to, chunk } };
                            let now = self.now;
                            self.nodes.get_mut(&from).unwrap().core.handle(now, input);
                        }
                    }
                    Output::Lookup { chunk } => {
                        // The routing layer, as an oracle: the live peers closest to the chunk,
                        // at least 8, and on until `rf + spare_copies` of them have room (enough
                        // to rank every holder that may keep a copy).
                        let all = closest(&Key::of_chunk(&chunk), self.nodes.keys().copied(), usize::MAX);
                        let mut found = vec![];
                        let mut with_room = 0;
                        for p in all {
                            if found.len() >= 8 && with_room >= self.cfg.rf + self.cfg.spare_copies {
                                break;
                            }
                            let room = self.has_room(&p);
                            with_room += usize::from(room);
                            let holds = self.nodes[&p].inventory.contains(&chunk);
                            found.push(Found { peer: p, full: !room, holds });
                        }
                        let now = self.now;
                        self.nodes.get_mut(&from).unwrap().core.handle(now, Input::Found { chunk, peers: found });
                    }
                    Output::Offer { to, chunk } => {
                        let now = self.now;
                        if let Some(n) = self.nodes.get_mut(&to) {
                            n.core.handle(now, Input::Offer { from, chunk });
                        }
                    }
                    Output::Drop { chunk } => {
                        let now = self.now;
                        let n = self.nodes.get_mut(&from).unwrap();
                        n.inventory.remove(&chunk);
                        n.core.handle(now, Input::Dropped { chunk });
                        let full = n.inventory.len() >= n.capacity;
                        n.core.handle(now, Input::Room { full });
                    }
                }
            }
        }
        panic!("the model network does not settle");
    }

    fn join(&mut self, p: PeerId, capacity: usize) {
        let core = ReplicationCore::new(p, self.cfg.clone(), CHUNK_BYTES, self.now + self.cfg.repair_interval_ms);
        self.nodes.insert(p, Node { core, inventory: BTreeSet::new(), capacity });
        self.nodes.get_mut(&p).unwrap().core.handle(self.now, Input::Room { full: capacity == 0 });
        self.relink();
    }

    fn crash(&mut self, p: &PeerId) {
        self.nodes.remove(p);
        self.relink();
    }

    /// The author keeps a copy (if it has room) and places one on the closest peer with room,
    /// as a lookup would find it.
    /// Returns false when no peer had room for it (the publish fails).
    fn publish(&mut self, at: PeerId, c: ChunkId) -> bool {
        if self.has_room(&at) {
            self.store(&at, c);
        }
        let room: Vec<PeerId> = self.nodes.keys().copied().filter(|p| self.has_room(p)).collect();
        if let Some(root) = replica_set(&c, room, 1).first().copied() {
            self.store(&root, c);
        }
        self.settle();
        !self.holders(&c).is_empty()
    }

    fn has_room(&self, p: &PeerId) -> bool {
        let n = &self.nodes[p];
        n.inventory.len() < n.capacity
    }

    fn rounds(&mut self, k: usize) {
        for _ in 0..k {
            self.now += self.cfg.repair_interval_ms;
            let before: BTreeMap<PeerId, u64> = self.nodes.iter().map(|(p, n)| (*p, n.core.stats().requests)).collect();
            for n in self.nodes.values_mut() {
                n.core.handle_timeout(self.now);
                n.core.check_invariants();
            }
            self.settle();
            // Everything asked in the round, including what offers made during it asked for.
            for (p, n) in &self.nodes {
                if let Some(b) = before.get(p) {
                    self.requested_bytes_per_node_round.push((n.core.stats().requests - b) * u64::from(CHUNK_BYTES));
                }
            }
        }
    }

    /// Repair rounds until two in a row ask for nothing and offer nothing (repair is
    /// rate-limited, so a large backlog takes several rounds); false if it never quiets down.
    fn repair_until_quiet(&mut self, max_rounds: usize) -> bool {
        let mut quiet = 0;
        for _ in 0..max_rounds {
            let work = |m: &Model| -> u64 {
                m.nodes.values().map(|n| n.core.stats().requests + n.core.stats().offers + n.core.stats().drops).sum()
            };
            let before = work(self);
            self.rounds(1);
            quiet = if work(self) == before { quiet + 1 } else { 0 };
            if quiet >= 2 {
                return true;
            }
        }
        false
    }

    fn holders(&self, c: &ChunkId) -> Vec<PeerId> {
        self.nodes.iter().filter(|(_, n)| n.inventory.contains(c)).map(|(p, _)| *p).collect()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Join { full: bool },
    Crash(prop::sample::Index),
    Publish(prop::sample::Index),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(|f| Op::Join { full: f }),
        2 => any::<prop::sample::Index>().prop_map(Op::Crash),
        3 => any::<prop::sample::Index>().prop_map(Op::Publish),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn every_chunk_keeps_rf_copies_through_joins_and_crashes(ops in prop::collection::vec(op(), 1..60), rf in 2usize..4) {
        let cfg = ReplicationConfig { rf, repair_bytes_per_round: u64::from(CHUNK_BYTES) * 4, ..ReplicationConfig::default() };
        let mut m = Model::new(cfg.clone());
        let mut next_peer = 0u16;
        let mut next_chunk = 0u16;
        let mut published: BTreeSet<ChunkId> = BTreeSet::new();
        // Copies each chunk had at the last check: a chunk may vanish only if that was one
        // (which the check allows only when no second peer had room for it).
        let mut copies: BTreeMap<ChunkId, usize> = BTreeMap::new();
        // A settled chunk is checked at the longest interval: repair gets that long.
        let check_rounds = (cfg.check_interval_max_ms / cfg.repair_interval_ms) as usize + 1;
        for _ in 0..8 {
            m.join(peer(next_peer), usize::MAX);
            next_peer += 1;
        }
        for op in ops {
            match op {
                Op::Join { full } => {
                    // Some newcomers have room for one chunk only: they must be passed over.
                    m.join(peer(next_peer), if full { 1 } else { usize::MAX });
                    next_peer += 1;
                }
                Op::Crash(i) => {
                    if m.nodes.len() > rf + 1 {
                        let victim = *m.nodes.keys().nth(i.index(m.nodes.len())).unwrap();
                        m.crash(&victim);
                    }
                }
                Op::Publish(i) => {
                    let at = *m.nodes.keys().nth(i.index(m.nodes.len())).unwrap();
                    let c = chunk(next_chunk);
                    next_chunk += 1;
                    if m.publish(at, c) {
                        published.insert(c);
                    }
                }
            }
            // Repair gets time between events (crashes one at a time, as the definition of
            // repairable churn requires): the longest check interval (a lost copy whose holder was not a
            // neighbour of the others is noticed by the periodic check), then until it has
            // nothing left to do.
            m.rounds(check_rounds);
            prop_assert!(m.repair_until_quiet(200), "repair never finishes");
            for c in &published {
                let holders = m.holders(c);
                if holders.is_empty() {
                    prop_assert!(copies.get(c).is_some_and(|n| *n <= 1), "chunk {:?} lost from {:?} copies", c, copies.get(c));
                    continue;
                }
                copies.insert(*c, holders.len());
                let room: Vec<PeerId> = m.nodes.iter()
                    .filter(|(_, n)| n.inventory.contains(c) || n.inventory.len() < n.capacity)
                    .map(|(p, _)| *p).collect();
                let want = rf.min(room.len());
                prop_assert!(holders.len() >= want, "chunk {:?} has {} live copies, want {}", c, holders.len(), want);
                // The closest peer with room holds it: a lookup for the chunk ends there.
                let root = replica_set(c, room.iter().copied(), 1)[0];
                prop_assert!(holders.contains(&root), "chunk {:?} is not on its closest peer {:?} (cap {}, inv {:?}); holders {:?}; room {:?}", c, root, m.nodes[&root].capacity, m.nodes[&root].inventory, holders, replica_set(c, room.iter().copied(), 6));
            }
        }
        // Surplus copies go at their holder's next check (every check interval): give every
        // holder two.
        m.rounds(2 * check_rounds);
        prop_assert!(m.repair_until_quiet(200), "repair never finishes");
        // And then every chunk still held anywhere is on its whole replica set.
        for c in published.iter().filter(|c| !m.holders(c).is_empty()) {
            let room: Vec<PeerId> = m.nodes.iter()
                .filter(|(_, n)| n.inventory.contains(c) || n.inventory.len() < n.capacity)
                .map(|(p, _)| *p).collect();
            let holders = m.holders(c);
            for member in replica_set(c, room.iter().copied(), rf) {
                prop_assert!(holders.contains(&member), "chunk {:?} missing on a replica-set member after settling", c);
            }
            // Surplus copies are let go: none beyond the replica set and its spares.
            let keep = replica_set(c, room.iter().copied(), rf + cfg.spare_copies);
            prop_assert!(holders.iter().all(|h| keep.contains(h)), "chunk {:?} kept far away: {:?} vs {:?}", c, holders, keep);
        }
        prop_assert_eq!(m.duplicate_requests, 0, "a node asked for a chunk it already held");
        let budget = cfg.repair_bytes_per_round;
        prop_assert!(m.requested_bytes_per_node_round.iter().all(|b| *b <= budget), "repair over its budget");
    }
}

#[test]
fn a_full_peer_is_passed_over_and_the_chunk_migrates() {
    let cfg = ReplicationConfig { rf: 2, ..ReplicationConfig::default() };
    let mut m = Model::new(cfg);
    for i in 0..6 {
        m.join(peer(i), usize::MAX);
    }
    let c = chunk(1);
    // The closest peer to the chunk is full (it says so): the next two take the chunk.
    let set = replica_set(&c, m.nodes.keys().copied(), 6);
    m.nodes.get_mut(&set[0]).unwrap().capacity = 0;
    m.nodes.get_mut(&set[0]).unwrap().core.handle(0, Input::Room { full: true });
    m.settle();
    m.publish(set[5], c);
    m.rounds(6);
    let holders = m.holders(&c);
    assert!(!holders.contains(&set[0]), "the full peer stores nothing");
    assert!(holders.contains(&set[1]) && holders.contains(&set[2]), "the next closest take its place: {holders:?}");
}

/// A chunk that arrives when this node has no room left is not its holder's fault: once there
/// is room again, the same holder is asked again. (A holder that failed is not asked again for
/// that chunk while the link lasts.)
#[test]
fn a_replica_this_node_could_not_store_is_asked_of_the_same_holder_again() {
    let cfg = ReplicationConfig::default();
    let (me, holder) = (peer(1), peer(2));
    let c = chunk(7);
    let requests = |core: &mut ReplicationCore| {
        let mut to = vec![];
        while let Some(o) = core.poll_output() {
            if let Output::Request { to: p, chunk } = o {
                assert_eq!(chunk, c);
                to.push(p);
            }
        }
        to
    };
    for not_stored in [true, false] {
        let mut core = ReplicationCore::new(me, cfg.clone(), CHUNK_BYTES, cfg.repair_interval_ms);
        core.handle(0, Input::Room { full: false });
        core.handle(0, Input::Link(LinkEvent::Up { peer: holder, outbound: true }));
        core.handle(0, Input::Holdings { from: holder, held: vec![c], released: vec![], full: false });
        assert_eq!(requests(&mut core), vec![holder], "asked at once: the only other peer holds it");
        let now = 10;
        if not_stored {
            core.handle(now, Input::Room { full: true });
            core.handle(now, Input::NotStored { chunk: c });
            core.handle(now, Input::Room { full: false });
        } else {
            core.handle(now, Input::Failed { from: holder, chunk: c });
        }
        core.handle_timeout(2 * cfg.repair_interval_ms);
        let again = if not_stored { vec![holder] } else { vec![] };
        assert_eq!(requests(&mut core), again, "not stored here: {not_stored}");
        core.check_invariants();
    }
}
