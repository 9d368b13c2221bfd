//! The record store of one node and anti-entropy between replicas. Each record's state is a
//! [`RecordState`]; reconciliation with a peer is three messages at most:
//!
//! ```text
//! A -> B  Digest    per record A offers, the digest of A's state (zeros: A holds nothing)
//! B -> A  Have      for records whose digest differs, the version ids B keeps
//! A -> B  Versions  what B lacks;  A -> B  Want: what A lacks
//! B -> A  Versions  what A wanted
//! ```
//!
//! A read asks differently, so that it learns when a replica has answered even when nothing
//! differs (a digest that matches gets no reply):
//!
//! ```text
//! R -> B  Ask       per record, the version ids R keeps
//! B -> R  Answer    the records asked and B's digests, with the versions R lacks (earlier
//!                   batches as Versions);
//!                   B -> R  Want: what B lacks (read repair)
//! ```
//!
//! Local writes are signed here (the clock: every kept clock merged, plus one for this writer).
//! Writes pushed by a peer's sync queue (`Push`) are acknowledged once held. Storage is an effect:
//! each change goes out as [`PersistOp`]s; the store comes back in at start as `Restore`.

use super::config::SyncConfig;
use super::merge::{Applied, RecordState};
use super::record::{RecordError, RecordId, Version, VersionId};
use crate::core::{Core, Outputs};
use crate::identity::{Envelope, Identity, Verifier};
use crate::time::Millis;
use crate::types::PeerId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// What replicas and sync queues send each other (the wire enum will carry it as one variant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMessage {
    Digest {
        records: Vec<(RecordId, Digest32)>,
    },
    Have {
        records: Vec<(RecordId, Vec<VersionId>)>,
    },
    Want {
        records: Vec<(RecordId, Vec<VersionId>)>,
    },
    /// Versions for anti-entropy (no acknowledgement).
    Versions {
        envelopes: Vec<Envelope>,
    },
    /// Writes from a sync queue: acknowledge what is held.
    Push {
        envelopes: Vec<Envelope>,
    },
    Ack {
        ids: Vec<VersionId>,
    },
    /// A reader's question: per record, the version ids it keeps. Always answered (`Answer`).
    Ask {
        records: Vec<(RecordId, Vec<VersionId>)>,
    },
    /// The answer to `Ask`: the records asked with the digest of the state this node held of
    /// each (zeros: nothing), and the last batch of the versions the asker lacked (earlier
    /// batches came as `Versions` before it).
    Answer {
        records: Vec<(RecordId, Digest32)>,
        envelopes: Vec<Envelope>,
    },
}

/// A state digest ([`RecordState::digest`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest32(#[serde(with = "crate::serde_bytes::array32")] pub [u8; 32]);

/// Why a message or a version from a peer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("{what}: {len} entries, at most {max} in one message")]
    TooMany { what: &'static str, len: usize, max: usize },
    #[error("version refused: {0}")]
    Version(RecordError),
    #[error("version dated {ahead_ms} ms ahead of this node's clock (at most {max_ms})")]
    FromFuture { ahead_ms: u64, max_ms: u64 },
}

#[derive(Clone, Debug, PartialEq)]
pub enum ReplicaInput {
    /// Start a reconciliation with `peer` over these records (the ones it replicates with us).
    Exchange {
        peer: PeerId,
        records: Vec<RecordId>,
    },
    /// Ask `peer` what it holds of these records, for a read (answered with `Answer`).
    Ask {
        peer: PeerId,
        records: Vec<RecordId>,
    },
    Received {
        from: PeerId,
        msg: SyncMessage,
    },
    /// A local write (by this node's identity; `grant` if it is not the owner).
    Write {
        record: RecordId,
        value: Vec<u8>,
        grant: Option<Envelope>,
    },
    /// The stored versions, read back at start.
    Restore(Vec<Envelope>),
}

/// A storage write for the wiring (keyed by record and version id).
#[derive(Clone, Debug, PartialEq)]
pub enum PersistOp {
    Put { record: RecordId, id: VersionId, envelope: Envelope },
    Delete { record: RecordId, id: VersionId },
}

#[derive(Clone, Debug, PartialEq)]
pub enum ReplicaOutput {
    Send {
        to: PeerId,
        msg: SyncMessage,
    },
    /// One batch of storage writes, applied atomically.
    Persist(Vec<PersistOp>),
    /// A local write was signed and kept: hand it to the sync queue.
    Written(Version),
    WriteRefused {
        record: RecordId,
        error: RecordError,
    },
    /// A record's state changed (new winner or new conflict): readers and feeds may look.
    Changed {
        record: RecordId,
    },
    /// `from` answered a read's question, holding versions of these records (its versions were
    /// taken first; records it holds nothing of are left out).
    Answered {
        from: PeerId,
        records: Vec<RecordId>,
    },
    /// A peer sent something invalid (for reputation: a bad signature is proven malice).
    Invalid {
        from: PeerId,
        error: PeerError,
    },
    /// A version of a new record was refused: the store holds `max_records` already.
    Full {
        record: RecordId,
    },
    /// A stored version did not check at start; the wiring should delete it.
    Discarded {
        id: VersionId,
        error: RecordError,
    },
}

pub struct ReplicaCore {
    cfg: SyncConfig,
    identity: Rc<Identity>,
    verifier: Rc<dyn Verifier>,
    unix_epoch_ms: u64,
    records: BTreeMap<RecordId, RecordState>,
    out: Outputs<ReplicaOutput>,
}

impl ReplicaCore {
    pub fn new(cfg: SyncConfig, identity: Rc<Identity>, verifier: Rc<dyn Verifier>, unix_epoch_ms: u64) -> Self {
        ReplicaCore { cfg, identity, verifier, unix_epoch_ms, records: BTreeMap::new(), out: Outputs::new() }
    }

    pub fn record(&self, id: &RecordId) -> Option<&RecordState> {
        self.records.get(id)
    }

    /// Records held, in id order.
    pub fn records(&self) -> impl Iterator<Item = (&RecordId, &RecordState)> {
        self.records.iter()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Sign a write of `value` to `record` as this node, keep it, and return it (for the queue).
    pub fn write(
        &mut self,
        now: Millis,
        record: RecordId,
        value: Vec<u8>,
        grant: Option<Envelope>,
    ) -> Result<Version, RecordError> {
        let unix_now = self.unix_epoch_ms.saturating_add(now);
        let (mut clock, ts) = match self.records.get(&record) {
            Some(s) => (s.clock().map_err(RecordError::Clock)?, s.next_timestamp(unix_now)),
            None => (Default::default(), unix_now),
        };
        clock.tick(self.identity.peer_id()).map_err(RecordError::Clock)?;
        let v = Version::sign(&self.identity, &record, clock, value, ts, grant)?;
        v.envelope().announce_to(&*self.verifier);
        let mut ops = Vec::new();
        match self.keep(v.clone(), &mut ops) {
            Some(_) => {}
            None => return Err(RecordError::StoreFull { max: self.cfg.max_records }),
        }
        self.out.push_back(ReplicaOutput::Persist(ops));
        self.out.push_back(ReplicaOutput::Changed { record });
        Ok(v)
    }

    /// Keep a checked version; `None` if its record is new and the store is full.
    fn keep(&mut self, v: Version, ops: &mut Vec<PersistOp>) -> Option<Applied> {
        let record = v.record();
        if !self.records.contains_key(&record) && self.records.len() >= self.cfg.max_records {
            return None;
        }
        let (id, envelope) = (v.id(), v.envelope().clone());
        let state =
            self.records.entry(record.clone()).or_insert_with(|| RecordState::new(self.cfg.max_versions_per_record));
        let applied = state.apply(v);
        if let Applied::Kept { evicted } = &applied {
            ops.push(PersistOp::Put { record: record.clone(), id, envelope });
            if let Some(old) = evicted {
                ops.push(PersistOp::Delete { record, id: *old });
            }
        }
        Some(applied)
    }

    /// Check and keep versions from a peer; returns the ids now held (kept, already kept, or
    /// below a full window of later ones).
    fn take(&mut self, now: Millis, from: PeerId, envelopes: Vec<Envelope>) -> Vec<VersionId> {
        if envelopes.len() > self.cfg.max_versions_per_message {
            let (len, max) = (envelopes.len(), self.cfg.max_versions_per_message);
            self.out
                .push_back(ReplicaOutput::Invalid { from, error: PeerError::TooMany { what: "versions", len, max } });
            return Vec::new();
        }
        let unix_now = self.unix_epoch_ms.saturating_add(now);
        let (mut held, mut ops, mut changed) = (Vec::new(), Vec::new(), BTreeSet::new());
        for env in envelopes {
            let v = match Version::open(env, &*self.verifier) {
                Ok(v) => v,
                Err(e) => {
                    self.out.push_back(ReplicaOutput::Invalid { from, error: PeerError::Version(e) });
                    continue;
                }
            };
            let max_ms = self.cfg.max_clock_ahead_ms;
            if v.timestamp_ms() > unix_now.saturating_add(max_ms) {
                let ahead_ms = v.timestamp_ms() - unix_now;
                self.out.push_back(ReplicaOutput::Invalid { from, error: PeerError::FromFuture { ahead_ms, max_ms } });
                continue;
            }
            let (id, record) = (v.id(), v.record());
            match self.keep(v, &mut ops) {
                None => self.out.push_back(ReplicaOutput::Full { record }),
                Some(applied) => {
                    if matches!(applied, Applied::Kept { .. }) {
                        changed.insert(record);
                    }
                    held.push(id);
                }
            }
        }
        if !ops.is_empty() {
            self.out.push_back(ReplicaOutput::Persist(ops));
        }
        self.out.extend(changed.into_iter().map(|record| ReplicaOutput::Changed { record }));
        held
    }

    fn too_many(&mut self, from: PeerId, what: &'static str, len: usize, max: usize) -> bool {
        if len > max {
            self.out.push_back(ReplicaOutput::Invalid { from, error: PeerError::TooMany { what, len, max } });
        }
        len > max
    }

    fn digest_of(&self, record: &RecordId) -> Digest32 {
        Digest32(self.records.get(record).map_or([0; 32], |s| s.digest()))
    }

    fn on_digest(&mut self, from: PeerId, records: Vec<(RecordId, Digest32)>) {
        if self.too_many(from, "digest entries", records.len(), self.cfg.max_digest_entries) {
            return;
        }
        // A peer that holds none of a record (the empty digest: a reader, a new replica) gets our
        // versions at once, a round trip sooner than through have and want.
        let (mut push, mut differing) = (Vec::new(), Vec::new());
        for (r, d) in records {
            if self.digest_of(&r) == d {
                continue;
            }
            match self.records.get(&r) {
                Some(s) if d == Digest32([0; 32]) => push.extend(s.versions().cloned()),
                held => differing.push((r, held.map(|s| s.ids()).unwrap_or_default())),
            }
        }
        self.send_versions(from, push, |envelopes| SyncMessage::Versions { envelopes });
        self.send_id_lists(from, differing, |records| SyncMessage::Have { records });
    }

    fn on_have(&mut self, from: PeerId, records: Vec<(RecordId, Vec<VersionId>)>) {
        if let Some((push, want)) = self.compare(from, "have", records) {
            self.send_versions(from, push, |envelopes| SyncMessage::Versions { envelopes });
            self.send_id_lists(from, want, |records| SyncMessage::Want { records });
        }
    }

    /// A read's question: like `Have`, and answered even when nothing differs.
    fn on_ask(&mut self, from: PeerId, records: Vec<(RecordId, Vec<VersionId>)>) {
        let asked: Vec<(RecordId, Digest32)> = records.iter().map(|(r, _)| (r.clone(), self.digest_of(r))).collect();
        let Some((push, want)) = self.compare(from, "ask", records) else { return };
        let mut batches = self.batches(push);
        let last = batches.pop().unwrap_or_default();
        for envelopes in batches {
            self.out.push_back(ReplicaOutput::Send { to: from, msg: SyncMessage::Versions { envelopes } });
        }
        self.send_id_lists(from, want, |records| SyncMessage::Want { records });
        let msg = SyncMessage::Answer { records: asked, envelopes: last };
        self.out.push_back(ReplicaOutput::Send { to: from, msg });
    }

    /// A peer's version ids per record against ours: the versions it lacks and, per record, the
    /// ids we lack (`None`: the message is over its bounds, reported).
    #[allow(clippy::type_complexity)]
    fn compare(
        &mut self,
        from: PeerId,
        what: &'static str,
        records: Vec<(RecordId, Vec<VersionId>)>,
    ) -> Option<(Vec<Version>, Vec<(RecordId, Vec<VersionId>)>)> {
        let ids: usize = records.iter().map(|(_, ids)| ids.len()).sum();
        if self.too_many(from, what, records.len(), self.cfg.max_digest_entries)
            || self.too_many(from, what, ids, self.cfg.max_ids_per_message)
        {
            return None;
        }
        let (mut push, mut want) = (Vec::new(), Vec::new());
        for (record, theirs) in records {
            let theirs: BTreeSet<VersionId> = theirs.into_iter().collect();
            let Some(state) = self.records.get(&record) else {
                if !theirs.is_empty() {
                    want.push((record, theirs.into_iter().collect()));
                }
                continue;
            };
            push.extend(state.versions().filter(|v| !theirs.contains(&v.id())).cloned());
            let missing: Vec<VersionId> = theirs.into_iter().filter(|id| !state.contains(id)).collect();
            if !missing.is_empty() {
                want.push((record, missing));
            }
        }
        Some((push, want))
    }

    fn on_want(&mut self, from: PeerId, records: Vec<(RecordId, Vec<VersionId>)>) {
        let ids: usize = records.iter().map(|(_, ids)| ids.len()).sum();
        if self.too_many(from, "want ids", ids, self.cfg.max_ids_per_message) {
            return;
        }
        let found: Vec<Version> = records
            .iter()
            .filter_map(|(r, ids)| self.records.get(r).map(|s| (s, ids)))
            .flat_map(|(s, ids)| ids.iter().filter_map(|id| s.get(id).cloned()))
            .collect();
        self.send_versions(from, found, |envelopes| SyncMessage::Versions { envelopes });
    }

    /// Versions split into messages within the count and byte bounds.
    fn send_versions(&mut self, to: PeerId, versions: Vec<Version>, wrap: impl Fn(Vec<Envelope>) -> SyncMessage) {
        for batch in self.batches(versions) {
            self.out.push_back(ReplicaOutput::Send { to, msg: wrap(batch) });
        }
    }

    /// Versions in batches within the count and byte bounds of a message.
    fn batches(&self, versions: Vec<Version>) -> Vec<Vec<Envelope>> {
        let (mut batches, mut batch, mut bytes) = (Vec::new(), Vec::new(), 0);
        for v in versions {
            let size = v.size_bytes();
            if !batch.is_empty()
                && (batch.len() >= self.cfg.max_versions_per_message || bytes + size > self.cfg.max_message_bytes)
            {
                batches.push(std::mem::take(&mut batch));
                bytes = 0;
            }
            bytes += size;
            batch.push(v.envelope().clone());
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        batches
    }

    /// Per-record id lists split into messages within the record and id bounds.
    fn send_id_lists(
        &mut self,
        to: PeerId,
        lists: Vec<(RecordId, Vec<VersionId>)>,
        wrap: impl Fn(Vec<(RecordId, Vec<VersionId>)>) -> SyncMessage,
    ) {
        let (mut batch, mut ids) = (Vec::new(), 0);
        for (record, list) in lists {
            if !batch.is_empty()
                && (batch.len() >= self.cfg.max_digest_entries || ids + list.len() > self.cfg.max_ids_per_message)
            {
                self.out.push_back(ReplicaOutput::Send { to, msg: wrap(std::mem::take(&mut batch)) });
                ids = 0;
            }
            ids += list.len();
            batch.push((record, list));
        }
        if !batch.is_empty() {
            self.out.push_back(ReplicaOutput::Send { to, msg: wrap(batch) });
        }
    }
}

impl Core for ReplicaCore {
    type Input = ReplicaInput;
    type Output = ReplicaOutput;

    fn handle(&mut self, now: Millis, input: ReplicaInput) {
        match input {
            ReplicaInput::Exchange { peer, records } => {
                let entries: Vec<(RecordId, Digest32)> = records
                    .into_iter()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(|r| {
                        let d = self.digest_of(&r);
                        (r, d)
                    })
                    .collect();
                for chunk in entries.chunks(self.cfg.max_digest_entries) {
                    let msg = SyncMessage::Digest { records: chunk.to_vec() };
                    self.out.push_back(ReplicaOutput::Send { to: peer, msg });
                }
            }
            ReplicaInput::Ask { peer, records } => {
                let lists: Vec<(RecordId, Vec<VersionId>)> = records
                    .into_iter()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(|r| {
                        let ids = self.records.get(&r).map(|s| s.ids()).unwrap_or_default();
                        (r, ids)
                    })
                    .collect();
                self.send_id_lists(peer, lists, |records| SyncMessage::Ask { records });
            }
            ReplicaInput::Received { from, msg } => match msg {
                SyncMessage::Digest { records } => self.on_digest(from, records),
                SyncMessage::Have { records } => self.on_have(from, records),
                SyncMessage::Want { records } => self.on_want(from, records),
                SyncMessage::Ask { records } => self.on_ask(from, records),
                SyncMessage::Answer { records, envelopes } => {
                    if !self.too_many(from, "answer records", records.len(), self.cfg.max_digest_entries) {
                        self.take(now, from, envelopes);
                        let held = records.into_iter().filter(|(_, d)| *d != Digest32([0; 32])).map(|(r, _)| r);
                        self.out.push_back(ReplicaOutput::Answered { from, records: held.collect() });
                    }
                }
                SyncMessage::Versions { envelopes } => {
                    self.take(now, from, envelopes);
                }
                SyncMessage::Push { envelopes } => {
                    let ids = self.take(now, from, envelopes);
                    if !ids.is_empty() {
                        self.out.push_back(ReplicaOutput::Send { to: from, msg: SyncMessage::Ack { ids } });
                    }
                }
                // Acknowledgements are for the sync queue; the wiring routes them there.
                SyncMessage::Ack { .. } => {}
            },
            ReplicaInput::Write { record, value, grant } => {
                if let Ok(v) = self.write(now, record.clone(), value, grant).map_err(|error| {
                    self.out.push_back(ReplicaOutput::WriteRefused { record: record.clone(), error });
                }) {
                    self.out.push_back(ReplicaOutput::Written(v));
                }
            }
            ReplicaInput::Restore(envelopes) => {
                let mut ops = Vec::new();
                for env in envelopes {
                    let id = VersionId(env.id());
                    match Version::open(env, &*self.verifier) {
                        Ok(v) => {
                            let record = v.record();
                            match self.keep(v, &mut ops) {
                                None => self.out.push_back(ReplicaOutput::Discarded {
                                    id,
                                    error: RecordError::StoreFull { max: self.cfg.max_records },
                                }),
                                Some(Applied::BelowWindow) => ops.push(PersistOp::Delete { record, id }),
                                Some(_) => {}
                            }
                        }
                        Err(error) => self.out.push_back(ReplicaOutput::Discarded { id, error }),
                    }
                }
                // Versions restored are stored already; only evictions (a smaller window than
                // the one they were stored under) need writing.
                ops.retain(|op| matches!(op, PersistOp::Delete { .. }));
                if !ops.is_empty() {
                    self.out.push_back(ReplicaOutput::Persist(ops));
                }
            }
        }
    }

    fn handle_timeout(&mut self, _now: Millis) {}

    /// Rounds are started by the wiring ([`ReplicaInput::Exchange`]), which knows the links and
    /// the replica sets.
    fn next_timeout(&self) -> Option<Millis> {
        None
    }

    fn poll_output(&mut self) -> Option<ReplicaOutput> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        debug_assert!(self.records.len() <= self.cfg.max_records, "record store over its bound");
        debug_assert!(self.records.values().all(|s| s.len() <= s.max_versions()), "record window over its bound");
    }
}
