//! The storage contract, checked on both backends; heed-specific: reopening, growth, full map.

use super::heed_store::HeedStorage;
use super::memory::MemoryStorage;
use super::records::{PeerRecord, PeerTable};
use super::{Op, Storage, StorageError, Table};
use crate::types::PeerId;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("swarm-storage-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn peer(i: u8, last_seen_ms: u64) -> PeerRecord {
    PeerRecord {
        peer_id: PeerId([i; 32]),
        user_id: format!("{i:016x}"),
        last_seen_ms,
        addresses: vec![format!("rendezvous://127.0.0.1:{}", 4000 + u16::from(i))],
        reliability: 1.25,
        successes: 3,
        failures: 1,
    }
}

fn contract(s: &mut dyn Storage) {
    s.put(Table::Posts, b"b", b"2").unwrap();
    s.put(Table::Posts, b"a", b"1").unwrap();
    s.put(Table::Chunks, b"a", b"other table").unwrap();
    assert_eq!(s.get(Table::Posts, b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.scan(Table::Posts).unwrap(), vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
    s.delete(Table::Posts, b"a").unwrap();
    s.delete(Table::Posts, b"never there").unwrap();
    assert_eq!(s.get(Table::Posts, b"a").unwrap(), None);
    assert_eq!(s.get(Table::Chunks, b"a").unwrap(), Some(b"other table".to_vec()));
    s.put(Table::Chunks, b"c", &[7; 5000]).unwrap();
    assert_eq!(s.value_lens(Table::Chunks).unwrap(), vec![(b"a".to_vec(), 11), (b"c".to_vec(), 5000)]);
    assert_eq!(s.value_lens(Table::PublishJournal).unwrap(), vec![]);
    // Records and the registry.
    for (i, seen) in [(1u8, 1_000u64), (2, 50_000), (3, 99_000)] {
        PeerTable::save(s, &peer(i, seen)).unwrap();
    }
    assert_eq!(PeerTable::load(s, &PeerId([2; 32])).unwrap(), Some(peer(2, 50_000)));
    assert_eq!(PeerTable::prune(s, 100_000, 60_000).unwrap(), 1, "only the peer seen at 1 s is too old");
    assert_eq!(PeerTable::all(s).unwrap(), vec![peer(2, 50_000), peer(3, 99_000)]);
    // A corrupt record is an error naming table and key, not a panic.
    s.put(Table::Peers, &[9; 32], b"\xc1 not msgpack").unwrap();
    let e = PeerTable::all(s).unwrap_err().to_string();
    assert!(e.contains("peers") && e.contains(&hex::encode([9u8; 32])), "{e}");
}

#[test]
fn memory_backend_honours_the_contract() {
    contract(&mut MemoryStorage::new());
}

#[test]
fn heed_backend_honours_the_contract_and_survives_reopening() {
    let dir = tmp("contract");
    assert!(!HeedStorage::exists(&dir));
    assert!(!dir.exists(), "asking creates nothing");
    {
        let mut s = HeedStorage::open(&dir).unwrap();
        assert!(HeedStorage::exists(&dir));
        contract(&mut s);
    }
    let s = HeedStorage::open(&dir).unwrap();
    assert_eq!(PeerTable::load(&s, &PeerId([3; 32])).unwrap(), Some(peer(3, 99_000)));
    assert_eq!(s.get(Table::Chunks, b"a").unwrap(), Some(b"other table".to_vec()));
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn heed_map_grows_then_reports_full_without_partial_writes() {
    let dir = tmp("grow");
    let mut s = HeedStorage::open_with(&dir, 64 << 10, 1 << 20).unwrap();
    let start = s.map_bytes();
    // 256 KiB in records of 1000 bytes (several per page): more than the 64 KiB initial map,
    // well under the 1 MiB ceiling.
    for i in 0u32..256 {
        s.put(Table::Chunks, &i.to_be_bytes(), &[7u8; 1000]).unwrap();
    }
    assert!(s.map_bytes() > start, "the map must have grown");
    // One batch larger than the ceiling: refused whole.
    let big: Vec<Op> = (1000u32..1400)
        .map(|i| Op::Put { table: Table::Chunks, key: i.to_be_bytes().to_vec(), value: vec![1u8; 4096] })
        .collect();
    assert!(matches!(s.apply(&big), Err(StorageError::Full { max_bytes }) if max_bytes == 1 << 20));
    assert_eq!(s.get(Table::Chunks, &1000u32.to_be_bytes()).unwrap(), None, "no partial batch");
    assert_eq!(s.scan(Table::Chunks).unwrap().len(), 256, "what was stored is intact");
    // Still usable for what fits.
    s.put(Table::Posts, b"after", b"ok").unwrap();
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Both backends agree with a plain map model after any sequence of batches.
    #[test]
    fn backends_match_a_model(batches in prop::collection::vec(
        prop::collection::vec((any::<bool>(), 0u8..3, 0u8..16, any::<u8>()), 0..8), 0..20)) {
        let dir = tmp(&format!("model-{}", rand::random::<u32>()));
        let mut heed = HeedStorage::open(&dir).unwrap();
        let mut mem = MemoryStorage::new();
        let mut model: BTreeMap<(Table, Vec<u8>), Vec<u8>> = BTreeMap::new();
        let tables = [Table::Posts, Table::Chunks, Table::SyncQueue];
        for batch in batches {
            let ops: Vec<Op> = batch.iter().map(|(put, t, k, v)| {
                let (table, key) = (tables[*t as usize], vec![*k]);
                if *put { Op::Put { table, key, value: vec![*v] } } else { Op::Delete { table, key } }
            }).collect();
            for op in &ops {
                match op {
                    Op::Put { table, key, value } => { model.insert((*table, key.clone()), value.clone()); }
                    Op::Delete { table, key } => { model.remove(&(*table, key.clone())); }
                }
            }
            heed.apply(&ops).unwrap();
            mem.apply(&ops).unwrap();
        }
        for t in tables {
            let want: Vec<(Vec<u8>, Vec<u8>)> =
                model.iter().filter(|((mt, _), _)| *mt == t).map(|((_, k), v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(&heed.scan(t).unwrap(), &want);
            prop_assert_eq!(&mem.scan(t).unwrap(), &want);
        }
        drop(heed);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
