//! The content actor: the generic shell around [`ContentCore`]. Where its outputs go (frames,
//! exchange links, the peers lookups met, fetch and publish results) is wired where the node is
//! assembled ([`crate::wiring`]).

use super::content::{ContentCore, FetchError, Output, PublishError};
use crate::content::ChunkId;
use crate::core::{Shell, Wiring};
use crate::storage::Storage;

/// Where a node's host hears how its fetches and publishes ended (a real node's API waits on
/// them; the simulator reads the observer's events instead).
pub type ContentListener = Box<dyn FnMut(ContentResult)>;

/// A fetch or publish that ended.
#[derive(Clone, Debug, PartialEq)]
pub enum ContentResult {
    Fetched {
        id: u64,
        chunk: ChunkId,
        result: Result<Vec<u8>, FetchError>,
    },
    Published {
        chunk: ChunkId,
        result: Result<(), PublishError>,
    },
    /// A `ContentInput::Reclaim` done: the chunks removed, or why the store refused.
    Reclaimed {
        id: u64,
        result: Result<Vec<ChunkId>, String>,
    },
}

pub type ContentActor = Shell<ContentCore<Box<dyn Storage>>, Box<dyn Wiring<Output>>>;
