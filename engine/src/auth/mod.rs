//! Peer authentication: the handshake core, its actor, and the [`Gate`] through which the router
//! lets a link's frames reach the subsystems only once the link is proved.

mod actor;
mod core;
#[cfg(test)]
mod tests;

pub use self::actor::{AuthActor, AuthWiring};
pub use self::core::{transcript, AuthCore, AuthStats, Input, Output};

use crate::types::PeerId;
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};

/// The router's view of each transport link: which generation is current and whether it is
/// proved. The inbox opens and closes links as the transport reports them (synchronously, so a
/// replaced link never inherits its predecessor's proof); the auth actor's wiring marks a
/// generation proved. Lookups only: nothing iterates it.
#[derive(Default)]
pub struct Gate {
    /// Peer -> (generation, proved, closed on purpose).
    links: RefCell<FxHashMap<PeerId, (u64, bool, bool)>>,
    next: Cell<u64>,
}

impl Gate {
    /// A new link to `peer`, unproved; returns its generation.
    pub fn open(&self, peer: PeerId) -> u64 {
        let g = self.next.get() + 1;
        self.next.set(g);
        self.links.borrow_mut().insert(peer, (g, false, false));
        g
    }

    /// The link closed; true if either side closed it on purpose.
    pub fn close(&self, peer: &PeerId) -> bool {
        self.links.borrow_mut().remove(peer).is_some_and(|(_, _, clean)| clean)
    }

    /// Either side said this link is closing on purpose.
    pub fn mark_clean(&self, peer: &PeerId) {
        if let Some((_, _, clean)) = self.links.borrow_mut().get_mut(peer) {
            *clean = true;
        }
    }

    /// Mark a link proved; false if that generation is no longer the peer's current link.
    pub fn prove(&self, peer: &PeerId, generation: u64) -> bool {
        match self.links.borrow_mut().get_mut(peer) {
            Some((g, proved, _)) if *g == generation => {
                *proved = true;
                true
            }
            _ => false,
        }
    }

    pub fn is_proved(&self, peer: &PeerId) -> bool {
        self.links.borrow().get(peer).is_some_and(|(_, p, _)| *p)
    }
}
