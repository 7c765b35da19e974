//! Cross-organization supply chain: expedite a delayed shipment?
//!
//! ```sh
//! cargo run -p acp-examples --bin supply-chain
//! ```
//!
//! Starts six real ACP nodes in this process on 127.0.0.1, one per agent:
//! a manufacturer's demand-forecasting agent, a logistics provider's routing
//! and tracking agents, and a retailer's three inventory agents. The three
//! organizations sign one policy with their own root keys, capping each at
//! 25% of the potential weight. The retailer's agents all endorse expediting;
//! the cap shows in the per-organization tally, and every node independently
//! rejects the proposal an uncapped count would have approved, certified by
//! the three organizations' attestors.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    acp_examples::supply_chain::run(&mut acp_examples::show::Out::stdout()).await?;
    Ok(())
}
