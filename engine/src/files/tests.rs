//! The files core driven by hand: its content actor is a real [`Inventory`] over a memory store
//! (the one the files tables live in too), answering stores and fetches when the test says, so
//! the tests can hold chunks in flight, fail stores, crash and restart.

use super::store::{open, PublicationRecord};
use super::*;
use crate::config::FilesConfig;
use crate::content::chunk::encrypt_one;
use crate::content::{share_file, ChunkId, FileKey, Inventory, Role, MAX_CHUNK_BYTES};
use crate::core::Core;
use crate::identity::{Ed25519Verifier, Identity};
use crate::storage::memory::MemoryStorage;
use crate::storage::{Storage, Table};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

mod fetching;

const SEED: [u8; 32] = [5; 32];
const UNIX0: u64 = 1_700_000_000_000;
const CHUNK: usize = MAX_CHUNK_BYTES;

type Disk = Rc<RefCell<MemoryStorage>>;

struct Harness {
    core: FilesCore,
    inv: Inventory<Box<dyn Storage>>,
    store: FilesStore,
    now: Millis,
    events: Vec<FileEvent>,
    /// Stores and fetches asked of the content actor, not answered yet.
    publishes: VecDeque<Vec<u8>>,
    fetches: VecDeque<(u64, ChunkId)>,
    /// Chunks elsewhere in the swarm (fetches find them there).
    remote: BTreeMap<ChunkId, Vec<u8>>,
    /// Answer stores and fetches at once (else the test does, with `store_one` / `answer`).
    pub eager: bool,
    /// Most stores outstanding at once.
    pub max_storing: usize,
    /// Take every piece at once.
    pub consume: bool,
    /// Writes held back (applied with `apply_writes`), and a kind of write the store refuses.
    pub hold_writes: bool,
    held_writes: VecDeque<(OpId, Write, Vec<crate::storage::Op>)>,
    pub refuse: Option<Write>,
}

type Millis = crate::time::Millis;

fn identity() -> Rc<Identity> {
    Rc::new(Identity::from_secret(&[3; 32]))
}

impl Harness {
    fn new(disk: &Disk, capacity: u64) -> Harness {
        let opened = open(Box::new(disk.clone()), capacity).unwrap();
        let core = FilesCore::new(
            identity(),
            Rc::new(Ed25519Verifier),
            FilesConfig::default(),
            UNIX0,
            ChaCha20Rng::from_seed(SEED),
            opened.published,
        );
        Harness {
            core,
            inv: opened.inventory,
            store: opened.store,
            now: 0,
            events: vec![],
            publishes: VecDeque::new(),
            fetches: VecDeque::new(),
            remote: BTreeMap::new(),
            eager: true,
            max_storing: 0,
            consume: true,
            hold_writes: false,
            held_writes: VecDeque::new(),
            refuse: None,
        }
    }

    fn input(&mut self, i: Input) {
        self.core.handle(self.now, i);
        self.run();
    }

    /// Apply outputs until the core is quiet (answering stores and fetches if eager).
    fn run(&mut self) {
        for _ in 0..100_000 {
            self.core.check_invariants();
            let Some(o) = self.core.poll_output() else {
                if self.eager && !(self.publishes.is_empty() && self.fetches.is_empty()) {
                    self.store_one();
                    self.answer(0);
                    continue;
                }
                return;
            };
            match o {
                Output::Write { op, write, ops } if self.hold_writes => self.held_writes.push_back((op, write, ops)),
                Output::Write { op, write, ops } => self.write(op, write, ops),
                Output::Content(ContentInput::Publish { data }) => {
                    self.publishes.push_back(data);
                    self.max_storing = self.max_storing.max(self.publishes.len());
                }
                Output::Content(ContentInput::Fetch { id, chunk }) => self.fetches.push_back((id, chunk)),
                Output::Content(ContentInput::Reclaim { id, chunks }) => {
                    let result = self.inv.reclaim(&chunks).map(|r| r.removed).map_err(|e| e.to_string());
                    self.core.handle(self.now, Input::Content(ContentResult::Reclaimed { id, result }));
                }
                Output::Content(other) => panic!("unexpected {other:?}"),
                Output::Event(e) => {
                    if let (true, FileEvent::Piece { op, .. }) = (self.consume, &e) {
                        let op = *op;
                        self.events.push(e);
                        self.core.handle(self.now, Input::Consumed { op });
                    } else {
                        self.events.push(e);
                    }
                }
            }
        }
        panic!("the core never went quiet");
    }

    fn write(&mut self, op: OpId, write: Write, ops: Vec<crate::storage::Op>) {
        let result = if self.refuse == Some(write) {
            Err("refused by the test".to_string())
        } else {
            self.store.apply(&ops).map_err(|e| e.to_string())
        };
        self.core.handle(self.now, Input::Written { op, write, result });
    }

    fn apply_writes(&mut self) {
        self.hold_writes = false;
        while let Some((op, write, ops)) = self.held_writes.pop_front() {
            self.write(op, write, ops);
            self.run();
        }
    }

    /// Store the oldest chunk asked for, as the content actor would.
    fn store_one(&mut self) {
        let Some(data) = self.publishes.pop_front() else { return };
        let chunk = ChunkId::of(&data);
        let result = self
            .inv
            .put_chunk(&chunk, &data, Role::Own)
            .map_err(|e| crate::replication::PublishError::Store(e.to_string()));
        self.core.handle(self.now, Input::Content(ContentResult::Published { chunk, result }));
    }

    /// Answer the `i`-th fetch asked for (from the local store, else the swarm).
    fn answer(&mut self, i: usize) {
        let Some((id, chunk)) = self.fetches.remove(i) else { return };
        let local = self.inv.get_chunk(&chunk).unwrap();
        let result = local.or_else(|| self.remote.get(&chunk).cloned()).ok_or(FetchError::NotFound(chunk));
        self.core.handle(self.now, Input::Content(ContentResult::Fetched { id, chunk, result }));
    }

    fn publish(&mut self, op: OpId, name: &str, pieces: &[&[u8]]) -> Result<PublishedFile, FileError> {
        self.input(Input::PublishBegin { op, name: name.into() });
        for p in pieces {
            self.input(Input::PublishPiece { op, data: Bytes::copy_from_slice(p) });
        }
        self.input(Input::PublishFinish { op });
        self.published(op).expect("the publication ended")
    }

    /// The final event of publication `op`, if it ended.
    fn published(&self, op: OpId) -> Option<Result<PublishedFile, FileError>> {
        self.events.iter().find_map(|e| match e {
            FileEvent::Published { op: o, result } if *o == op => Some(result.clone()),
            _ => None,
        })
    }

    fn accepted(&self, op: OpId) -> usize {
        self.events.iter().filter(|e| matches!(e, FileEvent::Accepted { op: o } if *o == op)).count()
    }

    fn held(&self) -> BTreeSet<ChunkId> {
        self.inv.chunk_ids().into_iter().collect()
    }
}

fn journal_len(disk: &Disk) -> usize {
    disk.borrow().scan(Table::PublishJournal).unwrap().len()
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(u32::from(seed)) as u8).collect()
}

/// The file keys the core will draw, in order.
fn keys(n: usize) -> Vec<FileKey> {
    let mut rng = ChaCha20Rng::from_seed(SEED);
    (0..n).map(|_| FileKey::generate(&mut rng)).collect()
}

/// Cut `len` into pieces at the given cut points.
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = vec![];
    let mut prev = 0;
    for c in at.into_iter().chain(std::iter::once(bytes.len())) {
        out.push(bytes[prev..c].to_vec());
        prev = c;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Streaming is only a way of feeding bytes: any cut gives the chunks, root and link of the
    /// whole file shared at once, and never more than the window of chunks is being stored.
    #[test]
    fn pieces_of_any_size_give_the_same_chunks_and_link_as_the_whole_file(
        len in 0usize..(3 * CHUNK + 1000),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        lazy in any::<bool>(),
    ) {
        let bytes = data(len, 1);
        let whole = share_file(&identity(), "f.bin", &bytes, CHUNK, keys(1).remove(0), UNIX0).unwrap();
        let disk = Disk::default();
        let mut h = Harness::new(&disk, 1 << 30);
        h.eager = !lazy;
        let pieces = split(&bytes, &cuts);
        h.input(Input::PublishBegin { op: 1, name: "f.bin".into() });
        for (i, p) in pieces.iter().enumerate() {
            h.input(Input::PublishPiece { op: 1, data: Bytes::copy_from_slice(p) });
            // Stores come back one at a time until the piece is taken.
            while lazy && h.accepted(1) < i + 2 && !h.publishes.is_empty() { h.store_one(); h.run(); }
        }
        h.input(Input::PublishFinish { op: 1 });
        for _ in 0..1000 { if h.publishes.is_empty() { break } h.store_one(); h.run(); }
        let r = h.published(1).expect("ended").unwrap();
        prop_assert_eq!(&r.link, &whole.link);
        prop_assert_eq!(r.chunks, whole.chunks.len() + 1);
        prop_assert_eq!(r.bytes, len as u64);
        let mut want: BTreeSet<ChunkId> = whole.chunks.iter().map(|c| c.id).collect();
        want.insert(whole.root.id);
        prop_assert_eq!(h.held(), want);
        prop_assert!(h.inv.all_held().all(|(_, held)| held.own), "a publication's chunks are its own");
        prop_assert!(h.max_storing <= FilesConfig::default().publish_window_chunks + 1, "{} chunks in flight", h.max_storing);
        prop_assert_eq!(h.accepted(1), pieces.len() + 1, "one Accepted to begin, one per piece");
        prop_assert_eq!(journal_len(&disk), 0, "the record replaced the journal");
        let recs = PublicationRecord::all(&*disk.borrow()).unwrap();
        prop_assert_eq!(recs.len(), 1);
        prop_assert_eq!(recs[0].0, whole.root.id);
        prop_assert_eq!(&recs[0].1.chunks, &whole.manifest.chunks);
    }

    /// However a publication ends badly (aborted, a chunk refused by a full store, the caller
    /// gone quiet), everything it stored is reclaimed, and nothing else: not a completed
    /// publication's chunks, not a replica it happened to store again.
    #[test]
    fn a_failed_publication_reclaims_what_it_stored_and_nothing_else(
        pieces in 1usize..10,
        how in 0u8..3,
    ) {
        let disk = Disk::default();
        let capacity = if how == 1 { (5 * (CHUNK + 16) + 2 * (CHUNK + 16)) as u64 } else { 1 << 30 };
        let mut h = Harness::new(&disk, capacity);
        let first = h.publish(1, "a", &[&data(CHUNK + 5, 2)]).unwrap();
        let kept = h.held();
        prop_assert_eq!(kept.len(), 3);
        // The second publication's first chunk is also held as a replica (same bytes).
        let second = data(pieces * CHUNK, 3);
        let twin = encrypt_one(&keys(2)[1], 0, &second[..CHUNK]).unwrap();
        h.inv.put_chunk(&twin.id, &twin.ciphertext, Role::Replica).unwrap();
        h.input(Input::PublishBegin { op: 2, name: "b".into() });
        for p in second.chunks(CHUNK) {
            h.input(Input::PublishPiece { op: 2, data: Bytes::copy_from_slice(p) });
        }
        match how {
            0 => h.input(Input::Abort { op: 2 }),
            1 => h.input(Input::PublishFinish { op: 2 }),
            _ => {
                h.now += FilesConfig::default().idle_timeout_ms;
                h.core.handle_timeout(h.now);
                h.run();
            }
        }
        // Room for four more full chunks and a root beside the twin (already held).
        let result = h.published(2).expect("ended");
        if how == 1 && pieces <= 5 {
            prop_assert!(result.is_ok(), "{result:?}");
            return Ok(());
        }
        let err = result.unwrap_err();
        match how {
            0 => prop_assert_eq!(err, FileError::Aborted),
            1 => prop_assert!(matches!(err, FileError::Store { .. }), "{err}"),
            _ => prop_assert!(matches!(err, FileError::Idle { .. }), "{err}"),
        }
        let mut want = kept.clone();
        want.insert(twin.id);
        prop_assert_eq!(h.held(), want, "only the completed publication and the replica are left");
        prop_assert_eq!(h.inv.held(&twin.id).map(|x| (x.own, x.replica)), Some((false, true)));
        prop_assert_eq!(journal_len(&disk), 0);
        prop_assert_eq!(PublicationRecord::all(&*disk.borrow()).unwrap().len(), 1);
        // The first publication is still whole.
        prop_assert!(kept.contains(&first.link.root));
    }
}

/// A node that crashes mid-publication (the harness dropped, nothing finished) finds the
/// journal at start and reclaims what it names; completed publications stay pinned, replicas
/// stay unpinned.
#[test]
fn a_publication_cut_short_by_a_crash_is_reclaimed_at_start() {
    let disk = Disk::default();
    let replica = encrypt_one(&FileKey::from_bytes([9; 32]), 0, b"someone else's").unwrap();
    let (done, orphans) = {
        let mut h = Harness::new(&disk, 1 << 30);
        h.inv.put_chunk(&replica.id, &replica.ciphertext, Role::Replica).unwrap();
        let done = h.publish(1, "kept", &[&data(2 * CHUNK, 4)]).unwrap();
        let before = h.held();
        h.input(Input::PublishBegin { op: 2, name: "cut short".into() });
        h.input(Input::PublishPiece { op: 2, data: Bytes::from(data(3 * CHUNK + 7, 5)) });
        let orphans: BTreeSet<ChunkId> = h.held().difference(&before).copied().collect();
        assert_eq!(orphans.len(), 3, "three full chunks stored before the crash");
        assert_eq!(journal_len(&disk), 3);
        (done, orphans)
    };
    let h = Harness::new(&disk, 1 << 30);
    assert!(h.held().is_disjoint(&orphans), "orphans reclaimed at start");
    assert_eq!(h.held().len(), 4, "three chunks of the completed file and the replica");
    assert!(h.inv.held(&done.link.root).unwrap().own, "a completed publication comes back pinned");
    assert_eq!(h.inv.held(&replica.id).map(|x| (x.own, x.replica)), Some((false, true)));
    assert_eq!(journal_len(&disk), 0);
}

/// Once the root is stored and the record on its way, the publication is done: an abort then
/// changes nothing (it would reclaim what the record names). A record the store refuses fails
/// the publication, and everything is reclaimed.
#[test]
fn the_record_write_decides_the_publication() {
    let disk = Disk::default();
    let mut h = Harness::new(&disk, 1 << 30);
    h.eager = false;
    h.input(Input::PublishBegin { op: 1, name: "late abort".into() });
    h.input(Input::PublishPiece { op: 1, data: Bytes::from(data(CHUNK + 1, 6)) });
    h.input(Input::PublishFinish { op: 1 });
    for _ in 0..2 {
        h.store_one(); // the two data chunks; then the root is sealed and sent
        h.run();
    }
    h.hold_writes = true;
    h.store_one();
    h.run();
    assert_eq!(h.held_writes.len(), 1, "the record write is outstanding");
    assert!(h.published(1).is_none());
    h.input(Input::Abort { op: 1 });
    h.apply_writes();
    let done = h.published(1).unwrap().unwrap();
    assert_eq!(h.held().len(), 3, "all kept");
    assert!(h.held().contains(&done.link.root));
    assert_eq!(journal_len(&disk), 0);

    h.eager = true;
    h.refuse = Some(Write::Record);
    let before = h.held();
    let err = h.publish(2, "refused record", &[&data(2 * CHUNK, 7)]).unwrap_err();
    assert!(matches!(err, FileError::Record(_)), "{err}");
    assert_eq!(h.held(), before, "everything of the refused publication reclaimed");
    assert_eq!(journal_len(&disk), 0, "its journal entries forgotten");
    assert_eq!(PublicationRecord::all(&*disk.borrow()).unwrap().len(), 1);
}

#[test]
fn limits_duplicates_names_and_posts() {
    let disk = Disk::default();
    let mut h = Harness::new(&disk, 1 << 30);
    let max = FilesConfig::default().max_publishes as u64;
    for op in 0..max {
        h.input(Input::PublishBegin { op, name: "x".into() });
    }
    h.input(Input::PublishBegin { op: 0, name: "x".into() });
    assert_eq!(h.published(0), Some(Err(FileError::DuplicateOp(0))));
    h.input(Input::PublishBegin { op: 99, name: "x".into() });
    assert!(matches!(h.published(99), Some(Err(FileError::Busy { .. }))));
    for op in 0..max {
        h.input(Input::Abort { op });
    }
    h.input(Input::PublishBegin { op: 100, name: "n".repeat(300) });
    assert!(matches!(h.published(100), Some(Err(FileError::Content(_)))), "{:?}", h.published(100));
    h.input(Input::PublishPost { op: 101, text: "hello".into() });
    let post = h.published(101).unwrap().unwrap();
    assert!(post.link.key.is_none() && post.chunks == 1);
    let recs = PublicationRecord::all(&*disk.borrow()).unwrap();
    assert_eq!((recs.len(), recs[0].0, recs[0].1.name.clone()), (1, post.link.root, None));
    assert_eq!(h.core.running(), (0, 0));
    assert_eq!(journal_len(&disk), 0);
}
