//! The `follows` table: one row per followed user (key: the 16-hex user id; value: the peer id
//! once known and when the follow began). The core hands out [`Op`]s built here; the wiring applies
//! them; at start the rows are read back.

use crate::storage::{Op, Storage, StorageError, Table};
use crate::types::PeerId;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFollow {
    pub user_id: String,
    pub peer: Option<PeerId>,
    /// Unix ms.
    pub since_ms: u64,
}

pub fn put_op(f: &StoredFollow) -> Op {
    // Our own plain struct always encodes; a failure here is a bug.
    let value = rmp_serde::to_vec(f).expect("a follow encodes");
    Op::Put { table: Table::Follows, key: f.user_id.as_bytes().to_vec(), value }
}

pub fn delete_op(user_id: &str) -> Op {
    Op::Delete { table: Table::Follows, key: user_id.as_bytes().to_vec() }
}

/// A node's handle on its follows table.
#[derive(Clone)]
pub struct FollowStore {
    storage: Rc<RefCell<dyn Storage>>,
}

impl FollowStore {
    pub fn new(storage: Rc<RefCell<dyn Storage>>) -> Self {
        FollowStore { storage }
    }

    /// The rows, and how many did not decode (left out).
    pub fn load(&self) -> Result<(Vec<StoredFollow>, usize), StorageError> {
        let mut out = Vec::new();
        let mut bad = 0;
        for (key, value) in self.storage.borrow().scan(Table::Follows)? {
            match rmp_serde::from_slice::<StoredFollow>(&value) {
                Ok(f) if f.user_id.as_bytes() == key.as_slice() => out.push(f),
                _ => bad += 1,
            }
        }
        Ok((out, bad))
    }

    pub fn apply(&self, ops: &[Op]) -> Result<(), StorageError> {
        self.storage.borrow_mut().apply(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    #[test]
    fn follows_come_back_as_written_and_garbage_is_counted() {
        let storage: Rc<RefCell<dyn Storage>> = Rc::new(RefCell::new(MemoryStorage::default()));
        let store = FollowStore::new(storage.clone());
        let f = StoredFollow { user_id: "0123456789abcdef".into(), peer: Some(PeerId([7; 32])), since_ms: 5 };
        store.apply(&[put_op(&f)]).unwrap();
        storage.borrow_mut().put(Table::Follows, b"junk", b"\xc1").unwrap();
        assert_eq!(store.load().unwrap(), (vec![f.clone()], 1));
        store.apply(&[delete_op(&f.user_id)]).unwrap();
        assert_eq!(store.load().unwrap().0, vec![]);
    }
}
