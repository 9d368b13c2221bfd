//! Sealing bytes to a peer's key: the peer id (an ed25519 public key) converted to its X25519
//! (Montgomery) form, a one-time X25519 key on the sender's side, ECDH, HKDF-SHA256 and
//! AES-256-GCM. Only the holder of the peer's ed25519 secret can open it (its X25519 secret is the
//! clamped scalar ed25519 derives from the seed). Serves both directions of recovery: a share
//! sealed to its holder, and a released share sealed to the requester's new key.
//!
//! The HKDF info binds the label, the one-time key and both forms of the recipient's key, so a
//! sealed blob cannot be re-pointed; the caller's `context` is the GCM associated data, so a blob
//! made for one purpose (say, share 2 of generation 7 for holder H) opens for no other. Using one
//! key pair to sign and to exchange keys is sound for ed25519 / X25519 (eprint 2021/509), and is
//! what lets a peer id alone be the address to seal to.

use super::Bytes32;
use crate::identity::Identity;
use crate::types::PeerId;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use x25519_dalek::{EphemeralSecret, PublicKey, SharedSecret, StaticSecret};
use zeroize::Zeroizing;

const LABEL: &[u8] = b"swarm-recovery-seal-v1";
/// Largest sealed payload accepted (a share with its commitments is ~600 bytes; plan: headroom).
pub const MAX_SEALED_BYTES: usize = 4096;
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

/// Bytes only one peer can open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The sender's one-time X25519 public key.
    pub ephemeral: Bytes32,
    /// AES-256-GCM ciphertext and tag.
    #[serde(with = "crate::serde_bytes")]
    pub ciphertext: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("recipient {0} is not a usable ed25519 public key")]
    BadRecipient(String),
    #[error("the key exchange with {0} gave no shared secret (a low-order key)")]
    LowOrder(String),
    #[error("sealed payload of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("cannot open: not sealed to this key, or the bytes or their context were altered")]
    CannotOpen,
}

/// The recipient's key in X25519 form; weak (small-order) ed25519 keys are refused.
fn montgomery(recipient: &PeerId) -> Result<PublicKey, SealError> {
    let vk = VerifyingKey::from_bytes(&recipient.0).map_err(|_| SealError::BadRecipient(recipient.short()))?;
    if vk.is_weak() {
        return Err(SealError::BadRecipient(recipient.short()));
    }
    Ok(PublicKey::from(vk.to_montgomery().to_bytes()))
}

/// The AEAD key and nonce for one exchange (the key is fresh per one-time key, so is the nonce).
fn cipher(
    shared: &SharedSecret,
    ephemeral: &PublicKey,
    recipient: &PeerId,
    recipient_x: &PublicKey,
) -> Result<(Aes256Gcm, [u8; NONCE_BYTES]), SealError> {
    if !shared.was_contributory() {
        return Err(SealError::LowOrder(recipient.short()));
    }
    let mut info = Vec::with_capacity(LABEL.len() + 96);
    info.extend_from_slice(LABEL);
    info.extend_from_slice(ephemeral.as_bytes());
    info.extend_from_slice(&recipient.0);
    info.extend_from_slice(recipient_x.as_bytes());
    let mut okm = Zeroizing::new([0u8; KEY_BYTES + NONCE_BYTES]);
    Hkdf::<Sha256>::new(Some(LABEL), shared.as_bytes())
        .expand(&info, okm.as_mut())
        .expect("44 bytes is within HKDF-SHA256's output limit");
    let aead = Aes256Gcm::new_from_slice(&okm[..KEY_BYTES]).expect("a 32-byte key");
    let mut nonce = [0u8; NONCE_BYTES];
    nonce.copy_from_slice(&okm[KEY_BYTES..]);
    Ok((aead, nonce))
}

/// Seal `plaintext` to `recipient`, bound to `context` (not secret, not sent: both sides know it).
pub fn seal(
    recipient: &PeerId,
    context: &[u8],
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Sealed, SealError> {
    let max = MAX_SEALED_BYTES - 16;
    if plaintext.len() > max {
        return Err(SealError::TooLarge { len: plaintext.len(), max });
    }
    let recipient_x = montgomery(recipient)?;
    let secret = EphemeralSecret::random_from_rng(&mut *rng);
    let ephemeral = PublicKey::from(&secret);
    let shared = secret.diffie_hellman(&recipient_x);
    let (aead, nonce) = cipher(&shared, &ephemeral, recipient, &recipient_x)?;
    let ciphertext = aead
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context })
        .map_err(|_| SealError::TooLarge { len: plaintext.len(), max })?;
    Ok(Sealed { ephemeral: Bytes32(ephemeral.to_bytes()), ciphertext })
}

/// Open what was sealed to `recipient`'s peer id under `context`.
pub fn open(recipient: &Identity, context: &[u8], sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.ciphertext.len() > MAX_SEALED_BYTES {
        return Err(SealError::TooLarge { len: sealed.ciphertext.len(), max: MAX_SEALED_BYTES });
    }
    let me = recipient.peer_id();
    let recipient_x = montgomery(&me)?;
    let secret = StaticSecret::from(SigningKey::from_bytes(&recipient.secret()).to_scalar_bytes());
    debug_assert_eq!(PublicKey::from(&secret), recipient_x, "the ed25519 and X25519 forms agree");
    let ephemeral = PublicKey::from(sealed.ephemeral.0);
    let shared = secret.diffie_hellman(&ephemeral);
    let (aead, nonce) = cipher(&shared, &ephemeral, &me, &recipient_x)?;
    aead.decrypt(Nonce::from_slice(&nonce), Payload { msg: &sealed.ciphertext, aad: context })
        .map(Zeroizing::new)
        .map_err(|_| SealError::CannotOpen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn ident(seed: u64) -> Identity {
        Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed))
    }

    #[test]
    fn refuses_unusable_recipients_and_oversized_payloads() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        // The identity point (a small-order, weak key).
        let mut weak = [0u8; 32];
        weak[0] = 1;
        assert!(matches!(seal(&PeerId(weak), b"c", b"x", &mut rng), Err(SealError::BadRecipient(_))));
        let to = ident(1).peer_id();
        let big = vec![0u8; MAX_SEALED_BYTES];
        assert!(matches!(seal(&to, b"c", &big, &mut rng), Err(SealError::TooLarge { .. })));
        // A one-time key of low order (here zero) is refused on opening, not used.
        let mut s = seal(&to, b"c", b"x", &mut rng).unwrap();
        s.ephemeral = Bytes32([0; 32]);
        assert!(matches!(open(&ident(1), b"c", &s), Err(SealError::LowOrder(_))));
        let huge = Sealed { ephemeral: Bytes32([9; 32]), ciphertext: vec![0; MAX_SEALED_BYTES + 1] };
        assert!(matches!(open(&ident(1), b"c", &huge), Err(SealError::TooLarge { .. })));
    }

    #[test]
    fn seeded_sealing_is_reproducible_and_fresh_per_call() {
        let to = ident(2).peer_id();
        let a = seal(&to, b"c", b"same", &mut ChaCha20Rng::seed_from_u64(5)).unwrap();
        let b = seal(&to, b"c", b"same", &mut ChaCha20Rng::seed_from_u64(5)).unwrap();
        assert_eq!(a, b);
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let (c, d) = (seal(&to, b"c", b"same", &mut rng).unwrap(), seal(&to, b"c", b"same", &mut rng).unwrap());
        assert_ne!(c.ephemeral, d.ephemeral);
        assert_ne!(c.ciphertext, d.ciphertext);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// Round trip for the right recipient; nothing for anyone else, nor for a changed byte of
        /// the ciphertext, the one-time key, or the context.
        #[test]
        fn round_trips_only_for_the_recipient_and_untampered(
            who in any::<u64>(), seed in any::<u64>(), msg in prop::collection::vec(any::<u8>(), 0..700),
            ctx in prop::collection::vec(any::<u8>(), 0..40), pos in any::<usize>(), bit in 0u8..8,
        ) {
            let (holder, other) = (ident(who), ident(who ^ 0xdead_beef));
            let sealed = seal(&holder.peer_id(), &ctx, &msg, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap();
            prop_assert_eq!(&*open(&holder, &ctx, &sealed).unwrap(), &msg);
            prop_assert_eq!(open(&other, &ctx, &sealed), Err(SealError::CannotOpen));

            let mut bad = sealed.clone();
            let i = pos % bad.ciphertext.len();
            bad.ciphertext[i] ^= 1 << bit;
            prop_assert_eq!(open(&holder, &ctx, &bad), Err(SealError::CannotOpen));

            let mut bad = sealed.clone();
            bad.ephemeral.0[pos % 32] ^= 1 << bit;
            prop_assert!(open(&holder, &ctx, &bad).is_err());

            let mut other_ctx = ctx.clone();
            if other_ctx.is_empty() { other_ctx.push(0) } else { let i = pos % other_ctx.len(); other_ctx[i] ^= 1 << bit }
            prop_assert_eq!(open(&holder, &other_ctx, &sealed), Err(SealError::CannotOpen));
        }
    }
}
