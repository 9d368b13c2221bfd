//! Client of one rendezvous server. Connecting waits for the server's challenge, which every
//! `register` on this connection signs with the client's [`Signer`]. A background task then owns
//! the WebSocket: it numbers requests, matches replies by `id`, forwards incoming signals and
//! unsolicited errors as `ClientEvent`s, and sends keepalive pings. It stops when every
//! `RendezvousClient` clone is dropped. Every message sent is paced under the server's
//! per-connection budget (published in its challenge), so the client is never disconnected for
//! going over it: requests wait for a token, signals that find none are dropped and counted.

pub mod multi;

use crate::auth::{sign_register, Nonce, Signer};
use crate::bucket::TokenBucket;
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::proto::{ClientMsg, ErrorCode, Namespace, PeerId, ServerMsg};
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};

/// Something the server sent that no request of ours was waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A signal relayed from another peer.
    Signal { from: PeerId, payload: String },
    /// An error not tied to an awaited request (e.g. `unknown_peer` after a `signal`).
    Error { code: ErrorCode, message: String },
    /// The connection ended; the event stream ends right after.
    Disconnected,
}

/// Handle on one server connection; cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct RendezvousClient {
    cmds: mpsc::Sender<Cmd>,
    signer: Arc<dyn Signer>,
    peer: PeerId,
    /// This connection's challenge (a reconnect is a new client with a new one).
    nonce: Nonce,
    url: Arc<str>,
    cfg: Arc<ClientConfig>,
    pacer: Arc<Pacer>,
}

/// The client's budget toward the server: the lower of its own and 4/5 of the server's.
struct Pacer {
    bucket: Mutex<TokenBucket>,
    epoch: tokio::time::Instant,
    rate_msgs_per_s: u32,
    burst_msgs: u32,
    reserve_msgs: u32,
    /// Signals (and unregisters) dropped for want of a token.
    dropped: AtomicU64,
}

impl Pacer {
    fn new(cfg: &ClientConfig, published: Budget) -> Pacer {
        let own = |mine: u32, theirs: Option<u32>| theirs.map_or(mine, |t| mine.min(t.saturating_mul(4) / 5)).max(1);
        let rate_msgs_per_s = own(cfg.max_send_rate_msgs_per_s, published.rate_msgs_per_s);
        let burst_msgs = own(cfg.max_send_burst_msgs, published.rate_burst_msgs);
        let epoch = tokio::time::Instant::now();
        Pacer {
            bucket: Mutex::new(TokenBucket::full(rate_msgs_per_s, burst_msgs, 0)),
            epoch,
            rate_msgs_per_s,
            burst_msgs,
            // Under a small budget signals must still be able to go.
            reserve_msgs: cfg.request_reserve_msgs.min(burst_msgs / 4),
            dropped: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, TokenBucket> {
        // Plain arithmetic under the lock: a panic cannot leave it half-updated.
        self.bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A token for a fire-and-forget message, or the error saying it was dropped.
    fn take_for_signal(&self, reserve: u32) -> Result<(), ClientError> {
        if self.bucket().take_above(self.now_ms(), reserve) {
            return Ok(());
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        Err(ClientError::Paced { rate_msgs_per_s: self.rate_msgs_per_s, burst_msgs: self.burst_msgs })
    }

    /// Waits for a token (the caller bounds the wait).
    async fn take_for_request(&self) {
        loop {
            let wait_ms = {
                let now = self.now_ms();
                let mut bucket = self.bucket();
                if bucket.take(now) {
                    return;
                }
                bucket.wait_ms(now)
            };
            tokio::time::sleep(Duration::from_millis(wait_ms.max(1))).await;
        }
    }
}

/// The budget a server published in its challenge (`None`: an older server that does not say).
#[derive(Clone, Copy, Default)]
struct Budget {
    rate_msgs_per_s: Option<u32>,
    rate_burst_msgs: Option<u32>,
}

type Reply = oneshot::Sender<Result<ServerMsg, ClientError>>;

enum Cmd {
    Request { msg: ClientMsg, reply: Reply },
    Send { msg: ClientMsg },
}

impl RendezvousClient {
    /// Connects with the default `ClientConfig`. `url` is `ws://host:port`; `signer` holds the
    /// key of the peer this client registers as.
    pub async fn connect(
        url: &str,
        signer: Arc<dyn Signer>,
    ) -> Result<(RendezvousClient, mpsc::Receiver<ClientEvent>), ClientError> {
        Self::connect_with(url, signer, ClientConfig::default()).await
    }

    /// Connects and waits (up to `challenge_timeout_ms`) for the server's challenge.
    pub async fn connect_with(
        url: &str,
        signer: Arc<dyn Signer>,
        cfg: ClientConfig,
    ) -> Result<(RendezvousClient, mpsc::Receiver<ClientEvent>), ClientError> {
        let ws_cfg = WebSocketConfig::default()
            .max_message_size(Some(cfg.max_message_bytes))
            .max_frame_size(Some(cfg.max_message_bytes));
        let connecting = tokio_tungstenite::connect_async_with_config(url, Some(ws_cfg), true);
        let (mut ws, _) = match timeout(Duration::from_millis(cfg.connect_timeout_ms), connecting).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => return Err(ClientError::Connect { url: url.to_owned(), reason: e.to_string() }),
            Err(_) => {
                return Err(ClientError::ConnectTimeout { url: url.to_owned(), timeout_ms: cfg.connect_timeout_ms })
            }
        };
        let (nonce, budget) =
            match timeout(Duration::from_millis(cfg.challenge_timeout_ms), challenge(&mut ws, url)).await {
                Ok(challenge) => challenge?,
                Err(_) => {
                    let timeout_ms = cfg.challenge_timeout_ms;
                    return Err(ClientError::ChallengeTimeout { url: url.to_owned(), timeout_ms });
                }
            };
        let (cmd_tx, cmd_rx) = mpsc::channel(cfg.outbound_queue_len);
        let (event_tx, event_rx) = mpsc::channel(cfg.event_queue_len);
        let pacer = Arc::new(Pacer::new(&cfg, budget));
        let cfg = Arc::new(cfg);
        tokio::spawn(run(ws, cmd_rx, event_tx, cfg.clone()));
        let peer = signer.peer();
        let client = RendezvousClient { cmds: cmd_tx, signer, peer, nonce, url: url.into(), cfg, pacer };
        Ok((client, event_rx))
    }

    pub fn peer(&self) -> PeerId {
        self.peer
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// False once the connection has ended.
    pub fn is_connected(&self) -> bool {
        !self.cmds.is_closed()
    }

    /// Signals and unregisters dropped because the budget toward the server was spent.
    pub fn signals_paced(&self) -> u64 {
        self.pacer.dropped.load(Ordering::Relaxed)
    }

    /// The budget this client keeps to: (messages per second, burst).
    pub fn send_budget(&self) -> (u32, u32) {
        (self.pacer.rate_msgs_per_s, self.pacer.burst_msgs)
    }

    /// Registers this client's peer under `ns`; returns the TTL the server granted (clamped).
    pub async fn register(&self, ns: &str, ttl_s: u64) -> Result<u64, ClientError> {
        check_ns(ns)?;
        let sig = Some(sign_register(self.signer.as_ref(), &self.nonce, ns));
        let msg = ClientMsg::Register { ns: ns.to_owned(), peer: self.peer.to_hex(), ttl_s, sig, id: None };
        match self.request(msg).await? {
            ServerMsg::Registered { ttl_s, .. } => Ok(ttl_s),
            other => Err(unexpected(other)),
        }
    }

    /// One page of peers registered under `ns` (never this client's own peer) and the cookie for
    /// the next page. A page shorter than `limit` means there are no more for now.
    pub async fn discover(
        &self,
        ns: &str,
        limit: u32,
        cookie: Option<&str>,
    ) -> Result<(Vec<PeerId>, String), ClientError> {
        check_ns(ns)?;
        let msg = ClientMsg::Discover { ns: ns.to_owned(), limit, cookie: cookie.map(str::to_owned), id: None };
        match self.request(msg).await? {
            ServerMsg::Discovered { peers, cookie, .. } => {
                let peers = peers
                    .iter()
                    .map(|p| PeerId::parse(p).map_err(|e| ClientError::Protocol(format!("discovered peer {p:?}: {e}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((peers, cookie))
            }
            other => Err(unexpected(other)),
        }
    }

    /// Round trip to the server.
    pub async fn ping(&self) -> Result<Duration, ClientError> {
        let start = tokio::time::Instant::now();
        match self.request(ClientMsg::Ping { id: None }).await? {
            ServerMsg::Pong { .. } => Ok(start.elapsed()),
            other => Err(unexpected(other)),
        }
    }

    /// Sends an opaque payload to `to` through the server. Fire-and-forget: a server-side error
    /// (`unknown_peer`, `too_large`) arrives as `ClientEvent::Error`. Over the budget (leaving
    /// `request_reserve_msgs` for requests) it is dropped: `ClientError::Paced`.
    pub fn signal(&self, to: PeerId, payload: impl Into<String>) -> Result<(), ClientError> {
        self.pacer.take_for_signal(self.pacer.reserve_msgs)?;
        self.send(ClientMsg::Signal { to: to.to_hex(), payload: payload.into(), id: None })
    }

    /// Withdraws the registration under `ns`. Fire-and-forget like `signal`; the server handles
    /// messages in order, so a later `discover` already sees it gone.
    pub fn unregister(&self, ns: &str) -> Result<(), ClientError> {
        check_ns(ns)?;
        self.pacer.take_for_signal(0)?;
        self.send(ClientMsg::Unregister { ns: ns.to_owned(), id: None })
    }

    fn send(&self, msg: ClientMsg) -> Result<(), ClientError> {
        self.cmds.try_send(Cmd::Send { msg }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ClientError::QueueFull { max: self.cfg.outbound_queue_len },
            mpsc::error::TrySendError::Closed(_) => ClientError::Disconnected,
        })
    }

    async fn request(&self, msg: ClientMsg) -> Result<ServerMsg, ClientError> {
        let timeout_ms = self.cfg.request_timeout_ms;
        let (reply, answer) = oneshot::channel();
        let exchange = async {
            self.pacer.take_for_request().await;
            self.cmds.send(Cmd::Request { msg, reply }).await.map_err(|_| ClientError::Disconnected)?;
            answer.await.map_err(|_| ClientError::Disconnected)?
        };
        match timeout(Duration::from_millis(timeout_ms), exchange).await {
            Err(_) => Err(ClientError::Timeout { timeout_ms }),
            Ok(Ok(ServerMsg::Error { code, message, .. })) => Err(ClientError::Server { code, message }),
            Ok(other) => other,
        }
    }
}

fn check_ns(ns: &str) -> Result<(), ClientError> {
    Namespace::parse(ns).map(|_| ()).map_err(|e| ClientError::Argument { field: "ns", problem: e.to_string() })
}

fn unexpected(msg: ServerMsg) -> ClientError {
    ClientError::Protocol(format!("reply of the wrong type: {msg:?}"))
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads the server's first message, which must be the connection's challenge.
async fn challenge(ws: &mut Ws, url: &str) -> Result<(Nonce, Budget), ClientError> {
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => return Err(ClientError::Disconnected),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(ClientError::Connect { url: url.to_owned(), reason: e.to_string() }),
        };
        let (nonce, budget) = match serde_json::from_str::<ServerMsg>(text.as_str()) {
            Ok(ServerMsg::Challenge { nonce, rate_msgs_per_s, rate_burst_msgs }) => {
                (nonce, Budget { rate_msgs_per_s, rate_burst_msgs })
            }
            Ok(other) => return Err(ClientError::Protocol(format!("expected a challenge first, got {other:?}"))),
            Err(e) => return Err(ClientError::Protocol(format!("unreadable first message: {e}"))),
        };
        let mut bytes: Nonce = Default::default();
        return match hex::decode_to_slice(&nonce, &mut bytes) {
            Ok(()) => Ok((bytes, budget)),
            Err(e) => Err(ClientError::Protocol(format!("challenge nonce {nonce:?} is not 32 bytes of hex: {e}"))),
        };
    }
}

/// The connection task. Dropping `pending` at the end fails every awaiting request.
async fn run(ws: Ws, mut cmds: mpsc::Receiver<Cmd>, events: mpsc::Sender<ClientEvent>, cfg: Arc<ClientConfig>) {
    let (mut sink, mut stream) = ws.split();
    let mut pending: BTreeMap<u64, Reply> = BTreeMap::new();
    let mut next_id: u64 = 1;
    let period = Duration::from_millis(cfg.keepalive_interval_ms.max(1));
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let write_timeout = Duration::from_millis(cfg.request_timeout_ms);
    loop {
        let outgoing = tokio::select! {
            biased;
            cmd = cmds.recv() => match cmd {
                // Every handle is gone: say goodbye.
                None => {
                    let _ = timeout(write_timeout, sink.send(Message::Close(None))).await;
                    break;
                }
                Some(Cmd::Send { msg }) => msg,
                Some(Cmd::Request { mut msg, reply }) => {
                    if pending.len() >= cfg.max_pending_requests {
                        // Requests whose caller timed out leave their slot behind until here.
                        pending.retain(|_, r| !r.is_closed());
                    }
                    if pending.len() >= cfg.max_pending_requests {
                        let _ = reply.send(Err(ClientError::TooManyPending { max: cfg.max_pending_requests }));
                        continue;
                    }
                    let id = next_id;
                    next_id += 1;
                    msg.set_id(Some(id));
                    pending.insert(id, reply);
                    msg
                }
            },
            frame = stream.next() => {
                match frame {
                    Some(Ok(Message::Text(text))) => on_text(text.as_str(), &mut pending, &events),
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        debug!(error = %e, "rendezvous connection failed");
                        break;
                    }
                }
                continue;
            },
            _ = keepalive.tick() => {
                if !matches!(timeout(write_timeout, sink.send(Message::Ping(Default::default()))).await, Ok(Ok(()))) {
                    break;
                }
                continue;
            }
        };
        let text = match serde_json::to_string(&outgoing) {
            Ok(t) => t,
            Err(e) => {
                warn!(error = %e, "cannot encode a client message");
                continue;
            }
        };
        if !matches!(timeout(write_timeout, sink.send(Message::text(text))).await, Ok(Ok(()))) {
            break;
        }
    }
    drop(pending);
    let _ = events.try_send(ClientEvent::Disconnected);
}

fn on_text(text: &str, pending: &mut BTreeMap<u64, Reply>, events: &mpsc::Sender<ClientEvent>) {
    let msg: ServerMsg = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => return debug!(error = %e, "unreadable message from the server"),
    };
    if let Some(id) = msg.id() {
        // No waiter means the request timed out: the late reply is dropped.
        if let Some(reply) = pending.remove(&id) {
            let _ = reply.send(Ok(msg));
        }
        return;
    }
    let event = match msg {
        ServerMsg::Signal { from, payload } => match PeerId::parse(&from) {
            Ok(from) => ClientEvent::Signal { from, payload },
            Err(e) => return debug!(error = %e, "signal with a bad `from`"),
        },
        ServerMsg::Error { code, message, .. } => ClientEvent::Error { code, message },
        other => return debug!(?other, "unsolicited reply without id"),
    };
    if events.try_send(event).is_err() {
        warn!("event queue full (event_queue_len): dropping an incoming event");
    }
}
