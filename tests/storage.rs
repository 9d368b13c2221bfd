//! The store across processes: what one `swarm` process committed, the next one reads back,
//! even when the writer is killed with SIGKILL in the middle of writing; `swarm peers` reads and
//! writes the very registry a node keeps in its data directory.

mod common;

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

/// A node that stored its registry on disk comes back on the same directory knowing its peers:
/// restarted with no bootstrap at all, it rejoins the swarm from what it stored.
#[test]
fn a_restarted_node_rejoins_from_its_stored_registry() {
    use common::simnode::{self, UNIX0};
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;
    use swarm_engine::discovery::{PeerStore, StoredPeer};
    use swarm_engine::identity::Identity;
    use swarm_engine::node::Node;
    use swarm_engine::storage::heed_store::HeedStorage;
    use swarm_engine::storage::records::PeerTable;
    use swarm_engine::storage::Storage;
    use swarm_engine::{NodeConfig, PeerId};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    simnode::run(move |net, clock| async move {
        let ids: Vec<Rc<Identity>> = (1..=5u8).map(|i| Rc::new(Identity::from_secret(&[i; 32]))).collect();
        let start = |slot: usize, bootstrap: Vec<PeerId>, store: Option<(PeerStore, Vec<StoredPeer>)>| {
            let mut p = simnode::params(&net, clock, slot as u32, ids[slot].clone(), bootstrap);
            p.peer_store = store;
            simnode::start(&net, slot as u32, p)
        };
        // Slots 1-4 know each other; slot 0 knows only slot 1 and learns the rest by PEX.
        let all: Vec<PeerId> = ids.iter().map(|i| i.peer_id()).collect();
        let _others: Vec<Node> = (1..5).map(|s| start(s, all.clone(), None)).collect();
        let storage: Rc<RefCell<dyn Storage>> = Rc::new(RefCell::new(HeedStorage::open(&db).unwrap()));
        let store = PeerStore::new(storage.clone(), UNIX0);
        let restored = store.restore(NodeConfig::default().discovery.forget_after_ms()).unwrap();
        assert!(restored.is_empty());
        let node = start(0, vec![all[1]], Some((store, restored)));
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert_eq!(net.connectivity().1, 5, "slot 0 joined");
        node.stop();
        net.crash(0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(storage);
        assert_eq!(net.connectivity().0, 4);
        // A new process would open the directory afresh: so do we, and look at what is stored.
        let storage: Rc<RefCell<dyn Storage>> = Rc::new(RefCell::new(HeedStorage::open(&db).unwrap()));
        let stored = PeerTable::all(&*storage.borrow()).unwrap();
        assert_eq!(stored.len(), 4, "every peer slot 0 met is stored: {stored:?}");
        assert!(stored.iter().all(|r| r.last_seen_ms > UNIX0 && r.user_id.len() == 16));
        assert!(stored.iter().filter(|r| r.successes >= 1).count() >= 2, "connections are counted: {stored:?}");
        let store = PeerStore::new(storage, UNIX0 + 301_000);
        let restored = store.restore(NodeConfig::default().discovery.forget_after_ms()).unwrap();
        assert_eq!(restored.len(), 4);
        // Restarted with no bootstrap: only the stored registry can bring it back.
        let _again = start(0, vec![], Some((store, restored)));
        tokio::time::sleep(Duration::from_secs(60)).await;
        let (live, largest, _) = net.connectivity();
        assert_eq!((live, largest), (5, 5), "the restarted node rejoined from its stored registry");
    });
}

/// `swarm peers` on a real node's directory: it lists what the node stored, what it adds the node
/// restores at its next start, and on a directory without a registry it says so and creates none.
#[test]
fn swarm_peers_uses_the_registry_of_the_node_directory() {
    use common::procs::{start_node, wait_until, Logs, NodeOpts};
    use std::time::Duration;
    use swarm_engine::storage::heed_store::HeedStorage;
    use swarm_engine::storage::records::{PeerRecord, PeerTable};
    use swarm_engine::PeerId;

    let t = tempfile::tempdir().unwrap();
    let logs = Logs::new(t.path().join("logs"));
    let data = t.path().join("node");
    let mut node = start_node("n", NodeOpts::new(data.clone(), &[]), &logs.dir);
    // Answering means it is past installing its SIGTERM handler.
    node.status();
    assert!(node.proc.terminate(Duration::from_secs(10)).success());
    // A peer in the node's registry, stored where the node keeps it (the node writes it there at
    // its re-scans, every two minutes: too slow to wait for).
    let known = PeerId([0x5a; 32]);
    {
        let mut s = HeedStorage::open(&data.join("db")).unwrap();
        let rec = PeerRecord {
            peer_id: known,
            user_id: swarm_engine::identity::user_id(&known),
            last_seen_ms: now_ms(),
            addresses: vec!["ws://127.0.0.1:7000".into()],
            reliability: 0.5,
            successes: 1,
            failures: 0,
        };
        PeerTable::save(&mut s, &rec).unwrap();
    }
    let listed = list(&data);
    assert!(listed.contains(&known.to_string()) && listed.contains("ws://127.0.0.1:7000"), "{listed:?}");

    // Added by hand, restored by the node at its next start.
    let added = "c3".repeat(32);
    let out = swarm().args(["peers", "add", &added, "--data"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let node = start_node("n-again", NodeOpts::new(data.clone(), &[]), &logs.dir);
    wait_until("the node knows both stored peers", Duration::from_secs(10), || {
        let known = node.status()["known_peers"].as_u64().unwrap();
        if known == 2 {
            Ok(())
        } else {
            Err(format!("{known} known"))
        }
    });
    drop(node);

    // No registry: said so, and nothing is created.
    let empty = t.path().join("not-a-node");
    std::fs::create_dir_all(&empty).unwrap();
    for args in [&["peers", "list"][..], &["peers", "prune", "--days", "1"]] {
        let out = swarm().args(args).arg("--data").arg(&empty).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("no peer registry"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "a store was created in {}", empty.display());
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// `swarm peers list` shows what reputation stored for a peer: its score as of now, its
/// standing and the parts of the score (a peer caught with a bad chunk is graylisted).
#[test]
fn peers_list_shows_stored_scores_and_their_parts() {
    use std::cell::RefCell;
    use std::rc::Rc;
    use swarm_engine::core::Core;
    use swarm_engine::reputation::{Input, OffenceKind, Output, ReputationCore, ReputationStore};
    use swarm_engine::storage::heed_store::HeedStorage;
    use swarm_engine::storage::Storage;
    let t = tempfile::tempdir().unwrap();
    let (good, bad) = ("11".repeat(32), "22".repeat(32));
    for id in [&good, &bad] {
        let out = swarm().args(["peers", "add", id, "--data"]).arg(t.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    {
        let db: Rc<RefCell<dyn Storage>> = Rc::new(RefCell::new(HeedStorage::open(&t.path().join("db")).unwrap()));
        let store = ReputationStore::new(db);
        let now_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let mut core = ReputationCore::new(Default::default(), now_unix);
        let bad_id: swarm_engine::PeerId = bad.parse().unwrap();
        core.handle(0, Input::Offence { peer: bad_id, kind: OffenceKind::BadChunk });
        let good_id: swarm_engine::PeerId = good.parse().unwrap();
        core.handle(
            0,
            Input::Request { peer: good_id, outcome: swarm_engine::reputation::Outcome::Served { rtt_ms: 50 } },
        );
        core.handle_timeout(core.next_timeout().unwrap());
        let mut stored = 0;
        while let Some(o) = core.poll_output() {
            if let Output::Persist(batch) = o {
                stored += batch.len();
                store.apply(&batch).unwrap();
            }
        }
        assert_eq!(stored, 2);
    }
    let listed = list(t.path());
    let line = |id: &str| listed.lines().find(|l| l.starts_with(id)).unwrap().to_string();
    assert!(line(&bad).contains("standing=Graylisted") && line(&bad).contains("malice=-99."), "{listed}");
    assert!(line(&good).contains("standing=Acceptable") && line(&good).contains("availability="), "{listed}");
}
