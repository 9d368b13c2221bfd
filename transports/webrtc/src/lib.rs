//! WebRTC transport for swarm: one ordered, reliable data channel ("swarm") per peer, set up
//! with non-trickle offers/answers carried by a caller-supplied [`SignalPath`] and, once a node
//! has links, relayed through the mesh so the swarm keeps growing with no server up.
//!
//! The webrtc work runs on a tokio multi-thread runtime; [`WebRtcTransport`] is a cheap,
//! never-blocking handle implementing the engine's [`Transport`] port, and the events come out
//! of a byte-bounded [`Events`] stream the node pumps into its inbox. Wire tags: see [`wire`]; the crate
//! README has the lifecycle rules, the signal JSON and the measured setup/throughput settings.

mod admission;
pub mod bench;
mod bucket;
pub mod config;
mod driver;
mod link;
mod runtime;
pub mod sdp;
pub mod signal;
pub mod wire;

pub use config::{ConfigError, WebRtcConfig};
pub use link::CHANNEL_LABEL;
pub use signal::{NoSignalPath, Signal, SignalKind, SignalPath};

use bytes::Bytes;
use driver::{Cmd, Driver, Shared, MAX_QUEUED_PONGS};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use swarm_engine::transport::{Transport, TransportEvent};
use swarm_engine::types::PeerId;
use tokio::sync::mpsc;

/// Errors of this crate's public constructors.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("benchmark: {0}")]
    Bench(String),
}

/// Counters, updated as they happen (relaxed atomics).
#[derive(Default)]
pub(crate) struct Counters {
    frames_in: AtomicU64,
    bytes_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_out: AtomicU64,
    frames_dropped: AtomicU64,
    pings_in: AtomicU64,
    pongs_in: AtomicU64,
    signals_in: AtomicU64,
    signals_out: AtomicU64,
    relays_sent: AtomicU64,
    relayed: AtomicU64,
    relay_dropped: AtomicU64,
    protocol_errors: AtomicU64,
    signals_refused: AtomicU64,
    remote_candidates_dropped: AtomicU64,
    offers_answered: AtomicU64,
    offers_refused: AtomicU64,
}

/// A snapshot of the transport's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Whole engine frames received and their bytes.
    pub frames_in: u64,
    pub bytes_in: u64,
    /// Engine frames queued for sending and their bytes.
    pub frames_out: u64,
    pub bytes_out: u64,
    /// Frames (and pongs) dropped: no open link, or the per-peer queue bound was reached.
    pub frames_dropped: u64,
    pub pings_in: u64,
    pub pongs_in: u64,
    /// Distinct signals received (after dedupe) and our own signals sent on the path.
    pub signals_in: u64,
    pub signals_out: u64,
    /// Our signals handed to linked peers as RELAY.
    pub relays_sent: u64,
    /// Others' RELAY requests forwarded as RELAYED, and those dropped (no link to the target,
    /// rate limit, oversize, bad JSON).
    pub relayed: u64,
    pub relay_dropped: u64,
    /// Links closed because the peer broke the wire protocol (e.g. oversize reassembly).
    pub protocol_errors: u64,
    /// Remote offers/answers refused before any peer connection: SDP that does not parse.
    pub signals_refused: u64,
    /// Remote candidate lines dropped over `max_remote_candidates` (or unparseable).
    pub remote_candidates_dropped: u64,
    /// Remote offers that started an answer, and those refused by the offer budget
    /// (`max_pending_answers`, `offer_rate_per_sec`, `peer_offer_rate_per_min`).
    pub offers_answered: u64,
    pub offers_refused: u64,
}

impl Counters {
    fn snapshot(&self) -> Stats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            frames_in: g(&self.frames_in),
            bytes_in: g(&self.bytes_in),
            frames_out: g(&self.frames_out),
            bytes_out: g(&self.bytes_out),
            frames_dropped: g(&self.frames_dropped),
            pings_in: g(&self.pings_in),
            pongs_in: g(&self.pongs_in),
            signals_in: g(&self.signals_in),
            signals_out: g(&self.signals_out),
            relays_sent: g(&self.relays_sent),
            relayed: g(&self.relayed),
            relay_dropped: g(&self.relay_dropped),
            protocol_errors: g(&self.protocol_errors),
            signals_refused: g(&self.signals_refused),
            remote_candidates_dropped: g(&self.remote_candidates_dropped),
            offers_answered: g(&self.offers_answered),
            offers_refused: g(&self.offers_refused),
        }
    }
}

/// A PONG received: the peer and the body it echoed.
pub type Pong = (PeerId, Bytes);

/// The transport's events for the node, in order per link (`Connected` before a link's first
/// `Frame`, `Disconnected` after its last). Frame bytes not yet taken are bounded by
/// `max_undelivered_bytes`: past it, links stop reading until the node catches up.
pub struct Events {
    rx: mpsc::UnboundedReceiver<driver::Inbound>,
}

impl Events {
    /// The next event; `None` once the transport has stopped.
    pub async fn recv(&mut self) -> Option<TransportEvent> {
        // The frame's permits go back as it is taken.
        self.rx.recv().await.map(|i| i.ev)
    }
}

/// Handle to a running WebRTC transport. Cloning is cheap; every method returns at once.
#[derive(Clone)]
pub struct WebRtcTransport {
    me: PeerId,
    cmds: mpsc::UnboundedSender<Cmd>,
    shared: Arc<Shared>,
    pongs: Arc<Mutex<Option<mpsc::Receiver<Pong>>>>,
}

impl WebRtcTransport {
    /// Start the driver on `rt` (a multi-thread tokio runtime). Returns the handle and the
    /// receiver of [`TransportEvent`]s, which the node pumps into its inbox.
    pub fn new(
        me: PeerId,
        cfg: WebRtcConfig,
        path: Arc<dyn SignalPath>,
        rt: &tokio::runtime::Handle,
    ) -> Result<(WebRtcTransport, Events), WebRtcError> {
        cfg.validate()?;
        let (events, events_rx) = mpsc::unbounded_channel();
        let (cmds, inbox) = mpsc::unbounded_channel();
        let (pongs_tx, pongs_rx) = mpsc::channel(MAX_QUEUED_PONGS);
        let undelivered = Arc::new(tokio::sync::Semaphore::new(cfg.max_undelivered_bytes));
        let shared = Arc::new(Shared {
            cfg,
            events,
            undelivered,
            cmds: cmds.clone(),
            stats: Counters::default(),
            pongs: pongs_tx,
        });
        let driver = Driver::new(me, shared.clone(), path);
        rt.spawn(driver.run(inbox));
        let handle = WebRtcTransport { me, cmds, shared, pongs: Arc::new(Mutex::new(Some(pongs_rx))) };
        Ok((handle, Events { rx: events_rx }))
    }

    pub fn local_peer(&self) -> PeerId {
        self.me
    }

    pub fn config(&self) -> &WebRtcConfig {
        &self.shared.cfg
    }

    /// Hand over a signal that arrived from outside the mesh (e.g. from a rendezvous server).
    pub fn deliver_signal(&self, from: PeerId, signal: Signal) {
        let _ = self.cmds.send(Cmd::Signal { from, signal, via: None });
    }

    /// Send a PING with `body` on an open link; the PONG shows up on [`Self::take_pongs`].
    pub fn ping(&self, peer: PeerId, body: Bytes) {
        let _ = self.cmds.send(Cmd::Ping(peer, body));
    }

    /// The receiver of PONG bodies (once; `None` afterwards). Bounded: unread pongs past
    /// 4096 are dropped.
    pub fn take_pongs(&self) -> Option<mpsc::Receiver<Pong>> {
        self.pongs.lock().ok().and_then(|mut p| p.take())
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// Close every connection and stop the driver.
    pub fn shutdown(&self) {
        let _ = self.cmds.send(Cmd::Shutdown);
    }
}

impl Transport for WebRtcTransport {
    fn connect(&self, peer: PeerId) {
        let _ = self.cmds.send(Cmd::Connect(peer));
    }

    fn disconnect(&self, peer: PeerId) {
        let _ = self.cmds.send(Cmd::Disconnect(peer));
    }

    fn send(&self, peer: PeerId, frame: Bytes) {
        let _ = self.cmds.send(Cmd::Send(peer, frame));
    }

    fn send_many(&self, peers: &[PeerId], frame: Bytes) {
        let _ = self.cmds.send(Cmd::SendMany(peers.to_vec(), frame));
    }
}
