//! Storage effects on one content core: a refused write leaves the index as it was and ends the
//! request as a refused write always did; a full index refuses before anything is written; a
//! failed read is "not held" for its request.

use super::*;
use crate::content::Inventory;
use crate::links::LinkTable;
use crate::routing::{RoutingTable, TableConfig};
use crate::storage::memory::MemoryStorage;
use crate::storage::{Entries, StorageError};

/// A memory store that refuses reads or writes when told, counting the writes it was asked for.
#[derive(Default)]
struct Flaky {
    mem: MemoryStorage,
    refuse_reads: bool,
    refuse_writes: bool,
    writes: usize,
}

impl Storage for Flaky {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        if self.refuse_reads {
            return Err(StorageError::Backend("reads refused by the test".into()));
        }
        self.mem.get(table, key)
    }
    fn scan(&self, table: Table) -> Result<Entries, StorageError> {
        self.mem.scan(table)
    }
    fn apply(&mut self, ops: &[Op]) -> Result<(), StorageError> {
        self.writes += 1;
        if self.refuse_writes {
            return Err(StorageError::Backend("writes refused by the test".into()));
        }
        self.mem.apply(ops)
    }
}

struct One {
    core: ContentCore,
    store: Flaky,
    _links: LinkTable,
    peer: PeerId,
    outs: Vec<Output>,
}

impl One {
    fn new(capacity: u64) -> One {
        let me = PeerId([1; 32]);
        let peer = PeerId([2; 32]);
        let (index, store) = Inventory::open(Flaky::default(), capacity).unwrap().into_parts();
        let links = LinkTable::default();
        links.set(peer, true);
        let table = TableView::new(RoutingTable::new(&me, TableConfig { k: 8, replacements: 4 }));
        let (r, k) = (ReplicationConfig::default(), RoutingConfig::default());
        let core = ContentCore::new(me, r, k, index, links.view(), table);
        One { core, store, _links: links, peer, outs: vec![] }
    }

    fn input(&mut self, i: Input) {
        self.core.handle(0, i);
        while let Some(o) = self.core.poll_applying(0, &mut self.store) {
            self.outs.push(o);
        }
        self.core.check_invariants();
        self.core.index().check_invariants();
    }

    fn published(&self) -> Vec<Result<(), PublishError>> {
        self.outs
            .iter()
            .filter_map(|o| match o {
                Output::Done(ContentResult::Published { result, .. }) => Some(result.clone()),
                _ => None,
            })
            .collect()
    }

    fn reclaimed(&self, id: u64) -> Option<Result<Vec<ChunkId>, String>> {
        self.outs.iter().find_map(|o| match o {
            Output::Done(ContentResult::Reclaimed { id: i, result }) if *i == id => Some(result.clone()),
            _ => None,
        })
    }

    fn sent(&self) -> Vec<&Message> {
        self.outs
            .iter()
            .filter_map(|o| match o {
                Output::Effect(Effect::Send { to, msg }) if *to == self.peer => Some(msg),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_refused_write_leaves_the_index_as_it_was_and_fails_the_publish() {
    let mut n = One::new(1 << 20);
    n.store.refuse_writes = true;
    n.input(Input::Publish { data: b"first".to_vec() });
    assert!(matches!(n.published().as_slice(), [Err(PublishError::Store(e))] if e.contains("refused")));
    assert_eq!((n.core.index().chunk_count(), n.core.index().used_bytes()), (0, 0));
    n.store.refuse_writes = false;
    n.input(Input::Publish { data: b"first".to_vec() });
    assert!(matches!(n.published().as_slice(), [Err(_), Ok(())]));
    let chunk = ChunkId::of(b"first");
    assert!(n.core.index().held(&chunk).is_some_and(|h| h.own));
    assert_eq!(n.store.mem.get(Table::Chunks, &chunk.0).unwrap().as_deref(), Some(&b"first"[..]));
}

#[test]
fn a_full_index_refuses_before_anything_is_written() {
    let mut n = One::new(4);
    n.input(Input::Publish { data: b"too big".to_vec() });
    assert!(matches!(n.published().as_slice(), [Err(PublishError::Store(e))] if e.contains("inventory full")));
    assert_eq!(n.store.writes, 0);
}

#[test]
fn a_failed_read_is_not_held_for_that_request() {
    let mut n = One::new(1 << 20);
    n.input(Input::Publish { data: b"held".to_vec() });
    let chunk = ChunkId::of(b"held");
    n.input(Input::Frame { from: n.peer, msg: Message::GetChunk { chunk } });
    assert!(matches!(n.sent().last(), Some(Message::ChunkData { data, .. }) if data == b"held"));
    n.store.refuse_reads = true;
    n.input(Input::Frame { from: n.peer, msg: Message::GetChunk { chunk } });
    assert!(matches!(n.sent().last(), Some(Message::NoChunk { chunk: c }) if *c == chunk));
    assert_eq!(n.core.stats().chunks_served, 1);
}

#[test]
fn a_refused_reclaim_restores_the_index_and_says_why() {
    let mut n = One::new(1 << 20);
    n.input(Input::Publish { data: b"one".to_vec() });
    n.input(Input::Publish { data: b"two".to_vec() });
    let chunks = vec![ChunkId::of(b"one"), ChunkId::of(b"two")];
    let before: Vec<_> = n.core.index().all_held().map(|(c, h)| (*c, *h)).collect();
    n.store.refuse_writes = true;
    n.input(Input::Reclaim { id: 3, chunks: chunks.clone() });
    assert!(matches!(n.reclaimed(3), Some(Err(_))));
    assert_eq!(n.core.index().all_held().map(|(c, h)| (*c, *h)).collect::<Vec<_>>(), before);
    n.store.refuse_writes = false;
    n.input(Input::Reclaim { id: 4, chunks: chunks.clone() });
    assert_eq!(n.reclaimed(4), Some(Ok(chunks)));
    assert_eq!(n.core.index().chunk_count(), 0);
}
