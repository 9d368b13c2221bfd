//! Errors of the rendezvous crate: one enum for the server side, one for the client side. Each
//! variant says what failed and with which input.

use crate::config::ConfigError;
use crate::proto::ErrorCode;
use std::net::SocketAddr;
use thiserror::Error;

/// Starting or running a rendezvous server.
#[derive(Debug, Error)]
pub enum RendezvousError {
    #[error("invalid server config: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot read the bound address: {0}")]
    LocalAddr(std::io::Error),
    #[error("waiting for ctrl-c failed: {0}")]
    Signal(std::io::Error),
}

/// A client request that did not get the answer it wanted.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ClientError {
    #[error("connecting to {url} failed: {reason}")]
    Connect { url: String, reason: String },
    #[error("connecting to {url} timed out after {timeout_ms} ms")]
    ConnectTimeout { url: String, timeout_ms: u64 },
    #[error("{url} sent no challenge within {timeout_ms} ms (an old server without key proofs?)")]
    ChallengeTimeout { url: String, timeout_ms: u64 },
    #[error("the connection to the rendezvous server is closed")]
    Disconnected,
    #[error("no reply from the rendezvous server within {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("{max} requests already await a reply (max_pending_requests)")]
    TooManyPending { max: usize },
    #[error("the queue toward the server is full ({max} messages, outbound_queue_len)")]
    QueueFull { max: usize },
    #[error("not sent: over the budget kept toward the server ({rate_msgs_per_s} messages/s, burst {burst_msgs})")]
    Paced { rate_msgs_per_s: u32, burst_msgs: u32 },
    #[error("the server answered {code}: {message}")]
    Server { code: ErrorCode, message: String },
    #[error("unexpected reply from the server: {0}")]
    Protocol(String),
    #[error("invalid argument `{field}`: {problem}")]
    Argument { field: &'static str, problem: String },
}
