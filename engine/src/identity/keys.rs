//! Key pairs and signatures (ed25519-dalek). The peer id is the 32-byte public key; the user id is
//! the first 16 hex characters of SHA-256(public key), as the original plan defines it.

use crate::types::PeerId;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A node's key pair.
pub struct Identity {
    key: SigningKey,
}

/// Why a signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("public key {0} is not a valid ed25519 point")]
    BadKey(String),
    #[error("signature does not verify under public key {0}")]
    Invalid(String),
}

impl Identity {
    /// A new key pair from a cryptographic RNG (the OS in real nodes, a seeded ChaCha stream in
    /// the simulator).
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Identity { key: SigningKey::generate(rng) }
    }

    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Identity { key: SigningKey::from_bytes(secret) }
    }

    pub fn peer_id(&self) -> PeerId {
        PeerId(self.key.verifying_key().to_bytes())
    }

    pub fn user_id(&self) -> String {
        user_id(&self.peer_id())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The secret scalar seed, wiped from memory when dropped.
    pub(crate) fn secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "Identity({})", self.peer_id().short())
    }
}

/// First 16 hex characters of SHA-256 of the public key.
pub fn user_id(peer: &PeerId) -> String {
    let digest = Sha256::digest(peer.0);
    hex::encode(&digest[..8])
}

/// Verify `signature` over `message` by `peer` (strict: rejects weak keys and malleable
/// signatures).
pub fn verify(peer: &PeerId, message: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError> {
    let key = VerifyingKey::from_bytes(&peer.0).map_err(|_| SignatureError::BadKey(peer.short()))?;
    key.verify_strict(message, &Signature::from_bytes(signature)).map_err(|_| SignatureError::Invalid(peer.short()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ident(seed: u64) -> Identity {
        Identity::generate(&mut ChaCha8Rng::seed_from_u64(seed))
    }

    #[test]
    fn user_id_is_sha256_prefix_of_the_public_key() {
        let id = Identity::from_secret(&[7; 32]);
        let expect = hex::encode(Sha256::digest(id.peer_id().0));
        assert_eq!(id.user_id(), expect[..16]);
        assert_eq!(id.user_id().len(), 16);
    }

    #[test]
    fn seeded_generation_is_reproducible() {
        assert_eq!(ident(3).peer_id(), ident(3).peer_id());
        assert_ne!(ident(3).peer_id(), ident(4).peer_id());
    }

    proptest! {
        #[test]
        fn sign_verify_round_trip_and_tampering_rejected(
            seed in any::<u64>(), msg in prop::collection::vec(any::<u8>(), 0..512),
            flip in any::<usize>(), other in any::<u64>(),
        ) {
            let id = ident(seed);
            let sig = id.sign(&msg);
            prop_assert!(verify(&id.peer_id(), &msg, &sig).is_ok());
            // Tampered data.
            let mut bad = msg.clone();
            if bad.is_empty() { bad.push(1) } else { let i = flip % bad.len(); bad[i] ^= 0x01; }
            prop_assert!(verify(&id.peer_id(), &bad, &sig).is_err());
            // Tampered signature.
            let mut bad_sig = sig;
            bad_sig[flip % 64] ^= 0x80;
            prop_assert!(verify(&id.peer_id(), &msg, &bad_sig).is_err());
            // Someone else's key.
            let stranger = ident(other ^ seed ^ 0x5555);
            prop_assume!(stranger.peer_id() != id.peer_id());
            prop_assert!(verify(&stranger.peer_id(), &msg, &sig).is_err());
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let id = Identity::from_secret(&[9; 32]);
        let shown = format!("{id:?}");
        assert!(!shown.contains(&hex::encode([9u8; 32])));
    }
}
