//! The sync workload's steps in a run: records and grants at the start, writes by online
//! writers, reads at random live nodes, periodic convergence checks against the ground truth,
//! and the figures for the report. See [`crate::sync`].

use super::*;
use crate::sync::SyncTruth;
use std::cell::RefCell;
use std::collections::BTreeMap;
use swarm_engine::identity::Envelope;
use swarm_engine::observer::{Event, Observer, SyncNote};
use swarm_engine::routing::Key;
use swarm_engine::sync::service::record_key;
use swarm_engine::sync::store::SyncStore;
use swarm_engine::sync::{RecordId, RecordState, SyncEvent, Version, VersionId};
use swarm_engine::wiring::SyncListener;

/// One shared record: its writers' slots (the owner first) and their grants.
struct Shared {
    id: RecordId,
    writers: Vec<usize>,
    grants: Vec<Option<Envelope>>,
}

/// The run's sync state.
pub(super) struct SyncRun {
    pub(super) truth: Rc<RefCell<SyncTruth>>,
    rng: ChaCha8Rng,
    records: Vec<Shared>,
    /// Per record, slots by XOR distance of their identity to the record's key (recomputed
    /// when an identity changes: turnover joins).
    order: Vec<Vec<usize>>,
    order_of: Vec<PeerId>,
    next_op: u64,
}

/// The node observer of a run with a sync workload: sync notes to the ground truth, the rest
/// to the collector.
pub(super) struct SyncObserver {
    pub(super) collector: Rc<Collector>,
    pub(super) truth: Rc<RefCell<SyncTruth>>,
    pub(super) clock: Clock,
}

impl Observer for SyncObserver {
    fn on_event(&self, node: PeerId, event: Event) {
        match event {
            Event::Sync(note) => {
                let mut t = self.truth.borrow_mut();
                match note {
                    SyncNote::Kept { record, id } => t.on_kept(node, &record, id),
                    SyncNote::Evicted { record, id } => t.on_evicted(node, &record, id),
                    SyncNote::Acknowledged { id, .. } => t.on_acknowledged(id, self.clock.now()),
                    SyncNote::Found { record, peers } => t.on_found(node, &record, peers),
                }
            }
            other => self.collector.on_event(node, other),
        }
    }
}

/// The timeline's sync actions: writes and reads (Poisson), and the convergence checks.
pub(super) fn actions(sc: &Scenario, rng: &mut ChaCha8Rng) -> Vec<(u64, u8, Action)> {
    let s = &sc.sync;
    let mut t = Vec::new();
    if !s.enabled() {
        return t;
    }
    let (start, stop) = (s.start_s * 1000, (sc.duration_s - s.quiet_s) * 1000);
    let mut poisson = |per_hour: f64, action: fn() -> Action, t: &mut Vec<(u64, u8, Action)>| {
        if per_hour <= 0.0 {
            return;
        }
        let rate_per_ms = per_hour / 3_600_000.0;
        let mut at = start as f64;
        loop {
            let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
            at += -u.ln() / rate_per_ms;
            if at >= stop as f64 {
                break;
            }
            t.push((at as u64, 6, action()));
        }
    };
    poisson(s.writes_per_record_per_hour * s.records as f64, || Action::SyncWrite, &mut t);
    poisson(s.reads_per_hour, || Action::SyncRead, &mut t);
    let mut at = start;
    while at <= sc.duration_s * 1000 {
        t.push((at, 7, Action::SyncCheck));
        at += s.check_interval_ms;
    }
    t
}

impl SyncRun {
    /// The records, their owners and writers (drawn among the starting population) and the
    /// owners' grants.
    /// `identities`: the starting population's, by slot; `truth` (empty) is filled with the records.
    pub(super) fn new(
        sc: &Scenario,
        identities: &[Rc<Identity>],
        truth: Rc<RefCell<SyncTruth>>,
        mut rng: ChaCha8Rng,
    ) -> SyncRun {
        let s = &sc.sync;
        let mut records = Vec::with_capacity(s.records);
        for i in 0..s.records {
            let writers = rand::seq::index::sample(&mut rng, identities.len(), s.writers_per_record).into_vec();
            let owner = &identities[writers[0]];
            let key = format!("doc-{i}");
            let grants = writers
                .iter()
                .enumerate()
                .map(|(j, w)| {
                    let writer = identities[*w].peer_id();
                    (j > 0).then(|| swarm_engine::sync::grant(owner, writer, Some(key.clone()), SIM_UNIX_EPOCH_MS))
                })
                .collect();
            records.push(Shared { id: RecordId::new(owner.peer_id(), key), writers, grants });
        }
        *truth.borrow_mut() = SyncTruth::new(records.iter().map(|r| r.id.clone()).collect());
        SyncRun { truth, rng, records, order: vec![], order_of: vec![], next_op: 0 }
    }

    /// What node `id` tells the run about its writes and reads.
    pub(super) fn listener(&self, _id: PeerId, clock: Clock) -> SyncListener {
        let truth = self.truth.clone();
        Box::new(move |ev| match ev {
            SyncEvent::Written { op, result } => {
                truth.borrow_mut().on_written(op, result.map_err(|e| e.to_string()), clock.now())
            }
            SyncEvent::Read { op, view, replicas } => truth.borrow_mut().on_read(op, view, replicas, clock.now()),
            SyncEvent::Conflicts { .. } => {}
        })
    }

    fn refresh_order(&mut self, ids: &[PeerId]) {
        if self.order_of == ids {
            return;
        }
        self.order = self
            .records
            .iter()
            .map(|r| {
                let key = record_key(&r.id);
                let mut slots: Vec<usize> = (0..ids.len()).collect();
                slots.sort_by_key(|s| Key::of_peer(&ids[*s]).distance(&key));
                slots
            })
            .collect();
        self.order_of = ids.to_vec();
    }
}

/// A write of a random record by one of its writers online now.
pub(super) fn write(world: &mut World, at_ms: u64) {
    let Some(s) = world.sync.as_mut() else { return };
    let r = s.rng.gen_range(0..s.records.len());
    let rec = &s.records[r];
    let online: Vec<usize> = (0..rec.writers.len()).filter(|j| world.nodes[rec.writers[*j]].is_some()).collect();
    if online.is_empty() {
        s.truth.borrow_mut().writes_skipped_offline += 1;
        return;
    }
    let j = online[s.rng.gen_range(0..online.len())];
    let (slot, op) = (rec.writers[j], s.next_op);
    s.next_op += 1;
    let Some(node) = &world.nodes[slot] else { return };
    s.truth.borrow_mut().write_started(op, r, node.id);
    let value = format!("{} written by {} at {at_ms} ms", rec.id.key, node.id.short()).into_bytes();
    node.doc_write(op, rec.id.clone(), value, rec.grants[j].clone());
}

/// A read of a random record at a random live node.
pub(super) fn read(world: &mut World, at_ms: u64) {
    let live = world.live_slots();
    let rf = world.sc.node.replication.rf;
    let Some(s) = world.sync.as_mut() else { return };
    s.refresh_order(&world.ids);
    if live.is_empty() {
        return;
    }
    let r = s.rng.gen_range(0..s.records.len());
    let slot = live[s.rng.gen_range(0..live.len())];
    let op = s.next_op;
    s.next_op += 1;
    if let Some(node) = &world.nodes[slot] {
        let nearest: Vec<PeerId> =
            s.order[r].iter().filter(|x| world.nodes[**x].is_some()).take(rf).map(|x| world.ids[*x]).collect();
        let live_ids: Vec<PeerId> = live.iter().map(|x| world.ids[*x]).collect();
        s.truth.borrow_mut().read_started(op, r, at_ms, rf, &nearest, &live_ids);
        node.doc_read(op, s.records[r].id.clone());
    }
}

/// Which acknowledged writes every live replica now holds.
pub(super) fn check(world: &mut World, at_ms: u64) {
    let rf = world.sc.node.replication.rf;
    let Some(s) = world.sync.as_mut() else { return };
    s.refresh_order(&world.ids);
    let (order, nodes, ids) = (&s.order, &world.nodes, &world.ids);
    s.truth.borrow_mut().check(at_ms, rf, |r| {
        order[r].iter().filter(|slot| nodes[**slot].is_some()).take(rf + 5).map(|slot| ids[*slot]).collect()
    });
}

/// Conflict-log entries the nodes hold (live and offline, read back from their stores): the
/// union of every node's conflict log.
fn conflicts_logged(world: &World, among: &BTreeSet<PeerId>) -> BTreeSet<VersionId> {
    let mut out = BTreeSet::new();
    let Some(keep) = world.keep.as_ref() else { return out };
    let max_versions = world.sc.node.sync.max_versions_per_record;
    for (id, store) in keep.stores().filter(|(id, _)| among.contains(id)) {
        let shared: Rc<RefCell<dyn swarm_engine::storage::Storage>> = store.clone();
        let Ok(restored) = SyncStore::new(shared).load() else { continue };
        let mut states: BTreeMap<RecordId, RecordState> = BTreeMap::new();
        for env in restored.versions {
            match Version::open(env, &*world.verifier) {
                Ok(v) => {
                    states.entry(v.record()).or_insert_with(|| RecordState::new(max_versions)).apply(v);
                }
                Err(e) => tracing::warn!(node = %id.short(), error = %e, "a stored version does not open"),
            }
        }
        for s in states.values() {
            out.extend(s.conflicts().into_iter().map(|v| v.id()));
        }
    }
    out
}

/// The sync figures and notes.
/// (The run checks convergence once more at its end before this.)
pub(super) fn sync_metrics(world: &World, samples: &[Sample], m: &mut Metrics, notes: &mut Vec<String>) {
    let Some(s) = world.sync.as_ref() else { return };
    let t = s.truth.borrow();
    let live: BTreeSet<PeerId> = world.live_slots().into_iter().map(|slot| world.ids[slot]).collect();
    let mut kept = live.clone();
    if let Some(k) = world.keep.as_ref() {
        kept.extend(k.parked.keys().map(|slot| world.ids[*slot]));
    }
    let holders: BTreeSet<PeerId> = t.holders().collect();
    let acked: Vec<(&VersionId, &crate::sync::Written)> =
        t.versions.iter().filter(|(_, w)| w.acked_ms.is_some()).collect();
    let covered_by =
        |among: &BTreeSet<PeerId>, id: &VersionId| holders.iter().any(|h| among.contains(h) && t.covers(*h, id));
    let lost = acked.iter().filter(|(id, _)| !covered_by(&kept, id)).count();
    let unavailable = acked.iter().filter(|(id, _)| !covered_by(&live, id)).count();
    let mut conv: Vec<f64> =
        acked.iter().filter_map(|(_, w)| Some((w.converged_ms? - w.acked_ms?) as f64 / 1000.0)).collect();
    conv.sort_by(f64::total_cmp);
    let returned: Vec<&crate::sync::Written> =
        t.versions.values().filter(|w| w.went_offline_pending && w.returned_ms.is_some()).collect();
    let mut drain: Vec<f64> =
        returned.iter().filter_map(|w| Some((w.acked_ms? - w.returned_ms?) as f64 / 1000.0)).collect();
    drain.sort_by(f64::total_cmp);
    // A version still queued on its writer, offline at the end and never acknowledged, has
    // reached no one: no replica can log it yet if it lost, nor log what it beat (both are
    // logged once its writer is back).
    let logged = conflicts_logged(world, &kept);
    let stranded = |id: &VersionId| {
        let w = &t.versions[id];
        w.acked_ms.is_none()
            && !live.contains(&w.writer)
            && t.holders_of(id).all(|p| p == w.writer)
            && !logged.contains(id)
    };
    let unseen: BTreeSet<VersionId> = t.versions.keys().filter(|id| stranded(id)).copied().collect();
    let truth: BTreeSet<VersionId> =
        t.conflict_losers(|b| !unseen.contains(b)).into_iter().filter(|id| !unseen.contains(id)).collect();
    let stranded: BTreeSet<VersionId> = t.conflict_losers(|_| true).difference(&truth).copied().collect();
    for id in truth.difference(&logged) {
        let w = &t.versions[id];
        let holders: Vec<String> = t.holders_of(id).map(|p| p.short()).collect();
        tracing::info!(target: "swarm_sim::sync", record = w.record, writer = %w.writer.short(), written_ms = w.written_ms, acked_ms = ?w.acked_ms, ?holders, "true conflict not logged");
    }
    let p = |v: &[f64], q: f64| (!v.is_empty()).then(|| percentile(v, q));
    m.sync_writes = Some(t.versions.len());
    m.writes_acknowledged = Some(acked.len());
    m.writes_acknowledged_lost = Some(lost);
    m.writes_unconverged_end = Some(t.unconverged.len());
    m.convergence_p50_s = p(&conv, 50.0);
    m.convergence_p99_s = p(&conv, 99.0);
    m.convergence_max_s = conv.last().copied();
    m.reads_answered = Some(t.reads_answered);
    m.divergent_read_share = (t.reads_answered > 0).then(|| t.reads_divergent as f64 / t.reads_answered as f64);
    let mut reads: Vec<f64> = t.read_latency_ms.iter().map(|ms| *ms as f64 / 1000.0).collect();
    reads.sort_by(f64::total_cmp);
    m.read_latency_p50_s = p(&reads, 50.0);
    m.read_latency_p99_s = p(&reads, 99.0);
    m.conflicts_true = Some(truth.len());
    m.conflicts_logged = Some(logged.len());
    m.queued_writes_returned = Some(returned.len());
    m.queued_writes_drained = Some(drain.len());
    m.queue_drain_p99_s = p(&drain, 99.0);
    m.sync_pending_max = samples.iter().filter_map(|x| x.sync_pending).max();
    let spec = &world.sc.sync;
    notes.push(format!(
        "sync: {} records, {} writers each (owner + granted), {} writes/record/h from t={} s until {} s before the end, {} written ({} skipped: no writer online, {} failed), {} acknowledged (ack_quorum {} of rf {}), {} never acknowledged; {} acknowledged writes held by no live node at the end (all holders offline), {} lost (held by no node, live or offline); {} not converged at the end; convergence checked every {} ms",
        spec.records,
        spec.writers_per_record,
        spec.writes_per_record_per_hour,
        spec.start_s,
        spec.quiet_s,
        t.versions.len(),
        t.writes_skipped_offline,
        t.writes_failed.len(),
        acked.len(),
        world.sc.node.sync.ack_quorum,
        world.sc.node.replication.rf,
        t.versions.len() - acked.len(),
        unavailable,
        lost,
        t.unconverged.len(),
        spec.check_interval_ms,
    ));
    notes.push(format!(
        "sync replica lookups: {} answered; of the rf live nodes nearest the key when checked, found (count of lookups by how many): {:?}; nearest nodes missed, by time since they came back: {:?}",
        t.lookups_found.values().sum::<usize>(),
        t.lookups_found,
        t.missed_by_age,
    ));
    notes.push(format!(
        "sync reads: {} answered ({} unanswered: reader went offline; by replicas answered, the reader counted when it is one: {:?}), {} divergent (where the writes they missed were at their start: {:?}), {} showed more than one version; conflicts: {} true, {} logged ({} logged but not true, {} true but not logged; {} more not counted: queued on writers offline at the end, or beaten only by such a version), {} versions evicted from windows; queued writes whose writer went offline and came back: {}, drained {}; {} unknown acknowledgements",
        t.reads_answered,
        t.reads_unanswered(),
        t.reads_by_replicas,
        t.reads_divergent,
        t.divergent_by_reach,
        t.reads_multi,
        truth.len(),
        logged.len(),
        logged.difference(&truth).count(),
        truth.difference(&logged).count(),
        stranded.len(),
        t.evicted,
        returned.len(),
        drain.len(),
        t.unknown_acks,
    ));
    if let Some(e) = t.writes_failed.first() {
        notes.push(format!("first failed write: {e}"));
    }
    if let Some(k) = world.keep.as_ref() {
        notes.push(format!(
            "sessions: {} returns; {} nodes offline at the end; {} holders per record on average (live and offline; rf {})",
            k.returns,
            k.parked.len(),
            t.held_pairs() as f64 / spec.records.max(1) as f64,
            world.sc.node.replication.rf,
        ));
    }
}
