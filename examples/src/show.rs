//! Printing: where a scenario's output goes, and how ids, basis points,
//! weights, votes and node views are written.

use acp_protocol::resolve::DecisionPackage;
use acp_protocol::{BPS_ONE, ContentId, PublicKey, Stance};

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

/// What each node computed, one line per node.
pub fn views(out: &mut Out, views: &[NodeView]) {
    for v in views {
        out.line(format!(
            "    node {:<27} {:<9} resolution {}  counted {}  receipts {}",
            v.node,
            v.status,
            v.resolution.chars().skip(4).take(16).collect::<String>(),
            v.counted,
            v.receipts.len()
        ));
    }
}
