//! Reads waiting for replicas, a part of the sync core: each read's record, its deadline, and
//! the peers that answered its question (`Ask` -> `Answer`). The sync core answers a read once
//! enough of its record's replicas have answered (`read_quorum`, this node counted when it is
//! one), or at its deadline with what it holds then.
//!
//! Why a quorum: writes leave the queue once `ack_quorum` replicas hold them, so a read that
//! heard `read_quorum` of the same replicas, with `read_quorum + ack_quorum > rf`, heard at
//! least one that holds every acknowledged write. Reads that answered on a timer alone missed
//! writes at live replicas (0.19-0.27% of reads at 1,000 nodes, about a quarter of them holding
//! nothing because no replica had answered yet).

use super::record::RecordId;
use super::service::OpId;
use crate::time::Millis;
use crate::types::PeerId;
use std::collections::{BTreeMap, BTreeSet};

struct Pending {
    record: RecordId,
    due: Millis,
    /// Peers that answered this read's question since it started, holding versions of it.
    heard: BTreeSet<PeerId>,
    /// Did this node hold versions of the record when the read started (it counts as one of
    /// the replicas heard when it is one; what it takes from answers does not make it one)?
    held: bool,
    /// Has it looked its replicas up again (see `SyncCore::retry`)?
    retried: bool,
}

#[derive(Default)]
pub struct Reads {
    by_op: BTreeMap<OpId, Pending>,
    /// The same reads by deadline.
    due: BTreeSet<(Millis, OpId)>,
}

impl Reads {
    pub fn start(&mut self, op: OpId, record: RecordId, due: Millis, held: bool) {
        if let Some(old) = self.by_op.insert(op, Pending { record, due, heard: BTreeSet::new(), held, retried: false })
        {
            self.due.remove(&(old.due, op));
        }
        self.due.insert((due, op));
    }

    pub fn record(&self, op: OpId) -> Option<&RecordId> {
        self.by_op.get(&op).map(|p| &p.record)
    }

    pub fn due(&self, op: OpId) -> Option<Millis> {
        self.by_op.get(&op).map(|p| p.due)
    }

    pub fn heard(&self, op: OpId) -> Option<&BTreeSet<PeerId>> {
        self.by_op.get(&op).map(|p| &p.heard)
    }

    pub fn held_at_start(&self, op: OpId) -> bool {
        self.by_op.get(&op).is_some_and(|p| p.held)
    }

    /// Mark a read as retried: false if it was already (a read retries once).
    pub fn retry(&mut self, op: OpId) -> bool {
        self.by_op.get_mut(&op).is_some_and(|p| !std::mem::replace(&mut p.retried, true))
    }

    /// Move a read's deadline.
    pub fn set_due(&mut self, op: OpId, due: Millis) {
        if let Some(p) = self.by_op.get_mut(&op) {
            self.due.remove(&(p.due, op));
            p.due = due;
            self.due.insert((due, op));
        }
    }

    /// Reads waiting on `record`, in op order.
    pub fn of(&self, record: &RecordId) -> Vec<OpId> {
        self.by_op.iter().filter(|(_, p)| p.record == *record).map(|(op, _)| *op).collect()
    }

    /// The records reads wait on.
    pub fn records(&self) -> BTreeSet<&RecordId> {
        self.by_op.values().map(|p| &p.record).collect()
    }

    /// `from` answered about `records`: the reads of them that heard it, in op order.
    pub fn answered(&mut self, from: PeerId, records: &[RecordId]) -> Vec<OpId> {
        let mut ops = Vec::new();
        for (op, p) in self.by_op.iter_mut().filter(|(_, p)| records.contains(&p.record)) {
            p.heard.insert(from);
            ops.push(*op);
        }
        ops
    }

    /// Take a read out (answered): its record.
    pub fn finish(&mut self, op: OpId) -> Option<RecordId> {
        let p = self.by_op.remove(&op)?;
        self.due.remove(&(p.due, op));
        Some(p.record)
    }

    /// The first read due by `now`.
    pub fn first_due(&self, now: Millis) -> Option<OpId> {
        self.due.first().filter(|(at, _)| *at <= now).map(|(_, op)| *op)
    }

    pub fn next_timeout(&self) -> Option<Millis> {
        self.due.first().map(|(at, _)| *at)
    }

    pub fn check_invariants(&self) {
        debug_assert_eq!(self.by_op.len(), self.due.len(), "reads and their deadlines disagree");
        debug_assert!(self.by_op.iter().all(|(op, p)| self.due.contains(&(p.due, *op))), "a read without its deadline");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str) -> RecordId {
        RecordId::new(PeerId([1; 32]), key.to_string())
    }

    #[test]
    fn answers_count_for_the_reads_of_their_records_only() {
        let mut r = Reads::default();
        r.start(1, rec("a"), 100, false);
        r.start(2, rec("b"), 50, false);
        r.start(3, rec("a"), 200, false);
        assert_eq!(r.answered(PeerId([7; 32]), &[rec("a")]), vec![1, 3]);
        assert!(r.heard(1).unwrap().contains(&PeerId([7; 32])));
        assert!(r.heard(2).unwrap().is_empty(), "a read of another record heard nothing");
        r.check_invariants();
    }

    #[test]
    fn deadlines_move_and_reads_leave_in_deadline_order() {
        let mut r = Reads::default();
        r.start(1, rec("a"), 100, false);
        r.start(2, rec("b"), 50, false);
        assert_eq!(r.next_timeout(), Some(50));
        r.set_due(2, 300);
        assert_eq!(r.first_due(99), None);
        assert_eq!(r.first_due(100), Some(1));
        assert!(r.retry(1) && !r.retry(1), "a read retries once");
        assert_eq!(r.finish(1), Some(rec("a")));
        assert_eq!(r.next_timeout(), Some(300));
        assert_eq!(r.finish(1), None, "a read is answered once");
        r.check_invariants();
        assert_eq!(r.finish(2), Some(rec("b")));
        assert_eq!(r.next_timeout(), None);
    }
}
