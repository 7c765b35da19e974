//! A hostile libp2p peer publishes forged and malformed messages on a
//! domain's topic: the honest nodes neither store nor forward them, and keep
//! serving honest traffic.

use acp_protocol::{ContentId, Keypair, Stance};

use crate::harness::*;

fn forged_response(
    responder: &Keypair,
    signer: &Keypair,
    domain: &str,
    reasoning: &str,
) -> acp_protocol::SignedMessage {
    response_signed(
        domain,
        responder,
        signer,
        ContentId::of(b"some proposal"),
        Stance::Endorse,
        reasoning,
        now(),
    )
}

#[test]
fn forged_and_malformed_gossip_is_neither_stored_nor_forwarded() {
    let net = Net::star(2);
    let (n1, n2) = (&net.nodes[0], &net.nodes[1]);
    let (genesis, genesis_bytes) = policy(&net.agent_refs());
    n1.anchor(genesis);
    n2.anchor(genesis);

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
    let m = forged_response(&victim, &victim, DOMAIN, "forged");
    let mut bad_sig = m.bytes.clone();
    let n = bad_sig.len();
    bad_sig[n - 1] ^= 0x55;
    forged.push(("bad signature", m.id, bad_sig));
    // 3. Signed by someone else than the named responder.
    let m = forged_response(&victim, &mallory, DOMAIN, "impersonation");
    forged.push(("wrong signer", m.id, m.bytes));
    // 4. Non-canonical: a valid message with a trailing byte.
    let m = forged_response(&mallory, &mallory, DOMAIN, "trailing");
    let mut trailing = m.bytes.clone();
    trailing.push(0);
    forged.push(("non-canonical", m.id, trailing));
    // 5. Oversized reasoning.
    let m = forged_response(&mallory, &mallory, DOMAIN, &"x".repeat(60_000));
    forged.push(("oversized", m.id, m.bytes));
    // 6. A valid message of another domain smuggled onto this topic.
    let m = forged_response(&mallory, &mallory, "other", "wrong topic");
    forged.push(("wrong topic", m.id, m.bytes));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut hostile = Hostile::connect(n1).await;
        for (_, _, bytes) in &forged {
            hostile.send(bytes.clone());
        }
        // Barrier: n1 read the hostile connection to its end.
        hostile.close(n1);
        assert_eq!(hostile.failed(), 0, "some forged messages never left");
        hostile.task.abort();
    });

    // n1 dealt with the attack: its core judged all that gossipsub handed
    // it, and refused some (the first, at least, came from a peer in good
    // standing).
    wait_until(20, "n1 judges and refuses the forged messages", || {
        let m = n1.metrics();
        (core_caught_up(n1) && total(&m, "acp_messages_rejected_total") >= 1.0).then_some(())
    });
    // ...and still serves honest traffic: a local message reaches n2.
    let honest = n1.submit(&genesis_bytes);
    wait_until(20, "an honest message after the attack reaches n2", || {
        n2.has(&honest).store.then_some(())
    });
    for (what, id, _) in &forged {
        assert!(in_neither(&n1.has(id)), "{what} held by n1");
        assert!(in_neither(&n2.has(id)), "{what} held by n2");
    }
    assert_eq!(n1.ids(), vec![honest]);
    assert_eq!(n2.ids(), vec![honest]);
    // Everything n2 received by gossip was the honest message: nothing
    // forged was forwarded by n1.
    assert!(n2.gossip_received() <= 1, "{:?}", n2.status());
}
