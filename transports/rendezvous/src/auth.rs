//! Proof of key possession for `register`: the server sends each connection a random nonce in a
//! `challenge`; a registration carries an ed25519 signature by the peer id (its public key) over
//! [`register_bytes`]. Binding the nonce stops a signature seen on one connection from being
//! replayed on another; binding the namespace stops it from being reused for another namespace.

use crate::proto::{Namespace, PeerId};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use thiserror::Error;

/// Domain separation: the signed bytes start with this, so a registration signature can never be
/// mistaken for (or be made from) a signature of another swarm protocol.
pub const REGISTER_DOMAIN: &[u8] = b"swarm-rendezvous-register-v1";
/// Bytes in a challenge nonce (64 hex chars on the wire).
pub const NONCE_BYTES: usize = 32;
/// Length of a signature on the wire: 64 bytes as lowercase hex.
pub const SIGNATURE_HEX_LEN: usize = 128;

/// The per-connection challenge a registration signature must cover.
pub type Nonce = [u8; NONCE_BYTES];

/// Holds a peer's ed25519 key and signs registrations with it. The rendezvous crate does not know
/// where the key lives: `swarm node` implements this for its identity, tests use [`SeedSigner`].
pub trait Signer: Send + Sync {
    /// The peer id: the 32-byte ed25519 public key of the signing key.
    fn peer(&self) -> PeerId;
    /// An ed25519 signature over `msg`.
    fn sign(&self, msg: &[u8]) -> [u8; 64];
}

/// A signer from a 32-byte ed25519 secret seed (tests, tools, anything without its own key
/// store).
pub struct SeedSigner {
    key: SigningKey,
}

impl SeedSigner {
    pub fn from_seed(seed: &[u8; 32]) -> SeedSigner {
        SeedSigner { key: SigningKey::from_bytes(seed) }
    }
}

impl Signer for SeedSigner {
    fn peer(&self) -> PeerId {
        PeerId(self.key.verifying_key().to_bytes())
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        ed25519_dalek::Signer::sign(&self.key, msg).to_bytes()
    }
}

impl std::fmt::Debug for SeedSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "SeedSigner({:?})", self.peer())
    }
}

/// Why a registration signature was refused (wire code `bad_signature`).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SignatureError {
    #[error("`sig` is missing: sign the connection's challenge (see the README)")]
    Missing,
    #[error("`sig` must be {SIGNATURE_HEX_LEN} lowercase hex chars (64 bytes), got {len} chars")]
    Malformed { len: usize },
    #[error("peer id {peer} is not a valid ed25519 public key")]
    BadKey { peer: PeerId },
    #[error("signature does not verify under peer id {peer} for this connection's challenge and namespace {ns:?}")]
    Invalid { peer: PeerId, ns: String },
}

/// The exact bytes a registration signs:
/// `"swarm-rendezvous-register-v1" || nonce (32) || peer id (32) || namespace (UTF-8)`.
pub fn register_bytes(nonce: &Nonce, peer: &PeerId, ns: &str) -> Vec<u8> {
    let mut msg = Vec::with_capacity(REGISTER_DOMAIN.len() + NONCE_BYTES + 32 + ns.len());
    msg.extend_from_slice(REGISTER_DOMAIN);
    msg.extend_from_slice(nonce);
    msg.extend_from_slice(&peer.0);
    msg.extend_from_slice(ns.as_bytes());
    msg
}

/// The `sig` field of a `register` for `signer` under `ns` on the connection challenged with
/// `nonce`.
pub fn sign_register(signer: &dyn Signer, nonce: &Nonce, ns: &str) -> String {
    hex::encode(signer.sign(&register_bytes(nonce, &signer.peer(), ns)))
}

/// Checks a `register`'s `sig` (as it came off the wire) against the peer id as public key, with
/// `verify_strict` (refuses small-order keys and malleable signatures).
pub fn verify_register(nonce: &Nonce, peer: &PeerId, ns: &Namespace, sig: Option<&str>) -> Result<(), SignatureError> {
    let sig = sig.ok_or(SignatureError::Missing)?;
    let mut bytes = [0u8; 64];
    if sig.len() != SIGNATURE_HEX_LEN || sig.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(SignatureError::Malformed { len: sig.len() });
    }
    hex::decode_to_slice(sig, &mut bytes).map_err(|_| SignatureError::Malformed { len: sig.len() })?;
    let key = VerifyingKey::from_bytes(&peer.0).map_err(|_| SignatureError::BadKey { peer: *peer })?;
    key.verify_strict(&register_bytes(nonce, peer, ns.as_str()), &Signature::from_bytes(&bytes))
        .map_err(|_| SignatureError::Invalid { peer: *peer, ns: ns.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_bytes_are_domain_nonce_peer_ns() {
        let peer = PeerId([7; 32]);
        let msg = register_bytes(&[1; 32], &peer, "swarm");
        assert_eq!(&msg[..28], b"swarm-rendezvous-register-v1");
        assert_eq!(&msg[28..60], &[1; 32]);
        assert_eq!(&msg[60..92], &[7; 32]);
        assert_eq!(&msg[92..], b"swarm");
    }

    #[test]
    fn a_signature_verifies_only_for_its_nonce_peer_and_namespace() {
        let signer = SeedSigner::from_seed(&[3; 32]);
        let ns = Namespace::parse("swarm").expect("ns");
        let sig = sign_register(&signer, &[1; 32], "swarm");
        assert_eq!(verify_register(&[1; 32], &signer.peer(), &ns, Some(&sig)), Ok(()));
        assert!(matches!(
            verify_register(&[2; 32], &signer.peer(), &ns, Some(&sig)),
            Err(SignatureError::Invalid { .. })
        ));
        let other = Namespace::parse("other").expect("ns");
        assert!(matches!(
            verify_register(&[1; 32], &signer.peer(), &other, Some(&sig)),
            Err(SignatureError::Invalid { .. })
        ));
        let someone = SeedSigner::from_seed(&[4; 32]).peer();
        assert!(matches!(verify_register(&[1; 32], &someone, &ns, Some(&sig)), Err(SignatureError::Invalid { .. })));
        assert_eq!(verify_register(&[1; 32], &signer.peer(), &ns, None), Err(SignatureError::Missing));
        assert_eq!(
            verify_register(&[1; 32], &signer.peer(), &ns, Some(&sig.to_uppercase())),
            Err(SignatureError::Malformed { len: 128 })
        );
        assert_eq!(
            verify_register(&[1; 32], &signer.peer(), &ns, Some("ab")),
            Err(SignatureError::Malformed { len: 2 })
        );
        // y = 2 does not decompress to a point of edwards25519: no key, whatever the signature.
        let mut not_a_key = [0u8; 32];
        not_a_key[0] = 2;
        let not_a_key = PeerId(not_a_key);
        assert_eq!(
            verify_register(&[1; 32], &not_a_key, &ns, Some(&sig)),
            Err(SignatureError::BadKey { peer: not_a_key })
        );
    }
}
