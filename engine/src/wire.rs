//! The wire format: one MessagePack (rmp-serde) encoded [`Frame`] per transport message, carrying the
//! protocol version. Untrusted bytes are checked against [`MAX_FRAME_BYTES`] before any decoding, and
//! decoded lists are checked against their own limits after, so a peer can neither crash a node nor
//! make it hold more than one frame's worth of data.

use crate::types::PeerId;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub const PROTOCOL_VERSION: u8 = 1;
/// Hard limit of one frame, checked before decoding.
pub const MAX_FRAME_BYTES: usize = 1 << 20;
/// Most peers one PEX response may carry on the wire (whatever a sender's config says).
pub const MAX_PEX_PEERS: usize = 256;
/// Most rumours one gossip frame may carry.
pub const MAX_RUMORS: usize = 64;
/// Most peers one rumour may carry.
pub const MAX_RUMOR_PEERS: usize = 64;

/// One transport message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub version: u8,
    pub msg: Message,
}

/// Every protocol message between peers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Discovery: "send me up to `max` peers you know".
    PexRequest { max: u16 },
    /// Discovery: answer to a PEX request.
    PexResponse { peers: Vec<PeerId> },
    /// Gossip: a batch of rumours (own announcement and relays).
    Gossip { rumors: Vec<Rumor> },
    /// Health: liveness beacon, one per heartbeat interval per connection.
    Heartbeat { seq: u64 },
}

/// A peer announcement travelling the overlay: identified by (origin, seq), de-duplicated by every
/// receiver, relayed while `ttl` > 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rumor {
    pub origin: PeerId,
    pub seq: u64,
    pub ttl: u8,
    pub peers: Vec<PeerId>,
}

impl Rumor {
    pub fn id(&self) -> (PeerId, u64) {
        (self.origin, self.seq)
    }
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame")]
    Empty,
    #[error("protocol version {got} not supported (this node speaks {supported})")]
    Version { got: u8, supported: u8 },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("{what} has {len} entries, limit {max}")]
    Limit { what: &'static str, len: usize, max: usize },
    #[error("could not encode frame: {0}")]
    Encode(String),
}

/// Encode a message into one frame.
pub fn encode(msg: &Message) -> Result<Bytes, WireError> {
    let frame = Frame { version: PROTOCOL_VERSION, msg: msg.clone() };
    let bytes = rmp_serde::to_vec(&frame).map_err(|e| WireError::Encode(e.to_string()))?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge { len: bytes.len(), max: MAX_FRAME_BYTES });
    }
    Ok(Bytes::from(bytes))
}

/// Decode untrusted bytes: size first, then version, then the message and its list limits.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge { len: bytes.len(), max: MAX_FRAME_BYTES });
    }
    if bytes.is_empty() {
        return Err(WireError::Empty);
    }
    let frame: Frame = match rmp_serde::from_slice(bytes) {
        Ok(f) => f,
        Err(e) => {
            // A frame from another protocol version may not decode at all: say so when we can.
            if let Ok((got, _)) = rmp_serde::from_slice::<(u8, serde::de::IgnoredAny)>(bytes) {
                if got != PROTOCOL_VERSION {
                    return Err(WireError::Version { got, supported: PROTOCOL_VERSION });
                }
            }
            return Err(WireError::Malformed(e.to_string()));
        }
    };
    if frame.version != PROTOCOL_VERSION {
        return Err(WireError::Version { got: frame.version, supported: PROTOCOL_VERSION });
    }
    check_limits(&frame.msg)?;
    Ok(frame.msg)
}

fn limit(what: &'static str, len: usize, max: usize) -> Result<(), WireError> {
    if len > max {
        Err(WireError::Limit { what, len, max })
    } else {
        Ok(())
    }
}

fn check_limits(msg: &Message) -> Result<(), WireError> {
    match msg {
        Message::PexResponse { peers } => limit("pex response", peers.len(), MAX_PEX_PEERS),
        Message::Gossip { rumors } => {
            limit("gossip frame", rumors.len(), MAX_RUMORS)?;
            rumors.iter().try_for_each(|r| limit("rumor", r.peers.len(), MAX_RUMOR_PEERS))
        }
        Message::PexRequest { .. } | Message::Heartbeat { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer() -> impl Strategy<Value = PeerId> {
        any::<[u8; 32]>().prop_map(PeerId)
    }

    fn rumor() -> impl Strategy<Value = Rumor> {
        (peer(), any::<u64>(), any::<u8>(), prop::collection::vec(peer(), 0..MAX_RUMOR_PEERS))
            .prop_map(|(origin, seq, ttl, peers)| Rumor { origin, seq, ttl, peers })
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            any::<u16>().prop_map(|max| Message::PexRequest { max }),
            prop::collection::vec(peer(), 0..MAX_PEX_PEERS).prop_map(|peers| Message::PexResponse { peers }),
            prop::collection::vec(rumor(), 0..8).prop_map(|rumors| Message::Gossip { rumors }),
            any::<u64>().prop_map(|seq| Message::Heartbeat { seq }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(msg in message()) {
            let bytes = encode(&msg).unwrap();
            prop_assert!(bytes.len() <= MAX_FRAME_BYTES);
            prop_assert_eq!(decode(&bytes).unwrap(), msg);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn truncated_frames_are_rejected(msg in message(), cut in 1usize..64) {
            let bytes = encode(&msg).unwrap();
            let keep = bytes.len().saturating_sub(cut);
            prop_assert!(decode(&bytes[..keep]).is_err());
        }

        #[test]
        fn flipped_bytes_never_panic(msg in message(), pos in any::<usize>(), val in any::<u8>()) {
            let mut bytes = encode(&msg).unwrap().to_vec();
            let i = pos % bytes.len();
            bytes[i] = val;
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn oversized_frame_rejected_before_decoding() {
        let bytes = vec![0u8; MAX_FRAME_BYTES + 1];
        assert_eq!(decode(&bytes), Err(WireError::TooLarge { len: MAX_FRAME_BYTES + 1, max: MAX_FRAME_BYTES }));
    }

    #[test]
    fn other_version_is_named() {
        let frame = Frame { version: 9, msg: Message::Heartbeat { seq: 1 } };
        let bytes = rmp_serde::to_vec(&frame).unwrap();
        assert_eq!(decode(&bytes), Err(WireError::Version { got: 9, supported: PROTOCOL_VERSION }));
    }

    #[test]
    fn list_limits_enforced_after_decoding() {
        let peers = vec![PeerId([7; 32]); MAX_PEX_PEERS + 1];
        let frame = Frame { version: PROTOCOL_VERSION, msg: Message::PexResponse { peers } };
        let bytes = rmp_serde::to_vec(&frame).unwrap();
        assert!(matches!(decode(&bytes), Err(WireError::Limit { what: "pex response", .. })));
    }

    #[test]
    fn huge_declared_length_does_not_allocate_it() {
        // A PexResponse claiming 2^32-1 peers in a 20-byte frame: must fail fast, not allocate.
        let mut bytes = rmp_serde::to_vec(&Frame { version: 1, msg: Message::PexResponse { peers: vec![] } }).unwrap();
        let n = bytes.len();
        bytes[n - 1] = 0xdd; // array32 marker replacing the empty fixarray
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert!(decode(&bytes).is_err());
    }
}
