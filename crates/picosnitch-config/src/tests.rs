use super::*;
use std::net::IpAddr;

const EXAMPLE: &str = include_str!("../../../config.example.toml");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, Path::new("/etc/picosnitch/config.toml"))
}

fn keys(value: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    if let toml::Value::Table(t) = value {
        for (k, v) in t {
            let name = format!("{prefix}{k}");
            out.push(name.clone());
            keys(v, &format!("{name}."), out);
        }
    }
}

#[test]
fn example_equals_defaults_and_names_every_key() {
    assert_eq!(parse(EXAMPLE).expect("example parses"), Config::default());
    let mut want = Vec::new();
    keys(&toml::Value::try_from(Config::default()).expect("serialize"), "", &mut want);
    let mut have = Vec::new();
    keys(&toml::from_str::<toml::Value>(EXAMPLE).expect("toml"), "", &mut have);
    want.sort();
    have.sort();
    assert_eq!(have, want, "config.example.toml and Config have drifted apart");
}

#[test]
fn empty_file_gives_defaults() {
    assert_eq!(parse("").expect("empty"), Config::default());
}

#[test]
fn unknown_keys_are_refused_with_position() {
    let err = parse("retention_days = 3\nretention_dayz = 3\n").expect_err("typo");
    let text = err.to_string();
    assert!(text.starts_with("/etc/picosnitch/config.toml:2:1:"), "{text}");
    assert!(text.contains("retention_dayz"), "{text}");

    let err = parse("[log_ignore]\nports = [1]\n  portz = [2]\n").expect_err("nested typo");
    assert!(matches!(err, ConfigError::Syntax { line: 3, column: 3, .. }), "{err}");
    assert!(err.to_string().contains("portz"));
}

#[test]
fn type_errors_have_positions() {
    let err = parse("write_limit_seconds = 5\nretention_days = \"x\"\n").expect_err("type");
    assert!(matches!(err, ConfigError::Syntax { line: 2, column: 18, .. }), "{err}");
    let err = parse("[log_ignore]\ncidrs = [\"10.0.0.0/33\"]\n").expect_err("bad cidr");
    assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
    let err = parse("st_dev_mask = \"foo\"\n").expect_err("bad mask");
    assert!(err.to_string().contains("st_dev_mask"), "{err}");
}

#[test]
fn semantic_errors_name_the_key() {
    for (text, key) in [
        ("write_limit_seconds = 0", "write_limit_seconds"),
        ("ring_buffer_bytes = 1000", "ring_buffer_bytes"),
        ("flow_map_entries = 10", "flow_map_entries"),
        ("db_path = \"relative.db\"", "db_path"),
        ("[log_ignore]\nsha256 = [\"ABC\"]", "log_ignore.sha256"),
        ("[log_ignore]\nexes = [\"bin/ls\"]", "log_ignore.exes"),
    ] {
        match parse(text) {
            Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
            other => panic!("{text}: expected Invalid for {key}, got {other:?}"),
        }
    }
    assert_eq!(parse("st_dev_mask = 0").expect("zero").st_dev_mask, StDevMask::Value(0));
}

#[test]
fn domain_suffix_and_cidr_matching() {
    let c = parse("[log_ignore]\ndomains = [\"example.com\"]\ncidrs = [\"10.0.0.0/8\", \"fe80::/10\"]\nports = [53]\n").expect("ok");
    let ig = &c.log_ignore;
    assert!(ig.matches_domain("example.com"));
    assert!(ig.matches_domain("a.b.Example.com."));
    assert!(!ig.matches_domain("badexample.com"));
    assert!(ig.matches_addr("10.1.2.3".parse::<IpAddr>().expect("ip")));
    assert!(ig.matches_addr("::ffff:10.1.2.3".parse::<IpAddr>().expect("ip")));
    assert!(ig.matches_addr("fe80::1".parse::<IpAddr>().expect("ip")));
    assert!(!ig.matches_addr("11.0.0.1".parse::<IpAddr>().expect("ip")));
    assert!(ig.matches_port(53) && !ig.matches_port(0));
}

#[test]
fn missing_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml");
    let err = Config::load_or_default(&missing, true).expect_err("explicit missing file");
    assert!(err.to_string().contains("nope.toml"), "{err}");
    assert_eq!(Config::load_or_default(&missing, false).expect("defaults"), Config::default());
}
