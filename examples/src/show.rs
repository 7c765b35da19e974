//! Printing: where a scenario's output goes, and how ids, basis points,
//! weights, votes, certificates and node views are written.

use acp_protocol::finality::State;
use acp_protocol::resolve::DecisionPackage;
use acp_protocol::{BPS_ONE, ContentId, PublicKey, Stance, Status};

use crate::net::NodeView;

/// Where a scenario writes: the terminal, or only a buffer (tests).
#[derive(Debug, Default)]
pub struct Out {
    echo: bool,
    /// Everything written so far.
    pub text: String,
}

impl Out {
    /// Writes to standard output (and keeps a copy).
    pub fn stdout() -> Self {
        Self {
            echo: true,
            text: String::new(),
        }
    }

    /// Keeps the text only.
    pub fn quiet() -> Self {
        Self::default()
    }

    /// Writes one line.
    pub fn line(&mut self, s: impl AsRef<str>) {
        let s = s.as_ref();
        if self.echo {
            println!("{s}");
        }
        self.text.push_str(s);
        self.text.push('\n');
    }
}

/// Agent and human names by key.
#[derive(Debug, Default, Clone)]
pub struct Names(Vec<(PublicKey, String)>);

impl Names {
    /// Adds a name.
    pub fn add(&mut self, key: PublicKey, name: &str) {
        self.0.push((key, name.to_owned()));
    }

    /// The name of a key (its short hex when unknown).
    pub fn of(&self, key: &PublicKey) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| key.short(), |(_, n)| n.clone())
    }
}

/// The first 12 hex digits of an id (after the multihash prefix).
pub fn id(id: &ContentId) -> String {
    id.to_string().chars().skip(4).take(12).collect()
}

/// Basis points as a fraction with two decimals ("0.85").
pub fn frac(bps: u16) -> String {
    format!("{:.2}", f64::from(bps) / f64::from(BPS_ONE))
}

/// A weight (`authority x confidence x trust`, three factors in basis
/// points) as a fraction with three decimals.
pub fn weight(w: u64) -> String {
    format!("{:.3}", w as f64 / 1e12)
}

/// A stance as a word.
pub fn stance(s: Stance) -> &'static str {
    match s {
        Stance::Endorse => "endorse",
        Stance::Challenge => "challenge",
        Stance::Abstain => "abstain",
    }
}

/// A status as the nodes name it.
pub fn status(s: Status) -> &'static str {
    acp_node::surface::view::status_str(s)
}

/// How far certification went, with `by` of the `of` organizations signing
/// the certificate in force.
pub fn certification(state: State, by: usize, of: u16) -> String {
    match state {
        State::Certified => format!("certified by {by} of {of} organizations"),
        State::Escalated => format!("escalation certified by {by} of {of} organizations"),
        State::Contested => "contested, no certificate".to_owned(),
        State::Provisional => "not certified".to_owned(),
    }
}

/// Each counted vote with its weight breakdown and reasoning, then the tally.
pub fn package(out: &mut Out, pkg: &DecisionPackage, names: &Names) {
    let org_name = |i: u16| {
        pkg.policy
            .as_ref()
            .and_then(|p| p.organizations.get(usize::from(i)))
            .map_or_else(|| format!("org {i}"), |o| o.name.clone())
    };
    for c in &pkg.counted {
        let v = &c.vote;
        out.line(format!(
            "    {:<27} {:<10} conf {}  authority {}  trust {}  weight {}  ({})",
            names.of(&v.responder),
            stance(v.stance),
            frac(v.confidence_bps),
            frac(v.authority_bps),
            frac(v.trust_bps),
            weight(v.weight),
            org_name(v.organization),
        ));
        out.line(format!("        \"{}\"", c.response.reasoning));
    }
    let t = &pkg.resolution.tally;
    out.line(format!(
        "    tally: endorse E = {}, challenge C = {}, participation {:.0}%",
        weight(t.endorse),
        weight(t.challenge),
        if t.total_potential == 0 {
            0.0
        } else {
            100.0 * t.responded_potential as f64 / t.total_potential as f64
        }
    ));
}

/// The certificate in force: which organizations' attestors signed what.
pub fn certificate(out: &mut Out, pkg: &DecisionPackage, names: &Names) {
    let f = &pkg.resolution.finality;
    let Some(c) = &f.certificate else {
        out.line(format!(
            "    certificate: none ({})",
            certification(f.state, 0, f.organizations)
        ));
        return;
    };
    let signers: Vec<String> = c
        .organizations
        .iter()
        .map(|i| {
            pkg.policy
                .as_ref()
                .and_then(|p| p.organizations.get(usize::from(*i)))
                .map_or_else(
                    || format!("org {i}"),
                    |o| format!("{} for {}", names.of(&o.attestor), o.name),
                )
        })
        .collect();
    let round = c.result.human_decision.as_ref().map_or_else(
        || "round 0, the votes".to_owned(),
        |h| format!("round 1, human decision {}", id(h)),
    );
    out.line(format!(
        "    certificate ({round}): {}, signed by the attestors of {} of {} organizations \
         (quorum {}): {}",
        status(c.result.status),
        c.organizations.len(),
        f.organizations,
        f.quorum,
        signers.join(", ")
    ));
}

/// What each node computed and the certificate it holds, one line per node.
pub fn views(out: &mut Out, views: &[NodeView]) {
    for v in views {
        let by = v.certificate.as_ref().map_or(0, |c| c.organizations);
        let round = v
            .certificate
            .as_ref()
            .and_then(|c| c.human_decision.as_ref())
            .map_or_else(String::new, |h| format!(" (round 1, decision {})", id(h)));
        out.line(format!(
            "    node {:<27} {:<10} {}{round}  resolution {}  counted {}  receipts {}",
            v.node,
            status(v.status),
            certification(v.state, by, v.organizations),
            id(&v.resolution),
            v.counted,
            v.receipts
        ));
    }
}
