//! SDS-R, the repair extension.

pub mod timing;
