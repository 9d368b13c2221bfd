//! Reputation: how much a node trusts each peer, keyed by the peer's ed25519 id (a reconnect does
//! not wash a score). A score in [-100, 100], 0 neutral, sums bounded components: credit for
//! uptime, served requests and fast answers; penalties for lost links beyond an allowance and for
//! offences, heavy for proven malice (a bad signature, a chunk failing its hash), light and
//! squared over an allowance for what loss and churn also cause (malformed frames, timeouts).
//! Every component decays toward 0 with its own half-life, computed from `now`. Thresholds
//! follow gossipsub v1.1 (gossip / publish / graylist, plus an accept-PX one), scaled from the
//! values deployments use; the numbers live in [`crate::config::ReputationConfig`], each with its
//! source. Failed requests weigh in a served/asked ratio, not as offences, so loss at any rate
//! never graylists a peer that serves.
//!
//! Nodes share verdicts, not scores: a node that graylists a peer on its own evidence warns the
//! swarm (gossip), and others weigh the warning as hearsay ([`score::HEARSAY`]): a quorum of
//! distinct accusers in good standing puts a peer they have no evidence of below the publish
//! threshold (no link, no replica) but never graylists it alone; a peer that serves a node well
//! is exempt there; and a node warns only on its own evidence, so hearsay never feeds itself.

pub mod actor;
pub mod config;
pub mod core;
#[cfg(test)]
mod hearsay_tests;
pub mod persist;
pub mod score;
pub mod snapshot;
#[cfg(test)]
mod tests;
pub mod view;

pub use self::actor::ReputationActor;
pub use self::core::{Input, Output, PersistOp, ReputationCore};
pub use persist::{DecodeError, ReputationStore, StoredRecord};
pub use score::{
    Components, Counts, OffenceClass, OffenceKind, Outcome, Record, Standing, COMPONENT_NAMES, SCORE_MAX, SCORE_MIN,
};
pub use snapshot::{PeerScore, ReadScores, ScoreQuery};
pub use view::TrustView;
