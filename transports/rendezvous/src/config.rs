//! Server and client configuration: every bound the rendezvous applies, with its unit in the
//! name. Defaults live here and nowhere else; `validate` names the field that is wrong.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Bounds and timings of a rendezvous server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Largest text frame accepted; a larger one gets `too_large` and the connection is closed.
    pub max_message_bytes: usize,
    /// Largest `payload` of a `signal`, in bytes.
    pub max_signal_payload_bytes: usize,
    /// Namespaces one peer may be registered under at once.
    pub max_registrations_per_peer: usize,
    /// Registrations the server holds at once, over all peers and namespaces.
    pub max_registrations_total: usize,
    pub min_ttl_s: u64,
    pub max_ttl_s: u64,
    /// Largest page a `discover` returns.
    pub max_discover_limit: u32,
    /// Token bucket per connection: refill rate and capacity, in messages.
    pub rate_msgs_per_s: u32,
    pub rate_burst_msgs: u32,
    /// Messages refused by the rate limit in a row before the connection is closed.
    pub max_rate_violations: u32,
    /// Open WebSocket connections; further ones are refused at accept.
    pub max_connections: usize,
    /// Messages queued toward one connection; a client that does not read is disconnected (a
    /// signal relayed to a full queue is dropped instead).
    pub max_outbound_queue_msgs: usize,
    /// A connection that sends nothing (not even a WebSocket ping) for this long is closed.
    pub idle_timeout_ms: u64,
    /// Time allowed for the WebSocket upgrade after TCP accept.
    pub handshake_timeout_ms: u64,
    /// How often expired registrations are swept (they are never returned even before).
    pub sweep_interval_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_message_bytes: 64 * 1024,
            max_signal_payload_bytes: 32 * 1024,
            max_registrations_per_peer: 8,
            max_registrations_total: 100_000,
            min_ttl_s: 10,
            max_ttl_s: 7200,
            max_discover_limit: 100,
            rate_msgs_per_s: 50,
            rate_burst_msgs: 100,
            max_rate_violations: 20,
            max_connections: 10_000,
            max_outbound_queue_msgs: 256,
            idle_timeout_ms: 120_000,
            handshake_timeout_ms: 10_000,
            sweep_interval_ms: 1_000,
        }
    }
}

/// A configuration field with an unusable value.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("config field `{field}`: {problem}")]
pub struct ConfigError {
    pub field: &'static str,
    pub problem: String,
}

fn positive(field: &'static str, v: u64) -> Result<(), ConfigError> {
    if v == 0 {
        return Err(ConfigError { field, problem: "must be greater than 0".into() });
    }
    Ok(())
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("max_message_bytes", self.max_message_bytes as u64)?;
        positive("max_signal_payload_bytes", self.max_signal_payload_bytes as u64)?;
        if self.max_signal_payload_bytes > self.max_message_bytes {
            return Err(ConfigError {
                field: "max_signal_payload_bytes",
                problem: format!(
                    "{} exceeds max_message_bytes {}",
                    self.max_signal_payload_bytes, self.max_message_bytes
                ),
            });
        }
        positive("max_registrations_per_peer", self.max_registrations_per_peer as u64)?;
        positive("max_registrations_total", self.max_registrations_total as u64)?;
        positive("min_ttl_s", self.min_ttl_s)?;
        if self.max_ttl_s < self.min_ttl_s {
            return Err(ConfigError {
                field: "max_ttl_s",
                problem: format!("{} is below min_ttl_s {}", self.max_ttl_s, self.min_ttl_s),
            });
        }
        positive("max_discover_limit", self.max_discover_limit.into())?;
        positive("rate_msgs_per_s", self.rate_msgs_per_s.into())?;
        positive("rate_burst_msgs", self.rate_burst_msgs.into())?;
        positive("max_connections", self.max_connections as u64)?;
        positive("max_outbound_queue_msgs", self.max_outbound_queue_msgs as u64)?;
        positive("idle_timeout_ms", self.idle_timeout_ms)?;
        positive("handshake_timeout_ms", self.handshake_timeout_ms)?;
        positive("sweep_interval_ms", self.sweep_interval_ms)?;
        Ok(())
    }
}

/// Timings and bounds of one client connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientConfig {
    pub connect_timeout_ms: u64,
    /// How long to wait, once connected, for the server's challenge (needed to register).
    pub challenge_timeout_ms: u64,
    /// How long `register`, `discover` and `ping` wait for their reply.
    pub request_timeout_ms: u64,
    /// WebSocket pings keep the server's idle timeout from closing a quiet connection.
    pub keepalive_interval_ms: u64,
    /// Largest frame accepted from the server.
    pub max_message_bytes: usize,
    /// Events queued for the application; beyond it incoming signals are dropped (and logged).
    pub event_queue_len: usize,
    /// Requests awaiting a reply at once.
    pub max_pending_requests: usize,
    /// Messages queued toward the server.
    pub outbound_queue_len: usize,
    /// The client's own budget toward the server (token bucket): it keeps to the lower of this
    /// and 4/5 of what the server publishes in its challenge, so the server's rate limit never
    /// cuts it off. Requests (`register`, `discover`, `ping`) wait for a token; a `signal` or
    /// `unregister` that finds none is dropped and counted (`signals_paced`).
    pub max_send_rate_msgs_per_s: u32,
    pub max_send_burst_msgs: u32,
    /// Tokens signals leave for requests, so a burst of signals cannot delay a registration
    /// (at most a quarter of the burst).
    pub request_reserve_msgs: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout_ms: 5_000,
            challenge_timeout_ms: 5_000,
            request_timeout_ms: 5_000,
            keepalive_interval_ms: 30_000,
            max_message_bytes: 1024 * 1024,
            event_queue_len: 1024,
            max_pending_requests: 256,
            outbound_queue_len: 256,
            // 4/5 of the server defaults (50/s, burst 100).
            max_send_rate_msgs_per_s: 40,
            max_send_burst_msgs: 80,
            // guess: a refresh of a few namespaces plus a discovery walk's first pages.
            request_reserve_msgs: 10,
        }
    }
}

/// How a `MultiRendezvous` keeps its connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MultiConfig {
    pub client: ClientConfig,
    /// Reconnect delay after the first failure; doubles per failure up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Pages asked of one server by `discover_all` before it stops.
    pub max_discover_pages: u32,
    /// A registration a server refused or did not answer (full, rate limited, timed out) is
    /// tried again after this long, instead of waiting half a TTL, by when it may have lapsed.
    pub refresh_retry_ms: u64,
    /// Events queued for the application, merged over all servers.
    pub event_queue_len: usize,
}

impl Default for MultiConfig {
    fn default() -> Self {
        MultiConfig {
            client: ClientConfig::default(),
            backoff_initial_ms: 500,
            backoff_max_ms: 10_000,
            max_discover_pages: 10,
            // guess: a register costs one message of the server's budget (50/s by default).
            refresh_retry_ms: 2_000,
            event_queue_len: 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_fields_are_named() {
        assert_eq!(ServerConfig::default().validate(), Ok(()));
        let cfg = ServerConfig { min_ttl_s: 100, max_ttl_s: 10, ..ServerConfig::default() };
        assert_eq!(cfg.validate().map_err(|e| e.field), Err("max_ttl_s"));
        let cfg = ServerConfig { rate_burst_msgs: 0, ..ServerConfig::default() };
        assert_eq!(cfg.validate().map_err(|e| e.field), Err("rate_burst_msgs"));
    }
}
