//! What the recovery core takes and gives: its configuration, inputs, outputs and the events
//! a node's listener is told (re-exported by [`super::service`]).

use super::holder::HolderConfig;
use super::messages::OwnerRef;
use super::owner::{BackupError, HolderState};
use super::session::Asked;
use crate::core::{Effect, LinkEvent};
use crate::identity::vault::KdfParams;
use crate::identity::{Envelope, Identity};
use crate::types::PeerId;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub const MAX_SESSIONS: usize = 4;
/// Holders one recovery may ask, at most (the split allows 16 shares).
pub const MAX_SESSION_HOLDERS: usize = super::split::MAX_SHARES as usize;

/// Revocations waiting for their holder's next link, at most (the oldest is dropped).
pub const MAX_PENDING_REVOKES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    pub holder: HolderConfig,
    /// The recovery passphrase's argon2id cost (the vault's default: OWASP's 19 MiB, 2 passes).
    pub kdf: KdfParams,
    /// A holder not seen for this long is replaced by a re-share (guess: a day; the simulator's
    /// recovery scenario uses minutes).
    pub reshare_after_ms: u64,
    /// How often the owner looks at its holders (and dials the ones not seen since the last look).
    pub check_interval_ms: u64,
    /// Peers closest to the list key that keep the published holder list. Content uses RF 3;
    /// the list is ~300 bytes and, once the device is gone, the only way from a user id to the
    /// holders, so it gets 5: in the recovery scenario (20% of the nodes are owners that lose
    /// their devices at once, under 50% turnover) RF 3 lost 3 owners' lists in 200.
    pub list_rf: usize,
    /// Independent keys the list is kept near, `list_rf` peers each. One key failed 1 owner in
    /// 843 in the recovery scenario: at device loss 40 owners and up to 80 of their holders crash
    /// at one instant (up to 60% of the swarm), and every keeper near that owner's key was among
    /// them. Three regions make that a product of three such chances; ~300 bytes per keeper.
    pub list_regions: u8,
    /// Holder lists this node keeps for others, at most.
    pub max_lists_held: usize,
    /// Peers a recovery that looks for the holder list asks at once, and how many closest ones
    /// must have answered before it gives up on finding the list.
    pub list_lookup_alpha: usize,
    pub list_lookup_k: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            holder: HolderConfig::default(),
            kdf: KdfParams::default(),
            reshare_after_ms: 24 * 60 * 60 * 1000,
            check_interval_ms: 10 * 60 * 1000,
            list_rf: 5,
            list_regions: 3,
            max_lists_held: 1024,
            list_lookup_alpha: 3,
            list_lookup_k: 10, // twice RF: a list keeper that left is passed over
        }
    }
}

impl RecoveryConfig {
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        use crate::config::check;
        check(self.check_interval_ms > 0, "recovery.check_interval_ms", "must be above 0")?;
        check(
            self.reshare_after_ms >= self.check_interval_ms,
            "recovery.reshare_after_ms",
            "must be at least check_interval_ms",
        )?;
        check(self.list_rf >= 1, "recovery.list_rf", "must be at least 1")?;
        check(
            (1..=super::list::MAX_LIST_REGIONS).contains(&self.list_regions),
            "recovery.list_regions",
            "must be 1 to 8",
        )?;
        check(self.max_lists_held >= 1, "recovery.max_lists_held", "must be at least 1")?;
        check(self.list_lookup_alpha >= 1, "recovery.list_lookup_alpha", "must be at least 1")?;
        check(self.list_lookup_k >= 1, "recovery.list_lookup_k", "must be at least 1")?;
        check(self.holder.max_attempts_per_window >= 1, "recovery.holder.max_attempts_per_window", "at least 1")?;
        check(self.holder.max_shares_held >= 1, "recovery.holder.max_shares_held", "at least 1")?;
        check(self.holder.max_pending_challenges >= 1, "recovery.holder.max_pending_challenges", "at least 1")
    }
}

pub type OpId = u64;

#[derive(Debug)]
pub enum Input {
    /// A recovery record from a proved link.
    Frame {
        from: PeerId,
        envelope: Envelope,
    },
    Link(LinkEvent),
    /// Back this node's identity up with `holders` (one share each), any `threshold` of them
    /// recovering it under `passphrase`. Replaces an earlier backup (its holders no longer named
    /// are told to forget their shares).
    Backup {
        op: OpId,
        holders: Vec<PeerId>,
        threshold: u8,
        passphrase: Zeroizing<Vec<u8>>,
    },
    /// The same with `shares` holders suggested among linked peers (by standing and uptime).
    BackupSuggested {
        op: OpId,
        shares: u8,
        threshold: u8,
        passphrase: Zeroizing<Vec<u8>>,
    },
    Status {
        op: OpId,
    },
    /// Rebuild `owner`'s identity from shares `holders` release, within `timeout_ms`. With no
    /// holders named and a user id, the holders are found from the published holder list.
    Recover {
        op: OpId,
        owner: OwnerRef,
        holders: Vec<PeerId>,
        passphrase: Zeroizing<Vec<u8>>,
        timeout_ms: u64,
    },
}

pub use super::store::ShardOp;

#[derive(Debug)]
pub enum Output {
    Effect(Effect),
    /// Exactly these peers are wanted for `Purpose::Recovery`.
    Want(Vec<PeerId>),
    Store(ShardOp),
    /// An input dropped, and why (logged).
    Dropped {
        from: PeerId,
        error: String,
    },
    Done(RecoveryEvent),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupStatus {
    /// 0 when this node has not backed up.
    pub generation: u64,
    pub threshold: u8,
    /// Re-shares since the backup was made.
    pub reshares: u64,
    /// Last seen in Unix ms.
    pub holders: Vec<HolderState>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoverError {
    #[error("{MAX_SESSIONS} recoveries are running already")]
    Busy,
    #[error("no holders named")]
    NoHolders,
    #[error("{0} holders named, at most {MAX_SESSION_HOLDERS}")]
    TooManyHolders(usize),
    #[error("this node's own key cannot be a holder")]
    SelfAsHolder,
    #[error("the recovery passphrase is empty")]
    EmptyPassphrase,
    #[error("timed out after {timeout_ms} ms: {why}")]
    TimedOut { timeout_ms: u64, why: String },
    #[error("every holder answered, and the key is not rebuilt: {0}")]
    Failed(String),
    #[error("no holder list found for user id {0} (no holders named, and none of the peers near its key keeps one)")]
    NoList(String),
}

#[derive(Debug)]
pub enum RecoveryEvent {
    BackupStarted {
        op: OpId,
        result: Result<BackupStatus, BackupError>,
    },
    Status {
        op: OpId,
        status: BackupStatus,
    },
    Recovered {
        op: OpId,
        /// Per holder: what it gave (for the user's report).
        holders: Vec<(PeerId, Asked)>,
        result: Result<Identity, RecoverError>,
    },
    /// This node's backup was re-shared: `replaced` holders were gone, `by` took their places.
    Reshared {
        generation: u64,
        replaced: Vec<PeerId>,
        by: Vec<PeerId>,
    },
}
