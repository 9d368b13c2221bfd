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
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(DecodeError::Field { field, value });
            }
        }
        Ok(rec)
    }
}
