//! Gossip: periodic announcements of known peers, relayed with a TTL and de-duplicated.

pub mod actor;
pub mod core;
pub mod slander;
#[cfg(test)]
mod tests;

pub use self::core::{Faults, GossipCore, Input, Output, SeenCache};
pub use actor::GossipActor;
pub use slander::Slander;
