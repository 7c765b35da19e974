//! Node metrics in the Prometheus text exposition format (version 0.0.4),
//! served at `GET /metrics` on the sidecar HTTP server (bearer token as
//! `/v1`).
//!
//! The node core counts what it sees in [`NodeMetrics`] (messages in by
//! origin, accepted, rejected by [`acp_protocol::Rejection::code`], ignored,
//! published, sync rounds, peers penalized for unadmitted gossip, finality
//! events, resolution latency); the transport counts wire bytes, queue drops
//! and sync requests in [`p2p::Metrics`] and keeps a snapshot of gossipsub
//! peers and mesh size per topic; proposals by status and finality state,
//! admission counters (refused by reason, parked, released, expired,
//! overflow, waiting) and the size of the message set are read from the
//! engine at scrape time. [`render`] writes them all.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use acp_protocol::admission::Refusal;
use acp_protocol::engine::AdmissionStats;
use acp_protocol::{ContentId, Event, IngestError};

use crate::surface::view;
use crate::transport::p2p;

/// Upper bounds (seconds) of the resolution latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 86400.0,
];

/// Proposals whose seen time is remembered at most (older ones are dropped
/// and never observed).
const MAX_TRACKED: usize = 100_000;

/// Where a message came from, as a label value.
pub fn origin_label(o: acp_protocol::Origin) -> &'static str {
    match o {
        acp_protocol::Origin::Local => "local",
        acp_protocol::Origin::Peer => "peer",
        acp_protocol::Origin::Sync => "sync",
        acp_protocol::Origin::Store => "store",
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic mid-update of plain numbers.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: [0; LATENCY_BUCKETS.len()],
            count: 0,
            sum: 0.0,
        }
    }
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (b, le) in self.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if secs <= le {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

#[derive(Debug, Default)]
struct Latency {
    /// Proposal id -> (first seen, decided already observed).
    seen: HashMap<ContentId, (Instant, bool)>,
    /// Proposal id -> first seen, kept from finalization to certification.
    finalized_at: HashMap<ContentId, Instant>,
    decided: Histogram,
    finalized: Histogram,
    certified: Histogram,
}

/// The finality events counted, as label values.
const FINALITY_EVENTS: [&str; 5] = [
    "certified",
    "contested",
    "attestor_equivocation",
    "policy_fork",
    "after_certification",
];

/// Counters kept by the node core; shared with the HTTP server.
#[derive(Debug)]
pub struct NodeMetrics {
    net: Arc<p2p::Metrics>,
    /// (name, origin, reason) -> count, for in/accepted/rejected/ignored.
    messages: Mutex<BTreeMap<(&'static str, &'static str, String), u64>>,
    published: AtomicU64,
    sync_rounds: AtomicU64,
    penalized: AtomicU64,
    finality_events: Mutex<BTreeMap<&'static str, u64>>,
    latency: Mutex<Latency>,
}

impl NodeMetrics {
    /// Metrics around the transport's counters.
    pub fn new(net: Arc<p2p::Metrics>) -> Self {
        Self {
            net,
            messages: Mutex::new(BTreeMap::new()),
            published: AtomicU64::new(0),
            sync_rounds: AtomicU64::new(0),
            penalized: AtomicU64::new(0),
            finality_events: Mutex::new(FINALITY_EVENTS.iter().map(|e| (*e, 0)).collect()),
            latency: Mutex::new(Latency::default()),
        }
    }

    fn bump(&self, name: &'static str, origin: &'static str, reason: String) {
        *lock(&self.messages)
            .entry((name, origin, reason))
            .or_insert(0) += 1;
    }

    /// Counts one message offered to the engine and what became of it.
    pub fn ingested<T>(&self, origin: acp_protocol::Origin, r: &Result<T, IngestError>) {
        let o = origin_label(origin);
        self.bump("in", o, String::new());
        match r {
            Ok(_) => self.bump("accepted", o, String::new()),
            Err(IngestError::Rejected(rej)) => self.bump("rejected", o, rej.code()),
            Err(IngestError::Duplicate(_)) => self.bump("ignored", o, "duplicate".into()),
            Err(IngestError::FromTheFuture { .. }) => {
                self.bump("ignored", o, "from_the_future".into())
            }
            Err(IngestError::NotAdmitted(_)) => self.bump("ignored", o, "not_admitted".into()),
            Err(IngestError::Pending { .. }) => self.bump("ignored", o, "pending".into()),
            Err(_) => self.bump("ignored", o, "other".into()),
        }
    }

    /// Counts a message refused before the engine saw it (bad bytes, wrong
    /// topic) under `reason`.
    pub fn refused(&self, origin: acp_protocol::Origin, reason: String) {
        let o = origin_label(origin);
        self.bump("in", o, String::new());
        self.bump("rejected", o, reason);
    }

    /// Counts a message handed to the transport for publication.
    pub fn published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an anti-entropy round.
    pub fn sync_round(&self) {
        self.sync_rounds.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a gossip message reported `Reject` because its forwarding
    /// peer keeps sending messages no lineage admits.
    pub fn penalized(&self) {
        self.penalized.fetch_add(1, Ordering::Relaxed);
    }

    /// Feeds the resolution latency: a proposal's clock starts when it is
    /// seen and is observed at its first decision (or escalation), at its
    /// finalization and at its certification. Counts finality events.
    pub fn on_event(&self, ev: &Event) {
        let name = match ev {
            Event::Certified { .. } => Some("certified"),
            Event::Contested { .. } => Some("contested"),
            Event::AttestorEquivocation { .. } => Some("attestor_equivocation"),
            Event::PolicyFork { .. } => Some("policy_fork"),
            Event::AfterCertification { .. } => Some("after_certification"),
            _ => None,
        };
        if let Some(n) = name {
            *lock(&self.finality_events).entry(n).or_insert(0) += 1;
        }
        let mut l = lock(&self.latency);
        match ev {
            Event::ProposalSeen { id, .. } if l.seen.len() < MAX_TRACKED => {
                l.seen.entry(*id).or_insert((Instant::now(), false));
            }
            Event::Decided { resolution } | Event::Escalated { resolution } => {
                let p = resolution.proposal;
                if let Some((t, done)) = l.seen.get_mut(&p)
                    && !*done
                {
                    *done = true;
                    let secs = t.elapsed().as_secs_f64();
                    l.decided.observe(secs);
                }
            }
            Event::Finalized { resolution, .. } => {
                let p = resolution.proposal;
                if let Some((t, done)) = l.seen.remove(&p) {
                    let secs = t.elapsed().as_secs_f64();
                    if !done {
                        l.decided.observe(secs);
                    }
                    l.finalized.observe(secs);
                    if l.finalized_at.len() < MAX_TRACKED {
                        l.finalized_at.insert(p, t);
                    }
                }
            }
            // Observed once per proposal: a round-1 certificate after an
            // escalation certified in round 0 does not restart the clock.
            Event::Certified { resolution } => {
                let p = resolution.proposal;
                let started = l
                    .finalized_at
                    .remove(&p)
                    .or_else(|| l.seen.remove(&p).map(|s| s.0));
                if let Some(t) = started {
                    l.certified.observe(t.elapsed().as_secs_f64());
                }
            }
            _ => {}
        }
    }
}

/// Figures read from the engine at scrape time.
#[derive(Debug, Clone, Default)]
pub struct EngineFigures {
    /// Proposals by the status to act on (the certified one, escalated, or
    /// provisional).
    pub proposals: BTreeMap<&'static str, u64>,
    /// Proposals by finality state.
    pub finality: BTreeMap<&'static str, u64>,
    /// Messages held (the store holds the same set).
    pub messages: u64,
    /// Sum of their signed bytes.
    pub bytes: u64,
    /// The engine's admission counters.
    pub admission: AdmissionStats,
}

/// Reads [`EngineFigures`] (runs inside the core task).
pub fn engine_figures(e: &mut acp_protocol::Engine) -> EngineFigures {
    let mut f = EngineFigures {
        admission: e.admission_stats(),
        ..EngineFigures::default()
    };
    for s in ["pending", "approved", "rejected", "escalated", "invalid"] {
        f.proposals.insert(s, 0);
    }
    for s in ["provisional", "escalated", "contested", "certified"] {
        f.finality.insert(s, 0);
    }
    let mut domains: Vec<String> = Vec::new();
    for m in e.set().iter() {
        f.messages += 1;
        f.bytes += m.bytes.len() as u64;
        if let acp_protocol::Body::Proposal(p) = m.body() {
            domains.push(p.domain.clone());
        }
    }
    domains.sort();
    domains.dedup();
    let t = crate::service::now();
    for d in domains {
        let ids: Vec<ContentId> = e.set().proposals_in(&d).map(|(_, id)| id).collect();
        for id in ids {
            let Ok(r) = e.resolve(&id, t) else { continue };
            *f.proposals
                .entry(view::status_str(r.final_status()))
                .or_insert(0) += 1;
            *f.finality
                .entry(view::state_str(r.finality.state))
                .or_insert(0) += 1;
        }
    }
    f
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn float(v: f64) -> String {
    if v.is_infinite() {
        "+Inf".into()
    } else {
        format!("{v}")
    }
}

/// The whole exposition.
pub fn render(m: &NodeMetrics, f: &EngineFigures) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let msgs = lock(&m.messages).clone();
    let family = |out: &mut String, key: &'static str, name: &str, help: &str, reason: bool| {
        head(out, name, "counter", help);
        for ((k, origin, why), n) in &msgs {
            if *k != key {
                continue;
            }
            if reason {
                let _ = writeln!(
                    out,
                    "{name}{{origin=\"{origin}\",reason=\"{}\"}} {n}",
                    escape(why)
                );
            } else {
                let _ = writeln!(out, "{name}{{origin=\"{origin}\"}} {n}");
            }
        }
    };
    family(
        &mut out,
        "in",
        "acp_messages_in_total",
        "Messages offered to the engine (local, gossip, sync), valid or not.",
        false,
    );
    family(
        &mut out,
        "accepted",
        "acp_messages_accepted_total",
        "Messages taken in as new.",
        false,
    );
    family(
        &mut out,
        "rejected",
        "acp_messages_rejected_total",
        "Invalid messages refused, by rejection code.",
        true,
    );
    family(
        &mut out,
        "ignored",
        "acp_messages_ignored_total",
        "Messages not taken in without fault (duplicate, from the future).",
        true,
    );
    head(
        &mut out,
        "acp_messages_out_total",
        "counter",
        "Messages handed to the transport for publication.",
    );
    let _ = writeln!(
        out,
        "acp_messages_out_total {}",
        m.published.load(Ordering::Relaxed)
    );

    head(
        &mut out,
        "acp_proposals",
        "gauge",
        "Proposals held, by the status to act on (certified, escalated to a human, or provisional).",
    );
    for (s, n) in &f.proposals {
        let _ = writeln!(out, "acp_proposals{{status=\"{s}\"}} {n}");
    }
    head(
        &mut out,
        "acp_proposals_finality",
        "gauge",
        "Proposals held, by finality state (provisional, escalated, contested, certified).",
    );
    for (s, n) in &f.finality {
        let _ = writeln!(out, "acp_proposals_finality{{state=\"{s}\"}} {n}");
    }
    head(
        &mut out,
        "acp_finality_events_total",
        "counter",
        "Certificates, contests, attestor equivocations, policy forks and messages after certification seen by this run of the node.",
    );
    for (e, n) in lock(&m.finality_events).iter() {
        let _ = writeln!(out, "acp_finality_events_total{{event=\"{e}\"}} {n}");
    }

    let a = &f.admission;
    head(
        &mut out,
        "acp_admission_refused_total",
        "counter",
        "Valid messages not admitted by the domain's lineage (not stored, not forwarded), by reason.",
    );
    for r in Refusal::ALL {
        let n = a.refused.get(&r).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "acp_admission_refused_total{{reason=\"{}\"}} {n}",
            r.code()
        );
    }
    let admission: [(&str, &str, &str, u64); 5] = [
        (
            "acp_admission_parked_total",
            "counter",
            "Messages parked to wait for the policy or proposal they refer to.",
            a.parked,
        ),
        (
            "acp_admission_released_total",
            "counter",
            "Parked messages admitted once their dependency arrived.",
            a.released,
        ),
        (
            "acp_admission_expired_total",
            "counter",
            "Parked messages dropped because their dependency did not arrive in time.",
            a.expired,
        ),
        (
            "acp_admission_overflow_total",
            "counter",
            "Messages not parked because the waiting buffer was full.",
            a.overflow,
        ),
        (
            "acp_admission_waiting",
            "gauge",
            "Messages waiting for a dependency now.",
            a.waiting as u64,
        ),
    ];
    for (name, kind, help, v) in admission {
        head(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    head(
        &mut out,
        "acp_gossip_penalized_total",
        "counter",
        "Gossip messages reported Reject because their forwarding peer keeps sending messages the lineage does not admit.",
    );
    let _ = writeln!(
        out,
        "acp_gossip_penalized_total {}",
        m.penalized.load(Ordering::Relaxed)
    );

    let (decided, finalized, certified, tracked) = {
        let l = lock(&m.latency);
        (
            l.decided.clone(),
            l.finalized.clone(),
            l.certified.clone(),
            l.seen.len(),
        )
    };
    let name = "acp_resolution_latency_seconds";
    head(
        &mut out,
        name,
        "histogram",
        "Seconds from a proposal first seen by this node to its first decision (stage=decided), to finalization (stage=finalized) and to its first certificate (stage=certified).",
    );
    for (stage, h) in [
        ("decided", &decided),
        ("finalized", &finalized),
        ("certified", &certified),
    ] {
        for (b, le) in h.buckets.iter().zip(LATENCY_BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{stage=\"{stage}\",le=\"{}\"}} {b}",
                float(le)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "{name}_sum{{stage=\"{stage}\"}} {}", float(h.sum));
        let _ = writeln!(out, "{name}_count{{stage=\"{stage}\"}} {}", h.count);
    }
    head(
        &mut out,
        "acp_proposals_awaiting_finalization",
        "gauge",
        "Proposals seen by this run of the node and not yet finalized.",
    );
    let _ = writeln!(out, "acp_proposals_awaiting_finalization {tracked}");

    head(
        &mut out,
        "acp_store_messages",
        "gauge",
        "Signed messages held (the store holds the same set).",
    );
    let _ = writeln!(out, "acp_store_messages {}", f.messages);
    head(
        &mut out,
        "acp_store_message_bytes",
        "gauge",
        "Sum of the signed bytes of the messages held.",
    );
    let _ = writeln!(out, "acp_store_message_bytes {}", f.bytes);

    let net = m.net.snapshot();
    let counters: [(&str, &str, u64); 8] = [
        (
            "acp_sync_rounds_total",
            "Anti-entropy rounds run (timer or new peer) with at least one peer connected.",
            m.sync_rounds.load(Ordering::Relaxed),
        ),
        (
            "acp_sync_requests_sent_total",
            "Sync requests sent.",
            net.sync_requests_sent,
        ),
        (
            "acp_sync_requests_served_total",
            "Sync requests answered.",
            net.sync_requests_served,
        ),
        (
            "acp_sync_failures_total",
            "Inbound or outbound sync failures.",
            net.sync_failures,
        ),
        (
            "acp_queue_dropped_events_total",
            "Transport events dropped because the core's queue was full.",
            net.dropped_events,
        ),
        (
            "acp_gossip_received_total",
            "Gossip messages received, before validation.",
            net.gossip_received,
        ),
        (
            "acp_gossip_published_total",
            "Gossip publications that gossipsub accepted.",
            net.published,
        ),
        (
            "acp_gossip_publish_failed_total",
            "Gossip publications that failed (no peers, duplicate, too large).",
            net.publish_failed,
        ),
    ];
    for (name, help, v) in counters {
        head(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }

    let name = "libp2p_tcp_bytes_total";
    head(
        &mut out,
        name,
        "counter",
        "Bytes on TCP connections (Noise, yamux and every protocol); QUIC not counted.",
    );
    let _ = writeln!(out, "{name}{{direction=\"sent\"}} {}", net.tcp_bytes_sent);
    let _ = writeln!(
        out,
        "{name}{{direction=\"received\"}} {}",
        net.tcp_bytes_received
    );

    let topics = m.net.gossip_topics();
    head(
        &mut out,
        "libp2p_gossipsub_peers",
        "gauge",
        "Connected peers subscribed to a topic (refreshed every second).",
    );
    for t in &topics {
        let _ = writeln!(
            out,
            "libp2p_gossipsub_peers{{topic=\"{}\"}} {}",
            escape(&t.topic),
            t.peers
        );
    }
    head(
        &mut out,
        "libp2p_gossipsub_mesh_peers",
        "gauge",
        "Peers in this node's gossipsub mesh of a topic (refreshed every second).",
    );
    for t in &topics {
        let _ = writeln!(
            out,
            "libp2p_gossipsub_mesh_peers{{topic=\"{}\"}} {}",
            escape(&t.topic),
            t.mesh
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.3);
        h.observe(20.0);
        assert_eq!(h.count, 2);
        assert_eq!(h.buckets[0], 0);
        assert_eq!(h.buckets[3], 1); // le 0.5
        assert_eq!(h.buckets[8], 2); // le 30
    }

    #[test]
    fn render_has_types_and_labels() {
        let m = NodeMetrics::new(Arc::new(p2p::Metrics::default()));
        let r: Result<(), IngestError> =
            Err(IngestError::Rejected(acp_protocol::Rejection::WrongSigners));
        m.ingested(acp_protocol::Origin::Local, &r);
        let text = render(&m, &EngineFigures::default());
        assert!(text.contains("# TYPE acp_messages_in_total counter"));
        assert!(text.contains("acp_messages_in_total{origin=\"local\"} 1"));
        assert!(
            text.contains(
                "acp_messages_rejected_total{origin=\"local\",reason=\"wrong_signers\"} 1"
            )
        );
        assert!(
            text.contains("acp_resolution_latency_seconds_bucket{stage=\"decided\",le=\"+Inf\"} 0")
        );
        // Every refusal reason is listed, at zero before any refusal.
        for r in Refusal::ALL {
            let line = format!("acp_admission_refused_total{{reason=\"{}\"}} 0", r.code());
            assert!(text.contains(&line), "{line}");
        }
        assert!(text.contains("acp_admission_waiting 0"));
        assert!(text.contains("acp_finality_events_total{event=\"certified\"} 0"));
    }
}
