//! Compiles the C BPF programs in `bpf/` into the CO-RE objects embedded in the crate:
//! the capture (`picosnitch.bpf.c`) and the name capture (`names.bpf.c`).
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const INSTALL_HINT: &str =
    "install them with: apt-get install -y clang llvm libbpf-dev (Debian/Ubuntu), or enter `nix develop`";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let bpf_dir = manifest.join("../../bpf");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for f in ["picosnitch.bpf.c", "picosnitch.h", "kernel_types.h", "names.bpf.c", "names.h"] {
        println!("cargo:rerun-if-changed={}", bpf_dir.join(f).display());
    }
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-env-changed=BPF_EXTRA_CFLAGS");

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let (target_arch, multiarch) = match arch.as_str() {
        "x86_64" => ("x86", "x86_64-linux-gnu"),
        "aarch64" => ("arm64", "aarch64-linux-gnu"),
        other => fail(&format!("target architecture {other} is not supported by the BPF build yet")),
    };
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());

    let libbpf_header_dirs = header_dirs("bpf/bpf_helpers.h");
    if libbpf_header_dirs.is_empty() {
        fail(&format!("the libbpf headers (bpf/bpf_helpers.h) were not found; {INSTALL_HINT}"));
    }
    for (source, object) in [("picosnitch.bpf.c", "picosnitch.bpf.o"), ("names.bpf.c", "names.bpf.o")] {
        compile(&clang, target_arch, multiarch, &bpf_dir, &libbpf_header_dirs, source, &out_dir.join(object));
    }
}

fn compile(
    clang: &str,
    target_arch: &str,
    multiarch: &str,
    bpf_dir: &Path,
    libbpf_header_dirs: &[PathBuf],
    source: &str,
    out: &Path,
) {
    let mut cmd = Command::new(clang);
    cmd.args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-D__TARGET_ARCH_{target_arch}"))
        .arg("-I")
        .arg(bpf_dir);
    for dir in libbpf_header_dirs {
        cmd.arg("-idirafter").arg(dir);
    }
    // <linux/types.h> includes <asm/types.h>, which Debian keeps in the multiarch tree.
    let multiarch_dir = Path::new("/usr/include").join(multiarch);
    if multiarch_dir.is_dir() {
        cmd.arg("-idirafter").arg(multiarch_dir);
    }
    if let Ok(extra) = env::var("BPF_EXTRA_CFLAGS") {
        cmd.args(extra.split_whitespace());
    }
    cmd.arg("-c").arg(bpf_dir.join(source)).arg("-o").arg(out);
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("{clang} failed to compile bpf/{source} ({s})")),
        Err(e) => fail(&format!("cannot run `{clang}` to compile the BPF programs ({e}); {INSTALL_HINT}")),
    }
}

/// Include directories that hold `rel`: NIX_CFLAGS_COMPILE's -isystem dirs, then /usr/include.
fn header_dirs(rel: &str) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(flags) = env::var("NIX_CFLAGS_COMPILE") {
        let mut it = flags.split_whitespace();
        while let Some(flag) = it.next() {
            if flag == "-isystem" {
                if let Some(dir) = it.next() {
                    candidates.push(dir.into());
                }
            }
        }
    }
    if let Ok(dir) = env::var("LIBBPF_INCLUDE_DIR") {
        candidates.push(dir.into());
    }
    candidates.push("/usr/include".into());
    candidates.into_iter().filter(|d| d.join(rel).is_file()).collect()
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    println!("cargo:warning={msg}");
    std::process::exit(1);
}
