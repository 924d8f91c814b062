//! `picosnitch webui`: binds its sockets, becomes an unprivileged user, confines
//! itself, then serves the web UI (crate `picosnitch-webui`).
//!
//! Started by a user, it keeps that user's identity and groups: the user must be able to
//! read the history (a member of `[data] group`). Started by root, it refuses to run
//! unless told whom to become (`--user NAME` or `[webui] user`); it then becomes that
//! user with `[data] group` as its only group, which may read the history and the live
//! feed. It never runs as root.
use anyhow::Context as _;
use picosnitch_config::Config;
use picosnitch_webui::http::{Limits, Listener};
use picosnitch_webui::{Settings, WebUi};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

pub mod policy;

/// Command-line choices that override `[webui]`.
#[derive(Debug, Default, Clone)]
pub struct Options {
    pub address: Option<std::net::IpAddr>,
    pub port: Option<u16>,
    pub socket: Option<PathBuf>,
    pub user: Option<String>,
    pub db: Option<PathBuf>,
}

/// Probes of the sandbox tests, as for the daemon's roles: run from inside the
/// confinement right after it is applied (see picosnitch_sandbox::probe).
pub const PROBE_ENV: &str = "PICOSNITCH_WEBUI_PROBE";

/// Puts /dev/null at the seccomp death-note descriptor: a role's SIGSYS handler writes
/// the forbidden call's number there for the supervisor, and the web UI has none, so
/// whatever it inherited at that number must not receive it.
pub fn reserve_death_note_fd() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto a fixed descriptor number; whatever was there is closed.
        unsafe { libc::dup2(null.as_raw_fd(), picosnitch_sandbox::DEATH_NOTE_FD) };
    }
}

/// Who root becomes: (uid, gid) of `[webui] user` (or `--user`) and `[data] group`.
fn run_as(config: &Config, opts: &Options) -> anyhow::Result<Option<(u32, u32)>> {
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    let named = opts.user.clone().unwrap_or_else(|| config.webui.user.clone());
    if me != 0 {
        if opts.user.is_some() {
            anyhow::bail!("--user is for root: the web UI already runs as your user (uid {me}) and can become nobody else");
        }
        return Ok(None);
    }
    if named.is_empty() {
        anyhow::bail!(
            "the web UI does not run as root: name the user it should become with `--user NAME` (or `user` under [webui]); that user then reads the history with the group `{}` ([data] group)",
            config.data.group
        );
    }
    let uid = crate::accounts::uid_of(&named).with_context(|| format!("the user {named:?} ([webui] user or --user) does not exist"))?;
    if uid == 0 {
        anyhow::bail!("the web UI never serves as root: name an unprivileged user, not {named:?}");
    }
    let group = &config.data.group;
    let gid = crate::accounts::gid_of(group).with_context(|| format!("the group {group:?} ([data] group) does not exist"))?;
    Ok(Some((uid, gid)))
}

/// Binds the Unix socket for a reverse proxy: replaces a socket nobody listens on
/// (left by an earlier run), refuses to replace anything else.
fn bind_unix(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                anyhow::bail!("{} is in use by another web UI", path.display());
            }
            std::fs::remove_file(path).with_context(|| format!("removing the stale socket {}", path.display()))?;
        }
        Ok(_) => anyhow::bail!("{} exists and is not a socket; choose another [webui] socket", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    }
    let l = UnixListener::bind(path).with_context(|| format!("binding the web UI socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(|| format!("setting the mode of {}", path.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| format!("giving {} to uid {uid}", path.display()))?;
    }
    Ok(l)
}

pub fn run(config: &Config, opts: Options) -> anyhow::Result<()> {
    let run_as = run_as(config, &opts)?;
    // What cannot be read once confined.
    let users = picosnitch_webui::users::UserNames::load();
    let address = SocketAddr::new(opts.address.unwrap_or(config.webui.address), opts.port.unwrap_or(config.webui.port));
    if !address.ip().is_loopback() {
        anyhow::bail!("{} is not a loopback address: the web UI serves 127.0.0.1 or ::1 only", address.ip());
    }
    let tcp = TcpListener::bind(address).with_context(|| format!("listening on {address} (is another web UI running? choose another port with --port)"))?;
    let bound = tcp.local_addr().context("the listening address")?;
    let mut listeners = vec![Listener::Tcp(tcp)];
    let socket = opts.socket.clone().unwrap_or_else(|| config.webui.socket.clone());
    if !socket.as_os_str().is_empty() {
        listeners.push(Listener::Unix(bind_unix(&socket, config.webui.socket_mode_bits(), run_as)?));
    }
    let mut ctx = crate::confine::context(config)?;
    ctx.bind_port = Some(bound.port());
    ctx.run_as = run_as;
    if let Some(db) = &opts.db {
        ctx.state_dir = db.parent().map(Path::to_path_buf).unwrap_or_else(|| "/".into());
    }
    // INVARIANT: every socket is bound and /etc/passwd read; from here on the process
    // is its unprivileged user, reads only the history and the feed, and makes only
    // the calls in its policy. No thread exists yet, so Landlock covers all of them.
    let report = picosnitch_sandbox::confine(&policy::POLICY, &ctx).context("confining the web UI")?;
    tracing::info!(
        uid = report.uid,
        gid = report.gid,
        landlock = %report.landlock,
        seccomp_syscalls = report.seccomp_syscalls,
        "confined"
    );
    run_probes();
    let settings = Settings {
        database: opts.db.unwrap_or_else(|| config.database.path.clone()),
        feed_socket: config.data.runtime_dir.join(picosnitch_feed::SOCKET_NAME),
        allowed_hosts: config.webui.allowed_hosts.clone(),
        page: picosnitch_webui::api::PageSettings { theme: config.dash.theme.clone(), scroll_zoom: config.dash.scroll_zoom },
        query_threads: 2,
    };
    let host = if bound.is_ipv6() { format!("[{}]", bound.ip()) } else { bound.ip().to_string() };
    tracing::info!(url = %format!("http://{host}:{}/", bound.port()), socket = %socket.display(), db = %settings.database.display(), "serving the web UI");
    let web = WebUi::start(settings, users);
    // Nothing stops it but a signal; the sender is kept so the server runs until then.
    let (_keep, stop) = async_channel::bounded::<()>(1);
    picosnitch_webui::run(web, listeners, Limits::default(), stop).context("serving the web UI")
}

/// Runs the probes named in PICOSNITCH_WEBUI_PROBE (`probe[=arg],...`) and logs each
/// outcome; a call the policy forbids ends the process with status 159.
fn run_probes() {
    let Some(spec) = std::env::var_os(PROBE_ENV) else { return };
    for item in spec.to_string_lossy().split(',').filter(|s| !s.is_empty()) {
        let (probe, arg) = match item.split_once('=') {
            Some((p, a)) => (p, Some(a)),
            None => (item, None),
        };
        tracing::warn!(probe, "sandbox probe ({PROBE_ENV})");
        let outcome = picosnitch_sandbox::probe::attempt(probe, arg);
        tracing::warn!(probe, %outcome, "sandbox probe result");
    }
}
