//! The content core: everything a node does with chunks, as one state machine over its links.
//!
//! - **Inventory**: the chunks held (published here or pulled for replication), bytes checked
//!   against their address on the way in, capacity tracked ([`Inventory`]).
//! - **Replication**: the placement and repair rules of [`ReplicationCore`], whose outputs are
//!   turned into frames here.
//! - **Content routing**: iterative XOR lookups ([`Lookup`]). A question goes to a linked peer
//!   directly, or through the peer whose answer named the one asked ([`Message::Relay`], one
//!   hop: the answerer is linked to every peer it names). Answers list the closest peers among
//!   the answerer and its links, with what the answerer knows of each (full, holds the chunk).
//! - **Links** are the connection manager's ([`crate::links`]): this core reads the link set
//!   and, to reach a peer no link or relay reaches, asks for an exchange link and queues what it
//!   has to send until the link is up. Which links the overlay keeps is topology's business
//!   ([`crate::topology`]), which also owns the routing table read here; the lookups topology
//!   needs to fill it run here (`Refresh`), and the peers every lookup meets go back to it.
//! - **Fetch**: a lookup of the chunk, then the holders it found, nearest first, until one
//!   sends bytes that hash to the address; a holder whose bytes do not is reported
//!   ([`Offence::BadChunk`]) and the next one is asked.
//!
//! One actor, because all of these read the same inventory and lookups: split into several,
//! every frame would cost extra mailbox hops.

use super::core::{Found, Input as ReplIn, Output as ReplOut, ReplicationCore, ReplicationStats};
use crate::config::{ReplicationConfig, RoutingConfig};
use crate::content::{ChunkId, Inventory, InventoryError, Role, MAX_CHUNK_BYTES, TAG_BYTES};
use crate::core::{Core, Effect, LinkEvent, Outputs};
use crate::links::LinkView;
use crate::observer::{Event, Offence, StoreCause};
use crate::routing::{closest, Key, Lookup, LookupConfig, TableView};
use crate::storage::Storage;
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::{LookupMsg, Message, NodeInfo, MAX_HOLDINGS};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

mod fetch;
mod lookups;
mod outcome;
mod reclaim;
pub use outcome::{ContentStats, FetchError, Output, PublishError};
#[cfg(test)]
mod tests;

/// Frames queued for one peer while its link is being made.
const MAX_QUEUED_PER_DIAL: usize = 16;
/// Exchange links asked for and not up yet, at once.
const MAX_EXCHANGE_DIALS: usize = 16;
/// Lookups one fetch may run (the first and the retries after a miss), and the pause before
/// each retry.
const FETCH_ATTEMPTS: u32 = 3;
const FETCH_RETRY_MS: Millis = 2_000;
/// Requests one node forwards for others at once (`GetVia`).
const MAX_PROXIED: usize = 64;
/// An exchange link asked for and neither up nor refused within this long is given up (a
/// backstop: the manager answers every want within its own dial timeout).
const EXCHANGE_WAIT_MS: Millis = 15_000;
/// Extra time a lookup question gets when the peer must be dialled first (connect + handshake).
const DIAL_QUESTION_EXTRA_MS: Millis = 3_000;
/// Lookups waiting for a free slot.
const MAX_WAITING_LOOKUPS: usize = 1024;
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
    /// The files subsystem no longer references these chunks (a publication that failed or was
    /// aborted): unpin them and remove the orphans (see `reclaim.rs`); answered by
    /// `Output::Reclaimed` with the same `id`.
    Reclaim {
        id: u64,
        chunks: Vec<ChunkId>,
    },
}

/// What waits for an exchange link asked for.
#[derive(Clone, Debug)]
struct Pending {
    deadline: Millis,
    queued: Vec<Message>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// Replica check of a chunk we hold.
    Check(ChunkId),
    /// A fetch's search for holders.
    Fetch(u64),
    /// For topology: our own key (the neighbourhood) or a random key in a bucket.
    Refresh,
}

#[derive(Clone, Copy, Debug, Default)]
struct Info {
    full: bool,
    holds: bool,
    /// Said by the peer itself (overrides what others said of it).
    own: bool,
}

struct Query {
    target: Key,
    purpose: Purpose,
    lookup: Lookup,
    /// Peer -> the answerer that named it (linked to it: our relay to it).
    via: BTreeMap<PeerId, PeerId>,
    info: BTreeMap<PeerId, Info>,
    /// Questions in flight -> deadline.
    asked: BTreeMap<PeerId, Millis>,
    /// Peers that answered (alive and reachable: for topology's table).
    met: Vec<PeerId>,
}

/// One outstanding `GetChunk` to one peer, and everyone waiting on it (a repair and fetches of
/// the same chunk share a single request).
#[derive(Clone, Debug)]
struct Get {
    repair: bool,
    fetches: Vec<u64>,
    /// Peers we fetch it for (`GetVia`): they get what we get.
    proxied: Vec<PeerId>,
    deadline: Millis,
}

impl Get {
    fn is_idle(&self) -> bool {
        !self.repair && self.fetches.is_empty() && self.proxied.is_empty()
    }
}

struct FetchState {
    chunk: ChunkId,
    started: Millis,
    deadline: Millis,
    /// Holders still to try, nearest first (None: the lookup is still running).
    candidates: Option<VecDeque<PeerId>>,
    /// Holder -> a linked peer that named it in the lookup (linked to it): asked to get the
    /// chunk for us when we are not linked to the holder ourselves.
    vias: BTreeMap<PeerId, PeerId>,
    /// The holder asked now.
    asking: Option<PeerId>,
    /// Lookups started for it so far, and when the next one starts (after a miss).
    attempts: u32,
    retry_at: Option<Millis>,
    /// What happened, for the log line of a failed fetch (bounded by `MAX_TRAIL`).
    trail: Vec<String>,
}

/// Steps a fetch's trail keeps.
const MAX_TRAIL: usize = 24;

impl FetchState {
    fn note(&mut self, now: Millis, what: impl FnOnce() -> String) {
        if self.trail.len() < MAX_TRAIL {
            self.trail.push(format!("{}: {}", now.saturating_sub(self.started), what()));
        }
    }
}

pub struct ContentCore<S: Storage> {
    me: PeerId,
    rcfg: RoutingConfig,
    fetch_timeout_ms: Millis,
    inv: Inventory<S>,
    repl: ReplicationCore,
    table: TableView,
    links: LinkView,
    pending: BTreeMap<PeerId, Pending>,
    queries: BTreeMap<u64, Query>,
    waiting: VecDeque<(Key, Purpose)>,
    next_query: u64,
    gets: BTreeMap<(PeerId, ChunkId), Get>,
    fetches: BTreeMap<u64, FetchState>,
    stats: ContentStats,
    out: Outputs<Output>,
}

impl<S: Storage> ContentCore<S> {
    pub fn new(
        me: PeerId,
        cfg: ReplicationConfig,
        rcfg: RoutingConfig,
        inv: Inventory<S>,
        links: LinkView,
        table: TableView,
    ) -> Result<Self, InventoryError> {
        let fetch_timeout_ms = cfg.fetch_timeout_ms;
        let chunk_max = (MAX_CHUNK_BYTES + TAG_BYTES) as u32;
        let first_round = cfg.repair_interval_ms;
        let mut repl = ReplicationCore::new(me, cfg, chunk_max, first_round);
        // What a previous run stored is held again (checked against the network at once): the
        // chunks of completed publications pinned, everything else as replicas (droppable as
        // surplus). Sizes come from the inventory, which never reads the chunks to learn them.
        for (&chunk, h) in inv.all_held() {
            let bytes = h.bytes;
            repl.handle(0, if h.own { ReplIn::Kept { chunk, bytes } } else { ReplIn::Stored { chunk, bytes } });
        }
        repl.handle(0, ReplIn::Room { full: !inv.has_room(chunk_max as usize) });
        let mut core = ContentCore {
            me,
            table,
            rcfg,
            fetch_timeout_ms,
            inv,
            repl,
            links,
            pending: BTreeMap::new(),
            queries: BTreeMap::new(),
            waiting: VecDeque::new(),
            next_query: 0,
            gets: BTreeMap::new(),
            fetches: BTreeMap::new(),
            stats: ContentStats::default(),
            out: Outputs::new(),
        };
        core.drain_repl(0);
        Ok(core)
    }

    pub fn stats(&self) -> ContentStats {
        ContentStats { replication: self.repl.stats(), ..self.stats }
    }

    pub fn inventory(&self) -> &Inventory<S> {
        &self.inv
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
        self.pending.insert(to, Pending { deadline: now + EXCHANGE_WAIT_MS, queued: vec![msg] });
        self.out.push_back(Output::Want(to));
        true
    }

    /// Everything queued for a link that will not come.
    fn pending_failed(&mut self, now: Millis, peer: PeerId) {
        if let Some(d) = self.pending.remove(&peer) {
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
                    if !self.request(now, to, chunk, None) {
                        self.repl.handle(now, ReplIn::Failed { from: to, chunk });
                    }
                }
                ReplOut::Lookup { chunk } => self.start_lookup(now, Key::of_chunk(&chunk), Purpose::Check(chunk)),
                ReplOut::Offer { to, chunk } => {
                    self.send_to(now, to, Message::Offer { chunk });
                }
                ReplOut::Drop { chunk } => match self.inv.remove_chunk(&chunk) {
                    Ok(_) => {
                        self.repl.handle(now, ReplIn::Dropped { chunk });
                        self.effect(Effect::Event(Event::ChunkDropped { chunk }));
                        self.update_room(now);
                    }
                    Err(e) => tracing::warn!(node = %self.me.short(), error = %e, "cannot drop a surplus copy"),
                },
            }
        }
    }

    /// Ask `to` for `chunk` for a repair (`fetch` None) or a fetch, joining a request already
    /// out. False if it cannot be sent now.
    fn request(&mut self, now: Millis, to: PeerId, chunk: ChunkId, fetch: Option<u64>) -> bool {
        if !self.gets.contains_key(&(to, chunk)) && !self.send_to(now, to, Message::GetChunk { chunk }) {
            return false;
        }
        let g = self.get_entry(now, to, chunk);
        match fetch {
            Some(id) => g.fetches.push(id),
            None => g.repair = true,
        }
        true
    }

    /// The request to `peer` for `chunk` (sent by the caller), opened if new.
    fn get_entry(&mut self, now: Millis, peer: PeerId, chunk: ChunkId) -> &mut Get {
        let deadline = now + self.repl_timeout();
        self.gets.entry((peer, chunk)).or_insert_with(|| Get {
            repair: false,
            fetches: vec![],
            proxied: vec![],
            deadline,
        })
    }

    fn repl_timeout(&self) -> Millis {
        self.rcfg.query_timeout_ms.max(1) * 2
    }

    fn update_room(&mut self, now: Millis) {
        let full = !self.inv.has_room(MAX_CHUNK_BYTES + TAG_BYTES);
        self.repl.handle(now, ReplIn::Room { full });
    }

    // ---- links ------------------------------------------------------------------------------

    fn on_link(&mut self, now: Millis, ev: LinkEvent) {
        match ev {
            LinkEvent::Up { peer, .. } => {
                self.repl.handle(now, ReplIn::Link(ev));
                for msg in self.pending.remove(&peer).map(|d| d.queued).unwrap_or_default() {
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
        let gets: Vec<ChunkId> = self.gets.keys().filter(|(p, _)| p == peer).map(|(_, c)| *c).collect();
        for c in gets {
            self.get_failed(now, *peer, c);
        }
        let asked: Vec<(u64, PeerId)> = self
            .queries
            .iter()
            .flat_map(|(id, q)| {
                q.asked.keys().filter(|p| *p == peer || q.via.get(*p) == Some(peer)).map(move |p| (*id, *p))
            })
            .collect();
        for (id, p) in asked {
            self.fail_question(now, id, &p);
        }
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
            Message::GetChunk { chunk } => match self.inv.get_chunk(&chunk) {
                Ok(Some(data)) => {
                    self.stats.chunks_served += 1;
                    self.stats.bytes_served += data.len() as u64;
                    self.send(from, Message::ChunkData { chunk, data });
                }
                Ok(None) => self.send(from, Message::NoChunk { chunk }),
                Err(e) => {
                    tracing::warn!(node = %self.me.short(), error = %e, "cannot read chunk");
                    self.send(from, Message::NoChunk { chunk });
                }
            },
            Message::GetVia { from: holder, chunk } => self.get_for(now, from, holder, chunk),
            Message::ChunkData { chunk, data } => self.on_chunk(now, from, chunk, data),
            Message::NoChunk { chunk } => self.get_failed(now, from, chunk),
            Message::Lookup(LookupMsg::FindNode { query, target }) => {
                let answer = self.answer(target, query);
                self.send(from, Message::Lookup(answer));
            }
            Message::Lookup(LookupMsg::Nodes { query, peers }) => self.on_nodes(now, from, query, peers),
            Message::Relay { to, msg } if to != from && self.links.contains(&to) => {
                self.send(to, Message::Relayed { from, msg });
            }
            Message::Relayed { from: origin, msg } => match msg {
                LookupMsg::FindNode { query, target } => {
                    let answer = self.answer(target, query);
                    self.send(from, Message::Relay { to: origin, msg: answer });
                }
                LookupMsg::Nodes { query, peers } => self.on_nodes(now, origin, query, peers),
            },
            _ => {}
        }
        self.drain_repl(now);
    }

    fn publish(&mut self, now: Millis, data: Vec<u8>) {
        let chunk = ChunkId::of(&data);
        let bytes = data.len() as u32;
        let result = self.inv.put_chunk(&chunk, &data, Role::Own).map_err(|e| PublishError::Store(e.to_string()));
        if result.is_ok() {
            self.repl.handle(now, ReplIn::Published { chunk, bytes });
            self.effect(Effect::Event(Event::ChunkStored { chunk, bytes, cause: StoreCause::Published }));
        }
        self.update_room(now);
        self.out.push_back(Output::Published { chunk, result });
        self.drain_repl(now);
    }

    /// Deadlines: questions, requests, dials, fetches.
    fn expire(&mut self, now: Millis) {
        let late: Vec<(u64, PeerId)> = self
            .queries
            .iter()
            .flat_map(|(id, q)| q.asked.iter().filter(|(_, d)| **d <= now).map(move |(p, _)| (*id, *p)))
            .collect();
        for (id, p) in late {
            self.fail_question(now, id, &p);
        }
        let late: Vec<(PeerId, ChunkId)> =
            self.gets.iter().filter(|(_, g)| g.deadline <= now).map(|(k, _)| *k).collect();
        for (p, c) in late {
            self.get_failed(now, p, c);
        }
        let late: Vec<PeerId> = self.pending.iter().filter(|(_, d)| d.deadline <= now).map(|(p, _)| *p).collect();
        for p in late {
            self.pending_failed(now, p);
            self.peer_gone(now, &p);
        }
        let retry: Vec<(u64, ChunkId)> = self
            .fetches
            .iter()
            .filter(|(_, f)| f.retry_at.is_some_and(|t| t <= now))
            .map(|(id, f)| (*id, f.chunk))
            .collect();
        for (id, chunk) in retry {
            if let Some(f) = self.fetches.get_mut(&id) {
                f.retry_at = None;
                f.attempts += 1;
            }
            self.start_lookup(now, Key::of_chunk(&chunk), Purpose::Fetch(id));
        }
        let late: Vec<u64> = self.fetches.iter().filter(|(_, f)| f.deadline <= now).map(|(id, _)| *id).collect();
        for id in late {
            // A lookup still running for it finishes unheard.
            self.finish_fetch(now, id, Err(()));
        }
    }
}

impl<S: Storage + Unpin + 'static> Core for ContentCore<S> {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Link(ev) => self.on_link(now, ev),
            Input::Frame { from, msg } => self.on_frame(now, from, msg),
            Input::Publish { data } => self.publish(now, data),
            Input::Fetch { id, chunk } => self.fetch(now, id, chunk),
            Input::Refresh { target } => self.start_lookup(now, target, Purpose::Refresh),
            Input::Reclaim { id, chunks } => self.reclaim(now, id, chunks),
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        self.expire(now);
        if self.repl.next_timeout().is_some_and(|t| t <= now) {
            self.repl.handle_timeout(now);
            self.drain_repl(now);
        }
    }

    fn next_timeout(&self) -> Option<Millis> {
        let mut t = Millis::MAX;
        if let Some(r) = self.repl.next_timeout() {
            t = t.min(r);
        }
        for q in self.queries.values() {
            if let Some(d) = q.asked.values().min() {
                t = t.min(*d);
            }
        }
        if let Some(d) = self.gets.values().map(|g| g.deadline).min() {
            t = t.min(d);
        }
        if let Some(d) = self.pending.values().map(|d| d.deadline).min() {
            t = t.min(d);
        }
        if let Some(d) = self.fetches.values().map(|f| f.retry_at.unwrap_or(f.deadline).min(f.deadline)).min() {
            t = t.min(d);
        }
        (t < Millis::MAX).then_some(t)
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Runs after every input, so only what is cheap: the replication core's and the routing
    /// table's own invariants walk all they hold and are checked by their tests instead.
    fn check_invariants(&self) {
        debug_assert!(self.pending.len() <= MAX_EXCHANGE_DIALS, "too many exchange links asked for");
        debug_assert!(self.queries.len() <= self.rcfg.max_lookups, "too many lookups");
        debug_assert!(self.waiting.len() <= MAX_WAITING_LOOKUPS);
    }
}
