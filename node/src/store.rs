//! Durable storage of the message set.
//!
//! The store holds the grow-only set of signed messages keyed by content id,
//! and a small table of node metadata. It keeps no secondary indexes: the
//! engine holds the whole set in memory with its own indexes and rebuilds
//! them on start from the messages alone (ingest is order-independent), so
//! on-disk indexes would only triple the writes per message.
//!
//! A message is one sled insert, so a crash never leaves half of one.
//! sled syncs in the background; durability is only promised after
//! [`Store::flush`] returns. The node acknowledges a local submission only
//! after a flush that began after its write (see [`crate::commit`]).
//!
//! ```
//! use acp_node::store::{SledStore, Store};
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

use std::path::Path;

use acp_protocol::ContentId;

const DIGEST: usize = 32;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The underlying database failed (IO error, corruption).
    #[error("store: {0}")]
    Db(#[from] sled::Error),
    /// A key in a tree has an unexpected shape.
    #[error("store: corrupt key in tree {0}")]
    CorruptKey(&'static str),
    /// A flush failed; the write it covered may not be durable.
    #[error("store: flush failed: {0}")]
    Flush(String),
}

/// Iterator over stored messages.
pub type MessageIter<'a> = Box<dyn Iterator<Item = Result<(ContentId, Vec<u8>), StoreError>> + 'a>;

/// Storage of the message set and node metadata.
pub trait Store: Send + Sync {
    /// Stores a message; returns `true` when it was not already present.
    /// Not durable until [`Store::flush`].
    fn put(&self, id: &ContentId, bytes: &[u8]) -> Result<bool, StoreError>;
    /// Stores a burst of messages in one write. Content addressing makes a
    /// repeated id a no-op. Not durable until [`Store::flush`].
    fn put_all(&self, messages: &[(ContentId, &[u8])]) -> Result<(), StoreError>;
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
    /// Every stored message in id order (the replay order on start).
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

/// A [`Store`] on sled 0.34.7: one tree of messages, one of metadata.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    messages: sled::Tree,
    meta: sled::Tree,
}

fn id_from(bytes: &[u8], tree: &'static str) -> Result<ContentId, StoreError> {
    let d: [u8; DIGEST] = bytes.try_into().map_err(|_| StoreError::CorruptKey(tree))?;
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
        Ok(Self {
            messages: db.open_tree("messages")?,
            meta: db.open_tree("meta")?,
            db,
        })
    }
}

impl Store for SledStore {
    fn put(&self, id: &ContentId, bytes: &[u8]) -> Result<bool, StoreError> {
        // One core task writes; an id always maps to the same bytes, so a
        // plain insert is idempotent and its old value says whether it was new.
        Ok(self.messages.insert(id.0, bytes)?.is_none())
    }

    fn put_all(&self, messages: &[(ContentId, &[u8])]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (id, bytes) in messages {
            batch.insert(&id.0, *bytes);
        }
        self.messages.apply_batch(batch)?;
        Ok(())
    }

    fn get(&self, id: &ContentId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.messages.get(id.0)?.map(|v| v.to_vec()))
    }

    fn contains(&self, id: &ContentId) -> Result<bool, StoreError> {
        Ok(self.messages.contains_key(id.0)?)
    }

    fn len(&self) -> usize {
        self.messages.len()
    }

    fn iter(&self) -> MessageIter<'_> {
        Box::new(self.messages.iter().map(|kv| {
            let (k, v) = kv?;
            Ok((id_from(&k, "messages")?, v.to_vec()))
        }))
    }

    fn ids(&self) -> Result<Vec<ContentId>, StoreError> {
        self.messages
            .iter()
            .keys()
            .map(|k| id_from(&k?, "messages"))
            .collect()
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
    fn put_all_writes_a_burst_in_id_order() {
        let s = SledStore::temporary().unwrap();
        let bodies: [&[u8]; 3] = [b"a", b"b", b"c"];
        let burst: Vec<(ContentId, &[u8])> =
            bodies.iter().map(|b| (ContentId::of(b), *b)).collect();
        s.put_all(&burst).unwrap();
        // Again, overlapping: nothing is stored twice.
        s.put_all(&burst[1..]).unwrap();
        assert_eq!(s.len(), 3);
        let mut want: Vec<ContentId> = burst.iter().map(|(id, _)| *id).collect();
        want.sort();
        assert_eq!(s.ids().unwrap(), want);
        let replay: Vec<_> = s.iter().map(|r| r.unwrap()).collect();
        assert_eq!(replay.len(), 3);
        for (id, bytes) in replay {
            assert_eq!(ContentId::of(&bytes), id);
        }
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
    }

    #[test]
    fn a_malformed_key_is_a_typed_error() {
        let s = SledStore::temporary().unwrap();
        s.messages.insert(b"short", &b"x"[..]).unwrap();
        assert!(matches!(
            s.iter().next(),
            Some(Err(StoreError::CorruptKey("messages")))
        ));
    }
}
