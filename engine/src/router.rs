//! The router owns the transport side of a node. Outbound, the [`Outbox`] applies the cores'
//! effects to the transport (encoding each message once, however many peers it goes to).
//! Inbound, the [`Inbox`] decodes each frame and hands it straight to the one actor it is for,
//! once the link's peer has proved its identity (see [`crate::auth`]); link events, handshake
//! frames and frames of unproved links go to the connection manager ([`crate::links`]).
//! Heartbeats stop here: the gate's stamp of what was heard is all they are for. A proved
//! link's frames are charged against its inbound budgets first ([`crate::flood`]): one over
//! budget is dropped here, unprocessed, and the link reported.
//!
//! The router is a pair of handles rather than an actor of its own: a frame then costs one
//! mailbox hop (transport -> subsystem actor) instead of three, the main lever on simulator speed.

use crate::core::{Effect, In, LinkEvent};
use crate::discovery::{self, DiscoveryActor};
use crate::feeds::{self, FeedsActor};
use crate::flood::{Admit, Charge};
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
use crate::wire::{self, Message, WireError};
use actix::Addr;
use bytes::Bytes;
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::collections::VecDeque;
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

/// Gossip frames kept by [`FrameMemo`], at most (guess: a broadcast's copies all arrive within a
/// few hundred ms, while a 1,000-node swarm starts ~17 gossip rounds a second).
pub const MAX_MEMO_FRAMES: usize = 256;

/// Decoded gossip frames by the buffer they arrived in, for a transport that hands one buffer to
/// many receivers (the simulator's: a broadcast is encoded once and its ~20 copies share the
/// bytes). Decoding is a pure function of the bytes, and an entry holds its buffer, so no other
/// buffer can take its address while it is kept: a buffer found here has these very bytes, and
/// the receivers share one decode (and, [`wire::Rumors`] being shared, one copy of the rumours).
/// Only gossip frames are kept; the oldest goes first past [`MAX_MEMO_FRAMES`]. Lookups only:
/// nothing iterates the map.
#[derive(Default)]
pub struct FrameMemo {
    frames: RefCell<FxHashMap<(usize, usize), (Bytes, Message)>>,
    order: RefCell<VecDeque<(usize, usize)>>,
}

impl FrameMemo {
    /// What [`wire::decode`] makes of `bytes`.
    pub fn decode(&self, bytes: &Bytes) -> Result<Message, WireError> {
        let key = (bytes.as_ptr() as usize, bytes.len());
        if let Some((_, msg)) = self.frames.borrow().get(&key) {
            return Ok(msg.clone());
        }
        let msg = wire::decode(bytes)?;
        if matches!(msg, Message::Gossip { .. }) && !bytes.is_empty() {
            let mut order = self.order.borrow_mut();
            let mut frames = self.frames.borrow_mut();
            if order.len() >= MAX_MEMO_FRAMES {
                if let Some(old) = order.pop_front() {
                    frames.remove(&old);
                }
            }
            order.push_back(key);
            frames.insert(key, (bytes.clone(), msg.clone()));
        }
        Ok(msg)
    }

    pub fn len(&self) -> usize {
        self.order.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.borrow().is_empty()
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
    /// Decodes shared with other nodes of this process (the simulator's); `None`: each frame
    /// decoded here.
    memo: Option<Rc<FrameMemo>>,
}

impl Inbox {
    pub fn new(links: Addr<LinksActor>, gate: Rc<Gate>, dispatch: Dispatch, outbox: Outbox, clock: Clock) -> Self {
        Inbox { links, gate, dispatch, outbox, clock, memo: None }
    }

    /// Decode gossip frames through `memo`, shared with the other nodes that receive the same buffers.
    pub fn with_memo(mut self, memo: Option<Rc<FrameMemo>>) -> Self {
        self.memo = memo;
        self
    }

    fn frame(&self, from: PeerId, bytes: &Bytes) {
        let decoded = match &self.memo {
            Some(memo) => memo.decode(bytes),
            None => wire::decode(bytes),
        };
        let msg = match decoded {
            Ok(m) => m,
            Err(e) => {
                self.outbox.apply(Effect::Event(Event::BadFrame { from, error: e.to_string() }));
                self.outbox.apply(Effect::Report { peer: from, offence: Offence::BadFrame });
                return;
            }
        };
        let now = self.clock.now();
        let proved = self.gate.heard(&from, now);
        let input = match msg {
            Message::Hello { nonce } => links::Input::Hello { from, nonce },
            Message::Proof { signature } => links::Input::Proof { from, signature },
            Message::Bye => return self.gate.mark_clean(&from),
            // A heartbeat's whole work is the stamp just made.
            Message::Heartbeat { .. } if proved => return,
            Message::Probe { seq } if proved => links::Input::Probe { from, seq },
            Message::Keep { keep } if proved => links::Input::Keep { from, keep },
            msg if proved => {
                match self.gate.admit(&from, now, Charge::of(&from, &msg)) {
                    Admit::Pass => self.dispatch.frame(from, msg),
                    Admit::Drop => {}
                    Admit::Report => self.outbox.apply(Effect::Report { peer: from, offence: Offence::Flood }),
                }
                return;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::wire::{Rumor, RumorBody};

    fn gossip_frame(seq: u64) -> Bytes {
        let id = Identity::from_secret(&[7; 32]);
        let body = RumorBody { seq, peers: vec![PeerId([seq as u8; 32])], warnings: Vec::new() };
        let rumor = Rumor::seal(&id, &body, 3, 1_000 + seq).expect("small body");
        wire::encode(&Message::Gossip { rumors: vec![rumor.clone(), rumor].into() }).expect("small frame")
    }

    fn rumors_of(msg: &Message) -> &[Rumor] {
        match msg {
            Message::Gossip { rumors } => rumors,
            other => panic!("not gossip: {other:?}"),
        }
    }

    #[test]
    fn copies_of_one_buffer_share_one_decode() {
        let memo = FrameMemo::default();
        let frame = gossip_frame(1);
        let first = memo.decode(&frame).expect("decodes");
        assert_eq!(first, wire::decode(&frame).expect("decodes"));
        let again = memo.decode(&frame.clone()).expect("decodes");
        assert_eq!(again, first);
        assert_eq!(rumors_of(&again).as_ptr(), rumors_of(&first).as_ptr(), "the rumours are shared");
        assert_eq!(memo.len(), 1);
        // The same bytes in another buffer are decoded on their own, to the same message.
        let copy = Bytes::copy_from_slice(&frame);
        let other = memo.decode(&copy).expect("decodes");
        assert_eq!(other, first);
        assert_ne!(rumors_of(&other).as_ptr(), rumors_of(&first).as_ptr());
        assert_eq!(memo.len(), 2);
    }

    #[test]
    fn keeps_gossip_only_and_within_its_bound() {
        let memo = FrameMemo::default();
        let beat = wire::encode(&Message::Heartbeat { seq: 3 }).expect("small frame");
        assert_eq!(memo.decode(&beat), wire::decode(&beat));
        let garbage = Bytes::from_static(&[0xc1, 0x00, 0x13]);
        assert_eq!(memo.decode(&garbage), wire::decode(&garbage));
        assert!(memo.decode(&garbage).is_err());
        assert!(memo.is_empty());
        let frames: Vec<Bytes> = (0..MAX_MEMO_FRAMES as u64 + 10).map(gossip_frame).collect();
        for f in &frames {
            assert_eq!(memo.decode(f), wire::decode(f));
        }
        assert_eq!(memo.len(), MAX_MEMO_FRAMES);
        // The oldest went first; the newest are still shared.
        let last = frames.last().expect("frames");
        let (a, b) = (memo.decode(last).expect("decodes"), memo.decode(last).expect("decodes"));
        assert_eq!(rumors_of(&a).as_ptr(), rumors_of(&b).as_ptr());
        assert_eq!(memo.len(), MAX_MEMO_FRAMES);
    }
}
