//! The `sds` command: one subcommand per module (`decode` for now; `sim`,
//! `peer` and `bench` go next to it).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod decode;
mod sim;

/// Scalable Data Sync (LIP-109) tools.
#[derive(Debug, Parser)]
#[command(name = "sds", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode one SDS message (spec or nim dialect, detected) and print it as one line of JSON.
    Decode(decode::DecodeArgs),
    /// Run a deterministic network simulation (default scenario, or --scenario FILE.toml).
    Sim(sim::SimArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Decode(args) => decode::run(&args),
        Command::Sim(args) => sim::run(&args),
    }
}
