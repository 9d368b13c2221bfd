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
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
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

    /// A second owner of the same key pair, for a component on another thread (the node's
    /// rendezvous clients sign their registrations there while the engine keeps its own `Rc`).
    pub fn duplicate(&self) -> Identity {
        Identity { key: self.key.clone() }
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
    verify_key(&decompress(peer)?, peer, message, signature)
}

/// The public key as a curve point (the costly part of a check that a cache can keep).
fn decompress(peer: &PeerId) -> Result<VerifyingKey, SignatureError> {
    VerifyingKey::from_bytes(&peer.0).map_err(|_| SignatureError::BadKey(peer.short()))
}

fn verify_key(key: &VerifyingKey, peer: &PeerId, message: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError> {
    key.verify_strict(message, &Signature::from_bytes(signature)).map_err(|_| SignatureError::Invalid(peer.short()))
}

/// Signature checking as a port: real nodes verify every signature; the simulator shares one
/// memoising verifier among all its nodes, so a rumour that a thousand nodes receive costs one
/// ed25519 verification. Either way the answer is exactly ed25519's.
pub trait Verifier {
    fn verify(&self, peer: &PeerId, message: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError>;
}

/// Verifies every call.
pub struct Ed25519Verifier;

impl Verifier for Ed25519Verifier {
    fn verify(&self, peer: &PeerId, message: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError> {
        verify(peer, message, signature)
    }
}

/// Remembers verdicts per (key, signature), with the signed message kept beside each so that a
/// hit needs the very same bytes (compared in full: no hash to collide). Bounded by the bytes of
/// messages it holds, forgetting the oldest first. Also keeps the decompressed public keys it has
/// met (up to 65,536).
pub struct MemoVerifier {
    memo: std::cell::RefCell<Memo>,
    keys: std::cell::RefCell<rustc_hash::FxHashMap<PeerId, VerifyingKey>>,
    capacity_bytes: usize,
    stats: std::cell::Cell<(u64, u64)>,
}

type MemoKey = (PeerId, [u8; 64]);
/// The message a verdict was reached on, and the verdict.
type Verdict = (Box<[u8]>, Result<(), SignatureError>);

/// Decompressed public keys a [`MemoVerifier`] keeps (~200 bytes each).
const MEMO_KEYS: usize = 1 << 16;

#[derive(Default)]
struct Memo {
    verdicts: rustc_hash::FxHashMap<MemoKey, Verdict>,
    order: std::collections::VecDeque<MemoKey>,
    bytes: usize,
}

impl MemoVerifier {
    /// `capacity_bytes`: signed messages remembered, in bytes (about as much memory again goes to
    /// the table itself).
    pub fn new(capacity_bytes: usize) -> Self {
        MemoVerifier {
            memo: Default::default(),
            keys: Default::default(),
            capacity_bytes: capacity_bytes.max(1),
            stats: Default::default(),
        }
    }

    fn key(&self, peer: &PeerId) -> Result<VerifyingKey, SignatureError> {
        if let Some(k) = self.keys.borrow().get(peer) {
            return Ok(*k);
        }
        let k = decompress(peer)?;
        let mut keys = self.keys.borrow_mut();
        if keys.len() >= MEMO_KEYS {
            keys.clear();
        }
        keys.insert(*peer, k);
        Ok(k)
    }

    /// (verifications done, answers from memory).
    pub fn stats(&self) -> (u64, u64) {
        self.stats.get()
    }

    fn remember(&self, key: MemoKey, message: &[u8], verdict: Result<(), SignatureError>) {
        let mut m = self.memo.borrow_mut();
        while m.bytes + message.len() > self.capacity_bytes {
            let Some(old) = m.order.pop_front() else { break };
            if let Some((msg, _)) = m.verdicts.remove(&old) {
                m.bytes -= msg.len();
            }
        }
        if m.verdicts.insert(key, (message.into(), verdict)).is_none() {
            m.order.push_back(key);
            m.bytes += message.len();
        }
    }
}

impl Verifier for MemoVerifier {
    fn verify(&self, peer: &PeerId, message: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError> {
        let key = (*peer, *signature);
        let (done, hits) = self.stats.get();
        // None: never seen; Some(None): same key and signature over other bytes, which is not
        // what was checked, so check it (and keep the first verdict, the one traffic repeats).
        let cached = self.memo.borrow().verdicts.get(&key).map(|(msg, v)| (**msg == *message).then(|| v.clone()));
        if let Some(Some(v)) = cached {
            self.stats.set((done, hits + 1));
            return v;
        }
        let v = self.key(peer).and_then(|k| verify_key(&k, peer, message, signature));
        self.stats.set((done + 1, hits));
        if cached.is_none() {
            self.remember(key, message, v.clone());
        }
        v
    }
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
    fn memo_verifier_answers_exactly_as_ed25519() {
        let (a, b) = (ident(1), ident(2));
        let memo = MemoVerifier::new(3);
        let sig = a.sign(b"m");
        for _ in 0..2 {
            assert!(memo.verify(&a.peer_id(), b"m", &sig).is_ok());
            assert!(memo.verify(&b.peer_id(), b"m", &sig).is_err(), "same signature, other key");
            assert!(memo.verify(&a.peer_id(), b"n", &sig).is_err(), "same signature, other message");
        }
        // "n" under a's key and signature is checked each time: only identical bytes hit.
        assert_eq!(memo.stats(), (4, 2));
        // Past its capacity (3 bytes of messages) it forgets the oldest, and still answers right.
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(memo.verify(&a.peer_id(), b"m", &bad).is_err());
        assert!(memo.verify(&a.peer_id(), b"m", &sig).is_ok());
        assert!(memo.memo.borrow().bytes <= 3 && memo.memo.borrow().verdicts.len() <= 3);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let id = Identity::from_secret(&[9; 32]);
        let shown = format!("{id:?}");
        assert!(!shown.contains(&hex::encode([9u8; 32])));
    }
}
