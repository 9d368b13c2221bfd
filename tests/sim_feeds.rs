//! Simulator-level feeds test (`[feeds]`): authors post under turnover churn; followers online
//! must learn each post within 120 s (p99), every follower that stays up must learn it, and the
//! same seed must give the same trace.

use swarm_simulator::run::{run, RunOptions};
use swarm_simulator::scenario::{parse, Scenario};

/// 200 nodes, 20% turnover over 14 minutes; 8 authors post 30 times an hour each; 25 followers
/// per author.
fn scenario() -> Scenario {
    parse(
        r#"
name = "feeds-small"
nodes = 200
duration_s = 900
seed = 3
[churn]
model = "turnover"
percent = 20
window_s = 840
start_s = 60
[feeds]
authors = 8
followers_per_author = 25
posts_per_author_per_hour = 30.0
reach_window_s = 240
"#,
        "test scenario",
    )
    .expect("test scenario must be valid")
}

#[test]
fn followers_online_learn_every_post_within_two_minutes() {
    let sc = scenario();
    let r = run(&sc, RunOptions { progress: false }).unwrap();
    let m = &r.metrics;
    let posts = m.feed_posts.expect("the feeds workload ran");
    assert!(posts >= 20, "too few posts to measure: {posts} ({:?})", r.notes);
    let reach = m.announce_reach_share.expect("some followers were due");
    assert!(reach >= 0.99, "reach {reach}: {:?}", r.notes);
    let p99 = m.announce_delay_p99_s.expect("some followers learned");
    assert!(p99 <= 120.0, "announce delay p99 {p99} s: {:?}", r.notes);
    // Deterministic: the same scenario twice gives the same trace.
    let again = run(&sc, RunOptions { progress: false }).unwrap();
    assert_eq!(r.digest, again.digest);
    assert_eq!(m.announce_delay_p99_s, again.metrics.announce_delay_p99_s);
}

#[test]
fn a_bad_feeds_section_names_the_field() {
    let e = parse("name = \"x\"\nnodes = 10\nduration_s = 600\n[feeds]\nauthors = 11\n", "t").unwrap_err();
    assert!(e.to_string().contains("feeds.authors"), "{e}");
    let e = parse("name = \"x\"\nnodes = 10\nduration_s = 600\n[feeds]\nauthor = 1\n", "t").unwrap_err();
    assert!(e.to_string().contains("author"), "{e}");
}
