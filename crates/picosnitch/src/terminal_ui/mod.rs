//! `picosnitch top` and `picosnitch tui` confine themselves like the daemon's roles:
//! once the time zone and user names are read and the terminal is in raw mode, and
//! before their first thread starts. They draw rows derived from command lines and
//! names any local user chooses, so Landlock is a hard requirement where the kernel
//! has it.
//!
//! Started by a user, they keep that user and its groups (a member of `[data] group`
//! reads the history and the feed with no capability at all). Started by root, they
//! become `nobody` with `[data] group` as their only group: they read exactly what a
//! member of that group may read, and nothing else root could (see
//! [`picosnitch_sandbox::User::Viewer`]).
use picosnitch_config::Config;
use picosnitch_sandbox::Policy;
use picosnitch_tui::TuiError;
use std::path::Path;

pub mod policy;

/// Probes of the sandbox tests: run from inside the confinement right after it is
/// applied (see picosnitch_sandbox::probe); each outcome goes to stderr as
/// `sandbox probe NAME result: OUTCOME` (the tests send stderr to a file, not the screen).
pub const PROBE_ENV: &str = "PICOSNITCH_TERMINAL_UI_PROBE";

/// Confines this process to `policy`. `database` is the history the TUI reads (its
/// directory becomes the readable state directory); `top` reads none.
pub fn confine(policy: &Policy, config: &Config, database: Option<&Path>) -> Result<(), TuiError> {
    let failed = |e: anyhow::Error| TuiError::Confine(format!("{e:#}"));
    let mut ctx = crate::confine::context(config).map_err(failed)?;
    if let Some(db) = database {
        ctx.state_dir = db.parent().map(Path::to_path_buf).unwrap_or_else(|| "/".into());
    }
    // INVARIANT: the caller has read what it cannot once confined and started no
    // thread; from here on the process is its unprivileged user, reads only the
    // history, the feed and the time zone, and makes only the calls in its policy.
    picosnitch_sandbox::confine(policy, &ctx).map_err(|e| TuiError::Confine(e.to_string()))?;
    run_probes();
    Ok(())
}

/// Runs the probes named in PICOSNITCH_TERMINAL_UI_PROBE (`probe[=arg],...`); a call
/// the policy forbids ends the process with status 159.
fn run_probes() {
    let Some(spec) = std::env::var_os(PROBE_ENV) else { return };
    for item in spec.to_string_lossy().split(',').filter(|s| !s.is_empty()) {
        let (probe, arg) = match item.split_once('=') {
            Some((p, a)) => (p, Some(a)),
            None => (item, None),
        };
        eprintln!("sandbox probe {probe}: started");
        let outcome = picosnitch_sandbox::probe::attempt(probe, arg);
        eprintln!("sandbox probe {probe} result: {outcome}");
    }
}
