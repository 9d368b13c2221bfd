//! The recovery passphrase proof. At backup time the owner derives `K = argon2id(passphrase, salt)`
//! and gives each holder only its own verifier `V_h = SHA-256(tag || K || owner || holder)`. To ask
//! for a share, the requester (a new device that knows the passphrase) derives K again and sends
//! `HMAC-SHA256(V_h, tag || owner || holder || requester || nonce || timestamp)`, where the nonce is
//! the holder's fresh one-time challenge and `requester` is the new key the share will be sealed to.
//! The passphrase and K never leave the user's device.
//!
//! Threat model, honestly:
//! - A proof is bound to one holder, one challenge and one requester key: a proof seen (or a
//!   request replayed) gets nothing, because the challenge is spent and the share would be sealed to
//!   the requester named in the proof, whose secret the replayer lacks.
//! - A holder knows V_h and the salt, so it can test passphrase guesses offline, each costing one
//!   argon2id evaluation; a weak passphrase falls to a patient holder. That is why the holder must
//!   be trusted with its share in the first place, why one share alone is useless (threshold >= 2),
//!   and why the KDF is memory-hard. V_h differs per holder: one holder's verifier proves nothing
//!   to another, and holders learn nothing about each other's.
//! - Whoever sees a proof together with its statement (the holder; anyone who reads the traffic,
//!   which the transport encrypts) can likewise test guesses offline at argon2id cost.
//! - Online guessing is bounded by the holder's rate limit ([`super::holder`]).
//! - Anyone holding V_h can make proofs for that holder: V_h travels only sealed to the holder.

use super::Bytes32;
use crate::identity::vault::{derive_key, KdfParams, VaultError};
use crate::types::PeerId;
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

const VERIFIER_TAG: &[u8] = b"swarm-recovery-verifier-v1";
const PROOF_TAG: &[u8] = b"swarm-recovery-proof-v1";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the recovery passphrase is empty")]
    EmptyPassphrase,
    #[error("passphrase KDF: {0}")]
    Kdf(String),
    #[error("the passphrase proof does not match")]
    Mismatch,
}

/// The public recipe for K: the salt and the argon2id cost. Holders hand it to whoever asks to
/// recover (it is not secret, and the new device needs it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassphraseParams {
    pub salt: [u8; 16],
    pub kdf: KdfParams,
}

impl PassphraseParams {
    pub fn generate(kdf: KdfParams, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        PassphraseParams { salt, kdf }
    }
}

/// K: derived from the passphrase on the user's device, never sent.
pub struct PassphraseKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for PassphraseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PassphraseKey(..)")
    }
}

/// What one holder keeps to check proofs: derived from K for that holder alone.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderVerifier(pub(crate) Bytes32);

impl Drop for HolderVerifier {
    fn drop(&mut self) {
        self.0 .0.zeroize();
    }
}

impl std::fmt::Debug for HolderVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HolderVerifier(..)")
    }
}

/// Everything a proof is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Statement {
    pub owner: PeerId,
    pub holder: PeerId,
    /// The new key the share is to be sealed to (the request's signer).
    pub requester: PeerId,
    /// The holder's one-time challenge.
    pub nonce: Bytes32,
    /// The request's timestamp (Unix ms).
    pub timestamp_ms: u64,
}

impl PassphraseKey {
    pub fn derive(passphrase: &[u8], params: &PassphraseParams) -> Result<Self, ProofError> {
        if passphrase.is_empty() {
            return Err(ProofError::EmptyPassphrase);
        }
        derive_key(passphrase, &params.salt, &params.kdf).map(PassphraseKey).map_err(|e| match e {
            VaultError::Kdf(why) => ProofError::Kdf(why),
            other => ProofError::Kdf(other.to_string()),
        })
    }

    /// K as bytes, for the owner's own sealed backup record (a re-share reuses K, so the owner
    /// need not type the passphrase again).
    pub(crate) fn to_bytes(&self) -> Bytes32 {
        Bytes32(*self.0)
    }

    pub(crate) fn from_bytes(b: &Bytes32) -> Self {
        PassphraseKey(Zeroizing::new(b.0))
    }

    /// The verifier for `holder` of `owner`'s share.
    pub fn verifier(&self, owner: &PeerId, holder: &PeerId) -> HolderVerifier {
        let mut h = Sha256::new();
        h.update(VERIFIER_TAG);
        h.update(self.0.as_ref());
        h.update(owner.0);
        h.update(holder.0);
        HolderVerifier(Bytes32(h.finalize().into()))
    }

    /// The proof for one request.
    pub fn prove(&self, st: &Statement) -> Bytes32 {
        self.verifier(&st.owner, &st.holder).prove(st)
    }
}

impl HolderVerifier {
    fn mac(&self, st: &Statement) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0 .0).expect("HMAC takes any key length");
        m.update(PROOF_TAG);
        m.update(&st.owner.0);
        m.update(&st.holder.0);
        m.update(&st.requester.0);
        m.update(&st.nonce.0);
        m.update(&st.timestamp_ms.to_le_bytes());
        m
    }

    pub fn prove(&self, st: &Statement) -> Bytes32 {
        Bytes32(self.mac(st).finalize().into_bytes().into())
    }

    /// Constant-time check of `proof` for `st`.
    pub fn check(&self, st: &Statement, proof: &Bytes32) -> Result<(), ProofError> {
        self.mac(st).verify_slice(&proof.0).map_err(|_| ProofError::Mismatch)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// argon2's minimum cost: tests stay fast (real backups use [`KdfParams::default`]).
    pub(crate) const FAST_KDF: KdfParams = KdfParams { memory_kib: 8, iterations: 1, parallelism: 1 };

    fn peer(b: u8) -> PeerId {
        PeerId([b; 32])
    }

    fn params(seed: u64) -> PassphraseParams {
        PassphraseParams::generate(FAST_KDF, &mut ChaCha20Rng::seed_from_u64(seed))
    }

    fn statement(requester: u8, nonce: u8, timestamp_ms: u64) -> Statement {
        Statement {
            owner: peer(1),
            holder: peer(2),
            requester: peer(requester),
            nonce: Bytes32([nonce; 32]),
            timestamp_ms,
        }
    }

    #[test]
    fn errors_are_named() {
        assert_eq!(PassphraseKey::derive(b"", &params(1)).err(), Some(ProofError::EmptyPassphrase));
        let costly = PassphraseParams { salt: [0; 16], kdf: KdfParams { memory_kib: u32::MAX, ..FAST_KDF } };
        assert!(matches!(PassphraseKey::derive(b"pw", &costly), Err(ProofError::Kdf(_))));
    }

    #[test]
    fn verifiers_are_per_holder_per_owner_per_salt() {
        let k = PassphraseKey::derive(b"correct horse", &params(1)).unwrap();
        let v = k.verifier(&peer(1), &peer(2));
        assert_eq!(v, k.verifier(&peer(1), &peer(2)), "deterministic");
        assert_ne!(v, k.verifier(&peer(1), &peer(3)), "another holder");
        assert_ne!(v, k.verifier(&peer(4), &peer(2)), "another owner");
        let k2 = PassphraseKey::derive(b"correct horse", &params(2)).unwrap();
        assert_ne!(v, k2.verifier(&peer(1), &peer(2)), "another salt");
        assert_eq!(format!("{v:?}"), "HolderVerifier(..)");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        /// The right passphrase's proof checks; a wrong passphrase's never does; a proof made for
        /// one requester, nonce or time fails for any other.
        #[test]
        fn only_the_right_passphrase_for_this_statement_checks(
            pass in prop::collection::vec(any::<u8>(), 1..24), wrong in prop::collection::vec(any::<u8>(), 1..24),
            salt in any::<u64>(), requester in 3u8..200, other in 3u8..200, nonce in any::<u8>(), ts in any::<u64>(),
        ) {
            prop_assume!(pass != wrong);
            let p = params(salt);
            let holder_side = PassphraseKey::derive(&pass, &p).unwrap().verifier(&peer(1), &peer(2));
            let st = statement(requester, nonce, ts);
            let good = PassphraseKey::derive(&pass, &p).unwrap().prove(&st);
            prop_assert_eq!(holder_side.check(&st, &good), Ok(()));
            let bad = PassphraseKey::derive(&wrong, &p).unwrap().prove(&st);
            prop_assert_eq!(holder_side.check(&st, &bad), Err(ProofError::Mismatch));
            if other != requester {
                prop_assert_eq!(holder_side.check(&statement(other, nonce, ts), &good), Err(ProofError::Mismatch));
            }
            prop_assert_eq!(holder_side.check(&statement(requester, nonce.wrapping_add(1), ts), &good), Err(ProofError::Mismatch));
            prop_assert_eq!(holder_side.check(&statement(requester, nonce, ts ^ 1), &good), Err(ProofError::Mismatch));
        }
    }
}
