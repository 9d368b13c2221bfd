//! The registry on disk: the discovery core's snapshots written to the `peers` table, and the
//! table read back (old entries pruned first) when a node starts. Storage is I/O, so this lives in
//! the actor's wiring, not in the core.

use super::registry::Entry;
use crate::identity::user_id;
use crate::storage::records::{encode, PeerRecord, PeerTable};
use crate::storage::{Op, Storage, StorageError, Table};
use crate::time::Millis;
use crate::types::PeerId;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// What a previous run knew of a peer, put back into the registry at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredPeer {
    pub peer: PeerId,
    pub successes: u32,
    pub failures: u32,
}

/// A node's handle on its stored registry.
#[derive(Clone)]
pub struct PeerStore {
    storage: Rc<RefCell<dyn Storage>>,
    /// Unix time (ms) of the node clock's zero: records carry Unix times.
    unix_epoch_ms: u64,
}

impl PeerStore {
    pub fn new(storage: Rc<RefCell<dyn Storage>>, unix_epoch_ms: u64) -> Self {
        PeerStore { storage, unix_epoch_ms }
    }

    /// Prune peers not seen for `max_age_ms`, then return what is left, for
    /// [`crate::discovery::DiscoveryCore::with_persistence`]. A record that does
    /// not decode is an error naming it: the caller must not go on storing over a table it
    /// could not read.
    pub fn restore(&self, max_age_ms: u64) -> Result<Vec<StoredPeer>, StorageError> {
        let mut s = self.storage.borrow_mut();
        PeerTable::prune(&mut *s, self.unix_epoch_ms, max_age_ms)?;
        let all = PeerTable::all(&*s)?;
        Ok(all
            .into_iter()
            .map(|r| StoredPeer { peer: r.peer_id, successes: r.successes, failures: r.failures })
            .collect())
    }

    /// Make the table the registry, in one atomic batch: every registry peer stored (keeping the
    /// addresses a record already had), stored peers the registry let go deleted.
    pub fn save(&self, now: Millis, entries: &[(PeerId, Entry, f64)]) -> Result<(), StorageError> {
        let mut s = self.storage.borrow_mut();
        let stored: BTreeMap<PeerId, PeerRecord> = PeerTable::all(&*s)?.into_iter().map(|r| (r.peer_id, r)).collect();
        let now_unix = self.unix_epoch_ms + now;
        let mut ops = Vec::with_capacity(entries.len() + stored.len());
        for (peer, e, score) in entries {
            let old = stored.get(peer);
            // First-hand sighting if any; else what was stored; else now (when it was learned).
            let last_seen_ms =
                e.last_seen.map(|t| self.unix_epoch_ms + t).or(old.map(|r| r.last_seen_ms)).unwrap_or(now_unix);
            let rec = PeerRecord {
                peer_id: *peer,
                user_id: user_id(peer),
                last_seen_ms,
                addresses: old.map(|r| r.addresses.clone()).unwrap_or_default(),
                reliability: *score,
                successes: e.successes,
                failures: e.failures,
            };
            ops.push(Op::Put { table: Table::Peers, key: peer.0.to_vec(), value: encode(Table::Peers, &rec)? });
        }
        let keep: std::collections::BTreeSet<PeerId> = entries.iter().map(|(p, ..)| *p).collect();
        for p in stored.keys().filter(|p| !keep.contains(p)) {
            ops.push(Op::Delete { table: Table::Peers, key: p.0.to_vec() });
        }
        s.apply(&ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    const DAY: u64 = 24 * 3600 * 1000;
    const EPOCH: u64 = 100 * DAY;

    fn entry(successes: u32, failures: u32, last_seen: Option<Millis>) -> Entry {
        Entry { successes, failures, last_seen, last_failure: None }
    }

    #[test]
    fn snapshots_round_trip_keep_addresses_and_drop_evicted_peers() {
        let mem: Rc<RefCell<dyn Storage>> = Rc::new(RefCell::new(MemoryStorage::default()));
        let (a, b, c) = (PeerId([1; 32]), PeerId([2; 32]), PeerId([3; 32]));
        // An address added by hand (swarm peers add) before the node ran.
        let manual = PeerRecord {
            peer_id: a,
            user_id: user_id(&a),
            last_seen_ms: EPOCH - DAY,
            addresses: vec!["ws://127.0.0.1:7000".into()],
            reliability: 0.5,
            successes: 0,
            failures: 0,
        };
        PeerTable::save(&mut *mem.borrow_mut(), &manual).unwrap();
        let store = PeerStore::new(mem.clone(), EPOCH);
        assert_eq!(store.restore(14 * DAY).unwrap(), vec![StoredPeer { peer: a, successes: 0, failures: 0 }]);
        store.save(5_000, &[(a, entry(2, 1, Some(4_000)), 1.4), (b, entry(0, 0, None), 0.5)]).unwrap();
        let all = PeerTable::all(&*mem.borrow()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].successes, all[0].failures, all[0].last_seen_ms), (2, 1, EPOCH + 4_000));
        assert_eq!(all[0].addresses, manual.addresses, "a stored address survives snapshots");
        assert_eq!(all[1].last_seen_ms, EPOCH + 5_000, "never seen first-hand: stamped when learned");
        // The registry let `a` go and took `c`: the table follows.
        store.save(9_000, &[(b, entry(1, 0, Some(8_000)), 1.5), (c, entry(0, 2, None), 0.2)]).unwrap();
        let ids: Vec<PeerId> = PeerTable::all(&*mem.borrow()).unwrap().iter().map(|r| r.peer_id).collect();
        assert_eq!(ids, vec![b, c]);
        // Twenty days later, only peers seen in the last fourteen come back.
        let later = PeerStore::new(mem.clone(), EPOCH + 20 * DAY);
        assert!(later.restore(14 * DAY).unwrap().is_empty());
        assert!(PeerTable::all(&*mem.borrow()).unwrap().is_empty());
    }

    #[test]
    fn an_unreadable_record_is_named_and_nothing_is_dropped() {
        let mem: Rc<RefCell<dyn Storage>> = Rc::new(RefCell::new(MemoryStorage::default()));
        mem.borrow_mut().put(Table::Peers, &[9; 32], b"\xc1 not msgpack").unwrap();
        let err = PeerStore::new(mem.clone(), EPOCH).restore(DAY).unwrap_err();
        assert!(err.to_string().contains("peers") && err.to_string().contains(&hex::encode([9u8; 32])), "{err}");
        assert_eq!(mem.borrow().scan(Table::Peers).unwrap().len(), 1, "the bad record is left for the user to see");
    }
}
