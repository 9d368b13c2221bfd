//! Topology core: the routing table and the wanted links derived from it.
//!
//! - **Mesh**: while the table holds fewer than `mesh_below` peers, every one of them is wanted.
//! - **Neighbourhood**: above that, the `neighbourhood` peers closest to our key (where our
//!   replicas' other holders are, and where lookups for keys near ours end).
//! - **Buckets**: one link in every bucket farther than the neighbourhood's, so every lookup
//!   answer comes closer to any target. A bucket some link already reaches (either side may have
//!   dialled it) needs no new one: that link is protected instead, the oldest first, so the
//!   choice is stable. Otherwise a table member is picked by our own key, not the bucket's
//!   freshest (which every node agreed on, piling links on the same peers).
//!
//! - **Supernodes**: a node that cannot be dialled directly (`reachable = false`, behind a NAT)
//!   keeps `supernode_links` links to elected peers ([`elected`]: a public lottery over the peer
//!   id, so anyone can check a claim; of the elected, the reachable serve). Those links are
//!   protected on both sides (the `Keep` frame), and what the node cannot reach directly goes
//!   through them: content routes hop over links, signaling is relayed by a linked peer.
//!
//! The table is fed by links coming up, by the peers content lookups met (`Seen`) and, where a
//! bucket has room, by the contacts their answers named (`Heard`); a peer
//! that could not be reached is dropped from it (the next closest takes its place). Every
//! `refresh_interval_ms` (jittered) the node looks itself up, and random keys in buckets the table
//! has nobody in, through content routing (`Lookup`).
//!
//! - **Settling**: a self-lookup finds only the peers its answerers are linked to, so the first
//!   one, made while the swarm around us is still random links, finds few real neighbours. While
//!   a refresh finds the neighbourhood changed since the one before, or still empty, the next
//!   comes soon (`SETTLE_FIRST_GAP_MS`, doubling up to the refresh interval) and looks only
//!   ourselves up; once it is unchanged the interval is back. Without this, a swarm that started
//!   together was linked to 14% of its nearest peers for the first two minutes, and to 90% only
//!   after ten (300 nodes).

use crate::config::TopologyConfig;
use crate::core::{Core, Effect, LinkEvent, Outputs};
use crate::links::{DialError, LinkView, Purpose, Unreachable};
use crate::reputation::TrustView;
use crate::routing::{Key, TableView};
use crate::time::Millis;
use crate::types::PeerId;
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Period of the wanted-set check (also run on every link change).
const MAINTAIN_MS: Millis = 10_000;
/// The first look-around, once the node has had time to make its first links.
const FIRST_REFRESH_MS: Millis = 5_000;
/// While the neighbourhood is settling, the first gap between self-lookups (it doubles).
const SETTLE_FIRST_GAP_MS: Millis = 10_000;
/// How soon the neighbourhood is looked up again after a neighbour could not be reached.
const NEIGHBOUR_GONE_REFRESH_MS: Millis = 1_000;
/// Random-key lookups started per refresh to fill buckets with no known peer.
const BUCKET_LOOKUPS_PER_REFRESH: usize = 4;
/// A peer we could not dial is not taken back into the table from hearsay for this long (it
/// may be gone, or behind a NAT as we are: dialling it again would fail the same way).
pub const UNREACHABLE_MEMORY_MS: Millis = 600_000;
/// Most peers remembered as unreachable (the oldest is forgotten first).
pub const UNREACHABLE_MEMORY_MAX: usize = 512;

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Link(LinkEvent),
    /// Peers that answered a lookup (alive, reachable): into the table.
    Seen {
        peers: Vec<PeerId>,
    },
    /// Peers a lookup answer named as contacts (not seen by us: perhaps gone): into the table
    /// only where a bucket has room, never displacing a peer seen alive.
    Heard {
        peers: Vec<PeerId>,
    },
    /// A refresh lookup we asked for finished.
    RefreshDone,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Effect(Effect),
    /// The links wanted for `purpose`, for the connection manager.
    SetWanted {
        purpose: Purpose,
        peers: Vec<PeerId>,
    },
    /// Look this key up (content routing runs the lookup and answers `Seen` + `RefreshDone`).
    Lookup {
        target: Key,
    },
}

/// The purposes topology decides.
const PURPOSES: [Purpose; 4] = [Purpose::Mesh, Purpose::Neighbourhood, Purpose::Bucket, Purpose::Supernode];

/// The supernode lottery: `peer` is elected when the first 8 bytes of SHA-256 over a domain tag
/// and the id fall in the lowest `share` of their range. It needs nothing but the id, so every
/// node agrees on it and no peer can claim it falsely (grinding ids for it is what reputation and
/// the bounded share answer).
pub fn elected(peer: &PeerId, share: f64) -> bool {
    use sha2::{Digest, Sha256};
    let h = Sha256::new().chain_update(b"swarm supernode v1").chain_update(peer.0).finalize();
    let x = u64::from_be_bytes(h[..8].try_into().expect("a SHA-256 digest has 32 bytes"));
    (x as f64) < share * 18_446_744_073_709_551_616.0
}

pub fn random_key_in_bucket(me: &Key, b: usize, rng: &mut ChaCha8Rng) -> Key {
    let mut d = [0u8; 32];
    rng.fill_bytes(&mut d);
    let byte = 31 - b / 8;
    for x in d.iter_mut().take(byte) {
        *x = 0;
    }
    let bit = b % 8;
    d[byte] &= ((1u16 << (bit + 1)) - 1) as u8;
    d[byte] |= 1 << bit;
    let mut k = me.0;
    for (x, y) in k.iter_mut().zip(d) {
        *x ^= y;
    }
    Key(k)
}

/// Self-lookups while the neighbourhood settles (see the module doc).
struct Settling {
    /// The neighbourhood as the last refresh found it.
    last: Vec<PeerId>,
    /// The gap to the next refresh while it keeps changing (it doubles).
    gap: Millis,
    /// The next refresh is a settling one: a self-lookup only (the buckets are looked into on
    /// the regular schedule).
    soon: bool,
}

impl Settling {
    /// A refresh found `hood`: the gap to the next one while the neighbourhood is still settling
    /// (changed since the last refresh, or empty), `None` once it held still.
    fn on_refresh(&mut self, hood: Vec<PeerId>) -> Option<Millis> {
        self.soon = hood.is_empty() || hood != self.last;
        self.last = hood;
        if self.soon {
            let gap = self.gap;
            self.gap = gap.saturating_mul(2);
            Some(gap)
        } else {
            self.gap = SETTLE_FIRST_GAP_MS;
            None
        }
    }
}

pub struct TopologyCore {
    me: PeerId,
    my_key: Key,
    cfg: TopologyConfig,
    table: TableView,
    links: LinkView,
    trust: TrustView,
    rng: ChaCha8Rng,
    /// What the manager was last told, per purpose.
    told: BTreeMap<Purpose, BTreeSet<PeerId>>,
    /// Peers whose dial failed lately.
    unreachable: Unreachable,
    next_refresh: Millis,
    settling: Settling,
    next_maintain: Millis,
    /// The (table, links) versions the wants were last computed from: a maintenance round with
    /// neither changed has nothing to tell.
    computed_from: Option<(u64, u64)>,
    out: Outputs<Output>,
}

impl TopologyCore {
    /// A core started at `now` (a node joining or coming back mid-run counts its first
    /// look-around from its own start).
    pub fn new(
        me: PeerId,
        cfg: TopologyConfig,
        table: TableView,
        links: LinkView,
        rng: ChaCha8Rng,
        now: Millis,
    ) -> Self {
        TopologyCore {
            me,
            my_key: Key::of_peer(&me),
            cfg,
            table,
            links,
            trust: TrustView::default(),
            rng,
            told: BTreeMap::new(),
            unreachable: Unreachable::new(UNREACHABLE_MEMORY_MS, UNREACHABLE_MEMORY_MAX),
            next_refresh: now + FIRST_REFRESH_MS,
            settling: Settling { last: Vec::new(), gap: SETTLE_FIRST_GAP_MS, soon: false },
            next_maintain: now + MAINTAIN_MS,
            computed_from: None,
            out: Outputs::new(),
        }
    }

    pub fn table(&self) -> &TableView {
        &self.table
    }

    /// What the manager was last told is wanted for `purpose`.
    pub fn wanted(&self, purpose: Purpose) -> BTreeSet<PeerId> {
        self.told.get(&purpose).cloned().unwrap_or_default()
    }

    /// Our XOR neighbourhood as the table knows it, and the bucket of its farthest member (the
    /// buckets above it are where one link each is wanted).
    pub fn neighbourhood(&self) -> (Vec<PeerId>, usize) {
        let hood = self.table.borrow().closest(&self.my_key, self.cfg.neighbourhood);
        let lowest = hood.iter().filter_map(|p| self.my_key.distance(&Key::of_peer(p)).bucket()).max().unwrap_or(0);
        (hood, lowest)
    }

    /// Elected, and in good standing here (a supernode carries our lookups and fetches).
    fn may_serve(&self, peer: &PeerId, share: f64) -> bool {
        elected(peer, share) && self.trust.allows_gossip(peer)
    }

    /// Decide by these standings: no supernode below the gossip threshold.
    pub fn with_trust(mut self, trust: TrustView) -> Self {
        self.trust = trust;
        self
    }

    /// An unreachable node's supernodes: the elected peers it is linked to (oldest first, so
    /// the choice is stable), then the elected peers of the table closest to our key (nodes
    /// spread over the supernodes by key). A peer that could not be dialled has left the table.
    fn supernodes(&self) -> BTreeSet<PeerId> {
        let (want, share) = (self.cfg.supernode_links, self.cfg.supernode_share);
        if self.cfg.reachable || want == 0 {
            return BTreeSet::new();
        }
        let mut linked: Vec<(Millis, PeerId)> = self
            .links
            .borrow()
            .iter()
            .filter(|(p, _)| self.may_serve(p, share))
            .map(|(p, l)| (l.opened_at, *p))
            .collect();
        linked.sort_unstable();
        let mut picked: Vec<PeerId> = linked.into_iter().map(|(_, p)| p).take(want).collect();
        if picked.len() < want {
            let table = self.table.borrow();
            let mut rest: Vec<PeerId> =
                table.members().filter(|p| self.may_serve(p, share) && !picked.contains(p)).copied().collect();
            rest.sort_by_key(|p| self.my_key.distance(&Key::of_peer(p)));
            picked.extend(rest.into_iter().take(want - picked.len()));
        }
        picked.into_iter().collect()
    }

    /// The wanted sets, by purpose.
    fn compute(&self) -> [BTreeSet<PeerId>; 4] {
        let supernodes = self.supernodes();
        let table = self.table.borrow();
        if table.len() < self.cfg.mesh_below {
            let all = table.members().copied().collect();
            return [all, BTreeSet::new(), BTreeSet::new(), supernodes];
        }
        drop(table);
        let (hood, lowest) = self.neighbourhood();
        let hood: BTreeSet<PeerId> = hood.into_iter().collect();
        // The oldest link in each bucket (a link the peer protects counts first).
        let mut linked: BTreeMap<usize, (bool, Millis, PeerId)> = BTreeMap::new();
        for (p, l) in self.links.borrow().iter() {
            if hood.contains(p) {
                continue;
            }
            let Some(b) = self.my_key.distance(&Key::of_peer(p)).bucket() else { continue };
            let rank = (!l.remote_keeps, l.opened_at, *p);
            linked.entry(b).and_modify(|r| *r = (*r).min(rank)).or_insert(rank);
        }
        let table = self.table.borrow();
        let mut buckets = BTreeSet::new();
        buckets.extend(linked.range(lowest + 1..).map(|(_, (_, _, p))| *p));
        for b in table.occupied(lowest + 1..256).filter(|b| !linked.contains_key(b)) {
            let members: Vec<&PeerId> = table.bucket(b).filter(|p| !hood.contains(*p)).collect();
            if !members.is_empty() {
                buckets.insert(*members[(usize::from(self.my_key.0[31]) + b) % members.len()]);
            }
        }
        [BTreeSet::new(), hood, buckets, supernodes]
    }

    /// Tell the manager what changed.
    fn maintain(&mut self) {
        let versions = (self.table.borrow().version(), self.links.version());
        if self.computed_from == Some(versions) {
            return;
        }
        self.computed_from = Some(versions);
        let sets = self.compute();
        for (purpose, set) in PURPOSES.into_iter().zip(sets) {
            let old = self.told.get(&purpose);
            if old.is_none_or(|o| *o != set) && !(old.is_none() && set.is_empty()) {
                self.out.push_back(Output::SetWanted { purpose, peers: set.iter().copied().collect() });
                self.told.insert(purpose, set);
            }
        }
    }

    /// Look ourselves up (finding the neighbourhood), and with `buckets_above` (the bucket of
    /// the neighbourhood's farthest member) a random key in each empty bucket farther out.
    fn refresh(&mut self, buckets_above: Option<usize>) {
        self.out.push_back(Output::Lookup { target: self.my_key });
        let Some(lowest) = buckets_above else { return };
        let mut started = 0;
        // Farthest buckets first; those below the neighbourhood's are not looked into.
        for b in ((lowest + 1)..256).rev() {
            if started >= BUCKET_LOOKUPS_PER_REFRESH {
                break;
            }
            if self.table.borrow().bucket(b).next().is_none() {
                let target = random_key_in_bucket(&self.my_key, b, &mut self.rng);
                self.out.push_back(Output::Lookup { target });
                started += 1;
            }
        }
    }

    /// Whether hearsay about `peer` (a lookup met it, an answer named it) may bring it back.
    fn may_return(&self, now: Millis, peer: &PeerId) -> bool {
        *peer != self.me && !self.unreachable.contains(now, peer)
    }

    fn on_link(&mut self, now: Millis, ev: LinkEvent) {
        self.unreachable.on_link(now, &ev);
        match ev {
            LinkEvent::Up { peer, .. } => {
                self.table.write().seen(peer);
            }
            LinkEvent::Down { .. } => {}
            LinkEvent::DialFailed { peer, error } => {
                if matches!(error, DialError::Unreachable | DialError::AuthFailed) {
                    let (hood, _) = self.neighbourhood();
                    self.table.write().remove(&peer);

                    if hood.contains(&peer) {
                        // A neighbour is gone: find who takes its place soon.
                        self.next_refresh = self.next_refresh.min(now + NEIGHBOUR_GONE_REFRESH_MS);
                    }
                }
            }
        }
        self.maintain();
    }
}

impl Core for TopologyCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Link(ev) => self.on_link(now, ev),
            Input::Seen { peers } => {
                let peers: Vec<PeerId> = peers.into_iter().filter(|p| self.may_return(now, p)).collect();
                let mut t = self.table.write();
                for p in peers {
                    t.seen(p);
                }
            }
            Input::Heard { peers } => {
                let peers: Vec<PeerId> = peers.into_iter().filter(|p| self.may_return(now, p)).collect();
                let mut t = self.table.write();
                for p in peers {
                    t.heard(p);
                }
            }
            Input::RefreshDone => self.maintain(),
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        if now >= self.next_refresh {
            let i = self.cfg.refresh_interval_ms;
            let (hood, lowest) = self.neighbourhood();
            let buckets = !self.settling.soon;
            self.next_refresh = match self.settling.on_refresh(hood) {
                Some(gap) => now + gap.min(i),
                // Settled. Jittered (0.75x to 1.25x), or nodes started together refresh
                // together for ever.
                None => now + i - i / 4 + self.rng.gen_range(0..=i / 2),
            };
            self.refresh(buckets.then_some(lowest));
        }
        if now >= self.next_maintain {
            self.next_maintain = now + MAINTAIN_MS;
            self.maintain();
        }
    }

    fn next_timeout(&self) -> Option<Millis> {
        Some(self.next_refresh.min(self.next_maintain))
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        debug_assert!(self.told.values().all(|s| !s.contains(&self.me)), "wanting a link to ourselves");
        debug_assert!(self.unreachable.len() <= self.unreachable.max(), "unreachable memory over its bound");
        debug_assert!(
            self.told.get(&Purpose::Neighbourhood).is_none_or(|s| s.len() <= self.cfg.neighbourhood),
            "neighbourhood over its size"
        );
        debug_assert!(
            self.told.get(&Purpose::Supernode).is_none_or(
                |s| s.len() <= self.cfg.supernode_links && s.iter().all(|p| elected(p, self.cfg.supernode_share))
            ),
            "supernodes over their count, or not elected"
        );
    }
}
