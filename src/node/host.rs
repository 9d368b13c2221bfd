//! The node's host on its actix thread: pumps transport events into the node, keeps what the API
//! reports (links, registry size, operations in flight), and carries out API requests with the
//! node's own operations (publish and fetch files and posts, dial a peer). Files stream both
//! ways: an upload is handed to the files actor a piece at a time, each once the last was taken;
//! a download is handed to the API a piece at a time, each taken before the next is asked for.

use super::api::{
    self, ApiError, Fetched, PeerView, Peers, PostView, Published, ReputationView, Request, ScoredPeer, Status,
    UploadPiece,
};
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use swarm_engine::content::{ShareLink, MAX_CHUNK_BYTES};
use swarm_engine::files::{FileError, FileEvent, FileListener, OpId, PublishedFile, RootInfo};
use swarm_engine::identity::{user_id, Identity};
use swarm_engine::observer::{Event, Observer};
use swarm_engine::reputation::{PeerScore, ScoreQuery};
use swarm_engine::transport::{EventSink, TransportEvent};
use swarm_engine::{Node, PeerId};
use tokio::sync::{mpsc, oneshot};

/// Bytes of upload gathered into one piece for the files actor (about one chunk: a piece per
/// chunk keeps the actor's mailbox traffic low and the memory held to a chunk or two).
const UPLOAD_PIECE_BYTES: usize = MAX_CHUNK_BYTES;
/// Pieces of a download waiting for the HTTP response to take them.
const DOWNLOAD_QUEUE_PIECES: usize = 2;

type Waiters<K, T> = RefCell<BTreeMap<K, Vec<oneshot::Sender<T>>>>;

/// State the node's callbacks (observer, file listener, event pump) feed and the API reads.
#[derive(Default)]
pub struct Shared {
    links: RefCell<BTreeMap<PeerId, (bool, Instant)>>,
    known_peers: Cell<usize>,
    /// Each running file operation's events (bounded by the files actor's windows).
    file_ops: RefCell<BTreeMap<OpId, mpsc::UnboundedSender<FileEvent>>>,
    next_op: Cell<OpId>,
    dials: Waiters<PeerId, bool>,
}

impl Shared {
    fn wake_dial(&self, peer: &PeerId, ok: bool) {
        for w in self.dials.borrow_mut().remove(peer).unwrap_or_default() {
            let _ = w.send(ok);
        }
    }

    /// The file listener handed to the node: each event to its operation.
    pub fn file_listener(self: &Rc<Self>) -> FileListener {
        let me = self.clone();
        Box::new(move |ev, _| {
            let op = match &ev {
                FileEvent::Accepted { op }
                | FileEvent::Published { op, .. }
                | FileEvent::Opened { op, .. }
                | FileEvent::Piece { op, .. }
                | FileEvent::Fetched { op, .. } => *op,
            };
            let last = matches!(ev, FileEvent::Published { .. } | FileEvent::Fetched { .. });
            let mut ops = me.file_ops.borrow_mut();
            if let Some(tx) = ops.get(&op) {
                let _ = tx.send(ev);
            }
            if last {
                ops.remove(&op);
            }
        })
    }
}

/// A file operation of this host: its events; aborted if dropped before it ended (the API
/// request went away, or gave up).
struct FileOp<'a> {
    host: &'a Host,
    op: OpId,
    events: mpsc::UnboundedReceiver<FileEvent>,
    ended: bool,
}

impl FileOp<'_> {
    async fn next(&mut self) -> Result<FileEvent, ApiError> {
        let ev = self.events.recv().await.ok_or_else(|| ApiError::internal("the node stopped"))?;
        if matches!(ev, FileEvent::Published { .. } | FileEvent::Fetched { .. }) {
            self.ended = true;
        }
        Ok(ev)
    }

    /// Until the publication takes what it was sent (or ends).
    async fn accepted(&mut self) -> Result<(), ApiError> {
        loop {
            match self.next().await? {
                FileEvent::Accepted { .. } => return Ok(()),
                FileEvent::Published { result: Err(e), .. } => return Err(file_error(e)),
                FileEvent::Published { .. } => {
                    return Err(ApiError::internal("published before the end of the upload"))
                }
                _ => {}
            }
        }
    }

    async fn published(&mut self) -> Result<PublishedFile, ApiError> {
        loop {
            if let FileEvent::Published { result, .. } = self.next().await? {
                return result.map_err(file_error);
            }
        }
    }
}

impl Drop for FileOp<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.host.node.file_abort(self.op);
        }
        self.host.shared.file_ops.borrow_mut().remove(&self.op);
    }
}

/// An API status for each way a file operation fails.
fn file_error(e: FileError) -> ApiError {
    let message = e.to_string();
    let status = match &e {
        FileError::RootUnavailable { .. } | FileError::ChunkUnavailable { .. } => return ApiError::not_found(message),
        FileError::BadRoot(_) | FileError::BadChunk { .. } => return ApiError::unprocessable(message),
        FileError::Content(_) | FileError::Aborted => return ApiError::bad_request(message),
        FileError::DuplicateOp(_) | FileError::Record(_) => return ApiError::internal(message),
        FileError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        FileError::Store { .. } => StatusCode::INSUFFICIENT_STORAGE,
        FileError::Idle { .. } => StatusCode::REQUEST_TIMEOUT,
    };
    ApiError { status, message }
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
    /// Written by the rendezvous clients on the network runtime.
    pub rendezvous: Arc<Mutex<Vec<api::RendezvousState>>>,
    /// The transport (dials by hand, counters).
    pub net: swarm_transport_webrtc::WebRtcTransport,
    /// Recovery operations waiting for the recovery actor.
    pub recovery: Rc<super::recovery::RecoveryWaiters>,
    /// Record operations waiting for the sync actor.
    pub sync: Rc<super::doc::SyncWaiters>,
    /// Follows and feed listings waiting for the feeds actor.
    pub feeds: Rc<super::feed::FeedWaiters>,
    /// Texts of followed users' posts fetched so far, by link.
    pub post_texts: super::feed::PostTexts,
    /// The node's passphrase (a recovered identity is sealed under it) and data directory.
    pub passphrase: zeroize::Zeroizing<String>,
    pub data: std::path::PathBuf,
}

/// Serve API requests until the API goes away; each runs as its own task so a slow fetch never
/// holds up a status request.
pub async fn serve(mut requests: mpsc::UnboundedReceiver<Request>, host: Rc<Host>) {
    while let Some(r) = requests.recv().await {
        let host = host.clone();
        actix::spawn(async move { host.handle(r).await });
    }
}

impl Host {
    async fn handle(&self, r: Request) {
        match r {
            Request::Status(reply) => drop(reply.send(Ok(self.status()))),
            Request::Peers { all, reply } => drop(reply.send(self.peers(all).await)),
            Request::Connect { peer, timeout_ms, reply } => drop(reply.send(self.connect(&peer, timeout_ms).await)),
            Request::PublishFile { name, body, reply } => drop(reply.send(self.publish_file(&name, body).await)),
            Request::PublishPost { text, reply } => drop(reply.send(self.publish_post(text).await)),
            Request::Fetch { link, reply } => self.fetch(&link, reply).await,
            Request::Backup { request, reply } => self.backup(request, reply).await,
            Request::BackupStatus(reply) => self.backup_status(reply).await,
            Request::Recover { request, reply } => self.recover(request, reply).await,
            Request::DocSet { request, reply } => self.doc_set(request, reply).await,
            Request::DocGet { query, reply } => self.doc_get(query, reply).await,
            Request::DocConflicts(reply) => self.doc_conflicts(reply).await,
            Request::DocGrant { request, reply } => drop(reply.send(self.doc_grant(request))),
            Request::Follow { request, reply } => self.follow(request, reply).await,
            Request::Unfollow { request, reply } => self.unfollow(request, reply).await,
            Request::Feed { query, reply } => self.feed(query, reply).await,
        }
    }

    fn status(&self) -> Status {
        let me = self.identity.peer_id();
        let t = self.net.stats();
        let sync = self.node.sync_stats();
        let now_ms = super::unix_ms();
        Status {
            peer_id: me.to_string(),
            user_id: user_id(&me),
            connections: self.shared.links.borrow().len(),
            known_peers: self.shared.known_peers.get(),
            pending_sync: sync.pending,
            oldest_pending_ms: sync.oldest_pending_unix_ms.map(|t| now_ms.saturating_sub(t)),
            online: sync.online,
            records: sync.records,
            uptime_s: self.started.elapsed().as_secs(),
            rendezvous: self.rendezvous.lock().map(|r| r.clone()).unwrap_or_default(),
            signals_relayed: t.relayed,
            signals_received: t.signals_in,
            frames_in: t.frames_in,
            frames_out: t.frames_out,
            frames_dropped: t.frames_dropped,
        }
    }

    /// The open links with each peer's standing, live score and its parts, read from the
    /// reputation actor; `all`: every scored peer too.
    async fn peers(&self, all: bool) -> Result<Peers, ApiError> {
        let links: Vec<(PeerId, bool, u64)> =
            self.shared.links.borrow().iter().map(|(p, (out, since))| (*p, *out, since.elapsed().as_secs())).collect();
        let query = if all { ScoreQuery::All } else { ScoreQuery::Peers(links.iter().map(|l| l.0).collect()) };
        let read = self.node.scores(query).await.map_err(|_| ApiError::internal("the node is shutting down"))?;
        let read: BTreeMap<PeerId, PeerScore> = read.into_iter().map(|r| (r.peer, r)).collect();
        let trust = self.node.trust();
        let view = |p: &PeerId| ReputationView::new(trust.standing(p), read.get(p));
        let connected = links
            .iter()
            .map(|(p, outbound, connected_s)| PeerView {
                peer_id: p.to_string(),
                outbound: *outbound,
                connected_s: *connected_s,
                reputation: view(p),
            })
            .collect();
        // `links` is in id order (taken from a BTreeMap).
        let linked = |p: &PeerId| links.binary_search_by_key(p, |l| l.0).is_ok();
        let scored = all.then(|| {
            read.keys()
                .map(|p| ScoredPeer { peer_id: p.to_string(), connected: linked(p), reputation: view(p) })
                .collect()
        });
        Ok(Peers { connected, known_peers: self.shared.known_peers.get(), scored })
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

    fn open_op(&self) -> FileOp<'_> {
        let op = self.shared.next_op.get();
        self.shared.next_op.set(op + 1);
        let (tx, events) = mpsc::unbounded_channel();
        self.shared.file_ops.borrow_mut().insert(op, tx);
        FileOp { host: self, op, events, ended: false }
    }

    /// Publish an upload as it arrives: gathered into pieces of about a chunk, each handed over
    /// once the files actor took the one before. Anything short of a clean end (the body fails,
    /// the request goes away, the size limit) aborts it, and what it stored is reclaimed.
    async fn publish_file(&self, name: &str, mut body: mpsc::Receiver<UploadPiece>) -> Result<Published, ApiError> {
        let mut op = self.open_op();
        self.node.publish_file_begin(op.op, name.to_string());
        op.accepted().await?;
        let mut piece = BytesMut::with_capacity(UPLOAD_PIECE_BYTES);
        let mut total = 0u64;
        loop {
            match body.recv().await {
                Some(UploadPiece::Data(bytes)) => {
                    total += bytes.len() as u64;
                    if total > api::MAX_UPLOAD_BYTES {
                        let message = format!("file `{name}` is over the {}-byte upload limit", api::MAX_UPLOAD_BYTES);
                        return Err(ApiError { status: StatusCode::PAYLOAD_TOO_LARGE, message });
                    }
                    piece.extend_from_slice(&bytes);
                    if piece.len() >= UPLOAD_PIECE_BYTES {
                        let full = std::mem::replace(&mut piece, BytesMut::with_capacity(UPLOAD_PIECE_BYTES));
                        self.node.publish_file_piece(op.op, full.freeze());
                        op.accepted().await?;
                    }
                }
                Some(UploadPiece::End) => break,
                Some(UploadPiece::Failed(e)) => return Err(e),
                None => return Err(ApiError::bad_request("the upload was cut short")),
            }
        }
        if !piece.is_empty() {
            self.node.publish_file_piece(op.op, piece.freeze());
            op.accepted().await?;
        }
        self.node.publish_file_finish(op.op);
        let p = op.published().await?;
        Ok(Published { link: p.link.to_string(), chunks: p.chunks, bytes: p.bytes })
    }

    async fn publish_post(&self, text: String) -> Result<Published, ApiError> {
        let mut op = self.open_op();
        self.node.publish_post(op.op, text);
        let p = op.published().await?;
        Ok(Published { link: p.link.to_string(), chunks: p.chunks, bytes: p.bytes })
    }

    /// The text of the post a link names (a followed user's, fetched as it is learned), or
    /// `None` if it is not a post or could not be fetched.
    pub(super) async fn fetch_post_text(&self, link: &str) -> Option<String> {
        let link: ShareLink = link.parse().ok()?;
        let mut op = self.open_op();
        self.node.fetch_file(op.op, link);
        loop {
            match op.next().await {
                Ok(FileEvent::Opened { root: RootInfo::Post { text, .. }, .. }) => return Some(text),
                // A file's root: not fetched further (the op aborts as it drops).
                Ok(FileEvent::Opened { .. } | FileEvent::Fetched { .. }) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Open what a link names and answer: a post at once; a file with its name and size, and
    /// a body its pieces are streamed into, in order, as the response takes them.
    async fn fetch(&self, link: &str, reply: api::Reply<Fetched>) {
        let link: ShareLink = match link.parse() {
            Ok(l) => l,
            Err(e) => return drop(reply.send(Err(ApiError::bad_request(format!("{e}"))))),
        };
        let mut op = self.open_op();
        self.node.fetch_file(op.op, link);
        let root = loop {
            match op.next().await {
                Ok(FileEvent::Opened { root, .. }) => break root,
                Ok(FileEvent::Fetched { result: Err(e), .. }) => return drop(reply.send(Err(file_error(e)))),
                Ok(_) => {}
                Err(e) => return drop(reply.send(Err(e))),
            }
        };
        let (name, size) = match root {
            RootInfo::Post { text, author, unix_ms } => {
                let post = PostView { author: author.to_string(), unix_ms, text };
                return drop(reply.send(Ok(Fetched::Post(post))));
            }
            RootInfo::File { name, size, .. } => (name, size),
        };
        let (tx, body) = mpsc::channel(DOWNLOAD_QUEUE_PIECES);
        if reply.send(Ok(Fetched::File { name, size, body })).is_err() {
            return;
        }
        loop {
            match op.next().await {
                Ok(FileEvent::Piece { data, .. }) => {
                    if tx.send(Ok(Bytes::from(data))).await.is_err() {
                        return; // the response went away: the fetch is aborted as `op` drops
                    }
                    self.node.fetch_file_consumed(op.op);
                }
                Ok(FileEvent::Fetched { result, .. }) => {
                    if let Err(e) = result {
                        // Headers are gone already: the body ends short, with the reason logged.
                        tracing::warn!(error = %e, "download failed midway");
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    }
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}
