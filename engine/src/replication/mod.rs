//! Replication: every chunk kept on the `rf` live peers closest to it by XOR distance, repaired
//! when holders go, handed to newcomers that become closest, migrated away from full peers.
//! The core is here; its actor, the wire messages and the simulator workload come next
//! (see README, "Content and replication: what is built").

pub mod core;
#[cfg(test)]
mod tests;

pub use self::core::{Found, Input, Output, ReplicationCore, ReplicationStats};
