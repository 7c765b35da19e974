//! Small helpers shared by the benchmarks.

use std::path::PathBuf;

use acp_protocol::Keypair;

/// A deterministic key for index `i` of a benchmark population.
pub fn key(tag: u8, i: u32) -> Keypair {
    let mut seed = [tag; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(seed)
}

/// The 1-minute load average and the number of CPUs, for the report.
pub fn load() -> String {
    let la = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "loadavg {} on {cpus} cpus",
        la.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    )
}

/// A fresh directory under the system temp dir, removed by [`Scratch`]'s drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(what: &str) -> anyhow::Result<Self> {
        let p = std::env::temp_dir().join(format!(
            "acp-bench-{what}-{}-{}",
            std::process::id(),
            acp_node::service::now().0
        ));
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("ACP_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The `q`-quantile (0..=1) of sorted values (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of unsorted values.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    quantile(&s, 0.5)
}

/// Resident memory and CPU time of a process, from `/proc`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Proc {
    pub rss_kb: u64,
    /// User + system time in clock ticks (USER_HZ, 100 per second on Linux).
    pub cpu_ticks: u64,
}

/// Samples `/proc/<pid>`; zeros for a process that is gone.
pub fn proc_sample(pid: u32) -> Proc {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name: state is field 3; utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let cpu_ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Proc { rss_kb, cpu_ticks }
}
