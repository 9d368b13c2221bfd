//! What the connection manager takes in (transport events, handshake frames, the other cores'
//! wants and suspicions) and what it gives out (dials, closes, link events), and its counters.

use crate::core::{Effect, LinkEvent};
use crate::links::Purpose;
use crate::types::PeerId;
use crate::wire::Message;

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The transport opened a link (see [`auth::Input::Connected`]).
    Connected {
        peer: PeerId,
        outbound: bool,
        generation: u64,
    },
    Disconnected {
        peer: PeerId,
        clean: bool,
    },
    /// The transport could not open a link we dialled.
    TransportDialFailed {
        peer: PeerId,
    },
    Hello {
        from: PeerId,
        nonce: Vec<u8>,
    },
    Proof {
        from: PeerId,
        signature: Vec<u8>,
    },
    /// A frame from a link the router did not see as proved yet.
    Early {
        from: PeerId,
        msg: Message,
    },
    /// The peer says whether it protects the link.
    Keep {
        from: PeerId,
        keep: bool,
    },
    /// A core wants a link to `peer` for `purpose`.
    Want {
        peer: PeerId,
        purpose: Purpose,
    },
    /// No longer wanted for `purpose` (the link, if any, stays until trimmed).
    Release {
        peer: PeerId,
        purpose: Purpose,
    },
    /// Exactly these peers are wanted for `purpose` (replaces the previous set).
    SetWanted {
        purpose: Purpose,
        peers: Vec<PeerId>,
    },
    /// Reputation put the peer below the publish threshold (graylisted, or warned of by others
    /// and not vouched for by our own evidence): its link, if any, is closed, and no link to it
    /// is made or accepted while the standing lasts (read from the [`TrustView`]).
    Distrusted {
        peer: PeerId,
    },
    /// A core asked `peer` something and got no answer in time: probe it (see
    /// [`Probes`]); its link is dropped if nothing at all comes back.
    Suspect {
        peer: PeerId,
    },
    /// The peer probes us: answered at once (any frame back is the sign of life it waits for).
    Probe {
        from: PeerId,
        seq: u64,
    },
    /// The node is stopping: every link is closed with a goodbye.
    Shutdown,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Frames, observer events, offence reports.
    Effect(Effect),
    Dial(PeerId),
    /// Drop a link that failed (no goodbye).
    Disconnect(PeerId),
    /// Close a link on purpose: a `Bye` goes first.
    Close(PeerId),
    /// For every subscribing core.
    Link(LinkEvent),
    /// A frame that raced the proof, for the core it is for.
    Deliver {
        from: PeerId,
        msg: Message,
    },
}

/// Counters for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinksStats {
    pub dials: u64,
    pub dial_failures: u64,
    pub opened: u64,
    pub closed: u64,
    pub trimmed: u64,
    pub refused: u64,
    pub expired: u64,
}
