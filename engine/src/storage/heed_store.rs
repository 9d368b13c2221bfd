//! LMDB storage through heed. One environment per node directory, one named database per table.
//! The map starts small and doubles whenever a batch does not fit, up to `max_map_bytes`; past
//! that a batch fails with [`StorageError::Full`] and nothing of it is written (the transaction
//! is aborted). LMDB commits are durable: a batch `apply` returned is on disk, whatever happens
//! to the process next.

use super::{Entries, Op, Storage, StorageError, Table};
use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, MdbError};
use std::collections::BTreeMap;
use std::path::Path;

/// First map size (grows on demand).
pub const INITIAL_MAP_BYTES: usize = 16 << 20;
/// Default ceiling of the map.
pub const DEFAULT_MAX_MAP_BYTES: usize = 64 << 30;

pub struct HeedStorage {
    env: Env,
    dbs: BTreeMap<Table, Database<Bytes, Bytes>>,
    map_bytes: usize,
    max_map_bytes: usize,
}

fn backend(e: heed::Error) -> StorageError {
    StorageError::Backend(e.to_string())
}

fn page_multiple(n: usize) -> usize {
    n.div_ceil(4096) * 4096
}

impl HeedStorage {
    /// Whether `dir` holds a storage already (what [`HeedStorage::open`] would open rather than
    /// create); nothing is created.
    pub fn exists(dir: &Path) -> bool {
        dir.join("db").join("data.mdb").is_file()
    }

    /// Open (or create) the storage in `dir/db`.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_with(dir, INITIAL_MAP_BYTES, DEFAULT_MAX_MAP_BYTES)
    }

    pub fn open_with(dir: &Path, initial_map_bytes: usize, max_map_bytes: usize) -> Result<Self, StorageError> {
        let path = dir.join("db");
        std::fs::create_dir_all(&path).map_err(|error| StorageError::Io { path: path.clone(), error })?;
        let max_map_bytes = page_multiple(max_map_bytes.max(initial_map_bytes));
        let map_bytes = page_multiple(initial_map_bytes);
        // Safety: the directory is this node's own; LMDB requires that the same environment is
        // not opened twice in one process, which `HeedStorage` owners are responsible for.
        let env = unsafe { EnvOpenOptions::new().map_size(map_bytes).max_dbs(16).open(&path) }.map_err(backend)?;
        // An existing environment may be larger than the initial size: keep its size.
        let map_bytes = env.info().map_size.max(map_bytes);
        let mut wtxn = env.write_txn().map_err(backend)?;
        let mut dbs = BTreeMap::new();
        for t in Table::ALL {
            let db: Database<Bytes, Bytes> = env.create_database(&mut wtxn, Some(t.name())).map_err(backend)?;
            dbs.insert(t, db);
        }
        wtxn.commit().map_err(backend)?;
        Ok(HeedStorage { env, dbs, map_bytes, max_map_bytes })
    }

    pub fn map_bytes(&self) -> usize {
        self.map_bytes
    }

    fn db(&self, table: Table) -> Database<Bytes, Bytes> {
        self.dbs[&table]
    }

    /// Every entry of a table, in key order, through `f` (which sees slices of the map).
    fn map_entries<T>(&self, table: Table, mut f: impl FnMut(&[u8], &[u8]) -> T) -> Result<Vec<T>, StorageError> {
        let rtxn = self.env.read_txn().map_err(backend)?;
        let mut out = Vec::new();
        for kv in self.db(table).iter(&rtxn).map_err(backend)? {
            let (k, v) = kv.map_err(backend)?;
            out.push(f(k, v));
        }
        Ok(out)
    }

    /// One attempt at a batch; `Ok(false)` when the map is full (the transaction is aborted).
    fn try_apply(&self, ops: &[Op]) -> Result<bool, StorageError> {
        let mut wtxn = self.env.write_txn().map_err(backend)?;
        for op in ops {
            let r = match op {
                Op::Put { table, key, value } => self.db(*table).put(&mut wtxn, key, value),
                Op::Delete { table, key } => self.db(*table).delete(&mut wtxn, key).map(|_| ()),
            };
            match r {
                Ok(()) => {}
                Err(heed::Error::Mdb(MdbError::MapFull)) => return Ok(false),
                Err(e) => return Err(backend(e)),
            }
        }
        match wtxn.commit() {
            Ok(()) => Ok(true),
            Err(heed::Error::Mdb(MdbError::MapFull)) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }
}

impl Storage for HeedStorage {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let rtxn = self.env.read_txn().map_err(backend)?;
        Ok(self.db(table).get(&rtxn, key).map_err(backend)?.map(<[u8]>::to_vec))
    }

    fn scan(&self, table: Table) -> Result<Entries, StorageError> {
        self.map_entries(table, |k, v| (k.to_vec(), v.to_vec()))
    }

    fn value_lens(&self, table: Table) -> Result<Vec<(Vec<u8>, usize)>, StorageError> {
        // A value is a slice of the map: its length comes from its node, and a large value's
        // own pages are never touched.
        self.map_entries(table, |k, v| (k.to_vec(), v.len()))
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), StorageError> {
        loop {
            if self.try_apply(ops)? {
                return Ok(());
            }
            if self.map_bytes >= self.max_map_bytes {
                return Err(StorageError::Full { max_bytes: self.max_map_bytes });
            }
            let grown = page_multiple(self.map_bytes.saturating_mul(2).min(self.max_map_bytes));
            // Safety: `apply` holds `&mut self`, and every transaction this type opens ends
            // inside the method that opened it, so none is active now.
            unsafe { self.env.resize(grown) }.map_err(backend)?;
            self.map_bytes = grown;
        }
    }
}
