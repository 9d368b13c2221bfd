//! The control API's listener: HTTP/1.1 connections, at most [`MAX_API_CONNECTIONS`] at once
//! (past that newcomers wait in the kernel's backlog), each cut off when its client stalls: the
//! request head must arrive within [`HEADER_READ_TIMEOUT_MS`] (which is also how long an idle
//! keep-alive connection is kept), and a response write may not block for longer than
//! [`WRITE_STALL_TIMEOUT_MS`]. The body and whole-request timeouts are layers of the router.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;

/// Connections served at once (guess: a few CLIs and a browser need far fewer).
pub const MAX_API_CONNECTIONS: usize = 64;
/// A request head (request line and headers) must arrive within this; also the idle limit of a
/// keep-alive connection between requests.
pub const HEADER_READ_TIMEOUT_MS: u64 = 5_000;
/// A request body may not go this long without a byte.
pub const BODY_IDLE_TIMEOUT_MS: u64 = 5_000;
/// A response write may not stay blocked this long (a client that stopped reading a download).
pub const WRITE_STALL_TIMEOUT_MS: u64 = 10_000;
/// A handler has this long to answer (the CLI waits as long: fetches of large files take time).
pub const REQUEST_TIMEOUT_MS: u64 = 300_000;
/// Pause after a failed accept (out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF_MS: u64 = 100;

/// Serve `app` on `listener` until the runtime stops.
pub async fn serve(listener: TcpListener, app: Router) {
    let slots = Arc::new(Semaphore::new(MAX_API_CONNECTIONS));
    loop {
        // Never closed: the loop owns the only handle.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "control API: accept failed");
                tokio::time::sleep(Duration::from_millis(ACCEPT_BACKOFF_MS)).await;
                continue;
            }
        };
        let mut io = TimeoutStream::new(tcp);
        io.set_write_timeout(Some(Duration::from_millis(WRITE_STALL_TIMEOUT_MS)));
        let io = TokioIo::new(Box::pin(io));
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_millis(HEADER_READ_TIMEOUT_MS))
                .serve_connection(io, service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "control API connection ended");
            }
            drop(slot);
        });
    }
}
