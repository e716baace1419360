//! `sds sim`: run a network simulation scenario and print its report.

use clap::Args;
use sds_sim::{Scenario, Simulation};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `sds sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Scenario file (TOML, see docs/sim.md); default: the embedded
    /// scenarios/default.toml.
    #[arg(long, value_name = "FILE.toml")]
    scenario: Option<PathBuf>,
    /// Overrides the scenario's seed.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Writes every metric as JSON to this file.
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
    /// Draws delivery over time and the latency distribution as SVG.
    #[arg(long, value_name = "OUT.svg")]
    plot: Option<PathBuf>,
    /// Prints no text report.
    #[arg(long, short)]
    quiet: bool,
    /// Prints to stderr, every N simulated seconds, the wall time and the
    /// simulated events of that stretch (shows whether a run slows down).
    #[arg(long, value_name = "N")]
    wall_log: Option<u64>,
    /// Threads for the participants' work (default: the machine's cores).
    /// The report is the same for any number.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

/// Runs `sds sim`. Exit status: 0 if every invariant held, 1 if one was
/// violated, 2 if the scenario or an output could not be used.
pub fn run(args: &SimArgs) -> ExitCode {
    let mut scenario = match &args.scenario {
        None => Scenario::default_scenario(),
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("sds sim: cannot read {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            };
            match Scenario::from_toml(&text) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("sds sim: {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
        }
    };
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let mut sim = match Simulation::new(&scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sds sim: {e}");
            return ExitCode::from(2);
        }
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    sim.set_threads(threads);
    let report = if let Some(every) = args.wall_log.filter(|&n| n > 0) {
        let every_ms = every.saturating_mul(1000);
        let start = std::time::Instant::now();
        let (mut last_wall, mut last_events, mut next) = (0.0f64, 0u64, every_ms);
        let mut done = false;
        sim.run_with_events(&mut |now, end, events| {
            if done || (now < next && now < end) {
                return;
            }
            done = now >= end;
            while next <= now {
                next = next.saturating_add(every_ms);
            }
            let wall = start.elapsed().as_secs_f64();
            let (dw, de) = (wall - last_wall, events - last_events);
            eprintln!(
                "sim {:>6.0} s  wall {:>8.2} s  (+{:>7.2} s, {:>8} events, {:>7.0} events/s)",
                now as f64 / 1000.0,
                wall,
                dw,
                de,
                de as f64 / dw.max(1e-9)
            );
            (last_wall, last_events) = (wall, events);
        })
    } else if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(sim.end_ms() / 1000);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} simulated {pos}/{len} s [{bar:40}] {elapsed_precise} wall",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        let r = sim.run_with_progress(&mut |now, _| bar.set_position(now / 1000));
        bar.finish_and_clear();
        r
    } else {
        sim.run()
    };
    if !args.quiet {
        print!("{}", report.to_text());
    }
    let mut code = if report.invariants_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|j| std::fs::write(path, j + "\n").map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("sds sim: cannot write {}: {e}", path.display());
            code = ExitCode::from(2);
        }
    }
    if let Some(path) = &args.plot {
        if let Err(e) = sds_sim::plot::write_svg(&report, path) {
            eprintln!("sds sim: {e}");
            code = ExitCode::from(2);
        }
    }
    // The process is about to exit: skip tearing down every participant's
    // state (up to a sixth of the run time on large scenarios).
    std::mem::forget(sim);
    if !report.invariants_ok {
        eprintln!(
            "sds sim: invariant violated (scenario {:?}, seed {}): {}",
            report.scenario,
            report.seed,
            report
                .invariants
                .violations
                .first()
                .map(String::as_str)
                .unwrap_or("")
        );
    }
    code
}
