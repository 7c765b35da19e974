//! Checks the crate against the normative test vectors in `docs/test-vectors/`.
//!
//! Regenerate them with `cargo run -p acp-protocol --example gen_vectors`;
//! this test fails when a vector and the crate disagree in any field.

use std::path::PathBuf;

use acp_protocol::bundle::{BundleError, verify_bundle};
use acp_protocol::crypto::{self, VerifyItem, signing_input};
use acp_protocol::resolve::resolve;
use acp_protocol::sync::{Summary, SyncRequest, SyncResponse, answer};
use acp_protocol::{
    ContentId, Engine, EngineConfig, IngestError, Keypair, MessageSet, Origin, PublicKey,
    Signature, SignedMessage, Timestamp, decode_message,
};
use serde_json::{Value, json};

#[path = "support/rejection_json.rs"]
mod rejection_json;
use rejection_json::rejection_json;

/// The domain of every vector.
const DOMAIN: &str = "fraud.detection";

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/test-vectors")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {v}"))
}

fn bytes(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(s(v, key)).unwrap_or_else(|e| panic!("`{key}` is not hex: {e}"))
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is not an array"))
}

fn id(text: &str) -> ContentId {
    text.parse().expect("content id")
}

fn decode_all(hexes: &[Value]) -> Vec<SignedMessage> {
    hexes
        .iter()
        .map(|h| {
            let b = hex::decode(h.as_str().expect("hex string")).expect("hex");
            decode_message(&b).expect("vector message is valid")
        })
        .collect()
}

#[test]
fn keys() {
    let v = load("keys.json");
    for k in arr(&v, "keys") {
        let seed: [u8; 32] = bytes(k, "seed").try_into().expect("32-byte seed");
        let kp = Keypair::from_seed(seed);
        assert_eq!(kp.public().to_string(), s(k, "public_key"), "{k}");
        assert!(!kp.public().is_weak());
    }
    for k in arr(&v, "weak_keys") {
        let pk: PublicKey = s(k, "public_key").parse().expect("key");
        assert!(pk.is_weak(), "{k}");
    }
}

fn seeds() -> Vec<Keypair> {
    arr(&load("keys.json"), "keys")
        .iter()
        .map(|k| Keypair::from_seed(bytes(k, "seed").try_into().expect("seed")))
        .collect()
}

#[test]
fn messages() {
    let v = load("messages.json");
    let keys = seeds();
    let list = arr(&v, "messages");
    assert!(list.len() >= 6);
    let mut kinds = std::collections::BTreeSet::new();
    for m in list {
        let name = s(m, "name");
        let raw = bytes(m, "hex");
        let msg = decode_message(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        kinds.insert(msg.body().kind());
        assert_eq!(msg.id.to_string(), s(m, "id"), "{name}: id");
        assert_eq!(
            msg.body().content_id().expect("id"),
            msg.id,
            "{name}: id = hash(version, body)"
        );
        let pre = m["id_preimage_len"].as_u64().expect("len") as usize;
        assert_eq!(ContentId::of(&raw[..pre]), msg.id, "{name}: id preimage");
        assert_eq!(
            acp_protocol::codec::encode(&msg.envelope).expect("encode"),
            raw,
            "{name}: re-encoding"
        );
        let tag = msg.body().kind().tag();
        assert_eq!(s(m, "tag").as_bytes(), tag, "{name}: tag");
        assert_eq!(
            serde_json::to_value(msg.body()).expect("json"),
            m["body"],
            "{name}: decoded body"
        );
        let sigs = arr(m, "signatures");
        assert_eq!(sigs.len(), msg.envelope.signatures.len(), "{name}");
        for (want, got) in sigs.iter().zip(&msg.envelope.signatures) {
            assert_eq!(s(want, "signer"), got.signer.to_string(), "{name}: signer");
            assert_eq!(
                bytes(want, "signature"),
                got.signature.0,
                "{name}: signature"
            );
            assert_eq!(
                bytes(want, "signing_input"),
                signing_input(tag, &msg.id),
                "{name}: signing input"
            );
            // Ed25519 signing is deterministic: the seed reproduces it.
            if let Some(kp) = keys.iter().find(|k| k.public() == got.signer) {
                assert_eq!(kp.sign(tag, &msg.id), got.signature, "{name}: re-sign");
            }
        }
    }
    assert_eq!(kinds.len(), 6, "every kind has a vector");
}

#[test]
fn rejections() {
    let v = load("rejections.json");
    let list = arr(&v, "rejections");
    assert!(list.len() >= 20);
    for r in list {
        let name = s(r, "name");
        let raw = match r.get("fill") {
            Some(f) => vec![
                f["byte"].as_u64().expect("byte") as u8;
                f["len"].as_u64().expect("len") as usize
            ],
            None => bytes(r, "hex"),
        };
        let err = decode_message(&raw).expect_err(name);
        assert_eq!(rejection_json(&err), r["expected"], "{name}: {err}");
        // The engine rejects the same bytes, single and batched.
        let mut e = Engine::new(EngineConfig::default());
        let now = Timestamp(u64::MAX / 2);
        assert!(matches!(
            e.ingest(&raw, Origin::Peer, now),
            Err(IngestError::Rejected(x)) if x == err
        ));
        let batch = e.ingest_batch(&[(&raw, Origin::Peer), (&raw, Origin::Sync)], now);
        for b in batch {
            assert!(
                matches!(b, Err(IngestError::Rejected(x)) if x == err),
                "{name}"
            );
        }
    }
}

#[test]
fn resolutions() {
    let v = load("resolutions.json");
    let cases = arr(&v, "cases");
    assert!(cases.len() >= 20);
    for c in cases {
        let name = s(c, "name");
        let msgs = decode_all(arr(c, "messages"));
        let pid = id(s(c, "proposal"));
        let now = Timestamp(c["now"].as_u64().expect("now"));
        let e = &c["expected"];
        let anchor: Option<ContentId> = c["anchor"].as_str().map(id);
        let mut set = MessageSet::new();
        if let Some(g) = anchor {
            set.set_anchor(DOMAIN, g);
        }
        for m in &msgs {
            set.insert(m.clone());
        }
        let r = resolve(&set, &pid, now).expect(name);
        assert_eq!(
            serde_json::to_value(r.final_status()).expect("json"),
            e["final_status"],
            "{name}: final status"
        );
        assert_eq!(
            serde_json::to_value(&r.finality).expect("json"),
            e["finality"],
            "{name}: finality"
        );
        assert_eq!(
            serde_json::to_value(r.status).expect("json"),
            e["status"],
            "{name}"
        );
        assert_eq!(
            serde_json::to_value(&r.reasons).expect("json"),
            e["reasons"],
            "{name}"
        );
        assert_eq!(json!(r.is_final), e["is_final"], "{name}");
        assert_eq!(json!(r.early), e["early"], "{name}");
        assert_eq!(json!(r.tally.endorse), e["endorse"], "{name}: E");
        assert_eq!(json!(r.tally.challenge), e["challenge"], "{name}: C");
        assert_eq!(
            json!(r.human_decision.map(|h| h.to_string())),
            e["human_decision"],
            "{name}"
        );
        assert_eq!(r.counted_root.to_string(), s(e, "counted_root"), "{name}");
        assert_eq!(
            serde_json::to_value(&r).expect("json"),
            e["resolution"],
            "{name}: full resolution"
        );
        assert_eq!(
            hex::encode(r.to_bytes()),
            s(e, "resolution_hex"),
            "{name}: encoding"
        );
        assert_eq!(r.digest().to_string(), s(e, "digest"), "{name}: digest");

        // Arrival order and duplicates do not matter, and the engine agrees.
        let mut rev = MessageSet::new();
        if let Some(g) = anchor {
            rev.set_anchor(DOMAIN, g);
        }
        for m in msgs.iter().rev().chain(&msgs) {
            rev.insert(m.clone());
        }
        let r2 = resolve(&rev, &pid, now).expect(name);
        assert_eq!(r2.to_bytes(), r.to_bytes(), "{name}: order");
        assert_eq!(r2.finality, r.finality, "{name}: order");
        // An engine fed the messages backwards (each waiting for what it
        // depends on) agrees whenever its lineage admits every message;
        // cases about refused policies hold messages no node would store.
        let mut engine = Engine::new(EngineConfig::default());
        if let Some(g) = anchor {
            engine.add_anchor(DOMAIN, g);
        }
        for m in msgs.iter().rev() {
            let _ = engine.ingest(&m.bytes, Origin::Store, now);
        }
        if msgs.iter().all(|m| engine.set().contains(&m.id)) {
            let r3 = engine.resolve(&pid, now).expect(name);
            assert_eq!(r3.digest(), r.digest(), "{name}: engine");
            assert_eq!(r3.finality, r.finality, "{name}: engine finality");
        }
    }
}

#[test]
fn signatures() {
    let v = load("signatures.json");
    for t in arr(&v, "vectors") {
        let name = s(t, "name");
        let key = PublicKey(bytes(t, "public_key").try_into().expect("32"));
        let sig = Signature(bytes(t, "signature").try_into().expect("64"));
        let msg = bytes(t, "message");
        let item = VerifyItem {
            key: &key,
            message: &msg,
            signature: &sig,
        };
        let single = crypto::verify(&item);
        assert_eq!(json!(single.is_ok()), t["valid"], "{name}");
        assert_eq!(json!(single.err().map(|e| e.code())), t["error"], "{name}");
        assert_eq!(json!(key.is_weak()), t["weak_key"], "{name}");
        // Batch agrees, alone and next to an honest signature.
        let honest = Keypair::from_seed([11; 32]);
        let hid = ContentId::of(b"honest");
        let hmsg = signing_input(b"acp/v2/response", &hid);
        let hsig = honest.sign(b"acp/v2/response", &hid);
        let hpk = honest.public();
        let h = VerifyItem {
            key: &hpk,
            message: &hmsg,
            signature: &hsig,
        };
        assert_eq!(
            crypto::verify_batch(&[item, h]),
            vec![single, Ok(())],
            "{name}"
        );
    }
}

#[test]
fn ingest() {
    let v = load("ingest.json");
    let skew = v["max_future_skew_ms"].as_u64().expect("skew");
    let mut engine = Engine::new(EngineConfig {
        max_future_skew_ms: skew,
        ..EngineConfig::default()
    });
    engine.add_anchor(s(&v, "domain"), id(s(&v, "anchor")));
    for step in arr(&v, "steps") {
        let raw = bytes(step, "hex");
        let origin = match s(step, "origin") {
            "peer" => Origin::Peer,
            "sync" => Origin::Sync,
            "local" => Origin::Local,
            other => panic!("origin {other}"),
        };
        let now = Timestamp(step["now"].as_u64().expect("now"));
        let got = match engine.ingest(&raw, origin, now) {
            Ok(i) => json!({"result": "accepted", "id": i.id.to_string()}),
            Err(IngestError::Duplicate(d)) => json!({"result": "duplicate", "id": d.to_string()}),
            Err(IngestError::FromTheFuture { time, .. }) => {
                json!({"result": "from_the_future", "time": time.0})
            }
            Err(IngestError::Rejected(r)) => {
                let mut j = rejection_json(&r);
                j["result"] = json!("rejected");
                j
            }
            Err(IngestError::NotAdmitted(r)) => {
                json!({"result": "not_admitted", "refusal": r.code()})
            }
            Err(IngestError::Pending { needs }) => {
                json!({"result": "pending", "needs": needs.to_string()})
            }
            Err(e) => panic!("unexpected {e}"),
        };
        assert_eq!(got, step["expected"]);
    }
}

#[test]
fn sync() {
    let v = load("sync.json");
    let mut set = MessageSet::new();
    for m in decode_all(arr(&v, "messages")) {
        set.insert(m);
    }
    let summary = Summary::of(&set, s(&v, "domain"));
    assert_eq!(serde_json::to_value(&summary).expect("json"), v["summary"]);
    for x in arr(&v, "exchanges") {
        let req = SyncRequest::from_bytes(&bytes(x, "request")).expect("request decodes");
        assert_eq!(req.to_bytes().expect("enc"), bytes(x, "request"));
        let resp = answer(&set, &req);
        assert_eq!(resp.to_bytes().expect("enc"), bytes(x, "response"));
        assert_eq!(
            SyncResponse::from_bytes(&bytes(x, "response")).expect("response decodes"),
            resp
        );
    }
}

#[test]
fn bundles() {
    let v = load("bundles.json");
    for b in arr(&v, "bundles") {
        let name = s(b, "name");
        let e = &b["expected"];
        match (verify_bundle(&bytes(b, "hex")), s(e, "result")) {
            (Ok(report), "ok") => {
                assert_eq!(json!(report.messages), e["messages"], "{name}");
                let r = &report.resolution;
                assert_eq!(
                    serde_json::to_value(r.status).expect("json"),
                    e["status"],
                    "{name}"
                );
                assert_eq!(
                    serde_json::to_value(r.final_status()).expect("json"),
                    e["final_status"],
                    "{name}"
                );
                assert_eq!(r.digest().to_string(), s(e, "digest"), "{name}");
                assert_eq!(
                    serde_json::to_value(&r.finality).expect("json"),
                    e["finality"],
                    "{name}"
                );
                assert_eq!(
                    json!(report.recomputed_matches_certificate),
                    e["recomputed_matches_certificate"],
                    "{name}"
                );
                assert_eq!(
                    json!(report.receipts_ignored),
                    e["receipts_ignored"],
                    "{name}"
                );
            }
            (Err(BundleError::NotInLineage(_)), "not_in_lineage") => {}
            (Err(BundleError::Message { .. }), "message") => {}
            (got, want) => panic!("{name}: expected {want}, got {got:?}"),
        }
    }
}

#[test]
fn admission() {
    use acp_protocol::admission::{Admission, admit};
    let v = load("admission.json");
    let mut set = MessageSet::new();
    set.set_anchor(s(&v, "domain"), id(s(&v, "anchor")));
    for m in decode_all(arr(&v, "messages")) {
        set.insert(m);
    }
    let cases = arr(&v, "cases");
    assert!(cases.len() >= 15);
    for c in cases {
        let name = s(c, "name");
        let m = decode_message(&bytes(c, "hex")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = match admit(&set, &m.id, m.body()) {
            Admission::Admit => json!({"result": "admit"}),
            Admission::Wait(needs) => json!({"result": "wait", "needs": needs.to_string()}),
            Admission::Refuse(r) => json!({"result": "refuse", "refusal": r.code()}),
        };
        assert_eq!(got, c["expected"], "{name}");
    }
}

#[test]
fn engine_orders() {
    let v = &load("ingest.json")["orders"];
    let msgs = decode_all(arr(v, "messages"));
    let pid = id(s(v, "proposal"));
    let now = Timestamp(v["now"].as_u64().expect("now"));
    for order in arr(v, "orders") {
        let mut e = Engine::new(EngineConfig::default());
        e.add_anchor(DOMAIN, id(s(v, "anchor")));
        for step in order.as_array().expect("order") {
            match step.as_u64() {
                Some(i) => match e.ingest(&msgs[i as usize].bytes, Origin::Peer, now) {
                    // Ahead of its dependency: waits, admitted on its arrival.
                    Ok(_) | Err(IngestError::Pending { .. }) => {}
                    Err(err) => panic!("order {order}: {err}"),
                },
                None => {
                    e.tick(now);
                }
            }
        }
        e.tick(now);
        let r = e.resolve(&pid, now).expect("known proposal");
        assert_eq!(
            serde_json::to_value(r.status).expect("json"),
            v["expected"]["status"]
        );
        assert_eq!(
            r.digest().to_string(),
            s(&v["expected"], "digest"),
            "order {order}"
        );
    }
}
