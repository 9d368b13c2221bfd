//! Fetching whole files through the core: in order and within the window however the chunks
//! arrive, and every bad link, root or chunk an error that names it.

use super::*;
use crate::content::{prepare_file, share::plaintext_manifest_root, share_post, Post, ShareLink};
use rand::Rng;

/// A file published elsewhere: its chunks and root in the swarm, and its link.
fn elsewhere(h: &mut Harness, bytes: &[u8], key_seed: u8) -> ShareLink {
    let share = share_file(&identity(), "far.bin", bytes, CHUNK, FileKey::from_bytes([key_seed; 32]), UNIX0).unwrap();
    for c in share.chunks.iter().chain(std::iter::once(&share.root)) {
        h.remote.insert(c.id, c.ciphertext.clone());
    }
    share.link
}

fn fetched(h: &Harness, op: OpId) -> Option<Result<(), FileError>> {
    h.events.iter().find_map(|e| match e {
        FileEvent::Fetched { op: o, result } if *o == op => Some(result.clone()),
        _ => None,
    })
}

fn pieces(h: &Harness, op: OpId) -> Vec<u8> {
    h.events
        .iter()
        .filter_map(|e| match e {
            FileEvent::Piece { op: o, data } if *o == op => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    /// Chunks answered in any order, a caller taking pieces whenever it likes: the pieces come
    /// in file order, and requests in flight plus pieces held never pass the window.
    #[test]
    fn fetch_delivers_pieces_in_order_and_within_the_window(
        chunks in 0usize..20,
        tail in 0usize..1000,
        seed in any::<u64>(),
    ) {
        let bytes = data(chunks * CHUNK + tail, 7);
        let disk = Disk::default();
        let mut h = Harness::new(&disk, 1 << 30);
        h.eager = false;
        h.consume = false;
        let link = elsewhere(&mut h, &bytes, 1);
        let window = FilesConfig::default().fetch_window_chunks;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        h.input(Input::Fetch { op: 7, link });
        let mut taken = 0;
        for _ in 0..10_000 {
            if fetched(&h, 7).is_some() { break }
            let handed = pieces_count(&h, 7);
            prop_assert!(h.fetches.len() + handed - taken <= window, "{} asked, {} held", h.fetches.len(), handed - taken);
            if handed > taken && (h.fetches.is_empty() || rng.gen_bool(0.3)) {
                taken += 1;
                h.input(Input::Consumed { op: 7 });
            } else if !h.fetches.is_empty() {
                let i = rng.gen_range(0..h.fetches.len());
                h.answer(i);
                h.run();
            }
        }
        prop_assert_eq!(fetched(&h, 7), Some(Ok(())));
        prop_assert!(pieces(&h, 7) == bytes, "pieces out of order or altered");
        let opened = h.events.iter().find_map(|e| match e { FileEvent::Opened { root, .. } => Some(root.clone()), _ => None });
        let want_chunks = bytes.len().div_ceil(CHUNK);
        let ok = matches!(opened, Some(RootInfo::File { size, chunks, .. }) if size == bytes.len() as u64 && chunks == want_chunks);
        prop_assert!(ok, "opened as {:?}", opened);
    }
}

fn pieces_count(h: &Harness, op: OpId) -> usize {
    h.events.iter().filter(|e| matches!(e, FileEvent::Piece { op: o, .. } if *o == op)).count()
}

#[test]
fn bad_links_roots_and_chunks_are_errors_that_name_them() {
    let disk = Disk::default();
    let mut h = Harness::new(&disk, 1 << 30);
    let bytes = data(3 * CHUNK, 8);
    let link = elsewhere(&mut h, &bytes, 2);
    let err = |h: &mut Harness, op: OpId, link: ShareLink| {
        h.input(Input::Fetch { op, link });
        fetched(h, op).expect("ended").expect_err("must fail")
    };
    // A file's root without its key, or under another key.
    let e = err(&mut h, 1, ShareLink { root: link.root, key: None });
    assert!(matches!(e, FileError::BadRoot(_)), "{e}");
    let e = err(&mut h, 2, ShareLink { root: link.root, key: Some(FileKey::from_bytes([0; 32])) });
    assert!(e.to_string().contains("wrong key"), "{e}");
    // A manifest in the clear, with or without a key.
    let (manifest, _) = prepare_file("x", &[1; 10], 10, &FileKey::from_bytes([1; 32])).unwrap();
    let plain = plaintext_manifest_root(&identity(), &manifest);
    h.remote.insert(plain.id, plain.ciphertext.clone());
    let e = err(&mut h, 3, ShareLink { root: plain.id, key: None });
    assert!(e.to_string().contains("plaintext manifest"), "{e}");
    // No holder of the root; no holder of chunk 1; chunk 2 served altered.
    let e = err(&mut h, 4, ShareLink { root: ChunkId([7; 32]), key: None });
    assert!(matches!(e, FileError::RootUnavailable { root, .. } if root == ChunkId([7; 32])), "{e}");
    let share = share_file(&identity(), "f", &bytes, CHUNK, FileKey::from_bytes([2; 32]), UNIX0).unwrap();
    h.remote.remove(&share.chunks[1].id);
    let e = err(&mut h, 5, link.clone());
    assert!(matches!(e, FileError::ChunkUnavailable { index: 1, .. }), "{e}");
    assert!(e.to_string().contains(&share.chunks[1].id.to_string()), "the error names the chunk: {e}");
    h.remote.insert(share.chunks[1].id, share.chunks[1].ciphertext.clone());
    h.remote.insert(share.chunks[2].id, vec![0; 100]);
    let e = err(&mut h, 6, link);
    assert!(matches!(e, FileError::BadChunk { index: 2, .. }), "{e}");
    assert_eq!(pieces(&h, 6).len(), 2 * CHUNK, "the chunks before the bad one were handed over");
    assert_eq!(h.core.running(), (0, 0));
}

#[test]
fn posts_empty_files_aborts_and_idle_callers() {
    let disk = Disk::default();
    let mut h = Harness::new(&disk, 1 << 30);
    let post = share_post(&identity(), &Post { text: "hi".into(), reply_to: None }, UNIX0).unwrap();
    h.remote.insert(post.id, post.ciphertext.clone());
    h.input(Input::Fetch { op: 1, link: ShareLink { root: post.id, key: None } });
    assert_eq!(fetched(&h, 1), Some(Ok(())));
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, FileEvent::Opened { root: RootInfo::Post { text, .. }, .. } if text == "hi")));
    let empty = elsewhere(&mut h, &[], 3);
    h.input(Input::Fetch { op: 2, link: empty });
    assert_eq!(fetched(&h, 2), Some(Ok(())));
    assert!(pieces(&h, 2).is_empty());
    // A fetch aborted midway ends at once; answers still on their way are ignored.
    let link = elsewhere(&mut h, &data(20 * CHUNK, 9), 4);
    h.eager = false;
    h.input(Input::Fetch { op: 3, link: link.clone() });
    h.answer(0);
    h.run();
    h.input(Input::Abort { op: 3 });
    assert_eq!(fetched(&h, 3), Some(Err(FileError::Aborted)));
    while !h.fetches.is_empty() {
        h.answer(0);
    }
    h.run();
    // A caller that takes nothing is given up after the idle timeout.
    h.eager = true;
    h.consume = false;
    h.input(Input::Fetch { op: 4, link });
    assert_eq!(pieces_count(&h, 4), FilesConfig::default().fetch_window_chunks, "a window's worth, no more");
    assert_eq!(h.core.next_timeout(), Some(h.now + FilesConfig::default().idle_timeout_ms));
    h.now += FilesConfig::default().idle_timeout_ms;
    h.core.handle_timeout(h.now);
    h.run();
    assert!(matches!(fetched(&h, 4), Some(Err(FileError::Idle { .. }))));
    assert_eq!(h.core.running(), (0, 0));
}
