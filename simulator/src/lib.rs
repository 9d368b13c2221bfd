//! The swarm simulator: loads a scenario, runs the engine's actors for every node on the
//! deterministic simulated network with churn and partitions, and reports what happened.

pub mod adversary;
pub mod churn;
pub mod collect;
pub mod feeds;
pub mod progress;
pub mod recovery;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sessions;
pub mod sync;
pub mod trust;
