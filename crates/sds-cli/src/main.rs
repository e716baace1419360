//! The `sds` command: one subcommand per module (`decode` for now; `sim`,
//! `peer` and `bench` go next to it).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod decode;

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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Decode(args) => decode::run(&args),
    }
}
