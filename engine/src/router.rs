//! The router owns the transport side of a node. Outbound, the [`Outbox`] applies the cores'
//! effects to the transport (encoding each message once, however many peers it goes to).
//! Inbound, the [`Inbox`] decodes each frame and hands it straight to the one actor it is for,
//! once the link's peer has proved its identity (see [`crate::auth`]); until then, link events
//! and frames go to the auth actor.
//!
//! The router is a pair of handles rather than an actor of its own: a frame then costs one
//! mailbox hop (transport -> subsystem actor) instead of three, the main lever on simulator speed.

use crate::auth::{self, AuthActor, Gate};
use crate::core::{Effect, In, LinkEvent};
use crate::discovery::{self, DiscoveryActor};
use crate::gossip::{self, GossipActor};
use crate::health::{self, HealthActor};
use crate::observer::{Event, Observer, Offence};
use crate::replication::{ContentActor, ContentInput};
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
}

impl Outbox {
    pub fn new(me: PeerId, transport: Rc<dyn Transport>, observer: Rc<dyn Observer>, gate: Rc<Gate>) -> Self {
        Outbox { me, transport, observer, gate }
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
            Effect::Close(peer) => {
                if let Some(bytes) = self.encode(&Message::Bye) {
                    self.transport.send(peer, bytes);
                }
                self.gate.mark_clean(&peer);
                self.transport.disconnect(peer);
            }
            Effect::Event(ev) => self.observer.on_event(self.me, ev),
            Effect::Report { peer, offence } => self.observer.on_event(self.me, Event::Offence { peer, offence }),
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

/// The subsystem actors a proved link's events and frames go to.
#[derive(Clone)]
pub struct Dispatch {
    pub discovery: Addr<DiscoveryActor>,
    pub gossip: Addr<GossipActor>,
    pub health: Addr<HealthActor>,
    pub content: Addr<ContentActor>,
}

impl Dispatch {
    /// A frame from a proved peer, to the one actor it is for.
    pub fn frame(&self, from: PeerId, msg: Message) {
        match msg {
            Message::PexRequest { max } => self.discovery.do_send(In(discovery::Input::PexRequest { from, max })),
            Message::PexResponse { peers } => self.discovery.do_send(In(discovery::Input::PexResponse { from, peers })),
            Message::Gossip { rumors } => self.gossip.do_send(In(gossip::Input::Frame { from, rumors })),
            Message::Heartbeat { seq } => self.health.do_send(In(health::Input::Heartbeat { from, seq })),
            // The handshake is the auth actor's alone; after it, a repeat is the peer's fault.
            // A goodbye is the inbox's (it marks the link before the close arrives).
            Message::Hello { .. } | Message::Proof { .. } | Message::Bye => {}
            msg @ (Message::Holdings { .. }
            | Message::Offer { .. }
            | Message::GetChunk { .. }
            | Message::GetVia { .. }
            | Message::ChunkData { .. }
            | Message::NoChunk { .. }
            | Message::Lookup(_)
            | Message::Relay { .. }
            | Message::Relayed { .. }) => self.content.do_send(In(ContentInput::Frame { from, msg })),
        }
    }

    /// A change of a proved link, to every subsystem.
    pub fn link(&self, link: LinkEvent) {
        self.health.do_send(In(health::Input::Link(link)));
        self.discovery.do_send(In(discovery::Input::Link(link)));
        self.gossip.do_send(In(gossip::Input::Link(link)));
        self.content.do_send(In(ContentInput::Link(link)));
    }
}

/// Inbound: transport events through the authentication gate to the actors that handle them.
#[derive(Clone)]
pub struct Inbox {
    auth: Addr<AuthActor>,
    gate: Rc<Gate>,
    dispatch: Dispatch,
    outbox: Outbox,
}

impl Inbox {
    pub fn new(auth: Addr<AuthActor>, gate: Rc<Gate>, dispatch: Dispatch, outbox: Outbox) -> Self {
        Inbox { auth, gate, dispatch, outbox }
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
        let input = match msg {
            Message::Hello { nonce } => auth::Input::Hello { from, nonce },
            Message::Proof { signature } => auth::Input::Proof { from, signature },
            Message::Bye => return self.gate.mark_clean(&from),
            msg if self.gate.is_proved(&from) => return self.dispatch.frame(from, msg),
            msg => auth::Input::Early { from, msg },
        };
        self.auth.do_send(In(input));
    }
}

impl EventSink for Inbox {
    fn deliver(&self, event: TransportEvent) {
        let input = match event {
            TransportEvent::Frame { peer, bytes } => return self.frame(peer, &bytes),
            TransportEvent::Connected { peer, outbound } => {
                auth::Input::Connected { peer, outbound, generation: self.gate.open(peer) }
            }
            TransportEvent::Disconnected { peer } => {
                let clean = self.gate.close(&peer);
                auth::Input::Disconnected { peer, clean }
            }
            TransportEvent::DialFailed { peer } => auth::Input::DialFailed { peer },
        };
        self.auth.do_send(In(input));
    }
}
