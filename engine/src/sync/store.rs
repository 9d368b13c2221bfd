//! The sync subsystem on disk: the `sync_records` table (every kept version, its envelope as
//! signed, keyed by version id) and the `sync_queue` table (each pending write, keyed by version
//! id). The core hands out its writes as [`Op`]s built here; the wiring applies them; at start
//! both tables are read back and the core checks every entry again.

use super::queue::QueueOp;
use super::record::VersionId;
use super::replica::PersistOp;
use crate::identity::Envelope;
use crate::storage::{Op, Storage, StorageError, Table};
use std::cell::RefCell;
use std::rc::Rc;

/// What the tables held at start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restored {
    pub versions: Vec<Envelope>,
    pub queue: Vec<(VersionId, Vec<u8>)>,
    /// Entries that did not decode (left out; the core never sees them).
    pub unreadable: usize,
}

/// Table writes for the record store's changes.
pub fn record_ops(ops: Vec<PersistOp>) -> Vec<Op> {
    ops.into_iter()
        .map(|op| match op {
            PersistOp::Put { id, envelope, .. } => {
                // Our own plain struct always encodes; a failure here is a bug.
                let value = rmp_serde::to_vec(&envelope).expect("an envelope encodes");
                Op::Put { table: Table::SyncRecords, key: id.0.to_vec(), value }
            }
            PersistOp::Delete { id, .. } => Op::Delete { table: Table::SyncRecords, key: id.0.to_vec() },
        })
        .collect()
}

/// Table writes for the sync queue's changes.
pub fn queue_ops(ops: Vec<QueueOp>) -> Vec<Op> {
    ops.into_iter()
        .map(|op| match op {
            QueueOp::Put { id, bytes } => Op::Put { table: Table::SyncQueue, key: id.0.to_vec(), value: bytes },
            QueueOp::Delete { id } => Op::Delete { table: Table::SyncQueue, key: id.0.to_vec() },
        })
        .collect()
}

/// Delete a version the core refused at start, from whichever table held it.
pub fn discard_ops(id: VersionId, table: Table) -> Vec<Op> {
    vec![Op::Delete { table, key: id.0.to_vec() }]
}

/// A node's handle on its sync tables (in the registry's environment).
#[derive(Clone)]
pub struct SyncStore {
    storage: Rc<RefCell<dyn Storage>>,
}

impl SyncStore {
    pub fn new(storage: Rc<RefCell<dyn Storage>>) -> Self {
        SyncStore { storage }
    }

    pub fn load(&self) -> Result<Restored, StorageError> {
        let s = self.storage.borrow();
        let mut out = Restored::default();
        for (_, value) in s.scan(Table::SyncRecords)? {
            match rmp_serde::from_slice::<Envelope>(&value) {
                Ok(env) => out.versions.push(env),
                Err(_) => out.unreadable += 1,
            }
        }
        for (key, value) in s.scan(Table::SyncQueue)? {
            match <[u8; 32]>::try_from(key.as_slice()) {
                Ok(id) => out.queue.push((VersionId(id), value)),
                Err(_) => out.unreadable += 1,
            }
        }
        Ok(out)
    }

    pub fn apply(&self, ops: &[Op]) -> Result<(), StorageError> {
        self.storage.borrow_mut().apply(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;
    use crate::sync::record::RecordId;
    use crate::sync::tests::{identity, EPOCH};
    use crate::sync::{VectorClock, Version};

    #[test]
    fn records_and_queue_entries_come_back_as_written() {
        let me = identity(1);
        let rec = RecordId::new(me.peer_id(), "doc");
        let clock = VectorClock::from_entries([(me.peer_id(), 1)]).unwrap();
        let v = Version::sign(&me, &rec, clock, b"v".to_vec(), EPOCH, None).unwrap();
        let storage: Rc<RefCell<dyn Storage>> = Rc::new(RefCell::new(MemoryStorage::default()));
        let store = SyncStore::new(storage.clone());
        let put = PersistOp::Put { record: rec.clone(), id: v.id(), envelope: v.envelope().clone() };
        store.apply(&record_ops(vec![put])).unwrap();
        store.apply(&queue_ops(vec![QueueOp::Put { id: v.id(), bytes: vec![1, 2] }])).unwrap();
        // Garbage in either table is counted and left out.
        storage.borrow_mut().put(Table::SyncRecords, b"junk", b"\xc1").unwrap();
        storage.borrow_mut().put(Table::SyncQueue, b"short", b"x").unwrap();
        let back = store.load().unwrap();
        assert_eq!(back.versions, vec![v.envelope().clone()]);
        assert_eq!(back.queue, vec![(v.id(), vec![1, 2])]);
        assert_eq!(back.unreadable, 2);
        store.apply(&record_ops(vec![PersistOp::Delete { record: rec, id: v.id() }])).unwrap();
        store.apply(&queue_ops(vec![QueueOp::Delete { id: v.id() }])).unwrap();
        let back = store.load().unwrap();
        assert!(back.versions.is_empty() && back.queue.is_empty());
    }
}
