//! Marketing against finance on campaign spend, settled by a human.
//!
//! ```sh
//! cargo run -p acp-examples --bin campaign-spend
//! ```
//!
//! Starts five real ACP nodes in this process on 127.0.0.1, one per agent
//! (a campaign planner, two marketing agents, two finance agents). The
//! agents disagree and neither side wins by the policy's margin, so the
//! votes escalate and the attestors of marketing and finance (one agent
//! node each) certify the escalation. The CFO, a human whose key the policy
//! lists, approves with her rationale through the finance node's sidecar
//! HTTP API, which signs the decision with her key; both attestors then
//! sign the result her decision settles, and every node holds that
//! certificate: approved, certified by 2 of 2 organizations.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    acp_examples::campaign_spend::run(&mut acp_examples::show::Out::stdout()).await?;
    Ok(())
}
