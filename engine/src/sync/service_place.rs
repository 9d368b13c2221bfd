//! Where records go, a part of the sync core: which peers replicate a record (the `rf` nearest
//! its key this node knows of), whether this node keeps and tends a record (reconciles it in
//! rounds, on new links and after changes) or only hands its state on, and the lookups that
//! decide it. See [`KEEPERS_PER_RF`] for why holders that are not keepers leave records alone.

use super::{Output, SyncCore, KEEPERS_PER_RF, MAX_LINK_WAIT_MS, RELAY_WAIT_MS};
use crate::core::{Core, Effect};
use crate::observer::{Event, SyncNote};
use crate::routing::{closest, Key};
use crate::sync::record::RecordId;
use crate::sync::replica::ReplicaInput;
use crate::sync::service::record_key;
use crate::time::Millis;
use crate::types::PeerId;
use std::collections::{BTreeMap, BTreeSet};

impl SyncCore {
    /// The peers other than this node that replicate `record`: of this node, its links, the
    /// routing table's closest and the live peers a lookup found, the `rf` closest to the
    /// record's key (peers that could not be reached left out, unless linked since).
    pub fn replica_set(&self, record: &RecordId) -> Vec<PeerId> {
        self.replicas_with_me(record).into_iter().filter(|p| *p != self.me).collect()
    }

    /// The record's replica set as this node sees it, this node included if it is one.
    pub(super) fn replicas_with_me(&self, record: &RecordId) -> Vec<PeerId> {
        let key = record_key(record);
        let mut candidates = self.table.borrow().closest(&key, self.rf);
        candidates.extend(self.view.peers());
        candidates.extend_from_slice(self.placement.found(record));
        candidates.retain(|p| !self.placement.is_down(p) || self.view.contains(p));
        candidates.push(self.me);
        candidates.sort_unstable();
        candidates.dedup();
        closest(&key, candidates, self.rf)
    }

    /// Does this node tend `record`? Yes with writes of it pending or as one of its writers (a
    /// writer follows its records, so its next write sees the others'), or when a fresh lookup
    /// puts it among the `KEEPERS_PER_RF * rf` nearest the key; no when the lookup puts it
    /// farther; `None` while no fresh lookup answered. Links and routing table are not enough
    /// to decide: a node back from offline, its table empty, would take itself for the nearest
    /// to everything it holds, and guessing from a full table (tried: one of the `rf` nearest
    /// by table and links) spread records again and doubled the divergent reads at 300 nodes.
    pub(super) fn tends(&self, now: Millis, record: &RecordId) -> Option<bool> {
        if self.queue.has_pending(record) || self.wrote(record) {
            return Some(true);
        }
        if !self.placement.fresh(now, record) {
            return None;
        }
        let key = record_key(record);
        let mine = Key::of_peer(&self.me).distance(&key);
        let closer = self.placement.found(record).iter().filter(|p| Key::of_peer(p).distance(&key) < mine).count();
        Some(closer < KEEPERS_PER_RF * self.rf)
    }

    /// Has this node written `record` (it keeps a version of its own)?
    pub(super) fn wrote(&self, record: &RecordId) -> bool {
        self.replica.record(record).is_some_and(|s| s.versions().any(|v| v.writer() == self.me))
    }

    /// Hand this node's state of a record it does not tend on to the `rf` nearest the lookup
    /// found, once per state. The first time (what this node held before it was placed: a
    /// former keeper, a node back from offline) links to the unlinked ones are asked for, and
    /// they get it when the link comes up; later states go to linked ones only (a reader's later
    /// states come from the replicas themselves, and handing them back over new links cost more
    /// links than anything else: measured 8,400 of 17,000 link requests at 300 nodes).
    pub(super) fn hand_off(&mut self, now: Millis, record: &RecordId) {
        let Some(digest) = self.replica.record(record).map(|s| s.digest()) else { return };
        if self.placement.handed(record, &digest) {
            return;
        }
        let dial = !self.placement.handed_any(record);
        self.placement.hand_off(record, digest);
        let set: Vec<PeerId> = self
            .placement
            .found(record)
            .iter()
            .take(self.rf)
            .filter(|p| dial || self.view.contains(p))
            .copied()
            .collect();
        self.reach(now, record, set, false);
    }

    /// Reconcile `record` with each of `set` (linked ones, and ones a relay route reaches, at
    /// once; links asked for to the others, which reconcile it when they come up); `read`: ask
    /// them as a read does (always answered).
    pub(super) fn reach(&mut self, now: Millis, record: &RecordId, set: Vec<PeerId>, read: bool) {
        for peer in set.into_iter().filter(|p| *p != self.me) {
            if self.relays.reaches(&peer, &self.view) {
                let records = vec![record.clone()];
                let input =
                    if read { ReplicaInput::Ask { peer, records } } else { ReplicaInput::Exchange { peer, records } };
                self.replica.handle(now, input);
            } else {
                self.out.push_back(Output::Want(peer));
            }
        }
    }

    /// What to do with a held record whose placement may have changed: tended ones go to their
    /// set, others are handed on, undecided ones are looked up.
    pub(super) fn place(&mut self, now: Millis, record: &RecordId) {
        match self.tends(now, record) {
            Some(true) => {
                // Replicas linked or reached by relays at once; the others when a link to them
                // comes up (links are asked for by writes, reads and the queue, not by rounds:
                // a node tending a few records would otherwise hold a link to each replica).
                self.placement.tended(record);
                let set: Vec<PeerId> =
                    self.replica_set(record).into_iter().filter(|p| self.relays.reaches(p, &self.view)).collect();
                self.reach(now, record, set, false);
            }
            Some(false) => self.hand_off(now, record),
            None => self.lookup(now, record),
        }
    }

    /// Look `record` up unless an answer younger than `replica_lookup_ms` is held (reads,
    /// writes, a replica lost).
    pub(super) fn lookup(&mut self, now: Millis, record: &RecordId) {
        self.lookup_within(now, record, self.cfg.replica_lookup_ms);
    }

    pub(super) fn lookup_within(&mut self, now: Millis, record: &RecordId, max_age_ms: Millis) {
        if let Some(key) = self.placement.want_lookup(now, record, max_age_ms) {
            tracing::debug!(me = %self.me.short(), key = %hex::encode(&key.0[..4]), now, "lookup asked");
            self.out.push_back(Output::Lookup(key));
        }
    }

    /// A lookup answered: pending writes go to the set found, reads waiting for it ask the set,
    /// and a held record is placed (see [`SyncCore::place`]): a write acknowledged by peers that
    /// turn out not to be the replicas still reaches the replicas.
    pub(super) fn on_found(&mut self, now: Millis, target: Key, peers: Vec<PeerId>) {
        tracing::debug!(me = %self.me.short(), key = %hex::encode(&target.0[..4]), now, found = peers.len(), "lookup found");
        let noted = peers.clone();
        let Some(record) = self.placement.on_found(now, &target, peers) else { return };
        let note = SyncNote::Found { record: record.clone(), peers: noted };
        self.out.push_back(Output::Effect(Effect::Event(Event::Sync(note))));
        self.refresh_replicas(now);
        self.want_links();
        let set = self.replicas_with_me(&record);
        // Reads of it ask the replicas just found and wait `read_wait_ms` from now, and
        // `MAX_LINK_WAIT_MS` more while links to some of them are being made.
        let at = now + self.cfg.read_wait_ms + self.link_wait(&set);
        let waiting = self.reads.of(&record);
        for op in &waiting {
            self.reads.set_due(*op, at);
        }
        if !waiting.is_empty() {
            self.ask_for_read(now, &record, set);
            // Answers heard before the lookup may already make a quorum of the set found.
            for op in waiting {
                self.answer_if_ready(op);
            }
        }
        // An empty answer (no links yet) places nothing: looking up again at once would loop.
        if !self.placement.found(&record).is_empty() && self.replica.record(&record).is_some() {
            self.place(now, &record);
        }
    }

    /// A read asks `set` (the replicas), and the record's other keepers a lookup found (the
    /// `KEEPERS_PER_RF * rf` nearest) that are linked or reached through relays: a keeper that
    /// was a replica before the set moved holds what the replicas held then.
    pub(super) fn ask_for_read(&mut self, now: Millis, record: &RecordId, set: Vec<PeerId>) {
        let others: Vec<PeerId> =
            self.keepers(record).filter(|p| !set.contains(p) && self.relays.reaches(p, &self.view)).copied().collect();
        self.reach(now, record, set, true);
        self.reach(now, record, others, true);
    }

    /// The record's keepers a lookup found: the `KEEPERS_PER_RF * rf` nearest its key.
    pub(super) fn keepers(&self, record: &RecordId) -> impl Iterator<Item = &PeerId> {
        self.placement.found(record).iter().take(KEEPERS_PER_RF * self.rf)
    }

    /// How much longer a read waits while links to some of `set` (not reached by relays) are
    /// being made (or this node's first links), or while its answers come along relays.
    pub(super) fn link_wait(&self, set: &[PeerId]) -> Millis {
        if !self.joined {
            return MAX_LINK_WAIT_MS; // still joining: its first links are being made
        }
        let mut others = set.iter().filter(|p| **p != self.me);
        if others.clone().any(|p| !self.relays.reaches(p, &self.view)) {
            MAX_LINK_WAIT_MS
        } else if others.any(|p| !self.view.contains(p)) {
            RELAY_WAIT_MS
        } else {
            0
        }
    }

    /// Reconcile with `peers` (linked, or reached by relays) the records this node tends that each of them
    /// replicates; `new_links`: also the records it keeps without tending, to those of `peers`
    /// it handed them on to (the links asked for then). Records whose placement is undecided
    /// are looked up, unless this node handed them on before (kept, left until they change).
    pub(super) fn exchange(&mut self, now: Millis, peers: &BTreeSet<PeerId>, new_links: bool) {
        let mut by_peer: BTreeMap<PeerId, Vec<RecordId>> = BTreeMap::new();
        let records: Vec<RecordId> = self.replica.records().map(|(r, _)| r.clone()).collect();
        for r in records {
            let set = match self.tends(now, &r) {
                Some(true) => self.replica_set(&r),
                Some(false) if new_links => self.placement.found(&r).iter().take(self.rf).copied().collect(),
                Some(false) => continue,
                None => {
                    if !self.placement.handed_any(&r) {
                        self.lookup(now, &r);
                    }
                    continue;
                }
            };
            for p in set {
                if peers.contains(&p) {
                    by_peer.entry(p).or_default().push(r.clone());
                }
            }
        }
        for (peer, records) in by_peer {
            self.replica.handle(now, ReplicaInput::Exchange { peer, records });
        }
    }

    /// Versions a peer sent changed these records: start a reconciliation of them with their
    /// other linked replicas now, so a write reaches the whole replica set in a few round trips
    /// rather than at the next anti-entropy round (a digest each; equal digests end it).
    pub(super) fn propagate(&mut self, now: Millis) {
        let (records, from) = (std::mem::take(&mut self.changed), self.changed_by.take());
        let mut by_peer: BTreeMap<PeerId, Vec<RecordId>> = BTreeMap::new();
        for r in records {
            match self.tends(now, &r) {
                Some(true) => {}
                // Kept without tending: this new state goes on once to the set found.
                Some(false) => {
                    self.hand_off(now, &r);
                    continue;
                }
                None => {
                    self.lookup(now, &r);
                    continue;
                }
            }
            for p in self.replica_set(&r) {
                if Some(p) != from {
                    by_peer.entry(p).or_default().push(r.clone());
                }
            }
        }
        for (peer, records) in by_peer {
            if self.relays.reaches(&peer, &self.view) {
                self.replica.handle(now, ReplicaInput::Exchange { peer, records });
            } else {
                // Reconciled when the link comes up (every shared record is, then).
                self.out.push_back(Output::Want(peer));
            }
        }
    }
}
