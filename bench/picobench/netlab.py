"""The network the benchmark builds for itself: three namespaces and two veth pairs.

    container (C) --veth-- host (H) --veth-- peer (P)

H plays the machine being watched: every traffic generator runs there unless the
scenario says otherwise, and the peer tools (NetHogs, bandwhich, OpenSnitch) watch H's
interfaces and firewall, so they see exactly the benchmark's traffic and nothing of the
rest of the machine (OpenSnitch's netfilter queue in particular never touches anybody
else's connections). P runs the servers the generators talk to, and its veth end is
where the on-the-wire truth is counted. C is "a process in another network namespace",
routed through H like a container behind a bridge. picosnitch watches the whole machine,
so for it H is just one more namespace.
"""
import json
import os
import time

from .proc import CommandFailed, run

# Ethernet header on a veth: frame counters include it, IP counters do not.
ETH_HEADER = 14


class Lab:
    def __init__(self, tag=None):
        t = tag if tag is not None else os.getpid() % 100000
        self.tag = t
        self.host = f"psb{t}-h"
        self.peer = f"psb{t}-p"
        self.container = f"psb{t}-c"
        # Interface names are at most 15 characters.
        self.host_if, self.peer_if = f"psbh{t}", f"psbp{t}"
        self.cont_if, self.cont_host_if = f"psbc{t}", f"psbx{t}"
        self.host_ip, self.peer_ip = "10.251.0.1", "10.251.0.2"
        self.host_ip6, self.peer_ip6 = "fd51::1", "fd51::2"
        self.cont_gw, self.cont_ip = "10.252.0.1", "10.252.0.2"
        self.up = False

    # -- building and tearing down ------------------------------------------------
    def create(self):
        self.destroy()  # leftovers of a run with the same pid that was killed
        for ns in (self.host, self.peer, self.container):
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        self.up = True
        run(["ip", "-n", self.host, "link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if,
             "netns", self.peer])
        run(["ip", "-n", self.host, "link", "add", self.cont_host_if, "type", "veth", "peer", "name", self.cont_if,
             "netns", self.container])
        for ns, dev, addr in [(self.host, self.host_if, f"{self.host_ip}/24"), (self.peer, self.peer_if, f"{self.peer_ip}/24"),
                              (self.host, self.cont_host_if, f"{self.cont_gw}/24"),
                              (self.container, self.cont_if, f"{self.cont_ip}/24")]:
            run(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
        # nodad: usable at once instead of after duplicate address detection.
        run(["ip", "-n", self.host, "addr", "add", f"{self.host_ip6}/64", "dev", self.host_if, "nodad"])
        run(["ip", "-n", self.peer, "addr", "add", f"{self.peer_ip6}/64", "dev", self.peer_if, "nodad"])
        for ns, dev in [(self.host, self.host_if), (self.peer, self.peer_if), (self.host, self.cont_host_if),
                        (self.container, self.cont_if)]:
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        run(["ip", "-n", self.container, "route", "add", "default", "via", self.cont_gw])
        run(["ip", "-n", self.peer, "route", "add", "10.252.0.0/24", "via", self.host_ip])
        for key, value in [
            ("net.ipv4.ip_forward", "1"),
            # Ping sockets for root's group (the ICMP scenario uses one, like ping(8)).
            ("net.ipv4.ping_group_range", "0 2147483647"),
            # Connection-rate runs make hundreds of thousands of connections from one
            # address: all ports, and TIME_WAIT ports reused for new outgoing connections.
            ("net.ipv4.ip_local_port_range", "1024 65535"),
            ("net.ipv4.tcp_tw_reuse", "1"),
        ]:
            self.sysctl(self.host, key, value)
        for ns in (self.peer, self.container):
            self.sysctl(ns, "net.ipv4.ping_group_range", "0 2147483647")
        self.sysctl(self.container, "net.ipv4.ip_local_port_range", "1024 65535")
        # Quiet links: no router solicitations adding packets to the wire counts.
        for ns in (self.host, self.peer):
            self.sysctl(ns, "net.ipv6.conf.all.router_solicitations", "0")
        self.wait_reachable()

    def sysctl(self, ns, key, value):
        path = "/proc/sys/" + key.replace(".", "/")
        run(["ip", "netns", "exec", ns, "sh", "-c", f'echo "$1" > {path}', "sh", value])

    def wait_reachable(self, timeout=10):
        """Waits until the peer's end of the veth is up (IPv6 addresses are `nodad`, so
        they are usable as soon as the link is)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = run(["ip", "-n", self.peer, "-j", "link", "show", "dev", self.peer_if]).stdout
            if '"operstate":"UP"' in state.replace(" ", ""):
                return
            time.sleep(0.1)
        raise CommandFailed(f"the lab's veth {self.peer_if} did not come up within {timeout} s")

    def destroy(self):
        # Deleting a namespace deletes the veth ends inside it, and with them their peers.
        for ns in (self.container, self.peer, self.host):
            run(["ip", "netns", "del", ns], check=False)
        self.up = False

    # -- using it -----------------------------------------------------------------
    def exec_prefix(self, ns):
        """Command prefix that runs a program inside namespace `ns` (in place: the
        program keeps ip's pid, and its parent is the caller)."""
        return ["ip", "netns", "exec", ns]

    def counters(self, ns=None, dev=None):
        """Packets and bytes through the peer's veth end (or another device), from the
        peer's point of view: rx is what the watched machine sent."""
        ns = ns or self.peer
        dev = dev or self.peer_if
        info = json.loads(run(["ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev]).stdout)[0]
        s = info["stats64"]
        return {"rx_bytes": s["rx"]["bytes"], "rx_packets": s["rx"]["packets"],
                "tx_bytes": s["tx"]["bytes"], "tx_packets": s["tx"]["packets"]}

    def netns_inode(self, ns):
        return os.stat(f"/var/run/netns/{ns}").st_ino


def wire_delta(before, after, loopback=False):
    """What crossed the wire between two counter readings, as Ethernet frames and as IP
    packets (frames without their 14-byte header), seen from the watched machine: `up`
    is what it sent. On loopback both directions go through the one device (each packet
    counted once sent, once received): only the total is known."""
    d = {k: after[k] - before[k] for k in before}
    if loopback:
        frames = {"up": None, "down": None, "total": d["tx_bytes"], "packets": d["tx_packets"]}
        ip = {"up": None, "down": None, "total": d["tx_bytes"] - ETH_HEADER * d["tx_packets"]}
    else:
        up_ip = d["rx_bytes"] - ETH_HEADER * d["rx_packets"]
        down_ip = d["tx_bytes"] - ETH_HEADER * d["tx_packets"]
        frames = {"up": d["rx_bytes"], "down": d["tx_bytes"], "total": d["rx_bytes"] + d["tx_bytes"],
                  "packets": d["rx_packets"] + d["tx_packets"]}
        ip = {"up": up_ip, "down": down_ip, "total": up_ip + down_ip}
    return {"frames": frames, "ip": ip}
