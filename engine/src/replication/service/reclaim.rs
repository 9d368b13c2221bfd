//! Reclaiming what a publication that never completed left: the files subsystem names its
//! chunks; the inventory removes the orphans among them (not also held as replicas) and unpins
//! the rest, and replication hears of both.

use super::*;

impl<S: Storage> ContentCore<S> {
    pub(super) fn reclaim(&mut self, now: Millis, id: u64, chunks: Vec<ChunkId>) {
        let result = self.inv.reclaim(&chunks).map_err(|e| e.to_string());
        if let Ok(r) = &result {
            for &chunk in &r.removed {
                self.repl.handle(now, ReplIn::Dropped { chunk });
                self.effect(Effect::Event(Event::ChunkReclaimed { chunk }));
            }
            for &chunk in &r.unpinned {
                self.repl.handle(now, ReplIn::Unpinned { chunk });
            }
            self.update_room(now);
        }
        if let Err(e) = &result {
            tracing::warn!(node = %self.me.short(), error = %e, "cannot reclaim chunks");
        }
        self.out.push_back(Output::Done(ContentResult::Reclaimed { id, result: result.map(|r| r.removed) }));
        self.drain_repl(now);
    }
}
