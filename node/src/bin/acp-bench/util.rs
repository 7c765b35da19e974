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
            acp_node::node::now().0
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
