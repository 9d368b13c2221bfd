//! The XOR metric over 256-bit keys, the replica-set rule built on it, and a Kademlia routing
//! table. A peer's routing key is its public key itself: the XOR metric ranks by the leading
//! bytes, and the leading bytes of an ed25519 key (the low bytes of the curve point's y) are
//! uniform; only the last byte's top bit (the sign of x) is not, and it decides nothing in
//! practice. Hashing the key again would cost a SHA-256 per distance, the simulator's top
//! profile entry when it was done so. A chunk's key is its id, itself a SHA-256.

pub mod lookup;
pub mod table;

pub use lookup::{Lookup, LookupConfig};
pub use table::{RoutingTable, TableConfig};

use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

/// The routing table shared by topology (which owns and writes it) and content routing (which
/// reads it for lookup seeds and the contacts it names in answers). Same thread: one table.
#[derive(Clone)]
pub struct TableView(Rc<RefCell<RoutingTable>>);

impl TableView {
    pub fn new(table: RoutingTable) -> Self {
        TableView(Rc::new(RefCell::new(table)))
    }

    pub fn borrow(&self) -> Ref<'_, RoutingTable> {
        self.0.borrow()
    }

    /// Writable: topology's, and tests'.
    pub fn write(&self) -> RefMut<'_, RoutingTable> {
        self.0.borrow_mut()
    }
}

use crate::content::ChunkId;
use crate::types::PeerId;
use std::fmt;

/// A point of the key space.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(pub [u8; 32]);

impl Key {
    pub fn of_peer(peer: &PeerId) -> Key {
        Key(peer.0)
    }

    pub fn of_chunk(chunk: &ChunkId) -> Key {
        Key(chunk.0)
    }

    pub fn distance(&self, other: &Key) -> Distance {
        let mut d = [0u8; 32];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", hex::encode(&self.0[..6]))
    }
}

/// XOR distance, ordered as a 256-bit big-endian integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Distance(pub [u8; 32]);

impl Distance {
    pub const ZERO: Distance = Distance([0; 32]);

    /// Index of the highest set bit (0..=255), i.e. the k-bucket a key at this distance falls
    /// in; `None` for distance zero (the key itself).
    pub fn bucket(&self) -> Option<usize> {
        let i = self.0.iter().position(|b| *b != 0)?;
        Some((31 - i) * 8 + (7 - self.0[i].leading_zeros() as usize))
    }
}

/// The `n` peers closest to `target`, nearest first; ties (impossible between distinct keys)
/// broken by peer id, so the answer depends on the set of candidates only, never on their order.
pub fn closest(target: &Key, candidates: impl IntoIterator<Item = PeerId>, n: usize) -> Vec<PeerId> {
    let mut v: Vec<(Distance, PeerId)> =
        candidates.into_iter().map(|p| (Key::of_peer(&p).distance(target), p)).collect();
    v.sort_unstable();
    v.dedup_by(|a, b| a.1 == b.1);
    v.truncate(n);
    v.into_iter().map(|(_, p)| p).collect()
}

/// The replica set of a chunk: the `rf` live peers closest to it.
pub fn replica_set(chunk: &ChunkId, live: impl IntoIterator<Item = PeerId>, rf: usize) -> Vec<PeerId> {
    closest(&Key::of_chunk(chunk), live, rf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> impl Strategy<Value = Key> {
        any::<[u8; 32]>().prop_map(Key)
    }

    /// a + b as a 257-bit big-endian number (carry first).
    fn add(a: &Distance, b: &Distance) -> (u8, [u8; 32]) {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in (0..32).rev() {
            let s = u16::from(a.0[i]) + u16::from(b.0[i]) + carry;
            out[i] = s as u8;
            carry = s >> 8;
        }
        (carry as u8, out)
    }

    proptest! {
        #[test]
        fn xor_is_a_metric(a in key(), b in key(), c in key()) {
            prop_assert_eq!(a.distance(&a), Distance::ZERO);
            prop_assert_eq!(a.distance(&b) == Distance::ZERO, a == b);
            prop_assert_eq!(a.distance(&b), b.distance(&a));
            // Triangle inequality: d(a, c) <= d(a, b) + d(b, c).
            let (carry, sum) = add(&a.distance(&b), &b.distance(&c));
            prop_assert!(carry == 1 || a.distance(&c).0 <= sum);
            // Unidirectional: for a given a and distance there is exactly one b.
            let d = a.distance(&b);
            prop_assert_eq!(Key(d.0).distance(&a).0, b.0);
        }

        #[test]
        fn bucket_is_the_highest_differing_bit(a in key(), bit in 0usize..256) {
            let mut b = a;
            b.0[31 - bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(a.distance(&b).bucket(), Some(bit));
            prop_assert_eq!(a.distance(&a).bucket(), None);
        }

        #[test]
        fn replica_sets_are_deterministic_and_stable_under_irrelevant_joins(
            chunk in any::<[u8; 32]>(), peers in prop::collection::btree_set(any::<[u8; 32]>(), 4..40),
            newcomer in any::<[u8; 32]>(), rf in 1usize..5,
        ) {
            let chunk = ChunkId(chunk);
            let live: Vec<PeerId> = peers.into_iter().map(PeerId).collect();
            let set = replica_set(&chunk, live.clone(), rf);
            prop_assert_eq!(set.len(), rf.min(live.len()));
            // Order of candidates does not matter.
            let mut rev = live.clone();
            rev.reverse();
            prop_assert_eq!(&replica_set(&chunk, rev, rf), &set);
            // No peer twice.
            let mut sorted = set.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), set.len());
            // A joining peer changes the set only if it is closer than the farthest member, and
            // then only by taking that member's place.
            let target = Key::of_chunk(&chunk);
            let n = PeerId(newcomer);
            prop_assume!(!live.contains(&n));
            let mut with = live.clone();
            with.push(n);
            let after = replica_set(&chunk, with, rf);
            let far = Key::of_peer(set.last().unwrap()).distance(&target);
            if Key::of_peer(&n).distance(&target) > far || set.len() < rf {
                if set.len() == rf { prop_assert_eq!(&after, &set); }
            } else {
                prop_assert!(after.contains(&n));
                prop_assert_eq!(after.iter().filter(|p| set.contains(p)).count(), rf - 1);
            }
        }
    }
}
