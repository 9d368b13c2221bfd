//! Fetching a chunk: holders nearest first, hash-checked bytes, retries seeded from the routing
//! table, and GetVia (a linked peer fetches from the holder for us, hash-checked at both hops).

use super::*;

impl<S: Storage> ContentCore<S> {
    pub(super) fn try_next_holder(&mut self, now: Millis, id: u64) {
        loop {
            let Some(f) = self.fetches.get_mut(&id) else { return };
            let chunk = f.chunk;
            let Some(cands) = f.candidates.as_mut() else { return };
            let Some(p) = cands.pop_front() else {
                f.asking = None;
                // No holder found, or none answered: look again a little later (links change,
                // a busy holder frees a slot), while the deadline allows.
                if f.attempts < FETCH_ATTEMPTS && now + FETCH_RETRY_MS < f.deadline {
                    f.note(now, || "no holder left: retry".into());
                    f.candidates = None;
                    f.retry_at = Some(now + FETCH_RETRY_MS);
                    return;
                }
                return self.finish_fetch(now, id, Err(()));
            };
            // Not linked to the holder, but to a peer that is: ask through it (no dial).
            let via = f.vias.get(&p).copied().filter(|v| !self.links.contains(&p) && self.links.contains(v));
            if let Some(v) = via {
                f.note(now, || format!("ask {} via {}", p.short(), v.short()));
                f.asking = Some(v);
                if !self.gets.contains_key(&(v, chunk)) {
                    self.send(v, Message::GetVia { from: p, chunk });
                }
                self.get_entry(now, v, chunk).fetches.push(id);
                return;
            }
            f.note(now, || format!("ask {}{}", p.short(), if self.links.contains(&p) { "" } else { " (dial)" }));
            f.asking = Some(p);
            if self.request(now, p, chunk, Some(id)) {
                return;
            }
        }
    }

    /// `Err(())`: no holder found; a timeout is told apart by the deadline.
    pub(super) fn finish_fetch(&mut self, now: Millis, id: u64, result: Result<Vec<u8>, ()>) {
        let Some(f) = self.fetches.remove(&id) else { return };
        if let Some(p) = f.asking {
            if let Some(g) = self.gets.get_mut(&(p, f.chunk)) {
                g.fetches.retain(|x| *x != id);
                if g.is_idle() {
                    self.gets.remove(&(p, f.chunk));
                }
            }
        }
        let result = result.map_err(|()| {
            if now >= f.deadline {
                FetchError::Timeout(f.chunk)
            } else {
                FetchError::NotFound(f.chunk)
            }
        });
        let latency_ms = now.saturating_sub(f.started);
        if result.is_err() {
            tracing::info!(target: "swarm::fetch_failed", node = %self.me.short(), chunk = %f.chunk.short(), trail = ?f.trail, "fetch failed");
        }

        self.effect(Effect::Event(Event::FetchFinished { id, chunk: f.chunk, ok: result.is_ok(), latency_ms }));
        self.out.push_back(Output::Fetched { id, chunk: f.chunk, result });
    }

    pub(super) fn get_failed(&mut self, now: Millis, from: PeerId, chunk: ChunkId) {
        let Some(g) = self.gets.remove(&(from, chunk)) else { return };
        for o in g.proxied {
            if self.links.contains(&o) {
                self.send(o, Message::NoChunk { chunk });
            }
        }
        if g.repair {
            self.repl.handle(now, ReplIn::Failed { from, chunk });
            self.drain_repl(now);
        }
        for id in g.fetches {
            if let Some(f) = self.fetches.get_mut(&id) {
                f.note(now, || format!("{} failed", from.short()));
            }
            self.try_next_holder(now, id);
        }
    }

    pub(super) fn on_chunk(&mut self, now: Millis, from: PeerId, chunk: ChunkId, data: Vec<u8>) {
        if !self.gets.contains_key(&(from, chunk)) {
            return;
        }
        if ChunkId::of(&data) != chunk {
            self.stats.bad_chunks += 1;
            self.effect(Effect::Report { peer: from, offence: Offence::BadChunk });
            return self.get_failed(now, from, chunk);
        }
        let Some(g) = self.gets.remove(&(from, chunk)) else { return };
        for o in &g.proxied {
            if self.links.contains(o) {
                self.send(*o, Message::ChunkData { chunk, data: data.clone() });
            }
        }
        for id in g.fetches {
            if let Some(f) = self.fetches.get_mut(&id) {
                f.asking = None; // the request is answered
            }
            self.finish_fetch(now, id, Ok(data.clone()));
        }
        if g.repair {
            let bytes = data.len() as u32;
            match self.inv.put_chunk(&chunk, &data, crate::content::Role::Replica) {
                Ok(()) => {
                    self.repl.handle(now, ReplIn::Stored { chunk, bytes });
                    self.effect(Effect::Event(Event::ChunkStored { chunk, bytes, cause: StoreCause::Repair }));
                }
                Err(e) => {
                    tracing::debug!(node = %self.me.short(), error = %e, "replica not stored");
                    self.repl.handle(now, ReplIn::Failed { from, chunk });
                }
            }
            self.update_room(now);
            self.drain_repl(now);
        }
    }

    /// `origin` asks us to get `chunk` from `holder` for it: served from our own store if we
    /// have it, else asked of the holder if we are linked to it (never dialled: a relay must not
    /// be made to open links), within a bound on what we proxy at once.
    pub(super) fn get_for(&mut self, now: Millis, origin: PeerId, holder: PeerId, chunk: ChunkId) {
        if let Ok(Some(data)) = self.inv.get_chunk(&chunk) {
            self.stats.chunks_served += 1;
            self.stats.bytes_served += data.len() as u64;
            return self.send(origin, Message::ChunkData { chunk, data });
        }
        let proxying: usize = self.gets.values().map(|g| g.proxied.len()).sum();
        if holder == origin || !self.links.contains(&holder) || proxying >= MAX_PROXIED {
            return self.send(origin, Message::NoChunk { chunk });
        }
        if !self.gets.contains_key(&(holder, chunk)) {
            self.send(holder, Message::GetChunk { chunk });
        }
        let g = self.get_entry(now, holder, chunk);
        if !g.proxied.contains(&origin) {
            g.proxied.push(origin);
        }
    }

    pub(super) fn fetch(&mut self, now: Millis, id: u64, chunk: ChunkId) {
        let deadline = now + self.fetch_timeout_ms;
        let f = FetchState {
            chunk,
            started: now,
            deadline,
            candidates: None,
            vias: BTreeMap::new(),
            asking: None,
            attempts: 1,
            retry_at: None,
            trail: Vec::new(),
        };
        self.fetches.insert(id, f);
        match self.inv.get_chunk(&chunk) {
            Ok(Some(data)) => self.finish_fetch(now, id, Ok(data)),
            _ => self.start_lookup(now, Key::of_chunk(&chunk), Purpose::Fetch(id)),
        }
    }
}
