//! Simulator-level recovery tests (`[recovery]`): owners back up, the swarm churns, owners lose
//! their devices and recover on fresh nodes from the user id and the passphrase alone. They
//! assert the issue's invariants on fixed seeds: no key from fewer than `threshold` valid shares,
//! no share to a wrong passphrase, every owner left with `threshold` holders recovers, re-shares
//! replace churned holders, and lying holders are caught and reported.

use swarm_simulator::run::{run, RunOptions};
use swarm_simulator::scenario::{parse, Scenario};

fn scenario(text: &str) -> Scenario {
    parse(text, "test scenario").expect("test scenario must be valid")
}

/// 120 nodes, 50% turnover over 20 minutes; 15 owners back up at 60 s, lose their devices (and
/// up to 2 holders each) at 1260 s, recover 20 s later. Holders unseen for 2 minutes are replaced.
fn churned(extra: &str) -> Scenario {
    scenario(&format!(
        r#"
name = "recovery-churn"
nodes = 120
duration_s = 1400
seed = 5
[churn]
model = "turnover"
percent = 50
window_s = 1200
start_s = 60
[recovery]
owners = 15
backup_at_s = 60
lose_at_s = 1260
recover_after_s = 20
recover_timeout_s = 100
holders_lost = 2
[node.recovery]
reshare_after_ms = 120000
check_interval_ms = 30000
[node.recovery.kdf]
memory_kib = 8
iterations = 1
parallelism = 1
{extra}
"#
    ))
}

#[test]
fn owners_recover_after_churn_with_two_holders_gone_and_wrong_passphrases_get_nothing() {
    let sc = churned("");
    let r = run(&sc, RunOptions { progress: false }).unwrap();
    let m = &r.metrics;
    assert_eq!(m.recovery_owners, Some(15), "{:?}", r.notes);
    assert_eq!(m.backups_failed, Some(0));
    assert!(m.reshares.unwrap() >= 5, "churn took holders and nobody re-shared: {:?}", m.reshares);
    // Every owner left with at least 3 holders gets its key back, from the user id alone.
    let recoverable = m.recovery_owners_recoverable.unwrap();
    assert!(recoverable >= 12, "only {recoverable} owners kept 3 holders: {:?}", r.notes);
    assert_eq!(m.recovery_success_share_recoverable, Some(1.0), "{:?}", r.notes);
    assert!(m.recovery_holders_lost.unwrap() >= 20, "the devices took too few holders with them");
    // Never a key from fewer than 3 valid shares, never a share to a wrong passphrase.
    assert_eq!(m.recoveries_below_threshold, Some(0));
    assert_eq!(m.shares_released_to_wrong_proof, Some(0));
    assert_eq!(m.wrong_shares_detected, Some(0), "no lying holders here");
    assert!(m.recovery_time_p99_s.unwrap() < 30.0, "slow recoveries: {:?}", m.recovery_time_p99_s);
    // The run is reproducible, recovery included.
    let again = run(&sc, RunOptions { progress: false }).unwrap();
    assert_eq!(r.digest, again.digest);
    assert!(r.same_outcome(&again));
}

#[test]
fn lying_holders_are_caught_and_reported_and_never_yield_a_key() {
    let sc = churned("[adversary]\nlying_holder = 0.15");
    let r = run(&sc, RunOptions { progress: false }).unwrap();
    let m = &r.metrics;
    assert!(m.adversaries >= 10, "lying holders drawn: {}", m.adversaries);
    // A lying holder's share fails the owner's commitments: caught, and reported to reputation.
    assert!(m.wrong_shares_detected.unwrap() >= 1, "{:?}", r.notes);
    assert!(m.offences >= m.wrong_shares_detected.unwrap());
    assert_eq!(m.recoveries_below_threshold, Some(0), "a wrong share never counts toward a key");
    assert_eq!(m.shares_released_to_wrong_proof, Some(0));
    // Lies cost owners whose honest live holders fell below 3, and no more: a lying holder
    // counts as gone, and every owner left with 3 honest ones recovers.
    assert!(m.recovery_owners_recoverable.unwrap() >= 5, "{:?}", r.notes);
    assert_eq!(m.recovery_success_share_recoverable, Some(1.0), "{:?}", r.notes);
}
