//! A Kademlia routing table: peers in 256 buckets by the highest bit in which their key differs
//! from ours, at most `k` per bucket, least recently seen first. A full bucket keeps its old
//! peers (long-lived peers are the likeliest to stay) and remembers newcomers as replacements,
//! promoted when a member leaves. Pure data: fed by discovery's link events, asked by lookups.

use super::{closest, Key};
use crate::types::PeerId;
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableConfig {
    /// Peers per bucket (Kademlia's k).
    pub k: usize,
    /// Replacement candidates remembered per full bucket.
    pub replacements: usize,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig { k: 20, replacements: 5 }
    }
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    /// Least recently seen first.
    peers: VecDeque<PeerId>,
    replacements: VecDeque<PeerId>,
}

#[derive(Clone, Debug)]
pub struct RoutingTable {
    me: Key,
    cfg: TableConfig,
    buckets: Vec<Bucket>,
    len: usize,
    /// Bit `b` set: bucket `b` has members. Searches skip the ~240 empty buckets of a table
    /// (only the farthest few fill in a swarm of thousands) without touching them.
    occupancy: [u64; 4],
    /// Bumped by every change of membership or order.
    version: u64,
}

impl RoutingTable {
    pub fn new(me: &PeerId, cfg: TableConfig) -> Self {
        assert!(cfg.k >= 1, "k must be at least 1");
        RoutingTable {
            me: Key::of_peer(me),
            cfg,
            buckets: vec![Bucket::default(); 256],
            len: 0,
            occupancy: [0; 4],
            version: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Changes so far: equal readings mean the same members in the same order.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn bucket_of(&self, peer: &PeerId) -> Option<usize> {
        self.me.distance(&Key::of_peer(peer)).bucket()
    }

    pub fn contains(&self, peer: &PeerId) -> bool {
        self.bucket_of(peer).is_some_and(|b| self.buckets[b].peers.contains(peer))
    }

    /// A peer was seen alive: refresh it, add it, or queue it as a replacement. Returns whether
    /// it is in the table now.
    pub fn seen(&mut self, peer: PeerId) -> bool {
        let Some(b) = self.bucket_of(&peer) else { return false };
        self.version = self.version.wrapping_add(1);
        let (k, max_repl) = (self.cfg.k, self.cfg.replacements);
        let bucket = &mut self.buckets[b];
        if let Some(i) = bucket.peers.iter().position(|p| *p == peer) {
            bucket.peers.remove(i);
            bucket.peers.push_back(peer);
            return true;
        }
        if bucket.peers.len() < k {
            bucket.peers.push_back(peer);
            bucket.replacements.retain(|p| *p != peer);
            self.len += 1;
            self.set_occupied(b, true);
            return true;
        }
        bucket.replacements.retain(|p| *p != peer);
        bucket.replacements.push_back(peer);
        if bucket.replacements.len() > max_repl {
            bucket.replacements.pop_front();
        }
        false
    }

    /// A peer another node named (not seen by us): added only where its bucket has room, never
    /// refreshed or queued as a replacement. Returns whether it is in the table now.
    pub fn heard(&mut self, peer: PeerId) -> bool {
        let Some(b) = self.bucket_of(&peer) else { return false };
        let bucket = &mut self.buckets[b];
        if bucket.peers.contains(&peer) {
            return true;
        }
        if bucket.peers.len() >= self.cfg.k {
            return false;
        }
        bucket.peers.push_front(peer);
        bucket.replacements.retain(|p| *p != peer);
        self.len += 1;
        self.version = self.version.wrapping_add(1);
        self.set_occupied(b, true);
        true
    }

    /// A peer is gone (link down and not back, or failed a request): drop it and promote the
    /// freshest replacement.
    pub fn remove(&mut self, peer: &PeerId) {
        let Some(b) = self.bucket_of(peer) else { return };
        let bucket = &mut self.buckets[b];
        bucket.replacements.retain(|p| p != peer);
        if let Some(i) = bucket.peers.iter().position(|p| p == peer) {
            bucket.peers.remove(i);
            self.len -= 1;
            self.version = self.version.wrapping_add(1);
            if let Some(r) = bucket.replacements.pop_back() {
                bucket.peers.push_back(r);
                self.len += 1;
            }
            let empty = bucket.peers.is_empty();
            self.set_occupied(b, !empty);
        }
    }

    fn set_occupied(&mut self, b: usize, on: bool) {
        let bit = 1u64 << (b % 64);
        if on {
            self.occupancy[b / 64] |= bit;
        } else {
            self.occupancy[b / 64] &= !bit;
        }
    }

    /// The buckets of `range` that have members, in ascending order.
    pub fn occupied(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = usize> + '_ {
        range.filter(|b| *b < 256 && self.occupancy[b / 64] & (1 << (b % 64)) != 0)
    }

    /// Every member, bucket by bucket from the nearest (bucket 0) out.
    pub fn members(&self) -> impl Iterator<Item = &PeerId> {
        self.occupied(0..256).flat_map(|b| self.buckets[b].peers.iter())
    }

    /// The members of bucket `b` (0..=255), most recently seen last.
    pub fn bucket(&self, b: usize) -> impl DoubleEndedIterator<Item = &PeerId> {
        self.buckets.get(b).into_iter().flat_map(|bk| bk.peers.iter())
    }

    /// The `n` known peers closest to `target`, reading only the buckets that can hold them.
    ///
    /// With `t` the bucket of `target` (its highest bit differing from our key), a member of
    /// bucket `t` is nearer the target than 2^t, a member of any bucket below `t` lies in
    /// [2^t, 2^(t+1)), and a member of bucket `b > t` at 2^b or more. So the groups
    /// `{t}`, `{0..t}`, `{t+1}`, `{t+2}`... are in order of distance (for our own key: buckets
    /// `0, 1, 2...`), and once whole groups hold `n` peers nothing later can be nearer.
    pub fn closest(&self, target: &Key, n: usize) -> Vec<PeerId> {
        let mut picked: Vec<PeerId> = Vec::with_capacity(n + self.cfg.k);
        let mut take = |range: std::ops::Range<usize>| {
            picked.extend(self.occupied(range).flat_map(|b| self.buckets[b].peers.iter().copied()));
            picked.len() >= n
        };
        let start = match self.me.distance(target).bucket() {
            None => 0,
            Some(t) => {
                if take(t..t + 1) || take(0..t) {
                    return closest(target, picked, n);
                }
                t + 1
            }
        };
        for b in self.occupied(start..256) {
            if take(b..b + 1) {
                break;
            }
        }
        closest(target, picked, n)
    }

    pub fn check_invariants(&self) {
        debug_assert_eq!(self.len, self.buckets.iter().map(|b| b.peers.len()).sum::<usize>());
        for (i, b) in self.buckets.iter().enumerate() {
            debug_assert!(b.peers.len() <= self.cfg.k && b.replacements.len() <= self.cfg.replacements);
            debug_assert!(b.peers.iter().all(|p| self.bucket_of(p) == Some(i)), "peer in the wrong bucket");
            debug_assert!(b.replacements.iter().all(|p| !b.peers.contains(p)), "replacement also a member");
            debug_assert_eq!(self.occupied(i..i + 1).next().is_some(), !b.peers.is_empty(), "occupancy bit wrong");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    proptest! {
        /// Any sequence of sightings and departures keeps every bucket bounded and consistent,
        /// never holds a peer twice, and `closest` agrees with a brute-force answer over the
        /// members.
        #[test]
        fn table_stays_consistent(ops in prop::collection::vec((any::<bool>(), 0u8..60), 1..300), k in 1usize..4) {
            let me = PeerId([0; 32]);
            let mut t = RoutingTable::new(&me, TableConfig { k, replacements: 2 });
            let peer = |i: u8| PeerId([i.wrapping_add(1); 32]);
            let mut members = std::collections::BTreeSet::new();
            for (add, i) in ops {
                if add {
                    t.seen(peer(i));
                } else {
                    t.remove(&peer(i));
                }
                t.check_invariants();
                members = (0..60u8).map(peer).filter(|p| t.contains(p)).collect();
                prop_assert_eq!(members.len(), t.len());
            }
            let target = Key([0x5a; 32]);
            prop_assert_eq!(t.closest(&target, 5), closest(&target, members.iter().copied(), 5));
        }

        /// The bucket-ordered search equals sorting every member, for any key of ours, any
        /// target (our own key and keys sharing a long prefix with it included) and any count.
        #[test]
        fn closest_equals_brute_force(
            me in any::<[u8; 32]>(),
            peers in prop::collection::vec((any::<[u8; 32]>(), 0usize..40), 0..120),
            target in any::<[u8; 32]>(),
            shared in 0usize..34,
            n in 0usize..30,
        ) {
            let me_id = PeerId(me);
            let mut t = RoutingTable::new(&me_id, TableConfig { k: 4, replacements: 1 });
            // Peers with a chosen common prefix with us, so low buckets are populated too.
            for (mut p, prefix) in peers {
                let prefix = prefix.min(32);
                p[..prefix].copy_from_slice(&me[..prefix]);
                t.seen(PeerId(p));
            }
            let mut target = target;
            let shared = shared.min(32);
            target[..shared].copy_from_slice(&me[..shared]);
            let members: Vec<PeerId> = t.members().copied().collect();
            let key = Key(target);
            prop_assert_eq!(t.closest(&key, n), closest(&key, members, n));
        }
    }

    #[test]
    fn a_full_bucket_keeps_old_peers_and_promotes_a_replacement() {
        let me = PeerId([0; 32]);
        let mut t = RoutingTable::new(&me, TableConfig { k: 1, replacements: 1 });
        // Find three peers that fall in the same bucket.
        let mut same: Vec<PeerId> = vec![];
        let first = (1..=255u8).map(|i| PeerId(Sha256::digest([i]).into())).collect::<Vec<_>>();
        let b0 = t.bucket_of(&first[0]);
        same.extend(first.iter().copied().filter(|p| t.bucket_of(p) == b0).take(3));
        assert_eq!(same.len(), 3, "test needs three peers in one bucket");
        assert!(t.seen(same[0]));
        assert!(!t.seen(same[1]), "full bucket: the old peer stays");
        assert!(t.contains(&same[0]) && !t.contains(&same[1]));
        t.remove(&same[0]);
        assert!(t.contains(&same[1]), "the replacement takes the free place");
        assert!(!t.seen(me), "never ourselves");
        assert_eq!(t.len(), 1);
    }
}
