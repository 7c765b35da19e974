//! Item 2: ingest vs the limit.
//!
//! The floor of taking in a signed message is verifying its signature. This
//! measures, on one thread and over the same real signed responses:
//!
//! - `verify`: `crypto::verify` alone (inputs prepared outside the timing);
//! - `ingest+flush/msg`: what a local submission costs in the node — decode,
//!   canonical check, id, verify (`Engine::ingest`), the engine's own work,
//!   the `Store` effect through `SledStore` with the node's index keys, a
//!   `Store::flush` per message, and an engine `tick`;
//! - `ingest, flush/batch`: the gossip path, `Engine::ingest` per message,
//!   one flush and one tick per batch;
//! - `ingest_batch, flush/batch`: `Engine::ingest_batch` (batch signature
//!   verification) per burst, one flush and one tick per burst;
//! - `ingest, no store`: the engine alone, to split the cost.
//!
//! Rounds alternate the variants; the reported ratio is the median over
//! rounds of (variant rate / verify rate) measured in the same round.

use std::sync::Arc;
use std::time::Instant;

use acp_node::store::{IndexKeys, SledStore, Store};
use acp_protocol::build::{PolicyBuilder, default_rules, proposal, response};
use acp_protocol::crypto::{self, VerifyItem};
use acp_protocol::{
    Body, ContentId, Effect, Engine, EngineConfig, Origin, PublicKey, Signature, SignedMessage,
    Stance, Timestamp, decode_unverified, signature_items,
};
use anyhow::Context;

use crate::util::{Scratch, key, load, median};

const DOMAIN: &str = "fraud.detection";

/// Options of `acp-bench ingest`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Proposals; each gets `--responses` responses.
    #[arg(long, default_value_t = 40)]
    proposals: u32,
    /// Responses per proposal (policy members).
    #[arg(long, default_value_t = 25)]
    responses: u32,
    /// Burst size for the batch variants.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Alternating measurement rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Messages of the per-message-flush variant per round (fsync bound).
    #[arg(long, default_value_t = 200)]
    flush_msgs: usize,
}

struct Corpus {
    setup: Vec<Vec<u8>>,
    responses: Vec<Vec<u8>>,
}

fn corpus(a: &Args) -> anyhow::Result<Corpus> {
    let org = key(11, 0);
    let agents: Vec<_> = (0..a.responses).map(|i| key(12, i)).collect();
    let mut b = PolicyBuilder::new(DOMAIN).organization(&org, "org", 10_000);
    for ag in &agents {
        b = b.member(&ag.public(), 0, 5_000);
    }
    let policy = b.rules(default_rules()).sign(&[&org])?;
    let t0 = acp_node::node::now().0;
    let mut setup = vec![policy.bytes.clone()];
    let mut responses = Vec::new();
    let mut props: Vec<SignedMessage> = Vec::new();
    for p in 0..a.proposals {
        let m = proposal(
            &key(13, p),
            DOMAIN,
            policy.id,
            "payment.block",
            &format!(r#"{{"payment":"p-{p}","amount_cents":125000}}"#),
            Timestamp(t0),
            Timestamp(t0 + 3_600_000),
        )?;
        setup.push(m.bytes.clone());
        props.push(m);
    }
    // Interleaved so consecutive messages hit different proposals, as gossip would.
    for (i, ag) in agents.iter().enumerate() {
        for (j, p) in props.iter().enumerate() {
            let stance = if (i + j) % 4 == 0 {
                Stance::Challenge
            } else {
                Stance::Endorse
            };
            let r = response(
                ag,
                p,
                stance,
                6_000 + (i % 40) as u16 * 100,
                "The merchant category and velocity match a known card-testing pattern.",
                Timestamp(t0 + 1 + i as u64),
            )?;
            responses.push(r.bytes);
        }
    }
    Ok(Corpus { setup, responses })
}

/// The node's index keys of a held message (as `node::Core` derives them).
fn index_keys(engine: &Engine, id: &ContentId) -> IndexKeys {
    match engine.set().get(id) {
        Some(m) => {
            let body = m.body();
            let proposal = match body {
                Body::Proposal(_) => Some(*id),
                b => b.proposal_ref().copied(),
            };
            IndexKeys {
                domain: Some(body.domain().to_owned()),
                proposal,
                time: Some(body.time().0),
            }
        }
        None => IndexKeys::default(),
    }
}

/// Applies `Store` effects as the node does (publish and events are no-ops here).
fn apply(engine: &Engine, store: &dyn Store, effects: Vec<Effect>) -> anyhow::Result<()> {
    for e in effects {
        if let Effect::Store { id, bytes } = e {
            let keys = index_keys(engine, &id);
            store.put(&id, &bytes, &keys)?;
        }
    }
    Ok(())
}

struct Fixture {
    engine: Engine,
    store: Option<Arc<SledStore>>,
    _dir: Option<Scratch>,
}

fn fixture(c: &Corpus, with_store: bool) -> anyhow::Result<Fixture> {
    let mut engine = Engine::new(EngineConfig {
        receipt_key: Some(key(14, 0)),
        ..EngineConfig::default()
    });
    let now = acp_node::node::now();
    let (store, dir) = if with_store {
        let d = Scratch::new("ingest")?;
        (Some(Arc::new(SledStore::open(&d.0)?)), Some(d))
    } else {
        (None, None)
    };
    for b in &c.setup {
        let ing = engine
            .ingest(b, Origin::Peer, now)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(s) = &store {
            apply(&engine, s.as_ref(), ing.effects)?;
        }
    }
    let _ = engine.tick(now);
    if let Some(s) = &store {
        s.flush()?;
    }
    Ok(Fixture {
        engine,
        store,
        _dir: dir,
    })
}

type Items = Vec<(PublicKey, Vec<u8>, Signature)>;

fn verify_rate(items: &Items) -> anyhow::Result<f64> {
    let t = Instant::now();
    for (k, m, s) in items {
        crypto::verify(&VerifyItem {
            key: k,
            message: m,
            signature: s,
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(items.len() as f64 / t.elapsed().as_secs_f64())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    FlushEach,
    FlushBatch,
    BatchVerify,
    EngineOnly,
}

fn variant_rate(c: &Corpus, v: Variant, a: &Args) -> anyhow::Result<f64> {
    let mut f = fixture(c, v != Variant::EngineOnly)?;
    let msgs: &[Vec<u8>] = if v == Variant::FlushEach {
        &c.responses[..a.flush_msgs.min(c.responses.len())]
    } else {
        &c.responses
    };
    let store = f.store.clone();
    let t = Instant::now();
    match v {
        Variant::FlushEach => {
            let s = store.context("store")?;
            for m in msgs {
                let now = acp_node::node::now();
                let ing = f
                    .engine
                    .ingest(m, Origin::Local, now)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                apply(&f.engine, s.as_ref(), ing.effects)?;
                s.flush()?;
                let fx = f.engine.tick(now);
                apply(&f.engine, s.as_ref(), fx)?;
            }
        }
        Variant::FlushBatch | Variant::EngineOnly => {
            for chunk in msgs.chunks(a.batch) {
                let now = acp_node::node::now();
                for m in chunk {
                    let ing = f
                        .engine
                        .ingest(m, Origin::Peer, now)
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    if let Some(s) = &store {
                        apply(&f.engine, s.as_ref(), ing.effects)?;
                    }
                }
                let fx = f.engine.tick(now);
                if let Some(s) = &store {
                    apply(&f.engine, s.as_ref(), fx)?;
                    s.flush()?;
                }
            }
        }
        Variant::BatchVerify => {
            let s = store.context("store")?;
            for chunk in msgs.chunks(a.batch) {
                let now = acp_node::node::now();
                let items: Vec<(&[u8], Origin)> =
                    chunk.iter().map(|b| (b.as_slice(), Origin::Peer)).collect();
                for r in f.engine.ingest_batch(&items, now) {
                    let ing = r.map_err(|e| anyhow::anyhow!("{e}"))?;
                    apply(&f.engine, s.as_ref(), ing.effects)?;
                }
                let fx = f.engine.tick(now);
                apply(&f.engine, s.as_ref(), fx)?;
                s.flush()?;
            }
        }
    }
    Ok(msgs.len() as f64 / t.elapsed().as_secs_f64())
}

/// Runs the ingest benchmark and prints a table.
pub fn run(a: &Args) -> anyhow::Result<()> {
    let c = corpus(a)?;
    let mut items: Items = Vec::new();
    for b in &c.responses {
        let (env, id) = decode_unverified(b)?;
        items.extend(signature_items(&env, &id));
    }
    let size = c.responses.iter().map(Vec::len).sum::<usize>() / c.responses.len();
    println!(
        "ingest: {} responses (~{size} B) over {} proposals, batch {}, {} rounds; {} (start)",
        c.responses.len(),
        a.proposals,
        a.batch,
        a.rounds,
        load()
    );
    let variants = [
        ("ingest, no store (engine only)", Variant::EngineOnly),
        (
            "ingest + sled, flush per batch (gossip)",
            Variant::FlushBatch,
        ),
        ("ingest_batch + sled, flush per batch", Variant::BatchVerify),
        (
            "ingest + sled, flush per message (local)",
            Variant::FlushEach,
        ),
    ];
    let mut verify = Vec::new();
    let mut rates = vec![Vec::new(); variants.len()];
    let mut ratios = vec![Vec::new(); variants.len()];
    for _ in 0..a.rounds {
        for (i, (_, v)) in variants.iter().enumerate() {
            let base = verify_rate(&items)?;
            let r = variant_rate(&c, *v, a)?;
            verify.push(base);
            rates[i].push(r);
            ratios[i].push(r / base);
        }
    }
    println!("{:<44} {:>12} {:>14}", "variant", "msgs/s", "/ raw verify");
    println!(
        "{:<44} {:>12.0} {:>14}",
        "raw crypto::verify (one signature each)",
        median(&verify),
        "1.00"
    );
    for (i, (name, _)) in variants.iter().enumerate() {
        println!(
            "{:<44} {:>12.0} {:>14.3}",
            name,
            median(&rates[i]),
            median(&ratios[i])
        );
    }
    println!(
        "(medians over rounds; each ratio uses the verify rate measured just before it); {} (end)",
        load()
    );
    Ok(())
}
