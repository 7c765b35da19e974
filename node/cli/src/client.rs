//! The CLI's HTTP client of the node's sidecar API, and the human-readable
//! printing of its answers.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use acp_node::config::Config;
use acp_node::keys;
use anyhow::{Context, anyhow, bail};
use serde_json::Value;

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
        let body: Value = r.json().unwrap_or(Value::Null);
        match (
            body["error"]["code"].as_str(),
            body["error"]["message"].as_str(),
        ) {
            (Some(code), Some(msg)) => bail!("{msg} ({code})"),
            _ => bail!("node API answered {status}"),
        }
    }

    /// GET a JSON document.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let r = self.send(self.http.get(format!("{}/v1{path}", self.base)))?;
        Ok(r.json()?)
    }

    /// GET raw bytes.
    pub fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let r = self.send(self.http.get(format!("{}/v1{path}", self.base)))?;
        Ok(r.bytes()?.to_vec())
    }

    /// POST a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let r = self.send(self.http.post(format!("{}/v1{path}", self.base)).json(body))?;
        Ok(r.json()?)
    }

    /// POST raw message bytes.
    pub fn post_bytes(&self, path: &str, bytes: Vec<u8>) -> anyhow::Result<Value> {
        let r = self.send(
            self.http
                .post(format!("{}/v1{path}", self.base))
                .header("content-type", "application/octet-stream")
                .body(bytes),
        )?;
        Ok(r.json()?)
    }

    /// Follows the event stream, calling `f(event, data)` for each event
    /// until `f` returns false or the stream ends.
    pub fn watch(&self, mut f: impl FnMut(&str, &Value) -> bool) -> anyhow::Result<()> {
        let r = self.send(self.http.get(format!("{}/v1/events", self.base)))?;
        let mut name = String::from("message");
        for line in BufReader::new(r).lines() {
            let line = line.context("reading the event stream")?;
            if let Some(n) = line.strip_prefix("event:") {
                name = n.trim().to_owned();
            } else if let Some(d) = line.strip_prefix("data:") {
                let v: Value = serde_json::from_str(d.trim()).unwrap_or(Value::Null);
                if !f(&name, &v) {
                    return Ok(());
                }
            } else if line.is_empty() {
                name = String::from("message");
            }
        }
        Ok(())
    }
}

/// `0.9000` from basis points.
pub fn conf(bps: &Value) -> String {
    bps.as_u64()
        .map_or_else(|| "?".into(), |b| format!("{:.2}", b as f64 / 10_000.0))
}

/// The first 8 hex digits of a key or id, for people.
pub fn short(v: &Value) -> String {
    let s = v.as_str().unwrap_or("?");
    s.get(..12).unwrap_or(s).to_owned()
}

/// Prints a proposal answer (`GET /v1/proposals/{id}`) for people.
pub fn print_proposal(v: &Value) {
    let pkg = &v["package"];
    let p = &pkg["proposal"];
    let orgs = pkg["policy"]["organizations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    println!("proposal   {}", v["id"].as_str().unwrap_or("?"));
    println!(
        "action     {} {}",
        p["action"]["kind"].as_str().unwrap_or("?"),
        p["action"]["payload"].as_str().unwrap_or("")
    );
    println!(
        "domain     {}   proposer {}   confidence {}   stakes {}",
        p["domain"].as_str().unwrap_or("?"),
        short(&p["proposer"]),
        conf(&p["confidence_bps"]),
        p["stakes"]
    );
    let reasons: Vec<&str> = v["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let f = &v["finality"];
    println!(
        "status     {} ({}){}",
        v["status"].as_str().unwrap_or("?"),
        f["state"].as_str().unwrap_or("?"),
        if reasons.is_empty() {
            String::new()
        } else {
            format!("   reasons: {}", reasons.join(", "))
        }
    );
    println!("finality   {}", f["summary"].as_str().unwrap_or("?"));
    if let Some(c) = f["certificate"].as_object() {
        let names: Vec<&str> = c["organizations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| o["name"].as_str().unwrap_or("?"))
            .collect();
        println!(
            "certified  {} resolution {} by {}",
            c["status"].as_str().unwrap_or("?"),
            short(&c["resolution"]),
            names.join(", ")
        );
    }
    for e in f["equivocations"].as_array().into_iter().flatten() {
        println!(
            "  attestor equivocation by {} (round {}): {} receipts",
            e["organization"]["name"].as_str().unwrap_or("?"),
            e["round"],
            e["receipts"].as_array().map_or(0, Vec::len)
        );
    }
    println!(
        "computed   {}{}",
        v["computed_status"].as_str().unwrap_or("?"),
        if v["final"] == true {
            " (window closed)"
        } else {
            " (window open)"
        }
    );
    let t = &v["tally"];
    println!(
        "tally      endorse {}  challenge {}  abstain {}  responded {}/{} of potential weight  margin {} bps",
        t["endorse"],
        t["challenge"],
        t["abstain"],
        t["responded_potential"],
        t["total_potential"],
        pkg["policy"]["rules"]["quorum_margin_bps"]
    );
    println!("resolution {}", v["resolution"].as_str().unwrap_or("?"));
    for c in pkg["counted"].as_array().into_iter().flatten() {
        let vote = &c["vote"];
        let org = vote["organization"]
            .as_u64()
            .and_then(|i| orgs.get(usize::try_from(i).ok()?))
            .and_then(|o| o["name"].as_str())
            .unwrap_or("?");
        println!(
            "  {:<9} {} ({org})  confidence {}  authority {}  trust {}  weight {}",
            vote["stance"].as_str().unwrap_or("?"),
            short(&vote["responder"]),
            conf(&vote["confidence_bps"]),
            conf(&vote["authority_bps"]),
            conf(&vote["trust_bps"]),
            vote["weight"]
        );
        let why = c["response"]["reasoning"].as_str().unwrap_or("");
        if !why.is_empty() {
            println!("            \"{why}\"");
        }
    }
    for x in pkg["excluded"].as_array().into_iter().flatten() {
        println!(
            "  not counted: {} {} ({})",
            short(&x["response"]["responder"]),
            x["response"]["stance"].as_str().unwrap_or("?"),
            x["reason"].as_str().unwrap_or("?")
        );
    }
    for h in pkg["human_decisions"].as_array().into_iter().flatten() {
        println!(
            "  human {} {}: \"{}\"",
            short(&h[1]["human"]),
            h[1]["verdict"].as_str().unwrap_or("?"),
            h[1]["rationale"].as_str().unwrap_or("")
        );
    }
    let mut receipts: Vec<&Value> = v["receipts"].as_array().into_iter().flatten().collect();
    receipts.sort_by_key(|r| (r["round"].as_u64(), r["node"].as_str()));
    for r in receipts {
        println!(
            "  receipt by {} round {} {} resolution {} ({})",
            short(&r["node"]),
            r["round"],
            r["status"].as_str().unwrap_or("?"),
            short(&r["resolution"]),
            r["organization"]["name"].as_str().map_or_else(
                || "counts for no organization".to_owned(),
                |n| format!("attests for {n}")
            )
        );
    }
    let after = f["after_certification"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !after.is_empty() {
        println!(
            "after certification ({} message(s), evidence only; the certified result stands):",
            after.len()
        );
        for id in after {
            println!("  {}", id.as_str().unwrap_or("?"));
        }
    }
}

/// One event of the stream as a line for people.
pub fn event_line(name: &str, d: &Value) -> String {
    match name {
        "proposal" => format!(
            "proposal  {} in {} by {}",
            d["id"].as_str().unwrap_or("?"),
            d["domain"].as_str().unwrap_or("?"),
            short(&d["proposer"])
        ),
        "response" => format!(
            "response  {} to {}: {} by {}",
            short(&d["id"]),
            d["proposal"].as_str().unwrap_or("?"),
            d["stance"].as_str().unwrap_or("?"),
            short(&d["responder"])
        ),
        "decided" | "finalized" => format!(
            "{name:<9} {} {} resolution {}",
            d["proposal"].as_str().unwrap_or("?"),
            d["status"].as_str().unwrap_or("?"),
            short(&d["resolution"])
        ),
        "escalated" => format!(
            "escalated {} reasons {}",
            d["proposal"].as_str().unwrap_or("?"),
            d["reasons"]
        ),
        "certified" | "contested" => format!(
            "{name:<9} {} {}",
            d["proposal"].as_str().unwrap_or("?"),
            d["summary"].as_str().unwrap_or("?")
        ),
        "after_certification" => format!(
            "late      {} {} {} after certification (evidence; the result stands)",
            d["proposal"].as_str().unwrap_or("?"),
            d["kind"].as_str().unwrap_or("?"),
            short(&d["id"])
        ),
        other => format!("{other:<9} {d}"),
    }
}
