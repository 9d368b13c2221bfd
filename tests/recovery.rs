//! Account recovery end to end (issue 15) with six real `swarm node` processes on loopback: an
//! owner backs its key up 3-of-5 with five holders; its directory is deleted; two holders are
//! killed; a fresh node recovers the identity by user id from the other three (a wrong
//! passphrase first gets nothing), and after a restart runs as the owner: same peer id, and a
//! post it signs verifies as the owner's on another node. One holder restarted in between still
//! releases its share (shares are stored).

mod common;

use common::procs::*;
use std::time::Duration;

fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no `{prefix}` in {text}")).trim()
}

#[test]
fn an_identity_backed_up_with_five_holders_is_recovered_from_three_on_a_new_node() {
    let t = tempfile::tempdir().unwrap();
    let log_guard = Logs::new(t.path().join("logs"));
    let logs = log_guard.dir.clone();
    let (_rdv, url) = rendezvous("127.0.0.1", &logs, None);
    let rp = t.path().join("recovery-pass");
    std::fs::write(&rp, "a long recovery passphrase\n").unwrap();
    let bad = t.path().join("bad-pass");
    std::fs::write(&bad, "not it\n").unwrap();
    let rp = rp.to_str().unwrap();

    let node = |name: &str| start_node(name, NodeOpts::new(t.path().join(name), std::slice::from_ref(&url)), &logs);
    let owner = node("owner");
    let mut holders: Vec<NodeProc> = (0..5).map(|i| node(&format!("h{i}"))).collect();
    let ids: Vec<String> = holders.iter().map(|h| h.peer_id.clone()).collect();
    let owner_user = owner.status()["user_id"].as_str().unwrap().to_string();

    // Bad input is refused with a reason naming it.
    let e = failed(&owner.cli(&["identity", "backup", "--holder", "nope", "--recovery-passphrase-file", rp]), "bad id");
    assert!(e.contains("holder `nope`"), "{e}");
    let dup = [&ids[..4], &ids[..1]].concat();
    let twice: Vec<&str> = dup.iter().flat_map(|h| ["--holder", h.as_str()]).collect();
    let e =
        failed(&owner.cli(&[&["identity", "backup", "--recovery-passphrase-file", rp][..], &twice].concat()), "dup");
    assert!(e.contains("named twice"), "{e}");
    // The backup: every holder acknowledges.
    let all: Vec<&str> = ids.iter().flat_map(|h| ["--holder", h.as_str()]).collect();
    let out = ok(&owner.cli(&[&["identity", "backup", "--recovery-passphrase-file", rp][..], &all].concat()), "backup");
    assert!(out.contains("acknowledged: 5/5"), "{out}");
    let status = ok(&owner.cli(&["identity", "backup", "status", "--json"]), "backup status");
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["threshold"], 3);
    assert_eq!(v["holders"].as_array().unwrap().iter().filter(|h| h["acked"] == true).count(), 5, "{v}");

    // A node that knows only the user id finds the holders from the owner's published list.
    let finder = node("finder");
    let args = ["identity", "recover", "--user-id", &owner_user, "--recovery-passphrase-file", rp, "--timeout-s", "60"];
    let out = ok(&finder.cli(&args), "recover from the published holder list");
    assert_eq!(line(&out, "peer id:"), owner.peer_id);
    drop(finder);

    // The owner loses everything; two holders are gone; one restarts on its directory.
    let owner_id = owner.peer_id.clone();
    drop(owner);
    std::fs::remove_dir_all(t.path().join("owner")).unwrap();
    holders[0].proc.kill9();
    holders[1].proc.kill9();
    holders[2].proc.terminate(Duration::from_secs(10));
    holders[2] = node("h2");
    assert_eq!(holders[2].peer_id, ids[2]);

    // A fresh node: a wrong passphrase gets no share.
    let mut fresh = node("fresh");
    assert_ne!(fresh.peer_id, owner_id);
    // (The two dead holders never answer: a failing recovery waits for them until its timeout.)
    let recover = |n: &NodeProc, pass: &str, user: &str, timeout_s: &str| {
        let args =
            ["identity", "recover", "--user-id", user, "--recovery-passphrase-file", pass, "--timeout-s", timeout_s];
        n.cli(&[&args[..], &all].concat())
    };
    let e = failed(&recover(&fresh, bad.to_str().unwrap(), &owner_user, "15"), "wrong passphrase");
    assert!(e.contains("timed out") && e.matches("wrong passphrase").count() == 3, "{e}");
    let e = failed(&recover(&fresh, rp, "xyz", "15"), "bad user id");
    assert!(e.contains("user id `xyz`"), "{e}");
    // The right one: three holders release, the key is rebuilt and stored.
    let out = ok(&recover(&fresh, rp, &owner_user, "60"), "recover");
    assert_eq!(line(&out, "peer id:"), owner_id);
    assert_eq!(line(&out, "previous:").split(' ').next().unwrap(), fresh.peer_id);
    assert!(fresh.data.join("identity.key.previous").exists());

    // After a restart the node is the owner, and what it signs verifies as the owner's.
    fresh.proc.terminate(Duration::from_secs(10));
    let data = fresh.data.clone();
    let again = start_node("fresh-again", NodeOpts::new(data, std::slice::from_ref(&url)), &logs);
    assert_eq!(again.peer_id, owner_id);
    assert_eq!(again.status()["user_id"].as_str().unwrap(), owner_user);
    wait_until("the recovered node linked", Duration::from_secs(60), || {
        if again.connections() >= 2 {
            Ok(())
        } else {
            Err(format!("{} links", again.connections()))
        }
    });
    let post = ok(&again.cli(&["put", "--post", "back from the dead"]), "post").trim().to_string();
    let shown = ok(&holders[3].cli(&["get", &post]), "fetch post");
    assert!(shown.contains("back from the dead") && shown.contains(&owner_id), "{shown}");
}
