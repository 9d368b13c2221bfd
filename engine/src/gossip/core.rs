//! Gossip protocol core. Every `interval_ms` a node announces its top known peers to all its
//! connections in a rumour with a TTL; receivers de-duplicate by rumour id, hand the peers to
//! discovery, and relay the rumour with TTL - 1 while it is above 1.
//!
//! Relays ride on the node's next round instead of being flooded at once: one frame per round
//! carries the node's own rumour and the freshest pending relays (bounded by
//! `max_rumors_per_frame`), encoded once for all connections. The message count per node is then
//! O(degree / interval) whatever the TTL, at the price of up to one interval of delay per hop.
//!
//! Warnings ride rumours of their own, with no peers: when reputation graylists a peer on this
//! node's own evidence, a rumour naming it is pushed at once to `warning_fanout` random links
//! and forwarded the same way on receipt for `warning_hops` hops (push gossip: the ~150 nodes
//! within three hops hear it within seconds, not rounds). Each new link is sent one rumour
//! with all of this node's current warnings, so nodes that join later hear them too. Receivers
//! hand warnings to reputation, which weighs them as hearsay; a warning that names the receiver
//! itself is reported as an offence of its signer (`Offence::FalseWarning`).
//!
//! Rumours are signed envelopes: a receiver checks the timestamp and the origin's signature before
//! it believes or relays one, and reports the neighbour that sent a bad one (honest nodes relay
//! only what they verified, so a bad envelope is the sender's doing).

use crate::config::GossipConfig;
use crate::core::{Core, Effect, LinkEvent, Outputs};
use crate::discovery::vouchers::Awaited;
use crate::identity::{Identity, Rejection, Verifier};
use crate::links::LinkView;
use crate::observer::{Event, Offence};
use crate::reputation::TrustView;
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::{Message, Rumor, RumorBody, Rumors, MAX_RUMORS, MAX_RUMOR_PEERS, MAX_RUMOR_WARNINGS};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashSet;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use super::slander::Slander;

/// Peer ids gathered from rumours between two rounds, at most (duplicates included; they are
/// sorted out once per round, far cheaper than keeping a set up to date per rumour). The
/// registry they feed holds about 100 peers, so a few hundred per round is plenty.
pub const MAX_PENDING_LEARNED: usize = 256;
/// Mentions of watched peers passed on in one round, at most (discovery checks peer-exchange
/// answers against them; see `discovery::vouchers`).
pub const MAX_HEARD: usize = 1_024;

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Link(LinkEvent),
    Frame {
        from: PeerId,
        rumors: Rumors,
    },
    /// Discovery's answer to our request for the peers to announce.
    TopPeers(Vec<PeerId>),
    /// Reputation graylisted `peer` on this node's own evidence; `spread`: push the warning
    /// through the swarm now (else new links only hear it).
    Warn {
        peer: PeerId,
        spread: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Effect(Effect),
    /// Ask discovery for the best `n` peers (answered with `Input::TopPeers`).
    RequestTopPeers(usize),
    /// Peers heard of since the last round, for discovery (each list sorted, distinct).
    Learned {
        /// Peers to learn (at most `MAX_PENDING_LEARNED` a round).
        peers: Vec<PeerId>,
        /// Peers on discovery's watch list mentioned this round (as origins or in peer lists; at
        /// most `MAX_HEARD` a round).
        heard: Vec<PeerId>,
    },
    /// A verified rumour of `accuser` warns of these peers (never this node), for reputation.
    Warned {
        accuser: PeerId,
        accused: Vec<PeerId>,
    },
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
/// any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every rumour this node sends, its own and the ones it relays, carries a broken signature.
    pub corrupt_signatures: bool,
    /// A flooder: every round, this many more rumours of its own (valid, signed, empty), each
    /// in a frame of its own, to every link.
    pub flood_rumors: usize,
    /// A slanderer: it warns of every peer its group links to (see [`Slander`]).
    pub slander: Option<Slander>,
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
    /// Watched peers mentioned since the last round (bounded by `MAX_HEARD`).
    heard: Vec<PeerId>,
    /// The peers discovery waits to hear of (named in peer exchange, not known yet).
    awaited: Awaited,
    seq: u64,
    next_round: Millis,
    awaiting_top: bool,
    rng: ChaCha8Rng,
    /// This node's warnings: peer -> when made (at most `max_warnings`, the newest).
    warnings: BTreeMap<PeerId, Millis>,
    /// The rumour carrying all of them for new links, with when it was sealed (sealed again
    /// after a change, or before it would be refused as stale).
    warnings_rumor: Option<(Rumor, Millis)>,
    /// Warnings to push that found no link yet (bounded by `max_warnings`).
    unpushed: Vec<PeerId>,
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
            heard: Vec::new(),
            awaited: Awaited::default(),
            seq: 0,
            next_round: first,
            awaiting_top: false,
            rng,
            warnings: BTreeMap::new(),
            warnings_rumor: None,
            unpushed: Vec::new(),
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

    /// Pass on mentions of the peers on this watch list (discovery's).
    pub fn with_awaited(mut self, awaited: Awaited) -> Self {
        self.awaited = awaited;
        self
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
            // The peers it mentions: learned, and passed on to discovery if it waits for them.
            let watching = !self.awaited.is_empty();
            for p in body.peers.iter().chain(std::iter::once(&origin)) {
                if *p != self.me && self.learned.len() < MAX_PENDING_LEARNED {
                    self.learned.push(*p);
                }
                if watching && self.heard.len() < MAX_HEARD && self.awaited.contains(p) {
                    self.heard.push(*p);
                }
            }
            if !body.warnings.is_empty() {
                if body.warnings.contains(&self.me) {
                    let offence = Offence::FalseWarning;
                    self.out.push_back(Output::Effect(Effect::Report { peer: origin, offence }));
                }
                let accused: Vec<PeerId> = body.warnings.iter().copied().filter(|p| *p != self.me).collect();
                if !accused.is_empty() {
                    self.out.push_back(Output::Warned { accuser: origin, accused });
                }
            }
            if body.peers.is_empty() && !body.warnings.is_empty() {
                // A warning: pushed on at once rather than on the next round.
                let ttl = r.ttl.min(self.cfg.warning_hops);
                if ttl > 1 {
                    self.push(from, Rumor { ttl: ttl - 1, envelope: r.envelope.clone() });
                }
                continue;
            }
            // A peer cannot make a rumour travel further than our own policy allows.
            let ttl = r.ttl.min(self.cfg.ttl);
            if ttl > 1 {
                self.queue_relay(r, ttl - 1);
            }
        }
    }

    /// Seal a rumour of this node's (counted as sent; `None` only on a bug: the bodies are
    /// bounded by construction).
    fn seal(&mut self, now: Millis, body: RumorBody, ttl: u8) -> Option<Rumor> {
        match Rumor::seal(&self.identity, &body, ttl, self.unix_epoch_ms + now) {
            Ok(r) => {
                r.envelope.announce_to(&*self.verifier);
                if let Some(id) = rumor_id(&r) {
                    self.seen.insert(id, now);
                }
                Some(r)
            }
            Err(e) => {
                tracing::error!(error = %e, "could not seal own rumour");
                None
            }
        }
    }

    /// Send rumours to these peers (with the simulator's faults applied).
    fn send(&mut self, to: Vec<PeerId>, mut rumors: Vec<Rumor>) {
        if to.is_empty() {
            return;
        }
        if self.faults.corrupt_signatures {
            for r in &mut rumors {
                if let Some(b) = r.envelope.signature.first_mut() {
                    *b ^= 0x01;
                }
            }
        }
        self.out.push_back(Output::Effect(Effect::Broadcast { to, msg: Message::Gossip { rumors: rumors.into() } }));
    }

    /// Push a warning rumour to `warning_fanout` random links in good standing other than
    /// `except`.
    fn push(&mut self, except: PeerId, r: Rumor) {
        let mut to: Vec<PeerId> = self.links.peers();
        to.retain(|p| *p != except && self.trust.allows_gossip(p));
        // A slanderer tells every link.
        let fanout = if self.faults.slander.is_some() { to.len() } else { self.cfg.warning_fanout };
        let k = fanout.min(to.len());
        let picked: Vec<PeerId> =
            rand::seq::index::sample(&mut self.rng, to.len(), k).into_iter().map(|i| to[i]).collect();
        self.send(picked, vec![r]);
    }

    /// Drop warnings past their time or about peers no longer graylisted here (a slanderer's
    /// only past their time).
    fn prune_warnings(&mut self, now: Millis) {
        let (ttl, trust, lies) = (self.cfg.warning_ttl_ms, &self.trust, self.faults.slander.is_some());
        let before = self.warnings.len();
        self.warnings.retain(|p, t| now.saturating_sub(*t) < ttl && (lies || trust.is_graylisted(p)));
        if self.warnings.len() != before {
            self.warnings_rumor = None;
        }
    }

    fn warn(&mut self, now: Millis, peer: PeerId, spread: bool) {
        self.note_warning(now, peer, spread);
        if spread {
            self.push_warnings(now);
        }
    }

    /// Keep a warning for new links (the newest `max_warnings`) and, with `spread`, queue it to
    /// be pushed.
    fn note_warning(&mut self, now: Millis, peer: PeerId, spread: bool) {
        self.warnings.insert(peer, now);
        while self.warnings.len() > self.cfg.max_warnings {
            let oldest = self.warnings.iter().min_by_key(|(p, t)| (**t, **p)).map(|(p, _)| *p);
            if let Some(p) = oldest {
                self.warnings.remove(&p);
            }
        }
        self.warnings_rumor = None;
        if spread {
            if self.unpushed.len() >= self.cfg.max_warnings {
                self.unpushed.remove(0);
            }
            self.unpushed.push(peer);
        }
    }

    /// Push the warnings not pushed yet, if there is a link to push them to (a node can lose its
    /// last link as it decides: they go at the next one).
    fn push_warnings(&mut self, now: Millis) {
        if self.unpushed.is_empty() || self.links.is_empty() {
            return;
        }
        let mut warnings = std::mem::take(&mut self.unpushed);
        warnings.sort_unstable();
        warnings.dedup();
        warnings.truncate(MAX_RUMOR_WARNINGS);
        self.seq += 1;
        let body = RumorBody { seq: self.seq, peers: Vec::new(), warnings };
        if let Some(r) = self.seal(now, body, self.cfg.warning_hops) {
            self.push(self.me, r);
        }
    }

    /// A new link hears all of this node's warnings (one rumour, not forwarded).
    fn on_link_up(&mut self, now: Millis, peer: PeerId) {
        if self.faults.slander.as_ref().is_some_and(|s| s.linked(peer, now)) {
            self.warn(now, peer, true);
        }
        self.push_warnings(now);
        self.prune_warnings(now);
        if self.warnings.is_empty() || !self.trust.allows_gossip(&peer) {
            return;
        }
        // Sealed again before a receiver would take it for stale.
        let fresh_for = self.horizon_ms() / 2;
        let rumor = match &self.warnings_rumor {
            Some((r, at)) if now.saturating_sub(*at) < fresh_for => r.clone(),
            _ => {
                self.seq += 1;
                let body =
                    RumorBody { seq: self.seq, peers: Vec::new(), warnings: self.warnings.keys().copied().collect() };
                let Some(r) = self.seal(now, body, 1) else { return };
                self.warnings_rumor = Some((r.clone(), now));
                r
            }
        };
        self.send(vec![peer], vec![rumor]);
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
        let body = RumorBody { seq: self.seq, peers, warnings: Vec::new() };
        let Some(own) = self.seal(now, body, self.cfg.ttl) else { return };
        self.out.push_back(Output::Effect(Effect::Event(Event::RumorOriginated { origin: self.me, seq: self.seq })));
        let mut rumors = Vec::with_capacity(1 + self.relay.len());
        rumors.push(own);
        // Freshest first; the sort is stable so equal TTLs keep arrival order.
        self.relay.sort_by_key(|r| std::cmp::Reverse(r.ttl));
        rumors.append(&mut self.relay);
        let mut to: Vec<PeerId> = self.links.peers();
        to.retain(|p| self.trust.allows_gossip(p));
        self.flood(now, &to);
        self.slander(now);
        self.send(to, rumors);
    }

    /// A slanderer's round: warn of the victims its group found since (see [`Slander`]).
    fn slander(&mut self, now: Millis) {
        let Some(s) = &self.faults.slander else { return };
        let fresh: Vec<PeerId> =
            s.victims().into_iter().filter(|p| *p != self.me && !self.warnings.contains_key(p)).collect();
        for p in fresh.into_iter().take(self.cfg.max_warnings).rev() {
            self.note_warning(now, p, true);
        }
        self.push_warnings(now);
    }

    /// A flooder's extra rumours (see [`Faults::flood_rumors`]).
    fn flood(&mut self, now: Millis, to: &[PeerId]) {
        for _ in 0..self.faults.flood_rumors {
            self.seq += 1;
            let body = RumorBody { seq: self.seq, peers: Vec::new(), warnings: Vec::new() };
            if let Some(r) = self.seal(now, body, self.cfg.ttl) {
                self.send(to.to_vec(), vec![r]);
            }
        }
    }
}

impl Core for GossipCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            // The link set is read from the connection manager's view.
            Input::Link(LinkEvent::Up { peer, .. }) => self.on_link_up(now, peer),
            Input::Link(_) => {}
            Input::Warn { peer, spread } => self.warn(now, peer, spread),
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
                let mut heard = std::mem::take(&mut self.heard);
                heard.sort_unstable();
                heard.dedup();
                self.out.push_back(Output::Learned { peers: learned, heard });
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
        debug_assert!(self.heard.len() <= MAX_HEARD, "heard batch over its bound");
        debug_assert!(self.seen.len() <= self.cfg.seen_cache_max, "seen cache over its bound");
        debug_assert!(self.warnings.len() <= self.cfg.max_warnings, "warnings over their bound");
        debug_assert!(self.unpushed.len() <= self.cfg.max_warnings, "unpushed warnings over their bound");
    }
}
