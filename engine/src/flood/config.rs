//! The flood section of the node configuration (`[node.flood]`): each link's inbound budgets,
//! with defaults taken from what honest traffic was measured to peak at, validated with errors
//! that name the field.

use crate::config::{check, ConfigError};
use serde::{Deserialize, Serialize};

/// How much a link may bring (see [`crate::flood`]). A budget is a token bucket: up to its burst
/// at once, refilled at its rate. The defaults hold at least twice the highest load one link
/// was measured to carry in any window from 1 s to 10 min (`churn-50`, `content-churn-50`, and
/// `adversaries-20` at 300 nodes: honest code under every condition the simulator makes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FloodConfig {
    /// Rumours of its own (signed by the link's peer) a link may bring at once. Rumours the
    /// peer relays for others are not counted: each was counted on the link it entered by.
    pub max_rumors_burst: u32,
    /// The rate the rumour budget refills at.
    pub rumors_per_min: u32,
    /// Requests a link may bring at once: lookup questions (direct or relayed, at any hop),
    /// routed requests, chunk requests, peer-exchange requests.
    pub max_requests_burst: u32,
    /// The rate the request budget refills at.
    pub requests_per_min: u32,
    /// A link over its budget is reported at most once per this long (one burst is one
    /// offence, not one per frame dropped).
    pub report_interval_ms: u64,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            // measured: at most 3 own rumours in 1 s and 4 in any minute on one link (the round's
            // announcement, warnings on link-up and on each graylisting)...
            max_rumors_burst: 20,
            // ...and 10 in 5 min, 15 in 10 min (one announcement a minute): the bucket allows 50
            // and 80.
            rumors_per_min: 6,
            // measured: at most 249 in 1 s, 318 in 10 s on one link: a repair round's replica-set
            // lookups, funnelled through the few links of a node most peers refuse (a node with
            // its usual links: 59 in 1 s)...
            max_requests_burst: 600,
            // ...and 369 in 1 min, 1,041 in 5 min, 1,529 in 10 min: the bucket allows 1,200,
            // 3,600 and 6,600.
            requests_per_min: 600,
            // guess: a flood kept up for 2-4 min takes a peer in good standing to the graylist
            // (reputation.violation_weight 10 an offence, graylist at -50).
            report_interval_ms: 30_000,
        }
    }
}

impl FloodConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(self.max_rumors_burst >= 1, "flood.max_rumors_burst", "must be at least 1")?;
        check(self.rumors_per_min >= 1, "flood.rumors_per_min", "must be at least 1")?;
        check(self.max_requests_burst >= 1, "flood.max_requests_burst", "must be at least 1")?;
        check(self.requests_per_min >= 1, "flood.requests_per_min", "must be at least 1")?;
        check(self.report_interval_ms >= 1_000, "flood.report_interval_ms", "must be at least 1000 ms")?;
        Ok(())
    }
}
