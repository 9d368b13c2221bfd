//! Where a record lives, as this node knows it: a sub-machine of the sync core. The routing
//! table alone names the true closest peers only for keys near this node (its far buckets hold a
//! few peers of a large region), and keeps peers that went offline until someone fails to reach
//! them. So the core asks for a lookup of a record's key (the live peers closest to it, found by
//! content routing) when it writes, reads or replicates the record, keeps the answer for
//! `replica_lookup_ms`, and leaves out peers a link to could not be made.

use super::record::RecordId;
use super::service::record_key;
use crate::routing::Key;
use crate::time::Millis;
use crate::types::PeerId;
use std::collections::{BTreeMap, BTreeSet};

/// Records whose found replica set is kept (the oldest answer goes first).
pub const MAX_FOUND_RECORDS: usize = 4096;
/// Lookups asked for and not answered yet.
pub const MAX_LOOKUPS_IN_FLIGHT: usize = 64;
/// Peers remembered as unreachable.
pub const MAX_DOWN_PEERS: usize = 1024;

pub struct Placement {
    lookup_ms: Millis,
    check_ms: Millis,
    /// Per record: when a lookup answered, and the live peers it found nearest first.
    found: BTreeMap<RecordId, (Millis, Vec<PeerId>)>,
    /// Answer times, for dropping the oldest at the bound.
    by_age: BTreeSet<(Millis, RecordId)>,
    looking: BTreeMap<Key, RecordId>,
    /// Peers a link to could not be made, since when.
    down: BTreeMap<PeerId, Millis>,
    down_by_age: BTreeSet<(Millis, PeerId)>,
    /// Records this node keeps but does not tend, with the state (digest) it last handed on to
    /// the set a lookup found.
    handed: BTreeMap<RecordId, [u8; 32]>,
}

impl Placement {
    /// `lookup_ms`: how long an answer serves reads and writes; `check_ms`: how long it serves
    /// a keeper's check of its own place.
    pub fn new(lookup_ms: Millis, check_ms: Millis) -> Self {
        Placement {
            lookup_ms,
            check_ms,
            found: BTreeMap::new(),
            by_age: BTreeSet::new(),
            looking: BTreeMap::new(),
            down: BTreeMap::new(),
            down_by_age: BTreeSet::new(),
            handed: BTreeMap::new(),
        }
    }

    /// Live peers a lookup found close to `record` (nearest first; empty if none asked).
    pub fn found(&self, record: &RecordId) -> &[PeerId] {
        self.found.get(record).map_or(&[], |(_, p)| p.as_slice())
    }

    /// Is the answer held for `record` young enough to place this node among its keepers
    /// (younger than `keeper_check_ms`)?
    pub fn fresh(&self, now: Millis, record: &RecordId) -> bool {
        self.found.get(record).is_some_and(|(t, _)| now < t + self.check_ms)
    }

    /// Was this state of `record` handed on already?
    pub fn handed(&self, record: &RecordId, digest: &[u8; 32]) -> bool {
        self.handed.get(record) == Some(digest)
    }

    /// Was some state of `record` handed on (this node keeps it without tending)?
    pub fn handed_any(&self, record: &RecordId) -> bool {
        self.handed.contains_key(record)
    }

    /// This state of `record` went to the set found. At `MAX_FOUND_RECORDS` the entry with the
    /// smallest record id is forgotten (that record may be handed on once more).
    pub fn hand_off(&mut self, record: &RecordId, digest: [u8; 32]) {
        if self.handed.len() >= MAX_FOUND_RECORDS && !self.handed.contains_key(record) {
            self.handed.pop_first();
        }
        self.handed.insert(record.clone(), digest);
    }

    /// This node tends `record` (again): nothing handed on is remembered for it.
    pub fn tended(&mut self, record: &RecordId) {
        self.handed.remove(record);
    }

    /// Is a lookup for `record` under way?
    pub fn looking(&self, record: &RecordId) -> bool {
        self.looking.contains_key(&record_key(record))
    }

    pub fn is_down(&self, peer: &PeerId) -> bool {
        self.down.contains_key(peer)
    }

    /// The key to look up for `record`, unless an answer younger than `max_age_ms` is held or a
    /// lookup is under way (or too many are).
    pub fn want_lookup(&mut self, now: Millis, record: &RecordId, max_age_ms: Millis) -> Option<Key> {
        if self.found.get(record).is_some_and(|(t, _)| now < t + max_age_ms) {
            return None;
        }
        let key = record_key(record);
        if self.looking.contains_key(&key) || self.looking.len() >= MAX_LOOKUPS_IN_FLIGHT {
            return None;
        }
        self.looking.insert(key, record.clone());
        Some(key)
    }

    /// The answer to a lookup: the record it was for (`None` if none asked).
    pub fn on_found(&mut self, now: Millis, target: &Key, peers: Vec<PeerId>) -> Option<RecordId> {
        let record = self.looking.remove(target)?;
        for p in &peers {
            self.up(p);
        }
        if peers.is_empty() {
            // Nobody answered (no links yet): no answer to keep; the next need asks again.
            return Some(record);
        }
        if let Some((t, _)) = self.found.remove(&record) {
            self.by_age.remove(&(t, record.clone()));
        }
        if self.found.len() >= MAX_FOUND_RECORDS {
            if let Some((_, old)) = self.by_age.pop_first() {
                self.found.remove(&old);
            }
        }
        self.by_age.insert((now, record.clone()));
        self.found.insert(record.clone(), (now, peers));
        Some(record)
    }

    /// Ask again at the next chance (a replica's link went down).
    pub fn stale(&mut self, record: &RecordId) {
        if let Some((t, _)) = self.found.remove(record) {
            self.by_age.remove(&(t, record.clone()));
        }
    }

    pub fn dial_failed(&mut self, now: Millis, peer: PeerId) {
        self.up(&peer);
        if self.down.len() >= MAX_DOWN_PEERS {
            if let Some((_, old)) = self.down_by_age.pop_first() {
                self.down.remove(&old);
            }
        }
        self.down.insert(peer, now);
        self.down_by_age.insert((now, peer));
    }

    /// A link to `peer` came up, or a lookup met it: reachable.
    pub fn up(&mut self, peer: &PeerId) {
        if let Some(t) = self.down.remove(peer) {
            self.down_by_age.remove(&(t, *peer));
        }
    }

    /// Forget unreachable peers older than `replica_lookup_ms` (they may be back).
    pub fn expire(&mut self, now: Millis) {
        while let Some(&(t, p)) = self.down_by_age.first() {
            if now < t + self.lookup_ms {
                break;
            }
            self.down_by_age.pop_first();
            self.down.remove(&p);
        }
    }

    pub fn check_invariants(&self) {
        debug_assert!(self.found.len() <= MAX_FOUND_RECORDS, "found replica sets over their bound");
        debug_assert_eq!(self.found.len(), self.by_age.len(), "found index out of step");
        debug_assert!(self.looking.len() <= MAX_LOOKUPS_IN_FLIGHT, "lookups over their bound");
        debug_assert_eq!(self.down.len(), self.down_by_age.len(), "down index out of step");
        debug_assert!(self.down.len() <= MAX_DOWN_PEERS, "down peers over their bound");
        debug_assert!(self.handed.len() <= MAX_FOUND_RECORDS, "handed-on records over their bound");
    }
}
