//! Content: files as encrypted, content-addressed chunks listed by a signed manifest; posts as
//! small signed records; and the local inventory that holds them. Replication and routing
//! (which peers hold what) build on these.

pub mod chunk;
pub mod index;
pub mod inventory;
pub mod manifest;
pub mod share;

pub use chunk::{Chunk, ChunkError, ChunkId, FileKey, MAX_CHUNK_BYTES, TAG_BYTES};
pub use index::{Held, Index, IndexError, Reclaimed, Role};
pub use inventory::{Inventory, InventoryError};
pub use manifest::{prepare_file, ContentError, ContentId, Manifest, ManifestBuilder, Post};
pub use share::{open_root, seal_file_root, share_file, share_post, FileShare, Opened, ShareLink};
