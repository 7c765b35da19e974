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

/// The structured answer of a successful call.
async fn ok(client: &Client, tool: &str, args: Value) -> Value {
    let r = call(client, tool, args).await;
    assert_ne!(r.is_error, Some(true), "{tool} failed: {:?}", r.content);
    r.structured_content.unwrap()
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
        let schema = Value::Object((*propose.input_schema).clone());
        assert_eq!(schema["type"], "object", "{schema}");
        assert_eq!(schema["required"], json!(["domain", "kind"]), "{schema}");
        assert!(schema["properties"]["closes_in_ms"].is_object(), "{schema}");
        assert!(tools.iter().all(|t| t.description.is_some()));

        // Propose through the node's agent key.
        let v = ok(
            &client,
            "propose",
            json!({"domain": DOMAIN, "kind": "loan.approve", "payload": {"amount": 5},
                   "confidence": 0.9, "stakes": 10, "closes_in_ms": 2_000}),
        )
        .await;
        assert_eq!(v["new"], true, "{v}");
        let pid = v["id"].as_str().unwrap().to_owned();
        assert!(pid.starts_with("1220"), "{pid}");

        let v = ok(&client, "get_proposal", json!({"proposal": pid})).await;
        assert_eq!(v["id"], pid.as_str());
        assert_eq!(v["status"], "pending", "{v}");
        assert_eq!(v["finality"]["state"], "provisional", "{v}");
        assert_eq!(v["package"]["proposal"]["action"]["kind"], "loan.approve");
        let v = ok(&client, "list_open_proposals", json!({"domain": DOMAIN})).await;
        let open: Vec<&str> = v["proposals"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["id"].as_str())
            .collect();
        assert_eq!(open, [pid.as_str()], "{v}");

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
        let v = ok(
            &client,
            "wait_for_resolution",
            json!({"proposal": pid, "timeout_secs": 0, "require_final": true}),
        )
        .await;
        assert_eq!(v["timed_out"], true, "{v}");
        pid
    });

    // An outside agent endorses (a raw signed response).
    let (_, r) = response(&k1, pid.parse().unwrap(), Stance::Endorse);
    node.post_message(&r);
    // An outside proposal, answered through `respond`.
    let (other, bytes) = proposal(&k1, policy.id, 600_000);
    node.post_message(&bytes);

    rt.block_on(async {
        let v = ok(
            &client,
            "respond",
            json!({"proposal": other.to_string(), "stance": "challenge", "confidence": 0.8,
                   "reasoning": "the amount is off"}),
        )
        .await;
        assert_eq!(v["new"], true, "{v}");
        let v = ok(
            &client,
            "get_proposal",
            json!({"proposal": other.to_string()}),
        )
        .await;
        let counted = v["package"]["counted"].as_array().unwrap();
        assert!(
            counted
                .iter()
                .any(|c| c["response"]["reasoning"] == "the amount is off"),
            "{v}"
        );

        // Decided early (both votes are in), but settled only once the
        // window closed and the node's receipt certified it.
        let v = ok(
            &client,
            "wait_for_resolution",
            json!({"proposal": pid, "timeout_secs": 20, "require_final": true}),
        )
        .await;
        assert_eq!(v["timed_out"], false, "{v}");
        assert_eq!(v["proposal"]["status"], "approved", "{v}");
        assert_eq!(v["proposal"]["finality"]["state"], "certified", "{v}");
        assert_eq!(
            v["proposal"]["finality"]["summary"], "certified by 1 of 1 organizations: approved",
            "{v}"
        );
        assert_eq!(v["proposal"]["final"], true, "{v}");

        let v = ok(
            &client,
            "report_outcome",
            json!({"proposal": pid, "outcome": "succeeded", "note": "paid out"}),
        )
        .await;
        assert_eq!(v["new"], true, "{v}");
        let v = ok(&client, "trust_scores", json!({"domain": DOMAIN})).await;
        assert_eq!(v["domain"], DOMAIN, "{v}");
        assert!(v["agents"].is_array(), "{v}");
    });
    rt.block_on(client.cancel()).unwrap();
}
