//! The sync queue: every local write waits here until `ack_quorum` replicas of its record have
//! acknowledged it. While no replica is linked (offline), writes accumulate; when links come
//! back they go out in batches; unacknowledged sends are repeated. The queue survives restarts:
//! each write is handed out for storage when queued and deleted when acknowledged; `Restore`
//! brings them back at start. Deadlines are a set ordered by time, not a scan.

use super::config::SyncConfig;
use super::record::{RecordError, RecordId, Version, VersionId};
use super::replica::SyncMessage;
use crate::core::{Core, LinkEvent, Outputs};
use crate::identity::{Envelope, Verifier};
use crate::time::Millis;
use crate::types::PeerId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// The stored layout this node writes and reads.
pub const STORED_VERSION: u8 = 1;

/// A queued write as stored (acknowledgements are not: after a restart a write is sent again,
/// which replicas take as a duplicate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWrite {
    pub version: u8,
    pub envelope: Envelope,
    pub replicas: Vec<PeerId>,
    pub enqueued_unix_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("sync queue holds {max} writes already")]
    Full { max: usize },
    #[error("stored queue entry does not decode: {0}")]
    Malformed(String),
    #[error("stored queue entry has layout version {found}; this node reads {STORED_VERSION}")]
    Layout { found: u8 },
    #[error("stored queue entry under id {stored:?} holds version {actual:?}")]
    WrongId { stored: VersionId, actual: VersionId },
    #[error("stored write: {0}")]
    Record(RecordError),
}

#[derive(Deserialize)]
struct Head {
    version: u8,
}

impl StoredWrite {
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a stored write encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<StoredWrite, QueueError> {
        let head: Head = rmp_serde::from_slice(bytes).map_err(|e| QueueError::Malformed(e.to_string()))?;
        if head.version != STORED_VERSION {
            return Err(QueueError::Layout { found: head.version });
        }
        rmp_serde::from_slice(bytes).map_err(|e| QueueError::Malformed(e.to_string()))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum QueueInput {
    /// A local write (from [`super::ReplicaCore::write`]) and its record's replica set (without
    /// this node).
    Enqueue {
        version: Box<Version>,
        replicas: Vec<PeerId>,
    },
    /// A record's replica set changed (churn): pending writes of it go to the new set.
    Replicas {
        record: RecordId,
        replicas: Vec<PeerId>,
    },
    Link(LinkEvent),
    Ack {
        from: PeerId,
        ids: Vec<VersionId>,
    },
    /// Stored entries read back at start, by the id they were stored under.
    Restore(Vec<(VersionId, Vec<u8>)>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum QueueOp {
    Put { id: VersionId, bytes: Vec<u8> },
    Delete { id: VersionId },
}

#[derive(Clone, Debug, PartialEq)]
pub enum QueueOutput {
    Send {
        to: PeerId,
        msg: SyncMessage,
    },
    Persist(Vec<QueueOp>),
    /// Enough replicas hold the write.
    Acknowledged {
        id: VersionId,
        record: RecordId,
    },
    Refused {
        id: VersionId,
        error: QueueError,
    },
    /// A stored entry that did not restore; the wiring should delete it.
    Discarded {
        id: VersionId,
        error: QueueError,
    },
}

struct Pending {
    version: Version,
    replicas: BTreeSet<PeerId>,
    acked: BTreeSet<PeerId>,
    enqueued_unix_ms: u64,
    /// Last send to each replica.
    sent: BTreeMap<PeerId, Millis>,
}

impl Pending {
    fn done(&self, quorum: usize) -> bool {
        // A replica set smaller than the quorum (a small network) is acknowledged by all of it.
        let need = quorum.min(self.replicas.len()).max(1);
        self.acked.len() >= need
    }
}

pub struct SyncQueue {
    cfg: SyncConfig,
    verifier: Rc<dyn Verifier>,
    unix_epoch_ms: u64,
    pending: BTreeMap<VersionId, Pending>,
    by_age: BTreeSet<(u64, VersionId)>,
    by_record: BTreeMap<RecordId, BTreeSet<VersionId>>,
    /// Per replica, the writes it has not acknowledged.
    waiting: BTreeMap<PeerId, BTreeSet<VersionId>>,
    due: BTreeSet<(Millis, VersionId)>,
    due_at: BTreeMap<VersionId, Millis>,
    linked: BTreeSet<PeerId>,
    out: Outputs<QueueOutput>,
}

impl SyncQueue {
    pub fn new(cfg: SyncConfig, verifier: Rc<dyn Verifier>, unix_epoch_ms: u64) -> Self {
        SyncQueue {
            cfg,
            verifier,
            unix_epoch_ms,
            pending: BTreeMap::new(),
            by_age: BTreeSet::new(),
            by_record: BTreeMap::new(),
            waiting: BTreeMap::new(),
            due: BTreeSet::new(),
            due_at: BTreeMap::new(),
            linked: BTreeSet::new(),
            out: Outputs::new(),
        }
    }

    /// Writes not yet acknowledged by enough replicas.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// How long the oldest pending write has waited, at `now` (across restarts).
    pub fn oldest_pending_age_ms(&self, now: Millis) -> Option<u64> {
        let unix_now = self.unix_epoch_ms.saturating_add(now);
        self.by_age.first().map(|(t, _)| unix_now.saturating_sub(*t))
    }

    /// Has `record` writes waiting for acknowledgement?
    pub fn has_pending(&self, record: &RecordId) -> bool {
        self.by_record.contains_key(record)
    }

    pub fn is_pending(&self, id: &VersionId) -> bool {
        self.pending.contains_key(id)
    }

    /// When the oldest pending write was queued, Unix ms (what the API reports the age from).
    pub fn oldest_enqueued_unix_ms(&self) -> Option<u64> {
        self.by_age.first().map(|(t, _)| *t)
    }

    /// Records with pending writes, in id order, each with the replica set its writes go to.
    pub fn pending_records(&self) -> Vec<(RecordId, BTreeSet<PeerId>)> {
        self.by_record
            .iter()
            .filter_map(|(r, ids)| {
                let first = ids.first().and_then(|id| self.pending.get(id))?;
                Some((r.clone(), first.replicas.clone()))
            })
            .collect()
    }

    /// Replicas that have not acknowledged some pending write, in id order.
    pub fn waiting_on(&self) -> impl Iterator<Item = &PeerId> {
        self.waiting.keys()
    }

    /// Pending ids, oldest first.
    pub fn pending_ids(&self) -> impl Iterator<Item = VersionId> + '_ {
        self.by_age.iter().map(|(_, id)| *id)
    }

    /// Is any replica of a pending write linked? (false with nothing pending)
    pub fn can_send(&self) -> bool {
        self.waiting.iter().any(|(p, ids)| !ids.is_empty() && self.linked.contains(p))
    }

    fn schedule(&mut self, id: VersionId, at: Millis) {
        if let Some(old) = self.due_at.get(&id).copied() {
            if old <= at {
                return;
            }
            self.due.remove(&(old, id));
        }
        self.due.insert((at, id));
        self.due_at.insert(id, at);
    }

    fn insert(&mut self, now: Millis, version: Version, replicas: Vec<PeerId>, enqueued_unix_ms: u64, delay: Millis) {
        let id = version.id();
        let replicas: BTreeSet<PeerId> = replicas.into_iter().collect();
        for r in &replicas {
            self.waiting.entry(*r).or_default().insert(id);
        }
        self.by_age.insert((enqueued_unix_ms, id));
        self.by_record.entry(version.record()).or_default().insert(id);
        let p = Pending { version, replicas, acked: BTreeSet::new(), enqueued_unix_ms, sent: BTreeMap::new() };
        self.pending.insert(id, p);
        self.schedule(id, now + delay);
    }

    fn remove(&mut self, id: VersionId) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        self.by_age.remove(&(p.enqueued_unix_ms, id));
        let record = p.version.record();
        if let Some(set) = self.by_record.get_mut(&record) {
            set.remove(&id);
            if set.is_empty() {
                self.by_record.remove(&record);
            }
        }
        for r in &p.replicas {
            self.unwait(*r, id);
        }
        if let Some(at) = self.due_at.remove(&id) {
            self.due.remove(&(at, id));
        }
        Some(p)
    }

    fn unwait(&mut self, peer: PeerId, id: VersionId) {
        if let Some(set) = self.waiting.get_mut(&peer) {
            set.remove(&id);
            if set.is_empty() {
                self.waiting.remove(&peer);
            }
        }
    }

    fn finish_if_done(&mut self, id: VersionId) {
        if !self.pending.get(&id).is_some_and(|p| p.done(self.cfg.ack_quorum)) {
            return;
        }
        if let Some(p) = self.remove(id) {
            self.out.push_back(QueueOutput::Persist(vec![QueueOp::Delete { id }]));
            self.out.push_back(QueueOutput::Acknowledged { id, record: p.version.record() });
        }
    }

    fn enqueue(&mut self, now: Millis, version: Version, replicas: Vec<PeerId>) {
        let id = version.id();
        if self.pending.contains_key(&id) {
            return;
        }
        if self.pending.len() >= self.cfg.max_pending_writes {
            self.out
                .push_back(QueueOutput::Refused { id, error: QueueError::Full { max: self.cfg.max_pending_writes } });
            return;
        }
        let enqueued_unix_ms = self.unix_epoch_ms.saturating_add(now);
        let stored = StoredWrite {
            version: STORED_VERSION,
            envelope: version.envelope().clone(),
            replicas: replicas.clone(),
            enqueued_unix_ms,
        };
        self.out.push_back(QueueOutput::Persist(vec![QueueOp::Put { id, bytes: stored.encode() }]));
        self.insert(now, version, replicas, enqueued_unix_ms, self.cfg.batch_delay_ms);
    }

    fn restore(&mut self, now: Millis, entries: Vec<(VersionId, Vec<u8>)>) {
        for (stored_id, bytes) in entries {
            let checked = StoredWrite::decode(&bytes).and_then(|s| {
                let v = Version::open(s.envelope, &*self.verifier).map_err(QueueError::Record)?;
                if v.id() != stored_id {
                    return Err(QueueError::WrongId { stored: stored_id, actual: v.id() });
                }
                Ok((v, s.replicas, s.enqueued_unix_ms))
            });
            match checked {
                Err(error) => self.out.push_back(QueueOutput::Discarded { id: stored_id, error }),
                Ok(_) if self.pending.contains_key(&stored_id) => {}
                Ok(_) if self.pending.len() >= self.cfg.max_pending_writes => {
                    // Keep it stored: a later start with a larger bound still has it.
                    let error = QueueError::Full { max: self.cfg.max_pending_writes };
                    self.out.push_back(QueueOutput::Refused { id: stored_id, error });
                }
                Ok((v, replicas, at)) => self.insert(now, v, replicas, at, 0),
            }
        }
    }

    fn set_replicas(&mut self, now: Millis, record: RecordId, replicas: Vec<PeerId>) {
        let ids: Vec<VersionId> = self.by_record.get(&record).map(|s| s.iter().copied().collect()).unwrap_or_default();
        let new: BTreeSet<PeerId> = replicas.into_iter().collect();
        for id in ids {
            let Some(p) = self.pending.get_mut(&id) else { continue };
            let old = std::mem::replace(&mut p.replicas, new.clone());
            // Only the current replicas' word counts: a peer that left the set may drop the record.
            p.acked.retain(|a| new.contains(a));
            let acked = p.acked.clone();
            for r in old.difference(&new) {
                self.unwait(*r, id);
            }
            for r in new.difference(&acked) {
                self.waiting.entry(*r).or_default().insert(id);
            }
            self.finish_if_done(id);
            if self.pending.contains_key(&id) {
                self.schedule(id, now);
            }
        }
    }

    fn ack(&mut self, from: PeerId, ids: Vec<VersionId>) {
        for id in ids.into_iter().take(self.cfg.max_ids_per_message) {
            let Some(p) = self.pending.get_mut(&id) else { continue };
            // Only a replica's word counts: others do not keep the record.
            if !p.replicas.contains(&from) || !p.acked.insert(from) {
                continue;
            }
            self.unwait(from, id);
            self.finish_if_done(id);
        }
    }

    /// Send every due write to its linked replicas that have not acknowledged it (and were not
    /// sent it within `resend_after_ms`), batched per replica.
    fn flush(&mut self, now: Millis) {
        let mut batches: BTreeMap<PeerId, Vec<VersionId>> = BTreeMap::new();
        while let Some(&(at, id)) = self.due.first() {
            if at > now {
                break;
            }
            self.due.pop_first();
            self.due_at.remove(&id);
            let Some(p) = self.pending.get_mut(&id) else { continue };
            let resend = self.cfg.resend_after_ms;
            let mut next: Option<Millis> = None;
            for r in p.replicas.difference(&p.acked) {
                if !self.linked.contains(r) {
                    continue; // a link coming up reschedules it
                }
                match p.sent.get(r) {
                    Some(&t) if t + resend > now => {
                        next = Some(next.map_or(t + resend, |n| n.min(t + resend)));
                    }
                    _ => {
                        p.sent.insert(*r, now);
                        batches.entry(*r).or_default().push(id);
                        next = Some(next.map_or(now + resend, |n| n.min(now + resend)));
                    }
                }
            }
            if let Some(at) = next {
                self.schedule(id, at);
            }
        }
        for (to, ids) in batches {
            let (mut batch, mut bytes) = (Vec::new(), 0);
            for id in ids {
                let Some(p) = self.pending.get(&id) else { continue };
                let size = p.version.size_bytes();
                if !batch.is_empty()
                    && (batch.len() >= self.cfg.max_versions_per_message || bytes + size > self.cfg.max_message_bytes)
                {
                    let envelopes = std::mem::take(&mut batch);
                    self.out.push_back(QueueOutput::Send { to, msg: SyncMessage::Push { envelopes } });
                    bytes = 0;
                }
                bytes += size;
                batch.push(p.version.envelope().clone());
            }
            if !batch.is_empty() {
                self.out.push_back(QueueOutput::Send { to, msg: SyncMessage::Push { envelopes: batch } });
            }
        }
    }
}

impl Core for SyncQueue {
    type Input = QueueInput;
    type Output = QueueOutput;

    fn handle(&mut self, now: Millis, input: QueueInput) {
        match input {
            QueueInput::Enqueue { version, replicas } => self.enqueue(now, *version, replicas),
            QueueInput::Replicas { record, replicas } => self.set_replicas(now, record, replicas),
            QueueInput::Link(LinkEvent::Up { peer, .. }) => {
                self.linked.insert(peer);
                let ids: Vec<VersionId> =
                    self.waiting.get(&peer).map(|s| s.iter().copied().collect()).unwrap_or_default();
                for id in ids {
                    if let Some(p) = self.pending.get_mut(&id) {
                        p.sent.remove(&peer); // a new link: what was in flight on the old one is lost
                    }
                    self.schedule(id, now);
                }
            }
            QueueInput::Link(LinkEvent::Down { peer, .. }) => {
                self.linked.remove(&peer);
            }
            QueueInput::Link(LinkEvent::DialFailed { .. }) => {}
            QueueInput::Ack { from, ids } => self.ack(from, ids),
            QueueInput::Restore(entries) => self.restore(now, entries),
        }
        self.flush(now);
    }

    fn handle_timeout(&mut self, now: Millis) {
        self.flush(now);
    }

    fn next_timeout(&self) -> Option<Millis> {
        self.due.first().map(|(t, _)| *t)
    }

    fn poll_output(&mut self) -> Option<QueueOutput> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        debug_assert!(self.pending.len() <= self.cfg.max_pending_writes, "sync queue over its bound");
        debug_assert_eq!(self.by_age.len(), self.pending.len(), "age index out of step");
        debug_assert_eq!(self.due.len(), self.due_at.len(), "deadline index out of step");
        debug_assert!(self.due_at.keys().all(|id| self.pending.contains_key(id)), "deadline of a write not pending");
    }
}
