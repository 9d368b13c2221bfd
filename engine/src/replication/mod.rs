//! Replication and content: every chunk kept on the `rf` live peers closest to it by XOR
//! distance, repaired when holders go, handed to newcomers that become closest, migrated away
//! from full peers; found by iterative XOR lookups; fetched with verification. The placement
//! rules are [`core::ReplicationCore`]; [`content::ContentCore`] runs them over links with the
//! index of what it holds (the chunk store is its wiring's), lookups, topology and fetch;
//! [`actor::ContentActor`] is its actor.

pub mod actor;
pub mod core;
pub mod service;
#[cfg(test)]
mod tests;

pub use self::actor::{ContentActor, ContentListener, ContentResult};
pub use self::core::{Found, Input, Output, ReplicationCore, ReplicationStats};
pub use self::service::{ContentCore, ContentFaults, ContentStats, FetchError, Input as ContentInput, PublishError};
