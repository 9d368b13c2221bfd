//! What other cores read of reputation: each peer's [`Standing`], kept by the reputation actor's
//! wiring as the core reports changes. Only peers outside the neutral band are listed, so a
//! reading costs one lookup in a small map. The connection manager refuses and closes links of
//! graylisted and shunned peers; gossip skips peers below the gossip threshold; content places no replica on
//! a peer below the publish threshold and asks good holders first; discovery ignores peer
//! exchange from peers below the gossip threshold; topology elects no such peer as supernode.

use super::score::Standing;
use crate::types::PeerId;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

#[derive(Default)]
struct Inner {
    standings: BTreeMap<PeerId, Standing>,
    /// Below the publish threshold mostly on other nodes' warnings (see `allows_link`).
    shunned: BTreeSet<PeerId>,
}

/// Read access to the standings (cloned into every core that decides by them; one writer).
#[derive(Clone, Default)]
pub struct TrustView(Rc<RefCell<Inner>>);

impl TrustView {
    /// `Acceptable` for a peer with no standing reported (neutral, or never seen).
    pub fn standing(&self, peer: &PeerId) -> Standing {
        self.0.borrow().standings.get(peer).copied().unwrap_or(Standing::Acceptable)
    }

    /// Links refused, frames ignored.
    pub fn is_graylisted(&self, peer: &PeerId) -> bool {
        self.standing(peer) == Standing::Graylisted
    }

    /// A link to the peer may be made, accepted or kept: it is not graylisted, and not shunned
    /// (below the publish threshold with a quorum of other nodes' warnings behind it: no need to
    /// deal with a peer others found bad). A peer below the threshold on this node's own
    /// evidence only keeps its link, so audits and requests can settle the question.
    pub fn allows_link(&self, peer: &PeerId) -> bool {
        let inner = self.0.borrow();
        inner.standings.get(peer) != Some(&Standing::Graylisted) && !inner.shunned.contains(peer)
    }

    /// Gossip to and from the peer, and its peer exchange, are taken.
    pub fn allows_gossip(&self, peer: &PeerId) -> bool {
        self.standing(peer) >= Standing::Acceptable
    }

    /// Replicas may be placed on the peer.
    pub fn allows_publish(&self, peer: &PeerId) -> bool {
        self.standing(peer) >= Standing::NoGossip
    }

    /// Peers by standing, best first, keeping the given order among equals (a stable sort).
    pub fn best_first(&self, peers: &mut [PeerId]) {
        let map = &self.0.borrow().standings;
        peers.sort_by_key(|p| std::cmp::Reverse(map.get(p).copied().unwrap_or(Standing::Acceptable)));
    }

    /// Peers with a standing other than `Acceptable`, in id order.
    pub fn listed(&self) -> Vec<(PeerId, Standing)> {
        self.0.borrow().standings.iter().map(|(p, s)| (*p, *s)).collect()
    }

    /// The reputation wiring's write (the only one).
    pub(crate) fn set(&self, peer: PeerId, standing: Standing) {
        let map = &mut self.0.borrow_mut().standings;
        if standing == Standing::Acceptable {
            map.remove(&peer);
        } else {
            map.insert(peer, standing);
        }
    }

    /// The reputation wiring's write of the shunned flag (see [`TrustView::allows_link`]).
    pub(crate) fn set_shunned(&self, peer: PeerId, shunned: bool) {
        let set = &mut self.0.borrow_mut().shunned;
        if shunned {
            set.insert(peer);
        } else {
            set.remove(&peer);
        }
    }
}
