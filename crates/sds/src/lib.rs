//! Scalable Data Sync (SDS, LIP-109) with the SDS-R repair extension.
//!
//! This crate is the sans-IO protocol core: it never touches sockets, threads,
//! clocks or OS randomness. The caller passes time in (Unix milliseconds) and
//! drains outputs. See the crate README and `DESIGN.md` for the architecture.
//!
//! Modules:
//! - [`wire`]: messages and their two wire dialects (spec / `@waku/sds`, and nim-sds).
//! - [`bloom`]: the bloom filters of both dialects, bit-exact with the peers.
#![deny(missing_docs)]

pub mod bloom;
pub mod hash;
pub mod repair;
pub mod wire;
