//! Sync queue: offline writes wait and go out in one batch when a replica links; a quorum of
//! replica acknowledgements (and only replicas') removes a write; unacknowledged sends are
//! repeated; the queue survives a persist/restore round trip; end to end with replica cores under
//! loss, every write is eventually acknowledged and held.

use super::config::SyncConfig;
use super::queue::{QueueInput, QueueOp, QueueOutput, StoredWrite, SyncQueue, STORED_VERSION};
use super::record::{RecordId, Version, VersionId};
use super::replica::{ReplicaCore, ReplicaInput, ReplicaOutput, SyncMessage};
use super::tests::{identity, writers, EPOCH};
use crate::core::{Core, LinkEvent};
use crate::identity::{Ed25519Verifier, Identity};
use crate::time::Millis;
use crate::types::PeerId;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

fn cfg() -> SyncConfig {
    SyncConfig::default()
}

fn queue() -> SyncQueue {
    SyncQueue::new(cfg(), Rc::new(Ed25519Verifier), EPOCH)
}

/// `n` writes by `me` to its own records, signed through a replica core.
fn writes(me: &Identity, n: usize) -> Vec<Version> {
    let mut core = ReplicaCore::new(cfg(), Rc::new(me.duplicate()), Rc::new(Ed25519Verifier), EPOCH);
    (0..n)
        .map(|i| {
            core.write(i as Millis, RecordId::new(me.peer_id(), format!("k{}", i % 3)), vec![i as u8], None).unwrap()
        })
        .collect()
}

fn up(peer: PeerId) -> QueueInput {
    QueueInput::Link(LinkEvent::Up { peer, outbound: true })
}

fn down(peer: PeerId) -> QueueInput {
    QueueInput::Link(LinkEvent::Down { peer, clean: false })
}

fn outputs(q: &mut SyncQueue) -> Vec<QueueOutput> {
    q.check_invariants();
    std::iter::from_fn(|| q.poll_output()).collect()
}

/// Pushes sent, as (to, ids).
fn pushes(outs: &[QueueOutput]) -> Vec<(PeerId, Vec<VersionId>)> {
    outs.iter()
        .filter_map(|o| match o {
            QueueOutput::Send { to, msg: SyncMessage::Push { envelopes } } => {
                Some((*to, envelopes.iter().map(|e| VersionId(e.id())).collect()))
            }
            _ => None,
        })
        .collect()
}

fn replicas() -> Vec<PeerId> {
    (10..13).map(|i| identity(i).peer_id()).collect()
}

#[test]
fn offline_writes_wait_then_go_in_one_batch_and_leave_on_a_quorum() {
    let me = identity(1);
    let vs = writes(&me, 3);
    let r = replicas();
    let mut q = queue();
    for (n, v) in vs.iter().enumerate() {
        q.handle(n as Millis * 1_000, QueueInput::Enqueue { version: Box::new(v.clone()), replicas: r.clone() });
    }
    q.handle_timeout(10_000);
    let outs = outputs(&mut q);
    assert_eq!(outs.iter().filter(|o| matches!(o, QueueOutput::Persist(_))).count(), 3);
    assert!(pushes(&outs).is_empty(), "no replica linked: nothing sent");
    assert_eq!(q.next_timeout(), None, "offline: no timer spins");
    assert_eq!((q.pending(), q.oldest_pending_age_ms(60_000)), (3, Some(60_000)));
    // A replica links: all three go in one batch.
    q.handle(60_000, up(r[0]));
    let ids: Vec<VersionId> = vs.iter().map(|v| v.id()).collect();
    let sent = pushes(&outputs(&mut q));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, r[0]);
    assert_eq!(sent[0].1.iter().collect::<BTreeSet<_>>(), ids.iter().collect::<BTreeSet<_>>());
    // One acknowledgement of the quorum of two is not enough; a stranger's does not count.
    q.handle(60_100, QueueInput::Ack { from: r[0], ids: ids.clone() });
    q.handle(60_100, QueueInput::Ack { from: identity(99).peer_id(), ids: ids.clone() });
    assert_eq!(q.pending(), 3);
    q.handle(60_200, up(r[1]));
    assert_eq!(pushes(&outputs(&mut q)).iter().map(|p| p.0).collect::<Vec<_>>(), vec![r[1]]);
    q.handle(60_300, QueueInput::Ack { from: r[1], ids: ids[..2].to_vec() });
    let outs = outputs(&mut q);
    let acknowledged: BTreeSet<VersionId> = outs
        .iter()
        .filter_map(|o| match o {
            QueueOutput::Acknowledged { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(acknowledged, ids[..2].iter().copied().collect());
    assert!(outs.iter().any(|o| matches!(o, QueueOutput::Persist(ops) if matches!(ops[..], [QueueOp::Delete { .. }]))));
    assert_eq!(q.pending(), 1);
    assert_eq!(q.pending_ids().collect::<Vec<_>>(), vec![ids[2]]);
}

#[test]
fn unacknowledged_sends_are_repeated_after_the_resend_delay_only() {
    let me = identity(1);
    let v = writes(&me, 1).remove(0);
    let r = replicas();
    let mut q = queue();
    q.handle(0, up(r[0]));
    q.handle(0, QueueInput::Enqueue { version: Box::new(v.clone()), replicas: r.clone() });
    let batch = cfg().batch_delay_ms;
    assert_eq!(q.next_timeout(), Some(batch), "a write waits for its batch");
    q.handle_timeout(batch);
    assert_eq!(pushes(&outputs(&mut q)).len(), 1);
    let resend = cfg().resend_after_ms;
    assert_eq!(q.next_timeout(), Some(batch + resend));
    q.handle_timeout(batch + resend - 1);
    assert!(pushes(&outputs(&mut q)).is_empty(), "not before the resend delay");
    q.handle_timeout(batch + resend);
    assert_eq!(pushes(&outputs(&mut q)), vec![(r[0], vec![v.id()])]);
    // The link drops: nothing is sent and no timer is left for that replica.
    q.handle(batch + resend + 1, down(r[0]));
    q.handle_timeout(batch + 3 * resend);
    assert!(pushes(&outputs(&mut q)).is_empty());
}

#[test]
fn a_new_replica_set_takes_over_pending_writes() {
    let me = identity(1);
    let v = writes(&me, 1).remove(0);
    let r = replicas();
    let mut q = queue();
    q.handle(0, QueueInput::Enqueue { version: Box::new(v.clone()), replicas: r[..1].to_vec() });
    let newer = vec![r[1], r[2]];
    q.handle(10, up(r[2]));
    q.handle(20, QueueInput::Replicas { record: v.record(), replicas: newer.clone() });
    assert_eq!(pushes(&outputs(&mut q)), vec![(r[2], vec![v.id()])]);
    q.handle(30, QueueInput::Ack { from: r[0], ids: vec![v.id()] });
    assert_eq!(q.pending(), 1, "the old replica no longer counts");
    q.handle(30, QueueInput::Ack { from: r[1], ids: vec![v.id()] });
    q.handle(30, QueueInput::Ack { from: r[2], ids: vec![v.id()] });
    assert_eq!(q.pending(), 0);
}

#[derive(Clone, Debug)]
enum QOp {
    Enqueue(usize),
    Up(usize),
    Down(usize),
    Ack { replica: usize, write: usize },
    Tick(u64),
}

fn q_op() -> impl Strategy<Value = QOp> {
    prop_oneof![
        3 => (0usize..12).prop_map(QOp::Enqueue),
        1 => (0usize..3).prop_map(QOp::Up),
        1 => (0usize..3).prop_map(QOp::Down),
        2 => (0usize..3, 0usize..12).prop_map(|(replica, write)| QOp::Ack { replica, write }),
        1 => (0u64..10_000).prop_map(QOp::Tick),
    ]
}

fn apply_ops(store: &mut BTreeMap<VersionId, Vec<u8>>, outs: &[QueueOutput]) {
    for o in outs {
        if let QueueOutput::Persist(ops) = o {
            for op in ops {
                match op {
                    QueueOp::Put { id, bytes } => store.insert(*id, bytes.clone()),
                    QueueOp::Delete { id } => store.remove(id),
                };
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn queue_survives_a_persist_restore_round_trip(ops in proptest::collection::vec(q_op(), 0..40), later in 0u64..100_000) {
        let me = identity(1);
        let vs = writes(&me, 12);
        let r = replicas();
        let mut q = queue();
        let mut store = BTreeMap::new();
        let mut now = 0;
        for op in ops {
            match op {
                QOp::Enqueue(i) => q.handle(now, QueueInput::Enqueue { version: Box::new(vs[i].clone()), replicas: r.clone() }),
                QOp::Up(i) => q.handle(now, up(r[i])),
                QOp::Down(i) => q.handle(now, down(r[i])),
                QOp::Ack { replica, write } => q.handle(now, QueueInput::Ack { from: r[replica], ids: vec![vs[write].id()] }),
                QOp::Tick(ms) => {
                    now += ms;
                    q.handle_timeout(now);
                }
            }
            apply_ops(&mut store, &outputs(&mut q));
        }
        // The store holds exactly the pending writes.
        prop_assert_eq!(store.keys().copied().collect::<BTreeSet<_>>(), q.pending_ids().collect::<BTreeSet<_>>());
        // A node restarting `later` ms after (its clock at 0 again, its epoch moved on).
        let mut back = SyncQueue::new(cfg(), Rc::new(Ed25519Verifier), EPOCH + now + later);
        back.handle(0, QueueInput::Restore(store.iter().map(|(id, b)| (*id, b.clone())).collect()));
        let outs = outputs(&mut back);
        let quiet = !outs.iter().any(|o| matches!(o, QueueOutput::Discarded { .. } | QueueOutput::Persist(_)));
        prop_assert!(quiet, "restore discarded or rewrote entries");
        prop_assert_eq!(back.pending_ids().collect::<Vec<_>>(), q.pending_ids().collect::<Vec<_>>());
        prop_assert_eq!(back.oldest_pending_age_ms(0), q.oldest_pending_age_ms(now + later));
        // Restored writes go out as soon as a replica links.
        back.handle(0, up(r[0]));
        let sent: BTreeSet<VersionId> = pushes(&outputs(&mut back)).into_iter().flat_map(|p| p.1).collect();
        prop_assert_eq!(sent, q.pending_ids().collect::<BTreeSet<_>>());
    }

    #[test]
    fn restoring_garbage_never_panics(entries in proptest::collection::vec((any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 0..200)), 0..8)) {
        let mut q = queue();
        let n = entries.len();
        q.handle(0, QueueInput::Restore(entries.into_iter().map(|(id, b)| (VersionId(id), b)).collect()));
        let outs = outputs(&mut q);
        prop_assert_eq!(outs.iter().filter(|o| matches!(o, QueueOutput::Discarded { .. })).count(), n);
        prop_assert_eq!(q.pending(), 0);
    }
}

#[test]
fn stored_entries_name_what_is_wrong() {
    let me = identity(1);
    let v = writes(&me, 2);
    let stored = StoredWrite {
        version: STORED_VERSION,
        envelope: v[0].envelope().clone(),
        replicas: replicas(),
        enqueued_unix_ms: EPOCH,
    };
    let mut newer = stored.clone();
    newer.version = STORED_VERSION + 1;
    let mut q = queue();
    q.handle(0, QueueInput::Restore(vec![(v[1].id(), stored.encode()), (v[0].id(), newer.encode())]));
    let errors: Vec<String> = outputs(&mut q)
        .iter()
        .filter_map(|o| match o {
            QueueOutput::Discarded { error, .. } => Some(error.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 2);
    assert!(errors[0].contains("holds version"), "{}", errors[0]);
    assert!(errors[1].contains("layout version 2"), "{}", errors[1]);
}

// ---- End to end: a writer's queue and three replica cores over a lossy network ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn every_write_is_acknowledged_and_held_despite_loss(
        n in 1usize..8,
        loss in proptest::collection::vec(any::<bool>(), 64),
        offline_until in 0u64..20_000,
    ) {
        let w = writers();
        let me = &w.ids[0];
        let r_ids: Vec<Identity> = (20..23).map(identity).collect();
        let r: Vec<PeerId> = r_ids.iter().map(|i| i.peer_id()).collect();
        let mut reps: Vec<ReplicaCore> =
            r_ids.iter().map(|i| ReplicaCore::new(cfg(), Rc::new(i.duplicate()), Rc::new(Ed25519Verifier), EPOCH)).collect();
        let mut q = queue();
        for v in writes(me, n) {
            q.handle(0, QueueInput::Enqueue { version: Box::new(v), replicas: r.clone() });
        }
        let mut acknowledged = BTreeSet::new();
        let mut drops = loss.into_iter();
        let mut now = 0;
        let mut linked = false;
        // Offline until `offline_until`, then links up; messages are lost as `loss` says while it
        // lasts (both directions), then none are. Time moves by the resend delay.
        for _ in 0..100 {
            if !linked && now >= offline_until {
                for p in &r {
                    q.handle(now, up(*p));
                }
                linked = true;
            }
            q.handle_timeout(now);
            let outs = outputs(&mut q);
            for o in &outs {
                if let QueueOutput::Acknowledged { id, .. } = o {
                    acknowledged.insert(*id);
                }
            }
            for (to, msg) in outs.into_iter().filter_map(|o| match o {
                QueueOutput::Send { to, msg } => Some((to, msg)),
                _ => None,
            }) {
                if drops.next().unwrap_or(false) {
                    continue;
                }
                let i = r.iter().position(|p| *p == to).unwrap();
                reps[i].handle(now, ReplicaInput::Received { from: me.peer_id(), msg });
                let answers: Vec<ReplicaOutput> = std::iter::from_fn(|| reps[i].poll_output()).collect();
                for a in answers {
                    if let ReplicaOutput::Send { msg: SyncMessage::Ack { ids }, .. } = a {
                        if !drops.next().unwrap_or(false) {
                            q.handle(now, QueueInput::Ack { from: to, ids });
                        }
                    }
                }
            }
            if q.pending() == 0 {
                break;
            }
            now = q.next_timeout().unwrap_or(now + 1_000).max(now + 1);
        }
        for o in outputs(&mut q) {
            if let QueueOutput::Acknowledged { id, .. } = o {
                acknowledged.insert(id);
            }
        }
        prop_assert_eq!(q.pending(), 0, "writes still pending after the faults stopped");
        prop_assert_eq!(acknowledged.len(), n);
        // Each acknowledged write is held by at least the quorum of replicas.
        for id in &acknowledged {
            let holders = reps.iter().filter(|rep| rep.records().any(|(_, s)| s.contains(id))).count();
            prop_assert!(holders >= cfg().ack_quorum);
        }
    }
}
