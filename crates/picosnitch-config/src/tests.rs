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

/// Every key of the example file, the commented-out optional ones included.
fn example_keys() -> Vec<String> {
    let uncommented: String = EXAMPLE
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.starts_with('[') || rest.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')) => {
                rest.split(" #").next().unwrap_or(rest).to_string()
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut have = Vec::new();
    keys(&toml::from_str::<toml::Value>(&uncommented).expect("example with optional keys is TOML"), "", &mut have);
    have.sort();
    have
}

#[test]
fn example_equals_defaults_and_names_every_key() {
    assert_eq!(parse(EXAMPLE).expect("example parses"), Config::default());
    let mut full = Config::default();
    full.database.remote = Some(RemoteConfig { host: "h".into(), ..Default::default() });
    full.monitoring.rlimit_nofile = Some(1);
    full.monitoring.st_dev_mask = Some(0);
    let mut want = Vec::new();
    keys(&toml::Value::try_from(&full).expect("serialize"), "", &mut want);
    want.sort();
    assert_eq!(example_keys(), want, "config.example.toml and Config have drifted apart");
}

#[test]
fn empty_file_gives_defaults() {
    assert_eq!(parse("").expect("empty"), Config::default());
}

#[test]
fn a_picosnitch_2_file_is_accepted() {
    let text = "[database]\nenabled = true\nretention_days = 1\nwrite_limit_seconds = 2\ntext_log = false\n\n\
                [data]\nowner = \"root\"\ngroup = \"root\"\nmode = \"0644\"\n\n\
                [log]\naddresses = true\ncommands = true\nports = true\n\n\
                [desktop]\nuser = \"\"\nnotifications = false\n\n\
                [monitoring]\nevery_exe = false\ngeoip_lookup = true\nperf_ring_buffer_pages = 256\n\n\
                [virustotal]\napi_key = \"\"\nfile_upload = false\nrequest_limit_seconds = 15\n";
    let c = parse(text).expect("picosnitch 2.x config");
    assert_eq!((c.database.retention_days, c.database.write_limit_seconds), (1, 2));
    assert_eq!(c.monitoring.ring_buffer_bytes(), 256 * 4096);
    assert!(!c.desktop.notifications);
}

#[test]
fn unknown_keys_are_refused_with_position() {
    let err = parse("[database]\nretention_days = 3\nretention_dayz = 3\n").expect_err("typo");
    let text = err.to_string();
    assert!(text.starts_with("/etc/picosnitch/config.toml:3:1:"), "{text}");
    assert!(text.contains("retention_dayz"), "{text}");

    let err = parse("[log]\nports = true\n  portz = [2]\n").expect_err("nested typo");
    assert!(matches!(err, ConfigError::Syntax { line: 3, column: 3, .. }), "{err}");
    assert!(err.to_string().contains("portz"));

    let err = parse("[databse]\n").expect_err("section typo");
    assert!(err.to_string().contains("databse"), "{err}");
}

#[test]
fn type_errors_have_positions() {
    let err = parse("[database]\nwrite_limit_seconds = 5\nretention_days = \"x\"\n").expect_err("type");
    assert!(matches!(err, ConfigError::Syntax { line: 3, column: 18, .. }), "{err}");
    let err = parse("[log]\nignore_ips = [\"10.0.0.0/33\"]\n").expect_err("bad cidr");
    assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
    let err = parse("[monitoring]\nhook_set = \"magic\"\n").expect_err("bad hook set");
    assert!(err.to_string().contains("magic"), "{err}");
}

#[test]
fn semantic_errors_name_the_key_and_its_line() {
    for (text, key, line) in [
        ("[database]\nwrite_limit_seconds = 0", "database.write_limit_seconds", 2),
        ("[database]\ntext_log = true", "database.text_log", 2),
        ("[database]\npath = \"relative.db\"", "database.path", 2),
        ("[monitoring]\n\nperf_ring_buffer_pages = 1000", "monitoring.perf_ring_buffer_pages", 3),
        ("[monitoring]\nflow_map_entries = 10", "monitoring.flow_map_entries", 2),
        ("[monitoring]\nreverse_dns = true\nreverse_dns_resolver = \"dns.example\"", "monitoring.reverse_dns_resolver", 3),
        ("[monitoring]\nreverse_dns_timeout_ms = 50", "monitoring.reverse_dns_timeout_ms", 2),
        ("[monitoring]\nreverse_dns_per_second = 0", "monitoring.reverse_dns_per_second", 2),
        ("[log]\nignore_sha256 = [\"ABC\"]", "log.ignore_sha256", 2),
        ("[desktop]\nuser = \"root\"", "desktop.user", 2),
        ("[data]\nmode = \"0666\"", "data.mode", 2),
        ("[database.remote]\nport = 5432", "database.remote.host", 1),
        ("[database.remote]\nhost = \"h\"\ntable_prefix = \"x; drop\"", "database.remote.table_prefix", 3),
        ("[database.remote]\nhost = \"h\"\n\nclient = \"mysql\"", "database.remote.client", 4),
        ("[database]\nenabled = false\n[database.remote]\nhost = \"h\"", "database.enabled", 2),
        ("[webui]\naddress = \"0.0.0.0\"", "webui.address", 2),
        ("[webui]\nport = 5101\nsocket = \"run/web.sock\"", "webui.socket", 3),
        ("[webui]\nsocket_mode = \"0444\"", "webui.socket_mode", 2),
        ("[webui]\nuser = \"root\"", "webui.user", 2),
        ("[webui]\nallowed_hosts = [\"evil.example/x\"]", "webui.allowed_hosts", 2),
    ] {
        match parse(text) {
            Err(ConfigError::Invalid { key: k, line: l, .. }) => {
                assert_eq!((k.as_str(), l), (key, line), "{text}")
            }
            other => panic!("{text}: expected Invalid for {key}, got {other:?}"),
        }
    }
    assert_eq!(parse("[monitoring]\nst_dev_mask = 0").expect("zero").monitoring.st_dev_mask, Some(0));
    for (text, addr) in [("192.0.2.53", "192.0.2.53:53"), ("127.0.0.1:5353", "127.0.0.1:5353"), ("[2001:db8::53]:54", "[2001:db8::53]:54"), ("2001:db8::53", "[2001:db8::53]:53")] {
        let m = parse(&format!("[monitoring]\nreverse_dns = true\nreverse_dns_resolver = \"{text}\"")).expect(text).monitoring;
        assert_eq!(m.reverse_dns_resolver_addr().expect(text).map(|a| a.to_string()).as_deref(), Some(addr));
    }
    let web = parse("[webui]\naddress = \"::1\"\nport = 0\nallowed_hosts = [\"snitch.example.org\"]").expect("webui").webui;
    assert_eq!((web.address.to_string(), web.port, web.socket_mode_bits()), ("::1".to_string(), 0, 0o660));
}

#[test]
fn domain_suffix_and_cidr_matching() {
    let c = parse("[log]\nignore_domains = [\"example.com\"]\nignore_ips = [\"10.0.0.0/8\", \"fe80::/10\", \"192.0.2.1/32\"]\nignore_ports = [53]\n")
        .expect("ok");
    let log = &c.log;
    assert!(log.ignores_domain("example.com"));
    assert!(log.ignores_domain("a.b.Example.com."));
    assert!(!log.ignores_domain("badexample.com"));
    assert!(!log.ignores_domain(""));
    let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
    assert!(log.ignores_addr(ip("10.1.2.3")));
    assert!(log.ignores_addr(ip("::ffff:10.1.2.3")));
    assert!(log.ignores_addr(ip("fe80::1")));
    assert!(log.ignores_addr(ip("192.0.2.1")));
    assert!(!log.ignores_addr(ip("11.0.0.1")));
    assert!(log.ignores_port(53) && !log.ignores_port(0));
}

#[test]
fn missing_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml");
    let err = Config::load_or_default(&missing, true).expect_err("explicit missing file");
    assert!(err.to_string().contains("nope.toml"), "{err}");
    assert_eq!(Config::load_or_default(&missing, false).expect("defaults"), Config::default());
}

#[test]
fn virustotal_urls_and_limits_are_checked() {
    let c = parse("[virustotal]\napi_key_file = \"/k\"\napi_url = \"https://127.0.0.1:8443/\"\n").expect("vt");
    assert!(c.virustotal.enabled());
    assert_eq!(c.virustotal.api_port(), 8443);
    assert_eq!(Config::default().virustotal.api_port(), 443);
    assert!(!Config::default().virustotal.enabled());
    for bad in ["http://www.virustotal.com", "https://", "https://h/path", "https://h:0", "https://h:x"] {
        let err = parse(&format!("[virustotal]\napi_url = {bad:?}\n")).expect_err(bad);
        assert!(err.to_string().contains("api_url"), "{err}");
    }
    assert!(parse("[virustotal]\nupload_max_mib = 33\n").is_err());
    assert!(parse("[virustotal]\napi_key = \"k\"\napi_key_file = \"/k\"\n").is_err());
}
