//! Whole files on nodes with a heed store (the simulated network, paused time): a node dropped
//! in the middle of a publication comes back on its directory without the orphans, with its
//! completed publications pinned and the replicas it held for others unpinned, and serves what
//! it completed.

mod common;

use common::simnode;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;
use swarm_engine::content::{ChunkId, ShareLink, MAX_CHUNK_BYTES};
use swarm_engine::files::{store, FileEvent, FileListener, PublicationRecord};
use swarm_engine::identity::Identity;
use swarm_engine::storage::heed_store::HeedStorage;
use swarm_engine::storage::memory::MemoryStorage;
use swarm_engine::storage::{Storage, Table};
use swarm_engine::PeerId;

type Events = Rc<RefCell<Vec<FileEvent>>>;

fn listener(events: &Events) -> FileListener {
    let events = events.clone();
    Box::new(move |ev, files| {
        if let FileEvent::Piece { op, .. } = &ev {
            files.consumed(*op);
        }
        events.borrow_mut().push(ev);
    })
}

fn bytes(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) ^ seed) as u8).collect()
}

fn chunk_ids(s: &dyn Storage) -> BTreeSet<ChunkId> {
    s.value_lens(Table::Chunks).unwrap().into_iter().map(|(k, _)| ChunkId(k.try_into().unwrap())).collect()
}

fn published_link(events: &Events, op: u64) -> Option<ShareLink> {
    events.borrow().iter().find_map(|e| match e {
        FileEvent::Published { op: o, result: Ok(p) } if *o == op => Some(p.link.clone()),
        _ => None,
    })
}

#[test]
fn a_node_dropped_mid_publication_comes_back_without_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let content_dir = dir.path().join("content");
    simnode::run(move |net, clock| async move {
        let ids: Vec<Rc<Identity>> = (1..=2u8).map(|i| Rc::new(Identity::from_secret(&[i; 32]))).collect();
        let all: Vec<PeerId> = ids.iter().map(|i| i.peer_id()).collect();
        let start = |slot: usize, store: Box<dyn Storage>, events: &Events| {
            let mut p = simnode::params(&net, clock, slot as u32, ids[slot].clone(), all.clone());
            p.content_store = store;
            p.file_listener = Some(listener(events));
            simnode::start(&net, slot as u32, p)
        };
        let (ev0, ev1) = (Events::default(), Events::default());
        let heed = |p: &Path| Box::new(HeedStorage::open(p).unwrap()) as Box<dyn Storage>;
        let node0 = start(0, heed(&content_dir), &ev0);
        let node1 = start(1, Box::new(MemoryStorage::new()), &ev1);
        tokio::time::sleep(Duration::from_secs(20)).await;
        // Node 1's file: node 0 is in every replica set (there are two nodes) and pulls copies.
        node1.publish_file_begin(1, "theirs".into());
        node1.publish_file_piece(1, bytes(300_000, 1).into());
        node1.publish_file_finish(1);
        // Node 0's own: one completed, one cut short after four full chunks were stored.
        let mine = bytes(600_000, 2);
        node0.publish_file_begin(1, "mine".into());
        node0.publish_file_piece(1, mine.clone().into());
        node0.publish_file_finish(1);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let link = published_link(&ev0, 1).expect("node 0's file published");
        assert!(published_link(&ev1, 1).is_some(), "node 1's file published");
        node0.publish_file_begin(2, "cut short".into());
        node0.publish_file_piece(2, bytes(4 * MAX_CHUNK_BYTES, 3).into());
        tokio::time::sleep(Duration::from_secs(1)).await;
        node0.stop();
        net.crash(0);
        tokio::time::sleep(Duration::from_secs(1)).await;

        // What the directory holds, read as a new process would.
        let (before, journal) = {
            let raw = HeedStorage::open(&content_dir).unwrap();
            (chunk_ids(&raw), raw.scan(Table::PublishJournal).unwrap().len())
        };
        assert_eq!(journal, 4, "the unfinished publication's four chunks are journalled");
        let opened = store::open(heed(&content_dir), 1 << 30).unwrap();
        let orphans: BTreeSet<ChunkId> = opened.reclaimed.iter().copied().collect();
        assert_eq!(orphans.len(), 4, "exactly the unfinished publication's chunks are reclaimed");
        assert!(orphans.is_subset(&before));
        let after = chunk_ids(&**opened.store.storage().borrow());
        assert_eq!(after, before.difference(&orphans).copied().collect::<BTreeSet<_>>());
        let records = PublicationRecord::all(&**opened.store.storage().borrow()).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].0, link.root);
        let own: BTreeSet<ChunkId> = std::iter::once(link.root).chain(records[0].1.chunks.iter().copied()).collect();
        assert_eq!(own.len(), 4, "three data chunks and the root");
        for (id, held) in opened.inventory.all_held() {
            if own.contains(id) {
                assert!(held.own && !held.replica, "a completed publication's chunk comes back pinned");
            } else {
                assert!(held.replica && !held.own, "anything else comes back as an unpinned replica");
            }
        }
        let replicas = after.difference(&own).count();
        assert!(replicas >= 2, "node 1's chunks are held as replicas: {replicas}");
        assert_eq!(opened.store.storage().borrow().scan(Table::PublishJournal).unwrap().len(), 0);
        drop(opened);

        // Back on its directory, node 0 serves its completed file to node 1, whole.
        let node0 = start(0, heed(&content_dir), &ev0);
        tokio::time::sleep(Duration::from_secs(20)).await;
        node1.fetch_file(9, link);
        tokio::time::sleep(Duration::from_secs(30)).await;
        let got: Vec<u8> = ev1
            .borrow()
            .iter()
            .filter_map(|e| match e {
                FileEvent::Piece { op: 9, data } => Some(data.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(ev1.borrow().iter().any(|e| matches!(e, FileEvent::Fetched { op: 9, result: Ok(()) })));
        assert!(got == mine, "the file came back altered");
        node0.stop();
        node1.stop();
    });
}
