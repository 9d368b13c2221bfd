//! Gossip protocol core. Every `interval_ms` a node announces its top known peers to all its
//! connections in a rumour with a TTL; receivers de-duplicate by rumour id, hand the peers to
//! discovery, and relay the rumour with TTL - 1 while it is above 1.
//!
//! Relays ride on the node's next round instead of being flooded at once: one frame per round
//! carries the node's own rumour and the freshest pending relays (bounded by
//! `max_rumors_per_frame`), encoded once for all connections. The message count per node is then
//! O(degree / interval) whatever the TTL, at the price of up to one interval of delay per hop.
//!
//! Rumours are signed envelopes: a receiver checks the timestamp and the origin's signature before
//! it believes or relays one, and reports the neighbour that sent a bad one (honest nodes relay
//! only what they verified, so a bad envelope is the sender's doing).

use crate::config::GossipConfig;
use crate::core::{Core, Effect, LinkEvent, Outputs};
use crate::identity::{Identity, Rejection, Verifier};
use crate::links::LinkView;
use crate::observer::{Event, Offence};
use crate::reputation::TrustView;
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::{Message, Rumor, RumorBody, Rumors, MAX_RUMORS, MAX_RUMOR_PEERS};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashSet;
use std::collections::VecDeque;
use std::rc::Rc;

/// Peer ids gathered from rumours between two rounds, at most (duplicates included; they are
/// sorted out once per round, far cheaper than keeping a set up to date per rumour). The
/// registry they feed holds about 100 peers, so a few hundred per round is plenty.
pub const MAX_PENDING_LEARNED: usize = 256;

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Link(LinkEvent),
    Frame {
        from: PeerId,
        rumors: Rumors,
    },
    /// Discovery's answer to our request for the peers to announce.
    TopPeers(Vec<PeerId>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Effect(Effect),
    /// Ask discovery for the best `n` peers (answered with `Input::TopPeers`).
    RequestTopPeers(usize),
    /// Peers heard of since the last round, for discovery (sorted, distinct).
    Learned(Vec<PeerId>),
}

/// Rumour ids already seen, bounded in count and in age (a rumour cannot still be travelling
/// after TTL rounds, so older ids are dropped). Lookups only: nothing iterates the hash set, so
/// its order never matters.
#[derive(Clone, Debug)]
pub struct SeenCache {
    set: FxHashSet<u64>,
    order: VecDeque<(u64, Millis)>,
    cap: usize,
}

impl SeenCache {
    pub fn new(cap: usize) -> Self {
        SeenCache { set: FxHashSet::default(), order: VecDeque::new(), cap }
    }

    pub fn contains(&self, id: &u64) -> bool {
        self.set.contains(id)
    }

    /// Insert; returns false if the id was already there.
    pub fn insert(&mut self, id: u64, now: Millis) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back((id, now));
        if self.order.len() > self.cap {
            if let Some((old, _)) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    /// Forget ids first seen before `cutoff`.
    pub fn expire(&mut self, cutoff: Millis) {
        while let Some((id, _)) = self.order.front().filter(|(_, t)| *t < cutoff) {
            let id = *id;
            self.set.remove(&id);
            self.order.pop_front();
        }
        if self.order.capacity() > 4 * self.order.len().max(16) {
            self.order.shrink_to_fit();
            self.set.shrink_to_fit();
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// A rumour's id in the seen cache, read before its body is decoded ([`Envelope::quick_id`]):
/// most rumours a node receives are copies of ones it already took. An origin that signs its
/// sequence number again (a node restarted from 0) is heard again, not taken for its past.
fn rumor_id(r: &Rumor) -> Option<u64> {
    r.envelope.quick_id()
}

/// Deliberate misbehaviour, for the simulator's adversarial peers only (a real node never sets
/// it): every rumour this node sends, its own and the ones it relays, carries a broken signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    pub corrupt_signatures: bool,
}

pub struct GossipCore {
    me: PeerId,
    identity: Rc<Identity>,
    verifier: Rc<dyn Verifier>,
    /// Unix time (ms) at the node clock's zero: envelopes carry Unix timestamps.
    unix_epoch_ms: u64,
    faults: Faults,
    cfg: GossipConfig,
    links: LinkView,
    /// Standings: no gossip to or from peers below the gossip threshold.
    trust: TrustView,
    /// Rumours taken ([`rumor_id`]).
    seen: SeenCache,
    /// Rumours waiting for the next round, TTL already decremented.
    relay: Vec<Rumor>,
    /// Peers heard of since the last round, unsorted (bounded by MAX_PENDING_LEARNED).
    learned: Vec<PeerId>,
    seq: u64,
    next_round: Millis,
    awaiting_top: bool,
    duplicates: u64,
    rejected: u64,
    out: Outputs<Output>,
}

impl GossipCore {
    /// The first round falls at a random point of the first interval so nodes do not gossip in
    /// lock-step.
    pub fn new(
        identity: Rc<Identity>,
        verifier: Rc<dyn Verifier>,
        unix_epoch_ms: u64,
        faults: Faults,
        cfg: GossipConfig,
        links: LinkView,
        mut rng: ChaCha8Rng,
    ) -> Self {
        let first = rng.gen_range(0..cfg.interval_ms.max(1));
        GossipCore {
            me: identity.peer_id(),
            identity,
            verifier,
            unix_epoch_ms,
            faults,
            seen: SeenCache::new(cfg.seen_cache_max),
            cfg,
            links,
            trust: TrustView::default(),
            relay: Vec::new(),
            learned: Vec::new(),
            seq: 0,
            next_round: first,
            awaiting_top: false,
            duplicates: 0,
            rejected: 0,
            out: Outputs::new(),
        }
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Rumours refused (bad signature, stale, malformed...).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    fn relay_cap(&self) -> usize {
        self.cfg.max_rumors_per_frame.min(MAX_RUMORS).saturating_sub(1)
    }

    /// How long a rumour can still be travelling: one hop per round, plus slack.
    fn horizon_ms(&self) -> Millis {
        (u64::from(self.cfg.ttl) + 2) * self.cfg.interval_ms
    }

    /// Send no gossip to, and take none from, peers these standings put below the gossip
    /// threshold.
    pub fn with_trust(mut self, trust: TrustView) -> Self {
        self.trust = trust;
        self
    }

    fn on_frame(&mut self, now: Millis, from: PeerId, rumors: Rumors) {
        if !self.links.contains(&from) || !self.trust.allows_gossip(&from) {
            return;
        }
        for (i, r) in rumors.iter().enumerate() {
            let origin = r.origin();
            let id = rumor_id(r);
            if origin == self.me || id.is_some_and(|id| self.seen.contains(&id)) {
                self.duplicates += 1;
                continue;
            }
            // Decoded once for every receiver of this frame (see `Rumors`).
            let Ok(body) = rumors.body(i) else {
                self.reject(from, origin, Rejection::Malformed);
                continue;
            };
            // Only a verified rumour enters the seen cache: a forgery cannot pre-empt the real one.
            let unix_now = self.unix_epoch_ms + now;
            let checked = r
                .envelope
                .check_fresh(unix_now, self.horizon_ms(), self.cfg.max_clock_skew_ms)
                .and_then(|()| r.envelope.verify_with(&*self.verifier));
            if let Err(reason) = checked {
                self.reject(from, origin, reason);
                continue;
            }
            if let Some(id) = id {
                self.seen.insert(id, now);
            }
            self.out.push_back(Output::Effect(Effect::Event(Event::RumorReceived { origin, seq: body.seq, from })));
            let room = MAX_PENDING_LEARNED.saturating_sub(self.learned.len());
            let me = self.me;
            self.learned.extend(body.peers.iter().chain(std::iter::once(&origin)).filter(|p| **p != me).take(room));
            // A peer cannot make a rumour travel further than our own policy allows.
            let ttl = r.ttl.min(self.cfg.ttl);
            if ttl > 1 {
                self.queue_relay(r, ttl - 1);
            }
        }
    }

    fn reject(&mut self, from: PeerId, origin: PeerId, reason: Rejection) {
        self.rejected += 1;
        self.out.push_back(Output::Effect(Effect::Event(Event::EnvelopeRejected { origin, from, reason })));
        self.out.push_back(Output::Effect(Effect::Report { peer: from, offence: Offence::InvalidEnvelope(reason) }));
    }

    /// Keep the freshest rumours (highest TTL, then earliest queued) within the relay bound. `r`
    /// is shared with the frame's other receivers: copied, with `ttl`, only if it is kept.
    fn queue_relay(&mut self, r: &Rumor, ttl: u8) {
        let cap = self.relay_cap();
        if cap == 0 {
            return;
        }
        let copy = || Rumor { ttl, envelope: r.envelope.clone() };
        if self.relay.len() < cap {
            self.relay.push(copy());
            return;
        }
        // Replace the stalest (lowest TTL; the latest queued among equals) if the new one is fresher.
        if let Some((i, worst)) = self.relay.iter().enumerate().rev().min_by_key(|(_, x)| x.ttl) {
            if worst.ttl < ttl {
                self.relay[i] = copy();
            }
        }
    }

    fn round(&mut self, now: Millis, peers: Vec<PeerId>) {
        self.awaiting_top = false;
        if self.links.is_empty() {
            self.relay.clear();
            return;
        }
        self.seq += 1;
        let mut peers = peers;
        peers.retain(|p| *p != self.me);
        peers.truncate(self.cfg.top_peers.min(MAX_RUMOR_PEERS));
        let body = RumorBody { seq: self.seq, peers };
        let own = match Rumor::seal(&self.identity, &body, self.cfg.ttl, self.unix_epoch_ms + now) {
            Ok(r) => r,
            Err(e) => {
                // Bounded by construction (<= MAX_RUMOR_PEERS ids); reaching this is a bug.
                tracing::error!(error = %e, "could not seal own rumour");
                return;
            }
        };
        own.envelope.announce_to(&*self.verifier);
        if let Some(id) = rumor_id(&own) {
            self.seen.insert(id, now);
        }
        self.out.push_back(Output::Effect(Effect::Event(Event::RumorOriginated { origin: self.me, seq: self.seq })));
        let mut rumors = Vec::with_capacity(1 + self.relay.len());
        rumors.push(own);
        // Freshest first; the sort is stable so equal TTLs keep arrival order.
        self.relay.sort_by_key(|r| std::cmp::Reverse(r.ttl));
        rumors.append(&mut self.relay);
        if self.faults.corrupt_signatures {
            for r in &mut rumors {
                if let Some(b) = r.envelope.signature.first_mut() {
                    *b ^= 0x01;
                }
            }
        }
        let mut to: Vec<PeerId> = self.links.peers();
        to.retain(|p| self.trust.allows_gossip(p));
        self.out.push_back(Output::Effect(Effect::Broadcast { to, msg: Message::Gossip { rumors: rumors.into() } }));
    }
}

impl Core for GossipCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            // The link set is read from the connection manager's view.
            Input::Link(_) => {}
            Input::Frame { from, rumors } => self.on_frame(now, from, rumors),
            Input::TopPeers(peers) => {
                if self.awaiting_top {
                    self.round(now, peers);
                }
            }
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        if now >= self.next_round {
            self.next_round = now + self.cfg.interval_ms;
            // A rumour travels at most one hop per round: after ttl + 2 rounds it cannot return.
            self.seen.expire(now.saturating_sub(self.horizon_ms()));
            if !self.learned.is_empty() {
                let mut learned = std::mem::take(&mut self.learned);
                learned.sort_unstable();
                learned.dedup();
                self.out.push_back(Output::Learned(learned));
            }
            if !self.links.is_empty() {
                self.awaiting_top = true;
                self.out.push_back(Output::RequestTopPeers(self.cfg.top_peers));
            }
        }
    }

    fn next_timeout(&self) -> Option<Millis> {
        Some(self.next_round)
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        debug_assert!(self.relay.len() <= self.relay_cap(), "relay queue over its bound");
        debug_assert!(self.relay.iter().all(|r| r.ttl >= 1 && r.ttl < self.cfg.ttl), "relayed ttl out of range");
        debug_assert!(self.learned.len() <= MAX_PENDING_LEARNED, "learned batch over its bound");
        debug_assert!(self.seen.len() <= self.cfg.seen_cache_max, "seen cache over its bound");
    }
}
