//! How many runs of a loaded program the kernel skipped: `recursion_misses` of the
//! kernel's `struct bpf_prog_info` (Linux >= 5.12). The kernel runs a tracing program
//! (tp_btf, fexit) at most once at a time per CPU and skips, and counts, a run that
//! finds it busy there. /proc/self/fdinfo shows the same number, but the confined
//! monitor opens no file; bpf(BPF_OBJ_GET_INFO_BY_FD) on the program's own descriptor
//! is one call its seccomp policy allows. aya 0.14's `ProgramInfo` does not expose it.
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd};

/// bpf(2) command number (include/uapi/linux/bpf.h).
pub const BPF_OBJ_GET_INFO_BY_FD: u64 = 15;

/// The head of `struct bpf_prog_info` up to `recursion_misses`; the kernel fills as much
/// of its struct as the caller's length covers and writes back the length it filled.
#[repr(C)]
struct ProgInfoHead {
    /// type .. run_cnt: nothing here needs them.
    before: [u64; 26],
    recursion_misses: u64,
}
// The uapi layout, checked against linux/bpf.h's offsetof.
const _: () = assert!(offset_of!(ProgInfoHead, recursion_misses) == 208);

/// The `info` member of `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
struct InfoByFd {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// Runs of the program behind `prog` the kernel skipped since it was loaded; 0 on a
/// kernel whose `bpf_prog_info` ends before the counter.
pub fn skipped_runs(prog: BorrowedFd<'_>) -> std::io::Result<u64> {
    let mut info = ProgInfoHead { before: [0; 26], recursion_misses: 0 };
    let mut attr = InfoByFd {
        bpf_fd: prog.as_raw_fd() as u32,
        info_len: size_of::<ProgInfoHead>() as u32,
        info: &mut info as *mut ProgInfoHead as u64,
    };
    // SAFETY: attr and the buffer it points to live across the call, and the kernel
    // writes at most attr.info_len bytes into the buffer, which is that long.
    let rc = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &mut attr as *mut InfoByFd, size_of::<InfoByFd>())
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if (attr.info_len as usize) < size_of::<ProgInfoHead>() {
        return Ok(0);
    }
    Ok(info.recursion_misses)
}
