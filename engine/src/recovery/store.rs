//! The holder's shares on disk: the `shards` table, one record per owner (its deposit envelope as
//! received, the share still sealed to this node), applied by the wiring and read back at start.

use super::service::ShardOp;
use crate::storage::{Storage, StorageError, Table};
use std::cell::RefCell;
use std::rc::Rc;

/// A node's handle on the shares it holds for others.
#[derive(Clone)]
pub struct ShardStore {
    storage: Rc<RefCell<dyn Storage>>,
}

impl ShardStore {
    pub fn new(storage: Rc<RefCell<dyn Storage>>) -> Self {
        ShardStore { storage }
    }

    /// Every stored record, for [`super::RecoveryCore::restore`] (which checks each).
    pub fn load(&self) -> Result<Vec<Vec<u8>>, StorageError> {
        Ok(self.storage.borrow().scan(Table::Shards)?.into_iter().map(|(_, v)| v).collect())
    }

    pub fn apply(&self, op: &ShardOp) -> Result<(), StorageError> {
        let mut s = self.storage.borrow_mut();
        match op {
            ShardOp::Put { owner, record } => s.put(Table::Shards, &owner.0, record),
            ShardOp::Delete { owner } => s.delete(Table::Shards, &owner.0),
        }
    }
}
