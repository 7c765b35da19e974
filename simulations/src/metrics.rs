//! Metrics computed from a finished [`World`], and their CSV/JSON output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use acp_protocol::{Stance, Status};
use serde::Serialize;

use acp_protocol::finality::State;

use crate::error::SimError;
use crate::world::{Class, Micros, Sample, TrustPoint, View, World};

/// A proposal's finality over the live honest nodes of its domain.
fn end_state(live: &[&View]) -> &'static str {
    let name = |s: Option<State>| match s {
        Some(State::Certified) => "certified",
        Some(State::Escalated) => "escalated",
        Some(State::Contested) => "contested",
        Some(State::Provisional) | None => "provisional",
    };
    let mut states = live.iter().map(|v| name(v.end_state));
    match states.next() {
        Some(first) if states.all(|s| s == first) => first,
        Some(_) => "split",
        None => "provisional",
    }
}

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
    /// Finality at the end on the live honest nodes: `certified`,
    /// `escalated`, `contested`, `provisional` when all agree, else `split`.
    pub finality: &'static str,
    /// Time from `closes_at` until the last live honest node saw a
    /// certificate, ms (none if one never did).
    pub t_cert_all_ms: Option<u64>,
    /// Certificate changes after certification, over honest nodes.
    pub cert_changes: u32,
    /// Finalized-result changes after finalization, over honest nodes.
    pub final_changes: u32,
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
    /// Times an honest node's certificate for a proposal changed after it
    /// first saw one (certified results changed after certification).
    /// Certified finality promises 0.
    pub certified_changes: u64,
    /// Times an honest node's finalized (status, digest) changed after it
    /// first finalized: the v0.1 notion of final, kept for contrast.
    pub finalized_changes: u64,
    /// Proposals certified (a decided result) at every live honest node of
    /// their domain at the end of the run.
    pub certified_share: f64,
    /// Proposals whose round 0 certified an escalation at every live honest node.
    pub escalated_share: f64,
    /// Proposals contested at every live honest node.
    pub contested_share: f64,
    /// The rest: provisional somewhere, or in different states on different nodes.
    pub unsettled_share: f64,
    /// Median time from `closes_at` until an honest node first saw a
    /// certificate (decided or escalation), over nodes and proposals.
    pub t_cert_p50_ms: Option<u64>,
    /// 99th percentile.
    pub t_cert_p99_ms: Option<u64>,
    /// Proposals every live honest node saw certified (decided or escalation)
    /// by `closes_at` + 5 s.
    pub cert_within_5s_share: f64,
    /// Attestor equivocation events (all nodes).
    pub attestor_equivocations: u64,
    /// Responses and decisions that arrived after certification (all nodes).
    pub after_certification: u64,
    /// Valid messages refused by admission (all nodes).
    pub refused: u64,
    /// Valid messages that waited for their policy or proposal (all nodes).
    pub pending: u64,
    /// Messages received by `Effect::Fetch` requests (all nodes).
    pub fetched: u64,
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
    /// Every (honest node, proposal) time to certificate, ms, for pooling
    /// percentiles over runs.
    #[serde(skip)]
    pub t_cert_samples: Vec<u64>,
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

/// Certificates should form within this long after `closes_at`.
pub const CERT_TARGET_MS: u64 = 5_000;

/// The `q`-quantile (nearest rank) of `v`, sorting it.
pub fn percentile(v: &mut [u64], q: f64) -> Option<u64> {
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
        let mut t_cert = Vec::new();
        let mut settled: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut within = 0usize;
        for (p, info) in w.proposals.iter().enumerate() {
            let agreement = w.agreement(p);
            let nodes = w.domain_nodes(info.domain);
            let honest: Vec<(usize, View)> = nodes
                .iter()
                .filter(|&&n| w.nodes[n].honest())
                .map(|&n| {
                    let v = w.nodes[n].views.get(p).copied().flatten();
                    (n, v.unwrap_or_else(View::empty))
                })
                .collect();
            let since_close = |t: Micros| t.saturating_sub(info.close_us) / 1_000;
            t_cert.extend(
                honest
                    .iter()
                    .filter_map(|(_, v)| v.cert_us.map(since_close)),
            );
            let live: Vec<&View> = honest
                .iter()
                .filter(|(n, _)| w.nodes[*n].alive())
                .map(|(_, v)| v)
                .collect();
            let finality = end_state(&live);
            *settled.entry(finality).or_default() += 1;
            let t_cert_all = live
                .iter()
                .map(|v| v.cert_us.map(since_close))
                .collect::<Option<Vec<u64>>>()
                .and_then(|ts| ts.into_iter().max());
            within += usize::from(t_cert_all.is_some_and(|t| t <= CERT_TARGET_MS));
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
            let status = info
                .reference
                .as_ref()
                .map(|r| r.final_status())
                .or_else(|| {
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
                finality,
                t_cert_all_ms: t_cert_all,
                cert_changes: honest.iter().map(|(_, v)| v.cert_changes).sum(),
                final_changes: honest.iter().map(|(_, v)| v.final_changes).sum(),
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
        let share = |k: &str| settled.get(k).copied().unwrap_or(0) as f64 / n;
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
            certified_changes: rows.iter().map(|r| u64::from(r.cert_changes)).sum(),
            finalized_changes: rows.iter().map(|r| u64::from(r.final_changes)).sum(),
            certified_share: share("certified"),
            escalated_share: share("escalated"),
            contested_share: share("contested"),
            unsettled_share: share("provisional") + share("split"),
            t_cert_p50_ms: percentile(&mut t_cert, 0.5),
            t_cert_p99_ms: percentile(&mut t_cert, 0.99),
            cert_within_5s_share: within as f64 / n,
            attestor_equivocations: w.attestor_equivocations,
            after_certification: w.after_certification,
            refused: sum(&|s| s.refused),
            pending: sum(&|s| s.pending),
            fetched: sum(&|s| s.fetched),
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
            t_cert_samples: t_cert,
            samples: w.samples.clone(),
            trust: w.trust.clone(),
        }
    }

    /// Write `summary.json`, `proposals.csv`, `rounds.csv`, `nodes.csv`,
    /// `timeline.csv` and `trust.csv` into `dir`.
    pub fn write(&self, w: &World, dir: &Path) -> Result<(), SimError> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("summary.json"),
            serde_json::to_string_pretty(self)?,
        )?;
        let mut s = String::from(
            "idx,domain,round,good,status,correct,agreement,t_final_ms,t_decided_ms,early,divergences,reasons,finality,t_cert_all_ms,cert_changes,final_changes\n",
        );
        for r in &self.proposal_rows {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{:.4},{},{},{},{},{},{},{},{},{}",
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
                r.reasons,
                r.finality,
                r.t_cert_all_ms.map_or(String::new(), |x| x.to_string()),
                r.cert_changes,
                r.final_changes
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
            "node,domain,honest,skew_ms,msgs_sent,bytes_sent,msgs_recv,bytes_recv,sync_bytes,sync_msgs,fetched,duplicates,rejected,refused,pending,future,stored\n",
        );
        for (i, n) in w.nodes.iter().enumerate() {
            let st = &n.stats;
            let _ = writeln!(
                s,
                "{i},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                n.domain,
                n.honest(),
                n.skew_ms,
                st.msgs_sent,
                st.bytes_sent,
                st.msgs_recv,
                st.bytes_recv,
                st.sync_bytes,
                st.sync_msgs,
                st.fetched,
                st.duplicates,
                st.rejected,
                st.refused,
                st.pending,
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
                "certified / escalated / contested",
                format!(
                    "{:.3} / {:.3} / {:.3} (unsettled {:.3})",
                    self.certified_share,
                    self.escalated_share,
                    self.contested_share,
                    self.unsettled_share
                ),
            ),
            (
                "time to certificate (p50 / p99)",
                format!("{} / {}", opt(self.t_cert_p50_ms), opt(self.t_cert_p99_ms)),
            ),
            (
                "certified by close + 5 s",
                format!("{:.3}", self.cert_within_5s_share),
            ),
            (
                "changed after certification",
                self.certified_changes.to_string(),
            ),
            (
                "changed after finalization (v0.1)",
                self.finalized_changes.to_string(),
            ),
            (
                "divergence / equivocation / mismatch",
                format!(
                    "{} / {} / {}",
                    self.divergences, self.equivocation_events, self.receipt_mismatches
                ),
            ),
            (
                "attestor equivocation / after cert.",
                format!(
                    "{} / {}",
                    self.attestor_equivocations, self.after_certification
                ),
            ),
            (
                "rejected / refused / pending",
                format!("{} / {} / {}", self.rejected, self.refused, self.pending),
            ),
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
