//! `acp-sim`: run ACP scenarios in a deterministic simulated network.
//!
//! ```text
//! acp-sim run partition-heal --seed 7 --out sim-out
//! acp-sim run simulations/scenarios/flood.toml --set agents.count=1000
//! acp-sim list
//! acp-sim sweep --adversary backdate --shares 0,5,10,20,30,40 --seeds 100 --partitions
//! acp-sim replot sim-out/sweep
//! ```

use std::path::{Path, PathBuf};

use acp_sim::metrics::Report;
use acp_sim::plot::{self, Legend, Series};
use acp_sim::scenario::{Scenario, parse_override, set_path};
use acp_sim::sweep::{self as grid_sweep, Adversary, Grid};
use acp_sim::world::{Class, World};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "acp-sim",
    version,
    about = "Deterministic ACP network simulator"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a scenario (a TOML file, or the name of a shipped scenario).
    Run {
        /// Scenario file or shipped name (see `acp-sim list`).
        scenario: String,
        /// Seed (defaults to the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory.
        #[arg(long, default_value = "sim-out")]
        out: PathBuf,
        /// Override a scenario value, e.g. `--set agents.count=1000` (repeatable).
        #[arg(long = "set")]
        overrides: Vec<String>,
        /// Ignore the scenario's `[sweep]` and run it once.
        #[arg(long)]
        no_sweep: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// List the shipped scenarios.
    List,
    /// Run an adversary grid on a 12-node network (4 organizations, 1 %
    /// loss, 40 ms median latency) and chart certified finality.
    Sweep {
        /// backdate, equivocate (shares are % of members) or attestor
        /// (values are equivocating attestors of the 4 organizations).
        #[arg(long)]
        adversary: Adversary,
        /// Adversary strengths, comma-separated [backdate and equivocate:
        /// 0,5,10,20,30,40; attestor: 0,1,2,3].
        #[arg(long, value_delimiter = ',')]
        shares: Vec<u32>,
        /// Seeds per grid point.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 1)]
        first_seed: u64,
        /// Cut the network while rounds 1 and 3 close.
        #[arg(long)]
        partitions: bool,
        /// Late messages go out this long after the grace period ends
        /// (comma-separated to sweep it instead of the strength).
        #[arg(
            long,
            value_delimiter = ',',
            allow_negative_numbers = true,
            default_value = "500"
        )]
        late_ms: Vec<i64>,
        /// Rounds of proposals per run.
        #[arg(long, default_value_t = 4)]
        rounds: usize,
        /// Proposals per round.
        #[arg(long, default_value_t = 3)]
        per_round: usize,
        /// Worker threads [available cores].
        #[arg(long)]
        jobs: Option<usize>,
        /// Output directory.
        #[arg(long, default_value = "sim-out/sweep")]
        out: PathBuf,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Redraw a sweep's charts from its `points.json`.
    Replot {
        /// Sweep output directories.
        dirs: Vec<PathBuf>,
    },
}

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");

fn locate(s: &str) -> PathBuf {
    let p = PathBuf::from(s);
    if p.exists() {
        return p;
    }
    Path::new(SHIPPED).join(format!("{s}.toml"))
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::List => {
            let mut names: Vec<String> = std::fs::read_dir(SHIPPED)?
                .filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".toml"))
                        .map(str::to_owned)
                })
                .collect();
            names.sort();
            for n in names {
                println!("{n}");
            }
            Ok(())
        }
        Cmd::Replot { dirs } => {
            for dir in dirs {
                grid_sweep::charts(&grid_sweep::Results::read(&dir)?, &dir)?;
                println!("  redrew {}", dir.display());
            }
            Ok(())
        }
        Cmd::Sweep {
            adversary,
            shares,
            seeds,
            first_seed,
            partitions,
            late_ms,
            rounds,
            per_round,
            jobs,
            out,
            quiet,
        } => {
            let strengths = if shares.is_empty() {
                match adversary {
                    Adversary::Attestor => vec![0, 1, 2, 3],
                    _ => vec![0, 5, 10, 20, 30, 40],
                }
            } else {
                shares
            };
            let grid = Grid {
                adversary,
                strengths,
                late_ms,
                seeds,
                first_seed,
                partitions,
                rounds,
                per_round,
            };
            let jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            let total = grid.points().len() as u64 * grid.seeds;
            let bar = (!quiet).then(|| {
                let b = indicatif::ProgressBar::new(total);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} runs (eta {eta})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b
            });
            let start = std::time::Instant::now();
            let runs = grid_sweep::run(&grid, jobs, &|done, _| {
                if let Some(b) = &bar {
                    b.set_position(done as u64);
                }
            })?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let points = grid_sweep::aggregate(&runs);
            grid_sweep::write(&grid, &runs, &points, &out)?;
            let opt = |x: Option<u64>| x.map_or("-".into(), |v| v.to_string());
            println!(
                "{:>8} {:>7} {:>5} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
                "strength",
                "late_ms",
                "runs",
                "cert.chg",
                "final.chg",
                "certified",
                "by+5s",
                "escalated",
                "contested",
                "p50 ms",
                "p99 ms"
            );
            for p in &points {
                println!(
                    "{:>8} {:>7} {:>5} {:>9} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8} {:>8}",
                    p.strength,
                    p.late_ms,
                    p.runs,
                    p.certified_changes,
                    p.finalized_changes_mean,
                    p.certified_share,
                    p.cert_within_5s_share,
                    p.escalated_share,
                    p.contested_share,
                    opt(p.t_cert_p50_ms),
                    opt(p.t_cert_p99_ms)
                );
            }
            println!(
                "  {} runs on {jobs} threads in {:.1} s; output {}",
                runs.len(),
                start.elapsed().as_secs_f64(),
                out.display()
            );
            Ok(())
        }
        Cmd::Run {
            scenario,
            seed,
            out,
            overrides,
            no_sweep,
            quiet,
        } => {
            let path = locate(&scenario);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let mut doc: toml::Value = toml::from_str(&text)?;
            for o in &overrides {
                let (k, v) = parse_override(o)?;
                set_path(&mut doc, &k, v)?;
            }
            let base = Scenario::from_value(doc.clone())?;
            let seed = seed.unwrap_or(base.seed);
            match base.sweep.clone().filter(|_| !no_sweep) {
                None => {
                    let (report, world) = acp_sim::run_one(base, seed, !quiet)?;
                    output(&report, &world, &out)?;
                    println!("{}", report.table());
                    println!("  output                {}", out.display());
                }
                Some(sweep) => {
                    let mut rows = Vec::new();
                    for v in &sweep.values {
                        let mut d = doc.clone();
                        set_path(&mut d, &sweep.path, v.clone())?;
                        if let Some(t) = d.as_table_mut() {
                            t.remove("sweep");
                        }
                        for k in 0..sweep.seeds.max(1) {
                            let sc = Scenario::from_value(d.clone())?;
                            let (report, world) = acp_sim::run_one(sc, seed + k, !quiet)?;
                            let dir = out.join(format!("{}={}-seed{}", sweep.path, v, seed + k));
                            output(&report, &world, &dir)?;
                            println!(
                                "{} = {v} (seed {}): accuracy {:.3}, escalation {:.3}, agreement {:.4}, certified {:.3}, changed after certification {}",
                                sweep.path,
                                seed + k,
                                report.accuracy,
                                report.escalation_rate,
                                report.agreement_mean,
                                report.certified_share,
                                report.certified_changes
                            );
                            rows.push((v.to_string(), value_f64(v), report));
                        }
                    }
                    sweep_output(&sweep.path, &rows, &out)?;
                    println!("  output                {}", out.display());
                }
            }
            Ok(())
        }
    }
}

fn value_f64(v: &toml::Value) -> f64 {
    v.as_float()
        .or_else(|| v.as_integer().map(|i| i as f64))
        .unwrap_or(0.0)
}

fn output(r: &Report, w: &World, dir: &Path) -> anyhow::Result<()> {
    r.write(w, dir)?;
    let rounds = |f: &dyn Fn(&acp_sim::metrics::RoundRow) -> f64| -> Vec<(f64, f64)> {
        r.rounds.iter().map(|x| (x.round as f64, f(x))).collect()
    };
    plot::lines(
        &dir.join("rounds.svg"),
        &format!("{}: decisions per round", r.name),
        "round",
        "share",
        &[
            ("accuracy (decided)".into(), rounds(&|x| x.accuracy)),
            ("escalation rate".into(), rounds(&|x| x.escalation_rate)),
            ("agreement".into(), rounds(&|x| x.agreement)),
        ],
        Some((0.0, 1.05)),
        Legend::LowerRight,
    )?;
    let present: Vec<Class> = Class::ALL
        .into_iter()
        .filter(|c| r.trust.iter().any(|t| t.class == *c))
        .collect();
    let trust: Vec<Series> = present
        .iter()
        .map(|c| {
            (
                c.name().to_owned(),
                r.trust
                    .iter()
                    .filter(|t| t.class == *c)
                    .map(|t| (t.round as f64, t.mean_trust_bps))
                    .collect(),
            )
        })
        .collect();
    plot::lines(
        &dir.join("trust.svg"),
        &format!("{}: mean trust at round start", r.name),
        "round",
        "trust (bps)",
        &trust,
        Some((0.0, 10_000.0)),
        Legend::LowerRight,
    )?;
    let share: Vec<Series> = present
        .iter()
        .map(|c| {
            let k = c.name();
            (
                k.to_owned(),
                rounds(&|x| x.weight_share.get(k).copied().unwrap_or(0.0)),
            )
        })
        .collect();
    plot::lines(
        &dir.join("influence.svg"),
        &format!("{}: share of decisive weight", r.name),
        "round",
        "share of weight",
        &share,
        Some((0.0, 1.0)),
        Legend::LowerRight,
    )?;
    let agreed: Vec<(f64, f64)> = r
        .samples
        .iter()
        .map(|s| (s.t_ms as f64 / 1e3, s.agreed_share))
        .collect();
    let alive: Vec<(f64, f64)> = r
        .samples
        .iter()
        .map(|s| (s.t_ms as f64 / 1e3, s.alive as f64 / r.nodes.max(1) as f64))
        .collect();
    plot::lines(
        &dir.join("agreement.svg"),
        &format!("{}: closed proposals on which all nodes agree", r.name),
        "virtual time (s)",
        "share",
        &[
            ("agreed share".into(), agreed),
            ("nodes alive".into(), alive),
        ],
        Some((0.0, 1.05)),
        Legend::LowerRight,
    )?;
    Ok(())
}

fn sweep_output(path: &str, rows: &[(String, f64, Report)], out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let mut s = format!(
        "{path},seed,accuracy,escalation_rate,agreement_mean,agreement_full,divergences,equivocation_events,t_final_median_ms,bytes_sent_per_node,sync_bytes_per_node,stored_per_node,certified_share,escalated_share,contested_share,unsettled_share,cert_within_5s_share,t_cert_p50_ms,t_cert_p99_ms,certified_changes,finalized_changes\n"
    );
    let opt = |x: Option<u64>| x.map_or(String::new(), |v| v.to_string());
    for (v, _, r) in rows {
        s.push_str(&format!(
            "{v},{},{:.4},{:.4},{:.4},{:.4},{},{},{},{:.0},{:.0},{:.0},{:.4},{:.4},{:.4},{:.4},{:.4},{},{},{},{}\n",
            r.seed,
            r.accuracy,
            r.escalation_rate,
            r.agreement_mean,
            r.agreement_full,
            r.divergences,
            r.equivocation_events,
            opt(r.t_final_median_ms),
            r.bytes_sent_per_node,
            r.sync_bytes_per_node,
            r.stored_per_node,
            r.certified_share,
            r.escalated_share,
            r.contested_share,
            r.unsettled_share,
            r.cert_within_5s_share,
            opt(r.t_cert_p50_ms),
            opt(r.t_cert_p99_ms),
            r.certified_changes,
            r.finalized_changes
        ));
    }
    std::fs::write(out.join("sweep.csv"), s)?;
    let reports: Vec<&Report> = rows.iter().map(|r| &r.2).collect();
    std::fs::write(
        out.join("sweep.json"),
        serde_json::to_string_pretty(&reports)?,
    )?;
    // Average over seeds per value.
    let mut xs: Vec<f64> = rows.iter().map(|r| r.1).collect();
    xs.dedup();
    let avg = |f: &dyn Fn(&Report) -> f64| -> Vec<(f64, f64)> {
        xs.iter()
            .map(|&x| {
                let v: Vec<f64> = rows.iter().filter(|r| r.1 == x).map(|r| f(&r.2)).collect();
                (x, v.iter().sum::<f64>() / v.len().max(1) as f64)
            })
            .collect()
    };
    plot::lines(
        &out.join("sweep.svg"),
        &format!("sweep over {path}"),
        path,
        "share",
        &[
            ("accuracy (decided)".into(), avg(&|r| r.accuracy)),
            ("escalation rate".into(), avg(&|r| r.escalation_rate)),
            (
                "wrong decisions / all".into(),
                avg(&|r| {
                    let decided =
                        1.0 - r.escalation_rate - r.unresolved as f64 / r.proposals.max(1) as f64;
                    (1.0 - r.accuracy) * decided
                }),
            ),
            ("full agreement".into(), avg(&|r| r.agreement_full)),
            ("certified".into(), avg(&|r| r.certified_share)),
        ],
        Some((0.0, 1.05)),
        Legend::LowerRight,
    )?;
    Ok(())
}
