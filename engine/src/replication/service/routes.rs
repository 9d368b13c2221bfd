//! Routes, a sub-machine of the content service: content routing over links, hop by hop. A fetch
//! sends `Route { id, chunk, path }` through the links closest to the chunk; every hop passes it
//! to a linked peer it knows holds the chunk, or else to its link closest to the chunk (closer
//! than itself by XOR, not already on the path), and the first holder sends the chunk back along
//! the path (`RouteBack`). No hop opens a link, so a fetch costs no dial, no handshake and no
//! lookup round trips: one message each way per hop.
//!
//! [`next_hop`] is the forwarding rule (pure); [`Routes`] keeps the fetches' routes in flight and
//! their deadlines (an ordered set).

use crate::content::ChunkId;
use crate::routing::Key;
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::MAX_ROUTE_HOPS;
use std::collections::{BTreeMap, BTreeSet};

/// Where a routed request goes next from `me`, given our links: the linked holder closest to the
/// chunk, or else the link closest to it that is closer than we are; never a peer on the path
/// (no loops) and never past the hop bound. `None`: the route ends here.
pub(super) fn next_hop<'a>(
    me: &PeerId,
    chunk: &ChunkId,
    path: &[PeerId],
    links: impl IntoIterator<Item = &'a PeerId>,
    holds: impl Fn(&PeerId) -> bool,
) -> Option<PeerId> {
    if path.len() >= MAX_ROUTE_HOPS {
        return None;
    }
    let target = Key::of_chunk(chunk);
    let mine = Key::of_peer(me).distance(&target);
    let mut best_holder = None;
    let mut best_closer = None;
    for p in links {
        if p == me || path.contains(p) {
            continue;
        }
        let d = Key::of_peer(p).distance(&target);
        if holds(p) {
            if best_holder.is_none_or(|(bd, _)| d < bd) {
                best_holder = Some((d, *p));
            }
        } else if d < mine && best_closer.is_none_or(|(bd, _)| d < bd) {
            best_closer = Some((d, *p));
        }
    }
    best_holder.or(best_closer).map(|(_, p)| p)
}

/// A route we sent for a fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Open {
    fetch: u64,
    deadline: Millis,
}

pub(super) struct Routes {
    timeout_ms: Millis,
    next_id: u64,
    open: BTreeMap<u64, Open>,
    deadlines: BTreeSet<(Millis, u64)>,
}

impl Routes {
    pub fn new(timeout_ms: Millis) -> Self {
        Routes { timeout_ms, next_id: 1, open: BTreeMap::new(), deadlines: BTreeSet::new() }
    }

    /// A new route for `fetch`: its id.
    pub fn open(&mut self, now: Millis, fetch: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let deadline = now + self.timeout_ms;
        self.open.insert(id, Open { fetch, deadline });
        self.deadlines.insert((deadline, id));
        id
    }

    /// The route is answered: the fetch it was for (None: not ours, or over already).
    pub fn close(&mut self, id: u64) -> Option<u64> {
        let o = self.open.remove(&id)?;
        self.deadlines.remove(&(o.deadline, id));
        Some(o.fetch)
    }

    /// Routes still out for `fetch`.
    pub fn open_for(&self, fetch: u64) -> usize {
        self.open.values().filter(|o| o.fetch == fetch).count()
    }

    /// Routes whose deadline passed, closed: (route, fetch).
    pub fn expired(&mut self, now: Millis) -> Vec<(u64, u64)> {
        let mut late = vec![];
        while let Some(&(d, id)) = self.deadlines.first() {
            if d > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(o) = self.open.remove(&id) {
                late.push((id, o.fetch));
            }
        }
        late
    }

    pub fn next_timeout(&self) -> Option<Millis> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    pub fn check_invariants(&self) {
        debug_assert_eq!(self.open.len(), self.deadlines.len(), "one deadline per route");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pid(b: u8) -> PeerId {
        PeerId([b; 32])
    }

    #[test]
    fn a_linked_holder_comes_first_then_the_closest_closer_link() {
        let chunk = ChunkId([0x10; 32]);
        let links = [pid(0x11), pid(0x30), pid(0x90)];
        // We are 0x80: 0x11 is closest and closer; 0x90 holds it and wins although farther.
        let hop = next_hop(&pid(0x80), &chunk, &[pid(0x01)], &links, |p| *p == pid(0x90));
        assert_eq!(hop, Some(pid(0x90)));
        let hop = next_hop(&pid(0x80), &chunk, &[pid(0x01)], &links, |_| false);
        assert_eq!(hop, Some(pid(0x11)));
        // From 0x12 only 0x11 is closer; without it the route ends.
        assert_eq!(next_hop(&pid(0x12), &chunk, &[pid(0x01)], &links, |_| false), Some(pid(0x11)));
        assert_eq!(next_hop(&pid(0x12), &chunk, &[pid(0x01)], &links[1..], |_| false), None);
        // A peer on the path is never chosen.
        assert_eq!(next_hop(&pid(0x80), &chunk, &[pid(0x11)], &links, |_| false), Some(pid(0x30)));
    }

    proptest! {
        /// Greedy forwarding over any graph ends: the distance to the chunk falls at every hop
        /// but holder hops, no peer repeats, and the path never exceeds the bound.
        #[test]
        fn routes_never_loop_and_stay_bounded(
            adj in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 2..40),
            holder in any::<u8>(), chunk in any::<[u8; 32]>(), start in any::<u8>(),
        ) {
            let n = adj.len() as u8;
            let node = |i: u8| { let mut b = [0u8; 32]; b[0] = i.wrapping_mul(37); b[1] = i; PeerId(b) };
            let links: Vec<Vec<PeerId>> = adj.iter().map(|l| l.iter().map(|x| node(x % n)).collect()).collect();
            let holder = node(holder % n);
            let chunk = ChunkId(chunk);
            let mut at = node(start % n);
            let mut path = vec![at];
            while at != holder {
                let i = at.0[1] as usize;
                match next_hop(&at, &chunk, &path[..path.len() - 1], &links[i], |p| *p == holder) {
                    None => break,
                    Some(next) => {
                        prop_assert!(!path.contains(&next), "loop at {:?}", next);
                        path.push(next);
                        at = next;
                    }
                }
                prop_assert!(path.len() <= MAX_ROUTE_HOPS + 1);
            }
        }
    }
}
