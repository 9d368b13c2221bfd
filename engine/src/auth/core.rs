//! Authentication core: a challenge-response handshake on every new link. A peer id is an ed25519
//! public key; a transport only *claims* who is at the other end, so each side sends a fresh
//! random challenge (`Hello`) and accepts the link only when the answer (`Proof`) is a valid
//! signature by that key over
//!
//! ```text
//! "swarm-auth-v1" || challenge || signer id || verifier id
//! ```
//!
//! Binding both ids stops a man in the middle from relaying one link's proof on another: the
//! proof the real peer gives *him* names him, not us. Until a link is proved, no other frame on it
//! reaches a subsystem, and the subsystems do not even learn that it exists; a link not proved
//! within the timeout is closed, a wrong proof closes it at once, and both are reported.

use crate::config::AuthConfig;
use crate::core::{Core, Effect, Outputs};
use crate::identity::{Identity, Verifier};
use crate::observer::{Event, Offence};
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::{Message, NONCE_BYTES, SIGNATURE_BYTES};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::rc::Rc;

const DOMAIN: &[u8] = b"swarm-auth-v1";

/// The bytes a proof signs.
pub fn transcript(nonce: &[u8], signer: &PeerId, verifier: &PeerId) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + nonce.len() + 64);
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(nonce);
    m.extend_from_slice(&signer.0);
    m.extend_from_slice(&verifier.0);
    m
}

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The transport opened a link; `generation` names this link (a later one to the same peer
    /// gets another), so a proof that completes after the link was replaced opens nothing.
    Connected {
        peer: PeerId,
        outbound: bool,
        generation: u64,
    },
    Disconnected {
        peer: PeerId,
        /// Closed on purpose (our `Close` or the peer's `Bye`).
        clean: bool,
    },
    DialFailed {
        peer: PeerId,
    },
    Hello {
        from: PeerId,
        nonce: Vec<u8>,
    },
    Proof {
        from: PeerId,
        signature: Vec<u8>,
    },
    /// Any other frame from a peer the router did not yet see as authenticated.
    Early {
        from: PeerId,
        msg: Message,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Effect(Effect),
    /// The link is proved: the subsystems may use it.
    Up {
        peer: PeerId,
        outbound: bool,
        generation: u64,
    },
    /// A proved link closed.
    Down {
        peer: PeerId,
        clean: bool,
    },
    /// An outbound link failed, at the transport or in the handshake.
    DialFailed {
        peer: PeerId,
    },
    /// A frame that raced the proof, released once the link is proved.
    Deliver {
        from: PeerId,
        msg: Message,
    },
    /// Drop this unproved link (it failed or stalled the handshake); no goodbye.
    Drop {
        peer: PeerId,
    },
}

#[derive(Clone, Debug)]
struct Link {
    outbound: bool,
    generation: u64,
    /// Our challenge to the peer.
    nonce: [u8; NONCE_BYTES],
    /// Closed if not proved by then; `None` once proved.
    deadline: Option<Millis>,
    /// We answered the peer's challenge (once per link: a second one is an offence).
    answered: bool,
}

/// Counters, for tests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthStats {
    pub proved: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub early_dropped: u64,
}

pub struct AuthCore {
    me: PeerId,
    identity: Rc<Identity>,
    verifier: Rc<dyn Verifier>,
    cfg: AuthConfig,
    rng: ChaCha8Rng,
    links: BTreeMap<PeerId, Link>,
    /// Pending deadlines, (deadline, peer): the earliest is the core's next timeout.
    deadlines: std::collections::BTreeSet<(Millis, PeerId)>,
    stats: AuthStats,
    out: Outputs<Output>,
}

impl AuthCore {
    pub fn new(identity: Rc<Identity>, verifier: Rc<dyn Verifier>, cfg: AuthConfig, rng: ChaCha8Rng) -> Self {
        AuthCore {
            me: identity.peer_id(),
            identity,
            verifier,
            cfg,
            rng,
            links: BTreeMap::new(),
            deadlines: Default::default(),
            stats: AuthStats::default(),
            out: Outputs::new(),
        }
    }

    pub fn stats(&self) -> AuthStats {
        self.stats
    }

    /// Links still in their handshake.
    pub fn pending(&self) -> usize {
        self.deadlines.len()
    }

    pub fn is_proved(&self, peer: &PeerId) -> bool {
        self.links.get(peer).is_some_and(|l| l.deadline.is_none())
    }

    fn effect(&mut self, e: Effect) {
        self.out.push_back(Output::Effect(e));
    }

    fn forget(&mut self, peer: &PeerId) -> Option<Link> {
        let link = self.links.remove(peer)?;
        if let Some(d) = link.deadline {
            self.deadlines.remove(&(d, *peer));
        }
        Some(link)
    }

    /// Close an unproved link and say why.
    fn reject(&mut self, peer: PeerId, offence: Offence) {
        let Some(link) = self.forget(&peer) else { return };
        self.effect(Effect::Report { peer, offence });
        self.out.push_back(Output::Drop { peer });
        if link.outbound {
            self.out.push_back(Output::DialFailed { peer });
        }
    }

    fn on_connected(&mut self, now: Millis, peer: PeerId, outbound: bool, generation: u64) {
        if let Some(old) = self.forget(&peer) {
            // The transport replaced a link without telling us it closed: treat it as closed.
            if old.deadline.is_none() {
                self.out.push_back(Output::Down { peer, clean: false });
            }
        }
        let mut nonce = [0u8; NONCE_BYTES];
        self.rng.fill_bytes(&mut nonce);
        let deadline = now + self.cfg.handshake_timeout_ms;
        self.links.insert(peer, Link { outbound, generation, nonce, deadline: Some(deadline), answered: false });
        self.deadlines.insert((deadline, peer));
        self.effect(Effect::Send { to: peer, msg: Message::Hello { nonce: nonce.to_vec() } });
    }

    fn on_hello(&mut self, from: PeerId, nonce: Vec<u8>) {
        let Some(link) = self.links.get_mut(&from) else { return };
        if link.answered || nonce.len() != NONCE_BYTES {
            // Signing on demand is work a peer could make us do for ever: once per link.
            if link.deadline.is_none() {
                self.effect(Effect::Report { peer: from, offence: Offence::Unauthenticated });
            } else {
                self.reject(from, Offence::Unauthenticated);
            }
            return;
        }
        link.answered = true;
        let signed = transcript(&nonce, &self.me, &from);
        let signature = self.identity.sign(&signed);
        self.verifier.expect(&self.me, &signed, &signature);
        self.effect(Effect::Send { to: from, msg: Message::Proof { signature: signature.to_vec() } });
    }

    fn on_proof(&mut self, from: PeerId, signature: Vec<u8>) {
        let Some(link) = self.links.get(&from) else { return };
        if link.deadline.is_none() {
            return; // already proved; a duplicate proof changes nothing
        }
        let ok = <&[u8; SIGNATURE_BYTES]>::try_from(signature.as_slice())
            .is_ok_and(|sig| self.verifier.verify(&from, &transcript(&link.nonce, &from, &self.me), sig).is_ok());
        if !ok {
            self.stats.failed += 1;
            self.reject(from, Offence::AuthFailed);
            return;
        }
        self.stats.proved += 1;
        let (outbound, generation) = (link.outbound, link.generation);
        if let Some(d) = self.links.get_mut(&from).and_then(|l| l.deadline.take()) {
            self.deadlines.remove(&(d, from));
        }
        self.out.push_back(Output::Up { peer: from, outbound, generation });
        self.effect(Effect::Event(Event::Authenticated { peer: from }));
    }

    fn on_early(&mut self, from: PeerId, msg: Message) {
        if self.is_proved(&from) {
            // The router's view lagged ours by a mailbox hop: the frame is legitimate.
            self.out.push_back(Output::Deliver { from, msg });
        } else {
            // An honest peer sends nothing before it has proved us, and its own proof precedes
            // anything else it sends on the (ordered) link.
            self.stats.early_dropped += 1;
            if self.links.contains_key(&from) {
                self.reject(from, Offence::Unauthenticated);
            }
        }
    }
}

impl Core for AuthCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Connected { peer, outbound, generation } => self.on_connected(now, peer, outbound, generation),
            Input::Disconnected { peer, clean } => match self.forget(&peer) {
                Some(l) if l.deadline.is_none() => self.out.push_back(Output::Down { peer, clean }),
                Some(l) if l.outbound => self.out.push_back(Output::DialFailed { peer }),
                _ => {}
            },
            Input::DialFailed { peer } => self.out.push_back(Output::DialFailed { peer }),
            Input::Hello { from, nonce } => self.on_hello(from, nonce),
            Input::Proof { from, signature } => self.on_proof(from, signature),
            Input::Early { from, msg } => self.on_early(from, msg),
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        while let Some(&(d, peer)) = self.deadlines.first() {
            if d > now {
                break;
            }
            self.stats.timed_out += 1;
            self.reject(peer, Offence::AuthTimeout);
        }
    }

    fn next_timeout(&self) -> Option<Millis> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        debug_assert_eq!(
            self.deadlines.len(),
            self.links.values().filter(|l| l.deadline.is_some()).count(),
            "every unproved link has exactly one deadline"
        );
        debug_assert!(self.deadlines.iter().all(|(d, p)| self.links.get(p).is_some_and(|l| l.deadline == Some(*d))));
    }
}
