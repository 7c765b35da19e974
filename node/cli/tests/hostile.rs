//! A hostile libp2p peer publishes forged and malformed messages on a
//! domain's topic: the honest nodes neither store nor forward them, and keep
//! serving honest traffic.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use acp_node::transport::p2p::{self, BehaviourEvent, NetConfig};
use acp_protocol::{Body, ContentId, Keypair, Response, Stance};
use common::*;
use futures::StreamExt;
use libp2p::gossipsub;
use libp2p::swarm::SwarmEvent;

fn response_body(responder: &Keypair, domain: &str, reasoning: String) -> Body {
    Body::Response(Response {
        responder: responder.public(),
        domain: domain.into(),
        proposal: ContentId::of(b"some proposal"),
        stance: Stance::Endorse,
        confidence_bps: 9000,
        reasoning,
        evidence: Vec::new(),
        issued_at: now(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_malformed_gossip_is_neither_stored_nor_forwarded() {
    let d1 = DataDir::new();
    let d2 = DataDir::new();
    let n1 = d1.start(&[]);
    let n2 = d2.start(&[&n1.tcp]);
    wait_for(20, "honest nodes connected", || {
        (n1.peers() == 1).then_some(())
    });
    let (genesis, genesis_bytes) = policy(&[&d1.agent, &d2.agent]);
    // The HTTP client blocks: off the async workers.
    tokio::task::block_in_place(|| {
        n1.anchor(genesis);
        n2.anchor(genesis);
    });

    let cfg = NetConfig {
        listen: Vec::new(),
        bootstrap: Vec::new(),
        domains: vec![DOMAIN.into()],
        mdns: false,
        max_message_bytes: 1 << 20,
        queue_capacity: 64,
        mesh_degree: p2p::DEFAULT_MESH_DEGREE,
    };
    let mut swarm = p2p::build_swarm(libp2p::identity::Keypair::generate_ed25519(), &cfg).unwrap();
    let topic = p2p::topic(DOMAIN);
    swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
    swarm
        .dial(n1.tcp.parse::<libp2p::Multiaddr>().unwrap())
        .unwrap();
    let n1_peer: libp2p::PeerId = n1.peer_id.parse().unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                peer_id,
                ..
            })) = swarm.select_next_some().await
                && peer_id == n1_peer
            {
                break;
            }
        }
    })
    .await
    .expect("hostile peer never saw the honest node subscribe");

    let mallory = Keypair::from_seed([66; 32]);
    let victim = Keypair::from_seed([67; 32]);
    let mut forged: Vec<(&str, ContentId, Vec<u8>)> = Vec::new();
    // 1. Garbage.
    forged.push((
        "garbage",
        ContentId::of(b"x"),
        b"not a message at all".to_vec(),
    ));
    // 2. A valid message with a corrupted signature.
    let m = response_body(&victim, DOMAIN, "forged".into())
        .sign(&[&victim])
        .unwrap();
    let mut bad_sig = m.bytes.clone();
    let n = bad_sig.len();
    bad_sig[n - 1] ^= 0x55;
    forged.push(("bad signature", m.id, bad_sig));
    // 3. Signed by someone else than the named responder.
    let m = response_body(&victim, DOMAIN, "impersonation".into())
        .sign(&[&mallory])
        .unwrap();
    forged.push(("wrong signer", m.id, m.bytes));
    // 4. Non-canonical: a valid message with a trailing byte.
    let m = response_body(&mallory, DOMAIN, "trailing".into())
        .sign(&[&mallory])
        .unwrap();
    let mut trailing = m.bytes.clone();
    trailing.push(0);
    forged.push(("non-canonical", m.id, trailing));
    // 5. Oversized reasoning.
    let m = response_body(&mallory, DOMAIN, "x".repeat(60_000))
        .sign(&[&mallory])
        .unwrap();
    forged.push(("oversized", m.id, m.bytes));
    // 6. A valid message of another domain smuggled onto this topic.
    let m = response_body(&mallory, "other", "wrong topic".into())
        .sign(&[&mallory])
        .unwrap();
    forged.push(("wrong topic", m.id, m.bytes));
    for (what, _, bytes) in &forged {
        swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic.clone(), bytes.clone())
            .unwrap_or_else(|e| panic!("publishing {what}: {e}"));
    }
    let driver = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });

    tokio::task::spawn_blocking(move || {
        // Wait until n1 has dealt with the attack (rejected something)...
        wait_for(20, "n1 rejects the forged messages", || {
            n1.log_text().contains("gossip rejected").then_some(())
        });
        // ...and still serves honest traffic: a local message reaches n2.
        let honest = n1.submit(&genesis_bytes);
        wait_for(20, "an honest message after the attack reaches n2", || {
            n2.has(&honest).1.then_some(())
        });
        for (what, id, _) in &forged {
            assert_eq!(n1.has(id), (false, false), "{what} held by n1");
            assert_eq!(n2.has(id), (false, false), "{what} held by n2");
        }
        assert_eq!(n1.ids(), vec![honest.to_string()]);
        assert_eq!(n2.ids(), vec![honest.to_string()]);
        // Everything n2 received by gossip was the honest message: nothing
        // forged was forwarded by n1.
        let m = n2.call(serde_json::json!({"op": "status"}))["metrics"].clone();
        assert!(m["gossip_received"].as_u64().unwrap() <= 1, "{m}");
    })
    .await
    .unwrap();
    driver.abort();
}
