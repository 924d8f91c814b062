//! The benchmark suite (`bench/run`, Python) kept from rotting: its unit tests, and its
//! short CI run (`--smoke`: a few accuracy scenarios, one trial, short phases, a small
//! history) against the debug binaries the workspace build made. The smoke run asserts
//! that the report has every section and that picosnitch attributed every smoke
//! scenario to the right executable with exact bytes; never a timing.
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// target/debug, where `cargo build --workspace --all-targets` put every binary.
fn binaries_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

fn python3_or_skip(test: &str) -> bool {
    if Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: python3 is missing, and CI machines have Python 3.11");
    }
    eprintln!("SKIPPED {test}: python3 is not installed");
    false
}

fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root (BPF, network namespaces) and CI runs as root: this must not be skipped");
    }
    eprintln!("SKIPPED {test}: needs root to load BPF programs and make network namespaces; run the tests with sudo");
    false
}

#[test]
fn bench_python_unit_tests_pass() {
    if !python3_or_skip("bench_python_unit_tests_pass") {
        return;
    }
    let bench = workspace_root().join("bench");
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "tests", "-t", "."])
        .current_dir(&bench)
        .output()
        .expect("running python3 -m unittest");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "bench's Python unit tests failed:\n{text}");
    assert!(text.contains("OK"), "no test ran:\n{text}");
}

#[test]
fn bench_smoke_run_reports_every_section_and_attributes_right() {
    let test = "bench_smoke_run_reports_every_section_and_attributes_right";
    if !root_or_skip(test) || !python3_or_skip(test) {
        return;
    }
    let bins = binaries_dir();
    for b in ["picosnitch", "picosnitch-traffic", "examples/bench_history"] {
        assert!(bins.join(b).exists(), "{} is missing: build the workspace first (`cargo build --workspace --all-targets`)", bins.join(b).display());
    }
    let out = tempfile::Builder::new().prefix("picosnitch-bench-smoke-").tempdir().expect("tempdir");
    let run = Command::new("python3")
        .arg(workspace_root().join("bench/run"))
        .args(["--smoke", "--peers", "nethogs,opensnitch", "--binaries"])
        .arg(&bins)
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("running bench/run");
    let log = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap_or_else(|e| panic!("no report.md ({e}); output:\n{log}"));
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("results.json")).unwrap_or_else(|e| panic!("no results.json ({e}); output:\n{log}")),
    )
    .expect("results.json is JSON");
    assert!(run.status.success(), "bench/run --smoke failed ({}); output:\n{log}\nreport:\n{report}", run.status);

    // The report: where it ran, versions, the targets, a table per section.
    for heading in ["# picosnitch benchmark report", "- kernel: Linux", "CPUs", "- load average at start:", "## Versions",
        "## Targets (issue 8)", "## Accuracy", "## Overhead", "## Capacity", "## Footprint", "## Storage",
        "## Cost of confinement"]
    {
        assert!(report.contains(heading), "report.md has no {heading:?}:\n{report}");
    }
    assert_eq!(results["smoke"], true);
    assert!(results["machine"]["cpus"].as_u64().is_some_and(|n| n > 0), "{:#}", results["machine"]);
    assert!(results["load_end"]["1min"].is_number(), "load average at the end");
    assert!(results["versions"]["picosnitch"].as_str().is_some_and(|v| v.contains("picosnitch")), "{:#}", results["versions"]);
    for section in ["accuracy", "overhead", "capacity", "footprint", "storage", "sandbox"] {
        let s = &results["sections"][section];
        assert!(s.is_object() && s.get("error").is_none(), "section {section}: {s:#}");
    }

    // Accuracy: every smoke scenario attributed to its own executable, bytes exact.
    let summary = results["sections"]["accuracy"]["summary"].as_object().expect("accuracy summary");
    let expected = results["parameters"]["scenarios"].as_array().expect("scenarios").len();
    assert!(expected >= 4, "the smoke run has a few scenarios: {expected}");
    assert!(summary.len() >= expected, "a summary per scenario: {summary:#?}");
    for (scenario, tools) in summary {
        let p = &tools["picosnitch"];
        assert_eq!(p["status"], "ok", "{scenario}: {p:#}");
        assert!(p["of"].as_u64().is_some_and(|n| n >= 1) && p["right"] == p["of"], "{scenario}: picosnitch attribution {p:#}");
        assert_eq!(p["payload_ratio_median"].as_f64(), Some(1.0), "{scenario}: picosnitch's bytes against the program's own {p:#}");
        // A peer has numbers or says why it has none: never silent zeros.
        for (tool, t) in tools.as_object().expect("tools") {
            let ok = t["status"] == "ok" && t["of"].as_u64().is_some_and(|n| n >= 1);
            let why = t["reason"].as_str().is_some_and(|r| !r.is_empty());
            assert!(ok || why, "{scenario}: {tool} has neither results nor a reason: {t:#}");
        }
    }
    for row in results["sections"]["accuracy"]["trials"].as_array().expect("trials") {
        assert!(row["error"].is_null(), "a trial's traffic failed: {row:#}");
        assert!(row["wire"]["frames"]["total"].as_u64().is_some_and(|b| b > 0), "the wire counters moved: {row:#}");
    }

    // The other sections have their numbers (whatever they are on this machine).
    let overhead = &results["sections"]["overhead"]["summary"]["picosnitch"];
    for k in ["connect_rate", "rr_p50_us", "bulk_bytes_per_s"] {
        assert!(overhead[k]["median"].as_f64().is_some_and(|r| r > 0.0), "overhead {k}: {overhead:#}");
    }
    let steps = results["sections"]["capacity"]["steps"].as_array().expect("capacity steps");
    assert!(!steps.is_empty() && steps.iter().all(|s| s["flows"].as_u64().is_some_and(|f| f > 0)), "{steps:#?}");
    let phases = results["sections"]["footprint"]["phases"].as_array().expect("footprint phases");
    assert_eq!(phases.len(), 3, "idle and two rates: {phases:#?}");
    assert!(phases.iter().all(|p| p["pss_kib_max"].as_u64().is_some_and(|k| k > 1000)), "{phases:#?}");
    let storage = &results["sections"]["storage"];
    assert_eq!(storage["rows"], 20_000, "{storage:#}");
    assert!(storage["bytes_per_row_connections"].as_f64().is_some_and(|b| b > 10.0), "{storage:#}");
    assert!(storage["views_ms"]["queries"].as_u64().is_some_and(|q| q > 0), "{storage:#}");

    // The cost of confinement: a confined and an unconfined daemon, each really so (the
    // roles' uid and seccomp mode read from /proc), each timed to READY=1 and charged
    // CPU per connection.
    let sandbox = &results["sections"]["sandbox"];
    let rounds = sandbox["runs"].as_array().expect("sandbox runs");
    assert_eq!(rounds.len(), 1, "one round in the smoke run: {sandbox:#}");
    for (mode, seccomp) in [("confined", "2"), ("unconfined", "0")] {
        let m = &rounds[0][mode];
        assert!(m["startup_s"].as_f64().is_some_and(|s| s > 0.0), "{mode}: {m:#}");
        assert!(m["cpu_ms_per_1000_connections"].as_f64().is_some_and(|c| c > 0.0), "{mode}: {m:#}");
        assert_eq!(m["role_seccomp_modes"], serde_json::json!([seccomp]), "{mode}: {m:#}");
    }
    assert_eq!(rounds[0]["unconfined"]["role_uids"], serde_json::json!(["0"]), "{sandbox:#}");
    assert!(sandbox["summary"]["startup_s"]["ratio_median"].as_f64().is_some_and(|r| r > 0.0), "{sandbox:#}");
}
