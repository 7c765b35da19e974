//! Mixed transports: node A on libp2p only, node B on Redis Streams only,
//! node C bridging both. One decision; every node computes the same receipt.
//! Needs `redis-server` and `redis-cli` (Debian package `redis-server`; see
//! `harness::require`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::*;
use acp_protocol::{Keypair, Stance};

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

fn start_redis(dir: &Path) -> RedisServer {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("redis-server: {e}"));
    let server = RedisServer { child, port };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_until(10, "redis-server", || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            .ok()
            .map(|_| ())
    });
    server
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

#[test]
fn libp2p_and_redis_nodes_agree_on_one_decision() {
    let why = "one node speaks only Redis Streams";
    if !require("redis-server", why) || !require("redis-cli", why) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let redis = start_redis(scratch.path());
    let url = format!("redis://127.0.0.1:{}/", redis.port);
    let stream = acp_node::transport::redis::stream_key(DOMAIN);
    // Garbage already in the log: every node must drop it, none re-appends it.
    redis_cli(redis.port, &["XADD", &stream, "*", "m", "not a message"]);

    let (ka, kb, kc) = (fresh_key(), fresh_key(), fresh_key());
    let a = TestNode::ephemeral(loopback_config(&[DOMAIN]), ka.clone(), &[]);
    // C bridges: libp2p (from A) and Redis.
    let mut c_cfg = loopback_config(&[DOMAIN]);
    c_cfg.redis_url = Some(url.clone());
    let c = TestNode::ephemeral(c_cfg, kc.clone(), &[&a.tcp]);
    wait_until(15, "A and C connected", || (a.peers() >= 1).then_some(()));

    let agents: Vec<&Keypair> = vec![&ka, &kb, &kc];
    let pol_msg = orgs_policy(DOMAIN, &agents, &[], None);
    let (pol, pol_bytes) = (pol_msg.id, pol_msg.bytes);
    a.anchor(pol);
    c.anchor(pol);
    a.submit(&pol_bytes);
    let (p, p_bytes) = proposal(&ka, pol, 6_000);
    a.submit(&p_bytes);
    wait_until(10, "proposal on C", || c.has(&p).engine.then_some(()));

    // B starts late and Redis-only: reading the stream from the start is
    // its full sync, so it must trust the genesis before it starts (in
    // its configuration). Redis only: no libp2p listen address.
    let mut b_cfg = loopback_config(&[DOMAIN]);
    b_cfg.redis_url = Some(url.clone());
    b_cfg.listen.clear();
    b_cfg.anchors.insert(DOMAIN.to_owned(), pol);
    let b = TestNode::ephemeral(b_cfg, kb.clone(), &[]);
    assert_eq!(b.peers(), 0);
    wait_until(10, "policy and proposal on B", || {
        (b.has(&pol).engine && b.has(&p).engine).then_some(())
    });
    b.submit(&response(&kb, p, Stance::Endorse).1);
    c.submit(&response(&kc, p, Stance::Endorse).1);

    let nodes = [&a, &b, &c];
    let r = identical_receipts(&nodes, &p, 3, 20);
    assert_eq!(r.status, Status::Approved, "{r:?}");
    assert_eq!(r.counted, 2, "{r:?}");
    let rs: Vec<ResolutionAnswer> = nodes.iter().map(|n| n.resolution(&p)).collect();
    assert_eq!(r.finality.certified_by, 3, "{r:?}");
    for x in &rs {
        assert_eq!(x.status, r.status, "{x:?}");
        assert_eq!(x.finality.certificate, r.finality.certificate, "{x:?}");
        assert_eq!(x.resolution, r.resolution, "{x:?}");
        assert_eq!(x.counted_root, r.counted_root, "{x:?}");
        for rc in &x.receipts {
            assert_eq!(rc.status, r.status, "{rc:?}");
            assert_eq!(rc.resolution, r.resolution, "{rc:?}");
            assert_eq!(rc.counted_root, r.counted_root, "{rc:?}");
        }
    }
    // Same message set on both sides of the bridge.
    same_set(&nodes, 10);
    // Garbage stays one entry: nobody re-published it.
    let dump = redis_cli(redis.port, &["XRANGE", &stream, "-", "+"]);
    assert_eq!(dump.matches("not a message").count(), 1, "{dump}");
    // The log holds the garbage entry plus at least the policy, the proposal,
    // two responses and three receipts.
    let len: usize = redis_cli(redis.port, &["XLEN", &stream]).parse().unwrap();
    assert!(len > 7, "stream length {len}");
}
