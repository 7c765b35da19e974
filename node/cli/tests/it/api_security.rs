//! The sidecar HTTP API against a hostile local client: missing and wrong
//! tokens, oversized bodies, a request burst over the rate limit, the default
//! listen addresses, and attempts to make the node sign as another agent.

use std::process::Command;

use crate::harness::*;
use acp_protocol::{Body, Keypair, Response, Stance};
use serde_json::{Value, json};

#[test]
fn tokens_sizes_loopback_and_identity() {
    let dir = DataDir::new();
    let node = dir.start(&[]);
    let c = reqwest::blocking::Client::new();
    let url = |p: &str| format!("{}/v1{p}", node.http);

    // No token, a wrong token, a token of the right length with one byte
    // changed, and the token in the wrong scheme: all 401 `unauthorized`.
    let mut wrong_same_len = node.token.clone().into_bytes();
    wrong_same_len[0] = if wrong_same_len[0] == b'a' {
        b'b'
    } else {
        b'a'
    };
    let wrong_same_len = String::from_utf8(wrong_same_len).unwrap();
    let attempts = [
        c.get(url("/status")),
        c.get(url("/status")).bearer_auth("not-the-token"),
        c.get(url("/status")).bearer_auth(&wrong_same_len),
        c.get(url("/status")).basic_auth("acp", Some(&node.token)),
        c.post(url("/messages")).body(vec![0u8; 16]),
        c.post(url("/proposals"))
            .bearer_auth("")
            .json(&json!({"domain": DOMAIN})),
    ];
    let mut unauthorized = 0;
    for rb in attempts {
        let (s, v) = send(rb);
        assert_eq!((s, error_body(&v).code.as_str()), (401, "unauthorized"));
        unauthorized += 1;
    }
    // The right token works; health needs none.
    let (s, _) = send(c.get(url("/status")).bearer_auth(&node.token));
    assert_eq!(s, 200);
    assert_eq!(send(c.get(url("/health"))).0, 200);

    // Over-size bodies: 413 with the typed code, on raw and JSON routes.
    let mut too_large = 0;
    for path in ["/messages", "/proposals"] {
        let big = vec![b'x'; acp_node::surface::api::MAX_BODY_BYTES + 1];
        let (s, v) = send(
            c.post(url(path))
                .bearer_auth(&node.token)
                .header("content-type", "application/json")
                .body(big),
        );
        assert_eq!(
            (s, error_body(&v).code.as_str()),
            (413, "payload_too_large"),
            "{path}"
        );
        too_large += 1;
    }

    // Default listen addresses are loopback, in the code and in what
    // `acp init` writes when given no address.
    let d = acp_node::config::Config::default();
    assert_eq!(d.http_addr.ip().to_string(), "127.0.0.1");
    assert_eq!(d.control_addr.ip().to_string(), "127.0.0.1");
    let fresh = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_acp"))
        .arg("--data-dir")
        .arg(fresh.path())
        .arg("init")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = acp_node::config::Config::load(fresh.path()).unwrap();
    assert_eq!(written.http_addr.ip().to_string(), "127.0.0.1");
    assert_eq!(written.control_addr.ip().to_string(), "127.0.0.1");
    assert_eq!(
        (written.api_rate_per_sec, written.api_rate_burst),
        (
            acp_node::surface::api::DEFAULT_RATE_PER_SEC,
            acp_node::surface::api::DEFAULT_RATE_BURST
        )
    );
    // The running node printed a loopback HTTP address.
    assert!(node.http.starts_with("http://127.0.0.1:"), "{}", node.http);

    // A client cannot make the node sign as another agent.
    let victim = Keypair::from_seed([31; 32]);
    let proposer = Keypair::from_seed([32; 32]);
    let (pol, pol_bytes) = policy(&[&dir.agent, &victim, &proposer]);
    node.anchor(pol);
    node.post_message(&pol_bytes);
    let (pid, p_bytes) = proposal(&proposer, pol, 60_000);
    node.post_message(&p_bytes);
    let victim_hex = victim.public().to_string();
    let (s, v) = send(
        c.post(url(&format!("/proposals/{pid}/responses")))
            .bearer_auth(&node.token)
            .json(&json!({
                "stance": "challenge", "confidence": 0.9, "reasoning": "as someone else",
                "responder": victim_hex, "agent": victim_hex, "signer": victim_hex,
                "key": hex::encode([31u8; 32]), "seed": hex::encode([31u8; 32]),
            })),
    );
    assert_eq!(s, 201, "{v}");
    let rid = serde_json::from_value::<SubmittedBody>(v).unwrap().id;
    let pkg = node.proposal(pid);
    let counted = &pkg.package.counted;
    assert_eq!(counted.len(), 1, "{pkg:?}");
    assert_eq!(counted[0].vote.response, rid);
    assert_eq!(
        counted[0].response.responder,
        dir.agent.public(),
        "the node signed with its own agent key only"
    );
    assert_ne!(counted[0].response.responder, victim.public());
    // A raw message naming the victim but signed by another key: 422.
    let forged = Body::Response(Response {
        responder: victim.public(),
        domain: DOMAIN.into(),
        proposal: pid,
        stance: Stance::Endorse,
        confidence_bps: 9000,
        reasoning: "impersonation".into(),
        evidence: Vec::new(),
        issued_at: now(),
    })
    .sign(&[&dir.agent])
    .unwrap();
    let (s, v) = node.post_refused(&forged.bytes);
    assert_eq!((s, v.code.as_str()), (422, "rejected"));
    assert!(in_neither(&node.has(&forged.id)));
    // A validly signed response by a key the policy does not name: 403,
    // with the refusal code, and not stored.
    let outsider = Keypair::from_seed([33; 32]);
    let (oid, obytes) = response(&outsider, pid, Stance::Challenge);
    let (s, v) = node.post_refused(&obytes);
    assert_eq!(
        (s, v.code.as_str(), v.reason.as_deref()),
        (403, "not_authorized", Some("not_authorized")),
        "{v:?}"
    );
    assert!(in_neither(&node.has(&oid)));
    // A member's response to a proposal this node does not hold: 422,
    // naming the missing proposal; not stored, not kept waiting.
    let unknown = acp_protocol::ContentId::of(b"a proposal nobody sent");
    let (wid, wbytes) = response(&victim, unknown, Stance::Endorse);
    let (s, v) = node.post_refused(&wbytes);
    assert_eq!(
        (s, v.code.as_str(), v.missing.as_deref()),
        (
            422,
            "depends_on_unknown",
            Some(unknown.to_string().as_str())
        ),
        "{v:?}"
    );
    assert!(in_neither(&node.has(&wid)));
    println!(
        "API-SECURITY unauthorized={unauthorized}/6 too_large={too_large}/2 \
         sign_as_other=refused impersonation=422 outsider=403 unknown_proposal=422 \
         loopback_default=yes"
    );
}

#[test]
fn a_burst_over_the_rate_limit_gets_429() {
    let dir = DataDir::new();
    // A low limit for the test: 5 requests per second, 10 at once.
    let cfg = dir.path().join("config.toml");
    // Edited in place: top-level keys appended after the file's closing
    // `[anchors]` table would belong to it.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let edited: Vec<&str> = text
        .lines()
        .map(|l| {
            if l.starts_with("api_rate_per_sec") {
                "api_rate_per_sec = 5"
            } else if l.starts_with("api_rate_burst") {
                "api_rate_burst = 10"
            } else {
                l
            }
        })
        .collect();
    std::fs::write(&cfg, edited.join("\n")).unwrap();
    let loaded = acp_node::config::Config::load(dir.path()).unwrap();
    assert_eq!((loaded.api_rate_per_sec, loaded.api_rate_burst), (5, 10));
    // In process: no start-up probe has spent any of the bucket.
    let node = dir.start(&[]);
    let c = reqwest::blocking::Client::new();
    let url = format!("{}/v1/status", node.http);

    let burst = 60u64;
    let (mut ok, mut limited) = (0u64, 0u64);
    let t0 = std::time::Instant::now();
    for i in 0..burst {
        let rb = if i % 2 == 0 {
            c.get(&url).bearer_auth(&node.token)
        } else {
            // Token guessing is throttled too: the limit runs before auth.
            c.get(&url).bearer_auth("guess")
        };
        let r = rb.send().unwrap();
        let s = r.status().as_u16();
        let retry = r.headers().get("retry-after").cloned();
        let v: Value = r.json().unwrap();
        match s {
            200 | 401 => ok += 1,
            429 => {
                assert_eq!(error_body(&v).code, "rate_limited", "{v}");
                assert!(retry.is_some());
                limited += 1;
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    // Served: the burst (10) plus what refilled (5/s) while the requests ran.
    let secs = t0.elapsed().as_secs_f64();
    let most = 10 + (5.0 * secs).ceil() as u64 + 1;
    assert!(
        ok >= 10 && ok <= most,
        "{ok} served in {secs:.2}s (most {most})"
    );
    assert_eq!(ok + limited, burst);
    assert!(limited > 0);
    // The bucket refills and requests are served again.
    wait_until(5, "a request served after the burst", || {
        (send(c.get(&url).bearer_auth(&node.token)).0 == 200).then_some(())
    });
    println!(
        "API-RATE requests={burst} served={ok} rate_limited={limited} in {secs:.2}s (limit 5/s, burst 10)"
    );
}
