//! A peer's record as stored with the peer registry: versioned, rmp-serde encoded, with Unix
//! times (a node's clock restarts at zero each run). Decoding never panics: bytes that do not
//! decode, an unknown version or a counter out of range are errors naming what was wrong.

use super::score::{Counts, Record};
use crate::config::ReputationConfig;
use crate::time::Millis;
use crate::types::PeerId;
use serde::{Deserialize, Serialize};

/// The version this node writes and reads.
pub const VERSION: u8 = 1;

/// A stored record, counters decayed to `at_unix_ms`. An open link is stored as closed then:
/// the node that reads it back has no link yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub version: u8,
    pub peer: PeerId,
    pub at_unix_ms: u64,
    pub last_seen_unix_ms: u64,
    pub sessions: u64,
    pub counts: Counts,
}

/// Why stored bytes are not a record.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("reputation record does not decode: {0}")]
    Malformed(String),
    #[error("reputation record has version {found}; this node reads version {VERSION}")]
    Version { found: u8 },
    #[error("reputation record field `{field}` is {value}: must be a finite number >= 0")]
    Field { field: &'static str, value: f64 },
}

/// Only the version, read first so a newer layout is named as such rather than as garbage.
#[derive(Deserialize)]
struct Head {
    version: u8,
}

impl StoredRecord {
    /// `rec` as it stands at `now` (node time), for a node whose zero is `unix_epoch_ms`.
    pub fn new(peer: PeerId, rec: &Record, now: Millis, unix_epoch_ms: u64, cfg: &ReputationConfig) -> Self {
        let r = rec.at(now, cfg);
        let at_unix_ms = unix_epoch_ms.saturating_add(r.stamp.max(now));
        StoredRecord {
            version: VERSION,
            peer,
            at_unix_ms,
            last_seen_unix_ms: unix_epoch_ms.saturating_add(r.last_seen),
            sessions: r.sessions,
            counts: r.counts,
        }
    }

    /// The record at `now` (node time) of a node whose zero is `unix_epoch_ms`: decayed for the
    /// time since it was stored (none if it claims to come from the future), link closed.
    pub fn to_record(&self, now: Millis, unix_epoch_ms: u64, cfg: &ReputationConfig) -> Record {
        let now_unix = unix_epoch_ms.saturating_add(now);
        let mut r = Record {
            stamp: 0,
            last_seen: self.last_seen_unix_ms.saturating_sub(unix_epoch_ms).min(now),
            linked: false,
            sessions: self.sessions,
            counts: self.counts.clone(),
        };
        r.advance(now_unix.saturating_sub(self.at_unix_ms), cfg);
        r.stamp = now;
        r
    }

    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a record of numbers always encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<StoredRecord, DecodeError> {
        let head: Head = rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if head.version != VERSION {
            return Err(DecodeError::Version { found: head.version });
        }
        let rec: StoredRecord = rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let c = &rec.counts;
        for (field, value) in [
            ("linked_ms", c.linked_ms),
            ("churn", c.churn),
            ("served", c.served),
            ("failed", c.failed),
            ("withheld", c.withheld),
            ("rtt_ewma_ms", c.rtt_ewma_ms.unwrap_or(0.0)),
            ("rtt_samples", c.rtt_samples),
            ("malice", c.malice),
            ("violation", c.violation),
            ("noise", c.noise),
            ("warned", c.warned),
            ("slandered", c.slandered),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(DecodeError::Field { field, value });
            }
        }
        Ok(rec)
    }
}

/// A node's handle on its stored reputation records (the `reputation` table, beside the peer
/// registry): read back at start, written in the core's batches.
#[derive(Clone)]
pub struct ReputationStore {
    storage: std::rc::Rc<std::cell::RefCell<dyn crate::storage::Storage>>,
}

impl ReputationStore {
    pub fn new(storage: std::rc::Rc<std::cell::RefCell<dyn crate::storage::Storage>>) -> Self {
        ReputationStore { storage }
    }

    /// Every stored record. One that does not decode is an error naming its key: the caller must
    /// not go on storing over a table it could not read.
    pub fn restore(&self) -> Result<Vec<StoredRecord>, crate::storage::StorageError> {
        use crate::storage::{StorageError, Table};
        let entries = self.storage.borrow().scan(Table::Reputation)?;
        entries
            .into_iter()
            .map(|(k, v)| {
                StoredRecord::decode(&v).map_err(|e| StorageError::Corrupt {
                    table: Table::Reputation.name(),
                    key: hex::encode(&k),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// One batch of the core's writes, atomically.
    pub fn apply(&self, batch: &[super::PersistOp]) -> Result<(), crate::storage::StorageError> {
        use crate::storage::{Op, Table};
        let ops: Vec<Op> = batch
            .iter()
            .map(|op| match op {
                super::PersistOp::Put { peer, bytes } => {
                    Op::Put { table: Table::Reputation, key: peer.0.to_vec(), value: bytes.clone() }
                }
                super::PersistOp::Delete { peer } => Op::Delete { table: Table::Reputation, key: peer.0.to_vec() },
            })
            .collect();
        self.storage.borrow_mut().apply(&ops)
    }
}
