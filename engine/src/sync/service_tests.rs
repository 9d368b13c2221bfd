//! The sync core as a node runs it: writes made while the replica set is unreachable wait, go out
//! when a link comes up and leave the queue once acknowledged; two writers cut off from each other
//! converge on one winner and both log the conflict; reads answer once a quorum of replicas did; a writer
//! other than the owner needs a grant once; a restart from the stored tables keeps records and
//! queue. Messages are carried by hand between cores (no actors, no timers but the cores').

use crate::core::{Core, Effect, LinkEvent};
use crate::identity::{Ed25519Verifier, Envelope, Identity};
use crate::links::LinkTable;
use crate::routing::{Key, RoutingTable, TableConfig, TableView};
use crate::storage::memory::MemoryStorage;
use crate::storage::Storage;
use crate::sync::service::{record_key, Input, Output, SyncCore, SyncEvent, WriteError};
use crate::sync::store::{Restored, SyncStore};
use crate::sync::tests::{identity, EPOCH};
use crate::sync::{grant, RecordId, RecordView, SyncMessage};
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::{Message, Relayed};
use std::cell::RefCell;
use std::rc::Rc;

struct Peer {
    id: PeerId,
    identity: Rc<Identity>,
    core: SyncCore,
    links: LinkTable,
    table: TableView,
    store: SyncStore,
    events: Vec<SyncEvent>,
}

fn start(identity: Identity, storage: Option<Rc<RefCell<dyn Storage>>>) -> Peer {
    let id = identity.peer_id();
    let identity = Rc::new(identity);
    let links = LinkTable::default();
    let table = TableView::new(RoutingTable::new(&id, TableConfig::default()));
    let storage = storage.unwrap_or_else(|| Rc::new(RefCell::new(MemoryStorage::new())));
    let store = SyncStore::new(storage);
    let mut core = SyncCore::new(
        identity.clone(),
        Rc::new(Ed25519Verifier),
        Default::default(),
        3,
        EPOCH,
        links.view(),
        table.clone(),
    );
    core.handle(0, Input::Restore(store.load().unwrap()));
    Peer { id, identity, core, links, table, store, events: Vec::new() }
}

/// Apply the peer's outputs: storage, and messages sent (returned as (from, to, msg)).
fn drain(p: &mut Peer) -> Vec<(PeerId, PeerId, SyncMessage)> {
    p.core.check_invariants();
    let mut sent = Vec::new();
    while let Some(o) = p.core.poll_output() {
        match o {
            Output::Effect(Effect::Send { to, msg: Message::Sync(m) }) => sent.push((p.id, to, m)),
            Output::Store(ops) => p.store.apply(&ops).unwrap(),
            Output::Done(ev) => p.events.push(ev),
            _ => {}
        }
    }
    sent
}

/// Deliver messages among `peers` (only over open links) until none are left; time stands still.
fn settle(now: Millis, peers: &mut [&mut Peer]) {
    let mut queue: Vec<(PeerId, PeerId, SyncMessage)> = peers.iter_mut().flat_map(|p| drain(p)).collect();
    while let Some((from, to, msg)) = queue.pop() {
        let Some(p) = peers.iter_mut().find(|p| p.id == to) else { continue };
        if !p.links.view().contains(&from) {
            continue; // cut off: lost
        }
        p.core.handle(now, Input::Frame { from, msg });
        queue.extend(drain(p));
    }
}

fn link(now: Millis, a: &mut Peer, b: &mut Peer) {
    a.links.set(b.id, true);
    b.links.set(a.id, true);
    a.table.write().seen(b.id);
    b.table.write().seen(a.id);
    a.core.handle(now, Input::Link(LinkEvent::Up { peer: b.id, outbound: true }));
    b.core.handle(now, Input::Link(LinkEvent::Up { peer: a.id, outbound: false }));
}

fn cut(now: Millis, a: &mut Peer, b: &mut Peer) {
    a.links.set(b.id, false);
    b.links.set(a.id, false);
    a.core.handle(now, Input::Link(LinkEvent::Down { peer: b.id, clean: false }));
    b.core.handle(now, Input::Link(LinkEvent::Down { peer: a.id, clean: false }));
}

fn write(
    now: Millis,
    p: &mut Peer,
    record: &RecordId,
    value: &str,
    grant: Option<Envelope>,
) -> Result<RecordView, WriteError> {
    p.core.handle(now, Input::Write { op: 7, record: record.clone(), value: value.as_bytes().to_vec(), grant });
    drain(p);
    match p.events.pop() {
        Some(SyncEvent::Written { op: 7, result }) => result,
        other => panic!("no write answer: {other:?}"),
    }
}

fn value(view: &RecordView) -> String {
    String::from_utf8(view.winner.as_ref().expect("a winner").value.clone()).unwrap()
}

fn view(p: &Peer, record: &RecordId) -> RecordView {
    RecordView::of(record, p.core.replica().record(record).expect("the record is held"))
}

#[test]
fn offline_writes_wait_and_leave_the_queue_once_a_replica_acknowledges() {
    let (mut a, mut b) = (start(identity(1), None), start(identity(2), None));
    link(0, &mut a, &mut b);
    settle(0, &mut [&mut a, &mut b]);
    cut(10, &mut a, &mut b);
    let rec = RecordId::new(a.id, "doc");
    assert_eq!(value(&write(1_000, &mut a, &rec, "offline", None).unwrap()), "offline");
    a.core.handle_timeout(5_000);
    settle(5_000, &mut [&mut a, &mut b]);
    assert_eq!(a.core.queue().pending(), 1, "the replica is cut off: the write waits");
    assert_eq!(a.core.queue().oldest_pending_age_ms(61_000), Some(60_000));
    assert!(b.core.replica().record(&rec).is_none());
    // The link comes back: the write goes out, is acknowledged, leaves the queue.
    link(70_000, &mut a, &mut b);
    settle(70_000, &mut [&mut a, &mut b]);
    a.core.handle_timeout(70_500);
    settle(70_500, &mut [&mut a, &mut b]);
    assert_eq!(a.core.queue().pending(), 0);
    assert_eq!(value(&view(&b, &rec)), "offline");
}

#[test]
fn two_writers_cut_off_from_each_other_converge_and_both_log_the_conflict() {
    let (mut a, mut b) = (start(identity(1), None), start(identity(2), None));
    let rec = RecordId::new(a.id, "doc");
    let g = grant(&a.identity, b.id, Some("doc".into()), EPOCH);
    link(0, &mut a, &mut b);
    write(0, &mut a, &rec, "v0", None).unwrap();
    a.core.handle_timeout(1_000);
    settle(1_000, &mut [&mut a, &mut b]);
    assert_eq!(value(&view(&b, &rec)), "v0");
    // Without a grant a writer other than the owner is refused, and the reason names it.
    let e = write(1_000, &mut b, &rec, "x", None).unwrap_err();
    assert!(matches!(e, WriteError::NoGrant { .. }), "{e}");
    cut(2_000, &mut a, &mut b);
    write(3_000, &mut a, &rec, "from a", None).unwrap();
    write(4_000, &mut b, &rec, "from b", Some(g)).unwrap();
    // b's next write finds the grant it wrote under.
    write(4_500, &mut b, &rec, "from b again", None).unwrap();
    for p in [&mut a, &mut b] {
        p.core.handle_timeout(6_000);
        assert!(p.core.queue().pending() >= 1);
    }
    link(10_000, &mut a, &mut b);
    settle(10_000, &mut [&mut a, &mut b]);
    for t in [10_500, 16_000] {
        a.core.handle_timeout(t);
        b.core.handle_timeout(t);
        settle(t, &mut [&mut a, &mut b]);
    }
    let (va, vb) = (view(&a, &rec), view(&b, &rec));
    assert_eq!(va, vb, "both replicas hold the same state");
    assert_eq!(value(&va), "from b again", "the later of two concurrent writes wins");
    assert_eq!(va.conflicts.len(), 1, "{va:?}");
    assert_eq!(va.conflicts[0].value, b"from a");
    assert_eq!((a.core.queue().pending(), b.core.queue().pending()), (0, 0));
    a.core.handle(16_000, Input::Conflicts { op: 9 });
    drain(&mut a);
    assert!(matches!(a.events.pop(), Some(SyncEvent::Conflicts { op: 9, records }) if records == vec![va]));
}

/// A record of `identity(1)` whose owner is among the three of `identity(1..=4)` nearest its
/// key: those three started (nearest first), and the fourth (the reader).
fn three_replicas_and_a_reader() -> (Vec<Peer>, Peer, RecordId) {
    let owner = identity(1).peer_id();
    let ids: Vec<PeerId> = (1..=4).map(|i| identity(i).peer_id()).collect();
    let farthest = |r: &RecordId| ids.iter().max_by_key(|p| Key::of_peer(p).distance(&record_key(r))).copied();
    let rec = (0..).map(|i| RecordId::new(owner, format!("doc{i}"))).find(|r| farthest(r) != Some(owner)).unwrap();
    let (mut peers, rec) = by_distance(4, |_| rec.clone());
    let reader = peers.pop().unwrap();
    (peers, reader, rec)
}

#[test]
fn a_read_answers_once_a_quorum_of_replicas_answered_and_waits_while_fewer_did() {
    let (mut reps, mut r, rec) = three_replicas_and_a_reader();
    let owner_at = reps.iter().position(|p| p.id == rec.owner).unwrap();
    // The owner writes with both other replicas linked: they hold the write.
    let (left, right) = reps.split_at_mut(1);
    let (x, rest) = right.split_at_mut(1);
    let (p0, p1, p2) = (&mut left[0], &mut x[0], &mut rest[0]);
    link(0, p0, p1);
    link(0, p0, p2);
    link(0, p1, p2);
    let owner: &mut Peer = [&mut *p0, &mut *p1, &mut *p2].into_iter().nth(owner_at).unwrap();
    write(0, owner, &rec, "v1", None).unwrap();
    owner.core.handle_timeout(300);
    settle(300, &mut [&mut *p0, &mut *p1, &mut *p2]);
    for p in [&*p0, &*p1, &*p2] {
        assert_eq!(value(&view(p, &rec)), "v1");
    }
    // Linked to all three, the reader asks them once its lookup answers, and answers as soon as
    // two have answered: no timer runs out first.
    for p in [&mut *p0, &mut *p1, &mut *p2] {
        link(1_000, p, &mut r);
    }
    settle(1_000, &mut [&mut *p0, &mut *p1, &mut *p2, &mut r]);
    r.core.handle(1_000, Input::Read { op: 1, record: rec.clone() });
    let found = vec![p0.id, p1.id, p2.id];
    r.core.handle(1_000, Input::Found { target: record_key(&rec), peers: found, relays: Default::default() });
    settle(1_000, &mut [&mut *p0, &mut *p1, &mut *p2, &mut r]);
    assert!(
        matches!(r.events.pop(), Some(SyncEvent::Read { op: 1, view, replicas }) if value(&view) == "v1" && replicas >= 2),
        "answered at once by a quorum"
    );
    // With two of the replicas cut off, one answer is not enough: the read waits
    // `read_wait_ms` and `MAX_LINK_WAIT_MS` (links to the others are asked for), looks its
    // replicas up once more and asks again, and then answers with what it has.
    cut(2_000, p1, &mut r);
    cut(2_000, p2, &mut r);
    drain(&mut r);
    let (a, b) = (r.core.replica().record(&rec).unwrap().ids(), p0.core.replica().record(&rec).unwrap().ids());
    assert_eq!(a, b);
    r.core.handle(2_000, Input::Read { op: 2, record: rec.clone() });
    // (Links to replicas lost: their records are looked up again.)
    let found = vec![p0.id, p1.id, p2.id];
    r.core.handle(2_000, Input::Found { target: record_key(&rec), peers: found, relays: Default::default() });
    settle(2_000, &mut [&mut *p0, &mut r]);
    assert!(r.events.is_empty(), "answered with one replica of three heard: {:?}", r.events);
    assert_eq!(r.core.next_timeout(), Some(2_000 + 1_000 + crate::sync::service::MAX_LINK_WAIT_MS));
    r.core.handle_timeout(6_000);
    let lookups = std::iter::from_fn(|| r.core.poll_output()).filter(|o| matches!(o, Output::Lookup(_))).count();
    assert_eq!((lookups, r.events.len()), (1, 0), "the read looks its replicas up again");
    let found = vec![p0.id, p1.id, p2.id];
    r.core.handle(6_100, Input::Found { target: record_key(&rec), peers: found, relays: Default::default() });
    settle(6_100, &mut [&mut *p0, &mut r]);
    assert_eq!(r.core.next_timeout(), Some(6_100 + 1_000 + crate::sync::service::MAX_LINK_WAIT_MS));
    r.core.handle_timeout(10_100);
    drain(&mut r);
    assert!(matches!(r.events.pop(), Some(SyncEvent::Read { op: 2, view, replicas: 1 }) if value(&view) == "v1"));
}

#[test]
fn a_node_still_joining_waits_for_its_first_links_and_one_offline_answers_at_once() {
    let (mut a, mut b) = (start(identity(1), None), start(identity(2), None));
    let rec = RecordId::new(a.id, "doc");
    write(0, &mut a, &rec, "held by a", None).unwrap();
    // b has had no link yet: its read waits (the lookup answers empty: no links).
    b.core.handle(0, Input::Read { op: 1, record: rec.clone() });
    b.core.handle(0, Input::Found { target: record_key(&rec), peers: vec![], relays: Default::default() });
    drain(&mut b);
    assert!(b.events.is_empty(), "a joining node answered before it had links");
    // Its first link comes up: the read looks the replicas up again, asks, and answers.
    link(500, &mut a, &mut b);
    let lookups = std::iter::from_fn(|| b.core.poll_output()).filter(|o| matches!(o, Output::Lookup(_))).count();
    assert_eq!(lookups, 1, "the read's replicas are looked up once links exist");
    b.core.handle(600, Input::Found { target: record_key(&rec), peers: vec![a.id], relays: Default::default() });
    settle(600, &mut [&mut a, &mut b]);
    assert!(matches!(b.events.pop(), Some(SyncEvent::Read { op: 1, view, .. }) if value(&view) == "held by a"));
    // Every link lost: b is offline and answers from its store at once.
    cut(700, &mut a, &mut b);
    b.core.handle(800, Input::Read { op: 2, record: rec.clone() });
    drain(&mut b);
    assert!(matches!(b.events.pop(), Some(SyncEvent::Read { op: 2, view, .. }) if value(&view) == "held by a"));
}

#[test]
fn a_replica_answers_a_read_even_when_it_holds_the_same() {
    let (mut a, mut b) = (start(identity(1), None), start(identity(2), None));
    let rec = RecordId::new(a.id, "doc");
    let other = RecordId::new(a.id, "never written");
    write(0, &mut a, &rec, "v1", None).unwrap();
    link(10, &mut a, &mut b);
    settle(10, &mut [&mut a, &mut b]);
    a.core.handle_timeout(300);
    settle(300, &mut [&mut a, &mut b]);
    assert_eq!(value(&view(&b, &rec)), "v1");
    // Same state, and a record neither holds: a digest would get no reply, a question does.
    let ids = b.core.replica().record(&rec).unwrap().ids();
    let ask = SyncMessage::Ask { records: vec![(rec.clone(), ids), (other.clone(), vec![])] };
    a.core.handle(400, Input::Frame { from: b.id, msg: ask });
    let sent = drain(&mut a);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        matches!(&sent[0].2, SyncMessage::Answer { records, envelopes }
            if records.iter().map(|(r, _)| r).eq([&rec, &other]) && records[0].1 != records[1].1 && envelopes.is_empty()),
        "{sent:?}"
    );
}

#[test]
fn a_restart_from_the_stored_tables_keeps_records_and_queue() {
    let storage: Rc<RefCell<dyn Storage>> = Rc::new(RefCell::new(MemoryStorage::new()));
    let mut a = start(identity(1), Some(storage.clone()));
    let rec = RecordId::new(a.id, "doc");
    write(0, &mut a, &rec, "kept", None).unwrap();
    let other = RecordId::new(a.id, "other");
    write(10, &mut a, &other, "also", None).unwrap();
    assert_eq!(a.core.queue().pending(), 2);
    drop(a);
    let stored: Restored = SyncStore::new(storage.clone()).load().unwrap();
    assert_eq!((stored.versions.len(), stored.queue.len()), (2, 2));
    let mut again = start(identity(1), Some(storage));
    assert_eq!(value(&view(&again, &rec)), "kept");
    assert_eq!(again.core.queue().pending(), 2);
    // The restored writes still reach a replica that links, and leave the queue.
    let mut b = start(identity(2), None);
    link(1_000, &mut again, &mut b);
    settle(1_000, &mut [&mut again, &mut b]);
    again.core.handle_timeout(1_500);
    settle(1_500, &mut [&mut again, &mut b]);
    assert_eq!(again.core.queue().pending(), 0);
    assert_eq!(value(&view(&b, &rec)), "kept");
}

#[test]
fn a_read_with_no_replica_linked_asks_for_links_and_asks_them_when_they_come_up() {
    let (mut a, mut b) = (start(identity(1), None), start(identity(2), None));
    let rec = RecordId::new(a.id, "doc");
    write(0, &mut a, &rec, "held by a", None).unwrap();
    // b knows a (its table) but holds no link to it: the read asks for one and waits.
    b.table.write().seen(a.id);
    b.core.handle(100, Input::Read { op: 3, record: rec.clone() });
    b.core.handle(100, Input::Found { target: record_key(&rec), peers: vec![a.id], relays: Default::default() });
    let mut wanted = Vec::new();
    while let Some(o) = b.core.poll_output() {
        if let Output::Want(p) = o {
            wanted.push(p);
        }
    }
    wanted.dedup();
    assert_eq!(wanted, vec![a.id], "a link to the replica is asked for");
    // The link comes up at 400: the read asks a then, and answers once a has answered (a and
    // b are the whole replica set, and b held nothing: a's answer is all there is to hear).
    link(400, &mut a, &mut b);
    settle(400, &mut [&mut a, &mut b]);
    assert!(
        matches!(b.events.pop(), Some(SyncEvent::Read { op: 3, view, replicas: 1 }) if value(&view) == "held by a")
    );
}

#[test]
fn a_replica_hands_a_pushed_write_on_to_its_other_linked_replicas_once_placed() {
    let (mut a, mut b, mut c) = (start(identity(1), None), start(identity(2), None), start(identity(3), None));
    let rec = RecordId::new(a.id, "doc");
    // The writer reaches b only; b and c are linked. No anti-entropy round runs in this test.
    link(0, &mut a, &mut b);
    link(0, &mut b, &mut c);
    c.table.write().seen(a.id);
    settle(0, &mut [&mut a, &mut b, &mut c]);
    write(100, &mut a, &rec, "pushed", None).unwrap();
    a.core.handle_timeout(400);
    settle(400, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(value(&view(&b, &rec)), "pushed");
    // b had no lookup of the record: it asks for one before it tends it (a node back from
    // offline cannot place a record by its own table), and hands the write on once it answers.
    assert!(c.core.replica().record(&rec).is_none(), "handed on before b knew its place");
    b.core.handle(450, Input::Found { target: record_key(&rec), peers: vec![c.id, a.id], relays: Default::default() });
    settle(450, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(value(&view(&c, &rec)), "pushed", "b handed the write on without waiting for a round");
    assert!(c.core.next_timeout().is_some_and(|t| t > 400));
}

/// `n` started peers, sorted by XOR distance of their id to `rec`'s key, nearest first.
fn by_distance(n: u64, rec: impl Fn(&PeerId) -> RecordId) -> (Vec<Peer>, RecordId) {
    let peers: Vec<Peer> = (1..=n).map(|i| start(identity(i), None)).collect();
    let record = rec(&peers[0].id);
    let key = record_key(&record);
    let mut peers = peers;
    peers.sort_by_key(|p| Key::of_peer(&p.id).distance(&key));
    (peers, record)
}

#[test]
fn a_holder_a_lookup_places_far_from_the_key_hands_its_state_on_once_and_does_not_tend_it() {
    // Nine peers; the farthest from the key reads the record, then learns from a lookup that
    // eight live peers are nearer: it is no keeper (KEEPERS_PER_RF x rf = 6).
    let (mut peers, rec) = by_distance(9, |owner| RecordId::new(*owner, "doc"));
    let mut far = peers.pop().unwrap();
    let owner_at = peers.iter().position(|p| p.id == rec.owner).unwrap();
    let owner = &mut peers[owner_at];
    write(0, owner, &rec, "v1", None).unwrap();
    link(10, owner, &mut far);
    settle(10, &mut [owner, &mut far]);
    far.core.handle(20, Input::Read { op: 1, record: rec.clone() });
    let found: Vec<PeerId> = peers.iter().map(|p| p.id).collect();
    far.core.handle(30, Input::Found { target: record_key(&rec), peers: found.clone(), relays: Default::default() });
    settle(30, &mut [&mut peers[owner_at], &mut far]);
    // One replica linked of three: the read looks them up once more, then answers.
    far.core.handle_timeout(30 + 1_000 + 3_000);
    far.core.handle(4_100, Input::Found { target: record_key(&rec), peers: found, relays: Default::default() });
    settle(4_100, &mut [&mut peers[owner_at], &mut far]);
    far.core.handle_timeout(4_100 + 1_000 + 3_000);
    drain(&mut far);
    assert!(matches!(far.events.pop(), Some(SyncEvent::Read { op: 1, view, .. }) if value(&view) == "v1"));
    // Its anti-entropy rounds leave the record alone: no digest of it goes out.
    for t in [40_000, 80_000, 120_000] {
        far.core.handle_timeout(t);
        let digests = drain(&mut far).into_iter().filter(|(_, _, m)| matches!(m, SyncMessage::Digest { .. })).count();
        assert_eq!(digests, 0, "a holder that is no keeper reconciled the record at {t} ms");
    }
    // A new link to a keeper it handed the record to gets this state once; the state is not
    // handed on again when nothing changed.
    let near = &mut peers[0];
    link(130_000, near, &mut far);
    let first = drain(&mut far)
        .into_iter()
        .filter(|(_, to, m)| *to == near.id && matches!(m, SyncMessage::Digest { .. }))
        .count();
    assert!(first <= 1);
    far.core.handle(
        130_100,
        Input::Found {
            target: record_key(&rec),
            peers: peers.iter().map(|p| p.id).collect(),
            relays: Default::default(),
        },
    );
    let again = drain(&mut far).into_iter().filter(|(_, _, m)| matches!(m, SyncMessage::Digest { .. })).count();
    assert_eq!(again, 0, "the same state was handed on twice");
}

#[test]
fn an_empty_lookup_answer_for_a_held_record_does_not_start_another_lookup() {
    // A node with no links gets empty answers at once: looking up again on each would loop.
    let mut a = start(identity(1), None);
    let rec = RecordId::new(identity(2).peer_id(), "doc");
    let mut b = start(identity(2), None);
    write(0, &mut b, &rec, "v1", None).unwrap();
    link(10, &mut a, &mut b);
    settle(10, &mut [&mut a, &mut b]);
    a.core.handle(20, Input::Read { op: 1, record: rec.clone() });
    settle(20, &mut [&mut a, &mut b]);
    a.core.handle_timeout(5_000);
    drain(&mut a);
    assert!(a.core.replica().record(&rec).is_some(), "the read kept what it pulled");
    cut(6_000, &mut a, &mut b);
    drain(&mut a);
    a.core.handle(6_100, Input::Found { target: record_key(&rec), peers: vec![], relays: Default::default() });
    let mut lookups = 0;
    while let Some(o) = a.core.poll_output() {
        lookups += usize::from(matches!(o, Output::Lookup(_)));
    }
    assert_eq!(lookups, 0, "an empty answer started another lookup");
}

/// Messages `p` sent along relay routes, as their destinations take them: (from, to, the relays
/// from `to` back to `from`, message). The relays themselves are the content core's (tested there).
fn relayed(p: &mut Peer) -> Vec<(PeerId, PeerId, Vec<PeerId>, SyncMessage)> {
    let mut out = Vec::new();
    while let Some(o) = p.core.poll_output() {
        if let Output::Effect(Effect::Send { to: first, msg: Message::Relay { mut ahead, behind, msg } }) = o {
            assert!(behind.is_empty());
            let Relayed::Sync(m) = msg else { panic!("sync sent a lookup message") };
            let to = ahead.pop().expect("a destination");
            let mut back: Vec<PeerId> = std::iter::once(first).chain(ahead).collect();
            back.reverse();
            out.push((p.id, to, back, m));
        } else if let Output::Done(ev) = o {
            p.events.push(ev);
        }
    }
    out
}

#[test]
fn a_read_reaches_an_unlinked_replica_through_relays_and_relays_carry_no_writes() {
    let (mut a, mut b) = (start(identity(1), None), start(identity(2), None));
    let relay = identity(3).peer_id();
    let rec = RecordId::new(a.id, "doc");
    write(0, &mut a, &rec, "held by a", None).unwrap();
    drain(&mut a);
    // a and b are linked to the relay only; b's lookup met a through it.
    a.links.set(relay, true);
    b.links.set(relay, true);
    b.core.handle(50, Input::Link(LinkEvent::Up { peer: relay, outbound: true }));
    b.core.handle(100, Input::Read { op: 4, record: rec.clone() });
    drain(&mut b);
    // The lookup answers (at `now`) with a reached through the relay; b asks a along it.
    let found = |now: Millis, a: &mut Peer, b: &mut Peer| {
        let relays = [(a.id, vec![relay])].into_iter().collect();
        b.core.handle(now, Input::Found { target: record_key(&rec), peers: vec![a.id], relays });
        let mut queue = relayed(b);
        assert!(!queue.is_empty(), "b asked a through the relay, without a link");
        let mut hops = 0;
        while let Some((from, to, back, msg)) = queue.pop() {
            hops += 1;
            assert!(hops < 20, "the exchange ends");
            let p = if to == a.id { &mut *a } else { &mut *b };
            p.core.handle(now, Input::Relayed { from, relays: back, msg });
            queue.extend(relayed(p));
        }
    };
    found(100, &mut a, &mut b);
    // The replica's answer came back along the relays; the relay, linked to b, counts as one of
    // the three nearest and holds nothing, so the read waits out its time (`RELAY_WAIT_MS`
    // longer, its replica being reached through a relay), looks the replicas up and asks once
    // more, and answers with a's versions.
    assert!(b.events.is_empty());
    let wait = 1_000 + crate::sync::service::RELAY_WAIT_MS;
    assert_eq!(b.core.next_timeout(), Some(100 + wait));
    b.core.handle_timeout(100 + wait);
    found(2_200, &mut a, &mut b);
    assert!(b.events.is_empty());
    b.core.handle_timeout(2_200 + wait);
    drain(&mut b);
    assert!(
        matches!(b.events.pop(), Some(SyncEvent::Read { op: 4, view, replicas: 1 }) if value(&view) == "held by a")
    );
    // A write pushed through relays is refused, and never acknowledged.
    let pushed = a.core.replica().record(&rec).unwrap().versions().map(|v| v.envelope().clone()).collect();
    b.core
        .handle(200, Input::Relayed { from: a.id, relays: vec![relay], msg: SyncMessage::Push { envelopes: pushed } });
    let mut outputs = Vec::new();
    while let Some(o) = b.core.poll_output() {
        outputs.push(o);
    }
    assert!(outputs.iter().any(|o| matches!(o, Output::Dropped { from: Some(f), .. } if *f == a.id)), "{outputs:?}");
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Effect(Effect::Send { .. }))),
        "no acknowledgement: {outputs:?}"
    );
}
