//! `acp mcp`: a Model Context Protocol server over stdio.
//!
//! A thin client of the node's sidecar HTTP API ([`ApiClient`]): every tool
//! is one or a few `/v1` calls, signed by the node's keys exactly as the CLI's
//! commands are. Tool failures (a bad id, an unknown proposal, a rejected
//! message, an unreachable node) come back as tool results with `isError`
//! set and a one-line message carrying the API's error code, so the calling
//! agent can read and act on them.

use std::str::FromStr;
use std::time::{Duration, Instant};

use acp_node::surface::api::types::{
    DEFAULT_WINDOW_MS, NewOutcome, NewProposal, NewResponse, ProposalDetail, ProposalList,
    SubmittedBody, TrustTable,
};
use acp_protocol::ContentId;
use acp_protocol::finality::State;
use acp_protocol::{Outcome, Stance, Status};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::schemars::JsonSchema;
use rmcp::{ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::ApiClient;

/// The longest `wait_for_resolution` may block, in seconds.
pub const MAX_WAIT_SECS: u64 = 300;
const DEFAULT_WAIT_SECS: u64 = 30;
const POLL: Duration = Duration::from_millis(250);

/// Parameters of `propose`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ProposeParams {
    /// Domain, e.g. `loans.approval`.
    pub domain: String,
    /// Action kind, e.g. `loan.approve`.
    pub kind: String,
    /// Action payload: any JSON value (a string is used verbatim, anything
    /// else as its compact JSON text).
    #[serde(default)]
    pub payload: Option<Value>,
    /// Proposer confidence in [0, 1] (default 1).
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Stakes, compared with the policy's high-stakes threshold (default 0).
    #[serde(default)]
    pub stakes: Option<u64>,
    /// Evidence references.
    #[serde(default)]
    pub evidence: Option<Vec<String>>,
    /// Responses close this many milliseconds from now (default 60000).
    #[serde(default)]
    pub closes_in_ms: Option<u64>,
    /// Policy id; default: the newest policy the node holds for the domain.
    #[serde(default)]
    pub policy: Option<String>,
    /// Id of a proposal this one replaces.
    #[serde(default)]
    pub supersedes: Option<String>,
}

/// A stance on a proposal.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum StanceParam {
    /// For.
    Endorse,
    /// Against.
    Challenge,
    /// Neither; counts towards participation only.
    Abstain,
}

/// Parameters of `respond`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct RespondParams {
    /// Proposal id (`1220…`).
    pub proposal: String,
    /// `endorse`, `challenge` or `abstain`.
    pub stance: StanceParam,
    /// Confidence in [0, 1].
    pub confidence: f64,
    /// Reasoning, shown to humans and auditors.
    #[serde(default)]
    pub reasoning: Option<String>,
    /// Evidence references.
    #[serde(default)]
    pub evidence: Option<Vec<String>>,
}

/// Parameters of `list_open_proposals`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ListParams {
    /// Only this domain (default: every domain the node holds).
    #[serde(default)]
    pub domain: Option<String>,
}

/// Parameters naming one proposal.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ProposalParams {
    /// Proposal id (`1220…`).
    pub proposal: String,
}

/// Parameters of `wait_for_resolution`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct WaitParams {
    /// Proposal id (`1220…`).
    pub proposal: String,
    /// Give up after this many seconds (default 30, at most 300).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Wait until the result is settled for good: certified by the
    /// attestors of enough organizations, or escalated to a human (a
    /// certified escalation, or contested) — instead of the first status
    /// other than pending (default false).
    #[serde(default)]
    pub require_final: Option<bool>,
}

/// An outcome of an executed action.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum OutcomeParam {
    /// The action worked out.
    Succeeded,
    /// It did not.
    Failed,
}

/// Parameters of `report_outcome`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct OutcomeParams {
    /// Proposal id (`1220…`).
    pub proposal: String,
    /// `succeeded` or `failed`.
    pub outcome: OutcomeParam,
    /// A note.
    #[serde(default)]
    pub note: Option<String>,
}

/// Parameters of `trust_scores`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct TrustParams {
    /// The domain.
    pub domain: String,
}

/// The MCP server: the tools over one node's API.
#[derive(Debug, Clone)]
pub struct AcpMcp {
    api: ApiClient,
    tool_router: ToolRouter<Self>,
}

/// A tool result: the JSON answer, or an error result with its message.
fn result(r: anyhow::Result<Value>) -> CallToolResult {
    match r {
        Ok(v) if v.is_object() => CallToolResult::structured(v),
        Ok(v) => CallToolResult::structured(json!({ "result": v })),
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            CallToolResult::error(vec![ContentBlock::text(chain.join(": "))])
        }
    }
}

/// A typed answer as the JSON of a tool result.
fn to_json(v: impl Serialize) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(v)?)
}

/// A checked proposal id (so nothing but an id reaches a URL path).
fn proposal_id(s: &str) -> anyhow::Result<ContentId> {
    ContentId::from_str(s.trim())
        .map_err(|e| anyhow::anyhow!("{s:?} is not a proposal id ({e}) (bad_request)"))
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a proposal (as `GET /v1/proposals/{id}` shows it) is settled:
/// certified, or waiting for a human with no certificate of the votes to
/// come (a certified escalation, or contested).
fn settled(v: &ProposalDetail) -> bool {
    matches!(
        v.finality.state,
        State::Certified | State::Escalated | State::Contested
    )
}

/// What `wait_for_resolution` returns.
#[derive(Debug, Serialize)]
struct Waited {
    timed_out: bool,
    waited_ms: u64,
    proposal: ProposalDetail,
}

impl AcpMcp {
    /// A server over `api`.
    pub fn new(api: ApiClient) -> Self {
        Self {
            api,
            tool_router: Self::tool_router(),
        }
    }

    /// Runs the blocking HTTP call `f` off the async runtime.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ApiClient) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let api = self.api.clone();
        tokio::task::spawn_blocking(move || f(&api))
            .await
            .map_err(|e| anyhow::anyhow!("the API call stopped: {e}"))?
    }
}

#[tool_router]
impl AcpMcp {
    /// Propose an action.
    #[tool(
        description = "Propose an action for a decision by the agents of a domain. The proposal is signed by this node's agent key and broadcast. Returns {id, new}; pass the id to get_proposal or wait_for_resolution."
    )]
    async fn propose(&self, Parameters(p): Parameters<ProposeParams>) -> CallToolResult {
        // The API's own defaults for what the tool call leaves out.
        let body = NewProposal {
            domain: p.domain,
            policy: p.policy,
            kind: p.kind,
            payload: p.payload.unwrap_or(Value::Null),
            confidence: p.confidence.unwrap_or(1.0),
            stakes: p.stakes.unwrap_or(0),
            evidence: p.evidence.unwrap_or_default(),
            closes_in_ms: p.closes_in_ms.unwrap_or(DEFAULT_WINDOW_MS),
            supersedes: p.supersedes,
        };
        let r = self
            .call(move |a| a.post::<SubmittedBody>("/proposals", &body))
            .await;
        result(r.and_then(to_json))
    }

    /// Respond to a proposal.
    #[tool(
        description = "Respond to a proposal: endorse, challenge or abstain, with a confidence in [0, 1] and reasoning. Signed by this node's agent key. Returns {id, new}."
    )]
    async fn respond(&self, Parameters(p): Parameters<RespondParams>) -> CallToolResult {
        let r = async {
            let id = proposal_id(&p.proposal)?;
            let stance = match p.stance {
                StanceParam::Endorse => Stance::Endorse,
                StanceParam::Challenge => Stance::Challenge,
                StanceParam::Abstain => Stance::Abstain,
            };
            let body = NewResponse {
                stance,
                confidence: p.confidence,
                reasoning: p.reasoning.unwrap_or_default(),
                evidence: p.evidence.unwrap_or_default(),
            };
            let v = self
                .call(move |a| {
                    a.post::<SubmittedBody>(&format!("/proposals/{id}/responses"), &body)
                })
                .await?;
            to_json(v)
        };
        result(r.await)
    }

    /// The proposals still open for responses.
    #[tool(
        description = "List the proposals still pending (open for responses), optionally of one domain: id, domain, kind, payload, proposer, stakes, created_at, closes_at, status, responses."
    )]
    async fn list_open_proposals(&self, Parameters(p): Parameters<ListParams>) -> CallToolResult {
        let path = match &p.domain {
            Some(d) => format!("/proposals?status=pending&domain={}", encode(d)),
            None => "/proposals?status=pending".to_owned(),
        };
        let r = self.call(move |a| a.get::<ProposalList>(&path)).await;
        result(r.and_then(to_json))
    }

    /// One proposal with its decision package.
    #[tool(
        description = "One proposal: status to act on (pending, approved, rejected, escalated, invalid), finality (state provisional, escalated, contested or certified; summary such as 'certified by 3 of 3 organizations: approved'; the certificate with its organizations and receipts; attestor equivocations; messages after certification), the computed status, the live tally, the resolution digest, the decision package (the proposal, the policy, every counted vote with its weight and reasoning, the excluded responses, human decisions) and the receipts. Act on status only once finality.state is certified."
    )]
    async fn get_proposal(&self, Parameters(p): Parameters<ProposalParams>) -> CallToolResult {
        let r = async {
            let id = proposal_id(&p.proposal)?;
            let v = self
                .call(move |a| a.get::<ProposalDetail>(&format!("/proposals/{id}")))
                .await?;
            to_json(v)
        };
        result(r.await)
    }

    /// Waits until a proposal is decided (or final).
    #[tool(
        description = "Wait until a proposal is no longer pending (or, with require_final, until it is certified by the attestors of enough organizations, or escalated or contested so that a human must decide), polling the node, for at most timeout_secs (default 30, at most 300). Returns {timed_out, waited_ms, proposal} where proposal is what get_proposal returns."
    )]
    async fn wait_for_resolution(&self, Parameters(p): Parameters<WaitParams>) -> CallToolResult {
        let r = async {
            let id = proposal_id(&p.proposal)?;
            let secs = p
                .timeout_secs
                .unwrap_or(DEFAULT_WAIT_SECS)
                .min(MAX_WAIT_SECS);
            let want_final = p.require_final.unwrap_or(false);
            let start = Instant::now();
            let deadline = start + Duration::from_secs(secs);
            loop {
                let v = self
                    .call(move |a| a.get::<ProposalDetail>(&format!("/proposals/{id}")))
                    .await?;
                let done = if want_final {
                    settled(&v)
                } else {
                    v.status != Status::Pending
                };
                let now = Instant::now();
                if done || now >= deadline {
                    let waited =
                        u64::try_from(now.duration_since(start).as_millis()).unwrap_or(u64::MAX);
                    return to_json(Waited {
                        timed_out: !done,
                        waited_ms: waited,
                        proposal: v,
                    });
                }
                tokio::time::sleep(POLL.min(deadline.saturating_duration_since(now))).await;
            }
        };
        result(r.await)
    }

    /// Reports the outcome of an executed action.
    #[tool(
        description = "Report the outcome of an action that was carried out (succeeded or failed), signed by this node's reporter key; outcomes feed the trust scores. Returns {id, new}."
    )]
    async fn report_outcome(&self, Parameters(p): Parameters<OutcomeParams>) -> CallToolResult {
        let r = async {
            let id = proposal_id(&p.proposal)?;
            let outcome = match p.outcome {
                OutcomeParam::Succeeded => Outcome::Succeeded,
                OutcomeParam::Failed => Outcome::Failed,
            };
            let body = NewOutcome {
                outcome,
                note: p.note.unwrap_or_default(),
            };
            let v = self
                .call(move |a| a.post::<SubmittedBody>(&format!("/proposals/{id}/outcome"), &body))
                .await?;
            to_json(v)
        };
        result(r.await)
    }

    /// The trust scores of a domain's agents.
    #[tool(
        description = "Trust scores of the agents of a domain: {domain, policy, agents: [{agent, trust_bps, trust}]}. Agents without a history are at the default and may be absent."
    )]
    async fn trust_scores(&self, Parameters(p): Parameters<TrustParams>) -> CallToolResult {
        let path = format!("/trust?domain={}", encode(&p.domain));
        let r = self.call(move |a| a.get::<TrustTable>(&path)).await;
        result(r.and_then(to_json))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AcpMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("acp", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Agent Consensus Protocol: propose actions, respond to other agents' proposals, \
                 follow them to a decision and report outcomes, through the local ACP node.",
            )
    }
}

/// Serves the tools over stdin/stdout until the client goes away.
pub fn run(api: ApiClient) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let service = AcpMcp::new(api)
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| anyhow::anyhow!("starting the MCP server: {e}"))?;
        service
            .waiting()
            .await
            .map_err(|e| anyhow::anyhow!("the MCP server stopped: {e}"))?;
        anyhow::Ok(())
    })
}
