//! Topology laws: a small swarm is a full mesh; a larger one wants its XOR neighbourhood and one
//! link per farther bucket, protecting a link a bucket already has rather than dialling another;
//! unreachable peers leave the table and wanted sets.

use super::core::{Input, Output, TopologyCore};
use crate::config::TopologyConfig;
use crate::core::{Core, LinkEvent};
use crate::links::{DialError, LinkTable, Purpose};
use crate::routing::{Key, RoutingTable, TableConfig, TableView};
use crate::types::PeerId;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

struct T {
    core: TopologyCore,
    links: LinkTable,
    table: TableView,
    wanted: BTreeMap<Purpose, BTreeSet<PeerId>>,
    lookups: Vec<Key>,
}

fn me() -> PeerId {
    PeerId([0x80; 32])
}

fn topo() -> T {
    let links = LinkTable::default();
    let table = TableView::new(RoutingTable::new(&me(), TableConfig { k: 8, replacements: 4 }));
    let core = TopologyCore::new(
        me(),
        TopologyConfig::default(),
        table.clone(),
        links.view(),
        ChaCha8Rng::seed_from_u64(3),
        0,
    );
    T { core, links, table, wanted: BTreeMap::new(), lookups: vec![] }
}

impl T {
    fn input(&mut self, now: u64, i: Input) {
        self.core.handle(now, i);
        self.drain();
    }

    fn drain(&mut self) {
        self.core.check_invariants();
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::SetWanted { purpose, peers } => {
                    self.wanted.insert(purpose, peers.into_iter().collect());
                }
                Output::Lookup { target } => self.lookups.push(target),
                Output::Effect(_) => {}
            }
        }
    }

    fn up(&mut self, now: u64, p: PeerId) {
        self.links.set(p, true);
        self.input(now, Input::Link(LinkEvent::Up { peer: p, outbound: true }));
    }

    fn wanted(&self, purpose: Purpose) -> BTreeSet<PeerId> {
        self.wanted.get(&purpose).cloned().unwrap_or_default()
    }
}

fn peer(rng: &mut ChaCha8Rng) -> PeerId {
    PeerId::random(rng)
}

#[test]
fn a_small_swarm_is_a_full_mesh() {
    let mut t = topo();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let peers: Vec<PeerId> = (0..5).map(|_| peer(&mut rng)).collect();
    t.up(0, peers[0]);
    t.input(0, Input::Seen { peers: peers[1..].to_vec() });
    t.input(0, Input::RefreshDone);
    assert_eq!(t.wanted(Purpose::Mesh), peers.iter().copied().collect());
    assert!(t.wanted(Purpose::Neighbourhood).is_empty() && t.wanted(Purpose::Bucket).is_empty());
}

#[test]
fn a_larger_swarm_wants_its_neighbourhood_and_one_link_per_bucket() {
    let mut t = topo();
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let peers: Vec<PeerId> = (0..200).map(|_| peer(&mut rng)).collect();
    t.input(0, Input::Seen { peers: peers.clone() });
    t.input(0, Input::RefreshDone);
    assert!(t.wanted(Purpose::Mesh).is_empty(), "no mesh above mesh_below peers");
    let hood = t.wanted(Purpose::Neighbourhood);
    let table_hood: BTreeSet<PeerId> = t.table.borrow().closest(&Key::of_peer(&me()), 6).into_iter().collect();
    assert_eq!(hood, table_hood);
    let buckets = t.wanted(Purpose::Bucket);
    let my = Key::of_peer(&me());
    let mut seen_buckets = BTreeSet::new();
    for p in &buckets {
        let b = my.distance(&Key::of_peer(p)).bucket().unwrap();
        assert!(seen_buckets.insert(b), "two links wanted in bucket {b}");
        assert!(!hood.contains(p));
    }
    assert!(buckets.len() >= 4, "200 peers fill several buckets above the neighbourhood: {}", buckets.len());
    // A link that already reaches a wanted bucket is protected instead of dialling another.
    let far: Vec<PeerId> =
        peers.iter().copied().filter(|p| my.distance(&Key::of_peer(p)).bucket() == Some(255)).collect();
    let chosen: Vec<PeerId> = buckets.iter().copied().filter(|p| far.contains(p)).collect();
    let other = *far.iter().find(|p| !chosen.contains(p)).unwrap();
    t.up(10, other);
    let now_far: Vec<PeerId> = t.wanted(Purpose::Bucket).into_iter().filter(|p| far.contains(p)).collect();
    assert_eq!(now_far, vec![other], "the bucket's existing link is the one kept");
}

#[test]
fn an_unreachable_neighbour_is_replaced_and_looked_for_soon() {
    let mut t = topo();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let peers: Vec<PeerId> = (0..100).map(|_| peer(&mut rng)).collect();
    t.input(0, Input::Seen { peers });
    t.input(0, Input::RefreshDone);
    let hood = t.wanted(Purpose::Neighbourhood);
    let gone = *hood.iter().next().unwrap();
    t.input(100, Input::Link(LinkEvent::DialFailed { peer: gone, error: DialError::Unreachable }));
    let after = t.wanted(Purpose::Neighbourhood);
    assert!(!after.contains(&gone) && after.len() == hood.len(), "the next closest takes its place");
    assert!(!t.table.borrow().contains(&gone));
    // The manager's own refusals say nothing of the peer.
    let kept = *after.iter().next().unwrap();
    t.input(100, Input::Link(LinkEvent::DialFailed { peer: kept, error: DialError::NoRoom }));
    assert!(t.wanted(Purpose::Neighbourhood).contains(&kept));
    assert!(t.core.next_timeout().unwrap() <= 1_100, "a refresh is due soon");
    t.core.handle_timeout(1_100);
    t.drain();
    assert_eq!(t.lookups.first(), Some(&Key::of_peer(&me())), "it looks itself up");
}

impl T {
    /// Runs the core's deadlines up to `until`; returns when it looked itself up.
    fn self_lookups_until(&mut self, until: u64) -> Vec<u64> {
        let mut at_times = vec![];
        while let Some(at) = self.core.next_timeout().filter(|at| *at <= until) {
            let before = self.lookups.len();
            self.core.handle_timeout(at);
            self.drain();
            if self.lookups[before..].contains(&Key::of_peer(&me())) {
                at_times.push(at);
            }
        }
        at_times
    }
}

/// A node whose self-lookups keep finding nearer peers looks again 10 s, 20 s, 40 s, 80 s later; once a
/// refresh finds the neighbourhood unchanged, the next waits the refresh interval (jittered).
/// (Before, the first self-lookup 5 s after start was the only one for five minutes.)
#[test]
fn self_lookups_come_soon_while_the_neighbourhood_changes() {
    let mut t = topo();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut peers: Vec<PeerId> = (0..400).map(|_| peer(&mut rng)).collect();
    let mine = Key::of_peer(&me());
    peers.sort_by_key(|p| std::cmp::Reverse(mine.distance(&Key::of_peer(p))));
    let nearest = peers.split_off(peers.len() - 3);
    t.input(0, Input::Seen { peers });
    assert_eq!(t.self_lookups_until(5_000), vec![5_000], "the first look-around");
    let first = t.lookups.len();
    // Each lookup meets a nearer peer: the neighbourhood is still settling.
    let mut seen_at = vec![];
    for (p, at) in nearest.iter().zip([5_500, 15_500, 35_500]) {
        seen_at.extend(t.self_lookups_until(at));
        t.input(at, Input::Seen { peers: vec![*p] });
    }
    assert_eq!(seen_at, vec![15_000, 35_000]);
    // The third nearer peer came after 35 s: 80 s more; then unchanged, so the interval is back.
    assert_eq!(t.self_lookups_until(155_000), vec![75_000, 155_000]);
    assert!(t.lookups[first..].iter().all(|k| *k == Key::of_peer(&me())), "settling looks only itself up");
    let i = TopologyConfig::default().refresh_interval_ms;
    let next = t.self_lookups_until(155_000 + 2 * i);
    assert!(next[0] >= 155_000 + i - i / 4 && next[0] <= 155_000 + i + i / 4, "{next:?}");
}

/// A node that starts (or comes back) mid-run looks itself up 5 s after its own start, not at
/// once with no links; and while its neighbourhood is empty it keeps looking soon. (Before, a
/// returning node's only self-lookup ran at its start and found nothing, and the next came five
/// minutes later: traced as a replica its record's keepers could not find for minutes.)
#[test]
fn a_node_started_mid_run_looks_around_after_its_own_start_and_again_while_alone() {
    let mut t = topo();
    t.core = TopologyCore::new(
        me(),
        TopologyConfig::default(),
        t.table.clone(),
        t.links.view(),
        ChaCha8Rng::seed_from_u64(3),
        600_000,
    );
    assert_eq!(t.self_lookups_until(640_000), vec![605_000, 615_000, 635_000], "alone: again soon");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Whatever the table holds, the wanted sets are disjoint, never name us, never exceed one
    /// link per bucket, and the neighbourhood is the table's closest.
    #[test]
    fn wanted_sets_are_well_formed(seed in any::<u64>(), n in 0usize..300, linked in 0usize..40) {
        let mut t = topo();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let peers: Vec<PeerId> = (0..n).map(|_| peer(&mut rng)).collect();
        t.input(0, Input::Seen { peers: peers.clone() });
        for p in peers.iter().take(linked) {
            t.up(1, *p);
        }
        t.input(2, Input::RefreshDone);
        let (m, h, b) = (t.wanted(Purpose::Mesh), t.wanted(Purpose::Neighbourhood), t.wanted(Purpose::Bucket));
        prop_assert!(!m.contains(&me()) && !h.contains(&me()) && !b.contains(&me()));
        prop_assert!(h.is_disjoint(&b) && m.is_disjoint(&h) && m.is_disjoint(&b));
        let my = Key::of_peer(&me());
        let buckets: BTreeSet<usize> = b.iter().filter_map(|p| my.distance(&Key::of_peer(p)).bucket()).collect();
        prop_assert_eq!(buckets.len(), b.len());
        if t.table.borrow().len() >= 10 {
            prop_assert!(m.is_empty());
            let closest: BTreeSet<PeerId> = t.table.borrow().closest(&my, 6).into_iter().collect();
            prop_assert_eq!(h, closest);
        }
    }
}

fn behind_nat() -> T {
    let mut t = topo();
    let cfg = TopologyConfig { reachable: false, ..TopologyConfig::default() };
    t.core = TopologyCore::new(me(), cfg, t.table.clone(), t.links.view(), ChaCha8Rng::seed_from_u64(3), 0);
    t
}

#[test]
fn the_supernode_lottery_elects_about_its_share_and_only_by_id() {
    use super::core::elected;
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let peers: Vec<PeerId> = (0..10_000).map(|_| peer(&mut rng)).collect();
    let won = peers.iter().filter(|p| elected(p, 0.1)).count();
    assert!((850..=1150).contains(&won), "10% of 10,000 ids, got {won}");
    assert!(peers.iter().all(|p| elected(p, 1.0)) && !peers.iter().any(|p| elected(p, 0.0)));
    // Monotone in the share: whoever wins at 5% wins at 10%.
    assert!(peers.iter().filter(|p| elected(p, 0.05)).all(|p| elected(p, 0.1)));
}

#[test]
fn an_unreachable_node_keeps_links_to_elected_peers_and_a_reachable_one_none() {
    use super::core::elected;
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let peers: Vec<PeerId> = (0..200).map(|_| peer(&mut rng)).collect();
    let mut open = topo();
    open.input(0, Input::Seen { peers: peers.clone() });
    open.input(0, Input::RefreshDone);
    assert!(open.wanted(Purpose::Supernode).is_empty(), "a reachable node needs no supernode");

    let mut t = behind_nat();
    t.input(0, Input::Seen { peers: peers.clone() });
    t.input(0, Input::RefreshDone);
    let chosen = t.wanted(Purpose::Supernode);
    assert_eq!(chosen.len(), 2, "supernode_links of them");
    assert!(chosen.iter().all(|p| elected(p, 0.1)));
    // One cannot be dialled (a NATed winner, or gone): it leaves, another elected peer replaces it.
    let gone = *chosen.iter().next().unwrap();
    t.input(5, Input::Link(LinkEvent::DialFailed { peer: gone, error: DialError::Unreachable }));
    let after = t.wanted(Purpose::Supernode);
    assert_eq!(after.len(), 2);
    assert!(!after.contains(&gone) && after.iter().all(|p| elected(p, 0.1)));
    // A link to an elected peer is kept rather than dialling another (stable choice).
    let linked = *peers.iter().find(|p| elected(p, 0.1) && !after.contains(p)).unwrap();
    t.up(10, linked);
    assert!(t.wanted(Purpose::Supernode).contains(&linked));
}
