//! The node's local control API: HTTP + JSON on a loopback address. Handlers run on the network
//! runtime and only forward requests to the host (the node's actix thread) over a channel; every
//! answer comes back on a oneshot. The JSON shapes here are shared with the CLI client.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// Largest file the API accepts in one upload (the manifest format allows up to 1 GiB). The
/// upload streams: the host counts the bytes as they come and stops at this.
pub const MAX_UPLOAD_BYTES: usize = 256 * 1024 * 1024;
/// Body frames of an upload read ahead of the host.
const UPLOAD_QUEUE_FRAMES: usize = 4;

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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: String,
}

/// A failed request: an HTTP status and a sentence naming what was wrong.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into() }
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, message: message.into() }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ApiErrorBody { error: self.message })).into_response()
    }
}

/// What a fetch returns: a file (its name and size from the manifest, then its bytes as they
/// come, in order), or a post.
#[derive(Debug)]
pub enum Fetched {
    File { name: String, size: u64, body: mpsc::Receiver<Result<Bytes, std::io::Error>> },
    Post(PostView),
}

/// An upload as the API reads its request body.
#[derive(Debug)]
pub enum Upload {
    Data(Bytes),
    /// The body ended cleanly.
    End,
    /// The body could not be read (the client went away midway).
    Failed(String),
}

pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// A request handed to the host.
#[derive(Debug)]
pub enum Request {
    Status(Reply<Status>),
    Peers(Reply<Peers>),
    Connect { peer: String, timeout_ms: u64, reply: Reply<Connected> },
    PublishFile { name: String, body: mpsc::Receiver<Upload>, reply: Reply<Published> },
    PublishPost { text: String, reply: Reply<Published> },
    Fetch { link: String, reply: Reply<Fetched> },
}

type Host = mpsc::UnboundedSender<Request>;

async fn ask<T>(host: &Host, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    host.send(make(tx)).map_err(|_| ApiError::internal("the node is shutting down"))?;
    rx.await.map_err(|_| ApiError::internal("the node is shutting down"))?
}

async fn status(State(h): State<Host>) -> Result<Json<Status>, ApiError> {
    ask(&h, Request::Status).await.map(Json)
}

async fn peers(State(h): State<Host>) -> Result<Json<Peers>, ApiError> {
    ask(&h, Request::Peers).await.map(Json)
}

async fn connect(State(h): State<Host>, Json(r): Json<ConnectRequest>) -> Result<Json<Connected>, ApiError> {
    let timeout_ms = r.timeout_ms.unwrap_or(10_000).min(60_000);
    ask(&h, |reply| Request::Connect { peer: r.peer_id, timeout_ms, reply }).await.map(Json)
}

/// The body goes to the host as it arrives, a few frames ahead at most: the host takes each
/// once the node took the one before.
async fn publish_file(
    State(h): State<Host>,
    Query(q): Query<FileQuery>,
    body: Body,
) -> Result<Json<Published>, ApiError> {
    let name = q.name.unwrap_or_else(|| "file".into());
    let (tx, rx) = mpsc::channel(UPLOAD_QUEUE_FRAMES);
    let asked = ask(&h, |reply| Request::PublishFile { name, body: rx, reply });
    let feed = async move {
        let mut frames = body.into_data_stream();
        while let Some(frame) = frames.next().await {
            let (piece, failed) = match frame {
                Ok(b) => (Upload::Data(b), false),
                Err(e) => (Upload::Failed(e.to_string()), true),
            };
            // A send fails once the host has answered (an error before the end).
            if tx.send(piece).await.is_err() || failed {
                return;
            }
        }
        let _ = tx.send(Upload::End).await;
    };
    let (result, ()) = tokio::join!(asked, feed);
    result.map(Json)
}

async fn publish_post(State(h): State<Host>, Json(r): Json<PostRequest>) -> Result<Json<Published>, ApiError> {
    ask(&h, |reply| Request::PublishPost { text: r.text, reply }).await.map(Json)
}

async fn fetch(State(h): State<Host>, Path(link): Path<String>) -> Result<Response, ApiError> {
    Ok(match ask(&h, |reply| Request::Fetch { link, reply }).await? {
        Fetched::File { name, size, body } => {
            let disposition = format!("attachment; filename=\"{}\"", name.replace(['"', '\\', '\r', '\n'], "_"));
            let pieces = futures_util::stream::unfold(body, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) });
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (header::CONTENT_DISPOSITION, disposition),
                    (header::CONTENT_LENGTH, size.to_string()),
                ],
                Body::from_stream(pieces),
            )
                .into_response()
        }
        Fetched::Post(p) => Json(p).into_response(),
    })
}

/// The routes: `GET /status`, `GET /peers`, `POST /connect`, `POST /publish/file?name=N` (raw
/// body), `POST /publish/post`, `GET /fetch/LINK`.
pub fn router(host: Host) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/peers", get(peers))
        .route("/connect", post(connect))
        .route("/publish/file", post(publish_file))
        .route("/publish/post", post(publish_post))
        .route("/fetch/{link}", get(fetch))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .with_state(host)
}
