//! Link latency models of the simulated network, sampled from the network's seeded RNG.

use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use serde::{Deserialize, Serialize};

/// One-way latency distribution. In TOML: `{ dist = "lognormal", median_ms = 40, sigma = 0.5 }`,
/// `{ dist = "uniform", min_ms = 10, max_ms = 80 }` or `{ dist = "constant", ms = 25 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum Latency {
    Constant { ms: f64 },
    Uniform { min_ms: f64, max_ms: f64 },
    Lognormal { median_ms: f64, sigma: f64 },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Lognormal { median_ms: 40.0, sigma: 0.5 }
    }
}

/// Longest one-way latency any model may produce (a sample past it is clamped).
pub const MAX_LATENCY_MS: f64 = 10_000.0;

impl Latency {
    /// Check parameters; the error names the offending field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let finite_pos = |v: f64| v.is_finite() && v >= 0.0;
        match *self {
            Latency::Constant { ms } if !finite_pos(ms) => Err(("ms", format!("must be >= 0, got {ms}"))),
            Latency::Uniform { min_ms, .. } if !finite_pos(min_ms) => {
                Err(("min_ms", format!("must be >= 0, got {min_ms}")))
            }
            Latency::Uniform { min_ms, max_ms } if !(max_ms.is_finite() && max_ms >= min_ms) => {
                Err(("max_ms", format!("must be >= min_ms ({min_ms}), got {max_ms}")))
            }
            Latency::Lognormal { median_ms, .. } if !(median_ms.is_finite() && median_ms > 0.0) => {
                Err(("median_ms", format!("must be > 0, got {median_ms}")))
            }
            Latency::Lognormal { sigma, .. } if !(sigma.is_finite() && (0.0..=3.0).contains(&sigma)) => {
                Err(("sigma", format!("must be within 0..=3, got {sigma}")))
            }
            _ => Ok(()),
        }
    }

    /// One sample in microseconds.
    pub fn sample_us<R: Rng>(&self, rng: &mut R) -> u64 {
        let ms = match *self {
            Latency::Constant { ms } => ms,
            Latency::Uniform { min_ms, max_ms } => {
                if max_ms > min_ms {
                    rng.gen_range(min_ms..max_ms)
                } else {
                    min_ms
                }
            }
            Latency::Lognormal { median_ms, sigma } => match LogNormal::new(median_ms.ln(), sigma) {
                Ok(d) => d.sample(rng),
                Err(_) => median_ms,
            },
        };
        (ms.clamp(0.0, MAX_LATENCY_MS) * 1000.0) as u64
    }
}
