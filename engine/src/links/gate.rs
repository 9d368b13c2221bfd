//! The router's view of each transport link, checked synchronously for every frame: which
//! generation is current, whether it is proved, whether either side closed it on purpose, and
//! when anything last crossed it each way. The inbox opens and closes links as the transport
//! reports them (so a replaced link never inherits its predecessor's proof) and stamps what it
//! hears; the outbox stamps what it sends; the connection manager marks a generation proved and
//! reads the stamps for liveness (any frame is a sign of life, so heartbeats go only where a link
//! is otherwise idle). Each link also carries its inbound budgets ([`crate::flood`]), which the
//! inbox charges every frame of a proved link against: a new link starts with full ones. Lookups
//! only: nothing iterates it.

use crate::flood::{Admit, Budget, Charge, FloodConfig};
use crate::time::Millis;
use crate::types::PeerId;
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};

#[derive(Clone, Copy, Debug)]
struct Entry {
    generation: u64,
    proved: bool,
    clean: bool,
    heard_ms: Millis,
    sent_ms: Millis,
    budget: Budget,
}

pub struct Gate {
    links: RefCell<FxHashMap<PeerId, Entry>>,
    next: Cell<u64>,
    limits: FloodConfig,
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new(FloodConfig::default())
    }
}

impl Gate {
    /// Links get these inbound budgets.
    pub fn new(limits: FloodConfig) -> Self {
        Gate { links: RefCell::default(), next: Cell::default(), limits }
    }

    /// A new link to `peer`, unproved; returns its generation.
    pub fn open(&self, peer: PeerId, now: Millis) -> u64 {
        let g = self.next.get() + 1;
        self.next.set(g);
        let budget = Budget::new(&self.limits, now);
        let e = Entry { generation: g, proved: false, clean: false, heard_ms: now, sent_ms: now, budget };
        self.links.borrow_mut().insert(peer, e);
        g
    }

    /// The link closed; true if either side closed it on purpose.
    pub fn close(&self, peer: &PeerId) -> bool {
        self.links.borrow_mut().remove(peer).is_some_and(|e| e.clean)
    }

    /// Either side said this link is closing on purpose.
    pub fn mark_clean(&self, peer: &PeerId) {
        if let Some(e) = self.links.borrow_mut().get_mut(peer) {
            e.clean = true;
        }
    }

    /// Mark a link proved; false if that generation is no longer the peer's current link.
    pub fn prove(&self, peer: &PeerId, generation: u64) -> bool {
        match self.links.borrow_mut().get_mut(peer) {
            Some(e) if e.generation == generation => {
                e.proved = true;
                true
            }
            _ => false,
        }
    }

    pub fn is_proved(&self, peer: &PeerId) -> bool {
        self.links.borrow().get(peer).is_some_and(|e| e.proved)
    }

    /// A frame arrived from `peer` at `now`: stamped; returns whether the link is proved.
    pub fn heard(&self, peer: &PeerId, now: Millis) -> bool {
        match self.links.borrow_mut().get_mut(peer) {
            Some(e) => {
                e.heard_ms = e.heard_ms.max(now);
                e.proved
            }
            None => false,
        }
    }

    /// Charge a frame from `peer` at `now` against its link's budgets (`Pass` for a peer with
    /// no link here: the inbox charges the frames of proved links only).
    pub fn admit(&self, peer: &PeerId, now: Millis, charge: Charge) -> Admit {
        match self.links.borrow_mut().get_mut(peer) {
            Some(e) => e.budget.admit(&self.limits, now, charge),
            None => Admit::Pass,
        }
    }

    /// A frame went to `peer` at `now`.
    pub fn sent(&self, peer: &PeerId, now: Millis) {
        if let Some(e) = self.links.borrow_mut().get_mut(peer) {
            e.sent_ms = e.sent_ms.max(now);
        }
    }

    /// When anything was last heard from and sent to `peer` on its current link.
    pub fn stamps(&self, peer: &PeerId) -> Option<(Millis, Millis)> {
        self.links.borrow().get(peer).map(|e| (e.heard_ms, e.sent_ms))
    }
}
