//! Typed records over [`Storage`]: values are rmp-serde encoded; a record that does not decode is
//! reported with its table and key rather than crashing the node. The peer registry lives here.

use super::{Op, Storage, StorageError, Table};
use crate::types::PeerId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub fn encode<T: Serialize>(table: Table, value: &T) -> Result<Vec<u8>, StorageError> {
    rmp_serde::to_vec_named(value).map_err(|e| StorageError::Encode { table: table.name(), reason: e.to_string() })
}

pub fn decode<T: DeserializeOwned>(table: Table, key: &[u8], bytes: &[u8]) -> Result<T, StorageError> {
    rmp_serde::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        table: table.name(),
        key: hex::encode(key),
        reason: e.to_string(),
    })
}

pub fn get<T: DeserializeOwned>(s: &dyn Storage, table: Table, key: &[u8]) -> Result<Option<T>, StorageError> {
    s.get(table, key)?.map(|b| decode(table, key, &b)).transpose()
}

pub fn put<T: Serialize>(s: &mut dyn Storage, table: Table, key: &[u8], value: &T) -> Result<(), StorageError> {
    s.put(table, key, &encode(table, value)?)
}

/// What a node remembers of a peer across restarts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerRecord {
    pub peer_id: PeerId,
    pub user_id: String,
    /// Unix milliseconds.
    pub last_seen_ms: u64,
    pub addresses: Vec<String>,
    /// Reliability score at the time of saving.
    pub reliability: f64,
    pub successes: u32,
    pub failures: u32,
}

/// The persisted peer registry.
pub struct PeerTable;

impl PeerTable {
    pub fn save(s: &mut dyn Storage, rec: &PeerRecord) -> Result<(), StorageError> {
        put(s, Table::Peers, &rec.peer_id.0, rec)
    }

    pub fn load(s: &dyn Storage, peer: &PeerId) -> Result<Option<PeerRecord>, StorageError> {
        get(s, Table::Peers, &peer.0)
    }

    /// Every stored peer, in id order. A record that does not decode is an error naming it.
    pub fn all(s: &dyn Storage) -> Result<Vec<PeerRecord>, StorageError> {
        s.scan(Table::Peers)?.iter().map(|(k, v)| decode(Table::Peers, k, v)).collect()
    }

    /// Remove, in one atomic batch, peers not seen since `now_ms - max_age_ms`. Returns how many.
    pub fn prune(s: &mut dyn Storage, now_ms: u64, max_age_ms: u64) -> Result<usize, StorageError> {
        let cutoff = now_ms.saturating_sub(max_age_ms);
        let old: Vec<Op> = Self::all(s)?
            .into_iter()
            .filter(|r| r.last_seen_ms < cutoff)
            .map(|r| Op::Delete { table: Table::Peers, key: r.peer_id.0.to_vec() })
            .collect();
        s.apply(&old)?;
        Ok(old.len())
    }
}
