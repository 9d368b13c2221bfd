//! Consistency and offline sync (issue 14): mutable records (owner, key) -> value written as signed
//! versions with vector clocks; a dominating clock wins, concurrent writes are settled by the later
//! timestamp (then writer id) and the loser is kept in the record's conflict log; replicas reconcile
//! by anti-entropy (digests, then only what differs); local writes wait in a persisted queue until
//! enough replicas acknowledge them.
//!
//! Pure cores only: `now` comes in, storage writes and messages go out. Parts: [`clock`] (vector
//! clocks), [`record`] (signed versions and grants), [`merge`] (one record's replica state and
//! its laws), [`replica`] (the record store and anti-entropy), [`queue`] (the sync queue),
//! `relays` (reaching unlinked replicas through chains of links), `reads` (reads waiting for a
//! quorum of replicas),
//! [`config`] (the `[node.sync]` section), [`service`] (the core a node runs: both of them, replica
//! sets, rounds and reads behind one input), [`view`] (what readers are shown) and [`store`] (the
//! tables, applied by the wiring).

pub mod clock;
pub mod config;
pub mod merge;
pub mod placement;
pub mod queue;
#[cfg(test)]
mod queue_tests;
mod reads;
pub mod record;
mod relays;
pub mod replica;
pub mod service;
pub mod store;
#[cfg(test)]
mod tests;
pub mod view;

pub use clock::{Causality, ClockError, VectorClock, MAX_CLOCK_ENTRIES};
pub use merge::{Applied, RecordState, Standing};
pub use queue::{QueueInput, QueueOutput, StoredWrite, SyncQueue};
pub use record::{grant, Grant, RecordError, RecordId, Version, VersionId, WriteBody};
pub use replica::{ReplicaCore, ReplicaInput, ReplicaOutput, SyncMessage};
pub use service::{Input, Output, SyncCore, SyncEvent, SyncStats, WriteError};
pub use view::{RecordView, VersionView};

/// The sync subsystem's actor: the generic shell around [`SyncCore`].
pub type SyncActor = crate::core::Shell<SyncCore, Box<dyn crate::core::Wiring<Output>>>;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why signed bytes did not decode as the record their kind names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("signed data is not a `{}`", String::from_utf8_lossy(kind))]
    WrongKind { kind: &'static [u8] },
    #[error("`{}` does not decode: {reason}", String::from_utf8_lossy(kind))]
    Malformed { kind: &'static [u8], reason: String },
}

/// Signed bytes: a domain tag (so a signature over one kind can never pass as another) followed
/// by the MessagePack encoding.
pub(crate) fn encode_body<T: Serialize>(kind: &'static [u8], body: &T) -> Vec<u8> {
    let mut out = kind.to_vec();
    // Our own plain structs always encode; a failure here is a bug, not bad input.
    out.extend(rmp_serde::to_vec(body).expect("sync records encode"));
    out
}

/// The inverse of [`encode_body`], for bytes from the network or a file.
pub(crate) fn decode_body<T: DeserializeOwned>(kind: &'static [u8], data: &[u8]) -> Result<T, BodyError> {
    let rest = data.strip_prefix(kind).ok_or(BodyError::WrongKind { kind })?;
    rmp_serde::from_slice(rest).map_err(|e| BodyError::Malformed { kind, reason: e.to_string() })
}
