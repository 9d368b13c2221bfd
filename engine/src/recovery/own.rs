//! This node's own backup as the recovery core keeps it between re-shares: the current generation,
//! who acknowledged, when each holder was last seen, and K (the passphrase key, so a re-share needs
//! no passphrase). Also what outlives a restart ([`OwnRecord`], K sealed to the node's own key so
//! the database alone does not let anyone prove the passphrase), and how replacement holders are
//! suggested: linked peers by reputation standing, then by link age (an uptime the node saw itself).

use super::messages::{open, Deposit};
use super::owner::{Backup, BackupTracker};
use super::proof::{PassphraseKey, PassphraseParams};
use super::seal::{self, Sealed};
use super::split::SplitParams;
use super::Bytes32;
use crate::identity::{Envelope, Identity};
use crate::links::LinkView;
use crate::reputation::{Standing, TrustView};
use crate::time::Millis;
use crate::types::PeerId;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

const OWN_KEY_CONTEXT: &[u8] = b"swarm-recovery-own-key-v1";

/// The backup this node made of itself.
pub struct OwnBackup {
    pub backup: Backup,
    pub tracker: BackupTracker,
    pub threshold: u8,
    pub key: PassphraseKey,
    /// Re-shares made since the backup was started (kept across restarts).
    pub reshares: u64,
}

impl OwnBackup {
    pub fn params(&self) -> SplitParams {
        let shares = u8::try_from(self.backup.deposits.len()).expect("at most MAX_SHARES deposits");
        SplitParams { shares, threshold: self.threshold }
    }

    pub fn holders(&self) -> Vec<PeerId> {
        self.backup.deposits.iter().map(|(h, _)| *h).collect()
    }
}

/// What is stored of an [`OwnBackup`] (and the revocations not yet delivered).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OwnRecord {
    pub generation: u64,
    pub threshold: u8,
    pub passphrase: PassphraseParams,
    /// K, sealed to this node's own key.
    pub key: Sealed,
    pub deposits: Vec<(PeerId, Envelope)>,
    /// Per holder: acknowledged, last seen (Unix ms).
    pub holders: Vec<(PeerId, bool, u64)>,
    pub reshares: u64,
    pub revokes: Vec<(PeerId, Envelope)>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OwnError {
    #[error("stored backup does not decode: {0}")]
    Malformed(String),
    #[error("stored backup key does not open: {0}")]
    Seal(seal::SealError),
    #[error("stored deposit for {0} is not this node's, or does not check")]
    BadDeposit(String),
}

impl OwnRecord {
    /// `now_unix` / `epoch_ms`: to turn node-clock last-seen times into Unix ms.
    pub fn of(
        identity: &Identity,
        own: &OwnBackup,
        revokes: Vec<(PeerId, Envelope)>,
        epoch_ms: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Self {
        let key = seal::seal(&identity.peer_id(), OWN_KEY_CONTEXT, &own.key.to_bytes().0, rng)
            .expect("32 bytes seal to our own valid key");
        let holders = own
            .tracker
            .holders()
            .iter()
            .map(|h| (h.holder, h.acked, epoch_ms.saturating_add(h.last_seen_ms)))
            .collect();
        OwnRecord {
            generation: own.backup.generation,
            threshold: own.threshold,
            passphrase: own.backup.passphrase,
            key,
            deposits: own.backup.deposits.clone(),
            holders,
            reshares: own.reshares,
            revokes,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec(self).expect("records encode")
    }

    /// Read back a stored record; the backup (last-seen times moved to this run's node clock, a
    /// time before its start counting as its start) and the pending revocations.
    pub fn restore(
        identity: &Identity,
        bytes: &[u8],
        epoch_ms: u64,
    ) -> Result<(OwnBackup, Vec<(PeerId, Envelope)>), OwnError> {
        let r: OwnRecord = rmp_serde::from_slice(bytes).map_err(|e| OwnError::Malformed(e.to_string()))?;
        let plain = seal::open(identity, OWN_KEY_CONTEXT, &r.key).map_err(OwnError::Seal)?;
        let key = PassphraseKey::from_bytes(&Bytes32(
            plain.as_slice().try_into().map_err(|_| OwnError::Malformed("key of the wrong length".into()))?,
        ));
        let me = identity.peer_id();
        for (h, env) in &r.deposits {
            let ok = env.public_key == me
                && open::<Deposit>(env).is_ok_and(|d| d.holder == *h && d.generation == r.generation);
            if !ok {
                return Err(OwnError::BadDeposit(h.short()));
            }
        }
        let backup = Backup { generation: r.generation, passphrase: r.passphrase, deposits: r.deposits };
        let mut tracker = BackupTracker::new(me, &backup, 0);
        for (h, acked, seen_unix) in r.holders {
            tracker.restore(&h, acked, seen_unix.saturating_sub(epoch_ms));
        }
        Ok((OwnBackup { backup, tracker, threshold: r.threshold, key, reshares: r.reshares }, r.revokes))
    }
}

/// Up to `n` linked peers fit to hold a share, best first: not excluded (the owner, current
/// holders), standing at least acceptable, then by standing, then the longest-open link (a peer
/// that has been up longer is, under heavy-tailed sessions, likelier to stay), then peer id.
pub fn suggest_holders(view: &LinkView, trust: &TrustView, exclude: &BTreeSet<PeerId>, n: usize) -> Vec<PeerId> {
    let mut c: Vec<(std::cmp::Reverse<Standing>, Millis, PeerId)> = view
        .borrow()
        .iter()
        .filter(|(p, _)| !exclude.contains(p))
        .map(|(p, info)| (std::cmp::Reverse(trust.standing(p)), info.opened_at, *p))
        .filter(|(s, _, _)| s.0 >= Standing::Acceptable)
        .collect();
    c.sort();
    c.into_iter().take(n).map(|(_, _, p)| p).collect()
}
