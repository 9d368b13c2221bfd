//! Transfers, a sub-machine of the content service: the `GetChunk` requests out, one per (peer,
//! chunk), each with everyone waiting on it (a repair, fetches, peers we fetch it for through
//! `GetVia`) and its deadline. Deadlines are an ordered set: the earliest is the next timeout.

use crate::content::ChunkId;
use crate::time::Millis;
use crate::types::PeerId;
use std::collections::{BTreeMap, BTreeSet};

/// Who waits on a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Waiter {
    /// Our own replica set needs the chunk here.
    Repair,
    Fetch(u64),
    /// A peer asked us to get it for it (`GetVia`).
    Proxy(PeerId),
    /// We check that a peer serves what it announced (`audits.rs`): only the outcome counts.
    Audit,
}

/// One outstanding request and its waiters.
#[derive(Clone, Debug, Default)]
pub(super) struct Get {
    pub repair: bool,
    pub fetches: Vec<u64>,
    pub proxied: Vec<PeerId>,
    pub audit: bool,
    /// Sent as `GetVia`: the peer asked only passes it on, and is not rated for the answer.
    pub via: bool,
    deadline: Millis,
}

impl Get {
    fn is_idle(&self) -> bool {
        !self.repair && !self.audit && self.fetches.is_empty() && self.proxied.is_empty()
    }
}

pub(super) struct Transfers {
    timeout_ms: Millis,
    gets: BTreeMap<(PeerId, ChunkId), Get>,
    deadlines: BTreeSet<(Millis, PeerId, ChunkId)>,
    /// Waiters that are peers (what `GetVia` costs us), over all requests.
    proxied: usize,
}

impl Transfers {
    pub fn new(timeout_ms: Millis) -> Self {
        Transfers { timeout_ms, gets: BTreeMap::new(), deadlines: BTreeSet::new(), proxied: 0 }
    }

    pub fn contains(&self, peer: &PeerId, chunk: &ChunkId) -> bool {
        self.gets.contains_key(&(*peer, *chunk))
    }

    /// How long the request to `peer` for `chunk` has been out, if the peer answers for itself
    /// (not a `GetVia` it passes on).
    pub fn age(&self, now: Millis, peer: &PeerId, chunk: &ChunkId) -> Option<Millis> {
        let g = self.gets.get(&(*peer, *chunk)).filter(|g| !g.via)?;
        Some(now.saturating_sub(g.deadline.saturating_sub(self.timeout_ms)))
    }

    /// The request to `peer` for `chunk` went out as `GetVia`.
    pub fn mark_via(&mut self, peer: &PeerId, chunk: &ChunkId) {
        if let Some(g) = self.gets.get_mut(&(*peer, *chunk)) {
            g.via = true;
        }
    }

    /// Requests we carry for other peers.
    pub fn proxied(&self) -> usize {
        self.proxied
    }

    /// Wait on the request to `peer` for `chunk`; true if it is new (the caller sends it).
    pub fn join(&mut self, now: Millis, peer: PeerId, chunk: ChunkId, w: Waiter) -> bool {
        let new = !self.gets.contains_key(&(peer, chunk));
        let g = self.gets.entry((peer, chunk)).or_insert_with(|| {
            let deadline = now + self.timeout_ms;
            self.deadlines.insert((deadline, peer, chunk));
            Get { deadline, ..Get::default() }
        });
        match w {
            Waiter::Repair => g.repair = true,
            Waiter::Audit => g.audit = true,
            Waiter::Fetch(id) => g.fetches.push(id),
            Waiter::Proxy(p) => {
                if !g.proxied.contains(&p) {
                    g.proxied.push(p);
                    self.proxied += 1;
                }
            }
        }
        new
    }

    /// A fetch no longer waits (it finished another way); an idle request is forgotten.
    pub fn leave(&mut self, peer: PeerId, chunk: ChunkId, fetch: u64) {
        let Some(g) = self.gets.get_mut(&(peer, chunk)) else { return };
        g.fetches.retain(|x| *x != fetch);
        if g.is_idle() {
            self.take(&peer, &chunk);
        }
    }

    /// The request is over (answered or failed): its waiters.
    pub fn take(&mut self, peer: &PeerId, chunk: &ChunkId) -> Option<Get> {
        let g = self.gets.remove(&(*peer, *chunk))?;
        self.deadlines.remove(&(g.deadline, *peer, *chunk));
        self.proxied -= g.proxied.len();
        Some(g)
    }

    /// The chunks asked of `peer`.
    pub fn of_peer(&self, peer: &PeerId) -> Vec<ChunkId> {
        self.gets.range((*peer, ChunkId([0; 32]))..).take_while(|((p, _), _)| p == peer).map(|((_, c), _)| *c).collect()
    }

    /// Requests whose deadline passed (still held: the caller takes them).
    pub fn late(&self, now: Millis) -> Vec<(PeerId, ChunkId)> {
        self.deadlines.iter().take_while(|(d, _, _)| *d <= now).map(|(_, p, c)| (*p, *c)).collect()
    }

    pub fn next_timeout(&self) -> Option<Millis> {
        self.deadlines.first().map(|(d, _, _)| *d)
    }

    pub fn check_invariants(&self) {
        debug_assert_eq!(self.gets.len(), self.deadlines.len(), "one deadline per request");
        debug_assert_eq!(self.proxied, self.gets.values().map(|g| g.proxied.len()).sum::<usize>());
    }
}
