//! The files subsystem's tables, and a node's content store opened at start.
//!
//! - `publications`: root chunk id -> [`PublicationRecord`] (the chunks a completed publication
//!   of this node references; they stay pinned).
//! - `publish_journal`: (journal id, sequence number) -> chunk id, one entry per chunk of a
//!   publication under way, written before the chunk is stored.
//!
//! [`open`] runs before the node's actors: it reads both tables (records only, never a chunk),
//! tells the inventory which chunks are whose ([`Inventory::adopt`]: the orphans of unfinished
//! publications are removed), then deletes the leftover journal entries. A crash in between
//! leaves the journal in place, and the next start does the same again.

use crate::content::{ChunkId, Inventory, InventoryError};
use crate::storage::records::{decode, encode};
use crate::storage::{Op, Storage, StorageError, Table};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

/// A completed publication of this node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicationRecord {
    /// The file's name; `None` for a post.
    pub name: Option<String>,
    /// Plaintext bytes.
    pub bytes: u64,
    pub unix_ms: u64,
    /// The data chunks, in order (a post has none); the root is the record's key.
    pub chunks: Vec<ChunkId>,
}

impl PublicationRecord {
    pub fn put(root: &ChunkId, rec: &PublicationRecord) -> Result<Op, StorageError> {
        Ok(Op::Put { table: Table::Publications, key: root.0.to_vec(), value: encode(Table::Publications, rec)? })
    }

    /// Every completed publication, by root. A record that does not decode is an error naming it.
    pub fn all(s: &dyn Storage) -> Result<Vec<(ChunkId, PublicationRecord)>, StorageError> {
        let mut out = Vec::new();
        for (k, v) in s.scan(Table::Publications)? {
            let root = chunk_id(Table::Publications, &k, &k)?;
            out.push((root, decode(Table::Publications, &k, &v)?));
        }
        Ok(out)
    }
}

fn chunk_id(table: Table, key: &[u8], bytes: &[u8]) -> Result<ChunkId, StorageError> {
    <[u8; 32]>::try_from(bytes).map(ChunkId).map_err(|_| StorageError::Corrupt {
        table: table.name(),
        key: hex::encode(key),
        reason: format!("{} bytes where a chunk id (32) was expected", bytes.len()),
    })
}

/// The files actor's handle on the store it shares with the content inventory.
#[derive(Clone)]
pub struct FilesStore(Rc<RefCell<Box<dyn Storage>>>);

impl FilesStore {
    pub fn apply(&self, ops: &[Op]) -> Result<(), StorageError> {
        self.0.borrow_mut().apply(ops)
    }

    pub fn storage(&self) -> &Rc<RefCell<Box<dyn Storage>>> {
        &self.0
    }
}

/// A node's content store, opened: the inventory (for the content actor), the files actor's
/// handle on the same store, and what the records say.
pub struct OpenedStore {
    pub inventory: Inventory<Box<dyn Storage>>,
    pub store: FilesStore,
    /// Every chunk of every completed publication (roots included).
    pub published: BTreeSet<ChunkId>,
    /// Orphans of publications a previous run left unfinished, removed now.
    pub reclaimed: Vec<ChunkId>,
}

/// Open a node's content store (see the module doc): what a crashed publication left is gone
/// when this returns.
pub fn open(storage: Box<dyn Storage>, capacity_bytes: u64) -> Result<OpenedStore, InventoryError> {
    let shared: Rc<RefCell<Box<dyn Storage>>> = Rc::new(RefCell::new(storage));
    let mut published = BTreeSet::new();
    for (root, rec) in PublicationRecord::all(&**shared.borrow())? {
        published.insert(root);
        published.extend(rec.chunks);
    }
    let journal = shared.borrow().scan(Table::PublishJournal)?;
    let mut unfinished = BTreeSet::new();
    for (k, v) in &journal {
        unfinished.insert(chunk_id(Table::PublishJournal, k, v)?);
    }
    let mut inventory = Inventory::open(Box::new(shared.clone()) as Box<dyn Storage>, capacity_bytes)?;
    let reclaimed = inventory.adopt(&published, &unfinished)?;
    // Only once the orphans are gone: a crash before this point finds the journal again.
    let forget: Vec<Op> =
        journal.into_iter().map(|(key, _)| Op::Delete { table: Table::PublishJournal, key }).collect();
    shared.borrow_mut().apply(&forget)?;
    if !reclaimed.is_empty() {
        tracing::info!(chunks = reclaimed.len(), "removed the chunks of publications a previous run left unfinished");
    }
    Ok(OpenedStore { inventory, store: FilesStore(shared), published, reclaimed })
}

/// The journal entries of one publication (`len` chunks journalled), deleted.
pub(super) fn forget_journal(journal: u64, len: u32) -> impl Iterator<Item = Op> {
    (0..len).map(move |seq| Op::Delete { table: Table::PublishJournal, key: journal_key(journal, seq) })
}

/// Journal key of a publication's `seq`-th chunk: big-endian, so a publication's entries are
/// contiguous and in order.
pub(super) fn journal_key(journal: u64, seq: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(12);
    k.extend_from_slice(&journal.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The journal entry saying that chunk `id` is about to be stored for publication `journal`.
pub(super) fn journal_entry(journal: u64, seq: u32, id: &ChunkId) -> Op {
    Op::Put { table: Table::PublishJournal, key: journal_key(journal, seq), value: id.0.to_vec() }
}
