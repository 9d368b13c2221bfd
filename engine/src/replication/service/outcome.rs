//! What the content core reports: its outputs (effects, fetch and publish results), their
//! errors, and its counters.

use super::ReplicationStats;
use crate::content::ChunkId;
use crate::core::Effect;
use crate::types::PeerId;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FetchError {
    #[error("no holder of chunk {0} could be found")]
    NotFound(ChunkId),
    #[error("chunk {0} was not retrieved within the fetch timeout")]
    Timeout(ChunkId),
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PublishError {
    #[error("could not store chunk: {0}")]
    Store(String),
}

/// A fetch, publish or reclaim that ended.
#[derive(Clone, Debug, PartialEq)]
pub enum ContentResult {
    Fetched {
        id: u64,
        chunk: ChunkId,
        result: Result<Vec<u8>, FetchError>,
    },
    Published {
        chunk: ChunkId,
        result: Result<(), PublishError>,
    },
    /// A `ContentInput::Reclaim` done: the chunks removed, or why the store refused.
    Reclaimed {
        id: u64,
        result: Result<Vec<ChunkId>, String>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Effect(Effect),
    /// Ask the connection manager for an exchange link to this peer (what is to be sent waits).
    Want(PeerId),
    /// Peers a lookup met (they answered): for topology's routing table.
    Seen(Vec<PeerId>),
    /// Peers answers named as table contacts (unverified): for topology's table, where room is.
    Heard(Vec<PeerId>),
    /// A linked peer left a lookup question unanswered past its stall time: the connection
    /// manager probes it (a crashed peer's link is otherwise kept until the heartbeat timeout).
    Unresponsive(PeerId),
    /// A lookup topology asked for (`Input::Refresh`) finished.
    RefreshDone,
    /// The live peers closest to a key sync asked for (`Input::FindPeers`), nearest first
    /// (empty: no lookup could start).
    PeersFound {
        target: crate::routing::Key,
        peers: Vec<PeerId>,
        /// For found peers not linked to us: the relays that reached them, the first linked.
        relays: crate::wire::RelayRoutes,
    },
    /// A sync message relayed to us from `from` (see `wire::Relayed`), and the relays back to
    /// it, the first linked to us: for the sync actor.
    RelayedSync {
        from: PeerId,
        relays: Vec<PeerId>,
        msg: crate::sync::SyncMessage,
    },
    /// A fetch, publish or reclaim that ended: for the node's host.
    Done(ContentResult),
    /// A request to `peer` ended so (served, timed out, refused by an announced holder): for
    /// reputation.
    Rated {
        peer: PeerId,
        outcome: crate::reputation::Outcome,
    },
    /// Read or write the chunk store; the wiring answers at once with `Input::Read` or
    /// `Input::Written` ([`super::apply`]).
    Store(super::StoreOp),
}

/// Counters for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContentStats {
    pub replication: ReplicationStats,
    pub lookups_done: u64,
    pub lookup_queries: u64,
    pub chunks_served: u64,
    pub bytes_served: u64,
    pub bad_chunks: u64,
    /// Others' routed requests passed on toward their chunk.
    pub routes_forwarded: u64,
}
