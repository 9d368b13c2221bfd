//! Transport configuration: every limit is named with its unit, defaults live here, and
//! [`WebRtcConfig::validate`] names the field that is wrong. Also turns the config into the
//! webrtc `SettingEngine` (the setup-speed and throughput settings are chosen here).

use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize;
use rtc::peer_connection::transport::RTCDtlsRole;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use webrtc::peer_connection::{SettingEngine, SettingEngineBuilder};

/// Largest data-channel message the webrtc crate accepts (its SCTP max message size cap).
pub const SCTP_MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebRtcConfig {
    /// Local address the UDP sockets bind (port 0). 127.0.0.1 for loopback; a wildcard would skip
    /// loopback interfaces.
    pub bind_ip: IpAddr,
    /// STUN/TURN urls ("stun:host:port"); empty means host candidates only.
    pub ice_servers: Vec<String>,
    /// A dial that has not opened its data channel by then reports `DialFailed`.
    pub dial_timeout_ms: u64,
    /// Largest data-channel message, tag byte included; also the SCTP max message size we
    /// advertise for receiving. At most 256 KiB.
    pub max_message_bytes: usize,
    /// Largest engine frame; a fragmented frame growing past this closes the link.
    pub max_frame_bytes: usize,
    /// Received frame bytes handed to the node but not yet taken from [`crate::Events`], over
    /// all links; at the bound, links stop reading (SCTP flow control pushes back on senders).
    /// At least twice `max_frame_bytes`.
    pub max_undelivered_bytes: usize,
    /// Bytes handed to SCTP but not yet acknowledged, per link, above which sending waits.
    pub send_buffer_limit_bytes: usize,
    /// Bytes queued per peer behind a full send buffer; frames beyond this are dropped.
    pub max_queued_bytes: usize,
    /// How many connected peers carry each of our offers/answers as a mesh RELAY.
    pub relay_fanout: usize,
    /// RELAY requests accepted from one link per second (token bucket refill).
    pub relay_rate_per_sec: u32,
    /// RELAY requests one link may make in a burst (token bucket size).
    pub relay_burst: u32,
    /// Largest signal JSON accepted from a relay or forwarded; also the largest SDP accepted.
    pub max_signal_bytes: usize,
    /// Distinct destinations (transport, address, port) of the remote ICE candidates taken from
    /// one offer or answer; the rest are dropped before ICE sends them checks (an offer naming
    /// many ports would make us a reflection amplifier).
    pub max_remote_candidates: usize,
    /// How many (peer, session, kind) signals are remembered to drop duplicates.
    pub max_seen_signals: usize,
    /// Connections (open or being set up) at most; further dials fail, offers are ignored.
    pub max_links: usize,
    /// Answers to remote offers being set up at once (over all peers); further offers get none.
    pub max_pending_answers: usize,
    /// Offers answered per second over all peers (token bucket refill), and the burst.
    pub offer_rate_per_sec: u32,
    pub offer_burst: u32,
    /// Offers answered per minute from one peer, and the burst.
    pub peer_offer_rate_per_min: u32,
    pub peer_offer_burst: u32,
    /// Offering peers whose rate is tracked; the least recently seen is forgotten beyond it.
    pub max_offer_sources: usize,
    /// Interval between ICE connectivity checks (webrtc default 200 ms: the setup cost).
    pub ice_check_interval_ms: u64,
    /// How long ICE keeps checking one candidate pair before giving it up (webrtc default
    /// 7 x 200 ms): the check count is this over `ice_check_interval_ms`, so fast checks do not
    /// shorten the time a slow path gets to answer.
    pub ice_pair_timeout_ms: u64,
    /// While the dialler's channel is not yet open, wake its webrtc driver this often. The
    /// driver flushes packets that timers and state changes queue (DTLS ClientHello, SCTP INIT,
    /// the channel OPEN) only on its next wake-up, its 200 ms idle tick: three of them were the
    /// ~600 ms of a stock setup. 0 turns the nudge off.
    pub setup_nudge_interval_ms: u64,
    /// No traffic for this long: ICE says disconnected.
    pub ice_disconnected_timeout_ms: u64,
    /// Then this much longer: ICE failed, the link closes (`Disconnected`).
    pub ice_failed_timeout_ms: u64,
    /// ICE keepalive interval on an idle link.
    pub ice_keepalive_interval_ms: u64,
    /// SCTP receive window per link (a_rwnd); at least max_message_bytes.
    pub sctp_receive_buffer_bytes: u32,
    /// SO_RCVBUF / SO_SNDBUF for each UDP socket (the kernel caps it at net.core.rmem_max);
    /// 0 keeps the system default.
    pub udp_socket_buffer_bytes: usize,
    /// Outbound SCTP packet budget; `None` keeps the crate default (1191, safe on any path).
    /// Larger values cut per-packet cost on loopback but exceed real path MTUs.
    pub sctp_mtu_bytes: Option<u32>,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ice_servers: Vec::new(),
            dial_timeout_ms: 10_000,
            max_message_bytes: SCTP_MAX_MESSAGE_BYTES,
            max_frame_bytes: 8 * 1024 * 1024,
            max_undelivered_bytes: 64 * 1024 * 1024,
            send_buffer_limit_bytes: 1024 * 1024,
            max_queued_bytes: 16 * 1024 * 1024,
            relay_fanout: 3,
            relay_rate_per_sec: 20,
            relay_burst: 40,
            max_signal_bytes: 64 * 1024,
            // guess: host + server-reflexive + relay on a few interfaces; a browser lists ~3-6.
            max_remote_candidates: 8,
            max_seen_signals: 4096,
            max_links: 512,
            // guess: a dial timeout (10 s) of junk offers at 3/s holds ~30.
            max_pending_answers: 32,
            // Far below a rendezvous server's default 50 messages/s per connection (burst 100),
            // which every answer counts against.
            offer_rate_per_sec: 10,
            offer_burst: 20,
            // guess: an honest peer offers once per dial; reconnects back off over 5-45 s.
            peer_offer_rate_per_min: 6,
            peer_offer_burst: 3,
            max_offer_sources: 1024,
            ice_check_interval_ms: 10,
            ice_pair_timeout_ms: 2_000,
            setup_nudge_interval_ms: 1,
            ice_disconnected_timeout_ms: 5_000,
            ice_failed_timeout_ms: 10_000,
            ice_keepalive_interval_ms: 2_000,
            sctp_receive_buffer_bytes: 4 * 1024 * 1024,
            udp_socket_buffer_bytes: 4 * 1024 * 1024,
            sctp_mtu_bytes: None,
        }
    }
}

/// A config field out of range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("max_message_bytes {0} must be within 2..={SCTP_MAX_MESSAGE_BYTES}")]
    MaxMessageBytes(usize),
    #[error("max_frame_bytes {0} must be at least 1")]
    MaxFrameBytes(usize),
    #[error("sctp_receive_buffer_bytes {got} must be at least max_message_bytes {need}")]
    SctpReceiveBuffer { got: u32, need: usize },
    #[error("max_undelivered_bytes {got} must be at least twice max_frame_bytes ({need})")]
    MaxUndelivered { got: usize, need: usize },
    #[error("{field} must be positive")]
    Zero { field: &'static str },
}

impl WebRtcConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(2..=SCTP_MAX_MESSAGE_BYTES).contains(&self.max_message_bytes) {
            return Err(ConfigError::MaxMessageBytes(self.max_message_bytes));
        }
        if self.max_frame_bytes == 0 {
            return Err(ConfigError::MaxFrameBytes(self.max_frame_bytes));
        }
        if self.max_undelivered_bytes < self.max_frame_bytes.saturating_mul(2) {
            return Err(ConfigError::MaxUndelivered {
                got: self.max_undelivered_bytes,
                need: self.max_frame_bytes.saturating_mul(2),
            });
        }
        if (self.sctp_receive_buffer_bytes as usize) < self.max_message_bytes {
            return Err(ConfigError::SctpReceiveBuffer {
                got: self.sctp_receive_buffer_bytes,
                need: self.max_message_bytes,
            });
        }
        for (field, v) in [
            ("dial_timeout_ms", self.dial_timeout_ms),
            ("send_buffer_limit_bytes", self.send_buffer_limit_bytes as u64),
            ("max_signal_bytes", self.max_signal_bytes as u64),
            ("max_seen_signals", self.max_seen_signals as u64),
            ("max_links", self.max_links as u64),
            ("max_remote_candidates", self.max_remote_candidates as u64),
            ("max_pending_answers", self.max_pending_answers as u64),
            ("offer_rate_per_sec", self.offer_rate_per_sec.into()),
            ("offer_burst", self.offer_burst.into()),
            ("peer_offer_rate_per_min", self.peer_offer_rate_per_min.into()),
            ("peer_offer_burst", self.peer_offer_burst.into()),
            ("max_offer_sources", self.max_offer_sources as u64),
            ("ice_check_interval_ms", self.ice_check_interval_ms),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        Ok(())
    }

    /// The webrtc settings: host candidates accepted at once (no nomination wait), peer-reflexive
    /// ones too (a browser's mDNS-hidden host shows up as one), mDNS off, fast ICE checks, a
    /// receive-side SCTP max message size of `max_message_bytes`.
    pub(crate) fn setting_engine(&self) -> SettingEngine {
        let ms = Duration::from_millis;
        let checks = (self.ice_pair_timeout_ms / self.ice_check_interval_ms.max(1)).clamp(7, u16::MAX as u64) as u16;
        let mut b = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_host_acceptance_min_wait(Some(Duration::ZERO))
            .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
            .with_ice_connection_attempts(Some(ms(self.ice_check_interval_ms)), Some(checks))
            .with_ice_timeouts(
                Some(ms(self.ice_disconnected_timeout_ms)),
                Some(ms(self.ice_failed_timeout_ms)),
                Some(ms(self.ice_keepalive_interval_ms)),
            )
            // The answerer is DTLS server, so the dialler (which holds the channel handle that
            // can wake its driver) starts both DTLS and SCTP.
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .with_include_loopback_candidate(self.bind_ip.is_loopback())
            .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(self.max_message_bytes as u32))
            .with_sctp_max_receive_buffer_size(self.sctp_receive_buffer_bytes);
        if let Some(mtu) = self.sctp_mtu_bytes {
            b = b.with_sctp_mtu(mtu);
        }
        b.build()
    }
}
