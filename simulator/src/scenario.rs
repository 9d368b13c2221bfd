//! Scenario files: TOML describing a population, a network, churn and partitions, plus any node
//! configuration overrides. Validated on load; every error names the file, the field and the fault.

use serde::{Deserialize, Serialize};

pub use crate::adversary::{AdversarySpec, ContentAdversary};
use std::path::Path;
use swarm_engine::NodeConfig;
use swarm_transport_sim::Latency;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Starting population.
    pub nodes: usize,
    /// Simulated duration.
    pub duration_s: u64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default = "default_sample_interval_s")]
    pub sample_interval_s: u64,
    /// `connectivity_min` ignores samples before this time (the swarm is still forming).
    #[serde(default = "default_warmup_s")]
    pub warmup_s: u64,
    /// A node has joined when it holds this many connections.
    #[serde(default = "default_join_k")]
    pub join_k: usize,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub bootstrap: BootstrapSpec,
    #[serde(default)]
    pub churn: ChurnSpec,
    #[serde(default, rename = "partition")]
    pub partitions: Vec<PartitionSpec>,
    #[serde(default)]
    pub node: NodeConfig,
    #[serde(default)]
    pub adversary: AdversarySpec,
    #[serde(default)]
    pub content: ContentSpec,
    #[serde(default)]
    pub recovery: crate::recovery::RecoverySpec,
    #[serde(default)]
    pub sync: crate::sync::SyncSpec,
    #[serde(default)]
    pub feeds: crate::feeds::FeedsSpec,
}

/// The content workload: nodes publish chunks, and probes fetch published chunks from random
/// live nodes to measure availability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContentSpec {
    /// Chunks published per live node per hour (0: no content workload). Publishing runs from
    /// `warmup_s` until a minute before the end.
    pub publishes_per_node_per_hour: f64,
    /// Chunk sizes, drawn uniformly within these bounds (bytes).
    pub chunk_bytes_min: usize,
    pub chunk_bytes_max: usize,
    /// An availability probe every this long (the first after warm-up, the last leaving time for
    /// its fetches to finish before the end).
    pub probe_interval_s: u64,
    /// Published chunks one probe fetches, each from a random live node.
    pub probe_fetches: usize,
    /// Probes fetch only chunks published at least this long before (a publication completes
    /// once its replicas are placed, which takes a lookup and a transfer).
    pub probe_min_age_s: u64,
    /// Whole files instead of bare chunks (both 0: off). Each publication is a file of a size
    /// drawn uniformly within these bounds (bytes), published through the files actor as on a
    /// real node: cut into 256 KiB encrypted chunks, manifest sealed into a root stored last.
    /// Chunk probes then fetch the files' chunks, and file probes fetch whole files.
    pub file_bytes_min: usize,
    pub file_bytes_max: usize,
    /// Published files one probe fetches whole (root, then every chunk, in order), each from
    /// a random live node.
    pub probe_files: usize,
}

impl Default for ContentSpec {
    fn default() -> Self {
        ContentSpec {
            publishes_per_node_per_hour: 0.0,
            chunk_bytes_min: 4096,
            chunk_bytes_max: 16384,
            probe_interval_s: 300,
            probe_fetches: 200,
            probe_min_age_s: 30,
            file_bytes_min: 0,
            file_bytes_max: 0,
            probe_files: 20,
        }
    }
}

impl ContentSpec {
    pub fn enabled(&self) -> bool {
        self.publishes_per_node_per_hour > 0.0
    }

    /// Whether publications are whole files.
    pub fn files(&self) -> bool {
        self.file_bytes_max > 0
    }
}

/// Largest file the file workload publishes: every node's store is in memory.
pub const MAX_FILE_BYTES: usize = 64 << 20;

fn default_seed() -> u64 {
    1
}
fn default_sample_interval_s() -> u64 {
    10
}
fn default_warmup_s() -> u64 {
    60
}
fn default_join_k() -> usize {
    8
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSpec {
    pub latency: Latency,
    /// Probability that a frame is lost.
    pub loss: f64,
    pub connect_timeout_ms: u64,
    /// Share of nodes behind a NAT, drawn at every start and join: two NATed nodes cannot link
    /// (the dial fails at `connect_timeout_ms`), and a NATed node runs with
    /// `topology.reachable = false` (it keeps links to supernodes).
    pub nat_share: f64,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec { latency: Latency::default(), loss: 0.0, connect_timeout_ms: 3000, nat_share: 0.0 }
    }
}

/// What a starting node knows: a rendezvous point's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapSpec {
    /// Peers a node learns from the rendezvous point when it starts.
    pub peers: usize,
    /// A crashed node stays listed this long (its registration has not expired yet).
    pub rendezvous_ttl_s: u64,
}

impl Default for BootstrapSpec {
    fn default() -> Self {
        BootstrapSpec { peers: 8, rendezvous_ttl_s: 300 }
    }
}

/// Churn models of DESIGN.md section 7.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChurnSpec {
    #[default]
    None,
    /// `percent` of the starting population crashes over `window_s` (Weibull session lengths),
    /// each replaced at once by a new node.
    Turnover {
        percent: f64,
        window_s: u64,
        #[serde(default)]
        start_s: u64,
        #[serde(default = "default_weibull_shape")]
        weibull_shape: f64,
    },
    /// `percent` of the nodes crash at `at_s`; nobody replaces them.
    MassFailure { percent: f64, at_s: u64 },
    /// Returning users: nodes go offline and come back with the same identity and store;
    /// `offline_share` of them offline at a time on average, online periods of mean
    /// `mean_online_s`, both period lengths Weibull of `weibull_shape` (see `crate::sessions`).
    Sessions {
        offline_share: f64,
        #[serde(default = "default_mean_online_s")]
        mean_online_s: u64,
        #[serde(default = "default_weibull_shape")]
        weibull_shape: f64,
        #[serde(default)]
        start_s: u64,
    },
    /// `percent` of the nodes leave at random times within the window; nobody replaces them.
    Shrink {
        percent: f64,
        window_s: u64,
        #[serde(default)]
        start_s: u64,
    },
}

fn default_weibull_shape() -> f64 {
    0.5
}

fn default_mean_online_s() -> u64 {
    600 // guess: a ten-minute visit
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    pub at_s: u64,
    pub heal_s: u64,
    /// Share of the live nodes cut off on the far side.
    pub fraction: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    // Not `source`: the message already carries the cause, and callers printing the chain
    // (anyhow's `{:#}`) would repeat it.
    #[error("{file}: cannot read: {error}")]
    Io { file: String, error: std::io::Error },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: invalid value for `{field}`: {reason}")]
    Invalid { file: String, field: String, reason: String },
}

pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ScenarioError::Io { file: file.clone(), error })?;
    parse(&text, &file)
}

pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    let sc: Scenario =
        toml::from_str(text).map_err(|e| ScenarioError::Parse { file: file.to_string(), message: e.to_string() })?;
    sc.validate().map_err(|(field, reason)| ScenarioError::Invalid { file: file.to_string(), field, reason })?;
    Ok(sc)
}

type Check = Result<(), (String, String)>;

fn ensure(ok: bool, field: &str, reason: impl Into<String>) -> Check {
    if ok {
        Ok(())
    } else {
        Err((field.to_string(), reason.into()))
    }
}

fn percent_ok(field: &str, p: f64) -> Check {
    ensure(p.is_finite() && (0.0..=100.0).contains(&p), field, format!("must be within 0..=100, got {p}"))
}

/// A churn window must end by the end of the run: the departures it promises (calibrated for
/// turnover, exact for shrink) would otherwise silently not all happen.
fn window_ok(start_s: u64, window_s: u64, duration_s: u64) -> Check {
    ensure(window_s >= 1, "churn.window_s", "must be at least 1")?;
    ensure(start_s < duration_s, "churn.start_s", format!("must be below duration_s ({duration_s}), got {start_s}"))?;
    ensure(
        start_s.saturating_add(window_s) <= duration_s,
        "churn.window_s",
        format!("start_s + window_s must not exceed duration_s ({duration_s}), got {start_s} + {window_s}"),
    )
}

/// Largest population the simulator accepts.
pub const MAX_NODES: usize = 100_000;
/// Longest simulated duration accepted (a week).
pub const MAX_DURATION_S: u64 = 7 * 24 * 3600;

impl Scenario {
    /// Check every field; the error is (dotted field name, what is wrong).
    pub fn validate(&self) -> Check {
        let d = self.duration_s;
        ensure(!self.name.trim().is_empty(), "name", "must not be empty")?;
        ensure(
            (2..=MAX_NODES).contains(&self.nodes),
            "nodes",
            format!("must be within 2..={MAX_NODES}, got {}", self.nodes),
        )?;
        ensure(
            (1..=MAX_DURATION_S).contains(&d),
            "duration_s",
            format!("must be within 1..={MAX_DURATION_S}, got {d}"),
        )?;
        ensure(self.sample_interval_s >= 1, "sample_interval_s", "must be at least 1")?;
        ensure(self.warmup_s < d, "warmup_s", format!("must be below duration_s ({d}), got {}", self.warmup_s))?;
        ensure(self.join_k >= 1, "join_k", "must be at least 1")?;
        // connectivity_min is taken over samples at or after warm-up: there must be one.
        let iv = self.sample_interval_s;
        ensure(
            self.warmup_s.div_ceil(iv).saturating_mul(iv) <= d,
            "sample_interval_s",
            format!("no sample would fall within warmup_s..=duration_s ({}..={d}) every {iv} s", self.warmup_s),
        )?;
        let n = &self.network;
        n.latency.validate().map_err(|(f, r)| (format!("network.latency.{f}"), r))?;
        ensure(
            n.loss.is_finite() && (0.0..1.0).contains(&n.loss),
            "network.loss",
            format!("must be within 0..1, got {}", n.loss),
        )?;
        ensure(n.connect_timeout_ms >= 1, "network.connect_timeout_ms", "must be at least 1")?;
        ensure(
            n.nat_share.is_finite() && (0.0..=1.0).contains(&n.nat_share),
            "network.nat_share",
            format!("must be a share within 0..=1, got {}", n.nat_share),
        )?;
        ensure(self.bootstrap.peers >= 1, "bootstrap.peers", "must be at least 1")?;
        let bad = self.adversary.invalid_signatures;
        ensure(
            bad.is_finite() && (0.0..=1.0).contains(&bad),
            "adversary.invalid_signatures",
            format!("must be a share within 0..=1, got {bad}"),
        )?;
        let mut sum = 0.0;
        let mut kinds = Vec::new();
        for (kind, share) in self.adversary.content_shares() {
            kinds.push(kind.name());
            ensure(
                share.is_finite() && (0.0..=1.0).contains(&share),
                &format!("adversary.{}", kind.name()),
                format!("must be a share within 0..=1, got {share}"),
            )?;
            sum += share;
        }
        ensure(sum <= 1.0, "adversary", format!("{} must be at most 1, got {sum}", kinds.join(" + ")))?;
        ensure(self.adversary.sybil_ids >= 1, "adversary.sybil_ids", "must be at least 1")?;
        let c = &self.content;
        ensure(
            c.publishes_per_node_per_hour.is_finite() && (0.0..=3600.0).contains(&c.publishes_per_node_per_hour),
            "content.publishes_per_node_per_hour",
            format!("must be within 0..=3600, got {}", c.publishes_per_node_per_hour),
        )?;
        let max = swarm_engine::content::MAX_CHUNK_BYTES;
        ensure(
            (1..=max).contains(&c.chunk_bytes_min),
            "content.chunk_bytes_min",
            format!("must be within 1..={max}, got {}", c.chunk_bytes_min),
        )?;
        ensure(
            (c.chunk_bytes_min..=max).contains(&c.chunk_bytes_max),
            "content.chunk_bytes_max",
            format!(
                "must be within chunk_bytes_min..={max} ({}..={max}), got {}",
                c.chunk_bytes_min, c.chunk_bytes_max
            ),
        )?;
        if c.file_bytes_min > 0 || c.file_bytes_max > 0 {
            ensure(
                (1..=MAX_FILE_BYTES).contains(&c.file_bytes_min),
                "content.file_bytes_min",
                format!("must be within 1..={MAX_FILE_BYTES} when files are on, got {}", c.file_bytes_min),
            )?;
            ensure(
                (c.file_bytes_min..=MAX_FILE_BYTES).contains(&c.file_bytes_max),
                "content.file_bytes_max",
                format!(
                    "must be within file_bytes_min..={MAX_FILE_BYTES} ({}..={MAX_FILE_BYTES}), got {}",
                    c.file_bytes_min, c.file_bytes_max
                ),
            )?;
            ensure(c.probe_files >= 1, "content.probe_files", "must be at least 1 when files are on")?;
            ensure(
                c.enabled(),
                "content.publishes_per_node_per_hour",
                "must be above 0 when files are on (nothing would be published)",
            )?;
        }
        ensure(c.probe_interval_s >= 1, "content.probe_interval_s", "must be at least 1")?;
        ensure(c.probe_fetches >= 1, "content.probe_fetches", "must be at least 1")?;
        if c.enabled() {
            let room = self.node.replication.fetch_timeout_ms / 1000 + 5;
            ensure(
                self.warmup_s + c.probe_interval_s + room <= d,
                "content.probe_interval_s",
                format!(
                    "no probe fits: warmup_s + probe_interval_s + fetch time ({room} s) must not exceed duration_s ({d})"
                ),
            )?;
        }
        match self.churn {
            ChurnSpec::None => {}
            ChurnSpec::Turnover { percent, window_s, start_s, weibull_shape } => {
                percent_ok("churn.percent", percent)?;
                window_ok(start_s, window_s, d)?;
                ensure(
                    weibull_shape.is_finite() && (0.05..=10.0).contains(&weibull_shape),
                    "churn.weibull_shape",
                    format!("must be within 0.05..=10, got {weibull_shape}"),
                )?;
            }
            ChurnSpec::Sessions { offline_share, mean_online_s, weibull_shape, start_s } => {
                let p = crate::sessions::SessionsParams { offline_share, mean_online_s, weibull_shape, start_s };
                p.validate(d)?;
            }
            ChurnSpec::MassFailure { percent, at_s } => {
                percent_ok("churn.percent", percent)?;
                ensure(at_s < d, "churn.at_s", format!("must be below duration_s ({d}), got {at_s}"))?;
            }
            ChurnSpec::Shrink { percent, window_s, start_s } => {
                percent_ok("churn.percent", percent)?;
                window_ok(start_s, window_s, d)?;
            }
        }
        for (i, p) in self.partitions.iter().enumerate() {
            // The network holds one cut at a time (a heal rejoins every side), so cuts must not overlap.
            if let Some(prev) = i.checked_sub(1).map(|j| &self.partitions[j]) {
                ensure(
                    p.at_s >= prev.heal_s,
                    &format!("partition[{i}].at_s"),
                    format!(
                        "must not be before partition[{}].heal_s ({}): partitions run one at a time, in order",
                        i - 1,
                        prev.heal_s
                    ),
                )?;
            }
            ensure(
                p.at_s < d,
                &format!("partition[{i}].at_s"),
                format!("must be below duration_s ({d}), got {}", p.at_s),
            )?;
            ensure(
                p.heal_s > p.at_s,
                &format!("partition[{i}].heal_s"),
                format!("must be after at_s ({}), got {}", p.at_s, p.heal_s),
            )?;
            ensure(
                p.fraction.is_finite() && p.fraction > 0.0 && p.fraction < 1.0,
                &format!("partition[{i}].fraction"),
                format!("must be strictly between 0 and 1, got {}", p.fraction),
            )?;
        }
        self.node.validate().map_err(|e| (format!("node.{}", e.field), e.reason))?;
        self.recovery.validate(d)?;
        self.sync.validate(self.nodes, d)?;
        self.feeds.validate(self.nodes, d, self.warmup_s)?;
        // Checked after the node section so a bad node config is reported as itself.
        let max_conn = self.node.links.max_connections;
        ensure(
            self.join_k <= max_conn,
            "join_k",
            format!("must not exceed node.links.max_connections ({max_conn}), got {}: no node could join", self.join_k),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "name = \"t\"\nnodes = 10\nduration_s = 600\n";

    fn err(text: &str) -> String {
        parse(text, "bad.toml").unwrap_err().to_string()
    }

    #[test]
    fn every_shipped_scenario_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let sc = load(&path).unwrap_or_else(|e| panic!("{e}"));
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
                assert_eq!(sc.name, stem, "{}: the name should match the file", path.display());
                names.push(stem);
            }
        }
        names.sort();
        for want in ["churn-50", "mass-failure-50", "partition", "shrink-50", "smoke"] {
            assert!(names.iter().any(|n| n == want), "scenarios/{want}.toml missing: {names:?}");
        }
        let headline = load(&dir.join("churn-50.toml")).unwrap();
        assert_eq!((headline.nodes, headline.duration_s), (1000, 3660));
        assert_eq!(
            headline.churn,
            ChurnSpec::Turnover { percent: 50.0, window_s: 3600, start_s: 60, weibull_shape: 0.5 }
        );
    }

    #[test]
    fn defaults_fill_a_minimal_file() {
        let sc = parse(MIN, "min.toml").unwrap();
        assert_eq!((sc.seed, sc.sample_interval_s, sc.join_k, sc.bootstrap.peers), (1, 10, 8, 8));
        assert_eq!(sc.churn, ChurnSpec::None);
        assert_eq!(sc.node, NodeConfig::default());
    }

    #[test]
    fn errors_name_file_field_and_fault() {
        let e = err(&format!("{MIN}[churn]\nmodel = \"turnover\"\npercent = 150\nwindow_s = 60\n"));
        assert!(e.contains("bad.toml") && e.contains("churn.percent") && e.contains("150"), "{e}");
        let e = err("name = \"t\"\nnodes = 0\nduration_s = 600\n");
        assert!(e.contains("`nodes`"), "{e}");
        let e = err(&format!("{MIN}[network]\nlatency = {{ dist = \"lognormal\", median_ms = 40, sigma = 9 }}\n"));
        assert!(e.contains("network.latency.sigma"), "{e}");
        let e = err(&format!("{MIN}[node.links]\nhigh_watermark = 16\ntrim_to = 12\nmax_connections = 4\n"));
        assert!(e.contains("node.links.max_connections"), "{e}");
        let e = err(&format!("{MIN}colour = \"blue\"\n"));
        assert!(e.contains("bad.toml") && e.contains("colour"), "{e}");
        let e = err(&format!("{MIN}[[partition]]\nat_s = 100\nheal_s = 50\nfraction = 0.3\n"));
        assert!(e.contains("partition[0].heal_s"), "{e}");
        let e = err("name = \"t\"\nnodes = -3\nduration_s = 600\n");
        assert!(e.contains("bad.toml") && e.contains("nodes"), "{e}");
    }

    #[test]
    fn the_file_workload_is_off_by_default_and_checked_when_on() {
        let sc = parse(MIN, "min.toml").unwrap();
        assert!(!sc.content.files());
        let on = |extra: &str| format!("{MIN}[content]\npublishes_per_node_per_hour = 2\n{extra}");
        let sc = parse(&on("file_bytes_min = 1000\nfile_bytes_max = 2000\n"), "ok.toml").unwrap();
        assert!(sc.content.files());
        let e = err(&on("file_bytes_min = 3000\nfile_bytes_max = 2000\n"));
        assert!(e.contains("`content.file_bytes_max`") && e.contains("3000..="), "{e}");
        let e = err(&on("file_bytes_max = 2000\n"));
        assert!(e.contains("`content.file_bytes_min`"), "{e}");
        let e = err(&on("file_bytes_min = 1\nfile_bytes_max = 2\nprobe_files = 0\n"));
        assert!(e.contains("`content.probe_files`"), "{e}");
        let e = err(&format!("{MIN}[content]\nfile_bytes_min = 1\nfile_bytes_max = 2\n"));
        assert!(e.contains("`content.publishes_per_node_per_hour`"), "{e}");
        let e = err(&on("file_bytes_min = 1\nfile_bytes_max = 1000000000\n"));
        assert!(e.contains("`content.file_bytes_max`"), "{e}");
    }

    #[test]
    fn unknown_keys_in_sections_are_named() {
        let e = err(&format!("{MIN}[churn]\nmodel = \"shrink\"\npercent = 10\nwindow_s = 60\nspeed = 2\n"));
        assert!(e.contains("bad.toml") && e.contains("speed"), "{e}");
        let e = err(&format!("{MIN}[churn]\nmodel = \"meteor\"\n"));
        assert!(e.contains("bad.toml") && e.contains("meteor"), "{e}");
        let e = err(&format!("{MIN}[node.discovery]\nmax_conns = 4\n"));
        assert!(e.contains("bad.toml") && e.contains("max_conns"), "{e}");
        let e = err(&format!("{MIN}[network]\nlatency = {{ dist = \"constant\", ms = 5, jitter = 1 }}\n"));
        assert!(e.contains("bad.toml") && e.contains("jitter"), "{e}");
    }

    #[test]
    fn times_must_fit_the_run() {
        let e = err(&format!("{MIN}[churn]\nmodel = \"shrink\"\npercent = 10\nwindow_s = 600\nstart_s = 60\n"));
        assert!(e.contains("`churn.window_s`") && e.contains("60 + 600"), "{e}");
        let e = err(&format!("{MIN}[churn]\nmodel = \"turnover\"\npercent = 10\nwindow_s = 60\nstart_s = 600\n"));
        assert!(e.contains("`churn.start_s`"), "{e}");
        let e = err(&format!("{MIN}[churn]\nmodel = \"mass_failure\"\npercent = 10\nat_s = 900\n"));
        assert!(e.contains("`churn.at_s`") && e.contains("900"), "{e}");
        let e = err(&format!("{MIN}[churn]\nmodel = \"turnover\"\npercent = 10\nwindow_s = 60\nweibull_shape = 0\n"));
        assert!(e.contains("`churn.weibull_shape`"), "{e}");
        let e = err("name = \"t\"\nnodes = 10\nduration_s = 100\nwarmup_s = 61\nsample_interval_s = 60\n");
        assert!(e.contains("`sample_interval_s`"), "{e}");
        // A window ending exactly at the end of the run is fine.
        parse(&format!("{MIN}[churn]\nmodel = \"shrink\"\npercent = 10\nwindow_s = 540\nstart_s = 60\n"), "ok.toml")
            .unwrap();
    }

    #[test]
    fn partitions_run_one_at_a_time() {
        let two = |second_at: u64| {
            format!(
                "{MIN}[[partition]]\nat_s = 100\nheal_s = 200\nfraction = 0.3\n\
                 [[partition]]\nat_s = {second_at}\nheal_s = 400\nfraction = 0.5\n"
            )
        };
        let e = err(&two(150));
        assert!(e.contains("`partition[1].at_s`") && e.contains("partition[0].heal_s (200)"), "{e}");
        let sc = parse(&two(200), "ok.toml").unwrap();
        assert_eq!(sc.partitions.len(), 2);
        assert_eq!(sc.partitions[1].fraction, 0.5);
    }

    #[test]
    fn join_k_must_be_reachable() {
        let e =
            err(&format!("{MIN}join_k = 20\n[node.links]\nhigh_watermark = 16\ntrim_to = 12\nmax_connections = 16\n"));
        assert!(e.contains("`join_k`") && e.contains("max_connections (16)"), "{e}");
        let e = err(&format!("{MIN}join_k = 50\n"));
        assert!(e.contains("max_connections (48)"), "the default cap: {e}");
        let sc = parse(
            &format!("{MIN}join_k = 20\n[node.links]\nhigh_watermark = 24\ntrim_to = 20\nmax_connections = 24\n"),
            "ok.toml",
        )
        .unwrap();
        assert_eq!(sc.join_k, 20);
    }

    #[test]
    fn missing_file_is_named() {
        let e = load(Path::new("no/such/scenario.toml")).unwrap_err();
        assert!(matches!(&e, ScenarioError::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound));
        let shown = e.to_string();
        assert!(shown.contains("no/such/scenario.toml"), "{shown}");
        assert_eq!(shown.matches("os error").count(), 1, "cause printed once: {shown}");
    }
}
