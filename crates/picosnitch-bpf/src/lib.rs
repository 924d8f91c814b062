//! picosnitch's kernel side: the CO-RE BPF object built from `bpf/`, the records it
//! emits, and the loader that picks a hook set for the running kernel and attaches it.

pub mod cgroup;
pub mod events;
pub mod hooks;
pub mod loader;
pub mod names;
pub mod skipped_runs;

pub use hooks::{HookSet, Requested};
pub use loader::{CaptureOptions, HookChoice, KernelCapture, LoadError};
pub use names::{NameCapture, NameRecord, NameSource};
/// A map that could not be read (the loss counters' reads return it).
pub use aya::maps::MapError;

/// The compiled object (`bpf/picosnitch.bpf.c`), aligned for the ELF parser.
pub static BPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/picosnitch.bpf.o"));
