//! Deterministic discrete-event network simulator for Scalable Data Sync
//! (LIP-109) with SDS-R.
//!
//! Every participant is a real [`sds::Participant`]; the simulator plays the
//! network (latency, jitter, loss, duplication, partitions, churn, an optional
//! store node) in virtual time, drives a workload, measures delivery,
//! latency, acknowledgement, detection, consistency and bytes on the wire,
//! and checks invariants. The same scenario and seed give the same report,
//! bit for bit (apart from wall-clock time).
//!
//! ```no_run
//! let scenario = sds_sim::Scenario::default_scenario();
//! let report = sds_sim::run(&scenario).unwrap();
//! println!("{}", report.to_text());
//! ```
//!
//! The scenario format is described in `docs/sim.md`.
#![deny(missing_docs)]

mod calendar;
pub mod checker;
mod fasthash;
pub mod network;
mod peer;
pub mod plot;
pub mod report;
pub mod rng;
pub mod scenario;
mod sim;
mod workers;

pub use checker::{Checker, Violation, ViolationKind};
pub use report::Report;
pub use scenario::{Scenario, ScenarioError, DEFAULT_SCENARIO};
pub use sim::{message_id, run, ChurnHook, SimError, Simulation};
