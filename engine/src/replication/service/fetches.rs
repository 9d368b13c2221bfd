//! Fetches, a sub-machine of the content service: each fetch in progress, what it is trying
//! (routes first, then the holders a lookup found, nearest first, directly or through a peer
//! linked to them), and its timers (the fetch's deadline, the pause before a retry) in one
//! ordered set.

use crate::content::ChunkId;
use crate::time::Millis;
use crate::types::PeerId;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Steps a fetch's trail keeps.
const MAX_TRAIL: usize = 24;

/// Which stage a fetch is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// Asking a linked holder, or routed requests out.
    Routing,
    /// A lookup for holders is running.
    Looking,
    /// Trying the holders the lookup found.
    Asking,
    /// Waiting to look again.
    Pausing,
}

pub(super) struct Fetch {
    pub chunk: ChunkId,
    pub started: Millis,
    pub deadline: Millis,
    pub stage: Stage,
    /// Holders still to try, nearest first.
    pub candidates: VecDeque<PeerId>,
    /// Holder -> a peer that named it in the lookup (linked to it): asked to get the chunk for
    /// us when we are not linked to the holder ourselves but are to it, or when our dial to the
    /// holder failed (both of us behind NATs, say: then we link to the namer if need be).
    pub vias: BTreeMap<PeerId, PeerId>,
    /// Holders whose direct ask failed: asked again only through their via.
    pub via_only: BTreeSet<PeerId>,
    /// Whether the request out now goes through a via (`GetVia`).
    pub asking_via: bool,
    /// The peer a request of ours is out to now.
    pub asking: Option<PeerId>,
    /// The links our routed requests went out through.
    pub first_hops: Vec<PeerId>,
    /// Lookups started so far.
    pub attempts: u32,
    retry_at: Option<Millis>,
    hedge_at: Option<Millis>,
    /// What happened, for the log line of a failed fetch (bounded by `MAX_TRAIL`).
    pub trail: Vec<String>,
}

impl Fetch {
    pub fn note(&mut self, now: Millis, what: impl FnOnce() -> String) {
        if self.trail.len() < MAX_TRAIL {
            self.trail.push(format!("{}: {}", now.saturating_sub(self.started), what()));
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Due {
    /// No routed answer yet: route through more links.
    Hedge,
    Retry,
    Deadline,
}

#[derive(Default)]
pub(super) struct Fetches {
    map: BTreeMap<u64, Fetch>,
    timers: BTreeSet<(Millis, u64, Due)>,
}

impl Fetches {
    pub fn start(&mut self, id: u64, chunk: ChunkId, now: Millis, timeout_ms: Millis) -> &mut Fetch {
        let deadline = now + timeout_ms;
        if let Some(old) = self.remove(id) {
            tracing::warn!(id, chunk = %old.chunk.short(), "fetch id reused: the earlier fetch is dropped");
        }
        self.timers.insert((deadline, id, Due::Deadline));
        self.map.entry(id).or_insert(Fetch {
            chunk,
            started: now,
            deadline,
            stage: Stage::Routing,
            candidates: VecDeque::new(),
            vias: BTreeMap::new(),
            via_only: BTreeSet::new(),
            asking_via: false,
            asking: None,
            first_hops: vec![],
            attempts: 0,
            retry_at: None,
            hedge_at: None,
            trail: vec![],
        })
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Fetch> {
        self.map.get_mut(&id)
    }

    pub fn get(&self, id: u64) -> Option<&Fetch> {
        self.map.get(&id)
    }

    pub fn remove(&mut self, id: u64) -> Option<Fetch> {
        let f = self.map.remove(&id)?;
        self.timers.remove(&(f.deadline, id, Due::Deadline));
        if let Some(r) = f.retry_at {
            self.timers.remove(&(r, id, Due::Retry));
        }
        if let Some(h) = f.hedge_at.filter(|h| *h < Millis::MAX) {
            self.timers.remove(&(h, id, Due::Hedge));
        }
        Some(f)
    }

    /// Look again at `at`.
    pub fn pause_until(&mut self, id: u64, at: Millis) {
        let Some(f) = self.map.get_mut(&id) else { return };
        if let Some(r) = f.retry_at.replace(at) {
            self.timers.remove(&(r, id, Due::Retry));
        }
        f.stage = Stage::Pausing;
        self.timers.insert((at, id, Due::Retry));
    }

    /// Route through more links at `at` unless an answer comes first (once per fetch).
    pub fn hedge_at(&mut self, id: u64, at: Millis) {
        let Some(f) = self.map.get_mut(&id) else { return };
        if f.hedge_at.is_none() {
            f.hedge_at = Some(at);
            self.timers.insert((at, id, Due::Hedge));
        }
    }

    /// The timers due by `now`, in time order (removed; a retry's fetch leaves `Pausing`).
    pub fn due(&mut self, now: Millis) -> Vec<(u64, Due)> {
        let mut due = vec![];
        while let Some(&(at, id, what)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(f) = self.map.get_mut(&id) {
                match what {
                    Due::Retry => f.retry_at = None,
                    // Spent: a fetch hedges once.
                    Due::Hedge => f.hedge_at = Some(Millis::MAX),
                    Due::Deadline => {}
                }
            }
            due.push((id, what));
        }
        due
    }

    pub fn next_timeout(&self) -> Option<Millis> {
        self.timers.first().map(|(t, ..)| *t)
    }

    pub fn check_invariants(&self) {
        let retries = self.map.values().filter(|f| f.retry_at.is_some()).count();
        let hedges = self.map.values().filter(|f| f.hedge_at.is_some_and(|h| h < Millis::MAX)).count();
        debug_assert_eq!(self.timers.len(), self.map.len() + retries + hedges, "one deadline per fetch, one per pause");
    }
}
