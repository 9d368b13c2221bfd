//! The replication actor: the generic shell around [`ContentCore`]. Its effects go to the
//! router; fetch and publish results are reported through the observer (the simulator's
//! metrics) and logged.

use super::content::{ContentCore, FetchError, Output, PublishError};
use crate::content::ChunkId;
use crate::core::{Shell, Wiring};
use crate::router::Outbox;
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

pub struct ContentWiring {
    pub outbox: Outbox,
    pub listener: Option<ContentListener>,
}

impl Wiring<Output> for ContentWiring {
    fn route(&mut self, output: Output) {
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::Fetched { id, chunk, result } => {
                tracing::debug!(id, chunk = %chunk.short(), ok = result.is_ok(), "fetch finished");
                if let Some(l) = &mut self.listener {
                    l(ContentResult::Fetched { id, chunk, result });
                }
            }
            Output::Published { chunk, result } => {
                match &result {
                    Ok(()) => tracing::debug!(chunk = %chunk.short(), "published"),
                    Err(e) => tracing::warn!(chunk = %chunk.short(), error = %e, "publish failed"),
                }
                if let Some(l) = &mut self.listener {
                    l(ContentResult::Published { chunk, result });
                }
            }
            Output::Reclaimed { id, result } => {
                if let Some(l) = &mut self.listener {
                    l(ContentResult::Reclaimed { id, result });
                }
            }
        }
    }
}

pub type ContentActor = Shell<ContentCore<Box<dyn Storage>>, ContentWiring>;
