//! The transport port. A transport moves frames between peers and manages connections; the node
//! never sees sockets, data channels or simulated links, only this trait (outbound) and
//! [`TransportEvent`]s handed to its [`crate::router::Inbox`] (inbound).

use crate::types::PeerId;
use bytes::Bytes;

/// Outbound side, called by the node's actors. Calls never block: a transport queues or drops.
pub trait Transport {
    /// Open a connection; answered later by `Connected` or `DialFailed`. A dial to a peer that is
    /// already connected or being dialled is ignored.
    fn connect(&self, peer: PeerId);
    /// Close a connection; the remote side sees `Disconnected`.
    fn disconnect(&self, peer: PeerId);
    /// Send one frame on an open connection (dropped if there is none).
    fn send(&self, peer: PeerId, frame: Bytes);
    /// Send one frame to several peers; transports may share the encoding work.
    fn send_many(&self, peers: &[PeerId], frame: Bytes) {
        for p in peers {
            self.send(*p, frame.clone());
        }
    }
}

/// Inbound side: what a transport reports to the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportEvent {
    Connected { peer: PeerId, outbound: bool },
    Disconnected { peer: PeerId },
    DialFailed { peer: PeerId },
    Frame { peer: PeerId, bytes: Bytes },
}

/// Where a transport hands inbound events: the node's router inbox, or a recorder in tests.
pub trait EventSink {
    fn deliver(&self, event: TransportEvent);
}
