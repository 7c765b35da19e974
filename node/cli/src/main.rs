//! `acp`: the ACP node and its command line.

mod client;
mod demo;
mod mcp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use acp_node::Node;
use acp_node::config::{self, Config};
use acp_node::keys;
use acp_node::service::now;
use acp_node::surface::api::confidence_to_bps;
use acp_node::surface::api::types::{
    AnchorAdded, AnchorBody, AnchorList, AuditVerified, ControlOk, ControlRequest,
    ControlSubmitted, DecisionSubmitted, NewDecision, NewOutcome, NewProposal, NewResponse,
    ProposalDetail, ProposalList, SubmittedBody, TrustTable,
};
use acp_node::surface::control;
use acp_node::surface::view::{state_str, status_str};
use acp_node::transport::redis;
use acp_protocol::build::{Ask, PolicyBuilder};
use acp_protocol::bundle::AuditBundle;
use acp_protocol::{
    Body, ContentId, DecisionRules, Keypair, Outcome, PublicKey, Response, SignedMessage, Stance,
    Verdict,
};
use anyhow::{Context, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::client::ApiClient;

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
    /// Run three nodes on loopback with fresh temporary data: a loan decided, then one escalated.
    Demo {
        /// Leave the nodes and the escalation page running until Ctrl-C.
        #[arg(long)]
        keep_running: bool,
    },
    /// Create the data directory: agent, human and reporter keys, peer key, API token, config.toml.
    Init(InitArgs),
    /// Trust anchors: the genesis policy of each domain this node admits messages of.
    #[command(subcommand)]
    Anchor(AnchorCmd),
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
    /// Propose an action through the node (signed by its agent key), or write it to a file with --out.
    Propose(ProposeArgs),
    /// Respond to a proposal through the node (signed by its agent key), or write it to a file with --out.
    Respond(RespondArgs),
    /// Show one proposal: status, tally, every vote with its reasoning and weight, receipts.
    Show {
        /// Proposal id.
        proposal: ContentId,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// List proposals.
    List {
        /// Only this domain.
        #[arg(long)]
        domain: Option<String>,
        /// Only this status to act on (pending, approved, rejected, escalated, invalid).
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Follow the node's events (proposals, responses, decisions, escalations) until Ctrl-C.
    Watch {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Decide an escalated proposal, signed by the node's human key.
    Decide {
        /// Proposal id.
        proposal: ContentId,
        /// approve or reject.
        #[arg(value_enum)]
        verdict: VerdictArg,
        /// Why.
        #[arg(long, default_value = "")]
        rationale: String,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Report how an executed decision turned out, signed by the node's reporter key.
    Outcome {
        /// Proposal id.
        proposal: ContentId,
        /// succeeded or failed.
        #[arg(value_enum)]
        outcome: OutcomeArg,
        /// A note.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Trust scores of the agents of a domain.
    Trust {
        /// Domain.
        #[arg(long)]
        domain: String,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Audit bundles: export from a node, verify offline.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Print the escalation page's address (with the API token in the fragment).
    Page {
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Submit a signed message file to the running node.
    Submit {
        /// The message file (canonical bytes, as written by propose/respond/policy).
        file: PathBuf,
        #[command(flatten)]
        control: ControlArg,
    },
    /// Show the running node's status.
    Status {
        #[command(flatten)]
        control: ControlArg,
    },
    /// Show a proposal's resolution and the receipts held for it.
    Resolution {
        /// Proposal id.
        proposal: ContentId,
        #[command(flatten)]
        control: ControlArg,
    },
    /// Ask the running node to dial a peer.
    Dial {
        /// Multiaddr ending in /p2p/<peer id>.
        addr: String,
        #[command(flatten)]
        control: ControlArg,
    },
    /// Serve the node's API as MCP tools over stdin/stdout, for MCP-capable agents.
    Mcp {
        #[command(flatten)]
        http: HttpArgs,
    },
}

#[derive(Args, Debug, Clone)]
struct HttpArgs {
    /// The node's HTTP API (default: `http://<http_addr>` from the data directory's config).
    #[arg(long, env = "ACP_URL")]
    url: Option<String>,
    /// API bearer token (default: `<data-dir>/api.token`).
    #[arg(long, env = "ACP_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl HttpArgs {
    fn client(&self, dir: &Path) -> anyhow::Result<ApiClient> {
        ApiClient::for_dir(dir, self.url.as_deref(), self.token.as_deref())
    }
}

#[derive(Subcommand, Debug)]
enum AuditCmd {
    /// Download a proposal's audit bundle from the node.
    Export {
        /// Proposal id.
        proposal: ContentId,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Verify a bundle offline: every signature, the order, the lineage from
    /// the bundle's genesis, the recomputed resolution and its certificate.
    /// Exits non-zero, saying what failed, on any tampering.
    Verify {
        /// The bundle file.
        bundle: PathBuf,
        /// Require this genesis policy id (your own trust anchor for the
        /// domain): a bundle verified under another genesis is an error.
        #[arg(long)]
        genesis: Option<ContentId>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum AnchorCmd {
    /// Trust a genesis policy for a domain: the running node takes it at
    /// once and writes it to config.toml (a stopped node's config.toml is
    /// written directly).
    Add {
        /// The domain (one the node joins).
        #[arg(long)]
        domain: String,
        /// The genesis policy id (`1220…`).
        #[arg(long)]
        genesis: ContentId,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// The running node's anchors, with the newest policy of each lineage.
    List {
        #[command(flatten)]
        http: HttpArgs,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum VerdictArg {
    Approve,
    Reject,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum OutcomeArg {
    Succeeded,
    Failed,
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
    /// Control channel address (loopback; JSON lines).
    #[arg(long, alias = "api-addr")]
    control_addr: Option<SocketAddr>,
    /// HTTP API and escalation page address.
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// Turn mDNS discovery off.
    #[arg(long)]
    no_mdns: bool,
    /// Seconds between anti-entropy rounds.
    #[arg(long)]
    sync_interval_secs: Option<u64>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
    /// Redis URL of the Redis Streams transport (with libp2p too: bridge both).
    #[arg(long)]
    redis_url: Option<String>,
    /// Redis only: no libp2p listen addresses, bootstrap peers or mDNS.
    #[arg(long, requires = "redis_url")]
    redis_only: bool,
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
        if let Some(a) = self.control_addr {
            cfg.control_addr = a;
        }
        if let Some(a) = self.http_addr {
            cfg.http_addr = a;
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
        if let Some(u) = &self.redis_url {
            cfg.redis_url = Some(u.clone());
        }
        if self.redis_only {
            cfg.listen.clear();
            cfg.bootstrap.clear();
            cfg.mdns = false;
        }
    }
}

#[derive(Args, Debug)]
struct InitArgs {
    #[command(flatten)]
    net: NetOverrides,
    /// Trust anchor: the genesis policy id of a domain, as `ID` (paired in
    /// order with the `--domain`s given) or `DOMAIN=ID` (repeatable;
    /// optional: `acp anchor add` adds one later).
    #[arg(long)]
    genesis: Vec<String>,
    #[command(flatten)]
    key_seed: KeySeedArg,
}

/// For tests and reproducible walkthroughs only: with `--key-seed`, every
/// key is derived from the given seed instead of the OS random number
/// generator, as `blake3(seed || label)` with the labels "agent", "peer",
/// "human", "reporter", "token" and "org". Anyone who knows the seed holds
/// the keys, hence hidden from `--help`.
#[derive(Args, Debug, Clone, Default)]
struct KeySeedArg {
    /// 64 hex digits: derive the keys from this seed (tests only).
    #[arg(long, hide = true, value_parser = parse_key_seed)]
    key_seed: Option<[u8; 32]>,
}

impl KeySeedArg {
    /// The seed of the key named `label`: derived, or fresh random bytes.
    fn seed(&self, label: &str) -> anyhow::Result<[u8; 32]> {
        Ok(match &self.key_seed {
            Some(master) => {
                let mut h = blake3::Hasher::new();
                h.update(master);
                h.update(label.as_bytes());
                *h.finalize().as_bytes()
            }
            None => keys::random_seed()?,
        })
    }
}

fn parse_key_seed(s: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(s).map_err(|e| format!("not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| "expected 64 hex digits (32 bytes)".to_owned())
}

#[derive(Args, Debug, Clone)]
struct ControlArg {
    /// Control channel address (default: the data directory's config).
    #[arg(long, alias = "api")]
    control: Option<SocketAddr>,
}

#[derive(Subcommand, Debug)]
enum OrgCmd {
    /// Create an organization root key (default `<data-dir>/org.key`).
    Init {
        /// Where to write the key.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        key_seed: KeySeedArg,
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
    /// Attestor of an organization: `ORG_INDEX:KEY_HEX`, the agent key of
    /// one of its nodes, whose receipts count for it toward certification
    /// (one per organization, required for each).
    #[arg(long = "attestor")]
    attestors: Vec<String>,
    /// Member: `AGENT_KEY_HEX:AUTHORITY_BPS[:ORG_INDEX]` (repeatable).
    #[arg(long = "member")]
    members: Vec<String>,
    /// Key that may propose without being a member (repeatable).
    #[arg(long = "proposer")]
    proposers: Vec<PublicKey>,
    /// Human who may decide escalations (repeatable).
    #[arg(long = "human")]
    humans: Vec<PublicKey>,
    /// Key that may report outcomes (repeatable).
    #[arg(long = "reporter")]
    reporters: Vec<PublicKey>,
    /// Id of the policy this one amends (omit for a genesis policy).
    #[arg(long)]
    supersedes: Option<ContentId>,
    /// Root key file of an organization of the amended policy that approves
    /// this amendment without being one of its organizations (repeatable;
    /// the key signs the policy).
    #[arg(long = "approver")]
    approvers: Vec<PathBuf>,
    /// Organizations whose roots must sign this policy's successor
    /// (default: more than two thirds).
    #[arg(long)]
    amendment_quorum: Option<u16>,
    /// Organizations whose attestors must sign one result to certify it
    /// (default: more than two thirds).
    #[arg(long)]
    finality_quorum: Option<u16>,
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
    /// Id of the policy the proposal is decided under (default through the
    /// node: its newest policy for the domain; required with --out).
    #[arg(long)]
    policy: Option<ContentId>,
    /// Action kind, e.g. `loan.approve`.
    #[arg(long)]
    kind: String,
    /// Action payload (JSON text).
    #[arg(long, default_value = "{}")]
    payload: String,
    /// Proposer confidence in [0, 1].
    #[arg(long, default_value_t = 0.8)]
    confidence: f64,
    /// Stakes.
    #[arg(long, default_value_t = 0)]
    stakes: u64,
    /// Evidence reference (repeatable).
    #[arg(long)]
    evidence: Vec<String>,
    /// Responses close this many milliseconds from now.
    #[arg(long, default_value_t = 60_000)]
    closes_in_ms: u64,
    /// Sign offline with the agent key and write the message to this file
    /// instead of asking the node.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    http: HttpArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum StanceArg {
    Endorse,
    Challenge,
    Abstain,
}

#[derive(Args, Debug)]
struct RespondArgs {
    /// Proposal id.
    proposal: ContentId,
    /// Stance.
    #[arg(long, value_enum)]
    stance: StanceArg,
    /// Confidence in [0, 1].
    #[arg(long)]
    confidence: f64,
    /// Reasoning.
    #[arg(long, default_value = "")]
    reasoning: String,
    /// Evidence reference (repeatable).
    #[arg(long)]
    evidence: Vec<String>,
    /// Domain of the proposal (only with --out).
    #[arg(long)]
    domain: Option<String>,
    /// Sign offline with the agent key and write the message to this file
    /// instead of asking the node.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    http: HttpArgs,
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
    match cli.cmd {
        Cmd::Demo { keep_running } => return demo::run(keep_running),
        Cmd::Audit(AuditCmd::Verify {
            bundle,
            genesis,
            json,
        }) => return audit_verify(&bundle, genesis, json),
        _ => {}
    }
    let dir = config::resolve_data_dir(cli.data_dir)?;
    match cli.cmd {
        Cmd::Demo { keep_running } => demo::run(keep_running),
        Cmd::Audit(AuditCmd::Verify {
            bundle,
            genesis,
            json,
        }) => audit_verify(&bundle, genesis, json),
        Cmd::Anchor(AnchorCmd::Add {
            domain,
            genesis,
            http,
        }) => anchor_add(&dir, &domain, genesis, &http),
        Cmd::Anchor(AnchorCmd::List { http }) => {
            let v: AnchorList = http.client(&dir)?.get("/anchors")?;
            if http.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                if v.anchors.is_empty() {
                    println!("no trust anchor: the node admits no message of any domain");
                }
                for a in &v.anchors {
                    println!(
                        "{}  genesis {}  current {}",
                        a.domain,
                        a.genesis,
                        a.current.map_or_else(
                            || "(genesis not received yet)".to_owned(),
                            |c| c.to_string()
                        )
                    );
                }
            }
            Ok(())
        }
        Cmd::Audit(AuditCmd::Export {
            proposal,
            out,
            http,
        }) => {
            let bytes = http
                .client(&dir)?
                .get_bytes(&format!("/proposals/{proposal}/audit"))?;
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            if http.json {
                println!(
                    "{}",
                    json!({"file": out.display().to_string(), "bytes": bytes.len()})
                );
            } else {
                println!("wrote {} ({} bytes)", out.display(), bytes.len());
            }
            Ok(())
        }
        Cmd::Show { proposal, http } => {
            let v: ProposalDetail = http.client(&dir)?.get(&format!("/proposals/{proposal}"))?;
            if http.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                client::print_proposal(&v);
            }
            Ok(())
        }
        Cmd::List {
            domain,
            status,
            http,
        } => {
            let mut q = Vec::new();
            if let Some(d) = &domain {
                q.push(format!("domain={}", urlencode(d)));
            }
            if let Some(s) = &status {
                q.push(format!("status={}", urlencode(s)));
            }
            let path = if q.is_empty() {
                "/proposals".to_owned()
            } else {
                format!("/proposals?{}", q.join("&"))
            };
            let v: ProposalList = http.client(&dir)?.get(&path)?;
            if http.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for p in &v.proposals {
                    println!(
                        "{}  {:<9} {:<11}  {:<16}  {}  {} responses",
                        p.id,
                        status_str(p.status),
                        state_str(p.finality),
                        p.domain,
                        p.kind,
                        p.responses
                    );
                }
            }
            Ok(())
        }
        Cmd::Watch { count, http } => {
            let c = http.client(&dir)?;
            let mut seen = 0usize;
            c.watch(|ev| {
                if http.json {
                    // Adjacently tagged: exactly {"event": name, "data": payload}.
                    match serde_json::to_string(ev) {
                        Ok(line) => println!("{line}"),
                        Err(e) => eprintln!("event {}: {e}", ev.name()),
                    }
                } else {
                    println!("{}", client::event_line(ev));
                }
                seen += 1;
                count.is_none_or(|n| seen < n)
            })
        }
        Cmd::Decide {
            proposal,
            verdict,
            rationale,
            http,
        } => {
            let verdict = match verdict {
                VerdictArg::Approve => Verdict::Approve,
                VerdictArg::Reject => Verdict::Reject,
            };
            let v: DecisionSubmitted = http.client(&dir)?.post(
                &format!("/proposals/{proposal}/decision"),
                &NewDecision { verdict, rationale },
            )?;
            let what = format!("human decision ({})", client::name_of(&verdict));
            if http.json {
                println!("{}", serde_json::to_string(&v)?);
            } else {
                println!("{what} {}", v.id);
                println!("proposal {}: {}", status_str(v.status), v.finality.summary);
            }
            Ok(())
        }
        Cmd::Outcome {
            proposal,
            outcome,
            note,
            http,
        } => {
            let outcome = match outcome {
                OutcomeArg::Succeeded => Outcome::Succeeded,
                OutcomeArg::Failed => Outcome::Failed,
            };
            let v: SubmittedBody = http.client(&dir)?.post(
                &format!("/proposals/{proposal}/outcome"),
                &NewOutcome { outcome, note },
            )?;
            let what = format!("outcome report ({})", client::name_of(&outcome));
            print_submitted(&v, http.json, &what)?;
            Ok(())
        }
        Cmd::Trust { domain, http } => {
            let v: TrustTable = http
                .client(&dir)?
                .get(&format!("/trust?domain={}", urlencode(&domain)))?;
            if http.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                if v.agents.is_empty() {
                    println!(
                        "no agent of {domain} has a trust history yet (everyone starts at the default)"
                    );
                }
                for a in &v.agents {
                    println!("{}  trust {}", a.agent, client::conf(a.trust_bps));
                }
            }
            Ok(())
        }
        Cmd::Page { http } => {
            let c = http.client(&dir)?;
            let token = match &http.token {
                Some(t) => t.clone(),
                None => std::fs::read_to_string(dir.join(keys::TOKEN_FILE))?,
            };
            println!("{}/ui/#token={}", c.base(), token.trim());
            Ok(())
        }
        Cmd::Init(a) => init(&dir, &a),
        Cmd::Org(OrgCmd::Init { out, key_seed }) => {
            config::create_data_dir(&dir)?;
            let path = out.unwrap_or_else(|| dir.join(keys::ORG_KEY_FILE));
            let seed = key_seed.seed("org")?;
            keys::write_seed_file(&path, seed)?;
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
            for (name, file) in [
                ("human", keys::HUMAN_KEY_FILE),
                ("reporter", keys::REPORTER_KEY_FILE),
            ] {
                if let Some(seed) = keys::read_optional_seed(&dir.join(file))? {
                    println!("{name} {}", Keypair::from_seed(seed).public());
                }
            }
            Ok(())
        }
        Cmd::Propose(a) => propose(&dir, a),
        Cmd::Respond(a) => respond(&dir, a),
        Cmd::Submit { file, control } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let v: ControlSubmitted = control_call(
                &dir,
                &control,
                &ControlRequest::Submit {
                    hex: hex::encode(bytes),
                },
            )?;
            println!("{}", v.id);
            Ok(())
        }
        Cmd::Status { control } => {
            let v: Value = control_call(&dir, &control, &ControlRequest::Status)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Cmd::Resolution { proposal, control } => {
            let v: Value = control_call(
                &dir,
                &control,
                &ControlRequest::Resolution {
                    proposal: proposal.to_string(),
                },
            )?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Cmd::Dial { addr, control } => {
            let _: ControlOk = control_call(
                &dir,
                &control,
                &ControlRequest::Dial {
                    addr: addr.to_string(),
                },
            )?;
            Ok(())
        }
        Cmd::Mcp { http } => mcp::run(http.client(&dir)?),
    }
}

fn agent_key(dir: &Path) -> anyhow::Result<Keypair> {
    Ok(Keypair::from_seed(keys::read_seed_file(
        &dir.join(keys::AGENT_KEY_FILE),
    )?))
}

/// Pairs `--genesis` values with domains: `DOMAIN=ID`, or bare ids paired
/// in order with the `--domain`s given (then there must be one per domain).
fn parse_anchors(
    genesis: &[String],
    domains: &[String],
) -> anyhow::Result<std::collections::BTreeMap<String, ContentId>> {
    let bare = genesis.iter().filter(|g| !g.contains('=')).count();
    if bare > 0 && bare != domains.len() {
        bail!(
            "--genesis: {bare} bare id(s) for {} --domain(s); give one per domain, in order, \
             or write DOMAIN=ID",
            domains.len()
        );
    }
    let mut next_domain = domains.iter();
    let mut out = std::collections::BTreeMap::new();
    for g in genesis {
        let (domain, id) = match g.split_once('=') {
            Some((d, id)) => (d.to_owned(), id),
            None => (next_domain.next().cloned().unwrap_or_default(), g.as_str()),
        };
        let id: ContentId = id
            .parse()
            .map_err(|e| anyhow!("--genesis {g}: not a policy id: {e}"))?;
        if !domains.contains(&domain) {
            bail!(
                "--genesis {g}: the node does not join domain {domain:?} (add --domain {domain})"
            );
        }
        if out
            .insert(domain.clone(), id)
            .is_some_and(|prev| prev != id)
        {
            bail!("--genesis: two anchors for domain {domain:?}");
        }
    }
    Ok(out)
}

fn init(dir: &Path, a: &InitArgs) -> anyhow::Result<()> {
    let cfg_path = dir.join(config::CONFIG_FILE);
    if cfg_path.exists() {
        bail!(
            "{} is already initialized ({} exists)",
            dir.display(),
            cfg_path.display()
        );
    }
    let mut cfg = Config::default();
    a.net.apply(&mut cfg);
    cfg.anchors = parse_anchors(&a.genesis, &cfg.domains)?;
    cfg.check()?;
    config::create_data_dir(dir)?;
    let ks = &a.key_seed;
    let seed_file = |file: &str, label: &str| -> anyhow::Result<[u8; 32]> {
        let seed = ks.seed(label)?;
        keys::write_seed_file(&dir.join(file), seed)?;
        Ok(seed)
    };
    let seed = seed_file(keys::AGENT_KEY_FILE, "agent")?;
    let peer = keys::write_peer_key_seed(&dir.join(keys::PEER_KEY_FILE), ks.seed("peer")?)?;
    let human = seed_file(keys::HUMAN_KEY_FILE, "human")?;
    let reporter = seed_file(keys::REPORTER_KEY_FILE, "reporter")?;
    keys::write_token_file(&dir.join(keys::TOKEN_FILE), ks.seed("token")?)?;
    std::fs::write(&cfg_path, cfg.to_documented_toml())
        .with_context(|| format!("writing {}", cfg_path.display()))?;
    println!("initialized {}", dir.display());
    println!("agent {}", Keypair::from_seed(seed).public());
    println!("peer {}", peer.public().to_peer_id());
    println!("human {}", Keypair::from_seed(human).public());
    println!("reporter {}", Keypair::from_seed(reporter).public());
    for (domain, genesis) in &cfg.anchors {
        println!("anchor {domain} {genesis}");
    }
    if cfg.domains.iter().any(|d| !cfg.anchors.contains_key(d)) {
        println!(
            "domains without a trust anchor admit no message until one is added \
             (acp anchor add --domain D --genesis ID)"
        );
    }
    Ok(())
}

/// `acp anchor add`: through the running node's API (which writes
/// config.toml itself); when no node answers, into config.toml directly.
fn anchor_add(dir: &Path, domain: &str, genesis: ContentId, http: &HttpArgs) -> anyhow::Result<()> {
    let client = http.client(dir)?;
    let v: AnchorAdded = if client.reachable() {
        client.post(
            "/anchors",
            &AnchorBody {
                domain: domain.to_owned(),
                genesis: genesis.to_string(),
            },
        )?
    } else {
        let cfg = Config::load(dir)?;
        if !cfg.domains.iter().any(|d| d == domain) {
            bail!(
                "this node does not join domain {domain:?} (add it to `domains` in {})",
                dir.join(config::CONFIG_FILE).display()
            );
        }
        let new = match cfg.anchors.get(domain) {
            Some(current) if *current == genesis => false,
            Some(current) => bail!(
                "domain {domain:?} already has the genesis {current}; edit [anchors] in config.toml \
                 to change it"
            ),
            None => {
                config::persist_anchor(dir, domain, genesis)?;
                true
            }
        };
        eprintln!(
            "no node answers at {}: written to config.toml, taken at the node's next start",
            client.base()
        );
        AnchorAdded {
            domain: domain.to_owned(),
            genesis,
            new,
        }
    };
    if http.json {
        println!("{}", serde_json::to_string(&v)?);
    } else if v.new {
        println!("anchor {domain} {genesis}");
    } else {
        println!("anchor {domain} {genesis} (already there)");
    }
    Ok(())
}

fn control_call<T: serde::de::DeserializeOwned>(
    dir: &Path,
    control: &ControlArg,
    req: &ControlRequest,
) -> anyhow::Result<T> {
    let addr = match control.control {
        Some(a) => a,
        None => Config::load(dir)?.control_addr,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(control::call_as(addr, req))?)
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

fn parse_attestor(spec: &str, orgs: usize) -> anyhow::Result<(usize, PublicKey)> {
    let bad = || anyhow!("--attestor {spec}: expected ORG_INDEX:KEY_HEX");
    let (org, key) = spec.split_once(':').ok_or_else(bad)?;
    let org: usize = org.parse().map_err(|_| bad())?;
    let key: PublicKey = key.parse().map_err(|_| bad())?;
    if org >= orgs {
        bail!("--attestor {spec}: organization index {org} out of range");
    }
    Ok((org, key))
}

fn policy_create(a: PolicyArgs) -> anyhow::Result<()> {
    let orgs: Vec<(Keypair, String, u16)> = a
        .orgs
        .iter()
        .map(|s| parse_org(s))
        .collect::<Result<_, _>>()?;
    let mut attestors: Vec<Option<PublicKey>> = vec![None; orgs.len()];
    for spec in &a.attestors {
        let (org, key) = parse_attestor(spec, orgs.len())?;
        if attestors[org].replace(key).is_some() {
            bail!("--attestor {spec}: organization {org} already has an attestor");
        }
    }
    let mut b = PolicyBuilder::new(&a.domain);
    for (i, ((root, name, cap), attestor)) in orgs.iter().zip(&attestors).enumerate() {
        // Without an attestor nobody's receipts would count for the
        // organization and no proposal could be certified with it.
        let Some(attestor) = attestor else {
            bail!(
                "organization {i} ({name}) has no --attestor {i}:<agent key of one of its nodes>"
            );
        };
        b = b.organization_attested(root, name, *cap, attestor);
    }
    for spec in &a.members {
        let (agent, auth, org) = parse_member(spec, orgs.len())?;
        b = b.member(&agent, u16::try_from(org)?, auth);
    }
    let unique =
        |v: &[PublicKey]| -> std::collections::BTreeSet<PublicKey> { v.iter().copied().collect() };
    for k in unique(&a.proposers) {
        b = b.proposer(&k);
    }
    for k in unique(&a.humans) {
        b = b.human(&k);
    }
    for k in unique(&a.reporters) {
        b = b.reporter(&k);
    }
    let approvers: Vec<Keypair> = a
        .approvers
        .iter()
        .map(|f| Ok(Keypair::from_seed(keys::read_seed_file(f)?)))
        .collect::<anyhow::Result<_>>()?;
    for k in &approvers {
        b = b.approver(&k.public());
    }
    if let Some(id) = a.supersedes {
        b = b.supersedes(id);
    }
    if let Some(q) = a.amendment_quorum {
        b = b.amendment_quorum(q);
    }
    if let Some(q) = a.finality_quorum {
        b = b.finality_quorum(q);
    }
    let body = b
        .rules(DecisionRules {
            quorum_margin_bps: a.quorum_margin_bps,
            min_participation_bps: a.min_participation_bps,
            low_confidence_bps: a.low_confidence_bps,
            high_stakes: a.high_stakes,
            min_window_ms: a.min_window_ms,
            max_window_ms: a.max_window_ms,
        })
        .issued(a.revision, now())
        .body();
    let signers: Vec<&Keypair> = orgs.iter().map(|o| &o.0).chain(&approvers).collect();
    write_signed(Body::Policy(body), &signers, &a.out)
}

fn write_signed(body: Body, keys: &[&Keypair], out: &Path) -> anyhow::Result<()> {
    write_message(&body.sign(keys)?, out)
}

fn write_message(msg: &SignedMessage, out: &Path) -> anyhow::Result<()> {
    // Check it the way every node will.
    acp_protocol::decode_message(&msg.bytes).context("the signed message does not validate")?;
    std::fs::write(out, &msg.bytes).with_context(|| format!("writing {}", out.display()))?;
    println!("{}", msg.id);
    Ok(())
}

fn print_submitted(v: &SubmittedBody, json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(v)?);
    } else {
        println!("{what} {}", v.id);
    }
    Ok(())
}

/// Percent-encodes a query value.
fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn propose(dir: &Path, a: ProposeArgs) -> anyhow::Result<()> {
    let confidence_bps = confidence_to_bps(a.confidence).context("--confidence")?;
    let Some(out) = &a.out else {
        let payload: Value =
            serde_json::from_str(&a.payload).unwrap_or_else(|_| Value::String(a.payload.clone()));
        let v: SubmittedBody = a.http.client(dir)?.post(
            "/proposals",
            &NewProposal {
                domain: a.domain,
                policy: a.policy.map(|p| p.to_string()),
                kind: a.kind,
                payload,
                confidence: a.confidence,
                stakes: a.stakes,
                evidence: a.evidence,
                closes_in_ms: a.closes_in_ms,
                supersedes: None,
            },
        )?;
        print_submitted(&v, a.http.json, "proposal")?;
        return Ok(());
    };
    let Some(policy) = a.policy else {
        bail!("--out needs --policy (offline signing cannot look the policy up)");
    };
    let key = agent_key(dir)?;
    let created = now();
    let msg = Ask {
        domain: &a.domain,
        policy,
        kind: &a.kind,
        payload: a.payload,
        confidence_bps,
        stakes: a.stakes,
        evidence: a.evidence,
        created_at: created,
        closes_at: created.plus_ms(a.closes_in_ms),
    }
    .sign(&key)?;
    write_message(&msg, out)
}

fn respond(dir: &Path, a: RespondArgs) -> anyhow::Result<()> {
    let confidence_bps = confidence_to_bps(a.confidence).context("--confidence")?;
    let stance = match a.stance {
        StanceArg::Endorse => Stance::Endorse,
        StanceArg::Challenge => Stance::Challenge,
        StanceArg::Abstain => Stance::Abstain,
    };
    let Some(out) = &a.out else {
        let v: SubmittedBody = a.http.client(dir)?.post(
            &format!("/proposals/{}/responses", a.proposal),
            &NewResponse {
                stance,
                confidence: a.confidence,
                reasoning: a.reasoning,
                evidence: a.evidence,
            },
        )?;
        print_submitted(&v, a.http.json, "response")?;
        return Ok(());
    };
    let Some(domain) = a.domain else {
        bail!("--out needs --domain (offline signing cannot look the proposal up)");
    };
    let key = agent_key(dir)?;
    let body = Body::Response(Response {
        responder: key.public(),
        domain,
        proposal: a.proposal,
        stance,
        confidence_bps,
        reasoning: a.reasoning,
        evidence: a.evidence,
        issued_at: now(),
    });
    write_signed(body, &[&key], out)
}

fn audit_verify(path: &Path, want_genesis: Option<ContentId>, json: bool) -> anyhow::Result<()> {
    use acp_node::surface::view::summary;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let report = acp_protocol::bundle::verify_bundle(&bytes)
        .map_err(|e| anyhow!("{} does NOT verify: {e}", path.display()))?;
    // Verified, so it decodes: the genesis it was verified under.
    let bundle: AuditBundle =
        acp_protocol::codec::decode_large(&bytes, acp_protocol::codec::MAX_CONTAINER_BYTES)
            .map_err(|e| anyhow!("{} does NOT verify: {e}", path.display()))?;
    if let Some(want) = want_genesis
        && want != bundle.genesis
    {
        bail!(
            "{} was verified under genesis {}, not the required {want}: it belongs to another \
             lineage of the domain",
            path.display(),
            bundle.genesis
        );
    }
    let r = &report.resolution;
    let f = &r.finality;
    let cert = f.certificate.as_ref();
    let policy = bundle
        .messages
        .iter()
        .filter_map(|m| acp_protocol::decode_message(m).ok())
        .find(|m| m.id == r.policy)
        .and_then(|m| match m.body() {
            Body::Policy(p) => Some(p.clone()),
            _ => None,
        });
    let org_name = |i: u16| -> String {
        policy
            .as_ref()
            .and_then(|p| p.organizations.get(usize::from(i)))
            .map_or_else(|| format!("organization {i}"), |o| o.name.clone())
    };
    if json {
        let verified = AuditVerified {
            ok: true,
            proposal: report.proposal,
            genesis: bundle.genesis,
            genesis_required: want_genesis,
            messages: report.messages,
            status: r.final_status(),
            computed_status: r.status,
            resolution: r.digest(),
            finality: acp_node::surface::view::finality(r, policy.as_ref(), &[]),
            certificate: summary(f),
            recomputed_matches_certificate: report.recomputed_matches_certificate,
            receipts_ignored: report.receipts_ignored,
        };
        println!("{}", serde_json::to_string(&verified)?);
        return Ok(());
    }
    println!("{} verifies", path.display());
    println!("  proposal    {}", report.proposal);
    println!(
        "  genesis     {}{}",
        bundle.genesis,
        if want_genesis.is_some() {
            " (the required one)"
        } else {
            " (compare it with your own trust anchor for the domain, or pass --genesis)"
        }
    );
    println!(
        "  messages    {} (every signature and encoding checked, lineage from the genesis)",
        report.messages
    );
    println!("  finality    {} — {}", state_str(f.state), summary(f));
    if let Some(c) = cert {
        println!(
            "  certificate round {}, {}, resolution {}, counted root {}",
            u8::from(c.result.is_human()),
            status_str(c.result.status),
            c.result.resolution,
            c.result.counted_root
        );
        for (o, rid) in c.organizations.iter().zip(&c.receipts) {
            println!("    {:<24} receipt {rid}", org_name(*o));
        }
        if report.recomputed_matches_certificate {
            println!("  recomputed  the bundle's messages recompute exactly the certified digest");
        } else if f.is_certified() {
            println!(
                "  recomputed  {} — the bundle also holds messages the certificate did not count \
                 (late, backdated or equivocating); the certified result stands",
                r.digest()
            );
        }
    } else {
        println!(
            "  computed    {} resolution {} (no certificate)",
            status_str(r.status),
            r.digest()
        );
    }
    for e in &f.equivocations {
        println!(
            "  equivocation by {}'s attestor in round {}: receipts {}",
            org_name(e.organization),
            u8::from(e.human_round),
            e.receipts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if report.receipts_ignored > 0 {
        println!(
            "  ignored     {} receipt(s) by keys that attest for no organization",
            report.receipts_ignored
        );
    }
    Ok(())
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let redis_keys: Vec<String> = cfg
            .redis_url
            .as_ref()
            .map(|_| cfg.domains.iter().map(|d| redis::stream_key(d)).collect())
            .unwrap_or_default();
        let mut node = Node::builder(cfg).data_dir(dir).spawn().await?;
        // The lines `acp_node::launch` (and any supervisor) reads.
        let peer_id = node.peer_id();
        let mut listen = node.listen_addrs();
        tokio::spawn(async move {
            let mut printed = 0;
            loop {
                for addr in listen.borrow_and_update().iter().skip(printed) {
                    println!("ACP-LISTEN {addr}/p2p/{peer_id}");
                    printed += 1;
                }
                if listen.changed().await.is_err() {
                    break;
                }
            }
        });
        if !redis_keys.is_empty() {
            println!("ACP-REDIS {}", redis_keys.join(" "));
        }
        println!("ACP-PEER {peer_id}");
        println!("ACP-AGENT {}", node.agent());
        println!("ACP-CONTROL {}", node.control_addr());
        println!("ACP-HTTP {}", node.http_addr());
        println!(
            "ACP-PAGE http://{}/ui/#token={}",
            node.http_addr(),
            node.token()
        );
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
            () = node.stopped() => tracing::warn!("node core stopped"),
        }
        anyhow::Ok(())
    })
}
