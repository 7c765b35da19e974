//! Same scenario and seed: bit-identical trace. Different seed: a different one.

use acp_sim::run_one;
use acp_sim::scenario::Scenario;

const SMOKE: &str = include_str!("../scenarios/smoke.toml");

fn trace(seed: u64) -> (String, f64) {
    let sc = Scenario::parse(SMOKE).expect("smoke scenario parses");
    let (report, world) = run_one(sc, seed, false).expect("runs");
    assert!(world.events > 500, "the run did something");
    (report.trace, report.agreement_mean)
}

#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let (a, agree_a) = trace(1);
    let (b, _) = trace(1);
    let (c, _) = trace(2);
    assert_eq!(a, b, "same seed must give the same trace");
    assert_ne!(a, c, "a different seed must give a different trace");
    assert!(agree_a >= 1.0, "nodes agree after heal and restart");
}

#[test]
fn every_shipped_scenario_parses() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    for e in std::fs::read_dir(dir).expect("scenarios dir") {
        let path = e.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        Scenario::parse(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    }
}
