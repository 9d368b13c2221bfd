//! The router owns the transport side of a node. Outbound, the [`Outbox`] applies the cores'
//! effects to the transport (encoding each message once, however many peers it goes to).
//! Inbound, the [`Inbox`] decodes each frame and hands it straight to the one actor it is for.
//!
//! The router is a pair of handles rather than an actor of its own: a frame then costs one
//! mailbox hop (transport -> subsystem actor) instead of three, the main lever on simulator speed.

use crate::core::{Effect, In, LinkEvent};
use crate::discovery::{self, DiscoveryActor};
use crate::gossip::{self, GossipActor};
use crate::health::{self, HealthActor};
use crate::observer::{Event, Observer};
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
}

impl Outbox {
    pub fn new(me: PeerId, transport: Rc<dyn Transport>, observer: Rc<dyn Observer>) -> Self {
        Outbox { me, transport, observer }
    }

    pub fn apply(&self, effect: Effect) {
        match effect {
            Effect::Send { to, msg } => {
                if let Some(bytes) = self.encode(&msg) {
                    self.transport.send(to, bytes);
                }
            }
            Effect::Broadcast { to, msg } => {
                if let Some(bytes) = self.encode(&msg) {
                    self.transport.send_many(&to, bytes);
                }
            }
            Effect::Dial(peer) => self.transport.connect(peer),
            Effect::Disconnect(peer) => self.transport.disconnect(peer),
            Effect::Event(ev) => self.observer.on_event(self.me, ev),
        }
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

/// Inbound dispatch: transport events to the actors that handle them.
#[derive(Clone)]
pub struct Inbox {
    me: PeerId,
    discovery: Addr<DiscoveryActor>,
    gossip: Addr<GossipActor>,
    health: Addr<HealthActor>,
    observer: Rc<dyn Observer>,
}

impl Inbox {
    pub fn new(
        me: PeerId,
        discovery: Addr<DiscoveryActor>,
        gossip: Addr<GossipActor>,
        health: Addr<HealthActor>,
        observer: Rc<dyn Observer>,
    ) -> Self {
        Inbox { me, discovery, gossip, health, observer }
    }

    fn frame(&self, from: PeerId, bytes: &[u8]) {
        let msg = match wire::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                // Counted for now; the reputation subsystem will penalise the sender.
                self.observer.on_event(self.me, Event::BadFrame { from, error: e.to_string() });
                return;
            }
        };
        match msg {
            Message::PexRequest { max } => self.discovery.do_send(In(discovery::Input::PexRequest { from, max })),
            Message::PexResponse { peers } => self.discovery.do_send(In(discovery::Input::PexResponse { from, peers })),
            Message::Gossip { rumors } => self.gossip.do_send(In(gossip::Input::Frame { from, rumors })),
            Message::Heartbeat { seq } => self.health.do_send(In(health::Input::Heartbeat { from, seq })),
        }
    }
}

impl EventSink for Inbox {
    fn deliver(&self, event: TransportEvent) {
        let link = match event {
            TransportEvent::Frame { peer, bytes } => return self.frame(peer, &bytes),
            TransportEvent::Connected { peer, outbound } => LinkEvent::Up { peer, outbound },
            TransportEvent::Disconnected { peer } => LinkEvent::Down { peer },
            TransportEvent::DialFailed { peer } => LinkEvent::DialFailed { peer },
        };
        self.health.do_send(In(health::Input::Link(link)));
        self.discovery.do_send(In(discovery::Input::Link(link)));
        self.gossip.do_send(In(gossip::Input::Link(link)));
    }
}
