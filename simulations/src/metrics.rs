//! Metrics computed from a finished [`World`], and their CSV/JSON output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use acp_protocol::{Stance, Status};
use serde::Serialize;

use crate::world::{Class, Sample, TrustPoint, World};

/// One proposal's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct ProposalRow {
    /// Index.
    pub idx: usize,
    /// Domain index.
    pub domain: usize,
    /// Round.
    pub round: usize,
    /// Hidden truth.
    pub good: bool,
    /// Final status on the domain's reference node.
    pub status: String,
    /// Approved-and-good or rejected-and-bad.
    pub correct: bool,
    /// Share of node pairs with the same final digest.
    pub agreement: f64,
    /// Median time from creation to finalization over nodes, ms.
    pub t_final_ms: Option<u64>,
    /// Earliest decision announcement, ms after creation.
    pub t_decided_ms: Option<u64>,
    /// Decided before `closes_at`.
    pub early: bool,
    /// Divergence events over all nodes.
    pub divergences: u32,
    /// Escalation reasons.
    pub reasons: String,
}

/// Per-round aggregates.
#[derive(Clone, Debug, Serialize)]
pub struct RoundRow {
    /// Round.
    pub round: usize,
    /// Proposals.
    pub proposals: usize,
    /// Correct / decided.
    pub accuracy: f64,
    /// Escalated / all.
    pub escalation_rate: f64,
    /// Mean agreement.
    pub agreement: f64,
    /// Share of decisive (pre-cap) weight held by each class.
    pub weight_share: BTreeMap<String, f64>,
    /// Proposals whose outcome the class swung (removing its votes changes it).
    pub swings: BTreeMap<String, usize>,
    /// Mean trust of each class at the round's start (domain 0).
    pub mean_trust: BTreeMap<String, f64>,
}

/// The whole result of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Scenario name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// Agents.
    pub agents: usize,
    /// Nodes.
    pub nodes: usize,
    /// Domains.
    pub domains: usize,
    /// Proposals created.
    pub proposals: usize,
    /// Decided proposals that match the ground truth / decided.
    pub accuracy: f64,
    /// Escalated / all.
    pub escalation_rate: f64,
    /// Never final on the reference node.
    pub unresolved: usize,
    /// Mean pairwise agreement over proposals.
    pub agreement_mean: f64,
    /// Share of proposals on which every node agrees.
    pub agreement_full: f64,
    /// Median time to final resolution, ms after creation.
    pub t_final_median_ms: Option<u64>,
    /// 95th percentile.
    pub t_final_p95_ms: Option<u64>,
    /// Median time to the first decision announcement (early decisions count).
    pub t_decided_median_ms: Option<u64>,
    /// Time to full agreement and equal sets after each heal.
    pub convergence_ms: Vec<Option<u64>>,
    /// Mean gossip messages sent per node.
    pub msgs_sent_per_node: f64,
    /// Mean gossip bytes sent per node.
    pub bytes_sent_per_node: f64,
    /// Mean anti-entropy bytes per node.
    pub sync_bytes_per_node: f64,
    /// Mean messages stored per node.
    pub stored_per_node: f64,
    /// Divergence events (all nodes).
    pub divergences: u64,
    /// Equivocation events (all nodes).
    pub equivocation_events: u64,
    /// Receipt mismatches (all nodes).
    pub receipt_mismatches: u64,
    /// Rejected messages (all nodes).
    pub rejected: u64,
    /// Responses signed by agents.
    pub responses_signed: u64,
    /// Engine ingests (all nodes).
    pub ingests: u64,
    /// Events processed.
    pub events: u64,
    /// Wall time of the run.
    pub wall_ms: u64,
    /// Events per wall second.
    pub events_per_s: f64,
    /// Peak resident memory of the process (kB), from `/proc/self/status`.
    pub peak_rss_kb: Option<u64>,
    /// Trace hash (determinism).
    pub trace: String,
    /// Per-round rows.
    pub rounds: Vec<RoundRow>,
    /// Per-proposal rows.
    #[serde(skip)]
    pub proposal_rows: Vec<ProposalRow>,
    /// Agreement over time.
    #[serde(skip)]
    pub samples: Vec<Sample>,
    /// Trust per class per round.
    #[serde(skip)]
    pub trust: Vec<TrustPoint>,
}

fn beats(e: u64, c: u64, m: u16) -> bool {
    let (e, c, m) = (u128::from(e), u128::from(c), u128::from(m));
    10_000 * e > 10_000 * c + m * (e + c)
}

fn outcome(e: u64, c: u64, m: u16) -> i8 {
    if beats(e, c, m) {
        1
    } else if beats(c, e, m) {
        -1
    } else {
        0
    }
}

fn percentile(v: &mut [u64], q: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    Some(v[i])
}

/// Peak resident set size of this process in kB (Linux).
pub fn peak_rss_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl Report {
    /// Compute the report of a finished world.
    pub fn of(w: &World, seed: u64, wall_ms: u64) -> Self {
        let margin = w.sc.rules.quorum_margin_bps;
        let mut rows = Vec::new();
        let mut finals = Vec::new();
        let mut decideds = Vec::new();
        // Per round: (count, decided, correct, escalated, agreement sum, weights, swings)
        type Acc = (
            usize,
            usize,
            usize,
            usize,
            f64,
            BTreeMap<Class, u128>,
            u128,
            BTreeMap<Class, usize>,
        );
        let mut per_round: BTreeMap<usize, Acc> = BTreeMap::new();
        for (p, info) in w.proposals.iter().enumerate() {
            let agreement = w.agreement(p);
            let nodes = w.domain_nodes(info.domain);
            let mut tf: Vec<u64> = nodes
                .iter()
                .filter_map(|&n| w.nodes[n].views.get(p).copied().flatten())
                .filter(|v| v.first_final_us != u64::MAX)
                .map(|v| (v.first_final_us - info.created_us) / 1_000)
                .collect();
            let t_final = percentile(&mut tf, 0.5);
            let t_decided = nodes
                .iter()
                .filter_map(|&n| w.nodes[n].views.get(p).copied().flatten())
                .filter_map(|v| v.decided_us)
                .min()
                .map(|t| (t - info.created_us) / 1_000);
            if let Some(t) = t_final {
                finals.push(t);
            }
            if let Some(t) = t_decided {
                decideds.push(t);
            }
            let status = info.reference.as_ref().map(|r| r.status).or_else(|| {
                nodes
                    .iter()
                    .filter_map(|&n| w.nodes[n].views.get(p).copied().flatten())
                    .find(|v| v.first_final_us != u64::MAX)
                    .map(|v| v.status)
            });
            let correct = matches!(
                (status, info.good),
                (Some(Status::Approved), true) | (Some(Status::Rejected), false)
            );
            let acc = per_round.entry(info.round).or_default();
            acc.0 += 1;
            acc.4 += agreement;
            match status {
                Some(Status::Approved | Status::Rejected) => {
                    acc.1 += 1;
                    acc.2 += usize::from(correct);
                }
                Some(Status::Escalated) => acc.3 += 1,
                _ => {}
            }
            if let Some(r) = &info.reference {
                let mut by_class: BTreeMap<Class, (u64, u64)> = BTreeMap::new();
                for v in &r.votes {
                    let Some(a) = w.agent_of(&v.responder) else {
                        continue;
                    };
                    let e = by_class.entry(w.agents[a].class).or_default();
                    match v.stance {
                        Stance::Endorse => e.0 += v.weight,
                        Stance::Challenge => e.1 += v.weight,
                        Stance::Abstain => {}
                    }
                }
                let (te, tc) = (r.tally.endorse, r.tally.challenge);
                let with = outcome(te, tc, margin);
                for (c, (e, ch)) in &by_class {
                    *acc.5.entry(*c).or_default() += u128::from(e + ch);
                    acc.6 += u128::from(e + ch);
                    let without = outcome(te.saturating_sub(*e), tc.saturating_sub(*ch), margin);
                    if without != with {
                        *acc.7.entry(*c).or_default() += 1;
                    }
                }
            }
            rows.push(ProposalRow {
                idx: p,
                domain: info.domain,
                round: info.round,
                good: info.good,
                status: status.map_or("none".into(), |s| format!("{s:?}").to_lowercase()),
                correct,
                agreement,
                t_final_ms: t_final,
                t_decided_ms: t_decided,
                early: t_decided.is_some_and(|t| t < w.sc.proposals.window_ms),
                divergences: info.divergences,
                reasons: info.reference.as_ref().map_or(String::new(), |r| {
                    r.reasons
                        .iter()
                        .map(|x| format!("{x:?}"))
                        .collect::<Vec<_>>()
                        .join("+")
                }),
            });
        }
        let rounds: Vec<RoundRow> = per_round
            .into_iter()
            .map(|(round, a)| RoundRow {
                round,
                proposals: a.0,
                accuracy: if a.1 == 0 {
                    0.0
                } else {
                    a.2 as f64 / a.1 as f64
                },
                escalation_rate: a.3 as f64 / a.0.max(1) as f64,
                agreement: a.4 / a.0.max(1) as f64,
                weight_share: a
                    .5
                    .iter()
                    .map(|(c, x)| (c.name().to_owned(), *x as f64 / a.6.max(1) as f64))
                    .collect(),
                swings: a.7.iter().map(|(c, x)| (c.name().to_owned(), *x)).collect(),
                mean_trust: w
                    .trust
                    .iter()
                    .filter(|t| t.round == round)
                    .map(|t| (t.class.name().to_owned(), t.mean_trust_bps))
                    .collect(),
            })
            .collect();
        let n = rows.len().max(1) as f64;
        let decided = rows
            .iter()
            .filter(|r| r.status == "approved" || r.status == "rejected")
            .count();
        let nn = w.nodes.len() as f64;
        let sum = |f: &dyn Fn(&crate::world::NodeStats) -> u64| -> u64 {
            w.nodes.iter().map(|x| f(&x.stats)).sum()
        };
        Report {
            name: w.sc.name.clone(),
            seed,
            agents: w.agents.len(),
            nodes: w.nodes.len(),
            domains: w.sc.topology.domains,
            proposals: rows.len(),
            accuracy: if decided == 0 {
                0.0
            } else {
                rows.iter().filter(|r| r.correct).count() as f64 / decided as f64
            },
            escalation_rate: rows.iter().filter(|r| r.status == "escalated").count() as f64 / n,
            unresolved: rows
                .iter()
                .filter(|r| r.status == "none" || r.status == "pending")
                .count(),
            agreement_mean: rows.iter().map(|r| r.agreement).sum::<f64>() / n,
            agreement_full: rows.iter().filter(|r| r.agreement >= 1.0).count() as f64 / n,
            t_final_median_ms: percentile(&mut finals.clone(), 0.5),
            t_final_p95_ms: percentile(&mut finals, 0.95),
            t_decided_median_ms: percentile(&mut decideds, 0.5),
            convergence_ms: w.convergence_ms.clone(),
            msgs_sent_per_node: sum(&|s| s.msgs_sent) as f64 / nn,
            bytes_sent_per_node: sum(&|s| s.bytes_sent) as f64 / nn,
            sync_bytes_per_node: sum(&|s| s.sync_bytes) as f64 / nn,
            stored_per_node: w.nodes.iter().map(|x| x.stored() as f64).sum::<f64>() / nn,
            divergences: w.proposals.iter().map(|p| u64::from(p.divergences)).sum(),
            equivocation_events: w.equivocation_events,
            receipt_mismatches: w.receipt_mismatches,
            rejected: sum(&|s| s.rejected),
            responses_signed: w.responses_signed,
            ingests: w.ingests,
            events: w.events,
            wall_ms,
            events_per_s: w.events as f64 / (wall_ms.max(1) as f64 / 1_000.0),
            peak_rss_kb: peak_rss_kb(),
            trace: format!("{:016x}", w.trace_hash()),
            rounds,
            proposal_rows: rows,
            samples: w.samples.clone(),
            trust: w.trust.clone(),
        }
    }

    /// Write `summary.json`, `proposals.csv`, `rounds.csv`, `nodes.csv`,
    /// `timeline.csv` and `trust.csv` into `dir`.
    pub fn write(&self, w: &World, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("summary.json"),
            serde_json::to_string_pretty(self)?,
        )?;
        let mut s = String::from(
            "idx,domain,round,good,status,correct,agreement,t_final_ms,t_decided_ms,early,divergences,reasons\n",
        );
        for r in &self.proposal_rows {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{:.4},{},{},{},{},{}",
                r.idx,
                r.domain,
                r.round,
                r.good,
                r.status,
                r.correct,
                r.agreement,
                r.t_final_ms.map_or(String::new(), |x| x.to_string()),
                r.t_decided_ms.map_or(String::new(), |x| x.to_string()),
                r.early,
                r.divergences,
                r.reasons
            );
        }
        std::fs::write(dir.join("proposals.csv"), s)?;
        let mut s = String::from("round,proposals,accuracy,escalation_rate,agreement");
        for c in Class::ALL {
            let _ = write!(s, ",share_{0},swings_{0},trust_{0}", c.name());
        }
        s.push('\n');
        for r in &self.rounds {
            let _ = write!(
                s,
                "{},{},{:.4},{:.4},{:.4}",
                r.round, r.proposals, r.accuracy, r.escalation_rate, r.agreement
            );
            for c in Class::ALL {
                let k = c.name();
                let _ = write!(
                    s,
                    ",{:.4},{},{}",
                    r.weight_share.get(k).copied().unwrap_or(0.0),
                    r.swings.get(k).copied().unwrap_or(0),
                    r.mean_trust
                        .get(k)
                        .map_or(String::new(), |t| format!("{t:.0}"))
                );
            }
            s.push('\n');
        }
        std::fs::write(dir.join("rounds.csv"), s)?;
        let mut s = String::from(
            "node,domain,skew_ms,msgs_sent,bytes_sent,msgs_recv,bytes_recv,sync_bytes,sync_msgs,duplicates,rejected,future,stored\n",
        );
        for (i, n) in w.nodes.iter().enumerate() {
            let st = &n.stats;
            let _ = writeln!(
                s,
                "{i},{},{},{},{},{},{},{},{},{},{},{},{}",
                n.domain,
                n.skew_ms,
                st.msgs_sent,
                st.bytes_sent,
                st.msgs_recv,
                st.bytes_recv,
                st.sync_bytes,
                st.sync_msgs,
                st.duplicates,
                st.rejected,
                st.future,
                n.stored()
            );
        }
        std::fs::write(dir.join("nodes.csv"), s)?;
        let mut s = String::from("t_ms,agreed_share,sets_equal,alive\n");
        for x in &self.samples {
            let _ = writeln!(
                s,
                "{},{:.4},{},{}",
                x.t_ms,
                x.agreed_share,
                x.sets_equal.map_or(String::new(), |b| b.to_string()),
                x.alive
            );
        }
        std::fs::write(dir.join("timeline.csv"), s)?;
        let mut s = String::from("round,class,mean_trust_bps\n");
        for t in &self.trust {
            let _ = writeln!(s, "{},{},{:.1}", t.round, t.class.name(), t.mean_trust_bps);
        }
        std::fs::write(dir.join("trust.csv"), s)?;
        Ok(())
    }

    /// A short table for the terminal.
    pub fn table(&self) -> String {
        let opt = |x: Option<u64>| x.map_or("-".into(), |v| format!("{v} ms"));
        let conv: Vec<String> = self
            .convergence_ms
            .iter()
            .map(|c| c.map_or("not reached".into(), |v| format!("{v} ms")))
            .collect();
        let rows: Vec<(&str, String)> = vec![
            ("scenario", format!("{} (seed {})", self.name, self.seed)),
            (
                "size",
                format!(
                    "{} agents, {} nodes, {} domains, {} proposals",
                    self.agents, self.nodes, self.domains, self.proposals
                ),
            ),
            ("accuracy (decided)", format!("{:.3}", self.accuracy)),
            ("escalation rate", format!("{:.3}", self.escalation_rate)),
            ("unresolved", self.unresolved.to_string()),
            (
                "agreement mean / full",
                format!("{:.4} / {:.4}", self.agreement_mean, self.agreement_full),
            ),
            ("time to decision (median)", opt(self.t_decided_median_ms)),
            (
                "time to final (median / p95)",
                format!(
                    "{} / {}",
                    opt(self.t_final_median_ms),
                    opt(self.t_final_p95_ms)
                ),
            ),
            (
                "convergence after heal",
                if conv.is_empty() {
                    "-".into()
                } else {
                    conv.join(", ")
                },
            ),
            (
                "gossip per node",
                format!(
                    "{:.0} msgs, {:.1} MB (+{:.1} MB sync)",
                    self.msgs_sent_per_node,
                    self.bytes_sent_per_node / 1e6,
                    self.sync_bytes_per_node / 1e6
                ),
            ),
            (
                "stored per node",
                format!("{:.0} msgs", self.stored_per_node),
            ),
            (
                "divergence / equivocation / mismatch",
                format!(
                    "{} / {} / {}",
                    self.divergences, self.equivocation_events, self.receipt_mismatches
                ),
            ),
            ("rejected", self.rejected.to_string()),
            (
                "run",
                format!(
                    "{} events in {:.2} s ({:.0} ev/s), peak RSS {} MB",
                    self.events,
                    self.wall_ms as f64 / 1e3,
                    self.events_per_s,
                    self.peak_rss_kb
                        .map_or("?".into(), |k| (k / 1024).to_string())
                ),
            ),
            ("trace", self.trace.clone()),
        ];
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let mut s = String::new();
        for (k, v) in rows {
            let _ = writeln!(s, "  {k:<width$}  {v}");
        }
        s
    }
}
