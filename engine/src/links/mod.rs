//! Links: the one owner of a node's connections. The connection manager ([`LinksCore`]) is the
//! only place that dials, accepts, trims and closes. Every other core *asks* for a link (a
//! [`Purpose`], some of which protect it) and *reads* the link set through a [`LinkView`].
//!
//! It owns, as sub-machines: the authentication handshake ([`crate::auth::AuthCore`]), liveness
//! ([`crate::health::Liveness`]: heartbeats on idle links, expiry of silent ones) and the dialler
//! ([`dialer::Dialer`]: one dial per peer, one dial timeout, reconnect backoff). The policy in
//! [`core`] keeps the degree between watermarks, refuses inbound links at the hard cap, keeps a
//! minimum link age and trims only links neither side protects, so nothing is closed and
//! reopened in a loop.

pub mod actor;
pub mod core;
pub mod dialer;
mod gate;
mod messages;
#[cfg(test)]
mod tests;

pub use self::actor::LinksActor;
pub use self::core::{Input, LinksCore, LinksStats, Output};
pub use gate::Gate;

use crate::time::Millis;
use crate::types::PeerId;
use rustc_hash::FxHashSet;
use std::cell::{Ref, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

/// Why a core wants a link to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    /// Discovery: random links toward the low watermark (they keep the overlay mixing).
    Random,
    /// Topology: every visible peer while the swarm is small (full mesh).
    Mesh,
    /// Topology: the peers closest to us by XOR.
    Neighbourhood,
    /// Topology: one link in each farther bucket (what lookups route through).
    Bucket,
    /// Topology: our supernode, or, for a supernode, the peers it serves.
    Supernode,
    /// Content: a transfer, an offer or a lookup question to a peer no link reaches; held for
    /// `exchange_hold_ms` after the last use.
    Exchange,
    /// The operator asked for it (`swarm connect`).
    Manual,
    /// Recovery: a holder of our backup until it acknowledged, or a holder asked for a share
    /// during a recovery (held while the recovery runs).
    Recovery,
}

impl Purpose {
    pub const ALL: [Purpose; 8] = [
        Purpose::Random,
        Purpose::Mesh,
        Purpose::Neighbourhood,
        Purpose::Bucket,
        Purpose::Supernode,
        Purpose::Exchange,
        Purpose::Manual,
        Purpose::Recovery,
    ];

    /// A protected link is never trimmed (only a hard failure, or its peer, closes it).
    pub fn protects(self) -> bool {
        !matches!(self, Purpose::Random | Purpose::Exchange)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub fn name(self) -> &'static str {
        match self {
            Purpose::Random => "random",
            Purpose::Mesh => "mesh",
            Purpose::Neighbourhood => "neighbourhood",
            Purpose::Bucket => "bucket",
            Purpose::Supernode => "supernode",
            Purpose::Exchange => "exchange",
            Purpose::Manual => "manual",
            Purpose::Recovery => "recovery",
        }
    }
}

/// A set of purposes (a bit each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Purposes(u8);

impl Purposes {
    pub fn of(p: Purpose) -> Self {
        Purposes(p.bit())
    }
    pub fn with(self, p: Purpose) -> Self {
        Purposes(self.0 | p.bit())
    }
    pub fn without(self, p: Purpose) -> Self {
        Purposes(self.0 & !p.bit())
    }
    pub fn has(self, p: Purpose) -> bool {
        self.0 & p.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn protects(self) -> bool {
        Purpose::ALL.iter().any(|p| p.protects() && self.has(*p))
    }
    /// The purposes in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Purpose> {
        Purpose::ALL.into_iter().filter(move |p| self.has(*p))
    }
    /// The first purpose in the set (what a dial is reported as).
    pub fn first(self) -> Option<Purpose> {
        self.iter().next()
    }
}

/// What the rest of the node may know of one open (proved) link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub outbound: bool,
    pub opened_at: Millis,
    /// What we want it for (empty: nobody here needs it).
    pub purposes: Purposes,
    /// The peer said it protects this link (its `Keep`).
    pub remote_keeps: bool,
}

/// The open links, written by the connection manager only. Shared (same thread) with every
/// core that reads the link set: one copy, never a mirror that can drift.
#[derive(Clone, Default)]
pub struct LinkTable(Rc<Shared>);

#[derive(Default)]
struct Shared {
    map: RefCell<BTreeMap<PeerId, LinkInfo>>,
    /// The keys of `map` again, for [`LinkView::contains`]: every gossip frame, lookup and content
    /// message asks it, and a B-tree search over 32-byte keys touches several cache lines of a
    /// node's cold state where a hash probe touches one or two (~2% of churn-50's run thread).
    /// Only probed, never iterated, so its order decides nothing.
    members: RefCell<FxHashSet<PeerId>>,
    /// Bumped by every change, so a reader can tell cheaply that nothing changed.
    version: std::cell::Cell<u64>,
}

impl Shared {
    fn changed(&self) {
        self.version.set(self.version.get().wrapping_add(1));
    }
}

impl LinkTable {
    pub fn view(&self) -> LinkView {
        LinkView(self.0.clone())
    }
    fn insert(&self, peer: PeerId, info: LinkInfo) {
        self.0.map.borrow_mut().insert(peer, info);
        self.0.members.borrow_mut().insert(peer);
        self.0.changed();
    }
    fn remove(&self, peer: &PeerId) {
        if self.0.map.borrow_mut().remove(peer).is_some() {
            self.0.members.borrow_mut().remove(peer);
            self.0.changed();
        }
    }
    /// The membership index holds exactly the map's keys.
    fn check_invariants(&self) {
        debug_assert_eq!(self.0.members.borrow().len(), self.0.map.borrow().len(), "link index out of step");
    }
    fn update(&self, peer: &PeerId, f: impl FnOnce(&mut LinkInfo)) {
        if let Some(l) = self.0.map.borrow_mut().get_mut(peer) {
            let before = *l;
            f(l);
            if *l != before {
                self.0.changed();
            }
        }
    }
    /// For tests of other cores: open or close a link as the manager would.
    #[cfg(test)]
    pub fn set(&self, peer: PeerId, open: bool) {
        if open {
            let info = LinkInfo { outbound: true, opened_at: 0, purposes: Purposes::default(), remote_keeps: false };
            self.insert(peer, info);
        } else {
            self.remove(&peer);
        }
    }
}

/// Read-only access to the open links.
#[derive(Clone, Default)]
pub struct LinkView(Rc<Shared>);

impl LinkView {
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.0.members.borrow().contains(peer)
    }
    pub fn get(&self, peer: &PeerId) -> Option<LinkInfo> {
        self.0.map.borrow().get(peer).copied()
    }
    pub fn len(&self) -> usize {
        self.0.map.borrow().len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.map.borrow().is_empty()
    }
    /// The linked peers in id order (borrowed: do not hold it across a call into the manager).
    pub fn borrow(&self) -> Ref<'_, BTreeMap<PeerId, LinkInfo>> {
        self.0.map.borrow()
    }
    /// The linked peers, in id order.
    pub fn peers(&self) -> Vec<PeerId> {
        self.0.map.borrow().keys().copied().collect()
    }
    /// Changes so far (links opened, closed or updated): equal readings mean an equal set.
    pub fn version(&self) -> u64 {
        self.0.version.get()
    }
}

/// Peers whose dial failed recently (gone, or behind a NAT as we are), for cores that choose
/// peers: not chosen again from hearsay until `forget_ms` have passed, or a link to them comes
/// up. Bounded: past `max` entries the oldest is forgotten.
#[derive(Clone, Debug)]
pub struct Unreachable {
    since: BTreeMap<PeerId, Millis>,
    forget_ms: Millis,
    max: usize,
}

impl Unreachable {
    pub fn new(forget_ms: Millis, max: usize) -> Self {
        Unreachable { since: BTreeMap::new(), forget_ms, max }
    }

    /// A link event: a dial that could not reach the peer marks it, a link that came up clears it.
    pub fn on_link(&mut self, now: Millis, ev: &crate::core::LinkEvent) {
        use crate::core::LinkEvent;
        match *ev {
            LinkEvent::Up { peer, .. } => {
                self.since.remove(&peer);
            }
            LinkEvent::DialFailed { peer, error: DialError::Unreachable | DialError::AuthFailed } => {
                self.since.insert(peer, now);
                self.since.retain(|_, t| now.saturating_sub(*t) < self.forget_ms);
                while self.since.len() > self.max {
                    let oldest = self.since.iter().min_by_key(|(p, t)| (**t, **p)).map(|(p, _)| *p);
                    oldest.map(|p| self.since.remove(&p));
                }
            }
            _ => {}
        }
    }

    pub fn contains(&self, now: Millis, peer: &PeerId) -> bool {
        self.since.get(peer).is_some_and(|t| now.saturating_sub(*t) < self.forget_ms)
    }

    pub fn len(&self) -> usize {
        self.since.len()
    }

    pub fn is_empty(&self) -> bool {
        self.since.is_empty()
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

/// Why a link closed, or a dial or an inbound link came to nothing (reported with every change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CloseReason {
    /// The peer said goodbye.
    Bye,
    /// Trimmed by us above the high watermark (nobody protected it).
    Trimmed,
    /// Silent past the heartbeat timeout.
    Expired,
    /// The transport lost it (no goodbye).
    Lost,
    /// The peer failed or stalled the handshake.
    AuthFailed,
    /// Refused at once: we are at the hard cap.
    Full,
    /// Our node is stopping.
    Shutdown,
    /// Reputation distrusts the peer (below the publish threshold, see [`crate::reputation::TrustView::allows_link`]).
    Distrusted,
}

/// Why a dial failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DialError {
    /// The transport could not reach the peer (or it refused) within the dial timeout.
    Unreachable,
    /// The handshake failed or timed out.
    AuthFailed,
    /// Not attempted: the peer failed us recently (backoff), or gave up after the reconnect
    /// attempts.
    BackingOff,
    /// Not attempted: at the high watermark for this purpose, or at the hard cap, or too many
    /// dials in flight.
    NoRoom,
    /// Not attempted: reputation distrusts the peer.
    Distrusted,
}
