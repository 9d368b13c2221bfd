//! One peer connection: its task builds the `RTCPeerConnection`, runs the non-trickle
//! offer/answer for the driver, waits for the "swarm" data channel to open, then reads messages
//! (frames straight to the node's event channel; relays and signals to the driver) while a
//! writer task feeds the channel from a byte-bounded queue.

use crate::bucket::{Rate, TokenBucket};
use crate::driver::{Cmd, Inbound, Shared};
use crate::runtime::BufferedRuntime;
use crate::signal::{Signal, SignalKind};
use crate::wire::{self, Message, Reassembler, TAG_PONG};
use bytes::{Bytes, BytesMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use swarm_engine::transport::TransportEvent;
use swarm_engine::types::PeerId;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceGatheringState,
    RTCIceServer, RTCPeerConnectionState, RTCSessionDescription,
};

/// The buffered-amount-low threshold (re)set to wake the driver during setup.
const NUDGE_LOW_THRESHOLD_BYTES: u32 = 0;

/// The label of the one data channel per peer connection.
pub const CHANNEL_LABEL: &str = "swarm";

/// Why a link ended early (logged; the driver only learns that it closed).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    #[error("peer connection {0}")]
    PcState(RTCPeerConnectionState),
    #[error("the driver gave up on this link")]
    Dropped,
    #[error("no local description after gathering")]
    NoLocalDescription,
    #[error("protocol: {0}")]
    Wire(#[from] wire::WireError),
}

/// What the driver holds to steer a link task: dropping it (its `_close` sender) ends the task,
/// and clears `live` so the reader stops reporting frames the node no longer expects.
pub(crate) struct LinkCtl {
    pub _close: oneshot::Sender<()>,
    pub live: Arc<AtomicBool>,
    pub answer: Option<oneshot::Sender<String>>,
}

/// How a link starts: we offer, or we answer a received offer.
pub(crate) enum Role {
    Dial,
    Answer { offer_sdp: String },
}

/// The sending side of an open link: a queue bounded in bytes in front of the writer task.
#[derive(Clone)]
pub(crate) struct LinkOut {
    tx: mpsc::UnboundedSender<BytesMut>,
    queued_bytes: Arc<AtomicUsize>,
    max_queued_bytes: usize,
}

impl LinkOut {
    /// Queue messages all-or-nothing; false (nothing queued) when the queue bound would be passed
    /// or the link is gone.
    pub fn push_all(&self, msgs: Vec<BytesMut>) -> bool {
        let len: usize = msgs.iter().map(|m| m.len()).sum();
        let before = self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if before + len > self.max_queued_bytes {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        msgs.into_iter().all(|m| self.tx.send(m).is_ok())
    }
}

enum PcEvent {
    GatheringComplete,
    State(RTCPeerConnectionState),
    Channel(Arc<dyn DataChannel>),
}

struct Handler(mpsc::UnboundedSender<PcEvent>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.0.send(PcEvent::GatheringComplete);
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.0.send(PcEvent::State(state));
    }
    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        let _ = self.0.send(PcEvent::Channel(dc));
    }
}

/// Start a link task on the current runtime.
pub(crate) fn spawn(shared: Arc<Shared>, peer: PeerId, conn: u64, session: u64, role: Role) -> LinkCtl {
    let (close_tx, close_rx) = oneshot::channel();
    let (answer_tx, answer_rx) = oneshot::channel();
    let dial = matches!(role, Role::Dial);
    let live = Arc::new(AtomicBool::new(true));
    let task_live = live.clone();
    tokio::spawn(async move {
        let link = Link { shared: shared.clone(), peer, conn, session, live: task_live };
        if let Err(e) = link.run(role, close_rx, answer_rx).await {
            debug!(peer = %peer.short(), conn, "link ended: {e}");
        }
        let _ = shared.cmds.send(Cmd::Closed { peer, conn });
    });
    LinkCtl { _close: close_tx, live, answer: dial.then_some(answer_tx) }
}

struct Link {
    shared: Arc<Shared>,
    peer: PeerId,
    conn: u64,
    session: u64,
    live: Arc<AtomicBool>,
}

fn failed(ev: &PcEvent) -> Option<RTCPeerConnectionState> {
    match ev {
        PcEvent::State(s @ (RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed)) => Some(*s),
        _ => None,
    }
}

impl Link {
    async fn run(
        &self,
        role: Role,
        mut close: oneshot::Receiver<()>,
        answer: oneshot::Receiver<String>,
    ) -> Result<(), LinkError> {
        let (ev_tx, mut ev) = mpsc::unbounded_channel();
        let cfg = &self.shared.cfg;
        let ice_servers =
            cfg.ice_servers.iter().map(|u| RTCIceServer { urls: vec![u.clone()], ..Default::default() }).collect();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().with_ice_servers(ice_servers).build())
            .with_setting_engine(cfg.setting_engine())
            .with_handler(Arc::new(Handler(ev_tx)))
            .with_runtime(Arc::new(BufferedRuntime::new(cfg.udp_socket_buffer_bytes)))
            .with_udp_addrs(vec![std::net::SocketAddr::new(cfg.bind_ip, 0)])
            .with_data_channel_send_buffer_limit(cfg.send_buffer_limit_bytes)
            .build()
            .await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let result = tokio::select! {
            biased;
            _ = &mut close => Err(LinkError::Dropped),
            r = self.drive(&pc, &mut ev, role, answer) => r,
        };
        let _ = pc.close().await;
        result
    }

    async fn drive(
        &self,
        pc: &Arc<dyn PeerConnection>,
        ev: &mut mpsc::UnboundedReceiver<PcEvent>,
        role: Role,
        answer: oneshot::Receiver<String>,
    ) -> Result<(), LinkError> {
        let dc = match role {
            Role::Dial => {
                let init = RTCDataChannelInit { ordered: true, ..Default::default() };
                let dc = pc.create_data_channel(CHANNEL_LABEL, Some(init)).await?;
                let offer = pc.create_offer(None).await?;
                pc.set_local_description(offer).await?;
                self.gather_and_signal(pc, ev, SignalKind::Offer).await?;
                let sdp = tokio::select! {
                    a = answer => a.map_err(|_| LinkError::Dropped)?,
                    s = watch_failure(ev) => return Err(s),
                };
                pc.set_remote_description(RTCSessionDescription::answer(sdp)?).await?;
                dc
            }
            Role::Answer { offer_sdp } => {
                pc.set_remote_description(RTCSessionDescription::offer(offer_sdp)?).await?;
                let ans = pc.create_answer(None).await?;
                pc.set_local_description(ans).await?;
                self.gather_and_signal(pc, ev, SignalKind::Answer).await?;
                loop {
                    match ev.recv().await.ok_or(LinkError::Dropped)? {
                        // Only the "swarm" channel carries the wire; a peer's other channels
                        // are closed.
                        PcEvent::Channel(dc) => match dc.label().await {
                            Ok(label) if label == CHANNEL_LABEL => break dc,
                            _ => {
                                let _ = dc.close().await;
                            }
                        },
                        other => check(&other)?,
                    }
                }
            }
        };
        let nudge_ms = self.shared.cfg.setup_nudge_interval_ms;
        let mut nudge = tokio::time::interval(Duration::from_millis(nudge_ms.max(1)));
        nudge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                e = dc.poll() => match e {
                    Some(DataChannelEvent::OnOpen) => break,
                    Some(DataChannelEvent::OnClose) | None => return Err(LinkError::Dropped),
                    _ => {}
                },
                s = watch_failure(ev) => return Err(s),
                // Any setter wakes the driver, which then flushes what it had queued.
                _ = nudge.tick(), if nudge_ms > 0 => {
                    let _ = dc.set_buffered_amount_low_threshold(NUDGE_LOW_THRESHOLD_BYTES).await;
                }
            }
        }
        self.serve(dc, ev).await
    }

    async fn gather_and_signal(
        &self,
        pc: &Arc<dyn PeerConnection>,
        ev: &mut mpsc::UnboundedReceiver<PcEvent>,
        kind: SignalKind,
    ) -> Result<(), LinkError> {
        loop {
            match ev.recv().await.ok_or(LinkError::Dropped)? {
                PcEvent::GatheringComplete => break,
                other => check(&other)?,
            }
        }
        let sdp = pc.local_description().await.ok_or(LinkError::NoLocalDescription)?.sdp;
        let signal = Signal { session: self.session, kind, sdp };
        let _ = self.shared.cmds.send(Cmd::LocalSignal { peer: self.peer, conn: self.conn, signal });
        Ok(())
    }

    /// The open link: hand the driver our sender, wait for it to report `Connected`, then read.
    async fn serve(
        &self,
        dc: Arc<dyn DataChannel>,
        ev: &mut mpsc::UnboundedReceiver<PcEvent>,
    ) -> Result<(), LinkError> {
        let cfg = &self.shared.cfg;
        let (tx, mut rx) = mpsc::unbounded_channel::<BytesMut>();
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let out = LinkOut { tx, queued_bytes: queued_bytes.clone(), max_queued_bytes: cfg.max_queued_bytes };
        let writer_dc = dc.clone();
        let writer = tokio::spawn(async move {
            // `send` waits while SCTP holds more than the send-buffer limit unacknowledged: the
            // crate wakes it as acknowledgements release buffer (its buffered-amount-low signal).
            while let Some(msg) = rx.recv().await {
                let len = msg.len();
                let sent = writer_dc.send(msg).await;
                queued_bytes.fetch_sub(len, Ordering::AcqRel);
                if sent.is_err() {
                    break;
                }
            }
        });
        let (go_tx, go_rx) = oneshot::channel();
        let _ = self.shared.cmds.send(Cmd::Opened { peer: self.peer, conn: self.conn, out: out.clone(), go: go_tx });
        let result = match go_rx.await {
            Ok(()) => self.read(&dc, ev, &out).await,
            Err(_) => Err(LinkError::Dropped),
        };
        writer.abort();
        let _ = dc.close().await;
        result
    }

    async fn read(
        &self,
        dc: &Arc<dyn DataChannel>,
        ev: &mut mpsc::UnboundedReceiver<PcEvent>,
        out: &LinkOut,
    ) -> Result<(), LinkError> {
        let cfg = &self.shared.cfg;
        let mut reasm = Reassembler::new(cfg.max_frame_bytes);
        // Relay requests this link may make: `relay_burst` at once, refilled at `relay_rate_per_sec`.
        let epoch = tokio::time::Instant::now();
        let mut bucket = TokenBucket::full(Rate::per_sec(cfg.relay_rate_per_sec, cfg.relay_burst), 0);
        loop {
            let msg = tokio::select! {
                e = dc.poll() => match e {
                    Some(DataChannelEvent::OnMessage(m)) => m.data.freeze(),
                    Some(DataChannelEvent::OnClose) | None => return Ok(()),
                    _ => continue,
                },
                s = watch_failure(ev) => return Err(s),
            };
            let now_ms = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            let frame = match self.on_message(msg, &mut reasm, (&mut bucket, now_ms), out) {
                Ok(f) => f,
                Err(e) => {
                    self.shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    return Err(e.into());
                }
            };
            let Some(bytes) = frame.filter(|_| self.live.load(Ordering::Acquire)) else { continue };
            // Wait, reading nothing more, while the node has too many undelivered bytes: SCTP's
            // window then pushes back on the sender. A frame is at most half the bound, and
            // permits come back as the node takes frames, whatever the other links do.
            let n = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            let permit = tokio::select! {
                p = self.shared.undelivered.clone().acquire_many_owned(n) => p.map_err(|_| LinkError::Dropped)?,
                s = watch_failure(ev) => return Err(s),
            };
            let stats = &self.shared.stats;
            stats.frames_in.fetch_add(1, Ordering::Relaxed);
            stats.bytes_in.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            let ev = TransportEvent::Frame { peer: self.peer, bytes };
            let _ = self.shared.events.send(Inbound { ev, _permit: Some(permit) });
        }
    }

    fn on_message(
        &self,
        msg: Bytes,
        reasm: &mut Reassembler,
        (bucket, now_ms): (&mut TokenBucket, u64),
        out: &LinkOut,
    ) -> Result<Option<Bytes>, wire::WireError> {
        let stats = &self.shared.stats;
        let frame = match wire::decode(msg)? {
            Message::Frame(f) => {
                reasm.whole()?;
                Some(f)
            }
            Message::Fragment { last, body } => reasm.push(last, &body)?,
            Message::Ping(body) => {
                stats.pings_in.fetch_add(1, Ordering::Relaxed);
                if !out.push_all(vec![wire::tagged(TAG_PONG, &[&body])]) {
                    stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
            Message::Pong(body) => {
                stats.pongs_in.fetch_add(1, Ordering::Relaxed);
                // Bounded: pongs nobody reads are dropped.
                let _ = self.shared.pongs.try_send((self.peer, body));
                None
            }
            Message::Relay { to, signal } => {
                if bucket.take(now_ms) && signal.len() <= self.shared.cfg.max_signal_bytes {
                    let _ = self.shared.cmds.send(Cmd::Relay { from: self.peer, to, signal });
                } else {
                    stats.relay_dropped.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
            Message::Relayed { from, signal } => {
                match Signal::from_json(&signal, self.shared.cfg.max_signal_bytes) {
                    Ok(s) if bucket.take(now_ms) => {
                        let _ = self.shared.cmds.send(Cmd::Signal { from, signal: s, via: Some(self.peer) });
                    }
                    _ => {
                        stats.relay_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None
            }
        };
        Ok(frame)
    }
}

fn check(ev: &PcEvent) -> Result<(), LinkError> {
    failed(ev).map_or(Ok(()), |s| Err(LinkError::PcState(s)))
}

/// Resolves when the peer connection fails or closes (or its handler is gone).
async fn watch_failure(ev: &mut mpsc::UnboundedReceiver<PcEvent>) -> LinkError {
    loop {
        match ev.recv().await {
            None => return LinkError::Dropped,
            Some(e) => {
                if let Some(s) = failed(&e) {
                    return LinkError::PcState(s);
                }
            }
        }
    }
}
