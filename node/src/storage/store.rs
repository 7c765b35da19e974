//! Durable storage of the message set.
//!
//! The store holds the grow-only set of signed messages and a small table of
//! node metadata. Messages are kept in arrival order: the key is a sequence
//! number and the value the content id followed by the bytes, so every write
//! lands at the right edge of sled's B-tree instead of at a random leaf (ids
//! are hashes), which is sled's cheapest insert. The id → sequence map lives
//! in memory and is rebuilt by one scan on open; the engine holds the set
//! with its own indexes and is rebuilt from the messages alone (ingest is
//! order-independent), so on-disk indexes would only multiply the writes.
//!
//! A message is one sled insert, so a crash never leaves half of one.
//! sled syncs in the background; durability is only promised after
//! [`Store::flush`] returns. The node acknowledges a local submission only
//! after a flush that began after its write (see [`crate::storage::commit`]).
//!
//! ```
//! use acp_node::storage::store::{SledStore, Store};
//! use acp_protocol::ContentId;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SledStore::open(dir.path()).unwrap();
//! let bytes = b"signed message bytes".to_vec();
//! let id = ContentId::of(&bytes);
//! assert!(store.put(&id, &bytes).unwrap());
//! store.flush().unwrap();
//! assert_eq!(store.get(&id).unwrap(), Some(bytes));
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use acp_protocol::ContentId;

const DIGEST: usize = 32;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The underlying database failed (IO error, corruption).
    #[error("store: {0}")]
    Db(#[from] sled::Error),
    /// A key or entry in a tree has an unexpected shape.
    #[error("store: corrupt entry in tree {0}")]
    Corrupt(&'static str),
    /// A flush failed; the write it covered may not be durable.
    #[error("store: flush failed: {0}")]
    Flush(String),
}

/// Iterator over stored messages.
pub type MessageIter<'a> = Box<dyn Iterator<Item = Result<(ContentId, Vec<u8>), StoreError>> + 'a>;

/// Storage of the message set and node metadata.
pub trait Store: Send + Sync {
    /// Stores a burst of messages in one write and returns how many were
    /// new. Content addressing makes a repeated id a no-op. Not durable until
    /// [`Store::flush`].
    fn put_all(&self, messages: &[(ContentId, &[u8])]) -> Result<usize, StoreError>;
    /// Stores one message; returns `true` when it was not already present.
    fn put(&self, id: &ContentId, bytes: &[u8]) -> Result<bool, StoreError> {
        Ok(self.put_all(&[(*id, bytes)])? == 1)
    }
    /// The bytes of a message.
    fn get(&self, id: &ContentId) -> Result<Option<Vec<u8>>, StoreError>;
    /// Whether a message is stored.
    fn contains(&self, id: &ContentId) -> Result<bool, StoreError>;
    /// Number of stored messages.
    fn len(&self) -> usize;
    /// Whether no message is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Every stored message in the order it was first stored (the replay
    /// order on start).
    fn iter(&self) -> MessageIter<'_>;
    /// Every stored id in id order.
    fn ids(&self) -> Result<Vec<ContentId>, StoreError>;
    /// A metadata value.
    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets a metadata value.
    fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Makes every write that returned before this call durable.
    fn flush(&self) -> Result<(), StoreError>;
}

/// sled's page cache. The node reads the store only when it starts (the
/// engine holds the set in memory), so sled's 1 GiB default would only
/// duplicate, in memory, what the node wrote.
const CACHE_BYTES: u64 = 64 << 20;

/// A [`Store`] on sled 0.34.7: one tree of messages in arrival order, one
/// of metadata.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    index: Arc<Mutex<Index>>,
}

/// Where each stored message sits in the log.
#[derive(Debug, Default)]
struct Index {
    seq: HashMap<ContentId, u64>,
    next: u64,
}

fn log_value(id: &ContentId, bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(DIGEST + bytes.len());
    v.extend_from_slice(&id.0);
    v.extend_from_slice(bytes);
    v
}

/// Splits a log value into id and message bytes.
fn log_entry(value: &[u8]) -> Result<(ContentId, &[u8]), StoreError> {
    if value.len() < DIGEST {
        return Err(StoreError::Corrupt("log"));
    }
    let (id, bytes) = value.split_at(DIGEST);
    Ok((id_from(id, "log")?, bytes))
}

fn seq_from(key: &[u8]) -> Result<u64, StoreError> {
    let k: [u8; 8] = key.try_into().map_err(|_| StoreError::Corrupt("log"))?;
    Ok(u64::from_be_bytes(k))
}

fn id_from(bytes: &[u8], tree: &'static str) -> Result<ContentId, StoreError> {
    let d: [u8; DIGEST] = bytes.try_into().map_err(|_| StoreError::Corrupt(tree))?;
    Ok(ContentId(d))
}

impl SledStore {
    /// Opens (or creates) a store in `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        Self::from_db(db)
    }

    /// A store in a temporary directory that vanishes on drop (tests).
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        let log = db.open_tree("log")?;
        let mut index = Index::default();
        for kv in log.iter() {
            let (k, v) = kv?;
            let seq = seq_from(&k)?;
            index.seq.insert(log_entry(&v)?.0, seq);
            index.next = seq + 1;
        }
        let store = Self {
            log,
            meta: db.open_tree("meta")?,
            index: Arc::new(Mutex::new(index)),
            db,
        };
        store.upgrade()?;
        Ok(store)
    }

    /// Moves messages from the layout of earlier versions (a tree keyed by
    /// id, plus three index trees) into the log, then drops the old trees.
    fn upgrade(&self) -> Result<(), StoreError> {
        let names = ["messages", "by_domain", "by_proposal", "by_time"];
        if !self
            .db
            .tree_names()
            .iter()
            .any(|n| names.iter().any(|m| n == m.as_bytes()))
        {
            return Ok(());
        }
        let old = self.db.open_tree("messages")?;
        for kv in old.iter() {
            let (k, v) = kv?;
            self.put(&id_from(&k, "messages")?, &v)?;
        }
        // Durable in the log before the only other copy goes.
        self.flush()?;
        for n in names {
            self.db.drop_tree(n)?;
        }
        Ok(())
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // The index is only ever changed after a successful write, so a
        // panic elsewhere cannot leave it half-updated.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for SledStore {
    fn put_all(&self, messages: &[(ContentId, &[u8])]) -> Result<usize, StoreError> {
        let mut index = self.index();
        let mut batch = sled::Batch::default();
        let mut added: HashMap<ContentId, u64> = HashMap::new();
        let mut seq = index.next;
        for (id, bytes) in messages {
            if index.seq.contains_key(id) || added.contains_key(id) {
                continue;
            }
            batch.insert(&seq.to_be_bytes(), log_value(id, bytes));
            added.insert(*id, seq);
            seq += 1;
        }
        self.log.apply_batch(batch)?;
        let new = added.len();
        index.seq.extend(added);
        index.next = seq;
        Ok(new)
    }

    fn get(&self, id: &ContentId) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(seq) = self.index().seq.get(id).copied() else {
            return Ok(None);
        };
        match self.log.get(seq.to_be_bytes())? {
            Some(v) => Ok(Some(log_entry(&v)?.1.to_vec())),
            None => Ok(None),
        }
    }

    fn contains(&self, id: &ContentId) -> Result<bool, StoreError> {
        Ok(self.index().seq.contains_key(id))
    }

    fn len(&self) -> usize {
        self.index().seq.len()
    }

    fn iter(&self) -> MessageIter<'_> {
        Box::new(self.log.iter().map(|kv| {
            let (_, v) = kv?;
            let (id, bytes) = log_entry(&v)?;
            Ok((id, bytes.to_vec()))
        }))
    }

    fn ids(&self) -> Result<Vec<ContentId>, StoreError> {
        let mut ids: Vec<ContentId> = self.index().seq.keys().copied().collect();
        ids.sort();
        Ok(ids)
    }

    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key)?.map(|v| v.to_vec()))
    }

    fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(key, value)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn put_get_is_idempotent() {
        let s = SledStore::temporary().unwrap();
        let id = ContentId::of(b"m1");
        assert!(s.put(&id, b"m1").unwrap());
        assert!(!s.put(&id, b"m1").unwrap());
        assert_eq!(s.len(), 1);
        assert!(s.contains(&id).unwrap());
        assert_eq!(s.get(&id).unwrap().as_deref(), Some(&b"m1"[..]));
        assert_eq!(s.get(&ContentId::of(b"nope")).unwrap(), None);
    }

    #[test]
    fn put_all_skips_known_ids_and_replays_in_arrival_order() {
        let s = SledStore::temporary().unwrap();
        let bodies: [&[u8]; 4] = [b"c", b"a", b"b", b"a"];
        let burst: Vec<(ContentId, &[u8])> =
            bodies.iter().map(|b| (ContentId::of(b), *b)).collect();
        assert_eq!(s.put_all(&burst[..2]).unwrap(), 2);
        // Overlapping, with a repeat inside the burst: nothing is stored twice.
        assert_eq!(s.put_all(&burst[1..]).unwrap(), 1);
        assert_eq!(s.len(), 3);
        let replay: Vec<Vec<u8>> = s.iter().map(|r| r.unwrap().1).collect();
        assert_eq!(replay, vec![b"c".to_vec(), b"a".to_vec(), b"b".to_vec()]);
        let mut want: Vec<ContentId> = burst[..3].iter().map(|(id, _)| *id).collect();
        want.sort();
        assert_eq!(s.ids().unwrap(), want);
    }

    #[test]
    fn survives_reopen_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let id = ContentId::of(b"durable");
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.put(&id, b"durable").unwrap();
            s.meta_put("k", b"v").unwrap();
            s.flush().unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(s.get(&id).unwrap().as_deref(), Some(&b"durable"[..]));
        assert_eq!(s.meta_get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(s.meta_get("missing").unwrap(), None);
        assert_eq!(s.ids().unwrap(), vec![id]);
        // The in-memory index was rebuilt: the id is known, the next write appends.
        assert!(!s.put(&id, b"durable").unwrap());
        let other = ContentId::of(b"later");
        assert!(s.put(&other, b"later").unwrap());
        let order: Vec<ContentId> = s.iter().map(|r| r.unwrap().0).collect();
        assert_eq!(order, vec![id, other]);
    }

    #[test]
    fn a_store_of_the_earlier_layout_is_moved_into_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<ContentId> = [&b"x"[..], b"y"].iter().map(|b| ContentId::of(b)).collect();
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let old = db.open_tree("messages").unwrap();
            old.insert(ids[0].0, &b"x"[..]).unwrap();
            old.insert(ids[1].0, &b"y"[..]).unwrap();
            db.open_tree("by_time")
                .unwrap()
                .insert(b"k", &b""[..])
                .unwrap();
            db.flush().unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(&ids[1]).unwrap().as_deref(), Some(&b"y"[..]));
        let names = s.db.tree_names();
        assert!(!names.iter().any(|n| n == b"messages" || n == b"by_time"));
        drop(s);
        assert_eq!(SledStore::open(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn a_malformed_entry_is_a_typed_error() {
        let s = SledStore::temporary().unwrap();
        s.log.insert(0u64.to_be_bytes(), &b"short"[..]).unwrap();
        assert!(matches!(
            s.iter().next(),
            Some(Err(StoreError::Corrupt("log")))
        ));
    }
}
