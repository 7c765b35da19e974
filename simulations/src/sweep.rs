//! The adversary sweep: one network (12 nodes, 4 organizations, 1 % loss,
//! 40 ms median latency), a grid of adversary strengths × seeds, with or
//! without partitions, and the certified-finality metrics of every run
//! aggregated per grid point.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::metrics::{CERT_TARGET_MS, Report, percentile};
use crate::plot::{self, Legend};
use crate::scenario::{FaultEvent, FaultKind, Scenario};

/// Who misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adversary {
    /// Members that sign a response backdated to `closes_at` and publish it late.
    Backdate,
    /// Members that sign a second, opposite response and publish it late.
    Equivocate,
    /// Organizations whose attestor signs other results besides its own.
    Attestor,
}

impl Adversary {
    /// Name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Adversary::Backdate => "backdate",
            Adversary::Equivocate => "equivocate",
            Adversary::Attestor => "attestor",
        }
    }

    /// What a grid value counts.
    pub fn unit(self) -> &'static str {
        match self {
            Adversary::Backdate | Adversary::Equivocate => "% of members",
            Adversary::Attestor => "equivocating attestors (of 4 organizations)",
        }
    }
}

impl std::str::FromStr for Adversary {
    type Err = SweepError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "backdate" => Ok(Adversary::Backdate),
            "equivocate" => Ok(Adversary::Equivocate),
            "attestor" => Ok(Adversary::Attestor),
            _ => Err(SweepError::Adversary(s.to_owned())),
        }
    }
}

/// Errors of a sweep definition.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Unknown adversary name.
    #[error("unknown adversary `{0}` (backdate, equivocate or attestor)")]
    Adversary(String),
    /// Both axes vary.
    #[error("vary either the adversary strength or late_ms, not both")]
    TwoAxes,
    /// Nothing to run.
    #[error("the grid is empty")]
    Empty,
}

/// The grid to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Grid {
    /// Who misbehaves.
    pub adversary: Adversary,
    /// Adversary strengths: percent of members, or attestors for `Attestor`.
    pub strengths: Vec<u32>,
    /// When late messages go out, relative to the end of the grace period.
    pub late_ms: Vec<i64>,
    /// Seeds per grid point: `first_seed ..`.
    pub seeds: u64,
    /// First seed.
    pub first_seed: u64,
    /// Partition the network while proposals of rounds 1 and 3 close.
    pub partitions: bool,
    /// Rounds of proposals per run.
    pub rounds: usize,
    /// Proposals per round.
    pub per_round: usize,
}

/// The values along the varying axis (strength, or `late_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Adversary strength.
    Strength,
    /// Publication time of late messages.
    LateMs,
}

/// Time between round starts; every run uses the default 8 s window and 2 s grace.
const ROUND_MS: u64 = 15_000;

impl Grid {
    /// Which axis varies.
    pub fn axis(&self) -> Result<Axis, SweepError> {
        if self.strengths.is_empty() || self.late_ms.is_empty() || self.seeds == 0 {
            return Err(SweepError::Empty);
        }
        match (self.strengths.len() > 1, self.late_ms.len() > 1) {
            (true, true) => Err(SweepError::TwoAxes),
            (false, true) => Ok(Axis::LateMs),
            _ => Ok(Axis::Strength),
        }
    }

    /// The scenario of one grid point.
    pub fn scenario(&self, strength: u32, late_ms: i64) -> Scenario {
        let mut sc = Scenario {
            name: format!("sweep-{}", self.adversary.name()),
            ..Scenario::default()
        };
        sc.topology.nodes = 12;
        sc.topology.organizations = 4;
        sc.agents.count = 120;
        sc.network.loss = 0.01;
        sc.proposals.rounds = self.rounds;
        sc.proposals.per_round = self.per_round;
        sc.proposals.round_interval_ms = ROUND_MS;
        let start = sc.proposals.start_ms;
        // The last round closes, certifies and reports well before the end.
        sc.duration_ms = start + self.rounds as u64 * ROUND_MS + 5_000;
        sc.sample_ms = 1_000;
        let share = f64::from(strength) / 100.0;
        match self.adversary {
            Adversary::Backdate => sc.byzantine.backdater_share = share,
            Adversary::Equivocate => sc.byzantine.equivocator_share = share,
            Adversary::Attestor => sc.byzantine.equivocating_attestors = strength as usize,
        }
        sc.byzantine.late_ms = late_ms;
        if self.partitions {
            // Cut the network from just before a round starts until 4 s
            // after its attestors signed: a third of the nodes in round 1,
            // three equal parts in round 3.
            let cut = |round: u64, kind: FaultKind| {
                let at = start + round * ROUND_MS;
                [
                    FaultEvent {
                        at_ms: at - 500,
                        kind,
                    },
                    FaultEvent {
                        at_ms: at + 14_000,
                        kind: FaultKind::Heal,
                    },
                ]
            };
            let minority = FaultKind::Partition {
                groups: vec![vec![0, 1, 2, 3]],
                split: 0,
            };
            let three = FaultKind::Partition {
                groups: Vec::new(),
                split: 3,
            };
            for (round, kind) in [(1, minority), (3, three)] {
                if round < self.rounds as u64 {
                    sc.events.extend(cut(round, kind));
                }
            }
        }
        sc
    }

    /// Every (strength, late_ms) point, in order.
    pub fn points(&self) -> Vec<(u32, i64)> {
        self.strengths
            .iter()
            .flat_map(|&s| self.late_ms.iter().map(move |&l| (s, l)))
            .collect()
    }
}

/// One run of the grid.
#[derive(Clone, Debug)]
pub struct Run {
    /// Adversary strength.
    pub strength: u32,
    /// Publication time of late messages.
    pub late_ms: i64,
    /// Seed.
    pub seed: u64,
    /// Its report.
    pub report: Report,
}

/// Run the grid on `jobs` threads; `done(finished, total)` after each run.
/// Runs are independent and deterministic, so the result does not depend
/// on `jobs`; it is ordered by point, then seed.
pub fn run(
    grid: &Grid,
    jobs: usize,
    done: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<Run>, SimError> {
    grid.axis()?;
    let tasks: Vec<(u32, i64, u64)> = grid
        .points()
        .into_iter()
        .flat_map(|(s, l)| (0..grid.seeds).map(move |k| (s, l, grid.first_seed + k)))
        .collect();
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let out: Mutex<Vec<Result<Run, SimError>>> = Mutex::new(Vec::with_capacity(tasks.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                while let Some(&(strength, late_ms, seed)) =
                    tasks.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    let result = crate::run_one(grid.scenario(strength, late_ms), seed, false).map(
                        |(report, _)| Run {
                            strength,
                            late_ms,
                            seed,
                            report,
                        },
                    );
                    if let Ok(mut o) = out.lock() {
                        o.push(result);
                    }
                    done(finished.fetch_add(1, Ordering::Relaxed) + 1, tasks.len());
                }
            });
        }
    });
    let mut runs = out
        .into_inner()
        .map_err(|_| SimError::Worker)?
        .into_iter()
        .collect::<Result<Vec<Run>, SimError>>()?;
    let order = |r: &Run| (r.strength, r.late_ms, r.seed);
    runs.sort_by_key(order);
    Ok(runs)
}

/// The runs of one grid point, aggregated.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    /// Adversary strength.
    pub strength: u32,
    /// Publication time of late messages.
    pub late_ms: i64,
    /// Runs (seeds).
    pub runs: usize,
    /// Proposals over all runs.
    pub proposals: usize,
    /// Certified results changed after certification, over all runs.
    pub certified_changes: u64,
    /// Runs with at least one such change.
    pub runs_with_certified_changes: usize,
    /// Finalized results changed after finalization (v0.1), mean per run.
    pub finalized_changes_mean: f64,
    /// Mean share of proposals certified at every live honest node.
    pub certified_share: f64,
    /// Mean escalated share.
    pub escalated_share: f64,
    /// Mean contested share.
    pub contested_share: f64,
    /// Mean unsettled share (provisional, or split across nodes).
    pub unsettled_share: f64,
    /// Mean share certified everywhere by `closes_at` + 5 s.
    pub cert_within_5s_share: f64,
    /// Time to certificate over every honest node and proposal of every run.
    pub t_cert_p50_ms: Option<u64>,
    /// 99th percentile.
    pub t_cert_p99_ms: Option<u64>,
    /// Mean accuracy of decided proposals.
    pub accuracy: f64,
    /// Attestor equivocation events, mean per run.
    pub attestor_equivocations_mean: f64,
    /// Wall time of all runs, ms.
    pub wall_ms: u64,
}

/// Aggregate runs (ordered by point, as [`run`] returns them) per point.
pub fn aggregate(runs: &[Run]) -> Vec<Point> {
    let mut points: Vec<Point> = Vec::new();
    for group in runs.chunk_by(|a, b| (a.strength, a.late_ms) == (b.strength, b.late_ms)) {
        let k = group.len() as f64;
        let mean = |f: &dyn Fn(&Report) -> f64| group.iter().map(|r| f(&r.report)).sum::<f64>() / k;
        let mut t: Vec<u64> = group
            .iter()
            .flat_map(|r| r.report.t_cert_samples.iter().copied())
            .collect();
        points.push(Point {
            strength: group[0].strength,
            late_ms: group[0].late_ms,
            runs: group.len(),
            proposals: group.iter().map(|r| r.report.proposals).sum(),
            certified_changes: group.iter().map(|r| r.report.certified_changes).sum(),
            runs_with_certified_changes: group
                .iter()
                .filter(|r| r.report.certified_changes > 0)
                .count(),
            finalized_changes_mean: mean(&|r| r.finalized_changes as f64),
            certified_share: mean(&|r| r.certified_share),
            escalated_share: mean(&|r| r.escalated_share),
            contested_share: mean(&|r| r.contested_share),
            unsettled_share: mean(&|r| r.unsettled_share),
            cert_within_5s_share: mean(&|r| r.cert_within_5s_share),
            t_cert_p50_ms: percentile(&mut t, 0.5),
            t_cert_p99_ms: percentile(&mut t, 0.99),
            accuracy: mean(&|r| r.accuracy),
            attestor_equivocations_mean: mean(&|r| r.attestor_equivocations as f64),
            wall_ms: group.iter().map(|r| r.report.wall_ms).sum(),
        });
    }
    points
}

/// Write `runs.csv`, `points.csv`, `points.json` and the charts
/// `changes.svg`, `shares.svg` and `t_cert.svg` into `dir`.
pub fn write(grid: &Grid, runs: &[Run], points: &[Point], dir: &Path) -> Result<(), SimError> {
    std::fs::create_dir_all(dir)?;
    let opt = |x: Option<u64>| x.map_or(String::new(), |v| v.to_string());
    let mut s = String::from(
        "adversary,strength,late_ms,partitions,seed,proposals,certified_changes,finalized_changes,certified_share,escalated_share,contested_share,unsettled_share,cert_within_5s_share,t_cert_p50_ms,t_cert_p99_ms,accuracy,attestor_equivocations,after_certification,trace\n",
    );
    for r in runs {
        let p = &r.report;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{},{},{:.4},{},{},{}",
            grid.adversary.name(),
            r.strength,
            r.late_ms,
            grid.partitions,
            r.seed,
            p.proposals,
            p.certified_changes,
            p.finalized_changes,
            p.certified_share,
            p.escalated_share,
            p.contested_share,
            p.unsettled_share,
            p.cert_within_5s_share,
            opt(p.t_cert_p50_ms),
            opt(p.t_cert_p99_ms),
            p.accuracy,
            p.attestor_equivocations,
            p.after_certification,
            p.trace
        );
    }
    std::fs::write(dir.join("runs.csv"), s)?;
    let mut s = String::from(
        "adversary,strength,late_ms,partitions,runs,proposals,certified_changes,runs_with_certified_changes,finalized_changes_mean,certified_share,escalated_share,contested_share,unsettled_share,cert_within_5s_share,t_cert_p50_ms,t_cert_p99_ms,accuracy,attestor_equivocations_mean,wall_ms\n",
    );
    for p in points {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{:.2},{:.4},{:.4},{:.4},{:.4},{:.4},{},{},{:.4},{:.2},{}",
            grid.adversary.name(),
            p.strength,
            p.late_ms,
            grid.partitions,
            p.runs,
            p.proposals,
            p.certified_changes,
            p.runs_with_certified_changes,
            p.finalized_changes_mean,
            p.certified_share,
            p.escalated_share,
            p.contested_share,
            p.unsettled_share,
            p.cert_within_5s_share,
            opt(p.t_cert_p50_ms),
            opt(p.t_cert_p99_ms),
            p.accuracy,
            p.attestor_equivocations_mean,
            p.wall_ms
        );
    }
    std::fs::write(dir.join("points.csv"), s)?;
    let doc = Results {
        grid: grid.clone(),
        points: points.to_vec(),
    };
    std::fs::write(dir.join("points.json"), serde_json::to_string_pretty(&doc)?)?;
    charts(&doc, dir)
}

/// What `points.json` holds: the grid and its aggregated points.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    /// The grid run.
    pub grid: Grid,
    /// Its points.
    pub points: Vec<Point>,
}

impl Results {
    /// Read `points.json` from a sweep's output directory.
    pub fn read(dir: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(dir.join("points.json"))?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// Draw `changes.svg`, `shares.svg` and `t_cert.svg` of a sweep into `dir`.
pub fn charts(results: &Results, dir: &Path) -> Result<(), SimError> {
    let (grid, points) = (&results.grid, &results.points);
    let axis = grid.axis()?;
    let x = |p: &Point| match axis {
        Axis::Strength => f64::from(p.strength),
        Axis::LateMs => p.late_ms as f64,
    };
    let x_desc = match axis {
        Axis::Strength => format!("{}: {}", grid.adversary.name(), grid.adversary.unit()),
        Axis::LateMs => "late messages published at close + grace + x (ms)".to_owned(),
    };
    let series = |f: &dyn Fn(&Point) -> f64| -> Vec<(f64, f64)> {
        points.iter().map(|p| (x(p), f(p))).collect()
    };
    let net = if grid.partitions {
        "with partitions"
    } else {
        "no partitions"
    };
    let title = |what: &str| {
        format!(
            "{what}: {}, {net}, {} seeds",
            grid.adversary.name(),
            grid.seeds
        )
    };
    plot::lines(
        &dir.join("changes.svg"),
        &title("results changed afterwards"),
        &x_desc,
        "changes per run (all honest nodes)",
        &[
            (
                "certified result changed after certification".into(),
                series(&|p| p.certified_changes as f64 / p.runs.max(1) as f64),
            ),
            (
                "finalized result changed after finalization (v0.1)".into(),
                series(&|p| p.finalized_changes_mean),
            ),
        ],
        None,
        Legend::UpperLeft,
    )?;
    plot::lines(
        &dir.join("shares.svg"),
        &title("finality at the end of the run"),
        &x_desc,
        "share of proposals",
        &[
            ("certified".into(), series(&|p| p.certified_share)),
            (
                "certificate (any status) by close + 5 s".into(),
                series(&|p| p.cert_within_5s_share),
            ),
            ("escalated".into(), series(&|p| p.escalated_share)),
            ("contested".into(), series(&|p| p.contested_share)),
            ("unsettled".into(), series(&|p| p.unsettled_share)),
        ],
        Some((0.0, 1.05)),
        // Over late_ms the curves dip in the middle; over strength they
        // stay near 0 and 1.
        match axis {
            Axis::Strength => Legend::MiddleRight,
            Axis::LateMs => Legend::LowerLeft,
        },
    )?;
    let ms = |f: &dyn Fn(&Point) -> Option<u64>| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter_map(|p| f(p).map(|t| (x(p), t as f64)))
            .collect()
    };
    let p99 = ms(&|p| p.t_cert_p99_ms);
    let top = p99
        .iter()
        .map(|&(_, t)| t)
        .fold(CERT_TARGET_MS as f64, f64::max);
    plot::lines(
        &dir.join("t_cert.svg"),
        &title("time to certificate after closes_at"),
        &x_desc,
        "ms",
        &[
            ("p50".into(), ms(&|p| p.t_cert_p50_ms)),
            ("p99".into(), p99),
            (
                "target: close + 5 s".into(),
                series(&|_| CERT_TARGET_MS as f64),
            ),
        ],
        Some((0.0, top * 1.1)),
        Legend::LowerRight,
    )?;
    Ok(())
}
