//! Account recovery without a central server (issue 15): the ed25519 seed is split into verifiable
//! shares (Feldman VSS, 3 of 5 by default), each share sealed to a trusted peer and signed; a peer
//! releases its share only against a proof of the recovery passphrase, sealed to the requester's
//! new key, rate limited. Any `threshold` released shares rebuild the same peer id and user id.
//!
//! Pure cores: no clock (`now` in ms comes in), no OS randomness (an injected CSPRNG), no I/O
//! (storage is an output). Parts: [`split`] (shares and their commitments), [`seal`] (encryption to
//! a peer's key), [`proof`] (the passphrase proof), [`messages`] (what travels, signed), [`holder`]
//! (the trusted peer's state machine), [`owner`] (backup and recovery on the user's side),
//! [`session`] (one recovery run against its holders) and [`service`] (the core a node runs, all
//! of it behind one input); [`store`] is the holder's table, applied by the wiring.

pub mod holder;
pub mod list;
pub mod messages;
pub mod own;
pub mod owner;
pub mod proof;
pub mod seal;
pub mod service;
pub mod session;
pub mod split;
pub mod store;
pub mod types;

pub use service::{Input, Output, RecoveryConfig, RecoveryCore, RecoveryEvent};

/// The recovery subsystem's actor: the generic shell around [`RecoveryCore`].
pub type RecoveryActor = crate::core::Shell<RecoveryCore, Box<dyn crate::core::Wiring<Output>>>;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// 32 bytes that travel as one binary string: compressed points, scalars, verifiers, nonces.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Bytes32(#[serde(with = "crate::serde_bytes::array32")] pub [u8; 32]);

impl std::fmt::Debug for Bytes32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never more than a prefix: some of these are secret (share values, verifiers).
        write!(f, "Bytes32({}..)", hex::encode(&self.0[..4]))
    }
}

/// Why a signed body did not decode as the record its kind names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("record is not a `{}` record", String::from_utf8_lossy(kind))]
    WrongKind { kind: &'static [u8] },
    #[error("`{}` record does not decode: {reason}", String::from_utf8_lossy(kind))]
    Malformed { kind: &'static [u8], reason: String },
}

/// A record's signed bytes: its kind (a domain tag, so a signature over one kind of record can never
/// be replayed as another) followed by its MessagePack encoding.
pub(crate) fn encode_body<T: Serialize>(kind: &'static [u8], body: &T) -> Vec<u8> {
    let mut out = kind.to_vec();
    // Our own plain structs always encode; a failure here is a bug, not bad input.
    out.extend(rmp_serde::to_vec(body).expect("recovery records encode"));
    out
}

/// The inverse of [`encode_body`], for bytes from the network.
pub(crate) fn decode_body<T: DeserializeOwned>(kind: &'static [u8], data: &[u8]) -> Result<T, BodyError> {
    let rest = data.strip_prefix(kind).ok_or(BodyError::WrongKind { kind })?;
    rmp_serde::from_slice(rest).map_err(|e| BodyError::Malformed { kind, reason: e.to_string() })
}
