//! The pure half of anti-entropy: per-domain set summaries, their diff, and
//! the request/response messages a transport carries between two peers.
//!
//! A summary lists, for each hour-long bucket of signed message time, the
//! count of ids and a digest over them in `(time, id)` order. Two peers that
//! hold the same messages of a domain have equal summaries; a bucket whose
//! digest differs is listed page by page, and the missing ids fetched in
//! bounded batches. Every step is bounded, so a peer cannot make another
//! allocate or send without limit.
//!
//! [`SyncSession`] is the asking side: the one implementation of a round
//! that the node and the simulator both drive. [`answer`] is the answering
//! side.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::{self, CodecError};
use crate::id::ContentId;
use crate::message::Timestamp;
use crate::set::MessageSet;

mod session;

pub use session::{MAX_PAGES_PER_BUCKET, SyncError, SyncSession};

/// Width of a summary bucket in milliseconds of signed time.
pub const BUCKET_MS: u64 = 3_600_000;
/// Ids per `Ids` page.
pub const MAX_IDS_PER_PAGE: usize = 4_096;
/// Ids per `Fetch` request.
pub const MAX_FETCH_IDS: usize = 256;
/// Buckets per summary (older buckets beyond this are summarized last-first).
pub const MAX_SUMMARY_BUCKETS: usize = 8_760;
/// Largest encoded sync message.
pub const MAX_SYNC_BYTES: usize = 4 << 20;

/// One bucket of a summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketDigest {
    /// Bucket index: `time / BUCKET_MS`.
    pub bucket: u64,
    /// Number of messages.
    pub count: u32,
    /// Digest over the bucket's ids in `(time, id)` order.
    pub digest: ContentId,
}

/// A compact description of the messages a peer holds in a domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The domain.
    pub domain: String,
    /// Non-empty buckets, ascending (the newest [`MAX_SUMMARY_BUCKETS`]).
    pub buckets: Vec<BucketDigest>,
}

impl Summary {
    /// Summarize a domain of a set.
    pub fn of(set: &MessageSet, domain: &str) -> Self {
        let mut buckets: Vec<BucketDigest> = Vec::new();
        let mut hasher = Sha256::new();
        let mut current: Option<(u64, u32)> = None;
        for (time, id) in set.timed_ids_in_range(domain, Timestamp(0), Timestamp(u64::MAX)) {
            let b = time.0 / BUCKET_MS;
            match current {
                Some((cb, n)) if cb == b => current = Some((cb, n + 1)),
                prev => {
                    if let Some((cb, n)) = prev {
                        buckets.push(finish(cb, n, &mut hasher));
                    }
                    current = Some((b, 1));
                }
            }
            hasher.update(id.digest());
        }
        if let Some((cb, n)) = current {
            buckets.push(finish(cb, n, &mut hasher));
        }
        if buckets.len() > MAX_SUMMARY_BUCKETS {
            buckets.drain(..buckets.len() - MAX_SUMMARY_BUCKETS);
        }
        Self {
            domain: domain.to_owned(),
            buckets,
        }
    }

    /// Buckets in which `theirs` holds something that `self` may lack:
    /// present only in theirs, or present in both with different digests.
    pub fn wanted_from(&self, theirs: &Summary) -> Vec<u64> {
        theirs
            .buckets
            .iter()
            .filter(|t| {
                self.buckets
                    .binary_search_by_key(&t.bucket, |b| b.bucket)
                    .map_or(true, |i| self.buckets[i].digest != t.digest)
            })
            .map(|t| t.bucket)
            .collect()
    }
}

fn finish(bucket: u64, count: u32, hasher: &mut Sha256) -> BucketDigest {
    let digest = ContentId(hasher.finalize_reset().into());
    BucketDigest {
        bucket,
        count,
        digest,
    }
}

/// What one peer asks another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Tag 0: the summary of a domain.
    Summary {
        /// Domain.
        domain: String,
    },
    /// Tag 1: one page of the ids in a bucket, after a cursor.
    Ids {
        /// Domain.
        domain: String,
        /// Bucket index.
        bucket: u64,
        /// Resume after this id (exclusive), in `(time, id)` order.
        after: Option<ContentId>,
    },
    /// Tag 2: the messages with these ids (at most [`MAX_FETCH_IDS`]).
    Fetch {
        /// Ids.
        ids: Vec<ContentId>,
    },
}

/// The answer to a [`SyncRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Tag 0.
    Summary(Summary),
    /// Tag 1: a page of ids; `more` when the bucket continues.
    Ids {
        /// Ids in `(time, id)` order.
        ids: Vec<ContentId>,
        /// True when another page follows.
        more: bool,
    },
    /// Tag 2: canonical message bytes, in request order, skipping unknown
    /// ids and stopping before [`MAX_SYNC_BYTES`].
    Messages(Vec<Vec<u8>>),
    /// Tag 3: the request was refused.
    Refused(String),
}

impl SyncRequest {
    /// Canonical bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }
    /// Decode, bounded.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        codec::decode(bytes, 64 * 1024)
    }
}

impl SyncResponse {
    /// Canonical bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode_large(self)
    }
    /// Decode, bounded.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        codec::decode_large(bytes, MAX_SYNC_BYTES)
    }
}

/// Answer a peer's request from a set. Pure; the transport only moves bytes.
pub fn answer(set: &MessageSet, req: &SyncRequest) -> SyncResponse {
    match req {
        SyncRequest::Summary { domain } => SyncResponse::Summary(Summary::of(set, domain)),
        SyncRequest::Ids {
            domain,
            bucket,
            after,
        } => {
            let from = Timestamp(bucket.saturating_mul(BUCKET_MS));
            let to = Timestamp(bucket.saturating_add(1).saturating_mul(BUCKET_MS));
            let mut ids = set.ids_in_range(domain, from, to);
            if let Some(a) = after {
                // Skip up to and including the cursor.
                if set.contains(a) {
                    for id in ids.by_ref() {
                        if id == *a {
                            break;
                        }
                    }
                }
            }
            let mut page: Vec<ContentId> = ids.by_ref().take(MAX_IDS_PER_PAGE).collect();
            let more = ids.next().is_some();
            page.shrink_to_fit();
            SyncResponse::Ids { ids: page, more }
        }
        SyncRequest::Fetch { ids } => {
            if ids.len() > MAX_FETCH_IDS {
                return SyncResponse::Refused(format!("at most {MAX_FETCH_IDS} ids per fetch"));
            }
            let mut out = Vec::new();
            let mut total = 64usize;
            for id in ids {
                if let Some(m) = set.get(id) {
                    total += m.bytes.len() + 8;
                    if total > MAX_SYNC_BYTES {
                        break;
                    }
                    out.push(m.bytes.clone());
                }
            }
            SyncResponse::Messages(out)
        }
    }
}

/// The ids of `ids` the set does not hold.
pub fn missing(set: &MessageSet, ids: &[ContentId]) -> Vec<ContentId> {
    ids.iter().filter(|i| !set.contains(i)).copied().collect()
}
