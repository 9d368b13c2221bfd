//! The sync core a node runs: the record store ([`ReplicaCore`]) and the sync queue ([`SyncQueue`])
//! behind one `handle(now, input)`, with what neither of them knows: which peers replicate a record
//! (the `rf` XOR-closest to its key among this node, its links and its routing table), when to
//! reconcile (a link coming up, and every `anti_entropy_interval_ms`), which links to ask for
//! (replicas owing an acknowledgement), and reads that wait a moment for the replicas' versions.
//! It speaks `Message::Sync`; storage writes are outputs the wiring applies ([`super::store`]).

use super::config::SyncConfig;
use super::placement::Placement;
use super::queue::{QueueError, QueueInput, QueueOutput, SyncQueue};
use super::reads::Reads;
use super::record::{RecordError, RecordId};
use super::relays::{relayable, Relays};
use super::replica::{PeerError, PersistOp, ReplicaCore, ReplicaInput, ReplicaOutput, SyncMessage};
use super::store::{self, Restored};
use super::view::RecordView;
use crate::core::{Core, Effect, LinkEvent, Outputs};
use crate::identity::{Envelope, Identity, Verifier};
use crate::links::{DialError, LinkView};
use crate::observer::{Event, Offence, SyncNote};
use crate::routing::{Key, TableView};
use crate::storage::{Op, Table};
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::Message;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::rc::Rc;

pub type OpId = u64;

/// A read waits this long at most for the lookup of its record's replicas (a lookup waits for
/// its closest candidates, and one that went offline costs a query timeout: ~2 s).
pub const MAX_LOOKUP_WAIT_MS: Millis = 6_000;

/// Peers that keep a record and tend it (reconcile it in rounds, on new links and after
/// changes), as a multiple of rf: the `rf` live peers nearest its key are its replicas, and the
/// next ones keep their copies too, so that when a replica goes offline (half the swarm is
/// offline at a time under sessions churn) the peer that takes its place is already up to date.
/// Others that hold a record (readers, former replicas) hand their state on once and leave it:
/// if every holder tended whatever its links made it look nearest to, records spread to most
/// nodes (measured: 56-87% of nodes kept each record at 300 and 150 nodes).
pub const KEEPERS_PER_RF: usize = 2;

/// A read waits this much longer while links to some of its record's replicas are being made
/// (guess: a dial and its handshake are a few round trips; one relayed over signaling more).
pub const MAX_LINK_WAIT_MS: Millis = 3_000;

/// A read waits this much longer when some of its record's replicas are reached only through
/// relays (guess: a round trip along 3 relays crosses 8 links, ~0.4 s at the scenarios' 40 ms
/// median and a few times that in the tail; at 1,000 nodes most divergent reads left were reads
/// whose replicas were all relayed and that answered before their versions came back).
pub const RELAY_WAIT_MS: Millis = 1_000;

#[derive(Debug)]
pub enum Input {
    /// A sync message from a proved link.
    Frame {
        from: PeerId,
        msg: SyncMessage,
    },
    Link(LinkEvent),
    /// Write `value` to `record` as this node. A writer other than the owner shows the owner's
    /// grant (or has written the record with one before: it is found in its kept versions).
    Write {
        op: OpId,
        record: RecordId,
        value: Vec<u8>,
        grant: Option<Envelope>,
    },
    /// The record as this node and its replicas hold it (answered once `read_quorum` replicas
    /// have answered, or after `read_wait_ms`).
    Read {
        op: OpId,
        record: RecordId,
    },
    /// Every held record with a non-empty conflict log.
    Conflicts {
        op: OpId,
    },
    /// What the tables held at start.
    Restore(Restored),
    /// The answer to an `Output::Lookup`: the live peers closest to `target`, nearest first, and
    /// for those not linked, the relays that reached them (the first linked to us).
    Found {
        target: Key,
        peers: Vec<PeerId>,
        relays: crate::wire::RelayRoutes,
    },
    /// A sync message that came through relays from `from` (not proved by a link: only
    /// reconciliation is taken, see [`super::relays`]), and the relays back to it.
    Relayed {
        from: PeerId,
        relays: Vec<PeerId>,
        msg: SyncMessage,
    },
}

/// The queue's figures, as `swarm status` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Local writes not yet acknowledged by enough replicas.
    pub pending: usize,
    /// When the oldest of them was written, Unix ms.
    pub oldest_pending_unix_ms: Option<u64>,
    /// Records held.
    pub records: usize,
    /// Linked to at least one peer.
    pub online: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Record(RecordError),
    #[error("{0}; retry once some are acknowledged")]
    Queue(QueueError),
    #[error(
        "record `{key}` belongs to {owner}: writing it takes the owner's grant (`swarm doc grant` on the owner's node)"
    )]
    NoGrant { owner: String, key: String },
}

#[derive(Debug)]
pub enum SyncEvent {
    Written {
        op: OpId,
        result: Result<RecordView, WriteError>,
    },
    /// `replicas`: how many of the record's replicas (this node counted when it is one) had
    /// answered; below `read_quorum` when the read answered at its deadline.
    Read {
        op: OpId,
        view: RecordView,
        replicas: usize,
    },
    Conflicts {
        op: OpId,
        records: Vec<RecordView>,
    },
}

#[derive(Debug)]
pub enum Output {
    Effect(Effect),
    /// A link to this peer is wanted for a transfer (a replica owing an acknowledgement).
    Want(PeerId),
    /// Find the live peers closest to this key (a record's replica set), answered by
    /// `Input::Found`.
    Lookup(Key),
    /// Table writes, applied atomically.
    Store(Vec<Op>),
    Stats(SyncStats),
    /// Something refused or dropped, and why (logged).
    Dropped {
        from: Option<PeerId>,
        error: String,
    },
    Done(SyncEvent),
}

/// A record's place in the key space: SHA-256 of its owner and key (domain-tagged).
pub fn record_key(record: &RecordId) -> Key {
    let mut h = Sha256::new();
    h.update(b"swarm-sync-record-v1");
    h.update(record.owner.0);
    h.update(record.key.as_bytes());
    Key(h.finalize().into())
}

pub struct SyncCore {
    me: PeerId,
    cfg: SyncConfig,
    rf: usize,
    replica: ReplicaCore,
    queue: SyncQueue,
    view: LinkView,
    table: TableView,
    placement: Placement,
    relays: Relays,
    /// The sender of the message being handled when it came through relays (unproved: its
    /// faults are not reported against it).
    unproved: Option<PeerId>,
    next_round: Option<Millis>,
    /// Has a link come up since this node started? Until one has, the node is still joining:
    /// a read waits for links (a node that had links and lost them all is offline, and answers
    /// from its store at once).
    joined: bool,
    /// Reads waiting for replicas' answers.
    reads: Reads,
    /// Records whose state a peer's versions just changed (handed on to the other linked
    /// replicas at once, not at the next round), with the peer they came from.
    changed: Vec<RecordId>,
    changed_by: Option<PeerId>,
    stats: SyncStats,
    out: Outputs<Output>,
}

impl SyncCore {
    pub fn new(
        identity: Rc<Identity>,
        verifier: Rc<dyn Verifier>,
        cfg: SyncConfig,
        rf: usize,
        unix_epoch_ms: u64,
        view: LinkView,
        table: TableView,
    ) -> Self {
        let me = identity.peer_id();
        SyncCore {
            me,
            rf,
            replica: ReplicaCore::new(cfg.clone(), identity, verifier.clone(), unix_epoch_ms),
            queue: SyncQueue::new(cfg.clone(), verifier, unix_epoch_ms),
            placement: Placement::new(cfg.replica_lookup_ms, cfg.keeper_check_ms),
            relays: Relays::default(),
            unproved: None,
            cfg,
            view,
            table,
            next_round: None,
            joined: false,
            reads: Reads::default(),
            changed: Vec::new(),
            changed_by: None,
            stats: SyncStats::default(),
            out: Outputs::new(),
        }
    }

    pub fn replica(&self) -> &ReplicaCore {
        &self.replica
    }

    pub fn queue(&self) -> &SyncQueue {
        &self.queue
    }

    fn write(&mut self, now: Millis, op: OpId, record: RecordId, value: Vec<u8>, grant: Option<Envelope>) {
        let result = self.try_write(now, record, value, grant);
        self.out.push_back(Output::Done(SyncEvent::Written { op, result }));
    }

    fn try_write(
        &mut self,
        now: Millis,
        record: RecordId,
        value: Vec<u8>,
        grant: Option<Envelope>,
    ) -> Result<RecordView, WriteError> {
        if self.queue.pending() >= self.cfg.max_pending_writes {
            return Err(WriteError::Queue(QueueError::Full { max: self.cfg.max_pending_writes }));
        }
        let grant = match grant {
            Some(g) => Some(g),
            None if record.owner == self.me => None,
            None => Some(
                self.grant_held(&record)
                    .ok_or_else(|| WriteError::NoGrant { owner: record.owner.to_string(), key: record.key.clone() })?,
            ),
        };
        let version = self.replica.write(now, record.clone(), value, grant).map_err(WriteError::Record)?;
        let replicas = self.replica_set(&record);
        self.queue.handle(now, QueueInput::Enqueue { version: Box::new(version), replicas });
        self.lookup(now, &record);
        self.want_links();
        Ok(self.view_of(&record))
    }

    /// The grant this node wrote `record` under before (its kept versions carry it).
    fn grant_held(&self, record: &RecordId) -> Option<Envelope> {
        let state = self.replica.record(record)?;
        state.versions().rev().filter(|v| v.writer() == self.me).find_map(|v| v.grant().cloned())
    }

    fn view_of(&self, record: &RecordId) -> RecordView {
        self.replica.record(record).map_or_else(|| RecordView::empty(record), |s| RecordView::of(record, s))
    }

    /// Ask the record's replicas for what they hold (linked ones at once; links to the others are
    /// asked for, and they are asked when the link comes up) and answer after `read_wait_ms`.
    fn read(&mut self, now: Millis, op: OpId, record: RecordId) {
        self.lookup(now, &record);
        let replicas = self.replica_set(&record);
        // Offline (links lost, or none to ask): the store's state at once.
        let offline = self.joined && (replicas.is_empty() || self.view.is_empty());
        if offline || self.cfg.read_wait_ms == 0 {
            let (view, replicas) =
                (self.view_of(&record), usize::from(self.replicas_with_me(&record).contains(&self.me)));
            return self.out.push_back(Output::Done(SyncEvent::Read { op, view, replicas }));
        }
        self.ask_for_read(now, &record, replicas.clone());
        // With a lookup under way the read waits for it (then `read_wait_ms` more), at most
        // `MAX_LOOKUP_WAIT_MS`.
        let wait = if self.placement.looking(&record) || !self.joined {
            MAX_LOOKUP_WAIT_MS
        } else {
            self.link_wait(&replicas)
        };
        if tracing::enabled!(tracing::Level::DEBUG) {
            let (set, found) = (self.traced_set(&record), self.placement.found(&record).len());
            tracing::debug!(op, me = %self.me.short(), looking = wait > 0, found, links = self.view.len(), ?set, "read asks");
        }
        let held = self.replica.record(&record).is_some();
        self.reads.start(op, record, now + self.cfg.read_wait_ms + wait, held);
        self.answer_if_ready(op);
    }

    /// The replica set of `record` for the debug trail of reads: each peer, `linked`, `relayed`
    /// (a relay route reaches it) or `unreached`.
    fn traced_set(&self, record: &RecordId) -> Vec<String> {
        let reach = |p: &PeerId| match (self.view.contains(p), self.relays.reaches(p, &self.view)) {
            (true, _) => "linked",
            (false, true) => "relayed",
            (false, false) => "unreached",
        };
        self.replica_set(record).iter().map(|p| format!("{}:{}", p.short(), reach(p))).collect()
    }

    /// Records of waiting reads that `peer` replicates (asked of it when its link comes up).
    fn reads_for(&self, peer: &PeerId) -> Vec<RecordId> {
        self.reads.records().into_iter().filter(|r| self.replica_set(r).contains(peer)).cloned().collect()
    }

    fn answer_reads(&mut self, now: Millis) {
        while let Some(op) = self.reads.first_due(now) {
            let (heard, need) = self.heard_replicas(op);
            if heard >= need || !self.retry(now, op) {
                self.answer(op, heard);
            }
        }
    }

    /// A read whose time ran out before a quorum answered looks its replicas up once more and
    /// asks again (the lookup's answer sets its new deadline); true if it does (once a read). Why: at 1,000
    /// nodes most reads left that missed a write had asked all their replicas through one
    /// relay that went offline as the questions reached it (its links still up on the other
    /// side), and no answer came back.
    fn retry(&mut self, now: Millis, op: OpId) -> bool {
        if !self.reads.retry(op) {
            return false;
        }
        let Some(record) = self.reads.record(op).cloned() else { return false };
        self.placement.stale(&record);
        self.lookup(now, &record);
        self.reads.set_due(op, now + self.cfg.read_wait_ms + MAX_LOOKUP_WAIT_MS);
        true
    }

    /// How many of a waiting read's replicas have answered holding versions of its record (this
    /// node counted when it is one and held some when the read started), and how many it waits
    /// for (`read_quorum`, fewer when the set is smaller).
    ///
    /// Not counted: a replica that holds nothing (at 1,000 nodes most reads that heard two
    /// replicas and still missed a write had heard two holding nothing: a node just back, or
    /// the set moved); this node's state when it took it from the answers; keepers beyond the
    /// set (their answers are taken, but counting them let reads through that missed a write:
    /// 0 -> 3 divergent of 2,081 at 300 nodes).
    fn heard_replicas(&self, op: OpId) -> (usize, usize) {
        let (Some(record), Some(heard)) = (self.reads.record(op), self.reads.heard(op)) else { return (0, 0) };
        let mine = self.reads.held_at_start(op);
        let set: Vec<PeerId> = self.replicas_with_me(record).into_iter().filter(|p| *p != self.me || mine).collect();
        let n = set.iter().filter(|p| **p == self.me || heard.contains(p)).count();
        (n, self.cfg.read_quorum.min(set.len()))
    }

    /// Answer a read now if a quorum of its replicas has answered, the replicas being those a
    /// lookup found (until one answers, the set is a guess from links and routing table).
    fn answer_if_ready(&mut self, op: OpId) {
        let Some(record) = self.reads.record(op) else { return };
        let (heard, need) = self.heard_replicas(op);
        let placed = !self.placement.looking(record) && !self.placement.found(record).is_empty();
        if heard >= need && need > 0 && placed {
            self.answer(op, heard);
        }
    }

    /// Answer a read with what this node holds now; `replicas`: how many had answered.
    fn answer(&mut self, op: OpId, replicas: usize) {
        let Some(record) = self.reads.finish(op) else { return };
        let view = self.view_of(&record);
        if tracing::enabled!(tracing::Level::DEBUG) {
            let (set, found) = (self.traced_set(&record), self.placement.found(&record).len());
            tracing::debug!(op, me = %self.me.short(), versions = view.versions, found, replicas, ?set, "read answered");
        }
        self.out.push_back(Output::Done(SyncEvent::Read { op, view, replicas }));
    }

    fn conflicts(&mut self, op: OpId) {
        let records = self
            .replica
            .records()
            .filter(|(_, s)| !s.conflicts().is_empty())
            .map(|(r, s)| RecordView::of(r, s))
            .collect();
        self.out.push_back(Output::Done(SyncEvent::Conflicts { op, records }));
    }

    /// Pending writes go to their record's current replica set (peers come and go).
    fn refresh_replicas(&mut self, now: Millis) {
        for (record, current) in self.queue.pending_records() {
            let now_set: BTreeSet<PeerId> = self.replica_set(&record).into_iter().collect();
            if now_set != current {
                self.queue.handle(now, QueueInput::Replicas { record, replicas: now_set.into_iter().collect() });
            }
        }
    }

    /// Ask for links to replicas that owe an acknowledgement.
    fn want_links(&mut self) {
        let unlinked: Vec<PeerId> = self.queue.waiting_on().filter(|p| !self.view.contains(p)).copied().collect();
        self.out.extend(unlinked.into_iter().map(Output::Want));
    }

    fn round(&mut self, now: Millis) {
        self.placement.expire(now);
        // Records this node tends: is it still among their keepers (a lookup once its answer
        // is stale)? Records it keeps without tending are left as they are until they change.
        let held: Vec<RecordId> = self.replica.records().map(|(r, _)| r.clone()).collect();
        for r in &held {
            match self.tends(now, r) {
                Some(true) => {
                    self.placement.tended(r);
                    self.lookup_within(now, r, self.cfg.keeper_check_ms);
                }
                Some(false) => {}
                None if self.placement.handed_any(r) => {}
                None => self.lookup(now, r),
            }
        }
        self.refresh_replicas(now);
        // Replicas a lookup reached through relays take part in rounds as linked ones do (a
        // replica no keeper is linked to would otherwise wait for a link to come up by chance).
        let mut reached: BTreeSet<PeerId> = self.view.peers().into_iter().collect();
        reached.extend(self.relays.routed(&self.view));
        self.exchange(now, &reached, false);
        self.want_links();
    }

    fn on_link(&mut self, now: Millis, ev: LinkEvent) {
        self.queue.handle(now, QueueInput::Link(ev));
        match ev {
            LinkEvent::Up { peer, .. } => {
                self.joined = true;
                self.placement.up(&peer);
                self.relays.on_link(&peer, true);
            }
            // Not attempted (no room, backing off): says nothing of the peer.
            LinkEvent::DialFailed { error: DialError::NoRoom | DialError::BackingOff, .. } => {}
            LinkEvent::DialFailed { peer, .. } => {
                self.placement.dial_failed(now, peer);
                // Pending writes owed by it go to the next closest.
                self.refresh_replicas(now);
                self.want_links();
            }
            LinkEvent::Down { peer, clean } => {
                self.relays.on_link(&peer, false);
                if !clean {
                    // A replica lost: look the records it shared with us up again, so whoever
                    // takes its place is found and brought up to date.
                    let shared: Vec<RecordId> = self
                        .replica
                        .records()
                        .map(|(r, _)| r)
                        .filter(|r| self.placement.found(r).contains(&peer))
                        .cloned()
                        .collect();
                    for r in shared {
                        self.placement.stale(&r);
                        self.lookup(now, &r);
                    }
                }
            }
        }
        if let LinkEvent::Up { peer, .. } = ev {
            // A new peer may enter replica sets; then reconcile what it shares with us, and what
            // waiting reads want of it.
            self.refresh_replicas(now);
            self.exchange(now, &BTreeSet::from([peer]), true);
            // Reads that found no replicas (no links then) look them up now.
            let unplaced: Vec<RecordId> =
                self.reads.records().into_iter().filter(|r| self.placement.found(r).is_empty()).cloned().collect();
            for r in &unplaced {
                self.lookup(now, r);
            }
            let wanted = self.reads_for(&peer);
            if !wanted.is_empty() {
                // Reads of them wait for this replica's answer: `read_wait_ms` from now, or
                // longer while links to others of their set are still being made.
                for r in &wanted {
                    for op in self.reads.of(r) {
                        let all_linked = !self.placement.looking(r) && self.link_wait(&self.replica_set(r)) == 0;
                        let (at, due) = (self.reads.due(op).unwrap_or(now), now + self.cfg.read_wait_ms);
                        self.reads.set_due(op, if all_linked { due } else { at.max(due) });
                    }
                }
                self.replica.handle(now, ReplicaInput::Ask { peer, records: wanted });
            }
        }
    }

    /// A message through relays: reconciliation only, answered back along the same relays.
    fn on_relayed(&mut self, now: Millis, from: PeerId, relays: Vec<PeerId>, msg: SyncMessage) {
        if !relayable(&msg) {
            let error = "writes and acknowledgements are not taken through relays".to_string();
            return self.out.push_back(Output::Dropped { from: Some(from), error });
        }
        if !self.view.contains(&from) {
            self.relays.learn(from, relays);
        }
        self.unproved = Some(from);
        self.on_frame(now, from, msg);
    }

    fn on_frame(&mut self, now: Millis, from: PeerId, msg: SyncMessage) {
        self.changed_by = Some(from);
        match msg {
            SyncMessage::Ack { ids } => self.queue.handle(now, QueueInput::Ack { from, ids }),
            msg => self.replica.handle(now, ReplicaInput::Received { from, msg }),
        }
    }

    /// Move the parts' outputs out, as the node's.
    fn drain(&mut self) {
        while let Some(o) = self.replica.poll_output() {
            match o {
                ReplicaOutput::Send { to, msg } => self.send(to, msg),
                ReplicaOutput::Persist(ops) => {
                    for op in &ops {
                        let note = match op {
                            PersistOp::Put { record, id, .. } => SyncNote::Kept { record: record.clone(), id: *id },
                            PersistOp::Delete { record, id } => SyncNote::Evicted { record: record.clone(), id: *id },
                        };
                        self.out.push_back(Output::Effect(Effect::Event(Event::Sync(note))));
                    }
                    self.out.push_back(Output::Store(store::record_ops(ops)))
                }
                ReplicaOutput::Invalid { from, error } => {
                    let proved = self.unproved != Some(from);
                    if let (true, PeerError::Version(RecordError::Signature(r))) = (proved, &error) {
                        let offence = Offence::InvalidEnvelope(*r);
                        self.out.push_back(Output::Effect(Effect::Report { peer: from, offence }));
                    }
                    self.out.push_back(Output::Dropped { from: Some(from), error: error.to_string() });
                }
                ReplicaOutput::Full { record } => self.out.push_back(Output::Dropped {
                    from: None,
                    error: format!("record store full: a version of `{}` refused", record.key),
                }),
                ReplicaOutput::Discarded { id, error } => {
                    self.out.push_back(Output::Store(store::discard_ops(id, Table::SyncRecords)));
                    self.out.push_back(Output::Dropped { from: None, error: format!("stored version: {error}") });
                }
                // Written and refused local writes are answered by `write` itself; a change of a
                // record concerns readers, who ask.
                ReplicaOutput::Written(_) | ReplicaOutput::WriteRefused { .. } => {}
                ReplicaOutput::Answered { from, records } => {
                    for op in self.reads.answered(from, &records) {
                        self.answer_if_ready(op);
                    }
                }
                // A change a peer's versions made goes on to the other replicas (see `propagate`);
                // a local write goes out through the queue.
                ReplicaOutput::Changed { record } => {
                    if self.changed_by.is_some() {
                        self.changed.push(record);
                    }
                }
            }
        }
        while let Some(o) = self.queue.poll_output() {
            match o {
                QueueOutput::Send { to, msg } => self.send(to, msg),
                QueueOutput::Persist(ops) => self.out.push_back(Output::Store(store::queue_ops(ops))),
                QueueOutput::Acknowledged { id, record } => {
                    let note = SyncNote::Acknowledged { record, id };
                    self.out.push_back(Output::Effect(Effect::Event(Event::Sync(note))));
                }
                QueueOutput::Refused { error, .. } => {
                    self.out.push_back(Output::Dropped { from: None, error: error.to_string() })
                }
                QueueOutput::Discarded { id, error } => {
                    self.out.push_back(Output::Store(store::discard_ops(id, Table::SyncQueue)));
                    self.out.push_back(Output::Dropped { from: None, error: format!("stored queue entry: {error}") });
                }
            }
        }
    }

    /// Over the link to `to`, or else along a relay route to it (reconciliation only).
    fn send(&mut self, to: PeerId, msg: SyncMessage) {
        let relayed = if self.view.contains(&to) { Err(msg) } else { self.relays.wrap(to, msg, &self.view) };
        let (to, msg) = relayed.unwrap_or_else(|msg| (to, Message::Sync(msg)));
        self.out.push_back(Output::Effect(Effect::Send { to, msg }));
    }

    /// After every input: drain the parts, hand changes on, keep rounds going while records are
    /// held, report changed figures.
    fn settle(&mut self, now: Millis) {
        self.drain();
        if !self.changed.is_empty() {
            self.propagate(now);
            self.drain();
        }
        self.changed_by = None;
        self.unproved = None;
        if self.replica.is_empty() {
            self.next_round = None;
        } else if self.next_round.is_none() {
            self.next_round = Some(now + self.cfg.anti_entropy_interval_ms);
        }
        let stats = SyncStats {
            pending: self.queue.pending(),
            oldest_pending_unix_ms: self.queue.oldest_enqueued_unix_ms(),
            records: self.replica.len(),
            online: !self.view.is_empty(),
        };
        if stats != self.stats {
            self.stats = stats;
            self.out.push_back(Output::Stats(stats));
        }
    }
}

impl Core for SyncCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Frame { from, msg } => self.on_frame(now, from, msg),
            Input::Link(ev) => self.on_link(now, ev),
            Input::Write { op, record, value, grant } => self.write(now, op, record, value, grant),
            Input::Read { op, record } => self.read(now, op, record),
            Input::Conflicts { op } => self.conflicts(op),
            Input::Found { target, peers, relays } => {
                for (peer, route) in relays {
                    if !self.view.contains(&peer) {
                        self.relays.learn(peer, route);
                    }
                }
                self.on_found(now, target, peers)
            }
            Input::Relayed { from, relays, msg } => self.on_relayed(now, from, relays, msg),
            Input::Restore(r) => {
                self.replica.handle(now, ReplicaInput::Restore(r.versions));
                self.queue.handle(now, QueueInput::Restore(r.queue));
            }
        }
        self.settle(now);
    }

    fn handle_timeout(&mut self, now: Millis) {
        self.queue.handle_timeout(now);
        if self.next_round.is_some_and(|t| t <= now) {
            self.next_round = Some(now + self.cfg.anti_entropy_interval_ms);
            self.round(now);
        }
        self.answer_reads(now);
        self.settle(now);
    }

    fn next_timeout(&self) -> Option<Millis> {
        [self.queue.next_timeout(), self.next_round, self.reads.next_timeout()].into_iter().flatten().min()
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        self.replica.check_invariants();
        self.queue.check_invariants();
        self.placement.check_invariants();
        self.relays.check_invariants();
        self.reads.check_invariants();
    }
}

#[path = "service_place.rs"]
mod place;

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
