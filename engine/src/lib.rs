//! swarm engine: the protocol cores (pure state machines), the thin actix actors that run them, the
//! wire format, and the ports (transport, clock, observer) through which a node meets the world.
//!
//! Nothing here knows about WebRTC or the simulator: both plug in through [`transport::Transport`].

pub mod auth;
pub mod config;
pub mod content;
pub mod core;
pub mod discovery;
pub mod feeds;
pub mod files;
pub mod flood;
pub mod gossip;
pub mod health;
pub mod identity;
pub mod links;
pub mod node;
pub mod observer;
pub mod recovery;
pub mod replication;
pub mod reputation;
pub mod router;
pub mod routing;
pub mod serde_bytes;
pub mod storage;
pub mod sync;
pub mod time;
pub mod topology;
pub mod transport;
pub mod types;
pub mod wire;
pub mod wiring;

pub use config::{ConfigError, NodeConfig};
pub use node::Node;
pub use types::PeerId;
