//! The content core among a few others on a hand-made network (links given, every dial
//! refused): fetching through peers linked to the holder (routed requests, `GetVia`), and what a
//! relay will not do.

use super::*;
use crate::content::Inventory;
use crate::links::{DialError, LinkTable};
use crate::routing::{RoutingTable, TableConfig};
use crate::storage::memory::MemoryStorage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

struct Net {
    cores: BTreeMap<PeerId, ContentCore>,
    /// Each node's chunk store (its wiring's): storage operations are applied and answered as
    /// the core polls them (`poll_applying`).
    stores: BTreeMap<PeerId, MemoryStorage>,
    /// Each node's link set (as its connection manager keeps it).
    link_tables: BTreeMap<PeerId, LinkTable>,
    links: BTreeSet<(PeerId, PeerId)>,
    /// Each node's routing table (topology's, read by the core).
    tables: BTreeMap<PeerId, TableView>,
    /// Peers a dial reaches (every other dial is refused).
    dialable: BTreeSet<PeerId>,
    now: Millis,
    dials: Vec<(PeerId, PeerId)>,
    sent: Vec<(PeerId, PeerId, Message)>,
    fetched: Vec<(PeerId, u64, Result<Vec<u8>, FetchError>)>,
    /// Replica-set lookups answered: (at, peers, relays to them).
    found: Vec<(PeerId, Vec<PeerId>, crate::wire::RelayRoutes)>,
    /// Sync messages relayed to a node: (at, from, relays back).
    relayed_sync: Vec<(PeerId, PeerId, Vec<PeerId>)>,
    /// Peers lookups met, for topology: (at, peers).
    seen: Vec<(PeerId, Vec<PeerId>)>,
    /// Linked peers reported unresponsive: (at, peer).
    unresponsive: Vec<(PeerId, PeerId)>,
    /// Nodes that take frames and never answer (crashed, their links not yet noticed).
    silent: BTreeSet<PeerId>,
}

impl Net {
    /// `full`: nodes with no room (they hold nothing for others, so only the holder has it).
    fn new(ids: &[PeerId], links: &[(usize, usize)], full: &[usize]) -> Net {
        let (mut cores, mut link_tables, mut stores, mut tables) =
            (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for (i, id) in ids.iter().enumerate() {
            let capacity = if full.contains(&i) { 0 } else { 1 << 30 };
            let (index, store) = Inventory::open(MemoryStorage::new(), capacity).unwrap().into_parts();
            let lt = LinkTable::default();
            let table = TableView::new(RoutingTable::new(id, TableConfig { k: 8, replacements: 4 }));
            let (r, k) = (ReplicationConfig::default(), RoutingConfig::default());
            cores.insert(*id, ContentCore::new(*id, r, k, index, lt.view(), table.clone()));
            tables.insert(*id, table);
            stores.insert(*id, store);
            link_tables.insert(*id, lt);
        }
        let (dials, sent, fetched) = (vec![], vec![], vec![]);
        let (links_made, dialable) = (BTreeSet::new(), BTreeSet::new());
        let (found, relayed_sync) = (vec![], vec![]);
        let mut net = Net {
            cores,
            stores,
            link_tables,
            links: links_made,
            tables,
            dialable,
            now: 0,
            dials,
            sent,
            fetched,
            found,
            relayed_sync,
            seen: vec![],
            unresponsive: vec![],
            silent: BTreeSet::new(),
        };
        for &(a, b) in links {
            net.link(ids[a], ids[b]);
        }
        net
    }

    /// A link from `a` (the dialler) to `b`, up at both ends.
    fn link(&mut self, a: PeerId, b: PeerId) {
        self.links.insert((a, b));
        self.links.insert((b, a));
        self.link_tables[&a].set(b, true);
        self.link_tables[&b].set(a, true);
        self.input(a, Input::Link(LinkEvent::Up { peer: b, outbound: true }));
        self.input(b, Input::Link(LinkEvent::Up { peer: a, outbound: false }));
    }

    fn input(&mut self, at: PeerId, input: Input) {
        self.cores.get_mut(&at).unwrap().handle(self.now, input);
        self.flush();
    }

    /// Deliver every output until the network is quiet at this instant.
    fn flush(&mut self) {
        for _ in 0..10_000 {
            let mut work = vec![];
            for (id, core) in self.cores.iter_mut() {
                let store = self.stores.get_mut(id).unwrap();
                while let Some(o) = core.poll_applying(self.now, store) {
                    work.push((*id, o));
                }
            }
            if work.is_empty() {
                return;
            }
            for (from, o) in work {
                match o {
                    Output::Effect(Effect::Send { to, msg }) => self.deliver(from, to, msg),
                    Output::Effect(Effect::Broadcast { to, msg }) => {
                        for t in to {
                            self.deliver(from, t, msg.clone());
                        }
                    }
                    Output::Want(p) if self.dialable.contains(&p) && !self.links.contains(&(from, p)) => {
                        self.dials.push((from, p));
                        self.link(from, p);
                    }
                    Output::Want(p) => {
                        self.dials.push((from, p));
                        let failed = LinkEvent::DialFailed { peer: p, error: DialError::Unreachable };
                        self.cores.get_mut(&from).unwrap().handle(self.now, Input::Link(failed));
                    }
                    Output::Done(ContentResult::Fetched { id, result, .. }) => self.fetched.push((from, id, result)),
                    Output::PeersFound { peers, relays, .. } => self.found.push((from, peers, relays)),
                    Output::RelayedSync { from: origin, relays, .. } => self.relayed_sync.push((from, origin, relays)),
                    Output::Seen(peers) => self.seen.push((from, peers)),
                    Output::Unresponsive(peer) => self.unresponsive.push((from, peer)),
                    _ => {}
                }
            }
        }
        panic!("the network never went quiet");
    }

    fn deliver(&mut self, from: PeerId, to: PeerId, msg: Message) {
        if self.links.contains(&(from, to)) && !self.silent.contains(&to) {
            self.sent.push((from, to, msg.clone()));
            self.cores.get_mut(&to).unwrap().handle(self.now, Input::Frame { from, msg });
        }
    }

    /// Run timers for `ms` of simulated time, 50 ms at a time.
    fn run(&mut self, ms: Millis) {
        let end = self.now + ms;
        while self.now < end {
            self.now += 50;
            for core in self.cores.values_mut() {
                if core.next_timeout().is_some_and(|t| t <= self.now) {
                    core.handle_timeout(self.now);
                }
            }
            self.flush();
        }
    }
}

fn ids(n: usize) -> Vec<PeerId> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    (0..n).map(|_| PeerId::random(&mut rng)).collect()
}

fn routed(net: &Net, from: PeerId, to: PeerId) -> bool {
    net.sent.iter().any(|(f, t, m)| *f == from && *t == to && matches!(m, Message::Route { .. }))
}

/// A chain A - B - C - D, D holding the chunk, every dial refused: A's fetch is routed hop by
/// hop (each hop to a linked holder, or its link closest to the chunk) and D's bytes come back
/// along the path, with no dial and no lookup.
#[test]
fn a_fetch_is_routed_hop_by_hop_to_a_holder_no_link_reaches() {
    let id = ids(4);
    let (a, b, c, d) = (id[0], id[1], id[2], id[3]);
    let mut net = Net::new(&id, &[(0, 1), (1, 2), (2, 3)], &[1, 2]);
    let data = b"a chunk only D holds".to_vec();
    let chunk = ChunkId::of(&data);
    net.input(d, Input::Publish { data: data.clone() });
    net.run(1_000);
    net.sent.clear();
    net.input(a, Input::Fetch { id: 7, chunk });
    net.run(1_000);
    assert!(
        matches!(net.fetched.as_slice(), [(who, 7, Ok(x))] if *who == a && *x == data),
        "A's fetch: {:?}",
        net.fetched
    );
    assert!(routed(&net, a, b) && routed(&net, b, c) && routed(&net, c, d), "the request went A-B-C-D");
    assert!(net.dials.is_empty(), "no dial: {:?}", net.dials);
    assert!(!net.sent.iter().any(|(_, _, m)| matches!(m, Message::Lookup(_))), "no lookup was needed");
    let relays: u64 = [b, c].iter().map(|p| net.cores[p].stats().routes_forwarded).sum();
    assert_eq!(relays, 2);
}

/// A bad copy on the way back is caught at the first honest hop, and reported against the
/// peer that sent it; the fetch does not take it.
#[test]
fn a_forged_routed_answer_is_refused_and_reported() {
    let id = ids(3);
    let (a, b, c) = (id[0], id[1], id[2]);
    let mut net = Net::new(&id, &[(0, 1)], &[]);
    let chunk = ChunkId::of(b"real bytes");
    net.input(a, Input::Fetch { id: 1, chunk });
    let rid = net
        .sent
        .iter()
        .find_map(|(f, t, m)| match m {
            Message::Route { id, .. } if *f == a && *t == b => Some(*id),
            _ => None,
        })
        .expect("A routed its request through B");
    net.sent.clear();
    let forged = Message::RouteBack { id: rid, chunk, path: vec![a], hops: 1, found: true, data: b"fake".to_vec() };
    net.input(a, Input::Frame { from: b, msg: forged });
    assert!(net.fetched.is_empty(), "the forged bytes were not taken: {:?}", net.fetched);
    assert_eq!(net.cores[&a].stats().bad_chunks, 1);
    // A route whose path does not end with its sender is ignored.
    net.input(b, Input::Frame { from: a, msg: Message::Route { id: 9, chunk, path: vec![c] } });
    assert!(!net.sent.iter().any(|(f, _, _)| *f == b), "B answered a route that did not come from A");
}

/// A is linked to B only, B to C only; C holds the chunk, B has no room for it, and every dial
/// is refused. A's fetch reaches C only through B, which passes the chunk on.
#[test]
fn a_fetch_goes_through_a_peer_linked_to_the_holder() {
    let id = ids(3);
    let (a, b, c) = (id[0], id[1], id[2]);
    let mut net = Net::new(&id, &[(0, 1), (1, 2)], &[1]);
    let data = b"a chunk only C holds".to_vec();
    let chunk = ChunkId::of(&data);
    net.input(c, Input::Publish { data: data.clone() });
    net.run(1_000);
    net.input(a, Input::Fetch { id: 7, chunk });
    net.run(10_000);
    assert!(
        matches!(net.fetched.as_slice(), [(who, 7, Ok(d))] if *who == a && *d == data),
        "A's fetch: {:?}",
        net.fetched
    );
    assert!(routed(&net, a, b) && routed(&net, b, c), "B passed A's request to C, which it knows holds it");
    assert!(net.dials.iter().all(|(from, _)| *from != b), "a relay never dials for others: {:?}", net.dials);
}

/// B is not linked to the holder: asked to get a chunk from it, B answers NoChunk at once
/// instead of dialling, and A's fetch fails (there is no other way to C).
#[test]
fn a_relay_without_a_link_to_the_holder_refuses_and_never_dials() {
    let id = ids(3);
    let (a, b, c) = (id[0], id[1], id[2]);
    let mut net = Net::new(&id, &[(0, 1)], &[]);
    let data = b"unreachable".to_vec();
    let chunk = ChunkId::of(&data);
    net.input(c, Input::Publish { data });
    net.input(a, Input::Frame { from: b, msg: Message::NoChunk { chunk } }); // stray: ignored
    net.input(b, Input::Frame { from: a, msg: Message::GetVia { from: c, chunk } });
    let refused = net
        .sent
        .iter()
        .any(|(f, t, m)| *f == b && *t == a && matches!(m, Message::NoChunk { chunk: x } if *x == chunk));
    assert!(refused, "B said it cannot: {:?}", net.sent);
    assert!(net.dials.iter().all(|(from, _)| *from != b), "B dialled for A: {:?}", net.dials);
    net.input(a, Input::Fetch { id: 1, chunk });
    net.run(40_000);
    assert!(matches!(net.fetched.as_slice(), [(_, 1, Err(_))]), "{:?}", net.fetched);
}

/// An answer names the answerer and its links closest to the target, never a contact to dial.
#[test]
fn an_answer_names_links_only() {
    let id = ids(3);
    let (a, b) = (id[0], id[1]);
    let mut net = Net::new(&id[..2], &[(0, 1)], &[]);
    net.input(a, Input::Frame { from: b, msg: Message::Lookup(LookupMsg::find(1, Key::of_peer(&id[2]))) });
    let peers = net
        .sent
        .iter()
        .find_map(|(f, t, m)| match m {
            Message::Lookup(LookupMsg::Nodes { query: 1, peers }) if *f == a && *t == b => Some(peers.clone()),
            _ => None,
        })
        .expect("A answered");
    let named: BTreeSet<PeerId> = peers.iter().map(|n| n.peer).collect();
    assert_eq!(named, [a, b].into_iter().collect());
    assert!(peers.iter().all(|n| !n.contact));
}

/// A region no link reaches yet: B knows C only as a table contact (closer to the chunk than any
/// of B's links), and no route or relayed question gets past B. A's fetch asks the contact B
/// names over an exchange link, finds C holding the chunk, and gets it. (Before, contacts were
/// named in answers and never asked: the fetch failed. Seen once in content-churn-50.)
#[test]
fn a_fetch_asks_a_contact_that_fills_a_gap() {
    let id = ids(3);
    let (a, b, c) = (id[0], id[1], id[2]);
    let mut net = Net::new(&id, &[(0, 1)], &[]);
    net.tables[&b].write().seen(c);
    net.dialable.insert(c);
    // A chunk closer to C than to A or B, so B names C as a contact.
    let data = (0u32..)
        .map(|i| format!("a chunk near C #{i}").into_bytes())
        .find(|d| {
            let k = Key::of_chunk(&ChunkId::of(d));
            let dc = k.distance(&Key::of_peer(&c));
            dc < k.distance(&Key::of_peer(&a)) && dc < k.distance(&Key::of_peer(&b))
        })
        .unwrap();
    let chunk = ChunkId::of(&data);
    net.input(c, Input::Publish { data: data.clone() });
    net.run(1_000);
    net.input(a, Input::Fetch { id: 9, chunk });
    net.run(20_000);
    assert!(
        matches!(net.fetched.as_slice(), [(who, 9, Ok(d))] if *who == a && *d == data),
        "A's fetch: {:?}",
        net.fetched
    );
    assert!(net.dials.contains(&(a, c)), "A dialled the contact: {:?}", net.dials);
    assert!(net.dials.iter().all(|(from, _)| *from != b), "B never dials for A: {:?}", net.dials);
}

fn relays_sent(net: &Net, from: PeerId) -> usize {
    net.sent.iter().filter(|(f, _, m)| *f == from && matches!(m, Message::Relay { .. })).count()
}

/// A chain A - B - C - D - E, every dial refused: A's replica-set lookup of E's key reaches E
/// through three relays (each answer names the next peer, each question goes along the chain of
/// answerers that led to it), and reports the relays with E. Before, a lookup asked only one relay
/// away and stopped at C.
#[test]
fn a_replica_set_lookup_reaches_a_peer_three_links_away_through_relays() {
    let id = ids(5);
    let (a, b, c, d, e) = (id[0], id[1], id[2], id[3], id[4]);
    let mut net = Net::new(&id, &[(0, 1), (1, 2), (2, 3), (3, 4)], &[]);
    let target = Key::of_peer(&e);
    net.input(a, Input::FindPeers { target });
    net.run(5_000);
    let [(who, peers, relays)] = net.found.as_slice() else { panic!("one answer: {:?}", net.found) };
    assert_eq!(*who, a);
    assert_eq!(peers.first(), Some(&e), "E, the peer nearest its own key, was found: {peers:?}");
    assert_eq!(relays.get(&e), Some(&vec![b, c, d]), "and the relays that reach it");
    assert!(net.dials.is_empty(), "no dial: {:?}", net.dials);
    assert!(relays_sent(&net, b) > 0 && relays_sent(&net, c) > 0 && relays_sent(&net, d) > 0);
}

/// Topology's self-lookup also asks along chains of relays: on a line A - B - C - D - E, A's
/// lookup of E's key meets E, three links away (a returning node's neighbours, before, were
/// found only two links away per round: four rounds, 40 s).
#[test]
fn a_self_lookup_meets_peers_three_links_away() {
    let id = ids(5);
    let (a, e) = (id[0], id[4]);
    let mut net = Net::new(&id, &[(0, 1), (1, 2), (2, 3), (3, 4)], &[]);
    net.input(a, Input::Refresh { target: Key::of_peer(&e) });
    net.run(5_000);
    let met: Vec<PeerId> = net.seen.iter().filter(|(at, _)| *at == a).flat_map(|(_, p)| p.clone()).collect();
    assert!(met.contains(&e), "E met: {met:?}");
    assert!(net.dials.is_empty(), "no dial: {:?}", net.dials);
}

/// A linked peer that leaves a lookup's question unanswered past its stall time is reported
/// (the connection manager probes it); one that answers is not, nor is a silent peer only
/// relayed to.
#[test]
fn a_linked_peer_that_leaves_a_question_unanswered_is_reported() {
    let id = ids(4);
    let (a, b, c) = (id[0], id[1], id[2]);
    let mut net = Net::new(&id, &[(0, 1), (0, 2), (1, 3)], &[]);
    net.silent.insert(c);
    net.input(a, Input::FindPeers { target: Key::of_peer(&c) });
    net.run(3_000);
    assert_eq!(net.unresponsive, vec![(a, c)]);
    assert!(!net.unresponsive.iter().any(|(_, p)| *p == b));
}

/// A relayed sync message goes along its chain and comes out at its destination as from its
/// origin, with the relays back; a relay whose next hop is not linked, or is on the chain
/// already, drops it.
#[test]
fn a_relayed_sync_message_reaches_its_destination_as_from_its_origin() {
    use crate::sync::SyncMessage;
    use crate::wire::Relayed;
    let id = ids(4);
    let (a, b, c, d) = (id[0], id[1], id[2], id[3]);
    let mut net = Net::new(&id, &[(0, 1), (1, 2), (2, 3)], &[]);
    let msg = || Relayed::Sync(SyncMessage::Digest { records: vec![] });
    net.input(b, Input::Frame { from: a, msg: Message::Relay { ahead: vec![c, d], behind: vec![], msg: msg() } });
    assert_eq!(net.relayed_sync, vec![(d, a, vec![c, b])]);
    net.relayed_sync.clear();
    net.sent.clear();
    // B is not linked to D; and a chain that names a peer twice is a loop.
    net.input(b, Input::Frame { from: a, msg: Message::Relay { ahead: vec![d], behind: vec![], msg: msg() } });
    net.input(b, Input::Frame { from: c, msg: Message::Relay { ahead: vec![a, d], behind: vec![d], msg: msg() } });
    net.input(b, Input::Frame { from: c, msg: Message::Relay { ahead: vec![c], behind: vec![], msg: msg() } });
    assert!(net.relayed_sync.is_empty() && relays_sent(&net, b) == 0, "dropped: {:?}", net.sent);
}
