//! The command line without root: bad configs are refused with their position and exit
//! status 78 before anything starts; every subcommand has help; clear messages when
//! there is no daemon or no database.
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_picosnitch");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run picosnitch");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn check_config_accepts_the_example_and_refuses_mistakes_with_their_position() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config.example.toml");
    let (code, out, _) = run(&["check-config", example]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with(": ok\n"), "{out}");

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[database]\nretention_days = 7\nwrite_limit_secondz = 3\n").expect("write");
    let (code, _, err) = run(&["check-config", bad.to_str().expect("utf8")]);
    assert_eq!(code, 78, "EX_CONFIG: {err}");
    assert!(err.contains(&format!("{}:3:1:", bad.display())), "file:line:column: {err}");
    assert!(err.contains("write_limit_secondz"), "names the key: {err}");

    std::fs::write(&bad, "[monitoring]\nperf_ring_buffer_pages = 1000\n").expect("write");
    let (code, _, err) = run(&["check-config", bad.to_str().expect("utf8")]);
    assert_eq!(code, 78);
    assert!(err.contains(":2:") && err.contains("power of two"), "{err}");

    let (code, out, _) = run(&["check-config", example, "--print"]);
    assert_eq!(code, 0);
    assert!(out.contains("write_limit_seconds = 10") && out.contains("[monitoring]"), "{out}");
}

#[test]
fn the_daemon_refuses_a_bad_config_and_starts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("run");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, format!("[data]\nruntime_dir = \"{}\"\n[log]\nignore_sha256 = [\"nothex\"]\n", run_dir.display())).expect("write");
    let (code, _, err) = run(&["daemon", "--config", cfg.to_str().expect("utf8")]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("ignore_sha256"), "{err}");
    assert!(!run_dir.exists(), "nothing was started or created");

    let (code, _, err) = run(&["daemon", "--config", "/nonexistent/picosnitch.toml"]);
    assert_eq!(code, 78);
    assert!(err.contains("/nonexistent/picosnitch.toml"), "{err}");
}

#[test]
fn status_and_query_say_what_to_do_when_nothing_is_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!("[database]\npath = \"{}\"\n[data]\nruntime_dir = \"{}\"\n", dir.path().join("none.db").display(), dir.path().join("run").display()),
    )
    .expect("write");
    let (code, _, err) = run(&["status", "--config", cfg.to_str().expect("utf8")]);
    assert_eq!(code, 1);
    assert!(err.contains("no daemon is running") && err.contains("picosnitch daemon"), "{err}");
    let (code, _, err) = run(&["query", "--config", cfg.to_str().expect("utf8")]);
    assert_eq!(code, 1);
    assert!(err.contains("no database") && err.contains("daemon creates it"), "{err}");
    let (code, _, err) = run(&["query", "--since", "3w"]);
    assert_eq!(code, 2, "clap usage error");
    assert!(err.contains("unknown unit"), "{err}");
}

#[test]
fn every_subcommand_has_help_and_the_version_prints() {
    for sub in ["daemon", "status", "query", "check-config", "privileges", "remote-schema", "version"] {
        let (code, out, err) = run(&[sub, "--help"]);
        assert_eq!(code, 0, "{sub} --help: {err}");
        assert!(out.contains("Usage:"), "{sub}: {out}");
    }
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for sub in ["daemon", "status", "query", "check-config", "version"] {
        assert!(out.contains(sub), "top-level help lists {sub}: {out}");
    }
    assert!(!out.lines().any(|l| l.trim_start().starts_with("role ")), "the internal role command is hidden: {out}");
    let (code, out, _) = run(&["version"]);
    assert_eq!((code, out.trim()), (0, concat!("picosnitch ", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn a_role_started_by_hand_explains_itself() {
    let (code, _, err) = run(&["role", "writer"]);
    assert_eq!(code, 1);
    assert!(err.contains("started by `picosnitch daemon`"), "{err}");
}

/// The SQL the README tells the database owner to run is printed for the
/// configuration's login, database and table prefix; MySQL is refused with the reason.
#[test]
fn remote_schema_prints_the_tables_and_grants_of_the_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[database.remote]\nhost = \"db.example.org\"\nuser = \"laptop\"\ndatabase = \"history\"\ntable_prefix = \"laptop_\"\n",
    )
    .expect("write");
    let (code, out, err) = run(&["remote-schema", "--config", cfg.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    for line in [
        "CREATE TABLE IF NOT EXISTS laptop_connections (",
        "GRANT CONNECT ON DATABASE \"history\" TO \"laptop\";",
        "GRANT SELECT, INSERT ON laptop_executables, laptop_domains, laptop_addresses, laptop_delivery TO \"laptop\";",
        "GRANT INSERT ON laptop_connections TO \"laptop\";",
    ] {
        assert!(out.contains(line), "lacks {line:?}:\n{out}");
    }
    assert!(!out.lines().any(|l| l.starts_with("GRANT") && (l.contains("UPDATE") || l.contains("DELETE"))), "{out}");

    std::fs::write(&cfg, "[database.remote]\nclient = \"mysql\"\nhost = \"db\"\n").expect("write");
    let (code, _, err) = run(&["check-config", cfg.to_str().expect("utf8")]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("MySQL and MariaDB are not supported") && err.contains("use \"postgresql\""), "{err}");
}
