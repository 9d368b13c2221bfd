//! Simulator-level sync tests (`[sync]` with `sessions` churn): shared records written by three
//! writers while half of the population comes and goes with its identity and store. They assert
//! the issue's invariants on a fixed seed: no acknowledged write lost, the conflict log equal to
//! the ground truth, convergence bounded, writes queued by a writer that went offline drained
//! after it came back, and reads that do not miss acknowledged writes.

use swarm_simulator::run::{run, RunOptions};
use swarm_simulator::scenario::{parse, Scenario};

fn scenario(text: &str) -> Scenario {
    parse(text, "test scenario").expect("test scenario must be valid")
}

/// 150 nodes, 15 simulated minutes, half offline at a time (mean online 3 minutes); 30 records
/// written 60 times an hour each. (Seed 4: once writes were acknowledged faster, seed 3's run
/// had no writer go offline with a write still queued, and the drain went unexercised.)
const SESSIONS_150: &str = r#"
name = "sync-sessions-150"
nodes = 150
duration_s = 900
seed = 4
[network]
latency = { dist = "lognormal", median_ms = 40, sigma = 0.5 }
[churn]
model = "sessions"
offline_share = 0.5
mean_online_s = 180
weibull_shape = 0.5
start_s = 60
[sync]
records = 30
writes_per_record_per_hour = 60
reads_per_hour = 3600
start_s = 90
quiet_s = 120
[node.sync]
max_versions_per_record = 128
"#;

#[test]
fn acknowledged_writes_survive_returning_users_and_conflicts_match_the_truth() {
    let sc = scenario(SESSIONS_150);
    let r = run(&sc, RunOptions { progress: false }).unwrap();
    let m = &r.metrics;
    let notes = &r.notes;
    // Half the population is offline on average, as scheduled.
    let share = r.churn["offline_share_scheduled"].as_f64().unwrap();
    assert!((0.35..0.65).contains(&share), "offline share {share}");
    let acked = m.writes_acknowledged.unwrap();
    assert!(acked >= 200, "too few acknowledged writes to say anything: {acked} {notes:?}");
    assert_eq!(m.writes_acknowledged_lost, Some(0), "{notes:?}");
    assert_eq!(m.writes_unconverged_end, Some(0), "{notes:?}");
    assert!(m.conflicts_true.unwrap() > 0, "three writers and partitions make true conflicts: {notes:?}");
    assert_eq!(m.conflicts_logged, m.conflicts_true, "{notes:?}");
    // The issue's target is 30 s at 1,000 nodes; this small, faster-churning swarm is held to
    // twice that (BENCHMARKS.md has the measured figures).
    let p99 = m.convergence_p99_s.unwrap();
    assert!(p99 <= 60.0, "convergence p99 {p99} s: {notes:?}");
    // Writers went offline with writes in their queue and came back with them: the queue drained.
    let returned = m.queued_writes_returned.unwrap();
    assert!(returned >= 1, "no writer left with pending writes: {notes:?}");
    assert_eq!(m.queued_writes_drained, Some(returned), "{notes:?}");
    assert!(m.sync_pending_max.unwrap() >= 1);
    assert!(m.reads_answered.unwrap() >= 300);
    // Target 0.1% (not met yet: see BENCHMARKS.md); a regression past 2% fails here.
    assert!(m.divergent_read_share.unwrap() <= 0.02, "divergent reads {:?}: {notes:?}", m.divergent_read_share);
    // Reproducible, the workload and the sessions included.
    let again = run(&sc, RunOptions { progress: false }).unwrap();
    assert_eq!(r.digest, again.digest);
    assert!(r.same_outcome(&again));
}
