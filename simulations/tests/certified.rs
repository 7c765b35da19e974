//! Certified finality under late and equivocating members: once an honest
//! node saw a proposal certified, its certified status and digest never
//! change — while the v0.1 notion of "final" (the finalized resolution)
//! does change under the same attacks. Equivocating attestors beyond the
//! fault bound do break certificates, which shows the metric can fail.

use acp_sim::metrics::Report;
use acp_sim::run_one;
use acp_sim::sweep::{Adversary, Grid};

/// A smaller network than the sweep's, so that debug builds stay fast.
fn report(adversary: Adversary, strength: u32, partitions: bool, seed: u64) -> Report {
    let grid = Grid {
        adversary,
        strengths: vec![strength],
        late_ms: vec![500],
        seeds: 1,
        first_seed: seed,
        partitions,
        rounds: 2,
        per_round: 2,
    };
    let mut sc = grid.scenario(strength, 500);
    sc.topology.nodes = 8;
    sc.agents.count = 40;
    run_one(sc, seed, false).expect("runs").0
}

#[test]
fn late_members_never_change_a_certified_result() {
    for adversary in [Adversary::Backdate, Adversary::Equivocate] {
        for partitions in [false, true] {
            let mut v01_changes = 0;
            let mut certified = 0.0;
            for seed in 1..=3 {
                let r = report(adversary, 40, partitions, seed);
                assert_eq!(
                    r.certified_changes,
                    0,
                    "{} at 40 %, partitions {partitions}, seed {seed}",
                    adversary.name()
                );
                v01_changes += r.finalized_changes;
                certified += r.certified_share;
            }
            assert!(
                v01_changes > 0,
                "{}: late messages change v0.1 finalized results",
                adversary.name()
            );
            assert!(certified > 0.0, "{}: something certifies", adversary.name());
        }
    }
}

#[test]
fn one_equivocating_attestor_is_tolerated_three_are_not() {
    for seed in 1..=2 {
        let one = report(Adversary::Attestor, 1, false, seed);
        assert!(one.attestor_equivocations > 0, "the equivocation is seen");
        assert_eq!(one.certified_changes, 0, "f = 2q - n - 1 = 1 is tolerated");
    }
    // Three of four organizations sign a fabricated result: a quorum for it.
    let three = report(Adversary::Attestor, 3, false, 1);
    assert!(
        three.certified_changes > 0,
        "beyond the bound, certificates conflict"
    );
}
