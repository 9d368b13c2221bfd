//! A browser joins: headless Chromium (Debian's, driven by playwright-core) loads a tiny page that
//! speaks our rendezvous protocol, sends a WebRTC offer to a `swarm node`, opens the "swarm" data
//! channel and sends a PING that the Rust node must echo as a PONG.
//!
//! Needs /usr/bin/chromium and `npm ci --prefix tests/browser` (`.ci/run` installs both); where
//! either is missing the test says so and passes without running.

mod common;

use common::procs::*;
use std::path::Path;
use std::process::Command;

#[test]
fn a_headless_chromium_pings_a_rust_node_over_a_data_channel() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        (!Path::new(&chromium).exists()).then_some("chromium (apt-get install chromium)"),
        (!dir.join("node_modules/playwright-core").exists())
            .then_some("playwright-core (npm ci --prefix tests/browser)"),
        Command::new("node").arg("--version").output().is_err().then_some("node"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        eprintln!("SKIPPED: the browser test needs {}", missing.join(", "));
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let log_guard = Logs::new(t.path().join("logs"));
    let logs = log_guard.dir.clone();
    let (_rdv, url) = rendezvous("127.0.0.1", &logs, None);
    let node = start_node("rust-node", NodeOpts::new(t.path().join("n0"), std::slice::from_ref(&url)), &logs);
    // The node registers before the page looks for it.
    wait_until("node registered at the rendezvous", std::time::Duration::from_secs(20), || {
        let st = node.status();
        if st["rendezvous"][0]["connected"].as_bool() == Some(true) {
            Ok(())
        } else {
            Err(format!("{st}"))
        }
    });
    let out = Command::new("node").arg(dir.join("run.mjs")).args([&url, &node.peer_id, "30000"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "pong",
        "browser said {stdout:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = node.status();
    assert!(st["signals_received"].as_u64().unwrap() >= 1, "the offer came through the rendezvous: {st}");
}
