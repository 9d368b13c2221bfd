//! Content: files as encrypted, content-addressed chunks listed by a signed manifest; posts as
//! small signed records; and the local inventory that holds them. Replication and routing
//! (which peers hold what) build on these.

pub mod chunk;
pub mod inventory;
pub mod manifest;

pub use chunk::{Chunk, ChunkError, ChunkId, FileKey, MAX_CHUNK_BYTES, TAG_BYTES};
pub use inventory::{Inventory, InventoryError};
pub use manifest::{prepare_file, ContentError, ContentId, Manifest, Post};
