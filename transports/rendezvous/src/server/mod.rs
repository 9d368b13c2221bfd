//! The rendezvous server's tokio shell. One hub task owns the sans-IO `ServerCore`, reads the
//! clock and draws each connection's challenge nonce from the OS; one task per WebSocket
//! connection reads frames, classifies them into core inputs and writes what the hub queues for
//! it. All channels between them are bounded.

pub mod core;

use self::core::{CloseReason, ConnId, Input, Output, ServerCore};
use crate::auth::Nonce;
use crate::config::ServerConfig;
use crate::error::RendezvousError;
use crate::proto::{ClientMsg, ServerMsg};
use futures_util::{SinkExt, StreamExt};
use rand_core::{OsRng, RngCore};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tracing::{debug, info, warn};

/// Events from connection tasks to the hub.
const HUB_QUEUE_EVENTS: usize = 1024;
/// On shutdown, how long connection tasks get to send their close frames.
const SHUTDOWN_GRACE_MS: u64 = 2_000;

/// A bound, not yet running, rendezvous server.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    cfg: Arc<ServerConfig>,
}

/// A running server; `shutdown` stops it and closes every connection. Dropping the handle
/// without `shutdown` stops it too (in the background).
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

enum HubEvent {
    Open { conn: ConnId, tx: mpsc::Sender<Outbound> },
    Input { conn: ConnId, input: Input },
    Closed { conn: ConnId },
}

enum Outbound {
    Text(String),
    Close(CloseReason),
}

impl Server {
    /// Validates `cfg` and binds the listening socket (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr, cfg: ServerConfig) -> Result<Server, RendezvousError> {
        cfg.validate()?;
        let listener = TcpListener::bind(addr).await.map_err(|source| RendezvousError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(RendezvousError::LocalAddr)?;
        Ok(Server { listener, local_addr, cfg: Arc::new(cfg) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("ws://{}", self.local_addr)
    }

    /// Serves forever.
    pub async fn run(self) {
        let (_stop, stopped) = watch::channel(false);
        self.run_until(stopped).await;
    }

    /// Serves on a spawned task until `ServerHandle::shutdown`.
    pub fn spawn(self) -> ServerHandle {
        let (stop, stopped) = watch::channel(false);
        let local_addr = self.local_addr;
        let task = tokio::spawn(self.run_until(stopped));
        ServerHandle { local_addr, stop, task }
    }

    async fn run_until(self, mut stopped: watch::Receiver<bool>) {
        info!(addr = %self.local_addr, "rendezvous server listening");
        let (hub_tx, hub_rx) = mpsc::channel(HUB_QUEUE_EVENTS);
        let hub = tokio::spawn(hub(self.cfg.as_ref().clone(), hub_rx));
        let mut conns = JoinSet::new();
        let mut next_conn: ConnId = 1;
        loop {
            tokio::select! {
                biased;
                _ = stopped.changed() => break,
                accepted = self.listener.accept() => {
                    while conns.try_join_next().is_some() {}
                    let (tcp, remote) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Usually out of file descriptors: back off instead of spinning.
                            warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    if conns.len() >= self.cfg.max_connections {
                        debug!(%remote, max = self.cfg.max_connections, "refusing connection: max_connections");
                        continue;
                    }
                    let conn = next_conn;
                    next_conn += 1;
                    conns.spawn(connection(tcp, conn, self.cfg.clone(), hub_tx.clone(), stopped.clone()));
                }
            }
        }
        drop(self.listener);
        drop(hub_tx);
        if timeout(Duration::from_millis(SHUTDOWN_GRACE_MS), async { while conns.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            conns.abort_all();
        }
        let _ = hub.await;
        info!(addr = %self.local_addr, "rendezvous server stopped");
    }
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.local_addr)
    }

    /// Stops accepting, closes every connection (clients see a close frame) and waits for it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds `addr` and serves until ctrl-c: the one-call entry point of `swarm rendezvous`.
pub async fn serve(addr: SocketAddr, cfg: ServerConfig) -> Result<(), RendezvousError> {
    let server = Server::bind(addr, cfg).await?.spawn();
    let result = tokio::signal::ctrl_c().await.map_err(RendezvousError::Signal);
    server.shutdown().await;
    result
}

/// Owns the core: applies inputs with the current time and routes outputs to connections.
async fn hub(cfg: ServerConfig, mut rx: mpsc::Receiver<HubEvent>) {
    let start = Instant::now();
    let now_ms = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut sweep = tokio::time::interval(Duration::from_millis(cfg.sweep_interval_ms));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut core = ServerCore::new(cfg);
    let mut outs: BTreeMap<ConnId, mpsc::Sender<Outbound>> = BTreeMap::new();
    loop {
        tokio::select! {
            biased;
            event = rx.recv() => match event {
                None => break,
                Some(HubEvent::Open { conn, tx }) => {
                    let mut nonce: Nonce = Default::default();
                    if let Err(e) = OsRng.try_fill_bytes(&mut nonce) {
                        // Without a fresh nonce registrations could be replayed: refuse the
                        // connection (dropping `tx` closes it).
                        warn!(conn, error = %e, "no OS randomness for a challenge: dropping the connection");
                        continue;
                    }
                    outs.insert(conn, tx);
                    core.open(now_ms(), conn, nonce);
                }
                Some(HubEvent::Input { conn, input }) => core.handle(now_ms(), conn, input),
                Some(HubEvent::Closed { conn }) => {
                    core.close(conn);
                    outs.remove(&conn);
                }
            },
            _ = sweep.tick() => core.tick(now_ms()),
        }
        while let Some(output) = core.poll_output() {
            let (conn, item, relayed) = match output {
                Output::Send { conn, msg } => match serde_json::to_string(&msg) {
                    Ok(text) => (conn, Outbound::Text(text), matches!(msg, ServerMsg::Signal { .. })),
                    Err(e) => {
                        warn!(error = %e, "cannot encode a server message");
                        continue;
                    }
                },
                Output::Close { conn, reason } => (conn, Outbound::Close(reason), false),
            };
            let closing = matches!(item, Outbound::Close(_));
            let Some(tx) = outs.get(&conn) else { continue };
            if let Err(e) = tx.try_send(item) {
                let full = matches!(e, mpsc::error::TrySendError::Full(_));
                if full && relayed {
                    // Other peers' signals are not the receiver's doing: a flood of them is
                    // dropped, never a reason to cut the receiver off.
                    debug!(conn, "outbound queue full (max_outbound_queue_msgs): dropping a signal");
                    continue;
                }
                // A client that does not read the answers to its own messages is cut off:
                // dropping its sender makes its task close the socket.
                if full {
                    debug!(conn, "outbound queue full (max_outbound_queue_msgs): disconnecting");
                }
                outs.remove(&conn);
                core.close(conn);
            } else if closing {
                outs.remove(&conn);
            }
        }
    }
}

/// One WebSocket connection: upgrade, then shuttle frames between the socket and the hub.
async fn connection(
    tcp: TcpStream,
    conn: ConnId,
    cfg: Arc<ServerConfig>,
    hub: mpsc::Sender<HubEvent>,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let ws_cfg = WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message_bytes))
        .max_frame_size(Some(cfg.max_message_bytes));
    let handshake = tokio_tungstenite::accept_async_with_config(tcp, Some(ws_cfg));
    let ws = match timeout(Duration::from_millis(cfg.handshake_timeout_ms), handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return debug!(conn, error = %e, "websocket handshake failed"),
        Err(_) => return debug!(conn, "websocket handshake timed out"),
    };
    let (out_tx, mut out_rx) = mpsc::channel(cfg.max_outbound_queue_msgs);
    if hub.send(HubEvent::Open { conn, tx: out_tx }).await.is_err() {
        return;
    }
    let (mut sink, mut stream) = ws.split();
    let idle = Duration::from_millis(cfg.idle_timeout_ms);
    let write_timeout = Duration::from_millis(cfg.handshake_timeout_ms);
    let mut idle_deadline = Instant::now() + idle;
    let mut reading = true;
    let close: Option<(CloseCode, &'static str)> = loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => break Some((CloseCode::Away, "server shutting down")),
            out = out_rx.recv() => match out {
                Some(Outbound::Text(text)) => match timeout(write_timeout, sink.send(Message::text(text))).await {
                    Ok(Ok(())) => {}
                    _ => break None,
                },
                Some(Outbound::Close(CloseReason::TooLarge)) => break Some((CloseCode::Size, "message too large")),
                Some(Outbound::Close(CloseReason::RateLimited)) => break Some((CloseCode::Policy, "rate limited")),
                None => break Some((CloseCode::Again, "not reading fast enough")),
            },
            frame = stream.next(), if reading => {
                idle_deadline = Instant::now() + idle;
                let input = match frame {
                    Some(Ok(Message::Text(text))) => classify(text.as_str(), cfg.max_message_bytes),
                    Some(Ok(Message::Binary(_))) => {
                        Input::Malformed { reason: "binary frame; messages are JSON text frames".into() }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Err(WsError::Capacity(e))) => {
                        // The socket is unreadable from here on; the core answers and closes.
                        reading = false;
                        let bytes = match e {
                            tokio_tungstenite::tungstenite::error::CapacityError::MessageTooLong { size, .. } => Some(size),
                            _ => None,
                        };
                        Input::Oversized { bytes }
                    }
                    Some(Err(e)) => {
                        debug!(conn, error = %e, "websocket read failed");
                        break None;
                    }
                };
                if hub.send(HubEvent::Input { conn, input }).await.is_err() {
                    break Some((CloseCode::Away, "server shutting down"));
                }
            },
            _ = tokio::time::sleep_until(idle_deadline) => break Some((CloseCode::Policy, "idle timeout")),
        }
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
        let _ = timeout(write_timeout, sink.send(Message::Close(Some(frame)))).await;
    }
    let _ = hub.send(HubEvent::Closed { conn }).await;
}

fn classify(text: &str, max_message_bytes: usize) -> Input {
    if text.len() > max_message_bytes {
        return Input::Oversized { bytes: Some(text.len()) };
    }
    match serde_json::from_str::<ClientMsg>(text) {
        Ok(msg) => Input::Message(msg),
        Err(e) => Input::Malformed { reason: e.to_string() },
    }
}
