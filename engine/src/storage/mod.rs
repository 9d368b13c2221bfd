//! Storage: one trait, two backends. [`heed_store::HeedStorage`] (LMDB) for real nodes: a node
//! reopened on the same directory has everything back, and a batch is durable once `apply`
//! returns. [`memory::MemoryStorage`] for large simulations. Values are typed records encoded with
//! rmp-serde ([`records`]).

pub mod heed_store;
pub mod memory;
pub mod records;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

/// The tables a node keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Peers,
    Identity,
    Posts,
    Manifests,
    Chunks,
    SyncQueue,
    Shards,
    /// Files and posts this node published, completed (root chunk id -> what it references).
    Publications,
    /// Publications under way: (op, chunk index) -> chunk id, written before the chunk is stored.
    PublishJournal,
    /// Reputation records, by peer id ([`crate::reputation::StoredRecord`]).
    Reputation,
    /// Mutable records: every kept version's signed envelope, by version id.
    SyncRecords,
    /// Recovery state beside the shares: this node's own backup, the holder's rate-limit locks
    /// ([`crate::recovery::store`]).
    RecoveryState,
    /// Users this node follows, by user id ([`crate::feeds::store`]).
    Follows,
}

impl Table {
    pub const ALL: [Table; 13] = [
        Table::Peers,
        Table::Identity,
        Table::Posts,
        Table::Manifests,
        Table::Chunks,
        Table::SyncQueue,
        Table::Shards,
        Table::Publications,
        Table::PublishJournal,
        Table::Reputation,
        Table::SyncRecords,
        Table::RecoveryState,
        Table::Follows,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Peers => "peers",
            Table::Identity => "identity",
            Table::Posts => "posts",
            Table::Manifests => "manifests",
            Table::Chunks => "chunks",
            Table::SyncQueue => "sync_queue",
            Table::Shards => "shards",
            Table::Publications => "publications",
            Table::PublishJournal => "publish_journal",
            Table::Reputation => "reputation",
            Table::SyncRecords => "sync_records",
            Table::RecoveryState => "recovery_state",
            Table::Follows => "follows",
        }
    }
}

/// One write of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put { table: Table, key: Vec<u8>, value: Vec<u8> },
    Delete { table: Table, key: Vec<u8> },
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("storage is full: the map reached its {max_bytes}-byte limit (raise it, or free space); nothing of this batch was written")]
    Full { max_bytes: usize },
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("record {key} in table `{table}` cannot be decoded: {reason}")]
    Corrupt { table: &'static str, key: String, reason: String },
    #[error("record for table `{table}` cannot be encoded: {reason}")]
    Encode { table: &'static str, reason: String },
}

/// A table's entries, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Key-value storage by table. Reads take `&self`; a batch of writes takes `&mut self` and is
/// atomic: all of it is stored, or none.
pub trait Storage {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;
    /// Every entry of a table, in key order.
    fn scan(&self, table: Table) -> Result<Entries, StorageError>;
    fn apply(&mut self, ops: &[Op]) -> Result<(), StorageError>;

    /// Every key of a table with the length of its value, in key order, without copying the
    /// values (a node learns what its chunk table holds without reading the chunks).
    fn value_lens(&self, table: Table) -> Result<Vec<(Vec<u8>, usize)>, StorageError> {
        Ok(self.scan(table)?.into_iter().map(|(k, v)| (k, v.len())).collect())
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.apply(&[Op::Put { table, key: key.to_vec(), value: value.to_vec() }])
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<(), StorageError> {
        self.apply(&[Op::Delete { table, key: key.to_vec() }])
    }
}

/// A boxed store is a store (nodes pick their backend at run time).
impl<S: Storage + ?Sized> Storage for Box<S> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        (**self).get(table, key)
    }

    fn scan(&self, table: Table) -> Result<Entries, StorageError> {
        (**self).scan(table)
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), StorageError> {
        (**self).apply(ops)
    }

    fn value_lens(&self, table: Table) -> Result<Vec<(Vec<u8>, usize)>, StorageError> {
        (**self).value_lens(table)
    }
}

/// A store shared by the actors of one node (they run on one thread, one message at a time, so
/// a borrow never overlaps another): the content inventory and the files subsystem's tables
/// live in one environment.
impl<S: Storage + ?Sized> Storage for std::rc::Rc<std::cell::RefCell<S>> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.borrow().get(table, key)
    }

    fn scan(&self, table: Table) -> Result<Entries, StorageError> {
        self.borrow().scan(table)
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), StorageError> {
        self.borrow_mut().apply(ops)
    }

    fn value_lens(&self, table: Table) -> Result<Vec<(Vec<u8>, usize)>, StorageError> {
        self.borrow().value_lens(table)
    }
}
