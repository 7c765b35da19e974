//! `acp-sim`: a deterministic discrete-event world that drives the real
//! [`acp_protocol::Engine`]. Not a network stack and not a node: it owns no
//! sockets, threads or wall clock.
//!
//! - [`error`]: what can go wrong building, running or writing a run.
//! - [`rng`]: the seeded PRNG every draw comes from.
//! - [`scenario`]: the TOML scenario format.
//! - [`world`]: the event queue, nodes (one `Engine` each), links, agents,
//!   Byzantine behaviours, faults and anti-entropy.
//! - [`metrics`]: certified finality (changes after certification, shares,
//!   time to certificate), agreement, accuracy, escalation, latency,
//!   traffic, trust; CSV and JSON output.
//! - [`plot`]: SVG charts.
//! - [`sweep`]: the adversary grid (strength × seeds, with or without
//!   partitions) and its certified-finality curves.
//!
//! ```no_run
//! use acp_sim::{scenario::Scenario, run_one};
//! let sc = Scenario::parse("name = \"tiny\"\n[agents]\ncount = 20\n").unwrap();
//! let report = run_one(sc, 7, false).unwrap();
//! println!("{}", report.0.table());
//! ```

#![forbid(unsafe_code)]

pub mod error;
pub mod metrics;
pub mod plot;
pub mod rng;
pub mod scenario;
pub mod sweep;
pub mod world;

use std::time::Instant;

use error::SimError;
use metrics::Report;
use scenario::Scenario;
use world::World;

/// Run one scenario with one seed; returns the report and the finished world.
pub fn run_one(sc: Scenario, seed: u64, progress: bool) -> Result<(Report, World), SimError> {
    let duration = sc.duration_ms;
    let mut world = World::new(sc, seed)?;
    let bar = if progress {
        let b = indicatif::ProgressBar::new(duration);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} virtual ms {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let start = Instant::now();
    world.run(|t| {
        if let Some(b) = &bar {
            b.set_position(t);
        }
    });
    let wall = start.elapsed().as_millis() as u64;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let report = Report::of(&world, seed, wall);
    Ok((report, world))
}
