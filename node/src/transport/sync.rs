//! Anti-entropy over `/acp/sync/2`: the node's half of the pure protocol in
//! [`acp_protocol::sync`].
//!
//! A round, per peer and per joined domain:
//! 1. ask for the peer's [`Summary`] of the domain;
//! 2. for each bucket whose digest differs from ours, page through the
//!    peer's ids in that bucket ([`SyncRequest::Ids`]);
//! 3. fetch the ids we lack in batches of at most `batch` ids
//!    ([`SyncRequest::Fetch`]) and ingest them with `Origin::Sync`.
//!
//! A round runs when a peer connects and every `sync_interval_secs`. Every
//! step is bounded by the protocol's limits (ids per page, ids per fetch,
//! bytes per response) and by the transport's frame limits.

use acp_protocol::sync::{MAX_FETCH_IDS, Summary, SyncRequest, SyncResponse};
use acp_protocol::{ContentId, Engine};

/// What to do after a sync response.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Requests to send to the same peer.
    pub requests: Vec<SyncRequest>,
    /// Message bytes to ingest with `Origin::Sync`.
    pub messages: Vec<Vec<u8>>,
}

/// The first requests of a round: one summary request per domain.
pub fn start_round(domains: &[String]) -> Vec<SyncRequest> {
    domains
        .iter()
        .map(|d| SyncRequest::Summary { domain: d.clone() })
        .collect()
}

/// Fetch requests for the ids we lack, in batches of at most `batch`.
pub fn fetches(engine: &Engine, ids: &[ContentId], batch: usize) -> Vec<SyncRequest> {
    let missing = engine.missing(ids);
    missing
        .chunks(batch.clamp(1, MAX_FETCH_IDS))
        .map(|c| SyncRequest::Fetch { ids: c.to_vec() })
        .collect()
}

/// Buckets where the peer's summary shows messages we may lack.
pub fn wanted(ours: &Summary, theirs: &Summary) -> Vec<u64> {
    ours.wanted_from(theirs)
}

/// Decides the next step from a response to `request`.
pub fn on_response(
    engine: &Engine,
    request: &SyncRequest,
    response: SyncResponse,
    batch: usize,
) -> Step {
    let mut step = Step::default();
    match (request, response) {
        (SyncRequest::Summary { domain }, SyncResponse::Summary(theirs)) => {
            if theirs.domain != *domain {
                return step;
            }
            let ours = engine.summary(domain);
            for bucket in wanted(&ours, &theirs) {
                step.requests.push(SyncRequest::Ids {
                    domain: domain.clone(),
                    bucket,
                    after: None,
                });
            }
        }
        (SyncRequest::Ids { domain, bucket, .. }, SyncResponse::Ids { ids, more }) => {
            step.requests = fetches(engine, &ids, batch);
            if more && let Some(last) = ids.last() {
                step.requests.push(SyncRequest::Ids {
                    domain: domain.clone(),
                    bucket: *bucket,
                    after: Some(*last),
                });
            }
        }
        (SyncRequest::Fetch { .. }, SyncResponse::Messages(msgs)) => {
            step.messages = msgs;
        }
        (_, SyncResponse::Refused(why)) => {
            tracing::debug!(%why, "sync request refused");
        }
        _ => {
            tracing::debug!("sync response does not match its request");
        }
    }
    step
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use acp_protocol::build::{self, PolicyBuilder};
    use acp_protocol::{EngineConfig, Keypair, Origin, SignedMessage, Stance, Timestamp};

    fn key(seed: u8) -> Keypair {
        Keypair::from_seed([seed; 32])
    }

    /// The genesis policy (members 1..=5) and a proposal by member 1.
    fn genesis_and_proposal() -> (SignedMessage, SignedMessage) {
        let org = key(9);
        let mut b = PolicyBuilder::new("d").organization(&org, "org", 10_000);
        for i in 1..=5 {
            b = b.member(&key(i).public(), 0, 5_000);
        }
        let policy = b.sign(&[&org]).unwrap();
        let p = build::proposal(
            &key(1),
            "d",
            policy.id,
            "k",
            "{}",
            Timestamp(1),
            Timestamp(3_600_000),
        )
        .unwrap();
        (policy, p)
    }

    fn response(p: &SignedMessage, seed: u8, t: u64) -> Vec<u8> {
        build::response(&key(seed), p, Stance::Endorse, 5000, "", Timestamp(t))
            .unwrap()
            .bytes
    }

    /// Runs full rounds between two engines in memory until nothing moves.
    fn converge(a: &mut Engine, b: &Engine) {
        let now = Timestamp(10_000_000);
        let mut queue = start_round(&["d".to_string()]);
        let mut rounds = 0;
        while let Some(req) = queue.pop() {
            rounds += 1;
            assert!(rounds < 100);
            let wire = SyncRequest::from_bytes(&req.to_bytes().unwrap()).unwrap();
            let resp = b.answer(&wire);
            let resp = SyncResponse::from_bytes(&resp.to_bytes().unwrap()).unwrap();
            let step = on_response(a, &req, resp, 2);
            for m in step.messages {
                a.ingest(&m, Origin::Sync, now).unwrap();
            }
            queue.extend(step.requests);
        }
    }

    #[test]
    fn a_round_fetches_exactly_the_missing_messages() {
        let (policy, p) = genesis_and_proposal();
        let mut a = Engine::new(EngineConfig::default());
        let mut b = Engine::new(EngineConfig::default());
        let now = Timestamp(10_000_000);
        for e in [&mut a, &mut b] {
            e.add_anchor("d", policy.id);
            e.ingest(&policy.bytes, Origin::Local, now).unwrap();
            e.ingest(&p.bytes, Origin::Local, now).unwrap();
        }
        for (i, t) in [(2u8, 6u64), (3, 7), (4, 4_000_000), (5, 8)] {
            b.ingest(&response(&p, i, t), Origin::Local, now).unwrap();
        }
        converge(&mut a, &b);
        assert_eq!(a.summary("d"), b.summary("d"));
        assert_eq!(a.set().len(), 6);
    }
}
