//! A network namespace the test creates for itself, removed when dropped, with an
//! optional veth pair to the host. Needs iproute2 and root.
use std::process::Command;

pub struct Netns {
    pub name: String,
    pub host_if: Option<String>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip (install iproute2)");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Netns {
    /// A namespace with loopback up.
    pub fn new(tag: &str) -> Netns {
        let name = format!("ps-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Netns { name, host_if: None }
    }

    /// Adds a veth pair: `host_addr/24` on the host side, `ns_addr/24` inside.
    pub fn with_veth(mut self, host_addr: &str, ns_addr: &str) -> Netns {
        let host_if = format!("psh{}", std::process::id() % 100_000);
        let ns_if = format!("psn{}", std::process::id() % 100_000);
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        ip(&["link", "add", &host_if, "type", "veth", "peer", "name", &ns_if]);
        ip(&["link", "set", &ns_if, "netns", &self.name]);
        ip(&["addr", "add", &format!("{host_addr}/24"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&["-n", &self.name, "addr", "add", &format!("{ns_addr}/24"), "dev", &ns_if]);
        ip(&["-n", &self.name, "link", "set", &ns_if, "up"]);
        self.host_if = Some(host_if);
        self
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    pub fn sysctl(&self, key: &str, value: &str) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "sysctl", "-w", &format!("{key}={value}")])
            .output()
            .expect("sysctl");
        assert!(out.status.success(), "sysctl {key}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The namespace's inode number, which the daemon records as `netns`.
    pub fn inode(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/var/run/netns/{}", self.name)).expect("netns file").ino()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(h) = &self.host_if {
            let _ = Command::new("ip").args(["link", "del", h]).output();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}
