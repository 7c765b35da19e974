//! Fraud screening against customer experience, where trust follows outcomes.
//!
//! ```sh
//! cargo run -p acp-examples --bin fraud-trust
//! ```
//!
//! Starts four real ACP nodes in this process on 127.0.0.1 (payment gateway,
//! transaction-risk model, velocity-rules agent, customer-experience agent)
//! and screens twelve flagged card payments: the gateway proposes a block,
//! the three agents respond, the chargeback desk reports how each payment
//! turned out. The velocity agent flips a coin and claims 0.95 confidence;
//! the table shows its trust and its share of the weight falling round by
//! round while the calibrated agents keep theirs. Each round is certified
//! by the attestors of both organizations (one agent node each). Short
//! decision windows (3 s, the rounds overlapping) keep the whole run to a
//! few seconds.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    acp_examples::fraud_trust::run(&mut acp_examples::show::Out::stdout()).await?;
    Ok(())
}
