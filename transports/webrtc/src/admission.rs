//! Which remote offers get an answer. Answering costs a peer connection (a UDP socket, ICE
//! gathering, DTLS) and an answer signal, which goes out through the rendezvous servers and
//! counts against this node's own per-connection budget there: a node that answered a flood of
//! junk offers was disconnected by its server. So an offer starts an answerer only while fewer
//! than `max_pending_answers` are being set up and there is a token in both the offering peer's
//! bucket and the bucket for all peers. Sans-IO: time is passed in.

use crate::bucket::{Rate, TokenBucket};
use crate::config::WebRtcConfig;
use std::collections::{BTreeMap, BTreeSet};
use swarm_engine::types::PeerId;

/// Why an offer got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{max} answers are being set up already (max_pending_answers)")]
    PendingFull { max: usize },
    #[error("this peer is over peer_offer_rate_per_min")]
    PeerRate,
    #[error("offers from all peers are over offer_rate_per_sec")]
    TotalRate,
}

pub struct OfferGate {
    /// The bounds: `max_pending_answers`, `offer_*`, `peer_offer_*`, `max_offer_sources`.
    limits: WebRtcConfig,
    total: TokenBucket,
    /// One bucket per recent offering peer, with the time it was last used.
    peers: BTreeMap<PeerId, (TokenBucket, u64)>,
    /// (last used ms, peer): the least recently used goes first when `max_offer_sources` is
    /// reached (by then its bucket has had the longest to refill).
    by_use: BTreeSet<(u64, PeerId)>,
}

impl OfferGate {
    pub fn new(limits: WebRtcConfig, now_ms: u64) -> OfferGate {
        let total = TokenBucket::full(Rate::per_sec(limits.offer_rate_per_sec, limits.offer_burst), now_ms);
        OfferGate { limits, total, peers: BTreeMap::new(), by_use: BTreeSet::new() }
    }

    /// Whether an offer from `from` may start an answerer now, with `pending` answerers of other
    /// peers being set up. Takes a token from both buckets only when admitting.
    pub fn admit(&mut self, now_ms: u64, from: PeerId, pending: usize) -> Result<(), Refusal> {
        if pending >= self.limits.max_pending_answers {
            return Err(Refusal::PendingFull { max: self.limits.max_pending_answers });
        }
        let peer_rate = Rate::per_min(self.limits.peer_offer_rate_per_min, self.limits.peer_offer_burst);
        let (bucket, used) = match self.peers.remove(&from) {
            Some((bucket, used)) => {
                self.by_use.remove(&(used, from));
                (bucket, used)
            }
            None => (TokenBucket::full(peer_rate, now_ms), now_ms),
        };
        let mut bucket = bucket;
        let verdict = if !bucket.ready(now_ms) {
            Err(Refusal::PeerRate)
        } else if !self.total.take(now_ms) {
            Err(Refusal::TotalRate)
        } else {
            bucket.take(now_ms);
            Ok(())
        };
        // A refused offer still counts as use: a peer that keeps offering keeps its empty bucket.
        let used = used.max(now_ms);
        if self.peers.len() >= self.limits.max_offer_sources {
            if let Some((_, oldest)) = self.by_use.pop_first() {
                self.peers.remove(&oldest);
            }
        }
        self.peers.insert(from, (bucket, used));
        self.by_use.insert((used, from));
        debug_assert_eq!(self.peers.len(), self.by_use.len());
        debug_assert!(self.peers.len() <= self.limits.max_offer_sources.max(1));
        verdict
    }

    /// Offering peers whose buckets are remembered.
    #[cfg(test)]
    pub fn sources(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> WebRtcConfig {
        let (offer_rate_per_sec, offer_burst, peer_offer_rate_per_min, peer_offer_burst) = (10, 20, 6, 3);
        WebRtcConfig {
            max_pending_answers: 4,
            offer_rate_per_sec,
            offer_burst,
            peer_offer_rate_per_min,
            peer_offer_burst,
            max_offer_sources: 8,
            ..WebRtcConfig::default()
        }
    }

    fn p(i: u16) -> PeerId {
        let mut id = [0u8; 32];
        id[..2].copy_from_slice(&i.to_be_bytes());
        PeerId(id)
    }

    #[test]
    fn one_peer_gets_its_burst_then_its_rate() {
        let mut g = OfferGate::new(limits(), 0);
        let answered = (0..300).filter(|_| g.admit(0, p(1), 0).is_ok()).count();
        assert_eq!(answered, 3);
        assert_eq!(g.admit(0, p(1), 0), Err(Refusal::PeerRate));
        assert_eq!(g.admit(10_000, p(1), 0), Ok(()), "one more every 10 s");
        assert_eq!(g.admit(0, p(2), 0), Ok(()), "another peer is not held back by it");
    }

    #[test]
    fn many_peers_share_the_total_rate_and_the_pending_bound() {
        let mut g = OfferGate::new(limits(), 0);
        let answered = (0..300).filter(|i| g.admit(0, p(*i), 0).is_ok()).count();
        assert_eq!(answered, 20, "the burst for all peers");
        assert!(g.sources() <= 8, "remembered sources stay bounded: {}", g.sources());
        let later = (300..600).filter(|i| g.admit(1_000, p(*i), 0).is_ok()).count();
        assert_eq!(later, 10, "then offer_rate_per_sec");
        assert_eq!(g.admit(60_000, p(7), 4), Err(Refusal::PendingFull { max: 4 }));
        assert_eq!(g.admit(60_000, p(7), 3), Ok(()));
    }

    #[test]
    fn a_refused_offer_takes_no_token() {
        let mut g = OfferGate::new(limits(), 0);
        assert!(g.admit(0, p(1), 4).is_err());
        assert!((0..3).all(|_| g.admit(0, p(1), 0).is_ok()), "the pending refusal cost nothing");
    }
}
