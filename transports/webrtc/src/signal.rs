//! Signaling: the offer/answer that sets up a peer connection, the path the caller provides to
//! carry it (a rendezvous client, or a channel in tests), and the bounded memory of signals
//! already seen, since one signal arrives by several routes (server and mesh relays).

use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};
use swarm_engine::types::PeerId;

/// Whether a signal opens a session (offer) or accepts one (answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalKind {
    Offer,
    Answer,
}

/// One non-trickle signal: the SDP already holds every ICE candidate.
/// JSON: `{"session":1,"kind":"offer","sdp":"v=0..."}`. `session` is chosen by the dialler and
/// echoed by the answer; a browser page must do the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    pub session: u64,
    pub kind: SignalKind,
    pub sdp: String,
}

/// What was wrong with a signal's JSON.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("signal JSON of {bytes} bytes is over max_signal_bytes {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("signal is not valid JSON of the form {{session, kind, sdp}}: {0}")]
    Json(#[from] serde_json::Error),
}

impl Signal {
    pub fn to_json(&self) -> String {
        // A struct of an integer, an enum and a string always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse untrusted JSON, refusing anything over `max_bytes` before parsing.
    pub fn from_json(json: &[u8], max_bytes: usize) -> Result<Signal, SignalError> {
        if json.len() > max_bytes {
            return Err(SignalError::TooLarge { bytes: json.len(), max: max_bytes });
        }
        Ok(serde_json::from_slice(json)?)
    }
}

/// Carries a signal to a peer outside the mesh. Implemented by the caller. `send` is called
/// from the transport's driver task and must not block (queue and return).
pub trait SignalPath: Send + Sync {
    fn send(&self, to: PeerId, signal: &Signal);
}

/// A path that carries nothing: a node that only signals through the mesh.
pub struct NoSignalPath;

impl SignalPath for NoSignalPath {
    fn send(&self, _to: PeerId, _signal: &Signal) {}
}

/// The last `capacity` (peer, session, kind) triples seen, oldest forgotten first.
pub struct SeenSignals {
    order: VecDeque<(PeerId, u64, SignalKind)>,
    set: HashSet<(PeerId, u64, SignalKind)>,
    capacity: usize,
}

impl SeenSignals {
    pub fn new(capacity: usize) -> Self {
        SeenSignals { order: VecDeque::new(), set: HashSet::new(), capacity: capacity.max(1) }
    }

    /// True the first time a triple is seen (within the memory bound).
    pub fn first_time(&mut self, peer: PeerId, session: u64, kind: SignalKind) -> bool {
        let key = (peer, session, kind);
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        debug_assert_eq!(self.order.len(), self.set.len());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_plain_field_names() {
        let s = Signal { session: 1, kind: SignalKind::Offer, sdp: "v=0".into() };
        assert_eq!(s.to_json(), r#"{"session":1,"kind":"offer","sdp":"v=0"}"#);
        let back = Signal::from_json(br#"{"session":7,"kind":"answer","sdp":"x"}"#, 100).unwrap();
        assert_eq!(back, Signal { session: 7, kind: SignalKind::Answer, sdp: "x".into() });
        assert!(Signal::from_json(br#"{"session":7,"kind":"pranswer","sdp":"x"}"#, 100).is_err());
        assert!(matches!(Signal::from_json(&[b' '; 101], 100), Err(SignalError::TooLarge { .. })));
    }

    #[test]
    fn seen_signals_are_bounded() {
        let mut seen = SeenSignals::new(2);
        let p = PeerId([1; 32]);
        assert!(seen.first_time(p, 1, SignalKind::Offer));
        assert!(!seen.first_time(p, 1, SignalKind::Offer));
        assert!(seen.first_time(p, 1, SignalKind::Answer));
        assert!(seen.first_time(p, 2, SignalKind::Offer));
        assert!(seen.first_time(p, 1, SignalKind::Offer), "the oldest was forgotten");
    }
}
