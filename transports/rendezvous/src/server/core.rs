//! The server's protocol core, sans-IO: per-connection challenge, identity and rate limit, the
//! delivery routes for signals, and the `Registry`. The shell feeds it `(now_ms, conn, input)`
//! (and each new connection's random nonce) and drains `Output`s (messages to send, connections
//! to close); it never reads a clock, a socket or a random source.

use crate::auth::{verify_register, Nonce};
use crate::bucket::TokenBucket;
use crate::config::ServerConfig;
use crate::proto::{ClientMsg, ErrorCode, Namespace, PeerId, ServerMsg};
use crate::registry::{Cookie, Registry, RegistryError};
use std::collections::{BTreeMap, VecDeque};

/// The shell's handle for one WebSocket connection.
pub type ConnId = u64;

/// What arrived on a connection, already classified by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Message(ClientMsg),
    /// Not a message we understand; `reason` says why (serde's words, or "binary frame").
    Malformed {
        reason: String,
    },
    /// A frame over `max_message_bytes` (`bytes` when the shell knows the size).
    Oversized {
        bytes: Option<usize>,
    },
}

/// Why the core closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    TooLarge,
    RateLimited,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send {
        conn: ConnId,
        msg: ServerMsg,
    },
    /// Close after the messages queued before it have been sent.
    Close {
        conn: ConnId,
        reason: CloseReason,
    },
}

#[derive(Debug)]
struct Conn {
    /// The challenge sent on open; every `register` on this connection must sign it.
    nonce: Nonce,
    /// Set by the first registration whose signature verified: the key holder is on this
    /// connection.
    peer: Option<PeerId>,
    bucket: TokenBucket,
    /// Messages refused by the rate limit since the last accepted one.
    violations: u32,
}

#[derive(Debug)]
pub struct ServerCore {
    cfg: ServerConfig,
    registry: Registry,
    conns: BTreeMap<ConnId, Conn>,
    /// Which connection receives signals for a peer: the one that registered it last.
    routes: BTreeMap<PeerId, ConnId>,
    out: VecDeque<Output>,
}

impl ServerCore {
    pub fn new(cfg: ServerConfig) -> ServerCore {
        let registry = Registry::new((&cfg).into());
        ServerCore { cfg, registry, conns: BTreeMap::new(), routes: BTreeMap::new(), out: VecDeque::new() }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// A new connection; `nonce` must be fresh random bytes (the shell's OS randomness), and is
    /// sent at once as the connection's `challenge`.
    pub fn open(&mut self, now_ms: u64, conn: ConnId, nonce: Nonce) {
        let bucket = TokenBucket::full(self.cfg.rate_msgs_per_s, self.cfg.rate_burst_msgs, now_ms);
        let previous = self.conns.insert(conn, Conn { nonce, peer: None, bucket, violations: 0 });
        debug_assert!(previous.is_none(), "connection ids are never reused");
        let (rate_msgs_per_s, rate_burst_msgs) = (Some(self.cfg.rate_msgs_per_s), Some(self.cfg.rate_burst_msgs));
        self.send(conn, ServerMsg::Challenge { nonce: hex::encode(nonce), rate_msgs_per_s, rate_burst_msgs });
    }

    /// The connection is gone: its registrations go with it, unless a newer connection has
    /// registered the same peer since (then they belong to that one).
    pub fn close(&mut self, conn: ConnId) {
        let Some(state) = self.conns.remove(&conn) else { return };
        let Some(peer) = state.peer else { return };
        if self.routes.get(&peer) == Some(&conn) {
            self.routes.remove(&peer);
            self.registry.unregister_peer(&peer);
        }
    }

    /// Sweeps expired registrations.
    pub fn tick(&mut self, now_ms: u64) {
        self.registry.expire(now_ms);
    }

    pub fn handle(&mut self, now_ms: u64, conn: ConnId, input: Input) {
        let (rate, burst, max_violations) =
            (self.cfg.rate_msgs_per_s, self.cfg.rate_burst_msgs, self.cfg.max_rate_violations);
        let Some(state) = self.conns.get_mut(&conn) else { return };
        // An oversized frame always ends the connection (its socket cannot be read further), so
        // it is answered before the rate limit can swallow the answer.
        if let Input::Oversized { bytes } = input {
            let size = bytes.map_or_else(|| "a frame".to_owned(), |b| format!("{b} bytes"));
            let message = format!("{size} exceeds max_message_bytes {}: closing", self.cfg.max_message_bytes);
            self.send(conn, ServerMsg::error(ErrorCode::TooLarge, message, None));
            self.close_with(conn, CloseReason::TooLarge);
            return;
        }
        if !state.bucket.take(now_ms) {
            state.violations += 1;
            let id = match &input {
                Input::Message(m) => m.id(),
                _ => None,
            };
            let closing = state.violations > max_violations;
            let message = if closing {
                format!("over {rate} messages/s (burst {burst}) {} times in a row: closing", state.violations)
            } else {
                format!("over {rate} messages/s (burst {burst}): message dropped")
            };
            self.send(conn, ServerMsg::error(ErrorCode::RateLimited, message, id));
            if closing {
                self.close_with(conn, CloseReason::RateLimited);
            }
            return;
        }
        state.violations = 0;
        match input {
            Input::Message(msg) => self.on_message(now_ms, conn, msg),
            Input::Malformed { reason } => {
                self.send(conn, ServerMsg::error(ErrorCode::BadMessage, format!("unreadable message: {reason}"), None))
            }
            // Answered before the rate limit, above.
            Input::Oversized { .. } => {}
        }
    }

    fn on_message(&mut self, now_ms: u64, conn: ConnId, msg: ClientMsg) {
        let id = msg.id();
        let reply = match msg {
            ClientMsg::Register { ns, peer, ttl_s, sig, .. } => {
                self.on_register(now_ms, conn, Register { ns: &ns, peer: &peer, ttl_s, sig: sig.as_deref() }, id)
            }
            ClientMsg::Unregister { ns, .. } => self.on_unregister(conn, &ns, id),
            ClientMsg::Discover { ns, limit, cookie, .. } => self.on_discover(now_ms, conn, &ns, limit, cookie, id),
            ClientMsg::Signal { to, payload, .. } => self.on_signal(conn, &to, payload, id),
            ClientMsg::Ping { .. } => Some(ServerMsg::Pong { id }),
        };
        if let Some(reply) = reply {
            self.send(conn, reply);
        }
    }

    fn on_register(&mut self, now_ms: u64, conn: ConnId, r: Register<'_>, id: Option<u64>) -> Option<ServerMsg> {
        let Register { ns, peer, ttl_s, sig } = r;
        let peer = match PeerId::parse(peer) {
            Ok(p) => p,
            Err(e) => return Some(ServerMsg::error(ErrorCode::BadPeerId, format!("register: `peer`: {e}"), id)),
        };
        let ns = match Namespace::parse(ns) {
            Ok(n) => n,
            Err(e) => return Some(ServerMsg::error(ErrorCode::BadNamespace, format!("register: `ns`: {e}"), id)),
        };
        let state = self.conns.get(&conn)?;
        // Before anything changes: only the key holder may register (and so take the route).
        if let Err(e) = verify_register(&state.nonce, &peer, &ns, sig) {
            return Some(ServerMsg::error(ErrorCode::BadSignature, format!("register: {e}"), id));
        }
        if let Some(own) = state.peer.filter(|own| *own != peer) {
            let message = format!("this connection is registered as peer {own}; it cannot register {peer}");
            return Some(ServerMsg::error(ErrorCode::PeerMismatch, message, id));
        }
        match self.registry.register(now_ms, &ns, peer, ttl_s) {
            Ok(ttl_s) => {
                if let Some(state) = self.conns.get_mut(&conn) {
                    state.peer = Some(peer);
                }
                self.routes.insert(peer, conn);
                Some(ServerMsg::Registered { ns: ns.to_string(), ttl_s, id })
            }
            Err(e) => Some(registry_error(e, id)),
        }
    }

    fn on_unregister(&mut self, conn: ConnId, ns: &str, id: Option<u64>) -> Option<ServerMsg> {
        let Some(peer) = self.conns.get(&conn).and_then(|c| c.peer) else {
            return Some(not_registered("unregister", id));
        };
        let ns = match Namespace::parse(ns) {
            Ok(n) => n,
            Err(e) => return Some(ServerMsg::error(ErrorCode::BadNamespace, format!("unregister: `ns`: {e}"), id)),
        };
        if self.registry.unregister(&ns, &peer) {
            None
        } else {
            let message = format!("unregister: peer {peer} is not registered under namespace {ns:?}");
            Some(ServerMsg::error(ErrorCode::NotRegistered, message, id))
        }
    }

    fn on_discover(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        ns: &str,
        limit: u32,
        cookie: Option<String>,
        id: Option<u64>,
    ) -> Option<ServerMsg> {
        let ns = match Namespace::parse(ns) {
            Ok(n) => n,
            Err(e) => return Some(ServerMsg::error(ErrorCode::BadNamespace, format!("discover: `ns`: {e}"), id)),
        };
        let cookie = match cookie.as_deref().map(Cookie::decode).transpose() {
            Ok(c) => c,
            Err(e) => return Some(registry_error(e, id)),
        };
        self.registry.expire(now_ms);
        let asker = self.conns.get(&conn).and_then(|c| c.peer);
        let page = self.registry.discover(now_ms, &ns, asker.as_ref(), limit, cookie);
        let peers = page.peers.iter().map(PeerId::to_hex).collect();
        Some(ServerMsg::Discovered { ns: ns.to_string(), peers, cookie: page.cookie.encode(), id })
    }

    fn on_signal(&mut self, conn: ConnId, to: &str, payload: String, id: Option<u64>) -> Option<ServerMsg> {
        let Some(from) = self.conns.get(&conn).and_then(|c| c.peer) else {
            return Some(not_registered("signal", id));
        };
        if payload.len() > self.cfg.max_signal_payload_bytes {
            let message = format!(
                "signal: `payload` of {} bytes exceeds max_signal_payload_bytes {}",
                payload.len(),
                self.cfg.max_signal_payload_bytes
            );
            return Some(ServerMsg::error(ErrorCode::TooLarge, message, id));
        }
        let to = match PeerId::parse(to) {
            Ok(p) => p,
            Err(e) => return Some(ServerMsg::error(ErrorCode::BadPeerId, format!("signal: `to`: {e}"), id)),
        };
        let Some(&target) = self.routes.get(&to) else {
            let message = format!("signal: no open connection has registered peer {to}");
            return Some(ServerMsg::error(ErrorCode::UnknownPeer, message, id));
        };
        self.send(target, ServerMsg::Signal { from: from.to_hex(), payload });
        None
    }

    fn send(&mut self, conn: ConnId, msg: ServerMsg) {
        self.out.push_back(Output::Send { conn, msg });
    }

    fn close_with(&mut self, conn: ConnId, reason: CloseReason) {
        self.out.push_back(Output::Close { conn, reason });
        self.close(conn);
    }
}

/// The fields of a `register`, as they came off the wire.
struct Register<'a> {
    ns: &'a str,
    peer: &'a str,
    ttl_s: u64,
    sig: Option<&'a str>,
}

fn not_registered(what: &str, id: Option<u64>) -> ServerMsg {
    let message = format!("{what}: this connection has not registered a peer yet (send `register` first)");
    ServerMsg::error(ErrorCode::NotRegistered, message, id)
}

fn registry_error(e: RegistryError, id: Option<u64>) -> ServerMsg {
    let code = match e {
        RegistryError::TooManyForPeer { .. } => ErrorCode::TooManyRegistrations,
        RegistryError::Full { .. } => ErrorCode::RegistryFull,
        RegistryError::BadCookie { .. } => ErrorCode::BadCookie,
    };
    ServerMsg::error(code, e.to_string(), id)
}
