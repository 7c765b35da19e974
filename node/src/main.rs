//! `acp`: the ACP node and its command line.

mod demo;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use acp_node::config::{self, Config};
use acp_node::control;
use acp_node::keys;
use acp_node::node::{Core, CoreConfig, now};
use acp_node::p2p::{self, NetConfig};
use acp_node::store::SledStore;
use acp_protocol::{
    Action, Body, ContentId, DecisionRules, DomainPolicy, Keypair, Member, Organization, Proposal,
    PublicKey, Response, Stance,
};
use anyhow::{Context, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(name = "acp", version, about = "Agent Consensus Protocol node")]
struct Cli {
    /// Data directory (keys, config.toml, store).
    #[arg(long, global = true, env = config::DATA_DIR_ENV)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run three nodes on loopback with fresh temporary data and decide one proposal.
    Demo,
    /// Create the data directory: agent key, peer key, config.toml.
    Init(InitArgs),
    /// Organization keys.
    #[command(subcommand)]
    Org(OrgCmd),
    /// Domain policies.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Run the node.
    Node(NetOverrides),
    /// Print this node's agent key and peer id.
    Id,
    /// Sign a proposal with the agent key and write it to a file.
    Propose(ProposeArgs),
    /// Sign a response with the agent key and write it to a file.
    Respond(RespondArgs),
    /// Submit a signed message file to the running node.
    Submit {
        /// The message file (canonical bytes, as written by propose/respond/policy).
        file: PathBuf,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Show the running node's status.
    Status {
        #[command(flatten)]
        api: ApiArg,
    },
    /// Show a proposal's resolution and the receipts held for it.
    Resolution {
        /// Proposal id.
        proposal: ContentId,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Ask the running node to dial a peer.
    Dial {
        /// Multiaddr ending in /p2p/<peer id>.
        addr: String,
        #[command(flatten)]
        api: ApiArg,
    },
}

#[derive(Args, Debug, Clone, Default)]
struct NetOverrides {
    /// Listen address (repeatable; replaces the config's list).
    #[arg(long)]
    listen: Vec<String>,
    /// Bootstrap peer multiaddr (repeatable; added to the config's list).
    #[arg(long)]
    bootstrap: Vec<String>,
    /// Domain to join (repeatable; replaces the config's list).
    #[arg(long)]
    domain: Vec<String>,
    /// Control API address.
    #[arg(long)]
    api_addr: Option<SocketAddr>,
    /// Turn mDNS discovery off.
    #[arg(long)]
    no_mdns: bool,
    /// Seconds between anti-entropy rounds.
    #[arg(long)]
    sync_interval_secs: Option<u64>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

impl NetOverrides {
    fn apply(&self, cfg: &mut Config) {
        if !self.listen.is_empty() {
            cfg.listen = self.listen.clone();
        }
        cfg.bootstrap.extend(self.bootstrap.iter().cloned());
        if !self.domain.is_empty() {
            cfg.domains = self.domain.clone();
        }
        if let Some(a) = self.api_addr {
            cfg.api_addr = a;
        }
        if self.no_mdns {
            cfg.mdns = false;
        }
        if let Some(s) = self.sync_interval_secs {
            cfg.sync_interval_secs = s;
        }
        if self.log_json {
            cfg.log_json = true;
        }
    }
}

#[derive(Args, Debug)]
struct InitArgs {
    #[command(flatten)]
    net: NetOverrides,
}

#[derive(Args, Debug, Clone)]
struct ApiArg {
    /// Control API address (default: the data directory's config).
    #[arg(long)]
    api: Option<SocketAddr>,
}

#[derive(Subcommand, Debug)]
enum OrgCmd {
    /// Create an organization root key (default `<data-dir>/org.key`).
    Init {
        /// Where to write the key.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum PolicyCmd {
    /// Build and sign a DomainPolicy with every organization's root key.
    Create(PolicyArgs),
}

#[derive(Args, Debug)]
struct PolicyArgs {
    /// The domain governed.
    #[arg(long)]
    domain: String,
    /// Organization: `KEYFILE[:NAME[:WEIGHT_CAP_BPS]]` (repeatable; index = order given).
    #[arg(long = "org", required = true)]
    orgs: Vec<String>,
    /// Member: `AGENT_KEY_HEX:AUTHORITY_BPS[:ORG_INDEX]` (repeatable).
    #[arg(long = "member")]
    members: Vec<String>,
    /// Human who may decide escalations (repeatable).
    #[arg(long = "human")]
    humans: Vec<PublicKey>,
    /// Key that may report outcomes (repeatable).
    #[arg(long = "reporter")]
    reporters: Vec<PublicKey>,
    /// Revision number.
    #[arg(long, default_value_t = 1)]
    revision: u64,
    /// Quorum margin, basis points.
    #[arg(long, default_value_t = 1000)]
    quorum_margin_bps: u16,
    /// Minimum participation, basis points of potential weight.
    #[arg(long, default_value_t = 5000)]
    min_participation_bps: u16,
    /// Escalate below this weighted mean confidence, basis points.
    #[arg(long, default_value_t = 0)]
    low_confidence_bps: u16,
    /// Stakes at or above which a human decides.
    #[arg(long)]
    high_stakes: Option<u64>,
    /// Smallest `closes_at - created_at`.
    #[arg(long, default_value_t = 1000)]
    min_window_ms: u64,
    /// Largest `closes_at - created_at`.
    #[arg(long, default_value_t = 7 * 24 * 3_600_000)]
    max_window_ms: u64,
    /// Output file for the signed policy.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Debug)]
struct ProposeArgs {
    /// Domain.
    #[arg(long)]
    domain: String,
    /// Id of the policy the proposal is decided under.
    #[arg(long)]
    policy: ContentId,
    /// Action kind, e.g. `loan.approve`.
    #[arg(long)]
    kind: String,
    /// Action payload (JSON text).
    #[arg(long, default_value = "{}")]
    payload: String,
    /// Proposer confidence, basis points.
    #[arg(long, default_value_t = 8000)]
    confidence_bps: u16,
    /// Stakes.
    #[arg(long, default_value_t = 0)]
    stakes: u64,
    /// Evidence reference (repeatable).
    #[arg(long)]
    evidence: Vec<String>,
    /// Responses close this many milliseconds from now.
    #[arg(long, default_value_t = 60_000)]
    closes_in_ms: u64,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum StanceArg {
    Endorse,
    Challenge,
    Abstain,
}

#[derive(Args, Debug)]
struct RespondArgs {
    /// Domain of the proposal.
    #[arg(long)]
    domain: String,
    /// Proposal id.
    #[arg(long)]
    proposal: ContentId,
    /// Stance.
    #[arg(long, value_enum)]
    stance: StanceArg,
    /// Confidence, basis points.
    #[arg(long)]
    confidence_bps: u16,
    /// Reasoning.
    #[arg(long, default_value = "")]
    reasoning: String,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        // One clear line, no backtrace.
        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        eprintln!("acp: {}", chain.join(": "));
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Cmd::Demo = cli.cmd {
        return demo::run();
    }
    let dir = config::resolve_data_dir(cli.data_dir)?;
    match cli.cmd {
        Cmd::Demo => demo::run(),
        Cmd::Init(a) => init(&dir, &a.net),
        Cmd::Org(OrgCmd::Init { out }) => {
            config::create_data_dir(&dir)?;
            let path = out.unwrap_or_else(|| dir.join(keys::ORG_KEY_FILE));
            let seed = keys::create_seed_file(&path)?;
            println!("org root key {}", Keypair::from_seed(seed).public());
            println!("written to {}", path.display());
            Ok(())
        }
        Cmd::Policy(PolicyCmd::Create(a)) => policy_create(a),
        Cmd::Node(o) => run_node(&dir, &o),
        Cmd::Id => {
            let agent = agent_key(&dir)?;
            let peer = keys::read_peer_key(&dir.join(keys::PEER_KEY_FILE))?;
            println!("agent {}", agent.public());
            println!("peer {}", peer.public().to_peer_id());
            Ok(())
        }
        Cmd::Propose(a) => propose(&dir, a),
        Cmd::Respond(a) => respond(&dir, a),
        Cmd::Submit { file, api } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let v = control_call(
                &dir,
                &api,
                json!({"op": "submit", "hex": hex::encode(bytes)}),
            )?;
            println!("{}", v["id"].as_str().unwrap_or_default());
            Ok(())
        }
        Cmd::Status { api } => {
            let v = control_call(&dir, &api, json!({"op": "status"}))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Cmd::Resolution { proposal, api } => {
            let v = control_call(
                &dir,
                &api,
                json!({"op": "resolution", "proposal": proposal.to_string()}),
            )?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Cmd::Dial { addr, api } => {
            control_call(&dir, &api, json!({"op": "dial", "addr": addr}))?;
            Ok(())
        }
    }
}

fn agent_key(dir: &Path) -> anyhow::Result<Keypair> {
    Ok(Keypair::from_seed(keys::read_seed_file(
        &dir.join(keys::AGENT_KEY_FILE),
    )?))
}

fn init(dir: &Path, net: &NetOverrides) -> anyhow::Result<()> {
    let cfg_path = dir.join(config::CONFIG_FILE);
    if cfg_path.exists() {
        bail!(
            "{} is already initialized ({} exists)",
            dir.display(),
            cfg_path.display()
        );
    }
    config::create_data_dir(dir)?;
    let mut cfg = Config::default();
    net.apply(&mut cfg);
    cfg.check()?;
    let seed = keys::create_seed_file(&dir.join(keys::AGENT_KEY_FILE))?;
    let peer = keys::create_peer_key(&dir.join(keys::PEER_KEY_FILE))?;
    std::fs::write(&cfg_path, cfg.to_documented_toml())
        .with_context(|| format!("writing {}", cfg_path.display()))?;
    println!("initialized {}", dir.display());
    println!("agent {}", Keypair::from_seed(seed).public());
    println!("peer {}", peer.public().to_peer_id());
    Ok(())
}

fn control_call(
    dir: &Path,
    api: &ApiArg,
    req: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let addr = match api.api {
        Some(a) => a,
        None => Config::load(dir)?.api_addr,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(control::call(addr, &req))?)
}

fn parse_org(spec: &str) -> anyhow::Result<(Keypair, String, u16)> {
    let mut parts = spec.splitn(3, ':');
    let file = parts.next().unwrap_or_default();
    let kp = Keypair::from_seed(keys::read_seed_file(Path::new(file))?);
    let name = parts.next().unwrap_or(file).to_owned();
    let cap = match parts.next() {
        Some(c) => c
            .parse()
            .map_err(|_| anyhow!("--org {spec}: weight cap must be basis points"))?,
        None => 10_000,
    };
    Ok((kp, name, cap))
}

fn parse_member(spec: &str, orgs: usize) -> anyhow::Result<(PublicKey, u16, usize)> {
    let bad = || anyhow!("--member {spec}: expected AGENT_KEY_HEX:AUTHORITY_BPS[:ORG_INDEX]");
    let mut parts = spec.split(':');
    let agent: PublicKey = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let auth: u16 = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let org: usize = match parts.next() {
        Some(o) => o.parse().map_err(|_| bad())?,
        None => 0,
    };
    if org >= orgs {
        bail!("--member {spec}: organization index {org} out of range");
    }
    Ok((agent, auth, org))
}

fn policy_create(a: PolicyArgs) -> anyhow::Result<()> {
    let mut orgs: Vec<(Keypair, String, u16)> = a
        .orgs
        .iter()
        .map(|s| parse_org(s))
        .collect::<Result<_, _>>()?;
    let members: Vec<(PublicKey, u16, usize)> = a
        .members
        .iter()
        .map(|s| parse_member(s, orgs.len()))
        .collect::<Result<_, _>>()?;
    // Organizations sorted by root key; remap member indexes.
    let given: Vec<PublicKey> = orgs.iter().map(|o| o.0.public()).collect();
    orgs.sort_by_key(|o| o.0.public());
    let index_of = |k: &PublicKey| orgs.iter().position(|o| o.0.public() == *k);
    let mut ms = Vec::new();
    for (agent, auth, org) in members {
        let idx = index_of(&given[org]).ok_or_else(|| anyhow!("organization index"))?;
        ms.push(Member {
            agent,
            organization: u16::try_from(idx)?,
            authority_bps: auth,
        });
    }
    ms.sort_by_key(|m| m.agent);
    let mut humans = a.humans;
    humans.sort();
    humans.dedup();
    let mut reporters = a.reporters;
    reporters.sort();
    reporters.dedup();
    let policy = DomainPolicy {
        domain: a.domain,
        revision: a.revision,
        issued_at: now(),
        organizations: orgs
            .iter()
            .map(|(k, name, cap)| Organization {
                root: k.public(),
                name: name.clone(),
                weight_cap_bps: *cap,
            })
            .collect(),
        members: ms,
        humans,
        reporters,
        rules: DecisionRules {
            quorum_margin_bps: a.quorum_margin_bps,
            min_participation_bps: a.min_participation_bps,
            low_confidence_bps: a.low_confidence_bps,
            high_stakes: a.high_stakes,
            min_window_ms: a.min_window_ms,
            max_window_ms: a.max_window_ms,
        },
    };
    let signers: Vec<&Keypair> = orgs.iter().map(|o| &o.0).collect();
    write_signed(Body::Policy(policy), &signers, &a.out)
}

fn write_signed(body: Body, keys: &[&Keypair], out: &Path) -> anyhow::Result<()> {
    let msg = body.sign(keys)?;
    // Check it the way every node will.
    acp_protocol::decode_message(&msg.bytes).context("the signed message does not validate")?;
    std::fs::write(out, &msg.bytes).with_context(|| format!("writing {}", out.display()))?;
    println!("{}", msg.id);
    Ok(())
}

fn propose(dir: &Path, a: ProposeArgs) -> anyhow::Result<()> {
    let key = agent_key(dir)?;
    let created = now();
    let body = Body::Proposal(Proposal {
        proposer: key.public(),
        domain: a.domain,
        policy: a.policy,
        action: Action {
            kind: a.kind,
            payload: a.payload,
        },
        confidence_bps: a.confidence_bps,
        stakes: a.stakes,
        evidence: a.evidence,
        created_at: created,
        closes_at: created.plus_ms(a.closes_in_ms),
        supersedes: None,
    });
    write_signed(body, &[&key], &a.out)
}

fn respond(dir: &Path, a: RespondArgs) -> anyhow::Result<()> {
    let key = agent_key(dir)?;
    let body = Body::Response(Response {
        responder: key.public(),
        domain: a.domain,
        proposal: a.proposal,
        stance: match a.stance {
            StanceArg::Endorse => Stance::Endorse,
            StanceArg::Challenge => Stance::Challenge,
            StanceArg::Abstain => Stance::Abstain,
        },
        confidence_bps: a.confidence_bps,
        reasoning: a.reasoning,
        evidence: Vec::new(),
        issued_at: now(),
    });
    write_signed(body, &[&key], &a.out)
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p_kad=error"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

fn run_node(dir: &Path, o: &NetOverrides) -> anyhow::Result<()> {
    let mut cfg = Config::load(dir)?;
    o.apply(&mut cfg);
    cfg.check()?;
    init_tracing(cfg.log_json);
    let agent = agent_key(dir)?;
    let peer_key = keys::read_peer_key(&dir.join(keys::PEER_KEY_FILE))?;
    let parse = |v: &[String], what: &str| -> anyhow::Result<Vec<libp2p::Multiaddr>> {
        v.iter()
            .map(|s| {
                s.parse()
                    .map_err(|e| anyhow!("{what} address {s:?} is not a multiaddr: {e}"))
            })
            .collect()
    };
    let net_cfg = NetConfig {
        listen: parse(&cfg.listen, "listen")?,
        bootstrap: parse(&cfg.bootstrap, "bootstrap")?,
        domains: cfg.domains.clone(),
        mdns: cfg.mdns,
        max_message_bytes: cfg.max_message_bytes,
        queue_capacity: cfg.queue_capacity,
    };
    let store = SledStore::open(&dir.join(config::STORE_DIR))
        .with_context(|| format!("opening the store in {}", dir.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (client, events, event_loop) = p2p::new(peer_key, &net_cfg)?;
        let peer_id = client.local_peer_id();
        let (mut core, handle) = Core::new(
            agent.clone(),
            Arc::new(store),
            client,
            events,
            CoreConfig {
                domains: cfg.domains.clone(),
                sync_interval: Duration::from_secs(cfg.sync_interval_secs),
                sync_batch: cfg.sync_batch,
                queue_capacity: cfg.queue_capacity,
            },
        )?;
        core.on_listen(move |addr| {
            println!("ACP-LISTEN {addr}/p2p/{peer_id}");
        });
        let listener = tokio::net::TcpListener::bind(cfg.api_addr)
            .await
            .with_context(|| format!("binding the control api on {}", cfg.api_addr))?;
        let api = listener.local_addr()?;
        println!("ACP-PEER {peer_id}");
        println!("ACP-AGENT {}", agent.public());
        println!("ACP-API {api}");
        tracing::info!(%peer_id, %api, agent = %agent.public(), "node started");
        tokio::spawn(event_loop.run());
        tokio::spawn(control::serve(listener, handle));
        let core_task = tokio::spawn(core.run());
        let terminate = async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                match signal(SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            }
            #[cfg(not(unix))]
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
            _ = terminate => tracing::info!("terminated; stopping"),
            _ = core_task => tracing::warn!("node core stopped"),
        }
        anyhow::Ok(())
    })
}
