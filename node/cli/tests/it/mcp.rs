//! `acp mcp` end to end: a real node, the built binary as an MCP server over
//! stdio, and the MCP SDK's client driving a whole decision through it:
//! tools and their schemas, propose, list, get (with the decision package),
//! respond, wait for the final resolution, report the outcome, trust, and
//! the errors a caller sees.

use crate::harness::*;
use acp_protocol::{Keypair, Stance};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

type Client = RunningService<RoleClient, ()>;

async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .unwrap()
}

/// The structured answer of a successful call, read as `T`.
async fn ok<T: DeserializeOwned>(client: &Client, tool: &str, args: Value) -> T {
    let r = call(client, tool, args).await;
    assert_ne!(r.is_error, Some(true), "{tool} failed: {:?}", r.content);
    let v = r.structured_content.unwrap();
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{tool}: {e}: {v}"))
}

/// What `wait_for_resolution` answers.
#[derive(Debug, Deserialize)]
struct Waited {
    timed_out: bool,
    proposal: ProposalDetail,
}

/// The message of a failed call.
async fn err(client: &Client, tool: &str, args: Value) -> String {
    let r = call(client, tool, args).await;
    assert_eq!(r.is_error, Some(true), "{tool} should fail: {r:?}");
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn mcp_client_runs_a_decision_through_acp_mcp() {
    let dir = DataDir::new();
    let node = dir.start(&[]);
    let k1 = Keypair::from_seed([21; 32]);
    let org = Keypair::from_seed([22; 32]);
    let reporter = dir.key("reporter.key");
    let policy = acme_policy(
        &org,
        &dir.agent.public(),
        &[&k1.public()],
        None,
        Some(&reporter.public()),
    );
    node.anchor(policy.id);
    node.post_message(&policy.bytes);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client: Client = rt.block_on(async {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.arg("mcp")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--url", &node.http])
            .env_remove("ACP_DATA_DIR")
            .env_remove("ACP_URL")
            .env_remove("ACP_TOKEN");
        ().serve(TokioChildProcess::new(cmd).unwrap())
            .await
            .unwrap()
    });

    // Tools, each with an input schema.
    let pid = rt.block_on(async {
        let tools = client.list_all_tools().await.unwrap();
        let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "get_proposal",
                "list_open_proposals",
                "propose",
                "report_outcome",
                "respond",
                "trust_scores",
                "wait_for_resolution"
            ]
        );
        let propose = tools.iter().find(|t| t.name == "propose").unwrap();
        // The input schema is checked as the JSON Schema document it is.
        let schema = Value::Object((*propose.input_schema).clone());
        assert_eq!(schema["type"], "object", "{schema}");
        assert_eq!(schema["required"], json!(["domain", "kind"]), "{schema}");
        assert!(schema["properties"]["closes_in_ms"].is_object(), "{schema}");
        assert!(tools.iter().all(|t| t.description.is_some()));

        // Propose through the node's agent key.
        let v: SubmittedBody = ok(
            &client,
            "propose",
            json!({"domain": DOMAIN, "kind": "loan.approve", "payload": {"amount": 5},
                   "confidence": 0.9, "stakes": 10, "closes_in_ms": 2_000}),
        )
        .await;
        assert!(v.new, "{v:?}");
        let pid = v.id.to_string();
        assert!(pid.starts_with("1220"), "{pid}");

        let v: ProposalDetail = ok(&client, "get_proposal", json!({"proposal": pid})).await;
        assert_eq!(v.id.to_string(), pid);
        assert_eq!(v.status, Status::Pending, "{v:?}");
        assert_eq!(v.finality.state, State::Provisional, "{v:?}");
        assert_eq!(v.package.proposal.action.kind, "loan.approve");
        let v: ProposalList = ok(&client, "list_open_proposals", json!({"domain": DOMAIN})).await;
        let open: Vec<String> = v.proposals.iter().map(|p| p.id.to_string()).collect();
        assert_eq!(open, vec![pid.clone()], "{v:?}");

        // Errors the caller can read.
        let e = err(&client, "get_proposal", json!({"proposal": "nope"})).await;
        assert!(e.contains("not a proposal id"), "{e}");
        let e = err(
            &client,
            "get_proposal",
            json!({"proposal": format!("1220{}", "ab".repeat(32))}),
        )
        .await;
        assert!(e.contains("not_found"), "{e}");
        let e = err(
            &client,
            "respond",
            json!({"proposal": pid, "stance": "endorse", "confidence": 2.0}),
        )
        .await;
        assert!(e.contains("invalid_confidence"), "{e}");
        // A bounded wait that runs out while the window is open.
        let v: Waited = ok(
            &client,
            "wait_for_resolution",
            json!({"proposal": pid, "timeout_secs": 0, "require_final": true}),
        )
        .await;
        assert!(v.timed_out, "{v:?}");
        pid
    });

    // An outside agent endorses (a raw signed response).
    let (_, r) = response(&k1, pid.parse().unwrap(), Stance::Endorse);
    node.post_message(&r);
    // An outside proposal, answered through `respond`.
    let (other, bytes) = proposal(&k1, policy.id, 600_000);
    node.post_message(&bytes);

    rt.block_on(async {
        let v: SubmittedBody = ok(
            &client,
            "respond",
            json!({"proposal": other.to_string(), "stance": "challenge", "confidence": 0.8,
                   "reasoning": "the amount is off"}),
        )
        .await;
        assert!(v.new, "{v:?}");
        let v: ProposalDetail = ok(
            &client,
            "get_proposal",
            json!({"proposal": other.to_string()}),
        )
        .await;
        assert!(
            v.package
                .counted
                .iter()
                .any(|c| c.response.reasoning == "the amount is off"),
            "{v:?}"
        );

        // Decided early (both votes are in), but settled only once the
        // window closed and the node's receipt certified it.
        let v: Waited = ok(
            &client,
            "wait_for_resolution",
            json!({"proposal": pid, "timeout_secs": 20, "require_final": true}),
        )
        .await;
        assert!(!v.timed_out, "{v:?}");
        assert_eq!(v.proposal.status, Status::Approved, "{v:?}");
        assert_eq!(v.proposal.finality.state, State::Certified, "{v:?}");
        assert_eq!(
            v.proposal.finality.summary, "certified by 1 of 1 organizations: approved",
            "{v:?}"
        );
        assert!(v.proposal.is_final, "{v:?}");

        let v: SubmittedBody = ok(
            &client,
            "report_outcome",
            json!({"proposal": pid, "outcome": "succeeded", "note": "paid out"}),
        )
        .await;
        assert!(v.new, "{v:?}");
        // The agents list is read whole: a table that did not read fails here.
        let v: TrustTable = ok(&client, "trust_scores", json!({"domain": DOMAIN})).await;
        assert_eq!(v.domain, DOMAIN, "{v:?}");
    });
    rt.block_on(client.cancel()).unwrap();
}
