//! The node's host on its actix thread: pumps transport events into the node, keeps what the API
//! reports (links, registry size, operations in flight), and carries out API requests with the
//! node's own operations (publish and fetch chunks, dial a peer).

use super::api::{self, ApiError, Fetched, PeerView, Peers, PostView, Published, Request, Status};
use futures_util::stream::{self, StreamExt};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use swarm_engine::content::{self, ChunkId, FileKey, Opened, Post, ShareLink, MAX_CHUNK_BYTES};
use swarm_engine::identity::{user_id, Ed25519Verifier, Identity};
use swarm_engine::observer::{Event, Observer};
use swarm_engine::replication::{ContentListener, ContentResult, FetchError, PublishError};
use swarm_engine::transport::{EventSink, TransportEvent};
use swarm_engine::{Node, PeerId};
use tokio::sync::{mpsc, oneshot};

/// Chunk fetches of one file in flight at once.
const FETCH_PARALLEL_CHUNKS: usize = 8;

type Waiters<K, T> = RefCell<BTreeMap<K, Vec<oneshot::Sender<T>>>>;
type FetchReply = oneshot::Sender<Result<Vec<u8>, FetchError>>;

/// State the node's callbacks (observer, content listener, event pump) feed and the API reads.
#[derive(Default)]
pub struct Shared {
    links: RefCell<BTreeMap<PeerId, (bool, Instant)>>,
    known_peers: Cell<usize>,
    fetches: RefCell<BTreeMap<u64, FetchReply>>,
    publishes: Waiters<ChunkId, Result<(), PublishError>>,
    dials: Waiters<PeerId, bool>,
    next_fetch: Cell<u64>,
    in_flight: Cell<usize>,
}

impl Shared {
    fn wake_dial(&self, peer: &PeerId, ok: bool) {
        for w in self.dials.borrow_mut().remove(peer).unwrap_or_default() {
            let _ = w.send(ok);
        }
    }

    /// The content listener handed to the node.
    pub fn listener(self: &Rc<Self>) -> ContentListener {
        let me = self.clone();
        Box::new(move |r| match r {
            ContentResult::Fetched { id, result, .. } => {
                if let Some(tx) = me.fetches.borrow_mut().remove(&id) {
                    let _ = tx.send(result);
                }
            }
            ContentResult::Published { chunk, result } => {
                for w in me.publishes.borrow_mut().remove(&chunk).unwrap_or_default() {
                    let _ = w.send(result.clone());
                }
            }
        })
    }
}

/// The observer of a real node: logs every event, keeps the registry size, wakes dial waiters
/// once a link's peer proved who it is.
pub struct HostObserver(pub Rc<Shared>);

impl Observer for HostObserver {
    fn on_event(&self, _node: PeerId, event: Event) {
        match &event {
            Event::KnownPeers(n) => self.0.known_peers.set(*n),
            Event::Authenticated { peer } => self.0.wake_dial(peer, true),
            Event::Offence { peer, offence } => tracing::info!(peer = %peer.short(), ?offence, "offence"),
            _ => {}
        }
        tracing::debug!(?event, "node event");
    }
}

/// Feed the transport's events to the node, noting links as they open and close.
pub async fn pump(mut events: swarm_transport_webrtc::Events, inbox: impl EventSink, shared: Rc<Shared>) {
    while let Some(ev) = events.recv().await {
        match &ev {
            TransportEvent::Connected { peer, outbound } => {
                tracing::info!(peer = %peer.short(), outbound, "link up");
                shared.links.borrow_mut().insert(*peer, (*outbound, Instant::now()));
            }
            TransportEvent::Disconnected { peer } => {
                tracing::info!(peer = %peer.short(), "link down");
                shared.links.borrow_mut().remove(peer);
            }
            TransportEvent::DialFailed { peer } => {
                tracing::info!(peer = %peer.short(), "dial failed");
                shared.wake_dial(peer, false);
            }
            TransportEvent::Frame { .. } => {}
        }
        inbox.deliver(ev);
    }
}

pub struct Host {
    pub node: Node,
    pub identity: Rc<Identity>,
    pub shared: Rc<Shared>,
    pub started: Instant,
    pub unix_ms: fn() -> u64,
    /// Written by the rendezvous clients on the network runtime.
    pub rendezvous: Arc<Mutex<Vec<api::RendezvousState>>>,
    /// The transport (dials by hand, counters).
    pub net: swarm_transport_webrtc::WebRtcTransport,
}

/// Serve API requests until the API goes away; each runs as its own task so a slow fetch never
/// holds up a status request.
pub async fn serve(mut requests: mpsc::UnboundedReceiver<Request>, host: Rc<Host>) {
    while let Some(r) = requests.recv().await {
        let host = host.clone();
        actix::spawn(async move {
            host.shared.in_flight.set(host.shared.in_flight.get() + 1);
            host.handle(r).await;
            host.shared.in_flight.set(host.shared.in_flight.get() - 1);
        });
    }
}

impl Host {
    async fn handle(&self, r: Request) {
        match r {
            Request::Status(reply) => drop(reply.send(Ok(self.status()))),
            Request::Peers(reply) => drop(reply.send(Ok(self.peers()))),
            Request::Connect { peer, timeout_ms, reply } => drop(reply.send(self.connect(&peer, timeout_ms).await)),
            Request::PublishFile { name, upload, reply } => {
                let published = match upload.into_bytes().await {
                    Ok(data) => self.publish_file(&name, &data).await,
                    Err(e) => Err(e),
                };
                drop(reply.send(published))
            }
            Request::PublishPost { text, reply } => drop(reply.send(self.publish_post(text).await)),
            Request::Fetch { link, reply } => drop(reply.send(self.fetch(&link).await)),
        }
    }

    fn status(&self) -> Status {
        let me = self.identity.peer_id();
        let t = self.net.stats();
        Status {
            peer_id: me.to_string(),
            user_id: user_id(&me),
            connections: self.shared.links.borrow().len(),
            known_peers: self.shared.known_peers.get(),
            // This request itself is in flight too.
            pending_sync: self.shared.in_flight.get().saturating_sub(1),
            uptime_s: self.started.elapsed().as_secs(),
            rendezvous: self.rendezvous.lock().map(|r| r.clone()).unwrap_or_default(),
            signals_relayed: t.relayed,
            signals_received: t.signals_in,
            frames_in: t.frames_in,
            frames_out: t.frames_out,
            frames_dropped: t.frames_dropped,
        }
    }

    fn peers(&self) -> Peers {
        let connected = self
            .shared
            .links
            .borrow()
            .iter()
            .map(|(p, (outbound, since))| PeerView {
                peer_id: p.to_string(),
                outbound: *outbound,
                connected_s: since.elapsed().as_secs(),
            })
            .collect();
        Peers { connected, known_peers: self.shared.known_peers.get() }
    }

    async fn connect(&self, peer: &str, timeout_ms: u64) -> Result<api::Connected, ApiError> {
        let peer: PeerId =
            peer.parse().map_err(|e: swarm_engine::types::HexIdError| ApiError::bad_request(e.to_string()))?;
        if peer == self.identity.peer_id() {
            return Err(ApiError::bad_request("that is this node's own peer id"));
        }
        let connected = if self.shared.links.borrow().contains_key(&peer) {
            true
        } else {
            let (tx, rx) = oneshot::channel();
            self.shared.dials.borrow_mut().entry(peer).or_default().push(tx);
            self.node.learn(vec![peer]);
            self.node.connect(peer);
            tokio::time::timeout(Duration::from_millis(timeout_ms), rx).await.ok().and_then(Result::ok).unwrap_or(false)
        };
        Ok(api::Connected { peer_id: peer.to_string(), connected })
    }

    /// Store and announce one chunk; answered once it is in the local store.
    async fn publish_chunk(&self, data: Vec<u8>) -> Result<(), ApiError> {
        let (tx, rx) = oneshot::channel();
        self.shared.publishes.borrow_mut().entry(ChunkId::of(&data)).or_default().push(tx);
        self.node.publish(data);
        rx.await
            .map_err(|_| ApiError::internal("the node stopped"))?
            .map_err(|e| ApiError::internal(format!("could not publish: {e}")))
    }

    async fn publish_file(&self, name: &str, data: &[u8]) -> Result<Published, ApiError> {
        let key = FileKey::generate(&mut rand_core::OsRng);
        let share = content::share_file(&self.identity, name, data, MAX_CHUNK_BYTES, key, (self.unix_ms)())
            .map_err(|e| ApiError::bad_request(format!("file `{name}` cannot be published: {e}")))?;
        let chunks = share.chunks.len() + 1;
        for c in share.chunks {
            self.publish_chunk(c.ciphertext).await?;
        }
        // The root last: once a link exists, everything it lists is stored here.
        self.publish_chunk(share.root.ciphertext).await?;
        Ok(Published { link: share.link.to_string(), chunks, bytes: data.len() as u64 })
    }

    async fn publish_post(&self, text: String) -> Result<Published, ApiError> {
        let root = content::share_post(&self.identity, &Post { text, reply_to: None }, (self.unix_ms)())
            .map_err(|e| ApiError::bad_request(format!("post cannot be published: {e}")))?;
        let (link, bytes) = (root.id.to_string(), root.ciphertext.len() as u64);
        self.publish_chunk(root.ciphertext).await?;
        Ok(Published { link, chunks: 1, bytes })
    }

    async fn fetch_chunk(&self, chunk: ChunkId) -> Result<Vec<u8>, FetchError> {
        let (tx, rx) = oneshot::channel();
        let id = self.shared.next_fetch.get();
        self.shared.next_fetch.set(id + 1);
        self.shared.fetches.borrow_mut().insert(id, tx);
        self.node.fetch(id, chunk);
        rx.await.unwrap_or(Err(FetchError::NotFound(chunk)))
    }

    async fn fetch(&self, link: &str) -> Result<Fetched, ApiError> {
        let link: ShareLink =
            link.parse().map_err(|e: swarm_engine::types::HexIdError| ApiError::bad_request(e.to_string()))?;
        let root = self.fetch_chunk(link.root).await.map_err(|e| ApiError::not_found(e.to_string()))?;
        match content::open_root(&link, &root, &Ed25519Verifier).map_err(|e| ApiError::unprocessable(e.to_string()))? {
            Opened::Post { post, author, unix_ms } => {
                Ok(Fetched::Post(PostView { author: author.to_string(), unix_ms, text: post.text }))
            }
            Opened::File { manifest, .. } => {
                // A root can hold a plaintext manifest (anyone can publish one): it opens
                // without a key, but its chunks cannot be decrypted.
                let Some(key) = link.key.as_ref() else {
                    return Err(ApiError::unprocessable(
                        "the root is a file's manifest but the link has no key: a file link is ROOT:KEY",
                    ));
                };
                let fetched: Vec<(ChunkId, Result<Vec<u8>, FetchError>)> =
                    stream::iter(manifest.chunks.iter().copied())
                        .map(|c| async move { (c, self.fetch_chunk(c).await) })
                        .buffered(FETCH_PARALLEL_CHUNKS)
                        .collect()
                        .await;
                let mut got = BTreeMap::new();
                for (c, r) in fetched {
                    got.insert(c, r.map_err(|e| ApiError::not_found(e.to_string()))?);
                }
                let data =
                    manifest.reassemble(key, |c| got.remove(c)).map_err(|e| ApiError::unprocessable(e.to_string()))?;
                Ok(Fetched::File { name: manifest.name, data })
            }
        }
    }
}
