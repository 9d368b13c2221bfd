//! Reclaiming what a publication that never completed left: the files subsystem names its
//! chunks; the index unpins them and lets go of the orphans among them (not also held as
//! replicas), whose deletion is asked of the store; once it is done, replication hears of both.

use super::store::{StoreOp, WriteFor};
use super::*;

impl ContentCore {
    pub(super) fn reclaim(&mut self, id: u64, chunks: Vec<ChunkId>) {
        let (removed, unpinned) = self.index.reclaim(&chunks);
        self.store(StoreOp::Remove { chunks: removed, why: WriteFor::Reclaim { id, unpinned } });
    }

    /// The store removed `removed` (or refused: the index is repaired already).
    pub(super) fn reclaimed(
        &mut self,
        now: Millis,
        id: u64,
        removed: Vec<ChunkId>,
        unpinned: Vec<ChunkId>,
        result: Result<(), String>,
    ) {
        if result.is_ok() {
            for &chunk in &removed {
                self.repl.handle(now, ReplIn::Dropped { chunk });
                self.effect(Effect::Event(Event::ChunkReclaimed { chunk }));
            }
            for &chunk in &unpinned {
                self.repl.handle(now, ReplIn::Unpinned { chunk });
            }
            self.update_room(now);
        }
        self.out.push_back(Output::Done(ContentResult::Reclaimed { id, result: result.map(|()| removed) }));
    }
}
