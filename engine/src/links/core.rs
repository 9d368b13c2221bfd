//! The connection manager's core. Inputs are the transport's link events and handshake frames
//! (through the router's inbox) and the other cores' requests: `Want` / `Release` one peer for a
//! purpose, or `SetWanted` a purpose's whole set. Outputs are dials, closes and the link events
//! every core hears.
//!
//! Policy:
//! - **Dials come from wants.** A wanted peer with no link is dialled (one dial per peer, at most
//!   `max_pending_dials` at once). A one-shot want (random, exchange) that fails is dropped and the
//!   asker told; a protected want survives failures and is retried with backoff until the
//!   attempts run out (then the peer is left alone for `give_up_ms`). A protected link lost
//!   without a goodbye is reconnected the same way: reconnecting *is* wanting a peer one has no
//!   link to.
//! - **Watermarks.** Random links are dialled only below the high watermark; protected and
//!   exchange wants up to the hard cap. Inbound links at the hard cap are refused before any
//!   handshake. Above the high watermark the manager trims, down to `trim_to`, links that neither
//!   side protects and that are older than `min_link_age_ms` (random ones last), each with a
//!   goodbye so the peer does not reconnect.
//! - **Both ends count.** Each side tells the other whether it protects a link (`Keep`), and a
//!   link the peer protects is not trimmed either: trimming it would only make the peer dial again.

use super::dialer::{AfterFailure, Dialer, DialerConfig};
use super::{CloseReason, DialError, Gate, LinkInfo, LinkTable, LinkView, Purpose, Purposes};
use crate::auth::{self, AuthCore};
use crate::config::{AuthConfig, HealthConfig, LinksConfig};
use crate::core::{Core, Effect, LinkEvent, Outputs};
use crate::health::{Liveness, Probes};
use crate::identity::{Identity, Verifier};
use crate::observer::{Event, LinkChange};
use crate::reputation::TrustView;
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::Message;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

pub use super::messages::{Input, LinksStats, Output};

pub struct LinksCore {
    me: PeerId,
    cfg: LinksConfig,
    auth: AuthCore,
    gate: Rc<Gate>,
    liveness: Liveness,
    probes: Probes,
    dialer: Dialer,
    table: LinkTable,
    /// Links we told the peer we protect.
    told_keep: BTreeSet<PeerId>,
    wants: BTreeMap<PeerId, Purposes>,
    by_purpose: BTreeMap<Purpose, BTreeSet<PeerId>>,
    /// Exchange wants -> until when they hold, and the same ordered by time.
    exchange_until: BTreeMap<PeerId, Millis>,
    exchange_deadlines: BTreeSet<(Millis, PeerId)>,
    /// Links we are closing (or dropping), and why: the reason their `Down` is reported with.
    closing: BTreeMap<PeerId, CloseReason>,
    /// Standings: peers below the publish threshold get no link.
    trust: TrustView,
    stats: LinksStats,
    out: Outputs<Output>,
}

impl LinksCore {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        identity: Rc<Identity>,
        verifier: Rc<dyn Verifier>,
        cfg: LinksConfig,
        auth_cfg: AuthConfig,
        health_cfg: HealthConfig,
        gate: Rc<Gate>,
        table: LinkTable,
        mut rng: ChaCha8Rng,
    ) -> Self {
        let probes = Probes::new(&health_cfg);
        let liveness = Liveness::new(health_cfg, &mut rng);
        let dialer = Dialer::new(DialerConfig {
            dial_timeout_ms: cfg.dial_timeout_ms,
            max_pending_dials: cfg.max_pending_dials,
            reconnect_attempts: cfg.reconnect_attempts,
            reconnect_base_ms: cfg.reconnect_base_ms,
            reconnect_multiplier: cfg.reconnect_multiplier,
            reconnect_max_ms: cfg.reconnect_max_ms,
            give_up_ms: cfg.give_up_ms,
            max_failed_peers: cfg.max_failed_peers,
        });
        LinksCore {
            me: identity.peer_id(),
            auth: AuthCore::new(identity, verifier, auth_cfg, rng),
            cfg,
            gate,
            liveness,
            probes,
            dialer,
            table,
            told_keep: BTreeSet::new(),
            wants: BTreeMap::new(),
            by_purpose: BTreeMap::new(),
            exchange_until: BTreeMap::new(),
            exchange_deadlines: BTreeSet::new(),
            closing: BTreeMap::new(),
            trust: TrustView::default(),
            stats: LinksStats::default(),
            out: Outputs::new(),
        }
    }

    /// Refuse links to the peers these standings put below the publish threshold.
    pub fn with_trust(mut self, trust: TrustView) -> Self {
        self.trust = trust;
        self
    }

    pub fn view(&self) -> LinkView {
        self.table.view()
    }

    pub fn stats(&self) -> LinksStats {
        self.stats
    }

    pub fn auth_stats(&self) -> auth::AuthStats {
        self.auth.stats()
    }

    /// What `peer` is wanted for here.
    pub fn wanted(&self, peer: &PeerId) -> Purposes {
        self.wants.get(peer).copied().unwrap_or_default()
    }

    pub fn is_dialing(&self, peer: &PeerId) -> bool {
        self.dialer.is_dialing(peer)
    }

    fn event(&mut self, change: LinkChange) {
        self.out.push_back(Output::Effect(Effect::Event(Event::Link(change))));
    }

    fn degree(&self) -> usize {
        self.table.view().len()
    }

    // ---- wants ---------------------------------------------------------------------------

    fn want(&mut self, now: Millis, peer: PeerId, purpose: Purpose) {
        if peer == self.me {
            return;
        }
        let w = self.wants.entry(peer).or_default();
        *w = w.with(purpose);
        self.by_purpose.entry(purpose).or_default().insert(peer);
        if purpose == Purpose::Exchange {
            let until = now + self.cfg.exchange_hold_ms;
            if let Some(old) = self.exchange_until.insert(peer, until) {
                self.exchange_deadlines.remove(&(old, peer));
            }
            self.exchange_deadlines.insert((until, peer));
        }
        if self.table.view().contains(&peer) {
            self.refresh_link(&peer);
            return;
        }
        self.consider_dial(now, peer, purpose);
        self.start_dials(now);
    }

    fn release(&mut self, peer: PeerId, purpose: Purpose) {
        let Some(w) = self.wants.get_mut(&peer) else { return };
        *w = w.without(purpose);
        let empty = w.is_empty();
        if empty {
            self.wants.remove(&peer);
        }
        if let Some(set) = self.by_purpose.get_mut(&purpose) {
            set.remove(&peer);
        }
        if purpose == Purpose::Exchange {
            if let Some(until) = self.exchange_until.remove(&peer) {
                self.exchange_deadlines.remove(&(until, peer));
            }
        }
        if self.table.view().contains(&peer) {
            self.refresh_link(&peer);
        } else if empty {
            self.dialer.untarget(&peer);
        }
    }

    fn set_wanted(&mut self, now: Millis, purpose: Purpose, peers: Vec<PeerId>) {
        let new: BTreeSet<PeerId> = peers.into_iter().filter(|p| *p != self.me).collect();
        let old = self.by_purpose.get(&purpose).cloned().unwrap_or_default();
        for p in old.difference(&new) {
            self.release(*p, purpose);
        }
        for p in new.difference(&old) {
            self.want(now, *p, purpose);
        }
    }

    /// Drop the wants that do not survive a failure or a loss (random, exchange).
    fn drop_one_shot(&mut self, peer: PeerId) {
        for p in [Purpose::Random, Purpose::Exchange] {
            if self.wanted(&peer).has(p) {
                self.release(peer, p);
            }
        }
    }

    /// Dial `peer` for `purpose` if the policy allows, else tell the asker why not.
    fn consider_dial(&mut self, now: Millis, peer: PeerId, purpose: Purpose) {
        if self.dialer.is_target(&peer) {
            return;
        }
        if !self.trust.allows_link(&peer) {
            return self.refuse(peer, DialError::Distrusted);
        }
        let degree = self.degree() + self.dialer.in_flight();
        let room = match purpose {
            Purpose::Random => degree < self.cfg.high_watermark,
            _ => degree < self.cfg.max_connections,
        };
        let wanted = self.wanted(&peer);
        if !room {
            return self.refuse(peer, DialError::NoRoom);
        }
        if !wanted.protects() && self.dialer.backoff_until(&peer, now).is_some() {
            return self.refuse(peer, DialError::BackingOff);
        }
        self.dialer.target(peer, now);
    }

    fn refuse(&mut self, peer: PeerId, error: DialError) {
        self.event(LinkChange::DialFailed { peer, error });
        self.out.push_back(Output::Link(LinkEvent::DialFailed { peer, error }));
        self.drop_one_shot(peer);
    }

    fn start_dials(&mut self, now: Millis) {
        for peer in self.dialer.start(now) {
            self.stats.dials += 1;
            let purpose = self.wanted(&peer).first().unwrap_or(Purpose::Exchange);
            self.event(LinkChange::Dialled { peer, purpose });
            self.out.push_back(Output::Dial(peer));
        }
    }

    /// A linked peer's purposes changed: update the table, tell the peer if our protection
    /// changed.
    fn refresh_link(&mut self, peer: &PeerId) {
        let purposes = self.wanted(peer);
        self.table.update(peer, |l| l.purposes = purposes);
        let keep = purposes.protects();
        if keep != self.told_keep.contains(peer) {
            if keep {
                self.told_keep.insert(*peer);
            } else {
                self.told_keep.remove(peer);
            }
            self.out.push_back(Output::Effect(Effect::Send { to: *peer, msg: Message::Keep { keep } }));
        }
    }

    // ---- link lifecycle ------------------------------------------------------------------

    fn on_connected(&mut self, now: Millis, peer: PeerId, outbound: bool, generation: u64) {
        // Only our own dials may land above the cap (they were counted when made); an outbound
        // link the transport made without one (a reconnect of its own) is held to the cap as an
        // inbound one is. Found by the policy proptest: 12 links under a cap of 8 + 3 dials.
        let ours = outbound && self.dialer.is_dialing(&peer);
        let full = !ours && self.degree() + self.auth.pending() >= self.cfg.max_connections;
        if full || !self.trust.allows_link(&peer) {
            self.stats.refused += 1;
            self.event(LinkChange::Refused { peer });
            self.out.push_back(Output::Disconnect(peer));
            return;
        }
        self.auth.handle(now, auth::Input::Connected { peer, outbound, generation });
    }

    fn drain_auth(&mut self, now: Millis) {
        while let Some(o) = self.auth.poll_output() {
            match o {
                auth::Output::Effect(e) => self.out.push_back(Output::Effect(e)),
                auth::Output::Drop { peer } => {
                    self.closing.insert(peer, CloseReason::AuthFailed);
                    self.out.push_back(Output::Disconnect(peer));
                }
                auth::Output::Up { peer, outbound, generation } => {
                    if self.gate.prove(&peer, generation) {
                        self.on_up(now, peer, outbound);
                    }
                }
                auth::Output::Down { peer, clean } => self.on_down(now, peer, clean),
                auth::Output::DialFailed { peer } => {
                    let error = if self.closing.remove(&peer) == Some(CloseReason::AuthFailed) {
                        DialError::AuthFailed
                    } else {
                        DialError::Unreachable
                    };
                    self.on_dial_failed(now, peer, error);
                }
                auth::Output::Deliver { from, msg } => {
                    if self.gate.is_proved(&from) {
                        self.out.push_back(Output::Deliver { from, msg });
                    }
                }
            }
        }
    }

    fn on_up(&mut self, now: Millis, peer: PeerId, outbound: bool) {
        self.dialer.connected(&peer);
        self.closing.remove(&peer);
        if !self.trust.allows_link(&peer) {
            // Distrusted while the handshake ran: closed as soon as it is open.
            self.closing.insert(peer, CloseReason::Distrusted);
            self.out.push_back(Output::Disconnect(peer));
        }
        let purposes = self.wanted(&peer);
        self.table.insert(peer, LinkInfo { outbound, opened_at: now, purposes, remote_keeps: false });
        self.stats.opened += 1;
        self.event(LinkChange::Opened { peer, outbound });
        self.out.push_back(Output::Link(LinkEvent::Up { peer, outbound }));
        self.told_keep.remove(&peer);
        if purposes.protects() {
            self.told_keep.insert(peer);
            self.out.push_back(Output::Effect(Effect::Send { to: peer, msg: Message::Keep { keep: true } }));
        }
        self.trim(now);
        self.start_dials(now);
    }

    fn on_down(&mut self, now: Millis, peer: PeerId, clean: bool) {
        let info = self.table.view().get(&peer);
        self.table.remove(&peer);
        self.told_keep.remove(&peer);
        self.probes.forget(&peer);
        let reason = self.closing.remove(&peer).unwrap_or(if clean { CloseReason::Bye } else { CloseReason::Lost });
        self.stats.closed += 1;
        let age_ms = info.map_or(0, |l| now.saturating_sub(l.opened_at));
        self.event(LinkChange::Closed { peer, reason, age_ms });
        self.out.push_back(Output::Link(LinkEvent::Down { peer, clean }));
        self.drop_one_shot(peer);
        // A protected link lost is reconnected (after the first backoff step, as any failure);
        // one the peer closed on purpose is not for a long pause: it is leaving, or restarting
        // and will dial us itself if it wants the link.
        if self.wanted(&peer).protects() {
            if clean {
                self.dialer.hold_off(peer, now + self.cfg.give_up_ms);
            } else {
                self.dialer.failed(peer, now);
                self.retarget(peer, now);
            }
        }
        self.start_dials(now);
    }

    fn on_dial_failed(&mut self, now: Millis, peer: PeerId, error: DialError) {
        if self.table.view().contains(&peer) {
            return; // a late failure of a dial raced by the peer's own link to us
        }
        self.stats.dial_failures += 1;
        let after = self.dialer.failed(peer, now);
        self.event(LinkChange::DialFailed { peer, error });
        self.out.push_back(Output::Link(LinkEvent::DialFailed { peer, error }));
        self.drop_one_shot(peer);
        if self.wanted(&peer).protects() {
            if let AfterFailure::GaveUp(_) = after {
                self.out.push_back(Output::Effect(Effect::Event(Event::ReconnectGaveUp { peer })));
            }
            self.retarget(peer, now);
        }
        self.start_dials(now);
    }

    /// Above the high watermark: close, down to `trim_to`, links that neither side protects and
    /// that are old enough, least valuable first (random links are worth more than leftovers of
    /// exchanges; among equals the youngest goes, so long-lived links stay).
    fn trim(&mut self, now: Millis) {
        let open = self.degree().saturating_sub(self.closing.len());
        if open <= self.cfg.high_watermark {
            return;
        }
        let excess = open - self.cfg.trim_to;
        let mut candidates: Vec<(bool, std::cmp::Reverse<Millis>, PeerId)> = self
            .table
            .view()
            .borrow()
            .iter()
            .filter(|(p, l)| {
                !l.purposes.protects()
                    && !l.remote_keeps
                    && now.saturating_sub(l.opened_at) >= self.cfg.min_link_age_ms
                    && !self.closing.contains_key(p)
            })
            .map(|(p, l)| (l.purposes.has(Purpose::Random), std::cmp::Reverse(l.opened_at), *p))
            .collect();
        candidates.sort_unstable();
        for (_, _, peer) in candidates.into_iter().take(excess) {
            self.stats.trimmed += 1;
            self.closing.insert(peer, CloseReason::Trimmed);
            self.out.push_back(Output::Close(peer));
        }
    }

    /// Dial a protected want again (after its backoff), unless it is distrusted now.
    fn retarget(&mut self, peer: PeerId, now: Millis) {
        if self.trust.allows_link(&peer) {
            self.dialer.target(peer, now);
        }
    }

    /// Close the peer's link (a goodbye: it is not lost, it is refused) and stop dialling it.
    fn distrusted(&mut self, peer: PeerId) {
        self.dialer.untarget(&peer);
        if self.table.view().contains(&peer) && !self.closing.contains_key(&peer) {
            self.closing.insert(peer, CloseReason::Distrusted);
            self.out.push_back(Output::Close(peer));
        }
    }

    /// Protected wants with no link and no dial (refused for want of room, or whose pause
    /// ended): dialled again when there is room.
    fn revive_wants(&mut self, now: Millis) {
        let dormant: Vec<PeerId> = self
            .wants
            .iter()
            .filter(|(p, w)| {
                w.protects() && !self.dialer.is_target(p) && !self.table.view().contains(p) && self.trust.allows_link(p)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in dormant {
            if self.degree() + self.dialer.in_flight() < self.cfg.max_connections {
                self.dialer.target(p, now);
            }
        }
    }

    /// The link is dead (silent past the heartbeat timeout, or since a probe): dropped.
    fn expire(&mut self, peer: PeerId) {
        if self.table.view().contains(&peer) && !self.closing.contains_key(&peer) {
            self.stats.expired += 1;
            self.closing.insert(peer, CloseReason::Expired);
            self.out.push_back(Output::Disconnect(peer));
        }
    }

    /// Probe a linked peer that left a question unanswered, unless heard from lately.
    fn suspect(&mut self, now: Millis, peer: PeerId) {
        if self.closing.contains_key(&peer) {
            return;
        }
        let Some((heard, _)) = self.gate.stamps(&peer) else { return };
        if self.probes.suspect(now, peer, heard) {
            self.out.push_back(Output::Effect(Effect::Send { to: peer, msg: Message::Probe { seq: now } }));
        }
    }

    fn tick(&mut self, now: Millis) {
        let stamps: Vec<(PeerId, Millis, Millis)> = self
            .table
            .view()
            .peers()
            .into_iter()
            .filter_map(|p| self.gate.stamps(&p).map(|(h, s)| (p, h, s)))
            .collect();
        let t = self.liveness.tick(now, stamps);
        for p in t.expired {
            self.expire(p);
        }
        if !t.beat.is_empty() {
            self.out
                .push_back(Output::Effect(Effect::Broadcast { to: t.beat, msg: Message::Heartbeat { seq: t.seq } }));
        }
        self.trim(now);
        self.revive_wants(now);
    }
}

impl Core for LinksCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Connected { peer, outbound, generation } => self.on_connected(now, peer, outbound, generation),
            Input::Disconnected { peer, clean } => self.auth.handle(now, auth::Input::Disconnected { peer, clean }),
            Input::TransportDialFailed { peer } => self.auth.handle(now, auth::Input::DialFailed { peer }),
            Input::Hello { from, nonce } => self.auth.handle(now, auth::Input::Hello { from, nonce }),
            Input::Proof { from, signature } => self.auth.handle(now, auth::Input::Proof { from, signature }),
            Input::Early { from, msg } => self.auth.handle(now, auth::Input::Early { from, msg }),
            Input::Keep { from, keep } => self.table.update(&from, |l| l.remote_keeps = keep),
            Input::Want { peer, purpose } => self.want(now, peer, purpose),
            Input::Release { peer, purpose } => self.release(peer, purpose),
            Input::SetWanted { purpose, peers } => {
                self.set_wanted(now, purpose, peers);
                self.start_dials(now);
            }
            Input::Distrusted { peer } => self.distrusted(peer),
            Input::Suspect { peer } => self.suspect(now, peer),
            Input::Probe { from, seq } => {
                self.out.push_back(Output::Effect(Effect::Send { to: from, msg: Message::Heartbeat { seq } }))
            }
            Input::Shutdown => {
                for p in self.table.view().peers() {
                    self.closing.insert(p, CloseReason::Shutdown);
                    self.out.push_back(Output::Close(p));
                }
            }
        }
        self.drain_auth(now);
    }

    fn handle_timeout(&mut self, now: Millis) {
        self.auth.handle_timeout(now);
        self.drain_auth(now);
        for p in self.dialer.timed_out(now) {
            self.on_dial_failed(now, p, DialError::Unreachable);
        }
        while let Some(&(at, peer)) = self.exchange_deadlines.first() {
            if at > now {
                break;
            }
            self.release(peer, Purpose::Exchange);
        }
        if now >= self.liveness.next_timeout() {
            self.tick(now);
        }
        for p in self.probes.due(now, |p| self.gate.stamps(p).map(|(heard, _)| heard)) {
            self.expire(p);
        }
        self.start_dials(now);
    }

    fn next_timeout(&self) -> Option<Millis> {
        let mut t = self.liveness.next_timeout();
        for d in [
            self.auth.next_timeout(),
            self.dialer.next_timeout(),
            self.exchange_deadlines.first().map(|(d, _)| *d),
            self.probes.next_timeout(),
        ]
        .into_iter()
        .flatten()
        {
            t = t.min(d);
        }
        Some(t)
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        self.auth.check_invariants();
        self.dialer.check_invariants();
        self.probes.check_invariants();
        self.table.check_invariants();
        let view = self.table.view();
        debug_assert!(!view.contains(&self.me), "linked to ourselves");
        debug_assert!(self.dialer.dialing().all(|p| !view.contains(p)), "dialling a linked peer");
        debug_assert!(
            view.len() <= self.cfg.max_connections + self.cfg.max_pending_dials,
            "links {} over the hard cap",
            view.len()
        );
        debug_assert!(self.told_keep.iter().all(|p| view.contains(p)), "keep told on a closed link");
        debug_assert_eq!(self.exchange_until.len(), self.exchange_deadlines.len());
        debug_assert!(
            self.by_purpose.iter().all(|(pu, set)| set.iter().all(|p| self.wanted(p).has(*pu))),
            "purpose index out of step"
        );
    }
}
