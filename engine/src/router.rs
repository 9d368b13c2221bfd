//! The router owns the transport side of a node. Outbound, the [`Outbox`] applies the cores'
//! effects to the transport (encoding each message once, however many peers it goes to).
//! Inbound, the [`Inbox`] decodes each frame and hands it straight to the one actor it is for,
//! once the link's peer has proved its identity (see [`crate::auth`]); link events, handshake
//! frames and frames of unproved links go to the connection manager ([`crate::links`]).
//! Heartbeats stop here: the gate's stamp of what was heard is all they are for.
//!
//! The router is a pair of handles rather than an actor of its own: a frame then costs one
//! mailbox hop (transport -> subsystem actor) instead of three, the main lever on simulator speed.

use crate::core::{Effect, In, LinkEvent};
use crate::discovery::{self, DiscoveryActor};
use crate::feeds::{self, FeedsActor};
use crate::gossip::{self, GossipActor};
use crate::links::{self, Gate, LinksActor};
use crate::observer::{Event, Observer, Offence};
use crate::recovery::{self, RecoveryActor};
use crate::replication::{ContentActor, ContentInput};
use crate::reputation::{self, ReputationActor};
use crate::sync::{self, SyncActor};
use crate::time::Clock;
use crate::topology::{self, TopologyActor};
use crate::transport::{EventSink, Transport, TransportEvent};
use crate::types::PeerId;
use crate::wire::{self, Message};
use actix::Addr;
use std::rc::Rc;

#[derive(Clone)]
pub struct Outbox {
    me: PeerId,
    transport: Rc<dyn Transport>,
    observer: Rc<dyn Observer>,
    gate: Rc<Gate>,
    clock: Clock,
    /// Where offences are scored.
    reputation: Option<Addr<ReputationActor>>,
}

impl Outbox {
    pub fn new(
        me: PeerId,
        transport: Rc<dyn Transport>,
        observer: Rc<dyn Observer>,
        gate: Rc<Gate>,
        clock: Clock,
    ) -> Self {
        Outbox { me, transport, observer, gate, clock, reputation: None }
    }

    /// Offences reported through this outbox are scored by `reputation` too.
    pub fn with_reputation(mut self, reputation: Addr<ReputationActor>) -> Self {
        self.reputation = Some(reputation);
        self
    }

    pub(crate) fn observe(&self, ev: Event) {
        self.observer.on_event(self.me, ev);
    }

    pub fn apply(&self, effect: Effect) {
        match effect {
            Effect::Send { to, msg } => {
                if let Some(bytes) = self.encode(&msg) {
                    self.gate.sent(&to, self.clock.now());
                    self.transport.send(to, bytes);
                }
            }
            Effect::Broadcast { to, msg } => {
                if let Some(bytes) = self.encode(&msg) {
                    let now = self.clock.now();
                    for p in &to {
                        self.gate.sent(p, now);
                    }
                    self.transport.send_many(&to, bytes);
                }
            }
            Effect::Event(ev) => self.observer.on_event(self.me, ev),
            Effect::Report { peer, offence } => {
                if let Some(r) = &self.reputation {
                    r.do_send(In(reputation::Input::Offence { peer, kind: offence.into() }));
                }
                self.observer.on_event(self.me, Event::Offence { peer, offence });
            }
        }
    }

    /// Open a link (the connection manager's alone).
    pub(crate) fn dial(&self, peer: PeerId) {
        self.transport.connect(peer);
    }

    /// Drop a link that failed (no goodbye).
    pub(crate) fn disconnect(&self, peer: PeerId) {
        self.transport.disconnect(peer);
    }

    /// Close a link on purpose: a `Bye` goes first so the peer does not treat it as lost.
    pub(crate) fn close(&self, peer: PeerId) {
        if let Some(bytes) = self.encode(&Message::Bye) {
            self.transport.send(peer, bytes);
        }
        self.gate.mark_clean(&peer);
        self.transport.disconnect(peer);
    }

    fn encode(&self, msg: &Message) -> Option<bytes::Bytes> {
        match wire::encode(msg) {
            Ok(b) => Some(b),
            Err(e) => {
                // Our own cores bound what they send; reaching this is a bug, not a peer's doing.
                tracing::error!(node = %self.me.short(), error = %e, "dropping unencodable message");
                None
            }
        }
    }
}

/// The subsystem actors a proved link's events and frames go to.
#[derive(Clone)]
pub struct Dispatch {
    pub discovery: Addr<DiscoveryActor>,
    pub gossip: Addr<GossipActor>,
    pub topology: Addr<TopologyActor>,
    pub content: Addr<ContentActor>,
    pub reputation: Addr<ReputationActor>,
    pub recovery: Addr<RecoveryActor>,
    pub sync: Addr<SyncActor>,
    pub feeds: Addr<FeedsActor>,
}

impl Dispatch {
    /// A frame from a proved peer, to the one actor it is for.
    pub fn frame(&self, from: PeerId, msg: Message) {
        match msg {
            Message::PexRequest { max } => self.discovery.do_send(In(discovery::Input::PexRequest { from, max })),
            Message::PexResponse { peers } => self.discovery.do_send(In(discovery::Input::PexResponse { from, peers })),
            Message::Gossip { rumors } => self.gossip.do_send(In(gossip::Input::Frame { from, rumors })),
            Message::Recovery(envelope) => self.recovery.do_send(In(recovery::Input::Frame { from, envelope })),
            Message::Sync(msg) => self.sync.do_send(In(sync::Input::Frame { from, msg })),
            Message::Feed(msg) => self.feeds.do_send(In(feeds::Input::Frame { from, msg })),
            // The link's own frames are the connection manager's (the inbox routes them there);
            // one that got here was released after a proof and means nothing now.
            Message::Hello { .. }
            | Message::Proof { .. }
            | Message::Bye
            | Message::Heartbeat { .. }
            | Message::Probe { .. }
            | Message::Keep { .. } => {}
            msg @ (Message::Holdings { .. }
            | Message::Offer { .. }
            | Message::GetChunk { .. }
            | Message::GetVia { .. }
            | Message::ChunkData { .. }
            | Message::NoChunk { .. }
            | Message::Lookup(_)
            | Message::Relay { .. }
            | Message::Route { .. }
            | Message::RouteBack { .. }) => self.content.do_send(In(ContentInput::Frame { from, msg })),
        }
    }

    /// A change of a proved link, to every subsystem.
    pub fn link(&self, link: LinkEvent) {
        self.discovery.do_send(In(discovery::Input::Link(link)));
        self.gossip.do_send(In(gossip::Input::Link(link)));
        self.topology.do_send(In(topology::Input::Link(link)));
        self.content.do_send(In(ContentInput::Link(link)));
        self.reputation.do_send(In(reputation::Input::Link(link)));
        self.recovery.do_send(In(recovery::Input::Link(link)));
        self.sync.do_send(In(sync::Input::Link(link)));
        self.feeds.do_send(In(feeds::Input::Link(link)));
    }
}

/// Inbound: transport events through the authentication gate to the actors that handle them.
#[derive(Clone)]
pub struct Inbox {
    links: Addr<LinksActor>,
    gate: Rc<Gate>,
    dispatch: Dispatch,
    outbox: Outbox,
    clock: Clock,
}

impl Inbox {
    pub fn new(links: Addr<LinksActor>, gate: Rc<Gate>, dispatch: Dispatch, outbox: Outbox, clock: Clock) -> Self {
        Inbox { links, gate, dispatch, outbox, clock }
    }

    fn frame(&self, from: PeerId, bytes: &[u8]) {
        let msg = match wire::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.outbox.apply(Effect::Event(Event::BadFrame { from, error: e.to_string() }));
                self.outbox.apply(Effect::Report { peer: from, offence: Offence::BadFrame });
                return;
            }
        };
        let proved = self.gate.heard(&from, self.clock.now());
        let input = match msg {
            Message::Hello { nonce } => links::Input::Hello { from, nonce },
            Message::Proof { signature } => links::Input::Proof { from, signature },
            Message::Bye => return self.gate.mark_clean(&from),
            // A heartbeat's whole work is the stamp just made.
            Message::Heartbeat { .. } if proved => return,
            Message::Probe { seq } if proved => links::Input::Probe { from, seq },
            Message::Keep { keep } if proved => links::Input::Keep { from, keep },
            msg if proved => return self.dispatch.frame(from, msg),
            msg => links::Input::Early { from, msg },
        };
        self.links.do_send(In(input));
    }
}

impl EventSink for Inbox {
    fn deliver(&self, event: TransportEvent) {
        let input = match event {
            TransportEvent::Frame { peer, bytes } => return self.frame(peer, &bytes),
            TransportEvent::Connected { peer, outbound } => {
                links::Input::Connected { peer, outbound, generation: self.gate.open(peer, self.clock.now()) }
            }
            TransportEvent::Disconnected { peer } => {
                let clean = self.gate.close(&peer);
                links::Input::Disconnected { peer, clean }
            }
            TransportEvent::DialFailed { peer } => links::Input::TransportDialFailed { peer },
        };
        self.links.do_send(In(input));
    }
}
