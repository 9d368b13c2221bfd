//! Rendezvous for swarm: a small self-hostable WebSocket server where peers register under a
//! namespace with a TTL, discover each other page by page, and relay WebRTC offers, answers and
//! ICE candidates before they share any connection; plus the matching async clients.
//!
//! - [`proto`]: the JSON wire messages (`{"type": "register", ...}`), spoken by browsers too.
//! - [`registry`]: the registration table, a pure core with time passed in.
//! - [`server`]: sans-IO [`server::core::ServerCore`] and its tokio shell ([`Server`], [`serve`]).
//! - [`client`]: [`RendezvousClient`] for one server, [`MultiRendezvous`] for several.
//!
//! Not provided: TLS (`wss://`; put the server behind a TLS-terminating proxy) and proof that a
//! peer owns the key it registers (a client can claim any peer id; see the README).

pub mod client;
pub mod config;
pub mod error;
pub mod proto;
pub mod registry;
pub mod server;

pub use client::multi::{MultiEvent, MultiRendezvous};
pub use client::{ClientEvent, RendezvousClient};
pub use config::{ClientConfig, ConfigError, MultiConfig, ServerConfig};
pub use error::{ClientError, RendezvousError};
pub use proto::{ClientMsg, ErrorCode, IdError, Namespace, PeerId, ServerMsg};
pub use registry::{Cookie, Page, Registry, RegistryError, RegistryLimits};
pub use server::{serve, Server, ServerHandle};
