//! End-to-end: the `swarm` binary runs a scenario file and writes its report and plot.

use std::process::Command;

fn swarm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_swarm"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn sim_writes_report_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let out = swarm()
        .args(["sim", "scenarios/smoke.toml", "--quiet", "--seed", "42", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "swarm sim failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(swarm_simulator::report::missing_keys(&report), Vec::<String>::new());
    assert_eq!(report["seed"], 42);
    assert_eq!(report["digest"].as_str().unwrap().len(), 64);
    let svg = std::fs::read_to_string(dir.path().join("connectivity.svg")).unwrap();
    assert!(svg.contains("<svg"));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("connectivity"), "no result table printed: {table}");
}

#[test]
fn bad_scenario_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nnodes = 10\nduration_s = 600\n[churn]\nmodel = \"turnover\"\npercent = 150\nwindow_s = 60\n",
    )
    .unwrap();
    let out = swarm().args(["sim", "--quiet"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("churn.percent"), "unhelpful error: {err}");
    let missing = swarm().args(["sim", "--quiet", "no/such/file.toml"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no/such/file.toml"));
}

#[test]
fn bench_crypto_prints_a_figure_per_operation() {
    let out = swarm().args(["bench", "crypto", "--iterations", "20"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let figures: Vec<f64> = text.lines().skip(1).filter_map(|l| l.split_whitespace().last()?.parse().ok()).collect();
    assert_eq!(figures.len(), 5, "{text}");
    assert!(figures.iter().all(|us| us.is_finite() && *us > 0.0), "{text}");
    let bad = swarm().args(["bench", "crypto", "--iterations", "0"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--iterations"));
}
