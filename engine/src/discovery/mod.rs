//! Discovery: the bootstrap registry, dialling to the target degree, and peer exchange (PEX).

pub mod actor;
pub mod core;
pub mod persist;
pub mod registry;
#[cfg(test)]
mod tests;
pub mod vouchers;

pub use self::core::{DiscoveryCore, Input, Output};
pub use actor::DiscoveryActor;
pub use persist::{PeerStore, StoredPeer};
