//! In-memory storage for simulations: the same contract as the heed backend, nothing on disk.

use super::{Entries, Op, Storage, StorageError, Table};
use std::collections::BTreeMap;

#[derive(Default, Debug, Clone)]
pub struct MemoryStorage {
    tables: BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Storage for MemoryStorage {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.tables.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn scan(&self, table: Table) -> Result<Entries, StorageError> {
        Ok(self.tables.get(&table).map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default())
    }

    fn value_lens(&self, table: Table) -> Result<Vec<(Vec<u8>, usize)>, StorageError> {
        Ok(self.tables.get(&table).map(|t| t.iter().map(|(k, v)| (k.clone(), v.len())).collect()).unwrap_or_default())
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), StorageError> {
        for op in ops {
            match op {
                Op::Put { table, key, value } => {
                    self.tables.entry(*table).or_default().insert(key.clone(), value.clone());
                }
                Op::Delete { table, key } => {
                    if let Some(t) = self.tables.get_mut(table) {
                        t.remove(key);
                    }
                }
            }
        }
        Ok(())
    }
}
