//! Simulator-level tests: the same actors as a real node, on the simulated network, with churn.
//! They assert the swarm's behaviour (connectivity floors, healing, joins) and determinism.

use swarm_simulator::run::{run, RunOptions};
use swarm_simulator::scenario::{parse, Scenario};

fn scenario(text: &str) -> Scenario {
    parse(text, "test scenario").expect("test scenario must be valid")
}

fn quiet() -> RunOptions {
    RunOptions { progress: false }
}

const TURNOVER_200: &str = r#"
name = "turnover-200"
nodes = 200
duration_s = 1260
seed = 7
[churn]
model = "turnover"
percent = 50
window_s = 1200
start_s = 60
"#;

#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let sc = scenario(TURNOVER_200);
    let a = run(&sc, quiet()).unwrap();
    let b = run(&sc, quiet()).unwrap();
    assert_eq!(a.digest, b.digest, "same seed must reproduce the delivered-message trace");
    assert!(a.same_outcome(&b), "reports must match in everything but wall time");
    assert!(a.messages > 10_000, "the run must actually exchange messages, got {}", a.messages);
    let mut other = sc.clone();
    other.seed = 8;
    let c = run(&other, quiet()).unwrap();
    assert_ne!(a.digest, c.digest, "another seed must give another trace");
}

#[test]
fn swarm_stays_connected_under_50_percent_turnover() {
    let sc = scenario(TURNOVER_200);
    let r = run(&sc, quiet()).unwrap();
    let m = &r.metrics;
    // 100 of 200 nodes crash without goodbye over 20 minutes and are replaced by strangers.
    assert!(m.connectivity_min >= 0.99, "connectivity fell to {}", m.connectivity_min);
    assert!(m.connectivity_final >= 0.99);
    assert!(m.joins_completed >= 250, "initial nodes and newcomers must reach k links, got {}", m.joins_completed);
    assert!(m.join_time_p50_s < 2.0, "median join took {} s", m.join_time_p50_s);
    assert!(m.join_time_p99_s < 30.0, "p99 join took {} s", m.join_time_p99_s);
    assert!(m.gossip_coverage > 0.05, "gossip reached too little: {}", m.gossip_coverage);
    assert!(m.known_peers_mean >= 20.0, "registries too thin: {}", m.known_peers_mean);
    let min_degree = r.samples.iter().filter(|s| s.t_s >= 60.0).map(|s| s.mean_degree).fold(f64::MAX, f64::min);
    assert!(min_degree >= 8.0, "mean degree fell to {min_degree}");
}

#[test]
fn survivors_heal_after_mass_failure() {
    let sc = scenario(
        r#"
name = "mass-failure"
nodes = 300
duration_s = 900
seed = 3
[churn]
model = "mass_failure"
percent = 50
at_s = 300
"#,
    );
    let r = run(&sc, quiet()).unwrap();
    let after = r.samples.iter().find(|s| s.t_s > 300.0).unwrap();
    assert_eq!(after.live, 150);
    // Dead links are found by heartbeat timeout (90 s) and replaced from the registry.
    let healed = r.samples.iter().filter(|s| s.t_s >= 600.0).all(|s| s.connectivity >= 0.99 && s.mean_degree >= 6.0);
    assert!(healed, "survivors did not heal: {:?}", r.samples.iter().filter(|s| s.t_s >= 300.0).collect::<Vec<_>>());
}

#[test]
fn partition_splits_then_heals() {
    let sc = scenario(
        r#"
name = "partition"
nodes = 200
duration_s = 900
seed = 5
[[partition]]
at_s = 200
heal_s = 400
fraction = 0.3
"#,
    );
    let r = run(&sc, quiet()).unwrap();
    let during = r.samples.iter().find(|s| s.t_s >= 390.0).unwrap();
    assert!(during.connectivity <= 0.75, "a 30% partition must cut the overlay, got {}", during.connectivity);
    assert!(r.metrics.connectivity_final >= 0.99, "overlay did not heal: {}", r.metrics.connectivity_final);
}

/// The headline scenario as shipped: 1,000 nodes, an hour of 50% turnover.
#[test]
fn headline_churn_50_keeps_every_live_node_connected() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/churn-50.toml");
    let sc = swarm_simulator::scenario::load(&path).unwrap();
    let r = run(&sc, quiet()).unwrap();
    let m = &r.metrics;
    assert!(m.connectivity_min >= 0.99, "connectivity fell to {}", m.connectivity_min);
    assert_eq!(r.churn["departures_in_window"], 500, "50% of 1,000 nodes must leave: {}", r.churn);
    assert!(m.joins_incomplete == 0, "{} nodes never reached {} links", m.joins_incomplete, sc.join_k);
    assert!(m.join_time_p99_s < 15.0, "p99 join took {} s", m.join_time_p99_s);
}

const LOSSY: &str = r#"
name = "lossy"
nodes = 200
duration_s = 1200
seed = 11
[network]
loss = 0.05
latency = { dist = "uniform", min_ms = 5, max_ms = 150 }
[churn]
model = "turnover"
percent = 50
window_s = 1100
start_s = 60
[[partition]]
at_s = 400
heal_s = 500
fraction = 0.2
"#;

#[test]
fn lossy_network_with_partition_heals_and_replays_exactly() {
    let sc = scenario(LOSSY);
    let a = run(&sc, quiet()).unwrap();
    let b = run(&sc, quiet()).unwrap();
    assert!(a.same_outcome(&b), "loss and partitions must replay exactly from the seed");
    assert!(a.metrics.frames_dropped > 1_000, "5% loss must drop frames, dropped {}", a.metrics.frames_dropped);
    // Heartbeats tolerate loss (a link dies only after 90 s of silence), so outside the cut the
    // swarm stays whole, and after the heal it re-merges.
    let outside_cut = a.samples.iter().filter(|s| (60.0..400.0).contains(&s.t_s) || s.t_s >= 800.0);
    for s in outside_cut {
        assert!(s.connectivity >= 0.99, "connectivity {} at t = {} s", s.connectivity, s.t_s);
    }
    // During the cut, links across it carry nothing and are not counted: 20% are cut off.
    let during = a.samples.iter().find(|s| s.t_s == 450.0).unwrap();
    assert!((0.75..=0.85).contains(&during.connectivity), "cut not visible: {}", during.connectivity);
}

/// A tenth of the peers sign every envelope wrongly (their own rumours, and the honest ones they
/// relay, tampered). Every invalid envelope is refused and reported, no honest one is, the liars
/// are graylisted (a bad signature is proven malice), and the honest swarm around them stays
/// whole (connectivity is measured over honest nodes).
#[test]
fn invalid_signatures_are_all_rejected_and_honest_ones_never() {
    let sc = scenario(&format!("{TURNOVER_200}\n[adversary]\ninvalid_signatures = 0.1\n"));
    let r = run(&sc, quiet()).unwrap();
    let m = &r.metrics;
    assert!(m.adversaries >= 10, "the scenario must field adversaries, got {}", m.adversaries);
    assert!(m.envelopes_invalid_rejected > 1_000, "adversaries must actually send envelopes");
    assert_eq!(m.envelopes_invalid_accepted, 0, "an invalid envelope was believed");
    assert_eq!(m.invalid_rejected_share, Some(1.0));
    assert!(m.envelopes_honest_accepted > m.envelopes_invalid_rejected, "honest traffic must dominate");
    assert_eq!(m.envelopes_honest_rejected, 0, "an honest envelope was refused");
    assert!(m.offences >= m.envelopes_invalid_rejected, "every rejection is reported against its sender");
    assert!(m.links_authenticated > 1_000);
    assert!(m.connectivity_min >= 0.99, "connectivity fell to {}", m.connectivity_min);
    // Without adversaries: nothing refused, and the share is undefined. Nothing reported either,
    // but for the odd handshake timeout: a peer that crashes in the middle of a handshake (here,
    // twice in the run: 100 crashes, and the content actor's short-lived links) cannot be told
    // from one that stalls it, and is reported.
    let clean = run(&scenario(TURNOVER_200), quiet()).unwrap();
    assert_eq!(clean.metrics.adversaries, 0);
    assert!(clean.metrics.offences <= 4, "offences without adversaries: {}", clean.metrics.offences);
    assert_eq!(clean.metrics.invalid_rejected_share, None);
    assert_eq!(clean.metrics.envelopes_honest_rejected, 0);
}

const CONTENT: &str = r#"
[content]
publishes_per_node_per_hour = 6
probe_interval_s = 120
probe_fetches = 300
"#;

#[test]
fn content_survives_50_percent_turnover() {
    let sc = scenario(&format!("{TURNOVER_200}{CONTENT}"));
    let r = run(&sc, quiet()).unwrap();
    let m = &r.metrics;
    let published = m.chunks_published.unwrap();
    assert!(published >= 300, "the workload must publish, got {published}");
    // Every acknowledged publication survives 100 crashes without goodbye...
    assert_eq!(m.chunks_lost, Some(0), "chunks lost: {:?}", r.notes);
    assert_eq!(m.durability, Some(1.0));
    // ...and a random live node finds and downloads any of them at any time (issue 4's target:
    // availability_min >= 0.999).
    let min = m.availability_min.unwrap();
    assert!(min >= 0.999, "availability fell to {min}: {:?}", r.notes);
    assert_eq!(m.availability_final, Some(1.0), "{:?}", r.notes);
    assert!(m.fetch_latency_p50_s.unwrap() < 3.0, "median fetch took {:?} s", m.fetch_latency_p50_s);
    // Repair moved bytes, within its budget (2 MiB per node per 30 s round is the ceiling).
    let repair = m.repair_bytes_per_node_per_s.unwrap();
    assert!(repair > 0.0 && repair < 2.0 * 1024.0 * 1024.0 / 30.0, "repair traffic {repair} B/node/s");
    assert!(m.durability_bound_no_repair.is_none(), "the bound is for mass failures only");
}

#[test]
fn content_durability_under_mass_failure_meets_the_replication_bound() {
    let sc = scenario(&format!(
        r#"
name = "content-mass-failure"
nodes = 300
duration_s = 900
seed = 5
[churn]
model = "mass_failure"
percent = 50
at_s = 600
{CONTENT}"#
    ));
    let r = run(&sc, quiet()).unwrap();
    let m = &r.metrics;
    let bound = m.durability_bound_no_repair.expect("a mass failure reports the rf bound");
    assert!((bound - 0.875).abs() < 1e-9, "1 - 0.5^3, got {bound}");
    let d = m.durability.unwrap();
    assert!(d >= bound, "durability {d} below the rf = 3 bound {bound}: {:?}", r.notes);
    assert!(r.notes.iter().any(|n| n.contains("durability without repair would be 0.8750")), "{:?}", r.notes);
    // What survived is found again once the survivors have healed (lost chunks are still
    // probed, so availability can only approach durability).
    let a = m.availability_final.unwrap();
    assert!(a >= d - 0.03, "availability {a} well below durability {d}: surviving chunks not found: {:?}", r.notes);
}

/// Whole files under mild churn (issue 12): every publication a file of 3 to 10 chunks put
/// through the files actor, probes fetching whole files from random live nodes. Every file is
/// retrievable, whole and in order, every time.
#[test]
fn whole_files_stay_retrievable_under_mild_churn() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/content-files.toml");
    let sc = swarm_simulator::scenario::load(&path).unwrap();
    let r = run(&sc, quiet()).unwrap();
    let m = &r.metrics;
    let files = m.files_published.expect("file metrics in the report");
    assert!(files >= 25, "the workload must publish files, got {files}: {:?}", r.notes);
    assert_eq!(m.file_publishes_failed, Some(0), "{:?}", r.notes);
    let ok = m.file_fetches_ok.unwrap();
    assert!(ok >= 40, "probes must fetch files, got {ok}: {:?}", r.notes);
    assert_eq!(m.file_fetches_failed, Some(0), "{:?}", r.notes);
    let p99 = m.file_fetch_latency_p99_s.unwrap();
    assert!(p99 < 20.0, "p99 whole-file fetch took {p99} s");
    // The files' chunks are chunks like any others: all kept, all found.
    assert!(m.chunks_published.unwrap() >= 4 * files, "3+ chunks and a root per file");
    assert_eq!(m.chunks_lost, Some(0), "{:?}", r.notes);
    assert!(m.availability_min.unwrap() >= 0.999, "{:?}", r.notes);
    // Without the file workload, the same scenario reports no file figures.
    let mut bare = sc.clone();
    bare.content.file_bytes_min = 0;
    bare.content.file_bytes_max = 0;
    bare.duration_s = 200;
    bare.churn = swarm_simulator::scenario::ChurnSpec::None;
    let r = run(&bare, quiet()).unwrap();
    assert_eq!(r.metrics.files_published, None);
}

/// A small swarm is a full mesh (issue 12): six nodes, each told of one other, all link to all.
#[test]
fn six_nodes_form_a_full_mesh() {
    let sc = scenario(
        r#"
name = "mesh-6"
nodes = 6
duration_s = 120
seed = 3
join_k = 1
[bootstrap]
peers = 1
"#,
    );
    let r = run(&sc, quiet()).unwrap();
    let last = r.samples.last().expect("samples");
    assert_eq!(last.live, 6);
    assert_eq!(last.mean_degree, 5.0, "every node linked to the 5 others: {:?}", r.samples);
    assert_eq!(r.metrics.connectivity_final, 1.0);
}

/// 40% of nodes behind NATs (two NATed nodes cannot link) under 50% turnover: what a NATed node
/// cannot reach goes over its links, which include links to elected supernodes (issue 12).
#[test]
fn content_survives_turnover_when_many_nodes_are_behind_nats() {
    let sc = scenario(&format!("{TURNOVER_200}{CONTENT}").replace("[churn]", "[network]\nnat_share = 0.4\n[churn]"));
    assert_eq!(sc.network.nat_share, 0.4);
    let r = run(&sc, quiet()).unwrap();
    let m = &r.metrics;
    assert_eq!(m.chunks_lost, Some(0), "chunks lost: {:?}", r.notes);
    let min = m.availability_min.unwrap();
    assert!(min >= 0.999, "availability fell to {min}: {:?}", r.notes);
    let p99 = m.fetch_latency_p99_s.unwrap();
    assert!(p99 <= 2.0, "p99 fetch took {p99} s: {:?}", r.notes);
    assert!(m.connectivity_min >= 0.99, "connectivity fell to {}", m.connectivity_min);
    // NATed nodes hold supernode links, to a bounded share of the swarm (elected share 10%).
    let supernodes = m.supernodes.expect("supernodes reported with NAT");
    assert!((1..=20).contains(&supernodes), "{supernodes} supernodes of 200 nodes: {:?}", r.notes);
    let nat = r.notes.iter().find(|n| n.starts_with("NAT:")).expect("a NAT note");
    assert!(!nat.contains(" 0 of them hold a supernode link"), "{nat}");
    // Without NAT, no supernode figure.
    let plain = run(
        &scenario(
            r#"name = "n"
nodes = 8
duration_s = 120
"#,
        ),
        quiet(),
    )
    .unwrap();
    assert_eq!(plain.metrics.supernodes, None);
}

/// Issue 13: a fifth of the nodes misbehave with content (withhold, corrupt, stall, turn
/// covert after 5 minutes) under 50% turnover. Honest nodes find them through audits and their
/// own requests and graylist them: the share of honest links ending at adversaries falls to a
/// fraction of what it was, honest peers are not graylisted, and honest fetches still succeed.
/// Two seeds: the fall of one run is noisy (seed 7 alone moved from 0.29 to 0.34 of its start
/// when topology changed, seed 8 from 0.18 to 0.20), so the bound is on their mean, with each
/// run still bounded.
#[test]
fn adversaries_are_isolated_and_honest_nodes_are_not() {
    let mut falls = vec![];
    for seed in [7, 8] {
        let mut sc = scenario(&format!(
            "{TURNOVER_200}{CONTENT}
[adversary]
withhold = 0.05
corrupt = 0.05
slow = 0.05
covert = 0.05
covert_after_s = 300
"
        ));
        sc.seed = seed;
        let r = run(&sc, quiet()).unwrap();
        let m = &r.metrics;
        assert!(m.adversaries >= 30, "a fifth of ~300 nodes started, got {}", m.adversaries);
        let shares: Vec<f64> =
            r.samples.iter().filter(|s| s.t_s >= 60.0).filter_map(|s| s.adversary_link_share).collect();
        let (start, end) = (shares[0], *shares.last().unwrap());
        assert!(start >= 0.1, "adversaries start with their share of links, got {start}");
        assert!(end <= start / 2.0, "seed {seed}: adversary link share {start} -> {end}: {:?}", r.notes);
        falls.push(end / start);
        assert_eq!(m.adversary_link_share_final, Some(end));
        let fp = m.false_positive_share.unwrap();
        assert!(fp <= 0.02, "honest peers graylisted by honest ones: {fp}");
        let d = m.detection_time_p90_s.unwrap();
        assert!(d <= 120.0, "one node takes {d} s (p90) to graylist an adversary it deals with");
        assert!(m.adversaries_isolated.unwrap() > 0);
        assert_eq!(m.durability, Some(1.0), "{:?}", r.notes);
        let min = m.availability_min.unwrap();
        assert!(min >= 0.99, "honest availability fell to {min}: {:?}", r.notes);
    }
    let mean = falls.iter().sum::<f64>() / falls.len() as f64;
    assert!(mean <= 1.0 / 3.0, "adversary link share fell only to {falls:?} of its start");
}

/// Nodes that answer peer exchange with dead or invented ids are found out by what gossip does
/// not say (no one else mentions the peers they name), graylisted and warned of: most of them
/// are isolated, their share of honest links falls (by a third at least: each new honest link
/// to one lasts until its answer is checked, 5 min later; in this 21-min run it fell from 0.126
/// to 0.068), and honest peers are not taken for them.
#[test]
fn pex_poisoners_are_found_by_what_nobody_else_mentions() {
    let sc = scenario(&format!(
        "{TURNOVER_200}
[adversary]
pex_poison = 0.1
"
    ));
    let r = run(&sc, quiet()).unwrap();
    let m = &r.metrics;
    assert!(m.adversaries >= 15, "a tenth of ~300 nodes started, got {}", m.adversaries);
    let dealt = m.adversaries_dealt.unwrap();
    assert!(dealt * 2 >= m.adversaries, "poisoners reported: {dealt} of {}: {:?}", m.adversaries, r.notes);
    assert!(m.adversaries_isolated.unwrap() * 10 >= dealt * 8, "isolated {:?} of {dealt}", m.adversaries_isolated);
    let shares: Vec<f64> = r.samples.iter().filter(|s| s.t_s >= 60.0).filter_map(|s| s.adversary_link_share).collect();
    let (start, end) = (shares[0], *shares.last().unwrap());
    assert!(end <= start * 2.0 / 3.0, "poisoners' link share {start} -> {end}: {:?}", r.notes);
    let fp = m.false_positive_share.unwrap();
    assert!(fp <= 0.02, "honest peers graylisted or shunned by honest ones: {fp}");
}

/// Slanderers and sybil groups (issue 13): 12% of the nodes, honest in all else, warn of every
/// peer they (or their group's other ids) link to, four ids to a sybil operator, beside 8% of
/// withholders and corrupters whose honest accusers must still be heard. A warning naming a node
/// is a lie to that node, which graylists its signer and keeps the verdict to itself: each
/// slanderer is cut off by the peers it names, honest peers are not shunned on its word (before
/// that rule, 93% of honest peers were, at 300 nodes), and the real adversaries are still
/// isolated. Seed 7: false positives 0, link share 0.140 -> 0.004, 68 of 70 dealt isolated.
#[test]
fn slanderers_are_cut_off_by_the_peers_they_name_and_honest_peers_are_not_shunned() {
    let sc = scenario(&format!(
        "{TURNOVER_200}{CONTENT}
[adversary]
withhold = 0.04
corrupt = 0.04
slander = 0.04
sybil = 0.08
sybil_ids = 4
"
    ));
    let r = run(&sc, quiet()).unwrap();
    let m = &r.metrics;
    assert!(m.adversaries >= 30, "a fifth of ~300 nodes started, got {}", m.adversaries);
    let fp = m.false_positive_share.unwrap();
    assert!(fp <= 0.02, "honest peers graylisted or shunned by honest ones: {fp}");
    let shares: Vec<f64> = r.samples.iter().filter(|s| s.t_s >= 60.0).filter_map(|s| s.adversary_link_share).collect();
    let (start, end) = (shares[0], *shares.last().unwrap());
    assert!(start >= 0.1, "adversaries start with their share of links, got {start}");
    assert!(end <= start / 4.0, "adversary link share {start} -> {end}: {:?}", r.notes);
    let dealt = m.adversaries_dealt.unwrap();
    assert!(dealt * 10 >= m.adversaries * 8, "adversaries dealt with: {dealt} of {}", m.adversaries);
    let isolated = m.adversaries_isolated.unwrap();
    assert!(isolated * 10 >= dealt * 9, "isolated {isolated} of {dealt}: {:?}", r.notes);
    assert_eq!(m.durability, Some(1.0), "{:?}", r.notes);
    let min = m.availability_min.unwrap();
    assert!(min >= 0.99, "honest availability fell to {min}: {:?}", r.notes);
}

/// Flooders (issue 13): 8% of the nodes send 31 rumours of their own every gossip round (an
/// honest node: one) and 20 lookup questions a second on every link (an honest node's busiest
/// link: under 7 a second over any minute), under 30% turnover with content. Each link's budgets
/// drop the excess and report it, at most once per 30 s: the nodes that deal with a flooder
/// graylist it within three minutes (the request budget lasts a minute, then five or six
/// reports), most flooders are isolated, and no honest node is ever reported for a flood (churn,
/// repair lookups and warnings stay within the budgets) or graylisted. Seed 7: 22 flooders, 19
/// of 21 dealt with isolated, detection p90 169 s, flood offences 0 on honest peers / 4,291.
#[test]
fn flooders_are_dropped_reported_and_graylisted_and_honest_nodes_never_are() {
    let sc = scenario(
        r#"
name = "flood-120"
nodes = 120
duration_s = 840
seed = 7
[churn]
model = "turnover"
percent = 30
window_s = 480
start_s = 60
[content]
publishes_per_node_per_hour = 6
probe_interval_s = 120
probe_fetches = 100
[adversary]
flood = 0.08
"#,
    );
    let r = run(&sc, quiet()).unwrap();
    let m = &r.metrics;
    assert!(m.adversaries >= 8, "8% of ~160 nodes started, got {}", m.adversaries);
    assert_eq!(m.flood_offences_honest, 0, "an honest peer was reported for a flood: {:?}", r.notes);
    assert!(m.flood_offences_adversarial >= 100, "flooders reported {} times", m.flood_offences_adversarial);
    let dealt = m.adversaries_dealt.unwrap();
    assert!(dealt * 10 >= m.adversaries * 9, "flooders dealt with: {dealt} of {}", m.adversaries);
    let isolated = m.adversaries_isolated.unwrap();
    assert!(isolated * 4 >= dealt * 3, "isolated {isolated} of {dealt}: {:?}", r.notes);
    let d = m.detection_time_p90_s.unwrap();
    assert!(d <= 240.0, "one node takes {d} s (p90) to graylist a flooder it deals with");
    assert_eq!(m.false_positive_share, Some(0.0), "honest peers graylisted or shunned by honest ones");
    assert_eq!(m.durability, Some(1.0), "{:?}", r.notes);
    let min = m.availability_min.unwrap();
    assert!(min >= 0.99, "honest availability fell to {min}: {:?}", r.notes);
}
