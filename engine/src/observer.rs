//! The observer port: what a node reports about itself for metrics and logs. The simulator collects
//! these into its report; a real node logs them. Reporting never feeds back into protocol decisions.

use crate::content::ChunkId;
use crate::identity::Rejection;
use crate::links::{CloseReason, DialError, Purpose};
use crate::types::PeerId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// This node started a gossip rumour.
    RumorOriginated { origin: PeerId, seq: u64 },
    /// This node received a rumour for the first time, from neighbour `from`, and it passed every
    /// check (its signed envelope is accepted: one event for both, as it is the hottest one).
    RumorReceived { origin: PeerId, seq: u64, from: PeerId },
    /// Size of the bootstrap registry after a change.
    KnownPeers(usize),
    /// A frame that failed to decode; `error` says why.
    BadFrame { from: PeerId, error: String },
    /// A change of a link, with its reason (the connection manager reports every one).
    Link(LinkChange),
    /// Reconnection to a wanted peer gave up after the configured attempts.
    ReconnectGaveUp { peer: PeerId },
    /// A link's peer proved its identity.
    Authenticated { peer: PeerId },
    /// Misbehaviour attributed to a peer (the reputation subsystem's input).
    Offence { peer: PeerId, offence: Offence },
    /// A request to `peer` timed out (`answered` false), or was answered wrongly: "not here" by
    /// an announced holder, or too late.
    RequestFailed { peer: PeerId, answered: bool },
    /// Reputation moved a peer to another standing.
    Standing { peer: PeerId, standing: crate::reputation::Standing },
    /// Reputation shuns the peer on other nodes' warnings (links refused both ways, no replicas)
    /// or stops doing so.
    Shunned { peer: PeerId, shunned: bool },
    /// A signed envelope was refused; `from` is the neighbour that sent it.
    EnvelopeRejected { origin: PeerId, from: PeerId, reason: Rejection },
    /// This node stored a chunk.
    ChunkStored { chunk: ChunkId, bytes: u32, cause: StoreCause },
    /// This node let a chunk go (a surplus copy, far from the chunk, whose replica set holds it).
    ChunkDropped { chunk: ChunkId },
    /// This node removed a chunk of one of its own publications that never completed.
    ChunkReclaimed { chunk: ChunkId },
    /// A fetch this node ran ended; `latency_ms` from the request to the verified bytes;
    /// `relayed`: the bytes came through another node (a routed request, or `GetVia`).
    FetchFinished { id: u64, chunk: ChunkId, ok: bool, latency_ms: u64, relayed: bool },
    /// What this node's record store and sync queue did (ground truth for the simulator's
    /// consistency figures; logged by real nodes).
    Sync(SyncNote),
}

/// A change in a node's record store or sync queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncNote {
    /// A version is kept (a local write, or one received from a peer).
    Kept { record: crate::sync::RecordId, id: crate::sync::VersionId },
    /// A kept version fell out of its record's window (the oldest, once the window is full).
    Evicted { record: crate::sync::RecordId, id: crate::sync::VersionId },
    /// A local write left the sync queue: enough replicas acknowledged it.
    Acknowledged { record: crate::sync::RecordId, id: crate::sync::VersionId },
    /// A lookup of a record's replica set answered: the live peers it found, nearest first.
    Found { record: crate::sync::RecordId, peers: Vec<PeerId> },
}

/// What happened to a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkChange {
    /// A dial started, for this (first) purpose.
    Dialled { peer: PeerId, purpose: Purpose },
    /// A link's peer proved its identity: the link is open.
    Opened { peer: PeerId, outbound: bool },
    /// An open link closed after `age_ms`.
    Closed { peer: PeerId, reason: CloseReason, age_ms: u64 },
    /// A dial failed, or was not attempted.
    DialFailed { peer: PeerId, error: DialError },
    /// An inbound link was refused at the hard cap, before any handshake.
    Refused { peer: PeerId },
}

/// Why a node stored a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreCause {
    /// Its own publication.
    Published,
    /// A replica pulled for the replica set.
    Repair,
}

/// What a peer did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offence {
    /// Sent a frame that does not decode or breaks a limit.
    BadFrame,
    /// Its authentication proof did not verify under the id it connected as.
    AuthFailed,
    /// Did not prove its identity within the handshake timeout.
    AuthTimeout,
    /// Sent protocol frames before proving its identity, or a second challenge.
    Unauthenticated,
    /// Sent an envelope that was refused (bad signature, unsigned, stale...).
    InvalidEnvelope(Rejection),
    /// Sent chunk bytes that do not hash to the address asked for.
    BadChunk,
    /// Released a recovery share that fails its owner's signed commitments (a lying holder).
    BadShare,
    /// Answered peer exchange naming peers of which most are mentioned nowhere else (dead or
    /// invented ids: see `discovery::vouchers`).
    BadPex,
    /// Sent more rumours of its own or more requests than its link's budget allows (see
    /// `flood`): reported at most once per `flood.report_interval_ms` per link.
    Flood,
    /// Signed a warning naming this node, which knows it did nothing to earn one (a
    /// slanderer, or a node that took churn for malice).
    FalseWarning,
}

pub trait Observer {
    fn on_event(&self, node: PeerId, event: Event);
}

/// Observer that forwards events to `tracing` (real nodes).
pub struct TracingObserver;

impl Observer for TracingObserver {
    fn on_event(&self, node: PeerId, event: Event) {
        tracing::debug!(node = %node.short(), ?event, "node event");
    }
}
