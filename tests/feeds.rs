//! Feeds end to end (issue 14) with two real `swarm node` processes on loopback and a rendezvous:
//! b follows a by user id; a's post (`swarm put --post`) shows in b's `swarm feed` within a
//! bounded wait and b fetches it by its link; b, stopped while a posts again, keeps its follow
//! list across the restart and catches up on the post it missed. Bad input is refused by name.

mod common;

use common::procs::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn start(name: &str, dir: &Path, url: &str, logs: &Path) -> NodeProc {
    start_node(name, NodeOpts::new(dir.join(name), &[url.to_string()]), logs)
}

fn feed(n: &NodeProc) -> Value {
    let out = n.cli(&["feed", "--json"]);
    serde_json::from_str(&ok(&out, "feed")).unwrap()
}

/// Names of the feed's entries, newest first.
fn names(n: &NodeProc) -> Vec<String> {
    feed(n)["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_follower_sees_a_post_within_bounded_time_and_keeps_following_across_a_restart() {
    let t = tempfile::tempdir().unwrap();
    let log_guard = Logs::new(t.path().join("logs"));
    let logs = log_guard.dir.clone();
    let (_rdv, url) = rendezvous("127.0.0.1", &logs, None);
    let a = start("a", t.path(), &url, &logs);
    let mut b = start("b", t.path(), &url, &logs);
    let a_user = a.status()["user_id"].as_str().unwrap().to_string();
    let b_user = b.status()["user_id"].as_str().unwrap().to_string();
    wait_until("a and b linked", Duration::from_secs(60), || match (a.connections(), b.connections()) {
        (1.., 1..) => Ok(()),
        d => Err(format!("links {d:?}")),
    });

    // Bad input is refused with a reason naming it.
    let e = failed(&b.cli(&["follow", "xyz"]), "malformed user id");
    assert!(e.contains("user id `xyz` is neither a user id (16 hex digits) nor a peer id (64 hex digits)"), "{e}");
    let e = failed(&b.cli(&["follow", &b_user]), "follow self");
    assert!(e.contains("is this node itself"), "{e}");
    let e = failed(&b.cli(&["unfollow", "0123456789abcdef"]), "unfollow a stranger");
    assert!(e.contains("does not follow user 0123456789abcdef"), "{e}");
    let e = failed(&b.cli(&["feed", "--limit", "0"]), "zero limit");
    assert!(e.contains("limit 0"), "{e}");
    let e = failed(&b.cli(&["folow", &a_user]), "unknown command");
    assert!(e.contains("folow"), "{e}");

    // b follows a by user id; a posts; b learns it (and a's peer id) and fetches it by its link.
    let out = ok(&b.cli(&["follow", &a_user]), "follow");
    assert!(out.contains(&format!("following {a_user}")), "{out}");
    let link = ok(&a.cli(&["put", "--post", "hello followers"]), "post").trim().to_string();
    wait_until("b sees a's post", Duration::from_secs(30), || match names(&b).as_slice() {
        [n] if n == "hello followers" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let f = feed(&b);
    let e = &f["entries"][0];
    assert_eq!(
        (e["user_id"].as_str(), e["kind"].as_str(), e["seq"].as_u64()),
        (Some(a_user.as_str()), Some("post"), Some(1))
    );
    assert_eq!(e["link"].as_str(), Some(link.as_str()));
    assert!(e["learned_unix_ms"].as_u64() >= e["published_unix_ms"].as_u64(), "{f}");
    assert_eq!(f["following"][0]["peer_id"].as_str(), Some(a.peer_id.as_str()), "the peer id was learned: {f}");
    let text = ok(&b.cli(&["get", &link]), "fetch the post");
    assert!(text.contains("hello followers"), "{text}");
    // b fetched the post by itself as it learned it: the feed shows its text.
    wait_until("b fetched the post's text", Duration::from_secs(30), || {
        match feed(&b)["entries"][0]["text"].as_str() {
            Some("hello followers") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    // b stops; a posts again; b restarts: it still follows a and catches up on the missed post.
    b.proc.terminate(Duration::from_secs(10));
    ok(&a.cli(&["put", "--post", "while you were away"]), "second post");
    b = start("b", t.path(), &url, &logs);
    let f = feed(&b);
    assert_eq!(f["following"].as_array().map(Vec::len), Some(1), "the follow list survived: {f}");
    assert_eq!(f["following"][0]["user_id"].as_str(), Some(a_user.as_str()));
    wait_until("b caught up", Duration::from_secs(60), || match names(&b).as_slice() {
        [n, o] if n == "while you were away" && o == "hello followers" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let text = ok(&b.cli(&["feed"]), "feed as text");
    assert!(text.contains(&format!("following {a_user}")) && text.contains("2 entries"), "{text}");
    let out = ok(&b.cli(&["unfollow", &a_user]), "unfollow");
    assert!(out.contains("no longer following"), "{out}");
    assert!(feed(&b)["following"].as_array().unwrap().is_empty());
}
