//! The deterministic in-process network the simulator runs nodes on: seeded latency, loss,
//! partitions, connection handshakes, and nodes addressed as (slot, incarnation) so a frame in
//! flight to a dead node never reaches its successor.

pub mod latency;
pub mod net;

pub use latency::Latency;
pub use net::{Addr, NetConfig, NetStats, SimNet, SimPort};
