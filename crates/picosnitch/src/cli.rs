//! The `picosnitch` command line. `main.rs` only calls [`main`].
use crate::query::{self, Format};
use anyhow::Context;
use clap::{Parser, Subcommand};
use picosnitch_config::{Config, ConfigError, DEFAULT_PATH, EX_CONFIG};
use picosnitch_ipc::control::Role;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "picosnitch",
    version,
    about = "Records which executable made every network connection, and how many bytes it moved",
    after_help = "Start with `sudo picosnitch daemon`, then `picosnitch status` and `picosnitch query`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (what a service manager runs). Needs root.
    Daemon {
        /// Config file [default: /etc/picosnitch/config.toml; a missing default file means all defaults]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Show the running daemon's roles, kernel hooks and counters, including every loss.
    Status {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print the status file as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Top executables by bytes over a period, from the database.
    Query {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Database to read [default: [database] path from the config]
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Only the last period, e.g. 90s, 15m, 3h, 7d [default: everything]
        #[arg(long, value_parser = query::parse_duration, value_name = "DURATION")]
        since: Option<u64>,
        /// Executable path contains this
        #[arg(long)]
        exe: Option<String>,
        /// Process name contains this
        #[arg(long)]
        name: Option<String>,
        /// Domain, or any subdomain of it
        #[arg(long)]
        domain: Option<String>,
        /// Local or remote port
        #[arg(long)]
        port: Option<u16>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Rows to show
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Live view of the network, per executable, from the running daemon's feed
    /// (root or a member of the picosnitch group).
    Top {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Browse the history in the terminal (the database opened read-only).
    Tui {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Database to read [default: [database] path from the config]
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
    },
    /// Serve the web UI on 127.0.0.1:5100: the history and the live feed in the browser.
    ///
    /// Runs as the user who starts it (who must be able to read the history: a member of
    /// [data] group); root must name the user to become with --user.
    Webui {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Loopback address to listen on [default: [webui] address, 127.0.0.1]
        #[arg(long, value_name = "ADDRESS")]
        address: Option<std::net::IpAddr>,
        /// Port [default: [webui] port, 5100; 0 picks a free one]
        #[arg(long)]
        port: Option<u16>,
        /// Also serve on this Unix socket, for a reverse proxy [default: [webui] socket]
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Started as root: the user to become [default: [webui] user]
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Database to read [default: [database] path]
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
    },
    /// Check a config file without starting anything (exit status 78 when invalid).
    CheckConfig {
        /// The file to check [default: /etc/picosnitch/config.toml]
        file: Option<PathBuf>,
        /// Print the configuration with every default filled in.
        #[arg(long)]
        print: bool,
    },
    /// Print what each role may do: user, capabilities, files, network, system calls.
    Privileges,
    /// Print the SQL that prepares the remote database ([database.remote]): the tables,
    /// and GRANTs that let the daemon's login do nothing but INSERT (and SELECT ids).
    RemoteSchema {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print the version.
    Version,
    /// Run one role of the pipeline: started by `picosnitch daemon`, not by hand.
    #[command(hide = true)]
    Role {
        role: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Daemon { config } => with_config(config.as_deref(), "supervisor", |path, cfg| {
            crate::supervisor::run(path, cfg)
        }),
        Command::Status { config, json } => with_config(config.as_deref(), "status", |_, cfg| status(cfg, json)),
        Command::Query { config, db, since, exe, name, domain, port, format, limit } => {
            with_config(config.as_deref(), "query", |_, cfg| {
                let db = db.unwrap_or_else(|| cfg.database.path.clone());
                let filters = query::Filters { since_seconds: since, exe, name, domain, port, limit };
                print!("{}", query::run(&db, &filters, format)?);
                Ok(())
            })
        }
        Command::Top { config } => with_config_for_terminal(config.as_deref(), "top", |cfg| {
            let confine = || crate::terminal_ui::confine(&crate::terminal_ui::policy::TOP, cfg, None);
            picosnitch_tui::top::run(picosnitch_tui::top::TopOptions::from_config(cfg), confine)
        }),
        Command::Tui { config, db } => with_config_for_terminal(config.as_deref(), "tui", |cfg| {
            let mut options = picosnitch_tui::tui::TuiOptions::from_config(cfg);
            if let Some(db) = db {
                options.database = db;
            }
            let database = options.database.clone();
            let confine = || crate::terminal_ui::confine(&crate::terminal_ui::policy::TUI, cfg, Some(&database));
            picosnitch_tui::tui::run(options, confine)
        }),
        Command::Webui { config, address, port, socket, user, db } => {
            // Before anything opens a descriptor that could land on the death note's.
            crate::webui::reserve_death_note_fd();
            with_config(config.as_deref(), "webui", |_, cfg| crate::webui::run(cfg, crate::webui::Options { address, port, socket, user, db }))
        }
        Command::CheckConfig { file, print } => {
            let path = file.unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
            match Config::load(&path) {
                Ok(c) => {
                    if print {
                        match c.to_toml_string() {
                            Ok(t) => print!("{t}"),
                            Err(e) => {
                                eprintln!("picosnitch: cannot print the configuration: {e}");
                                return ExitCode::FAILURE;
                            }
                        }
                    } else {
                        println!("{}: ok", path.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => config_error(&e),
            }
        }
        Command::RemoteSchema { config } => with_config(config.as_deref(), "remote-schema", |_, cfg| {
            let defaults = picosnitch_config::RemoteConfig::default();
            let r = cfg.database.remote.as_ref().unwrap_or(&defaults);
            if cfg.database.remote.is_none() {
                println!("-- no [database.remote] in the configuration: the defaults are shown");
            }
            print!("{}", picosnitch_remote::schema::setup_sql(&picosnitch_remote::schema::Tables::new(&r.table_prefix), &r.user, &r.database));
            Ok(())
        }),
        Command::Privileges => {
            print!("{}", picosnitch_sandbox::table::render(&crate::confine::all_policies()));
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("picosnitch {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Role { role, config } => {
            let Some(role) = Role::from_name(&role) else {
                eprintln!("picosnitch: unknown role {role:?}");
                return ExitCode::FAILURE;
            };
            with_config(config.as_deref(), role.name(), |_, cfg| run_role(role, cfg))
        }
    }
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("picosnitch: invalid configuration: {e}");
    ExitCode::from(EX_CONFIG)
}

/// Loads the config (exit 78 if it is bad), sets up logging, runs `body`, and turns
/// its error into one readable line.
fn with_config(
    given: Option<&Path>,
    role: &str,
    body: impl FnOnce(Option<&Path>, &Config) -> anyhow::Result<()>,
) -> ExitCode {
    let path = given.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
    let config = match Config::load_or_default(&path, given.is_some()) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    crate::logging::init();
    let span = tracing::info_span!("picosnitch", role);
    let _entered = span.enter();
    let config_path = path.exists().then_some(path.as_path());
    match body(config_path, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if role == "status" || role == "query" || role == "remote-schema" || role == "webui" {
                eprintln!("picosnitch {role}: {e:#}");
            } else {
                tracing::error!("{e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Like [`with_config`] for the terminal UIs: no log lines on the terminal they draw
/// on; an error is printed once the terminal is restored.
fn with_config_for_terminal(
    given: Option<&Path>,
    what: &str,
    body: impl FnOnce(&Config) -> Result<(), picosnitch_tui::TuiError>,
) -> ExitCode {
    // Before anything opens a descriptor that could land on the seccomp death note's.
    crate::webui::reserve_death_note_fd();
    let path = given.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
    let config = match Config::load_or_default(&path, given.is_some()) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    match body(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("picosnitch {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_role(role: Role, config: &Config) -> anyhow::Result<()> {
    raise_nofile(config);
    // The process name `ps` and `top` show, and the kernel's audit log names.
    if let Ok(name) = std::ffi::CString::new(format!("ps-{}", role.name())) {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
    }
    let control = crate::role::take_control()?;
    match role {
        Role::Monitor => crate::monitor::run(control, config),
        Role::Primary => crate::primary::run(control, config),
        Role::Hasher => crate::hasher::run(control, config),
        Role::Writer => crate::writer::run(control, config),
        Role::Notify => crate::notify::run(control, config),
        Role::Opener => crate::opener::run(control, config),
        Role::Remote => crate::remote::run(control, config),
        Role::VirusTotal => crate::virustotal::run(control, config),
        Role::UserHasher => crate::user_hasher::run(control, config),
        Role::ReverseDns => crate::rdns::run(control, config),
    }
}

/// Raises the soft descriptor limit (the primary holds executables open while they
/// are hashed); `[monitoring] rlimit_nofile` sets it explicitly.
fn raise_nofile(config: &Config) {
    let current = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let hard = current.maximum.unwrap_or(u64::MAX);
    let want = config.monitoring.rlimit_nofile.unwrap_or(65_536).min(hard);
    if current.current.is_some_and(|c| c >= want) {
        return;
    }
    let new = rustix::process::Rlimit { current: Some(want), maximum: current.maximum };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Nofile, new) {
        tracing::warn!(error = %e, want, "cannot raise RLIMIT_NOFILE");
    }
}

fn status(config: &Config, json: bool) -> anyhow::Result<()> {
    let path = config.data.runtime_dir.join("status.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no daemon is running ({} does not exist); start one with `sudo picosnitch daemon` or `systemctl start picosnitch`",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => anyhow::bail!(
            "cannot read {}: permission denied; run as root or join the group in [data] group",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let st: crate::status::PipelineStatus =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let alive = rustix::process::Pid::from_raw(st.supervisor_pid as i32)
        .is_some_and(|p| !matches!(rustix::process::test_kill_process(p), Err(rustix::io::Errno::SRCH)));
    if !alive {
        anyhow::bail!(
            "the daemon that wrote {} (pid {}) is not running; start one with `sudo picosnitch daemon`",
            path.display(),
            st.supervisor_pid
        );
    }
    let age = picosnitch_store::unix_now() - st.updated_unix;
    if json {
        println!("{text}");
    } else {
        print!("{}", st.render());
        if age > 5 {
            println!("warning: the status is {age} s old; the supervisor may be stuck");
        }
    }
    Ok(())
}
