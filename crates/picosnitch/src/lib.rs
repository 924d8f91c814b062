//! picosnitch: per-executable network monitor.
pub mod config;
