//! Item 2: ingest vs the limit.
//!
//! The floor of taking in a signed message is verifying its signature. This
//! measures, on one thread and over the same real signed responses:
//!
//! - `verify`: `crypto::verify` alone (inputs prepared outside the timing);
//! - `engine only`: `Engine::ingest` (decode, canonical check, id, verify,
//!   the engine's own work) per message, no store;
//! - `ingest + sled, group commit`: what the node does with a burst, with
//!   one signature check per message: `Engine::ingest` per message, the
//!   burst's `Store` effects in one sled write (`node::write_effects`), an
//!   engine `tick`, and a durability request to the node's `GroupCommit`
//!   (flushes run on its own thread; the clock stops when the last one is
//!   done, so every message counted is on disk);
//! - `ingest + sled write, no flush`: the same without durability, to split
//!   the cost of the write from that of the flushes;
//! - `ingest_batch + sled, group commit`: the same with `Engine::ingest_batch`
//!   (batch signature verification), which is the node's gossip path;
//! - `flush per message`: one sequential submitter that waits for its own
//!   flush each time — the disk-sync floor group commit exists to lift.
//!
//! Rounds alternate the variants; the reported ratio is the median over
//! rounds of (variant rate / verify rate) measured in the same round.

use std::sync::Arc;
use std::time::Instant;

use acp_node::service::write_effects;
use acp_node::storage::commit::GroupCommit;
use acp_node::storage::store::{SledStore, Store};
use acp_protocol::build::{PolicyBuilder, default_rules, proposal, response};
use acp_protocol::crypto::{self, VerifyItem};
use acp_protocol::{
    Engine, EngineConfig, Origin, PublicKey, Signature, SignedMessage, Stance, Timestamp,
    decode_unverified, signature_items,
};
use anyhow::Context;

use crate::util::{Scratch, key, load, median};

const DOMAIN: &str = "fraud.detection";

/// Options of `acp-bench ingest`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Proposals; each gets `--responses` responses.
    #[arg(long, default_value_t = 200)]
    proposals: u32,
    /// Responses per proposal (policy members).
    #[arg(long, default_value_t = 25)]
    responses: u32,
    /// Burst size (the node takes up to 256 queued events per turn).
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Alternating measurement rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Messages of the per-message-flush variant per round (fsync bound).
    #[arg(long, default_value_t = 200)]
    flush_msgs: usize,
}

struct Corpus {
    /// The genesis policy: every engine trusts it as the domain's anchor.
    genesis: acp_protocol::ContentId,
    setup: Vec<Vec<u8>>,
    responses: Vec<Vec<u8>>,
}

fn corpus(a: &Args) -> anyhow::Result<Corpus> {
    let org = key(11, 0);
    let agents: Vec<_> = (0..a.responses).map(|i| key(12, i)).collect();
    let proposer = key(13, 0);
    let mut b = PolicyBuilder::new(DOMAIN)
        .organization(&org, "org", 10_000)
        .proposer(&proposer.public());
    for ag in &agents {
        b = b.member(&ag.public(), 0, 5_000);
    }
    let policy = b.rules(default_rules()).sign(&[&org])?;
    let t0 = acp_node::service::now().0;
    let mut setup = vec![policy.bytes.clone()];
    let mut responses = Vec::new();
    let mut props: Vec<SignedMessage> = Vec::new();
    for p in 0..a.proposals {
        let m = proposal(
            &proposer,
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
    Ok(Corpus {
        genesis: policy.id,
        setup,
        responses,
    })
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
    engine.add_anchor(DOMAIN, c.genesis);
    let now = acp_node::service::now();
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
            write_effects(s.as_ref(), &ing.effects)?;
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
    NoFlush,
    GroupCommit,
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
    // Started outside the timing, like the node's, which starts it once.
    let mut commit = store
        .clone()
        .map(|s| GroupCommit::start(s as Arc<dyn Store>));
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let t = Instant::now();
    let mut durable = None;
    match v {
        Variant::FlushEach => {
            let s = store.context("store")?;
            for m in msgs {
                let now = acp_node::service::now();
                let ing = f
                    .engine
                    .ingest(m, Origin::Local, now)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                write_effects(s.as_ref(), &ing.effects)?;
                s.flush()?;
                write_effects(s.as_ref(), &f.engine.tick(now))?;
            }
        }
        Variant::EngineOnly => {
            for chunk in msgs.chunks(a.batch) {
                let now = acp_node::service::now();
                for m in chunk {
                    f.engine
                        .ingest(m, Origin::Peer, now)
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                f.engine.tick(now);
            }
        }
        Variant::GroupCommit | Variant::BatchVerify | Variant::NoFlush => {
            let s = store.context("store")?;
            let commit = commit.as_mut().context("commit")?;
            for chunk in msgs.chunks(a.batch) {
                let now = acp_node::service::now();
                let mut effects = Vec::new();
                if v == Variant::BatchVerify {
                    let items: Vec<(&[u8], Origin)> =
                        chunk.iter().map(|b| (b.as_slice(), Origin::Peer)).collect();
                    for r in f.engine.ingest_batch(&items, now) {
                        effects.extend(r.map_err(|e| anyhow::anyhow!("{e}"))?.effects);
                    }
                } else {
                    for m in chunk {
                        let ing = f
                            .engine
                            .ingest(m, Origin::Peer, now)
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                        effects.extend(ing.effects);
                    }
                }
                effects.extend(f.engine.tick(now));
                write_effects(s.as_ref(), &effects)?;
                if v != Variant::NoFlush {
                    durable = Some(commit.request());
                }
            }
        }
    }
    if let Some(d) = durable {
        rt.block_on(d)?;
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
        ("ingest + sled write, no flush", Variant::NoFlush),
        ("ingest + sled, group commit", Variant::GroupCommit),
        (
            "ingest_batch + sled, group commit (gossip)",
            Variant::BatchVerify,
        ),
        ("ingest + sled, flush per message", Variant::FlushEach),
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
