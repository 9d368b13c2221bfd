//! Iterative lookup over the XOR metric, as a pure state machine: ask the closest peers known
//! so far for the peers *they* know closest to the target, at most `alpha` questions in flight,
//! until the `k` closest peers heard of have all answered. How a question reaches a peer (an
//! existing link, a new one) and when it times out is the caller's business: it feeds answers and
//! failures in and takes the next questions out.

use super::{Distance, Key};
use crate::types::PeerId;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupConfig {
    /// Peers the lookup returns (the replica set needs RF of them; Kademlia's k is 20).
    pub k: usize,
    /// Questions in flight at once.
    pub alpha: usize,
    /// Wait for a stalled question among the `k` closest before finishing. False: a stalled
    /// peer is passed over (asked on, its late answer still taken while the lookup runs), for
    /// lookups that want the live peers nearest a key soon, where a peer slow past its stall
    /// time has most likely gone offline.
    pub await_stalled: bool,
}

impl Default for LookupConfig {
    fn default() -> Self {
        LookupConfig { k: 20, alpha: 3, await_stalled: true }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Fresh,
    Asked,
    /// Asked, slow to answer: no longer holds one of the `alpha` slots (the lookup asks someone
    /// else meanwhile), but its answer is still taken.
    Stalled,
    Answered,
    Failed,
}

#[derive(Clone, Debug)]
pub struct Lookup {
    target: Key,
    cfg: LookupConfig,
    /// Candidates by distance to the target (distinct peers have distinct distances).
    peers: BTreeMap<Distance, (PeerId, State)>,
    in_flight: usize,
    queries: u32,
}

impl Lookup {
    pub fn new(target: Key, seeds: impl IntoIterator<Item = PeerId>, cfg: LookupConfig) -> Self {
        assert!(cfg.k >= 1 && cfg.alpha >= 1, "k and alpha must be at least 1");
        let mut l = Lookup { target, cfg, peers: BTreeMap::new(), in_flight: 0, queries: 0 };
        l.add(seeds);
        l
    }

    /// Keep at most this many candidates: the closest; farther ones could never make the result
    /// (the `k` closest that answered are kept beyond it, see [`Lookup::add`]).
    fn cap(&self) -> usize {
        4 * self.cfg.k.max(self.cfg.alpha)
    }

    /// More candidates learned outside the lookup's answers (a new link).
    pub fn add_candidates(&mut self, peers: impl IntoIterator<Item = PeerId>) {
        self.add(peers);
    }

    fn add(&mut self, peers: impl IntoIterator<Item = PeerId>) {
        for p in peers {
            let d = Key::of_peer(&p).distance(&self.target);
            self.peers.entry(d).or_insert((p, State::Fresh));
        }
        // Drop the farthest candidates nobody is waiting on and that are not among the `k`
        // closest that answered: closer candidates may all fail yet (peers named that no path of
        // this lookup reaches), and then those answers are the result. Dropping them once left
        // a holder's check lookups empty for two minutes while eight peers had answered, and its
        // new chunk with no second copy (adversaries-20, 1,000 nodes).
        // The k-th closest answer stays where it is while farther candidates go.
        let kth_answered =
            self.peers.iter().filter(|(_, (_, s))| *s == State::Answered).nth(self.cfg.k - 1).map(|(d, _)| *d);
        let evictable = |d: &Distance, s: &State| match s {
            State::Asked | State::Stalled => false,
            State::Answered => kth_answered.is_some_and(|kth| *d > kth),
            State::Fresh | State::Failed => true,
        };
        while self.peers.len() > self.cap() {
            let Some(&d) = self.peers.iter().rev().find(|(d, (_, s))| evictable(d, s)).map(|(d, _)| d) else {
                break;
            };
            self.peers.remove(&d);
        }
    }

    fn state_of(&mut self, peer: &PeerId) -> Option<&mut State> {
        let d = Key::of_peer(peer).distance(&self.target);
        self.peers.get_mut(&d).filter(|(p, _)| p == peer).map(|(_, s)| s)
    }

    /// The next peers to ask (marks them asked).
    pub fn next_queries(&mut self) -> Vec<PeerId> {
        let room = self.cfg.alpha.saturating_sub(self.in_flight);
        if room == 0 || self.is_done() {
            return vec![];
        }
        let k = self.cfg.k;
        let picks: Vec<Distance> = self
            .peers
            .iter()
            .filter(|(_, (_, s))| self.counts(s))
            .take(k)
            .filter(|(_, (_, s))| *s == State::Fresh)
            .take(room)
            .map(|(d, _)| *d)
            .collect();
        picks
            .into_iter()
            .filter_map(|d| {
                let (p, s) = self.peers.get_mut(&d)?;
                *s = State::Asked;
                Some(*p)
            })
            .inspect(|_| {
                self.in_flight += 1;
                self.queries += 1;
            })
            .collect()
    }

    /// `from` answered with the peers it knows closest to the target. Answers nobody asked
    /// for are ignored.
    pub fn on_answer(&mut self, from: &PeerId, peers: impl IntoIterator<Item = PeerId>) {
        match self.state_of(from) {
            Some(s) if *s == State::Asked => {
                *s = State::Answered;
                self.in_flight -= 1;
            }
            Some(s) if *s == State::Stalled => *s = State::Answered,
            _ => return,
        }
        self.add(peers);
    }

    /// `from` is slow: its slot goes to the next candidate, its answer is still welcome.
    pub fn on_stall(&mut self, from: &PeerId) {
        if let Some(s) = self.state_of(from).filter(|s| **s == State::Asked) {
            *s = State::Stalled;
            self.in_flight -= 1;
        }
    }

    /// `from` did not answer (timeout, refused link, wrong data).
    pub fn on_failure(&mut self, from: &PeerId) {
        match self.state_of(from) {
            Some(s) if *s == State::Asked => {
                *s = State::Failed;
                self.in_flight -= 1;
            }
            Some(s) if *s == State::Fresh || *s == State::Stalled => *s = State::Failed,
            _ => {}
        }
    }

    /// Done when nothing is in flight and the `k` closest peers not known to have failed have
    /// all answered (a stalled one among them is still awaited, unless `await_stalled` is off).
    pub fn is_done(&self) -> bool {
        self.in_flight == 0
            && self.peers.values().filter(|(_, s)| self.counts(s)).take(self.cfg.k).all(|(_, s)| *s == State::Answered)
    }

    /// Whether a candidate in this state may still be one of the `k` the lookup returns.
    fn counts(&self, s: &State) -> bool {
        match s {
            State::Failed => false,
            State::Stalled => self.cfg.await_stalled,
            State::Fresh | State::Asked | State::Answered => true,
        }
    }

    /// The closest peers that answered, nearest first (at most `k`).
    pub fn result(&self) -> Vec<PeerId> {
        self.peers.values().filter(|(_, s)| *s == State::Answered).take(self.cfg.k).map(|(p, _)| *p).collect()
    }

    /// Questions asked so far.
    pub fn queries(&self) -> u32 {
        self.queries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{closest, RoutingTable, TableConfig};
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn peer(i: u16) -> PeerId {
        let mut b = [0u8; 32];
        b[..2].copy_from_slice(&i.to_be_bytes());
        b[2] = 0xAB;
        PeerId(b)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Over a network where every live peer's table was fed every other live peer (k-buckets
        /// keep what fits) and answers also carry stale entries (dead peers, which do not
        /// answer), a lookup from any live peer finds exactly the k closest live peers to any
        /// target.
        #[test]
        fn finds_the_k_closest_live_peers(
            n in 20u16..300, dead_every in 3u16..20, target in any::<[u8; 32]>(), from in any::<u16>(), k in 1usize..8,
        ) {
            let all: Vec<PeerId> = (0..n).map(peer).collect();
            let dead: BTreeSet<PeerId> = all.iter().copied().filter(|p| u16::from(p.0[1]).is_multiple_of(dead_every)).collect();
            let tables: BTreeMap<PeerId, RoutingTable> = all
                .iter()
                .map(|me| {
                    let mut t = RoutingTable::new(me, TableConfig { k: 8, replacements: 0 });
                    for p in all.iter().filter(|p| !dead.contains(p)) { t.seen(*p); }
                    (*me, t)
                })
                .collect();
            let live: Vec<PeerId> = all.iter().copied().filter(|p| !dead.contains(p)).collect();
            prop_assume!(!live.is_empty());
            let origin = live[from as usize % live.len()];
            let target = Key(target);
            let stale = closest(&target, dead.iter().copied(), 2);
            let seeds = tables[&origin].closest(&target, 8).into_iter().chain(stale).chain(std::iter::once(origin));
            let mut l = Lookup::new(target, seeds, LookupConfig { k, alpha: 3, await_stalled: true });
            let mut rounds = 0;
            while !l.is_done() {
                rounds += 1;
                prop_assert!(rounds < 1000, "lookup does not terminate");
                let qs = l.next_queries();
                prop_assert!(!qs.is_empty(), "stuck: nothing in flight and not done");
                for q in qs {
                    if dead.contains(&q) {
                        l.on_failure(&q);
                    } else {
                        let stale = closest(&target, dead.iter().copied(), 2);
                        l.on_answer(&q, tables[&q].closest(&target, 8).into_iter().chain(stale));
                    }
                }
            }
            prop_assert_eq!(l.result(), closest(&target, live.iter().copied(), k));
        }
    }

    #[test]
    fn unasked_answers_and_failures_change_nothing() {
        let target = Key([0; 32]);
        let mut l = Lookup::new(target, [peer(1), peer(2)], LookupConfig { k: 2, alpha: 1, await_stalled: true });
        let q = l.next_queries();
        assert_eq!(q.len(), 1);
        let other = if q[0] == peer(1) { peer(2) } else { peer(1) };
        l.on_answer(&other, [peer(9)]);
        l.on_answer(&peer(77), [peer(9)]);
        assert!(l.result().is_empty());
        assert!(l.next_queries().is_empty(), "alpha = 1: one question at a time");
        l.on_answer(&q[0], []);
        assert_eq!(l.result(), vec![q[0]]);
        assert!(!l.is_done(), "the other seed is still to ask");
        let q2 = l.next_queries();
        assert_eq!(q2, vec![other]);
        l.on_failure(&other);
        assert!(l.is_done());
        assert_eq!(l.result(), vec![q[0]]);
    }

    /// Answers that bring more closer candidates than the lookup keeps do not push the peers
    /// that answered out: when every closer one fails, those that answered are the result.
    #[test]
    fn the_peers_that_answered_stay_when_closer_candidates_crowd_in_and_fail() {
        let target = Key([0; 32]);
        let far = |i: u16| {
            let mut b = [0xFFu8; 32];
            b[..2].copy_from_slice(&i.to_be_bytes());
            b[0] |= 0x80;
            PeerId(b)
        };
        let cfg = LookupConfig { k: 2, alpha: 2, await_stalled: true };
        let mut l = Lookup::new(target, [far(1), far(2)], cfg);
        let q = l.next_queries();
        assert_eq!(q.len(), 2);
        // Each names 40 peers nearer the target: far more than the lookup keeps (4 k = 8).
        l.on_answer(&q[0], (0..40).map(peer));
        l.on_answer(&q[1], (40..80).map(peer));
        let mut rounds = 0;
        while !l.is_done() {
            rounds += 1;
            assert!(rounds < 100, "the lookup does not end");
            for p in l.next_queries() {
                l.on_failure(&p);
            }
        }
        assert_eq!(l.result(), vec![far(1), far(2)]);
    }

    /// A stalled question among the `k` closest holds a lookup open only while `await_stalled`
    /// is on; off, the lookup asks past it and finishes with the peers that answered.
    #[test]
    fn a_stalled_peer_is_awaited_only_when_asked_to() {
        let target = Key([0; 32]);
        for await_stalled in [true, false] {
            let cfg = LookupConfig { k: 2, alpha: 2, await_stalled };
            let mut l = Lookup::new(target, [peer(1), peer(2), peer(3)], cfg);
            let q = l.next_queries();
            assert_eq!(q.len(), 2);
            l.on_stall(&q[0]);
            l.on_answer(&q[1], []);
            for p in l.next_queries() {
                l.on_answer(&p, []);
            }
            assert_eq!(l.is_done(), !await_stalled, "await_stalled {await_stalled}");
            // Awaiting it, the third peer is not asked; passing it over, it is.
            assert_eq!(l.result().len(), if await_stalled { 1 } else { 2 });
            // A late answer still counts while the lookup runs.
            l.on_answer(&q[0], []);
            assert!(l.is_done());
        }
    }
}
