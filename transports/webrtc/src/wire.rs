//! The data-channel wire: every message on the "swarm" channel is one tag byte and a body.
//! Engine frames larger than one message are split into fragments here and put back together
//! by a bounded [`Reassembler`]. A browser page speaks the same tags (see the constants).

use bytes::{BufMut, Bytes, BytesMut};
use swarm_engine::types::PeerId;

/// A whole engine frame. Body: the frame.
pub const TAG_FRAME: u8 = 0;
/// A non-final piece of a frame too large for one message. Body: the next bytes of the frame.
pub const TAG_FRAGMENT: u8 = 1;
/// The final piece of a fragmented frame. Body: its last bytes; the frame is complete.
pub const TAG_FRAGMENT_LAST: u8 = 2;
/// Echo request. Body: opaque bytes (the benchmark puts a counter there).
pub const TAG_PING: u8 = 3;
/// Echo reply. Body: the body of the PING it answers, unchanged.
pub const TAG_PONG: u8 = 4;
/// Ask the receiver to forward a signal. Body: 32-byte destination peer id, then the signal JSON.
pub const TAG_RELAY: u8 = 5;
/// A signal forwarded by the sender. Body: 32-byte origin peer id, then the signal JSON.
pub const TAG_RELAYED: u8 = 6;

const PEER_ID_BYTES: usize = 32;

/// What was wrong with a message or a fragment sequence received from a peer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("empty data-channel message (no tag byte)")]
    Empty,
    #[error("unknown tag {0}")]
    UnknownTag(u8),
    #[error("relay message of {len} bytes is shorter than its 32-byte peer id")]
    ShortRelay { len: usize },
    #[error("reassembled frame would reach {bytes} bytes, over max_frame_bytes {max}")]
    FrameTooLarge { bytes: usize, max: usize },
    #[error("whole frame arrived while a fragmented frame of {pending} bytes was incomplete")]
    InterleavedFrame { pending: usize },
}

/// One decoded message. Bodies are slices of the received buffer (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Frame(Bytes),
    Fragment { last: bool, body: Bytes },
    Ping(Bytes),
    Pong(Bytes),
    Relay { to: PeerId, signal: Bytes },
    Relayed { from: PeerId, signal: Bytes },
}

/// Decode one data-channel message.
pub fn decode(msg: Bytes) -> Result<Message, WireError> {
    let tag = *msg.first().ok_or(WireError::Empty)?;
    let body = msg.slice(1..);
    let peer_and_rest = |body: Bytes| -> Result<(PeerId, Bytes), WireError> {
        let id: [u8; PEER_ID_BYTES] = body
            .get(..PEER_ID_BYTES)
            .and_then(|s| s.try_into().ok())
            .ok_or(WireError::ShortRelay { len: body.len() })?;
        Ok((PeerId(id), body.slice(PEER_ID_BYTES..)))
    };
    Ok(match tag {
        TAG_FRAME => Message::Frame(body),
        TAG_FRAGMENT => Message::Fragment { last: false, body },
        TAG_FRAGMENT_LAST => Message::Fragment { last: true, body },
        TAG_PING => Message::Ping(body),
        TAG_PONG => Message::Pong(body),
        TAG_RELAY => {
            let (to, signal) = peer_and_rest(body)?;
            Message::Relay { to, signal }
        }
        TAG_RELAYED => {
            let (from, signal) = peer_and_rest(body)?;
            Message::Relayed { from, signal }
        }
        other => return Err(WireError::UnknownTag(other)),
    })
}

/// One message: tag then the concatenated parts (a single copy into a fresh buffer).
pub fn tagged(tag: u8, parts: &[&[u8]]) -> BytesMut {
    let len = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut out = BytesMut::with_capacity(len);
    out.put_u8(tag);
    for p in parts {
        out.put_slice(p);
    }
    out
}

/// Split a frame into data-channel messages of at most `max_message_bytes` (tag included):
/// one FRAME when it fits, else FRAGMENT... FRAGMENT_LAST.
pub fn encode_frame(frame: &[u8], max_message_bytes: usize) -> Vec<BytesMut> {
    debug_assert!(max_message_bytes >= 2, "a message must carry a tag and a byte");
    let piece = max_message_bytes - 1;
    if frame.len() <= piece {
        return vec![tagged(TAG_FRAME, &[frame])];
    }
    let mut chunks = frame.chunks(piece).peekable();
    let mut out = Vec::with_capacity(frame.len().div_ceil(piece));
    while let Some(c) = chunks.next() {
        let tag = if chunks.peek().is_some() { TAG_FRAGMENT } else { TAG_FRAGMENT_LAST };
        out.push(tagged(tag, &[c]));
    }
    out
}

/// RELAY / RELAYED message: tag, 32-byte peer id, signal JSON.
pub fn encode_relay(tag: u8, peer: &PeerId, signal_json: &[u8]) -> BytesMut {
    debug_assert!(tag == TAG_RELAY || tag == TAG_RELAYED);
    tagged(tag, &[&peer.0, signal_json])
}

/// Puts fragments back together; never holds more than `max_frame_bytes`.
#[derive(Debug)]
pub struct Reassembler {
    buf: BytesMut,
    max_frame_bytes: usize,
}

impl Reassembler {
    pub fn new(max_frame_bytes: usize) -> Self {
        Reassembler { buf: BytesMut::new(), max_frame_bytes }
    }

    /// Feed a FRAGMENT / FRAGMENT_LAST body; a complete frame comes out on the last one.
    /// An error means the peer broke the protocol: the caller closes the link.
    pub fn push(&mut self, last: bool, body: &[u8]) -> Result<Option<Bytes>, WireError> {
        let bytes = self.buf.len() + body.len();
        if bytes > self.max_frame_bytes {
            self.buf = BytesMut::new();
            return Err(WireError::FrameTooLarge { bytes, max: self.max_frame_bytes });
        }
        self.buf.extend_from_slice(body);
        Ok(last.then(|| std::mem::take(&mut self.buf).freeze()))
    }

    /// A whole frame arrived: valid only between fragmented frames (the channel is ordered).
    pub fn whole(&self) -> Result<(), WireError> {
        match self.buf.len() {
            0 => Ok(()),
            pending => Err(WireError::InterleavedFrame { pending }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reassemble(msgs: Vec<BytesMut>, max: usize) -> Result<Vec<Bytes>, WireError> {
        let mut r = Reassembler::new(max);
        let mut out = Vec::new();
        for m in msgs {
            match decode(m.freeze())? {
                Message::Frame(b) => {
                    r.whole()?;
                    out.push(b);
                }
                Message::Fragment { last, body } => out.extend(r.push(last, &body)?),
                other => panic!("unexpected {other:?}"),
            }
        }
        Ok(out)
    }

    proptest! {
        #[test]
        fn frames_round_trip(frame in proptest::collection::vec(any::<u8>(), 0..5000), max in 2usize..700) {
            let msgs = encode_frame(&frame, max);
            prop_assert!(msgs.iter().all(|m| m.len() <= max));
            let out = reassemble(msgs, frame.len().max(1)).unwrap();
            prop_assert_eq!(out, vec![Bytes::from(frame)]);
        }

        #[test]
        fn garbage_never_panics(msg in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode(Bytes::from(msg));
        }
    }

    #[test]
    fn oversize_reassembly_is_refused() {
        let msgs = encode_frame(&[7u8; 1000], 100);
        assert!(matches!(reassemble(msgs, 999), Err(WireError::FrameTooLarge { .. })));
    }

    #[test]
    fn relay_layout() {
        let p = PeerId([9; 32]);
        let m = encode_relay(TAG_RELAY, &p, b"{}");
        assert_eq!(m.len(), 1 + 32 + 2);
        assert_eq!(decode(m.freeze()), Ok(Message::Relay { to: p, signal: Bytes::from_static(b"{}") }));
        assert_eq!(decode(Bytes::from_static(&[TAG_RELAYED, 1, 2])), Err(WireError::ShortRelay { len: 2 }));
        assert_eq!(decode(Bytes::new()), Err(WireError::Empty));
        assert_eq!(decode(Bytes::from_static(&[200])), Err(WireError::UnknownTag(200)));
    }
}
