//! The run report: JSON for machines, a table for people, an SVG plot of connectivity and live
//! nodes over time.

use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One periodic measurement of the overlay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t_s: f64,
    pub live: usize,
    /// Largest connected component / live nodes.
    pub connectivity: f64,
    pub mean_degree: f64,
    pub known_peers_mean: f64,
    /// Nodes crashed or gone since the start (cumulative).
    pub departed: usize,
    /// With adversaries: share of honest nodes' open links that end at adversaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adversary_link_share: Option<f64>,
    /// With returning users or a sync workload: writes waiting in sync queues, over every node
    /// (live, and offline ones' stored queues).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_pending: Option<usize>,
    /// Mean over live nodes of the share of their `rf` nearest live peers (by XOR) they are
    /// linked to, and the share of live nodes linked to none of them (see
    /// `Collector::neighbourhood_linked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbourhood_linked: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbourhood_unlinked: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub connectivity_min: f64,
    pub connectivity_final: f64,
    pub join_time_p50_s: f64,
    pub join_time_p99_s: f64,
    pub joins_completed: usize,
    pub joins_incomplete: usize,
    pub msgs_per_node_per_s: f64,
    pub bytes_per_node_per_s: f64,
    pub known_peers_mean: f64,
    pub gossip_coverage: f64,
    pub frames_dropped: u64,
    pub bad_frames: u64,
    /// Links whose peer proved its identity in the handshake.
    pub links_authenticated: u64,
    /// Misbehaviour reports (the reputation hook's input), all kinds.
    pub offences: u64,
    /// Of those, `Flood` offences (a link over its inbound budget) against honest peers and
    /// against adversaries.
    #[serde(default)]
    pub flood_offences_honest: u64,
    #[serde(default)]
    pub flood_offences_adversarial: u64,
    /// Nodes the scenario made send broken signatures.
    pub adversaries: usize,
    /// Signed envelopes received from honest senders: accepted, rejected.
    pub envelopes_honest_accepted: u64,
    pub envelopes_honest_rejected: u64,
    /// Signed envelopes received from adversarial senders (all of them invalid): accepted, rejected.
    pub envelopes_invalid_accepted: u64,
    pub envelopes_invalid_rejected: u64,
    /// envelopes_invalid_rejected / all invalid received (target 1.0); null without adversaries.
    pub invalid_rejected_share: Option<f64>,
    /// Reputation against the ground truth (null without adversaries). An adversary is
    /// isolated at the first instant at which at least 90% of the honest nodes that had met a
    /// failure or offence of it so far (leaving out those that left without a verdict) had
    /// graylisted or shunned it; the time runs from the first such failure or offence.
    /// Percentiles over the isolated adversaries.
    #[serde(default)]
    pub isolation_time_p50_s: Option<f64>,
    #[serde(default)]
    pub isolation_time_p90_s: Option<f64>,
    /// The whole-run reading: until 90% of every honest node that met a failure or offence of
    /// it during the whole run (up at the end, or graylisted it before it left) graylisted it.
    /// It waits for the last newcomers that meet a live adversary, so it tracks the adversary's
    /// life more than the swarm's reaction.
    #[serde(default)]
    pub isolation_time_all_dealers_p90_s: Option<f64>,
    /// How fast one honest node graylists an adversary it deals with (see
    /// `simulator::trust::TrustSummary::detection_times_s`).
    #[serde(default)]
    pub detection_time_p50_s: Option<f64>,
    #[serde(default)]
    pub detection_time_p90_s: Option<f64>,
    /// Adversaries some honest node dealt with, and how many of them were isolated.
    #[serde(default)]
    pub adversaries_dealt: Option<usize>,
    #[serde(default)]
    pub adversaries_isolated: Option<usize>,
    /// Share of honest nodes' links that end at adversaries, at the last sample.
    #[serde(default)]
    pub adversary_link_share_final: Option<f64>,
    /// Honest peers graylisted by at least one honest node / honest nodes started.
    #[serde(default)]
    pub false_positive_share: Option<f64>,
    /// Link attempts per live node per simulated hour (each one an ICE + DTLS + SCTP setup and a
    /// handshake on a real node).
    #[serde(default)]
    pub dials_per_node_per_hour: f64,
    /// Median lifetime of a link (as each end saw it; links still open at the end counted up to
    /// the end, links of a crashed node up to its crash).
    #[serde(default)]
    pub link_lifetime_p50_s: f64,
    /// Links closed by a connection manager above its high watermark.
    #[serde(default)]
    pub links_trimmed: u64,
    /// Over the samples after warm-up: the mean of `Sample::neighbourhood_linked` (how much of
    /// its replica-set-sized XOR neighbourhood a live node is linked to), and the largest share
    /// of live nodes linked to none of it.
    #[serde(default)]
    pub neighbourhood_linked_mean: Option<f64>,
    #[serde(default)]
    pub neighbourhood_unlinked_max: Option<f64>,
    /// With NATed nodes (`network.nat_share` > 0): the distinct live peers NATed nodes hold a
    /// supernode link to at the end (null without NAT).
    #[serde(default)]
    pub supernodes: Option<usize>,
    /// Content (null without a content workload). Lowest share of a probe's fetches that
    /// succeeded, over the probes after warm-up; and the last probe's.
    #[serde(default)]
    pub availability_min: Option<f64>,
    #[serde(default)]
    pub availability_final: Option<f64>,
    /// Share of published chunks never lost (some live node held a copy all along). A
    /// publication completes when a second copy is stored (the write is acknowledged); one cut
    /// short by its author's crash before that is counted apart, in `publishes_cut_short`.
    /// Chunks adversaries published are left out (as from the availability probes).
    #[serde(default)]
    pub durability: Option<f64>,
    /// Durability the replication factor alone would give under the scenario's mass failure,
    /// with no repair: 1 - (share crashed)^rf.
    #[serde(default)]
    pub durability_bound_no_repair: Option<f64>,
    #[serde(default)]
    pub fetch_latency_p50_s: Option<f64>,
    #[serde(default)]
    pub fetch_latency_p99_s: Option<f64>,
    /// Share of successful fetches whose bytes came through another node (a routed request or
    /// `GetVia`) rather than straight from a linked holder.
    #[serde(default)]
    pub relayed_share: Option<f64>,
    /// Bytes of replicas stored by repair, per live node per simulated second.
    #[serde(default)]
    pub repair_bytes_per_node_per_s: Option<f64>,
    #[serde(default)]
    pub chunks_published: Option<usize>,
    /// Chunks lost after their publication completed.
    #[serde(default)]
    pub chunks_lost: Option<usize>,
    /// Publications whose author crashed before any other node stored a copy.
    #[serde(default)]
    pub publishes_cut_short: Option<u64>,
    /// Whole files (null without the file workload): publications completed and failed,
    /// probes' whole-file fetches completed and failed, and their latency (root asked to last
    /// piece handed over).
    #[serde(default)]
    pub files_published: Option<usize>,
    #[serde(default)]
    pub file_publishes_failed: Option<u64>,
    #[serde(default)]
    pub file_fetches_ok: Option<u64>,
    #[serde(default)]
    pub file_fetches_failed: Option<u64>,
    #[serde(default)]
    pub file_fetch_latency_p50_s: Option<f64>,
    #[serde(default)]
    pub file_fetch_latency_p99_s: Option<f64>,
    /// Recovery (null without `[recovery]`): owners whose backup started, the share of them
    /// that recovered on a fresh device, its time (recovery asked to key rebuilt), re-shares made,
    /// wrong shares caught (lying holders), recoveries from fewer than the threshold of valid
    /// shares (or to a wrong key), shares released to wrong-passphrase tries, failed backups,
    /// holders crashed with the owners' devices.
    #[serde(default)]
    pub recovery_owners: Option<usize>,
    #[serde(default)]
    pub recovery_success_share: Option<f64>,
    /// Of those, the owners left with at least `threshold` holders at device loss, and the share
    /// of them that recovered (target 1.0: every backup that can be recovered is).
    #[serde(default)]
    pub recovery_owners_recoverable: Option<usize>,
    #[serde(default)]
    pub recovery_success_share_recoverable: Option<f64>,
    #[serde(default)]
    pub recovery_time_p50_s: Option<f64>,
    #[serde(default)]
    pub recovery_time_p99_s: Option<f64>,
    #[serde(default)]
    pub reshares: Option<u64>,
    #[serde(default)]
    pub wrong_shares_detected: Option<u64>,
    #[serde(default)]
    pub recoveries_below_threshold: Option<usize>,
    #[serde(default)]
    pub shares_released_to_wrong_proof: Option<usize>,
    #[serde(default)]
    pub backups_failed: Option<usize>,
    #[serde(default)]
    pub recovery_holders_lost: Option<usize>,
    /// Sync workload (null without `[sync]`; definitions in the README, "Sync workload"):
    /// versions written, acknowledged (by `ack_quorum` replicas), acknowledged and held by no
    /// node at the end (live or offline: target 0), acknowledged and not held by every live
    /// replica at the end; acknowledgement to every live replica holding it; reads that missed
    /// a write acknowledged before they started; conflict-log entries the nodes hold vs the
    /// ground truth's losers; writes queued when their writer went offline, and drained after
    /// it came back; the largest total of pending writes in a sample.
    #[serde(default)]
    pub sync_writes: Option<usize>,
    #[serde(default)]
    pub writes_acknowledged: Option<usize>,
    #[serde(default)]
    pub writes_acknowledged_lost: Option<usize>,
    #[serde(default)]
    pub writes_unconverged_end: Option<usize>,
    #[serde(default)]
    pub convergence_p50_s: Option<f64>,
    #[serde(default)]
    pub convergence_p99_s: Option<f64>,
    #[serde(default)]
    pub convergence_max_s: Option<f64>,
    #[serde(default)]
    pub reads_answered: Option<usize>,
    #[serde(default)]
    pub divergent_read_share: Option<f64>,
    /// From a read's start to its answer (a quorum of replicas answered, or the read's wait ran
    /// out).
    #[serde(default)]
    pub read_latency_p50_s: Option<f64>,
    #[serde(default)]
    pub read_latency_p99_s: Option<f64>,
    #[serde(default)]
    pub conflicts_logged: Option<usize>,
    #[serde(default)]
    pub conflicts_true: Option<usize>,
    #[serde(default)]
    pub queued_writes_returned: Option<usize>,
    #[serde(default)]
    pub queued_writes_drained: Option<usize>,
    #[serde(default)]
    pub queue_drain_p99_s: Option<f64>,
    #[serde(default)]
    pub sync_pending_max: Option<usize>,
    /// Feeds (null without `[feeds]`): posts made; delay from a post to each follower online at
    /// it learning it (p50, p99); the share of followers online at a post, and up through
    /// `reach_window_s`, that learned it within the window.
    #[serde(default)]
    pub feed_posts: Option<usize>,
    #[serde(default)]
    pub announce_delay_p50_s: Option<f64>,
    #[serde(default)]
    pub announce_delay_p99_s: Option<f64>,
    #[serde(default)]
    pub announce_reach_share: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    /// SHA-256 of the delivered-message trace, hex.
    pub digest: String,
    pub nodes: usize,
    pub simulated_s: f64,
    pub wall_s: f64,
    pub messages: u64,
    pub bytes: u64,
    pub churn: serde_json::Value,
    pub notes: Vec<String>,
    pub metrics: Metrics,
    pub samples: Vec<Sample>,
}

/// Top-level keys every report.json carries (the contract readers may rely on).
pub const REQUIRED_KEYS: &[&str] = &["scenario", "seed", "digest", "nodes", "simulated_s", "wall_s", "messages"];
/// Keys of `metrics` every report.json carries.
pub const REQUIRED_METRICS: &[&str] = &[
    "connectivity_min",
    "connectivity_final",
    "join_time_p50_s",
    "join_time_p99_s",
    "msgs_per_node_per_s",
    "bytes_per_node_per_s",
    "dials_per_node_per_hour",
    "link_lifetime_p50_s",
];

/// The required keys a parsed report.json lacks (empty when it honours the contract).
pub fn missing_keys(report: &serde_json::Value) -> Vec<String> {
    let top = REQUIRED_KEYS.iter().filter(|k| report[**k].is_null()).map(|k| k.to_string());
    let metrics =
        REQUIRED_METRICS.iter().filter(|k| !report["metrics"][**k].is_number()).map(|k| format!("metrics.{k}"));
    top.chain(metrics).collect()
}

/// Nearest-rank percentile of sorted values; 0 when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Report {
    /// DIR/report.json, pretty-printed (DIR is created if missing).
    pub fn write_json(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("report.json");
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        Ok(path)
    }

    /// Equal in everything but wall-clock time (what a determinism check compares).
    pub fn same_outcome(&self, other: &Report) -> bool {
        let mut a = self.clone();
        a.wall_s = other.wall_s;
        // A NaN metric is never == itself; compared as JSON (where it is null) two runs that both
        // produced it still agree.
        a == *other || serde_json::to_value(&a).ok() == serde_json::to_value(other).ok()
    }

    pub fn table(&self) -> String {
        /// A metric that may be absent, to `p` decimals.
        fn opt(v: Option<f64>, p: usize) -> String {
            v.map_or_else(|| "n/a".to_string(), |x| format!("{x:.p$}"))
        }
        let m = &self.metrics;
        let rows: Vec<(&str, String)> = vec![
            ("scenario", self.scenario.clone()),
            ("seed", self.seed.to_string()),
            ("nodes (start)", self.nodes.to_string()),
            ("simulated (s)", format!("{:.0}", self.simulated_s)),
            ("wall (s)", format!("{:.2}", self.wall_s)),
            ("messages delivered", self.messages.to_string()),
            ("bytes delivered", self.bytes.to_string()),
            ("connectivity min", format!("{:.4}", m.connectivity_min)),
            ("connectivity final", format!("{:.4}", m.connectivity_final)),
            ("join time p50 (s)", format!("{:.2}", m.join_time_p50_s)),
            ("join time p99 (s)", format!("{:.2}", m.join_time_p99_s)),
            ("joins completed / incomplete", format!("{} / {}", m.joins_completed, m.joins_incomplete)),
            ("msgs per node per s", format!("{:.3}", m.msgs_per_node_per_s)),
            ("bytes per node per s", format!("{:.1}", m.bytes_per_node_per_s)),
            ("known peers (mean)", format!("{:.1}", m.known_peers_mean)),
            ("gossip coverage", format!("{:.3}", m.gossip_coverage)),
            ("frames dropped", m.frames_dropped.to_string()),
            ("bad frames", m.bad_frames.to_string()),
            ("links authenticated", m.links_authenticated.to_string()),
            ("dials per node per hour", format!("{:.1}", m.dials_per_node_per_hour)),
            ("link lifetime p50 (s)", format!("{:.0}", m.link_lifetime_p50_s)),
            ("links trimmed", m.links_trimmed.to_string()),
            ("neighbourhood linked (mean)", opt(m.neighbourhood_linked_mean, 3)),
            ("unlinked from neighbourhood (max)", opt(m.neighbourhood_unlinked_max, 4)),
            ("supernodes", m.supernodes.map_or("n/a (no NAT)".into(), |n| n.to_string())),
            ("offences reported", m.offences.to_string()),
            (
                "flood offences on honest / adv",
                format!("{} / {}", m.flood_offences_honest, m.flood_offences_adversarial),
            ),
            ("adversaries", m.adversaries.to_string()),
            (
                "envelopes honest acc / rej",
                format!("{} / {}", m.envelopes_honest_accepted, m.envelopes_honest_rejected),
            ),
            (
                "envelopes invalid acc / rej",
                format!("{} / {}", m.envelopes_invalid_accepted, m.envelopes_invalid_rejected),
            ),
            (
                "invalid rejected share",
                m.invalid_rejected_share.map_or_else(|| "n/a (no adversaries)".into(), |v| format!("{v:.4}")),
            ),
        ];
        let mut rows = rows;
        if let (Some(dealt), Some(isolated)) = (m.adversaries_dealt, m.adversaries_isolated) {
            rows.push(("adversaries dealt with / isolated", format!("{dealt} / {isolated}")));
            rows.push((
                "isolation time p50 / p90 (s)",
                format!("{} / {}", opt(m.isolation_time_p50_s, 1), opt(m.isolation_time_p90_s, 1)),
            ));
            rows.push(("isolation time, all dealers of the run, p90 (s)", opt(m.isolation_time_all_dealers_p90_s, 1)));
            rows.push((
                "detection time p50 / p90 (s)",
                format!("{} / {}", opt(m.detection_time_p50_s, 1), opt(m.detection_time_p90_s, 1)),
            ));
            rows.push(("adversary link share final", opt(m.adversary_link_share_final, 4)));
            rows.push(("false positive share", opt(m.false_positive_share, 4)));
        }
        if let Some(acked) = m.writes_acknowledged {
            let lost = m.writes_acknowledged_lost.unwrap_or(0);
            rows.push(("writes acknowledged / lost", format!("{acked} / {lost}")));
            rows.push((
                "convergence p50 / p99 (s)",
                format!("{} / {}", opt(m.convergence_p50_s, 2), opt(m.convergence_p99_s, 2)),
            ));
            rows.push(("divergent read share", opt(m.divergent_read_share, 5)));
            rows.push((
                "read latency p50 / p99 (s)",
                format!("{} / {}", opt(m.read_latency_p50_s, 2), opt(m.read_latency_p99_s, 2)),
            ));
            let (logged, truth) = (m.conflicts_logged.unwrap_or(0), m.conflicts_true.unwrap_or(0));
            rows.push(("conflicts logged / true", format!("{logged} / {truth}")));
        }
        if let Some(owners) = m.recovery_owners {
            rows.push(("recovery owners / success share", format!("{owners} / {}", opt(m.recovery_success_share, 4))));
            rows.push((
                "recoverable owners / success share",
                format!(
                    "{} / {}",
                    m.recovery_owners_recoverable.unwrap_or(0),
                    opt(m.recovery_success_share_recoverable, 4)
                ),
            ));
            rows.push((
                "recovery time p50 / p99 (s)",
                format!("{} / {}", opt(m.recovery_time_p50_s, 2), opt(m.recovery_time_p99_s, 2)),
            ));
            rows.push((
                "re-shares / wrong shares detected",
                format!("{} / {}", m.reshares.unwrap_or(0), m.wrong_shares_detected.unwrap_or(0)),
            ));
            rows.push((
                "below threshold / released to wrong proof",
                format!(
                    "{} / {}",
                    m.recoveries_below_threshold.unwrap_or(0),
                    m.shares_released_to_wrong_proof.unwrap_or(0)
                ),
            ));
        }
        if let Some(posts) = m.feed_posts {
            rows.push(("feed posts / reach share", format!("{posts} / {}", opt(m.announce_reach_share, 4))));
            rows.push((
                "announce delay p50 / p99 (s)",
                format!("{} / {}", opt(m.announce_delay_p50_s, 2), opt(m.announce_delay_p99_s, 2)),
            ));
        }
        if let Some(d) = m.durability {
            rows.push((
                "chunks published / cut short / lost",
                format!(
                    "{} / {} / {}",
                    m.chunks_published.unwrap_or(0),
                    m.publishes_cut_short.unwrap_or(0),
                    m.chunks_lost.unwrap_or(0)
                ),
            ));
            rows.push(("durability", format!("{d:.4}")));
            if let Some(b) = m.durability_bound_no_repair {
                rows.push(("durability bound, no repair", format!("{b:.4}")));
            }
            rows.push(("availability min", opt(m.availability_min, 4)));
            rows.push(("availability final", opt(m.availability_final, 4)));
            rows.push((
                "fetch latency p50 / p99 (s)",
                format!("{} / {}", opt(m.fetch_latency_p50_s, 3), opt(m.fetch_latency_p99_s, 3)),
            ));
            rows.push(("relayed share of fetches", opt(m.relayed_share, 3)));
            rows.push(("repair bytes per node per s", opt(m.repair_bytes_per_node_per_s, 1)));
            if let Some(n) = m.files_published {
                rows.push(("files published / failed", format!("{n} / {}", m.file_publishes_failed.unwrap_or(0))));
                rows.push((
                    "file fetches ok / failed",
                    format!("{} / {}", m.file_fetches_ok.unwrap_or(0), m.file_fetches_failed.unwrap_or(0)),
                ));
                rows.push((
                    "file fetch latency p50 / p99 (s)",
                    format!("{} / {}", opt(m.file_fetch_latency_p50_s, 3), opt(m.file_fetch_latency_p99_s, 3)),
                ));
            }
        }
        rows.push(("digest", self.digest.clone()));
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            out.push_str(&format!("{k:<width$}  {v}\n"));
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out
    }

    /// DIR/connectivity.svg: on top, connectivity over simulated time on an axis zoomed to its
    /// range; below, live nodes and cumulative departures (so the churn itself is visible).
    pub fn write_svg(&self, dir: &Path) -> Result<PathBuf, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("connectivity.svg");
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let end = self.simulated_s.max(1.0);
        let lowest = self.samples.iter().map(|s| s.connectivity).fold(1.0f64, f64::min);
        // Zoom to the data, in steps of 0.05, so a dip to 0.99 is visible and not a flat line.
        let floor = ((lowest - 0.01) * 20.0).floor() / 20.0;
        let floor = floor.clamp(0.0, 0.95);
        let top_count = self.samples.iter().map(|s| s.live.max(s.departed)).max().unwrap_or(0).max(self.nodes);
        let top_count = top_count as f64 * 1.05;
        {
            let root = SVGBackend::new(&path, (900, 640)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| err(&e))?;
            let root = root
                .titled(&format!("{} (seed {})", self.scenario, self.seed), ("sans-serif", 22))
                .map_err(|e| err(&e))?;
            let (upper, lower) = root.split_vertically(330);
            let mut c = ChartBuilder::on(&upper)
                .margin(12)
                .x_label_area_size(35)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..end, floor..1.002)
                .map_err(|e| err(&e))?;
            c.configure_mesh().x_desc("simulated time (s)").y_desc("connectivity").draw().map_err(|e| err(&e))?;
            c.draw_series(LineSeries::new(self.samples.iter().map(|s| (s.t_s, s.connectivity)), BLUE.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label("largest connected component / live nodes")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
            c.configure_series_labels()
                .position(SeriesLabelPosition::LowerLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
            let mut c = ChartBuilder::on(&lower)
                .margin(12)
                .x_label_area_size(35)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..end, 0.0..top_count)
                .map_err(|e| err(&e))?;
            c.configure_mesh().x_desc("simulated time (s)").y_desc("nodes").draw().map_err(|e| err(&e))?;
            c.draw_series(LineSeries::new(self.samples.iter().map(|s| (s.t_s, s.live as f64)), RED.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label("live nodes")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
            c.draw_series(LineSeries::new(self.samples.iter().map(|s| (s.t_s, s.departed as f64)), BLACK))
                .map_err(|e| err(&e))?
                .label("departed since start (cumulative)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
            c.configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
            root.present().map_err(|e| err(&e))?;
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn report() -> Report {
        Report {
            scenario: "t".into(),
            seed: 3,
            digest: "ab".repeat(32),
            nodes: 10,
            simulated_s: 100.0,
            wall_s: 0.5,
            messages: 1234,
            bytes: 99_999,
            churn: serde_json::json!({ "model": "none" }),
            notes: vec!["a note".into()],
            metrics: Metrics {
                connectivity_min: 0.99,
                connectivity_final: 1.0,
                join_time_p50_s: 0.2,
                join_time_p99_s: 1.5,
                joins_completed: 10,
                joins_incomplete: 0,
                msgs_per_node_per_s: 0.7,
                bytes_per_node_per_s: 300.0,
                known_peers_mean: 40.0,
                gossip_coverage: 0.5,
                frames_dropped: 4,
                bad_frames: 0,
                links_authenticated: 0,
                offences: 0,
                adversaries: 0,
                envelopes_honest_accepted: 0,
                envelopes_honest_rejected: 0,
                envelopes_invalid_accepted: 0,
                envelopes_invalid_rejected: 0,
                invalid_rejected_share: None,
                ..Metrics::default()
            },
            samples: (0..=10)
                .map(|i| Sample {
                    t_s: f64::from(i) * 10.0,
                    live: 10,
                    connectivity: 1.0 - f64::from(i) / 100.0,
                    mean_degree: 8.0,
                    known_peers_mean: 30.0,
                    departed: i as usize,
                    adversary_link_share: None,
                    sync_pending: None,
                    neighbourhood_linked: Some(0.9),
                    neighbourhood_unlinked: Some(0.01),
                })
                .collect(),
        }
    }

    #[test]
    fn json_has_the_documented_keys_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("swarm-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = report();
        let path = r.write_json(&dir).unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(missing_keys(&v), Vec::<String>::new());
        let mut broken = v.clone();
        broken["metrics"]["join_time_p99_s"] = serde_json::Value::Null;
        assert_eq!(missing_keys(&broken), vec!["metrics.join_time_p99_s".to_string()]);
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let svg = std::fs::read_to_string(r.write_svg(&dir).unwrap()).unwrap();
        assert!(svg.contains("<svg") && (svg.contains("<polyline") || svg.contains("<path")), "no curve in the plot");
        assert!(svg.contains("simulated time"), "axis label missing");
        assert!(svg.contains("t (seed 3)"), "title names the scenario");
        assert!(svg.contains("live nodes") && svg.contains("connectivity"), "series labels missing");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn same_outcome_ignores_wall_time_only() {
        let a = report();
        let mut b = a.clone();
        b.wall_s = 9.0;
        assert!(a.same_outcome(&b));
        b.messages += 1;
        assert!(!a.same_outcome(&b));
    }

    #[test]
    fn table_names_the_headline_figures() {
        let t = report().table();
        assert!(t.contains("connectivity min") && t.contains("0.9900") && t.contains("note: a note"));
        assert!(t.contains("join time p99 (s)") && t.contains("1.50"), "{t}");
        // Aligned: every value starts in the same column.
        let cols: Vec<usize> = t
            .lines()
            .filter(|l| !l.starts_with("note:"))
            .map(|l| l.find("  ").map(|i| i + l[i..].len() - l[i..].trim_start().len()).unwrap_or(0))
            .collect();
        assert!(cols.windows(2).all(|w| w[0] == w[1]), "{t}");
    }

    #[test]
    fn svg_of_a_run_without_samples_is_still_drawn() {
        let dir = std::env::temp_dir().join(format!("swarm-report-empty-{}", std::process::id()));
        let mut r = report();
        r.samples.clear();
        r.simulated_s = 0.0;
        let svg = std::fs::read_to_string(r.write_svg(&dir).unwrap()).unwrap();
        assert!(svg.contains("<svg") && svg.contains("simulated time"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn same_outcome_tolerates_a_shared_nan() {
        let mut a = report();
        a.metrics.gossip_coverage = f64::NAN;
        let mut b = a.clone();
        b.wall_s = 1.0;
        assert!(a.same_outcome(&b));
        b.metrics.gossip_coverage = 0.5;
        assert!(!a.same_outcome(&b));
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(percentile(&v, 25.0), 1.0);
        assert_eq!(percentile(&v, 50.0), 2.0);
        assert_eq!(percentile(&v, 50.1), 3.0);
        assert_eq!(percentile(&v, 99.0), 4.0);
        assert_eq!(percentile(&[7.0], 1.0), 7.0);
    }

    proptest! {
        #[test]
        fn percentile_is_an_element_and_monotone(mut v in prop::collection::vec(0.0f64..1e6, 1..200), p in 0.0f64..100.0, q in 0.0f64..100.0) {
            v.sort_by(f64::total_cmp);
            let (lo, hi) = if p <= q { (p, q) } else { (q, p) };
            let a = percentile(&v, lo);
            prop_assert!(v.contains(&a));
            prop_assert!(a <= percentile(&v, hi));
            prop_assert_eq!(percentile(&v, 100.0), v[v.len() - 1]);
            prop_assert_eq!(percentile(&v, 0.0), v[0]);
        }
    }
}
