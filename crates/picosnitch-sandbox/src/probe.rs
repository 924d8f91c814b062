//! Attempts of what a confined role must not do, run from inside the role by the
//! sandbox tests (and available to anyone who wants to check a machine). Each returns
//! how it was refused; a call its seccomp policy forbids does not return at all (the
//! role is stopped, and the supervisor names the call).
use std::ffi::CString;

/// The probes, by name.
pub const PROBES: &[&str] =
    &["read-shadow", "read-file", "read-contents", "write-outside", "connect", "send-elsewhere", "execve", "ptrace", "bpf-load", "regain-root"];

fn errno() -> String {
    std::io::Error::last_os_error().to_string()
}

fn refused(rc: i64) -> String {
    if rc < 0 {
        format!("refused: {}", errno())
    } else {
        "ALLOWED".to_string()
    }
}

/// Runs one probe; `arg` is its target where it has one (a TCP port for `connect`, a
/// path for `read-file`).
pub fn attempt(name: &str, arg: Option<&str>) -> String {
    match name {
        "read-shadow" | "read-file" => {
            let target = if name == "read-file" { arg.unwrap_or("/etc/shadow") } else { "/etc/shadow" };
            let path = CString::new(target).unwrap_or_default();
            // SAFETY: open(2) with a valid NUL-terminated path.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            let r = refused(i64::from(fd));
            if fd >= 0 {
                // SAFETY: closing the descriptor just opened.
                unsafe { libc::close(fd) };
            }
            r
        }
        "read-contents" => {
            // For a role that may open any file (the opener): the open is allowed, the
            // read that would follow must not be.
            let path = CString::new(arg.unwrap_or("/etc/shadow")).unwrap_or_default();
            // SAFETY: open(2) with a valid NUL-terminated path.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) };
            if fd < 0 {
                return refused(-1);
            }
            let mut byte = [0u8; 1];
            // SAFETY: read(2) of one byte into a live buffer, from the descriptor just opened.
            let n = unsafe { libc::read(fd, byte.as_mut_ptr().cast(), 1) };
            let r = if n < 0 { refused(-1) } else { format!("ALLOWED: read {n} byte(s)") };
            // SAFETY: closing the descriptor just opened.
            unsafe { libc::close(fd) };
            r
        }
        "write-outside" => {
            let path = CString::new(format!("/tmp/picosnitch-probe-{}", std::process::id())).unwrap_or_default();
            // SAFETY: open(2) with a valid path; the file is removed again if created.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC, 0o600) };
            let r = refused(i64::from(fd));
            if fd >= 0 {
                // SAFETY: cleaning up what was just (wrongly) created.
                unsafe {
                    libc::close(fd);
                    libc::unlink(path.as_ptr());
                }
            }
            r
        }
        "connect" => {
            let port: u16 = arg.and_then(|a| a.parse().ok()).unwrap_or(9);
            // SAFETY: socket(2) with integer arguments.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
            if fd < 0 {
                return refused(-1);
            }
            // SAFETY: a zeroed sockaddr_in filled with loopback and the port.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as u16;
            sa.sin_port = port.to_be();
            sa.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
            // SAFETY: connect(2) with a valid address of the given length.
            let rc = unsafe {
                libc::connect(fd, (&sa as *const libc::sockaddr_in).cast(), std::mem::size_of::<libc::sockaddr_in>() as u32)
            };
            let r = refused(i64::from(rc));
            // SAFETY: closing the socket just made.
            unsafe { libc::close(fd) };
            r
        }
        "send-elsewhere" => {
            // A datagram on the role's descriptor 5 (the rdns role's socket, connected to
            // the resolver) to another address: 127.0.0.1:PORT.
            let port: u16 = arg.and_then(|a| a.parse().ok()).unwrap_or(9);
            // SAFETY: a zeroed sockaddr_in filled with loopback and the port.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as u16;
            sa.sin_port = port.to_be();
            sa.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
            let payload = b"probe";
            // SAFETY: sendto(2) with a valid buffer and address of the given lengths.
            let rc = unsafe {
                libc::sendto(
                    5,
                    payload.as_ptr().cast(),
                    payload.len(),
                    0,
                    std::ptr::addr_of!(sa).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                )
            };
            refused(rc as i64)
        }
        "execve" => {
            let path = CString::new("/bin/true").unwrap_or_default();
            let argv = [path.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null()];
            // SAFETY: execve with valid NUL-terminated arrays; returns only on failure.
            let rc = unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            refused(i64::from(rc))
        }
        "ptrace" => {
            // SAFETY: PTRACE_ATTACH on pid 1 with integer arguments.
            let rc = unsafe { libc::ptrace(libc::PTRACE_ATTACH, 1, 0, 0) };
            refused(rc)
        }
        "bpf-load" => {
            // A socket filter of two instructions: r0 = 0; exit.
            let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
            let license = CString::new("GPL").unwrap_or_default();
            let mut attr = [0u8; 128];
            attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // BPF_PROG_TYPE_SOCKET_FILTER
            attr[4..8].copy_from_slice(&2u32.to_ne_bytes()); // insn_cnt
            attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
            attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
            // SAFETY: bpf(BPF_PROG_LOAD) with a zero-padded attribute that points to
            // live memory for the duration of the call.
            let rc = unsafe { libc::syscall(libc::SYS_bpf, 5i64, attr.as_ptr(), attr.len()) };
            if rc >= 0 {
                // SAFETY: closing the program descriptor just (wrongly) created.
                unsafe { libc::close(rc as i32) };
            }
            refused(rc)
        }
        "regain-root" => {
            // The raw call: glibc's setuid() first signals every thread (tgkill) to
            // change them all, which is refused before setuid itself is reached.
            // SAFETY: setuid(2) with an integer argument.
            let rc = unsafe { libc::syscall(libc::SYS_setuid, 0) };
            refused(rc)
        }
        other => format!("unknown probe {other:?}"),
    }
}
