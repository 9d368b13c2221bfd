//! The recovery state on disk: the `shards` table, one record per owner (its deposit envelope as
//! received, the share still sealed to this node), and the `recovery_state` table: this node's own
//! backup (key `own`, see [`super::own::OwnRecord`]), each held share's rate-limit state (key
//! `lock` + owner, see [`super::holder::LockRecord`]) and the holder lists this node keeps for
//! others (key `list` + user id, the owner's signed list as received). Applied by the wiring, read
//! back at start.

use crate::storage::{Storage, StorageError, Table};
use crate::types::PeerId;
use std::cell::RefCell;
use std::rc::Rc;

const OWN_KEY: &[u8] = b"own";
const LOCK_PREFIX: &[u8] = b"lock";
const LIST_PREFIX: &[u8] = b"list";

fn lock_key(owner: &PeerId) -> Vec<u8> {
    [LOCK_PREFIX, &owner.0].concat()
}

/// A write of the recovery core, for the wiring to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardOp {
    /// Keep `record` (an owner's deposit envelope, encoded) under `owner`, replacing any earlier.
    Put { owner: PeerId, record: Vec<u8> },
    /// The share and its rate-limit state.
    Delete { owner: PeerId },
    /// A held share's rate-limit state ([`super::holder::LockRecord`]).
    Lock { owner: PeerId, record: Vec<u8> },
    /// This node's own backup ([`super::own::OwnRecord`]).
    Own { record: Vec<u8> },
    /// A holder list kept for `user_id` (the owner's signed envelope, encoded), replacing any
    /// earlier generation.
    List { user_id: String, record: Vec<u8> },
}

/// What a previous run stored, for [`super::RecoveryCore::restore`] (which checks each record).
#[derive(Clone, Debug, Default)]
pub struct Stored {
    pub shares: Vec<Vec<u8>>,
    pub locks: Vec<Vec<u8>>,
    pub own: Option<Vec<u8>>,
    pub lists: Vec<Vec<u8>>,
}

/// A node's handle on its recovery tables.
#[derive(Clone)]
pub struct ShardStore {
    storage: Rc<RefCell<dyn Storage>>,
}

impl ShardStore {
    pub fn new(storage: Rc<RefCell<dyn Storage>>) -> Self {
        ShardStore { storage }
    }

    /// Every stored record.
    pub fn load(&self) -> Result<Stored, StorageError> {
        let s = self.storage.borrow();
        let shares = s.scan(Table::Shards)?.into_iter().map(|(_, v)| v).collect();
        let mut out = Stored { shares, ..Stored::default() };
        for (k, v) in s.scan(Table::RecoveryState)? {
            if k == OWN_KEY {
                out.own = Some(v);
            } else if k.starts_with(LOCK_PREFIX) {
                out.locks.push(v);
            } else if k.starts_with(LIST_PREFIX) {
                out.lists.push(v);
            }
        }
        Ok(out)
    }

    pub fn apply(&self, op: &ShardOp) -> Result<(), StorageError> {
        let mut s = self.storage.borrow_mut();
        match op {
            ShardOp::Put { owner, record } => s.put(Table::Shards, &owner.0, record),
            ShardOp::Delete { owner } => {
                s.delete(Table::Shards, &owner.0)?;
                s.delete(Table::RecoveryState, &lock_key(owner))
            }
            ShardOp::Lock { owner, record } => s.put(Table::RecoveryState, &lock_key(owner), record),
            ShardOp::Own { record } => s.put(Table::RecoveryState, OWN_KEY, record),
            ShardOp::List { user_id, record } => {
                s.put(Table::RecoveryState, &[LIST_PREFIX, user_id.as_bytes()].concat(), record)
            }
        }
    }
}
