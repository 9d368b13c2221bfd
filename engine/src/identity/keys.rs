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

    /// A signature this process has just made with its own key over `message`, and that peers
    /// will check: a verifier that works ahead (the simulator's) may start checking it now, on
    /// another core. Only for signatures just made: the simulator's verifier answers for them at
    /// once and stops the run if ed25519 then disagrees. The default does nothing.
    fn expect(&self, _peer: &PeerId, _message: &[u8], _signature: &[u8; 64]) {}
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
///
/// Built [`MemoVerifier::with_lookahead`], it also checks the signatures announced through
/// [`Verifier::expect`] on a worker thread of its own while the caller runs on, so that by the
/// time a peer receives the message the verdict is usually waiting. A verdict is a pure function
/// of (key, message, signature), so which thread computed it changes nothing a caller sees: only
/// the counts in [`MemoVerifier::stats`] and the wall time. The worker touches no clock, no
/// runtime and no shared state but its two bounded channels.
///
/// An announced signature is one this process has just made, so it is answered "valid" from the
/// moment it is announced (vouched for) while the worker checks it: a frame travels ~0.5 ms of
/// wall time at churn-50's pace, less than the worker's pause between looks, and without the
/// vouch the run's thread verified ~30% of the announced signatures itself (~5% of its time)
/// before the worker's verdict came. If ed25519 refuses a vouched signature, the run stops (our
/// signer is broken); the few verdicts still on their way when the verifier is dropped go unread.
pub struct MemoVerifier {
    memo: std::cell::RefCell<Memo>,
    keys: std::cell::RefCell<KeyCache>,
    capacity_bytes: usize,
    stats: std::cell::Cell<VerifierStats>,
    ahead: Option<Lookahead>,
}

/// What a [`MemoVerifier`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// ed25519 verifications on the caller's thread.
    pub verified: u64,
    /// Answers from memory (including verdicts the worker reached first).
    pub remembered: u64,
    /// ed25519 verifications the look-ahead worker did.
    pub verified_ahead: u64,
    /// Announced signatures not handed to the worker because its queue was full.
    pub ahead_dropped: u64,
}

type MemoKey = (PeerId, [u8; 64]);
/// The message a verdict was reached on, and the verdict.
type Verdict = (Box<[u8]>, Result<(), SignatureError>);

/// A remembered verdict, and whether it is still only vouched for (announced, not yet checked).
struct Entry {
    message: Box<[u8]>,
    verdict: Result<(), SignatureError>,
    vouched: bool,
}

/// Decompressed public keys a [`MemoVerifier`] keeps (~200 bytes each), per thread.
const MEMO_KEYS: usize = 1 << 16;
/// Signatures waiting for the look-ahead worker at most (each up to one signed message; guess: a
/// few rounds of gossip at 1,000 nodes). Past it an announced signature is checked when asked.
const MAX_LOOKAHEAD_JOBS: usize = 8192;
/// How long the worker sleeps between looks at its queue: from the first value, doubling up to
/// the second while nothing comes. The worker is never woken: waking a parked thread is a system
/// call on the run's thread for each signature (~3.5% of churn-50's main thread), and holding
/// signatures back to wake it once per batch made receivers ask before the batch left (42% of
/// the checks fell back on the run's thread). A look every 200 us while busy is inside the
/// simulated 40 ms a frame travels (~0.4 ms of wall time at churn-50's pace); looks every 20 us
/// caught 8% more signatures ahead but cost ~5 s of CPU in wake-ups, which a run sharing its
/// machine pays on its own thread (churn-50 beside a test run: user 50.3 s against 44.6 s).
const LOOKAHEAD_POLL_US: (u64, u64) = (200, 1000);

#[derive(Default)]
struct Memo {
    verdicts: rustc_hash::FxHashMap<MemoKey, Entry>,
    order: std::collections::VecDeque<MemoKey>,
    bytes: usize,
}

type Job = (MemoKey, Box<[u8]>);

/// The worker thread and its two channels (jobs out, batches of verdicts back).
struct Lookahead {
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    verdicts: std::sync::mpsc::Receiver<Vec<(MemoKey, Verdict)>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

/// Decompressed keys by peer, bounded (cleared when full: keys are cheap to decompress again).
#[derive(Default)]
struct KeyCache(rustc_hash::FxHashMap<PeerId, VerifyingKey>);

impl KeyCache {
    fn get(&mut self, peer: &PeerId) -> Result<VerifyingKey, SignatureError> {
        if let Some(k) = self.0.get(peer) {
            return Ok(*k);
        }
        let k = decompress(peer)?;
        if self.0.len() >= MEMO_KEYS {
            self.0.clear();
        }
        self.0.insert(*peer, k);
        Ok(k)
    }
}

impl Lookahead {
    fn start() -> std::io::Result<Self> {
        use std::sync::mpsc::TryRecvError;
        let (jobs, inbox) = std::sync::mpsc::sync_channel::<Job>(MAX_LOOKAHEAD_JOBS);
        let (outbox, verdicts) = std::sync::mpsc::sync_channel(MAX_LOOKAHEAD_JOBS);
        let worker = std::thread::Builder::new().name("verify-ahead".into()).spawn(move || {
            let mut keys = KeyCache::default();
            let (first, most) = LOOKAHEAD_POLL_US;
            let mut pause = first;
            // Ends when the verifier drops its sender, or stops listening.
            loop {
                let mut done = Vec::new();
                let ended = loop {
                    match inbox.try_recv() {
                        Ok((key, message)) => {
                            let (peer, signature) = &key;
                            let verdict = keys.get(peer).and_then(|k| verify_key(&k, peer, &message, signature));
                            done.push((key, (message, verdict)));
                        }
                        Err(TryRecvError::Empty) => break false,
                        Err(TryRecvError::Disconnected) => break true,
                    }
                };
                if done.is_empty() {
                    pause = (pause * 2).min(most);
                } else {
                    pause = first;
                    if outbox.send(done).is_err() {
                        break;
                    }
                }
                if ended {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_micros(pause));
            }
        })?;
        Ok(Lookahead { jobs: Some(jobs), verdicts, worker: Some(worker) })
    }
}

impl Drop for Lookahead {
    fn drop(&mut self) {
        self.jobs.take();
        // Keep taking verdicts (a worker may be blocked handing one back) until it has ended.
        if let Some(w) = self.worker.take() {
            while !w.is_finished() {
                while self.verdicts.try_recv().is_ok() {}
                std::thread::yield_now();
            }
            let _ = w.join();
        }
    }
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
            ahead: None,
        }
    }

    /// As [`MemoVerifier::new`], with a worker thread that checks announced signatures ahead.
    pub fn with_lookahead(capacity_bytes: usize) -> std::io::Result<Self> {
        Ok(MemoVerifier { ahead: Some(Lookahead::start()?), ..MemoVerifier::new(capacity_bytes) })
    }

    pub fn stats(&self) -> VerifierStats {
        self.stats.get()
    }

    fn count(&self, f: impl FnOnce(&mut VerifierStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Keeps the first verdict reached for a key: the one traffic repeats.
    fn remember(&self, key: MemoKey, message: Box<[u8]>, verdict: Result<(), SignatureError>, vouched: bool) {
        let mut m = self.memo.borrow_mut();
        if m.verdicts.contains_key(&key) {
            return;
        }
        while m.bytes + message.len() > self.capacity_bytes {
            let Some(old) = m.order.pop_front() else { break };
            if let Some(e) = m.verdicts.remove(&old) {
                m.bytes -= e.message.len();
            }
        }
        m.bytes += message.len();
        m.order.push_back(key);
        m.verdicts.insert(key, Entry { message, verdict, vouched });
    }

    /// Verdicts the worker has reached since the last call join the memo, or confirm a vouch.
    fn collect_ahead(&self) {
        let Some(ahead) = &self.ahead else { return };
        while let Ok(done) = ahead.verdicts.try_recv() {
            self.count(|s| s.verified_ahead += done.len() as u64);
            for (key, (message, verdict)) in done {
                if let Some(e) = self.memo.borrow_mut().verdicts.get_mut(&key).filter(|e| e.vouched) {
                    assert!(
                        verdict.is_ok() && e.message == message,
                        "a signature this process announced as just made fails ed25519: {verdict:?}"
                    );
                    e.vouched = false;
                    continue;
                }
                self.remember(key, message, verdict, false);
            }
        }
    }
}

impl Verifier for MemoVerifier {
    fn verify(&self, peer: &PeerId, message: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError> {
        self.collect_ahead();
        let key = (*peer, *signature);
        // None: never seen; Some(None): same key and signature over other bytes, which is not
        // what was checked, so check it (and keep the first verdict, the one traffic repeats).
        let cached = self.memo.borrow().verdicts.get(&key).map(|e| (*e.message == *message).then(|| e.verdict.clone()));
        if let Some(Some(v)) = cached {
            self.count(|s| s.remembered += 1);
            return v;
        }
        let v = self.keys.borrow_mut().get(peer).and_then(|k| verify_key(&k, peer, message, signature));
        self.count(|s| s.verified += 1);
        if cached.is_none() {
            self.remember(key, message.into(), v.clone(), false);
        }
        v
    }

    fn expect(&self, peer: &PeerId, message: &[u8], signature: &[u8; 64]) {
        let Some(ahead) = &self.ahead else { return };
        let Some(jobs) = &ahead.jobs else { return };
        let key = (*peer, *signature);
        if jobs.try_send((key, message.into())).is_err() {
            // Not handed over, so not vouched for: checked here when asked.
            self.count(|s| s.ahead_dropped += 1);
            return;
        }
        self.remember(key, message.into(), Ok(()), true);
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
        assert_eq!((memo.stats().verified, memo.stats().remembered), (4, 2));
        // Past its capacity (3 bytes of messages) it forgets the oldest, and still answers right.
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(memo.verify(&a.peer_id(), b"m", &bad).is_err());
        assert!(memo.verify(&a.peer_id(), b"m", &sig).is_ok());
        assert!(memo.memo.borrow().bytes <= 3 && memo.memo.borrow().verdicts.len() <= 3);
    }

    #[test]
    fn lookahead_verdicts_are_ed25519s_and_come_from_the_worker() {
        let (a, b) = (ident(5), ident(6));
        let memo = MemoVerifier::with_lookahead(1 << 20).unwrap();
        // 47 of a's and one of b's, each handed over as it is made.
        let msgs: Vec<Vec<u8>> = (0..48u8).map(|i| vec![i; 1 + usize::from(i)]).collect();
        let sigs: Vec<[u8; 64]> = msgs.iter().map(|m| a.sign(m)).collect();
        for (m, s) in msgs.iter().zip(&sigs).take(47) {
            memo.expect(&a.peer_id(), m, s);
        }
        let b_sig = b.sign(&msgs[0]);
        memo.expect(&b.peer_id(), &msgs[0], &b_sig);
        // Vouched for at once: answered before the worker's verdicts are read, with no check here.
        assert!(memo.verify(&a.peer_id(), &msgs[3], &sigs[3]).is_ok());
        assert_eq!(memo.stats().verified, 0);
        // Bounded wait for the worker (it is a thread: no simulated time here).
        for _ in 0..500 {
            memo.collect_ahead();
            if memo.stats().verified_ahead == 48 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(memo.stats().verified_ahead, 48);
        for (m, s) in msgs.iter().zip(&sigs).take(47) {
            assert_eq!(memo.verify(&a.peer_id(), m, s), Ed25519Verifier.verify(&a.peer_id(), m, s));
        }
        assert!(memo.verify(&b.peer_id(), &msgs[0], &b_sig).is_ok());
        // Every answer came from the memo; the same signature under another key, and other
        // bytes under a known key and signature, are still checked here.
        assert_eq!(memo.stats().verified, 0);
        assert!(memo.verify(&b.peer_id(), &msgs[0], &sigs[0]).is_err());
        assert!(memo.verify(&a.peer_id(), &msgs[1], &sigs[0]).is_err());
        assert_eq!(memo.stats().verified, 2);
        // Never announced: checked on this thread.
        assert!(memo.verify(&a.peer_id(), &msgs[47], &sigs[47]).is_ok());
        assert_eq!((memo.stats().verified, memo.stats().verified_ahead), (3, 48));
    }

    #[test]
    #[should_panic(expected = "announced as just made fails ed25519")]
    fn a_broken_signature_announced_as_just_made_stops_the_run() {
        let a = ident(5);
        let memo = MemoVerifier::with_lookahead(1 << 20).unwrap();
        let mut sig = a.sign(b"m");
        sig[3] ^= 0x10;
        memo.expect(&a.peer_id(), b"m", &sig);
        // Bounded wait for the worker's verdict, which must refuse what was vouched for.
        for _ in 0..500 {
            memo.collect_ahead();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let id = Identity::from_secret(&[9; 32]);
        let shown = format!("{id:?}");
        assert!(!shown.contains(&hex::encode([9u8; 32])));
    }
}
