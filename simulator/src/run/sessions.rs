//! Returning users in a run: with the `sessions` churn model (or a sync workload) every identity
//! keeps one in-memory store for its whole life, handed to each of its nodes (content store,
//! sync records and sync queue), so a node that went offline comes back with the same identity
//! and what it stored. Going offline is a crash to the others; coming back is a join (rendezvous
//! answer) with the old identity.

use super::*;
use std::cell::RefCell;
use std::collections::BTreeMap;
use swarm_engine::feeds::store::FollowStore;
use swarm_engine::node::SyncParams;
use swarm_engine::storage::Storage;
use swarm_engine::sync::store::SyncStore;

/// The identities and stores that outlive their nodes.
#[derive(Default)]
pub(super) struct Keep {
    /// Each slot's identity (a returning node takes it back).
    idents: BTreeMap<usize, Rc<Identity>>,
    stores: BTreeMap<PeerId, Rc<RefCell<MemoryStorage>>>,
    /// Offline slots, with the sync queue length their node left with.
    pub(super) parked: BTreeMap<usize, usize>,
    /// Nodes that came back (returns over the run).
    pub(super) returns: usize,
}

impl Keep {
    pub(super) fn store(&mut self, id: PeerId) -> Rc<RefCell<MemoryStorage>> {
        self.stores.entry(id).or_insert_with(|| Rc::new(RefCell::new(MemoryStorage::new()))).clone()
    }

    /// Every stored identity's store (live and offline), by id.
    pub(super) fn stores(&self) -> impl Iterator<Item = (&PeerId, &Rc<RefCell<MemoryStorage>>)> {
        self.stores.iter()
    }
}

impl World {
    /// The content store and sync storage of a node starting with `identity` in `slot`: kept
    /// ones when identities return, fresh in-memory ones otherwise (as before sessions existed).
    pub(super) fn stores_for(&mut self, slot: usize, identity: &Rc<Identity>) -> (Box<dyn Storage>, SyncParams) {
        let id = identity.peer_id();
        let listener = self.sync.as_ref().map(|s| s.listener(id, self.clock));
        let feed_listener = self.feeds.as_ref().map(|f| f.listener(id, self.clock));
        let Some(keep) = self.keep.as_mut() else {
            return (Box::new(MemoryStorage::new()), SyncParams { listener, feed_listener, ..SyncParams::default() });
        };
        keep.idents.insert(slot, identity.clone());
        let store = keep.store(id);
        let shared: Rc<RefCell<dyn Storage>> = store.clone();
        let sync_store = SyncStore::new(shared.clone());
        let follow_store = FollowStore::new(shared);
        // An in-memory store always reads back; rows that do not decode cannot be there (we
        // wrote them).
        let restored = sync_store.load().expect("an in-memory store reads");
        let (follows, _) = follow_store.load().expect("an in-memory store reads");
        let params = SyncParams {
            store: Some((sync_store, restored)),
            listener,
            follows: Some((follow_store, follows)),
            feed_listener,
        };
        (Box::new(store), params)
    }

    /// The node in `slot` goes offline: a crash to the others; its identity and store stay.
    pub(super) fn go_offline(&mut self, slot: usize, at_ms: u64) {
        let Some(node) = &self.nodes[slot] else { return };
        let (id, pending) = (node.id, node.sync_stats().pending);
        self.crash(slot, at_ms);
        if let Some(keep) = self.keep.as_mut() {
            keep.parked.insert(slot, pending);
        }
        if let Some(s) = &self.sync {
            s.truth.borrow_mut().on_offline(id);
        }
    }

    /// The node of `slot` comes back with its identity and store, told of peers as a joiner is.
    pub(super) fn come_back(&mut self, slot: usize, at_ms: u64) {
        let Some(keep) = self.keep.as_mut() else { return };
        if keep.parked.remove(&slot).is_none() {
            return;
        }
        let Some(identity) = keep.idents.get(&slot).cloned() else { return };
        keep.returns += 1;
        let boot = self.rendezvous_answer(at_ms, slot);
        // A fresh seed per incarnation: a returning node does not replay its last session's draws.
        let seed = self.ident_rng.gen();
        let id = identity.peer_id();
        self.start_node(slot, (identity, seed), boot);
        if let Some(s) = &self.sync {
            s.truth.borrow_mut().on_return(id, at_ms);
        }
    }

    /// Pending writes over every node, live and offline (for the samples).
    pub(super) fn sync_pending(&self) -> Option<usize> {
        let keep = self.keep.as_ref()?;
        let live: usize = self.nodes.iter().flatten().map(|n| n.sync_stats().pending).sum();
        Some(live + keep.parked.values().sum::<usize>())
    }
}
