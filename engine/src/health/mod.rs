//! Health: heartbeats, failure detection, stale connection cleanup and reconnect with backoff.

pub mod actor;
pub mod core;
#[cfg(test)]
mod tests;

pub use self::core::{backoff_delay, HealthCore, Input, Output};
pub use actor::{HealthActor, HealthWiring};
