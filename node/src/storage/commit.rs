//! Group commit: one flush makes every write queued before it durable.
//!
//! A flush (an `fsync` underneath) costs far more than verifying and
//! storing one message, so flushing per submission caps a node at one
//! submission per disk sync. Instead, the core writes and carries on, and a
//! dedicated thread flushes whenever writes are waiting. Every write
//! requested before a flush *began* is durable when it returns, so each flush
//! covers all the submissions that queued up while the previous one ran: the
//! busier the node, the more submissions share one sync. The core never
//! waits on the disk; a submission's acknowledgement does.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use acp_node::storage::commit::GroupCommit;
//! use acp_node::storage::store::{SledStore, Store};
//! use acp_protocol::ContentId;
//!
//! let store = Arc::new(SledStore::temporary().unwrap());
//! let mut commit = GroupCommit::start(store.clone());
//! store.put(&ContentId::of(b"m"), b"m").unwrap();
//! commit.request().await.unwrap(); // durable from here on
//! # });
//! ```

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::watch;

use crate::storage::store::{Store, StoreError};

/// What the flush thread has made durable so far.
#[derive(Debug, Clone, Default)]
struct Durable {
    /// Every request up to this sequence number is durable.
    upto: u64,
    /// The newest failed flush: the request it covered, and why.
    failed: Option<(u64, Arc<str>)>,
}

/// The writer's side of group commit. Owned by the one task that writes.
#[derive(Debug)]
pub struct GroupCommit {
    requests: mpsc::Sender<u64>,
    durable: watch::Receiver<Durable>,
    next: u64,
}

impl GroupCommit {
    /// Starts the flush thread for `store`. It stops when this is dropped.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (requests, rx) = mpsc::channel::<u64>();
        let (tx, durable) = watch::channel(Durable::default());
        let spawned = std::thread::Builder::new()
            .name("acp-flush".into())
            .spawn(move || flush_loop(store.as_ref(), &rx, &tx));
        if let Err(e) = spawned {
            // Without the thread every request fails rather than hangs.
            tracing::error!(error = %e, "cannot start the flush thread");
        }
        Self {
            requests,
            durable,
            next: 0,
        }
    }

    /// Asks for every write made so far to be made durable; the future
    /// resolves when it is (or the flush failed). It does not borrow `self`,
    /// so the caller can keep writing while it waits.
    pub fn request(&mut self) -> impl Future<Output = Result<(), StoreError>> + Send + use<> {
        self.next += 1;
        let seq = self.next;
        let sent = self.requests.send(seq).is_ok();
        let mut durable = self.durable.clone();
        async move {
            if !sent {
                return Err(StoreError::Flush("the flush thread has stopped".into()));
            }
            let state = durable
                .wait_for(|d| d.upto >= seq || d.failed.as_ref().is_some_and(|f| f.0 >= seq))
                .await
                .map_err(|_| StoreError::Flush("the flush thread has stopped".into()))?;
            // A later successful flush also covers a request whose own flush failed.
            if state.upto >= seq {
                Ok(())
            } else {
                let why = state.failed.as_ref().map_or("", |f| &f.1).to_owned();
                Err(StoreError::Flush(why))
            }
        }
    }
}

fn flush_loop(store: &dyn Store, requests: &mpsc::Receiver<u64>, durable: &watch::Sender<Durable>) {
    while let Ok(mut seq) = requests.recv() {
        // Everything requested by now was written before its request was sent.
        while let Ok(s) = requests.try_recv() {
            seq = seq.max(s);
        }
        let result = store.flush();
        durable.send_modify(|d| match result {
            Ok(()) => d.upto = seq,
            Err(e) => {
                tracing::error!(error = %e, "flush failed");
                d.failed = Some((seq, Arc::from(e.to_string())));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use acp_protocol::ContentId;

    use super::*;
    use crate::storage::store::{MessageIter, SledStore};

    /// A store that counts flushes and can be made to fail them.
    struct Counting {
        inner: SledStore,
        flushes: AtomicUsize,
        fail: bool,
    }

    impl Store for Counting {
        fn put_all(&self, m: &[(ContentId, &[u8])]) -> Result<usize, StoreError> {
            self.inner.put_all(m)
        }
        fn get(&self, id: &ContentId) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(id)
        }
        fn contains(&self, id: &ContentId) -> Result<bool, StoreError> {
            self.inner.contains(id)
        }
        fn len(&self) -> usize {
            self.inner.len()
        }
        fn iter(&self) -> MessageIter<'_> {
            self.inner.iter()
        }
        fn ids(&self) -> Result<Vec<ContentId>, StoreError> {
            self.inner.ids()
        }
        fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.meta_get(key)
        }
        fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
            self.inner.meta_put(key, value)
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.flushes.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(20));
            if self.fail {
                return Err(StoreError::Flush("disk on fire".into()));
            }
            self.inner.flush()
        }
    }

    fn counting(fail: bool) -> Arc<Counting> {
        Arc::new(Counting {
            inner: SledStore::temporary().unwrap(),
            flushes: AtomicUsize::new(0),
            fail,
        })
    }

    #[tokio::test]
    async fn requests_queued_during_a_flush_share_the_next_one() {
        let store = counting(false);
        let mut commit = GroupCommit::start(store.clone());
        let waits: Vec<_> = (0..50).map(|_| commit.request()).collect();
        for w in waits {
            w.await.unwrap();
        }
        let flushes = store.flushes.load(Ordering::SeqCst);
        // The first request may get a flush of its own; the rest share.
        assert!(
            (1..=2).contains(&flushes),
            "{flushes} flushes for 50 requests"
        );
    }

    #[tokio::test]
    async fn a_failed_flush_fails_its_requests() {
        let store = counting(true);
        let mut commit = GroupCommit::start(store.clone());
        let err = commit.request().await.unwrap_err();
        assert!(err.to_string().contains("disk on fire"), "{err}");
    }
}
