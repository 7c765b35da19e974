//! Mixed transports: node A on libp2p only, node B on Redis Streams only,
//! node C bridging both. One decision; every node computes the same receipt.
//! Needs `redis-server` (Debian package `redis-server`); without it the test
//! prints `REDIS SKIPPED` and returns.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acp_protocol::{Keypair, Stance};
use common::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_acp");

struct RedisServer {
    child: Child,
    port: u16,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis(dir: &Path) -> Option<RedisServer> {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = match Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("redis-server: {e}"),
    };
    let server = RedisServer { child, port };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for(10, "redis-server", || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            .ok()
            .map(|_| ())
    });
    Some(server)
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "redis-cli {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Starts `acp node` with extra flags; `libp2p` says whether it listens.
fn start(dir: &Path, extra: &[&str], libp2p: bool, redis: bool) -> TestNode {
    let log = dir.join("node.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("node")
        .args(extra)
        .env("RUST_LOG", "info,libp2p=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    let (mut api, mut peer_id, mut tcp, mut quic, mut http, mut page) =
        (None, None, None, None, None, None);
    let mut redis_ready = !redis;
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.is_none()
        || peer_id.is_none()
        || http.is_none()
        || page.is_none()
        || !redis_ready
        || (libp2p && (tcp.is_none() || quic.is_none()))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            panic!(
                "node did not start; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let mut parts = line.splitn(2, ' ');
        match (parts.next(), parts.next()) {
            (Some("ACP-CONTROL"), Some(a)) => api = Some(a.parse().unwrap()),
            (Some("ACP-PEER"), Some(p)) => peer_id = Some(p.to_owned()),
            (Some("ACP-HTTP"), Some(a)) => http = Some(format!("http://{a}")),
            (Some("ACP-PAGE"), Some(a)) => page = Some(a.to_owned()),
            (Some("ACP-REDIS"), Some(_)) => redis_ready = true,
            (Some("ACP-LISTEN"), Some(a)) if a.contains("/tcp/") => tcp = Some(a.to_owned()),
            (Some("ACP-LISTEN"), Some(a)) if a.contains("/quic-v1/") => quic = Some(a.to_owned()),
            _ => {}
        }
    }
    let token = std::fs::read_to_string(dir.join("api.token"))
        .unwrap()
        .trim()
        .to_owned();
    TestNode {
        child,
        api: api.unwrap(),
        peer_id: peer_id.unwrap(),
        tcp: tcp.unwrap_or_default(),
        quic: quic.unwrap_or_default(),
        http: http.unwrap(),
        page: page.unwrap(),
        token,
        log,
    }
}

#[test]
fn libp2p_and_redis_nodes_agree_on_one_decision() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(redis) = start_redis(scratch.path()) else {
        println!("REDIS SKIPPED: redis-server not installed");
        return;
    };
    let url = format!("redis://127.0.0.1:{}/", redis.port);
    let stream = acp_node::transport::redis::stream_key(DOMAIN);
    // Garbage already in the log: every node must drop it, none re-appends it.
    redis_cli(redis.port, &["XADD", &stream, "*", "m", "not a message"]);

    let (da, db, dc) = (DataDir::new(), DataDir::new(), DataDir::new());
    let a = start(da.path(), &[], true, false);
    let c = start(
        dc.path(),
        &["--bootstrap", &a.tcp, "--redis-url", &url],
        true,
        true,
    );
    wait_for(15, "A and C connected", || (a.peers() >= 1).then_some(()));

    let agents: Vec<&Keypair> = vec![&da.agent, &db.agent, &dc.agent];
    let pol_msg = orgs_policy(DOMAIN, &agents, &[], None);
    let (pol, pol_bytes) = (pol_msg.id, pol_msg.bytes);
    a.anchor(pol);
    c.anchor(pol);
    a.submit(&pol_bytes);
    let (p, p_bytes) = proposal(&da.agent, pol, 6_000);
    a.submit(&p_bytes);
    wait_for(10, "proposal on C", || c.has(&p).0.then_some(()));

    // B starts late and Redis-only: reading the stream from the start is
    // its full sync, so it must trust the genesis before it starts (the
    // offline way: config.toml).
    acp_node::config::persist_anchor(db.path(), DOMAIN, pol).unwrap();
    let b = start(
        db.path(),
        &["--redis-url", &url, "--redis-only"],
        false,
        true,
    );
    assert_eq!(b.peers(), 0);
    wait_for(10, "policy and proposal on B", || {
        (b.has(&pol).0 && b.has(&p).0).then_some(())
    });
    b.submit(&response(&db.agent, p, Stance::Endorse).1);
    c.submit(&response(&dc.agent, p, Stance::Endorse).1);

    let nodes = [&a, &b, &c];
    let r = identical_receipts(&nodes, &p, 3, 20);
    assert_eq!(r["status"], "approved", "{r}");
    assert_eq!(r["counted"], 2, "{r}");
    let rs: Vec<Value> = nodes.iter().map(|n| n.resolution(&p)).collect();
    assert_eq!(r["finality"]["certified_by"], 3, "{r}");
    for x in &rs {
        assert_eq!(x["status"], r["status"], "{x}");
        assert_eq!(
            x["finality"]["certificate"], r["finality"]["certificate"],
            "{x}"
        );
        assert_eq!(x["resolution"], r["resolution"], "{x}");
        assert_eq!(x["counted_root"], r["counted_root"], "{x}");
        for rc in x["receipts"].as_array().unwrap() {
            assert_eq!(rc["status"], r["status"], "{rc}");
            assert_eq!(rc["resolution"], r["resolution"], "{rc}");
            assert_eq!(rc["counted_root"], r["counted_root"], "{rc}");
        }
    }
    // Same message set on both sides of the bridge.
    wait_for(10, "same set", || {
        let ids = a.ids();
        (ids == b.ids() && ids == c.ids()).then_some(())
    });
    // Garbage stays one entry: nobody re-published it.
    let dump = redis_cli(redis.port, &["XRANGE", &stream, "-", "+"]);
    assert_eq!(dump.matches("not a message").count(), 1, "{dump}");
    // The log holds the garbage entry plus at least the policy, the proposal,
    // two responses and three receipts.
    let len: usize = redis_cli(redis.port, &["XLEN", &stream]).parse().unwrap();
    assert!(len > 7, "stream length {len}");
}
