//! The node's local control API: HTTP + JSON on a loopback address. Handlers run on the network
//! runtime and only forward requests to the host (the node's actix thread) over a channel; every
//! answer comes back on a oneshot. The JSON shapes here are shared with the CLI client. Bodies
//! are bounded before they are read, and uploads and fetches in progress are bounded in number.

use super::doc::{DocConflicts, DocSetRequest, DocView, GetQuery, GrantRequest, GrantView};
use super::edge::{self, ApiJson};
pub use super::edge::{ApiError, ApiErrorBody, Upload};
use super::feed::{FeedQuery, FeedView, FollowRequest, FollowView};
use super::recovery::{BackupRequest, BackupView, RecoverRequest, Recovered};
use super::serve::{BODY_IDLE_TIMEOUT_MS, REQUEST_TIMEOUT_MS};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use swarm_engine::reputation::{PeerScore, Standing, COMPONENT_NAMES};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

/// Largest file the API accepts in one upload (the manifest format allows up to 1 GiB).
pub const MAX_UPLOAD_BYTES: u64 = 256 * 1024 * 1024;
/// Largest JSON request body (a post's text is at most 16 KiB).
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;
/// Uploads carried at once (each streams: a few chunks in memory).
pub const MAX_CONCURRENT_UPLOADS: usize = 2;
/// Fetches carried at once, counted until the response is sent (each streams a window).
pub const MAX_CONCURRENT_FETCHES: usize = 4;
/// Body frames of an upload read ahead of the host.
const UPLOAD_QUEUE_FRAMES: usize = 4;
/// What the API serves, for the error an unknown route gets.
pub const ROUTES: &str = "GET /status, GET /peers[?all=true], POST /connect, POST /publish/file?name=N, \
POST /publish/post, GET /fetch/LINK, POST /identity/backup, GET /identity/backup, POST /identity/recover, \
POST /doc/set, GET /doc/get?key=K&owner=O, GET /doc/conflicts, POST /doc/grant, POST /feed/follow, \
POST /feed/unfollow, GET /feed?limit=N";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub peer_id: String,
    pub user_id: String,
    /// Open links (data channels up).
    pub connections: usize,
    /// Size of the bootstrap registry.
    pub known_peers: usize,
    /// Local record writes in the sync queue, not yet acknowledged by enough replicas (until
    /// issue 14 this counted API operations in flight).
    pub pending_sync: usize,
    /// How long the oldest of them has waited, in ms (none when nothing is pending).
    pub oldest_pending_ms: Option<u64>,
    /// Linked to at least one peer (the sync queue sends only then).
    pub online: bool,
    /// Mutable records held (own, replicated for others, read).
    pub records: usize,
    pub uptime_s: u64,
    pub rendezvous: Vec<RendezvousState>,
    /// Others' offers and answers this node forwarded through the mesh.
    pub signals_relayed: u64,
    /// Offers and answers received (rendezvous and mesh, duplicates not counted).
    pub signals_received: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub frames_dropped: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RendezvousState {
    pub url: String,
    pub connected: bool,
}

/// What reputation makes of a peer now (the fields `standing`, `score` and `parts` of a peer in
/// `GET /peers`; `score` and `parts` default when an older node leaves them out).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReputationView {
    /// The standing the node acts on: Trusted, Acceptable, NoGossip, NoPublish or Graylisted.
    pub standing: String,
    /// The live score in [-100, 100] (the one the standing comes from, read at the node's
    /// clock); 0, neutral, for a peer reputation holds no record of.
    #[serde(default)]
    pub score: f64,
    /// The parts the score sums (clamped), by name (uptime, churn, availability, deficit,
    /// responsiveness, malice, violation, noise, hearsay: see `COMPONENT_NAMES`); `null` for a
    /// peer with no record (neutral, nothing to break down).
    #[serde(default)]
    pub parts: Option<BTreeMap<String, f64>>,
}

impl ReputationView {
    /// `standing` as the node acts on it, with the live reading of the peer's score (`None`: no
    /// record).
    pub fn new(standing: Standing, read: Option<&PeerScore>) -> Self {
        // -0.0 (a penalty of nothing) is shown as 0.
        let tidy = |v: f64| if v == 0.0 { 0.0 } else { v };
        let parts = read
            .and_then(|r| r.parts)
            .map(|parts| COMPONENT_NAMES.iter().zip(parts).map(|(name, v)| (name.to_string(), tidy(v))).collect());
        ReputationView { standing: format!("{standing:?}"), score: read.map_or(0.0, |r| tidy(r.score)), parts }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerView {
    pub peer_id: String,
    pub outbound: bool,
    pub connected_s: u64,
    #[serde(flatten)]
    pub reputation: ReputationView,
}

/// A peer reputation holds a record of (`GET /peers?all=true`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScoredPeer {
    pub peer_id: String,
    /// A link to it is open now.
    pub connected: bool,
    #[serde(flatten)]
    pub reputation: ReputationView,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Peers {
    pub connected: Vec<PeerView>,
    pub known_peers: usize,
    /// With `?all=true`: every peer with a live reputation record, linked or not, in id order
    /// (at most `reputation.max_peers_scored`); left out otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scored: Option<Vec<ScoredPeer>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PeersQuery {
    /// List every scored peer too (`scored`).
    #[serde(default)]
    pub all: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectRequest {
    pub peer_id: String,
    /// How long to wait for the link, in milliseconds (default 10 s, at most 60 s).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Connected {
    pub peer_id: String,
    pub connected: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PostRequest {
    pub text: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Published {
    /// What to give `swarm get`: `ROOT:KEY` for a file, `ROOT` for a post.
    pub link: String,
    pub chunks: usize,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PostView {
    pub author: String,
    pub unix_ms: u64,
    pub text: String,
}

#[derive(Deserialize)]
struct FileQuery {
    name: Option<String>,
}

/// What a fetch returns: a file's bytes, or a post.
#[derive(Debug)]
pub enum Fetched {
    /// A file: its name and size from the manifest, then its bytes as they come, in order.
    File {
        name: String,
        size: u64,
        body: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    },
    Post(PostView),
}

/// One frame of an upload, as the host takes it.
#[derive(Debug)]
pub enum UploadPiece {
    Data(Bytes),
    /// The body ended cleanly.
    End,
    /// The body could not be read (the client went away midway, stalled, or sent too much).
    Failed(ApiError),
}

pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// A request handed to the host.
#[derive(Debug)]
pub enum Request {
    Status(Reply<Status>),
    Peers { all: bool, reply: Reply<Peers> },
    Connect { peer: String, timeout_ms: u64, reply: Reply<Connected> },
    PublishFile { name: String, body: mpsc::Receiver<UploadPiece>, reply: Reply<Published> },
    PublishPost { text: String, reply: Reply<Published> },
    Fetch { link: String, reply: Reply<Fetched> },
    Backup { request: BackupRequest, reply: Reply<BackupView> },
    BackupStatus(Reply<BackupView>),
    Recover { request: RecoverRequest, reply: Reply<Recovered> },
    DocSet { request: DocSetRequest, reply: Reply<DocView> },
    DocGet { query: GetQuery, reply: Reply<DocView> },
    DocConflicts(Reply<DocConflicts>),
    DocGrant { request: GrantRequest, reply: Reply<GrantView> },
    Follow { request: FollowRequest, reply: Reply<FollowView> },
    Unfollow { request: FollowRequest, reply: Reply<FollowView> },
    Feed { query: FeedQuery, reply: Reply<FeedView> },
}

type Host = mpsc::UnboundedSender<Request>;

/// The handlers' state: the way to the host, and the transfer slots.
#[derive(Clone)]
struct Api {
    host: Host,
    uploads: Arc<Semaphore>,
    fetches: Arc<Semaphore>,
}

async fn ask<T>(host: &Host, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    host.send(make(tx)).map_err(|_| ApiError::internal("the node is shutting down"))?;
    rx.await.map_err(|_| ApiError::internal("the node is shutting down"))?
}

/// One of `slots`, or 503 naming what is busy.
fn slot(slots: &Arc<Semaphore>, what: &str, max: usize) -> Result<OwnedSemaphorePermit, ApiError> {
    slots.clone().try_acquire_owned().map_err(|_| {
        ApiError::busy(format!(
            "{max} {what} are in progress already (the most this node carries at once); retry later"
        ))
    })
}

async fn status(State(a): State<Api>) -> Result<Json<Status>, ApiError> {
    ask(&a.host, Request::Status).await.map(Json)
}

async fn peers(State(a): State<Api>, Query(q): Query<PeersQuery>) -> Result<Json<Peers>, ApiError> {
    ask(&a.host, |reply| Request::Peers { all: q.all, reply }).await.map(Json)
}

async fn connect(State(a): State<Api>, ApiJson(r): ApiJson<ConnectRequest>) -> Result<Json<Connected>, ApiError> {
    let timeout_ms = r.timeout_ms.unwrap_or(10_000).min(60_000);
    ask(&a.host, |reply| Request::Connect { peer: r.peer_id, timeout_ms, reply }).await.map(Json)
}

async fn publish_file(
    State(a): State<Api>,
    Query(q): Query<FileQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Published>, ApiError> {
    // Over the limit or unframed: answered before a byte of the body is read.
    let length_bytes = edge::content_length(&headers, MAX_UPLOAD_BYTES)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            format!("an upload needs a Content-Length header (at most {MAX_UPLOAD_BYTES} bytes)"),
        )
    })?;
    let upload = Upload::new(body, length_bytes);
    let name = q.name.unwrap_or_else(|| "file".into());
    let _slot = match edge::check_file_name(&name).and_then(|()| slot(&a.uploads, "uploads", MAX_CONCURRENT_UPLOADS)) {
        Ok(slot) => slot,
        Err(e) => {
            upload.discard().await;
            return Err(e);
        }
    };
    // The body goes to the host as it arrives, a few frames ahead at most: the host takes each
    // once the node took the one before.
    let (tx, rx) = mpsc::channel(UPLOAD_QUEUE_FRAMES);
    let asked = ask(&a.host, |reply| Request::PublishFile { name, body: rx, reply });
    let feed = async move {
        let (mut frames, mut left) = (upload.body, upload.length_bytes);
        while let Some(frame) = frames.next().await {
            let piece = match frame {
                Ok(b) if b.len() as u64 > left => {
                    UploadPiece::Failed(ApiError::bad_request("the request body is longer than its Content-Length"))
                }
                Ok(b) => {
                    left -= b.len() as u64;
                    UploadPiece::Data(b)
                }
                Err(e) => UploadPiece::Failed(edge::body_error(e)),
            };
            let failed = matches!(piece, UploadPiece::Failed(_));
            // A send fails once the host has answered (an error before the end).
            if tx.send(piece).await.is_err() || failed {
                return;
            }
        }
        let _ = tx.send(UploadPiece::End).await;
    };
    let (result, ()) = tokio::join!(asked, feed);
    result.map(Json)
}

async fn publish_post(State(a): State<Api>, ApiJson(r): ApiJson<PostRequest>) -> Result<Json<Published>, ApiError> {
    ask(&a.host, |reply| Request::PublishPost { text: r.text, reply }).await.map(Json)
}

async fn fetch(State(a): State<Api>, Path(link): Path<String>) -> Result<Response, ApiError> {
    let slot = slot(&a.fetches, "fetches", MAX_CONCURRENT_FETCHES)?;
    Ok(match ask(&a.host, |reply| Request::Fetch { link, reply }).await? {
        Fetched::File { name, size, body } => {
            // The stream holds the slot: it is given back once the last piece is taken.
            let pieces = futures_util::stream::unfold((body, slot), |(mut rx, slot)| async move {
                rx.recv().await.map(|p| (p, (rx, slot)))
            });
            let headers = [
                (header::CONTENT_LENGTH, HeaderValue::from(size)),
                (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
                (header::CONTENT_DISPOSITION, edge::content_disposition(&name)),
            ];
            (headers, Body::from_stream(pieces)).into_response()
        }
        Fetched::Post(p) => Json(p).into_response(),
    })
}

async fn backup(State(a): State<Api>, ApiJson(request): ApiJson<BackupRequest>) -> Result<Json<BackupView>, ApiError> {
    ask(&a.host, |reply| Request::Backup { request, reply }).await.map(Json)
}

async fn backup_status(State(a): State<Api>) -> Result<Json<BackupView>, ApiError> {
    ask(&a.host, Request::BackupStatus).await.map(Json)
}

async fn recover(State(a): State<Api>, ApiJson(request): ApiJson<RecoverRequest>) -> Result<Json<Recovered>, ApiError> {
    ask(&a.host, |reply| Request::Recover { request, reply }).await.map(Json)
}

async fn doc_set(State(a): State<Api>, ApiJson(request): ApiJson<DocSetRequest>) -> Result<Json<DocView>, ApiError> {
    ask(&a.host, |reply| Request::DocSet { request, reply }).await.map(Json)
}

async fn doc_get(State(a): State<Api>, Query(query): Query<GetQuery>) -> Result<Json<DocView>, ApiError> {
    ask(&a.host, |reply| Request::DocGet { query, reply }).await.map(Json)
}

async fn doc_conflicts(State(a): State<Api>) -> Result<Json<DocConflicts>, ApiError> {
    ask(&a.host, Request::DocConflicts).await.map(Json)
}

async fn doc_grant(State(a): State<Api>, ApiJson(request): ApiJson<GrantRequest>) -> Result<Json<GrantView>, ApiError> {
    ask(&a.host, |reply| Request::DocGrant { request, reply }).await.map(Json)
}

async fn follow(State(a): State<Api>, ApiJson(request): ApiJson<FollowRequest>) -> Result<Json<FollowView>, ApiError> {
    ask(&a.host, |reply| Request::Follow { request, reply }).await.map(Json)
}

async fn unfollow(
    State(a): State<Api>,
    ApiJson(request): ApiJson<FollowRequest>,
) -> Result<Json<FollowView>, ApiError> {
    ask(&a.host, |reply| Request::Unfollow { request, reply }).await.map(Json)
}

async fn feed(State(a): State<Api>, Query(query): Query<FeedQuery>) -> Result<Json<FeedView>, ApiError> {
    ask(&a.host, |reply| Request::Feed { query, reply }).await.map(Json)
}

/// The routes: `GET /status`, `GET /peers[?all=true]`, `POST /connect`, `POST /publish/file?name=N` (raw
/// body, Content-Length required), `POST /publish/post`, `GET /fetch/LINK`; every error is JSON.
pub fn router(host: Host) -> Router {
    let state = Api {
        host,
        uploads: Arc::new(Semaphore::new(MAX_CONCURRENT_UPLOADS)),
        fetches: Arc::new(Semaphore::new(MAX_CONCURRENT_FETCHES)),
    };
    Router::new()
        .route("/status", get(status))
        .route("/peers", get(peers))
        .route("/connect", post(connect))
        .route("/publish/file", post(publish_file))
        .route("/publish/post", post(publish_post))
        .route("/fetch/{link}", get(fetch))
        .route("/identity/backup", post(backup).get(backup_status))
        .route("/identity/recover", post(recover))
        .route("/doc/set", post(doc_set))
        .route("/doc/get", get(doc_get))
        .route("/doc/conflicts", get(doc_conflicts))
        .route("/doc/grant", post(doc_grant))
        .route("/feed/follow", post(follow))
        .route("/feed/unfollow", post(unfollow))
        .route("/feed", get(feed))
        .fallback(edge::no_route)
        .method_not_allowed_fallback(edge::wrong_method)
        // Unframed JSON bodies stop here; uploads are bounded by their Content-Length.
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_millis(REQUEST_TIMEOUT_MS)))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_millis(BODY_IDLE_TIMEOUT_MS)))
        .layer(axum::middleware::from_fn(edge::json_errors))
        .with_state(state)
}
