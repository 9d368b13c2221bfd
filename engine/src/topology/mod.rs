//! Topology: which links are worth having. The plan's hybrid: a full mesh while a node sees fewer
//! than `mesh_below` peers; above that the structured overlay content routing uses, the XOR
//! neighbourhood (the `neighbourhood` closest peers) and one link in every farther bucket. It owns
//! the Kademlia routing table (fed by links, and by the peers content lookups meet) and keeps it
//! filled by looking itself and random keys up every `refresh_interval_ms`; it tells the
//! connection manager what it wants, and the manager protects those links.

pub mod actor;
pub mod core;
#[cfg(test)]
mod tests;

pub use self::actor::TopologyActor;
pub use self::core::{Input, Output, TopologyCore};
pub use crate::routing::TableView;
