//! The socket side: binds or adopts the listening socket, accepts subscribers and
//! writes each one's queue to its connection.
use crate::error::FeedError;
use crate::hub::{FeedHub, FeedLimits, Line};
use crate::update::FeedNotice;
use async_io::Async;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Who may connect to a socket this crate binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketAccess {
    /// File mode of the socket; connecting needs write permission.
    pub mode: u32,
    /// Group to give the socket (the `[data] group`); `None` keeps the process's.
    pub gid: Option<u32>,
}

impl Default for SocketAccess {
    fn default() -> Self {
        SocketAccess { mode: 0o660, gid: None }
    }
}

/// Accepts subscribers and feeds them; run it with [`FeedServer::run`] on the daemon's
/// executor. Publish through the [`FeedHub`] returned alongside.
pub struct FeedServer {
    listener: Async<UnixListener>,
    hub: FeedHub,
    shutdown: async_channel::Receiver<()>,
    /// Set when this server created the socket file, so it removes it when done.
    created: Option<PathBuf>,
}

impl FeedServer {
    /// Serves on a socket someone else bound (the supervisor, or systemd).
    pub fn from_listener(listener: UnixListener, limits: FeedLimits) -> Result<(FeedServer, FeedHub), FeedError> {
        let listener = Async::new(listener).map_err(|source| FeedError::Io { step: "making the feed socket non-blocking", path: None, source })?;
        let (hub, shutdown) = FeedHub::new(limits);
        Ok((FeedServer { listener, hub: hub.clone(), shutdown, created: None }, hub))
    }

    /// Binds `path` with `access` (see [`bind_listener`]) and serves on it; the socket
    /// file is removed when the server ends.
    pub fn bind(path: &Path, access: SocketAccess, limits: FeedLimits) -> Result<(FeedServer, FeedHub), FeedError> {
        let listener = bind_listener(path, access)?;
        let (mut server, hub) = Self::from_listener(listener, limits)?;
        server.created = Some(path.to_path_buf());
        Ok((server, hub))
    }

    /// [`FeedServer::run`] on the calling thread, for callers without an executor
    /// (tools, tests, a dedicated thread).
    pub fn run_blocking(self) -> Result<(), FeedError> {
        async_io::block_on(self.run())
    }

    /// Accepts and serves subscribers until [`FeedHub::close`]; subscriber tasks run
    /// inside this future, so spawning it once on any executor is enough.
    pub async fn run(self) -> Result<(), FeedError> {
        let FeedServer { listener, hub, shutdown, created } = self;
        let tasks = async_executor::Executor::new();
        let accept_loop = async {
            loop {
                let accepted = future::or(async { Some(listener.accept().await) }, async {
                    let _ = shutdown.recv().await;
                    None
                })
                .await;
                match accepted {
                    None => return Ok(()),
                    Some(Ok((stream, _))) => match hub.subscribe() {
                        Some((id, lines, kick)) => {
                            tracing::debug!(subscriber = id, "live feed subscriber connected");
                            tasks.spawn(serve_subscriber(hub.clone(), id, stream, lines, kick)).detach();
                        }
                        None => refuse(stream.get_ref(), hub.shared.limits.max_subscribers),
                    },
                    // EMFILE and friends: keep serving those connected; try again later.
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "accepting a live feed subscriber");
                        async_io::Timer::after(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        };
        let result: Result<(), FeedError> = tasks.run(accept_loop).await;
        if let Some(path) = created {
            let _ = std::fs::remove_file(path);
        }
        result
    }
}

/// Binds the feed socket at `path` with `access`, replacing a socket left behind by a
/// daemon that is no longer running; refuses to replace anything else, or a socket
/// someone listens on. The daemon's supervisor binds it once and hands it to each
/// primary it starts, so readers keep one path across restarts.
pub fn bind_listener(path: &Path, access: SocketAccess) -> Result<UnixListener, FeedError> {
    let io = |step: &'static str| move |source| FeedError::Io { step, path: Some(path.to_path_buf()), source };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(FeedError::InUse { path: path.to_path_buf() });
            }
            std::fs::remove_file(path).map_err(io("removing the stale feed socket"))?;
        }
        Ok(_) => return Err(FeedError::NotASocket { path: path.to_path_buf() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("inspecting the feed socket path")(e)),
    }
    let listener = UnixListener::bind(path).map_err(io("binding the feed socket"))?;
    // Until chmod, the socket has the umask's mode; the runtime directory (0750 or
    // tighter) is what keeps others out in that instant.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(access.mode)).map_err(io("setting the feed socket's mode"))?;
    if let Some(gid) = access.gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(io("setting the feed socket's group"))?;
    }
    Ok(listener)
}

fn refuse(stream: &UnixStream, max: usize) {
    let line = FeedNotice::error(format!("too many subscribers: the live feed serves at most {max} at once; close another picosnitch top or tui")).to_line();
    // A fresh socket's buffer is empty, so this short write completes or fails at once.
    let _ = (&*stream).write(&line);
    tracing::warn!(max, "live feed subscriber refused: too many");
}

async fn serve_subscriber(
    hub: FeedHub,
    id: u64,
    stream: Async<UnixStream>,
    lines: async_channel::Receiver<Line>,
    kick: async_channel::Receiver<()>,
) {
    let write = async {
        while let Ok(line) = lines.recv().await {
            if (&stream).write_all(&line).await.is_err() {
                break;
            }
        }
    };
    // Subscribers send nothing; reading notices a peer that hung up while the feed is
    // quiet, so its slot frees at once instead of at the next publish.
    let hangup = async {
        let mut buf = [0u8; 64];
        while let Ok(n) = (&stream).read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let kicked = async {
        let _ = kick.recv().await;
    };
    future::or(write, future::or(hangup, kicked)).await;
    hub.unsubscribe(id);
    tracing::debug!(subscriber = id, "live feed subscriber gone");
}
