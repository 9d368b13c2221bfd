//! Whole files (and posts): publishing them streamed in, fetching them streamed out. The chunk
//! protocol (content actor) moves and stores single chunks; this subsystem cuts a file into
//! encrypted chunks as its bytes arrive, signs and seals its manifest into the root chunk, and on
//! the way back fetches a root, opens it, and fetches the chunks it lists a window at a time,
//! delivering them in order, decrypted and checked. Both directions hold a bounded window of
//! chunks, never the whole file, and tell the caller when it may send or take more.
//!
//! **All or nothing.** Every chunk of a publication is written to the journal (`publish_journal`
//! table) before it is handed to the content actor for storing; when the publication completes,
//! one atomic batch replaces its journal entries with the publication record (`publications`).
//! A publication that fails, is aborted or idles out has its chunks reclaimed (the content
//! actor removes the orphans among them, see [`crate::content::inventory`]), then its journal
//! entries deleted; at start-up whatever a crashed run left in the journal is reclaimed the same
//! way before the node runs ([`store::open`]). Only the chunks of completed publications come
//! back pinned after a restart; every other stored chunk is held as a replica.
//!
//! [`core::FilesCore`] is the sans-IO core (its two small machines: [`publish`] and [`fetch`]);
//! storage is asked for as [`Output::Write`] and answered with [`Input::Written`];
//! [`actor::FilesActor`] is the generic shell around it.

pub mod actor;
pub mod core;
mod fetch;
mod publish;
pub mod store;
#[cfg(test)]
mod tests;

pub use self::actor::{FileListener, FilesActor, FilesHandle, FilesWiring};
pub use self::core::FilesCore;
pub use self::store::{FilesStore, OpenedStore, PublicationRecord};

use crate::content::{ChunkId, ContentError, ShareLink};
use crate::replication::{ContentInput, ContentResult, FetchError};
use crate::storage::Op;
use crate::types::PeerId;
use bytes::Bytes;

/// The caller's name for one operation (a publication or a fetch); unique among those running.
pub type OpId = u64;

/// Fetch ids at or above this are the files actor's own requests to the content actor (its
/// answers go back to the files actor, not to the node's content listener).
pub const FILES_FETCH_IDS: u64 = 1 << 63;

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Start publishing a file called `name`: answered by `Accepted` (send the first piece), or
    /// by `Published` with the reason it cannot start.
    PublishBegin { op: OpId, name: String },
    /// The next bytes of the file, of any size; answered by one `Accepted` once they are taken
    /// (cut into chunks handed to storage) and there is room for more.
    PublishPiece { op: OpId, data: Bytes },
    /// No more bytes: the last chunk and the root are stored, then `Published` says the link.
    PublishFinish { op: OpId },
    /// Publish a signed post (one public root chunk); answered by `Published`.
    PublishPost { op: OpId, text: String },
    /// Fetch what a link names: `Opened`, then (for a file) its pieces in order, then `Fetched`.
    Fetch { op: OpId, link: ShareLink },
    /// The caller took one piece of fetch `op`: one more may come.
    Consumed { op: OpId },
    /// Give up a publication (what it stored is reclaimed, then `Published` with `Aborted`) or
    /// a fetch (`Fetched` with `Aborted`, at once).
    Abort { op: OpId },
    /// What the content actor answered (publishes, fetches, reclaims).
    Content(ContentResult),
    /// A write asked for by [`Output::Write`] was applied, or refused (nothing of it written).
    Written { op: OpId, write: Write, result: Result<(), String> },
}

/// What a write is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Chunks about to be stored, into the journal.
    Journal,
    /// The publication record, replacing the journal entries.
    Record,
    /// The journal entries of a reclaimed publication, deleted.
    Forget,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// For the content actor.
    Content(ContentInput),
    /// Apply `ops` to the store in one atomic batch, and answer with `Input::Written`.
    Write { op: OpId, write: Write, ops: Vec<Op> },
    /// For the caller.
    Event(FileEvent),
}

/// What the caller hears. Every operation ends with exactly one `Published` or `Fetched`.
#[derive(Clone, Debug, PartialEq)]
pub enum FileEvent {
    /// Publication `op` took what it was sent: send the next piece (or finish).
    Accepted {
        op: OpId,
    },
    Published {
        op: OpId,
        result: Result<PublishedFile, FileError>,
    },
    /// Fetch `op` found and opened its root; for a file, its pieces follow.
    Opened {
        op: OpId,
        root: RootInfo,
    },
    /// The next piece of fetch `op`'s file, in order (one chunk's plaintext); answer with
    /// `Input::Consumed` once taken.
    Piece {
        op: OpId,
        data: Vec<u8>,
    },
    /// Fetch `op` ended: every piece delivered, or what failed.
    Fetched {
        op: OpId,
        result: Result<(), FileError>,
    },
}

/// A completed publication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedFile {
    /// `ROOT:KEY` for a file, `ROOT` for a post.
    pub link: ShareLink,
    /// Chunks stored, the root included.
    pub chunks: usize,
    /// Plaintext bytes (a post: its root chunk's).
    pub bytes: u64,
}

/// What a fetched root said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootInfo {
    File { name: String, size: u64, chunks: usize, author: PeerId, unix_ms: u64 },
    Post { text: String, author: PeerId, unix_ms: u64 },
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileError {
    #[error("operation {0} is already running")]
    DuplicateOp(OpId),
    #[error("too many {what} at once (at most {max})")]
    Busy { what: &'static str, max: usize },
    #[error("cannot publish: {0}")]
    Content(ContentError),
    #[error("chunk {index} was not stored: {reason}")]
    Store { index: u32, reason: String },
    #[error("the publication could not be recorded: {0}")]
    Record(String),
    #[error("aborted by the caller")]
    Aborted,
    #[error("nothing from the caller for {ms} ms: given up")]
    Idle { ms: u64 },
    #[error("root chunk {root} not retrieved: {reason}")]
    RootUnavailable { root: ChunkId, reason: FetchError },
    #[error("root does not open: {0}")]
    BadRoot(ContentError),
    #[error("chunk {index} ({id}) not retrieved: {reason}")]
    ChunkUnavailable { index: u32, id: ChunkId, reason: FetchError },
    #[error("chunk {index} ({id}) is not this file's: {reason}")]
    BadChunk { index: u32, id: ChunkId, reason: ContentError },
}
