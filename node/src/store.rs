//! Durable storage of the message set.
//!
//! The store holds the grow-only set of signed messages, keyed by content id,
//! plus three secondary indexes (by domain, by proposal, by time) and a small
//! table of node metadata. Everything the engine derives can be rebuilt from
//! the `messages` tree alone, so the indexes are written *before* the message
//! itself: a crash between the two leaves an index entry that points nowhere
//! (filtered on read), never a message that no index can find.
//!
//! sled syncs in the background; durability is only promised after
//! [`Store::flush`] returns. The node flushes before it acknowledges a local
//! submission.
//!
//! ```
//! use acp_node::store::{IndexKeys, SledStore, Store};
//! use acp_protocol::ContentId;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SledStore::open(dir.path()).unwrap();
//! let bytes = b"signed message bytes".to_vec();
//! let id = ContentId::of(&bytes);
//! let keys = IndexKeys { domain: Some("fraud.detection".into()), proposal: None, time: Some(7) };
//! assert!(store.put(&id, &bytes, &keys).unwrap());
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
    /// A key in an index tree has an unexpected shape.
    #[error("store: corrupt index entry in tree {0}")]
    CorruptIndex(&'static str),
}

/// Secondary index keys of one message, extracted by the caller from the
/// decoded message (the store itself never decodes messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexKeys {
    /// The domain the message belongs to.
    pub domain: Option<String>,
    /// The proposal the message refers to (a proposal indexes itself).
    pub proposal: Option<ContentId>,
    /// The message's signed time, milliseconds since the Unix epoch.
    pub time: Option<u64>,
}

/// Iterator over stored messages.
pub type MessageIter<'a> = Box<dyn Iterator<Item = Result<(ContentId, Vec<u8>), StoreError>> + 'a>;

/// Storage of the message set and node metadata.
pub trait Store: Send + Sync {
    /// Stores a message; returns `true` when it was not already present.
    /// Not durable until [`Store::flush`].
    fn put(&self, id: &ContentId, bytes: &[u8], keys: &IndexKeys) -> Result<bool, StoreError>;
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
    /// Every stored message, ordered by signed time (messages without a time
    /// first), then by id. This is the replay order on start.
    fn iter_by_time(&self) -> MessageIter<'_>;
    /// Every stored id in id order.
    fn ids(&self) -> Result<Vec<ContentId>, StoreError>;
    /// Ids of the messages of one domain.
    fn ids_in_domain(&self, domain: &str) -> Result<Vec<ContentId>, StoreError>;
    /// Ids of the messages that refer to one proposal (including it).
    fn ids_for_proposal(&self, proposal: &ContentId) -> Result<Vec<ContentId>, StoreError>;
    /// Ids of messages whose signed time is in `[from, to)`.
    fn ids_in_time_range(&self, from: u64, to: u64) -> Result<Vec<ContentId>, StoreError>;
    /// A metadata value.
    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets a metadata value.
    fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Makes every previous write durable.
    fn flush(&self) -> Result<(), StoreError>;
}

/// A [`Store`] on sled 0.34.7, one tree per table.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    messages: sled::Tree,
    by_domain: sled::Tree,
    by_proposal: sled::Tree,
    by_time: sled::Tree,
    meta: sled::Tree,
}

fn id_from(bytes: &[u8], tree: &'static str) -> Result<ContentId, StoreError> {
    let d: [u8; DIGEST] = bytes
        .try_into()
        .map_err(|_| StoreError::CorruptIndex(tree))?;
    Ok(ContentId(d))
}

fn domain_prefix(domain: &str) -> Vec<u8> {
    // Length-prefixed so that "a" never prefixes "ab".
    let mut k = Vec::with_capacity(2 + domain.len() + DIGEST);
    let len = u16::try_from(domain.len()).unwrap_or(u16::MAX);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(domain.as_bytes());
    k
}

/// Time key of a message without a signed time: sorts first.
const NO_TIME: u64 = 0;

impl SledStore {
    /// Opens (or creates) a store in `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(path).open()?;
        Self::from_db(db)
    }

    /// A store in a temporary directory that vanishes on drop (tests).
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            messages: db.open_tree("messages")?,
            by_domain: db.open_tree("by_domain")?,
            by_proposal: db.open_tree("by_proposal")?,
            by_time: db.open_tree("by_time")?,
            meta: db.open_tree("meta")?,
            db,
        })
    }

    fn suffix_ids(
        &self,
        tree: &sled::Tree,
        name: &'static str,
        prefix: &[u8],
    ) -> Result<Vec<ContentId>, StoreError> {
        let mut out = Vec::new();
        for kv in tree.scan_prefix(prefix) {
            let (k, _) = kv?;
            if k.len() < DIGEST {
                return Err(StoreError::CorruptIndex(name));
            }
            let id = id_from(&k[k.len() - DIGEST..], name)?;
            if self.messages.contains_key(id.0)? {
                out.push(id);
            }
        }
        Ok(out)
    }
}

impl Store for SledStore {
    fn put(&self, id: &ContentId, bytes: &[u8], keys: &IndexKeys) -> Result<bool, StoreError> {
        if self.messages.contains_key(id.0)? {
            return Ok(false);
        }
        if let Some(domain) = &keys.domain {
            let mut k = domain_prefix(domain);
            k.extend_from_slice(&id.0);
            self.by_domain.insert(k, &[])?;
        }
        if let Some(p) = &keys.proposal {
            let mut k = p.0.to_vec();
            k.extend_from_slice(&id.0);
            self.by_proposal.insert(k, &[])?;
        }
        let mut k = keys.time.unwrap_or(NO_TIME).to_be_bytes().to_vec();
        k.extend_from_slice(&id.0);
        self.by_time.insert(k, &[])?;
        // Last: the message itself. `compare_and_swap` keeps `put` idempotent
        // under concurrent writers of the same id.
        let fresh = self
            .messages
            .compare_and_swap(id.0, None as Option<&[u8]>, Some(bytes))?
            .is_ok();
        Ok(fresh)
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

    fn iter_by_time(&self) -> MessageIter<'_> {
        let mut seen = std::collections::HashSet::new();
        let indexed = self.by_time.iter().filter_map(move |kv| {
            let res = (|| {
                let (k, _) = kv?;
                if k.len() != 8 + DIGEST {
                    return Err(StoreError::CorruptIndex("by_time"));
                }
                let id = id_from(&k[8..], "by_time")?;
                Ok(self.messages.get(id.0)?.map(|v| (id, v.to_vec())))
            })();
            match res {
                Ok(Some((id, v))) => seen.insert(id).then_some(Ok((id, v))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        });
        Box::new(indexed)
    }

    fn ids(&self) -> Result<Vec<ContentId>, StoreError> {
        self.messages
            .iter()
            .keys()
            .map(|k| id_from(&k?, "messages"))
            .collect()
    }

    fn ids_in_domain(&self, domain: &str) -> Result<Vec<ContentId>, StoreError> {
        self.suffix_ids(&self.by_domain, "by_domain", &domain_prefix(domain))
    }

    fn ids_for_proposal(&self, proposal: &ContentId) -> Result<Vec<ContentId>, StoreError> {
        self.suffix_ids(&self.by_proposal, "by_proposal", &proposal.0)
    }

    fn ids_in_time_range(&self, from: u64, to: u64) -> Result<Vec<ContentId>, StoreError> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        for kv in self.by_time.range(from.to_be_bytes()..to.to_be_bytes()) {
            let (k, _) = kv?;
            let id = id_from(k.get(8..).unwrap_or_default(), "by_time")?;
            if self.messages.contains_key(id.0)? {
                out.push(id);
            }
        }
        Ok(out)
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

    fn keys(domain: &str, proposal: Option<ContentId>, time: u64) -> IndexKeys {
        IndexKeys {
            domain: Some(domain.into()),
            proposal,
            time: Some(time),
        }
    }

    #[test]
    fn put_get_is_idempotent() {
        let s = SledStore::temporary().unwrap();
        let id = ContentId::of(b"m1");
        assert!(s.put(&id, b"m1", &keys("d", None, 1)).unwrap());
        assert!(!s.put(&id, b"m1", &keys("d", None, 1)).unwrap());
        assert_eq!(s.len(), 1);
        assert!(s.contains(&id).unwrap());
        assert_eq!(s.get(&id).unwrap().as_deref(), Some(&b"m1"[..]));
        assert_eq!(s.get(&ContentId::of(b"nope")).unwrap(), None);
    }

    #[test]
    fn indexes_by_domain_proposal_and_time() {
        let s = SledStore::temporary().unwrap();
        let p = ContentId::of(b"proposal");
        let r = ContentId::of(b"response");
        let other = ContentId::of(b"other");
        s.put(&p, b"proposal", &keys("a", Some(p), 30)).unwrap();
        s.put(&r, b"response", &keys("a", Some(p), 10)).unwrap();
        s.put(&other, b"other", &keys("ab", None, 20)).unwrap();

        let mut in_a = s.ids_in_domain("a").unwrap();
        in_a.sort();
        let mut want = vec![p, r];
        want.sort();
        assert_eq!(in_a, want);
        assert_eq!(s.ids_in_domain("ab").unwrap(), vec![other]);
        let mut for_p = s.ids_for_proposal(&p).unwrap();
        for_p.sort();
        assert_eq!(for_p, want);
        assert_eq!(s.ids_in_time_range(10, 21).unwrap(), vec![r, other]);
        let order: Vec<_> = s.iter_by_time().map(|r| r.unwrap().0).collect();
        assert_eq!(order, vec![r, other, p]);
    }

    #[test]
    fn survives_reopen_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let id = ContentId::of(b"durable");
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.put(&id, b"durable", &keys("d", None, 5)).unwrap();
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
    fn dangling_index_entries_are_ignored() {
        let s = SledStore::temporary().unwrap();
        let ghost = ContentId::of(b"ghost");
        // An index written before a crash, without its message.
        let mut k = domain_prefix("d");
        k.extend_from_slice(&ghost.0);
        s.by_domain.insert(k, &[]).unwrap();
        let mut k = 3u64.to_be_bytes().to_vec();
        k.extend_from_slice(&ghost.0);
        s.by_time.insert(k, &[]).unwrap();
        assert!(s.ids_in_domain("d").unwrap().is_empty());
        assert_eq!(s.iter_by_time().count(), 0);
    }
}
