//! Mutable records end to end (issue 14) with two real `swarm node` processes on loopback and a
//! rendezvous: the owner grants the other node its record; each edits the record while the other
//! is stopped (so they are cut off from each other), the offline write waits in the sync queue
//! (shown in `swarm status`, kept across a restart); once both run again they link, the queues
//! drain, and both show the same winner and the same conflict.

mod common;

use common::procs::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn json(out: &std::process::Output, what: &str) -> Value {
    serde_json::from_str(&ok(out, what)).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"))
}

/// The record as a node shows it: (winning value, conflicting values), or why not.
fn record(n: &NodeProc, owner: &str) -> Result<(String, Vec<String>), String> {
    let out = n.cli(&["doc", "get", "doc", "--owner", owner, "--json"]);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let value = v["value"]["value"].as_str().unwrap_or_default().to_string();
    let conflicts = v["conflicts"].as_array().unwrap().iter().map(|c| c["value"].as_str().unwrap().to_string());
    Ok((value, conflicts.collect()))
}

fn pending(n: &NodeProc) -> u64 {
    n.status()["pending_sync"].as_u64().unwrap()
}

fn start(name: &str, dir: &Path, url: &str, logs: &Path) -> NodeProc {
    start_node(name, NodeOpts::new(dir.join(name), &[url.to_string()]), logs)
}

#[test]
fn two_nodes_edit_one_record_while_cut_off_and_converge_showing_the_conflict() {
    let t = tempfile::tempdir().unwrap();
    let log_guard = Logs::new(t.path().join("logs"));
    let logs = log_guard.dir.clone();
    let (_rdv, url) = rendezvous("127.0.0.1", &logs, None);
    let mut a = start("a", t.path(), &url, &logs);
    let mut b = start("b", t.path(), &url, &logs);
    let (a_id, b_id) = (a.peer_id.clone(), b.peer_id.clone());
    let a_user = a.status()["user_id"].as_str().unwrap().to_string();
    wait_until("a and b linked", Duration::from_secs(60), || match (a.connections(), b.connections()) {
        (1.., 1..) => Ok(()),
        d => Err(format!("links {d:?}")),
    });

    // Bad input is refused with a reason naming it.
    let e = failed(&a.cli(&["doc", "set", "", "x"]), "empty key");
    assert!(e.contains("record key") && e.contains("1 to 128 bytes"), "{e}");
    let e = failed(&a.cli(&["doc", "get", "doc", "--owner", "xyz"]), "bad owner");
    assert!(e.contains("owner: user id `xyz`"), "{e}");
    let e = failed(&b.cli(&["doc", "set", "doc", "x", "--owner", &a_id]), "no grant");
    assert!(e.contains("403") && e.contains("grant"), "{e}");
    let e = failed(&b.cli(&["doc", "set", "doc", "x", "--owner", &a_id, "--grant", "zz"]), "bad grant");
    assert!(e.contains("grant: not hex"), "{e}");
    let e = failed(&a.cli(&["doc", "grant", "nope"]), "bad writer");
    assert!(e.contains("writer `nope`"), "{e}");

    // The owner grants b the record and writes it; b reads it (by the owner's user id) and holds it.
    let grant = ok(&a.cli(&["doc", "grant", &b_id, "--key", "doc"]), "grant").trim().to_string();
    ok(&a.cli(&["doc", "set", "doc", "v0"]), "first write");
    wait_until("b holds v0", Duration::from_secs(30), || match record(&b, &a_user) {
        Ok((v, c)) if v == "v0" && c.is_empty() => Ok(()),
        other => Err(format!("{other:?}")),
    });
    wait_until("a's write acknowledged", Duration::from_secs(30), || match pending(&a) {
        0 => Ok(()),
        n => Err(format!("{n} pending")),
    });

    // Cut off: b stops; a writes alone, sees itself offline, and its write waits in the queue.
    b.proc.terminate(Duration::from_secs(10));
    wait_until("a offline", Duration::from_secs(30), || match a.status()["online"].as_bool() {
        Some(false) => Ok(()),
        o => Err(format!("online {o:?}")),
    });
    let out = json(&a.cli(&["doc", "set", "doc", "from a", "--json"]), "write while cut off");
    assert_eq!(out["value"]["value"], "from a");
    std::thread::sleep(Duration::from_millis(1500));
    let s = a.status();
    assert_eq!(s["pending_sync"], 1, "{s}");
    assert!(s["oldest_pending_ms"].as_u64().unwrap() >= 1000, "{s}");
    let text = ok(&a.cli(&["status"]), "status");
    assert!(text.contains("pending sync: 1") && text.contains("offline"), "{text}");
    a.proc.terminate(Duration::from_secs(10));

    // b comes back alone and writes the same record under the grant: queued too.
    b = start("b", t.path(), &url, &logs);
    ok(&b.cli(&["doc", "set", "doc", "from b", "--owner", &a_id, "--grant", &grant]), "b's write");
    assert_eq!(pending(&b), 1);
    assert_eq!(record(&b, &a_id).unwrap(), ("from b".to_string(), vec![]));
    // A restart keeps the record and the queue.
    b.proc.terminate(Duration::from_secs(10));
    b = start("b", t.path(), &url, &logs);
    assert_eq!(pending(&b), 1, "the queue survives a restart");
    assert_eq!(record(&b, &a_id).unwrap(), ("from b".to_string(), vec![]));

    // a returns: they link, the queues drain, both hold one winner and the same conflict.
    a = start("a", t.path(), &url, &logs);
    assert_eq!(pending(&a), 1, "a's offline write survived its restart");
    let want = ("from b".to_string(), vec!["from a".to_string()]);
    for (n, name) in [(&a, "a"), (&b, "b")] {
        wait_until(&format!("{name} converged"), Duration::from_secs(90), || match (record(n, &a_id), pending(n)) {
            (Ok(r), 0) if r == want => Ok(()),
            other => Err(format!("{other:?}")),
        });
        let c = json(&n.cli(&["doc", "conflicts", "--json"]), "conflicts");
        let records = c["records"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{c}");
        assert_eq!(records[0]["conflicts"][0]["writer"], a_id.as_str(), "{c}");
        assert_eq!(records[0]["value"]["writer"], b_id.as_str(), "{c}");
        let text = ok(&n.cli(&["doc", "get", "doc", "--owner", &a_id]), "doc get");
        assert!(
            text.contains("value: from b") && text.contains("conflicts: 1") && text.contains("lost: from a"),
            "{text}"
        );
    }
}
