//! Scenario files: TOML describing a population, a network, churn and partitions, plus any node
//! configuration overrides. Validated on load; every error names the file, the field and the fault.

use serde::{Deserialize, Serialize};
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
}

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
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec { latency: Latency::default(), loss: 0.0, connect_timeout_ms: 3000 }
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
    #[error("{file}: {error}")]
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
        let n = &self.network;
        n.latency.validate().map_err(|(f, r)| (format!("network.latency.{f}"), r))?;
        ensure(
            n.loss.is_finite() && (0.0..1.0).contains(&n.loss),
            "network.loss",
            format!("must be within 0..1, got {}", n.loss),
        )?;
        ensure(n.connect_timeout_ms >= 1, "network.connect_timeout_ms", "must be at least 1")?;
        ensure(self.bootstrap.peers >= 1, "bootstrap.peers", "must be at least 1")?;
        match self.churn {
            ChurnSpec::None => {}
            ChurnSpec::Turnover { percent, window_s, start_s, weibull_shape } => {
                percent_ok("churn.percent", percent)?;
                ensure(window_s >= 1, "churn.window_s", "must be at least 1")?;
                ensure(start_s < d, "churn.start_s", format!("must be below duration_s ({d}), got {start_s}"))?;
                ensure(
                    weibull_shape.is_finite() && (0.05..=10.0).contains(&weibull_shape),
                    "churn.weibull_shape",
                    format!("must be within 0.05..=10, got {weibull_shape}"),
                )?;
            }
            ChurnSpec::MassFailure { percent, at_s } => {
                percent_ok("churn.percent", percent)?;
                ensure(at_s < d, "churn.at_s", format!("must be below duration_s ({d}), got {at_s}"))?;
            }
            ChurnSpec::Shrink { percent, window_s, start_s } => {
                percent_ok("churn.percent", percent)?;
                ensure(window_s >= 1, "churn.window_s", "must be at least 1")?;
                ensure(start_s < d, "churn.start_s", format!("must be below duration_s ({d}), got {start_s}"))?;
            }
        }
        for (i, p) in self.partitions.iter().enumerate() {
            ensure(p.at_s < d, &format!("partition[{i}].at_s"), format!("must be below duration_s ({d})"))?;
            ensure(p.heal_s > p.at_s, &format!("partition[{i}].heal_s"), format!("must be after at_s ({})", p.at_s))?;
            ensure(
                p.fraction.is_finite() && p.fraction > 0.0 && p.fraction < 1.0,
                &format!("partition[{i}].fraction"),
                format!("must be strictly between 0 and 1, got {}", p.fraction),
            )?;
        }
        self.node.validate().map_err(|e| (format!("node.{}", e.field), e.reason))?;
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
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 3, "expected the shipped scenarios, found {n}");
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
        let e = err(&format!("{MIN}[node.discovery]\ntarget_connections = 8\nmax_connections = 4\n"));
        assert!(e.contains("node.discovery.max_connections"), "{e}");
        let e = err(&format!("{MIN}colour = \"blue\"\n"));
        assert!(e.contains("bad.toml") && e.contains("colour"), "{e}");
        let e = err(&format!("{MIN}[[partition]]\nat_s = 100\nheal_s = 50\nfraction = 0.3\n"));
        assert!(e.contains("partition[0].heal_s"), "{e}");
        let e = err("name = \"t\"\nnodes = -3\nduration_s = 600\n");
        assert!(e.contains("bad.toml") && e.contains("nodes"), "{e}");
    }

    #[test]
    fn missing_file_is_named() {
        let e = load(Path::new("no/such/scenario.toml")).unwrap_err().to_string();
        assert!(e.contains("no/such/scenario.toml"), "{e}");
    }
}
