//! The node's local control API: HTTP + JSON on a loopback address. Handlers run on the network
//! runtime and only forward requests to the host (the node's actix thread) over a channel; every
//! answer comes back on a oneshot. The JSON shapes here are shared with the CLI client. Bodies
//! are bounded before they are read, and uploads and fetches in progress are bounded in number.

use super::edge::{self, ApiJson};
pub use super::edge::{ApiError, ApiErrorBody, Upload};
use super::serve::{BODY_IDLE_TIMEOUT_MS, REQUEST_TIMEOUT_MS};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

/// Largest file the API accepts in one upload (the manifest format allows up to 1 GiB).
pub const MAX_UPLOAD_BYTES: u64 = 256 * 1024 * 1024;
/// Largest JSON request body (a post's text is at most 16 KiB).
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;
/// Uploads carried at once; each may hold its whole file in memory until publishing streams.
pub const MAX_CONCURRENT_UPLOADS: usize = 2;
/// Fetches carried at once, counted until the response is sent; each may hold a whole file.
pub const MAX_CONCURRENT_FETCHES: usize = 4;
/// A fetched file goes out in pieces of this size (slices of one buffer, not copies).
const RESPONSE_PIECE_BYTES: usize = 64 * 1024;
/// What the API serves, for the error an unknown route gets.
pub const ROUTES: &str = "GET /status, GET /peers, POST /connect, POST /publish/file?name=N, \
POST /publish/post, GET /fetch/LINK";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub peer_id: String,
    pub user_id: String,
    /// Open links (data channels up).
    pub connections: usize,
    /// Size of the bootstrap registry.
    pub known_peers: usize,
    /// API operations (publishes, fetches, dials) not finished yet.
    pub pending_sync: usize,
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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerView {
    pub peer_id: String,
    pub outbound: bool,
    pub connected_s: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Peers {
    pub connected: Vec<PeerView>,
    pub known_peers: usize,
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
    File { name: String, data: Vec<u8> },
    Post(PostView),
}

pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// A request handed to the host.
#[derive(Debug)]
pub enum Request {
    Status(Reply<Status>),
    Peers(Reply<Peers>),
    Connect { peer: String, timeout_ms: u64, reply: Reply<Connected> },
    PublishFile { name: String, upload: Upload, reply: Reply<Published> },
    PublishPost { text: String, reply: Reply<Published> },
    Fetch { link: String, reply: Reply<Fetched> },
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

async fn peers(State(a): State<Api>) -> Result<Json<Peers>, ApiError> {
    ask(&a.host, Request::Peers).await.map(Json)
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
    ask(&a.host, |reply| Request::PublishFile { name, upload, reply }).await.map(Json)
}

async fn publish_post(State(a): State<Api>, ApiJson(r): ApiJson<PostRequest>) -> Result<Json<Published>, ApiError> {
    ask(&a.host, |reply| Request::PublishPost { text: r.text, reply }).await.map(Json)
}

async fn fetch(State(a): State<Api>, Path(link): Path<String>) -> Result<Response, ApiError> {
    let slot = slot(&a.fetches, "fetches", MAX_CONCURRENT_FETCHES)?;
    Ok(match ask(&a.host, |reply| Request::Fetch { link, reply }).await? {
        Fetched::File { name, data } => {
            let data_len = data.len();
            // Handed out piece by piece, so the stream (and the slot it holds) ends only once the
            // last piece is taken for sending: the slot is held as long as the bytes are.
            let data = Bytes::from(data);
            let pieces = (0..data_len).step_by(RESPONSE_PIECE_BYTES).map(move |at| {
                let _held = &slot;
                Ok::<_, std::io::Error>(data.slice(at..data_len.min(at + RESPONSE_PIECE_BYTES)))
            });
            let body = Body::from_stream(stream::iter(pieces));
            let headers = [
                (header::CONTENT_LENGTH, HeaderValue::from(data_len)),
                (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
                (header::CONTENT_DISPOSITION, edge::content_disposition(&name)),
            ];
            (headers, body).into_response()
        }
        Fetched::Post(p) => Json(p).into_response(),
    })
}

/// The routes: `GET /status`, `GET /peers`, `POST /connect`, `POST /publish/file?name=N` (raw
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
        .fallback(edge::no_route)
        .method_not_allowed_fallback(edge::wrong_method)
        // Unframed JSON bodies stop here; uploads are bounded by their Content-Length.
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_millis(REQUEST_TIMEOUT_MS)))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_millis(BODY_IDLE_TIMEOUT_MS)))
        .layer(axum::middleware::from_fn(edge::json_errors))
        .with_state(state)
}
