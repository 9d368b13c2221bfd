//! Lookups, a sub-machine of the content service: iterative XOR lookups ([`Lookup`]) over the
//! link set. A question goes to a linked peer, or through the linked peer whose answer named the
//! one asked (`Relay`: an answerer is linked to every peer it names). A replica-set lookup also
//! goes further, along the chain of answerers that led to a peer (up to [`MAX_RELAYS`] relays):
//! one relay hop reaches peers two links away, and the peers nearest a key are often farther
//! (measured: such lookups found all `rf` nearest in about half of the cases at 150 nodes).
//! A peer none of this reaches is not asked: lookups rarely open links (fetches route instead,
//! see `routes.rs`).
//! A question slow past `query_stall_ms` gives its slot to the next candidate (its answer still
//! counts); past `query_timeout_ms` it has failed. Both are timers in one ordered set.

use crate::config::RoutingConfig;
use crate::content::ChunkId;
use crate::links::LinkView;
use crate::routing::{closest, Key, Lookup, LookupConfig};
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::{LookupMsg, NodeInfo, RelayRoutes, MAX_RELAYS};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Lookups waiting for a free slot.
const MAX_WAITING_LOOKUPS: usize = 1024;
/// Answerers one lookup reports to topology, at most.
const MAX_MET: usize = 64;
/// Questions sent per call to `advance` at most (a lookup asks `alpha` at a time; this bounds
/// the loop when every candidate fails at once).
const MAX_ASKS_PER_ADVANCE: usize = 64;

/// What a lookup is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// Replica check of a chunk we hold.
    Check(ChunkId),
    /// A fetch's search for holders.
    Fetch(u64),
    /// For topology: our own key (the neighbourhood) or a random key in a bucket.
    Refresh,
    /// For another subsystem (sync: a record's replica set): the live peers closest to a key.
    Peers(Key),
}

impl Purpose {
    /// Asks peers along chains of up to `MAX_RELAYS` relays: lookups that must end at the
    /// peers nearest the key (a replica set; topology's own neighbourhood: a self-lookup that
    /// stopped at two hops found a returning node's neighbours only after four rounds, 40 s).
    /// Fetches and replica checks ask one relay away at most (their holders are named by the
    /// answers before them).
    fn relays_far(self) -> bool {
        matches!(self, Purpose::Peers(_) | Purpose::Refresh)
    }
}

/// What the answers said of a peer.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Info {
    pub full: bool,
    pub holds: bool,
    /// Said by the peer itself (overrides what others said of it).
    own: bool,
}

/// A question to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ask {
    Direct {
        to: PeerId,
        msg: LookupMsg,
    },
    /// Along `path` (relays, the first linked to us, the last linked to `to`).
    Via {
        path: Vec<PeerId>,
        to: PeerId,
        msg: LookupMsg,
    },
    /// Over a link asked for: `to` was named as a table contact closer to the target than the
    /// answerer's links, and only a fetch's lookup pays a dial to ask it.
    Dial {
        to: PeerId,
        msg: LookupMsg,
    },
}

/// A finished lookup.
pub(super) struct Finished {
    pub purpose: Purpose,
    pub target: Key,
    /// The closest peers that answered, nearest first.
    pub result: Vec<PeerId>,
    pub info: BTreeMap<PeerId, Info>,
    /// Peer -> the answerer that named it (linked to it).
    pub via: BTreeMap<PeerId, PeerId>,
    /// The relays that reached peers not linked to us.
    pub paths: RelayRoutes,
    /// Peers that answered (alive and reachable: for topology's table).
    pub met: Vec<PeerId>,
    /// Peers answers named as table contacts (not linked to the answerer: perhaps stale).
    pub contacts: Vec<PeerId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Stall,
    Fail,
}

struct Query {
    target: Key,
    purpose: Purpose,
    lookup: Lookup,
    via: BTreeMap<PeerId, PeerId>,
    /// The relays that reach peers not linked to us (the shortest chain heard of).
    paths: RelayRoutes,
    info: BTreeMap<PeerId, Info>,
    /// Questions in flight -> (stall at, fail at).
    asked: BTreeMap<PeerId, (Millis, Millis)>,
    met: Vec<PeerId>,
    contacts: Vec<PeerId>,
    /// Questions that asked for a link (replica-set lookups).
    dials: usize,
}

/// Links a replica-set lookup may ask for, to peers no link or relay reaches.
const MAX_DIALS_PER_PEERS_LOOKUP: usize = 3;

pub(super) struct Lookups {
    me: PeerId,
    cfg: RoutingConfig,
    queries: BTreeMap<u64, Query>,
    waiting: VecDeque<(Key, Purpose)>,
    next_id: u64,
    timers: BTreeSet<(Millis, u64, PeerId, Timer)>,
    asks: VecDeque<Ask>,
    finished: VecDeque<Finished>,
    /// Questions asked so far (for the stats).
    pub questions: u64,
    /// Linked peers that let a question stall since the last `take_unresponsive`.
    unresponsive: Vec<PeerId>,
}

impl Lookups {
    pub fn new(me: PeerId, cfg: RoutingConfig) -> Self {
        Lookups {
            me,
            cfg,
            queries: BTreeMap::new(),
            waiting: VecDeque::new(),
            next_id: 0,
            timers: BTreeSet::new(),
            asks: VecDeque::new(),
            finished: VecDeque::new(),
            questions: 0,
            unresponsive: Vec::new(),
        }
    }

    /// Start a lookup of `target`, seeded with the links closest to it (or queue it while
    /// `max_lookups` run). False if it could not even be queued.
    pub fn start(&mut self, now: Millis, target: Key, purpose: Purpose, links: &LinkView) -> bool {
        if self.queries.len() >= self.cfg.max_lookups {
            if self.waiting.len() >= MAX_WAITING_LOOKUPS {
                return false;
            }
            self.waiting.push_back((target, purpose));
            return true;
        }
        let id = self.next_id;
        self.next_id += 1;
        let seeds = closest(&target, links.peers(), self.cfg.k.max(self.cfg.alpha));
        // A replica set is wanted soon (a read waits for it), and under sessions churn a peer
        // that does not answer in time has most often just gone offline.
        let await_stalled = !matches!(purpose, Purpose::Peers(_));
        let lookup = Lookup::new(target, seeds, LookupConfig { k: self.cfg.k, alpha: self.cfg.alpha, await_stalled });
        let q = Query {
            target,
            purpose,
            lookup,
            via: BTreeMap::new(),
            paths: BTreeMap::new(),
            info: BTreeMap::new(),
            asked: BTreeMap::new(),
            met: vec![],
            contacts: vec![],
            dials: 0,
        };
        self.queries.insert(id, q);
        self.advance(now, id, links);
        true
    }

    /// Drop the lookups for a purpose that no longer needs them (a fetch that finished).
    pub fn cancel(&mut self, purpose: Purpose) {
        let ids: Vec<u64> = self.queries.iter().filter(|(_, q)| q.purpose == purpose).map(|(id, _)| *id).collect();
        for id in ids {
            self.forget(id);
        }
        self.waiting.retain(|(_, p)| *p != purpose);
    }

    fn forget(&mut self, id: u64) -> Option<Query> {
        let q = self.queries.remove(&id)?;
        for (p, (stall, fail)) in &q.asked {
            self.timers.remove(&(*stall, id, *p, Timer::Stall));
            self.timers.remove(&(*fail, id, *p, Timer::Fail));
        }
        Some(q)
    }

    /// Send the lookup's next questions; finish it when it is done.
    fn advance(&mut self, now: Millis, id: u64, links: &LinkView) {
        for _ in 0..MAX_ASKS_PER_ADVANCE {
            let Some(q) = self.queries.get_mut(&id) else { return };
            let next = q.lookup.next_queries();
            if next.is_empty() {
                break;
            }
            for p in next {
                let msg = LookupMsg::find(id, q.target);
                let relays = q.paths.get(&p).filter(|path| {
                    path.first().is_some_and(|v| links.contains(v)) && (path.len() == 1 || q.purpose.relays_far())
                });
                let ask = if links.contains(&p) {
                    Ask::Direct { to: p, msg }
                } else if let Some(path) = relays {
                    Ask::Via { path: path.clone(), to: p, msg }
                } else if matches!(q.purpose, Purpose::Fetch(_)) && q.contacts.contains(&p) {
                    // Where links leave a gap near the target (a region no link of the peers
                    // asked reaches yet), routes and relayed questions stop short of the
                    // holders; the contact that fills the gap is worth one dial to a fetch.
                    Ask::Dial { to: p, msg }
                } else if matches!(q.purpose, Purpose::Peers(_)) && q.dials < MAX_DIALS_PER_PEERS_LOOKUP {
                    // A replica-set lookup must name the peers nearest the key, not the nearest
                    // within two hops; the sync core links to them next anyway.
                    q.dials += 1;
                    Ask::Dial { to: p, msg }
                } else {
                    // No path to it this lookup may take (a chain too long for its purpose, or
                    // its first relay no longer linked).
                    q.lookup.on_failure(&p);
                    continue;
                };
                // A relayed question travels every relay's link both ways.
                let hops = match &ask {
                    Ask::Via { path, .. } => path.len() as u64 + 1,
                    Ask::Direct { .. } | Ask::Dial { .. } => 1,
                };
                let fail = now + self.cfg.query_timeout_ms;
                let stall = (now + self.cfg.query_stall_ms * hops).min(fail);
                q.asked.insert(p, (stall, fail));
                self.timers.insert((stall, id, p, Timer::Stall));
                self.timers.insert((fail, id, p, Timer::Fail));
                self.questions += 1;
                self.asks.push_back(ask);
            }
        }
        if self.queries.get(&id).is_some_and(|q| q.lookup.is_done()) {
            self.finish(now, id, links);
        }
    }

    fn finish(&mut self, now: Millis, id: u64, links: &LinkView) {
        let Some(q) = self.forget(id) else { return };
        self.finished.push_back(Finished {
            purpose: q.purpose,
            target: q.target,
            result: q.lookup.result(),
            info: q.info,
            via: q.via,
            paths: q.paths,
            met: q.met,
            contacts: q.contacts,
        });
        while self.queries.len() < self.cfg.max_lookups {
            let Some((target, purpose)) = self.waiting.pop_front() else { break };
            self.start(now, target, purpose, links);
        }
    }

    fn unask(&mut self, id: u64, peer: &PeerId) -> bool {
        let Some((stall, fail)) = self.queries.get_mut(&id).and_then(|q| q.asked.remove(peer)) else {
            return false;
        };
        self.timers.remove(&(stall, id, *peer, Timer::Stall));
        self.timers.remove(&(fail, id, *peer, Timer::Fail));
        true
    }

    /// An answer from `from` (directly or relayed) to lookup `id`.
    pub fn on_answer(&mut self, now: Millis, from: PeerId, id: u64, peers: &[NodeInfo], links: &LinkView) {
        if !self.unask(id, &from) {
            return;
        }
        let me = self.me;
        let Some(q) = self.queries.get_mut(&id) else { return };
        for n in peers.iter().filter(|n| n.peer != me) {
            let own = n.peer == from;
            let e = q.info.entry(n.peer).or_default();
            if own {
                // What a peer says of itself overrides what others said of it.
                *e = Info { full: n.full, holds: n.holds, own: true };
            } else if !e.own {
                e.full = n.full;
                e.holds |= n.holds;
            }
            if !own && !n.contact && !links.contains(&n.peer) {
                q.via.entry(n.peer).or_insert(from);
                // The chain that reached `from`, then `from`: kept when it is the shortest yet.
                let mut path = q.paths.get(&from).cloned().unwrap_or_default();
                path.push(from);
                if path.len() <= MAX_RELAYS && q.paths.get(&n.peer).is_none_or(|old| old.len() > path.len()) {
                    q.paths.insert(n.peer, path);
                }
            }
            if n.contact && !links.contains(&n.peer) && q.contacts.len() < MAX_MET && !q.contacts.contains(&n.peer) {
                q.contacts.push(n.peer);
            }
        }
        q.lookup.on_answer(&from, peers.iter().map(|n| n.peer).filter(|p| *p != me));
        if q.met.len() < MAX_MET {
            q.met.push(from);
        }
        self.advance(now, id, links);
    }

    fn fail(&mut self, now: Millis, id: u64, peer: &PeerId, links: &LinkView) {
        if self.unask(id, peer) {
            if let Some(q) = self.queries.get_mut(&id) {
                q.lookup.on_failure(peer);
            }
            self.advance(now, id, links);
        }
    }

    /// A peer is gone: questions to it, or through it, have failed.
    pub fn peer_gone(&mut self, now: Millis, peer: &PeerId, links: &LinkView) {
        let asked: Vec<(u64, PeerId)> = self
            .queries
            .iter()
            .flat_map(|(id, q)| {
                q.asked
                    .keys()
                    .filter(|p| *p == peer || q.paths.get(*p).and_then(|path| path.first()) == Some(peer))
                    .map(move |p| (*id, *p))
            })
            .collect();
        for (id, p) in asked {
            self.fail(now, id, &p, links);
        }
    }

    pub fn handle_timeout(&mut self, now: Millis, links: &LinkView) {
        while let Some(&(at, id, peer, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Stall => {
                    if let Some(q) = self.queries.get_mut(&id) {
                        q.lookup.on_stall(&peer);
                    }
                    if links.contains(&peer) && !self.unresponsive.contains(&peer) {
                        self.unresponsive.push(peer);
                    }
                    self.advance(now, id, links);
                }
                Timer::Fail => {
                    // Its stall timer went first (earlier); the question itself goes now.
                    if let Some(q) = self.queries.get_mut(&id) {
                        q.asked.remove(&peer);
                        q.lookup.on_failure(&peer);
                    }
                    self.advance(now, id, links);
                }
            }
        }
    }

    pub fn next_timeout(&self) -> Option<Millis> {
        self.timers.first().map(|(t, ..)| *t)
    }

    /// Linked peers that let a question stall (asked directly: no relay to blame).
    pub fn take_unresponsive(&mut self) -> Vec<PeerId> {
        std::mem::take(&mut self.unresponsive)
    }

    pub fn poll_ask(&mut self) -> Option<Ask> {
        self.asks.pop_front()
    }

    pub fn poll_finished(&mut self) -> Option<Finished> {
        self.finished.pop_front()
    }

    pub fn check_invariants(&self) {
        debug_assert!(self.queries.len() <= self.cfg.max_lookups, "too many lookups");
        debug_assert!(self.waiting.len() <= MAX_WAITING_LOOKUPS);
        debug_assert!(
            self.timers.len() <= 2 * self.queries.values().map(|q| q.asked.len()).sum::<usize>(),
            "a timer for a question not asked"
        );
    }
}
