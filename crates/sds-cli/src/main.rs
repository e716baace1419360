//! The `sds` command: one subcommand per module (`decode` for now; `sim`,
//! `peer` and `bench` go next to it).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod bench;
mod decode;
mod peer;
mod sim;

/// mimalloc: the protocol allocates many small, short-lived objects (ids,
/// history entries, events); glibc's malloc spent about a quarter of the
/// receive benchmark in its own bookkeeping (see docs/bench.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run one participant driven by JSON lines on stdin (see docs/peer.md).
    Peer(peer::PeerArgs),
    /// Measure send and receive throughput and peak memory (see docs/bench.md).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Decode(args) => decode::run(&args),
        Command::Sim(args) => sim::run(&args),
        Command::Peer(args) => peer::run(&args),
        Command::Bench(args) => bench::run(&args),
    }
}
