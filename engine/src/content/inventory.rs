//! A node's local inventory: the chunks it holds (its own and others'), and the signed manifests
//! and posts it knows, over any [`Storage`]. Chunks are checked against their address on the way
//! in; the bytes held are tracked against a capacity, and a chunk that would pass it is refused
//! with [`InventoryError::Full`] (replication then places it elsewhere). Every write is one
//! atomic batch: a refused write leaves the store as it was.

use super::chunk::{ChunkId, MAX_CHUNK_BYTES, TAG_BYTES};
use super::manifest::ContentId;
use crate::identity::Envelope;
use crate::storage::records::{decode, encode};
use crate::storage::{Op, Storage, StorageError, Table};

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("chunk does not match its address {expected} (its bytes hash to {got})")]
    HashMismatch { expected: ChunkId, got: ChunkId },
    #[error("chunk of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("inventory full: {used} of {capacity} bytes used, chunk of {len} bytes refused")]
    Full { used: u64, capacity: u64, len: usize },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub struct Inventory<S: Storage> {
    storage: S,
    capacity: u64,
    used: u64,
    chunks: usize,
}

impl<S: Storage> Inventory<S> {
    /// Open over a store, counting what it already holds (one pass over the chunk table).
    pub fn open(storage: S, capacity_bytes: u64) -> Result<Self, InventoryError> {
        let held = storage.scan(Table::Chunks)?;
        let used = held.iter().map(|(_, v)| v.len() as u64).sum();
        Ok(Inventory { storage, capacity: capacity_bytes, used, chunks: held.len() })
    }

    pub fn used_bytes(&self) -> u64 {
        self.used
    }

    pub fn capacity_bytes(&self) -> u64 {
        self.capacity
    }

    pub fn chunk_count(&self) -> usize {
        self.chunks
    }

    /// Whether a chunk of `len` bytes would fit now.
    pub fn has_room(&self, len: usize) -> bool {
        self.used + len as u64 <= self.capacity
    }

    /// Store a chunk fetched by address `id`; idempotent. Checked before anything is written.
    pub fn put_chunk(&mut self, id: &ChunkId, ciphertext: &[u8]) -> Result<(), InventoryError> {
        let max = MAX_CHUNK_BYTES + TAG_BYTES;
        if ciphertext.len() > max {
            return Err(InventoryError::TooLarge { len: ciphertext.len(), max });
        }
        let got = ChunkId::of(ciphertext);
        if got != *id {
            return Err(InventoryError::HashMismatch { expected: *id, got });
        }
        if self.has_chunk(id)? {
            return Ok(());
        }
        if !self.has_room(ciphertext.len()) {
            return Err(InventoryError::Full { used: self.used, capacity: self.capacity, len: ciphertext.len() });
        }
        self.storage.put(Table::Chunks, &id.0, ciphertext)?;
        self.used += ciphertext.len() as u64;
        self.chunks += 1;
        Ok(())
    }

    pub fn has_chunk(&self, id: &ChunkId) -> Result<bool, InventoryError> {
        Ok(self.storage.get(Table::Chunks, &id.0)?.is_some())
    }

    pub fn get_chunk(&self, id: &ChunkId) -> Result<Option<Vec<u8>>, InventoryError> {
        Ok(self.storage.get(Table::Chunks, &id.0)?)
    }

    /// Drop a chunk (handed over to a closer peer); returns whether it was held.
    pub fn remove_chunk(&mut self, id: &ChunkId) -> Result<bool, InventoryError> {
        let Some(bytes) = self.storage.get(Table::Chunks, &id.0)? else { return Ok(false) };
        self.storage.apply(&[Op::Delete { table: Table::Chunks, key: id.0.to_vec() }])?;
        self.used -= bytes.len() as u64;
        self.chunks -= 1;
        Ok(true)
    }

    /// Every chunk id held, in order.
    pub fn chunk_ids(&self) -> Result<Vec<ChunkId>, InventoryError> {
        let mut ids = Vec::with_capacity(self.chunks);
        for (k, _) in self.storage.scan(Table::Chunks)? {
            if let Ok(id) = <[u8; 32]>::try_from(k.as_slice()) {
                ids.push(ChunkId(id));
            }
        }
        Ok(ids)
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
    use crate::content::chunk::{encrypt, FileKey};
    use crate::content::manifest::prepare_file;
    use crate::identity::Identity;
    use crate::storage::heed_store::HeedStorage;
    use crate::storage::memory::MemoryStorage;

    fn chunks(n: usize, size: usize) -> Vec<crate::content::chunk::Chunk> {
        encrypt(&FileKey::from_bytes([3; 32]), &vec![9u8; n * size], size).unwrap()
    }

    #[test]
    fn checks_addresses_and_capacity_and_counts_what_it_holds() {
        let cs = chunks(3, 1000);
        let one = cs[0].ciphertext.len() as u64;
        let mut inv = Inventory::open(MemoryStorage::default(), 2 * one).unwrap();
        inv.put_chunk(&cs[0].id, &cs[0].ciphertext).unwrap();
        inv.put_chunk(&cs[0].id, &cs[0].ciphertext).unwrap(); // idempotent
        assert_eq!((inv.used_bytes(), inv.chunk_count()), (one, 1));
        assert!(matches!(inv.put_chunk(&cs[1].id, &cs[2].ciphertext), Err(InventoryError::HashMismatch { .. })));
        inv.put_chunk(&cs[1].id, &cs[1].ciphertext).unwrap();
        let full = inv.put_chunk(&cs[2].id, &cs[2].ciphertext).unwrap_err();
        assert!(full.to_string().contains("inventory full"), "{full}");
        assert!(!inv.has_chunk(&cs[2].id).unwrap(), "a refused chunk is not stored");
        assert!(inv.remove_chunk(&cs[0].id).unwrap());
        inv.put_chunk(&cs[2].id, &cs[2].ciphertext).unwrap();
        let mut ids = vec![cs[1].id, cs[2].id];
        ids.sort();
        assert_eq!(inv.chunk_ids().unwrap(), ids);
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
                inv.put_chunk(&c.id, &c.ciphertext).unwrap();
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
        assert_eq!(data, vec![7u8; 5000]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("swarm-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
