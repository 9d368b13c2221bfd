//! The content service: everything a node does with chunks, as one core that owns several small
//! machines, each with its own state, invariants and deadlines:
//!
//! - the **index** (the chunks held, their sizes and roles, capacity: [`Index`]); their bytes are
//!   in a store only the wiring touches, read and written as effects (`store.rs`);
//! - **replication** (placement and repair rules: [`ReplicationCore`]), whose outputs are turned
//!   into frames here;
//! - **routes** (`routes.rs`): a fetch's request passed hop by hop over links toward the chunk,
//!   answered along the same path by the first holder (no dial, no lookup);
//! - **lookups** (`lookups.rs`): iterative XOR lookups over links and one-hop relays, for replica
//!   checks, topology's refreshes, and fetches whose routes found nothing;
//! - **transfers** (`transfers.rs`): `GetChunk` requests with their waiters (a repair, fetches,
//!   peers we get a chunk for through `GetVia`);
//! - **fetches** (`fetches.rs`): each fetch's stage, candidates and timers.
//!
//! Links are the connection manager's ([`crate::links`]): this core reads the link set and, to
//! reach a replica-set member no link reaches, asks for an exchange link and queues what it has to
//! send until it is up. The peers lookups meet go to topology's routing table (`Output::Seen`).
//! One actor: all of these share the index and the link set, and split into several actors
//! every frame would cost extra mailbox hops.

use super::core::{Input as ReplIn, Output as ReplOut, ReplicationCore, ReplicationStats};
use crate::config::{ReplicationConfig, RoutingConfig};
use crate::content::{ChunkId, Held, Index, Role, MAX_CHUNK_BYTES, TAG_BYTES};
use crate::core::{Core, Effect, LinkEvent, Outputs};
use crate::links::LinkView;
use crate::observer::{Event, StoreCause};
use crate::reputation::{Outcome, TrustView};
use crate::routing::{closest, Key, TableView};
use crate::storage::{Op, Storage, Table};
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::{LookupMsg, Message, NodeInfo, Relayed, MAX_HOLDINGS};
use std::collections::{BTreeMap, BTreeSet};

mod audits;
mod faults;
mod fetch;
mod fetches;
mod lookups;
mod outcome;
mod reclaim;
mod routes;
mod store;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;
mod transfers;

use audits::Audits;
pub use faults::ContentFaults;
use fetches::Fetches;
use lookups::{Ask, Lookups, Purpose};
pub use outcome::{ContentResult, ContentStats, FetchError, Output, PublishError};
use routes::Routes;
pub use store::{apply, ReadFor, StoreOp, WriteFor, Written};
use transfers::{Transfers, Waiter};

/// Frames queued for one peer while its link is being made.
const MAX_QUEUED_PER_DIAL: usize = 16;
/// Exchange links asked for and not up yet, at once.
const MAX_EXCHANGE_DIALS: usize = 16;
/// An exchange link asked for and neither up nor refused within this long is given up (a
/// backstop: the manager answers every want within its own dial timeout).
const EXCHANGE_WAIT_MS: Millis = 15_000;
/// Table contacts a lookup answer names where the answerer's links leave a gap.
const GAP_CONTACTS: usize = 2;

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Link(LinkEvent),
    /// A content, replication or routing frame from a proved peer.
    Frame {
        from: PeerId,
        msg: Message,
    },
    /// Publish an encrypted chunk (its address is the SHA-256 of these bytes).
    Publish {
        data: Vec<u8>,
    },
    /// Find and download a chunk; answered by `Output::Fetched` with the same `id`.
    Fetch {
        id: u64,
        chunk: ChunkId,
    },
    /// Topology asks for a lookup of `target` (answered with `Output::Seen` and
    /// `Output::RefreshDone`).
    Refresh {
        target: Key,
    },
    /// The sync subsystem asks for the live peers closest to `target` (answered with
    /// `Output::PeersFound`).
    FindPeers {
        target: Key,
    },
    /// The files subsystem no longer references these chunks (a publication that failed or was
    /// aborted): unpin them and remove the orphans (see `reclaim.rs`); answered by
    /// `Output::Reclaimed` with the same `id`.
    Reclaim {
        id: u64,
        chunks: Vec<ChunkId>,
    },
    /// A write asked for with `Output::Store`, done or refused by the store (see `store.rs`).
    Written {
        write: Written,
        result: Result<(), String>,
    },
    /// A read asked for with `Output::Store`: the bytes, `None` if the store has none.
    Read {
        chunk: ChunkId,
        why: ReadFor,
        data: Result<Option<Vec<u8>>, String>,
    },
}

/// What waits for an exchange link asked for.
#[derive(Clone, Debug)]
struct Pending {
    deadline: Millis,
    queued: Vec<Message>,
}

pub struct ContentCore {
    me: PeerId,
    rcfg: RoutingConfig,
    fetch_timeout_ms: Millis,
    index: Index,
    repl: ReplicationCore,
    links: LinkView,
    /// Topology's routing table (read only here: the contacts an answer names in a gap).
    table: TableView,
    lookups: Lookups,
    routes: Routes,
    transfers: Transfers,
    fetches: Fetches,
    pending: BTreeMap<PeerId, Pending>,
    pending_deadlines: BTreeSet<(Millis, PeerId)>,
    stats: ContentStats,
    /// Standings: whom replicas may go to, which holders are asked first.
    trust: TrustView,
    /// None on a real node (see `faults.rs`).
    faults: ContentFaults,
    audits: Audits,
    audit_interval_ms: Millis,
    /// Answers the slow fault holds back, in the order they are due.
    delayed: std::collections::VecDeque<(Millis, PeerId, Message)>,
    /// When the flood fault's next burst is due.
    flood_next_ms: Millis,
    out: Outputs<Output>,
}

impl ContentCore {
    pub fn new(
        me: PeerId,
        cfg: ReplicationConfig,
        rcfg: RoutingConfig,
        index: Index,
        links: LinkView,
        table: TableView,
    ) -> Self {
        let fetch_timeout_ms = cfg.fetch_timeout_ms;
        let chunk_max = (MAX_CHUNK_BYTES + TAG_BYTES) as u32;
        let first_round = cfg.repair_interval_ms;
        let request_timeout_ms = rcfg.query_timeout_ms.max(1) * 2;
        let audit_interval_ms = cfg.audit_interval_ms;
        let mut repl = ReplicationCore::new(me, cfg, chunk_max, first_round);
        // What a previous run stored is held again (checked against the network at once): the
        // chunks of completed publications pinned, everything else as replicas (droppable as
        // surplus). Sizes come from the index, built without reading the chunks.
        for (&chunk, h) in index.all_held() {
            let bytes = h.bytes;
            repl.handle(0, if h.own { ReplIn::Kept { chunk, bytes } } else { ReplIn::Stored { chunk, bytes } });
        }
        repl.handle(0, ReplIn::Room { full: !index.has_room(chunk_max as usize) });
        let mut core = ContentCore {
            me,
            lookups: Lookups::new(me, rcfg.clone()),
            routes: Routes::new(rcfg.route_timeout_ms),
            transfers: Transfers::new(request_timeout_ms),
            fetches: Fetches::default(),
            rcfg,
            fetch_timeout_ms,
            index,
            repl,
            links,
            table,
            pending: BTreeMap::new(),
            pending_deadlines: BTreeSet::new(),
            stats: ContentStats::default(),
            trust: TrustView::default(),
            faults: ContentFaults::default(),
            audits: Audits::default(),
            audit_interval_ms: 0,
            delayed: std::collections::VecDeque::new(),
            flood_next_ms: 0,
            out: Outputs::new(),
        };
        core.start_audits(audit_interval_ms);
        core.drain_repl(0);
        core
    }

    /// Decide by these standings (a node without reputation keeps the neutral default).
    pub fn with_trust(mut self, trust: TrustView) -> Self {
        self.trust = trust;
        self
    }

    /// A request to `peer` ended: for reputation.
    fn rate(&mut self, peer: PeerId, outcome: Outcome) {
        // An answer slower than a lookup question may take is no pass (reputation counts it as
        // failed past its own `late_after_ms`, by default the same 2 s).
        let late = self.rcfg.query_timeout_ms;
        let verdict = match outcome {
            Outcome::Served { rtt_ms } => Some(rtt_ms <= late),
            Outcome::Withheld => Some(false),
            Outcome::Failed => None,
        };
        self.audits.outcome(peer, verdict);
        if verdict != Some(true) {
            self.effect(Effect::Event(Event::RequestFailed { peer, answered: verdict.is_some() }));
        }
        self.out.push_back(Output::Rated { peer, outcome });
    }

    pub fn stats(&self) -> ContentStats {
        ContentStats { replication: self.repl.stats(), lookup_queries: self.lookups.questions, ..self.stats }
    }

    /// What this node holds (the bytes are in its wiring's store).
    pub fn index(&self) -> &Index {
        &self.index
    }

    fn effect(&mut self, e: Effect) {
        self.out.push_back(Output::Effect(e));
    }

    fn send(&mut self, to: PeerId, msg: Message) {
        self.effect(Effect::Send { to, msg });
    }

    /// Send to a peer, asking for an exchange link first if we are not linked. Returns false
    /// when that is not possible now (too many links asked for, queue full): the caller counts
    /// it as a failure.
    fn send_to(&mut self, now: Millis, to: PeerId, msg: Message) -> bool {
        if to == self.me {
            return false;
        }
        if self.links.contains(&to) {
            self.send(to, msg);
            return true;
        }
        if let Some(d) = self.pending.get_mut(&to) {
            if d.queued.len() >= MAX_QUEUED_PER_DIAL {
                return false;
            }
            d.queued.push(msg);
            return true;
        }
        if self.pending.len() >= MAX_EXCHANGE_DIALS {
            return false;
        }
        let deadline = now + EXCHANGE_WAIT_MS;
        self.pending.insert(to, Pending { deadline, queued: vec![msg] });
        self.pending_deadlines.insert((deadline, to));
        self.out.push_back(Output::Want(to));
        true
    }

    fn take_pending(&mut self, peer: &PeerId) -> Option<Pending> {
        let d = self.pending.remove(peer)?;
        self.pending_deadlines.remove(&(d.deadline, *peer));
        Some(d)
    }

    /// Everything queued for a link that will not come.
    fn pending_failed(&mut self, now: Millis, peer: PeerId) {
        if let Some(d) = self.take_pending(&peer) {
            for msg in d.queued {
                if let Message::GetChunk { chunk } = msg {
                    self.get_failed(now, peer, chunk);
                }
            }
        }
    }

    // ---- replication outputs -> frames ----------------------------------------------------

    fn drain_repl(&mut self, now: Millis) {
        while let Some(o) = self.repl.poll_output() {
            match o {
                ReplOut::Announce { to, held, released, full } => {
                    // Split so every frame stays within the wire limit.
                    let mut held = held.chunks(MAX_HOLDINGS).map(<[ChunkId]>::to_vec).collect::<Vec<_>>();
                    let mut released = released.chunks(MAX_HOLDINGS).map(<[ChunkId]>::to_vec).collect::<Vec<_>>();
                    let frames = held.len().max(released.len()).max(1);
                    held.resize(frames, vec![]);
                    released.resize(frames, vec![]);
                    for (h, r) in held.into_iter().zip(released) {
                        let msg = Message::Holdings { held: h, released: r, full };
                        self.effect(Effect::Broadcast { to: to.clone(), msg });
                    }
                }
                ReplOut::Request { to, chunk } => {
                    if !self.request(now, to, chunk, Waiter::Repair) {
                        self.repl.handle(now, ReplIn::Failed { from: to, chunk });
                    }
                }
                ReplOut::Lookup { chunk } => self.start_lookup(now, Key::of_chunk(&chunk), Purpose::Check(chunk)),
                ReplOut::Offer { to, chunk } => {
                    if self.trust.allows_publish(&to) {
                        self.send_to(now, to, Message::Offer { chunk });
                    }
                }
                ReplOut::Drop { chunk } => match self.index.remove(&chunk) {
                    Some(h) => self.store(StoreOp::Remove { chunks: vec![(chunk, h)], why: WriteFor::Surplus }),
                    None => self.dropped(now, chunk),
                },
            }
        }
    }

    /// Ask `to` for `chunk` on behalf of `w`, joining a request already out. False if it cannot
    /// be sent now.
    fn request(&mut self, now: Millis, to: PeerId, chunk: ChunkId, w: Waiter) -> bool {
        if !self.transfers.contains(&to, &chunk) && !self.send_to(now, to, Message::GetChunk { chunk }) {
            return false;
        }
        self.transfers.join(now, to, chunk, w);
        true
    }

    fn update_room(&mut self, now: Millis) {
        let full = !self.index.has_room(MAX_CHUNK_BYTES + TAG_BYTES);
        self.repl.handle(now, ReplIn::Room { full });
    }

    // ---- lookups ---------------------------------------------------------------------------

    fn start_lookup(&mut self, now: Millis, target: Key, purpose: Purpose) {
        if !self.lookups.start(now, target, purpose, &self.links) {
            match purpose {
                Purpose::Fetch(id) => self.finish_fetch(now, id, Err(())),
                Purpose::Peers(target) => {
                    self.out.push_back(Output::PeersFound { target, peers: Vec::new(), relays: Default::default() })
                }
                Purpose::Check(_) | Purpose::Refresh => {}
            }
        }
        self.drain_lookups(now);
    }

    /// Send the lookups' questions and act on the lookups that finished.
    fn drain_lookups(&mut self, now: Millis) {
        loop {
            while let Some(ask) = self.lookups.poll_ask() {
                match ask {
                    Ask::Direct { to, msg } => self.send(to, Message::Lookup(msg)),
                    Ask::Via { path, to, msg } => {
                        let (first, frame) = Message::relay(&path, to, Relayed::Lookup(msg));
                        self.send(first, frame);
                    }
                    Ask::Dial { to, msg } => {
                        if !self.send_to(now, to, Message::Lookup(msg)) {
                            self.lookups.peer_gone(now, &to, &self.links);
                        }
                    }
                }
            }
            let Some(f) = self.lookups.poll_finished() else { break };
            self.stats.lookups_done += 1;
            if !f.met.is_empty() {
                self.out.push_back(Output::Seen(f.met.clone()));
            }
            if !f.contacts.is_empty() {
                self.out.push_back(Output::Heard(f.contacts.clone()));
            }
            match f.purpose {
                Purpose::Check(chunk) => {
                    let peers = f
                        .result
                        .iter()
                        .filter(|p| self.trust.allows_publish(p))
                        .map(|p| {
                            let i = f.info.get(p).copied().unwrap_or_default();
                            super::Found { peer: *p, full: i.full, holds: i.holds }
                        })
                        .collect();
                    self.repl.handle(now, ReplIn::Found { chunk, peers });
                    self.drain_repl(now);
                }
                Purpose::Fetch(id) => self.holders_found(now, id, f),
                Purpose::Refresh => self.out.push_back(Output::RefreshDone),
                Purpose::Peers(target) => {
                    let relays = f.result.iter().filter_map(|p| Some((*p, f.paths.get(p)?.clone()))).collect();
                    self.out.push_back(Output::PeersFound { target, peers: f.result.clone(), relays })
                }
            }
        }
    }

    /// Our answer to a lookup question: the closest among ourselves and our links, with what we
    /// know of each (full, holds the chunk `target` names).
    fn answer(&self, target: [u8; 32], query: u64) -> LookupMsg {
        let key = Key(target);
        let chunk = ChunkId(target);
        // Only linked peers: they are alive now, and we can relay to them.
        let linked = closest(&key, std::iter::once(self.me).chain(self.links.peers()), self.rcfg.k);
        let holders = self.repl.known_holders(&chunk);
        let mut peers: Vec<NodeInfo> = linked
            .iter()
            .map(|&p| {
                if p == self.me {
                    NodeInfo { peer: p, full: self.repl.is_full(), holds: self.repl.holds(&chunk), contact: false }
                } else {
                    let (full, holds) = (self.repl.neighbour_full(&p), holders.is_some_and(|h| h.contains(&p)));
                    NodeInfo { peer: p, full, holds, contact: false }
                }
            })
            .collect();
        // Where no link comes as close to the target as contacts in our table do, name a few of
        // those (marked `contact`: not linked, perhaps stale). Lookups do not ask them, but the
        // asker's topology learns of them: without this, two halves of a healed partition never
        // find each other again (each side's links name only its own side).
        let best = linked.first().map(|p| key.distance(&Key::of_peer(p)));
        let gap = self.table.borrow().closest(&key, GAP_CONTACTS);
        let gap = gap
            .into_iter()
            .filter(|p| !self.links.contains(p) && best.is_none_or(|b| key.distance(&Key::of_peer(p)) < b));
        peers.extend(gap.map(|peer| NodeInfo { peer, full: false, holds: false, contact: true }));
        LookupMsg::Nodes { query, peers }
    }

    // ---- links and frames -----------------------------------------------------------------

    fn on_link(&mut self, now: Millis, ev: LinkEvent) {
        match ev {
            LinkEvent::Up { peer, .. } => {
                self.repl.handle(now, ReplIn::Link(ev));
                for msg in self.take_pending(&peer).map(|d| d.queued).unwrap_or_default() {
                    self.send(peer, msg);
                }
            }
            LinkEvent::Down { peer, .. } => {
                self.repl.handle(now, ReplIn::Link(ev));
                self.peer_gone(now, &peer);
            }
            LinkEvent::DialFailed { peer, .. } => {
                self.repl.handle(now, ReplIn::Link(ev));
                self.pending_failed(now, peer);
                self.peer_gone(now, &peer);
            }
        }
        self.drain_repl(now);
    }

    /// Everything waiting on a peer that is gone fails now.
    fn peer_gone(&mut self, now: Millis, peer: &PeerId) {
        for c in self.transfers.of_peer(peer) {
            self.get_failed(now, *peer, c);
        }
        self.lookups.peer_gone(now, peer, &self.links);
        self.drain_lookups(now);
    }

    fn on_frame(&mut self, now: Millis, from: PeerId, msg: Message) {
        if !self.links.contains(&from) {
            return;
        }
        match msg {
            Message::Holdings { held, released, full } => {
                self.repl.handle(now, ReplIn::Holdings { from, held, released, full });
            }
            Message::Offer { chunk } => self.repl.handle(now, ReplIn::Offer { from, chunk }),
            Message::GetChunk { chunk } if self.index.has_chunk(&chunk) => {
                self.read(chunk, ReadFor::Serve { to: from })
            }
            Message::GetChunk { chunk } => self.send(from, Message::NoChunk { chunk }),
            Message::GetVia { from: holder, chunk } => self.get_for(now, from, holder, chunk),
            Message::ChunkData { chunk, data } => self.on_chunk(now, from, chunk, data),
            Message::NoChunk { chunk } => {
                if self.transfers.age(now, &from, &chunk).is_some() && self.repl.known_holder(&chunk, &from) {
                    self.rate(from, Outcome::Withheld);
                }
                self.get_failed(now, from, chunk)
            }
            Message::Lookup(LookupMsg::FindNode { query, target }) => {
                let answer = self.answer(target, query);
                self.send(from, Message::Lookup(answer));
            }
            Message::Lookup(LookupMsg::Nodes { query, peers }) => {
                self.lookups.on_answer(now, from, query, &peers, &self.links);
                self.drain_lookups(now);
            }
            Message::Relay { ahead, behind, msg } => self.on_relay(now, from, ahead, behind, msg),
            Message::Route { id, chunk, path } => self.on_route(from, id, chunk, path),
            Message::RouteBack { id, chunk, path, hops, found, data } => {
                self.on_route_back(now, from, id, chunk, path, hops, found.then_some(data))
            }
            _ => {}
        }
        self.drain_repl(now);
    }

    /// A message passed along a chain of links (see `Message::Relay`): passed on to the next peer
    /// when it is linked, else taken as its destination. A chain that names a peer twice is a
    /// loop and is dropped.
    fn on_relay(&mut self, now: Millis, from: PeerId, mut ahead: Vec<PeerId>, mut behind: Vec<PeerId>, msg: Relayed) {
        let mut chain: Vec<PeerId> = behind.iter().chain(&ahead).chain([&from, &self.me]).copied().collect();
        chain.sort_unstable();
        chain.dedup();
        if chain.len() != behind.len() + ahead.len() + 2 {
            return;
        }
        if !ahead.is_empty() {
            let next = ahead.remove(0);
            if self.links.contains(&next) {
                behind.push(from);
                self.send(next, Message::Relay { ahead, behind, msg });
            }
            return;
        }
        // The origin, and the relays back to it: the sender first (none: the sender is the origin).
        let origin = behind.first().copied().unwrap_or(from);
        let back: Vec<PeerId> = match behind.split_first() {
            Some((_, passed)) => std::iter::once(from).chain(passed.iter().rev().copied()).collect(),
            None => Vec::new(),
        };
        match msg {
            Relayed::Lookup(LookupMsg::FindNode { query, target }) => {
                let answer = self.answer(target, query);
                let (first, frame) = Message::relay(&back, origin, Relayed::Lookup(answer));
                self.send(first, frame);
            }
            Relayed::Lookup(LookupMsg::Nodes { query, peers }) => {
                self.lookups.on_answer(now, origin, query, &peers, &self.links);
                self.drain_lookups(now);
            }
            Relayed::Sync(msg) => self.out.push_back(Output::RelayedSync { from: origin, relays: back, msg }),
        }
    }

    /// Store a chunk published here: its bytes are written first unless it is held already.
    fn publish(&mut self, now: Millis, data: Vec<u8>) {
        let chunk = ChunkId::of(&data);
        let bytes = data.len() as u32;
        match self.index.admit(&chunk, data.len(), Role::Own) {
            Ok(true) => self.store(StoreOp::Put { chunk, data, why: WriteFor::Publish }),
            Ok(false) => self.published(now, chunk, bytes, Ok(())),
            Err(e) => self.published(now, chunk, bytes, Err(PublishError::Store(e.to_string()))),
        }
    }

    /// A publish stored (or refused): replication and the host hear of it.
    fn published(&mut self, now: Millis, chunk: ChunkId, bytes: u32, result: Result<(), PublishError>) {
        if result.is_ok() {
            self.repl.handle(now, ReplIn::Published { chunk, bytes });
            self.effect(Effect::Event(Event::ChunkStored { chunk, bytes, cause: StoreCause::Published }));
        }
        self.update_room(now);
        self.out.push_back(Output::Done(ContentResult::Published { chunk, result }));
        self.drain_repl(now);
    }

    /// Deadlines: lookups' questions, routes, requests, exchange links, fetches.
    fn expire(&mut self, now: Millis) {
        self.lookups.handle_timeout(now, &self.links);
        for peer in self.lookups.take_unresponsive() {
            self.out.push_back(Output::Unresponsive(peer));
        }
        self.drain_lookups(now);
        for (_, fetch) in self.routes.expired(now) {
            self.route_failed(now, fetch);
        }
        for (p, c) in self.transfers.late(now) {
            if self.transfers.age(now, &p, &c).is_some() {
                self.rate(p, Outcome::Failed);
            }
            self.get_failed(now, p, c);
        }
        self.send_delayed(now);
        while let Some(&(d, p)) = self.pending_deadlines.first() {
            if d > now {
                break;
            }
            self.pending_failed(now, p);
            self.peer_gone(now, &p);
        }
        for (id, due) in self.fetches.due(now) {
            self.fetch_due(now, id, due);
        }
        self.audit_due(now);
    }
}

impl Core for ContentCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Link(ev) => self.on_link(now, ev),
            Input::Frame { from, msg } => self.on_frame(now, from, msg),
            Input::Publish { data } => self.publish(now, data),
            Input::Fetch { id, chunk } => self.fetch(now, id, chunk),
            Input::Refresh { target } => self.start_lookup(now, target, Purpose::Refresh),
            Input::FindPeers { target } => self.start_lookup(now, target, Purpose::Peers(target)),
            Input::Reclaim { id, chunks } => self.reclaim(id, chunks),
            Input::Written { write, result } => self.on_written(now, write, result),
            Input::Read { chunk, why, data } => self.on_read(now, chunk, why, data),
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        self.expire(now);
        self.flood(now);
        if self.repl.next_timeout().is_some_and(|t| t <= now) {
            self.repl.handle_timeout(now);
            self.drain_repl(now);
        }
    }

    fn next_timeout(&self) -> Option<Millis> {
        [
            self.repl.next_timeout(),
            self.lookups.next_timeout(),
            self.routes.next_timeout(),
            self.transfers.next_timeout(),
            self.pending_deadlines.first().map(|(d, _)| *d),
            self.fetches.next_timeout(),
            self.delayed.front().map(|(d, _, _)| *d),
            self.audits.next_timeout(),
            self.flood_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Runs after every input, so only what is cheap: the replication core's own invariants walk
    /// all it holds and are checked by its tests instead.
    fn check_invariants(&self) {
        debug_assert!(self.pending.len() <= MAX_EXCHANGE_DIALS, "too many exchange links asked for");
        debug_assert_eq!(self.pending.len(), self.pending_deadlines.len());
        self.lookups.check_invariants();
        self.routes.check_invariants();
        self.transfers.check_invariants();
        self.fetches.check_invariants();
    }
}
