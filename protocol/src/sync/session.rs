//! One anti-entropy session with one peer, as a sans-IO state machine.
//!
//! The driver (the node's transport, the simulator's links) owns the IO and
//! the session owns every decision: it says which request to send next
//! ([`SyncSession::poll_request`]), checks that each response answers the
//! request in flight ([`SyncSession::handle_response`]), hands back the
//! messages to ingest, and says when there is nothing left to do
//! ([`SyncSession::is_done`]). One request is in flight at a time, so a
//! response can always be matched to the request it answers.
//!
//! A round, per queued domain:
//! 1. ask for the peer's [`Summary`] of the domain;
//! 2. for each bucket whose digest differs from ours, page through the
//!    peer's ids in that bucket ([`SyncRequest::Ids`]);
//! 3. fetch the ids we lack in batches of at most `batch` ids
//!    ([`SyncRequest::Fetch`]).
//!
//! Ids to fetch accumulate across pages until a full batch is ready, and
//! whatever remains is fetched when the round's listing ends: the fewest
//! fetches, and the queue never holds more than one batch plus one page.
//! Ids the driver asks for directly ([`SyncSession::want`], messages that
//! parked messages wait for) go out before anything else.
//!
//! Every response is checked against the request it answers and against the
//! protocol's limits; one that breaks them ends the session with a
//! [`SyncError`], so a hostile peer can make it neither allocate nor loop
//! without bound.

use std::collections::VecDeque;

use super::{
    MAX_FETCH_IDS, MAX_IDS_PER_PAGE, MAX_SUMMARY_BUCKETS, Summary, SyncRequest, SyncResponse,
};
use crate::id::ContentId;
use crate::set::MessageSet;

/// `Ids` pages one bucket may take before the session gives up on the peer.
/// 64 pages are 262,144 ids in one hour of one domain, far past what an
/// honest domain signs; a peer that keeps saying `more` beyond that is not
/// listing a real bucket.
pub const MAX_PAGES_PER_BUCKET: u32 = 64;

/// Why a session ended early. Every variant but [`SyncError::Refused`] means
/// the peer answered something other than what was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A response arrived while no request was in flight.
    #[error("sync response while no request is in flight")]
    NothingInFlight,
    /// The response is of another kind than the request in flight.
    #[error("a {got} response does not answer a {asked} request")]
    Mismatch {
        /// Kind of the request in flight.
        asked: &'static str,
        /// Kind of the response.
        got: &'static str,
    },
    /// A summary of another domain than the one asked for.
    #[error("summary of domain {got:?} does not answer a request for {asked:?}")]
    WrongDomain {
        /// Domain asked for.
        asked: String,
        /// Domain answered.
        got: String,
    },
    /// Summary buckets out of order, repeated, or too many.
    #[error("summary buckets are not strictly ascending or exceed {MAX_SUMMARY_BUCKETS}")]
    BadSummary,
    /// An `Ids` page longer than [`MAX_IDS_PER_PAGE`].
    #[error("page of {0} ids exceeds {MAX_IDS_PER_PAGE}")]
    PageTooLarge(usize),
    /// A bucket still continued after [`MAX_PAGES_PER_BUCKET`] pages.
    #[error("bucket {bucket} still continues after {MAX_PAGES_PER_BUCKET} pages")]
    PageLimit {
        /// Bucket index.
        bucket: u64,
    },
    /// More messages than ids asked for.
    #[error("{got} messages for a fetch of {asked} ids")]
    TooManyMessages {
        /// Ids in the fetch.
        asked: usize,
        /// Messages in the answer.
        got: usize,
    },
    /// The peer refused the request (its reason, cut to 256 bytes).
    #[error("peer refused the request: {0}")]
    Refused(String),
}

/// The listing of one domain in progress.
#[derive(Clone, Debug)]
struct Round {
    domain: String,
    /// Differing buckets not listed yet, ascending.
    buckets: VecDeque<u64>,
    /// The bucket being listed.
    page: Option<Page>,
}

/// Where the listing of one bucket stands.
#[derive(Clone, Debug)]
struct Page {
    bucket: u64,
    /// Cursor for the next page; `None` for the first.
    after: Option<ContentId>,
    /// Pages received so far.
    pages: u32,
}

/// An anti-entropy session with one peer. See the [module](self) docs.
#[derive(Clone, Debug)]
pub struct SyncSession {
    batch: usize,
    /// Domains whose round has not started, in the order asked.
    queued: VecDeque<String>,
    /// The round whose summary was asked for and whose listing is not over.
    round: Option<Round>,
    /// Ids the driver asked for; fetched before anything else.
    wanted: VecDeque<ContentId>,
    /// Ids the peer listed that we lack.
    listed: VecDeque<ContentId>,
    in_flight: Option<SyncRequest>,
    failed: bool,
}

impl SyncSession {
    /// An idle session fetching at most `batch` ids per request (clamped to
    /// `1..=`[`MAX_FETCH_IDS`]). Give it work with [`SyncSession::sync`] or
    /// [`SyncSession::want`].
    pub fn new(batch: usize) -> Self {
        Self {
            batch: batch.clamp(1, MAX_FETCH_IDS),
            queued: VecDeque::new(),
            round: None,
            wanted: VecDeque::new(),
            listed: VecDeque::new(),
            in_flight: None,
            failed: false,
        }
    }

    /// Queue a round for `domain`. A round for it that has not started yet
    /// already covers this one; a round under way does not (the peer may
    /// hold more by now), so another one is queued behind it.
    pub fn sync(&mut self, domain: &str) {
        if self.failed || self.queued.iter().any(|d| d == domain) {
            return;
        }
        self.queued.push_back(domain.to_owned());
    }

    /// Ask for these messages directly, ahead of any listing. The caller
    /// bounds how many it asks for; the engine asks for each missing
    /// dependency once.
    pub fn want(&mut self, ids: &[ContentId]) {
        if !self.failed {
            self.wanted.extend(ids.iter().copied());
        }
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<&SyncRequest> {
        self.in_flight.as_ref()
    }

    /// True when nothing is in flight and nothing is left to ask: the driver
    /// may drop the session. Also true after an error.
    pub fn is_done(&self) -> bool {
        self.failed
            || (self.in_flight.is_none()
                && self.wanted.is_empty()
                && self.listed.is_empty()
                && self.queued.is_empty()
                && self
                    .round
                    .as_ref()
                    .is_none_or(|r| r.page.is_none() && r.buckets.is_empty()))
    }

    /// The next request to send, or `None` while a request is in flight or
    /// when there is nothing left to ask. The session remembers it as the
    /// request in flight until [`SyncSession::handle_response`] (or the
    /// driver gives up on the peer and drops the session).
    pub fn poll_request(&mut self) -> Option<SyncRequest> {
        if self.failed || self.in_flight.is_some() {
            return None;
        }
        let req = self.next_request()?;
        self.in_flight = Some(req.clone());
        Some(req)
    }

    fn next_request(&mut self) -> Option<SyncRequest> {
        if !self.wanted.is_empty() {
            return Some(fetch(&mut self.wanted, self.batch));
        }
        if self.listed.len() >= self.batch {
            return Some(fetch(&mut self.listed, self.batch));
        }
        if let Some(round) = self.round.as_mut() {
            if round.page.is_none()
                && let Some(bucket) = round.buckets.pop_front()
            {
                round.page = Some(Page {
                    bucket,
                    after: None,
                    pages: 0,
                });
            }
            if let Some(page) = &round.page {
                return Some(SyncRequest::Ids {
                    domain: round.domain.clone(),
                    bucket: page.bucket,
                    after: page.after,
                });
            }
            if !self.listed.is_empty() {
                return Some(fetch(&mut self.listed, self.batch));
            }
            // The listing is over and its ids fetched: the round ends.
            self.round = None;
        }
        let domain = self.queued.pop_front()?;
        self.round = Some(Round {
            domain: domain.clone(),
            buckets: VecDeque::new(),
            page: None,
        });
        Some(SyncRequest::Summary { domain })
    }

    /// Take the peer's answer to the request in flight. Returns the message
    /// bytes to ingest (with `Origin::Sync`); `local` is what this node
    /// holds now, read to decide which buckets and ids it lacks. An error
    /// ends the session: [`SyncSession::poll_request`] returns `None` from
    /// then on.
    pub fn handle_response(
        &mut self,
        response: SyncResponse,
        local: &MessageSet,
    ) -> Result<Vec<Vec<u8>>, SyncError> {
        let Some(request) = self.in_flight.take() else {
            return Err(SyncError::NothingInFlight);
        };
        let result = self.apply(&request, response, local);
        if result.is_err() {
            self.fail();
        }
        result
    }

    fn apply(
        &mut self,
        request: &SyncRequest,
        response: SyncResponse,
        local: &MessageSet,
    ) -> Result<Vec<Vec<u8>>, SyncError> {
        match (request, response) {
            (_, SyncResponse::Refused(why)) => Err(SyncError::Refused(clip(why))),
            (SyncRequest::Summary { domain }, SyncResponse::Summary(theirs)) => {
                if theirs.domain != *domain {
                    return Err(SyncError::WrongDomain {
                        asked: domain.clone(),
                        got: theirs.domain,
                    });
                }
                let ascending = theirs.buckets.windows(2).all(|w| w[0].bucket < w[1].bucket);
                if !ascending || theirs.buckets.len() > MAX_SUMMARY_BUCKETS {
                    return Err(SyncError::BadSummary);
                }
                let wanted = Summary::of(local, domain).wanted_from(&theirs);
                if let Some(round) = self.round.as_mut() {
                    round.buckets = wanted.into();
                }
                Ok(Vec::new())
            }
            (SyncRequest::Ids { .. }, SyncResponse::Ids { ids, more }) => {
                if ids.len() > MAX_IDS_PER_PAGE {
                    return Err(SyncError::PageTooLarge(ids.len()));
                }
                // An `Ids` request is only ever sent for the page in progress.
                let Some(page) = self.round.as_mut().and_then(|r| r.page.as_mut()) else {
                    return Err(SyncError::NothingInFlight);
                };
                page.pages += 1;
                match ids.last() {
                    Some(last) if more => {
                        if page.pages >= MAX_PAGES_PER_BUCKET {
                            return Err(SyncError::PageLimit {
                                bucket: page.bucket,
                            });
                        }
                        page.after = Some(*last);
                    }
                    // The last page, or an empty one that says `more` and
                    // so gives no cursor to continue from.
                    _ => {
                        if let Some(round) = self.round.as_mut() {
                            round.page = None;
                        }
                    }
                }
                self.listed
                    .extend(ids.iter().filter(|id| !local.contains(id)).copied());
                Ok(Vec::new())
            }
            (SyncRequest::Fetch { ids }, SyncResponse::Messages(msgs)) => {
                // The engine checks each message; the count is what the
                // session can check without decoding, and it keeps a peer
                // from pushing more than was asked for.
                if msgs.len() > ids.len() {
                    return Err(SyncError::TooManyMessages {
                        asked: ids.len(),
                        got: msgs.len(),
                    });
                }
                Ok(msgs)
            }
            (request, response) => Err(SyncError::Mismatch {
                asked: request_kind(request),
                got: response_kind(&response),
            }),
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.in_flight = None;
        self.queued.clear();
        self.round = None;
        self.wanted.clear();
        self.listed.clear();
    }
}

/// Longest refusal reason kept: the peer chooses it, and it ends up in logs.
const MAX_REASON_BYTES: usize = 256;

fn clip(mut why: String) -> String {
    if why.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !why.is_char_boundary(end) {
            end -= 1;
        }
        why.truncate(end);
    }
    why
}

/// A `Fetch` of the first `batch` ids of `queue`.
fn fetch(queue: &mut VecDeque<ContentId>, batch: usize) -> SyncRequest {
    let n = queue.len().min(batch);
    SyncRequest::Fetch {
        ids: queue.drain(..n).collect(),
    }
}

fn request_kind(r: &SyncRequest) -> &'static str {
    match r {
        SyncRequest::Summary { .. } => "summary",
        SyncRequest::Ids { .. } => "ids",
        SyncRequest::Fetch { .. } => "fetch",
    }
}

fn response_kind(r: &SyncResponse) -> &'static str {
    match r {
        SyncResponse::Summary(_) => "summary",
        SyncResponse::Ids { .. } => "ids",
        SyncResponse::Messages(_) => "messages",
        SyncResponse::Refused(_) => "refused",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::build::{self, PolicyBuilder};
    use crate::message::{SignedMessage, Timestamp, decode_message};
    use crate::sync::{BUCKET_MS, answer};
    use crate::{Keypair, Stance};

    fn key(seed: u8) -> Keypair {
        Keypair::from_seed([seed; 32])
    }

    /// A policy, then per bucket `0..buckets` a proposal and a response to
    /// it, each bucket one hour of signed time.
    fn messages(buckets: u64) -> Vec<SignedMessage> {
        let org = key(9);
        let mut b = PolicyBuilder::new("d").organization(&org, "org", 10_000);
        for i in 1..=3 {
            b = b.member(&key(i).public(), 0, 5_000);
        }
        let policy = b.sign(&[&org]).unwrap();
        let mut out = vec![policy.clone()];
        for k in 0..buckets {
            let at = Timestamp(1 + k * BUCKET_MS);
            let p = build::proposal(&key(1), "d", policy.id, "k", "{}", at, at.plus_ms(60_000))
                .unwrap();
            let r =
                build::response(&key(2), &p, Stance::Endorse, 5_000, "", at.plus_ms(5)).unwrap();
            out.push(p);
            out.push(r);
        }
        out
    }

    fn set_of(msgs: &[SignedMessage]) -> MessageSet {
        let mut s = MessageSet::new();
        for m in msgs {
            s.insert(m.clone());
        }
        s
    }

    /// Runs `session` to the end against `peer`, inserting what it fetches
    /// into `local`; returns every request sent.
    fn drive(
        session: &mut SyncSession,
        peer: &MessageSet,
        local: &mut MessageSet,
    ) -> Vec<SyncRequest> {
        let mut sent = Vec::new();
        while let Some(req) = session.poll_request() {
            assert!(sent.len() < 1_000, "session does not end");
            let resp = answer(peer, &req);
            sent.push(req);
            for bytes in session.handle_response(resp, local).unwrap() {
                local.insert(decode_message(&bytes).unwrap());
            }
        }
        assert!(session.is_done());
        sent
    }

    fn id(i: u32) -> ContentId {
        ContentId::of(&i.to_le_bytes())
    }

    #[test]
    fn equal_summaries_end_the_round_without_fetching() {
        let msgs = messages(3);
        let peer = set_of(&msgs);
        let mut local = set_of(&msgs);
        let mut s = SyncSession::new(8);
        assert!(s.is_done());
        s.sync("d");
        assert!(!s.is_done());
        let sent = drive(&mut s, &peer, &mut local);
        assert_eq!(sent, vec![SyncRequest::Summary { domain: "d".into() }]);
    }

    #[test]
    fn a_round_lists_differing_buckets_and_fetches_what_is_missing() {
        let msgs = messages(4);
        let peer = set_of(&msgs);
        // Local lacks bucket 1 entirely and the response of bucket 3.
        let mut local = set_of(&[&msgs[..3], &msgs[5..8]].concat());
        let mut s = SyncSession::new(2);
        s.sync("d");
        let sent = drive(&mut s, &peer, &mut local);
        let ids_requests: Vec<u64> = sent
            .iter()
            .filter_map(|r| match r {
                SyncRequest::Ids { bucket, .. } => Some(*bucket),
                _ => None,
            })
            .collect();
        assert_eq!(ids_requests, vec![1, 3]);
        let fetches: Vec<usize> = sent
            .iter()
            .filter_map(|r| match r {
                SyncRequest::Fetch { ids } => Some(ids.len()),
                _ => None,
            })
            .collect();
        // Three missing ids, batches of two: one full batch, then the rest.
        assert_eq!(fetches, vec![2, 1]);
        assert_eq!(Summary::of(&local, "d"), Summary::of(&peer, "d"));
    }

    /// A peer answering from a script instead of a set.
    fn respond(s: &mut SyncSession, resp: SyncResponse) -> Result<Vec<Vec<u8>>, SyncError> {
        s.handle_response(resp, &MessageSet::new())
    }

    fn summary(buckets: &[u64]) -> SyncResponse {
        SyncResponse::Summary(Summary {
            domain: "d".into(),
            buckets: buckets
                .iter()
                .map(|&bucket| super::super::BucketDigest {
                    bucket,
                    count: 1,
                    digest: ContentId::of(&bucket.to_le_bytes()),
                })
                .collect(),
        })
    }

    #[test]
    fn pages_are_followed_and_fetches_never_exceed_the_batch() {
        let batch = 100;
        let mut s = SyncSession::new(batch);
        s.sync("d");
        assert!(matches!(
            s.poll_request(),
            Some(SyncRequest::Summary { .. })
        ));
        respond(&mut s, summary(&[7])).unwrap();
        let first: Vec<ContentId> = (0..MAX_IDS_PER_PAGE as u32).map(id).collect();
        let second: Vec<ContentId> = (100_000..100_150).map(id).collect();
        let mut pages = vec![(first.clone(), true), (second.clone(), false)].into_iter();
        let mut fetched = Vec::new();
        let mut cursors = Vec::new();
        while let Some(req) = s.poll_request() {
            match req {
                SyncRequest::Ids { bucket, after, .. } => {
                    assert_eq!(bucket, 7);
                    cursors.push(after);
                    let (ids, more) = pages.next().unwrap();
                    respond(&mut s, SyncResponse::Ids { ids, more }).unwrap();
                }
                SyncRequest::Fetch { ids } => {
                    assert!(!ids.is_empty() && ids.len() <= batch);
                    fetched.extend(ids);
                    respond(&mut s, SyncResponse::Messages(Vec::new())).unwrap();
                }
                SyncRequest::Summary { .. } => panic!("one round only"),
            }
        }
        assert_eq!(cursors, vec![None, first.last().copied()]);
        assert_eq!(fetched, [first, second].concat());
        assert!(s.is_done());
    }

    #[test]
    fn wanted_ids_go_first_in_batches() {
        let mut s = SyncSession::new(3);
        s.sync("d");
        s.want(&(0..5).map(id).collect::<Vec<_>>());
        let sizes: Vec<usize> = std::iter::from_fn(|| match s.poll_request()? {
            SyncRequest::Fetch { ids } => {
                let n = ids.len();
                respond(&mut s, SyncResponse::Messages(Vec::new())).unwrap();
                Some(n)
            }
            _ => None,
        })
        .collect();
        assert_eq!(sizes, vec![3, 2]);
        assert_eq!(
            s.in_flight(),
            Some(&SyncRequest::Summary { domain: "d".into() })
        );
    }

    #[test]
    fn a_response_that_does_not_answer_the_request_in_flight_is_an_error() {
        let mut s = SyncSession::new(4);
        assert_eq!(
            respond(&mut s, summary(&[])),
            Err(SyncError::NothingInFlight)
        );

        let cases: Vec<(SyncResponse, SyncError)> = vec![
            (
                SyncResponse::Ids {
                    ids: Vec::new(),
                    more: false,
                },
                SyncError::Mismatch {
                    asked: "summary",
                    got: "ids",
                },
            ),
            (
                SyncResponse::Summary(Summary {
                    domain: "other".into(),
                    buckets: Vec::new(),
                }),
                SyncError::WrongDomain {
                    asked: "d".into(),
                    got: "other".into(),
                },
            ),
            (summary(&[3, 3]), SyncError::BadSummary),
            (summary(&[4, 2]), SyncError::BadSummary),
            (
                SyncResponse::Refused("no".into()),
                SyncError::Refused("no".into()),
            ),
            (
                SyncResponse::Refused("é".repeat(MAX_REASON_BYTES)),
                SyncError::Refused("é".repeat(MAX_REASON_BYTES / 2)),
            ),
        ];
        for (resp, err) in cases {
            let mut s = SyncSession::new(4);
            s.sync("d");
            s.sync("e");
            assert!(s.poll_request().is_some());
            assert_eq!(respond(&mut s, resp), Err(err));
            // The error ends the session, queued rounds included.
            assert!(s.is_done());
            assert_eq!(s.poll_request(), None);
        }

        let mut s = SyncSession::new(4);
        s.sync("d");
        s.poll_request();
        respond(&mut s, summary(&[1])).unwrap();
        s.poll_request();
        let ids: Vec<ContentId> = (0..=MAX_IDS_PER_PAGE as u32).map(id).collect();
        assert_eq!(
            respond(&mut s, SyncResponse::Ids { ids, more: false }),
            Err(SyncError::PageTooLarge(MAX_IDS_PER_PAGE + 1))
        );

        let mut s = SyncSession::new(4);
        s.want(&[id(1), id(2)]);
        s.poll_request();
        assert_eq!(
            respond(
                &mut s,
                SyncResponse::Messages(vec![vec![1], vec![2], vec![3]])
            ),
            Err(SyncError::TooManyMessages { asked: 2, got: 3 })
        );
    }

    #[test]
    fn a_peer_that_pages_forever_stops_at_the_cap() {
        let mut s = SyncSession::new(MAX_FETCH_IDS);
        s.sync("d");
        s.poll_request();
        respond(&mut s, summary(&[5])).unwrap();
        let mut requests = 0u32;
        let mut next = 0u32;
        let err = loop {
            let Some(req) = s.poll_request() else {
                panic!("the session stopped without an error");
            };
            requests += 1;
            assert!(requests <= 2 * MAX_PAGES_PER_BUCKET, "no cap");
            let resp = match req {
                SyncRequest::Ids { .. } => {
                    next += 1;
                    SyncResponse::Ids {
                        ids: vec![id(next)],
                        more: true,
                    }
                }
                _ => SyncResponse::Messages(Vec::new()),
            };
            if let Err(e) = respond(&mut s, resp) {
                break e;
            }
        };
        assert_eq!(err, SyncError::PageLimit { bucket: 5 });
        assert_eq!(next, MAX_PAGES_PER_BUCKET);
        assert!(s.is_done());
    }

    #[test]
    fn an_empty_page_that_says_more_ends_the_bucket() {
        let mut s = SyncSession::new(4);
        s.sync("d");
        s.poll_request();
        respond(&mut s, summary(&[1, 2])).unwrap();
        assert!(matches!(
            s.poll_request(),
            Some(SyncRequest::Ids { bucket: 1, .. })
        ));
        respond(
            &mut s,
            SyncResponse::Ids {
                ids: Vec::new(),
                more: true,
            },
        )
        .unwrap();
        assert!(matches!(
            s.poll_request(),
            Some(SyncRequest::Ids {
                bucket: 2,
                after: None,
                ..
            })
        ));
    }

    #[test]
    fn a_round_queued_twice_before_it_starts_runs_once() {
        let msgs = messages(1);
        let peer = set_of(&msgs);
        let mut local = set_of(&msgs);
        let mut s = SyncSession::new(4);
        s.sync("d");
        s.sync("d");
        assert_eq!(drive(&mut s, &peer, &mut local).len(), 1);
    }
}
