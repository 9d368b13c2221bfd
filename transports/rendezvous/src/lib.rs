//! Rendezvous for swarm: a small self-hostable WebSocket server where peers register under a
//! namespace with a TTL, discover each other page by page, and relay WebRTC offers, answers and
//! ICE candidates before they share any connection; plus the matching async clients.
//!
//! - [`proto`]: the JSON wire messages (`{"type": "register", ...}`), spoken by browsers too.
//! - [`auth`]: the signed bytes that prove a registration comes from the peer id's key holder.
//! - [`registry`]: the registration table, a pure core with time passed in.
//! - [`server`]: sans-IO [`server::core::ServerCore`] and its tokio shell ([`Server`], [`serve`]).
//! - [`client`]: [`RendezvousClient`] for one server, [`MultiRendezvous`] for several.
//!
//! A registration must carry an ed25519 signature, by the peer id's key, over the connection's
//! random challenge and the namespace, so no one can take over another peer's signal route. Not
//! provided: TLS (`wss://`; put the server behind a TLS-terminating proxy).

pub mod auth;
mod bucket;
pub mod client;
pub mod config;
pub mod error;
pub mod proto;
pub mod registry;
pub mod server;

pub use auth::{SeedSigner, SignatureError, Signer};
pub use client::multi::{MultiEvent, MultiRendezvous};
pub use client::{ClientEvent, RendezvousClient};
pub use config::{ClientConfig, ConfigError, MultiConfig, ServerConfig};
pub use error::{ClientError, RendezvousError};
pub use proto::{ClientMsg, ErrorCode, IdError, Namespace, PeerId, ServerMsg};
pub use registry::{Cookie, Page, Registry, RegistryError, RegistryLimits};
pub use server::{serve, Server, ServerHandle};
