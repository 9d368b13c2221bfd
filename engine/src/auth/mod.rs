//! Peer authentication: the handshake core, a sub-machine of the connection manager
//! ([`crate::links`]), whose gate lets a link's frames reach the subsystems only once the link is
//! proved.

mod core;
#[cfg(test)]
mod tests;

pub use self::core::{transcript, AuthCore, AuthStats, Input, Output};
