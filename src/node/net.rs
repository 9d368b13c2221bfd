//! The node's network side, on the multi-thread runtime: the WebRTC transport, the rendezvous
//! clients that carry its offers and answers and report who else is registered, and (optionally)
//! a rendezvous server of the node's own that newcomers can join through.

use super::api::RendezvousState;
use anyhow::{Context, Result};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swarm_engine::identity::Identity;
use swarm_engine::PeerId;
use swarm_rendezvous::{MultiConfig, MultiEvent, MultiRendezvous, Server, ServerConfig};
use swarm_transport_webrtc::{Signal, SignalPath, WebRtcConfig, WebRtcTransport};
use tokio::sync::mpsc;

/// Registration lifetime asked of rendezvous servers (the clients refresh at half of it).
const REGISTRATION_TTL_S: u64 = 300;
/// Peers asked of each rendezvous per discovery.
const DISCOVER_LIMIT: u32 = 64;
/// Discovery every this often while the node has few peers, then every `DISCOVER_SLOW_MS`.
const DISCOVER_FAST_MS: u64 = 2_000;
const DISCOVER_SLOW_MS: u64 = 30_000;
const DISCOVER_FAST_ROUNDS: u32 = 15;
/// Largest signal accepted from a rendezvous (an SDP with its candidates is a few KiB).
const MAX_SIGNAL_BYTES: usize = 64 * 1024;

pub struct NetOptions {
    /// Signs the rendezvous registrations (the engine's own copy stays on its thread).
    pub identity: Identity,
    pub rendezvous: Vec<String>,
    pub rendezvous_listen: Option<SocketAddr>,
    pub namespace: String,
    pub bind_ip: IpAddr,
    pub ice_servers: Vec<String>,
}

pub struct Net {
    pub transport: WebRtcTransport,
    pub events: swarm_transport_webrtc::Events,
    /// Peers the rendezvous servers listed.
    pub learned: mpsc::UnboundedReceiver<Vec<PeerId>>,
    /// URL of the node's own rendezvous server, if it runs one.
    pub own_rendezvous: Option<String>,
}

/// The node's key, proving to rendezvous servers that it owns the peer id it registers.
struct IdentitySigner(Identity);

impl swarm_rendezvous::Signer for IdentitySigner {
    fn peer(&self) -> swarm_rendezvous::PeerId {
        swarm_rendezvous::PeerId(self.0.peer_id().0)
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg)
    }
}

/// Offers and answers go out through every connected rendezvous server.
struct RendezvousPath(Arc<MultiRendezvous>);

impl SignalPath for RendezvousPath {
    fn send(&self, to: PeerId, signal: &Signal) {
        self.0.signal(swarm_rendezvous::PeerId(to.0), &signal.to_json());
    }
}

pub fn start(rt: &tokio::runtime::Runtime, o: NetOptions, state: Arc<Mutex<Vec<RendezvousState>>>) -> Result<Net> {
    let me = o.identity.peer_id();
    let mut urls = o.rendezvous.clone();
    let own_rendezvous = match o.rendezvous_listen {
        Some(addr) => {
            let server = rt
                .block_on(Server::bind(addr, ServerConfig::default()))
                .with_context(|| format!("binding the node's rendezvous on {addr}"))?;
            let url = server.url();
            rt.spawn(server.run());
            // Registered at its own server too, so newcomers find it there.
            urls.insert(0, url.clone());
            Some(url)
        }
        None => None,
    };
    let _guard = rt.enter();
    let (multi, mut rdv_events) =
        MultiRendezvous::start(urls.clone(), Arc::new(IdentitySigner(o.identity)), MultiConfig::default());
    let multi = Arc::new(multi);
    // Registered (or remembered for servers not up yet) before the transport can send its first
    // offer: a server drops signals from a peer that has not registered.
    if let Err(e) = rt.block_on(multi.register(&o.namespace, REGISTRATION_TTL_S)) {
        tracing::warn!(error = %e, "rendezvous registration refused");
    }
    let cfg = WebRtcConfig { bind_ip: o.bind_ip, ice_servers: o.ice_servers.clone(), ..WebRtcConfig::default() };
    let (transport, events) = WebRtcTransport::new(me, cfg, Arc::new(RendezvousPath(multi.clone())), rt.handle())
        .context("starting the WebRTC transport")?;

    // Signals from any rendezvous go to the transport.
    let t = transport.clone();
    rt.spawn(async move {
        while let Some(ev) = rdv_events.recv().await {
            match ev {
                MultiEvent::Signal { url, from, payload } => {
                    match Signal::from_json(payload.as_bytes(), MAX_SIGNAL_BYTES) {
                        Ok(s) => t.deliver_signal(PeerId(from.0), s),
                        Err(e) => tracing::info!(%url, from = %from.to_hex(), error = %e, "unreadable signal"),
                    }
                }
                MultiEvent::Connected { url } => tracing::info!(%url, "rendezvous connected"),
                MultiEvent::Disconnected { url } => tracing::info!(%url, "rendezvous lost"),
                MultiEvent::Error { url, code, message } => tracing::debug!(%url, ?code, %message, "rendezvous error"),
            }
        }
    });

    // Register, then discover: often at first, slowly once settled.
    let (learned_tx, learned) = mpsc::unbounded_channel();
    let ns = o.namespace.clone();
    rt.spawn(async move {
        let mut round = 0u32;
        while !learned_tx.is_closed() {
            let up = multi.connected();
            if let Ok(mut s) = state.lock() {
                *s = urls.iter().map(|u| RendezvousState { url: u.clone(), connected: up.contains(u) }).collect();
            }
            let peers: Vec<PeerId> =
                multi.discover_all(&ns, DISCOVER_LIMIT).await.into_iter().map(|p| PeerId(p.0)).collect();
            if !peers.is_empty() && learned_tx.send(peers).is_err() {
                return;
            }
            round += 1;
            let wait = if round < DISCOVER_FAST_ROUNDS { DISCOVER_FAST_MS } else { DISCOVER_SLOW_MS };
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    });
    Ok(Net { transport, events, learned, own_rendezvous })
}
