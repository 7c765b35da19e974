//! Starting `acp node` as a child process: `acp --data-dir DIR init ...`,
//! then `acp --data-dir DIR node`, its stderr into a log file, waiting for the
//! addresses it announces on stdout. Used by `acp demo`, `acp-bench` and the
//! integration tests, which all need real node processes on ephemeral ports
//! and learn the ports only from these lines.
//!
//! ```no_run
//! # fn main() -> Result<(), acp_node::launch::LaunchError> {
//! use acp_node::launch::Launch;
//! let launch = Launch::new("target/release/acp", "/tmp/n0");
//! launch.init(["--listen", "/ip4/127.0.0.1/tcp/0", "--control-addr", "127.0.0.1:0"])?;
//! let started = launch.start()?;
//! println!("control API on {}", started.announced.control);
//! # Ok(())
//! # }
//! ```

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How many trailing lines of the node's log an error carries.
const LOG_TAIL_LINES: usize = 40;

/// Why a node could not be initialized or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The program (or the log file) could not be opened or run at all.
    #[error("launch: {what}: {error}")]
    Io { what: String, error: std::io::Error },
    /// `acp init` ran and failed.
    #[error("launch: init in {dir} failed: {stderr}")]
    Init { dir: PathBuf, stderr: String },
    /// The node exited, or stayed silent past the deadline, before it
    /// announced everything waited for.
    #[error("launch: node in {dir} {why}, still missing {missing}; log tail:\n{log_tail}")]
    NotStarted {
        dir: PathBuf,
        why: String,
        missing: String,
        log_tail: String,
    },
    /// An `ACP-CONTROL` or `ACP-HTTP` line did not hold a socket address.
    #[error("launch: node in {dir} announced a malformed line {line:?}")]
    Malformed { dir: PathBuf, line: String },
}

/// What `acp node` printed on stdout at startup.
#[derive(Debug, Clone)]
pub struct Announced {
    /// `ACP-PEER`: the libp2p peer id.
    pub peer: String,
    /// `ACP-CONTROL`: the JSON-lines control channel.
    pub control: SocketAddr,
    /// `ACP-HTTP`: the HTTP API.
    pub http: SocketAddr,
    /// `ACP-PAGE`: the escalation page, with the token in the fragment.
    pub page: String,
    /// The first `ACP-LISTEN` with `/tcp/`, ending in `/p2p/<peer id>`.
    pub tcp: String,
    /// The first `ACP-LISTEN` with `/quic-v1/`: always `Some` after
    /// [`Launch::wait_quic`], else only if it came before the rest.
    pub quic: Option<String>,
}

/// A started node. It is not killed on drop: every caller already owns the
/// process in a type of its own with its own kill policy.
#[derive(Debug)]
pub struct Started {
    pub child: Child,
    pub announced: Announced,
    /// The stdout lines after those waited for, as they come.
    pub lines: Receiver<String>,
}

/// How to initialize and start one node; see the module documentation.
#[derive(Debug, Clone)]
pub struct Launch {
    prefix: Vec<OsString>,
    exe: PathBuf,
    dir: PathBuf,
    bootstrap: Vec<String>,
    env: Vec<(OsString, OsString)>,
    log: PathBuf,
    append_log: bool,
    quic: bool,
    timeout: Duration,
}

impl Launch {
    /// `exe` is the `acp` binary, `dir` the data directory. By default the
    /// log is `dir/node.log`, truncated, and the node has 30 s to start.
    pub fn new(exe: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self {
            prefix: Vec::new(),
            exe: exe.into(),
            log: dir.join("node.log"),
            dir,
            bootstrap: Vec::new(),
            env: Vec::new(),
            append_log: false,
            quic: false,
            timeout: Duration::from_secs(30),
        }
    }

    /// Runs `acp` through a wrapper such as `ip netns exec NS`; the wrapper
    /// must exec `acp`, so that the child is the node itself.
    #[must_use]
    pub fn prefix<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, words: I) -> Self {
        self.prefix = words.into_iter().map(Into::into).collect();
        self
    }

    /// Adds `--bootstrap ADDR` for each address.
    #[must_use]
    pub fn bootstrap<I: IntoIterator<Item = S>, S: Into<String>>(mut self, addrs: I) -> Self {
        self.bootstrap.extend(addrs.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable of the node process.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Where the node's stderr goes; `append` keeps the log of earlier runs
    /// (a restarted node's history stays in one file).
    #[must_use]
    pub fn log(mut self, path: impl Into<PathBuf>, append: bool) -> Self {
        self.log = path.into();
        self.append_log = append;
        self
    }

    /// Also waits for a QUIC listen address.
    #[must_use]
    pub fn wait_quic(mut self) -> Self {
        self.quic = true;
        self
    }

    /// How long the node may take to announce itself.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `acp --data-dir DIR`, behind the prefix if any.
    fn command(&self) -> Command {
        let mut cmd = match self.prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&self.exe);
                c
            }
            None => Command::new(&self.exe),
        };
        cmd.arg("--data-dir").arg(&self.dir);
        cmd
    }

    fn program(&self) -> String {
        self.prefix
            .first()
            .map_or(self.exe.display().to_string(), |p| {
                p.to_string_lossy().into_owned()
            })
    }

    /// Runs `acp --data-dir DIR init ARGS` and waits for it.
    pub fn init<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(
        &self,
        args: I,
    ) -> Result<(), LaunchError> {
        let out = self
            .command()
            .arg("init")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|error| LaunchError::Io {
                what: format!("running {} init", self.program()),
                error,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(LaunchError::Init {
                dir: self.dir.clone(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }

    /// `init` with ephemeral ports on 127.0.0.1 (TCP listen, control and
    /// HTTP APIs) and mDNS off, so that nodes sharing a machine neither
    /// collide on ports nor find each other unasked; `extra` comes after.
    pub fn init_loopback(
        &self,
        domain: &str,
        sync_interval_secs: u64,
        extra: &[&str],
    ) -> Result<(), LaunchError> {
        let sync = sync_interval_secs.to_string();
        let args = [
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--control-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--no-mdns",
            "--domain",
            domain,
            "--sync-interval-secs",
            &sync,
        ];
        self.init(args.iter().chain(extra))
    }

    /// Spawns `acp --data-dir DIR node` and waits until it has announced its
    /// control, HTTP and page addresses, its peer id and a TCP listen address
    /// (and a QUIC one with [`Launch::wait_quic`]). On failure the process is
    /// killed: nobody else holds it yet.
    pub fn start(&self) -> Result<Started, LaunchError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.append_log)
            .truncate(!self.append_log)
            .open(&self.log)
            .map_err(|error| LaunchError::Io {
                what: format!("opening the log {}", self.log.display()),
                error,
            })?;
        let mut cmd = self.command();
        cmd.arg("node");
        for b in &self.bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let mut child = cmd
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|error| LaunchError::Io {
                what: format!("running {} node", self.program()),
                error,
            })?;
        let lines = read_lines(child.stdout.take().expect("stdout is piped above"));
        match self.announced(&lines) {
            Ok(announced) => Ok(Started {
                child,
                announced,
                lines,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    fn announced(&self, lines: &Receiver<String>) -> Result<Announced, LaunchError> {
        let mut seen = Seen::default();
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(announced) = seen.complete(self.quic) {
                return Ok(announced);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let why = match e {
                        RecvTimeoutError::Timeout => {
                            format!("did not start within {:?}", self.timeout)
                        }
                        RecvTimeoutError::Disconnected => "exited".to_owned(),
                    };
                    return Err(LaunchError::NotStarted {
                        dir: self.dir.clone(),
                        why,
                        missing: seen.missing(self.quic).join(", "),
                        log_tail: log_tail(&self.log),
                    });
                }
            };
            seen.line(&line).map_err(|()| LaunchError::Malformed {
                dir: self.dir.clone(),
                line,
            })?;
        }
    }
}

/// The announcements read so far.
#[derive(Default)]
struct Seen {
    peer: Option<String>,
    control: Option<SocketAddr>,
    http: Option<SocketAddr>,
    page: Option<String>,
    tcp: Option<String>,
    quic: Option<String>,
}

impl Seen {
    fn line(&mut self, line: &str) -> Result<(), ()> {
        let Some((kind, value)) = line.split_once(' ') else {
            return Ok(());
        };
        let value = value.to_owned();
        match kind {
            "ACP-PEER" => self.peer = Some(value),
            "ACP-CONTROL" => self.control = Some(value.parse().map_err(|_| ())?),
            "ACP-HTTP" => self.http = Some(value.parse().map_err(|_| ())?),
            "ACP-PAGE" => self.page = Some(value),
            "ACP-LISTEN" if value.contains("/tcp/") => {
                self.tcp.get_or_insert(value);
            }
            "ACP-LISTEN" if value.contains("/quic-v1/") => {
                self.quic.get_or_insert(value);
            }
            _ => {}
        }
        Ok(())
    }

    fn missing(&self, quic: bool) -> Vec<&'static str> {
        [
            ("ACP-PEER", self.peer.is_none()),
            ("ACP-CONTROL", self.control.is_none()),
            ("ACP-HTTP", self.http.is_none()),
            ("ACP-PAGE", self.page.is_none()),
            ("a TCP ACP-LISTEN", self.tcp.is_none()),
            ("a QUIC ACP-LISTEN", quic && self.quic.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, missing)| missing.then_some(name))
        .collect()
    }

    fn complete(&self, quic: bool) -> Option<Announced> {
        if quic && self.quic.is_none() {
            return None;
        }
        Some(Announced {
            peer: self.peer.clone()?,
            control: self.control?,
            http: self.http?,
            page: self.page.clone()?,
            tcp: self.tcp.clone()?,
            quic: self.quic.clone(),
        })
    }
}

/// The lines of a child's stdout, read by a thread as they come. The thread
/// reads to the end even when nobody receives any more: a node writing to a
/// closed pipe would die of it.
pub fn read_lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Calls `f` every 100 ms until it yields a value, or `None` once `timeout`
/// has passed: how a driver of node processes waits for gossip, sync or
/// certification, which it cannot be told of.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}
