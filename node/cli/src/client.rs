//! The CLI's HTTP client of the node's sidecar API, and the human-readable
//! printing of its answers.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use acp_node::config::Config;
use acp_node::keys;
use acp_node::surface::api::types::{
    ErrorBody, ProposalDetail, ReceiptView, StreamEvent, SubmittedBody,
};
use acp_node::surface::view::{state_str, status_str};
use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A client of one node's `/v1` API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::blocking::Client,
}

impl ApiClient {
    /// A client of `base` (e.g. `http://127.0.0.1:7421`) with a bearer token.
    pub fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(None)
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            http,
        })
    }

    /// The client for a data directory: `url`/`token` when given, else the
    /// config's `http_addr` and `<dir>/api.token`.
    pub fn for_dir(dir: &Path, url: Option<&str>, token: Option<&str>) -> anyhow::Result<Self> {
        let base = match url {
            Some(u) => u.to_owned(),
            None => format!("http://{}", Config::load(dir)?.http_addr),
        };
        let token = match token {
            Some(t) => t.to_owned(),
            None => {
                let p = dir.join(keys::TOKEN_FILE);
                std::fs::read_to_string(&p)
                    .with_context(|| format!("reading the API token {}", p.display()))?
            }
        };
        Self::new(&base, &token)
    }

    /// The API's base address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether a node answers at the base address at all.
    pub fn reachable(&self) -> bool {
        self.http
            .get(format!("{}/v1/health", self.base))
            .timeout(Duration::from_secs(5))
            .send()
            .is_ok()
    }

    fn send(
        &self,
        rb: reqwest::blocking::RequestBuilder,
    ) -> anyhow::Result<reqwest::blocking::Response> {
        let r = rb
            .bearer_auth(&self.token)
            .send()
            .map_err(|e| anyhow!("node API {}: {}", self.base, e.without_url()))?;
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status();
        match r.json::<ErrorBody>() {
            Ok(ErrorBody { error }) => bail!("{} ({})", error.message, error.code),
            Err(_) => bail!("node API answered {status}"),
        }
    }

    /// GET a JSON document.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let r = self.send(self.http.get(format!("{}/v1{path}", self.base)))?;
        r.json()
            .with_context(|| format!("reading the answer to GET {path}"))
    }

    /// GET raw bytes.
    pub fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let r = self.send(self.http.get(format!("{}/v1{path}", self.base)))?;
        Ok(r.bytes()?.to_vec())
    }

    /// POST a JSON body.
    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        let r = self.send(self.http.post(format!("{}/v1{path}", self.base)).json(body))?;
        r.json()
            .with_context(|| format!("reading the answer to POST {path}"))
    }

    /// POST raw message bytes.
    pub fn post_bytes(&self, path: &str, bytes: Vec<u8>) -> anyhow::Result<SubmittedBody> {
        let r = self.send(
            self.http
                .post(format!("{}/v1{path}", self.base))
                .header("content-type", "application/octet-stream")
                .body(bytes),
        )?;
        r.json()
            .with_context(|| format!("reading the answer to POST {path}"))
    }

    /// Follows the event stream, calling `f(event)` for each event until `f`
    /// returns false or the stream ends. An event this client cannot read
    /// (from a newer node) is reported on stderr and skipped.
    pub fn watch(&self, mut f: impl FnMut(&StreamEvent) -> bool) -> anyhow::Result<()> {
        let r = self.send(self.http.get(format!("{}/v1/events", self.base)))?;
        let mut name = String::from("message");
        for line in BufReader::new(r).lines() {
            let line = line.context("reading the event stream")?;
            if let Some(n) = line.strip_prefix("event:") {
                name = n.trim().to_owned();
            } else if let Some(d) = line.strip_prefix("data:") {
                match StreamEvent::parse(&name, d.trim()) {
                    Ok(ev) => {
                        if !f(&ev) {
                            return Ok(());
                        }
                    }
                    Err(e) => eprintln!("skipped an event {name:?} this client cannot read: {e}"),
                }
            } else if line.is_empty() {
                name = String::from("message");
            }
        }
        Ok(())
    }
}

/// `0.90` from basis points.
pub fn conf(bps: u16) -> String {
    format!("{:.2}", f64::from(bps) / 10_000.0)
}

/// The first 12 hex digits of a key or id, for people.
pub fn short(v: &impl ToString) -> String {
    let s = v.to_string();
    s.get(..12).unwrap_or(&s).to_owned()
}

/// Prints a proposal answer (`GET /v1/proposals/{id}`) for people.
pub fn print_proposal(v: &ProposalDetail) {
    let pkg = &v.package;
    let p = &pkg.proposal;
    let orgs = pkg
        .policy
        .as_ref()
        .map(|p| p.organizations.as_slice())
        .unwrap_or_default();
    println!("proposal   {}", v.id);
    println!("action     {} {}", p.action.kind, p.action.payload);
    println!(
        "domain     {}   proposer {}   confidence {}   stakes {}",
        p.domain,
        short(&p.proposer),
        conf(p.confidence_bps),
        p.stakes
    );
    let reasons: Vec<String> = v.reasons.iter().map(name_of).collect();
    let f = &v.finality;
    println!(
        "status     {} ({}){}",
        status_str(v.status),
        state_str(f.state),
        if reasons.is_empty() {
            String::new()
        } else {
            format!("   reasons: {}", reasons.join(", "))
        }
    );
    println!("finality   {}", f.summary);
    if let Some(c) = &f.certificate {
        let names: Vec<&str> = c
            .organizations
            .iter()
            .map(|o| o.name.as_deref().unwrap_or("?"))
            .collect();
        println!(
            "certified  {} resolution {} by {}",
            status_str(c.status),
            short(&c.resolution),
            names.join(", ")
        );
    }
    for e in &f.equivocations {
        println!(
            "  attestor equivocation by {} (round {}): {} receipts",
            e.organization.name.as_deref().unwrap_or("?"),
            e.round,
            e.receipts.len()
        );
    }
    println!(
        "computed   {}{}",
        status_str(v.computed_status),
        if v.is_final {
            " (window closed)"
        } else {
            " (window open)"
        }
    );
    let t = &v.tally;
    println!(
        "tally      endorse {}  challenge {}  abstain {}  responded {}/{} of potential weight  margin {} bps",
        t.endorse,
        t.challenge,
        t.abstain,
        t.responded_potential,
        t.total_potential,
        pkg.policy
            .as_ref()
            .map_or_else(|| "?".to_owned(), |p| p.rules.quorum_margin_bps.to_string())
    );
    println!("resolution {}", v.resolution);
    for c in &pkg.counted {
        let vote = &c.vote;
        let org = orgs
            .get(usize::from(vote.organization))
            .map_or("?", |o| o.name.as_str());
        println!(
            "  {:<9} {} ({org})  confidence {}  authority {}  trust {}  weight {}",
            name_of(&vote.stance),
            short(&vote.responder),
            conf(vote.confidence_bps),
            conf(vote.authority_bps),
            conf(vote.trust_bps),
            vote.weight
        );
        let why = &c.response.reasoning;
        if !why.is_empty() {
            println!("            \"{why}\"");
        }
    }
    for x in &pkg.excluded {
        println!(
            "  not counted: {} {} ({})",
            short(&x.response.responder),
            name_of(&x.response.stance),
            name_of(&x.reason)
        );
    }
    for (_, h) in &pkg.human_decisions {
        println!(
            "  human {} {}: \"{}\"",
            short(&h.human),
            name_of(&h.verdict),
            h.rationale
        );
    }
    let mut receipts: Vec<&ReceiptView> = v.receipts.iter().collect();
    receipts.sort_by_key(|r| (r.round, r.node.to_string()));
    for r in receipts {
        println!(
            "  receipt by {} round {} {} resolution {} ({})",
            short(&r.node),
            r.round,
            status_str(r.status),
            short(&r.resolution),
            r.organization
                .as_ref()
                .and_then(|o| o.name.as_deref())
                .map_or_else(
                    || "counts for no organization".to_owned(),
                    |n| format!("attests for {n}")
                )
        );
    }
    let after = &f.after_certification;
    if !after.is_empty() {
        println!(
            "after certification ({} message(s), evidence only; the certified result stands):",
            after.len()
        );
        for id in after {
            println!("  {id}");
        }
    }
}

/// The API's name of a protocol enum value (its serde spelling).
pub fn name_of(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// One event of the stream as a line for people.
pub fn event_line(ev: &StreamEvent) -> String {
    let name = ev.name();
    match ev {
        StreamEvent::Proposal(d) => format!(
            "proposal  {} in {} by {}",
            d.id,
            d.domain,
            short(&d.proposer)
        ),
        StreamEvent::Response(d) => format!(
            "response  {} to {}: {} by {}",
            short(&d.id),
            d.proposal,
            name_of(&d.stance),
            short(&d.responder)
        ),
        StreamEvent::Decided(d) => format!(
            "{name:<9} {} {} resolution {}",
            d.proposal,
            status_str(d.status),
            short(&d.resolution)
        ),
        StreamEvent::Finalized(d) => format!(
            "{name:<9} {} {} resolution {}",
            d.proposal,
            status_str(d.status),
            short(&d.resolution)
        ),
        StreamEvent::Escalated(d) => {
            format!("escalated {} reasons {}", d.proposal, name_of(&d.reasons))
        }
        StreamEvent::Certified(d) => format!("{name:<9} {} {}", d.proposal, d.summary),
        StreamEvent::Contested(d) => format!("{name:<9} {} {}", d.proposal, d.summary),
        StreamEvent::AfterCertification(d) => format!(
            "late      {} {} {} after certification (evidence; the result stands)",
            d.proposal,
            name_of(&d.kind),
            short(&d.id)
        ),
        other => {
            let data = other.data_json().unwrap_or_default();
            format!("{name:<9} {data}")
        }
    }
}
