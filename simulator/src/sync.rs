//! The sync workload (`[sync]` of a scenario): shared records, each written by its owner and two
//! granted writers, read at random live nodes; and the ground truth the run keeps of it. Every
//! version is known here from its writer's answer (id, clock); who holds what comes from the
//! nodes' `Event::Sync` notes (kept, evicted, acknowledged). Measurement only: nothing here feeds
//! back into the nodes. The figures' definitions are in the README ("Sync workload").

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use swarm_engine::sync::{Causality, RecordId, RecordView, VectorClock, VersionId};
use swarm_engine::PeerId;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSpec {
    /// Shared records (0: no sync workload). Owners and writers are drawn among the starting
    /// population; the owner grants its writers at the start.
    pub records: usize,
    /// Distinct writers per record, the owner among them.
    pub writers_per_record: usize,
    /// Writes per record per hour (a Poisson process over all records), each by one of the
    /// record's writers that is online at that moment (none online: the write is skipped).
    pub writes_per_record_per_hour: f64,
    /// Reads over the whole population per hour, each of a random record at a random live node.
    pub reads_per_hour: f64,
    /// Writes and reads from this time on...
    pub start_s: u64,
    /// ...until this long before the end (the rest of the run lets the last writes converge).
    pub quiet_s: u64,
    /// How often the run checks which acknowledged writes every live replica holds (the
    /// resolution of the convergence figures).
    pub check_interval_ms: u64,
}

impl Default for SyncSpec {
    fn default() -> Self {
        SyncSpec {
            records: 0,
            writers_per_record: 3,
            writes_per_record_per_hour: 20.0,
            reads_per_hour: 3600.0,
            start_s: 120,
            quiet_s: 120,
            check_interval_ms: 1000,
        }
    }
}

impl SyncSpec {
    pub fn enabled(&self) -> bool {
        self.records > 0
    }

    /// Checked against the run's population and duration; (field, reason) on error.
    pub fn validate(&self, nodes: usize, duration_s: u64) -> Result<(), (String, String)> {
        if !self.enabled() {
            return Ok(());
        }
        let err = |f: &str, r: String| Err((format!("sync.{f}"), r));
        if !(1..=nodes).contains(&self.writers_per_record) {
            return err("writers_per_record", format!("must be within 1..=nodes ({nodes})"));
        }
        let w = self.writes_per_record_per_hour;
        if !(w.is_finite() && (0.0..=3600.0).contains(&w)) {
            return err("writes_per_record_per_hour", format!("must be within 0..=3600, got {w}"));
        }
        let r = self.reads_per_hour;
        if !(r.is_finite() && (0.0..=1e7).contains(&r)) {
            return err("reads_per_hour", format!("must be within 0..=1e7, got {r}"));
        }
        if self.start_s + self.quiet_s >= duration_s {
            return err("quiet_s", format!("start_s + quiet_s must be below duration_s ({duration_s})"));
        }
        if !(100..=60_000).contains(&self.check_interval_ms) {
            return err("check_interval_ms", "must be within 100..=60000".into());
        }
        Ok(())
    }
}

/// Where the writes acknowledged before a read were when it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// The `rf` live nodes nearest the record's key held them all between them.
    Replicas,
    /// Live nodes held them all, but not the `rf` nearest.
    Elsewhere,
    /// Some was held by no live node (its holders all offline).
    Nowhere,
}

/// One written version, as the run knows it.
#[derive(Clone, Debug)]
pub struct Written {
    pub record: usize,
    pub writer: PeerId,
    pub clock: VectorClock,
    /// Last-writer-wins order key (timestamp, writer, id), as the engine orders versions.
    pub order: (u64, PeerId, VersionId),
    pub written_ms: u64,
    pub acked_ms: Option<u64>,
    /// When every live replica first held it (or a version that dominates it).
    pub converged_ms: Option<u64>,
    /// Its writer went offline before it was acknowledged, and came back at this time.
    pub returned_ms: Option<u64>,
    pub went_offline_pending: bool,
}

/// The ground truth of the sync workload.
#[derive(Default)]
pub struct SyncTruth {
    pub records: Vec<RecordId>,
    index: BTreeMap<RecordId, usize>,
    pub versions: BTreeMap<VersionId, Written>,
    /// Per record, its versions in write order.
    by_record: Vec<Vec<VersionId>>,
    /// What each node's record store keeps, per record (offline nodes keep theirs).
    held: BTreeMap<(PeerId, usize), BTreeSet<VersionId>>,
    /// Acknowledged and not yet converged.
    pub unconverged: BTreeSet<VersionId>,
    /// Write ops: (record, writer) by op; read ops: (record, started at ms) by op.
    writes: BTreeMap<u64, (usize, PeerId)>,
    reads: BTreeMap<u64, (usize, u64, Reach)>,
    pub writes_failed: Vec<String>,
    pub writes_skipped_offline: usize,
    pub reads_answered: usize,
    pub reads_divergent: usize,
    /// Each answered read's time from its start to its answer, ms.
    pub read_latency_ms: Vec<u64>,
    /// Answered reads by how many replicas had answered (the reader counted when it is one).
    pub reads_by_replicas: BTreeMap<usize, usize>,
    /// Reads that saw more than one version (winner and a conflict log).
    pub reads_multi: usize,
    /// Replica-set lookups answered and not yet compared with the truth: (record, answer).
    found: Vec<(usize, Vec<PeerId>)>,
    /// Lookups by how many of the `rf` live nodes nearest the key they found.
    pub lookups_found: BTreeMap<usize, usize>,
    pub missed_by_age: BTreeMap<&'static str, usize>,
    /// Divergent reads by where the writes acknowledged before them were when they started.
    pub divergent_by_reach: BTreeMap<Reach, usize>,
    pub evicted: usize,
    /// Acknowledgements of a version the run never saw written (must stay 0).
    pub unknown_acks: usize,
    /// When each node last came back (for the slow-convergence trail).
    back_at: BTreeMap<PeerId, u64>,
    /// Writes already reported as slow (logged once each).
    reported: BTreeSet<VersionId>,
}

/// Acknowledged writes not converged after this long are logged with who lacks them (target
/// `swarm_sim::sync`, at info).
const SLOW_MS: u64 = 30_000;

impl SyncTruth {
    pub fn new(records: Vec<RecordId>) -> Self {
        let index = records.iter().enumerate().map(|(i, r)| (r.clone(), i)).collect();
        let by_record = vec![Vec::new(); records.len()];
        SyncTruth { records, index, by_record, ..SyncTruth::default() }
    }

    pub fn record_index(&self, r: &RecordId) -> Option<usize> {
        self.index.get(r).copied()
    }

    pub fn write_started(&mut self, op: u64, record: usize, writer: PeerId) {
        self.writes.insert(op, (record, writer));
    }

    /// `nearest`: the live nodes nearest the record's key, the replicas first (`rf` of them);
    /// `live`: every live node.
    pub fn read_started(
        &mut self,
        op: u64,
        record: usize,
        now_ms: u64,
        rf: usize,
        nearest: &[PeerId],
        live: &[PeerId],
    ) {
        let acked: Vec<VersionId> = self.by_record[record]
            .iter()
            .filter(|id| self.versions[*id].acked_ms.is_some_and(|t| t < now_ms))
            .copied()
            .collect();
        let all_in = |nodes: &[PeerId]| acked.iter().all(|id| nodes.iter().any(|n| self.covers(*n, id)));
        let reach = if all_in(&nearest[..rf.min(nearest.len())]) {
            Reach::Replicas
        } else if all_in(live) {
            Reach::Elsewhere
        } else {
            Reach::Nowhere
        };
        self.reads.insert(op, (record, now_ms, reach));
    }

    /// The writer's answer: the new version is the winner of its view (a local write's clock
    /// dominates everything it keeps, and its timestamp is later).
    pub fn on_written(&mut self, op: u64, result: Result<RecordView, String>, now_ms: u64) {
        let Some((record, writer)) = self.writes.remove(&op) else { return };
        let v = match result.map(|view| view.winner) {
            Ok(Some(w)) if w.writer == writer => w,
            Ok(other) => return self.writes_failed.push(format!("op {op}: winner after the write is {other:?}")),
            Err(e) => return self.writes_failed.push(e),
        };
        let Ok(clock) = VectorClock::from_entries(v.clock.iter().copied()) else {
            return self.writes_failed.push(format!("op {op}: clock does not rebuild"));
        };
        self.by_record[record].push(v.id);
        let order = (v.timestamp_ms, v.writer, v.id);
        let w = Written {
            record,
            writer,
            clock,
            order,
            written_ms: now_ms,
            acked_ms: None,
            converged_ms: None,
            returned_ms: None,
            went_offline_pending: false,
        };
        self.versions.insert(v.id, w);
    }

    pub fn on_kept(&mut self, node: PeerId, record: &RecordId, id: VersionId) {
        if let Some(r) = self.record_index(record) {
            self.held.entry((node, r)).or_default().insert(id);
        }
    }

    pub fn on_evicted(&mut self, node: PeerId, record: &RecordId, id: VersionId) {
        if let Some(r) = self.record_index(record) {
            self.evicted += 1;
            if let Some(set) = self.held.get_mut(&(node, r)) {
                set.remove(&id);
            }
        }
    }

    pub fn on_found(&mut self, _node: PeerId, record: &RecordId, peers: Vec<PeerId>) {
        if let Some(r) = self.record_index(record) {
            self.found.push((r, peers));
        }
    }

    pub fn on_acknowledged(&mut self, id: VersionId, now_ms: u64) {
        match self.versions.get_mut(&id) {
            Some(w) if w.acked_ms.is_none() => {
                w.acked_ms = Some(now_ms);
                self.unconverged.insert(id);
            }
            Some(_) => {}
            None => self.unknown_acks += 1,
        }
    }

    /// `node` goes offline: its unacknowledged writes wait in its stored queue.
    pub fn on_offline(&mut self, node: PeerId) {
        for w in self.versions.values_mut().filter(|w| w.writer == node && w.acked_ms.is_none()) {
            w.went_offline_pending = true;
            w.returned_ms = None;
        }
    }

    pub fn on_return(&mut self, node: PeerId, now_ms: u64) {
        self.back_at.insert(node, now_ms);
        for w in self.versions.values_mut().filter(|w| w.writer == node && w.acked_ms.is_none()) {
            if w.went_offline_pending {
                w.returned_ms = Some(now_ms);
            }
        }
    }

    /// Does `node` keep `id`, or a version whose clock dominates it?
    pub fn covers(&self, node: PeerId, id: &VersionId) -> bool {
        let Some(w) = self.versions.get(id) else { return false };
        let Some(held) = self.held.get(&(node, w.record)) else { return false };
        held.contains(id) || held.iter().any(|h| self.dominates(h, &w.clock))
    }

    fn dominates(&self, v: &VersionId, clock: &VectorClock) -> bool {
        self.versions.get(v).is_some_and(|x| x.clock.dominates(clock))
    }

    /// A read's answer, against the writes acknowledged before it started: divergent if one of
    /// them is neither among the versions shown (winner and conflict log) nor dominated by one.
    pub fn on_read(&mut self, op: u64, view: RecordView, replicas: usize, now_ms: u64) {
        let Some((record, started_ms, reach)) = self.reads.remove(&op) else { return };
        self.reads_answered += 1;
        self.read_latency_ms.push(now_ms.saturating_sub(started_ms));
        *self.reads_by_replicas.entry(replicas).or_default() += 1;
        let shown: Vec<VersionId> = view.winner.iter().chain(view.conflicts.iter()).map(|v| v.id).collect();
        self.reads_multi += usize::from(shown.len() > 1);
        let missed = self.by_record[record].iter().any(|id| {
            let w = &self.versions[id];
            w.acked_ms.is_some_and(|t| t < started_ms)
                && !shown.contains(id)
                && !shown.iter().any(|s| self.dominates(s, &w.clock))
        });
        self.reads_divergent += usize::from(missed);
        if missed {
            *self.divergent_by_reach.entry(reach).or_default() += 1;
            let holds = view.versions;
            tracing::info!(target: "swarm_sim::sync", op, record, started_ms, now_ms, holds, replicas, shown = shown.len(), ?reach, "divergent read");
        }
    }

    /// Reads that never got an answer (the reader went offline first).
    pub fn reads_unanswered(&self) -> usize {
        self.reads.len()
    }

    /// Mark converged the acknowledged writes every one of their record's live replicas covers;
    /// `live(record)` names the live nodes nearest the record's key first, the replicas being
    /// the first `rf`.
    pub fn check(&mut self, now_ms: u64, rf: usize, mut live: impl FnMut(usize) -> Vec<PeerId>) {
        let mut cache: BTreeMap<usize, Vec<PeerId>> = BTreeMap::new();
        for (record, peers) in std::mem::take(&mut self.found) {
            let near = cache.entry(record).or_insert_with(|| live(record));
            let hits = near[..rf.min(near.len())].iter().filter(|p| peers.contains(p)).count();
            *self.lookups_found.entry(hits).or_default() += 1;
            for p in near[..rf.min(near.len())].iter().filter(|p| !peers.contains(p)) {
                let age = self.back_at.get(p).map(|t| now_ms.saturating_sub(*t) / 1000);
                let bucket = match age {
                    None => "never left",
                    Some(0..=9) => "back < 10 s",
                    Some(10..=59) => "back < 60 s",
                    Some(60..=299) => "back < 300 s",
                    _ => "back longer",
                };
                *self.missed_by_age.entry(bucket).or_default() += 1;
            }
        }
        let pending: Vec<VersionId> = self.unconverged.iter().copied().collect();
        for id in pending {
            let record = self.versions[&id].record;
            let near = cache.entry(record).or_insert_with(|| live(record));
            let reps = &near[..rf.min(near.len())];
            if reps.iter().all(|p| self.covers(*p, &id)) {
                self.unconverged.remove(&id);
                if let Some(w) = self.versions.get_mut(&id) {
                    w.converged_ms = Some(now_ms);
                }
            } else if self.versions[&id].acked_ms.is_some_and(|t| now_ms > t + SLOW_MS) && self.reported.insert(id) {
                let w = &self.versions[&id];
                let lacking: Vec<String> = reps
                    .iter()
                    .filter(|p| !self.covers(**p, &id))
                    .map(|p| {
                        let n = self.held.get(&(*p, record)).map_or(0, |h| h.len());
                        format!("{} (holds {n}, back at {:?})", p.short(), self.back_at.get(p))
                    })
                    .collect();
                let nearest: Vec<String> =
                    near.iter().map(|p| format!("{}:{}", &p.short()[..6], u8::from(self.covers(*p, &id)))).collect();
                let holders: Vec<String> = self.holders_of(&id).map(|p| p.short()[..6].to_string()).collect();
                tracing::info!(target: "swarm_sim::sync", record, writer = %w.writer.short(), written_ms = w.written_ms, acked_ms = ?w.acked_ms, now_ms, ?lacking, ?nearest, ?holders, "slow convergence");
            }
        }
    }

    /// Ground-truth conflict losers: versions some later (last-writer-wins order) version of
    /// the same record did not see and was not seen by (equal clocks on different versions
    /// count as concurrent, as the engine counts them). This is what a replica holding every
    /// version lists in its conflict log, as long as no record's window evicted anything.
    /// `reached(b)`: could a node have seen `b` (a version still queued on its writer, offline
    /// at the end, has beaten nothing anyone holds).
    pub fn conflict_losers(&self, reached: impl Fn(&VersionId) -> bool) -> BTreeSet<VersionId> {
        let mut out = BTreeSet::new();
        for ids in &self.by_record {
            for a in ids {
                let wa = &self.versions[a];
                let lost = ids.iter().filter(|b| reached(b)).any(|b| {
                    let wb = &self.versions[b];
                    wb.order > wa.order
                        && match wa.clock.compare(&wb.clock) {
                            Causality::Concurrent => true,
                            Causality::Equal => a != b,
                            _ => false,
                        }
                });
                if lost {
                    out.insert(*a);
                }
            }
        }
        out
    }

    /// (node, record) pairs where the node keeps some version of the record: how far records
    /// spread beyond their replica sets (writers, readers, former replicas).
    pub fn held_pairs(&self) -> usize {
        self.held.values().filter(|h| !h.is_empty()).count()
    }

    /// The nodes that keep `id`.
    pub fn holders_of<'a>(&'a self, id: &'a VersionId) -> impl Iterator<Item = PeerId> + 'a {
        let record = self.versions[id].record;
        self.held.iter().filter(move |((_, r), h)| *r == record && h.contains(id)).map(|((p, _), _)| *p)
    }

    /// Per record, the nodes that keep something of it (for the final checks).
    pub fn holders(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.held.keys().map(|(p, _)| *p)
    }
}
