//! What readers are shown of a record: its winning value and its conflict log, each version with
//! its writer, time and clock. Built from a [`RecordState`]; plain data for the API.

use super::merge::RecordState;
use super::record::{RecordId, Version, VersionId};
use crate::types::PeerId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionView {
    pub id: VersionId,
    pub writer: PeerId,
    /// The write's time, Unix ms by its writer's clock.
    pub timestamp_ms: u64,
    /// The vector clock, in writer order.
    pub clock: Vec<(PeerId, u64)>,
    pub value: Vec<u8>,
}

impl VersionView {
    pub fn of(v: &Version) -> Self {
        VersionView {
            id: v.id(),
            writer: v.writer(),
            timestamp_ms: v.timestamp_ms(),
            clock: v.clock().entries().map(|(w, n)| (*w, n)).collect(),
            value: v.value().to_vec(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordView {
    pub record: RecordId,
    /// The value readers see (none only for a record never written).
    pub winner: Option<VersionView>,
    /// Versions that lost to a concurrent, later write; newest first.
    pub conflicts: Vec<VersionView>,
    /// Versions kept (winner, conflicts and superseded history).
    pub versions: usize,
}

impl RecordView {
    pub fn of(record: &RecordId, state: &RecordState) -> Self {
        RecordView {
            record: record.clone(),
            winner: state.winner().map(VersionView::of),
            conflicts: state.conflicts().into_iter().map(VersionView::of).collect(),
            versions: state.len(),
        }
    }

    /// A record this node holds nothing of.
    pub fn empty(record: &RecordId) -> Self {
        RecordView { record: record.clone(), winner: None, conflicts: Vec::new(), versions: 0 }
    }
}
