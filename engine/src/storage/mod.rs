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
}

impl Table {
    pub const ALL: [Table; 7] =
        [Table::Peers, Table::Identity, Table::Posts, Table::Manifests, Table::Chunks, Table::SyncQueue, Table::Shards];

    pub fn name(self) -> &'static str {
        match self {
            Table::Peers => "peers",
            Table::Identity => "identity",
            Table::Posts => "posts",
            Table::Manifests => "manifests",
            Table::Chunks => "chunks",
            Table::SyncQueue => "sync_queue",
            Table::Shards => "shards",
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
}
