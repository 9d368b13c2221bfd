//! The trusted peer's side of recovery, a sans-IO core: it keeps one share per owner (the newest
//! generation the owner sent, still sealed to this node), acknowledges, forgets on revocation, and
//! releases a share only to a signed request that carries a live one-time challenge and a right
//! passphrase proof, sealed to the requester's new key. Proofs are rate limited per owner: at most
//! `max_attempts_per_window` in any `window_ms`, and the owner is locked for `lockout_ms` once a
//! window's attempts are spent. Storage is an output ([`Output::Store`]);
//! time is the `now` argument (Unix ms, envelopes carry Unix times).
//!
//! The attempt counters and locks are stored too (`ShardOp::Lock`, a [`LockRecord`] per owner
//! written at every proof checked), so a restart does not hand a guesser a fresh window.
//! Known limit: a `NoShare` refusal tells anyone who asks whether this node holds a share for an
//! owner.

use super::messages::{
    deposit_context, open, release_context, sign, Ack, Challenge, ChallengeByUser, ChallengeRequest, Deposit,
    DepositSecret, MessageError, Record, Refusal, RefusalReason, Release, ReleaseRequest, Revoke, MAX_USER_ID_CHARS,
};
use super::proof::Statement;
use super::seal::{self, SealError};
use super::split::{verify_share, ShareFault};
use super::store::ShardOp;
use super::Bytes32;
use crate::core::{Core, Outputs};
use crate::identity::{Envelope, Identity, Rejection};
use crate::time::Millis;
use crate::types::PeerId;
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HolderConfig {
    /// Owners whose share this node keeps, at most (guess: a node backs up a few hundred friends).
    pub max_shares_held: usize,
    /// Proofs checked per owner in any `window_ms` (plan, issue 15: 10).
    pub max_attempts_per_window: u32,
    /// Guess: one hour.
    pub window_ms: u64,
    /// How long an owner stays locked once a window's attempts are spent (guess: one day).
    pub lockout_ms: u64,
    /// How long a challenge may be answered (guess: 2 minutes, room for a slow argon2id).
    pub challenge_ttl_ms: u64,
    /// Challenges outstanding, at most; the oldest is dropped for a new one (guess).
    pub max_pending_challenges: usize,
    /// Accepted difference between a request's timestamp and `now`, either way (as envelopes).
    pub max_clock_skew_ms: u64,
}

impl Default for HolderConfig {
    fn default() -> Self {
        HolderConfig {
            max_shares_held: 256,
            max_attempts_per_window: 10,
            window_ms: 60 * 60 * 1000,
            lockout_ms: 24 * 60 * 60 * 1000,
            challenge_ttl_ms: 2 * 60 * 1000,
            max_pending_challenges: 1024,
            max_clock_skew_ms: 5 * 60 * 1000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Deposit(Envelope),
    Revoke(Envelope),
    ChallengeRequest(Envelope),
    ChallengeByUser(Envelope),
    ReleaseRequest(Envelope),
}

/// The owner a `NoShare` refusal names when it was asked for by user id and none matched.
pub const UNKNOWN_OWNER: PeerId = PeerId([0; 32]);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this signed record to `to`.
    Send { to: PeerId, envelope: Envelope },
    /// A write for the wiring: a deposit kept (`Put`), forgotten (`Delete`), or an owner's
    /// rate-limit state (`Lock`, an encoded [`LockRecord`]).
    Store(ShardOp),
    /// An input dropped without an answer (its sender cannot be trusted, or it was not for us).
    Dropped { signer: PeerId, error: HolderError },
}

/// Why an input was dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HolderError {
    #[error("{0}")]
    Message(MessageError),
    #[error("addressed to holder {0}, not this node")]
    NotForMe(String),
    #[error("timestamp outside the accepted window: {0}")]
    Clock(Rejection),
    #[error("deposit does not open: {0}")]
    Seal(SealError),
    #[error("deposit's sealed part does not decode: {0}")]
    Malformed(String),
    #[error("deposited share: {0}")]
    Share(ShareFault),
    #[error("user id of {0} characters (at most {MAX_USER_ID_CHARS})")]
    UserIdTooLong(usize),
    #[error("deposit says generation {said} / index {said_index}, its share {got} / {got_index}")]
    Inconsistent { said: u64, said_index: u8, got: u64, got_index: u8 },
}

/// Counters, for tests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HolderStats {
    pub stored: u64,
    pub revoked: u64,
    pub challenges: u64,
    /// Proofs checked (right or wrong): what the rate limit bounds.
    pub proofs_checked: u64,
    pub released: u64,
    pub refused: u64,
}

/// The rate limit's state for one owner's share, as stored (times in Unix ms, as the core's).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockRecord {
    pub owner: PeerId,
    /// The generation it counts for (a newer deposit starts afresh).
    pub generation: u64,
    pub attempts: Vec<Millis>,
    pub locked_until: Option<Millis>,
}

/// One owner's share as held: the deposit envelope as received (share sealed to us).
struct Held {
    deposit: Envelope,
    body: Deposit,
    attempts: VecDeque<Millis>,
    locked_until: Option<Millis>,
}

struct Pending {
    owner: PeerId,
    requester: PeerId,
    expires_at: Millis,
}

pub struct HolderCore {
    me: PeerId,
    identity: Identity,
    cfg: HolderConfig,
    rng: ChaCha20Rng,
    held: BTreeMap<PeerId, Held>,
    challenges: BTreeMap<Bytes32, Pending>,
    /// (expiry, nonce) of every pending challenge: the earliest is the next timeout.
    expiries: BTreeSet<(Millis, Bytes32)>,
    stats: HolderStats,
    /// The simulator's lying holder: releases a share with a changed value.
    lies: bool,
    out: Outputs<Output>,
}

impl HolderCore {
    pub fn new(identity: Identity, cfg: HolderConfig, rng: ChaCha20Rng) -> Self {
        assert!(cfg.max_attempts_per_window >= 1 && cfg.max_shares_held >= 1 && cfg.max_pending_challenges >= 1);
        HolderCore {
            me: identity.peer_id(),
            identity,
            cfg,
            rng,
            held: BTreeMap::new(),
            challenges: BTreeMap::new(),
            expiries: BTreeSet::new(),
            stats: HolderStats::default(),
            lies: false,
            out: Outputs::new(),
        }
    }

    /// Misbehave: every released share has a changed value (for the simulator's adversaries).
    pub fn set_lies(&mut self, lie: bool) {
        self.lies = lie;
    }

    pub fn peer_id(&self) -> PeerId {
        self.me
    }

    pub fn stats(&self) -> HolderStats {
        self.stats
    }

    /// The generation and index held for `owner`.
    pub fn held(&self, owner: &PeerId) -> Option<(u64, u8)> {
        self.held.get(owner).map(|h| (h.body.generation, h.body.index))
    }

    /// Put back what a previous run stored (each record checked as a new deposit would be; the
    /// ones that fail are returned with the reason). Emits no outputs.
    pub fn restore(&mut self, records: &[Vec<u8>]) -> Vec<HolderError> {
        let mut errors = Vec::new();
        for r in records {
            let checked = rmp_serde::from_slice::<Envelope>(r)
                .map_err(|e| HolderError::Malformed(e.to_string()))
                .and_then(|env| self.check_deposit(&env).map(|body| (env, body)));
            match checked {
                Ok((deposit, body)) if self.held.len() < self.cfg.max_shares_held => {
                    let fresh = Held { deposit: deposit.clone(), body, attempts: VecDeque::new(), locked_until: None };
                    self.held.insert(deposit.public_key, fresh);
                }
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Put back stored rate-limit states (after [`Self::restore`]); one for a share not held, or
    /// of another generation, is ignored. Emits no outputs.
    pub fn restore_locks(&mut self, records: &[Vec<u8>]) -> Vec<HolderError> {
        let max = self.cfg.max_attempts_per_window as usize;
        let mut errors = Vec::new();
        for r in records {
            match rmp_serde::from_slice::<LockRecord>(r) {
                Err(e) => errors.push(HolderError::Malformed(e.to_string())),
                Ok(l) => {
                    if let Some(h) = self.held.get_mut(&l.owner).filter(|h| h.body.generation == l.generation) {
                        let mut attempts = l.attempts;
                        attempts.sort_unstable();
                        let skip = attempts.len().saturating_sub(max);
                        h.attempts = attempts.into_iter().skip(skip).collect();
                        h.locked_until = l.locked_until;
                    }
                }
            }
        }
        errors
    }

    /// The rate limit's state for `owner` changed: store it.
    fn save_lock(&mut self, owner: PeerId) {
        if let Some(h) = self.held.get(&owner) {
            let l = LockRecord {
                owner,
                generation: h.body.generation,
                attempts: h.attempts.iter().copied().collect(),
                locked_until: h.locked_until,
            };
            let record = rmp_serde::to_vec(&l).expect("records encode");
            self.out.push_back(Output::Store(ShardOp::Lock { owner, record }));
        }
    }

    /// Attempts counted and the lock's end for `owner`, if held.
    pub fn lock_of(&self, owner: &PeerId) -> Option<(usize, Option<Millis>)> {
        self.held.get(owner).map(|h| (h.attempts.len(), h.locked_until))
    }

    fn reply<T: Record>(&mut self, to: PeerId, body: &T, now: Millis) {
        let envelope = sign(&self.identity, body, now);
        self.out.push_back(Output::Send { to, envelope });
    }

    fn refuse(&mut self, to: PeerId, owner: PeerId, reason: RefusalReason, now: Millis) {
        self.stats.refused += 1;
        self.reply(to, &Refusal { owner, to, reason }, now);
    }

    fn for_me(&self, holder: &PeerId) -> Result<(), HolderError> {
        if *holder != self.me {
            return Err(HolderError::NotForMe(holder.short()));
        }
        Ok(())
    }

    fn fresh(&self, env: &Envelope, now: Millis) -> Result<(), HolderError> {
        env.check_fresh(now, self.cfg.max_clock_skew_ms, self.cfg.max_clock_skew_ms).map_err(HolderError::Clock)
    }

    /// A deposit's signature, address, seal and share, checked; its body.
    fn check_deposit(&self, env: &Envelope) -> Result<Deposit, HolderError> {
        let body: Deposit = open(env).map_err(HolderError::Message)?;
        self.for_me(&body.holder)?;
        let secret = self.open_secret(env, &body)?;
        let set = verify_share(&secret.share, &env.public_key).map_err(HolderError::Share)?;
        if set.generation != body.generation || secret.share.index != body.index {
            return Err(HolderError::Inconsistent {
                said: body.generation,
                said_index: body.index,
                got: set.generation,
                got_index: secret.share.index,
            });
        }
        Ok(body)
    }

    fn open_secret(&self, env: &Envelope, body: &Deposit) -> Result<DepositSecret, HolderError> {
        let context = deposit_context(&env.public_key, &self.me, body.generation, body.index);
        let plain = seal::open(&self.identity, &context, &body.sealed).map_err(HolderError::Seal)?;
        rmp_serde::from_slice(&plain).map_err(|e| HolderError::Malformed(e.to_string()))
    }

    fn on_deposit(&mut self, now: Millis, env: Envelope) -> Result<(), HolderError> {
        let body = self.check_deposit(&env)?;
        let owner = env.public_key;
        match self.held.get(&owner) {
            Some(h) if h.body.generation > body.generation => {
                self.refuse(owner, owner, RefusalReason::OlderGeneration, now);
                return Ok(());
            }
            None if self.held.len() >= self.cfg.max_shares_held => {
                self.refuse(owner, owner, RefusalReason::Full, now);
                return Ok(());
            }
            _ => {}
        }
        // A newer generation replaces the old share (revoking it); the same one is stored again.
        let record = rmp_serde::to_vec(&env).expect("envelopes encode");
        let ack = Ack { owner, generation: body.generation, index: body.index, deposit: Bytes32(env.id()) };
        let keep = self.held.remove(&owner).filter(|h| h.body.generation == body.generation);
        let (attempts, locked_until) = keep.map(|h| (h.attempts, h.locked_until)).unwrap_or_default();
        self.held.insert(owner, Held { deposit: env, body, attempts, locked_until });
        self.stats.stored += 1;
        self.out.push_back(Output::Store(ShardOp::Put { owner, record }));
        self.reply(owner, &ack, now);
        Ok(())
    }

    fn on_revoke(&mut self, env: Envelope) -> Result<(), HolderError> {
        let body: Revoke = open(&env).map_err(HolderError::Message)?;
        self.for_me(&body.holder)?;
        let owner = env.public_key;
        if self.held.get(&owner).is_some_and(|h| h.body.generation < body.below_generation) {
            self.held.remove(&owner);
            self.stats.revoked += 1;
            self.out.push_back(Output::Store(ShardOp::Delete { owner }));
        }
        Ok(())
    }

    /// Drop attempts that left the window and a lock that ran out; `Some(until)` while the owner
    /// is locked or its window is full (no proof may be checked before then).
    fn lock_state(cfg: &HolderConfig, h: &mut Held, now: Millis) -> Option<Millis> {
        if h.locked_until.is_some_and(|until| now >= until) {
            h.locked_until = None;
        }
        while h.attempts.front().is_some_and(|&t| t.saturating_add(cfg.window_ms) <= now) {
            h.attempts.pop_front();
        }
        let full = h.attempts.len() >= cfg.max_attempts_per_window as usize;
        h.locked_until.or_else(|| full.then(|| h.attempts[0].saturating_add(cfg.window_ms)))
    }

    fn on_challenge_request(&mut self, now: Millis, env: Envelope) -> Result<(), HolderError> {
        let body: ChallengeRequest = open(&env).map_err(HolderError::Message)?;
        self.for_me(&body.holder)?;
        self.fresh(&env, now)?;
        self.challenge(now, env.public_key, body.owner);
        Ok(())
    }

    fn on_challenge_by_user(&mut self, now: Millis, env: Envelope) -> Result<(), HolderError> {
        let body: ChallengeByUser = open(&env).map_err(HolderError::Message)?;
        self.for_me(&body.holder)?;
        self.fresh(&env, now)?;
        if body.user_id.len() > MAX_USER_ID_CHARS {
            return Err(HolderError::UserIdTooLong(body.user_id.len()));
        }
        // At most `max_shares_held` owners: a scan costs less than keeping a second index right.
        let owner = self.held.keys().find(|o| crate::identity::user_id(o) == body.user_id).copied();
        self.challenge(now, env.public_key, owner.unwrap_or(UNKNOWN_OWNER));
        Ok(())
    }

    /// A fresh one-time challenge for `requester` to recover `owner`, or a refusal.
    fn challenge(&mut self, now: Millis, requester: PeerId, owner: PeerId) {
        let Some(h) = self.held.get_mut(&owner) else {
            return self.refuse(requester, owner, RefusalReason::NoShare, now);
        };
        if let Some(until_ms) = Self::lock_state(&self.cfg, h, now) {
            return self.refuse(requester, owner, RefusalReason::Locked { until_ms }, now);
        }
        let passphrase = h.body.passphrase;
        let mut nonce = Bytes32([0; 32]);
        self.rng.fill_bytes(&mut nonce.0);
        while self.challenges.len() >= self.cfg.max_pending_challenges {
            let Some((_, oldest)) = self.expiries.pop_first() else { break };
            self.challenges.remove(&oldest);
        }
        let expires_at_ms = now.saturating_add(self.cfg.challenge_ttl_ms);
        self.challenges.insert(nonce, Pending { owner, requester, expires_at: expires_at_ms });
        self.expiries.insert((expires_at_ms, nonce));
        self.stats.challenges += 1;
        self.reply(requester, &Challenge { owner, requester, nonce, expires_at_ms, passphrase }, now);
    }

    fn on_release_request(&mut self, now: Millis, env: Envelope) -> Result<(), HolderError> {
        let body: ReleaseRequest = open(&env).map_err(HolderError::Message)?;
        self.for_me(&body.holder)?;
        self.fresh(&env, now)?;
        let (requester, owner) = (env.public_key, body.owner);
        let Some(h) = self.held.get_mut(&owner) else {
            self.refuse(requester, owner, RefusalReason::NoShare, now);
            return Ok(());
        };
        if let Some(until_ms) = Self::lock_state(&self.cfg, h, now) {
            self.refuse(requester, owner, RefusalReason::Locked { until_ms }, now);
            return Ok(());
        }
        // The challenge is spent by the request that names it, whatever the proof.
        let live = match self.challenges.get(&body.nonce) {
            Some(p) if p.requester == requester && p.owner == owner => {
                let p = self.challenges.remove(&body.nonce).expect("just read");
                self.expiries.remove(&(p.expires_at, body.nonce));
                p.expires_at > now
            }
            _ => false,
        };
        if !live {
            self.refuse(requester, owner, RefusalReason::NoChallenge, now);
            return Ok(());
        }
        let max = self.cfg.max_attempts_per_window;
        let h = self.held.get_mut(&owner).expect("held above");
        debug_assert!(h.attempts.len() < max as usize, "a full window refuses before this");
        h.attempts.push_back(now);
        let (deposit, dep_body) = (h.deposit.clone(), h.body.clone());
        self.stats.proofs_checked += 1;
        let secret = self.open_secret(&deposit, &dep_body)?;
        let st = Statement { owner, holder: self.me, requester, nonce: body.nonce, timestamp_ms: env.timestamp_ms };
        if secret.verifier.check(&st, &body.proof).is_err() {
            let h = self.held.get_mut(&owner).expect("held above");
            let used = h.attempts.len() as u32;
            let reason = if used >= max {
                let until_ms = now.saturating_add(self.cfg.lockout_ms);
                h.locked_until = Some(until_ms);
                RefusalReason::Locked { until_ms }
            } else {
                RefusalReason::WrongProof { attempts_left: max - used }
            };
            self.save_lock(owner);
            self.refuse(requester, owner, reason, now);
            return Ok(());
        }
        self.save_lock(owner);
        let (generation, index) = (dep_body.generation, dep_body.index);
        let mut share = secret.share.clone();
        if self.lies {
            share.low.0[0] ^= 1;
        }
        let plain = rmp_serde::to_vec(&share).expect("shares encode");
        let context = release_context(&owner, &self.me, &requester, generation, index);
        let sealed = seal::seal(&requester, &context, &plain, &mut self.rng).map_err(HolderError::Seal)?;
        self.stats.released += 1;
        self.reply(requester, &Release { owner, requester, generation, index, sealed }, now);
        Ok(())
    }

    fn signer_of(input: &Input) -> PeerId {
        match input {
            Input::Deposit(e)
            | Input::Revoke(e)
            | Input::ChallengeRequest(e)
            | Input::ChallengeByUser(e)
            | Input::ReleaseRequest(e) => e.public_key,
        }
    }
}

impl Core for HolderCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        let signer = Self::signer_of(&input);
        let r = match input {
            Input::Deposit(e) => self.on_deposit(now, e),
            Input::Revoke(e) => self.on_revoke(e),
            Input::ChallengeRequest(e) => self.on_challenge_request(now, e),
            Input::ChallengeByUser(e) => self.on_challenge_by_user(now, e),
            Input::ReleaseRequest(e) => self.on_release_request(now, e),
        };
        if let Err(error) = r {
            self.out.push_back(Output::Dropped { signer, error });
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        while let Some(&(t, nonce)) = self.expiries.first() {
            if t > now {
                break;
            }
            self.expiries.pop_first();
            self.challenges.remove(&nonce);
        }
    }

    fn next_timeout(&self) -> Option<Millis> {
        self.expiries.first().map(|(t, _)| *t)
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        debug_assert!(self.held.len() <= self.cfg.max_shares_held);
        debug_assert!(self.challenges.len() <= self.cfg.max_pending_challenges);
        debug_assert_eq!(self.challenges.len(), self.expiries.len());
        let max = self.cfg.max_attempts_per_window as usize;
        debug_assert!(self.held.values().all(|h| h.attempts.len() <= max));
    }
}

#[cfg(test)]
#[path = "holder_tests.rs"]
pub(crate) mod tests;
