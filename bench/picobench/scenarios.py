"""The traffic kinds of the accuracy section, each made by copies of the generator under
names unique to the trial, with the ground truth each run reports about itself.

A scenario's `run` makes its traffic once and returns the subjects: the executables
whose traffic the tools are scored on, each with what it sent and received by its own
count and what a correct record of it looks like. Servers in the peer namespace are
not subjects (the peer tools cannot see that namespace; picosnitch can and does, but
the issue asks about the watched side).
"""
import time
from dataclasses import dataclass, field

from .generator import Generator, finish_started
from .proc import CommandFailed

MiB = 1024 * 1024

# Protocol numbers as the history records them.
TCP, UDP, ICMP, ICMPV6, RAW_PROTO, ETHERTYPE = 6, 17, 1, 58, 253, 0x88B5
INET, INET6, PACKET = 2, 10, 17


@dataclass
class Sizes:
    """How much traffic each scenario makes. Bulk transfers are paced to last about
    two seconds each way: tools that sample once a second need a process that lives
    that long, and so do real downloads."""
    bulk: int = 8 * MiB
    bulk_chunk: int = 64 * 1024
    bulk_every_ms: int = 16
    datagrams: int = 1000
    datagram_size: int = 1200
    datagram_every_ms: int = 2
    echoes: int = 20
    burst_processes: int = 200
    many_connections: int = 2000
    drip_chunks: int = 60
    drip_every_ms: int = 1000

    @staticmethod
    def smoke():
        return Sizes(bulk=1 * MiB, bulk_every_ms=10, datagrams=200, datagram_every_ms=2, echoes=5,
                     burst_processes=20, many_connections=200, drip_chunks=5, drip_every_ms=200)


@dataclass
class Subject:
    gen: Generator
    sent: int
    received: int
    connections: int | None = None
    processes: int = 1
    expect: dict = field(default_factory=dict)
    # Which end of the scenario this is: scored and shown separately.
    role: str = "client"


@dataclass
class Context:
    lab: object
    traffic: str  # the picosnitch-traffic binary
    workdir: str
    sizes: Sizes

    def gen(self, name):
        return Generator(self.traffic, self.workdir, name)

    def in_ns(self, ns):
        return self.lab.exec_prefix(ns)


@dataclass
class Scenario:
    id: str
    title: str
    run: object  # (Context, name suffix) -> [Subject]
    bulk: bool = False
    wire: str = "peer"  # where the on-the-wire truth is counted: "peer" veth, "loopback", or None
    smoke: bool = False


def check_delivered(sid, client, server):
    """The two ends agree, or the trial's truth is not a truth."""
    if server["received"] != client["sent"] or server["sent"] != client["received"]:
        raise CommandFailed(f"{sid}: the ends disagree: client sent {client['sent']} received {client['received']}, "
                            f"server received {server['received']} sent {server['sent']}")


def paced(sizes):
    return ["--chunk", sizes.bulk_chunk, "--every-ms", sizes.bulk_every_ms]


def tcp_exchange(ctx, sid, t, up, down, io="plain", v6=False, client_ns=None, expect_ns=None):
    lab = ctx.lab
    server = ctx.gen(f"ps-{sid}-{t}")
    client = ctx.gen(f"pb-{sid}-{t}")
    peer = f"[{lab.peer_ip6}]" if v6 else lab.peer_ip
    srv = server.serve(["tcp-server", "--bind", f"{peer}:0", "--send", down, *paced(ctx.sizes)], ctx.in_ns(lab.peer))
    try:
        c = client.run(["tcp-client", "--to", f"{peer}:{srv.port}", "--send", up, "--io", io, *paced(ctx.sizes)],
                       ctx.in_ns(client_ns or lab.host))
    finally:
        s = srv.finish()
    expect = {"family": INET6 if v6 else INET, "protocol": TCP, "raddr": lab.peer_ip6 if v6 else lab.peer_ip,
              "rport": srv.port, "netns": lab.netns_inode(expect_ns or lab.host)}
    check_delivered(sid, c, s)
    return [Subject(client, c["sent"], c["received"], connections=1, expect=expect)]


def udp_exchange(ctx, sid, t, v6=False, mmsg=None):
    lab, z = ctx.lab, ctx.sizes
    server = ctx.gen(f"ps-{sid}-{t}")
    client = ctx.gen(f"pb-{sid}-{t}")
    peer = f"[{lab.peer_ip6}]" if v6 else lab.peer_ip
    batch = ["--mmsg", mmsg] if mmsg else []
    # With batches, the wait is between batches: keep the same total duration.
    every = z.datagram_every_ms * (mmsg or 1)
    srv = server.serve(["udp-server", "--bind", f"{peer}:0", "--count", z.datagrams, "--reply", z.datagram_size,
                        "--every-ms", z.datagram_every_ms, *batch], ctx.in_ns(lab.peer))
    try:
        c = client.run(["udp-client", "--to", f"{peer}:{srv.port}", "--count", z.datagrams, "--size", z.datagram_size,
                        "--replies", z.datagrams, "--every-ms", every, *batch], ctx.in_ns(lab.host))
    finally:
        s = srv.finish()
    check_delivered(sid, c, s)
    expect = {"family": INET6 if v6 else INET, "protocol": UDP, "raddr": lab.peer_ip6 if v6 else lab.peer_ip,
              "rport": srv.port, "netns": lab.netns_inode(lab.host)}
    return [Subject(client, c["sent"], c["received"], expect=expect)]


def icmp_echo(ctx, sid, t):
    lab, z = ctx.lab, ctx.sizes
    g = ctx.gen(f"pb-{sid}-{t}")
    c = g.run(["ping", "--to", lab.peer_ip, "--count", z.echoes, "--size", 1000, "--every-ms", 100], ctx.in_ns(lab.host))
    expect = {"family": INET, "protocol": ICMP, "raddr": lab.peer_ip, "netns": lab.netns_inode(lab.host)}
    return [Subject(g, c["sent"], c["received"], expect=expect)]


def raw_ip(ctx, sid, t):
    lab, z = ctx.lab, ctx.sizes
    g = ctx.gen(f"pb-{sid}-{t}")
    c = g.run(["raw-ip", "--to", lab.peer_ip, "--proto", RAW_PROTO, "--count", z.datagrams // 5, "--size", 1000,
               "--every-ms", 10], ctx.in_ns(lab.host))
    expect = {"family": INET, "protocol": RAW_PROTO, "raddr": lab.peer_ip, "netns": lab.netns_inode(lab.host)}
    return [Subject(g, c["sent"], c["received"], expect=expect)]


def af_packet(ctx, sid, t):
    lab, z = ctx.lab, ctx.sizes
    g = ctx.gen(f"pb-{sid}-{t}")
    c = g.run(["packet", "--ifname", lab.host_if, "--count", z.datagrams // 5, "--size", 1000, "--every-ms", 10],
              ctx.in_ns(lab.host))
    expect = {"family": PACKET, "protocol": ETHERTYPE, "netns": lab.netns_inode(lab.host)}
    return [Subject(g, c["sent"], c["received"], expect=expect)]


def loopback(ctx, sid, t):
    lab, z = ctx.lab, ctx.sizes
    server = ctx.gen(f"pbs-{sid}-{t}")
    client = ctx.gen(f"pb-{sid}-{t}")
    host = ctx.in_ns(lab.host)
    srv = server.serve(["tcp-server", "--bind", "127.0.0.1:0", "--send", z.bulk, *paced(z)], host)
    try:
        c = client.run(["tcp-client", "--to", f"127.0.0.1:{srv.port}", "--send", z.bulk, *paced(z)], host)
    finally:
        s = srv.finish()
    ns = lab.netns_inode(lab.host)
    return [Subject(client, c["sent"], c["received"], connections=1,
                    expect={"family": INET, "protocol": TCP, "raddr": "127.0.0.1", "rport": srv.port, "netns": ns}),
            Subject(server, s["sent"], s["received"], connections=1, role="server",
                    expect={"family": INET, "protocol": TCP, "raddr": "127.0.0.1", "netns": ns})]


def burst(ctx, sid, t):
    """Many processes of one executable started at once, one short connection each."""
    lab, z = ctx.lab, ctx.sizes
    n = z.burst_processes
    server = ctx.gen(f"ps-{sid}-{t}")
    client = ctx.gen(f"pb-{sid}-{t}")
    srv = server.serve(["tcp-server", "--bind", f"{lab.peer_ip}:0", "--accepts", n, "--send", 1000], ctx.in_ns(lab.peer))
    sent = received = 0
    try:
        started = [client.start(["tcp-client", "--to", f"{lab.peer_ip}:{srv.port}", "--send", 1000], ctx.in_ns(lab.host))
                   for _ in range(n)]
        for p in started:
            r = finish_started(p, client.name)
            sent += r["sent"]
            received += r["received"]
    finally:
        srv.finish()
    expect = {"family": INET, "protocol": TCP, "raddr": lab.peer_ip, "rport": srv.port, "netns": lab.netns_inode(lab.host)}
    return [Subject(client, sent, received, connections=n, processes=n, expect=expect)]


def many(ctx, sid, t):
    """One process, many small connections one after the other."""
    lab, z = ctx.lab, ctx.sizes
    n = z.many_connections
    server = ctx.gen(f"ps-{sid}-{t}")
    client = ctx.gen(f"pb-{sid}-{t}")
    srv = server.serve(["tcp-server", "--bind", f"{lab.peer_ip}:0", "--accepts", n, "--send", 100], ctx.in_ns(lab.peer))
    try:
        c = client.run(["tcp-client", "--to", f"{lab.peer_ip}:{srv.port}", "--send", 100, "--repeat", n], ctx.in_ns(lab.host))
    finally:
        srv.finish()
    expect = {"family": INET, "protocol": TCP, "raddr": lab.peer_ip, "rport": srv.port, "netns": lab.netns_inode(lab.host)}
    return [Subject(client, c["sent"], c["received"], connections=n, expect=expect)]


def drip(ctx, sid, t):
    """One connection that writes a little every second for a minute."""
    lab, z = ctx.lab, ctx.sizes
    server = ctx.gen(f"ps-{sid}-{t}")
    client = ctx.gen(f"pb-{sid}-{t}")
    srv = server.serve(["tcp-server", "--bind", f"{lab.peer_ip}:0", "--send", 100], ctx.in_ns(lab.peer))
    try:
        c = client.run(["tcp-client", "--to", f"{lab.peer_ip}:{srv.port}", "--send", 100 * z.drip_chunks, "--chunk", 100,
                        "--every-ms", z.drip_every_ms], ctx.in_ns(lab.host), timeout=z.drip_chunks * z.drip_every_ms / 1000 + 60)
    finally:
        srv.finish()
    expect = {"family": INET, "protocol": TCP, "raddr": lab.peer_ip, "rport": srv.port, "netns": lab.netns_inode(lab.host)}
    return [Subject(client, c["sent"], c["received"], connections=1, expect=expect)]


def scenarios():
    return [
        Scenario("tcpup", "TCP up", lambda c, t: tcp_exchange(c, "tcpup", t, c.sizes.bulk, 0), bulk=True, smoke=True),
        Scenario("tcpdown", "TCP down", lambda c, t: tcp_exchange(c, "tcpdown", t, 0, c.sizes.bulk), bulk=True),
        Scenario("tcpboth", "TCP both ways", lambda c, t: tcp_exchange(c, "tcpboth", t, c.sizes.bulk, c.sizes.bulk),
                 bulk=True),
        Scenario("udp", "UDP both ways", lambda c, t: udp_exchange(c, "udp", t), smoke=True),
        Scenario("udpmmsg", "UDP batched (sendmmsg/recvmmsg)", lambda c, t: udp_exchange(c, "udpmmsg", t, mmsg=32)),
        Scenario("tcp6", "IPv6 TCP", lambda c, t: tcp_exchange(c, "tcp6", t, c.sizes.bulk, c.sizes.bulk, v6=True),
                 bulk=True),
        Scenario("udp6", "IPv6 UDP", lambda c, t: udp_exchange(c, "udp6", t, v6=True)),
        Scenario("icmp", "ICMP echo (ping socket)", lambda c, t: icmp_echo(c, "icmp", t)),
        Scenario("rawip", "raw IP (protocol 253)", lambda c, t: raw_ip(c, "rawip", t)),
        Scenario("packet", "AF_PACKET frames", lambda c, t: af_packet(c, "packet", t)),
        Scenario("uring", "io_uring both ways",
                 lambda c, t: tcp_exchange(c, "uring", t, c.sizes.bulk, c.sizes.bulk, io="uring"), bulk=True),
        Scenario("sendfile", "sendfile", lambda c, t: tcp_exchange(c, "sendfile", t, c.sizes.bulk, 0, io="sendfile"),
                 bulk=True),
        Scenario("splice", "splice both ways",
                 lambda c, t: tcp_exchange(c, "splice", t, c.sizes.bulk, c.sizes.bulk, io="splice"), bulk=True),
        Scenario("lo", "loopback TCP", lambda c, t: loopback(c, "lo", t), bulk=True,
                 wire="loopback", smoke=True),
        Scenario("burst", "burst of short-lived processes", lambda c, t: burst(c, "burst", t)),
        Scenario("many", "many small connections", lambda c, t: many(c, "many", t), smoke=True),
        Scenario("drip", "slow drip over a minute", lambda c, t: drip(c, "drip", t)),
        Scenario("netns", "process in another network namespace",
                 lambda c, t: tcp_exchange(c, "netns", t, c.sizes.bulk, c.sizes.bulk, client_ns=c.lab.container,
                                           expect_ns=c.lab.container), bulk=True, smoke=True),
    ]


def settle_gap():
    """Between trials: lets once-a-second tools print the trial before the next one
    (bandwhich's output trails the traffic by a few seconds)."""
    time.sleep(3)
