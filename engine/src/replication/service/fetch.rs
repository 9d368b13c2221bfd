//! Fetching a chunk, and serving others' fetches. A fetch asks a linked holder it knows of
//! directly; else it routes its request hop by hop toward the chunk through the links closest to
//! it (`routes.rs`), the first holder's bytes coming back along the path; only when every route
//! comes back empty does it look the chunk up and ask the holders found, nearest first, directly
//! or through a peer linked to them (`GetVia`). Bytes are checked against the chunk's address at
//! every hop; a peer whose bytes do not match is reported.

use super::fetches::{Due, Stage};
use super::lookups::Finished;
use super::routes::next_hop;
use super::*;
use crate::observer::Offence;

/// Lookups one fetch may run (the first and the retries after a miss), and the pause before
/// each retry.
const FETCH_ATTEMPTS: u32 = 3;
const FETCH_RETRY_MS: Millis = 2_000;
/// A fetch this slow logs its trail (`RUST_LOG=swarm::fetch_slow=info`): the plan asks for < 2 s.
const SLOW_FETCH_MS: Millis = 2_000;
/// Requests one node forwards for others at once (`GetVia`).
const MAX_PROXIED: usize = 64;

impl ContentCore {
    pub(super) fn fetch(&mut self, now: Millis, id: u64, chunk: ChunkId) {
        self.fetches.start(id, chunk, now, self.fetch_timeout_ms);
        if self.index.has_chunk(&chunk) {
            return self.read(chunk, ReadFor::Fetch { id });
        }
        self.fetch_elsewhere(now, id, chunk);
    }

    /// Fetch `id` from the swarm: not held here (or our store could not read it).
    pub(super) fn fetch_elsewhere(&mut self, now: Millis, id: u64, chunk: ChunkId) {
        // A linked peer we know holds it (its holdings announcement): one round trip.
        let mut known = closest(
            &Key::of_chunk(&chunk),
            self.links.peers().into_iter().filter(|p| self.repl.known_holder(&chunk, p) && !self.audits.is_suspect(p)),
            usize::MAX,
        );
        self.trust.best_first(&mut known);
        if let Some(&h) = known.first() {
            if let Some(f) = self.fetches.get_mut(id) {
                f.note(now, || format!("ask linked holder {}", h.short()));
                f.asking = Some(h);
            }
            if self.request(now, h, chunk, Waiter::Fetch(id)) {
                // The holder may have crashed without our knowing yet (heartbeats take a while),
                // or stall: if it has not answered within the hedge delay, route as well (sooner
                // for a holder that has not yet answered in time often enough to be proven).
                let hedge =
                    if self.audits.is_proven(&h) { self.rcfg.route_hedge_ms } else { self.rcfg.route_hedge_ms / 2 };
                self.fetches.hedge_at(id, now + hedge);
                return;
            }
        }
        self.send_routes(now, id);
    }

    /// Route the request through the links closest to the chunk not tried yet (or look it up,
    /// when there is none and no route is out).
    fn send_routes(&mut self, now: Millis, id: u64) {
        let Some(f) = self.fetches.get_mut(id) else { return };
        f.stage = Stage::Routing;
        let chunk = f.chunk;
        let untried = self.links.peers().into_iter().filter(|p| !f.first_hops.contains(p));
        let first = closest(&Key::of_chunk(&chunk), untried, self.rcfg.route_fanout);
        f.note(now, || {
            format!("route through {:?}", first.iter().map(|p| p.short()[..6].to_string()).collect::<Vec<_>>())
        });
        f.first_hops.extend(&first);
        if first.is_empty() {
            if self.routes.open_for(id) == 0 {
                self.look_up(now, id);
            }
            return;
        }
        for p in first {
            let rid = self.routes.open(now, id);
            self.send(p, Message::Route { id: rid, chunk, path: vec![self.me] });
        }
        // A route can die on the way (a hop's link to a crashed peer not yet expired): if no
        // answer comes within the hedge delay, more routes go out, through other links.
        self.fetches.hedge_at(id, now + self.rcfg.route_hedge_ms);
    }

    fn look_up(&mut self, now: Millis, id: u64) {
        let Some(f) = self.fetches.get_mut(id) else { return };
        f.stage = Stage::Looking;
        f.attempts += 1;
        let (target, chunk) = (Key::of_chunk(&f.chunk), f.chunk);
        if let Some(p) = f.asking.take() {
            self.transfers.leave(p, chunk, id);
        }
        self.start_lookup(now, target, Purpose::Fetch(id));
    }

    /// A route of `fetch` came back empty or timed out: when none is left, route through other
    /// links once (as the hedge would), then look the chunk up.
    pub(super) fn route_failed(&mut self, now: Millis, fetch: u64) {
        let Some(f) = self.fetches.get_mut(fetch) else { return };
        if f.stage != Stage::Routing || f.asking.is_some() || self.routes.open_for(fetch) > 0 {
            return;
        }
        if f.first_hops.len() <= self.rcfg.route_fanout {
            f.note(now, || "routes found nothing: other links".into());
            return self.send_routes(now, fetch);
        }
        f.note(now, || "routes found nothing: look up".into());
        self.look_up(now, fetch);
    }

    /// Someone's routed request for `chunk`, from `from` (the last hop of `path`): answered from
    /// our store, or passed on to a linked holder or the link closest to the chunk, or answered
    /// empty where the route ends.
    pub(super) fn on_route(&mut self, from: PeerId, id: u64, chunk: ChunkId, path: Vec<PeerId>) {
        if path.last() != Some(&from) || path.contains(&self.me) {
            return; // not a path that reached us through `from`: nothing sensible to answer
        }
        if self.index.has_chunk(&chunk) {
            return self.read(chunk, ReadFor::Route { from, id, path });
        }
        self.route_on(from, id, chunk, path);
    }

    /// A routed request we cannot answer from our store: passed on, or answered empty.
    pub(super) fn route_on(&mut self, from: PeerId, id: u64, chunk: ChunkId, mut path: Vec<PeerId>) {
        let hops = (path.len() - 1) as u8;
        let next = {
            let links = self.links.borrow();
            next_hop(&self.me, &chunk, &path, links.keys(), |p| self.repl.known_holder(&chunk, p))
        };
        match next {
            Some(n) => {
                path.push(self.me);
                self.stats.routes_forwarded += 1;
                self.send(n, Message::Route { id, chunk, path });
            }
            None => self.send(from, Message::RouteBack { id, chunk, path, hops, found: false, data: vec![] }),
        }
    }

    /// An answer travelling back along a route: passed on toward its origin, or, at the origin,
    /// the fetch's result.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_route_back(
        &mut self,
        now: Millis,
        from: PeerId,
        id: u64,
        chunk: ChunkId,
        mut path: Vec<PeerId>,
        hops: u8,
        data: Option<Vec<u8>>,
    ) {
        if path.pop() != Some(self.me) {
            return;
        }
        let data = match data {
            Some(d) if ChunkId::of(&d) != chunk => {
                self.stats.bad_chunks += 1;
                self.effect(Effect::Report { peer: from, offence: Offence::BadChunk });
                None
            }
            d => d,
        };
        let Some(&next) = path.last() else {
            // We are the origin.
            let Some(fetch) = self.routes.close(id) else { return };
            if self.fetches.get(fetch).is_none_or(|f| f.chunk != chunk) {
                return;
            }
            return match data {
                Some(d) => {
                    if let Some(f) = self.fetches.get_mut(fetch) {
                        f.note(now, || format!("routed answer from {} after {hops} hops", from.short()));
                    }
                    self.finish_fetch(now, fetch, Ok((d, hops > 0)))
                }
                None => self.route_failed(now, fetch),
            };
        };
        if self.links.contains(&next) {
            let found = data.is_some();
            self.send(next, Message::RouteBack { id, chunk, path, hops, found, data: data.unwrap_or_default() });
        }
    }

    /// The lookup of fetch `id` finished: ask the holders it found, nearest first.
    pub(super) fn holders_found(&mut self, now: Millis, id: u64, found: Finished) {
        let holders: Vec<PeerId> = found.info.iter().filter(|(_, i)| i.holds).map(|(p, _)| *p).collect();
        let mut holders = closest(
            &found.target,
            holders.into_iter().filter(|p| *p != self.me && !self.trust.is_graylisted(p)),
            usize::MAX,
        );
        self.trust.best_first(&mut holders);
        let me = self.me;
        let Some(f) = self.fetches.get_mut(id) else { return };
        let attempt = f.attempts;
        f.note(now, || {
            let near: Vec<String> = found.result.iter().take(4).map(|p| p.short()[..6].to_string()).collect();
            let held: Vec<String> = holders.iter().map(|p| p.short()[..6].to_string()).collect();
            format!("lookup {attempt}: {} answered, holders {held:?}, closest {near:?}", found.info.len())
        });
        f.stage = Stage::Asking;
        f.candidates = holders.into_iter().collect();
        f.vias = found.via.into_iter().filter(|(h, v)| h != v && *v != me).collect();
        self.try_next_holder(now, id);
    }

    pub(super) fn try_next_holder(&mut self, now: Millis, id: u64) {
        loop {
            let Some(f) = self.fetches.get_mut(id) else { return };
            if f.stage != Stage::Asking {
                return;
            }
            let chunk = f.chunk;
            let Some(p) = f.candidates.pop_front() else {
                f.asking = None;
                // No holder found, or none answered: look again a little later (links change,
                // a busy holder frees a slot), while the deadline allows.
                if f.attempts < FETCH_ATTEMPTS && now + FETCH_RETRY_MS < f.deadline {
                    f.note(now, || "no holder left: retry".into());
                    self.fetches.pause_until(id, now + FETCH_RETRY_MS);
                    return;
                }
                return self.finish_fetch(now, id, Err(()));
            };
            // Not linked to the holder, but to a peer that is: ask through it (no dial). Or the
            // holder could not be dialled: through the peer that named it, linked or not.
            let via = f
                .vias
                .get(&p)
                .copied()
                .filter(|v| !self.links.contains(&p) && (self.links.contains(v) || f.via_only.contains(&p)));
            if let Some(v) = via {
                f.note(now, || format!("ask {} via {}", p.short(), v.short()));
                f.asking = Some(v);
                f.asking_via = true;
                if self.transfers.join(now, v, chunk, Waiter::Fetch(id)) {
                    self.transfers.mark_via(&v, &chunk);
                    self.send(v, Message::GetVia { from: p, chunk });
                }
                return;
            }
            if f.via_only.contains(&p) {
                continue;
            }
            f.note(now, || format!("ask {}{}", p.short(), if self.links.contains(&p) { "" } else { " (dial)" }));
            f.asking = Some(p);
            f.asking_via = false;
            if self.request(now, p, chunk, Waiter::Fetch(id)) {
                return;
            }
        }
    }

    /// A fetch's timer: look again after a pause, or give up at the deadline.
    pub(super) fn fetch_due(&mut self, now: Millis, id: u64, due: Due) {
        match due {
            Due::Hedge => {
                if self.fetches.get(id).is_some_and(|f| f.stage == Stage::Routing) {
                    if let Some(f) = self.fetches.get_mut(id) {
                        f.note(now, || "no routed answer yet: hedge".into());
                    }
                    self.send_routes(now, id);
                }
            }
            Due::Retry => self.look_up(now, id),
            // A lookup or route still out for it finishes unheard.
            Due::Deadline => self.finish_fetch(now, id, Err(())),
        }
    }

    /// `Err(())`: no holder found; a timeout is told apart by the deadline. `Ok((bytes,
    /// relayed))`: relayed when the bytes came through another node.
    pub(super) fn finish_fetch(&mut self, now: Millis, id: u64, result: Result<(Vec<u8>, bool), ()>) {
        let Some(f) = self.fetches.remove(id) else { return };
        if let Some(p) = f.asking {
            self.transfers.leave(p, f.chunk, id);
        }
        self.lookups.cancel(Purpose::Fetch(id));
        let relayed = result.as_ref().is_ok_and(|(_, r)| *r);
        let result = result.map(|(d, _)| d).map_err(|()| {
            if now >= f.deadline {
                FetchError::Timeout(f.chunk)
            } else {
                FetchError::NotFound(f.chunk)
            }
        });
        let latency_ms = now.saturating_sub(f.started);
        if result.is_err() {
            tracing::info!(target: "swarm::fetch_failed", node = %self.me.short(), chunk = %f.chunk.short(), trail = ?f.trail, "fetch failed");
        } else if latency_ms >= SLOW_FETCH_MS {
            tracing::info!(target: "swarm::fetch_slow", node = %self.me.short(), chunk = %f.chunk.short(), latency_ms, trail = ?f.trail, "slow fetch");
        }
        let ok = result.is_ok();
        self.effect(Effect::Event(Event::FetchFinished { id, chunk: f.chunk, ok, latency_ms, relayed }));
        self.out.push_back(Output::Done(ContentResult::Fetched { id, chunk: f.chunk, result }));
    }

    pub(super) fn get_failed(&mut self, now: Millis, from: PeerId, chunk: ChunkId) {
        let Some(g) = self.transfers.take(&from, &chunk) else { return };
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
            let Some(f) = self.fetches.get_mut(id) else { continue };
            f.note(now, || format!("{} failed", from.short()));
            // A holder we asked directly failed: try once more through the peer that named it.
            if f.stage == Stage::Asking && !f.asking_via && f.vias.contains_key(&from) && f.via_only.insert(from) {
                f.candidates.push_front(from);
            }
            f.asking = None;
            match f.stage {
                // The linked holder we knew of could not: route instead (unless routes are out
                // already, hedged).
                Stage::Routing if self.routes.open_for(id) == 0 => self.send_routes(now, id),
                Stage::Routing => {}
                _ => self.try_next_holder(now, id),
            }
        }
    }

    pub(super) fn on_chunk(&mut self, now: Millis, from: PeerId, chunk: ChunkId, data: Vec<u8>) {
        if !self.transfers.contains(&from, &chunk) {
            return;
        }
        if ChunkId::of(&data) != chunk {
            self.stats.bad_chunks += 1;
            self.effect(Effect::Report { peer: from, offence: Offence::BadChunk });
            return self.get_failed(now, from, chunk);
        }
        if let Some(rtt_ms) = self.transfers.age(now, &from, &chunk) {
            self.rate(from, Outcome::Served { rtt_ms });
        }
        let Some(g) = self.transfers.take(&from, &chunk) else { return };
        for o in &g.proxied {
            if self.links.contains(o) {
                self.send(*o, Message::ChunkData { chunk, data: data.clone() });
            }
        }
        for id in g.fetches {
            let Some(f) = self.fetches.get_mut(id) else { continue };
            f.asking = None; // the request is answered
                             // Through another node when we asked a peer that is not the holder (GetVia).
            let relayed = f.stage == Stage::Asking && f.asking_via;
            self.finish_fetch(now, id, Ok((data.clone(), relayed)));
        }
        if g.repair {
            let bytes = data.len() as u32;
            match self.index.admit(&chunk, data.len(), Role::Replica) {
                Ok(true) => self.store(StoreOp::Put { chunk, data, why: WriteFor::Repair { from } }),
                Ok(false) => self.repaired(now, from, chunk, bytes, Ok(())),
                Err(e) => self.repaired(now, from, chunk, bytes, Err(e.to_string())),
            }
        }
    }

    /// A replica pulled from `from` stored (or refused): replication hears of it.
    pub(super) fn repaired(
        &mut self,
        now: Millis,
        from: PeerId,
        chunk: ChunkId,
        bytes: u32,
        result: Result<(), String>,
    ) {
        match result {
            Ok(()) => {
                self.repl.handle(now, ReplIn::Stored { chunk, bytes });
                self.effect(Effect::Event(Event::ChunkStored { chunk, bytes, cause: StoreCause::Repair }));
            }
            Err(e) => {
                tracing::debug!(node = %self.me.short(), from = %from.short(), error = %e, "replica not stored");
                self.repl.handle(now, ReplIn::NotStored { chunk });
            }
        }
        self.update_room(now);
        self.drain_repl(now);
    }

    /// `origin` asks us to get `chunk` from `holder` for it: served from our own store if we
    /// have it, else asked of the holder if we are linked to it (never dialled: a relay must not
    /// be made to open links), within a bound on what we proxy at once.
    pub(super) fn get_for(&mut self, now: Millis, origin: PeerId, holder: PeerId, chunk: ChunkId) {
        if self.index.has_chunk(&chunk) {
            return self.read(chunk, ReadFor::Proxy { origin, holder });
        }
        self.proxy(now, origin, holder, chunk);
    }

    /// Ask `holder` for `chunk` on `origin`'s behalf, if we may.
    pub(super) fn proxy(&mut self, now: Millis, origin: PeerId, holder: PeerId, chunk: ChunkId) {
        if holder == origin || !self.links.contains(&holder) || self.transfers.proxied() >= MAX_PROXIED {
            return self.send(origin, Message::NoChunk { chunk });
        }
        if self.transfers.join(now, holder, chunk, Waiter::Proxy(origin)) {
            self.send(holder, Message::GetChunk { chunk });
        }
    }
}
