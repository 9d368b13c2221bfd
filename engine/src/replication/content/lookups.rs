//! Iterative lookups of the content actor: questions to linked peers (or through a linked peer
//! for one reached two hops away, dialling as a fallback), answers folded into the lookup state
//! machine, and what each finished lookup was for (replica check, fetch, topology refresh).

use super::*;

/// Answerers one lookup reports to topology, at most.
const MAX_MET: usize = 64;

impl<S: Storage> ContentCore<S> {
    pub(super) fn start_lookup(&mut self, now: Millis, target: Key, purpose: Purpose) {
        if self.queries.len() >= self.rcfg.max_lookups {
            if self.waiting.len() < MAX_WAITING_LOOKUPS {
                self.waiting.push_back((target, purpose));
            } else if let Purpose::Fetch(id) = purpose {
                self.finish_fetch(now, id, Err(()));
            }
            return;
        }
        let id = self.next_query;
        self.next_query += 1;
        // Seeds: the linked peers closest to the target (reachable without a relay). A fetch's
        // retry also seeds from the routing table (those are dialled): the first lookup missed,
        // perhaps because no link reaches the chunk's region.
        let retry = match purpose {
            Purpose::Fetch(f) => self.fetches.get(&f).is_some_and(|f| f.attempts > 1),
            _ => false,
        };
        let table = if retry { self.table.borrow().closest(&target, self.rcfg.k) } else { vec![] };
        let seeds = closest(&target, self.links.peers().into_iter().chain(table), self.rcfg.k.max(self.rcfg.alpha));
        let cfg = LookupConfig { k: self.rcfg.k, alpha: self.rcfg.alpha };
        let q = Query {
            target,
            purpose,
            lookup: Lookup::new(target, seeds, cfg),
            via: BTreeMap::new(),
            info: BTreeMap::new(),
            asked: BTreeMap::new(),
            met: Vec::new(),
        };
        self.queries.insert(id, q);
        self.advance(now, id);
    }

    /// Send the lookup's next questions; finish it when it is done.
    pub(super) fn advance(&mut self, now: Millis, id: u64) {
        let deadline = now + self.rcfg.query_timeout_ms;
        for _ in 0..64 {
            let Some(q) = self.queries.get_mut(&id) else { return };
            let next = q.lookup.next_queries();
            if next.is_empty() {
                break;
            }
            let mut sends = vec![];
            let mut dials = vec![];
            for p in next {
                let msg = LookupMsg::find(id, q.target);
                if self.links.contains(&p) {
                    q.asked.insert(p, deadline);
                    sends.push((p, Message::Lookup(msg)));
                } else if let Some(v) = q.via.get(&p).copied().filter(|v| self.links.contains(v)) {
                    q.asked.insert(p, deadline);
                    sends.push((v, Message::Relay { to: p, msg }));
                } else {
                    // Named by a peer we reached through a relay ourselves: no one-hop path,
                    // so dial it (the question waits in the dial's queue).
                    q.asked.insert(p, deadline + DIAL_QUESTION_EXTRA_MS);
                    dials.push((p, Message::Lookup(msg)));
                }
            }
            self.stats.lookup_queries += (sends.len() + dials.len()) as u64;
            for (to, msg) in sends {
                self.send(to, msg);
            }
            for (to, msg) in dials {
                if !self.send_to(now, to, msg) {
                    if let Some(q) = self.queries.get_mut(&id) {
                        q.asked.remove(&to);
                        q.lookup.on_failure(&to);
                    }
                }
            }
        }
        if self.queries.get(&id).is_some_and(|q| q.lookup.is_done()) {
            self.finish_lookup(now, id);
        }
    }

    pub(super) fn finish_lookup(&mut self, now: Millis, id: u64) {
        let Some(q) = self.queries.remove(&id) else { return };
        self.stats.lookups_done += 1;
        if !q.met.is_empty() {
            self.out.push_back(Output::Seen(q.met.clone()));
        }
        let result = q.lookup.result();
        match q.purpose {
            Purpose::Check(chunk) => {
                let peers = result
                    .iter()
                    .map(|p| {
                        let i = q.info.get(p).copied().unwrap_or_default();
                        Found { peer: *p, full: i.full, holds: i.holds }
                    })
                    .collect();
                self.repl.handle(now, ReplIn::Found { chunk, peers });
                self.drain_repl(now);
            }
            Purpose::Fetch(fid) => {
                // Holders the answers named, nearest to the chunk first.
                let holders: Vec<PeerId> = q.info.iter().filter(|(_, i)| i.holds).map(|(p, _)| *p).collect();
                let holders = closest(&q.target, holders.into_iter().filter(|p| *p != self.me), usize::MAX);
                let links = &self.links;
                if let Some(f) = self.fetches.get_mut(&fid) {
                    let attempt = f.attempts;
                    f.note(now, || {
                        let near: Vec<String> = result.iter().take(4).map(|p| p.short()[..6].to_string()).collect();
                        let held: Vec<String> = holders.iter().map(|p| p.short()[..6].to_string()).collect();
                        format!("lookup {attempt}: {} answered, holders {held:?}, closest {near:?}", q.info.len())
                    });
                    f.candidates = Some(holders.into_iter().collect());
                    f.vias = q.via.iter().filter(|(_, v)| links.contains(v)).map(|(p, v)| (*p, *v)).collect();
                }
                self.try_next_holder(now, fid);
            }
            Purpose::Refresh => self.out.push_back(Output::RefreshDone),
        }
        while self.queries.len() < self.rcfg.max_lookups {
            let Some((target, purpose)) = self.waiting.pop_front() else { break };
            self.start_lookup(now, target, purpose);
        }
    }

    /// An answer from `from` (directly or relayed) to lookup `id`.
    pub(super) fn on_nodes(&mut self, now: Millis, from: PeerId, id: u64, peers: Vec<NodeInfo>) {
        let me = self.me;
        let linked: BTreeSet<PeerId> = peers.iter().map(|n| n.peer).filter(|p| self.links.contains(p)).collect();
        let Some(q) = self.queries.get_mut(&id) else { return };
        if q.asked.remove(&from).is_none() {
            return;
        }
        for n in &peers {
            if n.peer == me {
                continue;
            }
            let own = n.peer == from;
            let e = q.info.entry(n.peer).or_default();
            if own {
                // What a peer says of itself overrides what others said of it.
                *e = Info { full: n.full, holds: n.holds, own: true };
            } else if !e.own {
                e.full = n.full;
                e.holds |= n.holds;
            }
            if !own && !n.contact && !linked.contains(&n.peer) {
                q.via.entry(n.peer).or_insert(from);
            }
        }
        q.lookup.on_answer(&from, peers.iter().map(|n| n.peer).filter(|p| *p != me));
        if q.met.len() < MAX_MET {
            q.met.push(from);
        }
        self.advance(now, id);
    }

    /// Our answer to a lookup question: the closest among ourselves and our links.
    pub(super) fn answer(&self, target: [u8; 32], query: u64) -> LookupMsg {
        let key = Key(target);
        let chunk = ChunkId(target);
        // Only linked peers: they are alive now, and we can relay to them. (Naming the routing
        // table's contacts too was tried: stale ones cost the asker a dial timeout each, and
        // fetch latency doubled at 1,000 nodes.)
        let candidates = std::iter::once(self.me).chain(self.links.peers());
        let linked = closest(&key, candidates, self.rcfg.k);
        let mut peers: Vec<NodeInfo> = linked
            .iter()
            .map(|&p| {
                if p == self.me {
                    NodeInfo { peer: p, full: self.repl.is_full(), holds: self.repl.holds(&chunk), contact: false }
                } else {
                    let (full, holds) = (self.repl.neighbour_full(&p), self.repl.known_holder(&chunk, &p));
                    NodeInfo { peer: p, full, holds, contact: false }
                }
            })
            .collect();
        // Where no link comes as close to the target as contacts in our table do, name a few of
        // those (to be dialled): without them a lookup can stall in a region whose nodes have
        // no link into the target's (seen: fetches missing every holder).
        let best = linked.first().map(|p| key.distance(&Key::of_peer(p)));
        let gap = self.table.borrow().closest(&key, GAP_CONTACTS);
        let gap = gap
            .into_iter()
            .filter(|p| !self.links.contains(p) && best.is_none_or(|b| key.distance(&Key::of_peer(p)) < b));
        peers.extend(gap.map(|peer| NodeInfo { peer, full: false, holds: false, contact: true }));
        LookupMsg::Nodes { query, peers }
    }

    pub(super) fn fail_question(&mut self, now: Millis, id: u64, peer: &PeerId) {
        if let Some(q) = self.queries.get_mut(&id) {
            if q.asked.remove(peer).is_some() {
                q.lookup.on_failure(peer);
                self.advance(now, id);
            }
        }
    }
}
