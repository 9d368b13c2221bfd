//! The driver: one task owning every link's lifecycle. It takes commands from the handle and
//! reports from link tasks, decides dials, answers, glare and replacement, sends our signals by
//! the caller's path and as mesh relays, forwards relays for others, and emits the node's
//! lifecycle events (`Connected`, `Disconnected`, `DialFailed`) exactly once per connection.

use crate::admission::OfferGate;
use crate::config::WebRtcConfig;
use crate::link::{self, LinkCtl, LinkOut, Role};
use crate::sdp;
use crate::signal::{SeenSignals, Signal, SignalKind, SignalPath};
use crate::wire::{self, TAG_PING, TAG_RELAY, TAG_RELAYED};
use crate::Counters;
use bytes::{Bytes, BytesMut};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use swarm_engine::transport::TransportEvent;
use swarm_engine::types::PeerId;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

/// An event on its way to the node; a frame holds the permits for its bytes until taken.
pub(crate) struct Inbound {
    pub ev: TransportEvent,
    /// Released when the node takes the event.
    pub _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Pongs held for a reader before further ones are dropped.
pub(crate) const MAX_QUEUED_PONGS: usize = 4096;

/// What the driver, the link tasks and the handle share.
pub(crate) struct Shared {
    pub cfg: WebRtcConfig,
    pub events: mpsc::UnboundedSender<Inbound>,
    /// Permits = received frame bytes not yet taken by the node (see `Events`).
    pub undelivered: Arc<tokio::sync::Semaphore>,
    pub cmds: mpsc::UnboundedSender<Cmd>,
    pub stats: Counters,
    pub pongs: mpsc::Sender<(PeerId, Bytes)>,
}

/// The driver's inbox: from the handle (first group) and from link tasks and timers.
pub(crate) enum Cmd {
    Connect(PeerId),
    Disconnect(PeerId),
    Send(PeerId, Bytes),
    SendMany(Vec<PeerId>, Bytes),
    Ping(PeerId, Bytes),
    /// A signal from the caller's path, or relayed to us through the mesh.
    Signal {
        from: PeerId,
        signal: Signal,
        /// The linked peer that relayed it (none: it came by the caller's path).
        via: Option<PeerId>,
    },
    Shutdown,
    LocalSignal {
        peer: PeerId,
        conn: u64,
        signal: Signal,
    },
    Opened {
        peer: PeerId,
        conn: u64,
        out: LinkOut,
        go: oneshot::Sender<()>,
    },
    Closed {
        peer: PeerId,
        conn: u64,
    },
    /// `from` (a linked peer) asks us to forward `signal` to `to`.
    Relay {
        from: PeerId,
        to: PeerId,
        signal: Bytes,
    },
    SetupTimeout {
        peer: PeerId,
        conn: u64,
    },
}

enum Phase {
    /// Offer sent (or being gathered); waiting for the answer and the channel.
    Dialing,
    /// Answering an offer; waiting for the channel.
    Answering,
    Open {
        out: LinkOut,
    },
}

struct Link {
    conn: u64,
    session: u64,
    /// Reported in `Connected`: true when the node asked for this connection (also when glare
    /// turned our dial into an answer).
    outbound: bool,
    phase: Phase,
    ctl: LinkCtl,
    /// Our offer or answer for it while it is not open: relayed again through every link that
    /// opens meanwhile (a node dialling at start has no links to relay through yet), and sent
    /// again when a glare shows the peer never got it.
    pending_signal: Option<Signal>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.ctl.live.store(false, Ordering::Release);
    }
}

pub(crate) struct Driver {
    me: PeerId,
    shared: Arc<Shared>,
    path: Arc<dyn SignalPath>,
    links: BTreeMap<PeerId, Link>,
    /// Answers to a new offer from a peer whose link is open (it restarted, or someone forged
    /// or replayed an offer in its name): the open link stands until the new one opens.
    replacing: BTreeMap<PeerId, Link>,
    seen: SeenSignals,
    next_conn: u64,
    /// For peers whose signals reached us through the mesh: the last linked peer that relayed
    /// one (bounded by `max_links`).
    heard_via: BTreeMap<PeerId, PeerId>,
    /// Which offers get an answer (see `admission`).
    offers: OfferGate,
    /// Time zero of the `now_ms` the offer gate is given.
    epoch: tokio::time::Instant,
}

impl Driver {
    pub fn new(me: PeerId, shared: Arc<Shared>, path: Arc<dyn SignalPath>) -> Self {
        let seen = SeenSignals::new(shared.cfg.max_seen_signals);
        let offers = OfferGate::new(shared.cfg.clone(), 0);
        Driver {
            me,
            shared,
            path,
            links: BTreeMap::new(),
            replacing: BTreeMap::new(),
            seen,
            next_conn: 1,
            heard_via: BTreeMap::new(),
            offers,
            epoch: tokio::time::Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Answers of peers other than `peer` being set up (a new offer from `peer` replaces its own).
    fn pending_answers(&self, peer: &PeerId) -> usize {
        let answering = |(p, l): (&PeerId, &Link)| p != peer && matches!(l.phase, Phase::Answering);
        self.links.iter().filter(|e| answering(*e)).count() + self.replacing.iter().filter(|e| answering(*e)).count()
    }

    pub async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Cmd>) {
        while let Some(cmd) = inbox.recv().await {
            if matches!(cmd, Cmd::Shutdown) {
                break;
            }
            self.handle(cmd);
        }
        // Dropping the links closes every peer connection.
        self.links.clear();
        self.replacing.clear();
    }

    fn stat(&self) -> &Counters {
        &self.shared.stats
    }

    fn emit(&self, ev: TransportEvent) {
        let _ = self.shared.events.send(Inbound { ev, _permit: None });
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Connect(peer) => self.connect(peer),
            Cmd::Disconnect(peer) => self.disconnect(peer),
            Cmd::Send(peer, frame) => self.send(peer, &frame),
            Cmd::SendMany(peers, frame) => {
                for p in peers {
                    self.send(p, &frame);
                }
            }
            Cmd::Ping(peer, body) => {
                if let Some(out) = self.open_out(&peer) {
                    out.push_all(vec![wire::tagged(TAG_PING, &[&body])]);
                }
            }
            Cmd::Signal { from, signal, via } => self.on_signal(from, signal, via),
            Cmd::LocalSignal { peer, conn, signal } => self.on_local_signal(peer, conn, signal),
            Cmd::Opened { peer, conn, out, go } => self.on_opened(peer, conn, out, go),
            Cmd::Closed { peer, conn } => self.on_closed(peer, conn),
            Cmd::Relay { from, to, signal } => self.on_relay(from, to, &signal),
            Cmd::SetupTimeout { peer, conn } => {
                let pending = |l: &Link| l.conn == conn && !matches!(l.phase, Phase::Open { .. });
                if self.links.get(&peer).is_some_and(pending) || self.replacing.get(&peer).is_some_and(pending) {
                    debug!(peer = %peer.short(), conn, "setup timed out");
                    self.on_closed(peer, conn);
                }
            }
            Cmd::Shutdown => {}
        }
    }

    fn open_out(&self, peer: &PeerId) -> Option<&LinkOut> {
        match self.links.get(peer).map(|l| &l.phase) {
            Some(Phase::Open { out, .. }) => Some(out),
            _ => None,
        }
    }

    fn link_count(&self) -> usize {
        self.links.len() + self.replacing.len()
    }

    /// Start a link task and its setup timer.
    fn start(&mut self, peer: PeerId, session: u64, role: Role, outbound: bool) -> Link {
        let conn = self.next_conn;
        self.next_conn += 1;
        let phase = if matches!(role, Role::Dial) { Phase::Dialing } else { Phase::Answering };
        let ctl = link::spawn(self.shared.clone(), peer, conn, session, role);
        let cmds = self.shared.cmds.clone();
        let timeout = Duration::from_millis(self.shared.cfg.dial_timeout_ms);
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let _ = cmds.send(Cmd::SetupTimeout { peer, conn });
        });
        Link { conn, session, outbound, phase, ctl, pending_signal: None }
    }

    fn connect(&mut self, peer: PeerId) {
        if let Some(link) = self.links.get_mut(&peer) {
            // Being answered already: this dial is answered by that link's outcome.
            if !matches!(link.phase, Phase::Open { .. }) {
                link.outbound = true;
            }
            return;
        }
        if peer == self.me {
            return;
        }
        if self.link_count() >= self.shared.cfg.max_links {
            self.emit(TransportEvent::DialFailed { peer });
            return;
        }
        let link = self.start(peer, rand::random(), Role::Dial, true);
        self.links.insert(peer, link);
    }

    fn disconnect(&mut self, peer: PeerId) {
        // Dropping the link's control closes its connection; its late `Closed` finds no match.
        self.replacing.remove(&peer);
        let Some(link) = self.links.remove(&peer) else { return };
        match link.phase {
            Phase::Open { .. } => self.emit(TransportEvent::Disconnected { peer }),
            _ if link.outbound => self.emit(TransportEvent::DialFailed { peer }),
            _ => {}
        }
    }

    fn send(&self, peer: PeerId, frame: &Bytes) {
        let out = self.open_out(&peer).filter(|_| frame.len() <= self.shared.cfg.max_frame_bytes);
        let Some(out) = out else {
            self.stat().frames_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if out.push_all(wire::encode_frame(frame, self.shared.cfg.max_message_bytes)) {
            self.stat().frames_out.fetch_add(1, Ordering::Relaxed);
            self.stat().bytes_out.fetch_add(frame.len() as u64, Ordering::Relaxed);
        } else {
            self.stat().frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_signal(&mut self, from: PeerId, signal: Signal, via: Option<PeerId>) {
        if let Some(v) = via {
            // A peer linked to `from`: the first relay to try for what we send back.
            if self.heard_via.len() >= self.shared.cfg.max_links && !self.heard_via.contains_key(&from) {
                self.heard_via.pop_first();
            }
            self.heard_via.insert(from, v);
        }
        let cfg = &self.shared.cfg;
        let oversize = signal.sdp.len() > cfg.max_signal_bytes;
        if from == self.me || oversize || !self.seen.first_time(from, signal.session, signal.kind) {
            return;
        }
        self.stat().signals_in.fetch_add(1, Ordering::Relaxed);
        // Bounded before any peer connection exists for it (see `sdp`).
        let mut signal = signal;
        match sdp::bound_remote(&signal.sdp, cfg.max_signal_bytes, cfg.max_remote_candidates) {
            Ok(bounded) => {
                self.stat().remote_candidates_dropped.fetch_add(bounded.dropped as u64, Ordering::Relaxed);
                signal.sdp = bounded.sdp;
            }
            Err(e) => {
                debug!(peer = %from.short(), kind = ?signal.kind, error = %e, "remote description refused");
                self.stat().signals_refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        match signal.kind {
            SignalKind::Offer => self.on_offer(from, signal),
            SignalKind::Answer => {
                let Some(link) = self.links.get_mut(&from) else { return };
                if link.session == signal.session && matches!(link.phase, Phase::Dialing) {
                    if let Some(tx) = link.ctl.answer.take() {
                        let _ = tx.send(signal.sdp);
                    }
                }
            }
        }
    }

    fn on_offer(&mut self, from: PeerId, signal: Signal) {
        let glare_won = self.me < from && self.links.get(&from).is_some_and(|l| matches!(l.phase, Phase::Dialing));
        if !glare_won {
            // Every other way starts an answer: only within the offer budget, checked before
            // anything changes (a refused offer leaves our own dial to that peer alone).
            let pending = self.pending_answers(&from);
            let now_ms = self.now_ms();
            if let Err(refusal) = self.offers.admit(now_ms, from, pending) {
                debug!(peer = %from.short(), %refusal, "offer refused");
                self.stat().offers_refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut outbound = false;
        let open = match self.links.get(&from).map(|l| (&l.phase, l.outbound)) {
            Some((Phase::Dialing, _)) if self.me < from => {
                // Glare, and our offer wins. But theirs shows they had not seen ours when they
                // dialled (they were down, or it was lost): send it again, or both sides wait
                // for their dial timeouts.
                let again = self.links.get(&from).and_then(|l| l.pending_signal.clone().map(|s| (l.conn, s)));
                if let Some((conn, s)) = again {
                    self.on_local_signal(from, conn, s);
                }
                return;
            }
            // Glare, theirs wins: our dial is dropped and this answer stands for it. Or they
            // restarted a dial we were answering.
            Some((Phase::Dialing | Phase::Answering, was_outbound)) => {
                outbound = was_outbound;
                self.links.remove(&from);
                false
            }
            Some((Phase::Open { .. }, _)) => true,
            None => false,
        };
        self.replacing.remove(&from);
        if self.link_count() >= self.shared.cfg.max_links {
            return;
        }
        self.stat().offers_answered.fetch_add(1, Ordering::Relaxed);
        let link = self.start(from, signal.session, Role::Answer { offer_sdp: signal.sdp }, outbound);
        if open {
            // Make before break: a late copy of an offer that lost a glare, or a forged one,
            // never opens and leaves the working link alone.
            self.replacing.insert(from, link);
        } else {
            self.links.insert(from, link);
        }
    }

    fn on_local_signal(&mut self, peer: PeerId, conn: u64, signal: Signal) {
        let ours = |l: &Link| l.conn == conn;
        if !(self.links.get(&peer).is_some_and(ours) || self.replacing.get(&peer).is_some_and(ours)) {
            return;
        }
        self.path.send(peer, &signal);
        self.stat().signals_out.fetch_add(1, Ordering::Relaxed);
        let json = signal.to_json();
        if json.len() > self.shared.cfg.max_signal_bytes {
            return;
        }
        for l in [self.links.get_mut(&peer), self.replacing.get_mut(&peer)].into_iter().flatten() {
            if l.conn == conn {
                l.pending_signal = Some(signal.clone());
            }
        }
        // Relay through the linked peers closest to the target in the XOR metric: in a
        // structured overlay they are the likeliest to hold a link to it.
        let mut via: Vec<(&PeerId, &LinkOut)> = self
            .links
            .iter()
            .filter(|(p, _)| **p != peer)
            .filter_map(|(p, l)| match &l.phase {
                Phase::Open { out, .. } => Some((p, out)),
                _ => None,
            })
            .collect();
        // A peer that relayed a signal from the target is linked to it: first in line.
        let hint = self.heard_via.get(&peer).copied();
        via.sort_by_key(|(p, _)| (Some(**p) != hint, xor(p, &peer)));
        for (_, out) in via.into_iter().take(self.shared.cfg.relay_fanout) {
            if out.push_all(vec![wire::encode_relay(TAG_RELAY, &peer, json.as_bytes())]) {
                self.stat().relays_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn on_opened(&mut self, peer: PeerId, conn: u64, out: LinkOut, go: oneshot::Sender<()>) {
        if self.replacing.get(&peer).is_some_and(|l| l.conn == conn) {
            // The restarted peer's new link is up: now the old one goes.
            if let Some(old) = self.replacing.remove(&peer).and_then(|new| self.links.insert(peer, new)) {
                if matches!(old.phase, Phase::Open { .. }) {
                    self.emit(TransportEvent::Disconnected { peer });
                }
            }
        }
        let Some(link) = self.links.get_mut(&peer).filter(|l| l.conn == conn) else { return };
        link.pending_signal = None;
        // Signals of links still being set up go through this new link too.
        let waiting: Vec<BytesMut> = self
            .links
            .iter()
            .filter(|(p, l)| **p != peer && !matches!(l.phase, Phase::Open { .. }))
            .filter_map(|(p, l)| {
                l.pending_signal.as_ref().map(|s| wire::encode_relay(TAG_RELAY, p, s.to_json().as_bytes()))
            })
            .collect();
        let relayed = waiting.len() as u64;
        if relayed > 0 && out.push_all(waiting) {
            self.stat().relays_sent.fetch_add(relayed, Ordering::Relaxed);
        }
        let Some(link) = self.links.get_mut(&peer) else { return };
        link.phase = Phase::Open { out };
        let outbound = link.outbound;
        self.emit(TransportEvent::Connected { peer, outbound });
        let _ = go.send(());
    }

    fn on_closed(&mut self, peer: PeerId, conn: u64) {
        if self.replacing.get(&peer).is_some_and(|l| l.conn == conn) {
            self.replacing.remove(&peer);
            return;
        }
        if self.links.get(&peer).is_none_or(|l| l.conn != conn) {
            return;
        }
        let replacement = self.replacing.remove(&peer);
        self.disconnect(peer);
        // The old link died first: its replacement carries on as a plain inbound link.
        if let Some(new) = replacement {
            self.links.insert(peer, new);
        }
    }

    fn on_relay(&self, from: PeerId, to: PeerId, signal: &[u8]) {
        match self.open_out(&to) {
            Some(out) if to != from && out.push_all(vec![wire::encode_relay(TAG_RELAYED, &from, signal)]) => {
                self.stat().relayed.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.stat().relay_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn xor(a: &PeerId, b: &PeerId) -> [u8; 32] {
    std::array::from_fn(|i| a.0[i] ^ b.0[i])
}
