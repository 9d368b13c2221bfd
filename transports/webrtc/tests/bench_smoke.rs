//! The benchmark runs end to end on small sizes, and setup stays fast (the driver nudge works).

use swarm_transport_webrtc::bench::{run, BenchOptions};

#[test]
fn bench_runs_on_small_sizes() {
    let opts =
        BenchOptions { setups: 5, round_trips: 200, throughput_bytes: 8 * 1024 * 1024, ..BenchOptions::default() };
    let r = run(opts).expect("bench runs");
    println!("{r}");
    assert_eq!(r.setups, 5);
    assert!(
        r.setup_ms_median > 0.0 && r.setup_ms_median < 400.0,
        "setup {} ms (stock webrtc: ~600)",
        r.setup_ms_median
    );
    assert!(r.rtt_us_p50 > 0.0 && r.rtt_us_p50 <= r.rtt_us_p99);
    assert!(r.throughput_mb_s > 0.0 && r.tcp_throughput_mb_s.is_some_and(|t| t > 0.0));
    assert_eq!(r.throughput_bytes, 8 * 1024 * 1024);
    let table = r.to_string();
    assert!(table.contains("setup ms") && table.contains("rtt us p99") && table.contains("MB/s"));
}
