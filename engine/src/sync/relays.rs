//! Relay routes, a part of the sync core: how to reach a peer no link reaches, through the chain
//! of linked peers a lookup went through to meet it (or a relayed message came back along).
//!
//! Why: a reader asks a record's replicas, and the replicas are rarely linked to it; at 300
//! nodes with sessions churn, readers sat at the link cap and most reads that missed a write
//! had found its replicas but could not link to them in time. Reconciliation messages (digests,
//! have/want and versions: what a read needs) may go along a route; writes and their
//! acknowledgements never do (a relay could forge the acknowledgement of a write it dropped),
//! and versions that came through relays are checked by their signatures like any others.

use super::replica::SyncMessage;
use crate::links::LinkView;
use crate::types::PeerId;
use crate::wire::{Message, Relayed, MAX_RELAYS};
use std::collections::BTreeMap;

/// Routes kept at most (a few per record a node reads or hands on; the oldest learned go first).
pub const MAX_ROUTES: usize = 512;

/// May this message travel through relays?
pub fn relayable(msg: &SyncMessage) -> bool {
    match msg {
        SyncMessage::Digest { .. }
        | SyncMessage::Have { .. }
        | SyncMessage::Want { .. }
        | SyncMessage::Versions { .. }
        | SyncMessage::Ask { .. }
        | SyncMessage::Answer { .. } => true,
        SyncMessage::Push { .. } | SyncMessage::Ack { .. } => false,
    }
}

#[derive(Default)]
pub struct Relays {
    /// Peer -> the relays to it, the first linked to us (when learned), with when it was learned.
    routes: BTreeMap<PeerId, (u64, Vec<PeerId>)>,
    learned: u64,
}

impl Relays {
    /// Keep `relays` as the way to `peer` (replacing an older one); ignored when empty or longer
    /// than the wire allows.
    pub fn learn(&mut self, peer: PeerId, relays: Vec<PeerId>) {
        if relays.is_empty() || relays.len() > MAX_RELAYS || relays.contains(&peer) {
            return;
        }
        if self.routes.len() >= MAX_ROUTES && !self.routes.contains_key(&peer) {
            let oldest = self.routes.iter().min_by_key(|(_, (at, _))| *at).map(|(p, _)| *p);
            if let Some(p) = oldest {
                self.routes.remove(&p);
            }
        }
        self.learned += 1;
        self.routes.insert(peer, (self.learned, relays));
    }

    /// The relays to `peer` while the first of them is linked.
    pub fn route(&self, peer: &PeerId, view: &LinkView) -> Option<&[PeerId]> {
        self.routes.get(peer).map(|(_, r)| r.as_slice()).filter(|r| serves(r, view))
    }

    /// The peers a route reaches now.
    pub fn routed<'a>(&'a self, view: &'a LinkView) -> impl Iterator<Item = PeerId> + 'a {
        self.routes.iter().filter(|(_, (_, r))| serves(r, view)).map(|(p, _)| *p)
    }

    /// Can `peer` be reached, by a link or a route?
    pub fn reaches(&self, peer: &PeerId, view: &LinkView) -> bool {
        view.contains(peer) || self.route(peer, view).is_some()
    }

    /// The frame that takes `msg` to `to` along its route, and the linked peer to send it to;
    /// `msg` back when it may not be relayed or no route serves.
    pub fn wrap(&self, to: PeerId, msg: SyncMessage, view: &LinkView) -> Result<(PeerId, Message), SyncMessage> {
        match self.route(&to, view) {
            Some(route) if relayable(&msg) => Ok(Message::relay(route, to, Relayed::Sync(msg))),
            _ => Err(msg),
        }
    }

    /// A link came up or went down: a linked peer needs no route, and routes through a lost link
    /// are gone.
    pub fn on_link(&mut self, peer: &PeerId, up: bool) {
        if up {
            self.routes.remove(peer);
        } else {
            self.routes.retain(|_, (_, r)| r.first() != Some(peer));
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn check_invariants(&self) {
        debug_assert!(self.routes.len() <= MAX_ROUTES, "too many relay routes");
        debug_assert!(self.routes.iter().all(|(p, (_, r))| !r.is_empty() && r.len() <= MAX_RELAYS && !r.contains(p)));
    }
}

/// A route serves while its first relay is linked.
fn serves(route: &[PeerId], view: &LinkView) -> bool {
    route.first().is_some_and(|v| view.contains(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::LinkTable;

    fn p(n: u8) -> PeerId {
        PeerId([n; 32])
    }

    #[test]
    fn a_route_serves_while_its_first_relay_is_linked_and_carries_only_reconciliation() {
        let links = LinkTable::default();
        links.set(p(1), true);
        let view = links.view();
        let mut r = Relays::default();
        r.learn(p(9), vec![p(1), p(2)]);
        let digest = SyncMessage::Digest { records: vec![] };
        let (first, frame) = r.wrap(p(9), digest.clone(), &view).expect("routed");
        assert_eq!(first, p(1));
        assert_eq!(frame, Message::Relay { ahead: vec![p(2), p(9)], behind: vec![], msg: Relayed::Sync(digest) });
        assert!(r.wrap(p(9), SyncMessage::Ack { ids: vec![] }, &view).is_err(), "acks never go through relays");
        assert!(r.reaches(&p(9), &view));
        r.on_link(&p(1), false);
        assert!(!r.reaches(&p(9), &view), "the route through a lost link is gone");
    }

    #[test]
    fn routes_are_bounded_and_the_oldest_goes_first() {
        let links = LinkTable::default();
        links.set(p(1), true);
        let view = links.view();
        let mut r = Relays::default();
        for i in 0..(MAX_ROUTES as u32 + 1) {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            id[31] = 7;
            r.learn(PeerId(id), vec![p(1)]);
        }
        assert_eq!(r.len(), MAX_ROUTES);
        let mut first = [0u8; 32];
        first[31] = 7;
        assert!(r.route(&PeerId(first), &view).is_none(), "the first learned was dropped");
        r.check_invariants();
    }
}
