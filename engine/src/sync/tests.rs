//! Sync: the laws of a record's merge (idempotent, commutative, associative, order-free), the
//! winner and conflict log against a brute-force oracle over every version ever received, and
//! replicas that converge by anti-entropy under any delivery order, loss and duplication.

use super::clock::VectorClock;
use super::config::SyncConfig;
use super::merge::{RecordState, Standing};
use super::record::{grant, RecordId, Version, VersionId};
use super::replica::{Digest32, PeerError, ReplicaCore, ReplicaInput, ReplicaOutput, SyncMessage};
use crate::core::Core;
use crate::identity::{Ed25519Verifier, Envelope, Identity};
use crate::types::PeerId;
use proptest::prelude::*;
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

pub(super) const EPOCH: u64 = 1_700_000_000_000;

pub(super) fn identity(seed: u64) -> Identity {
    Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

/// The owner (writer 0) and two writers it granted every key.
pub(super) struct Writers {
    pub ids: Vec<Identity>,
    pub grants: Vec<Option<Envelope>>,
}

pub(super) fn writers() -> Writers {
    let ids: Vec<Identity> = (1..=3).map(identity).collect();
    let owner = &ids[0];
    let grants = ids.iter().enumerate().map(|(i, w)| (i > 0).then(|| grant(owner, w.peer_id(), None, EPOCH))).collect();
    Writers { ids, grants }
}

fn record(w: &Writers) -> RecordId {
    RecordId::new(w.ids[0].peer_id(), "doc")
}

#[derive(Clone, Debug)]
enum HistOp {
    /// Writer `w` writes on what it holds; `ts` is its clock reading (skewed writers too).
    Write { w: usize, ts: u64 },
    /// Writer `to` learns everything writer `from` holds.
    Learn { from: usize, to: usize },
}

fn hist_op() -> impl Strategy<Value = HistOp> {
    prop_oneof![
        3 => (0usize..3, 0u64..6).prop_map(|(w, ts)| HistOp::Write { w, ts }),
        2 => (0usize..3, 0usize..3).prop_map(|(from, to)| HistOp::Learn { from, to }),
    ]
}

/// Versions made by writers who write on what they hold and learn from each other. With
/// `honest` timestamps, a write is dated after everything it saw (as [`ReplicaCore::write`]
/// does); otherwise clocks are skewed at random (ties and inversions included).
fn history(ops: &[HistOp], honest: bool, rogue: bool) -> Vec<Version> {
    let w = writers();
    let rec = record(&w);
    let mut local: Vec<RecordState> = (0..3).map(|_| RecordState::new(1000)).collect();
    let mut all = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        match op {
            HistOp::Write { w: i, ts } => {
                let mut clock = local[*i].clock().unwrap();
                clock.tick(w.ids[*i].peer_id()).unwrap();
                let now = EPOCH + ts;
                let t = if honest { local[*i].next_timestamp(now) } else { now };
                let value = vec![n as u8];
                let v = Version::sign(&w.ids[*i], &rec, clock, value, t, w.grants[*i].clone()).unwrap();
                local[*i].apply(v.clone());
                all.push(v);
            }
            HistOp::Learn { from, to } => {
                let src = local[*from].clone();
                local[*to].merge(&src);
            }
        }
    }
    if rogue && !all.is_empty() {
        // A writer that signs two values at one clock: equal clocks, different versions.
        let first = all[0].clone();
        let i = w.ids.iter().position(|id| id.peer_id() == first.writer()).unwrap();
        let v =
            Version::sign(&w.ids[i], &rec, first.clock().clone(), vec![255], first.timestamp_ms(), w.grants[i].clone())
                .unwrap();
        all.push(v);
    }
    all
}

fn state_of<'a>(k: usize, vs: impl IntoIterator<Item = &'a Version>) -> RecordState {
    let mut s = RecordState::new(k);
    for v in vs {
        s.apply(v.clone());
    }
    s
}

fn joined(a: &RecordState, b: &RecordState) -> RecordState {
    let mut s = a.clone();
    s.merge(b);
    s
}

fn concurrent(a: &Version, b: &Version) -> bool {
    a.id() != b.id() && !a.clock().dominates(b.clock()) && !b.clock().dominates(a.clock())
}

fn ids<'a>(vs: impl IntoIterator<Item = &'a Version>) -> BTreeSet<VersionId> {
    vs.into_iter().map(|v| v.id()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn merge_is_idempotent_commutative_associative(
        ops in proptest::collection::vec(hist_op(), 1..16),
        honest in any::<bool>(),
        rogue in any::<bool>(),
        k in 1usize..10,
        parts in proptest::collection::vec(0u8..8, 20),
    ) {
        let all = history(&ops, honest, rogue);
        // Three overlapping subsets: bit i of parts[n] puts version n in subset i.
        let subset = |bit: u8| state_of(k, all.iter().enumerate().filter(|(n, _)| parts[*n % 20] & (1 << bit) != 0).map(|(_, v)| v));
        let (a, b, c) = (subset(0), subset(1), subset(2));
        prop_assert_eq!(joined(&a, &a), a.clone());
        prop_assert_eq!(joined(&a, &b), joined(&b, &a));
        prop_assert_eq!(joined(&joined(&a, &b), &c), joined(&a, &joined(&b, &c)));
        // Joining is receiving: the join of the parts is the state of their union.
        let union = state_of(k, all.iter().enumerate().filter(|(n, _)| parts[*n % 20] & 7 != 0).map(|(_, v)| v));
        prop_assert_eq!(joined(&joined(&a, &b), &c), union);
    }

    #[test]
    fn any_order_with_duplicates_gives_one_state(
        ops in proptest::collection::vec(hist_op(), 1..16),
        honest in any::<bool>(),
        k in 1usize..10,
        order in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let all = history(&ops, honest, true);
        if all.is_empty() {
            return Ok(());
        }
        let forward = state_of(k, &all);
        let backward = state_of(k, all.iter().rev());
        prop_assert_eq!(&forward, &backward);
        // A random delivery with repeats, then everything once more (what retransmission does).
        let mut shuffled = state_of(k, order.iter().map(|i| &all[i.index(all.len())]));
        for v in &all {
            shuffled.apply(v.clone());
        }
        prop_assert_eq!(&forward, &shuffled);
        prop_assert_eq!(forward.digest(), shuffled.digest());
    }

    #[test]
    fn winner_and_conflict_log_match_the_definition(
        ops in proptest::collection::vec(hist_op(), 1..16),
        honest in any::<bool>(),
        rogue in any::<bool>(),
        k in 1usize..24,
    ) {
        let all = history(&ops, honest, rogue);
        let s = state_of(k, &all);
        let mut sorted = all.clone();
        sorted.sort_by(|a, b| a.lww_cmp(b));
        let kept: Vec<&Version> = sorted.iter().rev().take(k).collect();
        prop_assert_eq!(ids(s.versions()), ids(kept.iter().copied()));
        // Winner: the latest kept version no kept version dominates.
        let winner = kept.iter().find(|v| !kept.iter().any(|w| w.clock().dominates(v.clock())));
        prop_assert_eq!(s.winner().map(|v| v.id()), winner.map(|v| v.id()));
        // Conflict log: kept versions but the winner that lost to a concurrent later version among
        // ALL received (the window is exact: later versions are never outside it).
        let logged: BTreeSet<VersionId> = kept
            .iter()
            .filter(|v| Some(v.id()) != winner.map(|w| w.id()))
            .filter(|v| all.iter().any(|w| concurrent(v, w) && w.lww_cmp(v).is_gt()))
            .map(|v| v.id())
            .collect();
        prop_assert_eq!(ids(s.conflicts()), logged);
        if honest && !rogue {
            // Honest writers date a write after what it saw: the winner is the latest of all,
            // and a version that dominates another is later.
            prop_assert_eq!(s.winner().map(|v| v.id()), sorted.last().map(|v| v.id()));
        }
    }

    #[test]
    fn no_version_disappears_without_a_log_entry(
        ops in proptest::collection::vec(hist_op(), 1..16),
        honest in any::<bool>(),
        rogue in any::<bool>(),
    ) {
        let all = history(&ops, honest, rogue);
        // A window larger than the history: every version is accounted for.
        let s = state_of(all.len().max(1), &all);
        let Some(winner) = s.winner().map(|v| v.id()) else {
            prop_assert!(all.is_empty());
            return Ok(());
        };
        for v in &all {
            let kept = s.get(&v.id());
            prop_assert!(kept.is_some(), "version {:?} disappeared", v.id());
            let standing = s.standing(v);
            let lost = all.iter().any(|w| concurrent(v, w) && w.lww_cmp(v).is_gt());
            match standing {
                Standing::Winner => prop_assert_eq!(v.id(), winner),
                Standing::Conflict => prop_assert!(lost),
                // Superseded: a later write saw it, and nothing concurrent beat it.
                Standing::Superseded => prop_assert!(!lost && all.iter().any(|w| w.clock().dominates(v.clock()))),
            }
            // A loser is logged, unless it is the value read: with skewed clocks, the version that
            // beat it can be superseded by an earlier-dated write that did not beat it.
            if lost && v.id() != winner {
                prop_assert_eq!(standing, Standing::Conflict, "a concurrent loser must be logged");
            }
            if honest && !rogue {
                prop_assert!(!(lost && v.id() == winner), "honest clocks: the winner lost to nothing");
            }
        }
    }
}

// ---- Replicas: anti-entropy under loss, duplication and any order ----

fn replica(w: &Writers, i: usize, k: usize) -> ReplicaCore {
    let cfg = SyncConfig { max_versions_per_record: k, max_versions_per_message: 4, ..SyncConfig::default() };
    ReplicaCore::new(cfg, Rc::new(w.ids[i].duplicate()), Rc::new(Ed25519Verifier), EPOCH)
}

#[derive(Clone, Debug)]
enum NetOp {
    Write { node: usize, key: usize },
    Exchange { from: usize, to: usize },
    Deliver(prop::sample::Index),
    Drop(prop::sample::Index),
    Duplicate(prop::sample::Index),
    Tick(u64),
}

fn net_op() -> impl Strategy<Value = NetOp> {
    prop_oneof![
        2 => (0usize..3, 0usize..2).prop_map(|(node, key)| NetOp::Write { node, key }),
        2 => (0usize..3, 0usize..3).prop_map(|(from, to)| NetOp::Exchange { from, to }),
        5 => any::<prop::sample::Index>().prop_map(NetOp::Deliver),
        1 => any::<prop::sample::Index>().prop_map(NetOp::Drop),
        1 => any::<prop::sample::Index>().prop_map(NetOp::Duplicate),
        1 => (0u64..50).prop_map(NetOp::Tick),
    ]
}

struct Net {
    nodes: Vec<ReplicaCore>,
    peers: Vec<PeerId>,
    flight: Vec<(usize, usize, SyncMessage)>,
    written: Vec<Version>,
    now: u64,
}

impl Net {
    fn drain(&mut self, i: usize) {
        while let Some(out) = self.nodes[i].poll_output() {
            match out {
                ReplicaOutput::Send { to, msg } => {
                    let j = self.peers.iter().position(|p| *p == to).expect("a test peer");
                    self.flight.push((i, j, msg));
                }
                ReplicaOutput::Written(v) => self.written.push(v),
                ReplicaOutput::Invalid { error, .. } => panic!("honest replicas sent something invalid: {error}"),
                ReplicaOutput::WriteRefused { error, .. } => panic!("write refused: {error}"),
                _ => {}
            }
        }
    }

    fn input(&mut self, i: usize, input: ReplicaInput) {
        self.nodes[i].handle(self.now, input);
        self.nodes[i].check_invariants();
        self.drain(i);
    }

    fn deliver(&mut self, n: usize) {
        let (from, to, msg) = self.flight.remove(n);
        let from = self.peers[from];
        self.input(to, ReplicaInput::Received { from, msg });
    }
}

fn records(w: &Writers) -> Vec<RecordId> {
    vec![RecordId::new(w.ids[0].peer_id(), "a"), RecordId::new(w.ids[0].peer_id(), "b")]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn replicas_converge_under_loss_duplication_and_reordering(
        ops in proptest::collection::vec(net_op(), 1..60),
        small_window in any::<bool>(),
    ) {
        let w = writers();
        let k = if small_window { 3 } else { 64 };
        let recs = records(&w);
        let mut net = Net {
            nodes: (0..3).map(|i| replica(&w, i, k)).collect(),
            peers: w.ids.iter().map(|i| i.peer_id()).collect(),
            flight: Vec::new(),
            written: Vec::new(),
            now: 0,
        };
        for op in ops {
            match op {
                NetOp::Write { node, key } => {
                    let input = ReplicaInput::Write { record: recs[key].clone(), value: vec![node as u8], grant: w.grants[node].clone() };
                    net.input(node, input);
                }
                NetOp::Exchange { from, to } if from != to => {
                    net.input(from, ReplicaInput::Exchange { peer: net.peers[to], records: recs.clone() });
                }
                NetOp::Exchange { .. } => {}
                NetOp::Deliver(i) if !net.flight.is_empty() => net.deliver(i.index(net.flight.len())),
                NetOp::Drop(i) if !net.flight.is_empty() => {
                    net.flight.remove(i.index(net.flight.len()));
                }
                NetOp::Duplicate(i) if !net.flight.is_empty() => {
                    let m = net.flight[i.index(net.flight.len())].clone();
                    net.flight.push(m);
                }
                NetOp::Tick(ms) => net.now += ms,
                _ => {}
            }
        }
        // Liveness: the faults stop; what is still in flight arrives, then every pair exchanges
        // once, each exchange delivered in full (anti-entropy's retransmission is the next round).
        while !net.flight.is_empty() {
            net.deliver(0);
        }
        for from in 0..3 {
            for to in 0..3 {
                if from != to {
                    net.input(from, ReplicaInput::Exchange { peer: net.peers[to], records: recs.clone() });
                    while !net.flight.is_empty() {
                        net.deliver(0);
                    }
                }
            }
        }
        for rec in &recs {
            // Every replica holds the state of the union of all writes to the record.
            let expected = state_of(k, net.written.iter().filter(|v| v.record() == *rec));
            for node in &net.nodes {
                match node.record(rec) {
                    Some(s) => prop_assert_eq!(s, &expected),
                    None => prop_assert!(expected.is_empty()),
                }
            }
        }
    }
}

fn outputs(core: &mut ReplicaCore) -> Vec<ReplicaOutput> {
    std::iter::from_fn(|| core.poll_output()).collect()
}

#[test]
fn pushed_writes_are_acknowledged_and_forged_ones_reported() {
    let w = writers();
    let mut a = replica(&w, 1, 32);
    let mut b = replica(&w, 2, 32);
    let rec = RecordId::new(w.ids[0].peer_id(), "doc");
    let v = a.write(0, rec.clone(), b"hi".to_vec(), w.grants[1].clone()).unwrap();
    let persisted = outputs(&mut a);
    assert!(persisted.iter().any(|o| matches!(o, ReplicaOutput::Persist(ops) if ops.len() == 1)));
    let mut forged = v.envelope().clone();
    forged.data.push(0);
    let from = w.ids[1].peer_id();
    let msg = SyncMessage::Push { envelopes: vec![v.envelope().clone(), forged] };
    b.handle(5, ReplicaInput::Received { from, msg });
    let outs = outputs(&mut b);
    assert!(outs.iter().any(|o| matches!(o, ReplicaOutput::Invalid { error: PeerError::Version(_), .. })));
    let acked: Vec<&Vec<VersionId>> = outs
        .iter()
        .filter_map(|o| match o {
            ReplicaOutput::Send { msg: SyncMessage::Ack { ids }, .. } => Some(ids),
            _ => None,
        })
        .collect();
    assert_eq!(acked, vec![&vec![v.id()]], "the good write is acknowledged, the forged one is not");
    assert_eq!(b.record(&rec).unwrap().winner().unwrap().value(), b"hi");
}

/// A peer whose digest of a record is empty (it holds none of it) gets the versions at once; a
/// peer holding a different state gets the ids first (have, then want).
#[test]
fn an_empty_digest_is_answered_with_the_versions() {
    let w = writers();
    let mut a = replica(&w, 1, 32);
    let rec = RecordId::new(w.ids[0].peer_id(), "doc");
    let v = a.write(0, rec.clone(), b"hi".to_vec(), w.grants[1].clone()).unwrap();
    outputs(&mut a);
    let from = w.ids[2].peer_id();
    let empty = SyncMessage::Digest { records: vec![(rec.clone(), Digest32([0; 32]))] };
    a.handle(5, ReplicaInput::Received { from, msg: empty });
    let sent: Vec<SyncMessage> = outputs(&mut a)
        .into_iter()
        .filter_map(|o| match o {
            ReplicaOutput::Send { to, msg } if to == from => Some(msg),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![SyncMessage::Versions { envelopes: vec![v.envelope().clone()] }]);
    let other = SyncMessage::Digest { records: vec![(rec.clone(), Digest32([7; 32]))] };
    a.handle(6, ReplicaInput::Received { from, msg: other });
    let sent: Vec<ReplicaOutput> = outputs(&mut a);
    assert!(matches!(sent.as_slice(), [ReplicaOutput::Send { msg: SyncMessage::Have { .. }, .. }]), "{sent:?}");
}

#[test]
fn far_future_versions_and_oversized_messages_are_refused() {
    let w = writers();
    let mut b = replica(&w, 2, 32);
    let rec = RecordId::new(w.ids[0].peer_id(), "doc");
    let clock = VectorClock::from_entries([(w.ids[0].peer_id(), 1)]).unwrap();
    let ahead = SyncConfig::default().max_clock_ahead_ms + 1;
    let v = Version::sign(&w.ids[0], &rec, clock, vec![1], EPOCH + ahead + 10, None).unwrap();
    let from = w.ids[0].peer_id();
    b.handle(10, ReplicaInput::Received { from, msg: SyncMessage::Push { envelopes: vec![v.envelope().clone()] } });
    let outs = outputs(&mut b);
    assert!(outs.iter().any(|o| matches!(o, ReplicaOutput::Invalid { error: PeerError::FromFuture { .. }, .. })));
    assert!(b.record(&rec).is_none());
    // Later, when the writer's time has come, the same version is taken.
    b.handle(ahead, ReplicaInput::Received { from, msg: SyncMessage::Push { envelopes: vec![v.envelope().clone()] } });
    assert!(b.record(&rec).is_some());
    let too_many = vec![v.envelope().clone(); 5]; // the test config allows 4 a message
    b.handle(ahead, ReplicaInput::Received { from, msg: SyncMessage::Versions { envelopes: too_many } });
    let outs = outputs(&mut b);
    assert!(outs.iter().any(|o| matches!(o, ReplicaOutput::Invalid { error: PeerError::TooMany { .. }, .. })));
}

#[test]
fn restore_brings_the_store_back_and_discards_garbage() {
    let w = writers();
    let mut a = replica(&w, 0, 32);
    let rec = RecordId::new(w.ids[0].peer_id(), "doc");
    let mut store: BTreeMap<VersionId, Envelope> = BTreeMap::new();
    for n in 0..3u64 {
        a.write(n * 10, rec.clone(), vec![n as u8], None).unwrap();
    }
    for out in outputs(&mut a) {
        if let ReplicaOutput::Persist(ops) = out {
            for op in ops {
                match op {
                    super::replica::PersistOp::Put { id, envelope, .. } => store.insert(id, envelope),
                    super::replica::PersistOp::Delete { id, .. } => store.remove(&id),
                };
            }
        }
    }
    let mut back = replica(&w, 0, 32);
    let mut stored: Vec<Envelope> = store.values().cloned().collect();
    let mut garbage = stored[0].clone();
    garbage.signature[0] ^= 1;
    stored.push(garbage);
    back.handle(0, ReplicaInput::Restore(stored));
    let outs = outputs(&mut back);
    assert_eq!(outs.iter().filter(|o| matches!(o, ReplicaOutput::Discarded { .. })).count(), 1);
    assert_eq!(back.record(&rec), a.record(&rec));
    assert_eq!(back.record(&rec).unwrap().winner().unwrap().value(), &[2]);
}
