//! A node's local inventory: the chunks it holds (its own and others'), and the signed manifests
//! and posts it knows, over any [`Storage`]. Chunks are checked against their address on the way
//! in; the bytes held are tracked against a capacity, and a chunk that would pass it is refused
//! with [`IndexError::Full`] (replication then places it elsewhere). Every write is one
//! atomic batch: a refused write leaves the store as it was.
//!
//! Why each chunk is held is kept beside it, in memory, in an [`Index`] ([`Held`]):
//! - **own**: stored by a publication of this node (pinned: never dropped as surplus). During a
//!   run that is any chunk published here; after a restart, only the chunks of *completed*
//!   publications (the files subsystem's records say which: [`Inventory::adopt`]).
//! - **replica**: stored because the replication layer asked for it (a repair pull), or found in
//!   the store at start and not claimed by a completed publication. Unpinned: dropped when surplus.
//! - **orphan**: neither. A chunk of a publication that never completed (failed, aborted, or cut
//!   short by a crash: the journal names it) that is not also a replica or part of a completed
//!   publication. Nothing references it, and [`Inventory::reclaim`] removes it.
//!
//! Opening reads the chunk table's keys and value lengths only, never the chunks themselves. A
//! running node's content core keeps the index and asks its wiring for reads and writes
//! ([`Inventory::into_parts`]); this pairing serves start-up and tests.

use super::chunk::ChunkId;
use super::index::{Held, Index, IndexError, Reclaimed, Role};
use super::manifest::ContentId;
use crate::identity::Envelope;
use crate::storage::records::{decode, encode};
use crate::storage::{Op, Storage, StorageError, Table};
use std::collections::BTreeSet;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("chunk does not match its address {expected} (its bytes hash to {got})")]
    HashMismatch { expected: ChunkId, got: ChunkId },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A store and the index of the chunks in it, kept in step. The content core owns only the
/// index ([`Inventory::into_parts`]); its wiring owns the store.
pub struct Inventory<S: Storage> {
    storage: S,
    index: Index,
}

impl<S: Storage> Inventory<S> {
    /// Open over a store, learning what it holds from the chunk table's keys and value lengths
    /// (no chunk is read). Everything found is a replica until [`Inventory::adopt`] says which
    /// chunks belong to completed publications.
    pub fn open(storage: S, capacity_bytes: u64) -> Result<Self, InventoryError> {
        let index = Index::from_lens(storage.value_lens(Table::Chunks)?, capacity_bytes);
        Ok(Inventory { storage, index })
    }

    /// The index (for the content core) and the store (for its wiring).
    pub fn into_parts(self) -> (Index, S) {
        (self.index, self.storage)
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Say, at start, what the files subsystem's records claim: `published` chunks belong to
    /// completed publications (own, pinned); `unfinished` ones to publications that never
    /// completed, and those that are not also `published` are orphans, removed now. Returns what
    /// was removed.
    pub fn adopt(
        &mut self,
        published: &BTreeSet<ChunkId>,
        unfinished: &BTreeSet<ChunkId>,
    ) -> Result<Vec<ChunkId>, InventoryError> {
        let orphans = self.index.adopt(published, unfinished);
        Ok(self.reclaim(&orphans)?.removed)
    }

    pub fn used_bytes(&self) -> u64 {
        self.index.used_bytes()
    }

    pub fn capacity_bytes(&self) -> u64 {
        self.index.capacity_bytes()
    }

    pub fn chunk_count(&self) -> usize {
        self.index.chunk_count()
    }

    /// Whether a chunk of `len` bytes would fit now.
    pub fn has_room(&self, len: usize) -> bool {
        self.index.has_room(len)
    }

    /// Store a chunk fetched by address `id`, held as `role`; idempotent (storing a chunk
    /// held already adds the role). Checked before anything is written.
    pub fn put_chunk(&mut self, id: &ChunkId, ciphertext: &[u8], role: Role) -> Result<(), InventoryError> {
        let got = ChunkId::of(ciphertext);
        if got != *id {
            return Err(InventoryError::HashMismatch { expected: *id, got });
        }
        if self.index.admit(id, ciphertext.len(), role)? {
            if let Err(e) = self.storage.put(Table::Chunks, &id.0, ciphertext) {
                self.index.remove(id);
                return Err(e.into());
            }
        }
        Ok(())
    }

    pub fn has_chunk(&self, id: &ChunkId) -> bool {
        self.index.has_chunk(id)
    }

    /// Why `id` is held, if it is.
    pub fn held(&self, id: &ChunkId) -> Option<Held> {
        self.index.held(id)
    }

    /// Every chunk held, in id order, with why.
    pub fn all_held(&self) -> impl Iterator<Item = (&ChunkId, &Held)> {
        self.index.all_held()
    }

    pub fn get_chunk(&self, id: &ChunkId) -> Result<Option<Vec<u8>>, InventoryError> {
        if !self.index.has_chunk(id) {
            return Ok(None);
        }
        Ok(self.storage.get(Table::Chunks, &id.0)?)
    }

    /// Drop a chunk (handed over to a closer peer); returns whether it was held.
    pub fn remove_chunk(&mut self, id: &ChunkId) -> Result<bool, InventoryError> {
        let Some(h) = self.index.remove(id) else { return Ok(false) };
        if let Err(e) = self.storage.apply(&[Op::Delete { table: Table::Chunks, key: id.0.to_vec() }]) {
            self.index.restore(*id, h);
            return Err(e.into());
        }
        Ok(true)
    }

    /// These chunks are no longer referenced by a publication of this node (it failed, or was
    /// aborted): each stops being own, and the orphans among them (not replicas too) are removed,
    /// in one atomic batch. Chunks not held are skipped.
    pub fn reclaim(&mut self, chunks: &[ChunkId]) -> Result<Reclaimed, InventoryError> {
        let (removed, unpinned) = self.index.reclaim(chunks);
        let ops: Vec<Op> =
            removed.iter().map(|(id, _)| Op::Delete { table: Table::Chunks, key: id.0.to_vec() }).collect();
        if let Err(e) = self.storage.apply(&ops) {
            for (id, h) in removed {
                self.index.restore(id, h);
            }
            self.index.repin(&unpinned);
            return Err(e.into());
        }
        Ok(Reclaimed { removed: removed.into_iter().map(|(id, _)| id).collect(), unpinned })
    }

    /// Every chunk id held, in order.
    pub fn chunk_ids(&self) -> Vec<ChunkId> {
        self.index.chunk_ids()
    }

    /// Keep a signed manifest (already opened and checked by the caller) under its content id.
    pub fn put_manifest(&mut self, env: &Envelope) -> Result<ContentId, InventoryError> {
        self.put_record(Table::Manifests, env)
    }

    pub fn get_manifest(&self, id: &ContentId) -> Result<Option<Envelope>, InventoryError> {
        self.get_record(Table::Manifests, id)
    }

    /// Keep a signed post (already opened and checked by the caller) under its content id.
    pub fn put_post(&mut self, env: &Envelope) -> Result<ContentId, InventoryError> {
        self.put_record(Table::Posts, env)
    }

    pub fn get_post(&self, id: &ContentId) -> Result<Option<Envelope>, InventoryError> {
        self.get_record(Table::Posts, id)
    }

    fn put_record(&mut self, table: Table, env: &Envelope) -> Result<ContentId, InventoryError> {
        let id = ContentId::of(env);
        self.storage.put(table, &id.0, &encode(table, env)?)?;
        Ok(id)
    }

    fn get_record(&self, table: Table, id: &ContentId) -> Result<Option<Envelope>, InventoryError> {
        match self.storage.get(table, &id.0)? {
            Some(b) => Ok(Some(decode(table, &id.0, &b)?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::chunk::FileKey;
    use crate::content::manifest::prepare_file;
    use crate::identity::Identity;
    use crate::storage::heed_store::HeedStorage;
    use crate::storage::memory::MemoryStorage;

    fn chunks(n: usize, size: usize) -> Vec<crate::content::chunk::Chunk> {
        prepare_file("f", &vec![9u8; n * size], size, &FileKey::from_bytes([3; 32])).unwrap().1
    }

    #[test]
    fn checks_addresses_and_capacity_and_counts_what_it_holds() {
        let cs = chunks(3, 1000);
        let one = cs[0].ciphertext.len() as u64;
        let mut inv = Inventory::open(MemoryStorage::default(), 2 * one).unwrap();
        inv.put_chunk(&cs[0].id, &cs[0].ciphertext, Role::Replica).unwrap();
        inv.put_chunk(&cs[0].id, &cs[0].ciphertext, Role::Own).unwrap(); // idempotent, adds the role
        assert_eq!((inv.used_bytes(), inv.chunk_count()), (one, 1));
        assert_eq!(inv.held(&cs[0].id), Some(Held { bytes: one as u32, own: true, replica: true }));
        let bad = inv.put_chunk(&cs[1].id, &cs[2].ciphertext, Role::Own);
        assert!(matches!(bad, Err(InventoryError::HashMismatch { .. })));
        inv.put_chunk(&cs[1].id, &cs[1].ciphertext, Role::Own).unwrap();
        let full = inv.put_chunk(&cs[2].id, &cs[2].ciphertext, Role::Own).unwrap_err();
        assert!(full.to_string().contains("inventory full"), "{full}");
        assert!(!inv.has_chunk(&cs[2].id), "a refused chunk is not stored");
        assert!(inv.remove_chunk(&cs[0].id).unwrap());
        inv.put_chunk(&cs[2].id, &cs[2].ciphertext, Role::Own).unwrap();
        let mut ids = vec![cs[1].id, cs[2].id];
        ids.sort();
        assert_eq!(inv.chunk_ids(), ids);
        assert_eq!(inv.get_chunk(&cs[2].id).unwrap().as_deref(), Some(&cs[2].ciphertext[..]));
    }

    #[test]
    fn everything_is_back_after_reopening_the_directory() {
        let dir = tempfile_dir("inventory-reopen");
        let me = Identity::from_secret(&[1; 32]);
        let key = FileKey::from_bytes([4; 32]);
        let (manifest, cs) = prepare_file("notes.txt", &[7u8; 5000], 2048, &key).unwrap();
        let env = manifest.seal(&me, 10).unwrap();
        let mid = {
            let mut inv = Inventory::open(HeedStorage::open(&dir).unwrap(), 1 << 20).unwrap();
            for c in &cs {
                inv.put_chunk(&c.id, &c.ciphertext, Role::Own).unwrap();
            }
            inv.put_manifest(&env).unwrap()
        };
        let inv = Inventory::open(HeedStorage::open(&dir).unwrap(), 1 << 20).unwrap();
        assert_eq!(inv.chunk_count(), cs.len());
        assert_eq!(inv.used_bytes(), cs.iter().map(|c| c.ciphertext.len() as u64).sum::<u64>());
        let back = inv.get_manifest(&mid).unwrap().unwrap();
        assert_eq!(back, env);
        let m = crate::content::Manifest::open(&back, &crate::identity::Ed25519Verifier).unwrap();
        let data = m.reassemble(&key, |id| inv.get_chunk(id).unwrap()).unwrap();
        assert!(inv.all_held().all(|(_, h)| h.replica), "no publication record: held as replicas");
        assert_eq!(data, vec![7u8; 5000]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A store that refuses to hand out chunk bytes: opening must not need them.
    struct NoChunkReads(MemoryStorage);

    impl Storage for NoChunkReads {
        fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
            assert_ne!(table, Table::Chunks, "a chunk was read");
            self.0.get(table, key)
        }
        fn scan(&self, table: Table) -> Result<crate::storage::Entries, StorageError> {
            assert_ne!(table, Table::Chunks, "the chunk table was read whole");
            self.0.scan(table)
        }
        fn apply(&mut self, ops: &[Op]) -> Result<(), StorageError> {
            self.0.apply(ops)
        }
        fn value_lens(&self, table: Table) -> Result<Vec<(Vec<u8>, usize)>, StorageError> {
            self.0.value_lens(table)
        }
    }

    #[test]
    fn opening_reads_no_chunk_and_finds_replicas_until_told_otherwise() {
        let cs = chunks(4, 1000);
        let mut mem = MemoryStorage::default();
        for c in &cs {
            mem.put(Table::Chunks, &c.id.0, &c.ciphertext).unwrap();
        }
        let mut inv = Inventory::open(NoChunkReads(mem), 1 << 20).unwrap();
        assert_eq!(inv.chunk_count(), 4);
        assert_eq!(inv.used_bytes(), cs.iter().map(|c| c.ciphertext.len() as u64).sum::<u64>());
        assert!(inv.all_held().all(|(_, h)| h.replica && !h.own), "found at start: replicas");
        // Chunk 0 is a completed publication's, 1 and 2 an unfinished one's (2 is also in the
        // completed one), 3 nobody's: only 1 is an orphan.
        let published = BTreeSet::from([cs[0].id, cs[2].id]);
        let unfinished = BTreeSet::from([cs[1].id, cs[2].id]);
        assert_eq!(inv.adopt(&published, &unfinished).unwrap(), vec![cs[1].id]);
        assert_eq!(inv.chunk_count(), 3);
        assert!(inv.held(&cs[0].id).unwrap().own && inv.held(&cs[2].id).unwrap().own);
        assert_eq!(inv.held(&cs[3].id).map(|h| (h.own, h.replica)), Some((false, true)));
    }

    #[test]
    fn reclaim_removes_orphans_keeps_replicas_unpinned_and_skips_the_rest() {
        let cs = chunks(4, 1000);
        let mut inv = Inventory::open(MemoryStorage::default(), 1 << 20).unwrap();
        inv.put_chunk(&cs[0].id, &cs[0].ciphertext, Role::Own).unwrap();
        inv.put_chunk(&cs[1].id, &cs[1].ciphertext, Role::Replica).unwrap();
        inv.put_chunk(&cs[1].id, &cs[1].ciphertext, Role::Own).unwrap();
        inv.put_chunk(&cs[2].id, &cs[2].ciphertext, Role::Own).unwrap();
        let r = inv.reclaim(&[cs[0].id, cs[1].id, cs[3].id, cs[0].id]).unwrap();
        assert_eq!(r, Reclaimed { removed: vec![cs[0].id], unpinned: vec![cs[1].id] });
        assert!(!inv.has_chunk(&cs[0].id));
        assert_eq!(inv.held(&cs[1].id).map(|h| (h.own, h.replica)), Some((false, true)));
        assert!(inv.held(&cs[2].id).unwrap().own, "not named: untouched");
        assert_eq!(inv.used_bytes(), (cs[1].ciphertext.len() + cs[2].ciphertext.len()) as u64);
        assert_eq!(inv.get_chunk(&cs[0].id).unwrap(), None);
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("swarm-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
