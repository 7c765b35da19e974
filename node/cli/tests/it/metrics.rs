//! `GET /metrics` against one real node: bearer token required, Prometheus
//! text, and the counters move for a policy, a proposal, a response, a
//! forged message (rejected with its reason) and messages the lineage does
//! not admit (refused by reason), the proposals gauges (status and
//! finality) and the resolution latency histogram up to certification.

use crate::harness::*;
use acp_protocol::Stance;

fn scrape(node: &TestNode, token: Option<&str>) -> (u16, String, String) {
    let mut rb = reqwest::blocking::Client::new().get(format!("{}/metrics", node.http));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, ctype, r.text().unwrap())
}

#[test]
fn metrics_count_messages_rejections_proposals_and_latency() {
    let dir = DataDir::new();
    let node = dir.start(&[]);

    let (s, _, _) = scrape(&node, None);
    assert_eq!(s, 401, "/metrics without the token");
    let (s, _, _) = scrape(&node, Some("wrong"));
    assert_eq!(s, 401, "/metrics with a wrong token");

    // The node's agent votes (and attests); another member proposes.
    let proposer = acp_protocol::Keypair::from_seed([78; 32]);
    let (pol, pol_bytes) = policy(&[&dir.agent, &proposer]);
    // Before the anchor: refused `no_anchor`.
    assert_eq!(node.post_raw(&pol_bytes).0, 403);
    node.anchor(pol);
    node.post_message(&pol_bytes);
    let (prop, prop_bytes) = proposal(&proposer, pol, 1_000);
    node.post_message(&prop_bytes);
    let (_, resp_bytes) = response(&dir.agent, prop, Stance::Endorse);
    node.post_message(&resp_bytes);

    // A forged copy: the last byte (inside the signature) changed.
    let mut forged = resp_bytes.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x55;
    assert_eq!(node.post_raw(&forged).0, 422, "forged message refused");
    // A non-member's response: refused `not_authorized`.
    let outsider = acp_protocol::Keypair::from_seed([77; 32]);
    let (_, outsider_bytes) = response(&outsider, prop, Stance::Challenge);
    assert_eq!(node.post_raw(&outsider_bytes).0, 403, "non-member refused");

    // The proposal closes after a second and is finalized.
    let text = wait_until(30, "a finalized resolution in /metrics", || {
        let (s, ctype, text) = scrape(&node, Some(&node.token));
        assert_eq!(s, 200, "{text}");
        assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
        let done = sample(
            &text,
            "acp_resolution_latency_seconds_count{stage=\"certified\"}",
        )
        .unwrap_or(0.0);
        (done >= 1.0).then_some(text)
    });

    assert!(text.contains("# TYPE acp_messages_in_total counter"));
    let local_in = sample(&text, "acp_messages_in_total{origin=\"local\"}").unwrap();
    assert!(local_in >= 4.0, "messages in: {local_in}\n{text}");
    let accepted = sample(&text, "acp_messages_accepted_total{origin=\"local\"}").unwrap();
    assert!(accepted >= 3.0, "accepted: {accepted}\n{text}");
    let rejected: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("acp_messages_rejected_total{origin=\"local\",reason=\""))
        .collect();
    assert!(!rejected.is_empty(), "no rejection counted\n{text}");
    assert!(total(&text, "acp_messages_rejected_total") >= 1.0);
    assert!(total(&text, "acp_messages_out_total") >= 3.0, "{text}");

    assert!(text.contains("# TYPE acp_proposals gauge"));
    assert_eq!(total(&text, "acp_proposals"), 1.0, "{text}");
    // Resolved (how depends on the policy's rules), no longer pending.
    assert_eq!(
        sample(&text, "acp_proposals{status=\"pending\"}"),
        Some(0.0),
        "{text}"
    );

    assert_eq!(
        sample(&text, "acp_proposals_finality{state=\"certified\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "acp_finality_events_total{event=\"certified\"}"),
        Some(1.0),
        "{text}"
    );
    for (reason, n) in [
        ("no_anchor", 1.0),
        ("not_authorized", 1.0),
        ("wrong_domain", 0.0),
    ] {
        let series = format!("acp_admission_refused_total{{reason=\"{reason}\"}}");
        assert_eq!(sample(&text, &series), Some(n), "{series}\n{text}");
    }
    for name in [
        "acp_admission_parked_total",
        "acp_admission_released_total",
        "acp_admission_expired_total",
        "acp_admission_overflow_total",
        "acp_admission_waiting",
        "acp_gossip_penalized_total",
    ] {
        assert_eq!(sample(&text, name), Some(0.0), "{name}\n{text}");
    }
    assert!(text.contains("# TYPE acp_resolution_latency_seconds histogram"));
    for stage in ["decided", "finalized", "certified"] {
        let inf = format!("acp_resolution_latency_seconds_bucket{{stage=\"{stage}\",le=\"+Inf\"}}");
        assert!(sample(&text, &inf).unwrap() >= 1.0, "{stage}\n{text}");
        let b = format!("acp_resolution_latency_seconds_bucket{{stage=\"{stage}\",le=\"3600\"}}");
        assert!(sample(&text, &b).is_some(), "{stage}\n{text}");
    }

    assert!(
        sample(&text, "acp_store_messages").unwrap() >= 3.0,
        "{text}"
    );
    assert!(sample(&text, "acp_store_message_bytes").unwrap() > 0.0);
    for name in [
        "acp_sync_rounds_total",
        "acp_queue_dropped_events_total",
        "libp2p_tcp_bytes_total{direction=\"sent\"}",
        "libp2p_tcp_bytes_total{direction=\"received\"}",
    ] {
        assert!(sample(&text, name).is_some(), "{name}\n{text}");
    }
    assert!(
        sample(&text, "libp2p_gossipsub_mesh_peers{topic=\"acp/2/test\"}").is_some(),
        "{text}"
    );
}

/// Two nodes: sync rounds, wire bytes and gossipsub peers move.
#[test]
fn metrics_show_peers_sync_and_bandwidth() {
    let net = Net::star(2);
    let b = &net.nodes[1];
    let text = wait_until(30, "peers, sync rounds and bytes in /metrics", || {
        let (_, _, text) = scrape(b, Some(&b.token));
        let ok = sample(&text, "acp_sync_rounds_total").unwrap_or(0.0) >= 1.0
            && sample(&text, "libp2p_tcp_bytes_total{direction=\"sent\"}").unwrap_or(0.0) > 0.0
            && sample(&text, "libp2p_tcp_bytes_total{direction=\"received\"}").unwrap_or(0.0) > 0.0
            && sample(&text, "libp2p_gossipsub_peers{topic=\"acp/2/test\"}").unwrap_or(0.0) >= 1.0;
        ok.then_some(text)
    });
    assert!(sample(&text, "acp_sync_requests_sent_total").unwrap() >= 1.0);
}
