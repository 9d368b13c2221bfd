//! Signed envelopes: every post and file manifest travels as {data, signature, public key,
//! timestamp}. The signature covers a domain tag, the public key, the timestamp and the data, so
//! none of them can be swapped. [`EnvelopeGuard`] is the receiving side's sans-IO check: unsigned,
//! invalid, stale, future-dated and replayed envelopes are refused with the reason, and counted.
//!
//! Replay protection is sound with bounded memory: the guard remembers the ids of accepted
//! envelopes inside the time window; when it must forget one to stay within its bound, it forgets
//! the oldest timestamp and from then on refuses anything at or before that timestamp.

use super::keys::{Ed25519Verifier, Identity, Verifier};
use crate::time::Millis;
use crate::types::PeerId;
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

const DOMAIN: &[u8] = b"swarm-envelope-v1";

/// A signed record. `signature` is a byte string so that a missing or short one still decodes
/// and is refused as unsigned, with the sender known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(with = "crate::serde_bytes")]
    pub data: Vec<u8>,
    #[serde(with = "crate::serde_bytes")]
    pub signature: Vec<u8>,
    pub public_key: PeerId,
    /// Milliseconds since the Unix epoch, by the signer's clock.
    pub timestamp_ms: u64,
}

fn signed_bytes(public_key: &PeerId, timestamp_ms: u64, data: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 40 + data.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(&public_key.0);
    m.extend_from_slice(&timestamp_ms.to_le_bytes());
    m.extend_from_slice(data);
    m
}

impl Envelope {
    /// A seen-cache id readable before anything is decoded or verified: the first 8 bytes of the
    /// signature, XORed with the first 8 of the signer's key. ed25519 signing is deterministic, so
    /// every copy of one signed message carries the same bytes, and copies of one already taken
    /// are sorted out by a lookup of one word (a 40-byte key was ~7% of churn-50's run thread).
    /// A forgery that borrows the bytes of a message already verified is dropped as its duplicate;
    /// one that comes first is verified, refused, and never enters a cache. To make a message of
    /// its own shadow another signer's, a peer would have to grind its signatures to 64 given bits
    /// of one not yet made. None for a signature too short to be one (refused as unsigned).
    pub fn quick_id(&self) -> Option<u64> {
        let head: [u8; 8] = self.signature.get(..8)?.try_into().ok()?;
        let key: [u8; 8] = self.public_key.0[..8].try_into().expect("32-byte key");
        Some(u64::from_le_bytes(head) ^ u64::from_le_bytes(key))
    }

    pub fn seal(identity: &Identity, data: Vec<u8>, timestamp_ms: u64) -> Self {
        let public_key = identity.peer_id();
        let signature = identity.sign(&signed_bytes(&public_key, timestamp_ms, &data)).to_vec();
        Envelope { data, signature, public_key, timestamp_ms }
    }

    /// Identity of the signed content, for replay detection.
    pub fn id(&self) -> [u8; 32] {
        Sha256::digest(signed_bytes(&self.public_key, self.timestamp_ms, &self.data)).into()
    }

    /// Signature check alone (no clock, no replay memory).
    pub fn verify(&self) -> Result<(), Rejection> {
        self.verify_with(&Ed25519Verifier)
    }

    /// Signature check through a [`Verifier`] port (the simulator's is shared and memoising).
    pub fn verify_with(&self, verifier: &dyn Verifier) -> Result<(), Rejection> {
        let sig: &[u8; 64] = self.signature.as_slice().try_into().map_err(|_| Rejection::Unsigned)?;
        verifier
            .verify(&self.public_key, &signed_bytes(&self.public_key, self.timestamp_ms, &self.data), sig)
            .map_err(|_| Rejection::BadSignature)
    }

    /// Hands a just-sealed envelope to a verifier that works ahead ([`Verifier::expect`]).
    pub fn announce_to(&self, verifier: &dyn Verifier) {
        if let Ok(sig) = <&[u8; 64]>::try_from(self.signature.as_slice()) {
            verifier.expect(&self.public_key, &signed_bytes(&self.public_key, self.timestamp_ms, &self.data), sig);
        }
    }

    /// Timestamp check: refused if older than `max_age_ms` or dated more than `max_ahead_ms` past
    /// `now_ms` (Unix milliseconds by the receiver's clock).
    pub fn check_fresh(&self, now_ms: u64, max_age_ms: u64, max_ahead_ms: u64) -> Result<(), Rejection> {
        let ts = self.timestamp_ms;
        if ts > now_ms.saturating_add(max_ahead_ms) {
            return Err(Rejection::FromFuture { ahead_ms: ts - now_ms });
        }
        if ts < now_ms.saturating_sub(max_age_ms) {
            return Err(Rejection::Stale { age_ms: now_ms - ts });
        }
        Ok(())
    }
}

/// Why an envelope was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("envelope is unsigned (no 64-byte signature)")]
    Unsigned,
    #[error("envelope signature does not verify under its public key")]
    BadSignature,
    #[error("envelope is {age_ms} ms old, outside the accepted window")]
    Stale { age_ms: u64 },
    #[error("envelope is dated {ahead_ms} ms in the future, outside the accepted window")]
    FromFuture { ahead_ms: u64 },
    #[error("envelope was already accepted (replay)")]
    Replay,
    #[error("envelope data of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("envelope data does not decode as the record it should carry")]
    Malformed,
}

/// Counts of refusals by reason (what the reputation subsystem will be fed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RejectionCounts {
    pub accepted: u64,
    pub unsigned: u64,
    pub bad_signature: u64,
    pub stale: u64,
    pub from_future: u64,
    pub replay: u64,
    pub too_large: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardConfig {
    /// Accepted clock difference either way.
    pub window_ms: u64,
    /// Envelope ids remembered at most.
    pub seen_max: usize,
    pub max_data_bytes: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig { window_ms: 5 * 60 * 1000, seen_max: 100_000, max_data_bytes: 256 * 1024 }
    }
}

pub struct EnvelopeGuard {
    cfg: GuardConfig,
    seen: FxHashSet<[u8; 32]>,
    by_time: BTreeSet<(u64, [u8; 32])>,
    /// Envelopes dated at or before this are refused (their ids may have been forgotten).
    floor_ms: Option<u64>,
    counts: RejectionCounts,
}

impl EnvelopeGuard {
    pub fn new(cfg: GuardConfig) -> Self {
        assert!(cfg.seen_max >= 1);
        EnvelopeGuard {
            cfg,
            seen: FxHashSet::default(),
            by_time: BTreeSet::new(),
            floor_ms: None,
            counts: Default::default(),
        }
    }

    pub fn counts(&self) -> RejectionCounts {
        self.counts
    }

    pub fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// Check an envelope received at `now_ms` (Unix milliseconds by the receiver's clock).
    pub fn check(&mut self, now_ms: Millis, env: &Envelope) -> Result<(), Rejection> {
        let r = self.judge(now_ms, env);
        let c = &mut self.counts;
        match r {
            Ok(()) => c.accepted += 1,
            Err(Rejection::Unsigned) => c.unsigned += 1,
            Err(Rejection::BadSignature) => c.bad_signature += 1,
            Err(Rejection::Stale { .. }) => c.stale += 1,
            Err(Rejection::FromFuture { .. }) => c.from_future += 1,
            Err(Rejection::Replay) => c.replay += 1,
            Err(Rejection::TooLarge { .. }) | Err(Rejection::Malformed) => c.too_large += 1,
        }
        r
    }

    fn judge(&mut self, now_ms: Millis, env: &Envelope) -> Result<(), Rejection> {
        if env.data.len() > self.cfg.max_data_bytes {
            return Err(Rejection::TooLarge { len: env.data.len(), max: self.cfg.max_data_bytes });
        }
        env.check_fresh(now_ms, self.cfg.window_ms, self.cfg.window_ms)?;
        let ts = env.timestamp_ms;
        let oldest_ok = now_ms.saturating_sub(self.cfg.window_ms);
        if self.floor_ms.is_some_and(|f| ts <= f) {
            return Err(Rejection::Stale { age_ms: now_ms.saturating_sub(ts) });
        }
        // Signature before memory: forged envelopes must not fill the replay cache.
        env.verify()?;
        let id = env.id();
        if self.seen.contains(&id) {
            return Err(Rejection::Replay);
        }
        // Forget what the window already refuses, then make room by raising the floor.
        while let Some(&(t, old)) = self.by_time.first() {
            if t >= oldest_ok && self.by_time.len() < self.cfg.seen_max {
                break;
            }
            self.by_time.pop_first();
            self.seen.remove(&old);
            if t >= oldest_ok {
                self.floor_ms = Some(self.floor_ms.map_or(t, |f| f.max(t)));
            }
        }
        if self.floor_ms.is_some_and(|f| ts <= f) {
            return Err(Rejection::Stale { age_ms: now_ms.saturating_sub(ts) });
        }
        self.seen.insert(id);
        self.by_time.insert((ts, id));
        debug_assert!(self.by_time.len() <= self.cfg.seen_max && self.seen.len() == self.by_time.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const NOW: u64 = 1_800_000_000_000;

    fn ident(seed: u64) -> Identity {
        Identity::generate(&mut ChaCha8Rng::seed_from_u64(seed))
    }

    fn guard() -> EnvelopeGuard {
        EnvelopeGuard::new(GuardConfig::default())
    }

    #[test]
    fn accepted_once_then_replay() {
        let env = Envelope::seal(&ident(1), b"hello".to_vec(), NOW);
        let mut g = guard();
        assert_eq!(g.check(NOW + 10, &env), Ok(()));
        assert_eq!(g.check(NOW + 20, &env), Err(Rejection::Replay));
        assert_eq!(g.counts().replay, 1);
        let wire = rmp_serde::to_vec(&env).unwrap();
        assert_eq!(rmp_serde::from_slice::<Envelope>(&wire).unwrap(), env);
    }

    #[test]
    fn window_and_unsigned() {
        let id = ident(2);
        let mut g = guard();
        let old = Envelope::seal(&id, b"x".to_vec(), NOW - 6 * 60_000);
        assert!(matches!(g.check(NOW, &old), Err(Rejection::Stale { .. })));
        let future = Envelope::seal(&id, b"x".to_vec(), NOW + 6 * 60_000);
        assert!(matches!(g.check(NOW, &future), Err(Rejection::FromFuture { .. })));
        let mut unsigned = Envelope::seal(&id, b"x".to_vec(), NOW);
        unsigned.signature.clear();
        assert_eq!(g.check(NOW, &unsigned), Err(Rejection::Unsigned));
        let big = Envelope::seal(&id, vec![0; 256 * 1024 + 1], NOW);
        assert!(matches!(g.check(NOW, &big), Err(Rejection::TooLarge { .. })));
        assert_eq!(g.remembered(), 0, "refused envelopes are not remembered");
    }

    proptest! {
        #[test]
        fn any_tampering_is_refused(data in prop::collection::vec(any::<u8>(), 0..200), which in 0usize..4, pos in any::<usize>()) {
            let env = Envelope::seal(&ident(3), data, NOW);
            let mut bad = env.clone();
            match which {
                0 => if bad.data.is_empty() { bad.data.push(0) } else { let i = pos % bad.data.len(); bad.data[i] ^= 1 },
                1 => { let i = pos % 64; bad.signature[i] ^= 1 }
                2 => bad.public_key = ident(4).peer_id(),
                _ => bad.timestamp_ms += 1 + (pos as u64 % 1000),
            }
            prop_assert_eq!(guard().check(NOW, &bad), Err(Rejection::BadSignature));
            prop_assert_eq!(guard().check(NOW, &env), Ok(()));
        }

        /// With a tiny memory and envelopes arriving in any order, a replay is never accepted:
        /// it is refused as a replay or, once forgotten, as stale.
        #[test]
        fn replays_never_pass_with_bounded_memory(
            stamps in prop::collection::vec(0u64..120_000, 1..60), replays in prop::collection::vec(any::<prop::sample::Index>(), 0..60),
            cap in 1usize..8,
        ) {
            let id = ident(5);
            let mut g = EnvelopeGuard::new(GuardConfig { seen_max: cap, ..GuardConfig::default() });
            let envs: Vec<Envelope> =
                stamps.iter().enumerate().map(|(i, t)| Envelope::seal(&id, vec![i as u8], NOW - t)).collect();
            let mut accepted = vec![];
            for e in &envs {
                if g.check(NOW, e).is_ok() { accepted.push(e.clone()); }
                prop_assert!(g.remembered() <= cap);
            }
            prop_assert!(!accepted.is_empty(), "the first envelope is always accepted");
            for r in replays {
                let e = &accepted[r.index(accepted.len())];
                prop_assert!(g.check(NOW, e).is_err(), "replay accepted");
            }
        }
    }
}
