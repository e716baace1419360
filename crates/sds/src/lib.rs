//! Scalable Data Sync (SDS, LIP-109) with the SDS-R repair extension.
//!
//! This crate is the sans-IO protocol core: it never touches sockets, threads,
//! clocks or OS randomness. The caller passes time in (Unix milliseconds) and
//! drains outputs; see [`Participant`].
//!
//! Modules:
//! - [`wire`]: messages and their two wire dialects (spec / `@waku/sds`, and nim-sds).
//! - [`bloom`]: the bloom filters of both dialects, bit-exact with the peers.
//! - [`repair`]: SDS-R formulas.
//! - [`store`]: persistence (the [`store::Store`] trait and an in-memory store).
#![deny(missing_docs)]

pub mod bloom;
mod channel;
mod config;
mod event;
mod fastmap;
pub mod hash;
mod id;
mod participant;
pub mod repair;
mod rng;
mod stats;
pub mod store;
mod timer;
pub mod wire;

pub use channel::{ChannelState, Received};
pub use config::{ChannelConfig, Config, RepairConfig};
pub use event::{Delivery, Event, Transmit, TransmitReason};
pub use participant::{
    ChannelError, ConfigError, OpenError, Participant, Prepared, ReceiveError,
    RetrievalHintProvider, SendError,
};
pub use stats::Stats;
pub use wire::Dialect;
