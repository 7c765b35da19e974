//! The baseline of item 3: a minimal central coordinator over HTTP/1.1 on
//! loopback — the architecture ACP replaces. The proposer POSTs the proposal,
//! each agent POSTs its vote, the coordinator decides when all `k` votes are
//! in (approve when endorsements outnumber challenges) and answers every
//! long-polling observer (`GET /decision/<n>`). With `durable`, it appends
//! each proposal and vote to a file and `fdatasync`s before answering, as a
//! coordinator that must not lose votes would.
//!
//! HTTP is hand-written (request line, `Content-Length`, one request per
//! connection): less work per request than a general HTTP stack, so the
//! baseline is, if anything, optimistic for the coordinator.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

#[derive(Default)]
struct Entry {
    votes: usize,
    endorse: usize,
    decided: Option<watch::Sender<Option<bool>>>,
}

struct State {
    k: usize,
    proposals: Mutex<HashMap<u64, Entry>>,
    log: Option<Mutex<std::fs::File>>,
}

impl State {
    fn watch(&self, id: u64) -> watch::Receiver<Option<bool>> {
        let mut g = self.proposals.lock().unwrap_or_else(|e| e.into_inner());
        let e = g.entry(id).or_default();
        e.decided
            .get_or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    fn persist(&self, body: &[u8]) -> std::io::Result<()> {
        if let Some(f) = &self.log {
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            f.write_all(body)?;
            f.write_all(b"\n")?;
            f.sync_data()?;
        }
        Ok(())
    }
}

/// A running coordinator; stops with its runtime when dropped.
pub struct Coordinator {
    pub addr: SocketAddr,
    _rt: tokio::runtime::Runtime,
}

impl Coordinator {
    /// Starts a coordinator for `k` votes per proposal on 127.0.0.1.
    pub fn start(k: usize, durable_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let log = match durable_file {
            Some(p) => Some(Mutex::new(std::fs::File::create(p)?)),
            None => None,
        };
        let state = Arc::new(State {
            k,
            proposals: Mutex::new(HashMap::new()),
            log,
        });
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        rt.spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    continue;
                };
                let _ = s.set_nodelay(true);
                let st = state.clone();
                tokio::spawn(async move {
                    let _ = serve(s, st).await;
                });
            }
        });
        Ok(Self { addr, _rt: rt })
    }
}

async fn serve(s: tokio::net::TcpStream, st: Arc<State>) -> anyhow::Result<()> {
    let (rd, mut wr) = s.into_split();
    let mut rd = tokio::io::BufReader::new(rd);
    let mut line = String::new();
    rd.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        rd.read_line(&mut h).await?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, v)) = h.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse()?;
        }
    }
    let mut body = vec![0u8; len.min(1 << 20)];
    rd.read_exact(&mut body).await?;
    let id = |p: &str| p.rsplit('/').next().and_then(|x| x.parse::<u64>().ok());
    let answer = match (method.as_str(), path.as_str()) {
        ("POST", p) if p.starts_with("/proposal/") => {
            let n = id(p).context("id")?;
            let st2 = st.clone();
            tokio::task::spawn_blocking(move || st2.persist(&body)).await??;
            st.watch(n);
            "{\"ok\":true}".to_owned()
        }
        ("POST", p) if p.starts_with("/vote/") => {
            let n = id(p).context("id")?;
            let endorse = body.first() == Some(&b'E');
            let st2 = st.clone();
            tokio::task::spawn_blocking(move || st2.persist(&body)).await??;
            let mut g = st.proposals.lock().unwrap_or_else(|e| e.into_inner());
            let e = g.entry(n).or_default();
            e.votes += 1;
            e.endorse += usize::from(endorse);
            if e.votes == st.k {
                let approve = 2 * e.endorse > e.votes;
                if let Some(tx) = &e.decided {
                    tx.send_replace(Some(approve));
                } else {
                    e.decided = Some(watch::channel(Some(approve)).0);
                }
            }
            "{\"ok\":true}".to_owned()
        }
        ("GET", p) if p.starts_with("/decision/") => {
            let mut rx = st.watch(id(p).context("id")?);
            let v = *rx.wait_for(Option::is_some).await?;
            format!("{{\"ok\":true,\"approved\":{}}}", v == Some(true))
        }
        _ => "{\"ok\":false}".to_owned(),
    };
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    wr.write_all(resp.as_bytes()).await?;
    Ok(())
}

/// One blocking HTTP/1.1 request on a fresh connection; returns the body.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> anyhow::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req)?;
    let mut rd = BufReader::new(s);
    let mut status = String::new();
    rd.read_line(&mut status)?;
    if !status.contains(" 200 ") {
        bail!("coordinator answered {status:?}");
    }
    let mut rest = String::new();
    rd.read_to_string(&mut rest)?;
    Ok(rest
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default())
}
