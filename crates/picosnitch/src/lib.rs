//! picosnitch: records which executable made every network connection on the machine.
//!
//! `picosnitch daemon` is the [`supervisor`]: it starts each role of the pipeline as its
//! own process (this binary again, `picosnitch role NAME`), wires them together with
//! socketpairs, restarts any that dies, and publishes their status.
//!
//! ```text
//! kernel ──ring buffer──▶ monitor ──▶ primary ──▶ writer ──▶ SQLite
//!                                       │           └──▶ spool ──▶ remote ──▶ PostgreSQL
//!                                       ├──▶ hasher (executables as descriptors)
//!                                       └──▶ opener (/proc/PID/exe, when the path fails)
//! ```
pub mod accounts;
pub mod cli;
pub mod confine;
pub mod exe_watch;
pub mod hasher;
pub mod logging;
pub mod monitor;
pub mod notify;
pub mod opener;
pub mod primary;
pub mod query;
pub mod rdns;
pub mod remote;
pub mod role;
pub mod sd_notify;
pub mod status;
pub mod supervisor;
pub mod terminal_ui;
pub mod unconfined;
pub mod user_hasher;
pub mod virustotal;
pub mod webui;
pub mod writer;
