//! The store across processes: what one `swarm` process committed, the next one reads back,
//! even when the writer is killed with SIGKILL in the middle of writing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn swarm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_swarm"))
}

fn list(dir: &std::path::Path) -> String {
    let out = swarm().args(["peers", "list", "--data"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn registry_survives_a_restart() {
    let t = tempfile::tempdir().unwrap();
    let id = "ab".repeat(32);
    let out =
        swarm().args(["peers", "add", &id, "--addr", "ws://127.0.0.1:7000", "--data"]).arg(t.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = list(t.path());
    assert!(listed.contains(&id) && listed.contains("ws://127.0.0.1:7000"), "{listed}");
}

#[test]
fn kill_9_while_writing_loses_no_committed_record() {
    let t = tempfile::tempdir().unwrap();
    let mut child = swarm()
        .args(["debug", "fill", "--records", "1000000", "--data"])
        .arg(t.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut committed = Vec::new();
    while committed.len() < 300 {
        let line = lines.next().expect("writer ended early").unwrap();
        committed.push(line.parse::<u64>().unwrap());
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, mid-transaction most likely
    child.wait().unwrap();
    // Anything printed before the kill had been committed; read any stragglers still in the pipe.
    committed.extend(lines.map_while(Result::ok).filter_map(|l| l.parse::<u64>().ok()));
    let listed = list(t.path());
    let stored = listed.lines().count();
    assert!(stored >= committed.len(), "{stored} stored < {} committed", committed.len());
    for i in committed {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&i.to_be_bytes());
        assert!(listed.contains(&hex::encode(id)), "committed record {i} lost");
    }
}
