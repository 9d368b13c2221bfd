//! The replication actor: the generic shell around [`ContentCore`]. Its effects go to the
//! router; fetch and publish results are reported through the observer (the simulator's
//! metrics) and logged.

use super::content::{ContentCore, Output};
use crate::core::{Shell, Wiring};
use crate::router::Outbox;
use crate::storage::Storage;

pub struct ContentWiring {
    pub outbox: Outbox,
}

impl Wiring<Output> for ContentWiring {
    fn route(&mut self, output: Output) {
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::Fetched { id, chunk, result } => {
                tracing::debug!(id, chunk = %chunk.short(), ok = result.is_ok(), "fetch finished");
            }
            Output::Published { chunk, result } => match result {
                Ok(()) => tracing::debug!(chunk = %chunk.short(), "published"),
                Err(e) => tracing::warn!(chunk = %chunk.short(), error = %e, "publish failed"),
            },
        }
    }
}

pub type ContentActor = Shell<ContentCore<Box<dyn Storage>>, ContentWiring>;
