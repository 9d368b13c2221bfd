//! What a node holds, in memory: each chunk's size and why it is held ([`Held`]), and the bytes
//! used against a capacity. No bytes and no I/O: the content core owns an index and asks its
//! wiring to read and write the store (STYLE 13); [`super::Inventory`] pairs an index with a
//! store for the code that runs outside a core (opening a node's store, tests).
//!
//! The index is changed when a write is asked for (it is expected to succeed) and repaired when
//! the store refuses it: [`Index::remove`] and [`Index::restore`] undo each other.

use super::chunk::{ChunkId, MAX_CHUNK_BYTES, TAG_BYTES};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum IndexError {
    #[error("chunk of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("inventory full: {used} of {capacity} bytes used, chunk of {len} bytes refused")]
    Full { used: u64, capacity: u64, len: usize },
}

/// Why a chunk is stored (see [`super::inventory`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Published by this node.
    Own,
    /// Pulled for the replica set.
    Replica,
}

/// What the index knows of a chunk held, without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub bytes: u32,
    pub own: bool,
    pub replica: bool,
}

/// What a reclaim does (see [`Index::reclaim`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Orphans: removed from the store.
    pub removed: Vec<ChunkId>,
    /// No longer own, but held as replicas: kept, unpinned.
    pub unpinned: Vec<ChunkId>,
}

#[derive(Clone, Debug, Default)]
pub struct Index {
    capacity: u64,
    used: u64,
    held: BTreeMap<ChunkId, Held>,
}

impl Index {
    /// An index of a store's chunk table from its keys and value lengths (no chunk is read).
    /// Everything found is a replica until [`Index::adopt`] says which chunks belong to completed
    /// publications.
    pub fn from_lens(lens: impl IntoIterator<Item = (Vec<u8>, usize)>, capacity_bytes: u64) -> Self {
        let mut index = Index { capacity: capacity_bytes, ..Index::default() };
        for (k, len) in lens {
            // Keys are written for chunks only; anything else is not a chunk of ours.
            let Ok(id) = <[u8; 32]>::try_from(k.as_slice()) else { continue };
            index.restore(ChunkId(id), Held { bytes: len as u32, own: false, replica: true });
        }
        index
    }

    /// Mark the chunks of completed (`published`) and unfinished publications own; returns the
    /// orphans (unfinished and not published), which the caller removes ([`Index::reclaim`]).
    pub fn adopt(&mut self, published: &BTreeSet<ChunkId>, unfinished: &BTreeSet<ChunkId>) -> Vec<ChunkId> {
        for id in published.iter().chain(unfinished) {
            if let Some(h) = self.held.get_mut(id) {
                *h = Held { own: true, replica: false, ..*h };
            }
        }
        unfinished.difference(published).copied().collect()
    }

    pub fn used_bytes(&self) -> u64 {
        self.used
    }

    pub fn capacity_bytes(&self) -> u64 {
        self.capacity
    }

    pub fn chunk_count(&self) -> usize {
        self.held.len()
    }

    /// Whether a chunk of `len` bytes would fit now.
    pub fn has_room(&self, len: usize) -> bool {
        self.used + len as u64 <= self.capacity
    }

    pub fn has_chunk(&self, id: &ChunkId) -> bool {
        self.held.contains_key(id)
    }

    /// Why `id` is held, if it is.
    pub fn held(&self, id: &ChunkId) -> Option<Held> {
        self.held.get(id).copied()
    }

    /// Every chunk held, in id order, with why.
    pub fn all_held(&self) -> impl Iterator<Item = (&ChunkId, &Held)> {
        self.held.iter()
    }

    /// Every chunk id held, in order.
    pub fn chunk_ids(&self) -> Vec<ChunkId> {
        self.held.keys().copied().collect()
    }

    /// Take a chunk of `len` bytes as `role`: `Ok(true)` when it is new (its bytes are to be
    /// written), `Ok(false)` when it was held already (the role is added, nothing to write).
    pub fn admit(&mut self, id: &ChunkId, len: usize, role: Role) -> Result<bool, IndexError> {
        let max = MAX_CHUNK_BYTES + TAG_BYTES;
        if len > max {
            return Err(IndexError::TooLarge { len, max });
        }
        if let Some(h) = self.held.get_mut(id) {
            match role {
                Role::Own => h.own = true,
                Role::Replica => h.replica = true,
            }
            return Ok(false);
        }
        if !self.has_room(len) {
            return Err(IndexError::Full { used: self.used, capacity: self.capacity, len });
        }
        let (own, replica) = (role == Role::Own, role == Role::Replica);
        self.restore(*id, Held { bytes: len as u32, own, replica });
        Ok(true)
    }

    /// Forget a chunk (being removed, or its write was refused): what was held.
    pub fn remove(&mut self, id: &ChunkId) -> Option<Held> {
        let h = self.held.remove(id)?;
        self.used -= u64::from(h.bytes);
        Some(h)
    }

    /// Hold a chunk as `h` (a removal the store refused is undone with what [`Index::remove`]
    /// returned).
    pub fn restore(&mut self, id: ChunkId, h: Held) {
        if let Some(old) = self.held.insert(id, h) {
            self.used -= u64::from(old.bytes);
        }
        self.used += u64::from(h.bytes);
    }

    /// These chunks are no longer referenced by a publication of this node: each stops being
    /// own, and the orphans among them (not replicas too) leave the index; returns those with
    /// what they were (to restore if the store refuses to delete them) and the chunks unpinned.
    /// Chunks not held are skipped.
    pub fn reclaim(&mut self, chunks: &[ChunkId]) -> (Vec<(ChunkId, Held)>, Vec<ChunkId>) {
        let (mut removed, mut unpinned) = (Vec::new(), Vec::new());
        for id in chunks {
            match self.held.get_mut(id) {
                Some(h) if h.replica => {
                    h.own = false;
                    unpinned.push(*id);
                }
                Some(_) => {
                    if let Some(h) = self.remove(id) {
                        removed.push((*id, h));
                    }
                }
                None => {}
            }
        }
        (removed, unpinned)
    }

    /// Pin again chunks a reclaim unpinned (the store refused its deletions).
    pub fn repin(&mut self, chunks: &[ChunkId]) {
        for id in chunks {
            if let Some(h) = self.held.get_mut(id) {
                h.own = true;
            }
        }
    }

    /// Sum of the sizes held equals the bytes used (a walk over every chunk: for tests).
    pub fn check_invariants(&self) {
        debug_assert_eq!(self.used, self.held.values().map(|h| u64::from(h.bytes)).sum::<u64>());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of admits, removes and restores keeps the bytes used equal to the sum of
        /// the sizes held, and a remove followed by a restore gives the index back.
        #[test]
        fn used_bytes_follow_what_is_held(ops in prop::collection::vec((0u8..8, 0usize..3000, any::<bool>()), 0..60)) {
            let mut ix = Index::from_lens(vec![], 8_000);
            for (k, len, add) in ops {
                let id = ChunkId([k; 32]);
                if add {
                    let role = if len % 2 == 0 { Role::Own } else { Role::Replica };
                    let before = ix.used_bytes();
                    match ix.admit(&id, len, role) {
                        Ok(true) => prop_assert_eq!(ix.used_bytes(), before + len as u64),
                        Ok(false) | Err(_) => prop_assert_eq!(ix.used_bytes(), before),
                    }
                } else if let Some(h) = ix.remove(&id) {
                    let (used, count) = (ix.used_bytes(), ix.chunk_count());
                    ix.restore(id, h);
                    prop_assert_eq!(ix.held(&id), Some(h));
                    prop_assert_eq!((ix.used_bytes(), ix.chunk_count()), (used + u64::from(h.bytes), count + 1));
                    ix.remove(&id);
                }
                prop_assert!(ix.used_bytes() <= 8_000);
                prop_assert_eq!(ix.used_bytes(), ix.all_held().map(|(_, h)| u64::from(h.bytes)).sum::<u64>());
            }
        }
    }
}
