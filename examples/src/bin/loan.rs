//! Loan approval inside one bank.
//!
//! ```sh
//! cargo run -p acp-examples --bin loan
//! ```
//!
//! Starts four real ACP nodes in this process on 127.0.0.1 (one per agent:
//! loan origination, credit risk, compliance, customer experience; fresh
//! temporary data directories, no mDNS). The three units sign a policy with
//! their own root keys, the origination agent proposes two loans, each unit's
//! agent responds from its own node with a confidence and its reasoning, and
//! every node resolves both on its own: the car loan is approved, the
//! personal loan rejected, each certified by the three units' attestors (one
//! agent node per unit), with identical resolution digests on every node.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    acp_examples::loan::run(&mut acp_examples::show::Out::stdout()).await?;
    Ok(())
}
