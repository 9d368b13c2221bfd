//! The content core among a few others on a hand-made network (links given, every dial
//! refused): fetching through a peer linked to the holder (`GetVia`), and what a relay will not do.

use super::*;
use crate::links::{DialError, LinkTable};
use crate::routing::{RoutingTable, TableConfig};
use crate::storage::memory::MemoryStorage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

struct Net {
    cores: BTreeMap<PeerId, ContentCore<MemoryStorage>>,
    /// Each node's link set (as its connection manager keeps it) and routing table (topology's).
    link_tables: BTreeMap<PeerId, LinkTable>,
    tables: BTreeMap<PeerId, TableView>,
    links: BTreeSet<(PeerId, PeerId)>,
    now: Millis,
    dials: Vec<(PeerId, PeerId)>,
    sent: Vec<(PeerId, PeerId, Message)>,
    fetched: Vec<(PeerId, u64, Result<Vec<u8>, FetchError>)>,
}

impl Net {
    /// `full`: nodes with no room (they hold nothing for others, so only the holder has it).
    fn new(ids: &[PeerId], links: &[(usize, usize)], full: &[usize]) -> Net {
        let (mut cores, mut link_tables, mut tables) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for (i, id) in ids.iter().enumerate() {
            let capacity = if full.contains(&i) { 0 } else { 1 << 30 };
            let inv = Inventory::open(MemoryStorage::new(), capacity).unwrap();
            let lt = LinkTable::default();
            let table = TableView::new(RoutingTable::new(id, TableConfig { k: 8, replacements: 4 }));
            let core = ContentCore::new(
                *id,
                ReplicationConfig::default(),
                RoutingConfig::default(),
                inv,
                lt.view(),
                table.clone(),
            )
            .unwrap();
            cores.insert(*id, core);
            link_tables.insert(*id, lt);
            tables.insert(*id, table);
        }
        let mut net = Net {
            cores,
            link_tables,
            tables,
            links: BTreeSet::new(),
            now: 0,
            dials: vec![],
            sent: vec![],
            fetched: vec![],
        };
        for &(a, b) in links {
            let (a, b) = (ids[a], ids[b]);
            net.links.insert((a, b));
            net.links.insert((b, a));
            net.link_tables[&a].set(b, true);
            net.link_tables[&b].set(a, true);
            net.input(a, Input::Link(LinkEvent::Up { peer: b, outbound: true }));
            net.input(b, Input::Link(LinkEvent::Up { peer: a, outbound: false }));
        }
        net
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
                while let Some(o) = core.poll_output() {
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
                    Output::Want(p) => {
                        self.dials.push((from, p));
                        let failed = LinkEvent::DialFailed { peer: p, error: DialError::Unreachable };
                        self.cores.get_mut(&from).unwrap().handle(self.now, Input::Link(failed));
                    }
                    Output::Fetched { id, result, .. } => self.fetched.push((from, id, result)),
                    _ => {}
                }
            }
        }
        panic!("the network never went quiet");
    }

    fn deliver(&mut self, from: PeerId, to: PeerId, msg: Message) {
        if self.links.contains(&(from, to)) {
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

fn ids() -> Vec<PeerId> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    (0..3).map(|_| PeerId::random(&mut rng)).collect()
}

/// A is linked to B only, B to C only; C holds the chunk, B has no room for it, and every dial
/// is refused. A's fetch reaches C only through B: B gets the chunk from C, checks it, and passes
/// it on.
#[test]
fn a_fetch_goes_through_a_peer_linked_to_the_holder() {
    let id = ids();
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
    let via =
        net.sent.iter().any(|(f, t, m)| *f == a && *t == b && matches!(m, Message::GetVia { from, .. } if *from == c));
    assert!(via, "A asked B to get it from C");
    assert!(net.dials.iter().all(|(from, _)| *from != b), "a relay never dials for others: {:?}", net.dials);
}

/// B is not linked to the holder: asked to get a chunk from it, B answers NoChunk at once
/// instead of dialling, and A's fetch fails (there is no other way to C).
#[test]
fn a_relay_without_a_link_to_the_holder_refuses_and_never_dials() {
    let id = ids();
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

/// An answer names the answerer's links closest to the target, and table contacts only where
/// they are closer than every link (marked, to be dialled rather than relayed).
#[test]
fn an_answer_names_table_contacts_only_where_links_leave_a_gap() {
    let id = ids();
    let (a, b, d) = (id[0], id[1], id[2]);
    let mut net = Net::new(&id[..2], &[(0, 1)], &[]);
    net.tables[&a].write().seen(d);
    let ask = |net: &mut Net, target: Key, query: u64| -> Vec<NodeInfo> {
        net.sent.clear();
        net.input(a, Input::Frame { from: b, msg: Message::Lookup(LookupMsg::find(query, target)) });
        net.sent
            .iter()
            .find_map(|(f, t, m)| match m {
                Message::Lookup(LookupMsg::Nodes { query: q, peers }) if *f == a && *t == b && *q == query => {
                    Some(peers.clone())
                }
                _ => None,
            })
            .expect("A answered")
    };
    // A target next to D: D (unlinked, in A's table) is closer than A and B, so it is named.
    let mut near_d = Key::of_peer(&d);
    near_d.0[31] ^= 1;
    let peers = ask(&mut net, near_d, 1);
    let contact: Vec<PeerId> = peers.iter().filter(|n| n.contact).map(|n| n.peer).collect();
    assert_eq!(contact, vec![d], "{peers:?}");
    assert!(peers.iter().any(|n| n.peer == b && !n.contact), "links are named as before: {peers:?}");
    // A target next to B (linked): nothing from the table.
    let mut near_b = Key::of_peer(&b);
    near_b.0[31] ^= 1;
    let peers = ask(&mut net, near_b, 2);
    assert!(peers.iter().all(|n| !n.contact), "{peers:?}");
}
