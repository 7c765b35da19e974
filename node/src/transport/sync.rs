//! Anti-entropy over `/acp/sync/2`: one [`SyncSession`] per connected peer.
//!
//! Every decision of a round (which summary to ask for, which buckets to
//! list, which ids to fetch, when the round ends, which answers to refuse)
//! is the session's, in [`acp_protocol::sync`]; the simulator drives the
//! same session. This module only keeps the sessions by peer and matches
//! the transport's responses to them; the core task sends the requests and
//! ingests what comes back with `Origin::Sync`.
//!
//! A session has one request in flight. Rounds asked for while a session is
//! busy queue behind its work (a domain at most once before its round
//! starts), and fetches of missing dependencies go ahead of its listing. A
//! session that has nothing left to do, whose peer answered something other
//! than what was asked, or whose request failed is dropped; the next round
//! starts a new one. So is one whose request has waited longer than the
//! transport's own timeout: the core's event queue sheds events when full,
//! and a lost answer must not stall the peer's sync for good.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use acp_protocol::MessageSet;
use acp_protocol::sync::{SyncError, SyncRequest, SyncResponse, SyncSession};
use acp_protocol::{ContentId, codec::CodecError};
use libp2p::PeerId;

/// Why a response was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// It answers no request in flight (one of a session already dropped).
    #[error("the response answers no request in flight")]
    Stale,
    /// The response bytes do not decode; the session is dropped.
    #[error("malformed sync response: {0}")]
    Malformed(CodecError),
    /// The session refused the response and is dropped.
    #[error(transparent)]
    Session(#[from] SyncError),
}

/// The sync sessions of the node, by peer.
#[derive(Debug)]
pub struct Sessions {
    batch: usize,
    by_peer: HashMap<PeerId, Entry>,
}

#[derive(Debug)]
struct Entry {
    session: SyncSession,
    /// When the request in flight was handed out.
    sent: Option<Instant>,
}

impl Sessions {
    /// No sessions; fetches take at most `batch` ids (`sync_batch`).
    pub fn new(batch: usize) -> Self {
        Self {
            batch,
            by_peer: HashMap::new(),
        }
    }

    fn session(&mut self, peer: PeerId) -> &mut SyncSession {
        let batch = self.batch;
        &mut self
            .by_peer
            .entry(peer)
            .or_insert_with(|| Entry {
                session: SyncSession::new(batch),
                sent: None,
            })
            .session
    }

    /// Queues a round per domain with `peer`.
    pub fn sync(&mut self, peer: PeerId, domains: &[String]) {
        let s = self.session(peer);
        for d in domains {
            s.sync(d);
        }
    }

    /// Asks `peer` for these messages, ahead of any listing.
    pub fn want(&mut self, peer: PeerId, ids: &[ContentId]) {
        self.session(peer).want(ids);
    }

    /// The request to send `peer` now, if its session has one and nothing
    /// in flight. A session with nothing left to do is dropped here.
    pub fn poll(&mut self, peer: PeerId, now: Instant) -> Option<SyncRequest> {
        let e = self.by_peer.get_mut(&peer)?;
        let req = e.session.poll_request();
        if req.is_some() {
            e.sent = Some(now);
        } else if e.session.is_done() {
            self.by_peer.remove(&peer);
        }
        req
    }

    /// Drops the sessions whose request has waited more than `max` for an
    /// answer or a failure; returns how many.
    pub fn expire(&mut self, now: Instant, max: Duration) -> usize {
        let before = self.by_peer.len();
        self.by_peer.retain(|_, e| {
            e.session.in_flight().is_none()
                || e.sent
                    .is_none_or(|t| now.saturating_duration_since(t) <= max)
        });
        before - self.by_peer.len()
    }

    /// Takes `peer`'s answer to the encoded `request`; returns the message
    /// bytes to ingest. Any error but [`ResponseError::Stale`] drops the
    /// session.
    pub fn on_response(
        &mut self,
        peer: PeerId,
        request: &[u8],
        response: &[u8],
        local: &MessageSet,
    ) -> Result<Vec<Vec<u8>>, ResponseError> {
        let Some(s) = self.by_peer.get_mut(&peer).map(|e| &mut e.session) else {
            return Err(ResponseError::Stale);
        };
        if !in_flight_is(s, request) {
            return Err(ResponseError::Stale);
        }
        let result = match SyncResponse::from_bytes(response) {
            Ok(resp) => s.handle_response(resp, local).map_err(ResponseError::from),
            Err(e) => Err(ResponseError::Malformed(e)),
        };
        if result.is_err() {
            self.by_peer.remove(&peer);
        }
        result
    }

    /// The encoded `request` to `peer` failed (timeout, closed stream): its
    /// session cannot go on.
    pub fn on_failure(&mut self, peer: PeerId, request: &[u8]) {
        if self
            .by_peer
            .get(&peer)
            .is_some_and(|e| in_flight_is(&e.session, request))
        {
            self.by_peer.remove(&peer);
        }
    }

    /// Drops `peer`'s session.
    pub fn remove(&mut self, peer: &PeerId) {
        self.by_peer.remove(peer);
    }

    /// Peers with a session.
    pub fn len(&self) -> usize {
        self.by_peer.len()
    }

    /// True when no peer has a session.
    pub fn is_empty(&self) -> bool {
        self.by_peer.is_empty()
    }
}

fn in_flight_is(s: &SyncSession, request: &[u8]) -> bool {
    s.in_flight()
        .is_some_and(|r| SyncRequest::from_bytes(request).is_ok_and(|q| q == *r))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use acp_protocol::build::{self, PolicyBuilder};
    use acp_protocol::{Engine, EngineConfig, Keypair, Origin, SignedMessage, Stance, Timestamp};

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

    /// Runs one round with `b` over encoded bytes, as the core does.
    fn converge(a: &mut Engine, b: &Engine, peer: PeerId) -> usize {
        let now = Timestamp(10_000_000);
        let mut sessions = Sessions::new(2);
        sessions.sync(peer, &["d".to_string()]);
        let mut sent = 0;
        while let Some(req) = sessions.poll(peer, Instant::now()) {
            sent += 1;
            assert!(sent < 100);
            let wire = req.to_bytes().unwrap();
            let resp = b.answer(&SyncRequest::from_bytes(&wire).unwrap());
            let msgs = sessions
                .on_response(peer, &wire, &resp.to_bytes().unwrap(), a.set())
                .unwrap();
            for m in msgs {
                a.ingest(&m, Origin::Sync, now).unwrap();
            }
        }
        assert!(sessions.is_empty(), "a finished session is dropped");
        sent
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
        // Summary, one page in each of two buckets, fetches of 2 + 2.
        assert_eq!(converge(&mut a, &b, PeerId::random()), 5);
        assert_eq!(a.summary("d"), b.summary("d"));
        assert_eq!(a.set().len(), 6);
    }

    #[test]
    fn stale_malformed_and_failed_responses() {
        let peer = PeerId::random();
        let set = MessageSet::new();
        let mut sessions = Sessions::new(4);
        assert!(matches!(
            sessions.on_response(peer, b"", b"", &set),
            Err(ResponseError::Stale)
        ));
        sessions.sync(peer, &["d".to_string()]);
        let req = sessions
            .poll(peer, Instant::now())
            .unwrap()
            .to_bytes()
            .unwrap();
        assert_eq!(
            sessions.poll(peer, Instant::now()),
            None,
            "one request in flight"
        );
        let other = SyncRequest::Summary { domain: "e".into() };
        assert!(matches!(
            sessions.on_response(peer, &other.to_bytes().unwrap(), b"", &set),
            Err(ResponseError::Stale)
        ));
        sessions.on_failure(peer, &other.to_bytes().unwrap());
        assert_eq!(sessions.len(), 1, "a failure of another request");
        assert!(matches!(
            sessions.on_response(peer, &req, b"\xff", &set),
            Err(ResponseError::Malformed(_))
        ));
        assert!(sessions.is_empty());

        sessions.sync(peer, &["d".to_string()]);
        let req = sessions
            .poll(peer, Instant::now())
            .unwrap()
            .to_bytes()
            .unwrap();
        let wrong = SyncResponse::Messages(Vec::new()).to_bytes().unwrap();
        assert!(matches!(
            sessions.on_response(peer, &req, &wrong, &set),
            Err(ResponseError::Session(SyncError::Mismatch { .. }))
        ));
        assert!(sessions.is_empty());

        sessions.sync(peer, &["d".to_string()]);
        let req = sessions
            .poll(peer, Instant::now())
            .unwrap()
            .to_bytes()
            .unwrap();
        sessions.on_failure(peer, &req);
        assert!(sessions.is_empty());
    }

    #[test]
    fn a_request_unanswered_for_too_long_drops_its_session() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let mut sessions = Sessions::new(4);
        sessions.sync(a, &["d".to_string()]);
        sessions.sync(b, &["d".to_string()]);
        sessions.poll(a, t0).unwrap();
        sessions.poll(b, t0 + Duration::from_secs(20)).unwrap();
        let max = Duration::from_secs(30);
        assert_eq!(sessions.expire(t0 + max, max), 0);
        assert_eq!(sessions.expire(t0 + max + Duration::from_secs(1), max), 1);
        assert_eq!(sessions.len(), 1);
    }
}
