//! What other cores read of reputation: each peer's [`Standing`], kept by the reputation actor's
//! wiring as the core reports changes. Only peers outside the neutral band are listed, so a
//! reading costs one lookup in a small map. The connection manager refuses and closes links of
//! graylisted peers; gossip skips peers below the gossip threshold; content places no replica on
//! a peer below the publish threshold and asks good holders first; discovery ignores peer
//! exchange from peers below the gossip threshold; topology elects no such peer as supernode.

use super::score::Standing;
use crate::types::PeerId;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Read access to the standings (cloned into every core that decides by them; one writer).
#[derive(Clone, Default)]
pub struct TrustView(Rc<RefCell<BTreeMap<PeerId, Standing>>>);

impl TrustView {
    /// `Acceptable` for a peer with no standing reported (neutral, or never seen).
    pub fn standing(&self, peer: &PeerId) -> Standing {
        self.0.borrow().get(peer).copied().unwrap_or(Standing::Acceptable)
    }

    /// Links refused, frames ignored.
    pub fn is_graylisted(&self, peer: &PeerId) -> bool {
        self.standing(peer) == Standing::Graylisted
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
        let map = self.0.borrow();
        peers.sort_by_key(|p| std::cmp::Reverse(map.get(p).copied().unwrap_or(Standing::Acceptable)));
    }

    /// Peers with a standing other than `Acceptable`, in id order.
    pub fn listed(&self) -> Vec<(PeerId, Standing)> {
        self.0.borrow().iter().map(|(p, s)| (*p, *s)).collect()
    }

    /// The reputation wiring's write (the only one).
    pub(crate) fn set(&self, peer: PeerId, standing: Standing) {
        let mut map = self.0.borrow_mut();
        if standing == Standing::Acceptable {
            map.remove(&peer);
        } else {
            map.insert(peer, standing);
        }
    }
}
