//! Running the daemon without its sandbox, for one purpose only: the benchmark that
//! measures what confinement costs (start-up time and CPU per event, confined against
//! unconfined, in one run). Set only from the environment
//! (`PICOSNITCH_UNCONFINED_FOR_BENCHMARK=1`), never from the configuration file, so
//! no configuration can turn the sandbox off. The supervisor reads it and its roles
//! inherit it; each then skips its confinement (user, capabilities, no_new_privs,
//! Landlock, seccomp: all of it) and logs a warning, and `picosnitch status` shows the
//! daemon as UNCONFINED for as long as it runs.

/// The variable; only the exact value `1` turns the sandbox off.
pub const ENV: &str = "PICOSNITCH_UNCONFINED_FOR_BENCHMARK";

/// Whether this process was asked to run unconfined.
pub fn requested() -> bool {
    std::env::var_os(ENV).is_some_and(|v| v == "1")
}

/// The warning each unconfined process logs in place of its confinement.
pub fn warn(role: &str) {
    tracing::warn!(
        role,
        "UNCONFINED: {ENV}=1 is set, so this process skips its whole sandbox (it keeps root, every capability, no Landlock, no seccomp). This exists only to measure the sandbox's cost in the benchmark: never run picosnitch this way"
    );
}
