//! Discovery protocol core: asks the connection manager for random links to known peers at
//! start, and whenever the node is below the low watermark (re-scan timer, a link dropping, news
//! arriving); runs peer exchange (PEX) on every new link, and feeds the registry from PEX and
//! gossip. It never dials: it *asks* ([`Output::Want`]) and reads the link set.

use super::persist::StoredPeer;
use super::registry::{Entry, Registry};
use super::vouchers::{Awaited, Verdict, Vouchers};
use crate::config::DiscoveryConfig;
use crate::core::{Core, Effect, LinkEvent, Outputs};
use crate::links::{DialError, LinkView};
use crate::observer::{Event, Offence};
use crate::reputation::TrustView;
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::Message;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// A link asked for and not answered within this time is forgotten (the manager answers well
/// before: its dial timeout is shorter).
pub const ASK_STALE_MS: Millis = 30_000;

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Link(LinkEvent),
    PexRequest {
        from: PeerId,
        max: u16,
    },
    PexResponse {
        from: PeerId,
        peers: Vec<PeerId>,
    },
    /// Peers heard of through gossip: some to learn (`peers`, bounded per round), and the
    /// watched ones mentioned this round (`heard`: as rumours' origins or in their peer lists),
    /// which vouch for what peer exchange named.
    Learned {
        peers: Vec<PeerId>,
        heard: Vec<PeerId>,
    },
    /// Gossip asks for the best `n` peers for its next announcement.
    TopPeersRequest {
        n: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Effect(Effect),
    /// Ask the connection manager for a random link to this peer.
    Want(PeerId),
    /// Answer to `TopPeersRequest`, for gossip.
    TopPeers(Vec<PeerId>),
    /// The registry as it stands, to be stored (only when persistence is on): at every re-scan.
    Persist {
        now: Millis,
        entries: Vec<(PeerId, Entry, f64)>,
    },
}

pub struct DiscoveryCore {
    me: PeerId,
    cfg: DiscoveryConfig,
    rng: ChaCha8Rng,
    /// Links discovery tops up to (the manager's low watermark).
    low_watermark: usize,
    registry: Registry,
    links: LinkView,
    /// Standings: peer exchange only from peers at or above the gossip threshold; peers the
    /// connection manager would refuse are not asked for.
    trust: TrustView,
    /// Random links asked for and not answered yet -> when.
    asked: BTreeMap<PeerId, Millis>,
    /// Peers the connection manager refused to dial (no room, backing off, graylisted) -> when:
    /// not asked for again within `dial_retry_after_ms`. Without this, a refusal answered by a
    /// top-up that picks the same peer is a loop that never lets time pass.
    refused: BTreeMap<PeerId, Millis>,
    /// Peer-exchange answers waiting for their named peers to be mentioned elsewhere.
    vouchers: Vouchers,
    /// An adversary's fault (simulator): answer peer exchange with dead or invented ids.
    poison_pex: bool,
    started: bool,
    next_rescan: Millis,
    persist: bool,
    out: Outputs<Output>,
}

impl DiscoveryCore {
    pub fn new(
        me: PeerId,
        cfg: DiscoveryConfig,
        low_watermark: usize,
        links: LinkView,
        rng: ChaCha8Rng,
        bootstrap: &[PeerId],
    ) -> Self {
        let mut registry = Registry::new(cfg.registry_max_peers, cfg.recency_half_life_ms);
        for p in bootstrap.iter().filter(|p| **p != me) {
            registry.learn(*p, 0, |_| false);
        }
        DiscoveryCore {
            me,
            cfg,
            rng,
            low_watermark,
            registry,
            links,
            trust: TrustView::default(),
            asked: BTreeMap::new(),
            refused: BTreeMap::new(),
            vouchers: Vouchers::default(),
            poison_pex: false,
            started: false,
            next_rescan: 0,
            persist: false,
            out: Outputs::new(),
        }
    }

    /// Decide by these standings (see the field).
    pub fn with_trust(mut self, trust: TrustView) -> Self {
        self.trust = trust;
        self
    }

    /// The named peers waiting for a mention, for gossip to pass their mentions on.
    pub fn awaited(&self) -> Awaited {
        self.vouchers.awaited()
    }

    /// Answer peer exchange with dead or invented ids (a simulator adversary).
    pub fn with_poisoned_pex(mut self, poison: bool) -> Self {
        self.poison_pex = poison;
        self
    }

    /// Start from what a previous run stored, and hand the registry out for storing at every
    /// re-scan from now on.
    pub fn with_persistence(mut self, restored: &[StoredPeer]) -> Self {
        for r in restored.iter().filter(|r| r.peer != self.me) {
            self.registry.restore(r.peer, r.successes, r.failures);
        }
        self.persist = true;
        self
    }

    fn snapshot(&mut self, now: Millis) {
        if self.persist {
            let half_life = self.cfg.recency_half_life_ms;
            let entries = self.registry.iter().map(|(p, e)| (*p, e.clone(), e.score(now, half_life))).collect();
            self.out.push_back(Output::Persist { now, entries });
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Links asked for and not answered yet.
    pub fn asked(&self) -> impl Iterator<Item = &PeerId> {
        self.asked.keys()
    }

    fn in_use<'a>(links: &'a LinkView, asked: &'a BTreeMap<PeerId, Millis>) -> impl Fn(&PeerId) -> bool + 'a {
        move |p| links.contains(p) || asked.contains_key(p)
    }

    fn learn_all(&mut self, now: Millis, peers: &[PeerId]) {
        let me = self.me;
        let peers: Vec<PeerId> = peers.iter().copied().filter(|p| *p != me).collect();
        let added = self.registry.learn_many(&peers, now, Self::in_use(&self.links, &self.asked));
        if added > 0 {
            self.out.push_back(Output::Effect(Effect::Event(Event::KnownPeers(self.registry.len()))));
        }
    }

    /// Peers that may be asked for now: known, not linked or asked for, not failed recently.
    fn eligible(&self, now: Millis) -> Vec<(PeerId, f64)> {
        self.registry
            .ranked(now)
            .into_iter()
            .filter(|(p, _)| !self.links.contains(p) && !self.asked.contains_key(p) && self.trust.allows_link(p))
            .filter(|(p, _)| self.refused.get(p).is_none_or(|t| now.saturating_sub(*t) >= self.cfg.dial_retry_after_ms))
            .filter(|(p, _)| {
                let failed = self.registry.get(p).and_then(|e| e.last_failure);
                failed.is_none_or(|t| now.saturating_sub(t) >= self.cfg.dial_retry_after_ms)
            })
            .collect()
    }

    fn dial(&mut self, now: Millis, peer: PeerId) {
        self.asked.insert(peer, now);
        self.out.push_back(Output::Want(peer));
    }

    /// Initial dials: `initial_dials` peers picked uniformly among the known ones.
    fn start(&mut self, now: Millis) {
        self.started = true;
        let mut pool: Vec<PeerId> = self.eligible(now).into_iter().map(|(p, _)| p).collect();
        pool.shuffle(&mut self.rng);
        let n = self.cfg.initial_dials.min(self.cfg.max_pending_dials);
        for p in pool.into_iter().take(n) {
            self.dial(now, p);
        }
        self.out.push_back(Output::Effect(Effect::Event(Event::KnownPeers(self.registry.len()))));
    }

    /// Ask until links + asked reach the low watermark, picking peers at random weighted by
    /// their reliability score (so good peers are preferred without every node choosing the same).
    fn top_up(&mut self, now: Millis) {
        if !self.started {
            return;
        }
        let have = self.links.len() + self.asked.len();
        let room = self.cfg.max_pending_dials.saturating_sub(self.asked.len());
        let want = self.low_watermark.saturating_sub(have).min(room);
        if want == 0 {
            return;
        }
        let mut pool = self.eligible(now);
        for _ in 0..want {
            if pool.is_empty() {
                break;
            }
            let total: f64 = pool.iter().map(|(_, s)| s.max(1e-6)).sum();
            let mut x = self.rng.gen_range(0.0..total);
            let mut pick = pool.len() - 1;
            for (i, (_, s)) in pool.iter().enumerate() {
                x -= s.max(1e-6);
                if x < 0.0 {
                    pick = i;
                    break;
                }
            }
            let (p, _) = pool.swap_remove(pick);
            self.dial(now, p);
        }
    }

    /// One dial to a uniformly chosen eligible peer when at target but below the exploration cap.
    /// Uniform, not score-weighted: peers that failed during a partition must get their chance.
    fn explore(&mut self, now: Millis) {
        let have = self.links.len() + self.asked.len();
        let busy = self.asked.len() >= self.cfg.max_pending_dials;
        if busy || have < self.low_watermark || have >= self.cfg.explore_max_connections {
            return;
        }
        let pool = self.eligible(now);
        if !pool.is_empty() {
            let (p, _) = pool[self.rng.gen_range(0..pool.len())];
            self.dial(now, p);
        }
    }

    /// A PEX answer: connected peers first (they are alive now), then a random sample of the
    /// known peers this node was linked to within `pex_fresh_ms` and that failed no dial since:
    /// a node vouches only for peers alive as far as it knows.
    fn pex_answer(&mut self, now: Millis, from: PeerId, max: u16) -> Vec<PeerId> {
        let max = usize::from(max).min(self.cfg.pex_max_peers);
        if self.poison_pex {
            return self.poisoned_answer(from, max);
        }
        let mut live: Vec<PeerId> = self.links.peers().into_iter().filter(|p| *p != from).collect();
        live.shuffle(&mut self.rng);
        live.truncate(max);
        if live.len() < max {
            let fresh = self.cfg.pex_fresh_ms;
            let mut rest: Vec<PeerId> = self
                .registry
                .iter()
                .filter(|(p, e)| **p != from && !self.links.contains(p) && e.fresh(now, fresh))
                .map(|(p, _)| *p)
                .collect();
            rest.shuffle(&mut self.rng);
            live.extend(rest.into_iter().take(max - live.len()));
        }
        live
    }

    /// A poisoner's PEX answer: known peers that failed a dial (dead, or full when dialled),
    /// then invented ids.
    fn poisoned_answer(&mut self, from: PeerId, max: usize) -> Vec<PeerId> {
        let mut dead: Vec<PeerId> = self
            .registry
            .iter()
            .filter(|(p, e)| **p != from && e.last_failure.is_some() && !self.links.contains(p))
            .map(|(p, _)| *p)
            .collect();
        dead.shuffle(&mut self.rng);
        dead.truncate(max / 2);
        while dead.len() < max {
            dead.push(PeerId(self.rng.gen()));
        }
        dead
    }

    /// Report the sources whose answers, checked now, named peers heard of nowhere else; ask
    /// the suspect ones, and the ones this node could not judge yet, again (if still linked).
    fn check_answers(&mut self, now: Millis) {
        for verdict in self.vouchers.check(now) {
            let source = match verdict {
                Verdict::Poisoned(source) => {
                    tracing::debug!(node = %self.me.short(), source = %source.short(), "peer exchange answer judged poisoned");
                    self.out.push_back(Output::Effect(Effect::Report { peer: source, offence: Offence::BadPex }));
                    continue;
                }
                Verdict::Suspect(source) => source,
                Verdict::Unjudged(source, median) => {
                    tracing::debug!(node = %self.me.short(), source = %source.short(), ?median, "peer exchange answer unjudged: this node hears too little");
                    source
                }
            };
            if self.links.contains(&source) {
                let msg = Message::PexRequest { max: self.pex_ask() };
                self.out.push_back(Output::Effect(Effect::Send { to: source, msg }));
            }
        }
    }

    /// How many peers a PEX request asks for.
    fn pex_ask(&self) -> u16 {
        u16::try_from(self.cfg.pex_max_peers).unwrap_or(u16::MAX)
    }

    fn on_link(&mut self, now: Millis, ev: LinkEvent) {
        match ev {
            LinkEvent::Up { peer, .. } => {
                self.asked.remove(&peer);
                self.vouchers.heard(&[peer]);
                let known = self.registry.len();
                self.registry.record_success(peer, now, Self::in_use(&self.links, &self.asked));
                // A peer that linked before anyone named it is known from now on: say so (PEX
                // answers name only fresh peers, so they may never add it).
                if self.registry.len() != known {
                    self.out.push_back(Output::Effect(Effect::Event(Event::KnownPeers(self.registry.len()))));
                }
                self.out.push_back(Output::Effect(Effect::Send {
                    to: peer,
                    msg: Message::PexRequest { max: self.pex_ask() },
                }));
            }
            LinkEvent::Down { peer, .. } => {
                self.registry.seen(peer, now, Self::in_use(&self.links, &self.asked));
                self.top_up(now);
            }
            LinkEvent::DialFailed { peer, error } => {
                self.asked.remove(&peer);
                // The manager's own refusals (no room, backing off) say nothing of the peer.
                if matches!(error, DialError::Unreachable | DialError::AuthFailed) {
                    self.registry.record_failure(&peer, now);
                } else {
                    self.refused.insert(peer, now);
                }
                self.top_up(now);
            }
        }
    }
}

impl Core for DiscoveryCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Link(ev) => self.on_link(now, ev),
            Input::PexRequest { from, max } => {
                if self.links.contains(&from) {
                    let peers = self.pex_answer(now, from, max);
                    self.out.push_back(Output::Effect(Effect::Send { to: from, msg: Message::PexResponse { peers } }));
                }
            }
            Input::PexResponse { from, peers } => {
                // Only from a peer we are linked to and do not distrust, and never more than we
                // would ask for.
                if self.links.contains(&from) && self.trust.allows_gossip(&from) {
                    let n = peers.len().min(self.cfg.pex_max_peers);
                    let fresh = self.cfg.pex_fresh_ms;
                    let (links, registry) = (&self.links, &self.registry);
                    let alive = |p: &PeerId| links.contains(p) || registry.get(p).is_some_and(|e| e.fresh(now, fresh));
                    self.vouchers.answered(now, from, &peers[..n], alive);
                    self.learn_all(now, &peers[..n]);
                    self.top_up(now);
                }
            }
            Input::Learned { peers, heard } => {
                self.vouchers.heard(&heard);
                self.learn_all(now, &peers);
                self.top_up(now);
            }
            Input::TopPeersRequest { n } => {
                let mut top: Vec<PeerId> = self.links.peers();
                top.truncate(n);
                if top.len() < n {
                    let more = self.registry.ranked(now).into_iter().map(|(p, _)| p);
                    let more: Vec<PeerId> = more.filter(|p| !self.links.contains(p)).take(n - top.len()).collect();
                    top.extend(more);
                }
                self.out.push_back(Output::TopPeers(top));
            }
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        if !self.started {
            self.start(now);
            self.next_rescan = now + self.cfg.rescan_interval_ms;
            return;
        }
        self.check_answers(now);
        if now >= self.next_rescan {
            self.asked.retain(|_, at| now.saturating_sub(*at) < ASK_STALE_MS);
            let retry = self.cfg.dial_retry_after_ms;
            self.refused.retain(|_, at| now.saturating_sub(*at) < retry);
            self.top_up(now);
            self.explore(now);
            self.snapshot(now);
            self.next_rescan = now + self.cfg.rescan_interval_ms;
        }
    }

    fn next_timeout(&self) -> Option<Millis> {
        Some(self.vouchers.next_check().map_or(self.next_rescan, |t| t.min(self.next_rescan)))
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        debug_assert!(self.asked.len() <= self.cfg.max_pending_dials, "too many links asked for");
        debug_assert!(self.registry.len() <= self.cfg.registry_max_peers, "registry over its bound");
        debug_assert!(!self.registry.contains(&self.me) && !self.links.contains(&self.me), "self in registry");
        self.vouchers.check_invariants();
    }
}
