//! Real nodes over WebRTC: `swarm node` processes on loopback with a `swarm rendezvous`. They find
//! each other, move a file and a post, keep growing through the mesh with the rendezvous gone,
//! heal after two are killed with SIGKILL, and a node restarted on its directory comes back.

mod common;

use common::procs::*;
use std::collections::BTreeSet;
use std::time::Duration;

/// Every node has `want` links (the target degree, or everyone else in a small swarm).
fn degree_reached(nodes: &[&NodeProc], want: usize) -> Result<(), String> {
    let degrees: Vec<usize> = nodes.iter().map(|n| n.connections()).collect();
    if degrees.iter().all(|d| *d >= want) {
        Ok(())
    } else {
        Err(format!("degrees {degrees:?}, want >= {want}"))
    }
}

#[test]
fn a_loopback_swarm_connects_moves_content_grows_without_rendezvous_and_heals() {
    let t = tempfile::tempdir().unwrap();
    let log_guard = Logs::new(t.path().join("logs"));
    let logs = log_guard.dir.clone();
    let (mut rdv, url) = rendezvous("127.0.0.1", &logs, None);

    // Five nodes through the rendezvous (and a second one that is never up: tolerated); node 0
    // also serves a rendezvous of its own.
    let never_up = "ws://127.0.0.1:1".to_string();
    let mut nodes: Vec<NodeProc> = (0..5)
        .map(|i| {
            let mut o = NodeOpts::new(t.path().join(format!("n{i}")), &[url.clone(), never_up.clone()]);
            if i == 0 {
                o.rendezvous_listen = Some("127.0.0.1:0".into());
            }
            start_node(&format!("n{i}"), o, &logs)
        })
        .collect();
    let own_rdv = nodes[0].proc.line("rendezvous:", Duration::from_secs(10));
    let ids: BTreeSet<String> = nodes.iter().map(|n| n.peer_id.clone()).collect();
    assert_eq!(ids.len(), 5, "every node has its own identity");
    wait_until("5 nodes fully connected", Duration::from_secs(60), || {
        degree_reached(&nodes.iter().collect::<Vec<_>>(), 4)
    });
    let status = nodes[1].status();
    assert_eq!(status["peer_id"].as_str().unwrap(), nodes[1].peer_id);
    assert_eq!(status["user_id"].as_str().unwrap().len(), 16);
    assert!(status["known_peers"].as_u64().unwrap() >= 4, "{status}");
    let rdv_state = status["rendezvous"].as_array().unwrap();
    assert_eq!(rdv_state.len(), 2, "{status}");
    assert!(rdv_state.iter().any(|r| r["url"] == url.as_str() && r["connected"] == true), "{status}");
    assert!(rdv_state.iter().any(|r| r["url"] == never_up.as_str() && r["connected"] == false), "{status}");

    // A file (three chunks and a root) published on node 1 comes back intact from node 3.
    let file = t.path().join("input.bin");
    let data: Vec<u8> = (0..600_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let out = nodes[1].cli(&["put", file.to_str().unwrap()]);
    assert!(out.status.success(), "put: {}", String::from_utf8_lossy(&out.stderr));
    let link = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(link.contains(':'), "a file link carries its key: {link}");
    let back = t.path().join("output.bin");
    let out = nodes[3].cli(&["get", &link, "--out", back.to_str().unwrap()]);
    assert!(out.status.success(), "get: {}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(&back).unwrap() == data, "fetched file differs from the published one");
    // A post, and a link whose key is wrong (refused with a reason, nothing written).
    let out = nodes[2].cli(&["put", "--post", "hello from node 2"]);
    assert!(out.status.success(), "put --post: {}", String::from_utf8_lossy(&out.stderr));
    let post = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let out = nodes[4].cli(&["get", &post]);
    assert!(out.status.success(), "get post: {}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(shown.contains("hello from node 2") && shown.contains(&nodes[2].peer_id), "{shown}");
    let root = link.split(':').next().unwrap();
    let out = nodes[4].cli(&["get", &format!("{root}:{}", "00".repeat(32))]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong key"), "{}", String::from_utf8_lossy(&out.stderr));

    // The rendezvous goes; a newcomer that knows only node 0 (its own rendezvous) joins the
    // others through the mesh: node 0 relays its offers.
    rdv.kill9();
    let mut o = NodeOpts::new(t.path().join("n5"), &[own_rdv]);
    o.peers = vec![nodes[0].peer_id.clone()];
    nodes.push(start_node("n5", o, &logs));
    wait_until("newcomer linked to every node", Duration::from_secs(90), || {
        let l = nodes[5].linked();
        if l.len() >= 5 {
            Ok(())
        } else {
            Err(format!("newcomer linked to {} of 5", l.len()))
        }
    });
    // Only node 0 and the newcomer are registered at node 0's rendezvous: every other link was
    // signalled through the mesh, relayed by a linked peer.
    let relayed: u64 = [0usize, 1, 3].iter().map(|&i| nodes[i].status()["signals_relayed"].as_u64().unwrap()).sum();
    assert!(relayed >= 1, "no signal was relayed through the mesh");

    // Two nodes die without a word; the rest drop them and stay fully linked.
    let dead: Vec<String> = vec![nodes[2].peer_id.clone(), nodes[4].peer_id.clone()];
    nodes[2].proc.kill9();
    nodes[4].proc.kill9();
    let alive = [0usize, 1, 3, 5];
    wait_until("survivors healed", Duration::from_secs(60), || {
        for &i in &alive {
            let l = nodes[i].linked();
            if l.iter().any(|p| dead.contains(p)) || l.len() < alive.len() - 1 {
                return Err(format!("node {i} links {l:?}"));
            }
        }
        Ok(())
    });

    // A clean stop and a restart on the same directory: same identity, back with its peers.
    let st = nodes[3].proc.terminate(Duration::from_secs(10));
    assert!(st.success(), "node 3 exit status {st}");
    let me = nodes[3].peer_id.clone();
    let own_rdv = nodes[0].proc.line("rendezvous:", Duration::from_secs(1));
    nodes[3] = start_node("n3-again", NodeOpts::new(t.path().join("n3"), &[own_rdv]), &logs);
    assert_eq!(nodes[3].peer_id, me, "the identity stored in the directory is reused");
    wait_until("restarted node back with its peers", Duration::from_secs(90), || {
        let l = nodes[3].linked();
        if l.len() >= alive.len() - 1 {
            Ok(())
        } else {
            Err(format!("restarted node links {l:?}"))
        }
    });
    for &i in &alive {
        let st = nodes[i].proc.terminate(Duration::from_secs(10));
        assert!(st.success(), "node {i} exit status {st}");
    }
}

/// `GET /peers` (and `swarm peers`) give each linked peer its live score and the parts it sums,
/// by name, beside its standing; `?all=true` lists every scored peer, saying which are linked.
#[test]
fn peers_show_each_links_live_score_and_its_parts() {
    use common::http::{call, host_port};
    const PARTS: [&str; 9] =
        ["uptime", "churn", "availability", "deficit", "responsiveness", "malice", "violation", "noise", "hearsay"];
    let t = tempfile::tempdir().unwrap();
    let log_guard = Logs::new(t.path().join("logs"));
    let logs = log_guard.dir.clone();
    let (_rdv, url) = rendezvous("127.0.0.1", &logs, None);
    let a = start_node("a", NodeOpts::new(t.path().join("a"), std::slice::from_ref(&url)), &logs);
    let b = start_node("b", NodeOpts::new(t.path().join("b"), &[url]), &logs);
    wait_until("a and b linked", Duration::from_secs(60), || degree_reached(&[&a, &b], 1));
    let addr = host_port(&a.api);

    let peers = call(&addr, "GET", "/peers", &[], b"").json();
    let connected = peers["connected"].as_array().unwrap();
    let v = connected.iter().find(|p| p["peer_id"] == b.peer_id.as_str()).unwrap_or_else(|| panic!("{peers}"));
    assert!(["Trusted", "Acceptable"].contains(&v["standing"].as_str().unwrap()), "{v}");
    let score = v["score"].as_f64().unwrap_or_else(|| panic!("no score in {v}"));
    let parts = v["parts"].as_object().unwrap_or_else(|| panic!("no parts in {v}"));
    let mut names: Vec<&str> = parts.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut want = PARTS.to_vec();
    want.sort_unstable();
    assert_eq!(names, want, "{v}");
    let sum: f64 = parts.values().map(|p| p.as_f64().unwrap()).sum();
    assert!((score - sum.clamp(-100.0, 100.0)).abs() < 1e-9, "the score is not the sum of its parts: {v}");
    assert!(parts["uptime"].as_f64().unwrap() > 0.0, "a linked peer earns uptime: {v}");
    for offence in ["malice", "violation", "hearsay"] {
        assert_eq!(parts[offence].as_f64().unwrap(), 0.0, "an honest peer has no {offence}: {v}");
    }
    assert!(peers.get("scored").is_none(), "scored peers are listed only when asked: {peers}");

    let all = call(&addr, "GET", "/peers?all=true", &[], b"").json();
    let scored = all["scored"].as_array().unwrap_or_else(|| panic!("no scored list in {all}"));
    let s = scored.iter().find(|p| p["peer_id"] == b.peer_id.as_str()).unwrap_or_else(|| panic!("{all}"));
    assert_eq!(s["connected"], true, "{s}");
    assert!(s["score"].is_f64() && s["parts"]["malice"].is_f64(), "{s}");
    let e = call(&addr, "GET", "/peers?all=maybe", &[], b"").error(400);
    assert!(e.contains("all"), "{e}");

    let text = ok(&a.cli(&["peers"]), "swarm peers");
    let line = text.lines().find(|l| l.starts_with(&b.peer_id)).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("score=") && line.contains("uptime="), "{line}");
    let text = ok(&a.cli(&["peers", "--all"]), "swarm peers --all");
    assert!(text.contains("1 scored, 0 of them not linked"), "{text}");
}
