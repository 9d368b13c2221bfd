//! One record's replica state and its merge rules. A replica keeps the most recent versions it has
//! seen (at most `max_versions`, ordered last-writer-wins: timestamp, then writer id, then version
//! id), and everything else follows from that set alone:
//!
//! - the **winner** is, among kept versions no other kept version dominates, the latest;
//! - the **conflict log** is every other kept version that lost to a concurrent kept version
//!   (a later write that did not see it). Versions a later write *saw* are superseded, not lost:
//!   they stay in the history until the window moves past them. (Only with skewed clocks can
//!   the winner itself have lost to a version that an earlier-dated write then superseded; it is
//!   the value read, not a log entry.)
//!
//! Because the state is a function of the set of versions received (the top of a total order),
//! applying versions is idempotent, commutative and associative, and two replicas that received
//! the same versions hold the same state, whatever the order. The window is upward closed in the
//! order a loser loses by, so the conflict log inside it is exact: a kept version is logged iff
//! some version ever received was concurrent with it and later.

use super::clock::{Causality, ClockError, VectorClock};
use super::record::{Version, VersionId};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A version's place in the last-writer-wins order.
pub type OrderKey = (u64, crate::PeerId, VersionId);

fn order_key(v: &Version) -> OrderKey {
    (v.timestamp_ms(), v.writer(), v.id())
}

/// What applying a version did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Kept; `evicted` fell out of the window to make room (the oldest).
    Kept { evicted: Option<VersionId> },
    /// Already kept.
    Duplicate,
    /// Older than every kept version of a full window: the replica already holds `max_versions`
    /// later ones, so this one would be the first to go.
    BelowWindow,
}

/// How a kept version stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Winner,
    /// Lost to a concurrent, later version: listed in the conflict log.
    Conflict,
    /// Seen by a later write (dominated) and never lost to a concurrent one: history.
    Superseded,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordState {
    max_versions: usize,
    versions: BTreeMap<OrderKey, Version>,
}

/// Two different versions with equal clocks did not see each other (one writer signed twice at
/// the same clock): concurrent for every purpose here.
fn concurrent(a: &Version, b: &Version) -> bool {
    match a.clock().compare(b.clock()) {
        Causality::Concurrent => true,
        Causality::Equal => a.id() != b.id(),
        _ => false,
    }
}

impl RecordState {
    pub fn new(max_versions: usize) -> Self {
        assert!(max_versions >= 1, "a record keeps at least its winner");
        RecordState { max_versions, versions: BTreeMap::new() }
    }

    pub fn max_versions(&self) -> usize {
        self.max_versions
    }

    pub fn len(&self) -> usize {
        self.versions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// Take one version (already checked by [`Version::open`], of this record).
    pub fn apply(&mut self, v: Version) -> Applied {
        let key = order_key(&v);
        if self.versions.contains_key(&key) {
            return Applied::Duplicate;
        }
        if self.versions.len() >= self.max_versions {
            let Some((oldest, _)) = self.versions.first_key_value() else { return Applied::BelowWindow };
            if key < *oldest {
                return Applied::BelowWindow;
            }
        }
        self.versions.insert(key, v);
        let evicted =
            if self.versions.len() > self.max_versions { self.versions.pop_first().map(|(k, _)| k.2) } else { None };
        debug_assert!(self.versions.len() <= self.max_versions, "record window over its bound");
        Applied::Kept { evicted }
    }

    /// Take everything `other` keeps (the join of two replica states).
    pub fn merge(&mut self, other: &RecordState) {
        for v in other.versions.values() {
            self.apply(v.clone());
        }
    }

    /// Kept versions, oldest first in last-writer-wins order.
    pub fn versions(&self) -> impl DoubleEndedIterator<Item = &Version> {
        self.versions.values()
    }

    pub fn get(&self, id: &VersionId) -> Option<&Version> {
        self.versions.values().find(|v| v.id() == *id)
    }

    pub fn contains(&self, id: &VersionId) -> bool {
        self.get(id).is_some()
    }

    pub fn ids(&self) -> Vec<VersionId> {
        self.versions.keys().map(|k| k.2).collect()
    }

    fn dominated(&self, v: &Version) -> bool {
        self.versions.values().any(|w| w.clock().dominates(v.clock()))
    }

    /// The value readers see: the latest version no kept version dominates.
    pub fn winner(&self) -> Option<&Version> {
        // Newest first: the first undominated one is the latest of them.
        self.versions.values().rev().find(|v| !self.dominated(v))
    }

    /// How a kept version stands.
    pub fn standing(&self, v: &Version) -> Standing {
        if self.winner().is_some_and(|w| w.id() == v.id()) {
            return Standing::Winner;
        }
        let key = order_key(v);
        // Only later versions can beat it; the window keeps all of them.
        let lost = self.versions.range(key..).skip(1).any(|(_, w)| concurrent(v, w));
        if lost {
            return Standing::Conflict;
        }
        // An undominated version other than the winner is earlier than the winner and did not
        // see it: it lost to it. So whatever did not lose is dominated.
        debug_assert!(self.dominated(v), "an undominated non-winner that lost to nothing");
        Standing::Superseded
    }

    /// The conflict log: kept versions other than the winner that lost to a concurrent, later
    /// one; newest first.
    pub fn conflicts(&self) -> Vec<&Version> {
        self.versions.values().rev().filter(|v| self.standing(v) == Standing::Conflict).collect()
    }

    /// The clock a new write must beat: the pointwise max of every kept version's clock.
    pub fn clock(&self) -> Result<VectorClock, ClockError> {
        let mut c = VectorClock::new();
        for v in self.versions.values() {
            c.merge(v.clock())?;
        }
        Ok(c)
    }

    /// The timestamp for a new write at `now_unix_ms`: later than every kept version, so a write
    /// that saw them also wins the last-writer-wins order (a writer's clock may lag another's).
    pub fn next_timestamp(&self, now_unix_ms: u64) -> u64 {
        let latest = self.versions.keys().map(|k| k.0).max().unwrap_or(0);
        now_unix_ms.max(latest.saturating_add(1))
    }

    /// Digest for anti-entropy: SHA-256 of the kept version ids in order (the winner and its
    /// clock are in them: an id covers everything the writer signed). Empty state: all zeros.
    pub fn digest(&self) -> [u8; 32] {
        if self.versions.is_empty() {
            return [0; 32];
        }
        let mut h = Sha256::new();
        h.update(b"swarm-sync-digest-v1");
        for k in self.versions.keys() {
            h.update(k.2 .0);
        }
        h.finalize().into()
    }

    /// The oldest kept key, if the window is full (anything below it would not be kept).
    pub fn floor(&self) -> Option<OrderKey> {
        if self.versions.len() >= self.max_versions {
            self.versions.first_key_value().map(|(k, _)| *k)
        } else {
            None
        }
    }

    /// Would a version with this key be kept if it arrived?
    pub fn would_keep(&self, v: &Version) -> bool {
        let key = order_key(v);
        !self.versions.contains_key(&key) && self.floor().is_none_or(|f| key > f)
    }
}
