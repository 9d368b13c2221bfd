//! Wire protocol: the JSON text messages a client and the server exchange over WebSocket, and the
//! validated identifiers (peer ids, namespaces) they carry. Plain JSON with a `type` tag so that a
//! browser page can speak it without a library.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// Length of a peer id on the wire: 32 bytes as lowercase hex.
pub const PEER_ID_HEX_LEN: usize = 64;
/// Longest namespace accepted, in bytes (namespaces are ASCII).
pub const MAX_NAMESPACE_LEN: usize = 64;

/// A peer's identity: its 32-byte ed25519 public key. On the wire, 64 lowercase hex chars.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub [u8; 32]);

/// A namespace peers register under: 1..=64 chars of `[a-z0-9._-]`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Namespace(String);

/// Why an identifier from the wire was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IdError {
    #[error("peer id must be {PEER_ID_HEX_LEN} lowercase hex chars, got {len} chars")]
    PeerIdLength { len: usize },
    #[error("peer id must be lowercase hex [0-9a-f], found {found:?} at index {index}")]
    PeerIdChar { index: usize, found: char },
    #[error("namespace must be 1..={MAX_NAMESPACE_LEN} chars, got {len}")]
    NamespaceLength { len: usize },
    #[error("namespace may only contain [a-z0-9._-], found {found:?} at index {index}")]
    NamespaceChar { index: usize, found: char },
}

impl PeerId {
    /// Parses 64 lowercase hex chars; uppercase is refused so that one key has one spelling.
    pub fn parse(s: &str) -> Result<PeerId, IdError> {
        if let Some((index, found)) = s.chars().enumerate().find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(IdError::PeerIdChar { index, found });
        }
        if s.len() != PEER_ID_HEX_LEN {
            return Err(IdError::PeerIdLength { len: s.len() });
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| IdError::PeerIdLength { len: s.len() })?;
        Ok(PeerId(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<[u8; 32]> for PeerId {
    fn from(bytes: [u8; 32]) -> Self {
        PeerId(bytes)
    }
}

impl FromStr for PeerId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PeerId::parse(s)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({}..)", &self.to_hex()[..8])
    }
}

impl Namespace {
    pub fn parse(s: &str) -> Result<Namespace, IdError> {
        if s.is_empty() || s.len() > MAX_NAMESPACE_LEN {
            // Count chars, not bytes, so the message matches what the sender typed.
            return Err(IdError::NamespaceLength { len: s.chars().count() });
        }
        if let Some((index, found)) =
            s.chars().enumerate().find(|(_, c)| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-'))
        {
            return Err(IdError::NamespaceChar { index, found });
        }
        Ok(Namespace(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Namespace {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Namespace::parse(s)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message from a client to the server. Identifiers travel as plain strings and are validated
/// by the server, so that a bad one gets its own error code instead of a generic parse error.
///
/// `id` is optional on requests: when present, the server's reply (or error) carries the same
/// `id`, which lets a client match replies to requests. `signal` and `unregister` have no reply
/// on success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    Register {
        ns: String,
        peer: String,
        ttl_s: u64,
        /// Ed25519 signature by `peer` over the connection's challenge (see [`crate::auth`]), 128
        /// lowercase hex chars. Optional in the JSON so that a missing one gets `bad_signature`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sig: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    Unregister {
        ns: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    Discover {
        ns: String,
        /// Peers wanted in this page; 0 or absent means the server's maximum.
        #[serde(default)]
        limit: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cookie: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    Signal {
        to: String,
        payload: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
}

impl ClientMsg {
    /// Sets the request id (a client does this just before sending).
    pub fn set_id(&mut self, new: Option<u64>) {
        match self {
            ClientMsg::Register { id, .. }
            | ClientMsg::Unregister { id, .. }
            | ClientMsg::Discover { id, .. }
            | ClientMsg::Signal { id, .. }
            | ClientMsg::Ping { id } => *id = new,
        }
    }

    /// The request id the sender attached, echoed on the reply.
    pub fn id(&self) -> Option<u64> {
        match self {
            ClientMsg::Register { id, .. }
            | ClientMsg::Unregister { id, .. }
            | ClientMsg::Discover { id, .. }
            | ClientMsg::Signal { id, .. }
            | ClientMsg::Ping { id } => *id,
        }
    }
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First message on every connection: the nonce (64 hex chars) that this connection's
    /// registrations must sign, and the connection's message budget (token bucket), so a
    /// client can keep under it (absent from older servers).
    Challenge {
        nonce: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate_msgs_per_s: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate_burst_msgs: Option<u32>,
    },
    Registered {
        ns: String,
        /// The TTL granted, after clamping to the server's bounds.
        ttl_s: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    Discovered {
        ns: String,
        peers: Vec<String>,
        /// Opaque continuation: pass it back to get the next page (or, after the last page, only
        /// registrations made since).
        cookie: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    Signal {
        from: String,
        payload: String,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
}

impl ServerMsg {
    pub fn id(&self) -> Option<u64> {
        match self {
            ServerMsg::Registered { id, .. }
            | ServerMsg::Discovered { id, .. }
            | ServerMsg::Pong { id }
            | ServerMsg::Error { id, .. } => *id,
            ServerMsg::Signal { .. } | ServerMsg::Challenge { .. } => None,
        }
    }

    pub fn error(code: ErrorCode, message: impl Into<String>, id: Option<u64>) -> ServerMsg {
        ServerMsg::Error { code, message: message.into(), id }
    }
}

/// Stable error codes, `snake_case` on the wire. Codes a client does not know parse as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not a known message type, a missing or mistyped field, or a binary frame.
    BadMessage,
    BadPeerId,
    BadNamespace,
    /// A discover cookie this server did not issue.
    BadCookie,
    /// The frame exceeds `max_message_bytes`, or a signal payload exceeds its bound.
    TooLarge,
    RateLimited,
    /// The peer already holds `max_registrations_per_peer` namespaces.
    TooManyRegistrations,
    /// The server holds `max_registrations_total` registrations.
    RegistryFull,
    /// The request needs this connection to have registered first.
    NotRegistered,
    /// No open connection has registered the `to` peer of a signal.
    UnknownPeer,
    /// The connection already registered as another peer.
    PeerMismatch,
    /// A `register` whose `sig` is missing, malformed, or not a valid signature by the peer id
    /// over this connection's challenge and the namespace.
    BadSignature,
    #[serde(other)]
    Other,
}

impl ErrorCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::BadPeerId => "bad_peer_id",
            ErrorCode::BadNamespace => "bad_namespace",
            ErrorCode::BadCookie => "bad_cookie",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyRegistrations => "too_many_registrations",
            ErrorCode::RegistryFull => "registry_full",
            ErrorCode::NotRegistered => "not_registered",
            ErrorCode::UnknownPeer => "unknown_peer",
            ErrorCode::PeerMismatch => "peer_mismatch",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::Other => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_round_trips_and_rejects_bad_input() {
        let hex = "ab".repeat(32);
        let id = PeerId::parse(&hex).expect("valid");
        assert_eq!(id.to_hex(), hex);
        assert_eq!(PeerId::parse(&"AB".repeat(32)), Err(IdError::PeerIdChar { index: 0, found: 'A' }));
        assert_eq!(PeerId::parse("abc"), Err(IdError::PeerIdLength { len: 3 }));
        assert_eq!(PeerId::parse(""), Err(IdError::PeerIdLength { len: 0 }));
        assert!(PeerId::parse(&"é".repeat(32)).is_err());
    }

    #[test]
    fn namespace_rules() {
        assert!(Namespace::parse("swarm.v1_main-net").is_ok());
        assert!(Namespace::parse(&"a".repeat(64)).is_ok());
        assert_eq!(Namespace::parse(""), Err(IdError::NamespaceLength { len: 0 }));
        assert_eq!(Namespace::parse(&"a".repeat(65)), Err(IdError::NamespaceLength { len: 65 }));
        assert_eq!(Namespace::parse("Swarm"), Err(IdError::NamespaceChar { index: 0, found: 'S' }));
        assert_eq!(Namespace::parse("a b"), Err(IdError::NamespaceChar { index: 1, found: ' ' }));
    }

    #[test]
    fn messages_have_the_documented_json_shape() {
        let m: ClientMsg = serde_json::from_str(r#"{"type":"discover","ns":"x","limit":5}"#).expect("parse");
        assert_eq!(m, ClientMsg::Discover { ns: "x".into(), limit: 5, cookie: None, id: None });
        let e = ServerMsg::error(ErrorCode::UnknownPeer, "no such peer", Some(3));
        assert_eq!(
            serde_json::to_string(&e).expect("json"),
            r#"{"type":"error","code":"unknown_peer","message":"no such peer","id":3}"#
        );
        let other: ServerMsg =
            serde_json::from_str(r#"{"type":"error","code":"brand_new","message":"m"}"#).expect("parse");
        assert!(matches!(other, ServerMsg::Error { code: ErrorCode::Other, .. }));
        let bad_sig: ServerMsg =
            serde_json::from_str(r#"{"type":"error","code":"bad_signature","message":"m"}"#).expect("parse");
        assert!(matches!(bad_sig, ServerMsg::Error { code: ErrorCode::BadSignature, .. }));
        let challenge =
            ServerMsg::Challenge { nonce: "00".repeat(32), rate_msgs_per_s: Some(50), rate_burst_msgs: None };
        assert_eq!(
            serde_json::to_string(&challenge).expect("json"),
            format!(r#"{{"type":"challenge","nonce":"{}","rate_msgs_per_s":50}}"#, "00".repeat(32))
        );
        let old: ServerMsg = serde_json::from_str(r#"{"type":"challenge","nonce":"ab"}"#).expect("an old server's");
        assert!(matches!(old, ServerMsg::Challenge { rate_msgs_per_s: None, rate_burst_msgs: None, .. }));
        let reg: ClientMsg =
            serde_json::from_str(r#"{"type":"register","ns":"x","peer":"p","ttl_s":1,"sig":"s"}"#).expect("parse");
        assert!(matches!(reg, ClientMsg::Register { sig: Some(ref s), .. } if s == "s"));
        let unsigned: ClientMsg =
            serde_json::from_str(r#"{"type":"register","ns":"x","peer":"p","ttl_s":1}"#).expect("parse");
        assert!(matches!(unsigned, ClientMsg::Register { sig: None, .. }));
        // Unknown fields are ignored so that newer clients can talk to older servers.
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"ping","extra":1}"#).is_ok());
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"register","ns":"x","peer":"y"}"#).is_err());
    }
}
