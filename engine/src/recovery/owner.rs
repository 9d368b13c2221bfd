//! The user's side of recovery. Backing up: split the seed, seal each share with its holder's
//! passphrase verifier to that holder, sign, track acknowledgements, and decide (purely, from
//! `now`) when holders have been gone long enough to re-share: a fresh split under a new
//! generation, which honest holders store over the old one, and a revocation for dropped holders.
//! Recovering, on a new device with a new key: ask each holder for a challenge, answer it with the
//! passphrase proof, open the released shares, check them, and combine.
//!
//! Revocation is honest-holder revocation: a fresh split does not change the secret, so three
//! holders who all kept their old shares of one generation could still rebuild it. A departed
//! holder's old share alone is useless: shares of different generations never combine.

use super::messages::{
    deposit_context, open, release_context, sign, Ack, Challenge, ChallengeRequest, Deposit, DepositSecret,
    MessageError, Refusal, RefusalReason, Release, ReleaseRequest, Revoke,
};
use super::proof::{PassphraseKey, PassphraseParams, ProofError, Statement};
use super::seal::{self, SealError};
use super::split::{
    combine, split, verify_share, CombineError, Recovered, SecretShare, ShareFault, SplitError, SplitParams,
};
use super::Bytes32;
use crate::identity::vault::KdfParams;
use crate::identity::{Envelope, Identity};
use crate::time::Millis;
use crate::types::PeerId;
use rand_core::{CryptoRng, RngCore};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BackupConfig {
    pub params: SplitParams,
    pub kdf: KdfParams,
}

/// One generation of backup, ready to send: a signed deposit per holder, in share-index order.
#[derive(Clone, Debug)]
pub struct Backup {
    pub generation: u64,
    pub passphrase: PassphraseParams,
    pub deposits: Vec<(PeerId, Envelope)>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    #[error("{holders} holders for {shares} shares: one each")]
    HolderCount { holders: usize, shares: u8 },
    #[error("holder {0} is named twice")]
    DuplicateHolder(String),
    #[error("the owner cannot hold its own share")]
    OwnerAsHolder,
    #[error("{0}")]
    Split(SplitError),
    #[error("{0}")]
    Proof(ProofError),
    #[error("sealing to holder {holder}: {error}")]
    Seal { holder: String, error: SealError },
}

/// Split `identity` for `holders` (one share each, `holders[i]` gets index `i + 1`), under the
/// recovery `passphrase`, as backup `generation`, signed at `now_ms` (Unix ms).
pub fn build_backup(
    identity: &Identity,
    holders: &[PeerId],
    passphrase: &[u8],
    cfg: BackupConfig,
    generation: u64,
    now_ms: u64,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Backup, PassphraseKey), BackupError> {
    check_holders(identity, holders, cfg.params)?;
    let pass = PassphraseParams::generate(cfg.kdf, rng);
    let key = PassphraseKey::derive(passphrase, &pass).map_err(BackupError::Proof)?;
    let backup = build_backup_with_key(identity, holders, (&pass, &key), cfg.params, generation, now_ms, rng)?;
    Ok((backup, key))
}

fn check_holders(identity: &Identity, holders: &[PeerId], params: SplitParams) -> Result<(), BackupError> {
    let owner = identity.peer_id();
    if holders.len() != usize::from(params.shares) {
        return Err(BackupError::HolderCount { holders: holders.len(), shares: params.shares });
    }
    let mut seen = std::collections::BTreeSet::new();
    for h in holders {
        if *h == owner {
            return Err(BackupError::OwnerAsHolder);
        }
        if !seen.insert(*h) {
            return Err(BackupError::DuplicateHolder(h.short()));
        }
    }
    Ok(())
}

/// A fresh split (a new polynomial: shares of another generation never combine with these) under
/// the K the owner kept from its first backup: a re-share needs no passphrase.
pub fn build_backup_with_key(
    identity: &Identity,
    holders: &[PeerId],
    (pass, key): (&PassphraseParams, &PassphraseKey),
    params: SplitParams,
    generation: u64,
    now_ms: u64,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Backup, BackupError> {
    check_holders(identity, holders, params)?;
    let owner = identity.peer_id();
    let shares = split(identity, params, generation, now_ms, rng).map_err(BackupError::Split)?;
    let mut deposits = Vec::with_capacity(holders.len());
    for (holder, share) in holders.iter().zip(shares) {
        let index = share.index;
        let secret = DepositSecret { share, verifier: key.verifier(&owner, holder) };
        let plain = Zeroizing::new(rmp_serde::to_vec(&secret).expect("deposits encode"));
        let sealed = seal::seal(holder, &deposit_context(&owner, holder, generation, index), &plain, rng)
            .map_err(|error| BackupError::Seal { holder: holder.short(), error })?;
        let body = Deposit { holder: *holder, generation, index, passphrase: *pass, sealed };
        deposits.push((*holder, sign(identity, &body, now_ms)));
    }
    Ok(Backup { generation, passphrase: *pass, deposits })
}

/// A revocation for each of `dropped`: forget generations below `new_generation`.
pub fn revocations(
    identity: &Identity,
    dropped: &[PeerId],
    new_generation: u64,
    now_ms: u64,
) -> Vec<(PeerId, Envelope)> {
    dropped
        .iter()
        .map(|h| (*h, sign(identity, &Revoke { holder: *h, below_generation: new_generation }, now_ms)))
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("{0}")]
    Message(MessageError),
    #[error("ack from {0}, who holds no share of this backup")]
    NotAHolder(String),
    #[error("ack names owner {owner}, generation {generation}, index {index}, deposit {deposit:?}: not what was sent")]
    Mismatch { owner: String, generation: u64, index: u8, deposit: Bytes32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tracked {
    index: u8,
    deposit: Bytes32,
    acked: bool,
    last_seen_ms: Millis,
}

/// One holder of a backup, as [`BackupTracker::holders`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HolderState {
    pub holder: PeerId,
    pub index: u8,
    pub acked: bool,
    pub last_seen_ms: Millis,
}

/// Which holders of the current generation acknowledged, and when each was last seen.
#[derive(Clone, Debug)]
pub struct BackupTracker {
    owner: PeerId,
    generation: u64,
    holders: BTreeMap<PeerId, Tracked>,
}

impl BackupTracker {
    /// Track `backup` of `owner`, sent at `now` (every holder counts as seen then).
    pub fn new(owner: PeerId, backup: &Backup, now: Millis) -> Self {
        let holders = backup
            .deposits
            .iter()
            .enumerate()
            .map(|(i, (h, env))| {
                let index = u8::try_from(i + 1).expect("at most MAX_SHARES deposits");
                (*h, Tracked { index, deposit: Bytes32(env.id()), acked: false, last_seen_ms: now })
            })
            .collect();
        BackupTracker { owner, generation: backup.generation, holders }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A holder's signed acknowledgement; the index it acknowledged.
    pub fn on_ack(&mut self, env: &Envelope, now: Millis) -> Result<u8, AckError> {
        let ack: Ack = open(env).map_err(AckError::Message)?;
        let t = self.holders.get_mut(&env.public_key).ok_or_else(|| AckError::NotAHolder(env.public_key.short()))?;
        if ack.owner != self.owner
            || ack.generation != self.generation
            || ack.index != t.index
            || ack.deposit != t.deposit
        {
            return Err(AckError::Mismatch {
                owner: ack.owner.short(),
                generation: ack.generation,
                index: ack.index,
                deposit: ack.deposit,
            });
        }
        t.acked = true;
        t.last_seen_ms = t.last_seen_ms.max(now);
        Ok(t.index)
    }

    /// Put back what a stored record says of `holder` (see [`super::own::OwnRecord`]).
    pub fn restore(&mut self, holder: &PeerId, acked: bool, last_seen_ms: Millis) {
        if let Some(t) = self.holders.get_mut(holder) {
            t.acked = acked;
            t.last_seen_ms = last_seen_ms;
        }
    }

    /// The holder was seen alive (any authenticated contact) at `now`.
    pub fn seen(&mut self, holder: &PeerId, now: Millis) {
        if let Some(t) = self.holders.get_mut(holder) {
            t.last_seen_ms = t.last_seen_ms.max(now);
        }
    }

    /// Each holder with its share index, whether it acknowledged, and when it was last seen.
    pub fn holders(&self) -> Vec<HolderState> {
        self.holders
            .iter()
            .map(|(h, t)| HolderState { holder: *h, index: t.index, acked: t.acked, last_seen_ms: t.last_seen_ms })
            .collect()
    }

    pub fn is_acked(&self, holder: &PeerId) -> bool {
        self.holders.get(holder).is_some_and(|t| t.acked)
    }

    pub fn acked(&self) -> usize {
        self.holders.values().filter(|t| t.acked).count()
    }

    /// Holders not seen for more than `reshare_after_ms` at `now`: the backup should be re-shared
    /// without them when this is not empty.
    pub fn gone(&self, now: Millis, reshare_after_ms: u64) -> Vec<PeerId> {
        let since = |t: &Tracked| now.saturating_sub(t.last_seen_ms);
        self.holders.iter().filter(|(_, t)| since(t) > reshare_after_ms).map(|(h, _)| *h).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    #[error("{0}")]
    Message(MessageError),
    #[error("answer from {0} is for another owner or requester")]
    NotOurs(String),
    #[error("{0}")]
    Proof(ProofError),
    #[error("release from {holder} does not open: {error}")]
    Seal { holder: String, error: SealError },
    #[error("release from {holder} does not decode: {reason}")]
    Malformed { holder: String, reason: String },
    #[error("holder {holder} returned a bad share: {fault}")]
    BadShare { holder: String, fault: ShareFault },
    #[error("release from {holder} is labelled with another index or generation than its share")]
    Mislabelled { holder: String },
    #[error("holder {0} refused: {1}")]
    Refused(String, RefusalReason),
    #[error("already {0} shares collected")]
    Full(usize),
}

/// Shares a recovery collects at most (guess: each holder once, generations mixed).
pub const MAX_COLLECTED_SHARES: usize = 64;

/// A recovery in progress on a new device.
pub struct Recovery {
    pub(crate) owner: PeerId,
    me: Identity,
    passphrase: Zeroizing<Vec<u8>>,
    /// K for the last recipe a holder sent (holders of one generation send the same).
    key: Option<(PassphraseParams, PassphraseKey)>,
    shares: Vec<(PeerId, SecretShare)>,
}

impl Recovery {
    pub fn new(owner: PeerId, new_identity: Identity, passphrase: &[u8]) -> Self {
        Recovery {
            owner,
            me: new_identity,
            passphrase: Zeroizing::new(passphrase.to_vec()),
            key: None,
            shares: Vec::new(),
        }
    }

    /// The signed request for a challenge, to `holder`.
    pub fn challenge_request(&self, holder: &PeerId, now_ms: u64) -> Envelope {
        sign(&self.me, &ChallengeRequest { owner: self.owner, holder: *holder }, now_ms)
    }

    /// A holder's challenge: the signed release request that answers it.
    pub fn on_challenge(&mut self, env: &Envelope, now_ms: u64) -> Result<Envelope, RecoveryError> {
        let c: Challenge = open(env).map_err(RecoveryError::Message)?;
        let holder = env.public_key;
        if c.owner != self.owner || c.requester != self.me.peer_id() {
            return Err(RecoveryError::NotOurs(holder.short()));
        }
        if self.key.as_ref().is_none_or(|(p, _)| *p != c.passphrase) {
            let k = PassphraseKey::derive(&self.passphrase, &c.passphrase).map_err(RecoveryError::Proof)?;
            self.key = Some((c.passphrase, k));
        }
        let (_, key) = self.key.as_ref().expect("derived above");
        let st =
            Statement { owner: self.owner, holder, requester: self.me.peer_id(), nonce: c.nonce, timestamp_ms: now_ms };
        let request = ReleaseRequest { owner: self.owner, holder, nonce: c.nonce, proof: key.prove(&st) };
        Ok(sign(&self.me, &request, now_ms))
    }

    /// A holder's release: the share, opened and checked; its index.
    pub fn on_release(&mut self, env: &Envelope) -> Result<u8, RecoveryError> {
        let r: Release = open(env).map_err(RecoveryError::Message)?;
        let holder = env.public_key;
        let me = self.me.peer_id();
        if r.owner != self.owner || r.requester != me {
            return Err(RecoveryError::NotOurs(holder.short()));
        }
        if self.shares.len() >= MAX_COLLECTED_SHARES {
            return Err(RecoveryError::Full(self.shares.len()));
        }
        let context = release_context(&self.owner, &holder, &me, r.generation, r.index);
        let plain = seal::open(&self.me, &context, &r.sealed)
            .map_err(|error| RecoveryError::Seal { holder: holder.short(), error })?;
        let share: SecretShare = rmp_serde::from_slice(&plain)
            .map_err(|e| RecoveryError::Malformed { holder: holder.short(), reason: e.to_string() })?;
        let bad = |fault| RecoveryError::BadShare { holder: holder.short(), fault };
        let set = verify_share(&share, &self.owner).map_err(bad)?;
        if share.index != r.index || set.generation != r.generation {
            return Err(RecoveryError::Mislabelled { holder: holder.short() });
        }
        self.shares.push((holder, share));
        Ok(r.index)
    }

    /// A holder's signed refusal, as an error naming it and the reason.
    pub fn on_refusal(&self, env: &Envelope) -> RecoveryError {
        match open::<Refusal>(env) {
            Err(e) => RecoveryError::Message(e),
            Ok(r) if r.owner != self.owner || r.to != self.me.peer_id() => {
                RecoveryError::NotOurs(env.public_key.short())
            }
            Ok(r) => RecoveryError::Refused(env.public_key.short(), r.reason),
        }
    }

    /// Shares collected so far, with the holder each came from.
    pub fn collected(&self) -> Vec<(PeerId, u8)> {
        self.shares.iter().map(|(h, s)| (*h, s.index)).collect()
    }

    /// Rebuild the owner's identity from what was collected (see [`combine`]).
    pub fn finish(&self) -> Result<Recovered, CombineError> {
        let shares: Vec<SecretShare> = self.shares.iter().map(|(_, s)| s.clone()).collect();
        combine(&self.owner, &shares)
    }
}

#[cfg(test)]
#[path = "owner_tests.rs"]
mod tests;
