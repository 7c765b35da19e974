//! `acp-bench`: whole-system benchmarks of the node.
//!
//! Every figure is a ratio against a baseline measured in the same run on the
//! same machine; absolute numbers are printed for orientation only. Every load
//! loop is bounded and every address is loopback. See `docs/BENCHMARKS.md`.
//!
//! ```text
//! acp-bench ingest      # node ingest (decode..sled) vs raw signature verification
//! acp-bench latency     # decision latency of N acp nodes vs an HTTP coordinator
//! acp-bench certify     # time to certificate of N acp nodes vs an HTTP coordinator
//! acp-bench gossip      # wire bytes per delivered message vs size × receivers
//! acp-bench overload    # RSS and CPU of one node at 1× and 10× its sustainable rate
//! ```

mod certify;
mod cluster;
mod coord;
mod ingest;
mod overload;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "acp-bench", about = "ACP whole-system benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Full node ingest (decode, verify, engine, sled) vs raw verify, one thread.
    Ingest(ingest::Args),
    /// Decision latency: N acp nodes vs a central HTTP coordinator.
    Latency(cluster::LatencyArgs),
    /// Time to certificate: N acp nodes of several organizations vs a coordinator.
    Certify(certify::Args),
    /// Gossip cost: wire bytes per delivered message / (size × receivers).
    Gossip(cluster::GossipArgs),
    /// RSS and CPU of one node at 1× and 10× its sustainable rate.
    Overload(overload::Args),
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Ingest(a) => ingest::run(&a),
        Cmd::Latency(a) => cluster::latency(&a),
        Cmd::Certify(a) => certify::certify(&a),
        Cmd::Gossip(a) => cluster::gossip(&a),
        Cmd::Overload(a) => overload::run(&a),
    };
    if let Err(e) = r {
        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        eprintln!("acp-bench: {}", chain.join(": "));
        std::process::exit(1);
    }
}
