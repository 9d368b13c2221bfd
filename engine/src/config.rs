//! Node configuration: every protocol parameter in one place, with the defaults from the design
//! (DESIGN.md section 3). Deserialised from TOML (`[node]` of a scenario, or a node's config file)
//! and validated with errors that name the field.

pub use crate::reputation::config::ReputationConfig;
pub use crate::sync::config::SyncConfig;
use serde::{Deserialize, Serialize};

/// A configuration value out of range; names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid value for `{field}`: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

pub(crate) fn check(ok: bool, field: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError { field, reason: reason.into() })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    pub links: LinksConfig,
    pub discovery: DiscoveryConfig,
    pub gossip: GossipConfig,
    pub health: HealthConfig,
    pub auth: AuthConfig,
    pub replication: ReplicationConfig,
    pub routing: RoutingConfig,
    pub topology: TopologyConfig,
    pub files: FilesConfig,
    pub reputation: ReputationConfig,
    pub sync: SyncConfig,
    pub recovery: crate::recovery::RecoveryConfig,
    pub feeds: crate::feeds::FeedsConfig,
    pub flood: crate::flood::FloodConfig,
}

/// Whole files: publications streamed in and fetches streamed out, each holding a bounded
/// window of chunks in memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Publications running at once (more are refused until one ends).
    pub max_publishes: usize,
    /// Fetches of whole files running at once.
    pub max_fetches: usize,
    /// Chunks of one publication cut and not yet stored; the caller is asked for more only
    /// below this (with 256 KiB chunks: 1 MiB per publication).
    pub publish_window_chunks: usize,
    /// Chunks of one fetch asked for, waiting to be put in order, or handed over and not yet
    /// taken by the caller (plan: chunks fetched 8 at a time; 2 MiB per fetch).
    pub fetch_window_chunks: usize,
    /// An operation waiting on its caller this long (an upload that stalls, a download nobody
    /// reads) is given up, and what it stored reclaimed.
    pub idle_timeout_ms: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            // guess: a few users' uploads and downloads at a time on one node
            max_publishes: 16,
            max_fetches: 16,
            publish_window_chunks: 4,
            fetch_window_chunks: 8,
            idle_timeout_ms: 120_000,
        }
    }
}

/// The connection manager: how many links a node keeps, how it dials, when it trims.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinksConfig {
    /// Below this many links discovery dials random known peers (the low watermark).
    pub low_watermark: usize,
    /// Above this many links the manager trims links nobody protects...
    pub high_watermark: usize,
    /// ...down to this many (hysteresis: the next trim waits until the high watermark again).
    pub trim_to: usize,
    /// Hard cap: inbound links beyond it are refused at once, before any handshake.
    pub max_connections: usize,
    /// A link younger than this is never trimmed (so a new link gets the chance to be used).
    pub min_link_age_ms: u64,
    /// A dial (transport setup and handshake) not done within this long has failed.
    pub dial_timeout_ms: u64,
    /// Dials in flight at once.
    pub max_pending_dials: usize,
    /// Attempts to reach a wanted peer before it is left alone for `give_up_ms`.
    pub reconnect_attempts: u32,
    /// Delay before the next attempt after the first failure; each next one is multiplied by
    /// `reconnect_multiplier`, up to `reconnect_max_ms`.
    pub reconnect_base_ms: u64,
    pub reconnect_multiplier: u32,
    pub reconnect_max_ms: u64,
    /// How long a peer that failed every attempt is not dialled.
    pub give_up_ms: u64,
    /// A link dialled for an exchange (a transfer, an offer, a lookup question) is wanted for
    /// this long after its last use; then it is an ordinary unprotected link.
    pub exchange_hold_ms: u64,
    /// Peers whose dial failures are remembered at once.
    pub max_failed_peers: usize,
}

impl Default for LinksConfig {
    fn default() -> Self {
        LinksConfig {
            low_watermark: 8,   // measured (issue 2): 8 random links keep 1,000 nodes whole
            high_watermark: 32, // guess: topology wants ~15-20 (6 neighbours, ~log2(n) buckets)
            trim_to: 24,
            max_connections: 48,
            min_link_age_ms: 120_000, // guess: one discovery re-scan
            dial_timeout_ms: 10_000,  // WebRTC setup is ~15 ms on loopback; ICE on real paths seconds
            max_pending_dials: 16,
            reconnect_attempts: 3, // plan: 3 attempts, up to 45 s
            reconnect_base_ms: 5_000,
            reconnect_multiplier: 3,
            reconnect_max_ms: 45_000,
            give_up_ms: 600_000,      // guess
            exchange_hold_ms: 30_000, // guess: a fetch's retries fit in it
            max_failed_peers: 1024,
        }
    }
}

/// Content routing: iterative lookups over the XOR metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Peers a lookup converges on, and peers in one answer.
    pub k: usize,
    /// Questions in flight per lookup.
    pub alpha: usize,
    /// A question not answered within this long counts as failed.
    pub query_timeout_ms: u64,
    /// A question not answered within this long gives its slot to the next candidate (its
    /// answer still counts until `query_timeout_ms`).
    pub query_stall_ms: u64,
    /// Lookups one node runs at once (more wait their turn).
    pub max_lookups: usize,
    /// A fetch sends its routed request through this many links at once (the closest to the
    /// chunk): the first holder's answer wins.
    pub route_fanout: usize,
    /// A fetch with no routed answer after this long routes through `route_fanout` more links.
    pub route_hedge_ms: u64,
    /// A routed request not answered within this long has failed (the fetch falls back to a
    /// lookup).
    pub route_timeout_ms: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            k: 8,
            alpha: 3,
            query_timeout_ms: 2_000,
            query_stall_ms: 400, // guess: ~4 median round trips (40 ms one way in the scenarios)
            max_lookups: 32,
            route_fanout: 2,
            route_hedge_ms: 600,     // measured: p50 of a routed fetch ~0.2 s at 40 ms one way
            route_timeout_ms: 2_000, // 16 hops of ~45 ms there and back, with margin
        }
    }
}

/// Topology: which links a node keeps beyond the ones discovery makes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopologyConfig {
    /// While a node sees fewer peers than this, it links to all of them (full mesh).
    pub mesh_below: usize,
    /// Links to the peers closest to us by XOR (where our replicas' other holders are).
    pub neighbourhood: usize,
    /// How often a node looks itself up (finding its neighbourhood) and fills empty buckets.
    pub refresh_interval_ms: u64,
    /// Whether other nodes can dial this one directly. A node behind a NAT that only relays
    /// cross (`false`) keeps `supernode_links` links to supernodes, through which its lookups,
    /// fetches and signaling pass when a direct link cannot be made.
    pub reachable: bool,
    /// The share of peer ids elected supernode: a public lottery over the id (anyone can check
    /// a claim), of which the reachable ones serve.
    pub supernode_share: f64,
    /// Links an unreachable node keeps to supernodes (protected on both sides).
    pub supernode_links: usize,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        TopologyConfig {
            mesh_below: 10,
            neighbourhood: 6,
            refresh_interval_ms: 300_000,
            reachable: true,
            supernode_share: 0.1, // the bound: supernodes <= 10% of nodes
            supernode_links: 2,   // guess: one can crash; two rarely do within a repair round
        }
    }
}

/// Replication: how many copies of each chunk, and how fast repair may go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationConfig {
    /// Replicas per chunk (the replica set: the `rf` live peers closest to the chunk by XOR).
    pub rf: usize,
    /// How often each node checks the replica sets of what it holds.
    pub repair_interval_ms: u64,
    /// Most bytes one node pushes for repair per round (the rate limit on repair traffic).
    pub repair_bytes_per_round: u64,
    /// A request for a chunk not answered within this long goes to another holder.
    pub request_timeout_ms: u64,
    /// How often a holder checks each chunk's replica set against the network (a lookup),
    /// after any sign of trouble.
    pub check_interval_ms: u64,
    /// The longest wait between two checks of a settled chunk: each check that finds the whole
    /// replica set holding it doubles the wait, from `check_interval_ms` up to this.
    pub check_interval_max_ms: u64,
    /// Most lookups one node starts per repair round.
    pub lookups_per_round: usize,
    /// Bytes of chunks this node keeps at most (its own and others'); a full node refuses more.
    pub capacity_bytes: u64,
    /// A fetch that has not completed within this long fails.
    pub fetch_timeout_ms: u64,
    /// Copies kept beyond the replica set: a holder farther than the `rf + spare_copies`
    /// closest live peers drops its copy once all `rf` of the replica set hold it (an author
    /// keeps what it published).
    pub spare_copies: usize,
    /// Every this long, the linked peer audited longest ago is asked for one chunk it announced
    /// holding: a peer that withholds, stalls or corrupts is caught by each of its neighbours,
    /// not only by the few that happen to fetch from it (0: no audits).
    pub audit_interval_ms: u64,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            rf: 3,
            repair_interval_ms: 30_000,
            repair_bytes_per_round: 2 * 1024 * 1024,
            request_timeout_ms: 10_000,
            check_interval_ms: 60_000,
            // guess: 8x the base; a linked holder's departure triggers a check at once anyway.
            check_interval_max_ms: 480_000,
            lookups_per_round: 16,
            capacity_bytes: 1 << 30,
            fetch_timeout_ms: 30_000,
            spare_copies: 2,
            // guess: one chunk (4-16 KiB) per 20 s is ~0.5 KiB/s per node; each of ~20 links is
            // audited about every 7 minutes.
            audit_interval_ms: 20_000,
        }
    }
}

/// Peer authentication: every new link runs a challenge-response handshake proving that the peer
/// holds the secret key of the id it connected as; nothing else crosses the link until it has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// A link whose peer has not proved its identity within this long is closed.
    pub handshake_timeout_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { handshake_timeout_ms: 10_000 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Peers dialled at start, chosen at random among the known ones.
    pub initial_dials: usize,
    /// Re-scan period: top up connections from the registry.
    pub rescan_interval_ms: u64,
    /// Bootstrap registry capacity (peers remembered).
    pub registry_max_peers: usize,
    /// Peers sent in one PEX response.
    pub pex_max_peers: usize,
    /// At each re-scan a node at the low watermark still asks for one random known peer while
    /// it holds fewer links than this: the overlay keeps mixing, so partitions re-merge once
    /// healed.
    pub explore_max_connections: usize,
    /// Random links asked for at once (dials in flight for discovery).
    pub max_pending_dials: usize,
    /// A peer that failed to answer a dial is not picked again for this long.
    pub dial_retry_after_ms: u64,
    /// Recency half-life used by the reliability score.
    pub recency_half_life_ms: u64,
    /// A PEX answer names, after this node's links, only known peers it was linked to within
    /// this long (and that did not fail a dial since): peers a node vouches for are alive as far
    /// as it knows, so a source whose peers nobody else mentions stands out (see
    /// `discovery::vouchers`).
    pub pex_fresh_ms: u64,
    /// Stored peers not seen for this many days are pruned when a node starts.
    pub forget_after_days: u64,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            initial_dials: 5,
            rescan_interval_ms: 120_000,
            registry_max_peers: 100,
            pex_max_peers: 50,
            explore_max_connections: 10,
            max_pending_dials: 8,
            dial_retry_after_ms: 60_000,
            recency_half_life_ms: 600_000,
            pex_fresh_ms: 600_000, // guess: a few link lifetimes under heavy churn
            forget_after_days: 14,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GossipConfig {
    /// Period of a node's own announcement.
    pub interval_ms: u64,
    /// Known peers carried by one announcement.
    pub top_peers: usize,
    /// Hops an announcement travels (the originator's send is hop 1).
    pub ttl: u8,
    /// Rumours carried in one gossip frame (own + relayed).
    pub max_rumors_per_frame: usize,
    /// Rumour ids remembered for de-duplication.
    pub seen_cache_max: usize,
    /// A rumour dated further than this in the future is refused (clocks of peers differ).
    pub max_clock_skew_ms: u64,
    /// Hops a new warning (a peer this node graylisted on its own evidence) is pushed.
    pub warning_hops: u8,
    /// Links a node pushes a new warning to, its own or one it hears first.
    pub warning_fanout: usize,
    /// This node's own warnings kept (the newest), sent to each new link.
    pub max_warnings: usize,
    /// A warning is dropped this long after it was made (or when the peer is no longer
    /// graylisted here).
    pub warning_ttl_ms: u64,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            interval_ms: 60_000,
            top_peers: 20,
            ttl: 3,
            max_rumors_per_frame: 4,
            seen_cache_max: 4096,
            max_clock_skew_ms: 60_000,
            // Three hops reach ~150 nodes (5 + 25 + 125) for ~150 frames; six reached all of
            // 1,000 for ~5,000 each. adversaries-20 at 1,000 nodes: six hops delivered 67 M
            // frames (warnings were two thirds of them) and shunned 3% of honest peers by mistake,
            // as adversaries' own mistaken warnings reached every node; three delivered 22 M with
            // 0.7% mistaken and the same isolation (p90 140-145 s) and link share (1.3-1.4%).
            warning_hops: 3,
            warning_fanout: 5,
            max_warnings: crate::wire::MAX_RUMOR_WARNINGS,
            warning_ttl_ms: 3_600_000, // guess: an adversary's session; warnings repeat per link
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Heartbeat period (one heartbeat to every connection per period).
    pub heartbeat_interval_ms: u64,
    /// A connection silent for this long is declared dead and closed.
    pub heartbeat_timeout_ms: u64,
    /// A peer some core found unresponsive (a lookup question unanswered in time) is probed; a
    /// link on which nothing is heard within this long of the probe is declared dead at once.
    pub probe_timeout_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            heartbeat_interval_ms: 30_000,
            heartbeat_timeout_ms: 90_000,
            probe_timeout_ms: 3_000, // guess: ~40 median round trips of the scenarios; a loaded real peer answers in 1 s
        }
    }
}

impl DiscoveryConfig {
    pub fn forget_after_ms(&self) -> u64 {
        self.forget_after_days.saturating_mul(24 * 3600 * 1000)
    }
}

impl NodeConfig {
    /// Check every field; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.links;
        check(l.low_watermark >= 1, "links.low_watermark", "must be at least 1")?;
        check(
            l.high_watermark >= l.low_watermark,
            "links.high_watermark",
            format!("must be >= low_watermark ({})", l.low_watermark),
        )?;
        check(
            (l.low_watermark..l.high_watermark.max(l.low_watermark + 1)).contains(&l.trim_to),
            "links.trim_to",
            format!("must be within low_watermark..high_watermark ({}..{})", l.low_watermark, l.high_watermark),
        )?;
        check(
            l.max_connections >= l.high_watermark,
            "links.max_connections",
            format!("must be >= high_watermark ({})", l.high_watermark),
        )?;
        check(l.dial_timeout_ms >= 100, "links.dial_timeout_ms", "must be at least 100 ms")?;
        check(l.max_pending_dials >= 1, "links.max_pending_dials", "must be at least 1")?;
        check(l.reconnect_attempts >= 1, "links.reconnect_attempts", "must be at least 1")?;
        check(l.reconnect_base_ms >= 1, "links.reconnect_base_ms", "must be positive")?;
        check(l.reconnect_multiplier >= 1, "links.reconnect_multiplier", "must be at least 1")?;
        check(
            l.reconnect_max_ms >= l.reconnect_base_ms,
            "links.reconnect_max_ms",
            format!("must be >= reconnect_base_ms ({})", l.reconnect_base_ms),
        )?;
        check(l.max_failed_peers >= 1, "links.max_failed_peers", "must be at least 1")?;
        let d = &self.discovery;
        check(
            d.explore_max_connections <= l.max_connections,
            "discovery.explore_max_connections",
            format!("must be <= links.max_connections ({})", l.max_connections),
        )?;
        check(d.registry_max_peers >= 1, "discovery.registry_max_peers", "must be at least 1")?;
        check(d.pex_max_peers >= 1, "discovery.pex_max_peers", "must be at least 1")?;
        check(d.max_pending_dials >= 1, "discovery.max_pending_dials", "must be at least 1")?;
        check(d.rescan_interval_ms >= 100, "discovery.rescan_interval_ms", "must be at least 100 ms")?;
        check(d.recency_half_life_ms >= 1, "discovery.recency_half_life_ms", "must be positive")?;
        check(d.forget_after_days >= 1, "discovery.forget_after_days", "must be at least 1")?;
        let g = &self.gossip;
        check(g.interval_ms >= 100, "gossip.interval_ms", "must be at least 100 ms")?;
        check(g.ttl >= 1, "gossip.ttl", "must be at least 1")?;
        check(g.warning_hops >= 1, "gossip.warning_hops", "must be at least 1")?;
        check(
            g.max_warnings <= crate::wire::MAX_RUMOR_WARNINGS,
            "gossip.max_warnings",
            format!("must be at most {} (one rumour carries them all)", crate::wire::MAX_RUMOR_WARNINGS),
        )?;
        check(g.warning_ttl_ms >= 1_000, "gossip.warning_ttl_ms", "must be at least 1000 ms")?;
        check(g.max_rumors_per_frame >= 1, "gossip.max_rumors_per_frame", "must be at least 1")?;
        check(g.seen_cache_max >= 16, "gossip.seen_cache_max", "must be at least 16")?;
        let r = &self.replication;
        check(r.rf >= 1, "replication.rf", "must be at least 1")?;
        check(r.repair_interval_ms >= 100, "replication.repair_interval_ms", "must be at least 100 ms")?;
        check(
            r.repair_bytes_per_round >= 256 * 1024 + 16,
            "replication.repair_bytes_per_round",
            "must fit at least one full chunk (262160 bytes)",
        )?;
        check(r.request_timeout_ms >= 100, "replication.request_timeout_ms", "must be at least 100 ms")?;
        check(
            r.check_interval_ms >= r.repair_interval_ms,
            "replication.check_interval_ms",
            "must be >= repair_interval_ms",
        )?;
        check(
            r.check_interval_max_ms >= r.check_interval_ms,
            "replication.check_interval_max_ms",
            "must be >= check_interval_ms",
        )?;
        check(r.lookups_per_round >= 1, "replication.lookups_per_round", "must be at least 1")?;
        check(r.fetch_timeout_ms >= 100, "replication.fetch_timeout_ms", "must be at least 100 ms")?;
        let k = &self.routing;
        check(
            (1..=crate::wire::MAX_NODES).contains(&k.k),
            "routing.k",
            format!("must be 1..={}", crate::wire::MAX_NODES),
        )?;
        check(k.k >= r.rf, "routing.k", format!("must be >= replication.rf ({})", r.rf))?;
        check(k.alpha >= 1, "routing.alpha", "must be at least 1")?;
        check(k.query_timeout_ms >= 10, "routing.query_timeout_ms", "must be at least 10 ms")?;
        check(k.max_lookups >= 1, "routing.max_lookups", "must be at least 1")?;
        check(
            (1..=k.query_timeout_ms).contains(&k.query_stall_ms),
            "routing.query_stall_ms",
            format!("must be within 1..=query_timeout_ms ({})", k.query_timeout_ms),
        )?;
        check(k.route_fanout >= 1, "routing.route_fanout", "must be at least 1")?;
        check(k.route_timeout_ms >= 100, "routing.route_timeout_ms", "must be at least 100 ms")?;
        check(k.route_hedge_ms >= 1, "routing.route_hedge_ms", "must be positive")?;
        let t = &self.topology;
        check(t.neighbourhood >= 1, "topology.neighbourhood", "must be at least 1")?;
        check(t.refresh_interval_ms >= 1_000, "topology.refresh_interval_ms", "must be at least 1000 ms")?;
        check(
            (0.0..=1.0).contains(&t.supernode_share),
            "topology.supernode_share",
            format!("must be within 0..=1 (got {})", t.supernode_share),
        )?;
        check(
            t.supernode_links <= self.links.trim_to,
            "topology.supernode_links",
            format!("must be at most links.trim_to ({})", self.links.trim_to),
        )?;
        check(self.auth.handshake_timeout_ms >= 100, "auth.handshake_timeout_ms", "must be at least 100 ms")?;
        let f = &self.files;
        check(f.max_publishes >= 1, "files.max_publishes", "must be at least 1")?;
        check(f.max_fetches >= 1, "files.max_fetches", "must be at least 1")?;
        check(f.publish_window_chunks >= 1, "files.publish_window_chunks", "must be at least 1")?;
        check(f.fetch_window_chunks >= 1, "files.fetch_window_chunks", "must be at least 1")?;
        check(f.idle_timeout_ms >= 100, "files.idle_timeout_ms", "must be at least 100 ms")?;
        let h = &self.health;
        check(h.heartbeat_interval_ms >= 100, "health.heartbeat_interval_ms", "must be at least 100 ms")?;
        check(
            h.heartbeat_timeout_ms > h.heartbeat_interval_ms,
            "health.heartbeat_timeout_ms",
            format!("must exceed heartbeat_interval_ms ({})", h.heartbeat_interval_ms),
        )?;
        check(
            h.probe_timeout_ms >= 100 && h.probe_timeout_ms < h.heartbeat_timeout_ms,
            "health.probe_timeout_ms",
            format!("must be at least 100 ms and less than heartbeat_timeout_ms ({})", h.heartbeat_timeout_ms),
        )?;
        self.reputation.validate()?;
        self.sync.validate(self.replication.rf)?;
        self.recovery.validate()?;
        self.feeds.validate()?;
        self.flood.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_plan() {
        let c = NodeConfig::default();
        c.validate().unwrap();
        assert_eq!(c.discovery.initial_dials, 5);
        assert_eq!(c.discovery.rescan_interval_ms, 120_000);
        assert_eq!(c.discovery.pex_max_peers, 50);
        assert_eq!(c.discovery.registry_max_peers, 100);
        assert_eq!(c.gossip.top_peers, 20);
        assert_eq!(c.gossip.ttl, 3);
        assert_eq!(c.links.reconnect_attempts, 3);
        assert_eq!(c.links.reconnect_max_ms, 45_000);
    }

    #[test]
    fn errors_name_the_field() {
        let mut c = NodeConfig::default();
        c.links.max_connections = 2;
        assert_eq!(c.validate().unwrap_err().field, "links.max_connections");
        let e: Result<NodeConfig, _> = toml::from_str("[gossip]\nttl_hops = 3\n");
        assert!(e.unwrap_err().to_string().contains("ttl_hops"));
    }
}
