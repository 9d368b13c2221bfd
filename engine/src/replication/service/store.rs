//! Storage as effects (STYLE 13): the content core keeps only an [`Index`] of what it holds; the
//! chunk bytes are in a store only its wiring touches. The core asks for a read or a write with
//! `Output::Store`, changing its index when it asks for a write (expected to succeed); the
//! wiring carries it out with [`apply`] and hands the answer straight back (`Input::Written`,
//! `Input::Read`: the shell feeds it to the core before the next output), with which the core
//! finishes what it was doing, or repairs its index when the store refused. A failed read is
//! "not held" for the request it was for (logged).

use super::*;

/// What a read's bytes are for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadFor {
    /// A peer's `GetChunk`.
    Serve { to: PeerId },
    /// A routed request from `from` (`Route`) that reached us.
    Route { from: PeerId, id: u64, path: Vec<PeerId> },
    /// `origin`'s `GetVia` for a chunk `holder` holds.
    Proxy { origin: PeerId, holder: PeerId },
    /// Our own fetch `id`, of a chunk held here.
    Fetch { id: u64 },
}

/// Why a write was asked for: what the core does once it is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteFor {
    /// A chunk published here (held as own).
    Publish,
    /// A replica pulled from `from` for the replica set.
    Repair { from: PeerId },
    /// A surplus copy handed over to closer peers.
    Surplus,
    /// The files subsystem's reclaim `id`: `unpinned` stopped being own, the rest was removed.
    Reclaim { id: u64, unpinned: Vec<ChunkId> },
}

/// A storage operation the content core asks of its wiring.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreOp {
    /// Write a chunk's bytes (in the index already).
    Put { chunk: ChunkId, data: Vec<u8>, why: WriteFor },
    /// Delete chunks in one atomic batch (out of the index already: with what they were, to put
    /// back if the store refuses).
    Remove { chunks: Vec<(ChunkId, Held)>, why: WriteFor },
    /// Read a chunk's bytes.
    Read { chunk: ChunkId, why: ReadFor },
}

/// A write as it comes back (`Input::Written`), its bytes left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    Put { chunk: ChunkId, bytes: u32, why: WriteFor },
    Remove { chunks: Vec<(ChunkId, Held)>, why: WriteFor },
}

/// Carry out `op` on the store holding the chunks: the input that answers it. What the content
/// wiring does, and what tests that drive the core by hand do ([`ContentCore::poll_applying`]).
pub fn apply<S: Storage + ?Sized>(store: &mut S, op: StoreOp) -> Input {
    let err = |e: crate::storage::StorageError| e.to_string();
    match op {
        StoreOp::Put { chunk, data, why } => {
            let result = store.put(Table::Chunks, &chunk.0, &data).map_err(err);
            Input::Written { write: Written::Put { chunk, bytes: data.len() as u32, why }, result }
        }
        StoreOp::Remove { chunks, why } => {
            let ops: Vec<Op> =
                chunks.iter().map(|(id, _)| Op::Delete { table: Table::Chunks, key: id.0.to_vec() }).collect();
            let result = if ops.is_empty() { Ok(()) } else { store.apply(&ops).map_err(err) };
            Input::Written { write: Written::Remove { chunks, why }, result }
        }
        StoreOp::Read { chunk, why } => {
            Input::Read { chunk, why, data: store.get(Table::Chunks, &chunk.0).map_err(err) }
        }
    }
}

impl ContentCore {
    /// The next output that is not a storage operation, applying those to `store` and handing
    /// their answers straight back, as a node's shell and wiring do: for tests and tools that
    /// drive the core by hand.
    pub fn poll_applying<S: Storage + ?Sized>(&mut self, now: Millis, store: &mut S) -> Option<Output> {
        for _ in 0..crate::core::MAX_ANSWERS_PER_FLUSH {
            match self.poll_output()? {
                Output::Store(op) => {
                    let answer = apply(store, op);
                    self.handle(now, answer);
                }
                o => return Some(o),
            }
        }
        panic!("a content core's storage answers never end");
    }

    pub(super) fn store(&mut self, op: StoreOp) {
        self.out.push_back(Output::Store(op));
    }

    /// Read `chunk` (held, by the index) for `why`.
    pub(super) fn read(&mut self, chunk: ChunkId, why: ReadFor) {
        self.store(StoreOp::Read { chunk, why });
    }

    /// A read is back: `None` (not there, or the store failed: logged) is "not held" for the
    /// request it was for.
    pub(super) fn on_read(&mut self, now: Millis, chunk: ChunkId, why: ReadFor, data: Result<Option<Vec<u8>>, String>) {
        let data = data.unwrap_or_else(|e| {
            tracing::warn!(node = %self.me.short(), error = %e, "cannot read chunk");
            None
        });
        let data = if matches!(why, ReadFor::Fetch { .. }) { data } else { self.tamper(now, data) };
        if let (Some(d), false) = (&data, matches!(why, ReadFor::Fetch { .. })) {
            self.stats.chunks_served += 1;
            self.stats.bytes_served += d.len() as u64;
        }
        match (why, data) {
            (ReadFor::Serve { to }, Some(data)) => self.answer_send(now, to, Message::ChunkData { chunk, data }),
            (ReadFor::Serve { to }, None) => self.answer_send(now, to, Message::NoChunk { chunk }),
            (ReadFor::Route { from, id, path }, Some(data)) => {
                let hops = (path.len() - 1) as u8;
                self.answer_send(now, from, Message::RouteBack { id, chunk, path, hops, found: true, data });
            }
            (ReadFor::Route { from, id, path }, None) => self.route_on(from, id, chunk, path),
            (ReadFor::Proxy { origin, .. }, Some(data)) => {
                self.answer_send(now, origin, Message::ChunkData { chunk, data })
            }
            (ReadFor::Proxy { origin, holder }, None) => self.proxy(now, origin, holder, chunk),
            (ReadFor::Fetch { id }, data) => {
                if self.fetches.get(id).is_none_or(|f| f.chunk != chunk) {
                    return; // over already
                }
                match data {
                    Some(d) => self.finish_fetch(now, id, Ok((d, false))),
                    None => self.fetch_elsewhere(now, id, chunk),
                }
            }
        }
    }

    /// A write is back. Done: finish what asked for it. Refused: the index is repaired and it
    /// ends as a refused write did when the store was written in place.
    pub(super) fn on_written(&mut self, now: Millis, write: Written, result: Result<(), String>) {
        match write {
            Written::Put { chunk, bytes, why } => {
                if result.is_err() {
                    self.index.remove(&chunk);
                }
                match why {
                    WriteFor::Publish => self.published(now, chunk, bytes, result.map_err(PublishError::Store)),
                    WriteFor::Repair { from } => self.repaired(now, from, chunk, bytes, result),
                    other => debug_assert!(false, "a put for {other:?}"),
                }
            }
            Written::Remove { chunks, why } => {
                if let Err(e) = &result {
                    for &(id, h) in &chunks {
                        self.index.restore(id, h);
                    }
                    if let WriteFor::Reclaim { unpinned, .. } = &why {
                        self.index.repin(unpinned);
                    }
                    tracing::warn!(node = %self.me.short(), error = %e, ?why, "cannot remove chunks");
                }
                let removed = chunks.into_iter().map(|(id, _)| id);
                match why {
                    WriteFor::Surplus => {
                        if result.is_ok() {
                            for chunk in removed {
                                self.dropped(now, chunk);
                            }
                        }
                    }
                    WriteFor::Reclaim { id, unpinned } => self.reclaimed(now, id, removed.collect(), unpinned, result),
                    other => debug_assert!(false, "a removal for {other:?}"),
                }
                self.drain_repl(now);
            }
        }
    }

    /// A surplus copy is gone.
    pub(super) fn dropped(&mut self, now: Millis, chunk: ChunkId) {
        self.repl.handle(now, ReplIn::Dropped { chunk });
        self.effect(Effect::Event(Event::ChunkDropped { chunk }));
        self.update_room(now);
    }
}
