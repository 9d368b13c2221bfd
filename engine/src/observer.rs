//! The observer port: what a node reports about itself for metrics and logs. The simulator collects
//! these into its report; a real node logs them. Reporting never feeds back into protocol decisions.

use crate::types::PeerId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// This node started a gossip rumour.
    RumorOriginated { origin: PeerId, seq: u64 },
    /// This node received a rumour for the first time.
    RumorReceived { origin: PeerId, seq: u64 },
    /// Size of the bootstrap registry after a change.
    KnownPeers(usize),
    /// A frame that failed to decode; `error` says why.
    BadFrame { from: PeerId, error: String },
    /// A connection went silent past the heartbeat timeout and was closed.
    PeerExpired { peer: PeerId },
    /// Reconnection to a lost peer gave up after the configured attempts.
    ReconnectGaveUp { peer: PeerId },
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
