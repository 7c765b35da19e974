//! Shared fixtures for the protocol's integration tests: a small domain with
//! deterministic keys, and a `World` of engines on a virtual clock.
#![allow(dead_code)]

use acp_protocol::build::{PolicyBuilder, default_rules, proposal, receipt, response};
use acp_protocol::engine::{Effect, Engine, EngineConfig, Event, Origin};
use acp_protocol::{
    ContentId, DecisionRules, Keypair, MessageSet, Resolution, SignedMessage, Stance, Timestamp,
    resolve,
};

pub const DOMAIN: &str = "loans.retail";
pub const CREATED: Timestamp = Timestamp(1_000_000);
pub const CLOSES: Timestamp = Timestamp(1_060_000);

/// The receipt key of engine `i` of a [`World`].
pub fn attestor(i: usize) -> Keypair {
    key(50 + i as u8)
}

pub fn key(n: u8) -> Keypair {
    let mut seed = [0u8; 32];
    seed[0] = n;
    seed[31] = 0xac;
    Keypair::from_seed(seed)
}

/// A domain with two organizations; agents `1..=n` belong to org `(i-1) % 2`
/// with the given authorities; key 100 proposes (a listed proposer, not a
/// member). The organizations' attestors are keys 50 and 51, the receipt
/// keys of a [`World`]'s first two engines.
pub struct Fixture {
    pub orgs: [Keypair; 2],
    pub agents: Vec<Keypair>,
    pub proposer: Keypair,
    pub human: Keypair,
    pub reporter: Keypair,
    pub policy: SignedMessage,
    pub proposal: SignedMessage,
}

impl Fixture {
    pub fn new(authorities: &[u16], rules: DecisionRules) -> Self {
        Self::with_caps(authorities, rules, [10_000, 10_000])
    }

    pub fn with_caps(authorities: &[u16], rules: DecisionRules, caps: [u16; 2]) -> Self {
        let orgs = [key(200), key(201)];
        let agents: Vec<Keypair> = (1..=authorities.len() as u8).map(key).collect();
        let proposer = key(100);
        let human = key(150);
        let reporter = key(151);
        let mut b = PolicyBuilder::new(DOMAIN)
            .organization_attested(&orgs[0], "Credit", caps[0], &attestor(0).public())
            .organization_attested(&orgs[1], "Compliance", caps[1], &attestor(1).public())
            .proposer(&proposer.public())
            .human(&human.public())
            .reporter(&reporter.public())
            .rules(rules);
        for (i, (a, auth)) in agents.iter().zip(authorities).enumerate() {
            b = b.member(&a.public(), (i % 2) as u16, *auth);
        }
        let policy = b.sign(&[&orgs[0], &orgs[1]]).expect("policy");
        let proposal = proposal(
            &proposer,
            DOMAIN,
            policy.id,
            "loan.approve",
            r#"{"amount":25000}"#,
            CREATED,
            CLOSES,
        )
        .expect("proposal");
        Self {
            orgs,
            agents,
            proposer,
            human,
            reporter,
            policy,
            proposal,
        }
    }

    pub fn standard() -> Self {
        Self::new(&[10_000; 4], default_rules())
    }

    /// A second proposal under the fixture's policy, created 100 ms after
    /// the first one closed: it reads whatever was reported on the first.
    pub fn later_proposal(&self) -> SignedMessage {
        proposal(
            &self.proposer,
            DOMAIN,
            self.policy.id,
            "loan.approve",
            "{}",
            CLOSES.plus_ms(100),
            CLOSES.plus_ms(60_100),
        )
        .expect("sign")
    }

    pub fn vote(&self, agent: usize, stance: Stance, confidence: u16) -> SignedMessage {
        self.vote_at(agent, stance, confidence, CREATED.plus_ms(1_000))
    }

    pub fn vote_at(
        &self,
        agent: usize,
        stance: Stance,
        confidence: u16,
        at: Timestamp,
    ) -> SignedMessage {
        response(
            &self.agents[agent],
            &self.proposal,
            stance,
            confidence,
            &format!("agent {agent} reasoning"),
            at,
        )
        .expect("response")
    }

    /// The set of policy, proposal and `extra`, anchored at the policy.
    pub fn set(&self, extra: &[SignedMessage]) -> MessageSet {
        let mut s = MessageSet::new();
        s.set_anchor(DOMAIN, self.policy.id);
        s.insert(self.policy.clone());
        s.insert(self.proposal.clone());
        for m in extra {
            s.insert(m.clone());
        }
        s
    }

    pub fn resolve_final(&self, extra: &[SignedMessage]) -> Resolution {
        resolve(&self.set(extra), &self.proposal.id, CLOSES).expect("resolve")
    }

    /// Both attestors' receipts for the closed resolution of the set with
    /// `extra`.
    pub fn attest(&self, extra: &[SignedMessage]) -> Vec<SignedMessage> {
        let r = self.resolve_final(extra);
        (0..2)
            .map(|i| receipt(&attestor(i), &self.proposal, &r).expect("receipt"))
            .collect()
    }

    pub fn resolve_at(&self, extra: &[SignedMessage], now: Timestamp) -> Resolution {
        resolve(&self.set(extra), &self.proposal.id, now).expect("resolve")
    }
}

/// A deterministic multi-engine world: every message published by one engine
/// is delivered to every other engine after `latency_ms`, in an order fixed
/// by a seed; the clock advances to the next delivery or wakeup until idle.
pub struct World {
    pub engines: Vec<Engine>,
    pub now: Timestamp,
    pub queue: Vec<(Timestamp, u64, usize, Vec<u8>)>,
    pub events: Vec<Vec<Event>>,
    seq: u64,
    rng: u64,
    latency_ms: u64,
}

impl World {
    pub fn new(nodes: usize, seed: u64, latency_ms: u64) -> Self {
        let engines = (0..nodes)
            .map(|i| {
                Engine::new(EngineConfig {
                    receipt_key: Some(attestor(i)),
                    ..EngineConfig::default()
                })
            })
            .collect();
        Self {
            engines,
            now: Timestamp(0),
            queue: Vec::new(),
            events: vec![Vec::new(); nodes],
            seq: 0,
            rng: seed | 1,
            latency_ms,
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: the test's only source of variety, fixed by the seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Deliver `bytes` to node `to` at `at` (jittered by the seed).
    pub fn deliver_at(&mut self, to: usize, at: Timestamp, bytes: Vec<u8>) {
        let jitter = self.next_rand() % (self.latency_ms + 1);
        self.seq += 1;
        let order = self.next_rand();
        self.queue
            .push((at.plus_ms(jitter), order ^ self.seq, to, bytes));
    }

    /// Every engine trusts `genesis` as the domain's genesis policy.
    pub fn anchor(&mut self, domain: &str, genesis: ContentId) {
        for e in &mut self.engines {
            e.add_anchor(domain, genesis);
        }
    }

    /// A local submission at node `at_node` now.
    pub fn submit(&mut self, at_node: usize, msg: &SignedMessage) {
        let now = self.now;
        let ingested = self.engines[at_node]
            .ingest(&msg.bytes, Origin::Local, now)
            .expect("local submission accepted");
        self.apply(at_node, ingested.effects);
    }

    fn apply(&mut self, node: usize, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Publish { bytes, .. } => {
                    for to in 0..self.engines.len() {
                        if to != node {
                            let at = self.now.plus_ms(1);
                            self.deliver_at(to, at, bytes.clone());
                        }
                    }
                }
                Effect::Event(ev) => self.events[node].push(ev),
                // Anti-entropy stands in for a peer answering a fetch: any
                // engine that holds the message delivers it.
                Effect::Fetch { ids, .. } => {
                    for id in ids {
                        let holder = self.engines.iter().find_map(|e| e.get_bytes(&id));
                        if let Some(bytes) = holder.map(<[u8]>::to_vec) {
                            let at = self.now.plus_ms(1);
                            self.deliver_at(node, at, bytes);
                        }
                    }
                }
                Effect::Store { .. } | Effect::Sync { .. } => {}
            }
        }
    }

    /// Step until no delivery is queued and no wakeup is due before `until`.
    pub fn run_until(&mut self, until: Timestamp) {
        loop {
            self.queue.sort_by_key(|(t, o, _, _)| (*t, *o));
            let next_delivery = self.queue.first().map(|q| q.0);
            let next_wake = self.engines.iter().filter_map(Engine::next_wakeup).min();
            let next = match (next_delivery, next_wake) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            while self.queue.first().is_some_and(|q| q.0 <= self.now) {
                let (_, _, to, bytes) = self.queue.remove(0);
                let now = self.now;
                if let Ok(ing) = self.engines[to].ingest(&bytes, Origin::Peer, now) {
                    self.apply(to, ing.effects);
                }
            }
            for i in 0..self.engines.len() {
                let now = self.now;
                let effects = self.engines[i].tick(now);
                self.apply(i, effects);
            }
        }
        self.now = self.now.max(until);
        for i in 0..self.engines.len() {
            let now = self.now;
            let effects = self.engines[i].tick(now);
            self.apply(i, effects);
        }
    }

    /// The final resolution digest each engine computes for `proposal`.
    pub fn digests(&mut self, proposal: &ContentId) -> Vec<ContentId> {
        let now = self.now;
        self.engines
            .iter_mut()
            .map(|e| e.resolve(proposal, now).expect("known proposal").digest())
            .collect()
    }
}
